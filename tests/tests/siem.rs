//! The SIEM feed end to end (X.2): a real rsyslog (RELP, TCP, TLS), a
//! JSON lines file through rotation, journald's protocol on a socket the
//! test listens on, the cursor across kill -9, and the anchors that catch
//! a database rolled back or rewritten.

use jit_tests::rsyslog::{jit_records, Received, Rsyslog, RECEIVERS};
use jit_tests::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The test config with many pending requests allowed and `[siem]` with
/// short anchors and retries, and `sinks` (TOML tables).
fn siem_config(sinks: &str) -> String {
    format!(
        "{}\n[siem]\nanchor_every = 7\nanchor_interval = \"2s\"\ntimeout = \"2s\"\nretry_max = \"1s\"\n{sinks}",
        config_with_many_pending()
    )
}

fn rsyslog_sinks(rsyslog: &Rsyslog) -> String {
    format!(
        r#"
[siem.sinks.relp]
type = "relp"
address = "127.0.0.1:{}"

[siem.sinks.tcp]
type = "tcp"
address = "127.0.0.1:{}"

[siem.sinks.tls]
type = "tls"
address = "127.0.0.1:{}"
ca = "{}"
server_name = "siem.test"
"#,
        rsyslog.relp,
        rsyslog.tcp,
        rsyslog.tls,
        rsyslog.ca().display()
    )
}

/// A directory the worker (the jit-deliver user) may write in.
fn worker_dir(env: &Env, name: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(DELIVER_USER.1), None).expect("chown");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// jitd with one file sink, `audit.jsonl` in a directory the worker may
/// write (returned).
fn with_file_sink() -> (Env, PathBuf) {
    let mut env = Env::without_jitd(TEST_CONFIG);
    let logs = worker_dir(&env, "siem-logs");
    env.write_config(&siem_config(&format!(
        "[siem.sinks.file]\ntype = \"file\"\npath = \"{}\"\n",
        logs.join("audit.jsonl").display()
    )));
    env.start_jitd();
    (env, logs)
}

/// Grants asked for and given up: each a few audit events.
fn workload(env: &Env, n: usize) {
    for i in 0..n {
        let id = id_of(&env.request("alice", "logs", "5m", &format!("siem workload {i}")));
        env.jitctl("alice", &["revoke", &id.to_string()]).ok();
    }
}

/// Every audit row: id and MAC (hex).
fn audit_rows(env: &Env) -> Vec<(u64, String)> {
    env.sqlite("SELECT id || ' ' || lower(hex(mac)) FROM audit ORDER BY id")
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let (id, mac) = l.split_once(' ').expect("id mac");
            (id.parse().expect("id"), mac.to_owned())
        })
        .collect()
}

/// Waits until every sink has taken every audit row.
fn wait_caught_up(env: &Env) {
    let caught_up = wait_for(Duration::from_secs(30), || {
        let sinks = env.jitctl_json("root", &["siem", "status", "--json"]);
        sinks
            .as_array()
            .expect("sinks")
            .iter()
            .all(|s| s["behind"] == 0)
            .then_some(())
    });
    if caught_up.is_none() {
        panic!(
            "the sinks did not catch up: {}\n{}",
            env.jitctl("root", &["siem", "status"]).stdout,
            env.jitd_log_tail()
        );
    }
}

/// `received` holds every row of `rows`, in order: each id first arrives
/// after the one before it, and a repeat is a resend of the same row.
fn assert_every_row_in_order(sink: &str, received: &[Received], rows: &[(u64, String)]) {
    let macs: BTreeMap<u64, &str> = rows.iter().map(|(id, mac)| (*id, mac.as_str())).collect();
    let mut next = 1;
    for r in received.iter().filter(|r| r.kind == "event") {
        assert_eq!(
            macs.get(&r.id).copied(),
            Some(r.mac.as_str()),
            "{sink}: row {} arrived with another MAC",
            r.id
        );
        if r.id == next {
            next += 1;
        } else {
            assert!(
                r.id < next,
                "{sink}: row {} arrived before row {next}",
                r.id
            );
        }
    }
    assert_eq!(
        next,
        rows.len() as u64 + 1,
        "{sink}: rows from {next} on never arrived"
    );
    for r in received.iter().filter(|r| r.kind == "anchor") {
        assert_eq!(
            macs.get(&r.id).copied(),
            Some(r.mac.as_str()),
            "{sink}: anchor {}",
            r.id
        );
    }
}

