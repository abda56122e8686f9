//! W1.11 ticket validation with real jitd, jitctl and `jit-deliver
//! --tickets` (as the unprivileged `jit-ticket` user): a command validator
//! that accepts, refuses, hangs and crashes; the ticket checked again at
//! approval; a validator that is down refusing or leaving the request to
//! people; break-glass untouched; and a webhook validator against a real
//! HTTP server on 127.0.0.1.

use jit_tests::sinks::HttpSink;
use jit_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// [`TEST_CONFIG`] where `sudo` and `logs` require a ticket (and alice may
/// break the glass on `sudo`), with `tickets` as the `[tickets]` section.
fn config(tickets: &str) -> String {
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
    format!("{text}\n[tickets]\n{tickets}\n")
}

/// The validator: valid for INC-1 (a title with an escape, its ids and
/// open descriptors as the message), invalid for INC-CLOSED, hangs on INC-HANG, dies of a
/// signal on INC-CRASH, and INC-STATE is invalid while `closed` exists
/// in the test's directory.
const VALIDATOR: &str = r#"input=$(cat)
dir=$(dirname "$0")
case "$input" in
  *'"ticket":"INC-1"'*) printf '{"valid": true, "title": "Disk full on db1 \\u001b[2J", "message": "uid %s groups %s fds %s"}' "$(id -u)" "$(id -G)" "$(ls /proc/self/fd | tr '\n' ' ')" ;;
  *'"ticket":"INC-CLOSED"'*) echo '{"valid": false, "message": "closed yesterday"}' ;;
  *'"ticket":"INC-HANG"'*) sleep 60 ;;
  *'"ticket":"INC-CRASH"'*) kill -SEGV $$ ;;
  *'"ticket":"INC-STATE"'*) if [ -e "$dir/closed" ]; then echo '{"valid": false, "message": "closed meanwhile"}'; else echo '{"valid": true, "title": "Patch db1"}'; fi ;;
  *) echo '{"valid": false}' ;;
esac"#;

/// jitd with a command validator and `when_down`.
fn with_command(when_down: &str) -> Env {
    let mut env = Env::without_jitd(TEST_CONFIG);
    // The validator runs as jit-ticket: it must reach its script.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = env.write_script("check-ticket", VALIDATOR);
    env.write_config(&config(&format!(
        "command = [\"{}\"]\ntimeout = \"2s\"\nwhen_down = \"{when_down}\"",
        script.display()
    )));
    env.start_jitd();
    env
}

fn request(env: &Env, resource: &str, ticket: Option<&str>) -> Run {
    request_by(env, "alice", resource, ticket)
}

fn request_by(env: &Env, user: &str, resource: &str, ticket: Option<&str>) -> Run {
    let mut args = vec![
        "request", resource, "--for", "30m", "--reason", "disk", "--json",
    ];
    if let Some(t) = ticket {
        args.extend(["--ticket", t]);
    }
    env.jitctl(user, &args)
}

fn requested(env: &Env, resource: &str, ticket: &str) -> Value {
    requested_by(env, "alice", resource, ticket)
}

fn requested_by(env: &Env, user: &str, resource: &str, ticket: &str) -> Value {
    let run = request_by(env, user, resource, Some(ticket)).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"))
}

