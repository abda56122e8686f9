//! Engine calls from async code: SQLite must not stall the executor.

use std::sync::{Arc, Mutex, TryLockError};

use tokio::task::JoinError;

use super::{Engine, Result};

/// Runs `op` against `engine` on tokio's blocking pool: SQLite must not
/// stall the executor.
pub async fn run_blocking<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    op: impl FnOnce(&mut Engine) -> Result<T> + Send + 'static,
) -> std::result::Result<Result<T>, JoinError> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || op(&mut engine.lock().unwrap_or_else(|e| e.into_inner())))
        .await
}

/// Runs `op` at once on this thread if nobody holds `engine`, else as
/// [`run_blocking`]. For the short engine calls around each sudo: a hop to
/// the blocking pool and back costs two thread wake-ups (~0.1 ms measured
/// here) on a path where sudo waits or is about to; other callers on this
/// runtime wait at most as long as `op` (~0.2 ms for a registration).
pub async fn run_soon<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    op: impl FnOnce(&mut Engine) -> Result<T> + Send + 'static,
) -> std::result::Result<Result<T>, JoinError> {
    // The guard must not live across the await below.
    let op = match engine.try_lock() {
        Ok(mut held) => return Ok(op(&mut held)),
        Err(TryLockError::Poisoned(e)) => return Ok(op(&mut e.into_inner())),
        Err(TryLockError::WouldBlock) => op,
    };
    run_blocking(engine, op).await
}
