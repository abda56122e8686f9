//! The notification outbox (table `notifications`, schema version 5).
//!
//! [`Writer::audit`](super::Writer::audit) queues the deliveries an audit
//! event causes in the same transaction, so a committed event always has
//! its notifications and a rolled-back one never does. The delivery worker
//! reads and marks rows through its own connection ([`Outbox`]), never
//! through the engine.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{Result, Store, StoreError};
use crate::core::model::{Request, RequestId, UnixTime};
use crate::core::notify::{Channel, Notice, Outgoing, Trigger};

/// Maps an audit event (and its request) to the deliveries to queue.
pub type Planner = Arc<dyn Fn(&Trigger<'_>, Option<&Request>) -> Vec<Outgoing> + Send + Sync>;

/// Wakes the delivery worker when rows were queued.
#[derive(Default)]
pub struct Doorbell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Doorbell {
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Returns when rung (at once if it rang since the last wait) or after `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        let (mut rung, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |rung| !*rung)
            .unwrap_or_else(|e| e.into_inner());
        *rung = false;
    }
}

/// One delivery as `jitctl show` reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: u64,
    pub event: String,
    pub channel: String,
    pub target: String,
    pub subject: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub created_at: UnixTime,
    pub delivered_at: Option<UnixTime>,
    pub last_error: Option<String>,
}

/// A delivery for the worker to attempt.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: u64,
    pub channel: Channel,
    pub target: String,
    pub notice: Notice,
    pub attempts: u32,
    pub created_at: UnixTime,
}

pub fn enqueue(conn: &Connection, audit_id: i64, at: UnixTime, out: &[Outgoing]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO notifications (audit_id, request, event, channel, target, subject, notice,
                                    state, created_at, next_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9)",
    )?;
    for o in out {
        let notice =
            serde_json::to_string(&o.notice).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        stmt.execute(params![
            audit_id,
            o.notice.request,
            o.notice.event,
            o.channel.as_str(),
            o.to,
            o.notice.title,
            notice,
            at,
            at.saturating_mul(1000),
        ])?;
    }
    Ok(())
}

impl Store {
    /// The deliveries caused by events about `request`, oldest first.
    pub fn notifications(&self, request: RequestId) -> Result<Vec<NotificationRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, event, channel, target, subject, state, attempts, created_at,
                    delivered_at, last_error
             FROM notifications WHERE request = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([request], |r| {
            Ok(NotificationRecord {
                id: r.get(0)?,
                event: r.get(1)?,
                channel: r.get(2)?,
                target: r.get(3)?,
                subject: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                created_at: r.get(7)?,
                delivered_at: r.get(8)?,
                last_error: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The delivery worker's own connection to `jit.db`.
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Opens the database the engine has already created and migrated.
    pub fn open(state_dir: &Path) -> Result<Outbox> {
        let conn = Connection::open(state_dir.join("jit.db"))?;
        // A delivery's mark survives a crash of jitd (WAL) without waiting for
        // the disk, so it does not hold the write lock a request may be waiting
        // for; a power cut may lose the newest marks, and those deliveries are
        // sent again (at least once).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The store's checkpoint thread does it (see `checkpoint.rs`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Outbox { conn })
    }

    /// After a restart everything still pending is due at once.
    pub fn make_all_due(&self) -> Result<()> {
        self.conn.execute(
            "UPDATE notifications SET next_at_ms = 0 WHERE state = 'pending'",
            [],
        )?;
        Ok(())
    }

    /// Pending deliveries due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, channel, target, notice, attempts, created_at FROM notifications
             WHERE state = 'pending' AND next_at_ms <= ?1 ORDER BY next_at_ms, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit], |r| {
            let channel: String = r.get(1)?;
            let notice: String = r.get(3)?;
            let corrupt = |what: String| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    what.into(),
                )
            };
            Ok(Delivery {
                id: r.get(0)?,
                channel: Channel::parse(&channel)
                    .ok_or_else(|| corrupt(format!("unknown channel '{channel}'")))?,
                target: r.get(2)?,
                notice: serde_json::from_str(&notice).map_err(|e| corrupt(e.to_string()))?,
                attempts: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the earliest pending delivery is due (unix milliseconds).
    pub fn next_due_ms(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT MIN(next_at_ms) FROM notifications WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The endpoint acknowledged the delivery: committed before anything else is sent.
    pub fn delivered(&self, id: u64, at: UnixTime) -> Result<()> {
        self.conn.execute(
            "UPDATE notifications SET state = 'delivered', attempts = attempts + 1,
                    delivered_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }

    /// Not attempted now (its endpoint just failed): due again at `at_ms`.
    pub fn postpone(&self, id: u64, at_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE notifications SET next_at_ms = ?2 WHERE id = ?1",
            params![id, at_ms],
        )?;
        Ok(())
    }

    /// A failed attempt: retried at `retry_at_ms`, or given up (`None`).
    pub fn failed(&self, id: u64, error: &str, retry_at_ms: Option<i64>) -> Result<()> {
        self.conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?2,
                    state = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END,
                    next_at_ms = COALESCE(?3, next_at_ms) WHERE id = ?1",
            params![id, error, retry_at_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::notify::Notice;
    use crate::store::AuditEvent;

    /// A store whose planner sends every audit event to one webhook.
    fn store() -> (tempfile::TempDir, Store, Arc<Doorbell>) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let bell = Arc::new(Doorbell::default());
        let planner: Planner = Arc::new(|t: &Trigger<'_>, _req: Option<&Request>| {
            vec![Outgoing {
                channel: Channel::Hook,
                to: "ops".into(),
                notice: Notice {
                    event: t.event.into(),
                    request: t.request,
                    title: format!("{} happened", t.event),
                    fields: Vec::new(),
                    action: None,
                },
            }]
        });
        store.notify_with(planner, Arc::clone(&bell));
        (dir, store, bell)
    }

    fn event(name: &str) -> AuditEvent<'_> {
        AuditEvent {
            at: 1_700_000_000,
            actor_uid: None,
            actor: "jitd",
            event: name,
            request: Some(7),
            detail: serde_json::json!({}),
        }
    }

    fn count(store: &Store) -> i64 {
        store
            .conn()
            .query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn notifications_commit_and_roll_back_with_their_audit_event() {
        let (dir, mut store, bell) = store();
        let failed: std::result::Result<(), StoreError> = store.write(|w| {
            w.audit(&event("expired"))?;
            Err(StoreError::Corrupt("the state change failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(count(&store), 0, "rolled back with the event");
        // Events nobody is told about never reach the planner.
        store.write(|w| w.audit(&event("session_opened"))).unwrap();
        assert_eq!(count(&store), 0);

        store.write(|w| w.audit(&event("expired"))).unwrap();
        assert_eq!(count(&store), 1);
        let started = std::time::Instant::now();
        bell.wait(Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the commit rang the doorbell"
        );

        let outbox = Outbox::open(dir.path()).unwrap();
        let due = outbox.due(1_700_000_000_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].notice.title, "expired happened");
        outbox.failed(due[0].id, "refused", Some(i64::MAX)).unwrap();
        assert!(outbox.due(1_700_000_000_000, 10).unwrap().is_empty());
        outbox.make_all_due().unwrap();
        let due = outbox.due(0, 10).unwrap();
        assert_eq!(due[0].attempts, 1);
        outbox.delivered(due[0].id, 1_700_000_001).unwrap();
        assert!(outbox.due(i64::MAX, 10).unwrap().is_empty());
        let shown = store.notifications(7).unwrap();
        assert_eq!(
            (
                shown[0].state.as_str(),
                shown[0].attempts,
                shown[0].last_error.as_deref()
            ),
            ("delivered", 2, None)
        );
    }
}
