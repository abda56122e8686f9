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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Sensitivity::{self, *};
    use crate::core::risk::{assess, RiskContext, RiskWeights};

    const DURATIONS: [u64; 5] = [30 * 60, 3599, 3600, 2 * 3600, 8 * 3600];

    /// Expected route per duration column above: A = auto, O = owner, D = dual.
    /// Default weights, business hours, returning user, no denials.
    #[rustfmt::skip]
    const TABLE: [(Sensitivity, bool, bool, &str); 16] = [
        // sensitivity, privileged, production, routes
        (Low,      false, false, "AAOOO"),
        (Low,      false, true,  "AAOOO"),
        (Low,      true,  false, "OOOOO"),
        (Low,      true,  true,  "DDDDD"),
        (Medium,   false, false, "AAOOO"),
        (Medium,   false, true,  "OOOOO"),
        (Medium,   true,  false, "OOOOO"),
        (Medium,   true,  true,  "DDDDD"),
        (High,     false, false, "OOOOO"),
        (High,     false, true,  "OOOOO"),
        (High,     true,  false, "OOOOO"),
        (High,     true,  true,  "DDDDD"),
        (Critical, false, false, "OOOOO"),
        (Critical, false, true,  "OOOOD"),
        (Critical, true,  false, "OOOOD"),
        (Critical, true,  true,  "DDDDD"),
    ];

    fn decide(
        sensitivity: Sensitivity,
        privileged: bool,
        production: bool,
        secs: u64,
        has_owners: bool,
    ) -> Route {
        let duration = Duration::from_secs(secs);
        let risk = assess(
            &RiskContext {
                sensitivity,
                privileged,
                production,
                duration,
                off_hours: false,
                first_request: false,
                recent_denials: 0,
                recent_break_glass: 0,
            },
            &RiskWeights::default(),
        );
        route(
            RouteFacts {
                score: risk.score,
                duration,
                privileged,
                production,
                has_owners,
            },
            Thresholds::default(),
        )
    }

    #[test]
    fn every_combination_routes_as_the_table_says() {
        for (sensitivity, privileged, production, routes) in TABLE {
            for (secs, want) in DURATIONS.iter().zip(routes.chars()) {
                let want = match want {
                    'A' => Route::Auto,
                    'O' => Route::Owner,
                    _ => Route::Dual,
                };
                assert_eq!(
                    decide(sensitivity, privileged, production, *secs, true),
                    want,
                    "{sensitivity:?} privileged={privileged} production={production} {secs}s"
                );
            }
        }
    }

    #[test]
    fn without_owners_medium_risk_escalates_to_dual_and_low_risk_stays_auto() {
        for (sensitivity, privileged, production, routes) in TABLE {
            for (secs, want) in DURATIONS.iter().zip(routes.chars()) {
                let want = if want == 'A' {
                    Route::Auto
                } else {
                    Route::Dual
                };
                assert_eq!(
                    decide(sensitivity, privileged, production, *secs, false),
                    want
                );
            }
        }
    }

    #[test]
    fn thresholds_are_exclusive_below_and_inclusive_from() {
        let facts = |score| RouteFacts {
            score,
            duration: Duration::from_secs(60),
            privileged: false,
            production: false,
            has_owners: true,
        };
        let t = Thresholds {
            auto_below: 30,
            dual_from: 70,
        };
        assert_eq!(route(facts(29), t), Route::Auto);
        assert_eq!(route(facts(30), t), Route::Owner);
        assert_eq!(route(facts(69), t), Route::Owner);
        assert_eq!(route(facts(70), t), Route::Dual);
        assert_eq!(route(facts(100), t), Route::Dual);
    }

    #[test]
    fn auto_never_for_privileged_or_an_hour_or_more_whatever_the_score() {
        let t = Thresholds {
            auto_below: 101,
            dual_from: 101,
        };
        let base = RouteFacts {
            score: 0,
            duration: Duration::from_secs(60),
            privileged: false,
            production: false,
            has_owners: true,
        };
        assert_eq!(route(base, t), Route::Auto);
        assert_eq!(
            route(
                RouteFacts {
                    privileged: true,
                    ..base
                },
                t
            ),
            Route::Owner
        );
        assert_eq!(
            route(
                RouteFacts {
                    duration: AUTO_MAX_DURATION,
                    ..base
                },
                t
            ),
            Route::Owner
        );
    }
}
