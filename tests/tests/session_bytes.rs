//! What goes into a recording through `jitctl run`: a UTF-8 character split
//! across two writes stays whole, bytes that are not UTF-8 stay recoverable;
//! a recording that cannot be written (full disk) ends the session. Standard
//! descriptors that are not terminals: input reaches the command with its
//! end; output and errors reach files apart and as written, both recorded,
//! and jit-session's notices stay out of the output.

use jit_tests::*;
use std::time::Duration;

#[test]
fn split_utf8_and_invalid_bytes_are_kept() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    let run = s
        .jitctl_run(
            "alice",
            id,
            &[
                "sh",
                "-c",
                "printf 'price: \\342\\202'; sleep 0.3; printf '\\254 ok\\n'; \
                 printf 'raw:\\377\\376\\300:end\\n'; printf '\\364\\217\\274\\200:private\\n'",
            ],
        )
        .ok();
    assert!(run.stdout.contains("price: € ok"), "{run}");

    let rec = s.closed_recording(id, Duration::from_secs(5));
    let cast = Cast::parse(&std::fs::read(rec["path"].as_str().unwrap()).unwrap());
    let outputs = cast.of("o");
    // The two halves were two reads (0.3 s apart), yet one event holds the
    // whole character.
    assert!(
        outputs.iter().any(|o| o.contains('€')),
        "no \"o\" event holds the whole €: {outputs:?}"
    );
    assert!(
        !outputs.iter().any(|o| o.contains('\u{fffd}')),
        "a replacement character was recorded: {outputs:?}"
    );

    // The header documents the escape, and the bytes come back exactly.
    let encoding = cast.header["jit"]["encoding"]
        .as_str()
        .unwrap_or_else(|| panic!("no jit.encoding in {:#}", cast.header));
    assert!(encoding.contains("U+10FF00+b"), "{encoding}");
    let bytes = cast.output_bytes();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"raw:\xff\xfe\xc0:end"),
        "invalid bytes not recovered: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    // U+10FF00 itself (f4 8f bc 80) is escaped too, so the mapping stays reversible.
    assert!(
        has(b"\xf4\x8f\xbc\x80:private"),
        "U+10FF00 not recovered: {outputs:?}"
    );
    assert!(has("price: € ok".as_bytes()), "{outputs:?}");
}

