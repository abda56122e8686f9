//! Time sources. The wall clock can be set; CLOCK_BOOTTIME keeps counting
//! through suspend, unlike `Instant` (CLOCK_MONOTONIC), so grants are timed
//! against both (threat T14).

use nix::time::{clock_gettime, ClockId};
use std::time::Duration;

use crate::core::model::UnixTime;

pub trait Clock: Send + Sync {
    /// Wall-clock time since the Unix epoch.
    fn wall_precise(&self) -> Duration;
    /// Wall-clock seconds since the Unix epoch.
    fn wall(&self) -> UnixTime {
        self.wall_precise().as_secs() as UnixTime
    }
    /// Time since boot, including suspend.
    fn boot(&self) -> Duration;
}

pub struct SystemClock;

// The one place jitd reads the clocks (jitd/clippy.toml).
#[allow(clippy::disallowed_methods)]
impl Clock for SystemClock {
    fn wall_precise(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn boot(&self) -> Duration {
        clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map(Duration::from)
            .unwrap_or_default()
    }
}

/// Local weekday (0 = Sunday) and minute of day, for business hours.
pub fn local_weekday_minute(at: UnixTime) -> (u8, u16) {
    let t = at as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; a zeroed tm is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return (1, 12 * 60);
    }
    (tm.tm_wday as u8, (tm.tm_hour * 60 + tm.tm_min) as u16)
}
