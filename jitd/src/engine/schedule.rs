//! Scheduled grants at their start (docs/design.md "Scheduled grants"):
//! each starts, waits for what holds it up, or lapses once its window is
//! over, in a transaction of its own, so that the next one's checks see it.

use super::activation::approved_by;
use super::transitions::lapse_all;
use super::{Engine, EngineError, Event, Result};
use crate::core::model::{Request, State, UnixTime};
use crate::core::schedule::{self, AtStart, RECHECK_SECS, WINDOW_OVER};
use crate::deadlines::Due;

impl Engine {
    /// Scheduled grants whose start is due.
    pub(super) fn start_due(&mut self, due: Vec<Request>) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for req in due {
            let Some(window) = req.window() else {
                continue;
            };
            let now = self.clock.wall();
            match schedule::at_start(window, now, self.held_up_until(&req, now)?) {
                AtStart::Open => {
                    let start = self.start_of(&req, now)?;
                    self.store.write(|w| -> Result<()> {
                        start.write(w, req.id, &req, now, &approved_by(&req))
                    })?;
                    let started = self.load(req.id)?;
                    events.extend(self.after_start(&started));
                }
                AtStart::Wait(at) => {
                    let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
                    self.deadlines
                        .schedule(req.id, Due::Start, at, precise, boot);
                }
                AtStart::Close => {
                    self.store
                        .write(|w| lapse_all(w, &[req.id], now, WINDOW_OVER))?;
                    events.extend(self.after_end(&req, State::Lapsed, &[]));
                }
            }
        }
        Ok(events)
    }

    /// Until when `req` cannot start, if it cannot now: its holder holds
    /// another grant of the resource (until it expires), or the resource's
    /// exclusive account is someone else's (looked at again shortly).
    fn held_up_until(&self, req: &Request, now: UnixTime) -> Result<Option<UnixTime>> {
        if let Some((_, expires_at)) = self.active_grant(req.uid, &req.resource, now) {
            return Ok(Some(expires_at));
        }
        match self.check_exclusive(req.uid, &req.resource) {
            Ok(()) => Ok(None),
            Err(EngineError::CheckedOut { .. } | EngineError::CheckingIn(_)) => {
                Ok(Some(now + RECHECK_SECS))
            }
            Err(e) => Err(e),
        }
    }
}