#[test]
fn every_event_reaches_rsyslog_in_order_across_kill_9_and_a_receiver_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rsyslog = Rsyslog::start(dir.path());
    let mut env = Env::with_config(&siem_config(&rsyslog_sinks(&rsyslog)));
    workload(&env, 4);
    // jitd killed mid-stream: the cursor is in the database.
    env.kill_jitd();
    env.start_jitd();
    workload(&env, 4);
    // The sender killed: jitd resends from the cursor to the next one.
    env.kill_deliver();
    workload(&env, 4);
    env.start_deliver();
    wait_caught_up(&env);
    // The receiver restarted while events happen: RELP and TCP reconnect.
    rsyslog.stop();
    workload(&env, 4);
    let status = env.jitctl_json("root", &["siem", "status", "--json"]);
    let relp = &status.as_array().expect("sinks")[0];
    assert_eq!(relp["name"], "relp");
    rsyslog.restart();
    workload(&env, 2);
    wait_caught_up(&env);
    let rows = audit_rows(&env);
    assert!(rows.len() > 40, "{} rows", rows.len());
    for receiver in RECEIVERS {
        let received = jit_records(&rsyslog.received(receiver));
        assert_every_row_in_order(receiver, &received, &rows);
        let anchors = received.iter().filter(|r| r.kind == "anchor").count();
        assert!(anchors >= rows.len() / 7, "{receiver}: {anchors} anchors");
    }
    // The RFC 5424 header and structured data as rsyslog got them.
    let line = rsyslog.received("relp").into_iter().next().expect("a line");
    assert!(line.starts_with("<85>1 "), "{line}");
    assert!(
        line.contains(" jitd - requested [jit@32473 id=\"1\" event=\"requested\" actor=\"alice\""),
        "{line}"
    );
}

#[test]
fn a_dead_sink_shows_its_lag_and_gets_everything_when_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rsyslog = Rsyslog::start(dir.path());
    let sinks = format!(
        "[siem.sinks.relp]\ntype = \"relp\"\naddress = \"127.0.0.1:{}\"\n",
        rsyslog.relp
    );
    rsyslog.stop();
    let env = Env::with_config(&siem_config(&sinks));
    workload(&env, 3);
    let status = wait_for(Duration::from_secs(15), || {
        let status = env.jitctl_json("root", &["siem", "status", "--json"]);
        (status[0]["last_error"].is_string()).then_some(status)
    })
    .unwrap_or_else(|| panic!("no error shown:{}", env.jitd_log_tail()));
    assert!(
        status[0]["behind"].as_u64().expect("behind") >= 3,
        "{status:#}"
    );
    assert!(status[0]["lag_secs"].is_u64(), "{status:#}");
    let text = env.jitctl("root", &["siem", "status"]).ok().stdout;
    assert!(text.contains("relp") && text.contains("refused"), "{text}");
    // Only security, auditors and root see it.
    let refused = env.jitctl("alice", &["siem", "status"]).fails();
    refused.assert_clean_error();
    env.jitctl("audrey", &["siem", "status"]).ok();

    rsyslog.restart();
    wait_caught_up(&env);
    let status = env.jitctl_json("root", &["siem", "status", "--json"]);
    assert!(status[0]["last_error"].is_null(), "{status:#}");
    assert_every_row_in_order(
        "relp",
        &jit_records(&rsyslog.received("relp")),
        &audit_rows(&env),
    );
}

