//! The grant index and the deadlines, kept in step with the store: rebuilt
//! from it at start, updated after each commit.

use std::time::Duration;

use super::{Engine, Result};
use crate::config::Config;
use crate::core::model::{Kind, RequestHead, RequestId, State, Uid, UnixTime};
use crate::core::{schedule, workflow};
use crate::deadlines::{Deadlines, Due};
use crate::grants::GrantIndex;

impl Engine {
    /// Rebuilds the deadlines and the grant index from the store.
    pub fn reload(&mut self) -> Result<()> {
        self.deadlines = Deadlines::default();
        self.justifications = Deadlines::default();
        self.unused = Deadlines::default();
        self.vendor_deadlines = Deadlines::default();
        *self.grants.write().unwrap_or_else(|e| e.into_inner()) = empty_index(&self.config);
        self.load_checkouts()?;
        for head in self.store.open_heads()? {
            self.track(&head);
        }
        self.track_vendors()?;
        self.track_unused()?;
        self.track_justifications()
    }

    /// Boot-clock time of the next deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.deadlines.next(),
            self.justifications.next(),
            self.unused.next(),
            self.vendor_deadlines.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// `uid`'s active grant for `resource`, if any.
    pub(super) fn active_grant(
        &self,
        uid: Uid,
        resource: &str,
        now: UnixTime,
    ) -> Option<(RequestId, UnixTime)> {
        self.grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .check(uid, resource, now)
    }

    /// Puts a request into the index and the deadlines as its state says,
    /// replacing whatever was there for it. An active grant's next deadline
    /// is its expiry warning, then its expiry.
    pub(super) fn track(&mut self, req: &RequestHead) {
        self.untrack(req);
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let now = precise.as_secs() as UnixTime;
        match (req.state, req.kind, req.expires_at) {
            (State::Active, Kind::Grant, Some(exp)) => {
                self.grants
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(req.uid, &req.resource, req.id, exp);
                self.hold_as_account(req.id, &req.resource, exp);
                let warn = exp - workflow::secs(self.config.requests.expiry_warning.0);
                if warn > now {
                    self.deadlines
                        .schedule(req.id, Due::Warn, warn, precise, boot);
                } else {
                    self.deadlines
                        .schedule(req.id, Due::Expire, exp, precise, boot);
                }
            }
            // Held like a pending request (the holder's limit, superseded by
            // break-glass) until its holder activates it or it lapses.
            (State::Approved, Kind::Grant, _) => {
                self.grants
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert_pending(req.uid, &req.resource, req.id);
                let lapse = req.activate_by.unwrap_or(now);
                self.deadlines
                    .schedule(req.id, Due::Lapse, lapse, precise, boot);
            }
            (State::Pending, kind, _) => {
                if kind == Kind::Grant {
                    self.grants
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert_pending(req.uid, &req.resource, req.id);
                }
                let ttl = self.config.requests.pending_ttl.0;
                let lapse = schedule::lapse_at(req.requested_at, req.window, ttl);
                self.deadlines
                    .schedule(req.id, Due::Lapse, lapse, precise, boot);
            }
            // Decided: in no index (nothing to admit, nobody to remind)
            // until its start.
            (State::Scheduled, Kind::Grant, _) => {
                let start = req.window.map_or(now, |w| w.start);
                self.deadlines
                    .schedule(req.id, Due::Start, start, precise, boot);
            }
            _ => {}
        }
    }

    pub(super) fn untrack(&mut self, req: &RequestHead) {
        self.deadlines.cancel(req.id);
        if req.kind == Kind::Grant {
            self.grants
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(req.uid, &req.resource, req.id);
            self.release_as_account(req.id, &req.resource);
        }
    }
}

pub(super) fn empty_index(config: &Config) -> GrantIndex {
    GrantIndex::new(config.resources.iter().map(|r| r.name.clone()))
}
