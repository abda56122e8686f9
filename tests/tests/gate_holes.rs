//! The gate holds whatever sudo does with a hook's answer and whichever
//! name sudoers puts in PAM_USER (docs/threats.md, T26 to T28): a grant
//! that ends between the account check and the session hook, a jitd that
//! answers the session hook too late, sudoers options that change PAM_USER
//! or skip a hook, and a directory that cannot be read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jit_tests::*;

/// A PAM line that runs `script` (pam_exec: its parent is the PAM process).
fn exec_line(stage: &str, script: &Path) -> String {
    format!(
        "{stage} optional pam_exec.so quiet seteuid {}\n",
        script.display()
    )
}

/// sudo's stack for `logs`, with `line` inserted after the line starting with `after`.
fn stack_with(env: &Env, after: &str, line: &str) -> String {
    insert_after(&sudo_stack(env, "logs", "timeout=1s"), after, line)
}

fn insert_after(stack: &str, after: &str, line: &str) -> String {
    let mut out = String::new();
    for l in stack.lines() {
        out.push_str(l);
        out.push('\n');
        if l.starts_with(after) {
            out.push_str(line);
        }
    }
    out
}

/// What `sudo -n sh -c` runs in these tests: it leaves a file behind and a
/// detached child that would outlive the grant.
fn command(ran: &Path, mark: &str) -> String {
    format!(
        "sudo -n sh -c 'touch {}; setsid sleep {mark} </dev/null >/dev/null 2>&1 &'",
        ran.display()
    )
}

#[track_caller]
fn nothing_ran(ran: &Path, mark: &str, env: &Env) {
    assert!(
        !ran.exists(),
        "the command ran as root without a grant:{}",
        env.jitd_log_tail()
    );
    assert!(
        pids_of(&["sleep", mark]).is_empty(),
        "a detached child runs without a grant"
    );
}

/// alice's [`command`] through sudo, refused with nothing left running;
/// what sudo said.
#[track_caller]
fn refused_sudo(env: &Env) -> Run {
    let (ran, mark) = (env.dir.path().join("ran"), marked_sleep());
    let run = env.run_as("alice", "sh", &["-c", &command(&ran, &mark)]);
    assert_ne!(run.code, 0, "{run}");
    nothing_ran(&ran, &mark, env);
    run
}

/// What `jitctl status --json` warns about.
fn status_warnings(env: &Env) -> Vec<String> {
    let status = env.jitctl_json("sam", &["status", "--json"]);
    status["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect()
}

/// Reproduces the reported hole: alice stops her own sudo between the
/// account check and the session hook, her grant is revoked, she resumes
/// it. sudo was put into the grant's cgroup at the account check, so the
/// revocation ends it, stopped as it is.
#[test]
fn a_sudo_stopped_between_the_hooks_dies_with_its_grant() {
    let env = Env::new();
    let pid_file = env.dir.path().join("stopped.pid");
    let stop = stop_parent(&env, &pid_file);
    let stack = stack_with(&env, "account required", &exec_line("account", &stop));
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    let id = id_of(&env.request("alice", "logs", "30m", "between the hooks"));

    let (ran, mark) = (env.dir.path().join("ran"), marked_sleep());
    let pty = env.spawn_in_pty("alice", &command(&ran, &mark));
    let Some(sudo) = stopped(&pid_file) else {
        panic!("sudo never reached the account hook:{}", pty.stop());
    };
    // `script` and runuser stop themselves when their child stops (job
    // control): the test resumes them all, as `fg` would.
    let group = -(pty.pid() as i32);
    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "stop"])
        .ok();
    // In the grant's cgroup, stopped or not, sudo dies with the grant.
    if wait_all_dead(&[sudo as u32], Duration::from_secs(5)).is_none() {
        panic!(
            "the stopped sudo outlived its grant:{}",
            env.jitd_log_tail()
        );
    }
    // Resumed after its grant was revoked.
    for pid in [sudo, group] {
        // SAFETY: kill(2) with SIGCONT, harmless to whatever has that pid.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let run = pty.finish(Duration::from_secs(5));
    assert_ne!(run.code, 0, "{run}");
    nothing_ran(&ran, &mark, &env);
}

