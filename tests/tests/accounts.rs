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

/// `jitctl reveal ID` as `user`, asserting success: the password.
#[track_caller]
fn reveal(env: &Env, user: &str, id: u64) -> String {
    let run = env.jitctl(user, &["reveal", &id.to_string()]).ok();
    run.stdout.trim().to_owned()
}

/// The audit events whose names start with `prefix`, as (event, detail).
fn events_like(env: &Env, prefix: &str) -> Vec<(String, Value)> {
    let run = env.sqlite(&format!(
        "SELECT event || '|' || detail FROM audit WHERE event LIKE '{prefix}%' ORDER BY id"
    ));
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(e, d)| (e.to_owned(), serde_json::from_str(d).expect("detail")))
        .collect()
}

/// The `account_*` audit events.
fn account_events(env: &Env) -> Vec<(String, Value)> {
    events_like(env, "account_")
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
    let started = env.stall_tool("/usr/sbin/chpasswd", 5);
    env.spawn_jitd();
    env.wait_started(&started);
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

/// `jitdba` checked out by grants of `dba`, one holder at a time, its
/// password shown to the holder.
fn checkout_config() -> String {
    format!(
        "{TEST_CONFIG}\n\
         [[resource]]\nname = \"dba\"\nprivileged = true\nsensitivity = \"high\"\n\
         eligible = [\"group:admins\"]\n\n\
         [[account]]\nname = \"{ACCOUNT}\"\nresource = \"dba\"\nreveal = true\n"
    )
}

/// jitd serving [`checkout_config`], `jitdba` in its custody.
fn env_in_custody() -> Env {
    let mut env = env_with_account();
    env.write_config(&checkout_config());
    env.start_jitd();
    wait_custody(&env, "held");
    env
}

/// Waits until `jitdba`'s row says `state`.
#[track_caller]
fn wait_custody(env: &Env, state: &str) {
    let found = wait_for(Duration::from_secs(20), || {
        let row = env.sqlite(&format!(
            "SELECT state FROM accounts WHERE name = '{ACCOUNT}'"
        ));
        (row.stdout.trim() == state).then_some(())
    });
    if found.is_none() {
        panic!(
            "{ACCOUNT} never became {state}: {:?}{}",
            account_events(env),
            env.jitd_log_tail()
        );
    }
}

/// A grant of `dba` to `user`, approved by whoever its route asks for.
#[track_caller]
fn grant_dba(env: &Env, user: &str) -> u64 {
    let id = id_of(&env.request(user, "dba", "30m", "replica lag on db-3"));
    for approver in ["mike", "sam"] {
        if state_of(&env.show("root", id)) == "pending" {
            env.approve(approver, id).ok();
        }
    }
    env.wait_state(id, "active", Duration::from_secs(5));
    id
}

/// `su ACCOUNT -c id` as `user`, the password on su's standard input
/// (pam_unix reads it there without a terminal).
fn su_works(env: &Env, user: &str, password: &str) -> bool {
    let out = env.ns_sh(&format!(
        "printf '%s\\n' '{password}' | runuser -u {user} -- su {ACCOUNT} -c 'id -un' 2>/dev/null || true"
    ));
    out.stdout.trim() == ACCOUNT
}

/// Files and process details the password must never be in.
fn assert_nowhere(env: &Env, password: &str) {
    let mut places = vec![env.log_path.clone()];
    for entry in std::fs::read_dir(&env.state_dir).expect("state dir") {
        places.push(entry.expect("entry").path());
    }
    for place in &places {
        let bytes = std::fs::read(place).unwrap_or_default();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "the password is in {}",
            place.display()
        );
    }
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let dir = entry.expect("entry").path();
        for file in ["cmdline", "environ"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "the password is in {}/{file}",
                dir.display()
            );
        }
    }
}

#[test]
fn a_checked_out_password_works_for_its_holder_during_the_grant_and_never_after_check_in() {
    let env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let field = env.shadow_field(ACCOUNT);
    assert!(field.starts_with('$'), "unlocked with a hash: {field:.3}");

    // Only the holder, and not from a recorded session.
    env.jitctl("bob", &["reveal", &id.to_string()]).fails();
    let password = reveal(&env, "alice", id);
    assert_eq!(password.len(), 32, "the default policy's length");
    assert!(
        su_works(&env, "alice", &password),
        "su with the revealed password"
    );
    assert!(!su_works(&env, "bob", KNOWN));
    let revealed: Vec<Value> = env
        .audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"] == "account_revealed")
        .collect();
    assert_eq!(revealed.len(), 1, "{revealed:?}");
    assert_eq!(revealed[0]["actor"], "alice");
    assert_nowhere(&env, &password);

    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    wait_custody(&env, "held");
    assert!(env.shadow_field(ACCOUNT).starts_with("!$"));
    assert!(!env.password_opens(ACCOUNT, &password));
    assert!(!su_works(&env, "alice", &password), "su after check-in");
    assert_eq!(state_of(&env.show("root", id)), "revoked");
    let events: Vec<String> = env
        .audit_events_for(id)
        .into_iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("account_"))
        .collect();
    assert_eq!(
        events,
        [
            "account_checkout_started",
            "account_checked_out",
            "account_revealed",
            "account_rotation_started",
            "account_rotated",
        ],
        "{}",
        env.jitd_log_tail()
    );
    env.jitctl("alice", &["reveal", &id.to_string()]).fails();
    assert_nowhere(&env, &password);
}

