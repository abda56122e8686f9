//! Who may record what and read what: no recorded shell on someone else's
//! grant (sudo's pam_jit and jitctl both refuse), no reading someone else's
//! recording (jitctl exit 3, and the file is 0640 root:jit-audit), auditors
//! read all; the test-only standalone mode is out of reach through sudo. A
//! recording whose file is gone, or replaced by a symbolic link, says so.

use jit_tests::*;
use std::time::Duration;

#[test]
fn recordings_belong_to_their_user_and_the_auditors() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let grant = s.request("alice", "ops", "30m", "maintenance");
    assert_eq!(state_of(&grant), "active", "{grant:#}");
    let id = id_of(&grant);
    let ids = id.to_string();

    // bob holds no grant: sudo (pam_jit) refuses him the recorder.
    let run = s.jitctl("bob", &["shell"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("jitctl request ops"),
        "no request hint:{run}"
    );
    // And jitctl refuses alice's grant to him.
    let run = s.jitctl("bob", &["shell", &ids]).code(3);
    assert!(
        run.stderr.contains("not yours") || run.stderr.contains("another user"),
        "{run}"
    );
    s.jitctl("bob", &["run", &ids, "--", "id"]).code(3);

    // alice records one command.
    let run = s
        .jitctl_run("alice", id, &["sh", "-c", "echo secret-output-$((9*9))"])
        .ok();
    assert!(run.stdout.contains("secret-output-81"), "{run}");
    let rec = s.closed_recording(id, Duration::from_secs(5));
    let rid = rec["id"].to_string();
    let path = std::path::PathBuf::from(rec["path"].as_str().expect("path"));

    // bob: not listed, not readable through jitctl (exit 3), nor on disk.
    assert!(s.recordings("bob").is_empty(), "bob sees recordings");
    let export_dir = s.dir.path().join("export");
    std::fs::create_dir(&export_dir).expect("export dir");
    std::os::unix::fs::chown(&export_dir, Some(uid("audrey")), Some(FIXTURE_GID)).expect("chown");
    for args in [
        vec!["recordings", "play", &rid, "--speed", "100"],
        vec!["recordings", "verify", &rid],
        vec!["recordings", "export", &rid, "--out", "/tmp"],
    ] {
        let run = s.jitctl("bob", &args).code(3);
        assert!(!run.stdout.contains("secret-output-81"), "{run}");
        assert!(
            run.stderr.contains("only root and auditors may read it"),
            "{run}"
        );
    }
    // Security decides on grants; replaying sessions is the auditors' job.
    assert!(
        s.recordings("sam").is_empty(),
        "sam (jit-security) sees recordings"
    );
    s.jitctl("sam", &["recordings", "play", &rid]).code(3);
    let run = s.jitctl("alice", &["recordings", "verify", "999"]).code(4);
    assert!(run.stderr.contains("recording 999 not found"), "{run}");
    let run = s.run_as("bob", "cat", &[path.to_str().unwrap()]);
    assert_ne!(run.code, 0, "bob read the file:{run}");
    assert_eq!(
        owner_and_mode(&path),
        (0, 61104, 0o640),
        "recording owner, group (jit-audit) and mode"
    );
    assert_eq!(
        owner_and_mode(&s.rec_dir),
        (0, 61104, 0o750),
        "recordings dir owner, group (jit-audit) and mode"
    );

    // alice reads her own.
    let run = s
        .jitctl("alice", &["recordings", "play", &rid, "--speed", "100"])
        .ok();
    assert!(run.stdout.contains("secret-output-81"), "{run}");

    // audrey (jit-audit) reads everyone's.
    let all = s.recordings("audrey");
    assert!(
        all.iter().any(|r| r["id"] == rec["id"]),
        "audrey does not see {rid}: {all:#?}"
    );
    let run = s
        .jitctl("audrey", &["recordings", "play", &rid, "--speed", "100"])
        .ok();
    assert!(run.stdout.contains("secret-output-81"), "{run}");
    s.jitctl("audrey", &["recordings", "verify", &rid]).ok();
    s.jitctl(
        "audrey",
        &[
            "recordings",
            "export",
            &rid,
            "--out",
            export_dir.to_str().unwrap(),
        ],
    )
    .ok();
    let cast_path = export_dir.join(format!("recording-{rid}.cast"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&cast_path).expect("cast").permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "an exported recording is its exporter's alone"
    );
    let cast = std::fs::read(&cast_path).expect("cast");
    assert_eq!(
        cast,
        std::fs::read(&path).unwrap(),
        "exported .cast differs"
    );
    let sidecar: Value = serde_json::from_slice(
        &std::fs::read(export_dir.join(format!("recording-{rid}.json"))).expect("sidecar"),
    )
    .expect("sidecar is JSON");
    let events: Vec<&str> = sidecar["audit"]
        .as_array()
        .unwrap_or_else(|| panic!("no audit array: {sidecar:#}"))
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for e in ["recording_started", "recording_closed"] {
        assert!(events.contains(&e), "no {e} in the sidecar: {events:?}");
    }
    let run = s.run_as("audrey", "cat", &[path.to_str().unwrap()]).ok();
    assert!(run.stdout.contains("secret-output-81"), "{run}");
}

