//! `[scan]`: the standing-privilege scan jitd runs on its own
//! (docs/design.md, "Standing-privilege scan"); `jitctl scan` runs one at
//! any time.

use serde::{de, Deserialize, Deserializer};
use std::time::Duration;

/// How often: a duration (`"1h"`), or `"off"` (also `"0"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if matches!(text.trim(), "off" | "0") {
            return Ok(Every(None));
        }
        let value = humantime::parse_duration(&text).map_err(|e| {
            de::Error::custom(format!(
                "'{text}' is not a duration ({e}); use e.g. \"1h\", or \"off\""
            ))
        })?;
        if value < Duration::from_secs(1) {
            return Err(de::Error::custom("at least 1s, or \"off\""));
        }
        Ok(Every(Some(value)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Between two scans of jitd's own; the first comes this long after
    /// the start, or 10 minutes if sooner (a start is busy enough).
    pub every: Every,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            every: Every(Some(Duration::from_secs(3600))),
        }
    }
}

impl ScanConfig {
    /// When jitd's first scan is due after its start.
    pub fn first_after(&self) -> Option<Duration> {
        self.every.0.map(|d| d.min(Duration::from_secs(600)))
    }
}
