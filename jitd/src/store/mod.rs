//! SQLite persistence: requests, decisions and the audit trail.
//!
//! Every state change goes through [`Store::write`], which runs it and its
//! audit events in one transaction with `synchronous=FULL`: an operation that
//! was acknowledged survives `kill -9` and power loss (threat T23).

mod accounts;
mod audit;
mod cases;
mod checkpoint;
mod denials;
mod feed;
mod journal;
mod memberships;
mod mfa;
mod outbox;
mod recordings;
mod reports;
mod requests;
mod schema;
mod sessions;
mod snapshots;
mod standing;
mod usage;
mod vendors;

use rusqlite::{Connection, Transaction};
use std::path::Path;
use std::sync::Arc;

use crate::core::notify::{Trigger, EVENTS};
use thiserror::Error;

pub(crate) use accounts::Fingerprints;
pub use audit::AuditEvent;
pub(crate) use audit::{AuditKey, AuditRecord, Verification};
pub(crate) use cases::Incident;
pub use feed::{AuditBell, Cursor, Feed, SinkLag};
pub(crate) use journal::Journal;
pub use mfa::MfaRow;
pub(crate) use outbox::{Delivery, Doorbell, NotificationRecord, Outbox, Planner};
pub(crate) use recordings::{Closed, DigestOf, RecordingRecord};
pub use reports::Reports;
pub(crate) use requests::ListFilter;
pub use sessions::SessionRecord;
pub(crate) use standing::ScanRecord;
pub use usage::GrantUsage;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit key {path}: {source}")]
    Key {
        path: String,
        source: std::io::Error,
    },
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    #[error("database schema version {found} is newer than this jitd ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error("{0}: another jitd is using this state directory")]
    InUse(String),
    #[error("{path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error("session journal {path}: {source}")]
    Journal {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the checkpoint thread: {0}")]
    Checkpointer(std::io::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    /// Held (flock) while the store is open: one jitd per state directory,
    /// or two would change the same managed accounts.
    _lock: nix::fcntl::Flock<std::fs::File>,
    conn: Connection,
    checkpoints: checkpoint::Checkpoints,
    key: AuditKey,
    /// Set when notifications are configured: what to queue, and whom to wake.
    notifier: Option<(Planner, Arc<Doorbell>)>,
    /// Set when a SIEM feed is configured: rung after every commit with
    /// audit rows.
    feed: Option<Arc<AuditBell>>,
}

impl Store {
    /// Opens (creating if needed) `jit.db` and the audit key in `state_dir`.
    /// The caller has set a restrictive umask; files are created 0600.
    pub fn open(state_dir: &Path) -> Result<Store> {
        let lock = lock_state_dir(state_dir)?;
        let key = AuditKey::load_or_create(&state_dir.join("audit.key"))?;
        let db = state_dir.join("jit.db");
        let mut conn = Connection::open(&db)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Room for every statement of the hot paths (sessions, audit, checks).
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        // The level of the frequent writes (see `write_usage`): only the
        // rare durable ones pay for switching.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let checkpoints = checkpoint::Checkpoints::start(&conn, &db)?;
        Ok(Store {
            _lock: lock,
            conn,
            checkpoints,
            key,
            notifier: None,
            feed: None,
        })
    }

    /// From now on, audit events queue the notifications `planner` maps them to.
    pub fn notify_with(&mut self, planner: Planner, bell: Arc<Doorbell>) {
        self.notifier = Some((planner, bell));
    }

    /// From now on, every commit that appends audit events rings `bell`.
    pub fn feed_with(&mut self, bell: Arc<AuditBell>) {
        self.feed = Some(bell);
    }

    /// Runs `change` in one transaction; it writes its own audit events
    /// through the [`Writer`] it is handed. Committed to the disk
    /// (`synchronous=FULL`) before it returns.
    pub fn write<T, E>(
        &mut self,
        change: impl FnOnce(&mut Writer<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        // Not a cached statement: SQLite applies this pragma when it
        // prepares it, not when it runs it.
        let sync = |conn: &Connection, level: &str| {
            conn.pragma_update(None, "synchronous", level)
                .map_err(|e| E::from(StoreError::from(e)))
        };
        sync(&self.conn, "FULL")?;
        let result = self.write_usage(change);
        sync(&self.conn, "NORMAL")?;
        result
    }

    /// Like [`Store::write`], for records of use (sessions opening and
    /// closing), which sit on every sudo: committed without waiting for the
    /// disk (WAL, `synchronous=NORMAL`). They survive a crash of jitd; a power
    /// cut may lose the newest, which no grant state depends on (a session's
    /// processes are found through its cgroup, not its row).
    pub fn write_usage<T, E>(
        &mut self,
        change: impl FnOnce(&mut Writer<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| E::from(StoreError::from(e)))?;
        let mut writer = Writer {
            tx,
            key: &self.key,
            planner: self.notifier.as_ref().map(|(p, _)| p),
            queued: 0,
            audited: 0,
        };
        let value = change(&mut writer)?;
        let (queued, audited) = (writer.queued, writer.audited);
        writer
            .tx
            .commit()
            .map_err(|e| E::from(StoreError::from(e)))?;
        self.checkpoints.committed();
        if let Some((_, bell)) = self.notifier.as_ref().filter(|_| queued > 0) {
            bell.ring();
        }
        if let Some(bell) = self.feed.as_ref().filter(|_| audited > 0) {
            bell.ring();
        }
        Ok(value)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn verify_audit(&self) -> Result<Verification> {
        audit::verify(&self.conn, &self.key)
    }
}

/// `state_dir/jitd.lock`, locked exclusively (never waiting), until dropped.
fn lock_state_dir(state_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("jitd.lock");
    let lock_error = |source| StoreError::Lock {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(lock_error)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => StoreError::InUse(state_dir.display().to_string()),
            errno => lock_error(std::io::Error::from(errno)),
        },
    )
}

/// A transaction in progress; dropping it without commit rolls back.
pub struct Writer<'a> {
    tx: Transaction<'a>,
    key: &'a AuditKey,
    planner: Option<&'a Planner>,
    /// Notifications queued in this transaction.
    queued: usize,
    /// Audit events appended in this transaction.
    audited: usize,
}

impl Writer<'_> {
    /// Appends an audit event and queues the notifications it causes.
    pub fn audit(&mut self, event: &AuditEvent<'_>) -> Result<()> {
        let id = audit::append(&self.tx, self.key, event)?;
        self.audited += 1;
        let Some(planner) = self.planner.filter(|_| EVENTS.contains(&event.event)) else {
            return Ok(());
        };
        let req = match event.request {
            Some(r) => requests::get(&self.tx, r)?,
            None => None,
        };
        let trigger = Trigger {
            event: event.event,
            actor: event.actor,
            actor_uid: event.actor_uid,
            request: event.request,
            detail: &event.detail,
        };
        let out = planner(&trigger, req.as_ref());
        outbox::enqueue(&self.tx, id, event.at, &out)?;
        self.queued += out.len();
        Ok(())
    }

    pub fn conn(&self) -> &Connection {
        &self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_store_per_state_directory_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let second = Store::open(dir.path());
        assert!(
            matches!(&second, Err(StoreError::InUse(_))),
            "{:?}",
            second.err()
        );
        drop(first);
        Store::open(dir.path()).unwrap();
    }
}