#[test]
fn the_recorder_only_records_through_sudo() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    let out = s.dir.path().join("chosen.cast");
    // The test-only mode (no jitd, a file of the caller's choosing) is refused under sudo.
    let run = s.sudo(
        "alice",
        &[],
        &[
            JIT_SESSION,
            "--standalone-record",
            out.to_str().unwrap(),
            "--",
            "id",
        ],
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(!out.exists(), "standalone recording created under sudo");
    // Run directly (not root), it refuses too.
    let run = s.run_as("alice", JIT_SESSION, &["--", "id"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(!run.stdout.contains("uid=0"), "{run}");
    // An environment variable cannot point it at another bus (the fixed socket is used).
    let run = s.sudo(
        "alice",
        &["DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent"],
        &[JIT_SESSION, "--", "sh", "-c", "echo recorded-$((2+3))"],
    );
    let run = run.ok();
    assert!(run.stdout.contains("recorded-5"), "{run}");
    let rec = s.closed_recording(id, Duration::from_secs(5));
    assert_eq!(rec["end"], "exit", "{rec:#}");
}

#[test]
fn a_recording_file_gone_or_replaced_by_a_link_is_reported_as_such() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    s.jitctl_run("alice", id, &["echo", "evidence"]).ok();
    let rec = s.closed_recording(id, Duration::from_secs(5));
    let rid = rec["id"].to_string();
    let path = std::path::PathBuf::from(rec["path"].as_str().expect("path"));

    std::fs::remove_file(&path).expect("remove the recording");
    let run = s.jitctl("alice", &["recordings", "verify", &rid]).code(1);
    assert!(
        run.stderr
            .contains(&format!("cannot read {}: the file is gone", path.display())),
        "{run}"
    );

    // A link in its place is not followed, even for an auditor.
    std::os::unix::fs::symlink("/etc/shadow", &path).expect("symlink");
    let run = s
        .jitctl("audrey", &["recordings", "play", &rid, "--speed", "100"])
        .code(1);
    assert!(
        run.stderr
            .contains("a symbolic link is in the file's place"),
        "{run}"
    );
    assert!(!run.stdout.contains("root:"), "{run}");
}

/// `jitctl extend` from inside a recorded session, where the caller is
/// root, not the holder: the request is the holder's, routed like any
/// other, and the trail names root as who asked; outside the session,
/// someone else's grant stays theirs.
#[test]
fn an_extension_asked_from_inside_the_recorded_session_is_the_holders() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let grant = s.ops_grant("alice", "a long job");
    let before = unix_secs(&s.show("root", grant)["expires_at"]);
    let jitctl = jitctl_bin();
    let ids = grant.to_string();
    let run = s.jitctl_run(
        "alice",
        grant,
        &[
            jitctl.to_str().expect("utf-8"),
            "extend",
            &ids,
            "--for",
            "10m",
            "--reason",
            "the job runs long",
        ],
    );
    assert_eq!(run.code, 0, "{run}{}", s.jitd_log_tail());
    let after = unix_secs(&s.show("root", grant)["expires_at"]);
    assert!(after >= before + 590, "{before} -> {after}");
    let events = s.audit_events();
    let asked = events
        .iter()
        .find(|e| e["event"] == "extension_asked_in_session")
        .unwrap_or_else(|| panic!("no extension_asked_in_session: {events:#?}"));
    assert_eq!(asked["actor_uid"], 0, "{asked:#}");
    assert_eq!(asked["detail"]["holder"], "alice", "{asked:#}");
    let requested = events
        .iter()
        .find(|e| e["event"] == "extension_requested")
        .expect("extension_requested");
    assert_eq!(requested["actor"], "alice", "{requested:#}");
    // Outside any session, bob cannot extend alice's grant.
    s.jitctl(
        "bob",
        &["extend", &ids, "--for", "5m", "--reason", "mine now"],
    )
    .code(3);
}

