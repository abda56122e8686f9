//! The in-memory index of active grants that answers CheckGrant without
//! touching SQLite, so a PAM check costs the same at 1,000 or 1,000,000 rows.

use std::collections::HashMap;

use crate::core::model::{RequestId, Uid, UnixTime};

#[derive(Default)]
pub struct GrantIndex {
    /// uid -> resource -> (grant, expires_at)
    by_holder: HashMap<Uid, HashMap<String, Vec<(RequestId, UnixTime)>>>,
}

impl GrantIndex {
    pub fn insert(&mut self, uid: Uid, resource: &str, id: RequestId, expires_at: UnixTime) {
        let grants = self
            .by_holder
            .entry(uid)
            .or_default()
            .entry(resource.to_owned())
            .or_default();
        grants.retain(|(g, _)| *g != id);
        grants.push((id, expires_at));
    }

    pub fn remove(&mut self, uid: Uid, resource: &str, id: RequestId) {
        let Some(resources) = self.by_holder.get_mut(&uid) else {
            return;
        };
        if let Some(grants) = resources.get_mut(resource) {
            grants.retain(|(g, _)| *g != id);
            if grants.is_empty() {
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
            .iter()
            .copied()
            .filter(|(_, exp)| *exp > now)
            .max_by_key(|(_, exp)| *exp)
    }

    pub fn len(&self) -> usize {
        self.by_holder
            .values()
            .flat_map(HashMap::values)
            .map(Vec::len)
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
}
