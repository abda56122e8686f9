//! Vendors' local accounts on the host (W4, docs/design.md "Vendor
//! accounts"), made and unmade with shadow-utils as admins do: `useradd`,
//! `chage -E`, `usermod --lock`, `userdel`; the key in a root-owned file
//! sshd reads (`AuthorizedKeysFile /etc/ssh/authorized_keys/%u`). Each
//! step is idempotent, so a pass cut short by a `kill -9` is finished by
//! the next: an account of the expected name and uid is adopted, one with
//! another uid is a conflict, never trusted.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::unistd::{Group, Uid, User};
use serde_json::json;

use super::leftovers;
use super::purge;
use super::shadow::{run, run_for, run_read, AccountError};

/// Every vendor account's login shell: the recorder (every session
/// recorded, the real shell behind it).
pub const VENDOR_SHELL: &str = "/usr/libexec/jit/jit-session";
/// Where sshd finds vendors' keys (root's, not the vendor's to change).
pub const KEY_DIR: &str = "/etc/ssh/authorized_keys";

const USERADD: &str = "/usr/sbin/useradd";
const USERMOD: &str = "/usr/sbin/usermod";
const USERDEL: &str = "/usr/sbin/userdel";
const GROUPADD: &str = "/usr/sbin/groupadd";
const CHAGE: &str = "/usr/bin/chage";
const TAR: &str = "/bin/tar";
const SETPRIV: &str = "/usr/bin/setpriv";
const KILL: &str = "/bin/kill";
/// Rounds of `kill -1` as the vendor before giving up on a process that
/// keeps coming back (reported by the next pass).
const KILL_ROUNDS: usize = 5;
const KILL_SETTLE: Duration = Duration::from_millis(200);

/// Root's spools where a vendor may leave files that outlive the account
/// (its mailbox, its crontab and `at` jobs), removed by jitd.
const SPOOLS: [&str; 3] = [
    "/var/mail",
    "/var/spool/cron/crontabs",
    "/var/spool/cron/atjobs",
];
/// Directories everyone writes, where the vendor's own files are removed
/// by the vendor's uid (see [`as_the_vendor`]).
const SHARED: [&str; 2] = ["/tmp", "/var/tmp"];
const CHMOD: &str = "/bin/chmod";
const SH: &str = "/bin/sh";
/// Debian's group of nobody.
const NOGROUP: u32 = 65534;
const FIND: &str = "/usr/bin/find";
/// How long each step of removing a home or a vendor's temporary files
/// may take (the keeper waits for it).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// How long archiving a home may take: it grows with the home.
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const UMOUNT: &str = "/bin/umount";

/// One vendor's account as the host should hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPlan {
    pub account: String,
    pub uid: u32,
    /// The vendors' group (sshd's `Match Group`).
    pub group: String,
    /// The GECOS field: who the vendor is (no colon, comma or control).
    pub comment: String,
    /// `chage -E`'s day (days since the epoch).
    pub expire_day: i64,
    /// The `authorized_keys` line (`restrict` and the key), if any.
    pub key_line: Option<String>,
}

/// What jitd does to vendors' accounts: the engine decides when, this
/// does it, and each result is the audit event's detail.
pub trait VendorHost: Send + Sync {
    fn create(&self, plan: &AccountPlan) -> Result<serde_json::Value, AccountError>;
    /// Locks and expires the account, removes its key, ends its processes.
    fn lock(&self, account: &str, uid: u32) -> Result<serde_json::Value, AccountError>;
    /// Archives the home into `archive` (root-only), purges what the
    /// vendor left in spools and temporary directories, deletes the account.
    fn delete(
        &self,
        account: &str,
        uid: u32,
        archive: &Path,
    ) -> Result<serde_json::Value, AccountError>;
    /// Local accounts named with `prefix` or with a uid in `uids`.
    fn present(&self, prefix: &str, uids: &std::ops::RangeInclusive<u32>) -> Vec<(String, u32)>;
}

/// The host's shadow-utils.
pub struct ShadowVendors {
    key_dir: PathBuf,
}

impl ShadowVendors {
    pub fn new() -> ShadowVendors {
        ShadowVendors {
            key_dir: PathBuf::from(KEY_DIR),
        }
    }

    fn key_file(&self, account: &str) -> PathBuf {
        self.key_dir.join(account)
    }
}

impl Default for ShadowVendors {
    fn default() -> Self {
        ShadowVendors::new()
    }
}