/// jitd stopped while sudo waits in its session hook: pam_jit gives up at
/// its timeout and answers with a code sudo treats as fatal.
#[test]
fn a_session_hook_that_times_out_stops_sudo() {
    let env = Env::new();
    let jitd = env.jitd_pid().expect("jitd");
    // Until every thread of jitd has stopped: one still running could take
    // the registration that follows.
    let freeze = env.write_script(
        "freeze-jitd",
        &format!(
            "kill -STOP {jitd}\n\
             until [ -z \"$(grep -L 'State:.*T (stopped)' /proc/{jitd}/task/*/status)\" ]; do sleep 0.01; done"
        ),
    );
    let stack = stack_with(
        &env,
        "@include common-session",
        &exec_line("session", &freeze),
    );
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env.request("alice", "logs", "30m", "late answer");

    let (ran, mark) = (env.dir.path().join("ran"), marked_sleep());
    let run = env.run_as("alice", "sh", &["-c", &command(&ran, &mark)]);
    // SAFETY: kill(2) on this test's jitd.
    unsafe { libc::kill(jitd as i32, libc::SIGCONT) };
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("pam_open_session"), "{run}");
    nothing_ran(&ran, &mark, &env);
}

/// Every sudoers option that puts another name in PAM_USER, and every form
/// of sudo: the gate applies to the invoking user (sudo's real uid).
#[test]
fn the_invoking_user_is_gated_whatever_sudoers_says() {
    let env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    env.install_pam(&[("sudo", &stack), ("sudo-i", &stack)], SUDOERS);
    let sudoers = env.dir.path().join("sudoers");
    let forms: [&[&str]; 5] = [
        &["true"],
        &["-u", "oscar", "true"],
        &["-i", "true"],
        &["-s", "true"],
        &["-e", "/etc/hostname"],
    ];
    let editor = ["SUDO_EDITOR=true"];
    // `!pam_ruser` empties PAM_RUSER: with it, rootpw & co. once put an
    // exempt name (root) in the only item left.
    for option in [
        "",
        "rootpw",
        "targetpw",
        "runaspw",
        "!pam_ruser",
        "!pam_ruser, rootpw",
        "!pam_ruser, targetpw",
        "!pam_ruser, runaspw",
    ] {
        std::fs::write(
            &sudoers,
            format!("Defaults {option}\n{SUDOERS}").replace("Defaults \n", ""),
        )
        .unwrap();
        for form in forms {
            let run = env.sudo("alice", &editor, form);
            assert_ne!(
                run.code, 0,
                "Defaults {option}, sudo {form:?} without a grant:{run}"
            );
            assert!(run.stderr.contains("jitctl request logs"), "{run}");
        }
    }
    env.request("alice", "logs", "30m", "forms");
    for form in forms {
        env.sudo("alice", &editor, form).ok();
    }
}

