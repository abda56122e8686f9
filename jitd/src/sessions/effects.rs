//! What follows a committed state change: signals on the bus; when a
//! grant ends, the termination of its sessions (W1.7); when one starts or
//! ends, its managed account's checkout or check-in (W3).

use std::sync::{Arc, Mutex};
use zbus::Connection;

use super::SessionControl;
use crate::accounts::Keeper;
use crate::bus::emit;
use crate::engine::{Engine, Event};
use crate::recordings::{self, Recorders};
use crate::store::RecordingRecord;

#[derive(Clone)]
pub struct Effects {
    engine: Arc<Mutex<Engine>>,
    control: SessionControl,
    recorders: Recorders,
    keeper: Keeper,
}

impl Effects {
    pub fn new(engine: Arc<Mutex<Engine>>, control: SessionControl, keeper: Keeper) -> Effects {
        Effects {
            engine,
            control,
            recorders: Recorders::default(),
            keeper,
        }
    }

    /// Managed accounts' custody (checkout passwords a holder may see).
    pub fn keeper(&self) -> &Keeper {
        &self.keeper
    }

    /// The recordings jitd writes (closed here when their grant ends).
    pub fn recorders(&self) -> &Recorders {
        &self.recorders
    }

    /// Broadcasts the events, then terminates ended grants' sessions (in the
    /// background: the grace period must not hold up the caller). Signals go
    /// first so that a session's recorder hears why it is ending. Before
    /// both, a grant of a managed account's resource that started or ended
    /// wakes the custody keeper: a check-in's rotation waits neither for the
    /// sessions to end nor for the bus, since a password must not outlive
    /// its grant by the grace period.
    pub async fn apply(&self, conn: &Connection, events: &[Event]) {
        let accounts_change = events.iter().any(|e| match e {
            Event::Activated { resource, .. } | Event::Ended { resource, .. } => {
                self.keeper.manages(resource)
            }
            Event::VendorChanged { .. } => true,
            _ => false,
        });
        if accounts_change {
            self.keeper.wake();
        }
        emit(conn, events).await;
        self.terminate_ended(events);
    }

    /// Starts terminating the sessions of every grant that ended in `events`.
    pub fn terminate_ended(&self, events: &[Event]) {
        for event in events {
            let Event::Ended { id, user, .. } = event else {
                continue;
            };
            let (engine, control, recorders, grant, user) = (
                Arc::clone(&self.engine),
                self.control.clone(),
                self.recorders.clone(),
                *id,
                user.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let sessions = engine
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .sessions_of(grant);
                match sessions {
                    Ok(sessions) => control.terminate(grant, &sessions, Some(&user)),
                    Err(e) => {
                        tracing::error!(grant, error = %e, "cannot list the sessions to terminate")
                    }
                }
                // The sessions and their recorders are gone (terminate waits
                // for them): a recording still open ends here, as
                // "terminated", with the digest of what jitd received.
                recorders.stop(grant);
            });
        }
    }

    /// Seals, in the background, recordings whose writer (the jitd before
    /// this one) is gone.
    pub fn seal(&self, orphaned: Vec<RecordingRecord>) {
        if orphaned.is_empty() {
            return;
        }
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || recordings::seal(&engine, &orphaned));
    }
}