/// `account`'s uid, if the account exists: `Err` when it exists with
/// another uid than `uid` (not ours: never adopted).
fn existing(account: &str, uid: u32) -> Result<Option<User>, AccountError> {
    match User::from_name(account).map_err(io::Error::from)? {
        Some(user) if user.uid.as_raw() == uid => Ok(Some(user)),
        Some(user) => Err(conflict(format!(
            "account '{account}' exists with uid {} instead of {uid}",
            user.uid
        ))),
        None => Ok(None),
    }
}

/// Whether `uid` is nobody's but `account`'s, before acting on everything
/// of that uid (its processes, its files): a uid another account holds now
/// (given again by hand) is a conflict, never killed or purged.
fn uid_is_the_vendors(account: &str, uid: u32) -> Result<(), AccountError> {
    match User::from_uid(Uid::from_raw(uid)).map_err(io::Error::from)? {
        Some(other) if other.name != account => Err(conflict(format!(
            "uid {uid} belongs to '{}' now, not to vendor account '{account}'",
            other.name
        ))),
        _ => Ok(()),
    }
}

fn conflict(what: String) -> AccountError {
    AccountError::Io(io::Error::new(io::ErrorKind::AlreadyExists, what))
}

/// `YYYY-MM-DD` of `day` days after the epoch.
fn date_of(day: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(day).unwrap_or(0) * 86_400);
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

impl VendorHost for ShadowVendors {
    fn create(&self, plan: &AccountPlan) -> Result<serde_json::Value, AccountError> {
        if Group::from_name(&plan.group)
            .map_err(io::Error::from)?
            .is_none()
        {
            run(GROUPADD, "groupadd", &["--system", &plan.group], None)?;
        }
        let adopted = existing(&plan.account, plan.uid)?.is_some();
        if !adopted {
            if let Some(other) = User::from_uid(Uid::from_raw(plan.uid)).map_err(io::Error::from)? {
                return Err(conflict(format!(
                    "uid {} belongs to '{}' already",
                    plan.uid, other.name
                )));
            }
            let uid = plan.uid.to_string();
            run(
                USERADD,
                "useradd",
                &[
                    "--uid",
                    &uid,
                    "--gid",
                    &plan.group,
                    "--create-home",
                    "--key",
                    "HOME_MODE=0700",
                    // No subordinate uids: a vendor's user namespace would
                    // run as uids outside every rule that follows its own.
                    "--key",
                    "SUB_UID_COUNT=0",
                    "--key",
                    "SUB_GID_COUNT=0",
                    "--shell",
                    VENDOR_SHELL,
                    "--comment",
                    &plan.comment,
                    &plan.account,
                ],
                None,
            )?;
        }
        // Also for an adopted account: the step before a kill -9 may not
        // have reached it.
        let day = date_of(plan.expire_day);
        run(CHAGE, "chage", &["--expiredate", &day, &plan.account], None)?;
        deny_jobs(&plan.account, true)?;
        match &plan.key_line {
            Some(line) => write_key(&self.key_file(&plan.account), line)?,
            None => remove(&self.key_file(&plan.account))?,
        }
        Ok(json!({
            "account": plan.account,
            "uid": plan.uid,
            "expires": day,
            "key": plan.key_line.is_some(),
            "adopted": adopted,
        }))
    }

    fn lock(&self, account: &str, uid: u32) -> Result<serde_json::Value, AccountError> {
        let present = existing(account, uid)?.is_some();
        uid_is_the_vendors(account, uid)?;
        if present {
            // Expired since the epoch's second day: no login, whatever
            // the password or key.
            run(
                USERMOD,
                "usermod",
                &["--lock", "--expiredate", "1970-01-02", account],
                None,
            )?;
        }
        remove(&self.key_file(account))?;
        let ended = end_processes(uid)?;
        Ok(json!({"account": account, "uid": uid, "present": present, "processes_ended": ended}))
    }

