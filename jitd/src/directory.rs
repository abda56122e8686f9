//! Who a uid is, and which configured principals they match (NSS lookups).

use std::sync::Mutex;

use nix::unistd::{Gid, Group, Uid as NixUid, User};
use thiserror::Error;

use crate::config::names::{Accounts, Lookup};
use crate::config::Principal;
use crate::core::model::Uid;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("uid {0} has no account")]
    UnknownUid(Uid),
    #[error("account lookup failed: {0}")]
    Lookup(#[from] nix::Error),
}

/// A caller, as established from bus credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub uid: Uid,
    pub name: String,
    pub gid: u32,
}

impl Person {
    pub fn lookup(uid: Uid) -> Result<Person, DirectoryError> {
        let user = User::from_uid(NixUid::from_raw(uid))?.ok_or(DirectoryError::UnknownUid(uid))?;
        Ok(Person {
            uid,
            name: user.name,
            gid: user.gid.as_raw(),
        })
    }

    /// Root, without asking NSS (the PAM session hooks run on every sudo).
    pub fn root() -> Person {
        Person {
            uid: 0,
            name: "root".into(),
            gid: 0,
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// True if any principal names this person directly or through a group
    /// (primary or supplementary). A failed group lookup matches nothing.
    pub fn matches_any(&self, principals: &[Principal]) -> bool {
        principals.iter().any(|p| match p {
            Principal::User(name) => *name == self.name,
            Principal::Group(name) => match Group::from_name(name) {
                Ok(Some(group)) => {
                    group.gid == Gid::from_raw(self.gid) || group.mem.contains(&self.name)
                }
                _ => false,
            },
        })
    }
}

/// The user names `principals` stand for: users as named, groups by their
/// member lists (members only through their primary group are not listed).
/// A failed group lookup names nobody.
pub fn names(principals: &[Principal]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in principals {
        let found = match p {
            Principal::User(name) => vec![name.clone()],
            Principal::Group(name) => Group::from_name(name)
                .ok()
                .flatten()
                .map_or_else(Vec::new, |g| g.mem),
        };
        for name in found {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The system's account database (NSS), for [`crate::config::names`].
pub struct Nss;

impl Accounts for Nss {
    fn user(&self, name: &str) -> Lookup {
        match User::from_name(name) {
            Ok(Some(_)) => Lookup::Known { members: true },
            Ok(None) => Lookup::Unknown,
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }

    /// Members listed in the group, else anyone whose primary group it is
    /// (who [`Person::matches_any`] counts too).
    fn group(&self, name: &str) -> Lookup {
        match Group::from_name(name) {
            Ok(Some(group)) => Lookup::Known {
                members: !group.mem.is_empty() || has_primary_members(group.gid),
            },
            Ok(None) => Lookup::Unknown,
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }
}

/// Whether any account has `gid` as its primary group. getpwent(3) walks
/// one database-wide cursor: a lock keeps two walks from sharing it.
fn has_primary_members(gid: Gid) -> bool {
    static WALK: Mutex<()> = Mutex::new(());
    let _walk = WALK.lock().unwrap_or_else(|e| e.into_inner());
    let mut found = false;
    // SAFETY: setpwent/getpwent/endpwent are called under WALK, the only
    // user of the cursor in jitd; each entry is read before the next call
    // overwrites it, and the loop ends at the first null.
    unsafe {
        libc::setpwent();
        loop {
            let entry = libc::getpwent();
            if entry.is_null() {
                break;
            }
            if (*entry).pw_gid == gid.as_raw() {
                found = true;
                break;
            }
        }
        libc::endpwent();
    }
    found
}
