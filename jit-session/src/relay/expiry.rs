//! The grant's expiry in the session: jitd's lifecycle signals and the
//! backup timer, turned by [`Expiry`](crate::session::Expiry) into banners,
//! markers and the end.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::State;
use crate::session::Action;

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl<W> State<'_, W> {
    pub(super) fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Banner(text) => self.say(&text),
                Action::Marker(label) => self.record(|r| r.marker(Instant::now(), &label)),
                Action::Terminate { end, message } => {
                    self.say(&message);
                    self.begin_terminate(end);
                }
            }
        }
    }

    /// The backup timer, in case jitd's signal is missed.
    pub(super) fn on_expiry_tick(&mut self) {
        if let Some(exp) = self.r.expiry.as_mut() {
            let actions = exp.on_tick(now_unix());
            self.act(actions);
        }
    }

    pub(super) fn on_jitd_events(&mut self) {
        let signals = self.r.events.take();
        let now = now_unix();
        for s in signals {
            if let Some(exp) = self.r.expiry.as_mut() {
                let actions = exp.on_signal(&s, now);
                self.act(actions);
            }
        }
    }
}
