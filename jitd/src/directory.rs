//! Who a uid is, and which configured principals they match (NSS lookups).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid as NixUid, User};
use thiserror::Error;

use crate::config::names::{Accounts, Lookup};
use crate::config::Principal;
use crate::core::model::Uid;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("uid {0} has no account")]
    UnknownUid(Uid),
    #[error("no account named '{0}'")]
    UnknownName(String),
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

    pub fn lookup_name(name: &str) -> Result<Person, DirectoryError> {
        let user =
            User::from_name(name)?.ok_or_else(|| DirectoryError::UnknownName(name.into()))?;
        Ok(Person {
            uid: user.uid.as_raw(),
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
            Principal::Group(name) => self.member_of(name),
        })
    }

    /// Whether this person is in group `name` (primary or supplementary).
    /// A failed lookup is "no".
    pub fn member_of(&self, name: &str) -> bool {
        match Group::from_name(name) {
            Ok(Some(group)) => {
                group.gid == Gid::from_raw(self.gid) || group.mem.contains(&self.name)
            }
            _ => false,
        }
    }
}

/// A person's membership of the groups policy rules ask about, each group
/// looked up at most once (a thousand rules may name the same few).
pub struct GroupsOf<'a> {
    person: &'a Person,
    seen: std::cell::RefCell<std::collections::HashMap<String, bool>>,
}

impl<'a> GroupsOf<'a> {
    pub fn new(person: &'a Person) -> GroupsOf<'a> {
        GroupsOf {
            person,
            seen: Default::default(),
        }
    }
}

impl crate::core::policy::Membership for GroupsOf<'_> {
    fn is_member(&self, group: &str) -> bool {
        if let Some(known) = self.seen.borrow().get(group) {
            return *known;
        }
        let member = self.person.member_of(group);
        self.seen.borrow_mut().insert(group.to_owned(), member);
        member
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
/// The accounts' primary groups are read at most once, and only for a
/// group that lists no members.
#[derive(Default)]
pub struct Nss {
    primary_gids: OnceLock<Result<HashSet<u32>, String>>,
}

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
            Ok(Some(group)) if !group.mem.is_empty() => Lookup::Known { members: true },
            Ok(Some(group)) => match self.primary_gids.get_or_init(primary_gids) {
                Ok(gids) => Lookup::Known {
                    members: gids.contains(&group.gid.as_raw()),
                },
                Err(e) => Lookup::Failed(e.clone()),
            },
            Ok(None) => Lookup::Unknown,
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }

    fn other_uid_ranges(&self) -> Vec<(String, std::ops::RangeInclusive<u32>)> {
        let mut ranges = Vec::new();
        let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
        let setting = |key: &str| {
            defs.lines()
                .map(str::split_whitespace)
                .find_map(|mut words| (words.next() == Some(key)).then(|| words.next())?)
                .and_then(|v| v.parse::<u32>().ok())
        };
        if let (Some(min), Some(max)) = (setting("UID_MIN"), setting("UID_MAX")) {
            ranges.push(("login.defs' UID_MIN..UID_MAX".to_owned(), min..=max));
        }
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        for line in subuid.lines() {
            let mut fields = line.split(':');
            let (Some(who), Some(start), Some(count)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if let (Ok(start), Ok(count)) = (start.parse::<u32>(), count.parse::<u32>()) {
                if count > 0 {
                    let end = start.saturating_add(count - 1);
                    ranges.push((format!("/etc/subuid ({who})"), start..=end));
                }
            }
        }
        ranges
    }
}

/// Every account's primary group, in one walk of the database.
fn primary_gids() -> Result<HashSet<u32>, String> {
    let mut gids = HashSet::new();
    walk_accounts(|_, _, gid| {
        gids.insert(gid);
    })?;
    Ok(gids)
}

/// Every account NSS lists: (name, uid, gid).
pub(crate) fn accounts() -> Result<Vec<(String, u32, u32)>, String> {
    let mut out = Vec::new();
    walk_accounts(|name, uid, gid| out.push((name.to_owned(), uid, gid)))?;
    Ok(out)
}

/// One walk of the account database. getpwent(3) walks one process-wide
/// cursor: a lock keeps two walks from sharing it. A walk that ends in an
/// error (a directory down) is a failed lookup, never "nobody".
fn walk_accounts(mut each: impl FnMut(&str, u32, u32)) -> Result<(), String> {
    static WALK: Mutex<()> = Mutex::new(());
    let _walk = WALK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: setpwent/getpwent/endpwent are called under WALK, the only
    // user of the cursor in jitd; each entry (and its name, a NUL-ended
    // string it owns) is read before the next call overwrites it, and the
    // loop ends at the first null.
    let ended = unsafe {
        libc::setpwent();
        let ended = loop {
            Errno::clear();
            let entry = libc::getpwent();
            if entry.is_null() {
                break Errno::last();
            }
            let name = std::ffi::CStr::from_ptr((*entry).pw_name).to_string_lossy();
            each(&name, (*entry).pw_uid, (*entry).pw_gid);
        };
        libc::endpwent();
        ended
    };
    // getpwent sets errno only on an error; ENOENT means the end.
    match ended {
        Errno::UnknownErrno | Errno::ENOENT => Ok(()),
        e => Err(format!("cannot list the accounts: {e}")),
    }
}
