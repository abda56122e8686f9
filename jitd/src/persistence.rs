//! Snapshots of the places attackers use for persistence (W3 item 6,
//! docs/design.md "What changed during a grant"), compared by
//! `core::changes`. Read-only and bounded: each place draws on its own
//! budget and on its class's ([`BUDGETS`]); a place cut short, or one that
//! exists but cannot all be read, is named in the snapshot, which then says
//! truncated, never silently short. The system places are read first, the
//! homes last, and walks follow no link and stay on their place's device:
//! what a user keeps in their home neither blinds the rest nor leads a walk
//! elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString, OsStr};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::core::hex;
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, FUSE_SUPER_MAGIC};
use ring::digest::{Context, SHA256};

use crate::core::changes::{Entry, Kind, Snapshot};

/// What reading may cost: entries recorded, files looked at, bytes hashed.
#[derive(Clone, Copy, Debug)]
struct Budget {
    entries: usize,
    visited: usize,
    hashed: u64,
}

impl Budget {
    const ENTRY: Budget = Budget {
        entries: 1,
        visited: 0,
        hashed: 0,
    };
    const VISIT: Budget = Budget {
        entries: 0,
        visited: 1,
        hashed: 0,
    };

    fn bytes(hashed: u64) -> Budget {
        Budget {
            entries: 0,
            visited: 0,
            hashed,
        }
    }

    fn covers(&self, cost: Budget) -> bool {
        cost.entries <= self.entries && cost.visited <= self.visited && cost.hashed <= self.hashed
    }

    fn spend(&mut self, cost: Budget) {
        self.entries = self.entries.saturating_sub(cost.entries);
        self.visited = self.visited.saturating_sub(cost.visited);
        self.hashed = self.hashed.saturating_sub(cost.hashed);
    }
}

/// What a snapshot may cost.
#[derive(Clone, Copy, Debug)]
struct Budgets {
    /// The system places together: root's (`/etc`, `/usr`, `/opt`, the
    /// spools, root's start-up files).
    system: Budget,
    /// One home (its user units, the keys sshd reads there), which its
    /// user fills at will.
    home: Budget,
    /// The homes together: users who fill theirs cut the last homes
    /// short, never a system place.
    homes: Budget,
}

const BUDGETS: Budgets = Budgets {
    system: Budget {
        entries: 20_000,
        visited: 200_000,
        hashed: 64 << 20,
    },
    home: Budget {
        entries: 1_000,
        visited: 10_000,
        hashed: 4 << 20,
    },
    homes: Budget {
        entries: 20_000,
        visited: 100_000,
        hashed: 32 << 20,
    },
};

/// Of a file's content, what is hashed (its size counts anyway, and past
/// it its inode and change time).
const HASH_PREFIX: u64 = 1 << 20;
const TREE_DEPTH: usize = 4;

/// A user's units, below their home.
const USER_UNITS: &str = ".config/systemd/user";

/// A system place's directory: the path to it is root's, followed.
const ROOT_DIR: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
/// A directory below a place's root: never through a link.
const DIR_BELOW: OFlag = ROOT_DIR.union(OFlag::O_NOFOLLOW);
/// A file: never through a link, never waited for (a FIFO or a device
/// swapped in after a look, in a directory its owner writes, must not hang
/// the keeper thread).
const FILE_BELOW: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

/// Groups whose members hold root or read what root keeps.
const PRIVILEGED_GROUPS: &[&str] = &[
    "root",
    "sudo",
    "wheel",
    "admin",
    "adm",
    "docker",
    "lxd",
    "libvirt",
    "disk",
    "shadow",
    "systemd-journal",
];

/// Where setuid and setgid files and file capabilities are looked for,
/// down to how deep: the program directories, and the helpers packages put
/// one level below `/usr/lib` (`openssh/ssh-keysign`, `dbus-1.0/...`).
const SETUID_TREES: &[(&str, usize)] = &[
    ("/usr/bin", 1),
    ("/usr/sbin", 1),
    ("/usr/local", TREE_DEPTH),
    ("/usr/libexec", 2),
    ("/usr/lib", 2),
    ("/opt", 3),
];

