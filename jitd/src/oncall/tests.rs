//! Real files in a temporary directory (root's, 0700, under the sticky
//! `/tmp`): the tests run as root, and chown to test other owners.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::clock::SystemClock;

/// Shifts long past: `status` asks about the wall clock's now, which must
/// be in none of them (in 2026-12-06's, the status test failed).
const ALICE: &str = "alice 2016-12-06T22:00:00+01:00 2016-12-07T06:00:00+01:00\n";
const BOB: &str = "bob   2016-12-06T22:00:00+01:00 2016-12-07T06:00:00+01:00\n";
/// Inside both shifts (2016-12-06T23:33:20Z).
const NIGHT: UnixTime = 1_481_067_200;

/// A time source ahead of the files' times, so that a file just written
/// is not "racy" ([`RACY`]): what the stamp alone notices is tested.
struct Ahead;

impl Clock for Ahead {
    fn wall_precise(&self) -> Duration {
        SystemClock.wall_precise() + Duration::from_secs(60)
    }
    fn boot(&self) -> Duration {
        SystemClock.boot()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    rosters: Rosters,
}

impl Fixture {
    /// Schedule "primary" at `dir/primary.shifts`, holding `text` (or missing).
    fn new(text: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("primary.shifts");
        if let Some(text) = text {
            write(&file, text);
        }
        let config = BTreeMap::from([("primary".to_owned(), OnCallSchedule { file })]);
        let rosters = Rosters::new(&config, Arc::new(Ahead));
        Fixture { dir, rosters }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("primary.shifts")
    }

    fn on_call(&self, user: &str) -> bool {
        self.rosters.is_on_call("primary", user, NIGHT)
    }

    fn problem(&self) -> Option<String> {
        self.rosters.status().remove(0).problem
    }

    /// Replaces the file as config management does: a new file renamed over it.
    fn replace(&self, text: &str) {
        let tmp = self.dir.path().join(".primary.shifts.tmp");
        write(&tmp, text);
        fs::rename(tmp, self.file()).unwrap();
    }

