//! Managed accounts (W3), custody: at start jitd gives every managed
//! account a new random password nobody learns and locks it, with the real
//! `chpasswd` and `usermod` on an overlay of `/etc` in the test's namespace;
//! a jitd killed half-way finishes the job at its next start.

use std::time::Duration;

use jit_tests::*;

const ACCOUNT: &str = "jitdba";
const KNOWN: &str = "Known-Before-jit-1";

/// Two managed accounts: `jitdba` (created by the tests), and one that
/// does not exist on the host.
fn config() -> String {
    format!(
        "{TEST_CONFIG}\n\
         [[resource]]\nname = \"dba\"\nprivileged = true\nsensitivity = \"high\"\n\
         eligible = [\"group:admins\"]\n\n\
         [[resource]]\nname = \"ghost\"\nprivileged = true\neligible = [\"group:admins\"]\n\n\
         [[account]]\nname = \"{ACCOUNT}\"\nresource = \"dba\"\n\n\
         [[account]]\nname = \"jitghost\"\nresource = \"ghost\"\n"
    )
}

/// An environment whose namespace has its own `/etc` with `jitdba` in it
/// (password [`KNOWN`]); jitd not started.
fn env_with_account() -> Env {
    let env = Env::without_jitd(&config());
    env.private_system_dirs();
    env.add_local_account(ACCOUNT, KNOWN);
    assert!(
        env.password_opens(ACCOUNT, KNOWN),
        "set-up: {ACCOUNT}'s password"
    );
    env
}

/// The `account_*` audit events, as (event, detail).
fn account_events(env: &Env) -> Vec<(String, Value)> {
    let run = env.sqlite(
        "SELECT event || '|' || detail FROM audit WHERE event LIKE 'account_%' ORDER BY id",
    );
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(e, d)| (e.to_owned(), serde_json::from_str(d).expect("detail")))
        .collect()
}

#[track_caller]
fn assert_in_custody(env: &Env) {
    let field = env.shadow_field(ACCOUNT);
    assert!(
        field.starts_with("!$"),
        "not locked with a hash: {field:.3}"
    );
    assert!(
        !env.password_opens(ACCOUNT, KNOWN),
        "the password known before custody still opens {ACCOUNT}"
    );
    let state = env.sqlite(&format!(
        "SELECT state FROM accounts WHERE name = '{ACCOUNT}'"
    ));
    assert_eq!(state.stdout.trim(), "held", "{}", env.jitd_log_tail());
}

/// In custody again, rotated for `reason`.
#[track_caller]
fn assert_rotated_because(env: &Env, reason: &str) {
    assert_in_custody(env);
    let events = account_events(env);
    assert!(
        events
            .iter()
            .any(|(e, d)| e == "account_rotated" && d["reason"] == reason),
        "{events:?}"
    );
}

#[test]
fn jitd_takes_custody_at_start_and_again_of_an_account_changed_behind_its_back() {
    let mut env = env_with_account();
    // Any user can put bytes that are not UTF-8 in their own line (chfn):
    // that must not keep jitd from reading the accounts it manages.
    env.ns_sh("printf 'weird:x:61999:61999:\\377:/:/bin/sh\\n' >> /etc/passwd");
    assert!(std::fs::read(env.ns_path("/etc/passwd"))
        .expect("passwd")
        .contains(&0xff));
    env.start_jitd();
    assert_in_custody(&env);
    let hash = env.shadow_field(ACCOUNT);
    let events = account_events(&env);
    let rotated: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "account_rotated")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(rotated.len(), 1, "{events:?}");
    assert_eq!(rotated[0]["account"], ACCOUNT);
    assert_eq!(rotated[0]["reason"], "adopted");
    let fingerprint = rotated[0]["fingerprint"].as_str().unwrap_or_default();
    assert_eq!(fingerprint.len(), 32, "{fingerprint}");
    // The account jitd cannot find is reported, not invented.
    assert!(
        events.iter().any(|(e, d)| e == "account_rotation_failed"
            && d["account"] == "jitghost"
            && d["error"]
                .as_str()
                .is_some_and(|m| m.contains("not a local account"))),
        "{events:?}"
    );
    // The account itself still exists and is not expired: only its password is locked.
    let chage = env.ns_sh(&format!("chage -l {ACCOUNT}")).stdout;
    assert!(
        chage
            .lines()
            .any(|l| l.starts_with("Account expires") && l.ends_with(": never")),
        "{chage}"
    );

    // Held and locked: a restart leaves it alone.
    env.stop_jitd();
    env.start_jitd();
    assert_eq!(env.shadow_field(ACCOUNT), hash);
    // A password set by hand, even locked again by hand (someone knows
    // it, and an unlock would bring it back): taken back at the next start.
    env.ns_sh(&format!(
        "printf '%s:%s\\n' {ACCOUNT} '{KNOWN}' | chpasswd && usermod -L {ACCOUNT}"
    ));
    assert!(env.shadow_field(ACCOUNT).starts_with('!'));
    assert!(env.password_opens(ACCOUNT, KNOWN));
    env.stop_jitd();
    env.start_jitd();
    assert_rotated_because(&env, "changed");
}

/// jitd writes its intent before it touches the account: killed while
/// `chpasswd` runs, it finds the account half-done at start and rotates
/// and locks it then.
#[test]
fn a_jitd_killed_while_rotating_finishes_the_rotation_at_start() {
    let mut env = env_with_account();
    let started = env.dir.path().join("chpasswd-started");
    let stall = env.write_script(
        "stalled-chpasswd",
        &format!("touch {}\nsleep 5\nexit 1", started.display()),
    );
    env.bind(&stall, "/usr/sbin/chpasswd");
    env.spawn_jitd();
    if wait_for(Duration::from_secs(20), || started.exists().then_some(())).is_none() {
        panic!("jitd never ran chpasswd:{}", env.jitd_log_tail());
    }
    let state = env.sqlite(&format!(
        "SELECT state FROM accounts WHERE name = '{ACCOUNT}'"
    ));
    assert_eq!(state.stdout.trim(), "rotating");
    env.kill_jitd();
    // Lazily: the stalled script may still be running from it.
    env.ns_sh("umount -l /usr/sbin/chpasswd");
    // As the kill left it: the known password still opens the account.
    assert!(env.password_opens(ACCOUNT, KNOWN));

    env.start_jitd();
    assert_rotated_because(&env, "interrupted");
}
