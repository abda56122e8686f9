//! The gate's denials, from the thread serving pam_jit to the audit trail
//! (docs/design.md "Denied access", T39).
//!
//! A denied account check costs that thread a lock held for one map update
//! ([`Coalescer::note`]) and, at most once per batch, one wake-up of the
//! flusher; never SQLite, never the engine's lock, never an NSS lookup.
//! The flusher ([`DenialLog::run`], on jitd's main runtime) writes what is
//! due [`BATCH_WINDOW`] after the first denial of a batch, and whenever a
//! window with repeats closes, in one transaction on the blocking pool; and
//! everything at stop ([`DenialLog::flush_all`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::core::denials::{Attempt, Batch, Coalescer, DenialPolicy, Tracked};
use crate::core::model::{Uid, UnixTime};
use crate::directory::Person;
use crate::engine::Engine;

/// How long a batch waits for other denials to be written with it: a kill
/// -9 loses at most the denials of this long (and those of a failed write).
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct DenialLog {
    inner: Arc<Inner>,
}

struct Inner {
    coalescer: Mutex<Coalescer>,
    clock: Arc<dyn Clock>,
    /// A flush was asked for and has not started yet.
    due: AtomicBool,
    wake: Notify,
}

impl DenialLog {
    pub fn new(policy: DenialPolicy, clock: Arc<dyn Clock>) -> DenialLog {
        DenialLog {
            inner: Arc::new(Inner {
                coalescer: Mutex::new(Coalescer::new(policy)),
                clock,
                due: AtomicBool::new(false),
                wake: Notify::new(),
            }),
        }
    }

    fn coalescer(&self) -> MutexGuard<'_, Coalescer> {
        self.inner
            .coalescer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a denied account check, on the thread that answered it.
    pub fn note(&self, attempt: Attempt) {
        let now = self.inner.clock.wall();
        self.coalescer().note(attempt, now);
        if !self.inner.due.swap(true, Ordering::AcqRel) {
            self.inner.wake.notify_one();
        }
    }

