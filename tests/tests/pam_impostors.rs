//! Threats T1 (a fake bus named by the caller's environment) and T2 (a
//! non-root process owning jitd's name).

use jit_tests::*;
use std::time::Duration;

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

/// A listener at the private socket's path that is not root: pam_jit
/// refuses it, and does not fall back to the bus (where jitd would say yes).
#[test]
fn t2_a_non_root_listener_on_the_private_socket_is_refused() {
    let env = Env::new();
    let dir = env.dir.path().join("squat");
    std::fs::create_dir(&dir).expect("mkdir");
    let owner = uid("oscar");
    std::os::unix::fs::chown(&dir, Some(owner), None).expect("chown");
    let path = dir.join("pam.socket");
    let mut cmd = env.ns_command("runuser");
    cmd.args(["-u", "oscar", "--", FAKE_JITD, "--listen"])
        .arg(&path);
    let mut impostor = Background::spawn(cmd);
    if wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&path).ok()
    })
    .is_none()
    {
        panic!("fake-jitd did not listen:{}", impostor.stop());
    }
    let service = format!(
        "account required {} resource=logs socket={} bus={} timeout=1s\n",
        pam_module().display(),
        path.display(),
        env.address()
    );
    env.install_pam(&[("jit-squatted", &service)], SUDOERS);
    // alice really holds a grant: only the squatter stands in the way.
    env.request("alice", "logs", "30m", "t2 private");
    let run = env.pamtester("jit-squatted", "alice", &["acct_mgmt"]);
    assert_ne!(run.code, 0, "pam_jit trusted a non-root listener:{run}");
    assert!(
        run.stderr
            .contains(&format!("owned by uid {owner}, not root")),
        "{run}"
    );
    assert!(impostor.running());
}

/// jitd serves only root on its private socket, whatever the socket's mode.
#[test]
fn t2_jitd_serves_only_root_on_its_private_socket() {
    let env = Env::new();
    env.install_pam(
        &[(
            "jit-logs",
            &format!("account required {} timeout=1s\n", env.jit_args("logs")),
        )],
        SUDOERS,
    );
    env.request("alice", "logs", "30m", "t2 private root only");
    env.pamtester("jit-logs", "alice", &["acct_mgmt"]).ok();
    // An admin's mistake opens the socket to everyone: still root only.
    env.ns_sh(&format!(
        "chmod 0755 {} && chmod 0777 {}",
        env.runtime_dir().display(),
        env.private_socket().display()
    ));
    let mut cmd = env.ns_command("runuser");
    cmd.args([
        "-u",
        "alice",
        "--",
        "pamtester",
        "-v",
        "jit-logs",
        "alice",
        "acct_mgmt",
    ])
    .stdin(std::process::Stdio::null());
    let run = env.run(cmd);
    assert_ne!(run.code, 0, "jitd answered a non-root caller:{run}");
    assert!(run.stderr.contains("cannot verify your grant"), "{run}");
    let log = env.jitd_log_tail();
    assert!(
        log.contains("refused a caller that is not root"),
        "jitd did not log the refusal:{log}"
    );
}
