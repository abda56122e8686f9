//! Access attempts without a grant, coalesced (docs/design.md "Denied
//! access", threat T39): what of them is written, when, and when security
//! is told. No I/O, no clock: the time of each attempt and of each flush is
//! passed in.
//!
//! Each (uid, resource, service) has a window of `window` seconds opened
//! by its first denial. That first denial is written at the next flush, as
//! it happened; the denials after it within the window only count, and are
//! written as one record when the window closes. So a loop of failing sudo
//! runs costs two audit rows per window however long it runs. While a
//! window is open, its count is kept in a row of its own (rewritten at
//! each flush that changed it), so a crash of jitd loses only what came
//! after the last flush.
//!
//! At most `max_tracked` keys have windows; the denials of any further key
//! share one overflow window (written the same way, as
//! `access_denied_overflow`), so memory and rows stay bounded whoever asks.
//! Each user's denials are also counted over `alert_window`: the
//! `alert_after`-th tells security once in that window.

use std::collections::{BTreeSet, HashMap};

use super::model::{Uid, UnixTime};
use super::sanitize::for_terminal;

/// What the service, tty and remote host of a denial may hold (bytes,
/// after [`clean`]): PAM_RHOST and PAM_TTY come from the network and the
/// terminal, not from jit.
pub const MAX_SERVICE: usize = 64;
pub const MAX_TTY: usize = 64;
pub const MAX_RHOST: usize = 256;
/// A resource name is at most 64 bytes ([`crate::config`]); a longer one
/// is no resource, kept recognisable.
pub const MAX_RESOURCE: usize = 64;
/// Resources named in one alert, at most.
pub const MAX_ALERT_RESOURCES: usize = 16;

/// `[denials]` of the config, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenialPolicy {
    /// A key's repeats within this long of its first denial are one record.
    pub window: u64,
    /// This many denials of one user within `alert_window` tell security
    /// (0: never).
    pub alert_after: u32,
    pub alert_window: u64,
    /// Keys with windows of their own; the rest share the overflow window.
    pub max_tracked: usize,
}

/// Whose denials are counted together.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DenialKey {
    pub uid: Uid,
    pub resource: String,
    pub service: String,
}

/// One denied account check, as pam_jit reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub key: DenialKey,
    pub tty: String,
    pub rhost: String,
}

impl Attempt {
    /// An attempt with its untrusted strings made terminal-safe and cut to
    /// their limits.
    pub fn new(uid: Uid, resource: &str, service: &str, tty: &str, rhost: &str) -> Attempt {
        Attempt {
            key: DenialKey {
                uid,
                resource: clean(resource, MAX_RESOURCE),
                service: clean(service, MAX_SERVICE),
            },
            tty: clean(tty, MAX_TTY),
            rhost: clean(rhost, MAX_RHOST),
        }
    }
}

/// `text` with controls and invisible characters escaped
/// ([`for_terminal`]), cut to at most `max` bytes on a character boundary.
pub fn clean(text: &str, max: usize) -> String {
    let safe = for_terminal(text);
    let mut end = safe.len().min(max);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe[..end].to_owned()
}

/// Which window a denial counts in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tracked {
    Key(DenialKey),
    /// Every key past `max_tracked`.
    Overflow,
}

/// One audit event to write: `access_denied` (a key's) or
/// `access_denied_overflow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeniedRecord {
    pub tracked: Tracked,
    /// Of the last denial counted.
    pub tty: String,
    pub rhost: String,
    pub count: u64,
    pub first: UnixTime,
    pub last: UnixTime,
    /// The denials after a window's first (which was written on its own).
    pub repeats: bool,
}

/// A window still open, with repeats: its row, so that a crash loses at
/// most what came after this flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenWindow {
    pub id: u64,
    pub record: DeniedRecord,
    pub closes_at: UnixTime,
}

/// A user who keeps being denied: `access_denied_repeatedly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub uid: Uid,
    pub attempts: u64,
    /// The resources tried in the window, sorted, at most
    /// [`MAX_ALERT_RESOURCES`].
    pub resources: Vec<String>,
    pub first: UnixTime,
    pub last: UnixTime,
}

/// What a flush writes, in one transaction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub records: Vec<DeniedRecord>,
    /// Rows to write (insert or replace) for the windows still open.
    pub open: Vec<OpenWindow>,
    /// Rows of windows now closed (their record is in `records`), by id.
    pub closed: Vec<u64>,
    pub alerts: Vec<Alert>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.open.is_empty()
            && self.closed.is_empty()
            && self.alerts.is_empty()
    }
}

