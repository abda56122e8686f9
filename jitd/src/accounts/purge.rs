//! Removing, as root, a deleted vendor's files from root's spools (the
//! mail, cron and `at` spools: directories the vendor cannot write, so
//! only its own files are there), without acting on a path someone could
//! change under us: every directory is opened relative to its parent with
//! `O_NOFOLLOW`, checked to be what was looked at (device and inode), and
//! every removal is `unlinkat` relative to the directory it is in. What the
//! vendor left where it could write (its home, `/tmp`) is removed by its
//! own uid instead (`vendors.rs`). The walk keeps its own stack of open
//! directories, bounded in depth.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// A directory, never through a link.
const DIR: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// Passes over a directory: names created while it is read are taken by
/// the next one.
const PASSES: usize = 4;

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Names in `dir` (without `.` and `..`), read from its start.
fn names(dir: &mut Dir) -> Vec<CString> {
    dir.iter()
        .map_while(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_c_str() != c"." && n.as_c_str() != c"..")
        .collect()
}

/// `name` in `parent`, opened as the directory `seen` describes, or None
/// (gone, swapped, a link, another device).
fn open_same(parent: &Dir, name: &CStr, seen: &FileStat) -> Option<Dir> {
    let dir = Dir::openat(parent.as_fd(), name, DIR, Mode::empty()).ok()?;
    let st = fstat(dir.as_fd()).ok()?;
    (st.st_dev == seen.st_dev && st.st_ino == seen.st_ino).then_some(dir)
}

/// What a removal did: the paths removed, and what it had to leave.
#[derive(Debug, Default)]
pub struct Removed {
    pub paths: Vec<String>,
    /// Directories too deep, or that would not go (a mount point).
    pub left: Vec<String>,
}

/// Removes what `uid` owns under `top` (not `top`), at most `depth`
/// levels down.
pub fn owned_by(top: &Path, uid: u32, depth: usize) -> Removed {
    let mut removed = Removed::default();
    let Ok(dir) = Dir::open(top, DIR, Mode::empty()) else {
        return removed;
    };
    let Ok(st) = fstat(dir.as_fd()) else {
        return removed;
    };
    // Directories to look into: (the directory, its path, levels left).
    let mut todo: Vec<(Dir, PathBuf, usize)> = vec![(dir, top.to_owned(), depth)];
    while let Some((mut dir, shown, left)) = todo.pop() {
        for _ in 0..PASSES {
            let mut took = false;
            for name in names(&mut dir) {
                let Ok(entry) = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                if entry.st_dev != st.st_dev {
                    continue;
                }
                let path = shown.join(name.to_string_lossy().as_ref());
                if entry.st_uid == uid {
                    let before = removed.paths.len();
                    remove_entry(&dir, &name, &entry, &path, &mut removed);
                    took |= removed.paths.len() > before;
                } else if is_dir(&entry) && left > 1 {
                    if let Some(sub) = open_same(&dir, &name, &entry) {
                        todo.push((sub, path, left - 1));
                    }
                }
            }
            if !took {
                break;
            }
        }
    }
    removed.left.sort();
    removed.left.dedup();
    removed
}

/// Removes `name` (described by `st`) from `parent`: a file or a link;
/// a directory of the vendor's in root's spool is left, and said.
fn remove_entry(parent: &Dir, name: &CStr, st: &FileStat, path: &Path, removed: &mut Removed) {
    let listed = path.display().to_string();
    if is_dir(st) {
        removed.left.push(listed);
    } else if unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir).is_ok() {
        removed.paths.push(listed);
    } else {
        removed.left.push(listed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};

    #[test]
    fn only_the_uids_files_go_and_no_link_is_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let top = root.path();
        let uid = 4_000_123;
        let sub = top.join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("vendor-file"), "x").unwrap();
        std::fs::write(sub.join("other-file"), "x").unwrap();
        std::fs::create_dir(top.join("vendor-dir")).unwrap();
        std::fs::write(outside.path().join("victim"), "x").unwrap();
        chown(outside.path().join("victim"), Some(uid), None).unwrap();
        // A link to elsewhere, not the vendor's: never followed.
        symlink(outside.path(), sub.join("link")).unwrap();
        chown(sub.join("vendor-file"), Some(uid), None).unwrap();
        chown(top.join("vendor-dir"), Some(uid), None).unwrap();
        let removed = owned_by(top, uid, 4);
        assert_eq!(
            removed.paths,
            [sub.join("vendor-file").display().to_string()]
        );
        assert_eq!(removed.left, [top.join("vendor-dir").display().to_string()]);
        assert!(sub.join("other-file").exists());
        assert!(sub.join("link").exists(), "a link not the vendor's stays");
        assert!(outside.path().join("victim").exists(), "never followed");
    }
}
