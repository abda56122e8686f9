//! Notifications end to end: a real SMTP server and a real HTTP server on
//! 127.0.0.1 capture what jitd sends (W1.4-W1.6); hung and dead endpoints,
//! and kill -9, neither delay requests nor lose or repeat deliveries.

use jit_tests::sinks::{free_port, HttpSink, SmtpSink};
use jit_tests::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const HOSTILE: &str = "<script>alert(1)</script> *bold* & \x1b[2J\x1b]52;c;eA==\x07 done";

/// [`TEST_CONFIG`] with a `[notify]` section: email through `smtp_port`,
/// webhooks at `http_port`, short timeouts and retries.
fn notify_config(smtp_port: Option<u16>, http_port: u16, who: &str) -> String {
    notify_config_on(TEST_CONFIG, smtp_port, http_port, who)
}

/// `base` with the `[notify]` section of [`notify_config`].
fn notify_config_on(base: &str, smtp_port: Option<u16>, http_port: u16, who: &str) -> String {
    let smtp = smtp_port.map_or(String::new(), |port| {
        format!(
            "[notify.smtp]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"jit <jit@example.test>\"\n"
        )
    });
    format!(
        r#"{base}
[notify]
email_domain = "example.test"
{who}
timeout = "1s"
retry_first = "1s"
retry_max = "1s"

[notify.addresses]
sam = "sam.security@corp.test"

{smtp}
[notify.hooks.slack]
kind = "slack"
url = "http://127.0.0.1:{http_port}/slack"

[notify.hooks.teams]
kind = "teams"
url = "http://127.0.0.1:{http_port}/teams"

[notify.hooks.json]
kind = "json"
url = "http://127.0.0.1:{http_port}/json"
"#
    )
}

fn delivered(doc: &Value) -> Vec<Value> {
    doc["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications in {doc:#}"))
        .clone()
}

/// Waits until every notification of request `id` is delivered.
fn wait_all_delivered(env: &Env, id: u64, count: usize) -> Vec<Value> {
    wait_for(Duration::from_secs(10), || {
        let notes = delivered(&env.show("root", id));
        (notes.len() == count && notes.iter().all(|n| n["state"] == "delivered")).then_some(notes)
    })
    .unwrap_or_else(|| {
        panic!(
            "not all delivered: {:#}{}",
            env.show("root", id),
            env.jitd_log_tail()
        )
    })
}

