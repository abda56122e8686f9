//! Seeding a state directory through jitd's own store, so the database has
//! the real schema and the audit HMAC chain verifies.

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jitd::core::model::{Kind, Request, Route, State};
use jitd::core::risk::RiskAssessment;
use jitd::store::{AuditEvent, Store, StoreError};

pub fn seed(
    state_dir: &Path,
    grants: u64,
    audit: u64,
    resource: &str,
    uid_base: u32,
    expires_at: Option<i64>,
    batch: u64,
) -> Result<serde_json::Value, StoreError> {
    let started = Instant::now();
    std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Key {
        path: state_dir.display().to_string(),
        source,
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let expires_at = expires_at.unwrap_or(now + 4 * 3600);
    let duration = Duration::from_secs(expires_at.saturating_sub(now).max(1) as u64);
    let mut store = Store::open(state_dir)?;
    let batch = batch.max(1);

    let mut first_id = None;
    let mut done = 0;
    while done < grants {
        let n = batch.min(grants - done);
        let id = store.write(|w| -> Result<u64, StoreError> {
            let mut first = 0;
            for i in done..done + n {
                let uid = uid_base + i as u32;
                let req = Request {
                    id: 0,
                    kind: Kind::Grant,
                    uid,
                    user: format!("bench{i}"),
                    resource: resource.to_owned(),
                    duration,
                    reason: "seeded by jit-bench".into(),
                    ticket: None,
                    requested_at: now,
                    route: Route::Auto,
                    risk: RiskAssessment {
                        score: 0,
                        factors: Vec::new(),
                    },
                    state: State::Active,
                    decisions: Vec::new(),
                    expires_at: Some(expires_at),
                    activate_by: None,
                    ended_at: None,
                    ended_by: None,
                    follow_up: None,
                };
                let id = w.insert_request(&req)?;
                if i == done {
                    first = id;
                }
            }
            Ok(first)
        })?;
        first_id.get_or_insert(id);
        done += n;
    }
    let grants_secs = started.elapsed().as_secs_f64();

    let audit_started = Instant::now();
    let mut done = 0;
    while done < audit {
        let n = batch.min(audit - done);
        store.write(|w| -> Result<(), StoreError> {
            for k in done..done + n {
                let request = first_id.map(|f| f + k % grants);
                let (event, actor_uid) = if k % 2 == 0 {
                    ("requested", Some(uid_base))
                } else {
                    ("granted", None)
                };
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid,
                    actor: if actor_uid.is_some() { "bench" } else { "jitd" },
                    event,
                    request,
                    detail: json!({"resource": resource, "seeded": true, "expires_at": expires_at}),
                })?;
            }
            Ok(())
        })?;
        done += n;
    }
    Ok(json!({
        "grants": grants,
        "audit_rows": audit,
        "expires_at": expires_at,
        "grants_secs": grants_secs,
        "audit_secs": audit_started.elapsed().as_secs_f64(),
    }))
}