#[test]
fn a_command_validator_accepts_refuses_times_out_and_crashes() {
    let env = with_command("refuse");
    let none = request(&env, "sudo", None);
    assert_ne!(none.code, 0, "{none}");
    assert!(none.stderr.contains("requires a ticket"), "{none}");

    let doc = requested(&env, "sudo", "INC-1");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "pending", "{doc:#}");
    let check = &doc["ticket_check"];
    assert_eq!(check["verdict"], "valid", "{doc:#}");
    assert_eq!(check["stage"], "request", "{doc:#}");
    let title = check["title"].as_str().unwrap();
    assert!(title.starts_with("Disk full on db1"), "{doc:#}");
    assert!(!title.contains('\u{1b}'), "escaped: {title:?}");
    // As jit-ticket, with no other group, and nothing open but its standard
    // descriptors (ls lists its own directory, 3): not the socket to jitd.
    assert_eq!(
        check["message"], "uid 61010 groups 61010 fds 0 1 2 3",
        "{doc:#}"
    );
    let shown = env.jitctl("mike", &["show", &id.to_string()]).ok();
    assert!(
        shown.stdout.contains("ticket check")
            && shown
                .stdout
                .contains("valid at the request: Disk full on db1"),
        "approvers see it: {shown}"
    );
    let audited: Vec<Value> = env
        .audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"] == "ticket_checked")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:#?}");
    assert_eq!(audited[0]["detail"]["verdict"], "valid");

    let closed = request(&env, "sudo", Some("INC-CLOSED"));
    assert_ne!(closed.code, 0, "{closed}");
    assert!(
        closed
            .stderr
            .contains("ticket INC-CLOSED is not valid: closed yesterday"),
        "{closed}"
    );

    // A hung validator holds up its requester for the timeout, nobody else;
    // a requester has two checks under way at most.
    let started = Instant::now();
    let hang = [
        "request", "sudo", "--for", "30m", "--reason", "disk", "--ticket", "INC-HANG",
    ];
    let hung = [
        env.spawn_jitctl("alice", &hang),
        env.spawn_jitctl("alice", &hang),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let third = env.jitctl("alice", &hang);
    assert_ne!(third.code, 0, "{third}");
    assert!(
        third.stderr.contains("you have 2 ticket checks under way"),
        "{third}"
    );
    let others = Instant::now();
    env.jitctl("bob", &["list"]).ok();
    let bobs = requested_by(&env, "bob", "sudo", "INC-1");
    assert_eq!(bobs["ticket_check"]["verdict"], "valid", "{bobs:#}");
    assert!(
        others.elapsed() < Duration::from_secs(1),
        "bob waited {:?} for alice's validator",
        others.elapsed()
    );
    for hung in hung {
        let hung = hung.finish(Duration::from_secs(20));
        assert_ne!(hung.code, 0, "{hung}");
        assert!(
            hung.stderr.contains("could not be checked")
                && hung.stderr.contains("did not answer within 2s"),
            "{hung}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let crashed = request(&env, "sudo", Some("INC-CRASH"));
    assert_ne!(crashed.code, 0, "{crashed}");
    assert!(
        crashed.stderr.contains("could not be checked") && crashed.stderr.contains("signal"),
        "{crashed}"
    );
    // Nothing the hung validator started is left running (a zombie
    // waits for whoever reaps the namespace's orphans).
    let left =
        env.ns_sh("ps -u jit-ticket -o stat=,comm= | grep -v '^Z' | grep -v jit-deliver || true");
    assert_eq!(
        left.stdout.trim(),
        "",
        "the hung validator's sleep is killed"
    );

    // Break-glass never waits for a validator.
    let glass = env.jitctl_json(
        "alice",
        &[
            "break-glass",
            "sudo",
            "--for",
            "30m",
            "--reason",
            "outage, pager 4711",
            "--json",
        ],
    );
    assert_eq!(state_of(&glass), "active", "{glass:#}");
}

#[test]
fn a_ticket_is_checked_again_at_approval() {
    let env = with_command("refuse");
    let doc = requested(&env, "sudo", "INC-STATE");
    let id = id_of(&doc).to_string();
    assert_eq!(doc["ticket_check"]["title"], "Patch db1", "{doc:#}");

    std::fs::write(env.dir.path().join("closed"), "").unwrap();
    let refused = env.jitctl("mike", &["approve", &id, "--comment", "ok"]);
    assert_ne!(refused.code, 0, "{refused}");
    assert!(
        refused
            .stderr
            .contains("ticket INC-STATE is not valid: closed meanwhile"),
        "{refused}"
    );
    let shown = env.show("root", id.parse().unwrap());
    assert_eq!(shown["state"], "pending", "{shown:#}");
    assert!(
        shown["approvals"].as_array().unwrap().is_empty(),
        "{shown:#}"
    );
    assert_eq!(shown["ticket_check"]["verdict"], "invalid", "{shown:#}");
    assert_eq!(shown["ticket_check"]["stage"], "approval", "{shown:#}");

    std::fs::remove_file(env.dir.path().join("closed")).unwrap();
    env.jitctl("mike", &["approve", &id, "--comment", "ok"])
        .ok();
    let shown = env.show("root", id.parse().unwrap());
    assert_eq!(shown["ticket_check"]["verdict"], "valid", "{shown:#}");
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1, "{shown:#}");
    let stages: Vec<String> = env
        .audit_events_for(id.parse().unwrap())
        .into_iter()
        .filter(|e| e["event"] == "ticket_checked")
        .map(|e| format!("{}/{}", e["detail"]["stage"], e["detail"]["verdict"]))
        .collect();
    assert_eq!(
        stages,
        [
            "\"request\"/\"valid\"",
            "\"approval\"/\"invalid\"",
            "\"approval\"/\"valid\""
        ],
        "every check on record"
    );
}

#[test]
fn a_validator_that_is_down_leaves_the_request_to_people_when_configured() {
    let env = with_command("approvers");
    // `logs` is approved at once by risk: not with an unchecked ticket.
    let doc = requested(&env, "logs", "INC-CRASH");
    assert_eq!(state_of(&doc), "pending", "{doc:#}");
    assert_eq!(doc["route"], "dual", "no owners: both roles: {doc:#}");
    assert_eq!(doc["ticket_check"]["verdict"], "unavailable", "{doc:#}");
    // An approver may take it, and is told it is still unchecked.
    let approved = env
        .jitctl(
            "mike",
            &["approve", &id_of(&doc).to_string(), "--comment", "ok"],
        )
        .ok();
    assert!(
        approved
            .stderr
            .contains("warning: ticket INC-CRASH could not be checked again (the validator failed"),
        "{approved}"
    );
    // A ticket the validator refuses is refused all the same.
    let closed = request(&env, "logs", Some("INC-CLOSED"));
    assert_ne!(closed.code, 0, "{closed}");
    // And a valid one is approved at once, as before.
    let ok = requested(&env, "logs", "INC-1");
    assert_eq!(state_of(&ok), "active", "{ok:#}");
}

#[test]
fn a_webhook_validator_is_posted_by_the_ticket_worker() {
    let itsm = HttpSink::answering(|post| {
        let ask = post.json();
        match ask["ticket"].as_str().unwrap_or_default() {
            "INC-1" => (200, r#"{"valid": true, "title": "From the ITSM"}"#.into()),
            "INC-500" => (500, "oops".into()),
            _ => (
                200,
                r#"{"valid": false, "message": "no such ticket"}"#.into(),
            ),
        }
    });
    let mut env = Env::with_config(&config(&format!(
        "url = \"{}\"\ntimeout = \"2s\"",
        itsm.url("/validate")
    )));
    let doc = wait_for(Duration::from_secs(10), || {
        let run = request(&env, "sudo", Some("INC-1"));
        (run.code == 0).then(|| serde_json::from_str::<Value>(&run.stdout).unwrap())
    })
    .unwrap_or_else(|| panic!("the ticket worker never answered: {}", env.jitd_log_tail()));
    assert_eq!(doc["ticket_check"]["title"], "From the ITSM", "{doc:#}");
    let posts = itsm.posts();
    let asked = posts.last().unwrap();
    assert_eq!(asked.path, "/validate");
    assert_eq!(
        asked.json(),
        serde_json::json!({"ticket": "INC-1", "requester": "alice", "resource": "sudo", "stage": "request"})
    );

    let unknown = request(&env, "sudo", Some("INC-2"));
    assert!(
        unknown
            .stderr
            .contains("ticket INC-2 is not valid: no such ticket"),
        "{unknown}"
    );
    let failing = request(&env, "sudo", Some("INC-500"));
    assert!(
        failing.stderr.contains("could not be checked") && failing.stderr.contains("500"),
        "{failing}"
    );
    assert!(
        !failing.stderr.contains("/validate"),
        "the URL is not shown: {failing}"
    );

    // Another connection while the worker's is live (root here; the
    // command, running as jit-ticket, could try too) gets nothing: no
    // hello, no checks; the worker keeps answering.
    let mut second =
        std::os::unix::net::UnixStream::connect(env.runtime_dir().join("tickets.socket")).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut second, &mut got).unwrap();
    assert!(got.is_empty(), "a second worker was served: {got:?}");
    let again = request_by(&env, "bob", "sudo", Some("INC-1")).ok();
    assert!(again.stdout.contains("From the ITSM"), "{again}");

    env.kill_ticket_worker();
    let down = request(&env, "sudo", Some("INC-1"));
    assert!(
        down.stderr.contains("could not be checked") && down.stderr.contains("jit-ticket.service"),
        "{down}"
    );
}