#[test]
fn an_exclusive_account_is_refused_to_a_second_holder_naming_the_first_until_check_in() {
    let env = env_in_custody();
    let first = grant_dba(&env, "alice");
    let refused = env
        .jitctl(
            "bob",
            &["request", "dba", "--for", "10m", "--reason", "also me"],
        )
        .fails();
    refused.assert_clean_error();
    assert!(
        refused.stderr.contains(&format!(
            "account '{ACCOUNT}' is checked out by alice (grant {first}) until "
        )),
        "{refused}"
    );
    // Asked before alice's grant started, approved after: still one holder.
    env.jitctl("alice", &["checkin", &first.to_string()]).ok();
    wait_custody(&env, "held");
    let waiting = id_of(&env.request("bob", "dba", "10m", "after alice"));
    let second = grant_dba(&env, "alice");
    for approver in ["mike", "sam"] {
        let run = env.approve(approver, waiting);
        if run.code != 0 {
            assert!(run.stderr.contains("checked out by alice"), "{run}");
        }
    }
    assert_eq!(state_of(&env.show("root", waiting)), "pending");
    env.jitctl("alice", &["checkin", &second.to_string()]).ok();
    wait_custody(&env, "held");
    env.approve("sam", waiting).ok();
    env.wait_state(waiting, "active", Duration::from_secs(5));
    wait_custody(&env, "checked_out");
}

#[test]
fn a_password_is_never_revealed_inside_an_elevated_session() {
    let env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let base = env.cgroup.clone().expect("cgroup v2");
    let grant_dir = base.join(format!("grant-{id}"));
    std::fs::create_dir_all(&grant_dir).expect("grant cgroup");
    let mut cmd = env.ns_command("sh");
    cmd.arg("-c").arg(format!(
        "echo $$ > {}/cgroup.procs && exec runuser -u alice -- env DBUS_SYSTEM_BUS_ADDRESS={} {} reveal {id}",
        grant_dir.display(),
        env.address(),
        jitctl_bin().display()
    ));
    let inside = env.run(cmd);
    assert_ne!(inside.code, 0, "{inside}");
    assert!(
        inside
            .stderr
            .contains("never shown inside an elevated session"),
        "{inside}"
    );
    assert!(inside.stdout.trim().is_empty(), "{inside}");
}

/// Killed while checking in (the new locked password not yet written):
/// the next start locks the account with a new password, and the one the
/// holder saw opens nothing.
#[test]
fn a_jitd_killed_during_check_in_leaves_no_checked_out_password_after_restart() {
    let mut env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    let started = env.stall_tool("/usr/sbin/chpasswd", 5);
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    env.wait_started(&started);
    wait_custody(&env, "rotating");
    env.kill_jitd();
    env.ns_sh("umount -l /usr/sbin/chpasswd");
    assert!(
        env.password_opens(ACCOUNT, &password),
        "as the kill left it"
    );

    env.start_jitd();
    wait_custody(&env, "held");
    assert!(env.shadow_field(ACCOUNT).starts_with("!$"));
    assert!(!su_works(&env, "alice", &password));
    assert_rotated_because(&env, "interrupted");
}

