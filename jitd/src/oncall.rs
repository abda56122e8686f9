//! On-call schedules on the host (docs/design.md "On-call schedules",
//! T43): each `[oncall.NAME]` file read when it changes, checked before it
//! is trusted, and nobody on call while it is missing, unsafe or malformed.
//!
//! Each lookup compares the file's and its directory's `stat` with what
//! they were when the file was read (two syscalls, about a microsecond,
//! see BENCHMARKS.md) and reads it again if anything differs: a rename
//! over it (another inode), an edit in place (size, mtime, ctime), a chown
//! or chmod (ctime, owner, mode). Not inotify: its watches die with the
//! inode a rename replaces and must be re-armed, need a thread of their
//! own, and are lost on queue overflow; a `stat` per lookup has none of
//! this and costs less than the request it sits in.
//!
//! What is read is what was checked: the directory is opened and checked
//! by its descriptor, the file opened under it with `O_NOFOLLOW` and
//! checked by `fstat` on its descriptor.
//!
//! A change of state is logged once, and queued for the engine to audit
//! (`Engine::write_oncall_changes`): broken and restored tell security.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};
use thiserror::Error;

use crate::api::OnCallView;
use crate::clock::Clock;
use crate::config::OnCallSchedule;
use crate::core::model::UnixTime;
use crate::core::oncall::{self, OnCall, Schedule, ShiftError};

/// A larger file is refused: 10,000 shifts take about 700 KB.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// A file changed less than this long before it was read may change again
/// within the same timestamp (file times advance by the kernel's tick):
/// its `stat` is not trusted, and the next lookup reads it again.
const RACY: Duration = Duration::from_secs(1);

/// Between two looks at every schedule when no lookup asks.
const SWEEP: Duration = Duration::from_secs(60);

/// Why a schedule has nobody on call.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Broken {
    #[error("{0}: no such file")]
    Missing(PathBuf),
    #[error("{0}: a symbolic link (not followed)")]
    Symlink(PathBuf),
    #[error("{path}: cannot open: {error}")]
    Open { path: PathBuf, error: String },
    #[error("{0}: not a regular file")]
    NotRegular(PathBuf),
    #[error("{path}: owned by uid {uid}, not root")]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("{path}: writable by its group or others (mode {mode:04o})")]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: cannot read: {error}")]
    Read { path: PathBuf, error: String },
    #[error("{path}:{error}")]
    Malformed { path: PathBuf, error: ShiftError },
}

/// What a schedule looked like when read: the file's `stat` and its
/// directory's identity, owner and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    file: Identity,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    dir: Identity,
}

/// An inode, its owner and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    uid: u32,
    mode: u32,
}

impl Identity {
    fn of(st: &FileStat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
            uid: st.st_uid,
            mode: st.st_mode,
        }
    }
}

impl Stamp {
    fn of(file: &FileStat, dir: &FileStat) -> Stamp {
        Stamp {
            file: Identity::of(file),
            size: file.st_size,
            mtime: (file.st_mtime, file.st_mtime_nsec),
            ctime: (file.st_ctime, file.st_ctime_nsec),
            dir: Identity::of(dir),
        }
    }

    /// When the file last changed (its ctime follows every write, chmod
    /// and chown; mtime can be set back by `touch`).
    fn changed_at(&self) -> Duration {
        let (secs, nanos) = self.ctime.max(self.mtime);
        Duration::new(
            u64::try_from(secs).unwrap_or(0),
            u32::try_from(nanos).unwrap_or(0),
        )
    }
}

/// The state of one schedule as last read.
struct Reading {
    /// `None`: not opened (missing, a link, its directory unsafe): read
    /// again at every lookup, which costs a failed `open`.
    stamp: Option<Stamp>,
    /// Read too soon after a change to trust `stamp` ([`RACY`]).
    racy: bool,
    schedule: Result<Arc<Schedule>, Broken>,
    /// SHA-256 of a valid file: a re-read of the same text is no change.
    digest: Option<String>,
}

