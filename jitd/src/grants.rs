//! The in-memory index of active grants that answers CheckGrant without
//! touching SQLite, so a PAM check costs the same at 1,000 or 1,000,000 rows.
//!
//! Kept small (tens of bytes per grant): resources are numbered from the
//! configuration, and a user holds at most one active grant per resource
//! (jitd refuses a second one; more time comes through an extension).

use std::collections::HashMap;

use crate::core::model::{RequestId, Uid, UnixTime};

#[derive(Default)]
struct Holding {
    /// (grant, expires_at)
    active: Option<(RequestId, UnixTime)>,
    /// Pending requests, oldest first: the PAM denial names the newest.
    pending: Vec<RequestId>,
}

pub struct GrantIndex {
    resources: Vec<String>,
    holdings: HashMap<(Uid, u16), Holding>,
}

impl GrantIndex {
    /// An index for the configured `resources`; others are never held.
    pub fn new(resources: impl IntoIterator<Item = String>) -> GrantIndex {
        GrantIndex {
            resources: resources.into_iter().collect(),
            holdings: HashMap::new(),
        }
    }

    fn key(&self, uid: Uid, resource: &str) -> Option<(Uid, u16)> {
        let index = self.resources.iter().position(|r| r == resource)?;
        Some((uid, u16::try_from(index).ok()?))
    }

    pub fn insert(&mut self, uid: Uid, resource: &str, id: RequestId, expires_at: UnixTime) {
        if let Some(key) = self.key(uid, resource) {
            self.holdings.entry(key).or_default().active = Some((id, expires_at));
        }
    }

    pub fn insert_pending(&mut self, uid: Uid, resource: &str, id: RequestId) {
        if let Some(key) = self.key(uid, resource) {
            let holding = self.holdings.entry(key).or_default();
            if !holding.pending.contains(&id) {
                holding.pending.push(id);
            }
        }
    }

    /// Forgets request `id`, active or pending.
    pub fn remove(&mut self, uid: Uid, resource: &str, id: RequestId) {
        let Some(key) = self.key(uid, resource) else {
            return;
        };
        let Some(holding) = self.holdings.get_mut(&key) else {
            return;
        };
        if holding.active.is_some_and(|(g, _)| g == id) {
            holding.active = None;
        }
        holding.pending.retain(|p| *p != id);
        if holding.active.is_none() && holding.pending.is_empty() {
            self.holdings.remove(&key);
        }
    }

    /// The holder's grant for `resource`, if still valid at `now`.
    pub fn check(&self, uid: Uid, resource: &str, now: UnixTime) -> Option<(RequestId, UnixTime)> {
        self.holdings
            .get(&self.key(uid, resource)?)?
            .active
            .filter(|(_, exp)| *exp > now)
    }

    /// The holder's newest pending request for `resource`.
    pub fn pending(&self, uid: Uid, resource: &str) -> Option<RequestId> {
        self.holdings
            .get(&self.key(uid, resource)?)?
            .pending
            .last()
            .copied()
    }

    /// How many requests `uid` has pending, over every resource.
    pub fn pending_of(&self, uid: Uid) -> usize {
        (0..self.resources.len())
            .filter_map(|r| self.holdings.get(&(uid, u16::try_from(r).ok()?)))
            .map(|h| h.pending.len())
            .sum()
    }

    /// Active grants held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.holdings
            .values()
            .filter(|h| h.active.is_some())
            .count()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.holdings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::GrantIndex;

    fn index() -> GrantIndex {
        GrantIndex::new(["sudo".to_owned(), "ssh".to_owned()])
    }

    #[test]
    fn check_finds_only_unexpired_grants_of_the_holder() {
        let mut index = index();
        index.insert(1000, "sudo", 2, 200);
        index.insert(1001, "ssh", 3, 300);
        assert_eq!(index.check(1000, "sudo", 50), Some((2, 200)));
        assert_eq!(index.check(1000, "sudo", 199), Some((2, 200)));
        assert_eq!(index.check(1000, "sudo", 200), None);
        assert_eq!(index.check(1000, "ssh", 50), None);
        assert_eq!(index.check(1001, "sudo", 50), None);
        assert_eq!(index.check(1000, "unknown", 50), None);
        index.remove(1000, "sudo", 99);
        assert_eq!(index.check(1000, "sudo", 50), Some((2, 200)));
        index.remove(1000, "sudo", 2);
        assert_eq!(index.check(1000, "sudo", 50), None);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn pending_requests_are_tracked_until_removed() {
        let mut index = index();
        assert_eq!(index.pending(1000, "sudo"), None);
        index.insert_pending(1000, "sudo", 4);
        index.insert_pending(1000, "sudo", 9);
        assert_eq!(index.pending(1000, "sudo"), Some(9));
        assert_eq!(index.check(1000, "sudo", 0), None);
        index.remove(1000, "sudo", 9);
        assert_eq!(index.pending(1000, "sudo"), Some(4));
        index.insert_pending(1000, "ssh", 5);
        index.insert_pending(1001, "ssh", 6);
        assert_eq!(index.pending_of(1000), 2);
        index.remove(1000, "sudo", 4);
        index.remove(1000, "ssh", 5);
        index.remove(1001, "ssh", 6);
        assert_eq!(index.pending_of(1000), 0);
        assert!(index.is_empty());
    }
}