struct Window {
    /// Of its row ([`OpenWindow`]).
    id: u64,
    closes_at: UnixTime,
    tty: String,
    rhost: String,
    repeats: u64,
    first_repeat: UnixTime,
    last: UnixTime,
    /// Changed since its row was last written.
    dirty: bool,
}

impl Window {
    fn repeats_record(&self, tracked: Tracked) -> DeniedRecord {
        DeniedRecord {
            tracked,
            tty: self.tty.clone(),
            rhost: self.rhost.clone(),
            count: self.repeats,
            first: self.first_repeat,
            last: self.last,
            repeats: true,
        }
    }
}

struct UserWindow {
    closes_at: UnixTime,
    attempts: u64,
    first: UnixTime,
    resources: BTreeSet<String>,
    alerted: bool,
}

/// The denials not written yet, and the windows they count in.
pub struct Coalescer {
    policy: DenialPolicy,
    windows: HashMap<Tracked, Window>,
    users: HashMap<Uid, UserWindow>,
    /// Windows' first denials, to write at the next flush.
    firsts: Vec<DeniedRecord>,
    alerts: Vec<Alert>,
    /// Windows closed by a denial that opened the next one before any
    /// flush: their rows go.
    closed: Vec<u64>,
    next_id: u64,
}

impl Coalescer {
    pub fn new(policy: DenialPolicy) -> Coalescer {
        Coalescer {
            policy,
            windows: HashMap::new(),
            users: HashMap::new(),
            firsts: Vec::new(),
            alerts: Vec::new(),
            closed: Vec::new(),
            next_id: 1,
        }
    }

    /// Counts `attempt`, denied at `now`. Something is then due to be
    /// written (a first denial, a count, maybe an alert): the caller
    /// flushes soon.
    pub fn note(&mut self, attempt: Attempt, now: UnixTime) {
        self.count_for_alert(&attempt, now);
        let Attempt { key, tty, rhost } = attempt;
        let tracked = Tracked::Key(key);
        if !self.windows.contains_key(&tracked) {
            // Windows that closed since the last flush hold no place: a new
            // key takes one rather than hide in the overflow.
            self.close_expired(now);
        }
        let keys = self.windows.len() - usize::from(self.windows.contains_key(&Tracked::Overflow));
        let tracked = if self.windows.contains_key(&tracked) || keys < self.policy.max_tracked {
            tracked
        } else {
            Tracked::Overflow
        };
        match self.windows.get_mut(&tracked) {
            Some(w) if now < w.closes_at => {
                if w.repeats == 0 {
                    w.first_repeat = now;
                }
                w.repeats += 1;
                w.last = now.max(w.last);
                w.tty = tty;
                w.rhost = rhost;
                w.dirty = true;
            }
            _ => {
                if let Some(done) = self.windows.remove(&tracked) {
                    self.close(tracked.clone(), done);
                }
                self.firsts.push(DeniedRecord {
                    tracked: tracked.clone(),
                    tty: tty.clone(),
                    rhost: rhost.clone(),
                    count: 1,
                    first: now,
                    last: now,
                    repeats: false,
                });
                let id = self.next_id;
                self.next_id += 1;
                self.windows.insert(
                    tracked,
                    Window {
                        id,
                        closes_at: now.saturating_add_unsigned(self.policy.window),
                        tty,
                        rhost,
                        repeats: 0,
                        first_repeat: now,
                        last: now,
                        dirty: false,
                    },
                );
            }
        }
    }

    /// Closes every window whose time is up.
    fn close_expired(&mut self, now: UnixTime) {
        let closing: Vec<Tracked> = self
            .windows
            .iter()
            .filter(|(_, w)| now >= w.closes_at)
            .map(|(t, _)| t.clone())
            .collect();
        for tracked in closing {
            if let Some(window) = self.windows.remove(&tracked) {
                self.close(tracked, window);
            }
        }
    }

    /// A window that closed: its repeats become a record, its row goes.
    fn close(&mut self, tracked: Tracked, window: Window) {
        if window.repeats > 0 {
            self.firsts.push(window.repeats_record(tracked));
            self.closed.push(window.id);
        }
    }

