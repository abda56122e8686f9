//! Local group memberships through shadow-utils: `gpasswd -a` and `-d`
//! change `/etc/group` and `/etc/gshadow` under shadow-utils' lock, as an
//! admin would; every change is checked by reading `/etc/group` back. Only
//! local groups: one from a directory is not jit's to change.

use super::shadow::{fields_of, run};
use super::AccountError;
use crate::core::membership::Membership;

const GPASSWD: &str = "/usr/bin/gpasswd";
const GROUP_FILE: &str = "/etc/group";
const PASSWD_FILE: &str = "/etc/passwd";
const SUBUID_FILE: &str = "/etc/subuid";
/// Scans of `/proc` for processes keeping a removed group, at most.
const SCANS: usize = 5;

/// What jitd does to `/etc/group`: the engine decides when, this does it.
pub trait Groups: Send + Sync {
    fn is_member(&self, membership: &Membership) -> Result<bool, AccountError>;
    fn add(&self, membership: &Membership) -> Result<(), AccountError>;
    /// Removes the membership, then kills the user's processes that still
    /// hold the group (a process keeps the groups it started with, so a
    /// login made during the grant would keep it): their pids.
    fn remove(&self, membership: &Membership) -> Result<Vec<u32>, AccountError>;
}

/// The host's groups, changed by `gpasswd`.
pub struct Gpasswd;

impl Groups for Gpasswd {
    /// Listed in `/etc/group`, or the group is the user's primary one
    /// (every login of theirs holds it: a standing membership too).
    fn is_member(&self, membership: &Membership) -> Result<bool, AccountError> {
        Ok(listed(membership)? || primary(membership)?)
    }

    fn add(&self, membership: &Membership) -> Result<(), AccountError> {
        change(membership, "-a", true)
    }

    fn remove(&self, membership: &Membership) -> Result<Vec<u32>, AccountError> {
        match change(membership, "-d", false) {
            // A group gone from /etc/group has no members left to remove.
            Err(AccountError::NotLocalGroup(_)) => return Ok(Vec::new()),
            result => result?,
        }
        Ok(end_holders(membership))
    }
}

/// The group's `/etc/group` fields after its name (password, gid, members).
fn group_fields(text: &[u8], group: &str) -> Result<Vec<Vec<u8>>, AccountError> {
    fields_of(text, group)
        .map(|fields| fields.into_iter().map(<[u8]>::to_vec).collect())
        .ok_or_else(|| AccountError::NotLocalGroup(group.to_owned()))
}

/// Whether `/etc/group` lists the user among the group's members.
fn listed(membership: &Membership) -> Result<bool, AccountError> {
    let fields = group_fields(&std::fs::read(GROUP_FILE)?, &membership.group)?;
    let members = fields.get(2).map(Vec::as_slice).unwrap_or_default();
    Ok(members
        .split(|&b| b == b',')
        .any(|m| m == membership.user.as_bytes()))
}

/// Whether the group is the user's primary group (`/etc/passwd`).
fn primary(membership: &Membership) -> Result<bool, AccountError> {
    let groups = std::fs::read(GROUP_FILE)?;
    let gid = group_fields(&groups, &membership.group)?
        .get(1)
        .cloned()
        .unwrap_or_default();
    let passwd = std::fs::read(PASSWD_FILE)?;
    Ok(fields_of(&passwd, &membership.user)
        .and_then(|fields| fields.get(2).map(|g| g.to_vec()))
        .is_some_and(|user_gid| !gid.is_empty() && user_gid == gid))
}

/// `gpasswd FLAG USER GROUP`, then `/etc/group` must list the user or not.
/// A failed `gpasswd` whose change is there anyway (removing someone who is
/// no member) is a success.
fn change(m: &Membership, flag: &str, member: bool) -> Result<(), AccountError> {
    listed(m)?;
    let ran = run(GPASSWD, "gpasswd", &[flag, &m.user, &m.group], None);
    match (ran, listed(m)? == member) {
        (_, true) => Ok(()),
        (Err(e), false) => Err(e),
        (Ok(()), false) => Err(AccountError::Verify {
            name: m.user.clone(),
            what: "gpasswd succeeded but /etc/group does not say so",
        }),
    }
}

