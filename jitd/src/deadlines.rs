//! One timer structure for every grant, scheduled start and pending request.
//!
//! Each request has at most one deadline at a time (the next thing due for
//! it), kept on the boot clock in one ordered set; the daemon sleeps until the
//! first. Each entry also remembers its wall-clock deadline so that a clock
//! change can bring it forward (a grant ends at whichever comes first).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::core::model::{RequestId, UnixTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Due {
    /// Warn the holder that the grant ends soon; its expiry comes next.
    Warn,
    /// The grant ends.
    Expire,
    /// The pending request lapses.
    Lapse,
    /// A break-glass grant's justification is due.
    Justify,
    /// A grant with no session yet is revoked (`revoke_unused_after`).
    Unused,
    /// A scheduled grant starts.
    Start,
}

#[derive(Default)]
pub struct Deadlines {
    queue: BTreeSet<(Duration, Due, RequestId)>,
    /// id -> (boot deadline, what, wall deadline)
    entries: HashMap<RequestId, (Duration, Due, UnixTime)>,
}

impl Deadlines {
    /// Sets `id`'s next deadline to `due` at wall time `wall`, which is
    /// `wall - now_wall` from `now_boot` on the boot clock. `now_wall` is the
    /// precise time since the epoch, so a deadline fires on its second, not up
    /// to a second late.
    pub fn schedule(
        &mut self,
        id: RequestId,
        due: Due,
        wall: UnixTime,
        now_wall: Duration,
        now_boot: Duration,
    ) {
        self.cancel(id);
        let boot = now_boot + until(wall, now_wall);
        self.queue.insert((boot, due, id));
        self.entries.insert(id, (boot, due, wall));
    }

    pub fn cancel(&mut self, id: RequestId) {
        if let Some((boot, due, _)) = self.entries.remove(&id) {
            self.queue.remove(&(boot, due, id));
        }
    }

    /// The boot-clock time of the earliest deadline.
    pub fn next(&self) -> Option<Duration> {
        self.queue.first().map(|(boot, _, _)| *boot)
    }

    /// Removes and returns everything due on the boot clock. Wall-clock
    /// deadlines are folded in by [`Deadlines::rebase`] whenever the clock is set.
    pub fn take_due(&mut self, now_boot: Duration) -> Vec<(RequestId, Due)> {
        let mut out = Vec::new();
        while let Some(&(boot, due, id)) = self.queue.first() {
            if boot > now_boot {
                break;
            }
            self.queue.pop_first();
            self.entries.remove(&id);
            out.push((id, due));
        }
        out
    }

    /// After the wall clock was set: bring forward any deadline that the new
    /// wall time makes earlier. Never moves one later.
    pub fn rebase(&mut self, now_wall: Duration, now_boot: Duration) {
        let moved: Vec<_> = self
            .entries
            .iter()
            .filter_map(|(&id, &(boot, due, wall))| {
                let by_wall = now_boot + until(wall, now_wall);
                (by_wall < boot).then_some((id, due, boot, by_wall))
            })
            .collect();
        for (id, due, old, new) in moved {
            self.queue.remove(&(old, due, id));
            self.queue.insert((new, due, id));
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.0 = new;
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Time from `now` until the wall-clock second `wall` (zero if past).
fn until(wall: UnixTime, now: Duration) -> Duration {
    Duration::from_secs(u64::try_from(wall).unwrap_or(0)).saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn earliest_first_and_due_by_boot_clock() {
        let mut d = Deadlines::default();
        d.schedule(1, Due::Expire, 1010, S(1000), S(50));
        d.schedule(2, Due::Lapse, 1005, S(1000), S(50));
        assert_eq!(d.next(), Some(S(55)));
        assert_eq!(d.take_due(S(56)), vec![(2, Due::Lapse)]);
        assert_eq!(d.next(), Some(S(60)));
        assert!(d.take_due(S(59)).is_empty());
        assert_eq!(d.take_due(S(60)), vec![(1, Due::Expire)]);
        assert!(d.is_empty());
    }

    #[test]
    fn sub_second_precision() {
        let mut d = Deadlines::default();
        d.schedule(
            1,
            Due::Expire,
            1001,
            Duration::from_millis(1_000_700),
            S(50),
        );
        assert_eq!(d.next(), Some(Duration::from_millis(50_300)));
    }

    #[test]
    fn wall_clock_jump_forward_expires_early() {
        let mut d = Deadlines::default();
        d.schedule(1, Due::Expire, 2000, S(1000), S(0));
        // Someone sets the clock forward past the deadline; boot clock barely moved.
        d.rebase(S(2500), S(1));
        assert_eq!(d.take_due(S(1)), vec![(1, Due::Expire)]);
    }

    #[test]
    fn setting_the_clock_back_does_not_extend_a_grant() {
        let mut d = Deadlines::default();
        d.schedule(1, Due::Expire, 2000, S(1000), S(0));
        d.rebase(S(0), S(10));
        assert_eq!(d.next(), Some(S(1000)));
        assert_eq!(d.take_due(S(1000)), vec![(1, Due::Expire)]);
    }

    #[test]
    fn rebase_brings_deadlines_forward() {
        let mut d = Deadlines::default();
        d.schedule(1, Due::Expire, 2000, S(1000), S(0));
        d.rebase(S(1900), S(10));
        assert_eq!(d.next(), Some(S(110)));
    }

    #[test]
    fn one_deadline_per_request() {
        let mut d = Deadlines::default();
        d.schedule(1, Due::Warn, 1010, S(1000), S(0));
        d.schedule(1, Due::Expire, 1020, S(1000), S(0));
        assert_eq!(d.len(), 1);
        assert_eq!(d.take_due(S(15)), vec![]);
        d.cancel(1);
        assert_eq!(d.next(), None);
    }
}
