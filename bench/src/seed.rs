//! Seeding a state directory through jitd's own store, so the database has
//! the real schema and the audit HMAC chain verifies.

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jitd::core::model::{Decision, Kind, Request, Route, State, Verdict};
use jitd::core::risk::RiskAssessment;
use jitd::store::{AuditEvent, SessionRecord, Store, StoreError};

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
    let (mut store, now) = open(state_dir)?;
    let expires_at = expires_at.unwrap_or(now + 4 * 3600);
    let duration = Duration::from_secs(expires_at.saturating_sub(now).max(1) as u64);
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
                    state: State::Active,
                    expires_at: Some(expires_at),
                    ..grant(
                        uid,
                        format!("bench{i}"),
                        resource,
                        duration,
                        now,
                        Route::Auto,
                    )
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

/// The store in `state_dir` (made if needed) and the wall clock now.
fn open(state_dir: &Path) -> Result<(Store, i64), StoreError> {
    std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Key {
        path: state_dir.display().to_string(),
        source,
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok((Store::open(state_dir)?, now))
}

/// A grant request as jitd makes one (no risk factors, no decisions yet).
fn grant(
    uid: u32,
    user: String,
    resource: &str,
    duration: Duration,
    at: i64,
    route: Route,
) -> Request {
    Request {
        id: 0,
        kind: Kind::Grant,
        uid,
        user,
        resource: resource.to_owned(),
        duration,
        reason: "seeded by jit-bench".into(),
        ticket: None,
        requested_at: at,
        starts_at: None,
        route,
        risk: RiskAssessment {
            score: 0,
            factors: Vec::new(),
        },
        state: State::Pending,
        decisions: Vec::new(),
        expires_at: None,
        activate_by: None,
        ended_at: None,
        ended_by: None,
        follow_up: None,
        policy: None,
    }
}

/// Resources the history's requests are for.
const RESOURCES: [&str; 8] = ["sudo", "db", "logs", "web", "backup", "dns", "mail", "ci"];

/// A month of use written through jitd's store, as jitd writes it: requests
/// on every route (auto half of them, owner, dual, break-glass, vendor),
/// their decisions, `granted`, sessions (0 to 4 each, with their rows) and
/// ends, and break-glass cases, until `audit` rows are written. For the
/// reports' benchmark: what `jitctl report` reads is all there.
pub fn history(state_dir: &Path, audit: u64, batch: u64) -> Result<serde_json::Value, StoreError> {
    let started = Instant::now();
    let (mut store, now) = open(state_dir)?;
    let month: i64 = 30 * 86400;
    // About 8.6 audit rows a request: spread them over the month.
    let expected = (audit / 8).max(1) as i64;
    let (mut rows, mut requests, mut sessions) = (0u64, 0u64, 0u64);
    while rows < audit {
        store.write(|w| -> Result<(), StoreError> {
            for _ in 0..batch.max(1) / 10 {
                if rows >= audit {
                    break;
                }
                let i = requests;
                requests += 1;
                let at = now - month + (i as i64 * month / expected).min(month - 3600);
                let mut audit_row = |w: &mut jitd::store::Writer<'_>,
                                     at: i64,
                                     event: &str,
                                     request: u64,
                                     detail: serde_json::Value|
                 -> Result<(), StoreError> {
                    rows += 1;
                    w.audit(&AuditEvent {
                        at,
                        actor_uid: None,
                        actor: "jitd",
                        event,
                        request: Some(request),
                        detail,
                    })
                };
                let route = match i % 100 {
                    0..=49 => Route::Auto,
                    50..=79 => Route::Owner,
                    80..=93 => Route::Dual,
                    94..=96 => Route::BreakGlass,
                    _ => Route::Vendor,
                };
                let resource = RESOURCES[(i % 8) as usize];
                let uid = 2_000_000 + (i % 500) as u32;
                let duration = Duration::from_secs(1800 * (1 + i % 8));
                let wait: i64 = match route {
                    Route::Auto | Route::BreakGlass | Route::Policy => (i % 3) as i64,
                    Route::Owner => 60 + (i % 240) as i64 * 60,
                    Route::Dual => 600 + (i % 360) as i64 * 60,
                    Route::Vendor => 3600 + (i % 48) as i64 * 1800,
                };
                // One owner request in fifty is denied.
                let denied = i % 100 == 51;
                let user = format!("user{}", i % 500);
                let req = grant(uid, user, resource, duration, at, route);
                let id = w.insert_request(&req)?;
                let event = if route == Route::BreakGlass {
                    "break_glass"
                } else {
                    "requested"
                };
                audit_row(
                    w,
                    at,
                    event,
                    id,
                    json!({"resource": resource, "seeded": true}),
                )?;
                audit_row(
                    w,
                    at,
                    "scored",
                    id,
                    json!({"score": 0, "route": route.as_str()}),
                )?;
                let decided = at + wait;
                for role in route.required_roles() {
                    let d = Decision {
                        uid: 3_000_000 + role.as_str().len() as u32,
                        name: format!("{}-approver", role.as_str()),
                        role: *role,
                        verdict: if denied {
                            Verdict::Deny
                        } else {
                            Verdict::Approve
                        },
                        comment: String::new(),
                        at: decided,
                    };
                    w.add_decision(id, &d)?;
                    let event = if denied { "denied" } else { "approved" };
                    audit_row(w, decided, event, id, json!({"role": role.as_str()}))?;
                }
                if denied {
                    w.set_state(id, State::Denied, None, Some((decided, "owner-approver")))?;
                    continue;
                }
                let expires_at = decided + duration.as_secs() as i64;
                let revoked = i % 7 == 0;
                let ended = if revoked {
                    decided + duration.as_secs() as i64 / 3
                } else {
                    expires_at
                };
                let state = if ended > now {
                    State::Active
                } else if revoked {
                    State::Revoked
                } else {
                    State::Expired
                };
                let end = (state != State::Active).then_some((ended, "jitd"));
                w.set_state(id, state, Some(expires_at), end)?;
                audit_row(w, decided, "granted", id, json!({"expires_at": expires_at}))?;
                if route == Route::BreakGlass {
                    w.insert_case(id, uid, decided + 86400)?;
                    if i % 2 == 0 {
                        w.set_justification(id, "seeded emergency", decided + 3600)?;
                    }
                }
                for k in 0..i % 5 {
                    sessions += 1;
                    let opened = decided + 60 + k as i64 * 300;
                    let closed = opened + 120 + (i % 11) as i64 * 60;
                    w.insert_session(&SessionRecord {
                        id: sessions,
                        grant: id,
                        uid,
                        service: "sudo".into(),
                        tty: "/dev/pts/1".into(),
                        rhost: String::new(),
                        pid: 1000 + k as u32,
                        started: None,
                        cgroup: None,
                        opened_at: opened,
                        closed_at: None,
                    })?;
                    audit_row(
                        w,
                        opened,
                        "session_opened",
                        id,
                        json!({"session": sessions}),
                    )?;
                    if closed < now {
                        w.close_session(sessions, closed.min(ended))?;
                        audit_row(
                            w,
                            closed,
                            "session_closed",
                            id,
                            json!({"session": sessions}),
                        )?;
                    }
                }
                if let Some((at, _)) = end {
                    let event = if revoked { "revoked" } else { "expired" };
                    audit_row(w, at, event, id, json!({}))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(json!({
        "history": true,
        "audit_rows": rows,
        "requests": requests,
        "sessions": sessions,
        "secs": started.elapsed().as_secs_f64(),
    }))
}
