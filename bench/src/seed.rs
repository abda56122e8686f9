//! Seeding a state directory through jitd's own store, so the database has
//! the real schema and the audit HMAC chain verifies.

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jitd::core::model::{Decision, Kind, Request, Route, State, Verdict};
use jitd::core::risk::RiskAssessment;
use jitd::core::standing::{Finding, Kind as ScanKind, Report as ScanReport};
use jitd::store::{AuditEvent, SessionRecord, Store, StoreError, Writer};

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
        ticket_check: None,
        follow_up: None,
        policy: None,
    }
}

/// Resources the history's requests are for.
const RESOURCES: [&str; 8] = ["sudo", "db", "logs", "web", "backup", "dns", "mail", "ci"];
/// The history's users: `user0` .. `user499`, uids from [`USER_UID`].
const USERS: u64 = 500;
const USER_UID: u32 = 2_000_000;
/// Resources whose grants jitd revokes when no session used them within
/// [`UNUSED_AFTER`] of their start (`revoke_unused_after`).
const REVOKE_UNUSED: [&str; 2] = ["db", "backup"];
const UNUSED_AFTER: i64 = 900;
/// `[denials]` as shipped: a key's repeats within `window` are one record,
/// the `alert_after`-th denial of a user within it tells security, and
/// `max_tracked` keys are counted apart.
const DENIAL_WINDOW: i64 = 600;
const ALERT_AFTER: u64 = 10;
const MAX_TRACKED: u64 = 1024;

/// The audit trail being written, and what it holds so far.
#[derive(Default)]
struct History {
    rows: u64,
    requests: u64,
    sessions: u64,
    /// Grants never used (no session), and of them those jitd revoked.
    unused: u64,
    revoked_unused: u64,
    /// `access_denied*` rows, the denials they count, the alerts among them.
    denial_rows: u64,
    denials: u64,
    alerts: u64,
    scans: u64,
}

impl History {
    fn audit(&mut self, w: &mut Writer<'_>, event: &AuditEvent<'_>) -> Result<(), StoreError> {
        self.rows += 1;
        w.audit(event)
    }

    /// An event of request `request`, by jitd.
    fn of_request(
        &mut self,
        w: &mut Writer<'_>,
        at: i64,
        event: &str,
        request: u64,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.audit(
            w,
            &AuditEvent {
                at,
                actor_uid: None,
                actor: "jitd",
                event,
                request: Some(request),
                detail,
            },
        )
    }
}