#[test]
fn full_disk_ends_the_session() {
    let s = SessionEnv::with(&session_config("15m"), "ops", |s| {
        s.ns_sh(&format!(
            "mkdir -p '{d}' && mount -t tmpfs -o size=64k,mode=0750 jit-test-tiny '{d}' \
             && chgrp jit-audit '{d}'",
            d = s.rec_dir.display()
        ));
    });
    let id = s.ops_grant("alice", "maintenance");
    let started = std::time::Instant::now();
    let run = s.jitctl_run(
        "alice",
        id,
        &[
            "sh",
            "-c",
            "base64 /dev/urandom | head -c 20000000; echo; echo printed-everything",
        ],
    );
    let took = started.elapsed();
    let tail = tail_of(&run.stdout, 400);
    assert_ne!(run.code, 0, "exit status after a failed recording:{run}");
    assert!(
        run.stdout.contains("cannot write the session recording")
            || run.stderr.contains("cannot write the session recording"),
        "no message; last output: {tail:?}\nstderr: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("printed-everything"),
        "the command ran to its end; last output: {tail:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let rec = s.closed_recording(id, Duration::from_secs(5));
    assert_eq!(rec["end"], "write_failed", "{rec:#}");
    // What was written is a valid (truncated) recording up to the failure.
    let file = s.read_ns_file(rec["path"].as_str().unwrap());
    let text = String::from_utf8_lossy(&file);
    let header: Value = serde_json::from_str(text.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("header ({e}): {text:.200}"));
    assert_eq!(header["version"], 2, "{header:#}");
}

#[test]
fn input_that_is_not_a_terminal_reaches_the_command_with_its_end() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    let jitctl = jitctl_bin();
    let run = |script: String| {
        let started = std::time::Instant::now();
        let run = s.run_as("alice", "sh", &["-c", &script]).ok();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the command waited for more input:{run}"
        );
        run
    };
    // From a pipe: passed on once (not echoed by the PTY), then its end.
    let out = run(format!(
        "printf 'first-line\\nsecond-line\\n' | {} run {id} -- cat",
        jitctl.display()
    ));
    assert_eq!(out.stdout.matches("first-line").count(), 1, "{out}");
    assert_eq!(out.stdout.matches("second-line").count(), 1, "{out}");
    // More than a pipe holds at once.
    let out = run(format!(
        "seq 1 50000 | {} run {id} -- wc -l",
        jitctl.display()
    ));
    assert_eq!(out.stdout.trim(), "50000", "{out}");
    // From /dev/null: the end at once.
    let out = run(format!(
        "{} run {id} -- sh -c 'read line; echo read-status=$?' </dev/null",
        jitctl.display()
    ));
    assert!(out.stdout.contains("read-status=1"), "{out}");

    // What the command printed is recorded; the input is not ("i" events
    // only with record_input).
    let recordings = s.recordings("alice");
    let first = recordings
        .iter()
        .find(|r| r["sha256"].is_string())
        .unwrap_or_else(|| panic!("no closed recording: {recordings:#?}"));
    let cast = Cast::parse(&std::fs::read(first["path"].as_str().unwrap()).unwrap());
    let printed = String::from_utf8_lossy(&cast.output_bytes()).into_owned();
    assert!(printed.contains("first-line"), "{printed:?}");
    assert!(cast.of("i").is_empty());
}

#[test]
fn output_that_is_not_a_terminal_stays_as_written_and_apart() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    let jitctl = jitctl_bin();
    let out = s.dir.path().join("out.txt");
    let err = s.dir.path().join("err.txt");
    let script = format!(
        "{} run {id} -- sh -c 'printf \"line-1\\nline-2\\n\"; echo oops >&2; exit 3' >{} 2>{}",
        jitctl.display(),
        out.display(),
        err.display()
    );
    // The files are the test's (root's): alice's shell opens them through a
    // directory she may write.
    std::fs::set_permissions(
        s.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let run = s.run_as("alice", "sh", &["-c", &script]);
    assert_eq!(run.code, 3, "the command's status:{run}");
    // No CR added by a PTY, and stderr in its own file.
    assert_eq!(std::fs::read(&out).unwrap(), b"line-1\nline-2\n");
    assert_eq!(std::fs::read(&err).unwrap(), b"oops\n");
    let rec = s.closed_recording(id, Duration::from_secs(5));
    let cast = Cast::parse(&std::fs::read(rec["path"].as_str().unwrap()).unwrap());
    let printed = String::from_utf8_lossy(&cast.output_bytes()).into_owned();
    assert!(
        printed.contains("line-2\n") && printed.contains("oops\n"),
        "{printed:?}"
    );

    // Revoked while its output goes to a file: the notice goes to stderr,
    // not into the file.
    let script = format!(
        "{} run {id} -- sh -c 'echo started; sleep 30' >{} 2>{}",
        jitctl.display(),
        out.display(),
        err.display()
    );
    let session = Background::spawn({
        let mut cmd = s.user_command("alice", "sh");
        cmd.args(["-c", &script]);
        cmd
    });
    wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|o| o.contains("started"))
    })
    .unwrap_or_else(|| panic!("the command did not start"));
    s.jitctl("root", &["revoke", &id.to_string()]).ok();
    session.finish(Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "started\n");
    let notices = std::fs::read_to_string(&err).unwrap();
    assert!(
        notices.contains(&format!("[jit] grant {id} revoked: ending the session")),
        "{notices:?}"
    );
}
