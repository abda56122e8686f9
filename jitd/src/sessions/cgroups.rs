//! Names and paths of cgroups: which grant a session cgroup belongs to,
//! where the cgroup v2 hierarchy is mounted, and how `/proc` names it.
//! Parsing only, of text read by the caller (but for the default base).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The grant a session or recorder cgroup's name (`grant-G`,
/// `recorder-G-pid-P`, and `grant-G-pid-P`, one per session, as earlier
/// versions made them) belongs to.
pub(super) fn grant_of_cgroup(name: &str) -> Option<u64> {
    let grant = match name.strip_prefix("grant-") {
        Some(rest) => rest.split_once("-pid-").map_or(rest, |(g, _)| g),
        None => name.strip_prefix("recorder-")?.split_once("-pid-")?.0,
    };
    grant.parse().ok()
}

/// The grant of a process whose `/proc/PID/cgroup` is `cgroups`, if its
/// cgroup v2 path is `base/grant-G` exactly.
pub(super) fn grant_of_cgroup_path(base: &str, cgroups: &str) -> Option<u64> {
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let grant = path
        .strip_prefix(base.trim_end_matches('/'))?
        .strip_prefix("/grant-")
        .filter(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))?;
    grant.parse().ok()
}

/// Whether a process whose `/proc/PID/cgroup` is `cgroups` may be in an
/// elevated session: anywhere under `base`'s session and recorder cgroups
/// (a sub-cgroup of `grant-G` included), or where it cannot be told.
pub(super) fn maybe_in_session(base: &str, cgroups: &str) -> bool {
    let Some(path) = cgroups.lines().find_map(|l| l.strip_prefix("0::")) else {
        return true;
    };
    let Some(below) = path.strip_prefix(base.trim_end_matches('/')) else {
        return false;
    };
    let Some(first) = below.strip_prefix('/') else {
        return below.is_empty();
    };
    let first = first.split('/').next().unwrap_or_default();
    first.starts_with("grant-") || first.starts_with("recorder-")
}

/// `dir`, a directory in a cgroup2 mount, as `/proc/PID/cgroup` names its
/// cgroup: the mount's root joined with `dir`'s path below the mount point
/// (the innermost mount holding it).
pub(super) fn cgroup_path_of(mountinfo: &str, dir: &Path) -> Option<String> {
    let (mount, root) = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut fields = left.split_whitespace();
            let root = fields.nth(3)?;
            let mount = Path::new(fields.next()?);
            dir.starts_with(mount).then_some((mount, root))
        })
        .max_by_key(|(mount, _)| mount.as_os_str().len())?;
    let below = dir.strip_prefix(mount).ok()?;
    let path = Path::new(root).join(below);
    let path = path.to_str()?.trim_end_matches('/');
    Some(if path.is_empty() {
        "/".into()
    } else {
        path.into()
    })
}

/// `/proc/PID/cgroup`, in one read(2) where it fits (it does but for very
/// long paths): this is read on every session registration.
pub(super) fn proc_cgroups(pid: u32) -> Option<String> {
    let path = format!("/proc/{pid}/cgroup");
    let mut buf = [0u8; 4096];
    let read = fs::File::open(&path).ok()?.read(&mut buf).ok()?;
    if read < buf.len() {
        return String::from_utf8(buf[..read].to_vec()).ok();
    }
    fs::read_to_string(path).ok()
}

pub(super) fn read_pids(path: &Path) -> Vec<u32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `<cgroup2 mount>/jit` (or under jitd's own cgroup when it has one, as
/// under systemd with Delegate=yes).
pub(super) fn default_cgroup_base() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = cgroup2_mount(&mountinfo)?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_start_matches('/');
    Some(mount.join(own).join("jit-sessions"))
}

fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    cgroup2_mounts(mountinfo).next().map(|(path, _)| path)
}

/// Every cgroup2 mount: (mount point, super options).
fn cgroup2_mounts(mountinfo: &str) -> impl Iterator<Item = (PathBuf, &str)> {
    mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut fs = right.split_whitespace();
        if fs.next()? != "cgroup2" {
            return None;
        }
        let options = fs.nth(1).unwrap_or("");
        Some((PathBuf::from(left.split_whitespace().nth(4)?), options))
    })
}