/// One configured schedule.
struct Roster {
    file: PathBuf,
    dir: PathBuf,
    name: OsString,
    /// `None` before the first read.
    state: Mutex<Option<Reading>>,
}

/// What the audit trail is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A valid file, read for the first time or changed; `restored`: it was
    /// broken before.
    Loaded {
        schedule: String,
        file: PathBuf,
        shifts: usize,
        sha256: String,
        restored: bool,
    },
    /// Nobody is on call from now until the file is fixed.
    Broken {
        schedule: String,
        file: PathBuf,
        reason: Broken,
    },
}

/// Every configured schedule, read when it changes.
pub struct Rosters {
    rosters: BTreeMap<String, Roster>,
    clock: Arc<dyn Clock>,
    /// Changes not yet audited, oldest first.
    changes: Mutex<Vec<Change>>,
    /// Rung when a change is queued.
    changed: tokio::sync::Notify,
}

impl Rosters {
    /// Reads every schedule once (their states are the first changes).
    pub fn new(config: &BTreeMap<String, OnCallSchedule>, clock: Arc<dyn Clock>) -> Rosters {
        let rosters = config
            .iter()
            .map(|(name, schedule)| {
                let file = schedule.file.clone();
                let roster = Roster {
                    dir: file.parent().map_or_else(|| "/".into(), Path::to_owned),
                    name: file.file_name().unwrap_or_default().to_owned(),
                    file,
                    state: Mutex::new(None),
                };
                (name.clone(), roster)
            })
            .collect();
        let rosters = Rosters {
            rosters,
            clock,
            changes: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
        };
        rosters.refresh_all();
        rosters
    }

    /// Looks at every schedule (a broken file is noticed, and audited,
    /// even when nobody asks).
    pub fn refresh_all(&self) {
        for (name, roster) in &self.rosters {
            // Read for its change of state, which `current` queues.
            let _ = self.current(name, roster);
        }
    }

    /// Each schedule, as `jitctl status` shows it: who is on call now, or
    /// why nobody is.
    pub fn status(&self) -> Vec<OnCallView> {
        let now = self.clock.wall();
        self.rosters
            .iter()
            .map(|(name, roster)| {
                let (shifts, on_call, problem) = match self.current(name, roster) {
                    Ok(s) => (
                        Some(s.len()),
                        s.holders_at(now).into_iter().map(str::to_owned).collect(),
                        None,
                    ),
                    Err(broken) => (None, Vec::new(), Some(broken.to_string())),
                };
                OnCallView {
                    name: name.clone(),
                    file: roster.file.display().to_string(),
                    shifts,
                    on_call,
                    problem,
                }
            })
            .collect()
    }

    /// The changes not yet audited, oldest first.
    pub fn take_changes(&self) -> Vec<Change> {
        std::mem::take(&mut *lock(&self.changes))
    }

    /// Returns once a change was queued since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The schedule as the file now says, read again if it changed.
    fn current(&self, name: &str, roster: &Roster) -> Result<Arc<Schedule>, Broken> {
        let now = stamp_now(roster);
        let mut state = lock(&roster.state);
        if let Some(read) = &*state {
            if !read.racy && read.stamp.is_some() && read.stamp == now {
                return read.schedule.clone();
            }
        }
        let started = self.clock.wall_precise();
        let (stamp, bytes) = read_checked(roster);
        let (schedule, digest) = match bytes {
            Ok(bytes) => match oncall::parse(&bytes) {
                Ok(schedule) => (Ok(Arc::new(schedule)), Some(sha256(&bytes))),
                Err(error) => {
                    let path = roster.file.clone();
                    (Err(Broken::Malformed { path, error }), None)
                }
            },
            Err(broken) => (Err(broken), None),
        };
        let next = Reading {
            racy: stamp.is_some_and(|s| s.changed_at() + RACY > started),
            stamp,
            schedule,
            digest,
        };
        if let Some(change) = self.change(name, roster, state.as_ref(), &next) {
            lock(&self.changes).push(change);
            self.changed.notify_one();
        }
        let schedule = next.schedule.clone();
        *state = Some(next);
        schedule
    }

