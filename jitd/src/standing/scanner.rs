//! Runs a standing-privilege scan for a caller (`Scan` on the bus) or for
//! jitd's own timer (`[scan] every`): the configuration and the caller's
//! right under the engine lock, the host read on the blocking pool with
//! no lock held, custody looked up under the lock, the findings decided
//! with no lock held, then one transaction (snapshot and audit event).
//! Never on the bus's executor, never on pam_jit's path; one scan at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{gather, Gathered, Host};
use crate::api::ScanView;
use crate::config::ScanConfig;
use crate::core::standing::scan;
use crate::directory::Person;
use crate::engine::{run_blocking, Engine, EngineError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the scan's thread failed: {0}")]
    Thread(String),
}

#[derive(Clone)]
pub struct Scanner {
    engine: Arc<Mutex<Engine>>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Scanner {
    pub fn new(engine: Arc<Mutex<Engine>>) -> Scanner {
        Scanner {
            engine,
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Scans now; `who` `None`: jitd's timer.
    pub async fn scan(&self, who: Option<Person>) -> Result<ScanView, ScanError> {
        let thread = |e: tokio::task::JoinError| ScanError::Thread(e.to_string());
        let asker = who.clone();
        let inputs = run_blocking(&self.engine, move |e| {
            if let Some(who) = &asker {
                e.may_scan(who)?;
            }
            Ok(e.scan_inputs())
        })
        .await
        .map_err(thread)??;
        let _one = self.one_at_a_time.lock().await;
        let gathered = tokio::task::spawn_blocking(move || gather(&Host::system(), &inputs))
            .await
            .map_err(thread)?;
        let Gathered {
            mut facts,
            managed_fields,
        } = gathered;
        facts.custody = run_blocking(&self.engine, move |e| e.in_custody(&managed_fields))
            .await
            .map_err(thread)??;
        let report = tokio::task::spawn_blocking(move || scan(&facts))
            .await
            .map_err(thread)?;
        let view = run_blocking(&self.engine, move |e| e.record_scan(who.as_ref(), report))
            .await
            .map_err(thread)??;
        Ok(view)
    }

    /// jitd's own scans, as `[scan] every` says, until jitd stops.
    pub async fn run_every(self, config: ScanConfig) {
        let (Some(first), Some(every)) = (config.first_after(), config.every.0) else {
            return;
        };
        tokio::time::sleep(first).await;
        loop {
            match self.scan(None).await {
                Ok(view) => tracing::info!(
                    standing = view.scan.total,
                    errors = view.errors.len(),
                    "standing-privilege scan"
                ),
                Err(e) => tracing::warn!(error = %e, "standing-privilege scan failed"),
            }
            tokio::time::sleep(every.max(Duration::from_secs(1))).await;
        }
    }
}