/// Killed while checking out: the account is locked again at start, then
/// checked out anew for the grant that still holds it.
#[test]
fn a_jitd_killed_during_checkout_locks_then_checks_out_again_at_start() {
    let mut env = env_in_custody();
    let started = env.stall_tool("/usr/sbin/chpasswd", 5);
    let id = grant_dba(&env, "alice");
    env.wait_started(&started);
    wait_custody(&env, "checking_out");
    // Active, but not yet holding the account: `jitctl shell --as` waits.
    let account = serde_json::json!({"name": ACCOUNT, "checked_out": false});
    assert_eq!(env.show("alice", id)["account"], account);
    env.kill_jitd();
    env.ns_sh("umount -l /usr/sbin/chpasswd");

    env.start_jitd();
    wait_custody(&env, "checked_out");
    let account = serde_json::json!({"name": ACCOUNT, "checked_out": true});
    assert_eq!(env.show("alice", id)["account"], account);
    let password = reveal(&env, "alice", id);
    assert!(su_works(&env, "alice", &password));
    let reasons: Vec<String> = account_events(&env)
        .into_iter()
        .filter(|(e, _)| e == "account_rotated")
        .filter_map(|(_, d)| d["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons, ["adopted", "interrupted"]);
}

/// A check-in whose rotation fails is escalated to security once, retried,
/// and done when `chpasswd` works again; the grant's password never stays
/// valid without an alert.
#[test]
fn a_failed_check_in_is_escalated_and_retried_until_the_password_is_rotated() {
    let env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    let broken = env.write_script(
        "broken-chpasswd",
        "echo 'cannot lock /etc/shadow' >&2\nexit 1",
    );
    env.bind(&broken, "/usr/sbin/chpasswd");
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    let failed = wait_for(Duration::from_secs(10), || {
        account_events(&env)
            .into_iter()
            .find(|(e, _)| e == "account_rotation_failed")
    });
    let (_, detail) = failed.unwrap_or_else(|| panic!("no failure audited{}", env.jitd_log_tail()));
    assert_eq!(detail["reason"], "checkin");
    assert!(
        detail["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot lock /etc/shadow"),
        "{detail}"
    );
    // Not free for the next holder while the last one's password stands.
    let refused = env
        .jitctl(
            "bob",
            &["request", "dba", "--for", "10m", "--reason", "next"],
        )
        .fails();
    assert!(refused.stderr.contains("is being checked in"), "{refused}");
    env.ns_sh("umount -l /usr/sbin/chpasswd");
    // The first retry comes 5 s after the failure.
    wait_custody(&env, "held");
    assert!(!env.password_opens(ACCOUNT, &password));
    let failures = account_events(&env)
        .into_iter()
        .filter(|(e, _)| e == "account_rotation_failed")
        .count();
    assert_eq!(failures, 1, "one alert for the streak");
}

/// A user's setuid-root program (here: real uid alice, effective uid 0,
/// as `passwd` runs) stopped while it holds shadow-utils' lock on
/// `/etc/shadow`: jitd ends it at check-in rather than let the password
/// alice saw stay valid, and audits whom it ended.
#[test]
fn a_users_stopped_program_holding_the_account_files_cannot_keep_a_password_valid() {
    let env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    let alice = uid("alice");
    let mut cmd = env.ns_command("sh");
    cmd.arg("-c").arg(format!(
        "python3 -c 'import os, signal\n\
         os.setresuid({alice}, 0, 0)\n\
         open(\"/etc/shadow.lock\", \"w\").write(str(os.getpid()))\n\
         os.kill(os.getpid(), signal.SIGSTOP)'; true"
    ));
    let holder = Background::spawn(cmd);
    let locked = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(env.ns_path("/etc/shadow.lock")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.contains("State:\tT").then_some(pid)
    });
    let pid = locked.unwrap_or_else(|| panic!("the lock holder never stopped"));

    check_in_past_the_holder(&env, id, holder, pid, &password);
}

/// Checks grant `id` in while lock holder `pid` (alice's stopped setuid
/// python3, run by `holder`) blocks shadow-utils: jitd ends it, audits
/// whom it ended, and rotates the password all the same.
#[track_caller]
fn check_in_past_the_holder(env: &Env, id: u64, holder: Background, pid: u32, password: &str) {
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    wait_custody(env, "held");
    holder.finish(Duration::from_secs(10));
    assert!(!alive(pid), "the lock holder still runs");
    assert!(!env.password_opens(ACCOUNT, password));
    let ended: Vec<Value> = account_events(env)
        .into_iter()
        .filter(|(e, _)| e == "account_lock_holder_killed")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["pid"], pid);
    assert_eq!(ended[0]["uid"], uid("alice"));
    assert_eq!(ended[0]["command"], "python3");
}

/// jitd serving [`checkout_config`] with `jitdba` in custody, and `su`
/// gating logins as `jitdba` through pam_jit (`targets=`).
fn env_with_gated_su() -> Env {
    let env = env_with_account();
    env.add_local_account("jitother", KNOWN);
    let jit = format!("{} targets={ACCOUNT}", env.jit_args("dba"));
    let su = format!(
        "auth sufficient pam_rootok.so\n\
         auth required pam_unix.so\n\
         account required {jit}\n\
         account required pam_unix.so\n\
         session required pam_unix.so\n\
         session required {jit}\n"
    );
    env.install_pam_d(&[("su", &su)]);
    let mut env = env;
    env.write_config(&checkout_config());
    env.start_jitd();
    wait_custody(&env, "held");
    env
}

/// Logins as the account made with a revealed password are the grant's:
/// only its holder gets in, they run in the grant's cgroup, and they end
/// with it; a login as the account itself (the console: pamtester as
/// root, no PAM_RUSER) is let in only while the account is checked out.
#[test]
fn logins_as_a_checked_out_account_are_gated_bound_to_the_grant_and_end_with_it() {
    let env = env_with_gated_su();
    assert_ne!(
        env.pamtester("su", ACCOUNT, &["acct_mgmt"]).code,
        0,
        "a login as the account before any checkout"
    );
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    assert!(su_works(&env, "alice", &password), "the holder's su");
    assert!(
        !su_works(&env, "bob", &password),
        "someone told the password, without a grant"
    );
    let console = env.pamtester("su", ACCOUNT, &["acct_mgmt"]);
    assert_eq!(console.code, 0, "the account's own login{console}");

    let mark = marked_sleep();
    let mut cmd = env.ns_command("sh");
    cmd.arg("-c").arg(format!(
        "printf '%s\\n' '{password}' | runuser -u alice -- su {ACCOUNT} -c 'sleep {mark}'"
    ));
    let session = Background::spawn(cmd);
    let pids = wait_for(Duration::from_secs(10), || {
        let pids = pids_of(&["sleep", &mark]);
        (!pids.is_empty()).then_some(pids)
    })
    .unwrap_or_else(|| panic!("the su session never started{}", env.jitd_log_tail()));
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pids[0])).unwrap_or_default();
    assert!(cgroup.contains(&format!("/grant-{id}")), "{cgroup}");

    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    let ended = wait_for(Duration::from_secs(10), || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(ended.is_some(), "the su session outlived the grant");
    session.finish(Duration::from_secs(10));
    wait_custody(&env, "held");
    assert_ne!(
        env.pamtester("su", ACCOUNT, &["acct_mgmt"]).code,
        0,
        "a login as the account after check-in"
    );
    // Logins as other accounts are not this line's business.
    let other = env.pamtester("su", "jitother", &["acct_mgmt"]);
    assert_eq!(other.code, 0, "{other}");
}

