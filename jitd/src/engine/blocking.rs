//! Engine calls from async code: SQLite must not stall the executor.

use std::sync::{Arc, Mutex};

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
