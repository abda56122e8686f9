//! Real sshd with key authentication, gated by pam_jit: public-key logins
//! skip PAM auth, so the gate is in `account` (threat T7); open sessions
//! end with the grant.

use jit_tests::*;
use std::time::Duration;

fn sshd_env() -> (Env, Sshd) {
    let env = Env::with_config(&config_with_ssh());
    let stack = sshd_stack(&env, "ssh");
    env.install_pam(&[("sshd", &stack)], SUDOERS);
    let sshd = Sshd::start(&env, &["alice", "oscar"]);
    (env, sshd)
}

#[test]
fn ssh_login_follows_the_grant() {
    let (env, sshd) = sshd_env();
    let run = env.run(sshd.ssh(&env, "alice", &["echo", "logged-in"]));
    if run.code == 0 {
        panic!("login without a grant:{run}\nsshd log:\n{}", sshd.log());
    }
    assert!(!run.stdout.contains("logged-in"), "{run}");
    // Ungated users are not asked for a grant.
    let run = env.run(sshd.ssh(&env, "oscar", &["echo", "logged-in"]));
    if run.code != 0 || !run.stdout.contains("logged-in") {
        panic!("ungated oscar refused:{run}\nsshd log:\n{}", sshd.log());
    }

    let grant = env.request("alice", "ssh", "30m", "ssh in");
    let id = id_of(&grant);
    let run = env.run(sshd.ssh(&env, "alice", &["echo", "logged-in"]));
    if run.code != 0 || !run.stdout.contains("logged-in") {
        panic!(
            "login with a grant refused:{run}{}\nsshd log:\n{}",
            env.jitd_log_tail(),
            sshd.log()
        );
    }
    let events = env.audit_events_for(id);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "session_opened" && e["detail"]["service"] == "sshd"),
        "no session_opened: {events:#?}"
    );

    env.jitctl("root", &["revoke", &id.to_string(), "--comment", "done"])
        .ok();
    let run = env.run(sshd.ssh(&env, "alice", &["echo", "logged-in"]));
    assert_ne!(run.code, 0, "login after revoke:{run}");
}

#[test]
fn ssh_session_closes_within_a_second_of_expiry() {
    let (env, sshd) = sshd_env();
    let grant = env.request("alice", "ssh", "4s", "quick ssh");
    let id = id_of(&grant);
    let expires_at = unix_secs(&grant["expires_at"]);
    let mark = marked_sleep();
    let mut ssh = Background::spawn(sshd.ssh(&env, "alice", &["sleep", &mark]));
    let Some(sleeps) = wait_for(Duration::from_secs(3), || {
        let p = pids_of(&["sleep", &mark]);
        (!p.is_empty()).then_some(p)
    }) else {
        panic!(
            "remote sleep did not start:{}\nsshd log:\n{}",
            ssh.stop(),
            sshd.log()
        );
    };
    assert!(ssh.running(), "ssh ended early");
    let client = vec![ssh.pid()];
    // Nothing may end it before expiry: still open shortly before it.
    wait_until_wall(expires_at as f64 - 0.3);
    assert!(ssh.running(), "ssh ended before expiry");
    let Some(closed) = death_after_expiry(&client, expires_at) else {
        panic!(
            "ssh session still open 3 s after expiry:{}{}\nsshd log:\n{}",
            ssh.stop(),
            env.jitd_log_tail(),
            sshd.log()
        );
    };
    let remote = death_after_expiry(&sleeps, expires_at);
    eprintln!("sshd: client session closed {closed:.3} s after expiry, remote command {remote:?}");
    assert!(closed <= 1.0, "ssh closed {closed:.3} s after expiry");
    assert!(
        remote.is_some_and(|d| d <= 1.0),
        "remote command {sleeps:?} not dead within 1 s: {remote:?}"
    );
    let run = ssh.finish(Duration::from_secs(2));
    assert_ne!(run.code, 0, "{run}");
    env.wait_state(id, "expired", Duration::from_secs(3));
    let run = env.run(sshd.ssh(&env, "alice", &["true"]));
    assert_ne!(run.code, 0, "login after expiry:{run}");
}

