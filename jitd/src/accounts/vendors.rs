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
use super::shadow::{run, AccountError};

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

/// The vendor's mailbox.
const MAIL_DIR: &str = "/var/mail";
/// Places a vendor may leave files in that outlive the account.
const SPOOLS: [&str; 2] = ["/var/spool/cron/crontabs", "/var/spool/cron/atjobs"];
const TEMP_DIRS: [&str; 2] = ["/tmp", "/var/tmp"];
/// How deep the purge of temporary directories walks.
const MAX_DEPTH: usize = 16;

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
        let ended = end_processes(uid);
        Ok(json!({"account": account, "uid": uid, "present": present, "processes_ended": ended}))
    }

    fn delete(
        &self,
        account: &str,
        uid: u32,
        archive: &Path,
    ) -> Result<serde_json::Value, AccountError> {
        let user = existing(account, uid)?;
        end_processes(uid);
        // The home as passwd says, or (the account deleted by a pass cut
        // short) where useradd made it.
        let home = user
            .as_ref()
            .map_or_else(|| Path::new("/home").join(account), |u| u.dir.clone());
        // Archived, then removed by jitd rather than `userdel --remove`, so
        // that a pass cut short between the two finds the home again, and
        // only a directory the vendor owns is taken.
        if owned_by(&home, uid, true) {
            archive_home(&home, archive)?;
            fs::remove_dir_all(&home)?;
        }
        let archived = archive.exists().then(|| archive.display().to_string());
        let mut purged = Vec::new();
        let mail = Path::new(MAIL_DIR).join(account);
        if owned_by(&mail, uid, false) {
            fs::remove_file(&mail)?;
            purged.push(mail.display().to_string());
        }
        for spool in SPOOLS {
            purged.extend(purge_owned(Path::new(spool), uid, 1));
        }
        for dir in TEMP_DIRS {
            purged.extend(purge_owned(Path::new(dir), uid, MAX_DEPTH));
        }
        if user.is_some() {
            run(USERDEL, "userdel", &[account], None)?;
        }
        remove(&self.key_file(account))?;
        Ok(json!({
            "account": account,
            "uid": uid,
            "archive": archived,
            "purged": purged,
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

/// Whether `path` is a directory (`dir`) or a regular file owned by `uid`,
/// not a link.
fn owned_by(path: &Path, uid: u32, dir: bool) -> bool {
    fs::symlink_metadata(path)
        .is_ok_and(|m| m.uid() == uid && if dir { m.is_dir() } else { m.is_file() })
}

/// SIGKILL to every process of `uid` (its sessions ended with the grants;
/// these are what it left behind); how many.
fn end_processes(uid: u32) -> usize {
    let mut ended = 0;
    for seen in leftovers::running().into_iter().filter(|p| p.uid == uid) {
        let pid = nix::unistd::Pid::from_raw(seen.pid as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
            ended += 1;
        }
    }
    ended
}

/// `home` into a new gzip'd tar at `archive` (0600, in a 0700 directory).
fn archive_home(home: &Path, archive: &Path) -> Result<(), AccountError> {
    let dir = archive.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    // Created first, 0600, so that tar writes into a file nobody else reads.
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(archive)?;
    let (parent, name) = match (home.parent(), home.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => return Err(conflict(format!("cannot archive {}", home.display()))),
    };
    let archive_text = archive.display().to_string();
    let parent_text = parent.display().to_string();
    let name_text = name.to_string_lossy();
    run(
        TAR,
        "tar",
        &[
            "--create",
            "--gzip",
            "--one-file-system",
            "--file",
            &archive_text,
            "--directory",
            &parent_text,
            &name_text,
        ],
        None,
    )
}

/// Removes what `uid` owns under `dir` (not `dir` itself), without
/// following links or leaving its device; the paths removed.
fn purge_owned(dir: &Path, uid: u32, depth: usize) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(device) = fs::symlink_metadata(dir).map(|m| m.dev()) else {
        return removed;
    };
    purge_in(dir, uid, depth, device, &mut removed);
    removed
}

fn purge_in(dir: &Path, uid: u32, depth: usize, device: u64, removed: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != device {
            continue;
        }
        let gone = if meta.uid() == uid {
            if meta.is_dir() {
                fs::remove_dir_all(&path).is_ok()
            } else {
                fs::remove_file(&path).is_ok()
            }
        } else {
            if meta.is_dir() && depth > 1 {
                purge_in(&path, uid, depth - 1, device, removed);
            }
            false
        };
        if gone {
            removed.push(path.display().to_string());
        }
    }
}