/// Whether the cgroup2 mount holding `dir` lacks `favordynmods`. Without it,
/// moving a process between cgroups waits for an RCU grace period (several
/// milliseconds, more on a busy host), and pam_jit's session hook does one
/// move on every sudo and login.
pub(super) fn slow_migrations(mountinfo: &str, dir: &Path) -> bool {
    cgroup2_mounts(mountinfo)
        .filter(|(mount, _)| dir.starts_with(mount))
        .max_by_key(|(mount, _)| mount.as_os_str().len())
        .is_some_and(|(_, options)| !options.split(',').any(|o| o == "favordynmods"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_below_a_grant_cgroup_or_unplaced_may_be_in_a_session() {
        let base = "/system.slice/jitd.service/jit-sessions";
        let maybe = |path: &str| maybe_in_session(base, &format!("0::{path}\n"));
        assert!(maybe(&format!("{base}/grant-7")));
        assert!(maybe(&format!("{base}/grant-7/tmux")));
        assert!(maybe(&format!("{base}/recorder-7-pid-9")));
        assert!(maybe(base), "the base itself is jitd's");
        assert!(!maybe("/user.slice/user-1000.slice/session-3.scope"));
        assert!(!maybe(&format!("{base}x/grant-7")));
        assert!(
            maybe_in_session(base, "1:name=systemd:/\n"),
            "no cgroup v2 line"
        );
    }

    #[test]
    fn favordynmods_is_read_from_the_mount_holding_the_directory() {
        let info = "\
30 1 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n\
31 1 0:27 / /sys/fs/cgroup/fast rw,relatime - cgroup2 cgroup2 rw,nsdelegate,favordynmods\n\
32 1 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert!(slow_migrations(
            info,
            Path::new("/sys/fs/cgroup/unified/jit")
        ));
        assert!(!slow_migrations(info, Path::new("/sys/fs/cgroup/fast/a/b")));
        assert!(!slow_migrations(info, Path::new("/elsewhere")));
        assert_eq!(
            cgroup2_mount(info),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn only_a_grant_cgroup_directly_under_the_base_is_a_session() {
        let base = "/system.slice/jitd.service/jit-sessions";
        let of = |path: &str| grant_of_cgroup_path(base, &format!("0::{path}\n"));
        assert_eq!(of(&format!("{base}/grant-12")), Some(12));
        assert_eq!(grant_of_cgroup_path("/", "0::/grant-3\n"), Some(3));
        for elsewhere in [
            // A user's delegated subtree imitating one.
            "/user.slice/user-1000.slice/user@1000.service/app.slice/grant-12".to_string(),
            format!("/elsewhere{base}/grant-12"),
            format!("{base}/grant-12/inside"),
            format!("{base}/recorder-12-pid-345"),
            format!("{base}/grant-12-pid-345"),
            format!("{base}/grant-"),
            format!("{base}/grant-+12"),
            format!("{base}x/grant-12"),
            base.to_string(),
        ] {
            assert_eq!(of(&elsewhere), None, "{elsewhere}");
        }
        // Only the cgroup v2 line counts.
        let v1 = format!("4:memory:{base}/grant-12\n0::/user.slice\n");
        assert_eq!(grant_of_cgroup_path(base, &v1), None);
    }

    #[test]
    fn the_base_is_named_as_proc_names_cgroups() {
        let info = "\
30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
41 30 0:38 /jitd.service /mnt/jitcg rw - cgroup2 cgroup2 rw\n";
        let path = |dir: &str| cgroup_path_of(info, Path::new(dir));
        assert_eq!(
            path("/sys/fs/cgroup/jit-sessions"),
            Some("/jit-sessions".into())
        );
        assert_eq!(path("/sys/fs/cgroup"), Some("/".into()));
        assert_eq!(path("/mnt/jitcg/jit"), Some("/jitd.service/jit".into()));
        assert_eq!(path("/var/lib/jit"), None);
    }

    #[test]
    fn cgroup_names_give_their_grant() {
        assert_eq!(grant_of_cgroup("grant-12"), Some(12));
        assert_eq!(grant_of_cgroup("grant-12-pid-345"), Some(12));
        assert_eq!(grant_of_cgroup("recorder-7-pid-345"), Some(7));
        assert_eq!(grant_of_cgroup("recorder-7"), None);
        assert_eq!(grant_of_cgroup("grant-x-pid-3"), None);
        assert_eq!(grant_of_cgroup("other"), None);
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        let info = "25 30 0:22 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                    33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(info),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }
}
