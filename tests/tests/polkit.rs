//! The polkit gate (docs/threats.md, T29; the README's "What the gate covers"): the package's rule, `20-jit.rules`,
//! in the real polkitd on the test's bus, asking the built
//! `jit-polkit-check`, which asks the test's jitd; the real pkexec and
//! pkcheck as fixture users. A rule after it (`ADMINS_RULE`) lets the
//! `admins` group and oscar through, as a distribution's or an admin's rule
//! would: whatever gets past the gate runs as root at once.
//!
//! The gate's resource is `logs` (granted at once), so that a grant needs
//! no approvals here; exempt are root and oscar.

use jit_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

const GATE_ON: &str =
    "[polkit]\ngate = true\nresource = \"logs\"\nexempt = [\"root\", \"oscar\"]\n";
const EXEC: &str = "org.freedesktop.policykit.exec";

/// jitd with `polkit` as its `[polkit]` table, polkitd with the jit rule
/// and the admins' rule, pkexec's `/run/dbus/system_bus_socket` the test's bus.
fn world(polkit: &str) -> (Env, Polkitd) {
    let config = format!("{TEST_CONFIG}\n{polkit}");
    let mut env = Env::with_bus_policies(&config, &[Path::new(POLKIT_BUS_POLICY)]);
    env.start_jitd();
    env.install_pam(&[], SUDOERS);
    env.link_system_bus();
    let rule = jit_rule(&env);
    let polkitd = Polkitd::start(
        &env,
        &[("20-jit.rules", &rule), ("50-admins.rules", ADMINS_RULE)],
    );
    (env, polkitd)
}

#[track_caller]
fn runs_as_root(run: Run) {
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, "0"),
        "expected pkexec to run id as root:{run}"
    );
}

#[track_caller]
fn refused(run: Run) {
    assert_ne!(run.code, 0, "expected a refusal:{run}");
    assert!(run.stderr.contains("Not authorized"), "{run}");
    assert!(run.stdout.trim().is_empty(), "the command ran:{run}");
}

fn pkexec_id(env: &Env, user: &str) -> Run {
    env.pkexec(user, &["/usr/bin/id", "-u"])
}

#[test]
fn pkexec_needs_an_active_grant() {
    let (env, polkitd) = world(GATE_ON);
    // alice is in admins: without jit the admins' rule lets her through.
    refused(pkexec_id(&env, "alice"));

    let grant = id_of(&env.request("alice", "logs", "30m", "fix the logs"));
    runs_as_root(pkexec_id(&env, "alice"));
    // Her grant is hers: bob, in admins too, stays refused.
    refused(pkexec_id(&env, "bob"));
    // A grant for another resource is no grant for the gate.
    let db = env.request("bob", "db", "30m", "migrate");
    assert_eq!(state_of(&db), "active", "{db:#}");
    refused(pkexec_id(&env, "bob"));

    env.jitctl("alice", &["revoke", &grant.to_string()]).ok();
    refused(pkexec_id(&env, "alice"));

    let log = polkitd.log();
    for user in ["alice", "bob"] {
        let line = format!("jit: refused {EXEC} to {user}: refuse: no active grant for 'logs'");
        assert!(log.contains(&line), "no `{line}` in polkitd's log:\n{log}");
    }
}

#[test]
fn jitd_down_refuses_gated_users_not_the_exempt() {
    let (mut env, polkitd) = world(GATE_ON);
    env.request("alice", "logs", "30m", "fix the logs");
    runs_as_root(pkexec_id(&env, "alice"));

    env.stop_jitd();
    refused(pkexec_id(&env, "alice"));
    // The exempt are not asked about: neither jitd nor a grant is needed.
    runs_as_root(pkexec_id(&env, "oscar"));
    runs_as_root(pkexec_id(&env, "root"));

    env.start_jitd();
    runs_as_root(pkexec_id(&env, "alice"));

    let log = polkitd.log();
    assert!(
        log.contains(&format!("jit: refused {EXEC} to alice: "))
            && log.contains("jitd is not running"),
        "polkitd's log does not say why:\n{log}"
    );
}

#[test]
fn actions_open_to_any_user_are_left_alone() {
    let (env, _polkitd) = world(GATE_ON);
    // Allowed to anyone by its defaults (allow_any yes): no grant needed,
    // for olivia (no admin) and alice (admin) alike.
    let open = "org.freedesktop.login1.inhibit-delay-shutdown";
    for user in ["olivia", "alice"] {
        let run = env.pkcheck(user, open);
        assert_eq!(run.code, 0, "{open} refused to {user}:{run}");
    }
    // An admin action (auth_admin): refused without a grant, not left to
    // the admins' rule or to an authentication.
    let run = env.pkcheck("alice", EXEC);
    assert_eq!(run.code, 1, "{EXEC} not refused to alice:{run}");
    env.request("alice", "logs", "30m", "fix the logs");
    let run = env.pkcheck("alice", EXEC);
    assert_eq!(run.code, 0, "{EXEC} refused to alice with a grant:{run}");
}