/// The package's pam-auth-update profiles with Debian's own
/// `/etc/pam.d/sshd`: `jit` and `jit-session` (sudo) leave ssh logins
/// alone; `jit-sshd` and `jit-sshd-session` gate every login but root's
/// (how admins recover) on an `ssh` grant, through the lines they add to
/// `common-account` (before pam_unix) and `common-session` (after
/// pam_systemd).
#[test]
fn ssh_gated_by_the_pam_auth_update_profile() {
    let env = Env::with_config(&config_with_ssh());
    env.install_pam(&[], SUDOERS);
    env.install_pam_profiles(&["jit", "jit-session", "jit-sshd", "jit-sshd-session"]);
    let sshd = Sshd::start_with(
        &env,
        &["alice", "oscar", "root"],
        "PermitRootLogin prohibit-password\n",
    );
    let login = |user: &str| env.run(sshd.ssh(&env, user, &["echo", "logged-in"]));
    let logs_in = |user: &str| {
        let run = login(user);
        assert!(
            run.code == 0 && run.stdout.contains("logged-in"),
            "{user} refused:{run}{}",
            env.jitd_log_tail()
        );
    };
    let refused = |user: &str| {
        let run = login(user);
        assert!(
            run.code != 0 && !run.stdout.contains("logged-in"),
            "{user} logged in:{run}"
        );
    };

    env.pam_auth_update("--enable jit jit-session");
    logs_in("alice");
    env.pam_auth_update("--enable jit-sshd jit-sshd-session");
    let session = std::fs::read_to_string(env.dir.path().join("pam.d/common-session")).unwrap();
    assert!(session.contains("libpam_jit.so resource=ssh"), "{session}");
    // pam_systemd (libpam-systemd's profile) moves the login into a logind
    // scope: pam_jit's session line must come after it (T33).
    let (systemd, jit) = (
        session.find("pam_systemd.so"),
        session.find("libpam_jit.so"),
    );
    assert!(
        systemd.is_some() && systemd < jit,
        "pam_systemd must come before pam_jit: {session}"
    );
    let status = env.jitctl("sam", &["status"]).ok();
    assert!(!status.stdout.contains("pam_systemd"), "{status}");
    refused("alice");
    // The profile exempts root alone: oscar, in no jit group, is gated too.
    refused("oscar");
    logs_in("root");

    let id = id_of(&env.request("alice", "ssh", "30m", "profile"));
    logs_in("alice");
    let events = env.audit_events_for(id);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "session_opened" && e["detail"]["service"] == "sshd"),
        "the profile's session lines registered nothing: {events:#?}"
    );
    env.jitctl("root", &["revoke", &id.to_string(), "--comment", "x"])
        .ok();
    refused("alice");

    // An account that must log in without a grant: `exempt=` on the ssh
    // lines, kept by pam-auth-update on those lines when it rewrites the
    // files, never carried to sudo's (each profile's line has a control of
    // its own).
    let pam_d = env.dir.path().join("pam.d");
    let files = [
        "common-account",
        "common-session",
        "common-session-noninteractive",
    ];
    for file in files {
        let path = pam_d.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("services=sshd", "services=sshd exempt=root,oscar");
        std::fs::write(&path, text).unwrap();
    }
    env.pam_auth_update("--package");
    logs_in("oscar");
    refused("alice");
    for file in files {
        let text = std::fs::read_to_string(pam_d.join(file)).unwrap();
        for line in text.lines().filter(|l| l.contains("libpam_jit.so")) {
            assert_eq!(
                line.contains("exempt=root,oscar"),
                line.contains("resource=ssh"),
                "{file}: {line}"
            );
        }
    }
    let sudo = env.sudo("oscar", &[], &["true"]);
    assert!(
        sudo.code != 0 && sudo.stderr.contains("jitctl request sudo"),
        "oscar's sudo is not gated:{sudo}"
    );

    env.pam_auth_update("--disable jit-sshd jit-sshd-session");
    logs_in("alice");
}