/// A user's setuid-root program stopped while it holds glibc's `lckpwdf`
/// (an fcntl lock on `/etc/.pwd.lock`, what pam_unix takes when a user
/// runs `passwd`): jitd, under the unit's `/proc` which hides
/// `/proc/locks`, still finds and ends it at check-in.
#[test]
fn a_users_stopped_program_holding_lckpwdf_is_ended_under_the_units_proc() {
    let mut env = env_with_account();
    env.write_config(&checkout_config());
    env.run_jitd_as_the_unit();
    env.start_jitd();
    wait_custody(&env, "held");
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    let alice = uid("alice");
    let pid_file = env.dir.path().join("holder.pid");
    let mut cmd = env.ns_command("python3");
    cmd.arg("-c").arg(format!(
        "import fcntl, os, signal\n\
         os.setresuid({alice}, 0, 0)\n\
         f = open('/etc/.pwd.lock', 'w')\n\
         fcntl.lockf(f, fcntl.LOCK_EX)\n\
         open('{}', 'w').write(str(os.getpid()))\n\
         os.kill(os.getpid(), signal.SIGSTOP)",
        pid_file.display()
    ));
    let holder = Background::spawn(cmd);
    let pid = wait_for(Duration::from_secs(10), || {
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.contains("State:\tT").then_some(pid)
    })
    .unwrap_or_else(|| panic!("the lock holder never stopped"));

    check_in_past_the_holder(&env, id, holder, pid, &password);
}

/// jitd with no more capabilities than its unit gives it, and the unit's
/// `/proc`, takes custody, checks out and checks in (systemd is not PID 1
/// here: the bounding set is applied by setpriv, and the unit's read-only view of the system,
/// `ProtectSystem=strict` with `/etc` writable, is not reproduced).
#[test]
fn jitd_with_only_the_units_capabilities_checks_accounts_out_and_in() {
    let mut env = env_with_account();
    env.write_config(&checkout_config());
    env.run_jitd_as_the_unit();
    env.start_jitd();
    let status = std::fs::read_to_string(format!("/proc/{}/status", env.jitd_pid().expect("pid")))
        .expect("status");
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|b| u64::from_str_radix(b.trim(), 16).expect("hex"));
    // CAP_CHOWN (0), CAP_DAC_READ_SEARCH (2), CAP_KILL (5), CAP_SETGID (6),
    // CAP_SETUID (7) and CAP_NET_ADMIN (12) only.
    let unit = (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 12);
    assert_eq!(bounding, Some(unit), "{status}");
    wait_custody(&env, "held");
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    assert!(su_works(&env, "alice", &password));
    // The grant's start snapshot (taken on the keeper's thread, after the
    // checkout) reads every place it watches.
    let truncated = wait_for(Duration::from_secs(10), || {
        let row = env.sqlite(&format!(
            "SELECT json_extract(snapshot, '$.truncated') FROM snapshots WHERE grant_id = {id}"
        ));
        let value = row.stdout.trim().to_owned();
        (!value.is_empty()).then_some(value)
    });
    assert_eq!(
        truncated.as_deref(),
        Some("0"),
        "an incomplete or missing snapshot{}",
        env.jitd_log_tail()
    );
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    wait_custody(&env, "held");
    assert!(!env.password_opens(ACCOUNT, &password));
    let shadow = env.ns_sh("stat -c %G /etc/shadow").stdout;
    assert_eq!(
        shadow.trim(),
        "shadow",
        "chpasswd gave /etc/shadow back to its group"
    );
}

const GROUP: &str = "jitdocker";

/// `containers`: auto-approved, its grants make their holders members of
/// `jitdocker` while they last.
fn groups_config() -> String {
    format!(
        "{TEST_CONFIG}\n\
         [[resource]]\nname = \"containers\"\nsensitivity = \"low\"\nenvironment = \"staging\"\n\
         eligible = [\"group:admins\"]\ngroups = [\"{GROUP}\"]\n"
    )
}

/// The namespace's own `/etc` with group `jitdocker` (gid `gid`), of
/// which bob is a standing member; jitd not started. Each test takes a gid
/// of its own: the fixture users' uids are the same in every test, and
/// /proc is the host's, so a removal in one test would otherwise end the
/// processes of another's.
fn env_with_group(gid: u32) -> Env {
    let env = Env::without_jitd(&groups_config());
    env.private_system_dirs();
    env.ns_sh(&format!(
        "groupadd -g {gid} {GROUP} && gpasswd -a bob {GROUP}"
    ));
    env
}

