//! What a recorded session can and cannot hide (README, "What a root
//! session can hide"): jitd writes every recording from its recorder's pipe
//! and seals it with its own digest. A close forged by the recorded root
//! shell is refused and audited; a recorder killed leaves a recording sealed
//! at once, so an edit made afterwards shows; a session has one recorder;
//! only jitd's own `grant-N` cgroups make a session.

use jit_tests::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The recording of `grant`, once jitd has opened it (root's listing).
#[track_caller]
fn open_recording(s: &SessionEnv, grant: u64) -> Value {
    wait_for(Duration::from_secs(10), || {
        s.recordings("root")
            .into_iter()
            .find(|r| r["grant"] == grant)
    })
    .unwrap_or_else(|| panic!("no recording of grant {grant}{}", s.jitd_log_tail()))
}

fn audit_event(s: &SessionEnv, grant: u64, name: &str) -> Option<Value> {
    s.audit_events_for(grant)
        .into_iter()
        .find(|e| e["event"] == name)
}

/// A file the test writes to let a session's script go on (in the host's
/// /tmp, which the namespace shares); removed on drop.
struct Signal(PathBuf);

impl Signal {
    fn new(name: &str) -> Signal {
        Signal(std::env::temp_dir().join(format!("jit-{name}-{}", unique())))
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn send(&self, text: &str) {
        std::fs::write(&self.0, text).expect("write the signal file");
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_forged_close_from_the_recorded_root_shell_is_refused_and_audited() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let grant = s.ops_grant("alice", "a forged close");
    let go = Signal::new("forge");
    // The recorded root shell asks jitd to close its own recording.
    let script = format!(
        "echo before-the-forgery; until [ -s {go} ]; do sleep 0.05; done; \
         busctl --system call org.jit.Daemon1 /org/jit/Daemon1 org.jit.Daemon1 \
           CloseRecording ts \"$(cat {go})\" exit; \
         echo busctl-rc=$?; echo after-the-forgery-$((6*7))",
        go = go.path().display()
    );
    let run = s.spawn_jitctl(
        "alice",
        &["run", &grant.to_string(), "--", "sh", "-c", &script],
    );
    let rec = open_recording(&s, grant);
    assert!(rec["sha256"].is_null(), "{rec:#}");
    let id = rec["id"].as_u64().expect("id");
    go.send(&id.to_string());
    let run = run.finish(Duration::from_secs(20));
    assert_eq!(run.code, 0, "{run}{}", s.jitd_log_tail());
    assert!(
        run.stdout.contains("busctl-rc=1"),
        "the forgery was taken:{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "only the process that opened recording {id} may close it"
        )),
        "{run}"
    );

    // Refused, and in the audit trail as root's attempt.
    let refused = audit_event(&s, grant, "recording_close_refused")
        .unwrap_or_else(|| panic!("no recording_close_refused:{run}"));
    assert_eq!(refused["detail"]["recording"], id, "{refused:#}");
    assert_eq!(refused["actor_uid"], 0, "{refused:#}");
    // The session went on being recorded, and its recorder closed it.
    let closed = s.closed_recording(grant, Duration::from_secs(10));
    assert_eq!(closed["end"], "exit", "{closed:#}");
    assert_eq!(closed["digest_of"], "session", "{closed:#}");
    let cast = Cast::parse(&s.read_ns_file(closed["path"].as_str().expect("path")));
    assert!(
        cast.output().contains("after-the-forgery-42"),
        "{:?}",
        cast.output()
    );
    let verified = s
        .jitctl("root", &["recordings", "verify", &id.to_string()])
        .ok();
    assert!(verified.stdout.contains("intact"), "{verified}");
}

#[test]
fn a_killed_recorder_leaves_a_sealed_recording_and_an_edit_shows() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let grant = s.ops_grant("alice", "kill the recorder");
    let mark = marked_sleep();
    let script = format!("echo before-the-kill; exec sleep {mark}");
    let run = s.spawn_jitctl(
        "alice",
        &["run", &grant.to_string(), "--", "sh", "-c", &script],
    );
    let Some(sleep) = wait_for(Duration::from_secs(10), || {
        pids_of(&["sleep", &mark]).first().copied()
    }) else {
        panic!("the command did not start:{}", run.stop());
    };
    let recorder = parent_of(parent_of(sleep).expect("monitor")).expect("recorder");
    assert!(
        cmdline(recorder).contains("jit-session"),
        "recorder {recorder}: {}",
        cmdline(recorder)
    );
    let path = wait_for(Duration::from_secs(5), || {
        let rec = open_recording(&s, grant);
        let path = rec["path"].as_str()?.to_owned();
        let text = std::fs::read_to_string(&path).ok()?;
        text.contains("before-the-kill").then_some(path)
    })
    .expect("the output reached the recording");

    // The root shell kills its recorder: jitd seals the recording at once,
    // with the digest of what it received.
    // SAFETY: kill(2) on a process of this test's session.
    unsafe { libc::kill(recorder as i32, libc::SIGKILL) };
    let run = run.finish(Duration::from_secs(10));
    assert_ne!(run.code, 0, "{run}");
    let sealed = s.closed_recording(grant, Duration::from_secs(5));
    assert_eq!(sealed["end"], "terminated", "{sealed:#}");
    assert_eq!(sealed["digest_of"], "session", "{sealed:#}");
    let event = audit_event(&s, grant, "recording_closed").expect("recording_closed");
    assert_eq!(event["detail"]["end"], "terminated", "{event:#}");
    assert_eq!(event["detail"]["sha256"], sealed["sha256"], "{event:#}");

    // It then edits the file, and the grant ends.
    let text = std::fs::read_to_string(&path).expect("the recording");
    std::fs::write(&path, text.replace("before-the-kill", "nothing-to-see-")).expect("edit");
    s.jitctl("alice", &["revoke", &grant.to_string()]).ok();
    assert!(
        wait_all_dead(&[sleep], Duration::from_secs(10)).is_some(),
        "the command outlived the grant"
    );
    let id = sealed["id"].as_u64().expect("id").to_string();
    let verified = s.jitctl("root", &["recordings", "verify", &id]).code(1);
    assert!(verified.stderr.contains("does NOT match"), "{verified}");
    // The grant's end sealed nothing again: the digest is still jitd's.
    let after = s
        .recordings("root")
        .into_iter()
        .find(|r| r["id"] == sealed["id"])
        .expect("the recording");
    assert_eq!(after["sha256"], sealed["sha256"], "{after:#}");
    assert_eq!(after["end"], "terminated", "{after:#}");
}