#[test]
fn approvers_and_requester_are_told_by_email_slack_and_teams_with_hostile_text_escaped() {
    let smtp = SmtpSink::start();
    let http = HttpSink::start();
    let env = Env::with_config(&notify_config(
        Some(smtp.port),
        http.port,
        r#"requester = ["email", "hook:teams"]
security = ["email", "hook:slack"]
manager = ["email"]
owner = ["email", "hook:json"]"#,
    ));
    let run = env.jitctl(
        "alice",
        &[
            "request", "sudo", "--for", "1h", "--reason", HOSTILE, "--ticket", "CHG-<7>", "--json",
        ],
    );
    let id = id_of(&run.ok().json());

    // Dual route: managers (mike, maria) and security (sam, maria), once each.
    let mails = smtp.wait_for(3, Duration::from_secs(10));
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "maria@example.test",
            "mike@example.test",
            "sam.security@corp.test"
        ]
    );
    for mail in &mails {
        assert_eq!(mail.from, "jit@example.test");
        let subject = mail.header("Subject").unwrap();
        assert!(subject.contains("alice requests sudo for 1h"), "{subject}");
        assert!(subject.contains("approval needed"), "{subject}");
        let text = mail.part("text/plain");
        assert!(text.contains(&format!("jitctl approve {id}")), "{text}");
        assert!(
            text.contains("<script>alert(1)</script> *bold* &"),
            "{text}"
        );
        assert!(
            text.contains("\\u{1b}[2J\\u{1b}]52;c;eA==\\u{7} done"),
            "{text}"
        );
        assert!(text.contains("CHG-<7>"), "{text}");
        assert!(text.contains("privileged +20"), "risk factors: {text}");
        assert!(!mail.data.contains('\x1b'), "escape character in the mail");
        let html = mail.part("text/html");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; *bold* &amp;"),
            "{html}"
        );
        assert!(html.contains("CHG-&lt;7&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
    let posts = http.wait_for(1, Duration::from_secs(10));
    assert_eq!(posts[0].path, "/slack");
    let slack = posts[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        slack.contains("`&lt;script&gt;alert(1)&lt;/script&gt; *bold* &amp; \\u{1b}[2J"),
        "{slack}"
    );
    assert!(!slack.contains("<script>"), "{slack}");
    assert!(posts[0].header("X-Jit-Notification").is_some());

    // Approval: alice hears it, with the expiry, by email and Teams.
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    let expires = state_of(&env.show("alice", id)).to_owned();
    assert_eq!(expires, "active");
    let expires_at = env.show("alice", id)["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let mails = smtp.wait_for(4, Duration::from_secs(10));
    let granted = &mails[3];
    assert_eq!(granted.to, ["alice@example.test"]);
    assert!(granted
        .header("Subject")
        .unwrap()
        .contains(&format!("request {id} approved")));
    assert!(
        granted.part("text/plain").contains(&expires_at),
        "{}",
        granted.data
    );
    let teams = http.wait_for(2, Duration::from_secs(10))[1].clone();
    assert_eq!(teams.path, "/teams");
    let card = teams.body.clone();
    assert!(card.contains("AdaptiveCard"), "{card}");
    assert!(
        card.contains(r"\\<script\\>alert\\(1\\)\\</script\\> \\*bold\\*"),
        "{card}"
    );

    // Denial: bob hears the owner's comment (escaped); the owner got a JSON webhook.
    let db = id_of(&env.request("bob", "db", "2h", "db work & <b>tags</b>"));
    let json = http.wait_for(3, Duration::from_secs(10))[2].json();
    assert_eq!(json["event"], "scored");
    assert_eq!(json["request"], db);
    assert_eq!(json["fields"]["Reason"], "db work & <b>tags</b>");
    assert!(json["action"]
        .as_str()
        .unwrap()
        .contains(&format!("jitctl approve {db}")));
    env.jitctl(
        "olivia",
        &[
            "deny",
            &db.to_string(),
            "--comment",
            "<i>use</i> the runbook",
        ],
    )
    .ok();
    let mails = smtp.wait_for(6, Duration::from_secs(10));
    let denial = mails
        .iter()
        .find(|m| m.to == ["bob@example.test"])
        .expect("bob's denial mail");
    assert!(denial.header("Subject").unwrap().contains("denied"));
    assert!(denial
        .part("text/html")
        .contains("&lt;i&gt;use&lt;/i&gt; the runbook"));

    // Delivery state, per notification, in show --json and in the human view.
    let notes = wait_all_delivered(&env, id, 6);
    let targets: Vec<&str> = notes.iter().map(|n| n["to"].as_str().unwrap()).collect();
    assert!(
        targets.contains(&"slack") && targets.contains(&"alice@example.test"),
        "{notes:#?}"
    );
    for n in &notes {
        assert_eq!(n["attempts"], 1, "{n:#}");
        assert!(n["delivered_at"].is_string());
    }
    let human = env.jitctl("alice", &["show", &id.to_string()]).ok().stdout;
    assert!(
        human.contains("notified") && human.contains("delivered, 1 attempt"),
        "{human}"
    );
}

#[test]
fn security_hears_of_break_glass_overdue_justification_and_incidents_at_once() {
    let smtp = SmtpSink::start();
    let http = HttpSink::start();
    let base = TEST_CONFIG
        .replacen(
            "[[resource]]",
            "[break_glass]\njustify_within = \"2s\"\n\n[[resource]]",
            1,
        )
        .replacen(
            "max_duration = \"4h\"",
            "max_duration = \"4h\"\nbreak_glass = [\"group:admins\"]",
            1,
        );
    let env = Env::with_config(&notify_config_on(
        &base,
        Some(smtp.port),
        http.port,
        r#"security = ["email", "hook:slack"]
escalation = ["email:oncall@example.test"]"#,
    ));
    let started = Instant::now();
    env.jitctl("alice", &["break-glass", "sudo", "--reason", HOSTILE])
        .ok();
    let security = ["maria@example.test", "sam.security@corp.test"];
    let mails = smtp.wait_for(2, Duration::from_secs(5));
    let slack = http.wait_for(1, Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "security told at once"
    );
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, security);
    let subject = mails[0].header("Subject").unwrap();
    assert!(
        subject.contains("BREAK-GLASS by alice on sudo"),
        "{subject}"
    );
    let html = mails[0].part("text/html");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!mails[0].data.contains('\x1b'));
    let text = slack[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("BREAK-GLASS") && text.contains("&lt;script&gt;"),
        "{text}"
    );
    let id = id_of(&env.jitctl_json("alice", &["list", "--json"])[0]);

    // No justification within 2s: security and the escalation address hear it.
    let mails = smtp.wait_for(5, Duration::from_secs(10));
    let overdue: Vec<&jit_tests::sinks::Mail> = mails[2..]
        .iter()
        .filter(|m| {
            m.header("Subject")
                .unwrap()
                .contains("justification overdue")
        })
        .collect();
    let mut to: Vec<String> = overdue.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "maria@example.test",
            "oncall@example.test",
            "sam.security@corp.test"
        ]
    );

    // An unjustified verdict opens an incident: security hears that too.
    let review = |user: &str, verdict: &str| {
        env.jitctl(
            user,
            &[
                "review",
                &id.to_string(),
                "--verdict",
                verdict,
                "--comment",
                "<no> ticket",
            ],
        )
        .ok();
    };
    review("mike", "justified");
    review("sam", "unjustified");
    let mails = smtp.wait_for(7, Duration::from_secs(10));
    let incident = mails
        .iter()
        .find(|m| m.header("Subject").unwrap().contains("security incident"))
        .unwrap_or_else(|| panic!("no incident mail: {mails:#?}"));
    assert!(incident.part("text/html").contains("&lt;no&gt; ticket"));
    let events: Vec<String> = wait_all_delivered(&env, id, 10)
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_owned())
        .collect();
    for event in ["break_glass", "justification_overdue", "incident_opened"] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