#[test]
fn the_json_file_survives_rotation_by_rename_and_by_sighup() {
    let (env, logs) = with_file_sink();
    let path = logs.join("audit.jsonl");
    workload(&env, 3);
    wait_caught_up(&env);
    let mode = std::fs::metadata(&path)
        .expect("audit.jsonl")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // logrotate without copytruncate: rename, then events go to a new file.
    std::fs::rename(&path, logs.join("audit.jsonl.1")).expect("rename");
    workload(&env, 3);
    wait_caught_up(&env);
    assert!(path.exists(), "no new file after the rename");
    // A rename back and forth that leaves the same inode is noticed by SIGHUP.
    std::fs::rename(&path, logs.join("audit.jsonl.2")).expect("rename");
    std::fs::write(&path, "").expect("new empty file");
    std::os::unix::fs::chown(&path, Some(DELIVER_USER.1), None).expect("chown");
    let pid = env.deliver_pid().expect("worker");
    // SAFETY: kill(2) on the worker the test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
    workload(&env, 3);
    wait_caught_up(&env);
    let mut lines = Vec::new();
    for name in ["audit.jsonl.1", "audit.jsonl.2", "audit.jsonl"] {
        let text = std::fs::read_to_string(logs.join(name)).expect(name);
        assert!(!text.is_empty(), "{name} is empty");
        lines.extend(text.lines().map(str::to_owned));
    }
    let received = jit_records(&lines);
    assert_every_row_in_order("file", &received, &audit_rows(&env));
    // Every line is one JSON object with the documented fields.
    let first = &received[0].json;
    for field in [
        "type", "id", "at", "time", "host", "event", "actor", "detail", "mac",
    ] {
        assert!(first.get(field).is_some(), "no {field} in {first}");
    }
}

/// journald's native protocol: `NAME=value` lines, or a name, a 64-bit
/// length and the value.
fn journal_fields(datagram: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').expect("newline");
        let line = &rest[..end];
        match line.iter().position(|&b| b == b'=') {
            Some(eq) => {
                fields.insert(
                    String::from_utf8_lossy(&line[..eq]).into_owned(),
                    String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
                );
                rest = &rest[end + 1..];
            }
            None => {
                let name = String::from_utf8_lossy(line).into_owned();
                let len_at = end + 1;
                let len = u64::from_le_bytes(rest[len_at..len_at + 8].try_into().expect("len"));
                let value = &rest[len_at + 8..len_at + 8 + len as usize];
                fields.insert(name, String::from_utf8_lossy(value).into_owned());
                rest = &rest[len_at + 8 + len as usize + 1..];
            }
        }
    }
    fields
}

#[test]
fn journald_gets_structured_fields_over_its_native_protocol() {
    let mut env = Env::without_jitd(TEST_CONFIG);
    let dir = worker_dir(&env, "journal");
    let socket_path = dir.join("socket");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    env.write_config(&siem_config(&format!(
        "[siem.sinks.journal]\ntype = \"journald\"\nsocket = \"{}\"\n",
        socket_path.display()
    )));
    env.start_jitd();
    env.request("alice", "logs", "5m", "first line\nsecond line");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    while got.len() < 2 {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("recv: {e}{}", env.jitd_log_tail()));
        got.push(journal_fields(&buf[..n]));
    }
    let first = &got[0];
    assert_eq!(first["JIT_ID"], "1");
    assert_eq!(first["JIT_EVENT"], "requested");
    assert_eq!(first["JIT_ACTOR"], "alice");
    assert_eq!(first["JIT_RESOURCE"], "logs");
    assert_eq!(first["SYSLOG_IDENTIFIER"], "jitd");
    assert_eq!(first["PRIORITY"], "5");
    let detail: Value = serde_json::from_str(&first["JIT_DETAIL"]).expect("detail");
    assert_eq!(detail["reason"], "first line\nsecond line");
    assert_eq!(got[1]["JIT_ID"], "2");
    let rows = audit_rows(&env);
    assert_eq!(first["JIT_MAC"], rows[0].1);
}

