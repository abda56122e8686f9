//! Security review experiments against W1.11 ticket validation (not part of
//! the suite: findings are printed; few asserts).

use jit_tests::sinks::HttpSink;
use jit_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn config(tickets: &str, extra: &str) -> String {
    let text = TEST_CONFIG
        .replacen(
            "eligible = [\"group:admins\"]\nmax_duration = \"4h\"",
            "eligible = [\"group:admins\"]\nmax_duration = \"4h\"\nbreak_glass = [\"user:alice\"]\nrequire_ticket = true",
            1,
        )
        .replacen(
            "eligible = [\"group:admins\"]\nmax_duration = \"1h\"",
            "eligible = [\"group:admins\"]\nmax_duration = \"1h\"\nrequire_ticket = true",
            1,
        );
    assert_eq!(text.matches("require_ticket").count(), 2);
    format!("{text}\n{extra}\n[tickets]\n{tickets}\n")
}

const VALIDATOR: &str = r#"input=$(cat)
dir=$(dirname "$0")
printf '%s bytes=%s\n' "$(date +%s.%N)" "${#input}" >> "$dir/log/calls"
printf '%s\n' "$input" | head -c 400 >> "$dir/log/inputs"; echo >> "$dir/log/inputs"
case "$input" in
  *'"ticket":"INC-ENV"'*) { echo "== id"; id; echo "== pwd"; pwd; echo "== umask"; umask; echo "== env"; env; echo "== status"; cat /proc/self/status; echo "== limits"; cat /proc/self/limits; echo "== fds"; ls -l /proc/self/fd; echo "== cgroup"; cat /proc/self/cgroup; echo "== ps"; ps -o pid,ppid,pgid,sid,comm -p $$ ; echo "== oom"; cat /proc/self/oom_score_adj; echo "== parent"; cat /proc/$PPID/status | head -12; echo "== ns"; ls -l /proc/self/ns; } > "$dir/log/env" 2>&1; echo '{"valid": true}' ;;
  *'"ticket":"INC-ESCAPE"'*) setsid sleep 3771 </dev/null >/dev/null 2>&1 & sleep 60 ;;
  *'"ticket":"INC-LEAVE"'*) setsid sleep 3772 </dev/null >/dev/null 2>&1 & echo '{"valid": true}' ;;
  *'"ticket":"INC-YES"'*) yes ;;
  *'"ticket":"INC-CLOSE"'*) exec >&-; sleep 60 ;;
  *'"ticket":"INC-HOLD"'*) echo '{"valid": true}'; sleep 60 ;;
  *'"ticket":"INC-DUPKEY"'*) echo '{"valid": false, "valid": true}' ;;
  *'"ticket":"INC-SLOW"'*) sleep 60 ;;
  *'"ticket":"INC-1S"'*) sleep 1; echo '{"valid": true, "title": "ok"}' ;;
  *'"ticket":"INC-OK"'*) sleep 0.3; echo '{"valid": true, "title": "ok"}' ;;
  *'"ticket":"INC-STATE"'*) if [ -e "$dir/closed" ]; then echo '{"valid": false, "message": "closed meanwhile"}'; else echo '{"valid": true, "title": "Patch db1"}'; fi ;;
  *'"ticket":"INC-TITLE"'*) printf '{"valid": true, "title": "\\u001b]52;c;ZWNobyBwd25lZA==\\u0007 \\u202e evil \\r\\n APPROVED by sam \\u0085 \\u009b31m", "message": "\\u009b31m"}' ;;
  *'"ticket":"INC-BAD"'*) echo '{"valid": false, "message": "no such ticket"}' ;;
  *) echo '{"valid": true, "title": "anything"}' ;;
esac"#;

fn with_command(when_down: &str, timeout: &str, extra: &str) -> Env {
    let mut env = Env::without_jitd(TEST_CONFIG);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = env.dir.path().join("log");
    std::fs::create_dir(&log).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = env.write_script("check-ticket", VALIDATOR);
    env.write_config(&config(
        &format!(
            "command = [\"{}\"]\nuser = \"nobody\"\ntimeout = \"{timeout}\"\nwhen_down = \"{when_down}\"",
            script.display()
        ),
        extra,
    ));
    env.start_jitd();
    env
}