/// `pam_succeed_if ... notingroup jit-gated` counted a user whose groups
/// could not be read as ungated. The gate no longer asks the directory who
/// is gated: with the group gone, alice is still refused.
#[test]
fn an_unreadable_group_does_not_ungate() {
    let env = sudo_env("logs");
    let group: String = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("jit-gated:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = env.dir.path().join("group-without-jit-gated");
    std::fs::write(&path, group).unwrap();
    env.bind(&path, "/etc/group");
    let run = env.sudo("alice", &[], &["true"]);
    assert_ne!(run.code, 0, "{run}");
    // A holder the module cannot resolve is refused too.
    let run = env.pamtester("sudo", "nobody-by-that-name", &["acct_mgmt"]);
    assert_ne!(run.code, 0, "{run}");
}

/// `Defaults !pam_acct_mgmt` skips the account check: the session hook
/// still refuses (fatally for sudo), and jitd says the gate is weakened.
#[test]
fn sudoers_without_the_account_check_is_still_gated_and_flagged() {
    let env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    env.install_pam(
        &[("sudo", &stack)],
        &format!("Defaults !pam_acct_mgmt\n{SUDOERS}"),
    );
    refused_sudo(&env);
    let status = env.jitctl("sam", &["status"]).ok();
    assert!(status.stdout.contains("!pam_acct_mgmt"), "{status}");
    let warnings = status_warnings(&env);
    assert!(
        warnings.iter().any(|w| w.contains("/etc/sudoers:1")),
        "{warnings:#?}"
    );
}

/// pam_unix ends the account stack on an expired password
/// (`new_authtok_reqd=done` in Debian's `common-account`), and sudo runs a
/// `NOPASSWD` command without asking for a new one: with `!pam_session` the
/// account check is all there is, so it comes before `common-account`.
#[test]
fn an_expired_password_does_not_skip_the_account_check() {
    let env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    env.install_pam(
        &[("sudo", &stack)],
        &format!("Defaults !pam_session\n{SUDOERS}"),
    );
    env.expire_password("alice");
    let run = refused_sudo(&env);
    assert!(run.stderr.contains("jitctl request logs"), "{run}");
}

/// The same stack with pam_jit's line after `@include common-account`, as
/// earlier versions of the README had it: `jitctl status` names the way
/// past it.
#[test]
fn a_gate_an_expired_password_skips_is_flagged() {
    let env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    let (jit, rest): (Vec<&str>, Vec<&str>) = stack
        .lines()
        .partition(|l| l.starts_with("account required"));
    let stack = rest.join("\n").replace(
        "@include common-account",
        &format!("@include common-account\n{}", jit.join("\n")),
    ) + "\n";
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    let warnings = status_warnings(&env);
    assert!(
        warnings.iter().any(|w| {
            w.starts_with("pam_jit at /etc/pam.d/sudo:5 is skipped when the line at /etc/pam.d/common-account:")
                && w.contains("returns new_authtok_reqd")
                && w.contains("(for sudo)")
        }),
        "{warnings:#?}"
    );
}

/// A script for pam_exec that stops its parent (sshd's process for the
/// connection) and leaves its pid in `pid_file`.
fn stop_parent(env: &Env, pid_file: &Path) -> PathBuf {
    env.write_script(
        "stop-parent",
        &format!("echo $PPID > {}; kill -STOP $PPID", pid_file.display()),
    )
}

/// The pid a [`stop_parent`] script stopped, once it has written it.
fn stopped(pid_file: &Path) -> Option<i32> {
    wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
    })
}

/// Waits for the stopped process's pid, revokes grant `id`, waits until
/// jitd has ended the grant's sessions (its cgroup is gone), then resumes it.
fn revoke_while_stopped(env: &Env, pid_file: &Path, id: u64) {
    let Some(stopped) = stopped(pid_file) else {
        panic!("sshd never reached the hook:{}", env.jitd_log_tail());
    };
    env.jitctl("root", &["revoke", &id.to_string(), "--comment", "stop"])
        .ok();
    let cgroup = format!("grant-{id}");
    if wait_for(Duration::from_secs(5), || {
        (!env.session_cgroups().contains(&cgroup)).then_some(())
    })
    .is_none()
    {
        panic!(
            "{cgroup} still there after the revocation:{}",
            env.jitd_log_tail()
        );
    }
    // SAFETY: kill(2) with SIGCONT, harmless to whatever has that pid.
    unsafe { libc::kill(stopped, libc::SIGCONT) };
}

/// Public-key ssh: sshd's process for the connection runs the account
/// check and then the session. Stopped between the two while the grant is
/// revoked, it dies with the grant's cgroup: no shell starts.
#[test]
fn an_ssh_login_stopped_between_the_hooks_dies_with_its_grant() {
    let env = Env::with_config(&config_with_ssh());
    let pid_file = env.dir.path().join("stopped.pid");
    let stop = stop_parent(&env, &pid_file);
    let stack = insert_after(
        &sshd_stack(&env, "ssh"),
        "account required",
        &exec_line("account", &stop),
    );
    env.install_pam(&[("sshd", &stack)], SUDOERS);
    let sshd = Sshd::start(&env, &["alice"]);
    let id = id_of(&env.request("alice", "ssh", "30m", "between the hooks"));
    let ran = env.dir.path().join("ran");
    let login = Background::spawn(sshd.ssh(&env, "alice", &["touch", &ran.to_string_lossy()]));
    revoke_while_stopped(&env, &pid_file, id);
    let run = login.finish(Duration::from_secs(10));
    assert_ne!(run.code, 0, "{run}");
    assert!(!ran.exists(), "the login ran after its grant was revoked");
}

