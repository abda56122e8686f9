//! When a rule holds: days of the week and a daily span of hours, read on
//! the wall clock of one time zone (DST-correct through jiff).

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::core::model::UnixTime;

pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// Names of the days, Monday first (bit `i` of [`Window::days`]).
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Every day of the week.
pub const ALL_DAYS: u8 = 0b111_1111;

/// A daily span in minutes since local midnight; `start > end` crosses
/// midnight (`22:00-06:00`), and belongs to the day it starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hours {
    pub start: u16,
    pub end: u16,
}

impl Hours {
    /// `"HH:MM-HH:MM"`; `24:00` only as an end; an empty span is refused.
    pub fn parse(text: &str) -> Option<Hours> {
        let minute = |hm: &str| -> Option<u16> {
            let (h, m) = hm.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && h * 60 + m <= MINUTES_PER_DAY).then_some(h * 60 + m)
        };
        let (start, end) = text.split_once('-')?;
        let (start, end) = (minute(start)?, minute(end)?);
        (start != end && start < MINUTES_PER_DAY).then_some(Hours { start, end })
    }

    fn crosses_midnight(self) -> bool {
        self.start > self.end
    }
}

impl std::fmt::Display for Hours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

/// A local moment: weekday (0 = Monday) and minute of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub weekday: u8,
    pub minute: u16,
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = DAY_NAMES[usize::from(self.weekday % 7)];
        write!(f, "{day} {:02}:{:02}", self.minute / 60, self.minute % 60)
    }
}

/// `at` on the wall clock of `tz`; a moment jiff cannot represent (far
/// outside years -9999..9999) is read as Monday midnight, which no config
/// can make matter: such a request time never comes from a real clock.
pub fn local(tz: &TimeZone, at: UnixTime) -> Local {
    let Ok(ts) = Timestamp::from_second(at) else {
        return Local {
            weekday: 0,
            minute: 0,
        };
    };
    let dt = tz.to_datetime(ts);
    Local {
        weekday: dt.weekday().to_monday_zero_offset() as u8,
        minute: dt.hour() as u16 * 60 + dt.minute() as u16,
    }
}

/// Days and hours in a zone (an index into the policy's interned zones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Bit `i`: day `i` (0 = Monday) is in.
    pub days: u8,
    pub hours: Option<Hours>,
    pub zone: usize,
}

impl Window {
    fn has_day(&self, weekday: u8) -> bool {
        self.days & (1 << (weekday % 7)) != 0
    }

    /// Whether `now` is inside: a span crossing midnight counts the hours
    /// after midnight as the day before's, so `fri 22:00-06:00` is Friday
    /// night until Saturday 06:00.
    pub fn contains(&self, now: Local) -> bool {
        let yesterday = (now.weekday + 6) % 7;
        match self.hours {
            None => self.has_day(now.weekday),
            Some(h) if !h.crosses_midnight() => {
                self.has_day(now.weekday) && now.minute >= h.start && now.minute < h.end
            }
            Some(h) => {
                (now.minute >= h.start && self.has_day(now.weekday))
                    || (now.minute < h.end && self.has_day(yesterday))
            }
        }
    }

    /// `mon,tue 22:00-06:00` (days omitted when every day is in).
    pub fn describe(&self, zone_name: &str) -> String {
        let mut parts = Vec::new();
        if self.days != ALL_DAYS {
            let days: Vec<&str> = (0..7u8)
                .filter(|d| self.has_day(*d))
                .map(|d| DAY_NAMES[usize::from(d)])
                .collect();
            parts.push(days.join(","));
        }
        if let Some(h) = self.hours {
            parts.push(h.to_string());
        }
        parts.push(zone_name.to_owned());
        parts.join(" ")
    }
}
