//! The TOTP second factor (docs/design.md "MFA"): enrollment with a code
//! from a real RFC 6238 generator, wrong codes and the lockout, security's
//! reset, and the seed nowhere in clear.

use std::time::{SystemTime, UNIX_EPOCH};

use jit_tests::*;
use serde_json::Value;
use totp_rs::Totp;

/// `jitctl mfa ARGS` as `user`, `input` on its standard input.
fn mfa_with_input(env: &Env, user: &str, args: &str, input: &str) -> Run {
    let args: Vec<&str> = std::iter::once("mfa").chain(args.split(' ')).collect();
    env.jitctl_with_input(user, &args, input)
}

/// Starts `user`'s enrollment (no code given: it stays pending) and
/// returns the generator an authenticator app would make of it.
fn enroll(env: &Env, user: &str) -> Totp {
    let started = mfa_with_input(env, user, "enroll --show-uri", "");
    assert_eq!(started.code, 2, "pending without a code:{started}");
    let uri = started
        .stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("no otpauth URI:{started}"));
    assert!(uri.contains(&format!("jit:{user}?")), "{uri}");
    assert!(
        started.stdout.contains('▀') || started.stdout.contains('▄'),
        "no QR code drawn:{started}"
    );
    Totp::from_url(uri).expect("a valid otpauth URI")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn status(env: &Env, user: &str, of: &str) -> Value {
    env.jitctl_json(user, &["mfa", "status", of, "--json"])
}

fn events(env: &Env, prefix: &str) -> Vec<(String, String)> {
    env.audit_events()
        .into_iter()
        .filter_map(|e| {
            let event = e["event"].as_str()?.to_owned();
            let actor = e["actor"].as_str()?.to_owned();
            event.starts_with(prefix).then_some((event, actor))
        })
        .collect()
}

#[test]
fn enrollment_is_confirmed_by_a_code_and_the_seed_is_never_stored_in_clear() {
    let env = Env::new();
    assert_eq!(status(&env, "alice", "alice")["state"], "none");
    // Not into a pipe or a file unless asked for: they would keep the seed.
    let piped = mfa_with_input(&env, "alice", "enroll", "");
    assert_eq!(piped.code, 2, "{piped}");
    assert!(!piped.stdout.contains("otpauth://"), "{piped}");
    assert_eq!(status(&env, "alice", "alice")["state"], "none");
    let app = enroll(&env, "alice");
    assert_eq!(status(&env, "alice", "alice")["state"], "pending");
    // Pending: nobody at alice's terminal swaps the seed she just scanned.
    let swap = mfa_with_input(&env, "alice", "enroll --show-uri", "");
    assert_eq!(swap.code, 6, "{swap}");
    assert!(!swap.stdout.contains("otpauth://"), "{swap}");

    let code = app.generate(now()).to_string();
    let confirmed = mfa_with_input(&env, "alice", "confirm", &code);
    assert_eq!(confirmed.code, 0, "{confirmed}{}", env.jitd_log_tail());
    let enrolled = status(&env, "alice", "alice");
    assert_eq!(enrolled["state"], "enrolled", "{enrolled:#}");
    // Enrolled: a new seed only after security's reset.
    env.jitctl("alice", &["mfa", "enroll", "--show-uri"])
        .code(6);
    // Others' state for security and auditors only.
    env.jitctl("bob", &["mfa", "status", "alice"]).code(3);
    assert_eq!(status(&env, "sam", "alice")["state"], "enrolled");

    assert_eq!(
        events(&env, "mfa_"),
        [
            ("mfa_enrollment_started".to_owned(), "alice".to_owned()),
            ("mfa_enrolled".to_owned(), "alice".to_owned()),
        ]
    );
    let seed = app.secret().as_bytes().to_vec();
    let text = app.secret().to_base32();
    for place in [env.db_path(), env.log_path.clone()] {
        let bytes = std::fs::read(&place).expect("readable");
        for secret in [&seed[..], text.as_bytes()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "the seed is in {}",
                place.display()
            );
        }
    }
}

#[test]
fn wrong_codes_lock_out_and_security_resets_a_lost_factor() {
    let env = Env::new();
    let app = enroll(&env, "bob");
    // [mfa] max_failures = 5 by default: four wrong codes say how many are left.
    for left in (1..=4).rev() {
        let wrong = mfa_with_input(&env, "bob", "confirm", "abcdef");
        assert_eq!(wrong.code, 3, "{wrong}");
        assert!(
            wrong
                .stderr
                .contains(&format!("{left} more before a lockout")),
            "{wrong}"
        );
    }
    let locked = mfa_with_input(&env, "bob", "confirm", "abcdef");
    assert!(locked.stderr.contains("locked out until"), "{locked}");
    // Not even the right code while locked out.
    let right = mfa_with_input(&env, "bob", "confirm", &app.generate(now()).to_string());
    assert_eq!(right.code, 3, "{right}");
    assert!(right.stderr.contains("locked out"), "{right}");
    let state = status(&env, "bob", "bob");
    assert_eq!(state["failures"], 5, "{state:#}");
    assert!(state["locked_until"].is_string(), "{state:#}");
    assert_eq!(events(&env, "mfa_locked_out").len(), 1);
    assert_eq!(events(&env, "mfa_refused").len(), 5);
    // Nor a fresh seed to start the count again.
    let fresh = mfa_with_input(&env, "bob", "enroll --show-uri", "");
    assert_eq!(fresh.code, 3, "{fresh}");

    // Only security resets; bob then enrolls anew.
    env.jitctl("alice", &["mfa", "reset", "bob"]).code(3);
    env.jitctl("sam", &["mfa", "reset", "bob"]).ok();
    assert_eq!(status(&env, "bob", "bob")["state"], "none");
    assert_eq!(
        events(&env, "mfa_reset"),
        [("mfa_reset".to_owned(), "sam".to_owned())]
    );
    env.jitctl("sam", &["mfa", "reset", "bob"]).code(4);
    env.jitctl("sam", &["mfa", "reset", "nosuchuser"]).code(4);
    let again = enroll(&env, "bob");
    assert_ne!(again.secret().as_bytes(), app.secret().as_bytes());
}

