//! Scheduled grants (`--start`, a maintenance window): which starts are
//! accepted, when a scheduled request lapses, when its grant ends, and
//! what its start does. No I/O, no clock: callers pass `now`.
//!
//! A scheduled grant is usable in its window only, from its start for its
//! duration: approved ahead of time it waits (`scheduled`), approved late
//! it is active at once until the window's end, and once the window is over
//! it can no longer start.

use std::time::Duration;

use super::model::{rfc3339, Request, UnixTime, Window};
use super::workflow::{secs, WorkflowError};

/// A start this far in the past is taken as now: the time it took to type
/// and send the request.
pub const START_GRACE_SECS: i64 = 60;

/// Why a scheduled grant lapsed, for its audit event and its holder.
pub const WINDOW_OVER: &str = "its window ended before it could start";

/// A start held up by another grant is tried again at least this often.
pub const RECHECK_SECS: i64 = 60;

/// The start a request may name, as it is kept: not in the past (one up
/// to [`START_GRACE_SECS`] old is now), and at most `within` ahead.
pub fn check_start(
    start: UnixTime,
    now: UnixTime,
    within: Duration,
) -> Result<UnixTime, WorkflowError> {
    if start < now - START_GRACE_SECS {
        return Err(WorkflowError::StartPassed(rfc3339(start)));
    }
    if start - now > secs(within) {
        return Err(WorkflowError::StartTooFar {
            start: rfc3339(start),
            within: humantime::format_duration(within).to_string(),
        });
    }
    Ok(start.max(now))
}

/// When a pending request lapses: `ttl` after it was made; a scheduled one
/// `ttl` after its start (its approvers have until then, and a while into
/// the window), but never after its window's end.
pub fn lapse_at(requested_at: UnixTime, window: Option<Window>, ttl: Duration) -> UnixTime {
    match window {
        None => requested_at + secs(ttl),
        Some(w) => (w.start + secs(ttl)).min(w.end),
    }
}

/// An approval is refused once the request's window is over.
pub fn check_open(req: &Request, now: UnixTime) -> Result<(), WorkflowError> {
    match req.window() {
        Some(w) if now >= w.end => Err(WorkflowError::WindowOver(req.id)),
        _ => Ok(()),
    }
}

/// The start of a grant approved at `now`, when it is still ahead.
pub fn starts_later(window: Option<Window>, now: UnixTime) -> Option<UnixTime> {
    window.map(|w| w.start).filter(|start| *start > now)
}

/// When a grant that becomes active at `now` ends: a scheduled one at its
/// window's end however late it started (the window is what was approved);
/// any other its full duration from now.
pub fn expiry_from(req: &Request, now: UnixTime) -> UnixTime {
    match req.window() {
        Some(w) => w.end,
        None => now + secs(req.duration),
    }
}

/// What a scheduled grant does when its start is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtStart {
    /// It starts now.
    Open,
    /// Not yet: look again then.
    Wait(UnixTime),
    /// Its window ended before it could start: it lapses.
    Close,
}

/// A scheduled grant's start, due at `now` on the boot clock.
/// `blocked_until` is when what holds it up (the holder's other grant of
/// the resource, its exclusive account checked out) ends, if anything
/// does: it then starts late, for what is left of its window.
pub fn at_start(window: Window, now: UnixTime, blocked_until: Option<UnixTime>) -> AtStart {
    if now >= window.end {
        AtStart::Close
    } else if now < window.start {
        // The wall clock was set back since the deadline was set: a start
        // is never before its wall-clock time.
        AtStart::Wait(window.start)
    } else if let Some(until) = blocked_until {
        let next = until.min(now + RECHECK_SECS).min(window.end);
        AtStart::Wait(next.max(now + 1))
    } else {
        AtStart::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const NOW: UnixTime = 1_800_000_000;

    fn window(start: UnixTime, hours: i64) -> Window {
        Window {
            start,
            end: start + hours * HOUR,
        }
    }

    #[test]
    fn a_start_must_be_ahead_and_within_the_limit() {
        let within = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(check_start(NOW + HOUR, NOW, within), Ok(NOW + HOUR));
        // Typed a moment ago: now.
        assert_eq!(check_start(NOW - 30, NOW, within), Ok(NOW));
        assert_eq!(
            check_start(NOW - START_GRACE_SECS - 1, NOW, within),
            Err(WorkflowError::StartPassed(rfc3339(NOW - 61)))
        );
        assert_eq!(
            check_start(NOW + secs(within), NOW, within),
            Ok(NOW + 30 * 24 * HOUR)
        );
        assert!(matches!(
            check_start(NOW + secs(within) + 1, NOW, within),
            Err(WorkflowError::StartTooFar { .. })
        ));
    }

    #[test]
    fn a_start_past_the_year_9999_is_too_far_not_a_panic() {
        let within = Duration::from_secs(30 * 24 * 3600);
        for start in [253_402_300_800, UnixTime::MAX] {
            assert_eq!(
                check_start(start, NOW, within),
                Err(WorkflowError::StartTooFar {
                    start: "9999-12-31T23:59:59Z".into(),
                    within: "30days".into(),
                })
            );
        }
    }

    #[test]
    fn a_scheduled_request_pends_until_a_while_into_its_window() {
        let ttl = Duration::from_secs(HOUR as u64);
        assert_eq!(lapse_at(NOW, None, ttl), NOW + HOUR);
        // A week ahead: approvers have the week, and an hour of the window.
        let ahead = window(NOW + 7 * 24 * HOUR, 4);
        assert_eq!(lapse_at(NOW, Some(ahead), ttl), ahead.start + HOUR);
        // A window shorter than the TTL: never past its end.
        let short = Window {
            start: NOW + HOUR,
            end: NOW + HOUR + 600,
        };
        assert_eq!(lapse_at(NOW, Some(short), ttl), short.end);
    }

    #[test]
    fn a_start_opens_waits_or_closes() {
        let w = window(NOW, 2);
        assert_eq!(at_start(w, NOW, None), AtStart::Open);
        assert_eq!(at_start(w, NOW + HOUR, None), AtStart::Open);
        assert_eq!(at_start(w, NOW - 5, None), AtStart::Wait(NOW));
        assert_eq!(at_start(w, w.end, None), AtStart::Close);
        // Held up by a grant ending in 30 s, or in an hour (looked at
        // again in a minute), or past the window (then closed at its end).
        assert_eq!(at_start(w, NOW, Some(NOW + 30)), AtStart::Wait(NOW + 30));
        assert_eq!(
            at_start(w, NOW, Some(NOW + HOUR)),
            AtStart::Wait(NOW + RECHECK_SECS)
        );
        let late = w.end - 10;
        assert_eq!(at_start(w, late, Some(w.end + HOUR)), AtStart::Wait(w.end));
        assert_eq!(at_start(w, late, Some(late)), AtStart::Wait(late + 1));
    }

    #[test]
    fn an_approval_starts_the_grant_later_only_before_its_start() {
        let start = starts_later(Some(window(NOW + HOUR, 2)), NOW);
        assert_eq!(start, Some(NOW + HOUR));
        assert_eq!(starts_later(Some(window(NOW, 2)), NOW), None);
        assert_eq!(starts_later(None, NOW), None);
    }
}