/// `jitctl run --as ACCOUNT`: `sudo -u ACCOUNT jit-session`, through the
/// PAM service sudoers names for that account (`Defaults>oscar
/// pam_service=sudo-dba`), gated by the account's resource. A grant of it
/// gives a recorded session as the managed account and not root; a grant
/// of the root resource does not give the account.
#[test]
fn a_recorded_session_as_an_account_needs_that_accounts_grant_and_gives_nothing_else() {
    let config = format!(
        "{}
[[resource]]
name = \"dba\"\nprivileged = true\nsensitivity = \"high\"\n\
         eligible = [\"group:admins\"]\nbreak_glass = [\"group:admins\"]\n\n\
         [[account]]\nname = \"oscar\"\nresource = \"dba\"\n",
        session_config("15m")
    );
    let s = SessionEnv::with(&config, "ops", |s| {
        let dba = documented_sudo_stack().replace("resource=sudo", "resource=dba");
        s.set_pam_services(&[("sudo-dba", &dba)]);
        let sudoers = s.dir.path().join("sudoers");
        std::fs::write(
            &sudoers,
            format!(
                "{SESSION_SUDOERS}Defaults>oscar pam_service=sudo-dba\n\
                 %jit-gated ALL=(oscar) NOPASSWD: /usr/libexec/jit/jit-session\n"
            ),
        )
        .expect("sudoers");
        // jitd takes oscar into custody: /etc as shadow-utils needs it,
        // with the stacks and sudoers above bound back over it.
        s.private_system_dirs();
        s.bind(&s.dir.path().join("pam.d"), "/etc/pam.d");
        s.bind(&sudoers, "/etc/sudoers");
        let users: Vec<&str> = USERS.iter().map(|(name, _, _)| *name).collect();
        s.ns_sh(&format!(
            "for u in {}; do grep -q \"^$u:\" /etc/shadow || echo \"$u:*:19000:0:99999:7:::\" >> /etc/shadow; done",
            users.join(" ")
        ));
    });
    let dba = s.jitctl_json(
        "alice",
        &[
            "break-glass",
            "dba",
            "--reason",
            "vacuum the catalog",
            "--for",
            "30m",
            "--json",
        ],
    );
    let ids = id_of(&dba).to_string();
    let as_oscar = s.jitctl("alice", &["run", &ids, "--as", "oscar", "--", "id", "-un"]);
    assert_eq!(as_oscar.code, 0, "{as_oscar}{}", s.jitd_log_tail());
    assert!(as_oscar.stdout.contains("oscar"), "{as_oscar}");
    let rec = s.closed_recording(id_of(&dba), Duration::from_secs(10));
    assert_eq!(rec["user"], "alice", "{rec:#}");
    // The account's grant is not root's.
    let as_root = s.jitctl("alice", &["run", &ids, "--", "id", "-un"]);
    assert_ne!(as_root.code, 0, "{as_root}");
    assert!(!as_root.stdout.contains("root"), "{as_root}");
    // And root's grant is not the account's.
    let ops = s.ops_grant("bob", "restart nginx");
    let bob = s.jitctl(
        "bob",
        &["run", &ops.to_string(), "--as", "oscar", "--", "id", "-un"],
    );
    assert_eq!(bob.code, 3, "{bob}");
    assert!(
        bob.stderr
            .contains("no active grant of yours checks out oscar"),
        "{bob}"
    );
    assert!(!bob.stdout.contains("oscar"), "{bob}");
    // sudo itself decides too: without jitctl's check, bob's root grant
    // still does not run the recorder as oscar.
    let direct = s.ns_sh(
        "runuser -u bob -- sudo -n -u oscar /usr/libexec/jit/jit-session -c 'id -un' 2>&1 \
         || echo refused",
    );
    assert!(direct.stdout.ends_with("refused\n"), "{direct}");
    assert!(!direct.stdout.lines().any(|l| l == "oscar"), "{direct}");
    // An emergency grant of the resource while alice holds the account
    // (exclusive, checked out to her grant) works as the account too.
    let emergency = s.jitctl_json(
        "bob",
        &[
            "break-glass",
            "dba",
            "--reason",
            "db down",
            "--for",
            "30m",
            "--json",
        ],
    );
    let bob_as_oscar = s.jitctl(
        "bob",
        &[
            "run",
            &id_of(&emergency).to_string(),
            "--as",
            "oscar",
            "--",
            "id",
            "-un",
        ],
    );
    assert_eq!(bob_as_oscar.code, 0, "{bob_as_oscar}{}", s.jitd_log_tail());
    assert!(bob_as_oscar.stdout.contains("oscar"), "{bob_as_oscar}");
    s.jitctl("alice", &["run", &ids, "--as", "-oscar", "--", "id"])
        .code(2);
}