/// The records the file sink has received, as the SIEM holds them.
fn siem_copy(path: &Path) -> PathBuf {
    let copy = path.with_extension("siem");
    std::fs::copy(path, &copy).expect("copy");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    copy
}

#[test]
fn a_database_rolled_back_or_rewritten_is_caught_against_the_anchors() {
    let (mut env, logs) = with_file_sink();
    let path = logs.join("audit.jsonl");
    workload(&env, 2);
    // A copy of the database as it stands now (a backup, or the attacker's).
    let rows_before = audit_rows(&env).len();
    env.stop_jitd();
    let db = env.db_path();
    let backup = db.with_extension("backup");
    env.sqlite(&format!(".backup '{}'", backup.display())).ok();
    env.start_jitd();
    workload(&env, 3);
    wait_caught_up(&env);
    let anchors = siem_copy(&path);
    let file = anchors.to_str().expect("path");

    let intact = env
        .jitctl("audrey", &["audit", "verify", "--anchors", file])
        .ok();
    assert!(
        intact.stdout.contains("Audit trail intact"),
        "{}",
        intact.stdout
    );
    assert!(
        intact.stdout.contains("rows the SIEM received match"),
        "{}",
        intact.stdout
    );
    env.jitctl("alice", &["audit", "verify", "--anchors", file])
        .fails()
        .assert_clean_error();

    // Rolled back to the backup: a valid chain, but shorter than the SIEM's.
    env.stop_jitd();
    for wal in ["jit.db-wal", "jit.db-shm"] {
        let _ = std::fs::remove_file(env.state_dir.join(wal));
    }
    std::fs::copy(&backup, &db).expect("restore");
    env.start_jitd();
    assert!(env
        .jitctl("root", &["audit", "verify"])
        .ok()
        .stdout
        .contains("intact"));
    let caught = env.jitctl("root", &["audit", "verify", "--anchors", file]);
    assert_eq!(caught.code, 1, "{caught}");
    assert!(caught.stdout.contains("TAMPERED"), "{}", caught.stdout);
    assert!(
        caught.stdout.contains("rolled back or cut short"),
        "{}",
        caught.stdout
    );

    // ... and written again past the SIEM's rows: the same ids, other MACs.
    workload(&env, 4);
    assert!(audit_rows(&env).len() > rows_before);
    let caught = env.jitctl("root", &["audit", "verify", "--anchors", file]);
    assert_eq!(caught.code, 1, "{caught}");
    assert!(
        caught.stdout.contains("is not the row the SIEM received"),
        "{}",
        caught.stdout
    );

    let junk = logs.join("junk");
    std::fs::write(&junk, "not jit\n").expect("junk");
    let refused = env
        .jitctl(
            "root",
            &["audit", "verify", "--anchors", junk.to_str().expect("path")],
        )
        .fails();
    refused.assert_clean_error();
}

#[test]
fn udp_is_sent_as_best_effort_and_labelled_so() {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    receiver
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let port = receiver.local_addr().expect("addr").port();
    let env = Env::with_config(&siem_config(&format!(
        "[siem.sinks.udp]\ntype = \"udp\"\naddress = \"127.0.0.1:{port}\"\n"
    )));
    env.request("alice", "logs", "5m", "over udp");
    let mut buf = vec![0u8; 65536];
    let n = receiver
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("recv: {e}{}", env.jitd_log_tail()));
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.starts_with("<85>1 "), "{message}");
    assert!(
        message.contains("[jit@32473 id=\"1\" event=\"requested\""),
        "{message}"
    );
    let status = env.jitctl_json("root", &["siem", "status", "--json"]);
    assert_eq!(status[0]["transport"], "udp (best effort)");
}