    fn count_for_alert(&mut self, attempt: &Attempt, now: UnixTime) {
        if self.policy.alert_after == 0 {
            return;
        }
        let uid = attempt.key.uid;
        if self.users.get(&uid).is_some_and(|u| now >= u.closes_at) {
            self.users.remove(&uid);
        }
        if !self.users.contains_key(&uid) && self.users.len() >= self.policy.max_tracked {
            // Past the bound: the overflow record says how many were denied.
            return;
        }
        let user = self.users.entry(uid).or_insert_with(|| UserWindow {
            closes_at: now.saturating_add_unsigned(self.policy.alert_window),
            attempts: 0,
            first: now,
            resources: BTreeSet::new(),
            alerted: false,
        });
        user.attempts += 1;
        if user.resources.len() < MAX_ALERT_RESOURCES {
            user.resources.insert(attempt.key.resource.clone());
        }
        if !user.alerted && user.attempts >= u64::from(self.policy.alert_after) {
            user.alerted = true;
            self.alerts.push(Alert {
                uid,
                attempts: user.attempts,
                resources: user.resources.iter().cloned().collect(),
                first: user.first,
                last: now,
            });
        }
    }

    /// What to write at `now`: the first denials since the last flush,
    /// the windows that closed (their repeats), the rows of the open ones
    /// that changed, and the alerts.
    pub fn take(&mut self, now: UnixTime) -> Batch {
        self.close_expired(now);
        self.users.retain(|_, u| now < u.closes_at);
        let mut open: Vec<OpenWindow> = self
            .windows
            .iter_mut()
            .filter(|(_, w)| w.dirty)
            .map(|(tracked, w)| {
                w.dirty = false;
                OpenWindow {
                    id: w.id,
                    record: w.repeats_record(tracked.clone()),
                    closes_at: w.closes_at,
                }
            })
            .collect();
        open.sort_by_key(|w| w.id);
        Batch {
            records: std::mem::take(&mut self.firsts),
            open,
            closed: std::mem::take(&mut self.closed),
            alerts: std::mem::take(&mut self.alerts),
        }
    }

    /// Everything, as if every window closed now: jitd is stopping.
    pub fn drain(&mut self) -> Batch {
        let windows: Vec<(Tracked, Window)> = self.windows.drain().collect();
        for (tracked, window) in windows {
            self.close(tracked, window);
        }
        self.users.clear();
        Batch {
            records: std::mem::take(&mut self.firsts),
            open: Vec::new(),
            closed: std::mem::take(&mut self.closed),
            alerts: std::mem::take(&mut self.alerts),
        }
    }