    fn delete(
        &self,
        account: &str,
        uid: u32,
        archive: &Path,
    ) -> Result<serde_json::Value, AccountError> {
        let user = existing(account, uid)?;
        uid_is_the_vendors(account, uid)?;
        end_processes(uid)?;
        // The home as passwd says, or (the account deleted by a pass cut
        // short) where useradd made it.
        let home = user
            .as_ref()
            .map_or_else(|| Path::new("/home").join(account), |u| u.dir.clone());
        // The vendor's group for what runs as the vendor (`nogroup` once
        // the account is gone): never another group's rights.
        let gid = user.as_ref().map_or(NOGROUP, |u| u.gid.as_raw());
        let vendor = Vendor { uid, gid };
        // What the vendor mounted there goes first (a dead FUSE mount fails
        // every stat below it). A mount that stays (jitd may not unmount
        // under its unit) keeps the home from being touched at all: whatever
        // it shows is not the vendor's to lose.
        let unmounted = mounts_below(&home)
            .into_iter()
            .map(|point| detach(&point))
            .collect::<Vec<_>>();
        let still_mounted = mounts_below(&home);
        // Archived once (a complete archive is never replaced: a pass cut
        // short may have removed part of the home since), then removed;
        // only a directory the vendor owns. A home that cannot be archived
        // is left in place (said in the detail): the account still goes.
        let mut left: Vec<String> = still_mounted
            .iter()
            .map(|p| format!("{}: still mounted, home left", p.display()))
            .collect();
        if still_mounted.is_empty() && owned_by(&home, uid, true) {
            let archived = match archive.exists() {
                true => Ok(()),
                false => archive_home(&home, archive),
            };
            match archived {
                Ok(()) => left.extend(remove_home(&home, vendor)),
                Err(e) => left.push(format!("{}: not archived: {e}", home.display())),
            }
        }
        let mut purged = Vec::new();
        for place in SPOOLS {
            let removed = purge::owned_by(Path::new(place), uid, 1);
            purged.extend(removed.paths);
            left.extend(removed.left);
        }
        for place in SHARED {
            left.extend(remove_owned(Path::new(place), vendor));
        }
        if user.is_some() {
            run(USERDEL, "userdel", &[account], None)?;
        }
        deny_jobs(account, false)?;
        remove(&self.key_file(account))?;
        Ok(json!({
            "account": account,
            "uid": uid,
            "archive": archive.exists().then(|| archive.display().to_string()),
            "purged": purged,
            "left": left,
            "unmounted": unmounted,
        }))
    }

    fn present(&self, prefix: &str, uids: &std::ops::RangeInclusive<u32>) -> Vec<(String, u32)> {
        let Ok(passwd) = fs::read("/etc/passwd") else {
            return Vec::new();
        };
        passwd
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let mut fields = line.split(|&b| b == b':');
                let name = std::str::from_utf8(fields.next()?).ok()?;
                let uid: u32 = std::str::from_utf8(fields.nth(1)?).ok()?.parse().ok()?;
                (name.starts_with(prefix) || uids.contains(&uid)).then(|| (name.to_owned(), uid))
            })
            .collect()
    }
}

/// The allow and deny files of cron and `at`, and whether a missing pair
/// lets every user in (Debian's cron does; its `at` lets only root in).
const JOB_FILES: [(&str, &str, bool); 2] = [
    ("/etc/cron.allow", "/etc/cron.deny", true),
    ("/etc/at.allow", "/etc/at.deny", false),
];

/// Keeps `account` from scheduling jobs with cron and `at` (`deny`), or
/// takes it out of the deny lists again: a vendor's job would run with
/// `sh -c`, outside the recorder. Where an allow list exists the vendor is
/// not in it, and where the pair is missing and only root may schedule,
/// nothing is written. A deny file is replaced whole, keeping its owner and
/// mode; one that is not a regular file is refused.
fn deny_jobs(account: &str, deny: bool) -> Result<(), AccountError> {
    for (allow, deny_file, open_without) in JOB_FILES {
        if fs::symlink_metadata(allow).is_ok() {
            continue;
        }
        let path = Path::new(deny_file);
        let current = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(mut file) => {
                let meta = file.metadata()?;
                if !meta.is_file() {
                    return Err(conflict(format!("{deny_file} is not a regular file")));
                }
                let mut text = String::new();
                std::io::Read::read_to_string(&mut file, &mut text)?;
                Some((text, meta))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if current.is_none() && (!deny || !open_without) {
            continue;
        }
        let (text, meta) = current.map_or((String::new(), None), |(t, m)| (t, Some(m)));
        if text.lines().any(|l| l.trim() == account) == deny {
            continue;
        }
        let mut kept: Vec<&str> = text.lines().filter(|l| l.trim() != account).collect();
        if deny {
            kept.push(account);
        }
        let mut new = kept.join("\n");
        if !new.is_empty() {
            new.push('\n');
        }
        let temporary = path.with_extension("jit-new");
        remove(&temporary)?;
        let mode = meta.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        out.write_all(new.as_bytes())?;
        out.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &meta {
            std::os::unix::fs::fchown(&out, Some(m.uid()), Some(m.gid()))?;
        }
        out.sync_all()?;
        fs::rename(&temporary, path)?;
    }
    Ok(())
}

/// Writes the key file root-owned, 0644, by replacing it (never through a
/// link someone put in its place).
fn write_key(path: &Path, line: &str) -> Result<(), AccountError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    // sshd reads the key as the vendor: the directory must be searchable by
    // everyone (0755, whatever jitd's umask), and writable by root only.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(conflict(format!(
            "{} must be a directory owned by root and writable by root only",
            dir.display()
        )));
    }
    if meta.mode() & 0o005 != 0o005 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    let temporary = path.with_extension("jit-new");
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    Ok(())
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The ids what runs as a vendor runs with.
#[derive(Clone, Copy)]
struct Vendor {
    uid: u32,
    /// Its primary group, or `nogroup` once the account is gone.
    gid: u32,
}