    fn chmod(&self, path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The changes queued, as (event, schedule) words.
    fn changes(&self) -> Vec<String> {
        self.rosters
            .take_changes()
            .into_iter()
            .map(|c| match c {
                Change::Loaded {
                    restored: true,
                    shifts,
                    ..
                } => format!("restored {shifts}"),
                Change::Loaded { shifts, .. } => format!("loaded {shifts}"),
                Change::Broken { reason, .. } => format!("broken: {reason}"),
            })
            .collect()
    }
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn a_schedule_replaced_by_rename_is_read_at_the_next_lookup() {
    let f = Fixture::new(Some(ALICE));
    assert_eq!(f.changes(), ["loaded 1"]);
    assert!(f.on_call("alice") && !f.on_call("bob"));
    f.replace(&format!("{BOB}{ALICE}"));
    assert!(f.on_call("bob") && f.on_call("alice"));
    f.replace(BOB);
    assert!(f.on_call("bob") && !f.on_call("alice"));
    assert_eq!(f.changes(), ["loaded 2", "loaded 1"]);
    let status = f.rosters.status();
    assert_eq!(status[0].shifts, Some(1));
    assert_eq!(status[0].problem, None);
    // Nobody's shift holds at the wall clock's now.
    assert!(status[0].on_call.is_empty());
    assert!(f.changes().is_empty(), "the same text is no change");
}

#[test]
fn a_schedule_edited_in_place_is_read_again() {
    let f = Fixture::new(Some(ALICE));
    assert!(f.on_call("alice"));
    // The same size: only the times (and the ctime's nanoseconds) differ,
    // a tick of the file times later.
    std::thread::sleep(Duration::from_millis(50));
    fs::write(f.file(), ALICE.replace("alice", "carol")).unwrap();
    assert!(!f.on_call("alice"));
    assert!(f.on_call("carol"));
}

#[test]
fn a_group_or_world_writable_file_or_directory_puts_nobody_on_call() {
    let f = Fixture::new(Some(ALICE));
    f.chmod(&f.file(), 0o664);
    assert!(!f.on_call("alice"));
    let problem = f.problem().unwrap();
    assert!(
        problem.ends_with("primary.shifts: writable by its group or others (mode 0664)"),
        "{problem}"
    );
    f.chmod(&f.file(), 0o646);
    assert!(!f.on_call("alice"));
    f.chmod(&f.file(), 0o600);
    assert!(f.on_call("alice"), "fixed: on call again");

    f.chmod(f.dir.path(), 0o770);
    assert!(
        !f.on_call("alice"),
        "whoever may write the directory may rename a file over it"
    );
    let problem = f.problem().unwrap();
    assert!(
        problem.contains("writable by its group or others (mode 0770)"),
        "{problem}"
    );
    // Sticky does not make the file's own directory safe.
    f.chmod(f.dir.path(), 0o1777);
    assert!(!f.on_call("alice"));
    f.chmod(f.dir.path(), 0o755);
    assert!(f.on_call("alice"));
    assert_eq!(
        f.changes()[1..],
        [
            format!(
                "broken: {}: writable by its group or others (mode 0664)",
                f.file().display()
            ),
            "restored 1".to_owned(),
            format!(
                "broken: {}: writable by its group or others (mode 0770)",
                f.dir.path().display()
            ),
            "restored 1".to_owned(),
        ]
    );
}

#[test]
fn a_file_or_directory_root_does_not_own_puts_nobody_on_call() {
    let f = Fixture::new(Some(ALICE));
    std::os::unix::fs::chown(f.file(), Some(1000), None).unwrap();
    assert!(!f.on_call("alice"));
    assert!(f
        .problem()
        .unwrap()
        .ends_with("primary.shifts: owned by uid 1000, not root"));
    std::os::unix::fs::chown(f.file(), Some(0), None).unwrap();
    assert!(f.on_call("alice"));
    std::os::unix::fs::chown(f.dir.path(), Some(1000), None).unwrap();
    assert!(!f.on_call("alice"));
    std::os::unix::fs::chown(f.dir.path(), Some(0), None).unwrap();
    assert!(f.on_call("alice"));
}

#[test]
fn a_missing_file_puts_nobody_on_call_until_it_appears() {
    let f = Fixture::new(None);
    assert!(!f.on_call("alice"));
    assert_eq!(
        f.problem().unwrap(),
        format!("{}: no such file", f.file().display())
    );
    f.replace(ALICE);
    assert!(f.on_call("alice"));
    fs::remove_file(f.file()).unwrap();
    assert!(!f.on_call("alice"), "never the previous contents");
    let missing = format!("broken: {}: no such file", f.file().display());
    assert_eq!(f.changes(), [missing.clone(), "restored 1".into(), missing]);
}

#[test]
fn a_malformed_file_puts_nobody_on_call_and_says_where() {
    let f = Fixture::new(Some(ALICE));
    f.replace(&format!(
        "{ALICE}bob 2026-12-06T22:00:00 2026-12-07T06:00:00+01:00\n"
    ));
    assert!(
        !f.on_call("alice"),
        "a schedule is used whole or not at all"
    );
    let problem = f.problem().unwrap();
    assert_eq!(
        problem,
        format!(
            "{}:2:24: '2026-12-06T22:00:00' is not an RFC 3339 time with an offset: \
             expected the UTC offset (Z, +HH:MM or -HH:MM)",
            f.file().display()
        )
    );
    // Broken for another reason: logged, not told again.
    f.chmod(&f.file(), 0o666);
    assert!(!f.on_call("alice"));
    f.replace(ALICE);
    assert!(f.on_call("alice"));
    let changes = f.changes();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[1], format!("broken: {problem}"));
    assert_eq!(changes[2], "restored 1");
}

#[test]
fn links_fifos_and_directories_are_not_schedules() {
    let f = Fixture::new(None);
    let real = f.dir.path().join("real.shifts");
    write(&real, ALICE);
    std::os::unix::fs::symlink(&real, f.file()).unwrap();
    assert!(!f.on_call("alice"));
    assert!(f
        .problem()
        .unwrap()
        .ends_with("a symbolic link (not followed)"));
    fs::remove_file(f.file()).unwrap();
    nix::unistd::mkfifo(&f.file(), Mode::from_bits_truncate(0o600)).unwrap();
    assert!(!f.on_call("alice"), "a FIFO is refused, never waited on");
    assert!(f.problem().unwrap().ends_with("not a regular file"));
    fs::remove_file(f.file()).unwrap();
    fs::create_dir(f.file()).unwrap();
    assert!(!f.on_call("alice"));
    assert!(f.problem().unwrap().ends_with("not a regular file"));
}

#[test]
fn a_link_on_the_way_to_the_file_is_not_followed() {
    // Root's directories and a safe file, reached through a link: whoever
    // owns the directory holding a link (a user's entry in /tmp) could
    // point it at any directory of root's.
    let top = tempfile::tempdir().unwrap();
    let real = top.path().join("real");
    fs::create_dir_all(real.join("sub")).unwrap();
    write(&real.join("primary.shifts"), ALICE);
    write(&real.join("sub/primary.shifts"), ALICE);
    let linked = top.path().join("linked");
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    let look = |file: PathBuf| {
        let config = BTreeMap::from([("primary".to_owned(), OnCallSchedule { file })]);
        let rosters = Rosters::new(&config, Arc::new(Ahead));
        let on_call = rosters.is_on_call("primary", "alice", NIGHT);
        (on_call, rosters.status().remove(0).problem)
    };
    assert_eq!(look(real.join("primary.shifts")), (true, None));
    assert_eq!(look(real.join("sub/primary.shifts")), (true, None));
    let refused = Some(format!(
        "{}: a symbolic link (not followed)",
        linked.display()
    ));
    // The file's own directory a link, and one above it.
    assert_eq!(
        look(linked.join("primary.shifts")),
        (false, refused.clone())
    );
    assert_eq!(look(linked.join("sub/primary.shifts")), (false, refused));
}

#[test]
fn a_file_too_large_puts_nobody_on_call() {
    let f = Fixture::new(None);
    let mut text = ALICE.repeat(1 + MAX_FILE_BYTES as usize / ALICE.len());
    text.truncate(MAX_FILE_BYTES as usize + 1);
    write(&f.file(), &text);
    assert!(!f.on_call("alice"));
    assert!(f.problem().unwrap().contains("larger than"));
}

#[test]
fn an_unknown_schedule_has_nobody() {
    let f = Fixture::new(Some(ALICE));
    assert!(!f.rosters.is_on_call("secondary", "alice", NIGHT));
}

#[test]
fn the_status_says_who_is_on_call_now() {
    let now = SystemClock.wall();
    let from = crate::core::model::rfc3339(now - 60);
    let to = crate::core::model::rfc3339(now + 3600);
    let f = Fixture::new(Some(&format!(
        "alice {from} {to}\nbob {from} {to}\n{ALICE}"
    )));
    let status = f.rosters.status();
    assert_eq!(
        status,
        [OnCallView {
            name: "primary".into(),
            file: f.file().display().to_string(),
            shifts: Some(3),
            on_call: vec!["alice".into(), "bob".into()],
            problem: None,
        }]
    );
}
