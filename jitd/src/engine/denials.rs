//! Denied access in the audit trail (docs/design.md "Denied access"): the
//! batches the gate's [`crate::denials::DenialLog`] coalesced, written in
//! one transaction each, off the thread serving pam_jit.

use std::collections::HashMap;

use serde_json::json;

use super::{Engine, Result, JITD};
use crate::core::denials::{Alert, Batch, DenialPolicy, DeniedRecord, Tracked};
use crate::core::model::Uid;
use crate::store::{AuditEvent, Store, Writer};

/// How a record came to be written, in its event's detail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    Flushed,
    /// From the row of a window a previous jitd left open.
    Recovered,
}

impl Engine {
    /// `[denials]` of the config.
    pub fn denial_policy(&self) -> DenialPolicy {
        self.config.denials.policy()
    }

    /// Writes `batch` in one transaction, as records of use
    /// (`synchronous=NORMAL`): its alerts and records as audit events, the
    /// rows of the windows still open, and the removal of those that
    /// closed. `names`: the user name of each uid, looked up by the caller
    /// without the engine's lock.
    pub fn write_denials(&mut self, batch: &Batch, names: &HashMap<Uid, String>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let max_tracked = self.config.denials.max_tracked.get();
        let window_secs = self.config.denials.alert_window.0.as_secs();
        self.store.write_usage(|w| -> Result<()> {
            for record in &batch.records {
                audit_denied(w, record, names, Written::Flushed, max_tracked)?;
            }
            for alert in &batch.alerts {
                audit_alert(w, alert, names, window_secs)?;
            }
            for open in &batch.open {
                w.put_denial_window(open)?;
            }
            for id in &batch.closed {
                w.drop_denial_window(*id)?;
            }
            Ok(())
        })
    }
}

/// The name an audit event gives `uid`.
fn name_of(names: &HashMap<Uid, String>, uid: Uid) -> String {
    names
        .get(&uid)
        .cloned()
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn audit_denied(
    w: &mut Writer<'_>,
    r: &DeniedRecord,
    names: &HashMap<Uid, String>,
    how: Written,
    max_tracked: usize,
) -> Result<()> {
    let mut detail = json!({
        "tty": r.tty,
        "rhost": r.rhost,
        "count": r.count,
        "first": r.first,
        "last": r.last,
        "repeats": r.repeats,
    });
    if how == Written::Recovered {
        detail["recovered"] = json!(true);
    }
    match &r.tracked {
        Tracked::Key(key) => {
            let user = name_of(names, key.uid);
            detail["user"] = json!(user);
            detail["uid"] = json!(key.uid);
            detail["resource"] = json!(key.resource);
            detail["service"] = json!(key.service);
            w.audit(&AuditEvent {
                at: r.last,
                actor_uid: Some(key.uid),
                actor: &user,
                event: "access_denied",
                request: None,
                detail,
            })?;
        }
        Tracked::Overflow => {
            detail["max_tracked"] = json!(max_tracked);
            w.audit(&AuditEvent {
                at: r.last,
                actor_uid: None,
                actor: JITD,
                event: "access_denied_overflow",
                request: None,
                detail,
            })?;
        }
    }
    Ok(())
}

fn audit_alert(
    w: &mut Writer<'_>,
    a: &Alert,
    names: &HashMap<Uid, String>,
    window_secs: u64,
) -> Result<()> {
    let user = name_of(names, a.uid);
    w.audit(&AuditEvent {
        at: a.last,
        actor_uid: Some(a.uid),
        actor: &user,
        event: "access_denied_repeatedly",
        request: None,
        detail: json!({
            "user": user,
            "uid": a.uid,
            "attempts": a.attempts,
            "resources": a.resources,
            "first": a.first,
            "last": a.last,
            "window_secs": window_secs,
        }),
    })?;
    Ok(())
}

/// At open: the windows a previous jitd left open (it was killed, or its
/// last flush failed) are written as records of their counts so far
/// (`recovered`), and their rows dropped, in one transaction.
pub(super) fn write_left_denials(store: &mut Store, max_tracked: usize) -> Result<usize> {
    let left = store.denial_windows()?;
    if left.is_empty() {
        return Ok(0);
    }
    let names: HashMap<Uid, String> = left
        .iter()
        .filter_map(|r| match &r.tracked {
            Tracked::Key(k) => crate::directory::Person::lookup(k.uid)
                .ok()
                .map(|p| (k.uid, p.name)),
            Tracked::Overflow => None,
        })
        .collect();
    store.write_usage(|w| -> Result<()> {
        for record in &left {
            audit_denied(w, record, &names, Written::Recovered, max_tracked)?;
        }
        Ok(w.drop_denial_windows()?)
    })?;
    Ok(left.len())
}
