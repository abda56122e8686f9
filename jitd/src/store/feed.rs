//! The SIEM feed's side of the store (table `siem_cursors`):
//! the audit rows after a sink's cursor, and the cursor itself, committed
//! only once the sink took what it passes.
//!
//! Each sink's sender reads through a connection of its own ([`Feed`]),
//! never the engine's, so a slow sink never holds a lock a request or a
//! sudo waits for.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::{Result, Store};
use crate::core::hex;
use crate::deliver::feed::EventRecord;

/// Wakes every sink's sender when audit rows were committed: a counter,
/// so that each sender sees every ring, however many wait.
#[derive(Default)]
pub struct AuditBell {
    rung: Mutex<u64>,
    cv: Condvar,
}

impl AuditBell {
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// How many times it has rung.
    pub fn count(&self) -> u64 {
        *self.rung.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once it rang past `seen` (at once if it already has), or
    /// after `timeout`.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        let _unused = self
            .cv
            .wait_timeout_while(guard, timeout, |rung| *rung <= seen)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// Where a sink stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cursor {
    /// The newest audit id the sink took.
    pub through: u64,
    /// The newest id an anchor sent to it named, and when it was sent.
    pub anchored_through: u64,
    pub anchored_at: i64,
    pub delivered_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
}

/// A sink's sender's own connection to `jit.db`.
pub struct Feed {
    conn: Connection,
}

impl Feed {
    /// Opens the database the engine has already created and migrated.
    pub fn open(state_dir: &Path) -> Result<Feed> {
        let conn = Connection::open(state_dir.join("jit.db"))?;
        // A cursor lost to a power cut only resends (at least once).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The store's checkpoint thread does it (see `checkpoint.rs`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Feed { conn })
    }

    pub fn cursor(&self, sink: &str) -> Result<Cursor> {
        Ok(cursor(&self.conn, sink)?.unwrap_or_default())
    }

    /// Up to `limit` audit rows after `after`, oldest first.
    pub fn events_after(&self, after: u64, limit: u64) -> Result<Vec<EventRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.at, a.event, a.actor, a.actor_uid, a.request, r.user, r.resource,
                    a.detail, a.mac
             FROM audit a LEFT JOIN requests r ON r.id = a.request
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], |r| {
            let detail: String = r.get(8)?;
            let mac: Vec<u8> = r.get(9)?;
            Ok(EventRecord {
                id: r.get(0)?,
                at: r.get(1)?,
                event: r.get(2)?,
                actor: r.get(3)?,
                actor_uid: r.get(4)?,
                request: r.get(5)?,
                user: r.get(6)?,
                resource: r.get(7)?,
                detail: raw_json(detail),
                mac: hex(&mac),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The chain's head: the newest id and its MAC (hex).
    pub fn head(&self) -> Result<Option<(u64, String)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT last_id, mac FROM audit_head WHERE one = 1")?
            .query_row([], |r| Ok((r.get(0)?, hex(&r.get::<_, Vec<u8>>(1)?))))
            .optional()?)
    }

    /// The MAC (hex) of row `id`.
    pub fn mac_of(&self, id: u64) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT mac FROM audit WHERE id = ?1")?
            .query_row([id], |r| Ok(hex(&r.get::<_, Vec<u8>>(0)?)))
            .optional()?)
    }

    /// The sink took everything through `through` (and, with `anchored`,
    /// an anchor naming that id at that time).
    pub fn advance(&self, sink: &str, through: u64, anchored: Option<i64>, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO siem_cursors (sink, through, anchored_through, anchored_at, delivered_at)
                 VALUES (?1, ?2, CASE WHEN ?3 IS NULL THEN 0 ELSE ?2 END, COALESCE(?3, 0), ?4)
                 ON CONFLICT (sink) DO UPDATE SET
                     through = max(through, excluded.through),
                     anchored_through = CASE WHEN ?3 IS NULL THEN anchored_through ELSE ?2 END,
                     anchored_at = COALESCE(?3, anchored_at),
                     delivered_at = ?4, failing_since = NULL, last_error = NULL",
            )?
            .execute(params![sink, through, anchored, now])?;
        Ok(())
    }

    /// The sink failed; `error` is shown by `jitctl siem status`.
    pub fn failed(&self, sink: &str, error: &str, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO siem_cursors (sink, failing_since, last_error) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sink) DO UPDATE SET
                     failing_since = COALESCE(failing_since, ?2), last_error = ?3",
            )?
            .execute(params![sink, now, error])?;
        Ok(())
    }
}

/// A stored detail as raw JSON (a row written by jitd always is; anything
/// else goes as a JSON string).
fn raw_json(detail: String) -> Box<serde_json::value::RawValue> {
    use serde_json::value::RawValue;
    RawValue::from_string(detail).unwrap_or_else(|e| {
        let text = format!("unreadable detail: {e}");
        serde_json::to_string(&text)
            .ok()
            .and_then(|quoted| RawValue::from_string(quoted).ok())
            .unwrap_or_default()
    })
}