/// [`TEST_CONFIG`] and "vault", whose grants need second factors: its
/// owner's with the approval, the holder's to start it.
fn config_with_step_up() -> String {
    format!(
        "{TEST_CONFIG}\n[[resource]]\nname = \"vault\"\nenvironment = \"staging\"\n\
         owners = [\"user:olivia\"]\neligible = [\"group:admins\"]\n\
         break_glass = [\"group:admins\"]\nmax_duration = \"4h\"\nrequire_mfa = true\n"
    )
}

/// Enrolls `user` and confirms it with the code of now; their app.
fn enrolled(env: &Env, user: &str) -> Totp {
    let app = enroll(env, user);
    let code = app.generate(now()).to_string();
    mfa_with_input(env, user, "confirm", &code).ok();
    app
}

/// The code of the next step: each person's codes are good once, and the
/// one of now went to the enrollment.
fn next_code(app: &Totp) -> String {
    app.generate(now() + 30).to_string()
}

#[test]
fn step_up_needs_the_approvers_code_and_the_holders_before_the_grant_starts() {
    let env = Env::with_config(&config_with_step_up());
    let alice = enrolled(&env, "alice");
    let olivia = enrolled(&env, "olivia");
    let id = id_of(&env.request("alice", "vault", "2h", "rotate the signing keys"));
    let id_arg = id.to_string();

    // No code, a wrong one: not approved.
    let bare = env.approve("olivia", id);
    assert_eq!(bare.code, 2, "{bare}");
    assert!(bare.stderr.contains("jitctl approve"), "{bare}");
    let approve = ["approve", &id_arg, "--json"];
    env.jitctl_with_input("olivia", &approve, "000000").code(3);
    assert_eq!(state_of(&env.show("root", id)), "pending");
    let approved = env.jitctl_with_input("olivia", &approve, &next_code(&olivia));
    let approved = approved.ok().json();
    assert_eq!(state_of(&approved), "approved", "{approved:#}");
    assert!(approved["activate_by"].is_string(), "{approved:#}");
    assert!(approved["expires_at"].is_null(), "{approved:#}");
    // Approved is not granted: sudo and ssh see no grant yet.
    assert!(!env.holds_grant(uid("alice"), "vault"));

    // Only the holder starts it, with a code of theirs.
    let activate = ["activate", &id_arg, "--json"];
    env.jitctl("alice", &activate).code(2);
    env.jitctl_with_input("bob", &activate, &next_code(&alice))
        .code(3);
    env.jitctl_with_input("alice", &activate, "000000").code(3);
    assert_eq!(state_of(&env.show("root", id)), "approved");
    let before = now() as i64;
    let active = env.jitctl_with_input("alice", &activate, &next_code(&alice));
    let active = active.ok().json();
    assert_eq!(state_of(&active), "active", "{active:#}");
    // Its two hours run from the activation.
    let expires = unix_secs(&active["expires_at"]);
    assert!(
        (before + 7200..=before + 7210).contains(&expires),
        "{active:#}"
    );
    assert!(env.holds_grant(uid("alice"), "vault"));

    let accepted: Vec<(String, String)> = env
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "mfa_accepted")
        .map(|e| {
            let actor = e["actor"].as_str().unwrap_or_default().to_owned();
            let purpose = e["detail"]["purpose"].as_str().unwrap_or_default();
            (actor, purpose.to_owned())
        })
        .collect();
    assert_eq!(
        accepted,
        [
            ("olivia".to_owned(), format!("approval of {id}")),
            ("alice".to_owned(), format!("activation of {id}")),
        ]
    );
}

#[test]
fn break_glass_on_a_step_up_resource_asks_for_the_code_in_the_same_command() {
    let env = Env::with_config(&config_with_step_up());
    let bob = enrolled(&env, "bob");
    let args = ["break-glass", "vault", "--reason", "vault sealed", "--json"];
    // Without a code it stays approved, and says how to start it.
    let bare = env.jitctl("bob", &args);
    assert_eq!(bare.code, 2, "{bare}");
    assert!(bare.stderr.contains("jitctl activate"), "{bare}");
    assert!(!env.holds_grant(uid("bob"), "vault"));
    let grant = env.jitctl_with_input("bob", &args, &next_code(&bob));
    let grant = grant.ok().json();
    assert_eq!(state_of(&grant), "active", "{grant:#}");
    assert_eq!(grant["route"], "break_glass");
    assert!(env.holds_grant(uid("bob"), "vault"));
}