fn members(env: &Env) -> Vec<String> {
    let line = env.ns_sh(&format!("getent group {GROUP}")).stdout;
    let members = line.trim().rsplit(':').next().unwrap_or_default();
    let mut out: Vec<String> = members
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

#[track_caller]
fn wait_members(env: &Env, want: &[&str]) {
    let found = wait_for(Duration::from_secs(10), || {
        (members(env) == want).then_some(())
    });
    if found.is_none() {
        panic!(
            "members of {GROUP}: {:?}, not {want:?}{}",
            members(env),
            env.jitd_log_tail()
        );
    }
}

fn membership_events(env: &Env) -> Vec<(String, Value)> {
    events_like(env, "group_")
}

#[test]
fn a_grants_group_membership_lasts_as_long_as_the_grant_and_a_standing_one_is_never_touched() {
    let mut env = env_with_group(64101);
    env.start_jitd();
    let alice = id_of(&env.request("alice", "containers", "30m", "debug a container"));
    wait_members(&env, &["alice", "bob"]);
    // A login during the grant picks the group up, and would keep it.
    let (alice_mark, bob_mark) = (marked_sleep(), marked_sleep());
    let logins: Vec<Background> = [("alice", &alice_mark), ("bob", &bob_mark)]
        .into_iter()
        .map(|(user, mark)| {
            let mut cmd = env.ns_command("runuser");
            cmd.args(["-u", user, "--", "sleep", mark]);
            Background::spawn(cmd)
        })
        .collect();
    let login_pid = |mark: &str| {
        wait_for(Duration::from_secs(10), || {
            pids_of(&["sleep", mark]).first().copied()
        })
        .expect("the login's process")
    };
    let (alice_login, bob_login) = (login_pid(&alice_mark), login_pid(&bob_mark));
    let groups = std::fs::read_to_string(format!("/proc/{alice_login}/status")).expect("status");
    let gid = env
        .ns_sh(&format!("getent group {GROUP} | cut -d: -f3"))
        .stdout;
    assert!(
        groups
            .lines()
            .any(|l| l.starts_with("Groups:") && l.split_whitespace().any(|g| g == gid.trim())),
        "{groups}"
    );
    let bob = id_of(&env.request("bob", "containers", "30m", "same"));
    env.wait_state(bob, "active", Duration::from_secs(5));
    env.jitctl("alice", &["revoke", &alice.to_string()]).ok();
    wait_members(&env, &["bob"]);
    let gone = wait_for(Duration::from_secs(5), || {
        (!alive(alice_login)).then_some(())
    });
    assert!(
        gone.is_some(),
        "alice's login kept the group after her grant"
    );
    env.jitctl("bob", &["revoke", &bob.to_string()]).ok();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(members(&env), ["bob"], "bob's standing membership");
    assert!(
        alive(bob_login),
        "bob's standing membership's login was ended"
    );
    drop(logins);
    let events: Vec<(String, String)> = membership_events(&env)
        .into_iter()
        .map(|(e, d)| (e, d["user"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let want: Vec<(String, String)> = [
        "group_member_adding",
        "group_member_added",
        "group_member_removing",
        "group_member_removed",
    ]
    .iter()
    .map(|e| ((*e).to_owned(), "alice".to_owned()))
    .collect();
    assert_eq!(events, want);
}

/// A grant that ended while jitd was down loses its membership before
/// jitd serves; a jitd killed while `gpasswd` ran does the change again.
#[test]
fn memberships_survive_a_kill_and_end_with_grants_that_ended_while_jitd_was_down() {
    let mut env = env_with_group(64102);
    let started = env.stall_tool("/usr/bin/gpasswd", 5);
    env.start_jitd();
    let id = id_of(&env.request("alice", "containers", "3s", "short"));
    env.wait_started(&started);
    let row = env.sqlite("SELECT state FROM memberships WHERE user = 'alice'");
    assert_eq!(row.stdout.trim(), "adding");
    env.kill_jitd();
    env.ns_sh("umount -l /usr/bin/gpasswd");
    assert_eq!(members(&env), ["bob"], "as the kill left it");

    // Back before the grant ends: the add is done again.
    env.start_jitd();
    wait_members(&env, &["alice", "bob"]);
    env.stop_jitd();
    // The grant ends while jitd is down: removed before jitd serves.
    let expired = wait_for(Duration::from_secs(10), || {
        let until = env.sqlite(&format!("SELECT expires_at FROM requests WHERE id = {id}"));
        let until: i64 = until.stdout.trim().parse().ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs() as i64;
        (now > until).then_some(())
    });
    assert!(expired.is_some());
    env.start_jitd();
    assert_eq!(members(&env), ["bob"], "removed before jitd served");
    assert_eq!(state_of(&env.show("root", id)), "expired");
}

/// An account the admin takes out of the config while it is checked out
/// keeps no password its holder saw: locked once at the next start, then
/// the admin's again.
#[test]
fn an_account_taken_out_of_the_config_while_checked_out_is_locked_once_then_left_alone() {
    let mut env = env_in_custody();
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    let password = reveal(&env, "alice", id);
    env.stop_jitd();
    let unmanaged = checkout_config().replace(
        &format!("[[account]]\nname = \"{ACCOUNT}\"\nresource = \"dba\"\nreveal = true\n"),
        "",
    );
    assert_ne!(unmanaged, checkout_config());
    env.write_config(&unmanaged);
    env.start_jitd();
    assert!(env.shadow_field(ACCOUNT).starts_with("!$"));
    assert!(!env.password_opens(ACCOUNT, &password));
    assert_rotated_because(&env, "unmanaged");

    env.ns_sh(&format!("printf '%s:%s\\n' {ACCOUNT} '{KNOWN}' | chpasswd"));
    env.stop_jitd();
    env.start_jitd();
    assert!(
        env.password_opens(ACCOUNT, KNOWN),
        "the admin's password, left alone"
    );
}

/// root managed (`root_custody`): between grants its password is an
/// escrowed recovery password, written once to a root-only file, that
/// still opens root when jitd is down (sulogin refuses a locked root).
#[test]
fn root_in_custody_holds_an_escrowed_recovery_password_between_grants() {
    let mut env = Env::without_jitd(&format!(
        "{TEST_CONFIG}\n\
         [[resource]]\nname = \"rootacct\"\nprivileged = true\nsensitivity = \"high\"\n\
         eligible = [\"group:admins\"]\nbreak_glass = [\"group:admins\"]\n\n\
         [[account]]\nname = \"root\"\nresource = \"rootacct\"\nreveal = true\nroot_custody = true\n"
    ));
    env.private_system_dirs();
    env.start_jitd();
    let file = env.state_dir.join("root-recovery.txt");
    let recovery = |file: &std::path::Path| {
        let text = std::fs::read_to_string(file).expect("the recovery file");
        text.lines().last().unwrap_or_default().to_owned()
    };
    let escrow = recovery(&file);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    assert!(
        !env.shadow_field("root").starts_with('!'),
        "sulogin must accept it"
    );
    assert!(env.password_opens("root", &escrow));

    let id = id_of(&env.request("alice", "rootacct", "30m", "kernel upgrade"));
    for approver in ["mike", "sam"] {
        if state_of(&env.show("root", id)) == "pending" {
            env.approve(approver, id).ok();
        }
    }
    env.wait_state(id, "active", Duration::from_secs(5));
    let checked_out = wait_for(Duration::from_secs(10), || {
        let row = env.sqlite("SELECT state FROM accounts WHERE name = 'root'");
        (row.stdout.trim() == "checked_out").then_some(())
    });
    assert!(checked_out.is_some(), "{}", env.jitd_log_tail());
    let password = reveal(&env, "alice", id);
    assert!(env.password_opens("root", &password));
    assert!(
        !env.password_opens("root", &escrow),
        "the escrow during a grant"
    );
    // The file was on the host when the grant started: its holder could
    // read it, and deleting it does not hide that. It is on record from
    // the activation's own transaction (right after `granted`), before the
    // grant could be used: not from a snapshot a quick holder could beat.
    let events = env.sqlite(&format!(
        "SELECT event FROM audit WHERE request = {id} AND event IN \
         ('granted', 'recovery_password_exposed') ORDER BY id"
    ));
    assert_eq!(
        events.stdout.split_whitespace().collect::<Vec<_>>(),
        ["granted", "recovery_password_exposed"],
        "{}",
        env.jitd_log_tail()
    );
    let granted_then_exposed = env.sqlite(&format!(
        "SELECT b.id - a.id FROM audit a, audit b WHERE a.request = {id} AND b.request = {id} \
         AND a.event = 'granted' AND b.event = 'recovery_password_exposed'"
    ));
    assert_eq!(granted_then_exposed.stdout.trim(), "1");
    std::fs::remove_file(&file).expect("the holder deletes the file");
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    // Once the grant's sessions are gone, a new recovery password; until
    // then root is locked, never left with one a holder saw.
    let exposed = wait_for(Duration::from_secs(15), || {
        let text = std::fs::read_to_string(&file).ok()?;
        text.lines().last().map(str::to_owned)
    })
    .unwrap_or_else(|| {
        panic!(
            "the exposed recovery password stayed{}",
            env.jitd_log_tail()
        )
    });
    assert_ne!(exposed, escrow);
    assert!(env.password_opens("root", &exposed));
    assert!(!env.password_opens("root", &escrow));
    assert!(!env.password_opens("root", &password));

    // Stored offline and deleted before the next grant: nothing is
    // exposed, and the check-in writes the same one back.
    std::fs::remove_file(&file).expect("the admin deleted the file");
    let id = id_of(&env.jitctl_json(
        "alice",
        &[
            "break-glass",
            "rootacct",
            "--reason",
            "again",
            "--for",
            "30m",
            "--json",
        ],
    ));
    let taken = wait_for(Duration::from_secs(10), || {
        let n = env.sqlite(&format!(
            "SELECT count(*) FROM snapshots WHERE grant_id = {id}"
        ));
        (n.stdout.trim() == "1").then_some(())
    });
    assert!(taken.is_some(), "{}", env.jitd_log_tail());
    env.jitctl("alice", &["checkin", &id.to_string()]).ok();
    let restored = wait_for(Duration::from_secs(10), || {
        env.password_opens("root", &exposed).then_some(())
    });
    assert!(restored.is_some(), "{}", env.jitd_log_tail());
    std::thread::sleep(Duration::from_secs(3));
    assert!(!file.exists(), "a deleted recovery file came back");
    assert!(env.password_opens("root", &exposed));
    let escrow = exposed;

    // Used, and replaced by hand: jitd takes root back with a new one.
    env.ns_sh("printf 'root:%s\\n' 'Set-By-Hand-After-Recovery-1' | chpasswd");
    env.stop_jitd();
    env.start_jitd();
    let renewed = recovery(&file);
    assert_ne!(renewed, escrow);
    assert!(env.password_opens("root", &renewed));
    assert!(!env.password_opens("root", "Set-By-Hand-After-Recovery-1"));
    let escrowed =
        env.sqlite("SELECT count(*) FROM audit WHERE event = 'recovery_password_escrowed'");
    assert_eq!(escrowed.stdout.trim(), "3", "adopted, exposed, changed");
    let log = std::fs::read_to_string(&env.log_path).unwrap_or_default();
    assert!(
        !log.contains(&renewed) && !log.contains(&escrow),
        "a recovery password in the log"
    );

    // Security takes it off the host without a root-capable grant (which
    // would expose it again): printed once, the file deleted, audited.
    env.jitctl("alice", &["recovery", "take"]).code(3);
    assert!(file.exists());
    let taken = env.jitctl("sam", &["recovery", "take"]).ok();
    assert!(taken.stdout.contains(&renewed), "{taken}");
    assert!(!file.exists(), "the taken file is still on the host");
    env.jitctl("sam", &["recovery", "take"]).code(4);
    assert!(env.password_opens("root", &renewed));
    let took = env.sqlite("SELECT actor FROM audit WHERE event = 'recovery_password_taken'");
    assert_eq!(took.stdout.trim(), "sam");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!file.exists(), "taking it caused a renewal");
}

/// One membership that cannot be added (its group is not in /etc/group)
/// is audited and retried on its own: it holds up no removal. And once no
/// resource grants groups any more, what jitd added is removed at start.
#[test]
fn a_failing_membership_holds_up_no_other_and_config_changes_do_not_strand_one() {
    let config = format!(
        "{}\n[[resource]]\nname = \"broken\"\nsensitivity = \"low\"\nenvironment = \"staging\"\n\
         eligible = [\"group:admins\"]\ngroups = [\"jitnosuchgroup\"]\n",
        groups_config()
    );
    let mut env = Env::without_jitd(&config);
    env.private_system_dirs();
    env.ns_sh(&format!("groupadd -g 64103 {GROUP}"));
    env.start_jitd();
    let bob = id_of(&env.request("bob", "broken", "30m", "nothing to add to"));
    let failed = wait_for(Duration::from_secs(10), || {
        membership_events(&env)
            .into_iter()
            .find(|(e, d)| e == "group_membership_failed" && d["group"] == "jitnosuchgroup")
    });
    assert!(failed.is_some(), "{:?}", membership_events(&env));
    let alice = id_of(&env.request("alice", "containers", "30m", "debug"));
    wait_members(&env, &["alice"]);
    env.jitctl("alice", &["revoke", &alice.to_string()]).ok();
    wait_members(&env, &[]);
    env.jitctl("bob", &["revoke", &bob.to_string()]).ok();

    // Added, then the admin takes `groups` out of the config: removed at start.
    env.request("alice", "containers", "30m", "again");
    wait_members(&env, &["alice"]);
    env.stop_jitd();
    env.write_config(TEST_CONFIG);
    env.start_jitd();
    assert_eq!(members(&env), Vec::<String>::new(), "left in the group");
    let rows = env.sqlite("SELECT count(*) FROM memberships").stdout;
    assert_eq!(rows.trim(), "0", "{:?}", membership_events(&env));
}

/// `hostops`: privileged, taken by break-glass (no approver needed).
fn hostops_config() -> String {
    format!(
        "{TEST_CONFIG}\n\
         [[resource]]\nname = \"hostops\"\nprivileged = true\nsensitivity = \"high\"\n\
         eligible = [\"group:admins\"]\nbreak_glass = [\"group:admins\"]\n"
    )
}

/// A break-glass grant of `hostops` to alice, once its start snapshot is in.
fn snapshotted_grant(env: &Env) -> u64 {
    let grant = env.jitctl_json(
        "alice",
        &[
            "break-glass",
            "hostops",
            "--reason",
            "host work",
            "--for",
            "30m",
            "--json",
        ],
    );
    let id = id_of(&grant);
    let taken = wait_for(Duration::from_secs(30), || {
        let n = env.sqlite(&format!(
            "SELECT count(*) FROM snapshots WHERE grant_id = {id}"
        ));
        (n.stdout.trim() == "1").then_some(())
    });
    assert!(taken.is_some(), "no start snapshot{}", env.jitd_log_tail());
    id
}

/// Revokes the grant and waits for its changes (`jitctl show --json`).
fn changes_after_revoke(env: &Env, id: u64) -> Value {
    env.jitctl("alice", &["revoke", &id.to_string()]).ok();
    wait_for(Duration::from_secs(30), || {
        let doc = env.show("root", id);
        (!doc["changes"].is_null()).then(|| doc["changes"].clone())
    })
    .unwrap_or_else(|| panic!("no changes for grant {id}{}", env.jitd_log_tail()))
}

/// The pid of the process of `uid` whose command line is `words`.
fn pid_running(uid: u32, words: &[&str]) -> Option<u32> {
    let want = words.join("\0") + "\0";
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let real = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
        let real: u32 = real.split_whitespace().next()?.parse().ok()?;
        (real == uid && cmdline == want.as_bytes()).then_some(pid)
    })
}

/// `sleep SECS` as `account`, started by root outside any session (as
/// atd or cron start a job), until dropped; and its pid.
fn sleeping_as(env: &Env, account: &str, secs: &str) -> (Background, u32) {
    let mut cmd = env.ns_command("setpriv");
    cmd.args([
        &format!("--reuid={account}"),
        &format!("--regid={account}"),
        "--clear-groups",
        "sleep",
        secs,
    ]);
    let sleeper = Background::spawn(cmd);
    let uid: u32 = env
        .ns_sh(&format!("id -u {account}"))
        .stdout
        .trim()
        .parse()
        .expect("uid");
    let pid = wait_for(Duration::from_secs(10), || {
        pid_running(uid, &["sleep", secs])
    })
    .unwrap_or_else(|| panic!("sleep {secs} as {account} never started"));
    (sleeper, pid)
}

/// A process started as the checked-out account during the grant, outside
/// its sessions (what `at now` leaves), is reported with the grant's
/// changes; the account's own process from before the checkout is not.
#[test]
fn processes_left_running_as_the_account_are_reported_with_the_grant() {
    let env = env_in_custody();
    let (_own, own) = sleeping_as(&env, ACCOUNT, "3001");
    // Checkout times are whole seconds, taken a second early.
    std::thread::sleep(Duration::from_millis(2500));
    let id = grant_dba(&env, "alice");
    wait_custody(&env, "checked_out");
    std::thread::sleep(Duration::from_millis(1100));
    let (_left, left) = sleeping_as(&env, ACCOUNT, "3002");
    let changes = changes_after_revoke(&env, id);
    let found: Vec<(&str, &str)> = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| Some((c["kind"].as_str()?, c["path"].as_str()?)))
        .collect();
    // jitd's own rotation of the account's password is not a change.
    assert_eq!(
        found,
        [(
            "process",
            format!("process:{left}:sleep as {ACCOUNT}").as_str()
        )],
        "not the account's own process {own}: {changes:#}"
    );
    assert!(alive(left), "reported, not ended");
    let told = env.sqlite(&format!(
        "SELECT count(*) FROM audit WHERE event = 'host_changed' AND request = {id}"
    ));
    assert_eq!(told.stdout.trim(), "1");
}