    /// Writes what is due, for as long as jitd runs: a batch
    /// [`BATCH_WINDOW`] after the denial that asked for it, and each window
    /// with repeats when it closes.
    pub async fn run(self, engine: Arc<Mutex<Engine>>) {
        loop {
            let next_close = self.coalescer().next_close();
            let closing = async {
                match next_close {
                    Some(at) => tokio::time::sleep(self.until(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.inner.wake.notified() => tokio::time::sleep(BATCH_WINDOW).await,
                _ = closing => {}
            }
            // Cleared first: a denial counted during the write asks for a
            // flush of its own.
            self.inner.due.store(false, Ordering::Release);
            let batch = self.coalescer().take(self.inner.clock.wall());
            if batch.is_empty() {
                continue;
            }
            let engine = Arc::clone(&engine);
            // NSS and SQLite, never on an executor thread.
            match tokio::task::spawn_blocking(move || write(&engine, &batch)).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "cannot record denied access"),
            }
        }
    }

    /// Writes everything now, the open windows as closed: jitd is stopping.
    pub fn flush_all(&self, engine: &Mutex<Engine>) {
        let batch = self.coalescer().drain();
        write(engine, &batch);
    }

    /// Time until the wall-clock second `at` (a window's close).
    fn until(&self, at: UnixTime) -> Duration {
        Duration::from_secs(u64::try_from(at).unwrap_or(0))
            .saturating_sub(self.inner.clock.wall_precise())
    }
}

/// `batch` in one transaction, its users named first (without the engine's
/// lock: NSS may be slow). A batch that cannot be written is logged and
/// lost.
fn write(engine: &Mutex<Engine>, batch: &Batch) {
    if batch.is_empty() {
        return;
    }
    let names = names(batch);
    let mut engine = engine.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = engine.write_denials(batch, &names) {
        let lost: u64 = batch.records.iter().map(|r| r.count).sum();
        tracing::error!(error = %e, lost, "cannot record denied access");
    }
}

/// The user name of every uid `batch` names (the uid alone where NSS has none).
fn names(batch: &Batch) -> HashMap<Uid, String> {
    let uids = batch
        .records
        .iter()
        .filter_map(|r| match &r.tracked {
            Tracked::Key(k) => Some(k.uid),
            Tracked::Overflow => None,
        })
        .chain(batch.alerts.iter().map(|a| a.uid));
    let mut names = HashMap::new();
    for uid in uids {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(uid) {
            if let Ok(person) = Person::lookup(uid) {
                slot.insert(person.name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::directory::Person;
    use crate::test_support::{engine_with_grant, open_engine};

    fn denials(engine: &Arc<Mutex<Engine>>) -> Vec<(String, u64, bool)> {
        engine
            .lock()
            .unwrap()
            .audit(&Person::root(), 0)
            .unwrap()
            .into_iter()
            .filter(|a| a.event == "access_denied")
            .map(|a| {
                (
                    a.detail["service"].as_str().unwrap().to_owned(),
                    a.detail["count"].as_u64().unwrap(),
                    a.detail["repeats"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    /// The open windows' rows, and the denials they count.
    fn window_rows(engine: &Arc<Mutex<Engine>>) -> (i64, i64) {
        engine
            .lock()
            .unwrap()
            .store_conn_for_tests()
            .query_row(
                "SELECT count(*), COALESCE(SUM(count), 0) FROM denial_windows",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// Denials noted on one runtime are written by the flusher within
    /// the batch window, coalesced, and the rest at stop.
    #[tokio::test(flavor = "current_thread")]
    async fn denials_are_written_soon_and_coalesced_and_the_rest_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = engine_with_grant(dir.path());
        let policy = engine.lock().unwrap().denial_policy();
        let log = DenialLog::new(policy, Arc::new(SystemClock));
        tokio::spawn(log.clone().run(Arc::clone(&engine)));
        for _ in 0..50 {
            log.note(Attempt::new(4242, "logs", "sudo", "/dev/pts/9", ""));
        }
        tokio::time::sleep(BATCH_WINDOW * 4).await;
        assert_eq!(denials(&engine), [("sudo".to_owned(), 1, false)]);
        // The 49 repeats are counted in their window's row meanwhile.
        assert_eq!(window_rows(&engine), (1, 49));
        log.flush_all(&engine);
        assert_eq!(
            denials(&engine),
            [("sudo".to_owned(), 1, false), ("sudo".to_owned(), 49, true)]
        );
        assert_eq!(window_rows(&engine), (0, 0));
    }

    /// kill -9 between flushes: the first denial was written, and the
    /// count of the repeats so far is in its window's row, written at the
    /// next start (`recovered`); what came after the last flush is lost.
    #[test]
    fn a_killed_jitd_loses_only_what_came_after_the_last_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = engine_with_grant(dir.path());
        let policy = engine.lock().unwrap().denial_policy();
        let log = DenialLog::new(policy, Arc::new(SystemClock));
        for _ in 0..3 {
            log.note(Attempt::new(4242, "logs", "sshd", "ssh", "10.1.2.3"));
        }
        let batch = log.coalescer().take(SystemClock.wall());
        write(&engine, &batch);
        log.note(Attempt::new(4242, "logs", "sshd", "ssh", "10.1.2.3"));
        drop(engine);
        let engine = Arc::new(Mutex::new(open_engine(dir.path())));
        assert_eq!(
            denials(&engine),
            [("sshd".to_owned(), 1, false), ("sshd".to_owned(), 2, true)]
        );
        let audit = engine.lock().unwrap().audit(&Person::root(), 0).unwrap();
        let recovered = audit.iter().rfind(|a| a.event == "access_denied").unwrap();
        assert_eq!(recovered.detail["recovered"], true);
        assert_eq!(recovered.detail["rhost"], "10.1.2.3");
        assert_eq!(recovered.actor_uid, Some(4242));
        assert_eq!(window_rows(&engine), (0, 0));
    }
}
