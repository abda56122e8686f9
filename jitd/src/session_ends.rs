//! A PAM session ends when the process that opened it exits: sudo once its
//! command is done, sshd's session process at logout. jitd holds that
//! process by a pidfd and records the end itself, so sudo and sshd wait for
//! nothing at close, and a session whose close never comes (the process was
//! killed, or ended with the grant) is recorded as ended all the same.

use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::engine::{run_if_free, Engine, EngineError};
use crate::pidfd::Process;
use crate::store::SessionRecord;

#[derive(Clone)]
pub struct SessionEnds {
    engine: Arc<Mutex<Engine>>,
}

impl SessionEnds {
    pub fn new(engine: Arc<Mutex<Engine>>) -> SessionEnds {
        SessionEnds { engine }
    }

    /// Records session `id`'s end when `process` exits. The watch runs on
    /// the caller's runtime (for the private socket, its own thread's): no
    /// other thread is woken while sudo waits for its session.
    pub fn watch(&self, id: u64, process: Process) {
        let engine = Arc::clone(&self.engine);
        tokio::spawn(async move {
            let pid = process.pid;
            let exited = async {
                // SAFETY: the Pidfd owns its descriptor for as long as the
                // AsyncFd owns the Pidfd, and as_raw_fd always returns it.
                let fd = unsafe { AsyncFd::register_with_interest(process.fd, Interest::READABLE) }
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                fd.readable().await.map(|_| ())
            };
            if let Err(e) = exited.await {
                // Not watchable: record the end now rather than never.
                tracing::warn!(session = id, pid, error = %e, "cannot watch a session's process");
            }
            close(&engine, vec![id]).await;
        });
    }

    /// At start: watches the sessions the previous jitd left open, and
    /// records the end of those whose process is gone (or is another
    /// process with a reused pid).
    pub async fn resume(&self) {
        let open = match with_engine(&self.engine, |e| e.open_sessions()).await {
            Ok(open) => open,
            Err(e) => return tracing::error!(error = %e, "cannot list open sessions"),
        };
        let (mut watched, mut ended) = (0, Vec::new());
        for SessionRecord {
            id, pid, started, ..
        } in open
        {
            match started.and_then(|started| Process::find(pid, started)) {
                Some(process) => {
                    self.watch(id, process);
                    watched += 1;
                }
                None => ended.push(id),
            }
        }
        if watched + ended.len() > 0 {
            tracing::info!(
                watched,
                ended = ended.len(),
                "sessions left open by the previous jitd"
            );
        }
        // One transaction however many: after an upgrade, every session
        // an earlier version never closed is among them.
        close(&self.engine, ended).await;
    }
}

async fn close(engine: &Arc<Mutex<Engine>>, ids: Vec<u64>) {
    if ids.is_empty() {
        return;
    }
    // On this thread if the engine is free: sudo has just exited, and the
    // next one may be starting on the other CPU.
    let op = move |e: &mut Engine| e.close_sessions(&ids);
    let closed = match run_if_free(engine, op) {
        Ok(closed) => closed.map_err(|e| e.to_string()),
        Err(op) => with_engine(engine, op).await,
    };
    if let Err(e) = closed {
        tracing::error!(error = %e, "cannot record the end of sessions");
    }
}

/// Runs `op` against the engine off the executor (SQLite must not stall it).
async fn with_engine<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, String> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || {
        op(&mut engine.lock().unwrap_or_else(|e| e.into_inner())).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