fn cursor(conn: &Connection, sink: &str) -> Result<Option<Cursor>> {
    Ok(conn
        .prepare_cached(
            "SELECT through, anchored_through, anchored_at, delivered_at, failing_since, last_error
             FROM siem_cursors WHERE sink = ?1",
        )?
        .query_row([sink], |r| {
            Ok(Cursor {
                through: r.get(0)?,
                anchored_through: r.get(1)?,
                anchored_at: r.get(2)?,
                delivered_at: r.get(3)?,
                failing_since: r.get(4)?,
                last_error: r.get(5)?,
            })
        })
        .optional()?)
}

/// What `jitctl siem status` shows of one sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SinkLag {
    pub cursor: Cursor,
    /// Audit rows the sink has not taken yet.
    pub behind: u64,
    /// When the oldest of them was committed.
    pub oldest_unsent_at: Option<i64>,
}

impl Store {
    /// The MAC (hex) of each row of `ids`, `None` for a row not there.
    pub fn audit_macs(&self, ids: &[u64]) -> Result<Vec<Option<String>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT mac FROM audit WHERE id = ?1")?;
        ids.iter()
            .map(|id| {
                Ok(stmt
                    .query_row([id], |r| Ok(hex(&r.get::<_, Vec<u8>>(0)?)))
                    .optional()?)
            })
            .collect()
    }

    /// Where `sink` stands against the newest audit row.
    pub fn sink_lag(&self, sink: &str) -> Result<SinkLag> {
        let cursor = cursor(&self.conn, sink)?.unwrap_or_default();
        let head: u64 = self.conn.query_row(
            "SELECT COALESCE((SELECT last_id FROM audit_head WHERE one = 1), 0)",
            [],
            |r| r.get(0),
        )?;
        let oldest_unsent_at = self
            .conn
            .prepare_cached("SELECT at FROM audit WHERE id = ?1")?
            .query_row([cursor.through + 1], |r| r.get(0))
            .optional()?;
        Ok(SinkLag {
            behind: head.saturating_sub(cursor.through),
            oldest_unsent_at,
            cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditEvent;

    fn store_with(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..n {
            store
                .write(|w| {
                    w.audit(&AuditEvent {
                        at: 100 + i as i64,
                        actor_uid: Some(1000),
                        actor: "alice",
                        event: "requested",
                        request: None,
                        detail: serde_json::json!({"n": i}),
                    })
                })
                .unwrap();
        }
        (dir, store)
    }

    #[test]
    fn events_come_in_order_after_the_cursor_with_their_macs() {
        let (dir, store) = store_with(5);
        let feed = Feed::open(dir.path()).unwrap();
        let events = feed.events_after(2, 10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(events[0].detail.get(), r#"{"n":2}"#);
        let (head, mac) = feed.head().unwrap().unwrap();
        assert_eq!((head, Some(mac.clone())), (5, feed.mac_of(5).unwrap()));
        assert_eq!(events[2].mac, mac);
        assert_eq!(feed.events_after(0, 2).unwrap().len(), 2);
        drop(store);
    }

    #[test]
    fn the_cursor_only_moves_forward_and_a_failure_is_kept_until_a_delivery() {
        let (dir, store) = store_with(4);
        let feed = Feed::open(dir.path()).unwrap();
        assert_eq!(feed.cursor("central").unwrap(), Cursor::default());
        feed.advance("central", 3, Some(50), 60).unwrap();
        feed.failed("central", "connection refused", 70).unwrap();
        feed.failed("central", "still refused", 80).unwrap();
        feed.advance("central", 2, None, 90).unwrap();
        let lag = store.sink_lag("central").unwrap();
        assert_eq!(
            lag.cursor,
            Cursor {
                through: 3,
                anchored_through: 3,
                anchored_at: 50,
                delivered_at: Some(90),
                failing_since: None,
                last_error: None,
            }
        );
        assert_eq!((lag.behind, lag.oldest_unsent_at), (1, Some(103)));
        feed.failed("central", "refused", 95).unwrap();
        let lag = store.sink_lag("central").unwrap();
        assert_eq!(lag.cursor.failing_since, Some(95));
        assert_eq!(store.sink_lag("other").unwrap().behind, 4);
    }

    #[test]
    fn the_bell_wakes_every_waiter_that_has_not_seen_the_ring() {
        let bell = std::sync::Arc::new(AuditBell::default());
        let seen = bell.count();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let bell = std::sync::Arc::clone(&bell);
                std::thread::spawn(move || {
                    let start = std::time::Instant::now();
                    bell.wait_past(seen, Duration::from_secs(10));
                    start.elapsed()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        bell.ring();
        for w in waiters {
            assert!(w.join().unwrap() < Duration::from_secs(5));
        }
        let start = std::time::Instant::now();
        bell.wait_past(seen, Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(1), "already rung");
    }
}