/// With keyboard-interactive authentication sshd runs the account check
/// in a child that exits; the process that runs the session is bound at
/// registration. A registration refused (the grant ended between the
/// hooks) ends that process: sshd would start the shell regardless.
#[test]
fn keyboard_interactive_ssh_is_bound_at_registration_and_ended_when_refused() {
    let env = Env::with_config(&config_with_ssh());
    let pid_file = env.dir.path().join("stopped.pid");
    let stop = stop_parent(&env, &pid_file);
    // PAM's conversation is the authentication here: pam_permit asks nothing.
    let plain =
        sshd_stack(&env, "ssh").replace("@include common-auth", "auth required pam_permit.so");
    let stack = insert_after(&plain, "account required", &exec_line("session", &stop));
    env.install_pam(&[("sshd", &plain)], SUDOERS);
    let sshd = Sshd::start_with(
        &env,
        &["alice"],
        "KbdInteractiveAuthentication yes\nAuthenticationMethods keyboard-interactive\n",
    );
    let kbd = [
        "-o",
        "BatchMode=no",
        "-o",
        "PreferredAuthentications=keyboard-interactive",
    ];
    let ssh = |remote: &str| sshd.ssh_with(&env, "alice", &kbd, &[remote]);
    let id = id_of(&env.request("alice", "ssh", "30m", "kbd"));
    // Granted: the shell runs in the grant's cgroup.
    let run = env.run(ssh("cat /proc/self/cgroup"));
    assert!(
        run.code == 0 && run.stdout.contains(&format!("/grant-{id}")),
        "{run}{}",
        env.jitd_log_tail()
    );
    // Revoked between the account check (in sshd's child) and the session.
    env.set_pam_services(&[("sshd", &stack)]);
    let id = {
        env.jitctl("root", &["revoke", &id.to_string(), "--comment", "next"])
            .ok();
        id_of(&env.request("alice", "ssh", "30m", "kbd again"))
    };
    let ran = env.dir.path().join("ran");
    let login = Background::spawn(ssh(&format!("touch {}", ran.display())));
    revoke_while_stopped(&env, &pid_file, id);
    let run = login.finish(Duration::from_secs(10));
    assert_ne!(run.code, 0, "{run}");
    // Until jitd has killed the refused process's cgroup (its own answer
    // put the process there): nothing of the session can run after that.
    let refused = wait_for(Duration::from_secs(5), || {
        let left = env.session_cgroups();
        (!left.iter().any(|n| n.starts_with("refused-"))).then_some(())
    });
    assert!(
        refused.is_some(),
        "{:?}{}",
        env.session_cgroups(),
        env.jitd_log_tail()
    );
    assert!(!ran.exists(), "a refused session ran its command");
}

/// A pam_exec script that does what pam_systemd does to the PAM process:
/// moves it (its parent) into a fresh cgroup standing in for a logind
/// session scope, made in this test's cgroup. Returns the script and the
/// scope's name.
fn move_parent_to_scope(env: &Env) -> (PathBuf, &'static str) {
    let base = env.cgroup.as_ref().expect("cgroup v2");
    let scope = "session-1.scope";
    let script = env.write_script(
        "move-to-scope",
        &format!(
            "mkdir -p {dir} && echo $PPID > {dir}/cgroup.procs",
            dir = base.join(scope).display()
        ),
    );
    (script, scope)
}

/// pam_systemd runs in `common-session`, before pam_jit's session line
/// (the README's order, and pam-auth-update's): it moves the login into a
/// logind scope after the account check bound it to its grant. The
/// registration finds it there and moves it back: the shell runs in the
/// grant's cgroup, not in the scope.
#[test]
fn a_login_moved_by_a_session_module_before_pam_jit_runs_in_its_grant() {
    let env = Env::with_config(&config_with_ssh());
    let (mover, scope) = move_parent_to_scope(&env);
    let stack = insert_after(
        &sshd_stack(&env, "ssh"),
        "@include common-session",
        &exec_line("session", &mover),
    );
    assert!(
        stack.find("move-to-scope") < stack.find("session required"),
        "{stack}"
    );
    env.install_pam(&[("sshd", &stack)], SUDOERS);
    let sshd = Sshd::start(&env, &["alice"]);
    let id = id_of(&env.request("alice", "ssh", "30m", "after pam_systemd"));
    let run = env.run(sshd.ssh(&env, "alice", &["cat", "/proc/self/cgroup"]));
    assert!(
        run.code == 0 && run.stdout.contains(&format!("/grant-{id}\n")),
        "{run}{}",
        env.jitd_log_tail()
    );
    // The module did move it: the scope exists, emptied by the registration.
    let dir = env.cgroup.as_ref().expect("cgroup").join(scope);
    assert!(dir.join("cgroup.procs").exists(), "the mover never ran");
    let status = env.jitctl("sam", &["status"]).ok();
    assert!(!status.stdout.contains("pam_systemd"), "{status}");
}

