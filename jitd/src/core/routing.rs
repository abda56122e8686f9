//! Risk-based routing (W1.3): auto-approve, one owner, or manager + security.

use std::time::Duration;

use super::model::Route;

/// Auto-approval is only ever for requests shorter than this.
pub const AUTO_MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// A score below this may be auto-approved.
    pub auto_below: u8,
    /// A score at or above this needs dual approval.
    pub dual_from: u8,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            auto_below: 30,
            dual_from: 70,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteFacts {
    pub score: u8,
    pub duration: Duration,
    pub privileged: bool,
    pub production: bool,
    /// A resource without owners cannot take the single-owner route.
    pub has_owners: bool,
}

pub fn route(facts: RouteFacts, t: Thresholds) -> Route {
    if facts.score < t.auto_below && facts.duration < AUTO_MAX_DURATION && !facts.privileged {
        Route::Auto
    } else if (facts.privileged && facts.production) || facts.score >= t.dual_from {
        Route::Dual
    } else if facts.has_owners {
        Route::Owner
    } else {
        // Escalate rather than leave a medium-risk request without an approver.
        Route::Dual
    }
}