    /// When the next window with repeats closes: a flush is due then.
    pub fn next_close(&self) -> Option<UnixTime> {
        self.windows
            .values()
            .filter(|w| w.repeats > 0)
            .map(|w| w.closes_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: UnixTime = 1_800_000_000;

    fn policy() -> DenialPolicy {
        DenialPolicy {
            window: 600,
            alert_after: 5,
            alert_window: 600,
            max_tracked: 3,
        }
    }

    fn sudo(uid: Uid) -> Attempt {
        Attempt::new(uid, "sudo", "sudo", "/dev/pts/1", "")
    }

    fn counts(records: &[DeniedRecord]) -> Vec<(Tracked, u64, bool)> {
        records
            .iter()
            .map(|r| (r.tracked.clone(), r.count, r.repeats))
            .collect()
    }

    fn key(uid: Uid) -> Tracked {
        Tracked::Key(sudo(uid).key)
    }

    /// A loop of 200 denials within the window: the first is written at
    /// the next flush, the rest are one record when the window closes, and
    /// meanwhile one row holds their count.
    #[test]
    fn a_loop_of_denials_is_the_first_and_one_count() {
        let mut c = Coalescer::new(policy());
        c.note(sudo(1000), AT);
        let first = c.take(AT);
        assert_eq!(counts(&first.records), [(key(1000), 1, false)]);
        assert!(first.open.is_empty() && first.closed.is_empty());
        for i in 1..200 {
            c.note(sudo(1000), AT + i / 10);
        }
        let counting = c.take(AT + 20);
        assert!(counting.records.is_empty(), "{counting:?}");
        let [open] = counting.open.as_slice() else {
            panic!("{counting:?}")
        };
        assert_eq!((open.record.count, open.closes_at), (199, AT + 600));
        assert_eq!((open.record.first, open.record.last), (AT, AT + 19));
        // Nothing changed: nothing to write.
        assert!(c.take(AT + 30).is_empty());
        assert_eq!(c.next_close(), Some(AT + 600));
        let closed = c.take(AT + 600);
        assert_eq!(counts(&closed.records), [(key(1000), 199, true)]);
        assert_eq!(closed.closed, [open.id]);
        assert!(c.next_close().is_none() && c.take(AT + 700).is_empty());
        // The next denial opens a new window, written at once again.
        c.note(sudo(1000), AT + 800);
        assert_eq!(counts(&c.take(AT + 800).records), [(key(1000), 1, false)]);
    }

    /// A denial that finds its key's window closed but not flushed yet
    /// closes it first: the counts stay in order and none is lost.
    #[test]
    fn a_denial_after_the_window_closes_it_before_opening_the_next() {
        let mut c = Coalescer::new(policy());
        c.note(sudo(1000), AT);
        c.note(sudo(1000), AT + 1);
        c.note(sudo(1000), AT + 700);
        let batch = c.take(AT + 700);
        assert_eq!(
            counts(&batch.records),
            [
                (key(1000), 1, false),
                (key(1000), 1, true),
                (key(1000), 1, false)
            ]
        );
        assert_eq!(batch.closed.len(), 1);
    }

    /// Past `max_tracked` keys, denials share one overflow window, written
    /// the same way; a known key keeps its own.
    #[test]
    fn keys_past_the_bound_share_the_overflow_window() {
        let mut c = Coalescer::new(policy());
        for uid in 0..10 {
            c.note(sudo(2000 + uid), AT);
        }
        c.note(sudo(2000), AT + 1);
        let batch = c.take(AT + 1);
        assert_eq!(
            counts(&batch.records),
            [
                (key(2000), 1, false),
                (key(2001), 1, false),
                (key(2002), 1, false),
                (Tracked::Overflow, 1, false),
            ]
        );
        let open: Vec<_> = batch
            .open
            .iter()
            .map(|w| (w.record.tracked.clone(), w.record.count))
            .collect();
        assert_eq!(open, [(key(2000), 1), (Tracked::Overflow, 6)]);
        let batch = c.drain();
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records.iter().map(|r| r.count).sum::<u64>(), 7);
    }

    /// A key whose window closed, not yet flushed, leaves its place to a
    /// new key: the new one is written under its own user, not the overflow.
    #[test]
    fn closed_windows_leave_their_place_before_the_next_flush() {
        let mut c = Coalescer::new(policy());
        for uid in 0..3 {
            c.note(sudo(2000 + uid), AT);
        }
        // Every window closed at AT + 600; no flush since.
        c.note(sudo(3000), AT + 601);
        let batch = c.take(AT + 601);
        assert!(
            counts(&batch.records).contains(&(key(3000), 1, false)),
            "{:?}",
            counts(&batch.records)
        );
        assert!(!counts(&batch.records)
            .iter()
            .any(|(t, _, _)| *t == Tracked::Overflow));
    }

    /// The alert fires once, at the threshold, per user and window; other
    /// users are counted apart; a new window can alert again.
    #[test]
    fn a_user_who_keeps_trying_is_alerted_once_per_window() {
        let mut c = Coalescer::new(policy());
        for i in 0..4 {
            c.note(Attempt::new(1000, &format!("r{i}"), "sudo", "", ""), AT + i);
            c.note(sudo(1001), AT + i);
        }
        assert!(c.take(AT + 5).alerts.is_empty());
        c.note(sudo(1000), AT + 6);
        c.note(sudo(1000), AT + 7);
        let [alert]: [Alert; 1] = c.take(AT + 8).alerts.try_into().unwrap();
        assert_eq!(
            (alert.uid, alert.attempts, alert.first, alert.last),
            (1000, 5, AT, AT + 6)
        );
        assert_eq!(alert.resources, ["r0", "r1", "r2", "r3", "sudo"]);
        for i in 0..20 {
            c.note(sudo(1000), AT + 10 + i);
        }
        assert!(c.take(AT + 40).alerts.is_empty(), "once per window");
        for i in 0..5 {
            c.note(sudo(1000), AT + 700 + i);
        }
        assert_eq!(
            c.take(AT + 710).alerts.len(),
            1,
            "a new window alerts again"
        );
        let mut quiet = Coalescer::new(DenialPolicy {
            alert_after: 0,
            ..policy()
        });
        for i in 0..50 {
            quiet.note(sudo(1000), AT + i);
        }
        assert!(quiet.take(AT + 60).alerts.is_empty(), "0: never");
    }

    /// PAM_RHOST and PAM_TTY come from outside: escaped and cut.
    #[test]
    fn untrusted_strings_are_escaped_and_cut() {
        let a = Attempt::new(1, "sudo", "sshd", "pts/1\u{1b}[2J", &"é".repeat(300));
        assert_eq!(a.tty, "pts/1\\u{1b}[2J");
        assert_eq!(a.rhost.len(), MAX_RHOST);
        assert!(a.rhost.chars().all(|c| c == 'é'));
        assert_eq!(clean(&"x".repeat(100), MAX_SERVICE).len(), MAX_SERVICE);
    }
}