/// (kind, directory whose files are watched, down to how deep).
const TREES: &[(Kind, &str, usize)] = &[
    (Kind::Cron, "/etc/cron.d", 1),
    (Kind::Cron, "/etc/cron.hourly", 1),
    (Kind::Cron, "/etc/cron.daily", 1),
    (Kind::Cron, "/etc/cron.weekly", 1),
    (Kind::Cron, "/etc/cron.monthly", 1),
    (Kind::Generator, "/etc/systemd/system-generators", 1),
    (Kind::Generator, "/etc/systemd/user-generators", 1),
    (
        Kind::Generator,
        "/usr/local/lib/systemd/system-generators",
        1,
    ),
    (Kind::Generator, "/usr/lib/systemd/system-generators", 1),
    (Kind::Unit, "/etc/systemd/system", TREE_DEPTH),
    (Kind::Unit, "/etc/systemd/user", TREE_DEPTH),
    (Kind::Unit, "/usr/local/lib/systemd/system", TREE_DEPTH),
    (Kind::Unit, "/usr/lib/systemd/system", TREE_DEPTH),
    (Kind::Unit, "/usr/lib/systemd/user", TREE_DEPTH),
    (Kind::Sudoers, "/etc/sudoers.d", 1),
    (Kind::Preload, "/etc/ld.so.conf.d", 1),
    (Kind::Pam, "/etc/pam.d", 1),
    (Kind::Pam, "/etc/security", 2),
    (Kind::ShellStartup, "/etc/profile.d", 1),
    (Kind::Sshd, "/etc/ssh/sshd_config.d", 1),
    (Kind::AuthorizedKeys, "/etc/ssh/authorized_keys", 1),
    (Kind::Polkit, "/etc/polkit-1", TREE_DEPTH),
    (Kind::Polkit, "/usr/share/polkit-1/rules.d", 1),
    (Kind::Polkit, "/var/lib/polkit-1", TREE_DEPTH),
    (Kind::Udev, "/etc/udev/rules.d", 1),
    (Kind::Udev, "/usr/lib/udev/rules.d", 1),
    (Kind::Modules, "/etc/modules-load.d", 1),
    (Kind::Modules, "/usr/lib/modules-load.d", 1),
    (Kind::Modules, "/etc/modprobe.d", 1),
];

/// The spools `crontab` and `at` write for users, who may fill them: the
/// last system places read, so that only they are cut short then.
const SPOOLS: &[(Kind, &str, usize)] = &[
    (Kind::At, "/var/spool/cron/atjobs", 1),
    (Kind::Cron, "/var/spool/cron", 2),
];

/// Single files watched.
const FILES: &[(Kind, &str)] = &[
    (Kind::Cron, "/etc/crontab"),
    (Kind::Sudoers, "/etc/sudoers"),
    (Kind::Preload, "/etc/ld.so.preload"),
    (Kind::Preload, "/etc/ld.so.conf"),
    (Kind::ShellStartup, "/etc/profile"),
    (Kind::ShellStartup, "/etc/bash.bashrc"),
    (Kind::ShellStartup, "/etc/environment"),
    (Kind::Sshd, "/etc/ssh/sshd_config"),
    (Kind::Modules, "/etc/modules"),
];

/// Root's own shell start-up files.
const ROOT_STARTUP: &[&str] = &[
    ".bashrc",
    ".profile",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".zshrc",
    ".zprofile",
];

/// A local account, as `/etc/passwd` has it.
struct Account {
    name: String,
    home: String,
    is_root: bool,
}

/// A home and the key files sshd reads there (relative to it).
#[derive(Debug, PartialEq, Eq)]
struct Home {
    path: PathBuf,
    keys: BTreeSet<PathBuf>,
}

/// Takes a snapshot. `fingerprint` is jitd's keyed one: a password field
/// is recorded by it, never as it is.
pub fn take(fingerprint: &dyn Fn(&[u8]) -> String) -> Snapshot {
    let mut c = Collector::new(BUDGETS);
    let accounts = c.accounts();
    c.passwords(fingerprint);
    c.privileged_groups();
    let (homes, other_keys) = homes(&accounts, &authorized_keys_patterns());
    for (kind, path) in FILES {
        c.file(*kind, Path::new(path));
    }
    for name in ROOT_STARTUP {
        c.file(Kind::ShellStartup, &Path::new("/root").join(name));
    }
    for path in &other_keys {
        c.file(Kind::AuthorizedKeys, path);
    }
    for (dir, depth) in SETUID_TREES {
        c.setuid_tree(Path::new(dir), *depth);
    }
    for (kind, dir, depth) in TREES.iter().chain(SPOOLS) {
        c.tree(*kind, Path::new(dir), *depth);
    }
    for home in &homes {
        c.home(home);
    }
    c.snapshot
}

/// Whose a place is: root's, drawing on the system budget, or a home, with
/// a budget of its own within the homes'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    System,
    Home,
}

/// The place being read: its name (in `truncated_places` when cut short),
/// its class, what it has left, and whether it ran out.
struct Place {
    name: String,
    class: Class,
    left: Budget,
    exhausted: bool,
}

/// What a directory entry is, as far as a walk cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Is {
    Dir,
    Link,
    File,
    Other,
}

impl Is {
    fn of_type(t: Type) -> Is {
        match t {
            Type::Directory => Is::Dir,
            Type::Symlink => Is::Link,
            Type::File => Is::File,
            _ => Is::Other,
        }
    }

    fn of_mode(mode: u32) -> Is {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Is::Dir,
            SFlag::S_IFLNK => Is::Link,
            SFlag::S_IFREG => Is::File,
            _ => Is::Other,
        }
    }
}

/// A directory open for a walk: its path (its entries' keys) and its
/// place's device, which the walk does not leave.
struct OpenDir {
    dir: Dir,
    path: PathBuf,
    dev: u64,
}

impl OpenDir {
    fn key(&self, name: &CStr) -> PathBuf {
        self.path.join(OsStr::from_bytes(name.to_bytes()))
    }
}

/// What a walk does with each entry that is not a directory.
type Each<'a> = &'a mut dyn FnMut(&mut Collector, &OpenDir, &CStr, Is);

struct Collector {
    snapshot: Snapshot,
    /// A home's budget, given to each.
    home: Budget,
    /// What the system places, and the homes, have left together.
    system: Budget,
    homes: Budget,
    place: Place,
}