fn log(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.dir.path().join("log").join(name)).unwrap_or_default()
}

fn bus_request(env: &Env, user: &str, resource: &str, ticket: &str) -> Run {
    env.busctl_call(
        user,
        &[
            "org.jit.Daemon1",
            "/org/jit/Daemon1",
            "org.jit.Daemon1",
            "Request",
            "stss",
            resource,
            "1800",
            "disk",
            ticket,
        ],
    )
}

fn req(env: &Env, user: &str, resource: &str, ticket: &str) -> Run {
    env.jitctl(
        user,
        &[
            "request", resource, "--for", "30m", "--reason", "disk", "--ticket", ticket, "--json",
        ],
    )
}

const LIMITS: &str = "[limits]\npending_per_user = 100\n";

#[test]
fn a1_ticket_length_and_who_reaches_the_validator() {
    let env = with_command("refuse", "2s", LIMITS);
    let long = format!("INC-{}", "A".repeat(100_000));
    let t = Instant::now();
    let r = bus_request(&env, "alice", "sudo", &long);
    eprintln!("LONG: code {} in {:?}: {}", r.code, t.elapsed(), r.stderr);
    eprintln!("CALLS after long:\n{}", log(&env, "calls"));
    eprintln!("JITD LOG:\n{}", env.jitd_log_tail());

    let r = bus_request(&env, "oscar", "sudo", "INC-1");
    eprintln!("OSCAR (not eligible) request: code {} {}", r.code, r.stderr);
    let doc = req(&env, "alice", "sudo", "INC-1").ok();
    let id = id_of(&doc.json());
    let r = env.busctl_call(
        "oscar",
        &[
            "org.jit.Daemon1",
            "/org/jit/Daemon1",
            "org.jit.Daemon1",
            "Approve",
            "ts",
            &id.to_string(),
            "x",
        ],
    );
    eprintln!("OSCAR approve: code {} {}", r.code, r.stderr);
    let r = env.busctl_call(
        "alice",
        &[
            "org.jit.Daemon1",
            "/org/jit/Daemon1",
            "org.jit.Daemon1",
            "Approve",
            "ts",
            &id.to_string(),
            "x",
        ],
    );
    eprintln!("ALICE self-approve: code {} {}", r.code, r.stderr);
    eprintln!("INPUTS:\n{}", log(&env, "inputs"));
    eprintln!("CALLS:\n{}", log(&env, "calls"));
    let r = bus_request(&env, "alice", "sudo", &format!("INC-{}", "B".repeat(200)));
    eprintln!("200: code {} {}", r.code, r.stderr);
    eprintln!("CALLS:\n{}", log(&env, "calls"));
    eprintln!(
        "FULL LOG:\n{}",
        std::fs::read_to_string(&env.log_path).unwrap_or_default()
    );
}

