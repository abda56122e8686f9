//! On-call schedules (W1.10, docs/design.md "On-call schedules"): the shift
//! file's format and who holds a shift at a given time.
//!
//! One shift per line, `USER FROM TO`, the times RFC 3339 with an explicit
//! offset (`2026-12-06T22:00:00+01:00`, or `Z`); `#` starts a comment.
//! A shift holds from `FROM` (inclusive) to `TO` (exclusive), so that one
//! ending at 06:00 and the next starting at 06:00 never overlap. Shifts may
//! overlap: everyone holding one at a time is on call.
//!
//! No I/O: jitd's `oncall.rs` reads the files and decides when.

use std::collections::HashMap;
use thiserror::Error;

use super::model::{valid_account_name, UnixTime};

/// What a policy rule asks of the configured schedules: jitd's
/// `oncall::Rosters` (the files, re-read when they change), a table in tests.
pub trait OnCall {
    /// Whether `user` holds a shift of `schedule` at `at`. A schedule that
    /// is not configured, or whose file is broken, has nobody on call.
    fn is_on_call(&self, schedule: &str, user: &str, at: UnixTime) -> bool;
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    pub user: String,
    /// First second of the shift.
    pub from: UnixTime,
    /// First second after it.
    pub to: UnixTime,
}

/// Where a line is wrong: 1-based line and column (in characters).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{line}:{col}: {problem}")]
pub struct ShiftError {
    pub line: usize,
    pub col: usize,
    pub problem: Problem,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Problem {
    #[error("the file is not UTF-8")]
    NotUtf8,
    #[error("'{0}' is not a user name (a line is: USER FROM TO)")]
    BadUser(String),
    #[error("the shift has no {0} time (a line is: USER FROM TO)")]
    Missing(&'static str),
    #[error("unexpected '{0}' after the shift's end (a line is: USER FROM TO)")]
    Extra(String),
    #[error("'{text}' is not an RFC 3339 time with an offset: {why}")]
    BadTime { text: String, why: &'static str },
    #[error("the shift ends before it starts, or when it starts")]
    EndsBeforeStart,
}

/// A time field's error: the byte where it is wrong, and why.
struct TimeError {
    at: usize,
    why: &'static str,
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` as Unix seconds.
/// A fraction of a second is accepted and dropped: shifts are in seconds.
fn parse_time_at(b: &[u8]) -> Result<UnixTime, TimeError> {
    let mut at = 0;
    let number = |width: usize, what: &'static str, at: &mut usize| {
        let digits = b
            .get(*at..*at + width)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        let Some(digits) = digits else {
            return Err(TimeError { at: *at, why: what });
        };
        let start = *at;
        *at += width;
        let value = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        Ok((start, value))
    };
    let expect = |at: &mut usize, sep: &[u8], why: &'static str| {
        if b.get(*at).is_some_and(|c| sep.contains(c)) {
            *at += 1;
            Ok(())
        } else {
            Err(TimeError { at: *at, why })
        }
    };
    let within = |(start, value): (usize, u32), range: std::ops::RangeInclusive<u32>, why| {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(TimeError { at: start, why })
        }
    };
    let (_, year) = number(4, "expected a four-digit year", &mut at)?;
    expect(&mut at, b"-", "expected '-' after the year")?;
    let month = number(2, "expected a two-digit month", &mut at)?;
    let month = within(month, 1..=12, "the month must be 01-12")?;
    expect(&mut at, b"-", "expected '-' after the month")?;
    let day = number(2, "expected a two-digit day", &mut at)?;
    let day = within(
        day,
        1..=days_in_month(year, month),
        "no such day in that month",
    )?;
    expect(&mut at, b"Tt", "expected 'T' between the date and the time")?;
    let hour = within(
        number(2, "expected a two-digit hour", &mut at)?,
        0..=23,
        "the hour must be 00-23",
    )?;
    expect(&mut at, b":", "expected ':' after the hour")?;
    let minute = within(
        number(2, "expected two-digit minutes", &mut at)?,
        0..=59,
        "the minutes must be 00-59",
    )?;
    expect(&mut at, b":", "expected ':' after the minutes")?;
    let second = within(
        number(2, "expected two-digit seconds", &mut at)?,
        0..=59,
        "the seconds must be 00-59",
    )?;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(TimeError {
                at,
                why: "expected digits after '.'",
            });
        }
        at += digits;
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let sign_at = at;
            at += 1;
            let hours = within(
                number(2, "expected the offset's two-digit hours", &mut at)?,
                0..=23,
                "the offset's hours must be 00-23",
            )?;
            expect(&mut at, b":", "expected ':' in the offset")?;
            let minutes = within(
                number(2, "expected the offset's two-digit minutes", &mut at)?,
                0..=59,
                "the offset's minutes must be 00-59",
            )?;
            let secs = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' && secs == 0 {
                // RFC 3339 4.3: "-00:00" says the local offset is unknown.
                return Err(TimeError {
                    at: sign_at,
                    why: "-00:00 means an unknown offset; give the real one, or Z",
                });
            }
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => {
            return Err(TimeError {
                at,
                why: "expected the UTC offset (Z, +HH:MM or -HH:MM)",
            })
        }
    };
    if at != b.len() {
        return Err(TimeError {
            at,
            why: "unexpected text after the offset",
        });
    }
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(local - offset)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar:
/// whole 400-year cycles (146,097 days each), then the years, counted from
/// March so that the leap day ends a year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year - cycle * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719,468 days from 0000-03-01 to 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

/// The fields of a line, with the byte where each starts.
fn fields(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split([' ', '\t'])
        .scan(0, |offset, field| {
            let start = *offset;
            *offset += field.len() + 1;
            Some((start, field))
        })
        .filter(|(_, field)| !field.is_empty())
}

/// Reads a shift file. The first wrong line is the error: a schedule is
/// used whole or not at all.
pub fn parse(bytes: &[u8]) -> Result<Schedule, ShiftError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // The valid prefix is UTF-8: its characters count the column.
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ShiftError {
            line,
            col,
            problem: Problem::NotUtf8,
        }
    })?;
    let mut shifts = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let content = line.split_once('#').map_or(line, |(before, _)| before);
        let error = |byte: usize, problem: Problem| ShiftError {
            line: index + 1,
            col: line[..byte].chars().count() + 1,
            problem,
        };
        let mut fields = fields(content);
        let Some((user_at, user)) = fields.next() else {
            continue;
        };
        if !valid_account_name(user) {
            return Err(error(user_at, Problem::BadUser(user.to_owned())));
        }
        let mut time = |what: &'static str| {
            let (at, text) = fields
                .next()
                .ok_or_else(|| error(content.trim_end().len(), Problem::Missing(what)))?;
            let value = parse_time_at(text.as_bytes()).map_err(|e| {
                let problem = Problem::BadTime {
                    text: text.to_owned(),
                    why: e.why,
                };
                error(at + e.at, problem)
            })?;
            Ok::<_, ShiftError>((at, value))
        };
        let (_, from) = time("start")?;
        let (to_at, to) = time("end")?;
        if let Some((at, extra)) = fields.next() {
            return Err(error(at, Problem::Extra(extra.to_owned())));
        }
        if to <= from {
            return Err(error(to_at, Problem::EndsBeforeStart));
        }
        shifts.push(Shift {
            user: user.to_owned(),
            from,
            to,
        });
    }
    Ok(Schedule::new(shifts))
}

/// Time spans sorted by start, with the latest end among each prefix: the
/// spans holding a time are found by a binary search, then a walk back
/// that stops where no earlier span reaches that far.
#[derive(Clone, Debug, Default)]
struct Spans {
    /// (from, to), by `from`.
    spans: Vec<(UnixTime, UnixTime)>,
    /// `reach[i]`: the latest `to` among `spans[..=i]`.
    reach: Vec<UnixTime>,
}

impl Spans {
    /// `spans` must be sorted by start.
    fn new(spans: Vec<(UnixTime, UnixTime)>) -> Spans {
        let reach = spans
            .iter()
            .scan(UnixTime::MIN, |latest, &(_, to)| {
                *latest = (*latest).max(to);
                Some(*latest)
            })
            .collect();
        Spans { spans, reach }
    }

    /// Indices of the spans holding `at` (from <= at < to), latest start first.
    fn holding(&self, at: UnixTime) -> impl Iterator<Item = usize> + '_ {
        let started = self.spans.partition_point(|&(from, _)| from <= at);
        (0..started)
            .rev()
            .take_while(move |&i| self.reach[i] > at)
            .filter(move |&i| self.spans[i].1 > at)
    }
}

/// A schedule read from its file: every shift, and indices to answer who
/// is on call at a time without walking them all.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// By start.
    shifts: Vec<Shift>,
    /// The shifts' spans, in the same order.
    all: Spans,
    /// Each user's own spans: one user's shifts rarely overlap, so the
    /// walk back of [`Spans::holding`] is a step or two.
    by_user: HashMap<String, Spans>,
}

impl Schedule {
    pub fn new(mut shifts: Vec<Shift>) -> Schedule {
        shifts.sort_by_key(|s| (s.from, s.to));
        let all = Spans::new(shifts.iter().map(|s| (s.from, s.to)).collect());
        let mut spans: HashMap<String, Vec<(UnixTime, UnixTime)>> = HashMap::new();
        for s in &shifts {
            spans
                .entry(s.user.clone())
                .or_default()
                .push((s.from, s.to));
        }
        let by_user = spans.into_iter().map(|(u, s)| (u, Spans::new(s))).collect();
        Schedule {
            shifts,
            all,
            by_user,
        }
    }

    /// How many shifts the file has.
    pub fn len(&self) -> usize {
        self.shifts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shifts.is_empty()
    }

    pub fn is_on_call(&self, user: &str, at: UnixTime) -> bool {
        self.by_user
            .get(user)
            .is_some_and(|spans| spans.holding(at).next().is_some())
    }

    /// Everyone on call at `at`, sorted, each once.
    pub fn holders_at(&self, at: UnixTime) -> Vec<&str> {
        let mut holders: Vec<&str> = self
            .all
            .holding(at)
            .map(|i| self.shifts[i].user.as_str())
            .collect();
        holders.sort_unstable();
        holders.dedup();
        holders
    }
}

#[cfg(test)]
mod tests;