impl Collector {
    fn new(budgets: Budgets) -> Collector {
        Collector {
            snapshot: Snapshot::default(),
            home: budgets.home,
            system: budgets.system,
            homes: budgets.homes,
            place: Place {
                name: String::new(),
                class: Class::System,
                left: budgets.system,
                exhausted: false,
            },
        }
    }

    /// Starts reading the place `name`, with its class's budget.
    fn begin(&mut self, name: &Path, class: Class) {
        let left = match class {
            Class::System => self.system,
            Class::Home => self.home,
        };
        self.place = Place {
            name: name.to_string_lossy().into_owned(),
            class,
            left,
            exhausted: false,
        };
    }

    /// Spends `cost` from the place and from its class; false once either
    /// has too little left, and the place is then cut short.
    fn spend(&mut self, cost: Budget) -> bool {
        if !self.place.exhausted && self.place.left.covers(cost) && self.pool().covers(cost) {
            self.pool().spend(cost);
            self.place.left.spend(cost);
            return true;
        }
        self.place.exhausted = true;
        self.missed();
        false
    }

    /// What the place's class has left.
    fn pool(&mut self) -> &mut Budget {
        match self.place.class {
            Class::System => &mut self.system,
            Class::Home => &mut self.homes,
        }
    }

    /// What the place may still look at.
    fn visits_left(&mut self) -> usize {
        self.place.left.visited.min(self.pool().visited)
    }

    /// Something of the place was not read: the snapshot says so, and
    /// names it.
    fn missed(&mut self) {
        self.snapshot.truncated = true;
        self.snapshot
            .truncated_places
            .insert(self.place.name.clone());
    }

    /// A place that exists but cannot be read (a sandbox too tight, a
    /// permission) is missed; one that is not there is fine.
    fn unreadable(&mut self, e: Errno) {
        if e != Errno::ENOENT {
            self.missed();
        }
    }

    fn readable<T>(&mut self, result: nix::Result<T>) -> Option<T> {
        result.map_err(|e| self.unreadable(e)).ok()
    }

    /// Records an entry, unless the place is cut short.
    fn put(&mut self, key: String, kind: Kind, digest: String) {
        if !self.snapshot.entries.contains_key(&key) && self.spend(Budget::ENTRY) {
            self.snapshot.entries.insert(key, Entry { kind, digest });
        }
    }

    /// A system place's directory.
    fn open_root(&mut self, path: &Path) -> Option<OpenDir> {
        let dir = self.readable(Dir::open(path, ROOT_DIR, Mode::empty()))?;
        let dev = self.readable(fstat(&dir))?.st_dev;
        Some(OpenDir {
            dir,
            path: path.to_owned(),
            dev,
        })
    }

    /// A home. Its parent is root's, followed; the home itself is followed
    /// only as root's link (`/bin` on a merged `/usr`), never a user's. A
    /// FUSE mount is not read: its user's daemon answers for it, or never.
    fn open_home(&mut self, home: &Path) -> Option<OpenDir> {
        let name = c_name(home.file_name()?)?;
        let parent = self.open_root(home.parent()?)?;
        let opened = match Dir::openat(&parent.dir, name.as_c_str(), DIR_BELOW, Mode::empty()) {
            // A link opened with O_NOFOLLOW | O_DIRECTORY: ENOTDIR.
            Err(Errno::ENOTDIR | Errno::ELOOP) if self.is_roots_link(&parent, &name) => {
                Dir::openat(&parent.dir, name.as_c_str(), ROOT_DIR, Mode::empty())
            }
            other => other,
        };
        let dir = self.readable(opened)?;
        if self.readable(fstatfs(&dir))?.filesystem_type() == FUSE_SUPER_MAGIC {
            self.missed();
            return None;
        }
        let dev = self.readable(fstat(&dir))?.st_dev;
        Some(OpenDir {
            dir,
            path: home.to_owned(),
            dev,
        })
    }

    fn is_roots_link(&mut self, dir: &OpenDir, name: &CStr) -> bool {
        self.stat_at(dir, name)
            .is_some_and(|st| Is::of_mode(st.st_mode) == Is::Link && st.st_uid == 0)
    }

    /// `name` in `dir`, as a directory on the same device: a user's mount
    /// is not walked (missed).
    fn descend(&mut self, dir: &OpenDir, name: &CStr) -> Option<OpenDir> {
        let sub = self.readable(Dir::openat(&dir.dir, name, DIR_BELOW, Mode::empty()))?;
        if self.readable(fstat(&sub))?.st_dev != dir.dev {
            self.missed();
            return None;
        }
        Some(OpenDir {
            dir: sub,
            path: dir.key(name),
            dev: dir.dev,
        })
    }

    fn stat_at(&mut self, dir: &OpenDir, name: &CStr) -> Option<FileStat> {
        self.readable(fstatat(&dir.dir, name, AtFlags::AT_SYMLINK_NOFOLLOW))
    }

    fn is_at(&mut self, dir: &OpenDir, name: &CStr) -> Option<Is> {
        self.stat_at(dir, name).map(|st| Is::of_mode(st.st_mode))
    }