/// Each kind of persistence planted during a privileged grant is reported
/// at its end (`jitctl show`, the audit trail, security told); a grant
/// that changed nothing reports nothing, and not "truncated".
#[test]
fn persistence_planted_during_a_grant_is_reported_at_its_end() {
    let mut env = Env::without_jitd(&hostops_config());
    env.private_system_dirs();
    env.start_jitd();
    let quiet = snapshotted_grant(&env);
    let changes = changes_after_revoke(&env, quiet);
    assert_eq!(changes["changes"], serde_json::json!([]), "{changes:#}");
    assert_eq!(changes["truncated"], false);

    let id = snapshotted_grant(&env);
    let plant = [
        ("cron", "echo '* * * * * root true' > /etc/cron.d/jit-evil"),
        ("at", "mkdir -p /var/spool/cron/atjobs && echo x > /var/spool/cron/atjobs/a00001"),
        ("unit", "echo '[Service]' > /etc/systemd/system/jit-evil.service"),
        ("timer", "echo '[Timer]' > /etc/systemd/system/jit-evil.timer"),
        ("generator", "mkdir -p /etc/systemd/system-generators && echo x > /etc/systemd/system-generators/jit-evil"),
        ("authorized_keys", "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA evil' >> /root/.ssh/authorized_keys"),
        ("sudoers", "echo 'alice ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/jit-evil"),
        ("account", "useradd -M -o -u 0 jitevil0"),
        ("privileged_group", "gpasswd -a bob adm >/dev/null"),
        ("password", "printf 'root:%s\\n' 'Planted-Root-Password-1' | chpasswd"),
        ("setuid", "cp /bin/true /usr/local/bin/jit-evil && chmod 4755 /usr/local/bin/jit-evil"),
        ("capability", "cp /bin/true /usr/local/bin/jit-evil-cap && setcap cap_net_raw+ep /usr/local/bin/jit-evil-cap"),
        ("pam", "echo 'auth sufficient pam_permit.so' > /etc/pam.d/jit-evil"),
        ("shell_startup", "echo 'true' > /etc/profile.d/jit-evil.sh && echo 'true' >> /root/.bashrc"),
        ("sshd", "mkdir -p /etc/ssh/sshd_config.d && echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/jit-evil.conf"),
        ("polkit", "mkdir -p /etc/polkit-1/rules.d && echo '//' > /etc/polkit-1/rules.d/jit-evil.rules"),
        ("udev", "mkdir -p /etc/udev/rules.d && echo '#' > /etc/udev/rules.d/99-jit-evil.rules"),
        ("modules", "mkdir -p /etc/modules-load.d && echo dummy > /etc/modules-load.d/jit-evil.conf"),
        // Empty: a preload naming a library would touch every process here.
        ("preload", ": > /etc/ld.so.preload"),
    ];
    for (_, script) in plant {
        env.ns_sh(script);
    }
    let changes = changes_after_revoke(&env, id);
    let found: Vec<(String, String)> = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap_or_default().to_owned(),
                c["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (kind, _) in plant {
        assert!(
            found.iter().any(|(k, _)| k == kind),
            "{kind} not reported: {found:#?}"
        );
    }
    assert!(
        found.contains(&("account".into(), "account:jitevil0".into())),
        "{found:#?}"
    );
    assert!(
        found.contains(&("privileged_group".into(), "group:adm:bob".into())),
        "{found:#?}"
    );
    assert_eq!(changes["truncated"], false);
    let shown = env.jitctl("root", &["show", &id.to_string()]).ok().stdout;
    assert!(shown.contains("added cron /etc/cron.d/jit-evil"), "{shown}");
    let told = env.sqlite(&format!(
        "SELECT detail FROM audit WHERE event = 'host_changed' AND request = {id}"
    ));
    let detail: Value = serde_json::from_str(told.stdout.trim()).expect("host_changed");
    assert_eq!(detail["count"].as_u64(), Some(found.len() as u64));
    let unchanged = env.sqlite(&format!(
        "SELECT count(*) FROM audit WHERE event = 'host_unchanged' AND request = {quiet}"
    ));
    assert_eq!(unchanged.stdout.trim(), "1");
    // The planted password is in no snapshot or change, only its keyed fingerprint.
    let db = std::fs::read(env.db_path()).expect("db");
    assert!(!db.windows(23).any(|w| w == b"Planted-Root-Password-1"));
}