#[test]
fn the_gate_is_off_until_turned_on() {
    let (env, _polkitd) = world("[polkit]\nresource = \"logs\"\n");
    runs_as_root(pkexec_id(&env, "alice"));
}

#[test]
fn only_polkitds_account_asks_about_others_and_only_for_the_gates_resource() {
    let env = Env::with_config(&format!("{TEST_CONFIG}\n{GATE_ON}"));
    env.request("alice", "logs", "30m", "fix the logs");
    let run = env.check_grant("polkitd", "alice", "logs").ok();
    assert!(run.stdout.starts_with("btxt true"), "{run}");
    for (caller, resource) in [("polkitd", "sudo"), ("olivia", "logs")] {
        let run = env.check_grant(caller, "alice", resource).fails();
        assert!(
            run.stderr.contains("may ask about another user's grants"),
            "{run}"
        );
    }

    // Off, polkitd's account is nobody special.
    let env = Env::with_config(&format!("{TEST_CONFIG}\n[polkit]\nresource = \"logs\"\n"));
    env.check_grant("polkitd", "alice", "logs").fails();
}

#[test]
fn a_missing_asker_is_a_warning_and_refuses() {
    let gate = format!("{GATE_ON}asker = \"no-such-polkitd\"\n");
    let (env, _polkitd) = world(&gate);
    let status = env.jitctl_json("root", &["status", "--json"]);
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("'no-such-polkitd' has no account"),
        "{status:#}"
    );
    env.request("alice", "logs", "30m", "fix the logs");
    refused(pkexec_id(&env, "alice"));
}

/// `jit-polkit-check ARGS` as polkitd's account, with `DBUS_SYSTEM_BUS_ADDRESS`
/// set to `address` (which it must ignore).
fn helper_as_polkitd(env: &Env, address: &str, args: &[&str]) -> Run {
    let helper = bin_dir().join("jit-polkit-check");
    let mut cmd = env.ns_command("runuser");
    cmd.args(["-u", "polkitd", "--", "env"])
        .arg(format!("DBUS_SYSTEM_BUS_ADDRESS={address}"))
        .arg(helper)
        .arg("--config")
        .arg(&env.config_path)
        .args(args);
    env.run(cmd)
}

#[test]
fn the_helper_trusts_only_root_at_the_system_bus_socket() {
    const FAKE_JITD: &str = env!("CARGO_BIN_EXE_fake-jitd");
    let env = Env::with_config(&format!("{TEST_CONFIG}\n{GATE_ON}"));
    env.install_pam(&[], SUDOERS);
    env.link_system_bus();
    let mut fake = env.start_fake_bus("fake");
    env.start_impostor(&mut fake, "oscar", FAKE_JITD);
    let question = ["--", "alice", EXEC, "any"];

    // The environment does not lead it to the impostor's "granted".
    let run = helper_as_polkitd(&env, &fake.address, &question).ok();
    assert_eq!(run.stdout, "refuse: no active grant for 'logs'\n", "{run}");

    // The impostor at the system bus's own address: no answer, no pass.
    let socket = env.dir.path().join("fake.sock");
    env.ns_sh(&format!(
        "ln -sf {} /run/dbus/system_bus_socket",
        socket.display()
    ));
    let run = helper_as_polkitd(&env, &fake.address, &question).code(1);
    assert!(run.stdout.is_empty(), "{run}");
    assert!(
        run.stderr
            .contains("not root: refusing to talk to an impostor"),
        "{run}"
    );
}

/// polkitd asks jitd for every user: alice's loop of admin checks must not
/// use up the calls bob's pkexec needs (polkitd's account is not rate-limited).
#[test]
fn one_users_flood_of_checks_does_not_refuse_anothers_pkexec() {
    let (env, _polkitd) = world(GATE_ON);
    env.request("bob", "logs", "30m", "legit");
    // One line per check, written by alice's loops.
    let checks = env.dir.path().join("checks");
    std::fs::write(&checks, "").unwrap();
    std::fs::set_permissions(&checks, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let mut loops = env.ns_command("runuser");
    loops.args([
        "-u",
        "alice",
        "--",
        "sh",
        "-c",
        &format!(
            "for j in 1 2 3 4; do (while :; do pkcheck --action-id {EXEC} --process $$ \
             >/dev/null 2>&1; echo >>{}; done) & done; wait",
            checks.display()
        ),
    ]);
    let flood = Background::spawn(loops);
    // Past any burst: a burst more than the checks a limited user's bucket
    // would have let through meanwhile (the defaults: `call_burst` 50,
    // refilled at `calls_per_second` 10).
    let started = Instant::now();
    let past = wait_for(Duration::from_secs(30), || {
        let done = std::fs::read_to_string(&checks).unwrap_or_default().len() as f64;
        (done > 100.0 + 10.0 * started.elapsed().as_secs_f64()).then_some(())
    });
    assert!(
        past.is_some(),
        "alice's loops never got past a burst:{}",
        flood.stop()
    );
    for _ in 0..5 {
        runs_as_root(pkexec_id(&env, "bob"));
    }
    drop(flood);
}
