//! X.3, X.7 reports: `jitctl report emergency|mtta|usage|unused|denied|standing` for root,
//! security and auditors only, in text and JSON, and `--html FILE`: one
//! self-contained page (no script, nothing fetched) that Debian's headless
//! Chromium renders with its charts and without a console message.

use jit_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// [`TEST_CONFIG`] where admins may break the glass on `sudo`.
fn config() -> String {
    let out = TEST_CONFIG.replacen(
        "max_duration = \"4h\"",
        "max_duration = \"4h\"\nbreak_glass = [\"group:admins\"]",
        1,
    );
    assert_ne!(out, TEST_CONFIG);
    out
}

/// An auto grant, an owner's approval, a withdrawn request and a
/// break-glass grant.
fn busy_env() -> Env {
    let env = Env::with_config(&config());
    env.request("alice", "logs", "30m", "rotate the logs");
    let db = id_of(&env.request("bob", "db", "2h", "migrate"));
    env.approve("olivia", db).ok();
    let gone = id_of(&env.request("alice", "db", "2h", "oops"));
    env.jitctl("alice", &["revoke", &gone.to_string()]).ok();
    env.jitctl(
        "alice",
        &[
            "break-glass",
            "sudo",
            "--for",
            "10m",
            "--reason",
            "db1 is down",
        ],
    )
    .ok();
    env
}

fn report(env: &Env, user: &str, kind: &str) -> Value {
    env.jitctl(user, &["report", kind, "--since", "1h", "--json"])
        .ok()
        .json()
}

#[test]
fn only_root_security_and_auditors_may_run_reports() {
    let env = busy_env();
    for user in ["root", "sam", "audrey"] {
        let doc = report(&env, user, "mtta");
        assert_eq!(doc["report"], "mtta", "{user}: {doc:#}");
    }
    for user in ["alice", "olivia", "mike"] {
        let run = env.jitctl(user, &["report", "usage"]).code(3);
        assert!(run.stderr.contains("auditor"), "{run}");
    }
    env.jitctl("audrey", &["report", "scan"]).code(2);
    env.jitctl("audrey", &["report"]).code(2);
}

#[test]
fn each_report_counts_what_happened() {
    let env = busy_env();
    let mtta = report(&env, "audrey", "mtta");
    let route = |name: &str| {
        mtta["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["route"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no route {name}: {mtta:#}"))
    };
    let (auto, owner, bg) = (route("auto"), route("owner"), route("break_glass"));
    assert_eq!(auto["granted"], 1, "{mtta:#}");
    assert_eq!(auto["sla_secs"], 60, "{mtta:#}");
    assert_eq!(auto["within_sla"], 1, "{mtta:#}");
    assert_eq!(owner["granted"], 1, "{mtta:#}");
    assert_eq!(owner["not_granted"], 1, "the withdrawn one: {mtta:#}");
    assert_eq!(bg["granted"], 1, "{mtta:#}");

    let usage = report(&env, "sam", "usage");
    let resources: Vec<&str> = usage["resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["resource"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(resources, ["db", "logs", "sudo"], "{usage:#}");

    let emergency = report(&env, "root", "emergency");
    let grant = &emergency["grants"][0];
    assert_eq!(grant["user"], "alice", "{emergency:#}");
    assert_eq!(grant["resource"], "sudo", "{emergency:#}");
    assert_eq!(grant["justification"], "due", "{emergency:#}");
    assert_eq!(grant["duration_secs"], 600, "{emergency:#}");
    assert_eq!(
        grant["awaiting_reviews"],
        serde_json::json!(["manager", "security"])
    );

    let text = env.jitctl("audrey", &["report", "emergency"]).ok();
    assert!(text.stdout.contains("db1 is down"), "{text}");
    assert!(text.stdout.contains("awaited"), "{text}");
    let text = env.jitctl("audrey", &["report", "mtta"]).ok();
    assert!(text.stdout.contains("WITHIN SLA"), "{text}");
    let text = env
        .jitctl("audrey", &["report", "usage", "--since", "1d"])
        .ok();
    assert!(text.stdout.contains("MAX DURATION"), "{text}");

    // Nothing used a grant here: the auto, the owner's and the break-glass.
    let unused = report(&env, "audrey", "unused");
    let total: u64 = unused["resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["unused"].as_u64()).sum())
        .unwrap_or_default();
    assert_eq!(total, 3, "{unused:#}");
    let text = env.jitctl("audrey", &["report", "unused"]).ok();
    assert!(text.stdout.contains("UNUSED %"), "{text}");
}

/// A real sudo through pam_jit without a grant, and two scans: the
/// denied and standing reports count them.
#[test]
fn denials_and_scans_are_reported() {
    let env = busy_env();
    let stack = sudo_stack(&env, "sudo", "timeout=1s");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env.spawn_in_pty("bob", "sudo -n true")
        .finish(Duration::from_secs(10));
    wait_for(Duration::from_secs(5), || {
        let doc = report(&env, "audrey", "denied");
        (doc["total"].as_u64() >= Some(1)).then_some(())
    })
    .unwrap_or_else(|| panic!("no denial reported{}", env.jitd_log_tail()));
    let denied = report(&env, "audrey", "denied");
    let attempt = &denied["attempts"][0];
    assert_eq!(attempt["user"], "bob", "{denied:#}");
    assert_eq!(attempt["resource"], "sudo", "{denied:#}");
    assert_eq!(
        attempt["services"],
        serde_json::json!(["sudo"]),
        "{denied:#}"
    );
    let text = env.jitctl("audrey", &["report", "denied"]).ok();
    assert!(text.stdout.contains("DENIALS"), "{text}");

    for _ in 0..2 {
        let run = env.jitctl("sam", &["scan", "--json"]);
        assert!(run.code == 0 || run.code == 1, "scan failed:{run}");
    }
    let standing = report(&env, "audrey", "standing");
    assert_eq!(
        standing["scans"].as_array().map(Vec::len),
        Some(2),
        "{standing:#}"
    );
    assert_eq!(
        standing["first"]["id"], standing["scans"][0]["id"],
        "{standing:#}"
    );
    assert_eq!(
        standing["now"]["id"], standing["scans"][1]["id"],
        "{standing:#}"
    );
    let text = env.jitctl("audrey", &["report", "standing"]).ok();
    assert!(text.stdout.contains("first scan"), "{text}");
}

/// A directory `user` may write in.
fn out_dir(env: &Env, user: &str) -> PathBuf {
    let dir = env.dir.path().join(format!("out-{user}"));
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid(user)), Some(FIXTURE_GID)).unwrap();
    dir
}