    /// The names in `dir` with their type where the directory tells it, in
    /// order (what a place cut short misses does not depend on the order
    /// the file system keeps); no more than the place may still look at,
    /// and one to tell it ran out.
    fn list(&mut self, dir: &mut OpenDir) -> Vec<(CString, Option<Is>)> {
        let most = self.visits_left().saturating_add(1);
        let mut out = Vec::new();
        for entry in dir.dir.iter() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.unreadable(e);
                    break;
                }
            };
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            out.push((name.to_owned(), entry.file_type().map(Is::of_type)));
            if out.len() >= most {
                break;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every entry below `dir`, down to `depth` levels, in name order:
    /// directories are descended, the rest handed to `each`.
    fn walk(&mut self, dir: &mut OpenDir, depth: usize, each: Each) {
        for (name, is) in self.list(dir) {
            if !self.spend(Budget::VISIT) {
                return;
            }
            let Some(is) = is.or_else(|| self.is_at(dir, &name)) else {
                continue;
            };
            match is {
                Is::Dir if depth > 1 => {
                    if let Some(mut sub) = self.descend(dir, &name) {
                        self.walk(&mut sub, depth - 1, each);
                    }
                }
                Is::Dir => {}
                _ => each(self, dir, &name, is),
            }
        }
    }

    /// Goes down `names` from `dir` and hands the directory reached to
    /// `then`. A link on the way is recorded (its target), not followed.
    fn below(
        &mut self,
        dir: &mut OpenDir,
        names: &[CString],
        kind: Kind,
        then: &mut dyn FnMut(&mut Collector, &mut OpenDir),
    ) {
        let Some((first, rest)) = names.split_first() else {
            return then(self, dir);
        };
        match self.is_at(dir, first) {
            Some(Is::Dir) => {
                if let Some(mut sub) = self.descend(dir, first) {
                    self.below(&mut sub, rest, kind, then);
                }
            }
            Some(Is::Link) => self.link(kind, dir, first),
            Some(Is::File | Is::Other) | None => {}
        }
    }

    /// A file by its metadata and content, a link by its target; nothing
    /// else is recorded.
    fn entry(&mut self, kind: Kind, dir: &OpenDir, name: &CStr, is: Is) {
        match is {
            Is::Link => self.link(kind, dir, name),
            Is::File => self.regular(kind, dir, name),
            Is::Dir | Is::Other => {}
        }
    }

    /// [`Self::entry`], for a name not met in a walk.
    fn entry_at(&mut self, kind: Kind, dir: &OpenDir, name: &CStr) {
        if !self.spend(Budget::VISIT) {
            return;
        }
        if let Some(is) = self.is_at(dir, name) {
            self.entry(kind, dir, name, is);
        }
    }

    fn link(&mut self, kind: Kind, dir: &OpenDir, name: &CStr) {
        let Some(stat) = self.stat_at(dir, name) else {
            return;
        };
        let target = fcntl::readlinkat(&dir.dir, name).unwrap_or_default();
        let digest = format!("{}:link:{}", owner(&stat), target.to_string_lossy());
        self.put(dir.key(name).to_string_lossy().into_owned(), kind, digest);
    }

    fn regular(&mut self, kind: Kind, dir: &OpenDir, name: &CStr) {
        let Some((file, stat)) = self.open_file(dir, name) else {
            return;
        };
        if let Some(digest) = self.digest(&file, &stat) {
            self.put(dir.key(name).to_string_lossy().into_owned(), kind, digest);
        }
    }

    /// `name` in `dir`, opened if it is a regular file.
    fn open_file(&mut self, dir: &OpenDir, name: &CStr) -> Option<(File, FileStat)> {
        let fd = self.readable(fcntl::openat(&dir.dir, name, FILE_BELOW, Mode::empty()))?;
        let file = File::from(fd);
        let stat = self.readable(fstat(&file))?;
        (Is::of_mode(stat.st_mode) == Is::File).then_some((file, stat))
    }

    /// A file's mode, owner, size and content's hash; past [`HASH_PREFIX`]
    /// (content not hashed) its inode and change time too, which any write
    /// moves and no user can set back. A smaller file gets no times: its
    /// content is compared whole, and one rewritten or touched with the same
    /// text is no change. None once the place is cut short.
    fn digest(&mut self, file: &File, stat: &FileStat) -> Option<String> {
        let size = u64::try_from(stat.st_size).unwrap_or_default();
        let content = self.content(file, size)?;
        let mut digest = format!("{}:{size}:{content}", owner(stat));
        if size > HASH_PREFIX {
            let _ = write!(
                digest,
                ":{}:{}.{:09}",
                stat.st_ino, stat.st_ctime, stat.st_ctime_nsec
            );
        }
        Some(digest)
    }

    /// SHA-256 of the file's first [`HASH_PREFIX`] bytes, within the budget.
    fn content(&mut self, file: &File, size: u64) -> Option<String> {
        let take = size.min(HASH_PREFIX);
        if !self.spend(Budget::bytes(take)) {
            return None;
        }
        let mut context = Context::new(&SHA256);
        let mut reader = file.take(take);
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => context.update(&buf[..n]),
                Err(_) => return Some("unreadable".into()),
            }
        }
        Some(hex(context.finish().as_ref()))
    }

    /// A single file (or a link, by its target) of a system place.
    fn file(&mut self, kind: Kind, path: &Path) {
        self.begin(path, Class::System);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(c_name)) else {
            return;
        };
        if let Some(dir) = self.open_root(parent) {
            self.entry_at(kind, &dir, &name);
        }
    }

    /// Every file below `dir`, a system place, down to `depth` levels.
    fn tree(&mut self, kind: Kind, dir: &Path, depth: usize) {
        self.begin(dir, Class::System);
        if let Some(mut root) = self.open_root(dir) {
            self.files_below(kind, &mut root, depth);
        }
    }

    fn files_below(&mut self, kind: Kind, dir: &mut OpenDir, depth: usize) {
        self.walk(dir, depth, &mut |c, dir, name, is| {
            let kind = match kind {
                Kind::Unit if name.to_bytes().ends_with(b".timer") => Kind::Timer,
                other => other,
            };
            c.entry(kind, dir, name, is);
        });
    }

    /// The setuid and setgid files, and those with file capabilities,
    /// below `dir`: by content too, so a same-size trojan in their place
    /// shows.
    fn setuid_tree(&mut self, dir: &Path, depth: usize) {
        self.begin(dir, Class::System);
        if let Some(mut root) = self.open_root(dir) {
            self.walk(&mut root, depth, &mut |c, dir, name, is| {
                if is == Is::File {
                    c.privileged_file(dir, name);
                }
            });
        }
    }

    fn privileged_file(&mut self, dir: &OpenDir, name: &CStr) {
        let Some(stat) = self.stat_at(dir, name) else {
            return;
        };
        let path = dir.key(name);
        // A cheap look by path first; what is recorded is read from the
        // file opened.
        if stat.st_mode & 0o6000 == 0 && capabilities_at(&path).is_none() {
            return;
        }
        let Some((file, stat)) = self.open_file(dir, name) else {
            return;
        };
        let Some(digest) = self.digest(&file, &stat) else {
            return;
        };
        let caps = capabilities_of(&file);
        let key = path.to_string_lossy().into_owned();
        if let Some(caps) = caps {
            let caps = format!("{}:{digest}", hex(&caps));
            self.put(format!("{key} (capabilities)"), Kind::Capability, caps);
        }
        if stat.st_mode & 0o6000 != 0 {
            self.put(key, Kind::Setuid, digest);
        }
    }

    /// A home: the key files sshd reads there and the user units, reached
    /// without following a link (one on the way is recorded) or leaving
    /// the home's device.
    fn home(&mut self, home: &Home) {
        self.begin(&home.path, Class::Home);
        let Some(mut root) = self.open_home(&home.path) else {
            return;
        };
        for key in &home.keys {
            let Some(mut way) = names(key) else {
                self.missed();
                continue;
            };
            let Some(file) = way.pop() else {
                continue;
            };
            self.below(&mut root, &way, Kind::AuthorizedKeys, &mut |c, dir| {
                c.entry_at(Kind::AuthorizedKeys, dir, &file);
            });
        }
        let units = names(Path::new(USER_UNITS)).unwrap_or_default();
        self.below(&mut root, &units, Kind::Unit, &mut |c, dir| {
            c.files_below(Kind::Unit, dir, TREE_DEPTH);
        });
    }

    /// Every local account (`account:NAME`: uid, group, home, shell).
    fn accounts(&mut self) -> Vec<Account> {
        let text = self.system_text("/etc/passwd");
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() {
                continue;
            }
            let digest = format!("uid={} gid={} home={} shell={}", f[2], f[3], f[5], f[6]);
            self.put(format!("account:{}", f[0]), Kind::Account, digest);
            out.push(Account {
                name: f[0].to_owned(),
                home: f[5].to_owned(),
                is_root: f[2] == "0",
            });
        }
        out
    }

    /// Each account's password: locked, empty or set, with the keyed
    /// fingerprint of its field (a new password shows, its hash does not).
    fn passwords(&mut self, fingerprint: &dyn Fn(&[u8]) -> String) {
        let text = zeroize::Zeroizing::new(self.system_text("/etc/shadow"));
        for line in text.split(|&b| b == b'\n') {
            let mut fields = line.split(|&b| b == b':');
            let (Some(name), Some(field)) = (fields.next(), fields.next()) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let state = match field.first() {
                None => "empty",
                Some(b'!' | b'*') => "locked",
                Some(_) => "set",
            };
            let key = format!("password:{}", String::from_utf8_lossy(name));
            self.put(
                key,
                Kind::Password,
                format!("{state}:{}", fingerprint(field)),
            );
        }
    }

    /// The members of the privileged groups (`group:GROUP:MEMBER`).
    fn privileged_groups(&mut self) {
        let text = self.system_text("/etc/group");
        for line in String::from_utf8_lossy(&text).lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || !PRIVILEGED_GROUPS.contains(&f[0]) {
                continue;
            }
            self.put(
                format!("group:{}:gid", f[0]),
                Kind::PrivilegedGroup,
                f[2].to_owned(),
            );
            for member in f[3].split(',').filter(|m| !m.is_empty()) {
                let key = format!("group:{}:{member}", f[0]);
                self.put(key, Kind::PrivilegedGroup, "member".into());
            }
        }
    }

    /// An account file's text, a place of its own.
    fn system_text(&mut self, path: &str) -> Vec<u8> {
        self.begin(Path::new(path), Class::System);
        fs::read(path).unwrap_or_else(|e| {
            self.unreadable(Errno::from_raw(e.raw_os_error().unwrap_or_default()));
            Vec::new()
        })
    }
}

