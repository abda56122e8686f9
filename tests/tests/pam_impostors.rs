//! Threats T1 (a fake bus named by the caller's environment) and T2 (a
//! non-root process owning jitd's name).

use jit_tests::*;

const FAKE_JITD: &str = env!("CARGO_BIN_EXE_fake-jitd");

#[test]
fn t1_a_fake_bus_in_the_environment_is_ignored() {
    let env = Env::new();
    // The stack of the README, word for word: no bus=, the system socket
    // (here: the test's bus, linked at /run/dbus/system_bus_socket).
    env.install_pam(&[("sudo", &documented_sudo_stack())], SUDOERS);
    env.link_system_bus();
    // A bus alice controls, where a fake jitd (even as root) says yes.
    let mut fake = env.start_fake_bus("fake");
    env.start_impostor(&mut fake, "root", FAKE_JITD);
    let env_var = format!("DBUS_SYSTEM_BUS_ADDRESS={}", fake.address);

    let run = env.sudo("alice", &[&env_var], &["true"]);
    assert_ne!(run.code, 0, "sudo believed the environment's bus:{run}");
    assert!(
        run.stderr.contains("jitctl request sudo --for 30m"),
        "the real jitd should have answered:{run}"
    );
    // Sanity: the fake does say yes to whoever asks it.
    let run = env.run_as(
        "alice",
        "busctl",
        &[
            &format!("--address={}", fake.address),
            "call",
            "org.jit.Daemon1",
            "/org/jit/Daemon1",
            "org.jit.Daemon1",
            "CheckGrant",
            "us",
            "61001",
            "sudo",
        ],
    );
    assert!(run.stdout.starts_with("btxt true"), "{run}");

    // With a real grant, the documented stack allows (and the fake is irrelevant).
    let id = id_of(&env.request("alice", "sudo", "30m", "t1"));
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    env.sudo("alice", &[&env_var], &["true"]).ok();
    let events = env.audit_events_for(id);
    assert!(
        events.iter().any(|e| e["event"] == "session_opened"),
        "documented session line registered nothing: {events:#?}"
    );
    // Ungated users pass through the documented stack untouched.
    env.sudo("oscar", &[], &["true"]).ok();
}

#[test]
fn t2_a_non_root_owner_of_jitds_name_is_refused() {
    let env = Env::new();
    let mut fake = env.start_fake_bus("permissive");
    env.start_impostor(&mut fake, "oscar", FAKE_JITD);
    let service = format!(
        "account required {} resource=sudo bus={} timeout=1s\n",
        pam_module().display(),
        fake.address
    );
    env.install_pam(&[("jit-impostor", &service)], SUDOERS);
    let run = env.pamtester("jit-impostor", "alice", &["acct_mgmt"]);
    assert_ne!(run.code, 0, "pam_jit trusted an impostor:{run}");
    assert!(
        run.stderr
            .contains(&format!("owned by uid {}, not root", uid("oscar"))),
        "{run}"
    );

    // jitctl refuses too.
    let mut cmd = env.ns_command("runuser");
    cmd.args(["-u", "alice", "--", "env"])
        .arg(format!("DBUS_SYSTEM_BUS_ADDRESS={}", fake.address))
        .arg(jitctl_bin())
        .arg("status");
    let run = env.run(cmd).code(5);
    assert!(run.stderr.contains("impostor"), "{run}");
}