/// A stack that runs pam_systemd after pam_jit's session line: the login
/// leaves its grant's cgroup after it registered. jitd names the stack in
/// `jitctl status`, puts the session back when it starts watching it, so a
/// child started later (here: one that ignores SIGHUP and outlives sudo)
/// is in the grant's cgroup, and the grant's end kills it.
#[test]
fn a_session_moved_out_after_registration_is_flagged_moved_back_and_ends_with_its_grant() {
    let env = Env::new();
    let (mover, scope) = move_parent_to_scope(&env);
    let stack = format!(
        "{}-session optional pam_systemd.so\n{}",
        sudo_stack(&env, "logs", "timeout=1s"),
        exec_line("session", &mover)
    );
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    let warnings = status_warnings(&env);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("/etc/pam.d/sudo:8: pam_systemd.so") && w.contains("for sudo")),
        "{warnings:#?}"
    );
    let id = id_of(&env.request("alice", "logs", "30m", "late mover"));
    let (mark, holder) = (marked_sleep(), marked_sleep());
    // In the mover's scope at first; after a second, a child that ignores
    // SIGHUP and is left behind when the script (and sudo) exit.
    let script = env.write_script(
        "detach-later",
        &format!(
            "grep -q {scope} /proc/self/cgroup && touch {moved}\n\
             sleep 1\n\
             (trap '' HUP; exec sleep {mark}) </dev/null >/dev/null 2>&1 &\n\
             exec sleep {holder}",
            moved = env.dir.path().join("moved").display()
        ),
    );
    let sudo = env.spawn_in_pty("alice", &format!("sudo -n {}", script.display()));
    let Some(left) = wait_for(Duration::from_secs(10), || {
        pids_of(&["sleep", &mark]).first().copied()
    }) else {
        panic!("sudo never ran its command:{}", sudo.stop());
    };
    assert!(
        env.dir.path().join("moved").exists(),
        "the mover did not move sudo"
    );
    let cgroup = std::fs::read_to_string(format!("/proc/{left}/cgroup")).unwrap_or_default();
    assert!(
        cgroup.contains(&format!("/grant-{id}\n")),
        "not moved back: {cgroup}{}",
        env.jitd_log_tail()
    );
    // sudo ends; the child it left runs on, until the grant ends.
    for pid in pids_of(&["sleep", &holder]) {
        // SAFETY: kill(2) on the test's own marked sleep.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let _ = sudo.finish(Duration::from_secs(5));
    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "moved"])
        .ok();
    assert!(
        wait_all_dead(&[left], Duration::from_secs(5)).is_some(),
        "a child of a session moved out of its grant's cgroup outlived the grant:{}",
        env.jitd_log_tail()
    );
}

/// README, "Recovery": the gate never stands between root and the host.
/// With jitd stopped, root's own sudo still works (root is exempt by
/// default), and a gated user is refused.
#[test]
fn root_keeps_its_way_in_while_jitd_is_down() {
    let mut env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s").replace(EXEMPT, "");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env.stop_jitd();
    env.sudo("root", &[], &["true"]).ok();
    let run = env.sudo("alice", &[], &["true"]);
    assert_ne!(run.code, 0, "{run}");
}

/// Without cgroup v2 nothing can be contained: jitd says so (status, log)
/// and refuses every session, rather than serve a weaker fallback.
#[test]
fn without_cgroup_v2_sessions_are_refused_with_a_reason() {
    // "# cgroup = none": jitd finds (no) cgroup2 itself, not the test's one.
    let mut env = Env::without_jitd(&format!("{TEST_CONFIG}\n# cgroup = none\n"));
    env.install_pam(
        &[("sudo", &sudo_stack(&env, "logs", "timeout=1s"))],
        SUDOERS,
    );
    env.ns_sh("awk '$9 == \"cgroup2\" { print $5 }' /proc/self/mountinfo | xargs -r -n1 umount -l");
    env.start_jitd();
    let status = env.jitctl("alice", &["status"]).ok();
    assert!(
        status
            .stdout
            .contains("WARNING: this host has no cgroup v2"),
        "{status}"
    );
    env.request("alice", "logs", "30m", "no cgroups");
    let run = refused_sudo(&env);
    assert!(run.stderr.contains("no cgroup v2"), "{run}");
}