/// Runs `program` as the vendor (no supplementary groups): what only the
/// vendor's files are exposed to is done with the vendor's rights, so that
/// no link or race can turn it onto anyone else's files, and jitd needs no
/// right to override permissions. Best effort: what it said when it failed.
fn as_the_vendor(vendor: Vendor, program: &str, args: &[&str]) -> Option<String> {
    let (uid, gid) = (vendor.uid.to_string(), vendor.gid.to_string());
    let mut argv = vec![
        "--reuid",
        &uid,
        "--regid",
        &gid,
        "--clear-groups",
        "--",
        program,
    ];
    argv.extend_from_slice(args);
    run_for(SETPRIV, "setpriv", &argv, REMOVE_TIMEOUT)
        .err()
        .map(|e| {
            format!(
                "{program} {}: {e}",
                args.first().copied().unwrap_or_default()
            )
        })
}

/// Removes, as the vendor, what it owns under `place` (numeric uid, never
/// a name; on `place`'s file system), after making its own directories its
/// to empty; says what is left of it (a second look: `find` complains about
/// every directory the vendor may not read, which says nothing).
fn remove_owned(place: &Path, vendor: Vendor) -> Option<String> {
    let (text, uid) = (place.display().to_string(), vendor.uid.to_string());
    let mine = ["-xdev", "-uid", &uid];
    let mut chmod = vec![text.as_str()];
    chmod.extend(mine);
    // One at a time (`;`), before find reads what is in it.
    chmod.extend(["-type", "d", "-exec", CHMOD, "u+rwx", "{}", ";"]);
    as_the_vendor(vendor, FIND, &chmod);
    let mut delete = vec![text.as_str(), "-depth"];
    delete.extend(mine);
    delete.push("-delete");
    as_the_vendor(vendor, FIND, &delete);
    // What find prints counts whatever its status (it fails for a file
    // gone mid-walk): a shell keeps the output and drops the status.
    let look = "find \"$1\" -xdev -uid \"$2\" -print -quit 2>/dev/null; exit 0";
    let out = run_read(SH, "sh", &["-c", look, "sh", &text, &uid], None);
    match out {
        Ok(out) if out.is_empty() => None,
        Ok(_) => Some(format!("{text}: files of uid {uid} are left")),
        Err(e) => Some(format!("{text}: cannot tell what is left: {e}")),
    }
}

/// Empties `home` as the vendor (directories made its own to empty first,
/// then everything below it deleted, on the home's file system, never
/// following a link), then removes the empty directory as root (its
/// parent is root's); what is left, if any.
fn remove_home(home: &Path, vendor: Vendor) -> Vec<String> {
    let text = home.display().to_string();
    let mut left = Vec::new();
    as_the_vendor(vendor, CHMOD, &["-R", "u+rwX", "--", &text]);
    let delete = [
        text.as_str(),
        "-xdev",
        "-mindepth",
        "1",
        "-depth",
        "-delete",
    ];
    left.extend(as_the_vendor(vendor, FIND, &delete));
    if let Err(e) = fs::remove_dir(home) {
        left.push(format!("{text}: {e}"));
    }
    left
}

/// Whether `path` is a directory (`dir`) or a regular file owned by `uid`,
/// not a link.
fn owned_by(path: &Path, uid: u32, dir: bool) -> bool {
    fs::symlink_metadata(path)
        .is_ok_and(|m| m.uid() == uid && if dir { m.is_dir() } else { m.is_file() })
}

