//! The README's first command, `scripts/demo.sh`, on the binaries this run
//! built (`--prebuilt`): every step of its tour does what it says, and it
//! leaves nothing behind on the host.

use jit_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn demo_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/tmp")
        .expect("/tmp")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("jit-demo."))
        })
        .collect();
    dirs.sort();
    dirs
}

/// `jit-sessions` under this process's cgroup: where the demo's jitd puts
/// its session cgroups (the bundled config names none).
fn session_cgroups() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(
        cgroup2_mount()?
            .join(own.trim_start_matches('/'))
            .join("jit-sessions"),
    )
}

/// The output under `heading`, up to the next heading (`== `) when `nested`
/// is false, or up to the next step (`== N.`, not an indented one) when true.
fn section<'a>(out: &'a str, heading: &str, nested: bool) -> &'a str {
    let start = out
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading:?} in:\n{out}"));
    let rest = &out[start + heading.len()..];
    let end = rest
        .match_indices("\n== ")
        .find(|&(at, _)| !nested || !rest[at + 4..].starts_with(' '))
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// A numbered step with its indented parts.
fn step<'a>(out: &'a str, heading: &str) -> &'a str {
    section(out, heading, true)
}

/// One part of a step (up to the next heading).
fn part<'a>(out: &'a str, heading: &str) -> &'a str {
    section(out, heading, false)
}

#[test]
fn the_demo_tours_every_step_and_leaves_nothing_behind() {
    let before = demo_dirs();
    let libexec_before = fs::read_dir("/usr/libexec").map(|d| d.count()).ok();
    let target = bin_dir().parent().expect("target dir").to_owned();
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join("scripts/demo.sh"))
        .arg("--prebuilt")
        .env("CARGO_TARGET_DIR", &target);
    let run = Background::spawn(cmd).finish(Duration::from_secs(180)).ok();
    let out = &run.stdout;

    let granted = step(out, "== 2. ");
    assert!(
        granted.contains("state") && granted.contains("active"),
        "{run}"
    );

    let recorded = step(out, "== 3. ");
    assert!(
        recorded.contains("$ alice: jitctl run 2 -- id\nuid=0(root)"),
        "alice's recorded command did not run as root:{run}"
    );
    let refused = part(out, "==    bob holds no sudo grant");
    assert!(
        run.stderr
            .contains("jit: you hold no active grant for 'sudo'. Request one with:")
            && refused.contains("(exit 1)"),
        "bob's sudo was not refused by pam_jit:{run}"
    );
    let reviewed = part(out, "==    sam (jit-audit) reviews");
    assert!(
        reviewed.contains("Recording 1 matches its digest in the audit trail"),
        "{run}"
    );
    assert!(
        reviewed.contains("$ sam: jitctl recordings play 1\nuid=0(root)"),
        "{run}"
    );
    let tampered = part(out, "==    changing one byte");
    assert!(
        run.stderr
            .contains("recording 1 does NOT match its digest in the audit trail")
            && tampered.contains("(exit 1)"),
        "the edited recording was not caught:{run}"
    );

    let revoked = step(out, "== 4. ");
    // jit-session's notice goes to the terminal: stderr here, where stdout
    // is a pipe.
    assert!(
        run.stderr
            .contains("[jit] grant 2 revoked: ending the session")
            && revoked.contains("(exit 129)"),
        "{run}"
    );
    let listed = revoked
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_else(|| panic!("no recording 2 listed:{run}"));
    assert!(listed.contains(" revoked "), "{listed}");

    assert!(step(out, "== 5. ").contains("expired"), "{run}");
    assert!(step(out, "== 6. ").contains("BREAK-GLASS"), "{run}");
    assert!(step(out, "== 7. ").contains("Audit trail intact"), "{run}");

    assert_eq!(demo_dirs(), before, "the demo left a directory in /tmp");
    assert_eq!(
        fs::read_dir("/usr/libexec").map(|d| d.count()).ok(),
        libexec_before,
        "the host's /usr/libexec changed"
    );
    assert!(
        Path::new("/usr/libexec/sudo").is_dir(),
        "sudo's plugins are gone"
    );
    if let Some(dir) = session_cgroups() {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
}
