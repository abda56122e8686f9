//! The in-memory index of active grants that answers CheckGrant without
//! touching SQLite, so a PAM check costs the same at 1,000 or 1,000,000 rows.

use std::collections::HashMap;

use crate::core::model::{RequestId, Uid, UnixTime};

/// One user's standing on one resource.
#[derive(Default)]
struct Holding {
    /// (grant, expires_at)
    active: Vec<(RequestId, UnixTime)>,
    /// Pending requests, oldest first: the PAM denial names the newest.
    pending: Vec<RequestId>,
}

impl Holding {
    fn is_empty(&self) -> bool {
        self.active.is_empty() && self.pending.is_empty()
    }
}

#[derive(Default)]
pub struct GrantIndex {
    /// uid -> resource -> holding
    by_holder: HashMap<Uid, HashMap<String, Holding>>,
}

impl GrantIndex {
    fn holding(&mut self, uid: Uid, resource: &str) -> &mut Holding {
        self.by_holder
            .entry(uid)
            .or_default()
            .entry(resource.to_owned())
            .or_default()
    }

    pub fn insert(&mut self, uid: Uid, resource: &str, id: RequestId, expires_at: UnixTime) {
        let holding = self.holding(uid, resource);
        holding.active.retain(|(g, _)| *g != id);
        holding.active.push((id, expires_at));
    }

    pub fn insert_pending(&mut self, uid: Uid, resource: &str, id: RequestId) {
        let holding = self.holding(uid, resource);
        if !holding.pending.contains(&id) {
            holding.pending.push(id);
        }
    }

    /// Forgets request `id`, active or pending.
    pub fn remove(&mut self, uid: Uid, resource: &str, id: RequestId) {
        let Some(resources) = self.by_holder.get_mut(&uid) else {
            return;
        };
        if let Some(holding) = resources.get_mut(resource) {
            holding.active.retain(|(g, _)| *g != id);
            holding.pending.retain(|p| *p != id);
            if holding.is_empty() {
                resources.remove(resource);
            }
        }
        if resources.is_empty() {
            self.by_holder.remove(&uid);
        }
    }

    /// The holder's longest-running grant for `resource` still valid at `now`.
    pub fn check(&self, uid: Uid, resource: &str, now: UnixTime) -> Option<(RequestId, UnixTime)> {
        self.by_holder
            .get(&uid)?
            .get(resource)?
            .active
            .iter()
            .copied()
            .filter(|(_, exp)| *exp > now)
            .max_by_key(|(_, exp)| *exp)
    }

    /// The holder's newest pending request for `resource`.
    pub fn pending(&self, uid: Uid, resource: &str) -> Option<RequestId> {
        self.by_holder
            .get(&uid)?
            .get(resource)?
            .pending
            .last()
            .copied()
    }

    /// Active grants held.
    pub fn len(&self) -> usize {
        self.by_holder
            .values()
            .flat_map(HashMap::values)
            .map(|h| h.active.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_holder.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::GrantIndex;

    #[test]
    fn check_finds_only_unexpired_grants_of_the_holder() {
        let mut index = GrantIndex::default();
        index.insert(1000, "sudo", 1, 100);
        index.insert(1000, "sudo", 2, 200);
        index.insert(1001, "ssh", 3, 300);
        assert_eq!(index.check(1000, "sudo", 50), Some((2, 200)));
        assert_eq!(index.check(1000, "sudo", 150), Some((2, 200)));
        assert_eq!(index.check(1000, "sudo", 200), None);
        assert_eq!(index.check(1000, "ssh", 50), None);
        assert_eq!(index.check(1001, "sudo", 50), None);
        index.remove(1000, "sudo", 2);
        assert_eq!(index.check(1000, "sudo", 50), Some((1, 100)));
        index.remove(1000, "sudo", 1);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn pending_requests_are_tracked_until_removed() {
        let mut index = GrantIndex::default();
        assert_eq!(index.pending(1000, "sudo"), None);
        index.insert_pending(1000, "sudo", 4);
        index.insert_pending(1000, "sudo", 9);
        assert_eq!(index.pending(1000, "sudo"), Some(9));
        assert_eq!(index.check(1000, "sudo", 0), None);
        index.remove(1000, "sudo", 9);
        assert_eq!(index.pending(1000, "sudo"), Some(4));
        index.remove(1000, "sudo", 4);
        assert!(index.is_empty());
    }
}