/// Ends every process of `uid`: `kill -KILL -1` run as the uid, so that the
/// kernel signals all of them at once (one that forks in a loop cannot slip
/// between a listing and its signal, and one running a program setuid to
/// the vendor is reached by its saved uid), again until `/proc` shows none;
/// how many there were.
fn end_processes(uid: u32) -> Result<usize, AccountError> {
    // Zombies are dead already: their parents (sshd's monitor, root's)
    // reap them.
    let of_uid = || {
        leftovers::running()
            .into_iter()
            .filter(|p| p.uid == uid && !is_zombie(p.pid))
            .count()
    };
    let found = of_uid();
    let id = uid.to_string();
    for round in 0..KILL_ROUNDS {
        // At least one round whatever the count says: a process that
        // looks dead may not be.
        if round > 0 && of_uid() == 0 {
            return Ok(found);
        }
        // kill exits 1 once nothing is left to signal: not a failure.
        let _ = run(
            SETPRIV,
            "setpriv",
            &[
                "--reuid",
                &id,
                "--regid",
                &id,
                "--clear-groups",
                KILL,
                "-KILL",
                "-1",
            ],
            None,
        );
        // SIGKILL is delivered at once, the exits take a moment.
        std::thread::sleep(KILL_SETTLE);
    }
    match of_uid() {
        0 => Ok(found),
        left => Err(conflict(format!(
            "{left} processes of uid {uid} are still running after {KILL_ROUNDS} rounds of kill"
        ))),
    }
}

/// Whether `pid` has exited and waits to be reaped (state `Z`).
/// A process whose first thread exited shows `Z` too while its other
/// threads run: only one with no thread left is dead.
fn is_zombie(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    field("State:").is_some_and(|s| s.starts_with('Z')) && field("Threads:") == Some("1")
}

/// `home` into a new gzip'd tar at `archive` (0600, in a 0700 directory).
fn archive_home(home: &Path, archive: &Path) -> Result<(), AccountError> {
    let dir = archive.parent().unwrap_or(Path::new("/"));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    // Written under a name of its own, then renamed: an archive that
    // exists is complete. Created first, 0600, so that nobody else reads
    // what tar writes into it.
    let partial = archive.with_extension("partial");
    remove(&partial)?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&partial)?;
    let (parent, name) = match (home.parent(), home.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => return Err(conflict(format!("cannot archive {}", home.display()))),
    };
    let partial_text = partial.display().to_string();
    let parent_text = parent.display().to_string();
    let name_text = name.to_string_lossy();
    // --sparse: a huge sparse file costs what it holds, not its size.
    run_for(
        TAR,
        "tar",
        &[
            "--create",
            "--gzip",
            "--sparse",
            // Sockets and the like are not archived; saying so for each
            // would fill tar's error output.
            "--warning=no-file-ignored",
            "--one-file-system",
            "--file",
            &partial_text,
            "--directory",
            &parent_text,
            &name_text,
        ],
        ARCHIVE_TIMEOUT,
    )?;
    fs::rename(&partial, archive)?;
    Ok(())
}

/// The top-most mount points at or below `home` (detaching one takes what
/// is below it), as the kernel names them.
fn mounts_below(home: &Path) -> Vec<PathBuf> {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .filter(|point| point.starts_with(home))
        .collect();
    points
        .iter()
        .filter(|p| !points.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect()
}

/// Detaches the mount at `point` (`umount --lazy`), without resolving its
/// path (a FUSE daemon could answer with a link to a mount that matters);
/// how it went. Under the unit jitd may not unmount (no `CAP_SYS_ADMIN`).
fn detach(point: &Path) -> String {
    let text = point.display().to_string();
    match run(
        UMOUNT,
        "umount",
        &["--lazy", "--no-canonicalize", &text],
        None,
    ) {
        Ok(()) => format!("{text}: detached"),
        Err(e) => format!("{text}: {e}"),
    }
}

/// A mountinfo path: spaces, tabs, newlines and backslashes are `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_as_the_kernel_escapes_them() {
        assert_eq!(
            unescape("/home/v-x/my\\040mount\\134x"),
            Path::new("/home/v-x/my mount\\x")
        );
        assert_eq!(unescape("/a\\0"), Path::new("/a\\0"));
    }

    #[test]
    fn only_the_top_most_mounts_below_a_path_are_named() {
        // /sys is a mount with mounts below it (cgroup2 at least).
        assert_eq!(mounts_below(Path::new("/sys")), [PathBuf::from("/sys")]);
        assert!(mounts_below(Path::new("/nonexistent-home/v-x")).is_empty());
    }

    #[test]
    fn chage_takes_the_day_as_a_date() {
        assert_eq!(date_of(20_794), "2026-12-07");
        assert_eq!(date_of(1), "1970-01-02");
    }
}
