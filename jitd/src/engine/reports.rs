//! Reports (X.3, X.7; docs/design.md "Reports"), for root, security and
//! auditors. The engine only authorizes the caller, writes the sessions
//! admitted so far and hands over what the report needs ([`ReportBasis`]);
//! the report itself runs on a read-only connection of its own
//! ([`report`]), off the engine's lock.
//!
//! Each report is one [`ReportKind`] and one function below: a query of
//! `store/reports.rs`, then its shaping in `core/reports.rs`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Engine, Result};
use crate::core::model::UnixTime;
use crate::core::reports::{
    self, DeniedReport, EmergencyReport, MttaReport, ReportKind, StandingReport, UnusedReport,
    UsageReport, Window,
};
use crate::directory::Person;
use crate::store::Reports;

/// What a report needs from the engine, taken under its lock.
#[derive(Clone, Debug)]
pub struct ReportBasis {
    pub window: Window,
    /// `[reports.sla]`, by route.
    sla: BTreeMap<String, Duration>,
    /// Each configured resource's `max_duration`.
    max_durations: BTreeMap<String, Duration>,
    /// Where `jit.db` is.
    pub state_dir: PathBuf,
}

/// One report's document (`--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Report {
    Emergency(EmergencyReport),
    Mtta(MttaReport),
    Usage(UsageReport),
    Unused(UnusedReport),
    Denied(DeniedReport),
    Standing(StandingReport),
}

impl Engine {
    /// For root, security and auditors: the window from `since` to now,
    /// after writing the sessions admitted so far (a report reads them).
    pub fn report_basis(&mut self, who: &Person, since: UnixTime) -> Result<ReportBasis> {
        self.require_sees_all(who)?;
        self.write_admitted()?;
        Ok(ReportBasis {
            window: Window::since(since, self.clock.wall()),
            sla: self.config.reports.sla.clone(),
            max_durations: self
                .config
                .resources
                .iter()
                .map(|r| (r.name.clone(), r.max_duration))
                .collect(),
            state_dir: self.state_dir.clone(),
        })
    }
}

/// Report `kind` over `basis`'s window, read through `db`.
pub fn report(db: &Reports, basis: &ReportBasis, kind: ReportKind) -> Result<Report> {
    Ok(match kind {
        ReportKind::Emergency => Report::Emergency(emergency(db, basis)?),
        ReportKind::Mtta => Report::Mtta(mtta(db, basis)?),
        ReportKind::Usage => Report::Usage(usage(db, basis)?),
        ReportKind::Unused => Report::Unused(unused(db, basis)?),
        ReportKind::Denied => Report::Denied(denied(db, basis)?),
        ReportKind::Standing => Report::Standing(standing(db, basis)?),
    })
}

/// Break-glass grants with their justification, reviews and incidents.
fn emergency(db: &Reports, basis: &ReportBasis) -> Result<EmergencyReport> {
    let rows = db.emergency(basis.window)?;
    Ok(reports::emergency(rows, basis.window))
}

/// Time from a request to access, per route, against `[reports.sla]`.
fn mtta(db: &Reports, basis: &ReportBasis) -> Result<MttaReport> {
    let counts = db.access_counts(basis.window)?;
    Ok(reports::mtta(&counts, &basis.sla, basis.window))
}

/// Grants per resource, and the time they were held against the time used.
fn usage(db: &Reports, basis: &ReportBasis) -> Result<UsageReport> {
    let grants = db.grant_use(basis.window, basis.window.to)?;
    Ok(reports::usage(&grants, &basis.max_durations, basis.window))
}

/// Grants never used, per resource and per user.
fn unused(db: &Reports, basis: &ReportBasis) -> Result<UnusedReport> {
    let counts = db.unused_counts(basis.window)?;
    Ok(reports::unused(&counts, basis.window))
}

/// Access attempted without a grant: the `access_denied*` events.
fn denied(db: &Reports, basis: &ReportBasis) -> Result<DeniedReport> {
    let events = db.denied_events(basis.window)?;
    Ok(reports::denied(&events, basis.window))
}

/// The standing-privilege scans in the window, against the first.
fn standing(db: &Reports, basis: &ReportBasis) -> Result<StandingReport> {
    let (first, scans) = db.scan_counts(basis.window)?;
    Ok(reports::standing(first.as_ref(), &scans, basis.window))
}

#[cfg(test)]
mod tests;
