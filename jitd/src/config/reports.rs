//! `[reports]`: what the reports measure against (docs/design.md
//! "Reports"). `[reports.sla]` gives each route the time within which a
//! request should be granted: `auto = "1m"`, `owner = "4h"`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use super::HumanDuration;
use crate::core::model::Route;

/// The SLA of each route when `[reports.sla]` does not name it.
pub const DEFAULT_SLA: [(Route, u64); 6] = [
    (Route::Auto, 60),
    (Route::Policy, 60),
    (Route::Owner, 4 * 3600),
    (Route::Dual, 8 * 3600),
    (Route::BreakGlass, 5 * 60),
    (Route::Vendor, 24 * 3600),
];

/// The resolved `[reports]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportsConfig {
    /// Route name -> the time within which its requests should be granted.
    pub sla: BTreeMap<String, Duration>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            sla: DEFAULT_SLA
                .iter()
                .map(|(route, secs)| (route.as_str().to_owned(), Duration::from_secs(*secs)))
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawReports {
    sla: BTreeMap<Spanned<String>, HumanDuration>,
}

impl RawReports {
    /// The defaults, with what the file says instead; a route jitd does
    /// not know is an error at its name.
    pub(super) fn resolve(self) -> Result<ReportsConfig, (Range<usize>, String)> {
        let mut config = ReportsConfig::default();
        for (route, sla) in self.sla {
            if Route::parse(route.get_ref()).is_none() {
                let known: Vec<&str> = Route::ALL.iter().map(|r| r.as_str()).collect();
                return Err((
                    route.span(),
                    format!(
                        "unknown route '{}' in [reports.sla]; the routes are {}",
                        route.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            config.sla.insert(route.into_inner(), sla.0);
        }
        Ok(config)
    }
}
