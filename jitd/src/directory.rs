//! Who a uid is, and which configured principals they match (NSS lookups).

use nix::unistd::{Gid, Group, Uid as NixUid, User};
use thiserror::Error;

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
