//! Unused grants (docs/design.md "Unused grants", T40): a grant of a resource
//! with `revoke_unused_after` that no session used within that long of its
//! start is revoked, and its holder told why; and the query behind
//! `jitctl report unused` and the granted against used duration.

use serde_json::json;

use super::transitions::lapse_all;
use super::{Engine, Event, Result, JITD};
use crate::core::model::{Request, RequestId, State, UnixTime};
use crate::core::workflow;
use crate::deadlines::Due;
use crate::directory::Person;
use crate::store::{AuditEvent, GrantUsage};

impl Engine {
    /// `resource`'s `revoke_unused_after`, if it has one (now: a grant of a
    /// resource that lost the option since is left alone).
    fn unused_after(&self, resource: &str) -> Option<std::time::Duration> {
        self.config
            .resource(resource)
            .and_then(|r| r.revoke_unused_after)
    }

    /// Schedules `req`'s revocation for `revoke_unused_after` after it
    /// became active (`activated_at`), if its resource has that option.
    pub(super) fn schedule_unused(&mut self, req: &Request, activated_at: UnixTime) {
        let Some(after) = self.unused_after(&req.resource) else {
            return;
        };
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let due = activated_at + workflow::secs(after);
        self.unused
            .schedule(req.id, Due::Unused, due, precise, boot);
    }

    /// At start (and after a failed tick): every active grant of such a
    /// resource without a session, from when its `granted` event says it
    /// became active. A deadline passed while jitd was down is due at once.
    pub(super) fn track_unused(&mut self) -> Result<()> {
        if !self
            .config
            .resources
            .iter()
            .any(|r| r.revoke_unused_after.is_some())
        {
            return Ok(());
        }
        for head in self.store.open_heads()? {
            let watched = self.unused_after(&head.resource).is_some();
            if !watched || head.state != State::Active || self.store.was_used(head.id)? {
                continue;
            }
            let Some(req) = self.store.request(head.id)? else {
                continue;
            };
            let activated_at = match self.store.activated_at(req.id)? {
                Some(at) => at,
                // No `granted` event (it cannot be): as if active for its
                // whole duration so far.
                None => req.expires_at.unwrap_or(req.requested_at) - workflow::secs(req.duration),
            };
            self.schedule_unused(&req, activated_at);
        }
        Ok(())
    }

    /// Revokes the grants of `due` that are still active and unused, in
    /// one transaction: `revoked`, by jitd, `reason` "unused". A session
    /// admitted before the decision wins (see [`crate::admissions::Admissions::unused_then`]).
    pub(super) fn revoke_unused(&mut self, due: &[RequestId]) -> Result<Vec<Event>> {
        // Admitted sessions are rows before anything is judged unused.
        self.write_admitted()?;
        let mut revoking = Vec::new();
        for &id in due {
            let Some(req) = self.store.request(id)? else {
                continue;
            };
            let Some(after) = self.unused_after(&req.resource) else {
                continue;
            };
            if req.state != State::Active || self.store.was_used(id)? {
                continue;
            }
            let grants = &self.grants;
            let closed = self.admissions.unused_then(id, || {
                grants.write().unwrap_or_else(|e| e.into_inner()).remove(
                    req.uid,
                    &req.resource,
                    id,
                );
            });
            if closed {
                let extensions = self.store.pending_extensions(id)?;
                revoking.push((req, after, extensions));
            }
        }
        if revoking.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            for (req, after, extensions) in &revoking {
                w.set_state(req.id, State::Revoked, req.expires_at, Some((now, JITD)))?;
                let after_text = humantime::format_duration(*after).to_string();
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "revoked",
                    request: Some(req.id),
                    detail: json!({
                        "comment": format!("no session within {after_text} of its start"),
                        "reason": "unused",
                        "unused_after_secs": after.as_secs(),
                    }),
                })?;
                lapse_all(w, extensions, now, "grant revoked")?;
            }
            Ok(())
        })?;
        let mut events = Vec::new();
        for (req, _, extensions) in &revoking {
            tracing::info!(grant = req.id, user = %req.user, resource = %req.resource,
                "revoked a grant nobody used");
            events.extend(self.after_end(req, State::Revoked, extensions));
        }
        Ok(events)
    }

    /// Grants active at some time within [`since`, now], with their use
    /// (sessions, first session, how long used); `unused_only`: those
    /// without a session. For those who see everything (root, security,
    /// auditors): the rows of `jitctl report unused` and of the granted
    /// against used duration.
    pub fn grant_usage(
        &mut self,
        who: &Person,
        since: UnixTime,
        unused_only: bool,
    ) -> Result<Vec<GrantUsage>> {
        self.require_sees_all(who)?;
        self.write_admitted()?;
        Ok(self
            .store
            .grant_usage(since, self.clock.wall(), unused_only)?)
    }
}
