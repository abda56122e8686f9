//! Time: whatever is due ends, lapses or is warned about, in one
//! transaction per tick; a wall clock that was set is audited and brings
//! deadlines forward.

use serde_json::json;

use super::transitions::{end_vendors, lapse_all};
use super::{Engine, Event, Result, JITD};
use crate::core::model::{Request, RequestId, State, UnixTime};
use crate::deadlines::Due;
use crate::store::AuditEvent;

impl Engine {
    /// Ends everything whose deadline has passed, in one transaction.
    pub fn tick(&mut self) -> Result<Vec<Event>> {
        let owed: Vec<RequestId> = self
            .justifications
            .take_due(self.clock.boot())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !owed.is_empty() {
            self.escalate_overdue(&owed)?;
        }
        let mut events = self.tick_vendors()?;
        let unused: Vec<RequestId> = self
            .unused
            .take_due(self.clock.boot())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !unused.is_empty() {
            events.extend(self.revoke_unused(&unused)?);
        }
        let due = self.deadlines.take_due(self.clock.boot());
        if due.is_empty() {
            return Ok(events);
        }
        let now = self.clock.wall();
        let mut ended = Vec::new();
        let mut warned = Vec::new();
        let mut starting = Vec::new();
        let mut reschedule = Vec::new();
        for (id, kind) in due {
            let Some(req) = self.store.request(id)? else {
                continue;
            };
            match (kind, req.state) {
                (Due::Expire, State::Active) => {
                    let extensions = self.store.pending_extensions(id)?;
                    ended.push((req, State::Expired, extensions));
                }
                (Due::Lapse, State::Pending | State::Approved) => {
                    ended.push((req, State::Lapsed, Vec::new()))
                }
                (Due::Warn, State::Active) => {
                    let expires_at = req.expires_at.unwrap_or(now);
                    events.push(Event::Expiring { id, expires_at });
                    warned.push((id, expires_at));
                    let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
                    self.deadlines
                        .schedule(id, Due::Expire, expires_at, precise, boot);
                }
                (Due::Start, State::Scheduled) => starting.push(req),
                _ => reschedule.push(req),
            }
        }
        for req in reschedule {
            self.track(&req.head());
        }
        events.extend(self.end_and_warn(ended, warned, now)?);
        // After the ends: a grant that ends now no longer holds up a start.
        events.extend(self.start_due(starting)?);
        Ok(events)
    }

    /// Ends and warns in one transaction.
    fn end_and_warn(
        &mut self,
        ended: Vec<(Request, State, Vec<RequestId>)>,
        warned: Vec<(RequestId, UnixTime)>,
        now: UnixTime,
    ) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        if ended.is_empty() && warned.is_empty() {
            return Ok(events);
        }
        let ending: Vec<RequestId> = ended.iter().map(|(req, _, _)| req.id).collect();
        let vendors_ended = self.vendors_ended_by(&ending)?;
        self.store.write(|w| -> Result<()> {
            for (id, expires_at) in &warned {
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "expiry_warning",
                    request: Some(*id),
                    detail: json!({"expires_at": expires_at}),
                })?;
            }
            for (req, state, extensions) in &ended {
                w.set_state(req.id, *state, req.expires_at, Some((now, JITD)))?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: state.as_str(),
                    request: Some(req.id),
                    detail: json!({
                        "expires_at": req.expires_at,
                        "requested_at": req.requested_at,
                        "why": lapse_reason(req.state),
                    }),
                })?;
                lapse_all(w, extensions, now, "grant expired")?;
            }
            end_vendors(w, &vendors_ended, State::Expired, now, JITD)
        })?;
        for (req, state, extensions) in &ended {
            events.extend(self.after_end(req, *state, extensions));
        }
        events.extend(self.after_vendors_ended(&vendors_ended)?);
        Ok(events)
    }

    /// The wall clock was set: audit it and bring deadlines forward if needed.
    pub fn clock_changed(&mut self) -> Result<Vec<Event>> {
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let now = precise.as_secs() as UnixTime;
        self.store.write(|w| -> Result<()> {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: None,
                actor: JITD,
                event: "clock_changed",
                request: None,
                detail: json!({"wall": now, "boot_secs": boot.as_secs()}),
            })?;
            Ok(())
        })?;
        self.deadlines.rebase(precise, boot);
        self.justifications.rebase(precise, boot);
        self.unused.rebase(precise, boot);
        self.tick()
    }
}

/// Why a request lapsed, for its audit event and its requester.
fn lapse_reason(was: State) -> Option<&'static str> {
    match was {
        State::Pending => Some("nobody decided in time"),
        State::Approved => Some("not activated in time"),
        _ => None,
    }
}
