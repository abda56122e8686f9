//! Who and what the tests work with: the fixture users and groups (added to
//! the namespace's `/etc/passwd` and `/etc/group`) and jitd's test
//! configuration.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Primary group of every fixture user.
pub const FIXTURE_GID: u32 = 61000;

/// Fixture users: name, uid, supplementary groups.
pub const USERS: &[(&str, u32, &[&str])] = &[
    ("alice", 61001, &["admins", "jit-gated"]),
    ("bob", 61002, &["admins", "jit-gated"]),
    ("olivia", 61003, &[]),
    ("mike", 61004, &["jit-managers"]),
    ("sam", 61005, &["jit-security"]),
    ("maria", 61006, &["jit-managers", "jit-security"]),
    ("oscar", 61007, &[]),
    ("audrey", 61008, &["jit-audit"]),
];

/// The notification worker's user (`jit-deliver` on a real host), with a
/// primary group of its own, like sysusers.d makes it: not one of
/// [`USERS`], whom the PAM tests log in.
pub const DELIVER_USER: (&str, u32) = ("jit-deliver", 61009);

/// The ticket validator's user (`jit-ticket`, which jit-ticket.service
/// runs `jit-deliver --tickets` as), a primary group of its own too.
pub const TICKET_USER: (&str, u32) = ("jit-ticket", 61010);

/// Fixture groups: name, gid.
pub const GROUPS: &[(&str, u32)] = &[
    ("admins", 61101),
    ("jit-managers", 61102),
    ("jit-security", 61103),
    ("jit-audit", 61104),
    ("jit-gated", 61105),
];

/// The uid of a fixture user (0 for root).
pub fn uid(user: &str) -> u32 {
    if user == "root" {
        return 0;
    }
    USERS
        .iter()
        .find(|(n, _, _)| *n == user)
        .unwrap_or_else(|| panic!("no fixture user {user}"))
        .1
}

/// The config most tests use. Scores do not depend on the time of day
/// (`off_hours = 0`). With the default weights:
/// - `logs` 30m: low (0) + first request (10) = 10, < 1h, non-privileged: auto
/// - `db` 2h: medium (15) + duration (3) + first request (10) = 28, but >= 1h: owner (olivia)
/// - `sudo`: privileged + production: dual (manager + security)
pub const TEST_CONFIG: &str = r#"# jitd config for the end-to-end tests
[roles]
manager  = ["group:jit-managers"]
security = ["group:jit-security"]
auditor  = ["group:jit-audit"]

[risk]
auto_below = 30
dual_from  = 70

[risk.weights]
off_hours = 0

[requests]
pending_ttl    = "1h"
expiry_warning = "1s"

[[resource]]
name = "sudo"
privileged = true
sensitivity = "high"
environment = "production"
owners = ["user:olivia"]
eligible = ["group:admins"]
max_duration = "4h"

[[resource]]
name = "db"
privileged = false
sensitivity = "medium"
environment = "staging"
owners = ["user:olivia"]
eligible = ["group:admins"]
max_duration = "8h"

[[resource]]
name = "logs"
privileged = false
sensitivity = "low"
environment = "staging"
eligible = ["group:admins"]
max_duration = "1h"
"#;

/// [`TEST_CONFIG`] for tests that keep many requests pending at once and
/// make calls as fast as jitd answers: they test durability, not the
/// per-user caps and call limits (`tests/tests/flood.rs` does).
pub fn config_with_many_pending() -> String {
    format!(
        "{TEST_CONFIG}\n[limits]\npending_per_user = 1000\ncalls_per_second = 1000000\ncall_burst = 1000000\n"
    )
}

/// [`TEST_CONFIG`] with another `pending_ttl`.
pub fn config_with_pending_ttl(ttl: &str) -> String {
    let out = TEST_CONFIG.replace(
        "pending_ttl    = \"1h\"",
        &format!("pending_ttl    = \"{ttl}\""),
    );
    assert_ne!(out, TEST_CONFIG);
    out
}

/// Writes passwd and group: the host's plus the fixtures. Returns their paths.
pub(crate) fn fixture_account_files(dir: &Path) -> (PathBuf, PathBuf) {
    let mut passwd = fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let mut group = fs::read_to_string("/etc/group").expect("/etc/group");
    for text in [&mut passwd, &mut group] {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
    }
    for (name, uid, _) in USERS {
        passwd.push_str(&format!(
            "{name}:x:{uid}:{FIXTURE_GID}:jit fixture:/nonexistent:/bin/sh\n"
        ));
    }
    group.push_str(&format!("jitusers:x:{FIXTURE_GID}:\n"));
    for (name, id) in [DELIVER_USER, TICKET_USER] {
        passwd.push_str(&format!(
            "{name}:x:{id}:{id}:jit service:/nonexistent:/usr/sbin/nologin\n"
        ));
        group.push_str(&format!("{name}:x:{id}:\n"));
    }
    for (g, gid) in GROUPS {
        let members: Vec<&str> = USERS
            .iter()
            .filter(|(_, _, gs)| gs.contains(g))
            .map(|(n, _, _)| *n)
            .collect();
        group.push_str(&format!("{g}:x:{gid}:{}\n", members.join(",")));
    }
    let (p, g) = (dir.join("passwd"), dir.join("group"));
    fs::write(&p, passwd).expect("write passwd");
    fs::write(&g, group).expect("write group");
    for f in [&p, &g] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    (p, g)
}
