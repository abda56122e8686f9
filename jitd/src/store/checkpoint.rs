//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint
//! runs inside whichever commit crosses 1,000 WAL pages and fsyncs the WAL
//! and the database there: one sudo in every few dozen waited for two fsyncs
//! while registering its session. Here the store's connection never checkpoints;
//! every [`CHECKPOINT_EVERY`] commits it rings this thread, which copies the
//! WAL back (PASSIVE: writers go on meanwhile) on its own connection.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::{Doorbell, Result};

/// Commits between two checkpoints: ~30 sudo runs, a few hundred pages.
const CHECKPOINT_EVERY: u32 = 64;
/// A checkpoint also runs after this long without a ring, so that what a
/// quiet host wrote reaches the database file.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(60);

pub struct Checkpoints {
    bell: Arc<Doorbell>,
    stop: Arc<AtomicBool>,
    commits: u32,
}

impl Checkpoints {
    /// Turns off automatic checkpoints on `conn` and starts the thread.
    pub fn start(conn: &Connection, db: &Path) -> Result<Checkpoints> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let own = Connection::open(db)?;
        own.pragma_update(None, "wal_autocheckpoint", 0)?;
        own.busy_timeout(Duration::from_secs(5))?;
        let bell = Arc::new(Doorbell::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_bell, thread_stop) = (Arc::clone(&bell), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("jitd-checkpoint".into())
            .spawn(move || run(&own, &thread_bell, &thread_stop))
            .map_err(super::StoreError::Checkpointer)?;
        Ok(Checkpoints {
            bell,
            stop,
            commits: 0,
        })
    }

    /// Counts a commit; every [`CHECKPOINT_EVERY`]th wakes the thread.
    pub fn committed(&mut self) {
        self.commits += 1;
        if self.commits >= CHECKPOINT_EVERY {
            self.commits = 0;
            self.bell.ring();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.bell.ring();
    }
}

fn run(conn: &Connection, bell: &Doorbell, stop: &AtomicBool) {
    loop {
        bell.wait(IDLE_CHECKPOINT);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let checkpoint = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match checkpoint {
            Ok((wal, copied)) => tracing::debug!(wal, copied, "WAL checkpoint"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AuditEvent, Store};

    /// The store's commits never checkpoint; the thread copies the WAL
    /// into the database file once enough commits have rung it.
    #[test]
    fn the_wal_reaches_the_database_file_from_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let auto: i64 = store
            .conn()
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(auto, 0);
        let db = dir.path().join("jit.db");
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        for i in 0..super::CHECKPOINT_EVERY {
            store
                .write_usage(|w| {
                    w.audit(&AuditEvent {
                        at: i64::from(i),
                        actor_uid: Some(0),
                        actor: "test",
                        event: "session_opened",
                        request: None,
                        detail: serde_json::json!({ "padding": "x".repeat(2000) }),
                    })
                })
                .unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while size() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(size() > before, "the database file never grew");
    }
}