fn owner(stat: &FileStat) -> String {
    format!("{:o}:{}:{}", stat.st_mode, stat.st_uid, stat.st_gid)
}

fn c_name(name: &OsStr) -> Option<CString> {
    CString::new(name.as_bytes()).ok()
}

/// The names along a relative path; None if it has anything else (`..`).
fn names(path: &Path) -> Option<Vec<CString>> {
    path.components()
        .map(|c| match c {
            Component::Normal(name) => c_name(name),
            _ => None,
        })
        .collect()
}

/// Every account's home, once, but for the placeholders no key lives in,
/// root's first (read before users could spend the homes' budget), with
/// the key files sshd reads there; and the key files in no home.
fn homes(accounts: &[Account], patterns: &[String]) -> (Vec<Home>, BTreeSet<PathBuf>) {
    let mut homes: BTreeMap<PathBuf, Home> = accounts
        .iter()
        .map(|a| a.home.as_str())
        .filter(|h| h.starts_with('/') && !matches!(*h, "/" | "/nonexistent" | "/dev/null"))
        .map(|h| {
            let home = Home {
                path: PathBuf::from(h),
                keys: BTreeSet::new(),
            };
            (home.path.clone(), home)
        })
        .collect();
    let mut elsewhere = BTreeSet::new();
    for account in accounts {
        for path in patterns.iter().filter_map(|p| key_file(account, p)) {
            let home = path.ancestors().find(|a| homes.contains_key(*a));
            match home.and_then(|h| Some((homes.get_mut(h)?, path.strip_prefix(h).ok()?))) {
                Some((home, relative)) => {
                    home.keys.insert(relative.to_owned());
                }
                None => {
                    elsewhere.insert(path);
                }
            }
        }
    }
    let roots: BTreeSet<&Path> = accounts
        .iter()
        .filter(|a| a.is_root)
        .map(|a| Path::new(&a.home))
        .collect();
    let mut homes: Vec<Home> = homes.into_values().collect();
    homes.sort_by_key(|h| !roots.contains(h.path.as_path()));
    (homes, elsewhere)
}

