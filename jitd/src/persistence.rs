//! Snapshots of the places attackers use for persistence (W3 item 6,
//! docs/design.md "What changed during a grant"), compared by
//! `core::changes`. Read-only, bounded: at most [`MAX_ENTRIES`] entries,
//! [`MAX_VISITED`] files looked at and [`MAX_HASHED`] bytes read; past a
//! bound the snapshot is marked truncated, never silently short.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::core::changes::{Entry, Kind, Snapshot};

const MAX_ENTRIES: usize = 20_000;
const MAX_VISITED: usize = 200_000;
const MAX_HASHED: u64 = 64 << 20;
/// Of a file's content, what is hashed (its size and times count anyway).
const HASH_PREFIX: u64 = 1 << 20;
const TREE_DEPTH: usize = 4;

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
    (Kind::At, "/var/spool/cron/atjobs", 1),
    (Kind::Cron, "/etc/cron.d", 1),
    (Kind::Cron, "/etc/cron.hourly", 1),
    (Kind::Cron, "/etc/cron.daily", 1),
    (Kind::Cron, "/etc/cron.weekly", 1),
    (Kind::Cron, "/etc/cron.monthly", 1),
    (Kind::Cron, "/var/spool/cron", 2),
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
}

/// Takes a snapshot. `fingerprint` is jitd's keyed one: a password field
/// is recorded by it, never as it is.
pub fn take(fingerprint: &dyn Fn(&[u8]) -> String) -> Snapshot {
    let mut c = Collector::default();
    let accounts = c.accounts();
    c.passwords(fingerprint);
    c.privileged_groups();
    for (kind, path) in FILES {
        c.file(*kind, Path::new(path));
    }
    for (kind, dir, depth) in TREES {
        c.tree(*kind, Path::new(dir), *depth);
    }
    for name in ROOT_STARTUP {
        c.file(Kind::ShellStartup, &Path::new("/root").join(name));
    }
    for path in authorized_keys_files(&accounts) {
        c.file(Kind::AuthorizedKeys, &path);
    }
    for home in homes(&accounts) {
        c.tree(Kind::Unit, &home.join(".config/systemd/user"), TREE_DEPTH);
    }
    for (dir, depth) in SETUID_TREES {
        c.setuid_tree(Path::new(dir), *depth);
    }
    c.snapshot
}

#[derive(Default)]
struct Collector {
    snapshot: Snapshot,
    visited: usize,
    hashed: u64,
}

impl Collector {
    /// Records an entry; false once capped (the snapshot says truncated).
    fn put(&mut self, key: String, kind: Kind, digest: String) -> bool {
        if self.snapshot.entries.contains_key(&key) {
            return true;
        }
        if self.snapshot.entries.len() >= MAX_ENTRIES {
            self.snapshot.truncated = true;
            return false;
        }
        self.snapshot.entries.insert(key, Entry { kind, digest });
        true
    }

    /// A place that exists but cannot be read (a sandbox too tight, a
    /// permission): the snapshot is incomplete, reported as truncated
    /// rather than as nothing changed. A place that is not there is fine.
    fn unreadable(&mut self, e: &std::io::Error) {
        if e.kind() != std::io::ErrorKind::NotFound {
            self.snapshot.truncated = true;
        }
    }

    /// One more file looked at; false once past the bound.
    fn visit(&mut self) -> bool {
        self.visited += 1;
        if self.visited > MAX_VISITED {
            self.snapshot.truncated = true;
            return false;
        }
        true
    }