    /// What changed from `before` to `after`, logged here; `None` for a
    /// re-read of the same text or the same breakage.
    fn change(
        &self,
        name: &str,
        roster: &Roster,
        before: Option<&Reading>,
        after: &Reading,
    ) -> Option<Change> {
        let file = roster.file.clone();
        let was_broken = before.is_some_and(|b| b.schedule.is_err());
        match (&after.schedule, before.map(|b| &b.schedule)) {
            (Ok(_), Some(Ok(_)))
                if before.and_then(|b| b.digest.as_ref()) == after.digest.as_ref() =>
            {
                None
            }
            (Ok(schedule), _) => {
                let sha256 = after.digest.clone().unwrap_or_default();
                if was_broken {
                    tracing::info!(schedule = name, file = %file.display(), shifts = schedule.len(),
                        "on-call schedule fixed: read again");
                } else {
                    tracing::info!(schedule = name, file = %file.display(), shifts = schedule.len(),
                        "on-call schedule read");
                }
                Some(Change::Loaded {
                    schedule: name.to_owned(),
                    file,
                    shifts: schedule.len(),
                    sha256,
                    restored: was_broken,
                })
            }
            (Err(reason), Some(Err(previous))) => {
                if reason != previous {
                    tracing::warn!(schedule = name, reason = %reason,
                        "on-call schedule still broken, now for another reason: nobody is on call");
                }
                None
            }
            (Err(reason), _) => {
                tracing::warn!(schedule = name, reason = %reason,
                    "on-call schedule broken: nobody is on call until it is fixed");
                Some(Change::Broken {
                    schedule: name.to_owned(),
                    file,
                    reason: reason.clone(),
                })
            }
        }
    }
}

impl OnCall for Rosters {
    fn is_on_call(&self, schedule: &str, user: &str, at: UnixTime) -> bool {
        self.rosters.get(schedule).is_some_and(|roster| {
            self.current(schedule, roster)
                .is_ok_and(|s| s.is_on_call(user, at))
        })
    }
}

