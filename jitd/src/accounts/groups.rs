//! Local group memberships through shadow-utils: `gpasswd -a` and `-d`
//! change `/etc/group` and `/etc/gshadow` under shadow-utils' lock, as an
//! admin would; every change is checked by reading `/etc/group` back. Only
//! local groups: one from a directory is not jit's to change.

use super::shadow::{fields_of, run};
use super::AccountError;
use crate::core::membership::Membership;

const GPASSWD: &str = "/usr/bin/gpasswd";
const GROUP_FILE: &str = "/etc/group";

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
    fn is_member(&self, membership: &Membership) -> Result<bool, AccountError> {
        let text = std::fs::read(GROUP_FILE)?;
        let fields = fields_of(&text, &membership.group)
            .ok_or_else(|| AccountError::NotLocalGroup(membership.group.clone()))?;
        let members = fields.get(2).copied().unwrap_or_default();
        Ok(members
            .split(|&b| b == b',')
            .any(|m| m == membership.user.as_bytes()))
    }

    fn add(&self, membership: &Membership) -> Result<(), AccountError> {
        self.change(membership, "-a", true)
    }

    fn remove(&self, membership: &Membership) -> Result<Vec<u32>, AccountError> {
        self.change(membership, "-d", false)?;
        Ok(end_holders(membership))
    }
}

/// Kills (SIGKILL: a process that ignores SIGHUP must not keep the group)
/// every process whose real uid is the user's and whose groups include the
/// group's gid; returns their pids.
fn end_holders(membership: &Membership) -> Vec<u32> {
    use nix::unistd::{Group, User};
    let (Ok(Some(user)), Ok(Some(group))) = (
        User::from_name(&membership.user),
        Group::from_name(&membership.group),
    ) else {
        return Vec::new();
    };
    let (uid, gid) = (user.uid.as_raw(), group.gid.as_raw());
    let mut ended = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if holds(&status, uid, gid) {
            let target = nix::unistd::Pid::from_raw(pid as i32);
            if nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL).is_ok() {
                ended.push(pid);
            }
        }
    }
    ended
}

/// Whether a `/proc/PID/status` is of a process of real uid `uid` with
/// `gid` among its supplementary groups.
fn holds(status: &str, uid: u32, gid: u32) -> bool {
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key));
    let real = field("Uid:").and_then(|u| u.split_whitespace().next()?.parse::<u32>().ok());
    let groups = field("Groups:").unwrap_or_default();
    real == Some(uid) && groups.split_whitespace().any(|g| g.parse() == Ok(gid))
}

impl Gpasswd {
    /// `gpasswd FLAG USER GROUP`, then `/etc/group` must say `member`. A
    /// failed `gpasswd` whose change is there anyway (removing someone who
    /// is no member) is a success.
    fn change(&self, m: &Membership, flag: &str, member: bool) -> Result<(), AccountError> {
        self.is_member(m)?;
        let ran = run(GPASSWD, "gpasswd", &[flag, &m.user, &m.group], None);
        match (ran, self.is_member(m)? == member) {
            (_, true) => Ok(()),
            (Err(e), false) => Err(e),
            (Ok(()), false) => Err(AccountError::Verify {
                name: m.user.clone(),
                what: "gpasswd succeeded but /etc/group does not say so",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::holds;

    #[test]
    fn a_process_holds_a_group_by_its_real_uid_and_supplementary_groups() {
        let status = "Name:\tsh\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nGroups:\t27 1001 \n";
        assert!(holds(status, 1001, 27));
        assert!(!holds(status, 1001, 28));
        assert!(!holds(status, 1002, 27));
        let setuid = "Uid:\t1001\t0\t0\t0\nGroups:\t27\n";
        assert!(holds(setuid, 1001, 27), "a user's setuid program too");
        assert!(!holds(
            "Uid:\t1001\t1001\t1001\t1001\nGroups:\t\n",
            1001,
            27
        ));
    }
}