/// A process started with the group before it was removed keeps it: it is
/// killed (SIGKILL: one that ignores SIGHUP must not keep the group) if it
/// runs as the user, or as one of the user's subordinate uids (a user
/// namespace of theirs, `/etc/subuid`), and holds the gid among its
/// supplementary groups or as its real, effective, saved or file-system
/// gid. `/proc` is scanned again until a pass finds nobody (a process that
/// forks as it is scanned), at most [`SCANS`] times. Returns the pids.
fn end_holders(membership: &Membership) -> Vec<u32> {
    use nix::unistd::{Group, User};
    let (Ok(Some(user)), Ok(Some(group))) = (
        User::from_name(&membership.user),
        Group::from_name(&membership.group),
    ) else {
        return Vec::new();
    };
    let (uid, gid) = (user.uid.as_raw(), group.gid.as_raw());
    let subuids = std::fs::read_to_string(SUBUID_FILE)
        .map(|text| subordinate_ranges(&text, &membership.user, uid))
        .unwrap_or_default();
    let mut ended = Vec::new();
    for _ in 0..SCANS {
        let before = ended.len();
        for pid in crate::sessions::pidfd::running_pids() {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            if holds(&status, uid, &subuids, gid) {
                let target = nix::unistd::Pid::from_raw(pid as i32);
                if nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL).is_ok() {
                    ended.push(pid);
                }
            }
        }
        if ended.len() == before {
            break;
        }
    }
    ended.sort_unstable();
    ended.dedup();
    ended
}

/// The `/etc/subuid` ranges of `user` (by name or uid), as (first, count).
fn subordinate_ranges(text: &str, user: &str, uid: u32) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let owner = fields.next()?;
            let first = fields.next()?.trim().parse().ok()?;
            let count = fields.next()?.trim().parse().ok()?;
            (owner == user || owner.parse() == Ok(uid)).then_some((first, count))
        })
        .collect()
}

/// Whether a `/proc/PID/status` is of a process of real uid `uid` (or one
/// in `subuids`) holding `gid` (supplementary, or any of its four gids).
fn holds(status: &str, uid: u32, subuids: &[(u32, u32)], gid: u32) -> bool {
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key));
    let ids = |key: &str| -> Vec<u32> {
        field(key)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    let Some(&real) = ids("Uid:").first() else {
        return false;
    };
    let theirs = real == uid
        || subuids
            .iter()
            .any(|&(first, count)| real >= first && real - first < count);
    theirs && (ids("Groups:").contains(&gid) || ids("Gid:").contains(&gid))
}

#[cfg(test)]
mod tests {
    use super::{holds, subordinate_ranges};

    #[test]
    fn a_process_holds_a_group_by_its_real_uid_or_a_subordinate_one_and_any_of_its_gids() {
        let status = "Name:\tsh\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nGroups:\t27 1001 \n";
        assert!(holds(status, 1001, &[], 27));
        assert!(!holds(status, 1001, &[], 28));
        assert!(!holds(status, 1002, &[], 27));
        let setuid = "Uid:\t1001\t0\t0\t0\nGroups:\t27\n";
        assert!(holds(setuid, 1001, &[], 27), "a user's setuid program too");
        let newgrp = "Uid:\t1001\t1001\t1001\t1001\nGid:\t27\t27\t27\t27\nGroups:\t\n";
        assert!(
            holds(newgrp, 1001, &[], 27),
            "the group as its gid (newgrp, sg)"
        );
        let namespaced = "Uid:\t200005\t200005\t200005\t200005\nGroups:\t27\n";
        assert!(holds(namespaced, 1001, &[(200000, 65536)], 27));
        assert!(!holds(namespaced, 1001, &[(100000, 65536)], 27));
    }

    #[test]
    fn subordinate_uids_are_the_users_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:300000:10\nbob:200000:65536\n";
        assert_eq!(
            subordinate_ranges(text, "alice", 1001),
            [(100000, 65536), (300000, 10)]
        );
        assert!(subordinate_ranges(text, "carol", 1003).is_empty());
    }
}
