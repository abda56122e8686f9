//! `jitctl request --start TIME`: the start as the user means it, in their
//! own time zone, resolved here (jitd takes seconds since the epoch) and
//! said back.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use std::time::Duration;
use thiserror::Error;

/// The forms `--start` takes, for its help and its refusals.
pub const FORMS: &str = "RFC 3339 (2026-12-07T02:00:00+01:00), a local time \
                         (2026-12-07 02:00, or 02:00 for the next one) or +DUR (+2h)";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StartError {
    #[error("cannot read --start '{0}': use {FORMS}")]
    Unreadable(String),
    #[error("--start '{text}' is not one time here (the clocks change then): give its offset, e.g. {example}")]
    Ambiguous { text: String, example: String },
}

/// The moment `text` names, read at `now` in the time zone `tz`: `+DUR`
/// from now; an RFC 3339 time, or one with its zone (`...[Europe/Paris]`);
/// a local date and time; or a local time of day, the next one (today's
/// if still ahead, else tomorrow's). A local time the clocks skip or pass
/// twice is refused rather than guessed.
pub fn resolve(text: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, StartError> {
    let text = text.trim();
    let unreadable = || StartError::Unreadable(text.to_owned());
    if let Some(after) = text.strip_prefix('+') {
        let ahead = humantime::parse_duration(after.trim()).map_err(|_| unreadable())?;
        let ahead = SignedDuration::try_from(ahead).map_err(|_| unreadable())?;
        return now.checked_add(ahead).map_err(|_| unreadable());
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(at) = text.parse::<Zoned>() {
        return Ok(at.timestamp());
    }
    if let Ok(at) = text.parse::<DateTime>() {
        return local(text, at, tz);
    }
    let time = text.parse::<Time>().map_err(|_| unreadable())?;
    let today = now.to_zoned(tz.clone()).date();
    let at = local(text, today.to_datetime(time), tz)?;
    if at > now {
        return Ok(at);
    }
    let tomorrow = today.tomorrow().map_err(|_| unreadable())?;
    local(text, tomorrow.to_datetime(time), tz)
}

fn local(text: &str, at: DateTime, tz: &TimeZone) -> Result<Timestamp, StartError> {
    tz.to_ambiguous_timestamp(at).unambiguous().map_err(|_| {
        let example = tz
            .to_ambiguous_zoned(at)
            .later()
            .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default();
        StartError::Ambiguous {
            text: text.to_owned(),
            example,
        }
    })
}

/// The start as the user is told it: in their time zone, and how far ahead.
pub fn said_back(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let local = at.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %:z");
    let ahead = u64::try_from(at.as_second() - now.as_second()).unwrap_or(0);
    format!(
        "Starts {local} your time (in {}).",
        humantime::format_duration(Duration::from_secs(ahead))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central European time: the clocks go forward at 02:00 on the last
    /// Sunday of March and back at 03:00 on the last Sunday of October.
    fn paris() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_form_resolves_to_one_moment() {
        let now = at("2026-12-06T18:00:00Z");
        let tz = paris();
        let cases = [
            ("+2h", "2026-12-06T20:00:00Z"),
            ("+1h30m", "2026-12-06T19:30:00Z"),
            ("2026-12-07T02:00:00+01:00", "2026-12-07T01:00:00Z"),
            ("2026-12-07T01:00:00Z", "2026-12-07T01:00:00Z"),
            ("2026-12-07 02:00", "2026-12-07T01:00:00Z"),
            ("2026-12-07T02:00", "2026-12-07T01:00:00Z"),
            // 20:00 local is still ahead today; 02:00 is tomorrow's.
            ("20:00", "2026-12-06T19:00:00Z"),
            ("02:00", "2026-12-07T01:00:00Z"),
            (" 02:00 ", "2026-12-07T01:00:00Z"),
        ];
        for (text, want) in cases {
            assert_eq!(resolve(text, now, &tz), Ok(at(want)), "{text}");
        }
    }

    #[test]
    fn local_times_follow_the_zones_offset_across_a_dst_change() {
        let tz = paris();
        let now = at("2026-03-28T12:00:00Z");
        // Winter (+01:00) the day before, summer (+02:00) the day after.
        assert_eq!(
            resolve("2026-03-28 23:00", now, &tz),
            Ok(at("2026-03-28T22:00:00Z"))
        );
        assert_eq!(
            resolve("2026-03-29 04:00", now, &tz),
            Ok(at("2026-03-29T02:00:00Z"))
        );
        // 02:30 does not exist that night, and 02:30 in October twice.
        let skipped = resolve("2026-03-29 02:30", now, &tz).unwrap_err();
        assert_eq!(
            skipped,
            StartError::Ambiguous {
                text: "2026-03-29 02:30".into(),
                example: "2026-03-29T03:30:00+02:00".into()
            }
        );
        assert!(matches!(
            resolve("2026-10-25 02:30", now, &tz),
            Err(StartError::Ambiguous { .. })
        ));
    }

    #[test]
    fn anything_else_is_refused_with_the_forms() {
        let now = at("2026-12-06T18:00:00Z");
        for text in ["tomorrow", "+2x", "+", "2026-13-01 02:00", "25:00", ""] {
            let err = resolve(text, now, &paris()).unwrap_err();
            assert_eq!(err, StartError::Unreadable(text.trim().into()));
            assert!(err.to_string().contains("+DUR (+2h)"), "{err}");
        }
    }

    #[test]
    fn the_start_is_said_back_in_local_time() {
        let now = at("2026-12-06T18:00:00Z");
        assert_eq!(
            said_back(at("2026-12-07T01:00:00Z"), now, &paris()),
            "Starts 2026-12-07 02:00:00 +01:00 your time (in 7h)."
        );
    }
}
