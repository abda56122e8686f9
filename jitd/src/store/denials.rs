//! Rows of `denial_windows`: the coalesced denials of the windows still
//! open (docs/design.md "Denied access"), so that a crash of jitd loses
//! only what came after the last flush.

use rusqlite::params;

use super::{Result, Store, Writer};
use crate::core::denials::{DenialKey, DeniedRecord, OpenWindow, Tracked};

impl Writer<'_> {
    /// Writes (or rewrites) an open window's count so far.
    pub fn put_denial_window(&mut self, w: &OpenWindow) -> Result<()> {
        let r = &w.record;
        let (uid, resource, service) = match &r.tracked {
            Tracked::Key(k) => (Some(k.uid), k.resource.as_str(), k.service.as_str()),
            Tracked::Overflow => (None, "", ""),
        };
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO denial_windows
                     (id, uid, resource, service, tty, rhost, count, first, last, closes_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                w.id,
                uid,
                resource,
                service,
                r.tty,
                r.rhost,
                r.count,
                r.first,
                r.last,
                w.closes_at
            ])?;
        Ok(())
    }

    /// A window whose record is written: its row goes.
    pub fn drop_denial_window(&mut self, id: u64) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM denial_windows WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Every window's row (at start, once their records are written).
    pub fn drop_denial_windows(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM denial_windows", [])?;
        Ok(())
    }
}

impl Store {
    /// The windows a previous jitd left open, as the records of their
    /// counts so far, oldest first.
    pub fn denial_windows(&self) -> Result<Vec<DeniedRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT uid, resource, service, tty, rhost, count, first, last
             FROM denial_windows ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let uid: Option<u32> = r.get(0)?;
            let tracked = match uid {
                Some(uid) => Tracked::Key(DenialKey {
                    uid,
                    resource: r.get(1)?,
                    service: r.get(2)?,
                }),
                None => Tracked::Overflow,
            };
            Ok(DeniedRecord {
                tracked,
                tty: r.get(3)?,
                rhost: r.get(4)?,
                count: r.get(5)?,
                first: r.get(6)?,
                last: r.get(7)?,
                repeats: true,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