/// The `AuthorizedKeysFile` patterns of `sshd_config` (and `.d`); sshd's
/// default when it names none.
fn authorized_keys_patterns() -> Vec<String> {
    let mut patterns: Vec<String> = Vec::new();
    let mut configs = vec![PathBuf::from("/etc/ssh/sshd_config")];
    if let Ok(entries) = fs::read_dir("/etc/ssh/sshd_config.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        configs.extend(more);
    }
    for config in configs {
        let text = fs::read_to_string(config).unwrap_or_default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("AuthorizedKeysFile"))
            {
                patterns.extend(words.map(str::to_owned));
            }
        }
    }
    if patterns.is_empty() {
        patterns = vec![
            ".ssh/authorized_keys".into(),
            ".ssh/authorized_keys2".into(),
        ];
    }
    patterns
}

/// The file sshd reads `account`'s keys from for `pattern`: `%h`, `%u` and
/// `%%` expanded, a relative one under the home.
fn key_file(account: &Account, pattern: &str) -> Option<PathBuf> {
    let expanded = pattern
        .replace("%%", "\u{0}")
        .replace("%h", &account.home)
        .replace("%u", &account.name)
        .replace('\u{0}', "%");
    let path = if expanded.starts_with('/') {
        PathBuf::from(expanded)
    } else {
        Path::new(&account.home).join(expanded)
    };
    (path.starts_with("/") && !path.starts_with("/nonexistent")).then_some(path)
}

const CAPABILITY: &CStr = c"security.capability";