    /// A file (or a link, by its target), by its metadata and content.
    fn file(&mut self, kind: Kind, path: &Path) {
        if !self.visit() {
            return;
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) => return self.unreadable(&e),
        };
        let key = path.to_string_lossy().into_owned();
        let owner = format!("{:o}:{}:{}", meta.mode(), meta.uid(), meta.gid());
        let digest = if meta.file_type().is_symlink() {
            let target = fs::read_link(path).unwrap_or_default();
            format!("{owner}:link:{}", target.to_string_lossy())
        } else if meta.is_file() {
            format!(
                "{owner}:{}:{}",
                meta.size(),
                self.content(path, meta.size())
            )
        } else {
            return;
        };
        self.put(key, kind, digest);
    }

    /// SHA-256 of the file's first [`HASH_PREFIX`] bytes, within the
    /// total bound ("unread" past it: the snapshot is then truncated).
    fn content(&mut self, path: &Path, size: u64) -> String {
        let take = size.min(HASH_PREFIX);
        if self.hashed + take > MAX_HASHED {
            self.snapshot.truncated = true;
            return "unread".into();
        }
        self.hashed += take;
        // Never blocks, never follows a link: a FIFO or device swapped in
        // after the lstat (in a directory its owner writes, a home's user
        // units) must not hang the keeper thread.
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) => {
                self.unreadable(&e);
                return "unreadable".into();
            }
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return "not a file".into();
        }
        let mut context = Context::new(&SHA256);
        let mut reader = std::io::Read::take(file, take);
        let mut buf = [0u8; 8192];
        loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break,
                Ok(n) => context.update(&buf[..n]),
                Err(_) => return "unreadable".into(),
            }
        }
        hex(context.finish().as_ref())
    }

    /// Every file below `dir`, down to `depth` levels (links not followed).
    fn tree(&mut self, kind: Kind, dir: &Path, depth: usize) {
        self.walk(dir, depth, &mut |c, path, meta| {
            let kind = match kind {
                Kind::Unit if path.extension().is_some_and(|e| e == "timer") => Kind::Timer,
                other => other,
            };
            if meta.is_file() || meta.file_type().is_symlink() {
                c.file(kind, path);
            }
        });
    }

    /// The setuid and setgid files, and those with file capabilities,
    /// below `dir`.
    fn setuid_tree(&mut self, dir: &Path, depth: usize) {
        self.walk(dir, depth, &mut |c, path, meta| {
            if !meta.is_file() {
                return;
            }
            let key = path.to_string_lossy().into_owned();
            if meta.mode() & 0o6000 != 0 {
                // Content too: a same-size trojan in place of a setuid
                // program shows.
                let content = c.content(path, meta.size());
                let digest = format!(
                    "{:o}:{}:{}:{}:{content}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.size()
                );
                c.put(key.clone(), Kind::Setuid, digest);
            }
            if let Some(caps) = capabilities(path) {
                c.put(
                    format!("{key} (capabilities)"),
                    Kind::Capability,
                    hex(&caps),
                );
            }
        });
    }

    fn walk(
        &mut self,
        dir: &Path,
        depth: usize,
        each: &mut dyn FnMut(&mut Collector, &Path, &fs::Metadata),
    ) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.unreadable(&e),
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if !self.visit() {
                return;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth > 1 {
                    self.walk(&path, depth - 1, each);
                }
            } else {
                // `visit` counted it already: `file` counts once more,
                // which only tightens the bound.
                each(self, &path, &meta);
            }
        }
    }

    /// Every local account (`account:NAME`: uid, group, home, shell).
    fn accounts(&mut self) -> Vec<Account> {
        let text = fs::read("/etc/passwd").unwrap_or_default();
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
            });
        }
        out
    }

    /// Each account's password: locked, empty or set, with the keyed
    /// fingerprint of its field (a new password shows, its hash does not).
    fn passwords(&mut self, fingerprint: &dyn Fn(&[u8]) -> String) {
        let text = zeroize::Zeroizing::new(fs::read("/etc/shadow").unwrap_or_default());
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
        let text = fs::read("/etc/group").unwrap_or_default();
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
}

/// Every account's home, once, but for the placeholders no key lives in.
fn homes(accounts: &[Account]) -> Vec<PathBuf> {
    let homes: BTreeSet<&str> = accounts
        .iter()
        .map(|a| a.home.as_str())
        .filter(|h| h.starts_with('/') && !matches!(*h, "/" | "/nonexistent" | "/dev/null"))
        .collect();
    homes.into_iter().map(PathBuf::from).collect()
}

/// The files sshd reads keys from for each account: `AuthorizedKeysFile`
/// in `sshd_config` (and `.d`), `%h`, `%u` and `%%` expanded, relative
/// ones under the home; sshd's default when it names none.
fn authorized_keys_files(accounts: &[Account]) -> Vec<PathBuf> {
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
    let mut out = BTreeSet::new();
    for account in accounts {
        for pattern in &patterns {
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
            if path.starts_with("/") && !path.starts_with("/nonexistent") {
                out.insert(path);
            }
        }
    }
    out.into_iter().collect()
}

/// The `security.capability` extended attribute of `path`, if it has one.
fn capabilities(path: &Path) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = c"security.capability";
    let mut buf = [0u8; 64];
    // SAFETY: both names are NUL-terminated; buf is valid for its length;
    // lgetxattr writes at most that many bytes and never follows a link.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, home: &str) -> Account {
        Account {
            name: name.into(),
            home: home.into(),
        }
    }

    #[test]
    fn homes_skip_placeholders_and_repeat_none() {
        let got = homes(&[
            account("a", "/home/a"),
            account("b", "/nonexistent"),
            account("c", "/"),
            account("d", "/home/a"),
        ]);
        assert_eq!(got, [PathBuf::from("/home/a")]);
    }

    #[test]
    fn a_fifo_swapped_in_for_a_file_is_not_waited_for() {
        let dir = std::env::temp_dir().join(format!("jit-snapshot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("unit.service");
        let _ = fs::remove_file(&fifo);
        let path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let mut c = Collector::default();
        assert_eq!(c.content(&fifo, 10), "not a file");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_capped_collector_says_truncated() {
        let mut c = Collector::default();
        for i in 0..MAX_ENTRIES {
            assert!(c.put(format!("k{i}"), Kind::Cron, String::new()));
        }
        assert!(!c.snapshot.truncated);
        assert!(!c.put("one more".into(), Kind::Cron, String::new()));
        assert!(c.snapshot.truncated);
    }
}