#[test]
fn a_second_recorder_in_a_root_session_is_refused() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let grant = s.ops_grant("alice", "two recorders");
    // The recorded root shell starts a recorder of its own.
    let run = s.jitctl_run(
        "alice",
        grant,
        &[
            "sh",
            "-c",
            &format!("{JIT_SESSION} -- echo nested-$((6*7)); echo nested-rc=$?"),
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("nested-rc=1"), "{run}");
    assert!(!run.stdout.contains("nested-42"), "{run}");
    assert!(run.stderr.contains("is recorded already"), "{run}");
    let recordings: Vec<Value> = s
        .recordings("root")
        .into_iter()
        .filter(|r| r["grant"] == grant)
        .collect();
    assert_eq!(recordings.len(), 1, "{recordings:#?}");
    let refused = audit_event(&s, grant, "recording_refused").expect("recording_refused");
    assert_eq!(
        refused["detail"]["recording"], recordings[0]["id"],
        "{refused:#}"
    );
}

#[test]
fn a_second_login_recorder_in_the_same_session_is_refused() {
    const USER: &str = "bob";
    let (s, sshd) = login_env(&[USER], |_| {});
    let grant = s.request(USER, "ssh", "30m", "two recorders");
    let grant = id_of(&grant);
    // Inside bob's recorded login, a second OpenLoginRecording.
    let run = s.run(sshd.ssh(
        &s,
        USER,
        &[&format!(
            "{JIT_SESSION} -c 'echo nested-$((6*7))'; echo nested-rc=$?"
        )],
    ));
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("nested-rc=1"), "{run}");
    assert!(!run.stdout.contains("nested-42"), "{run}");
    assert!(run.stderr.contains("is recorded already"), "{run}");
    let count = s
        .recordings("root")
        .iter()
        .filter(|r| r["grant"] == grant)
        .count();
    assert_eq!(count, 1);
    assert!(audit_event(&s, grant, "recording_refused").is_some());
}

/// A cgroup v2 directory made by the test outside jitd's base; its
/// processes are killed and it is removed on drop.
struct FakeCgroup(PathBuf);

impl Drop for FakeCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for dir in self.0.ancestors().take(2) {
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn a_process_in_a_grant_cgroup_outside_jitds_is_not_in_a_session() {
    const USER: &str = "bob";
    let Some(mount) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    // bob logs in with an ordinary shell (a gated, unrecorded login).
    let s = SessionEnv::with(&login_config(), "ops", |s| {
        s.set_pam_services(&[("sshd", &sshd_stack(s, "ssh"))]);
    });
    let sshd = Sshd::start(&s, &[USER]);
    let grant = id_of(&s.request(USER, "ssh", "30m", "a fake cgroup"));

    // The login shell says who it is, waits, then becomes the recorder.
    let login = |fake: Option<&Path>| {
        let (pid_file, go) = (Signal::new("pid"), Signal::new("go"));
        let command = format!(
            "echo $$ > {pid}; until [ -e {go} ]; do sleep 0.05; done; \
             exec {JIT_SESSION} -c 'echo inside-$((6*7))'",
            pid = pid_file.path().display(),
            go = go.path().display()
        );
        let session = Background::spawn(sshd.ssh(&s, USER, &[&command]));
        let pid: u32 = wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(pid_file.path())
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .expect("the login shell's pid");
        if let Some(cgroup) = fake {
            std::fs::write(cgroup.join("cgroup.procs"), pid.to_string())
                .expect("move into the fake cgroup");
        }
        go.send("");
        session.finish(Duration::from_secs(20))
    };

    // In the grant's cgroup that jitd made, it records.
    let run = login(None);
    assert_eq!(run.code, 0, "{run}{}", s.jitd_log_tail());
    assert!(run.stdout.contains("inside-42"), "{run}");
    assert_eq!(s.recordings("root").len(), 1);

    // In a `grant-N` of its own making (as in a subtree delegated to a
    // user), it is in no session.
    let fake = FakeCgroup(
        mount
            .join(format!("jit-fake-{}", unique()))
            .join(format!("grant-{grant}")),
    );
    std::fs::create_dir_all(&fake.0).expect("the fake cgroup");
    let run = login(Some(&fake.0));
    assert_ne!(run.code, 0, "{run}");
    assert!(!run.stdout.contains("inside-42"), "{run}");
    assert!(
        run.stderr.contains("jit-session: not inside a jit session"),
        "{run}"
    );
    assert_eq!(s.recordings("root").len(), 1, "a recording was opened");
}