/// The `security.capability` attribute of `path`, if it has one (a link
/// is not followed).
fn capabilities_at(path: &Path) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    capability(|buf| {
        // SAFETY: both names are NUL-terminated; buf is valid for its
        // length; lgetxattr writes at most that many bytes and never
        // follows a link.
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                CAPABILITY.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// The `security.capability` attribute of the open `file`.
fn capabilities_of(file: &File) -> Option<Vec<u8>> {
    capability(|buf| {
        // SAFETY: the name is NUL-terminated; the descriptor is open for
        // the call; buf is valid for its length, and fgetxattr writes at
        // most that many bytes.
        unsafe {
            libc::fgetxattr(
                file.as_raw_fd(),
                CAPABILITY.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// The attribute `get` reads into a buffer (returning its length, or
/// less than 1 when there is none).
fn capability(get: impl FnOnce(&mut [u8]) -> isize) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    let n = usize::try_from(get(&mut buf)).ok().filter(|&n| n > 0)?;
    buf.get(..n).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, FileExt};

    use super::*;

    fn write(path: &Path, content: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn key(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    fn account(name: &str, home: &str, is_root: bool) -> Account {
        Account {
            name: name.into(),
            home: home.into(),
            is_root,
        }
    }

    fn budget(entries: usize) -> Budget {
        Budget {
            entries,
            ..BUDGETS.home
        }
    }

    #[test]
    fn homes_skip_placeholders_repeat_none_and_come_roots_first() {
        let accounts = [
            account("a", "/home/a", false),
            account("b", "/nonexistent", false),
            account("d", "/home/a", false),
            account("root", "/root", true),
        ];
        let patterns = [".ssh/authorized_keys".into(), "/etc/ssh/keys/%u".into()];
        let (homes, elsewhere) = homes(&accounts, &patterns);
        let keys = BTreeSet::from([PathBuf::from(".ssh/authorized_keys")]);
        assert_eq!(
            homes,
            [
                Home {
                    path: "/root".into(),
                    keys: keys.clone()
                },
                Home {
                    path: "/home/a".into(),
                    keys
                },
            ]
        );
        let elsewhere: Vec<&str> = elsewhere.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(
            elsewhere,
            [
                "/etc/ssh/keys/a",
                "/etc/ssh/keys/b",
                "/etc/ssh/keys/d",
                "/etc/ssh/keys/root"
            ]
        );
    }

    #[test]
    fn a_fifo_swapped_in_for_a_file_is_not_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("unit.service");
        let path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let mut c = Collector::new(BUDGETS);
        c.begin(tmp.path(), Class::System);
        let dir = c.open_root(tmp.path()).unwrap();
        // As if a look had found a file there.
        c.regular(Kind::Unit, &dir, c"unit.service");
        c.tree(Kind::Unit, tmp.path(), 1);
        assert!(c.snapshot.entries.is_empty() && !c.snapshot.truncated);
    }

    #[test]
    fn a_capped_place_is_named_in_the_truncated_snapshot() {
        let mut c = Collector::new(Budgets {
            system: budget(3),
            ..BUDGETS
        });
        c.begin(Path::new("/etc/x"), Class::System);
        for i in 0..3 {
            c.put(format!("k{i}"), Kind::Cron, String::new());
        }
        assert!(!c.snapshot.truncated);
        c.put("one more".into(), Kind::Cron, String::new());
        assert!(c.snapshot.truncated);
        assert_eq!(
            c.snapshot.truncated_places,
            BTreeSet::from(["/etc/x".into()])
        );
        assert_eq!(c.snapshot.entries.len(), 3);
    }

    #[test]
    fn homes_over_their_budgets_are_cut_short_and_the_system_places_after_them_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, etc) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("etc"),
        );
        for i in 0..10 {
            write(&a.join(format!("{USER_UNITS}/u{i}.service")), b"[Service]");
        }
        write(&b.join(".ssh/authorized_keys"), b"ssh-ed25519 AAAA");
        write(&b.join(format!("{USER_UNITS}/u.service")), b"[Service]");
        for i in 0..5 {
            write(&etc.join(format!("job{i}")), b"* * * * * root true");
        }
        // Six entries a home, seven for both: `a` runs out of its own,
        // then `b` out of what the homes have left.
        let mut c = Collector::new(Budgets {
            home: budget(6),
            homes: budget(7),
            ..BUDGETS
        });
        let keys = BTreeSet::from([PathBuf::from(".ssh/authorized_keys")]);
        for path in [&a, &b] {
            c.home(&Home {
                path: path.clone(),
                keys: keys.clone(),
            });
        }
        c.tree(Kind::Cron, &etc, 1);
        let found = |dir: &Path| {
            c.snapshot
                .entries
                .keys()
                .filter(|k| k.starts_with(&key(dir)))
                .count()
        };
        assert_eq!((found(&a), found(&b), found(&etc)), (6, 1, 5));
        assert!(c.snapshot.truncated);
        assert_eq!(
            c.snapshot.truncated_places,
            BTreeSet::from([key(&a), key(&b)])
        );
    }

    #[test]
    fn a_link_in_a_walked_place_is_recorded_and_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (home, etc, away) = (
            tmp.path().join("home"),
            tmp.path().join("etc"),
            tmp.path().join("away"),
        );
        write(&away.join("systemd/user/evil.service"), b"[Service]");
        write(&away.join("authorized_keys"), b"ssh-ed25519 AAAA evil");
        write(&away.join("evil.conf"), b"evil");
        fs::create_dir_all(&home).unwrap();
        symlink(&away, home.join(".config")).unwrap();
        symlink(&away, home.join(".ssh")).unwrap();
        fs::create_dir_all(&etc).unwrap();
        symlink(&away, etc.join("sub")).unwrap();
        let mut c = Collector::new(BUDGETS);
        c.home(&Home {
            path: home.clone(),
            keys: BTreeSet::from([PathBuf::from(".ssh/authorized_keys")]),
        });
        c.tree(Kind::Polkit, &etc, TREE_DEPTH);
        let link = format!(":link:{}", away.display());
        let got: Vec<(String, Kind, bool)> = c
            .snapshot
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.kind, e.digest.ends_with(&link)))
            .collect();
        assert_eq!(
            got,
            [
                (key(&etc.join("sub")), Kind::Polkit, true),
                (key(&home.join(".config")), Kind::Unit, true),
                (key(&home.join(".ssh")), Kind::AuthorizedKeys, true),
            ]
        );
        assert!(!c.snapshot.truncated);
    }

    #[test]
    fn a_home_that_is_a_users_link_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (home, away) = (tmp.path().join("home"), tmp.path().join("away"));
        write(
            &away.join(format!("{USER_UNITS}/evil.service")),
            b"[Service]",
        );
        symlink(&away, &home).unwrap();
        if std::os::unix::fs::lchown(&home, Some(1000), Some(1000)).is_err() {
            return eprintln!("not root: a user's link cannot be made");
        }
        let mut c = Collector::new(BUDGETS);
        c.home(&Home {
            path: home.clone(),
            keys: BTreeSet::new(),
        });
        assert!(c.snapshot.entries.is_empty());
        assert_eq!(c.snapshot.truncated_places, BTreeSet::from([key(&home)]));
        // Root's link (`/bin` as a daemon's home) is followed.
        std::os::unix::fs::lchown(&home, Some(0), Some(0)).unwrap();
        let mut c = Collector::new(BUDGETS);
        c.home(&Home {
            path: home.clone(),
            keys: BTreeSet::new(),
        });
        assert_eq!(c.snapshot.entries.len(), 1, "{:?}", c.snapshot);
    }

    /// Runs `f` on a thread in a mount namespace of its own (root only):
    /// what it mounts goes with it.
    fn in_own_mount_namespace(f: impl FnOnce() + Send + 'static) -> bool {
        std::thread::spawn(move || {
            // SAFETY: unshare only takes this thread out of the process's
            // mount namespace (CLONE_NEWNS implies CLONE_FS).
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return false;
            }
            let private = std::process::Command::new("mount")
                .args(["--make-rprivate", "/"])
                .status()
                .unwrap();
            assert!(private.success());
            f();
            true
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_directory_on_another_device_is_not_walked() {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc");
        write(&etc.join("job"), b"* * * * * root true");
        fs::create_dir_all(etc.join("mnt")).unwrap();
        let dir = etc.clone();
        let ran = in_own_mount_namespace(move || {
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "jit-test"])
                .arg(dir.join("mnt"))
                .status()
                .unwrap();
            assert!(mounted.success());
            write(&dir.join("mnt/evil"), b"* * * * * root true");
            let mut c = Collector::new(BUDGETS);
            c.tree(Kind::Cron, &dir, 2);
            let keys: Vec<&String> = c.snapshot.entries.keys().collect();
            assert_eq!(keys, [&key(&dir.join("job"))]);
            assert_eq!(c.snapshot.truncated_places, BTreeSet::from([key(&dir)]));
        });
        if !ran {
            eprintln!("no mount namespace (not root): not tested");
        }
    }

    /// What a walk of `dir` records for `name` in it.
    fn digest_in(dir: &Path, name: &str) -> String {
        let mut c = Collector::new(BUDGETS);
        c.tree(Kind::Unit, dir, 1);
        c.snapshot.entries[&key(&dir.join(name))].digest.clone()
    }

    #[test]
    fn a_large_file_edited_past_its_first_mib_shows_and_a_touched_small_one_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let (big, small) = (tmp.path().join("big"), tmp.path().join("small"));
        write(&big, &vec![0u8; 2 << 20]);
        write(&small, b"[Service]");
        let before = (digest_in(tmp.path(), "big"), digest_in(tmp.path(), "small"));
        // Past the kernel's clock tick, so that the change time moves.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let edit = fs::OpenOptions::new().write(true).open(&big).unwrap();
        edit.write_all_at(b"x", 3 << 19).unwrap();
        let touch = fs::OpenOptions::new().write(true).open(&small).unwrap();
        touch
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(fs::metadata(&big).unwrap().len(), 2 << 20);
        assert_ne!(digest_in(tmp.path(), "big"), before.0);
        assert_eq!(digest_in(tmp.path(), "small"), before.1);
    }

    /// Gives `path` CAP_NET_RAW, permitted and effective (a version 2
    /// `security.capability`); false if this process may not (not root).
    fn set_net_raw(path: &Path) -> bool {
        let mut value = Vec::new();
        for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            value.extend(word.to_le_bytes());
        }
        let path = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: both names are NUL-terminated; value is valid for its
        // length, which setxattr only reads.
        let set = unsafe {
            libc::setxattr(
                path.as_ptr(),
                CAPABILITY.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        set == 0
    }

    #[test]
    fn a_capability_files_content_counts_as_well_as_its_capability() {
        let tmp = tempfile::tempdir().unwrap();
        let prog = tmp.path().join("prog");
        write(&prog, b"the program");
        if !set_net_raw(&prog) {
            return eprintln!("not root: no file capability can be set");
        }
        let digest = || {
            let mut c = Collector::new(BUDGETS);
            c.setuid_tree(tmp.path(), 1);
            let entries: Vec<(&String, &Entry)> = c.snapshot.entries.iter().collect();
            assert_eq!(entries.len(), 1, "{entries:?}");
            assert_eq!(*entries[0].0, format!("{} (capabilities)", key(&prog)));
            entries[0].1.digest.clone()
        };
        let before = digest();
        // A same-size program with the same capability (a write drops it:
        // set again).
        fs::write(&prog, b"the trojan!").unwrap();
        assert!(set_net_raw(&prog));
        assert_ne!(digest(), before);
    }
}