#[test]
fn the_requester_is_warned_before_expiry_and_told_of_expiry_lapse_and_revocation() {
    let http = HttpSink::start();
    // expiry_warning is 1s in the test config; pending requests lapse after 3s.
    let base = config_with_pending_ttl("3s");
    let env = Env::with_config(&notify_config_on(
        &base,
        None,
        http.port,
        r#"requester = ["hook:json"]
owner = []"#,
    ));
    // Auto-approved: alice read that in jitctl's reply, no message for it.
    let short = id_of(&env.request("alice", "logs", "3s", "quick look"));
    let revoked = id_of(&env.request("bob", "db", "2h", "db work"));
    env.approve("olivia", revoked).ok();
    env.jitctl(
        "sam",
        &["revoke", &revoked.to_string(), "--comment", "incident <42>"],
    )
    .ok();
    let lapsing = id_of(&env.request("alice", "db", "2h", "nobody will answer"));
    let posts = http.wait_for(5, Duration::from_secs(10));
    let mut seen: Vec<(u64, String)> = posts
        .iter()
        .map(|p| {
            let doc = p.json();
            (
                doc["request"].as_u64().unwrap(),
                doc["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![
        (short, "expired".to_owned()),
        (short, "expiry_warning".to_owned()),
        (revoked, "granted".to_owned()),
        (revoked, "revoked".to_owned()),
        (lapsing, "lapsed".to_owned()),
    ];
    want.sort();
    assert_eq!(seen, want, "{posts:#?}");
    let revocation = posts
        .iter()
        .map(|p| p.json())
        .find(|d| d["event"] == "revoked")
        .unwrap();
    assert_eq!(revocation["fields"]["Revoked by"], "sam");
    assert_eq!(revocation["fields"]["Comment"], "incident <42>");
    let warning = posts
        .iter()
        .map(|p| p.json())
        .find(|d| d["event"] == "expiry_warning")
        .unwrap();
    assert!(warning["action"]
        .as_str()
        .unwrap()
        .contains(&format!("jitctl extend {short}")));
}

#[test]
fn a_hung_webhook_delays_nothing_and_gets_the_message_when_it_answers_again() {
    let http = HttpSink::start();
    http.set_hung(true);
    let env = Env::with_config(&notify_config(
        None,
        http.port,
        r#"security = ["hook:json"]
manager = ["hook:json"]
requester = ["hook:json"]"#,
    ));
    let started = Instant::now();
    let id = id_of(&env.request("alice", "sudo", "1h", "hung endpoint"));
    let request_took = started.elapsed();
    let started = Instant::now();
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    let approvals_took = started.elapsed();
    let started = Instant::now();
    env.jitctl("alice", &["list"]).ok();
    let list_took = started.elapsed();
    assert!(
        request_took < Duration::from_secs(1),
        "request took {request_took:?}"
    );
    assert!(
        approvals_took < Duration::from_secs(2),
        "two approvals took {approvals_took:?}"
    );
    assert!(
        list_took < Duration::from_secs(1),
        "list took {list_took:?}"
    );
    // The PAM path answers at once too.
    let check = env.check_grant("root", "alice", "sudo");
    assert!(
        check.ok().stdout.starts_with("btxt true"),
        "active grant expected"
    );

    // Attempts time out (1s) and are retried.
    let retried = wait_for(Duration::from_secs(10), || {
        let notes = delivered(&env.show("root", id));
        notes
            .iter()
            .any(|n| n["attempts"].as_u64() >= Some(2) && n["state"] == "pending")
            .then_some(notes)
    });
    let notes = retried.unwrap_or_else(|| panic!("no retry: {:#}", env.show("root", id)));
    assert!(
        notes
            .iter()
            .any(|n| n["last_error"].as_str().is_some_and(|e| !e.is_empty())),
        "{notes:#?}"
    );
    assert!(http.posts().is_empty());

    http.set_hung(false);
    // approval needed (one hook, both roles) and granted.
    let notes = wait_all_delivered(&env, id, 2);
    let posts = http.wait_for(2, Duration::from_secs(5));
    let mut events: Vec<String> = posts
        .iter()
        .map(|p| p.json()["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    events.sort();
    assert_eq!(events, ["granted", "scored"]);
    assert!(notes.iter().all(|n| n["attempts"].as_u64() >= Some(2)));
}

#[test]
fn a_hundred_queued_notifications_survive_kill_9_and_arrive_once_each() {
    let port = free_port();
    let mut env = Env::with_config(&notify_config_on(
        &config_with_many_pending(),
        None,
        port,
        r#"owner = ["hook:json"]"#,
    ));
    // Nothing listens: every attempt is refused and retried.
    for i in 0..100 {
        let doc = env.request(
            if i % 2 == 0 { "alice" } else { "bob" },
            "db",
            "2h",
            &format!("job {i}"),
        );
        assert_eq!(state_of(&doc), "pending");
    }
    let pending = env
        .sqlite("SELECT COUNT(*) FROM notifications WHERE state = 'pending'")
        .ok()
        .stdout;
    assert_eq!(pending.trim(), "100");
    env.kill_jitd();

    let http = HttpSink::on_port(port);
    env.start_jitd();
    http.wait_for(100, Duration::from_secs(20));
    let all_delivered = wait_for(Duration::from_secs(10), || {
        let states = env
            .sqlite("SELECT state, COUNT(*) FROM notifications GROUP BY state")
            .ok()
            .stdout;
        (states.trim() == "delivered|100").then_some(())
    });
    assert!(all_delivered.is_some(), "{}", env.jitd_log_tail());
    // A period in which nothing may happen: no delivery is sent again.
    std::thread::sleep(Duration::from_millis(1500));
    let posts = http.posts().len();
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    for post in http.posts() {
        let id = post.json()["id"].as_u64().expect("id");
        assert_eq!(
            post.header("X-Jit-Notification"),
            Some(id.to_string().as_str())
        );
        *by_id.entry(id).or_default() += 1;
    }
    assert_eq!(by_id.len(), 100, "distinct deliveries");
    assert_eq!(posts, 100, "some were sent twice: {by_id:?}");
}

#[test]
fn notification_config_errors_point_at_the_line() {
    let env = Env::without_jitd(TEST_CONFIG);
    let secrets = env.dir.path().join("notify.secrets");
    std::fs::write(&secrets, "slack = \"https://hooks.example.test/T/B/x\"\n").unwrap();
    let chmod = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let check = |extra: &str| {
        let path = env.dir.path().join("check.toml");
        std::fs::write(&path, format!("{TEST_CONFIG}\n{extra}")).unwrap();
        let mut cmd = std::process::Command::new(jitd_bin());
        cmd.arg("--check-config").arg(&path);
        env.run(cmd)
    };
    let line = TEST_CONFIG.lines().count() + 2;
    let with_secret = format!(
        "[notify]\nsecrets = \"{}\"\nsecurity = [\"hook:sec\"]\n[notify.hooks.sec]\nkind = \"slack\"\nurl_secret = \"slack\"\n",
        secrets.display()
    );
    chmod(0o644);
    let run = check(&with_secret).code(1);
    assert!(
        run.stderr
            .contains(&format!("check.toml:{}:11: secrets file", line + 1))
            && run
                .stderr
                .contains("accessible by group or others (mode 0644)"),
        "{run}"
    );
    chmod(0o600);
    check(&with_secret).ok();
    let cases = [
        (
            "[notify]\nsecurity = [\"hook:nope\"]\n",
            format!("{}:13: no webhook named 'nope'", line + 1),
        ),
        (
            "[notify]\nowner = [\"pager\"]\n",
            format!("{}:10: 'pager' is not a target", line + 1),
        ),
        (
            "[notify]\nescalation = [\"email:not an address\"]\n",
            format!("{}:15: 'not an address' is not an email address", line + 1),
        ),
        (
            "[notify]\nbogus = 1\n",
            format!("{}:1: unknown field `bogus`", line + 1),
        ),
    ];
    for (extra, want) in cases {
        let run = check(extra).code(1);
        assert!(run.stderr.contains(&want), "want {want}:{run}");
    }
}

/// One frame of jitd's delivery protocol: 4-byte big-endian length, JSON.
fn read_frame(stream: &mut std::os::unix::net::UnixStream) -> std::io::Result<Value> {
    use std::io::Read;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body).expect("JSON frame"))
}

fn write_frame(stream: &mut std::os::unix::net::UnixStream, body: &[u8]) {
    use std::io::Write;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let _ = stream.write_all(&frame);
}

#[test]
fn the_worker_is_unprivileged_never_opens_the_database_and_only_it_may_connect() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let http = HttpSink::start();
    let env = Env::with_config(&notify_config(None, http.port, r#"owner = ["hook:json"]"#));
    let id = id_of(&env.request("alice", "db", "2h", "unprivileged worker"));
    wait_all_delivered(&env, id, 1);
    assert_eq!(http.posts().len(), 1);

    // It runs as jit-deliver, with no other group.
    let pid = env.deliver_pid().expect("jit-deliver running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    let me = DELIVER_USER.1.to_string();
    assert_eq!(line("Uid:"), [me.as_str(); 4], "{status}");
    assert_eq!(line("Gid:"), [me.as_str(); 4], "{status}");
    assert!(line("Groups:").is_empty(), "{status}");
    // It holds nothing of jitd's state open...
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(
            !target.starts_with(&env.state_dir),
            "the worker has {} open",
            target.display()
        );
    }
    // ... and could not open it: the database stays root's alone.
    let db = std::fs::metadata(env.db_path()).unwrap();
    assert_eq!((db.mode() & 0o777, db.uid()), (0o600, 0));
    let read = env.run_as(DELIVER_USER.0, "cat", &[env.db_path().to_str().unwrap()]);
    assert_ne!(read.code, 0, "jit-deliver read the database: {read}");

    // The socket is root's and the jit-deliver group's; anyone else is
    // refused by the file mode (and by jitd's SO_PEERCRED check).
    let socket = std::fs::metadata(env.deliver_socket()).unwrap();
    assert_eq!(
        (
            socket.permissions().mode() & 0o777,
            socket.uid(),
            socket.gid()
        ),
        (0o660, 0, DELIVER_USER.1)
    );
    let pam = std::fs::metadata(env.private_socket()).unwrap();
    assert_eq!(
        pam.permissions().mode() & 0o077,
        0,
        "pam.socket stays root's"
    );
}

#[test]
fn a_worker_killed_mid_delivery_or_acknowledging_what_it_was_not_handed_loses_nothing() {
    let http = HttpSink::start();
    http.set_hung(true);
    // Long enough an attempt to kill the worker in the middle of it.
    let config = notify_config(None, http.port, r#"owner = ["hook:json"]"#)
        .replace("timeout = \"1s\"", "timeout = \"30s\"");
    let mut env = Env::with_config(&config);
    let id = id_of(&env.request("alice", "db", "2h", "kill the worker"));
    std::thread::sleep(Duration::from_secs(2));
    let note = &delivered(&env.show("root", id))[0];
    assert_eq!(
        (note["state"].as_str(), note["attempts"].as_u64()),
        (Some("pending"), Some(0)),
        "{note:#}"
    );
    env.kill_deliver();

    // A peer that acknowledges another delivery than the one it was handed,
    // or sends an oversized frame, is dropped; nothing is recorded.
    let second = id_of(&env.request("bob", "db", "2h", "rogue worker"));
    for reply in [
        Some(br#"{"id":999999,"outcome":"delivered"}"#.to_vec()),
        None,
    ] {
        let mut rogue = std::os::unix::net::UnixStream::connect(env.deliver_socket()).unwrap();
        rogue
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let hello = read_frame(&mut rogue).expect("hello");
        assert_eq!(hello["hello"]["version"], 1, "{hello}");
        let job = read_frame(&mut rogue).expect("a delivery");
        assert!(job["deliver"]["id"].as_u64().is_some(), "{job}");
        match reply {
            Some(body) => write_frame(&mut rogue, &body),
            None => {
                use std::io::Write;
                let _ = rogue.write_all(&u32::MAX.to_be_bytes());
            }
        }
        let after = read_frame(&mut rogue);
        assert!(
            after.is_err(),
            "jitd went on with a rogue worker: {after:?}"
        );
    }
    for request in [id, second] {
        let note = &delivered(&env.show("root", request))[0];
        assert_eq!(
            (note["state"].as_str(), note["attempts"].as_u64()),
            (Some("pending"), Some(0)),
            "{note:#}"
        );
    }

    http.set_hung(false);
    env.start_deliver();
    let first = &wait_all_delivered(&env, id, 1)[0];
    assert_eq!(
        first["attempts"], 1,
        "the killed attempt does not count: {first:#}"
    );
    wait_all_delivered(&env, second, 1);
    let posts = http.wait_for(2, Duration::from_secs(5));
    let mut requests: Vec<u64> = posts
        .iter()
        .map(|p| p.json()["request"].as_u64().expect("request"))
        .collect();
    requests.sort();
    requests.dedup();
    assert_eq!(requests, [id, second], "at least once each");
}

#[test]
fn jitd_links_no_smtp_tls_or_http_code() {
    let symbols = |bin: std::path::PathBuf| {
        let out = std::process::Command::new("nm")
            .arg("-C")
            .arg(&bin)
            .output()
            .expect("nm (binutils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let worker = symbols(jit_deliver_bin());
    if !worker.contains("rustls::") {
        eprintln!("stripped binaries: nothing to compare");
        return;
    }
    assert!(worker.contains("ureq::") && worker.contains("lettre::transport::smtp"));
    let jitd = symbols(jitd_bin());
    for network in ["rustls::", "ureq::", "lettre::transport", "webpki::"] {
        assert!(!jitd.contains(network), "jitd links {network} code");
    }
}

/// A hostile SMTP server that trickles its greeting (a byte every half
/// second, each under `notify.timeout`) cannot hold the worker: the attempt
/// fails after its overall bound, is retried later, and the webhooks of the
/// same and of later requests are delivered meanwhile.
#[test]
fn a_trickling_smtp_server_delays_no_other_notification() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let _ = s.write_all(b"220-");
                while s.write_all(b"x").is_ok() {
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
    });
    let http = HttpSink::start();
    let env = Env::with_config(&notify_config(
        Some(smtp_port),
        http.port,
        r#"owner = ["email", "hook:json"]"#,
    ));
    let first = id_of(&env.request("alice", "db", "2h", "first"));
    let second = id_of(&env.request("bob", "db", "2h", "second"));
    // The bound is 8 timeouts of 1 s; jitd's lease 15 s.
    let hooks_delivered = wait_for(Duration::from_secs(30), || {
        [first, second]
            .iter()
            .all(|&id| {
                delivered(&env.show("root", id))
                    .iter()
                    .any(|n| n["channel"] == "hook" && n["state"] == "delivered")
            })
            .then_some(())
    });
    assert!(
        hooks_delivered.is_some(),
        "a stalled SMTP exchange held the webhooks back:\n{:#}\n{:#}{}",
        env.show("root", first),
        env.show("root", second),
        env.jitd_log_tail()
    );
    let email = delivered(&env.show("root", first))
        .into_iter()
        .find(|n| n["channel"] == "email")
        .unwrap();
    assert_ne!(email["state"], "delivered", "{email:#}");
    assert!(
        email["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("no answer within"),
        "{email:#}"
    );
}

/// A webhook that answers with a redirect (http to https, a revoked hook
/// bounced to a login page) took nothing: the delivery failed, with the status.
#[test]
fn a_redirect_is_not_a_delivery() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: https://login.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let env = Env::with_config(&notify_config(None, port, r#"owner = ["hook:json"]"#));
    let id = id_of(&env.request("alice", "db", "2h", "redirected"));
    let failed = wait_for(Duration::from_secs(10), || {
        delivered(&env.show("root", id))
            .into_iter()
            .find(|n| n["last_error"].as_str().is_some_and(|e| e.contains("302")))
    });
    let note = failed.unwrap_or_else(|| panic!("no failed attempt:\n{:#}", env.show("root", id)));
    assert_ne!(note["state"], "delivered", "{note:#}");
}