/// Audits the schedules' changes as lookups notice them, and looks at
/// every schedule once a minute: a file broken while nobody asks is told
/// to security within a minute, not when the on-call engineer is refused.
pub async fn watch(rosters: Arc<Rosters>, engine: Arc<std::sync::Mutex<crate::engine::Engine>>) {
    loop {
        let sweep = tokio::select! {
            _ = rosters.changed() => false,
            _ = tokio::time::sleep(SWEEP) => true,
        };
        if sweep {
            // Reading files, outside the engine's lock.
            let rosters = Arc::clone(&rosters);
            if let Err(e) = tokio::task::spawn_blocking(move || rosters.refresh_all()).await {
                tracing::error!(error = %e, "cannot look at the on-call schedules");
            }
        }
        match crate::engine::run_blocking(&engine, |e| e.write_oncall_changes()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot audit the on-call schedules' changes")
            }
            Err(e) => tracing::error!(error = %e, "cannot audit the on-call schedules' changes"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sha256(bytes: &[u8]) -> String {
    crate::core::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The file's and its directory's `stat` now, by path; `None` if either
/// is gone.
fn stamp_now(roster: &Roster) -> Option<Stamp> {
    let file = stat::lstat(&roster.file).ok()?;
    let dir = stat::stat(&roster.dir).ok()?;
    Some(Stamp::of(&file, &dir))
}

/// Opens the directory, checks it and the directories above it, opens the
/// file under it without following a link, checks it and reads it.
fn read_checked(roster: &Roster) -> (Option<Stamp>, Result<Vec<u8>, Broken>) {
    let (fd, st, dir_st) = match open_file(roster) {
        Ok(opened) => opened,
        Err(broken) => return (None, Err(broken)),
    };
    let bytes = check_file(&roster.file, &st).and_then(|()| read_all(fd.into(), &roster.file));
    (Some(Stamp::of(&st, &dir_st)), bytes)
}

/// The file, opened under its checked directory without following a link,
/// with its `stat` and its directory's.
fn open_file(roster: &Roster) -> Result<(OwnedFd, FileStat, FileStat), Broken> {
    let path = || roster.file.clone();
    let (dir, dir_st) = open_dir(&roster.dir)?;
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        // A FIFO put there must not hang the lookup: it is refused below.
        | OFlag::O_NONBLOCK;
    let fd = fcntl::openat(&dir, roster.name.as_os_str(), flags, Mode::empty()).map_err(
        |e| match e {
            Errno::ENOENT => Broken::Missing(path()),
            Errno::ELOOP => Broken::Symlink(path()),
            e => Broken::Open {
                path: path(),
                error: e.desc().to_owned(),
            },
        },
    )?;
    let st = stat::fstat(&fd).map_err(|e| Broken::Read {
        path: path(),
        error: e.desc().to_owned(),
    })?;
    Ok((fd, st, dir_st))
}

/// A regular file, root's and writable by root alone.
fn check_file(path: &Path, st: &FileStat) -> Result<(), Broken> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Broken::NotRegular(path.to_owned()));
    }
    check_owner(path, st, false)
}

/// The whole file, at most [`MAX_FILE_BYTES`].
fn read_all(file: std::fs::File, path: &Path) -> Result<Vec<u8>, Broken> {
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Broken::Read {
            path: path.to_owned(),
            error: e.to_string(),
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Broken::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The file's directory, with its `stat`: reached from `/` one directory
/// at a time, each opened under the one before without following a link
/// and checked on its descriptor before going below it, so that what is
/// checked is the way the file is opened (a link on the way, which
/// whoever owns the directory holding it could point anywhere, is
/// refused). `O_PATH`: nothing is read from them.
fn open_dir(dir: &Path) -> Result<(OwnedFd, FileStat), Broken> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let open_error = |path: &Path, e: Errno| Broken::Open {
        path: path.to_owned(),
        error: e.desc().to_owned(),
    };
    let mut at = PathBuf::from("/");
    let mut fd = fcntl::open(&at, flags, Mode::empty()).map_err(|e| open_error(&at, e))?;
    let mut st = stat::fstat(&fd).map_err(|e| open_error(&at, e))?;
    for part in dir.components() {
        let name = match part {
            Component::RootDir | Component::CurDir => continue,
            Component::Prefix(_) | Component::ParentDir | Component::Normal(_) => part.as_os_str(),
        };
        // Above the file's directory: sticky is enough (`/tmp`).
        check_owner(&at, &st, true)?;
        at.push(name);
        fd = match fcntl::openat(&fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link opened with O_NOFOLLOW | O_DIRECTORY: ENOTDIR.
            Err(Errno::ELOOP | Errno::ENOTDIR) if is_link(&fd, name) => {
                return Err(Broken::Symlink(at))
            }
            Err(e) => return Err(open_error(&at, e)),
        };
        st = stat::fstat(&fd).map_err(|e| open_error(&at, e))?;
    }
    check_owner(dir, &st, false)?;
    Ok((fd, st))
}

/// Whether `name` under `dir` is a symbolic link.
fn is_link(dir: &OwnedFd, name: &OsStr) -> bool {
    stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Root-owned and writable by root alone: whoever else could write the
/// file, or the directory (and rename another file over it), could put
/// anyone on call. `sticky_ok`: a directory above the file's may be
/// sticky and world-writable (`/tmp`): nobody else may rename root's
/// entries in it.
fn check_owner(path: &Path, st: &FileStat, sticky_ok: bool) -> Result<(), Broken> {
    if st.st_uid != 0 {
        return Err(Broken::NotRootOwned {
            path: path.to_owned(),
            uid: st.st_uid,
        });
    }
    let sticky = st.st_mode & libc::S_ISVTX != 0;
    if st.st_mode & 0o022 != 0 && !(sticky_ok && sticky) {
        return Err(Broken::Writable {
            path: path.to_owned(),
            mode: st.st_mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
