//! Rows of `standing_scans`: each standing-privilege scan's counts, kept
//! for the trend, and its whole report for the first scan and the newest
//! [`REPORTS_KEPT`] (a scan every hour would otherwise keep every finding
//! of every hour).

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError, Writer};
use crate::core::model::UnixTime;
use crate::core::standing::{Kind, Report};

/// How many of the newest scans keep their whole report.
pub const REPORTS_KEPT: i64 = 100;

/// One scan, without its findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRecord {
    pub id: i64,
    pub at: UnixTime,
    pub actor: String,
    pub total: u64,
    pub counts: BTreeMap<Kind, u64>,
    /// Sources the scan could not read: its count is a lower bound.
    pub errors: u64,
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("standing scan: {e}"))
}

const COLUMNS: &str = "id, at, actor, total, counts, errors";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ScanRecord, String)> {
    Ok((
        ScanRecord {
            id: row.get(0)?,
            at: row.get(1)?,
            actor: row.get(2)?,
            total: row.get(3)?,
            counts: BTreeMap::new(),
            errors: row.get(5)?,
        },
        row.get(4)?,
    ))
}

fn with_counts((mut scan, counts): (ScanRecord, String)) -> Result<ScanRecord> {
    scan.counts = serde_json::from_str(&counts).map_err(corrupt)?;
    Ok(scan)
}

impl Writer<'_> {
    /// Stores a scan; the reports of older scans but the first are dropped.
    pub fn put_scan(&mut self, at: UnixTime, actor: &str, report: &Report) -> Result<ScanRecord> {
        let counts = report.counts();
        let total: u64 = counts.values().sum();
        let counts_json = serde_json::to_string(&counts).map_err(corrupt)?;
        let report_json = serde_json::to_string(report).map_err(corrupt)?;
        let errors = report.errors.len() as u64;
        self.tx
            .prepare_cached(
                "INSERT INTO standing_scans (at, actor, total, counts, errors, report)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![at, actor, total, counts_json, errors, report_json])?;
        let id = self.tx.last_insert_rowid();
        self.tx
            .prepare_cached(
                "UPDATE standing_scans SET report = NULL
                 WHERE report IS NOT NULL AND id <= ?1
                   AND id != (SELECT min(id) FROM standing_scans)",
            )?
            .execute([id - REPORTS_KEPT])?;
        Ok(ScanRecord {
            id,
            at,
            actor: actor.to_owned(),
            total,
            counts,
            errors,
        })
    }
}

impl Store {
    /// The first scan stored: the baseline of the trend.
    pub fn first_scan(&self) -> Result<Option<ScanRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM standing_scans ORDER BY id LIMIT 1");
        self.conn
            .prepare_cached(&sql)?
            .query_row([], record)
            .optional()?
            .map(with_counts)
            .transpose()
    }

    /// Scans since `since`, oldest first, at most `limit` (the newest).
    pub fn scans(&self, since: UnixTime, limit: u32) -> Result<Vec<ScanRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT * FROM standing_scans WHERE at >= ?1
             ORDER BY id DESC LIMIT ?2) ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![since, limit], record)?;
        rows.map(|r| with_counts(r?)).collect()
    }

    /// A scan's whole report, while it is kept.
    pub fn scan_report(&self, id: i64) -> Result<Option<Report>> {
        let json: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT report FROM standing_scans WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        json.flatten()
            .map(|j| serde_json::from_str(&j).map_err(corrupt))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::standing::Finding;

    fn report(n: usize) -> Report {
        Report {
            findings: (0..n)
                .map(|i| Finding {
                    kind: Kind::Sudoers,
                    principal: format!("user{i}"),
                    target: "root".into(),
                    how: "/etc/sudoers".into(),
                    why: "no gate".into(),
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn counts_stay_for_the_trend_and_reports_for_the_first_and_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let total = REPORTS_KEPT + 5;
        for i in 0..total {
            let n = (total - i) as usize;
            let stored = store
                .write(|w| w.put_scan(1000 + i, "sam", &report(n)))
                .unwrap();
            assert_eq!(stored.total, n as u64);
            assert_eq!(stored.counts[&Kind::Sudoers], n as u64);
            assert_eq!(stored.counts[&Kind::Uid0], 0);
        }
        let first = store.first_scan().unwrap().unwrap();
        assert_eq!((first.id, first.total), (1, total as u64));
        let scans = store.scans(0, u32::MAX).unwrap();
        assert_eq!(scans.len() as i64, total);
        assert_eq!(store.scans(1000 + total - 3, 10).unwrap().len(), 3);
        assert_eq!(store.scans(0, 2).unwrap()[1].id, total, "the newest");
        assert!(store.scan_report(1).unwrap().is_some(), "the first");
        assert!(store.scan_report(2).unwrap().is_none(), "an old one");
        assert!(store
            .scan_report(total - REPORTS_KEPT + 1)
            .unwrap()
            .is_some());
        assert_eq!(store.scan_report(total).unwrap().unwrap(), report(1));
    }
}
