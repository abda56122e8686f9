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

/// Asserts that `section` (of `run`'s output) shows `text`.
#[track_caller]
fn shows(section: &str, text: &str, run: &Run) {
    assert!(
        section.contains(text),
        "expected {text:?} in:\n{section}\n---{run}"
    );
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

    shows(
        part(out, "==    sam approves as security"),
        "Request 2: active until",
        &run,
    );

    // alice's command ran as root through sudo, pam_jit and the recorder.
    shows(
        step(out, "== 3. "),
        "$ alice: jitctl run 2 -- id\nuid=0(root)",
        &run,
    );
    // bob's sudo was refused by pam_jit, with what to do instead.
    shows(part(out, "==    bob holds no sudo grant"), "(exit 1)", &run);
    shows(
        &run.stderr,
        "jit: you hold no active grant for 'sudo'. Request one with:",
        &run,
    );
    let reviewed = part(out, "==    sam (jit-audit) reviews");
    shows(
        reviewed,
        "Recording 1 matches its digest in the audit trail",
        &run,
    );
    shows(
        reviewed,
        "$ sam: jitctl recordings play 1\nuid=0(root)",
        &run,
    );
    // The edited recording was caught.
    shows(part(out, "==    changing one byte"), "(exit 1)", &run);
    shows(
        &run.stderr,
        "recording 1 does NOT match its digest in the audit trail",
        &run,
    );

    let revoked = step(out, "== 4. ");
    shows(revoked, "(exit 129)", &run);
    // jit-session's notice goes to the terminal: stderr here, where stdout
    // is a pipe.
    shows(
        &run.stderr,
        "[jit] grant 2 revoked: ending the session",
        &run,
    );
    let listed = revoked
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_else(|| panic!("no recording 2 listed:{run}"));
    assert!(listed.contains(" revoked "), "{listed}");

    shows(step(out, "== 5. "), "expired", &run);
    shows(step(out, "== 6. "), "BREAK-GLASS", &run);
    shows(step(out, "== 7. "), "Audit trail intact", &run);

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
