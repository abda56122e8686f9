//! Waiting for a condition, with a deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::alive;

/// Polls `f` every 50ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(Duration::from_millis(50), timeout, f)
}

/// Polls `f` every `interval` until it returns `Some` or `timeout` passes.
pub fn poll_every<T>(
    interval: Duration,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Waits until every pid is gone; returns when they went (None: still alive).
pub fn wait_all_dead(pids: &[u32], timeout: Duration) -> Option<Instant> {
    wait_for_fast(timeout, || {
        pids.iter().all(|p| !alive(*p)).then(Instant::now)
    })
}

/// Like [`wait_for`], polling every 10 ms.
pub fn wait_for_fast<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(Duration::from_millis(10), timeout, f)
}

/// Seconds since the epoch, now.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Waits until the wall clock reaches `t` (Unix seconds): a moment jitd
/// named, such as an expiry or a deadline (a minute away at most).
pub fn wait_until_wall(t: f64) {
    let left = t - wall_now();
    assert!(left < 60.0, "{left:.1} s to wait for the wall clock");
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

/// Waits until every pid is gone, at most until `expires_at + 3 s` (wall
/// clock); returns how long after `expires_at` they were gone (None: alive).
pub fn death_after_expiry(pids: &[u32], expires_at: i64) -> Option<f64> {
    let limit = expires_at as f64 + 3.0;
    loop {
        if pids.iter().all(|p| !alive(*p)) {
            return Some(wall_now() - expires_at as f64);
        }
        if wall_now() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