/// A month of use written through jitd's store, as jitd writes it: requests
/// on every route (auto half of them, owner, dual, break-glass, vendor),
/// their decisions, `granted`, sessions (0 to 4 each, with their rows) and
/// ends (grants nobody used revoked for it where the resource says so),
/// break-glass cases, users denied before they asked, a flood of denials
/// once a week and a standing-privilege scan every hour, until `audit` rows
/// are written. For the reports' benchmark: what `jitctl report` reads is
/// all there.
pub fn history(state_dir: &Path, audit: u64, batch: u64) -> Result<serde_json::Value, StoreError> {
    let started = Instant::now();
    let (mut store, now) = open(state_dir)?;
    let month: i64 = 30 * 86400;
    let start = now - month;
    let mut h = History::default();
    let (mut next_scan, mut next_flood) = (start, start + 3 * 86400);
    while h.rows < audit {
        store.write(|w| -> Result<(), StoreError> {
            for _ in 0..batch.max(1) / 10 {
                if h.rows >= audit {
                    break;
                }
                // Time moves with the rows written: the last request comes
                // in the month's last hour.
                let at = start + (h.rows as i64 * month / audit as i64).min(month - 3600);
                while next_scan <= at {
                    scan(w, &mut h, next_scan, (next_scan - start) / 3600)?;
                    next_scan += 3600;
                }
                if next_flood <= at {
                    flood(w, &mut h, next_flood)?;
                    next_flood += 7 * 86400;
                }
                let i = h.requests;
                request(w, &mut h, at, now)?;
                if i % 8 == 3 {
                    denials(w, &mut h, i / 8, at)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(json!({
        "history": true,
        "audit_rows": h.rows,
        "requests": h.requests,
        "sessions": h.sessions,
        "unused": h.unused,
        "revoked_unused": h.revoked_unused,
        "denial_rows": h.denial_rows,
        "denials": h.denials,
        "alerts": h.alerts,
        "scans": h.scans,
        "secs": started.elapsed().as_secs_f64(),
    }))
}

/// The history's next request, made at `at`, and what follows it.
fn request(w: &mut Writer<'_>, h: &mut History, at: i64, now: i64) -> Result<(), StoreError> {
    let i = h.requests;
    h.requests += 1;
    let route = match i % 100 {
        0..=49 => Route::Auto,
        50..=79 => Route::Owner,
        80..=93 => Route::Dual,
        94..=96 => Route::BreakGlass,
        _ => Route::Vendor,
    };
    let resource = RESOURCES[(i % 8) as usize];
    let uid = USER_UID + (i % USERS) as u32;
    let duration = Duration::from_secs(1800 * (1 + i % 8));
    let wait: i64 = match route {
        Route::Auto | Route::BreakGlass | Route::Policy => (i % 3) as i64,
        Route::Owner => 60 + (i % 240) as i64 * 60,
        Route::Dual => 600 + (i % 360) as i64 * 60,
        Route::Vendor => 3600 + (i % 48) as i64 * 1800,
    };
    // One owner request in fifty is denied.
    let denied = i % 100 == 51;
    let user = format!("user{}", i % USERS);
    let req = grant(uid, user, resource, duration, at, route);
    let id = w.insert_request(&req)?;
    let event = if route == Route::BreakGlass {
        "break_glass"
    } else {
        "requested"
    };
    h.of_request(
        w,
        at,
        event,
        id,
        json!({"resource": resource, "seeded": true}),
    )?;
    h.of_request(
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
        h.of_request(w, decided, event, id, json!({"role": role.as_str()}))?;
    }
    if denied {
        w.set_state(id, State::Denied, None, Some((decided, "owner-approver")))?;
        return Ok(());
    }
    let expires_at = decided + duration.as_secs() as i64;
    // One grant in five has no session; where its resource says so, jitd
    // revokes it for that. One in seven is revoked early by someone.
    let sessions = i % 5;
    let unused_revoked = sessions == 0 && REVOKE_UNUSED.contains(&resource);
    let revoked = unused_revoked || i.is_multiple_of(7);
    let ended = if unused_revoked {
        decided + UNUSED_AFTER
    } else if revoked {
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
    h.of_request(w, decided, "granted", id, json!({"expires_at": expires_at}))?;
    if route == Route::BreakGlass {
        w.insert_case(id, uid, decided + 86400)?;
        if i.is_multiple_of(2) {
            w.set_justification(id, "seeded emergency", decided + 3600)?;
        }
    }
    if sessions == 0 {
        h.unused += 1;
        h.revoked_unused += u64::from(unused_revoked && state == State::Revoked);
    }
    for k in 0..sessions {
        h.sessions += 1;
        let session = h.sessions;
        let opened = decided + 60 + k as i64 * 300;
        let closed = opened + 120 + (i % 11) as i64 * 60;
        w.insert_session(&SessionRecord {
            id: session,
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
        h.of_request(w, opened, "session_opened", id, json!({"session": session}))?;
        if closed < now {
            w.close_session(session, closed.min(ended))?;
            h.of_request(w, closed, "session_closed", id, json!({"session": session}))?;
        }
    }
    if let Some((at, _)) = end {
        let (event, detail) = match (revoked, unused_revoked) {
            (true, true) => (
                "revoked",
                json!({
                    "comment": format!("no session within {}m of its start", UNUSED_AFTER / 60),
                    "reason": "unused",
                    "unused_after_secs": UNUSED_AFTER,
                }),
            ),
            (true, false) => ("revoked", json!({})),
            _ => ("expired", json!({})),
        };
        h.of_request(w, at, event, id, detail)?;
    }
    Ok(())
}

/// Whose denials a record counts: a key's (user, uid, resource, service),
/// or none for the overflow.
type DeniedKey<'a> = Option<(&'a str, u32, &'a str, &'a str)>;

/// One `access_denied` (or, without a key, `access_denied_overflow`)
/// record, as jitd writes it: at its last denial, with the tty and remote
/// host of that one.
fn denied_record(
    w: &mut Writer<'_>,
    h: &mut History,
    key: DeniedKey<'_>,
    (tty, rhost): (&str, &str),
    count: u64,
    (first, last): (i64, i64),
    repeats: bool,
) -> Result<(), StoreError> {
    let mut detail = json!({
        "tty": tty, "rhost": rhost, "count": count, "first": first, "last": last, "repeats": repeats,
    });
    let (actor_uid, actor, event) = match key {
        Some((user, uid, resource, service)) => {
            detail["user"] = json!(user);
            detail["uid"] = json!(uid);
            detail["resource"] = json!(resource);
            detail["service"] = json!(service);
            (Some(uid), user, "access_denied")
        }
        None => {
            detail["max_tracked"] = json!(MAX_TRACKED);
            (None, "jitd", "access_denied_overflow")
        }
    };
    h.denial_rows += 1;
    h.denials += count;
    h.audit(
        w,
        &AuditEvent {
            at: last,
            actor_uid,
            actor,
            event,
            request: None,
            detail,
        },
    )
}

/// Episode `e`: a user denied before the request at `at` (pam_jit's account
/// check without a grant), through sudo, su or sshd. Its first denial is a
/// record of its own; in a third of the episodes 1 to 12 more follow,
/// 30 s apart, one record when the window closes, and the `alert_after`-th
/// of them tells security (`access_denied_repeatedly`).
fn denials(w: &mut Writer<'_>, h: &mut History, e: u64, at: i64) -> Result<(), StoreError> {
    let u = e * 7 % USERS;
    let (user, uid) = (format!("user{u}"), USER_UID + u as u32);
    let resource = RESOURCES[(e % 8) as usize];
    let (service, tty, rhost) = match e % 4 {
        0 => ("sshd", "ssh", format!("10.0.{}.{}", e % 200, 1 + e % 250)),
        1 => ("su", "/dev/pts/2", String::new()),
        _ => ("sudo", "/dev/pts/1", String::new()),
    };
    let key = Some((user.as_str(), uid, resource, service));
    let first = at - DENIAL_WINDOW / 2;
    denied_record(w, h, key, (tty, &rhost), 1, (first, first), false)?;
    let repeats = if e.is_multiple_of(3) {
        1 + (e / 3) % 12
    } else {
        0
    };
    if repeats == 0 {
        return Ok(());
    }
    if 1 + repeats >= ALERT_AFTER {
        let alerted = first + 30 * (ALERT_AFTER as i64 - 1);
        h.alerts += 1;
        h.audit(
            w,
            &AuditEvent {
                at: alerted,
                actor_uid: Some(uid),
                actor: &user,
                event: "access_denied_repeatedly",
                request: None,
                detail: json!({
                    "user": user, "uid": uid, "attempts": ALERT_AFTER, "resources": [resource],
                    "first": first, "last": alerted, "window_secs": DENIAL_WINDOW,
                }),
            },
        )?;
    }
    let last = first + 30 * repeats as i64;
    denied_record(w, h, key, (tty, &rhost), repeats, (first + 30, last), true)
}

/// A flood at `at`: a script trying every account over ssh. The first
/// `max_tracked` keys are denied once each, counted apart; the 4,000
/// denials past them share the overflow window (its first written at once,
/// the rest when it closes).
fn flood(w: &mut Writer<'_>, h: &mut History, at: i64) -> Result<(), StoreError> {
    let from = ("ssh", "203.0.113.7");
    for k in 0..MAX_TRACKED {
        let u = k % USERS;
        let user = format!("user{u}");
        let resource = RESOURCES[(k / USERS % 8) as usize];
        let key = Some((user.as_str(), USER_UID + u as u32, resource, "sshd"));
        let t = at + (k / 16) as i64;
        denied_record(w, h, key, from, 1, (t, t), false)?;
    }
    let t = at + (MAX_TRACKED / 16) as i64;
    denied_record(w, h, None, from, 1, (t, t), false)?;
    denied_record(w, h, None, from, 3_999, (t + 1, t + 300), true)
}

/// Scan `hour` of the month at `at`, stored with its `standing_scanned`
/// event as jitd's hourly timer does: its findings fall from 60 to 41 over
/// the month (standing privileges moved behind the gate).
fn scan(w: &mut Writer<'_>, h: &mut History, at: i64, hour: i64) -> Result<(), StoreError> {
    let total = 60 - (hour * 20 / 720).clamp(0, 19);
    let findings = (0..total)
        .map(|k| Finding {
            kind: match k % 10 {
                0..=5 => ScanKind::Sudoers,
                6 | 7 => ScanKind::AdminGroup,
                8 => ScanKind::RootKey,
                _ => ScanKind::PolkitAdmin,
            },
            principal: format!("user{k}"),
            target: "root".into(),
            how: format!("/etc/sudoers.d/teams:{}", k + 1),
            why: "no pam_jit account check in the service's stack".into(),
        })
        .collect();
    let report = ScanReport {
        findings,
        ..ScanReport::default()
    };
    let stored = w.put_scan(at, "jitd", &report)?;
    h.scans += 1;
    h.audit(
        w,
        &AuditEvent {
            at,
            actor_uid: None,
            actor: "jitd",
            event: "standing_scanned",
            request: None,
            detail: json!({
                "scan": stored.id,
                "total": stored.total,
                "counts": stored.counts,
                "errors": stored.errors,
            }),
        },
    )
}