#[test]
fn the_page_is_written_0640_by_its_reader_and_never_through_a_link() {
    let env = busy_env();
    let dir = out_dir(&env, "audrey");
    let page = dir.join("report.html");
    let path = page.to_str().unwrap();
    env.jitctl("audrey", &["report", "--html", path]).ok();
    let meta = std::fs::metadata(&page).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), uid("audrey"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("default-src 'none'; style-src 'unsafe-inline'"));
    assert_eq!(html.matches("<svg").count(), 4, "one per chart");
    assert!(!html.contains("<script"));
    for id in ["mtta", "usage", "emergency", "standing", "unused", "denied"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(html.contains("Standing privileges over time"));

    let target = dir.join("elsewhere");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = env
        .jitctl("audrey", &["report", "--html", link.to_str().unwrap()])
        .code(6);
    assert!(run.stderr.contains("symbolic link"), "{run}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    // --html is every report, as a page: no kind, no --json.
    env.jitctl("audrey", &["report", "mtta", "--html", path])
        .code(2);
    env.jitctl("audrey", &["report", "--json", "--html", path])
        .code(2);
    env.jitctl("alice", &["report", "--html", "/tmp/x.html"])
        .code(3);
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// A screenshot (1280x4000) of `page` by headless Chromium, with what it
/// logged: its own profile, no network services, every log on stderr.
fn screenshot(page: &Path, png: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is not installed: scripts/install-deps.sh installs Debian's chromium, \
         which renders the HTML report in this test"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,4000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--screenshot={}", png.display()))
    .arg(format!("file://{}", page.display()));
    let run = Background::spawn(cmd).finish(Duration::from_secs(120));
    assert_eq!(run.code, 0, "chromium failed:{run}");
    assert!(png.exists(), "no screenshot:{run}");
    run.stderr
}

/// Lines where the page's console said anything (a page without script has
/// nothing to log: any message is a load the policy blocked, or an error).
fn console_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Refused to")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
        })
        .collect()
}

#[test]
fn chromium_renders_the_page_with_its_charts_and_no_console_message() {
    let env = busy_env();
    let dir = out_dir(&env, "audrey");
    let page = dir.join("report.html");
    env.jitctl("audrey", &["report", "--html", page.to_str().unwrap()])
        .ok();
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<svg").count(), 4, "one per chart");

    let shots = tempfile::tempdir().unwrap();
    let empty = shots.path().join("empty.html");
    std::fs::write(&empty, "<!DOCTYPE html><html><body></body></html>\n").unwrap();
    let empty_png = shots.path().join("empty.png");
    let empty_log = screenshot(&empty, &empty_png);
    assert!(console_complaints(&empty_log).is_empty(), "{empty_log}");

    let png = shots.path().join("report.png");
    let log = screenshot(&page, &png);
    let complaints = console_complaints(&log);
    assert!(
        complaints.is_empty(),
        "the page logged:\n{}",
        complaints.join("\n")
    );
    let (ours, blank) = (
        std::fs::read(&png).unwrap(),
        std::fs::read(&empty_png).unwrap(),
    );
    assert_ne!(ours, blank, "the report rendered as an empty page");
    assert!(
        ours.len() > 2 * blank.len(),
        "the report's screenshot ({} bytes) is not markedly larger than an empty page's ({})",
        ours.len(),
        blank.len()
    );
}
