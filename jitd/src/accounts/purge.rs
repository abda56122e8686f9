//! Removing what a deleted vendor left in directories other users write
//! (`/tmp`, `/var/tmp`, the cron and `at` spools), as root, without ever
//! acting on a path someone can change under us: every directory is opened
//! relative to its parent with `O_NOFOLLOW`, checked to be what was looked
//! at (device and inode), and every removal is `unlinkat` relative to the
//! directory it is in. A link swapped in mid-walk is an entry like any
//! other (removed if the vendor owns it, never followed); nothing on
//! another device is touched.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// A directory, never through a link.
const DIR: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// How many entries one directory may list: a vendor filling `/tmp` with
/// names does not hold the keeper for long.
const MAX_ENTRIES: usize = 100_000;

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Names in `dir` (without `.` and `..`).
fn names(dir: &mut Dir) -> Vec<CString> {
    dir.iter()
        .map_while(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_c_str() != c"." && n.as_c_str() != c"..")
        .take(MAX_ENTRIES)
        .collect()
}

/// `name` in `parent`, opened as the directory `seen` describes, or None
/// (gone, swapped, a link, another device).
fn open_same(parent: &Dir, name: &CStr, seen: &FileStat) -> Option<Dir> {
    let dir = Dir::openat(parent.as_fd(), name, DIR, Mode::empty()).ok()?;
    let st = fstat(dir.as_fd()).ok()?;
    (st.st_dev == seen.st_dev && st.st_ino == seen.st_ino).then_some(dir)
}

/// Removes what `uid` owns under `top` (not `top`), at most `depth`
/// levels down; the paths removed, for the audit trail.
pub fn owned_by(top: &Path, uid: u32, depth: usize) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(dir) = Dir::open(top, DIR, Mode::empty()) else {
        return removed;
    };
    let Ok(st) = fstat(dir.as_fd()) else {
        return removed;
    };
    walk(dir, top, st.st_dev, uid, depth, &mut removed);
    removed
}

fn walk(
    mut dir: Dir,
    shown: &Path,
    device: u64,
    uid: u32,
    depth: usize,
    removed: &mut Vec<String>,
) {
    for name in names(&mut dir) {
        let Ok(st) = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if st.st_dev != device {
            continue;
        }
        let path = shown.join(name.to_string_lossy().as_ref());
        if st.st_uid == uid {
            if remove(&dir, &name, &st, device) {
                removed.push(path.display().to_string());
            }
        } else if is_dir(&st) && depth > 1 {
            if let Some(sub) = open_same(&dir, &name, &st) {
                walk(sub, &path, device, uid, depth - 1, removed);
            }
        }
    }
}

/// Removes `name` (described by `st`) from `parent`: a directory with all
/// it holds (whoever owns it: it is in the vendor's directory), on
/// `device` only. Whether it is gone.
fn remove(parent: &Dir, name: &CStr, st: &FileStat, device: u64) -> bool {
    if !is_dir(st) {
        return unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir).is_ok();
    }
    let Some(mut dir) = open_same(parent, name, st) else {
        return false;
    };
    for entry in names(&mut dir) {
        let Ok(inner) = fstatat(dir.as_fd(), entry.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if inner.st_dev == device {
            remove(&dir, &entry, &inner, device);
        }
    }
    unlinkat(parent.as_fd(), name, UnlinkatFlags::RemoveDir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};

    #[test]
    fn only_the_uids_entries_go_and_no_link_is_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let top = root.path();
        let uid = 4_000_123;
        let (mine, theirs) = (top.join("mine"), top.join("theirs"));
        std::fs::create_dir_all(mine.join("deep")).unwrap();
        std::fs::write(mine.join("deep/file"), "x").unwrap();
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("vendor-file"), "x").unwrap();
        std::fs::write(theirs.join("other-file"), "x").unwrap();
        std::fs::write(outside.path().join("victim"), "x").unwrap();
        chown(outside.path().join("victim"), Some(uid), None).unwrap();
        // A link to elsewhere, in a directory the vendor does not own.
        symlink(outside.path(), theirs.join("link")).unwrap();
        for p in [&mine, &mine.join("deep"), &theirs.join("vendor-file")] {
            chown(p, Some(uid), None).unwrap();
        }
        let mut removed = owned_by(top, uid, 4);
        removed.sort();
        assert_eq!(
            removed,
            [
                mine.display().to_string(),
                theirs.join("vendor-file").display().to_string()
            ]
        );
        assert!(!mine.exists());
        assert!(theirs.join("other-file").exists());
        assert!(
            theirs.join("link").exists(),
            "a link not the vendor's stays"
        );
        assert!(outside.path().join("victim").exists(), "never followed");
    }
}