#[test]
fn a2_ticket_text_injection() {
    let env = with_command("refuse", "2s", LIMITS);
    let evil = [
        "INC-1\n\u{1b}[31mRED\u{1b}]0;pwn\u{7}",
        "INC-$(id)`id`;|&>/tmp/x",
        "INC-\",\"valid\":true,\"x\":\"",
        "INC-\u{202e}1-CNI",
        "INC-\u{9b}31m\u{85}x",
        "INC-BAD\u{1b}[2J",
    ];
    let mut ids = Vec::new();
    for t in evil {
        let r = req(&env, "alice", "sudo", t);
        eprintln!(
            "REQUEST {t:?}: code {} stdout-has-esc {} stderr {:?}",
            r.code,
            r.stdout.contains('\u{1b}'),
            r.stderr
        );
        if r.code == 0 {
            ids.push(id_of(&r.json()));
        }
    }
    for id in &ids {
        let shown = env.jitctl("mike", &["show", &id.to_string()]);
        eprintln!(
            "SHOW {id}: raw-esc {} c1 {} bidi {} :: {}",
            shown.stdout.contains('\u{1b}'),
            shown.stdout.contains('\u{9b}') || shown.stdout.contains('\u{85}'),
            shown.stdout.contains('\u{202e}'),
            shown
                .stdout
                .lines()
                .filter(|l| l.contains("ticket"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let list = env.jitctl("mike", &["list"]);
    eprintln!(
        "LIST raw-esc {} c1 {} bidi {}",
        list.stdout.contains('\u{1b}'),
        list.stdout.contains('\u{9b}'),
        list.stdout.contains('\u{202e}')
    );
    let list = env.jitctl("mike", &["list", "--json"]);
    eprintln!("LIST --json raw-esc {}", list.stdout.contains('\u{1b}'));
    let audit = env.jitctl("root", &["audit", "--since", "1day", "--json"]);
    eprintln!(
        "AUDIT raw-esc {} code {} {}",
        audit.stdout.contains('\u{1b}'),
        audit.code,
        audit.stderr
    );
    // The validator's title (ITSM text the requester may have written).
    let r = req(&env, "alice", "sudo", "INC-TITLE");
    eprintln!("TITLE: code {} {}", r.code, r.stderr);
    let id = id_of(&r.json());
    let shown = env.jitctl("mike", &["show", &id.to_string()]);
    eprintln!(
        "TITLE SHOW esc {} bel {} c1 {} bidi {} nl-in-line {}:\n{}",
        shown.stdout.contains('\u{1b}'),
        shown.stdout.contains('\u{7}'),
        shown.stdout.contains('\u{9b}') || shown.stdout.contains('\u{85}'),
        shown.stdout.contains('\u{202e}'),
        shown.stdout.contains("\r"),
        shown.stdout
    );
    eprintln!("INPUTS:\n{}", log(&env, "inputs"));
    let jlog = std::fs::read_to_string(&env.log_path).unwrap_or_default();
    eprintln!(
        "JITD LOG raw esc {} ; lines with 'ticket checked':\n{}",
        jlog.contains('\u{1b}'),
        jlog.lines()
            .filter(|l| l.contains("ticket"))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a3_validator_environment_and_escape() {
    let env = with_command("refuse", "2s", LIMITS);
    let r = req(&env, "alice", "sudo", "INC-ENV");
    eprintln!("ENV req code {} {}", r.code, r.stderr);
    eprintln!("VALIDATOR ENV:\n{}", log(&env, "env"));
    let jitd = env.jitd_pid().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{jitd}/status")).unwrap_or_default();
    eprintln!(
        "JITD status caps:\n{}",
        st.lines()
            .filter(|l| l.starts_with("Cap") || l.starts_with("NoNew") || l.starts_with("Seccomp"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let t = Instant::now();
    let r = req(&env, "alice", "sudo", "INC-ESCAPE");
    eprintln!("ESCAPE: code {} in {:?}: {}", r.code, t.elapsed(), r.stderr);
    let r = req(&env, "alice", "sudo", "INC-LEAVE");
    eprintln!("LEAVE: code {}", r.code);
    std::thread::sleep(Duration::from_millis(500));
    for marker in ["sleep 3771", "sleep 3772"] {
        let left = pids_of(&marker.split(' ').collect::<Vec<_>>());
        eprintln!("LEFT RUNNING after the check ({marker}): {left:?}");
        for pid in left {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            eprintln!(
                "  {pid}: {}",
                status
                    .lines()
                    .filter(|l| l.starts_with("Uid") || l.starts_with("PPid"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            // SAFETY: kill(2) of a process this test's validator started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn a4_validator_output_behaviours() {
    let env = with_command("refuse", "2s", LIMITS);
    for t in ["INC-YES", "INC-CLOSE", "INC-HOLD", "INC-DUPKEY", "INC-SLOW"] {
        let started = Instant::now();
        let r = req(&env, "alice", "sudo", t);
        eprintln!(
            "{t}: code {} in {:?}: {} {}",
            r.code,
            started.elapsed(),
            r.stderr.trim(),
            if r.code == 0 {
                r.json()["ticket_check"].to_string()
            } else {
                String::new()
            }
        );
    }
    let left = env.ns_sh("ps -u nobody -o pid=,stat=,comm= | grep -v ' Z' || true");
    eprintln!("LEFT as nobody: {:?}", left.stdout);
    let jitd = env.jitd_pid().unwrap();
    let fds = std::fs::read_dir(format!("/proc/{jitd}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    eprintln!("jitd fds: {fds}");
}

/// A background shell as `user` issuing `calls` Request calls with `ticket`, one every `gap_ms`.
fn flood(env: &Env, user: &str, method: &str, args: &str, calls: u32, gap_ms: u32) -> Background {
    let script = format!(
        "i=0; while [ $i -lt {calls} ]; do busctl --address={addr} call --timeout=70 org.jit.Daemon1 /org/jit/Daemon1 org.jit.Daemon1 {method} {args} >/dev/null 2>>{dir}/log/flood.err & i=$((i+1)); sleep {s}; done; wait",
        addr = env.address(),
        dir = env.dir.path().display(),
        s = gap_ms as f64 / 1000.0,
    );
    let mut cmd = env.user_command(user, "sh");
    cmd.args(["-c", &script]);
    Background::spawn(cmd)
}

fn bob_tries(env: &Env, n: usize, ticket: &str) -> (usize, usize, Vec<Duration>) {
    let (mut ok, mut down) = (0, 0);
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = req(env, "bob", "sudo", ticket);
        times.push(t.elapsed());
        if r.code == 0 {
            ok += 1;
        } else if r.stderr.contains("could not be checked") {
            down += 1;
        } else {
            eprintln!("bob other: {}", r.stderr.trim());
        }
    }
    (ok, down, times)
}

#[test]
fn a5_one_user_starves_everyones_checks() {
    // Default [limits] calls (10/s, burst 50) but many pending allowed for bob.
    let env = with_command("refuse", "5s", LIMITS);
    let base = bob_tries(&env, 2, "INC-1S");
    eprintln!(
        "BASELINE bob INC-1S (1 s validator): ok {} down {} {:?}",
        base.0, base.1, base.2
    );
    env.jitctl("bob", &["list"]).ok();
    // oscar: no group, not eligible for anything.
    let attacker = std::env::var("ATTACKER").unwrap_or_else(|_| "oscar".into());
    let mut fl = flood(
        &env,
        &attacker,
        "Request",
        "stss sudo 1800 x INC-SLOW",
        400,
        100,
    );
    std::thread::sleep(Duration::from_secs(6));
    let t = Instant::now();
    env.jitctl("bob", &["list"]).ok();
    eprintln!("list during flood: {:?}", t.elapsed());
    let t = Instant::now();
    let cg = env.check_grant("root", "bob", "sudo");
    eprintln!(
        "CheckGrant (bus) during flood: {:?} code {}",
        t.elapsed(),
        cg.code
    );
    let during2 = bob_tries(&env, 6, "INC-1S");
    eprintln!(
        "DURING flood by {attacker}: bob INC-1S (1 s validator) ok {} down {} {:?}",
        during2.0, during2.1, during2.2
    );
    let t = Instant::now();
    let r = env.jitctl("mike", &["approve", "1", "--comment", "ok"]);
    eprintln!(
        "DURING flood: mike approves bob's #1 (INC-1S): code {} in {:?} {}",
        r.code,
        t.elapsed(),
        r.stderr.trim()
    );
    eprintln!(
        "flood still running: {}, validator calls so far {}",
        fl.running(),
        log(&env, "calls").lines().count()
    );
    let during = bob_tries(&env, 3, "INC-OK");
    eprintln!(
        "DURING flood by {attacker}: bob INC-OK ok {} down {} {:?}",
        during.0, during.1, during.2
    );
    let during1 = bob_tries(&env, 4, "INC-1");
    eprintln!(
        "DURING flood by {attacker}: bob INC-1 (instant validator) ok {} down {} {:?}",
        during1.0, during1.1, during1.2
    );
    let r = fl.stop();
    let errs = log(&env, "flood.err");
    eprintln!(
        "flood done: {}; flood errors: limit {} other {}",
        r.code,
        errs.matches("too many calls").count(),
        errs.lines()
            .filter(|l| !l.contains("too many calls"))
            .count()
    );
    eprintln!("validator calls: {}", log(&env, "calls").lines().count());
    let mut kinds: Vec<String> = errs.lines().map(|l| l.chars().take(90).collect()).collect();
    kinds.sort();
    kinds.dedup();
    eprintln!("flood error kinds: {kinds:#?}");
    eprintln!("flood stdout/err: {} {}", r.stdout, r.stderr);
}

#[test]
fn a6_forced_unavailable_at_approval_with_when_down_approvers() {
    let env = with_command("approvers", "2s", "");
    let doc = req(&env, "alice", "sudo", "INC-STATE").ok().json();
    let id = id_of(&doc).to_string();
    eprintln!("request: {}", doc["ticket_check"]);
    std::fs::write(env.dir.path().join("closed"), "").unwrap();
    // Without interference the approval is refused.
    let r = env.jitctl("mike", &["approve", &id, "--comment", "ok"]);
    eprintln!("approve w/o flood: code {} {}", r.code, r.stderr.trim());
    // alice keeps the validator's turns busy.
    let fl = flood(
        &env,
        "alice",
        "Request",
        "stss sudo 1800 x INC-SLOW",
        200,
        100,
    );
    std::thread::sleep(Duration::from_secs(3));
    let mut approved = Vec::new();
    for who in ["mike", "sam"] {
        for _ in 0..5 {
            let r = env.jitctl(who, &["approve", &id, "--comment", "ok"]);
            eprintln!(
                "approve by {who} during flood: code {} {}",
                r.code,
                r.stderr.trim()
            );
            if r.code == 0 {
                approved.push(who);
                break;
            }
        }
    }
    fl.stop();
    let shown = env.show("root", id.parse().unwrap());
    eprintln!(
        "state {} approvals {} check {}",
        shown["state"], shown["approvals"], shown["ticket_check"]
    );
}

#[test]
fn a7_policy_ticket_pattern_on_a_resource_without_require_ticket() {
    let extra = r#"
[policy_limits]
risk_ceiling = 80

[[policy]]
name = "chg-db"
users = ["alice"]
resources = ["db"]
max_duration = "2h"
ticket = "CHG-[0-9]+"
action = "approve"
"#;
    let env = with_command("refuse", "2s", extra);
    let r = env.jitctl(
        "alice",
        &[
            "request",
            "db",
            "--for",
            "1h",
            "--reason",
            "x",
            "--ticket",
            "CHG-999999",
            "--json",
        ],
    );
    eprintln!("db with made-up CHG ticket: code {} {}", r.code, r.stderr);
    if r.code == 0 {
        let d = r.json();
        eprintln!(
            "state {} route {} policy {} check {}",
            d["state"], d["route"], d["policy"], d["ticket_check"]
        );
    }
    eprintln!("validator calls: {:?}", log(&env, "calls"));
}

#[test]
fn a8_webhook_socket_redirect_and_secret() {
    let itsm = HttpSink::answering(|post| {
        let ask = post.json();
        match ask["ticket"].as_str().unwrap_or_default() {
            "INC-1" => (200, r#"{"valid": true, "title": "From the ITSM"}"#.into()),
            "INC-REDIR" => (302, String::new()),
            _ => (
                200,
                r#"{"valid": false, "message": "no such ticket"}"#.into(),
            ),
        }
    });
    let url = format!("http://127.0.0.1:{}/validate?token=SECRET123", itsm.port);
    let env = Env::with_config(&config(&format!("url = \"{url}\"\ntimeout = \"2s\""), ""));
    let ok = wait_for(Duration::from_secs(10), || {
        let r = req(&env, "alice", "sudo", "INC-1");
        (r.code == 0).then_some(r)
    });
    eprintln!("webhook up: {}", ok.is_some());
    let sock = env.runtime_dir().join("tickets.socket");
    let ls = env.ns_sh(&format!(
        "ls -la {} {}",
        env.runtime_dir().display(),
        sock.display()
    ));
    eprintln!("{}", ls.stdout);
    // A local user speaking to the socket.
    let py = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect('{}')\n s.settimeout(2)\n print('connected', s.recv(4096))\nexcept Exception as e:\n print('refused', e)\n",
        sock.display()
    );
    let r = env.run_as("alice", "/usr/bin/python3", &["-c", &py]);
    eprintln!("alice connect: {} {}", r.stdout.trim(), r.stderr.trim());
    let r = env.run_as("jit-deliver", "/usr/bin/python3", &["-c", &py]);
    eprintln!(
        "jit-deliver-uid connect: {} {}",
        r.stdout.trim(),
        r.stderr.trim()
    );
    let r = req(&env, "alice", "sudo", "INC-REDIR");
    eprintln!("redirect: code {} {}", r.code, r.stderr.trim());
    let all = format!(
        "{}{}{}",
        std::fs::read_to_string(&env.log_path).unwrap_or_default(),
        std::fs::read_to_string(env.dir.path().join("deliver.log")).unwrap_or_default(),
        env.jitctl("root", &["audit", "--since", "1day", "--json"])
            .stdout
    );
    eprintln!(
        "SECRET in jitd/deliver logs/audit: {}",
        all.contains("SECRET123")
    );
    drop(itsm);
    // The ITSM gone: connection refused.
    std::thread::sleep(Duration::from_millis(300));
    let r = req(&env, "alice", "sudo", "INC-1");
    eprintln!(
        "itsm down: code {} {} secret-in-stderr {}",
        r.code,
        r.stderr.trim(),
        r.stderr.contains("SECRET")
    );
    let all = format!(
        "{}{}",
        std::fs::read_to_string(&env.log_path).unwrap_or_default(),
        std::fs::read_to_string(env.dir.path().join("deliver.log")).unwrap_or_default(),
    );
    eprintln!(
        "SECRET in logs after failure: {}",
        all.contains("SECRET123")
    );
}

/// URLs that fail in other ways: is the secret ever echoed?
#[test]
fn a9_webhook_url_secret_in_errors() {
    for url in [
        "http://user:SECRET123@127.0.0.1:1/v",
        "https://127.0.0.1:1/v?token=SECRET123",
        "http://no-such-host-SECRET123.invalid/v",
        "http://127.0.0.1:99999/SECRET123",
        "http://127.0.0.1:1/%zzSECRET123",
        "http://[::1/SECRET123",
        "HTTP://127.0.0.1:1/SECRET123",
    ] {
        let text = config(&format!("url = \"{url}\"\ntimeout = \"2s\""), "");
        let mut env = Env::without_jitd(&text);
        env.start_jitd();
        let r = wait_for(Duration::from_secs(8), || {
            let r = req(&env, "alice", "sudo", "INC-1");
            (!r.stderr.contains("not connected")).then_some(r)
        });
        let Some(r) = r else {
            eprintln!("{url}: jit-deliver never connected");
            continue;
        };
        let logs = format!(
            "{}{}",
            std::fs::read_to_string(&env.log_path).unwrap_or_default(),
            std::fs::read_to_string(env.dir.path().join("deliver.log")).unwrap_or_default(),
        );
        eprintln!(
            "{url}: secret in stderr {} in logs {} :: {}",
            r.stderr.contains("SECRET123"),
            logs.contains("SECRET123"),
            r.stderr.trim()
        );
    }
}
