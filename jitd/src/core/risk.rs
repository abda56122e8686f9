//! Risk scoring: a 0-100 score built from named, weighted factors.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::model::Sensitivity;

const HOUR: u64 = 3600;

/// Points each factor contributes. Defaults are documented in `packaging/jitd.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskWeights {
    pub sensitivity_low: u32,
    pub sensitivity_medium: u32,
    pub sensitivity_high: u32,
    pub sensitivity_critical: u32,
    pub privileged: u32,
    pub production: u32,
    /// Per started hour beyond the first.
    pub duration_per_hour: u32,
    pub duration_max: u32,
    pub off_hours: u32,
    pub first_request: u32,
    /// Per denial of this user's requests in the last 30 days.
    pub recent_denial: u32,
    pub recent_denials_max: u32,
    pub recent_break_glass: u32,
}

impl Default for RiskWeights {
    fn default() -> Self {
        RiskWeights {
            sensitivity_low: 0,
            sensitivity_medium: 15,
            sensitivity_high: 30,
            sensitivity_critical: 45,
            privileged: 20,
            production: 15,
            duration_per_hour: 3,
            duration_max: 15,
            off_hours: 10,
            first_request: 10,
            recent_denial: 5,
            recent_denials_max: 15,
            recent_break_glass: 10,
        }
    }
}

/// Everything the score depends on, gathered by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskContext {
    pub sensitivity: Sensitivity,
    pub privileged: bool,
    pub production: bool,
    pub duration: Duration,
    pub off_hours: bool,
    pub first_request: bool,
    pub recent_denials: u32,
    pub recent_break_glass: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    pub name: String,
    pub points: u32,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub score: u8,
    /// Only the factors that added points, in a fixed order.
    pub factors: Vec<Factor>,
}

impl RiskAssessment {
    /// "name +points" for each factor, joined by ", " (empty without factors).
    pub fn factor_list(&self) -> String {
        let parts: Vec<String> = self
            .factors
            .iter()
            .map(|f| format!("{} +{}", f.name, f.points))
            .collect();
        parts.join(", ")
    }

    /// The score without factor `name`'s points (clamped as the score is).
    pub fn score_without(&self, name: &str) -> u8 {
        let total: u32 = self
            .factors
            .iter()
            .filter(|f| f.name != name)
            .map(|f| f.points)
            .fold(0, u32::saturating_add);
        total.min(100) as u8
    }
}

/// The name of the off-hours factor (left out of the policy rules' ceiling).
pub const OFF_HOURS: &str = "off_hours";

pub fn assess(ctx: &RiskContext, w: &RiskWeights) -> RiskAssessment {
    let mut factors = Vec::new();
    let mut add = |name: &str, points: u32, detail: String| {
        if points > 0 {
            factors.push(Factor {
                name: name.to_owned(),
                points,
                detail,
            });
        }
    };

    let sensitivity_points = match ctx.sensitivity {
        Sensitivity::Low => w.sensitivity_low,
        Sensitivity::Medium => w.sensitivity_medium,
        Sensitivity::High => w.sensitivity_high,
        Sensitivity::Critical => w.sensitivity_critical,
    };
    add(
        "sensitivity",
        sensitivity_points,
        ctx.sensitivity.as_str().to_owned(),
    );
    if ctx.privileged {
        add("privileged", w.privileged, "privileged resource".into());
    }
    if ctx.production {
        add("production", w.production, "production environment".into());
    }
    let extra_hours = ctx.duration.as_secs().saturating_sub(HOUR).div_ceil(HOUR);
    let duration_points = u32::try_from(extra_hours)
        .unwrap_or(u32::MAX)
        .saturating_mul(w.duration_per_hour)
        .min(w.duration_max);
    add(
        "duration",
        duration_points,
        humantime::format_duration(ctx.duration).to_string(),
    );
    if ctx.off_hours {
        add(OFF_HOURS, w.off_hours, "outside business hours".into());
    }
    if ctx.first_request {
        add(
            "first_request",
            w.first_request,
            "first request for this resource".into(),
        );
    }
    let denial_points = ctx
        .recent_denials
        .saturating_mul(w.recent_denial)
        .min(w.recent_denials_max);
    add(
        "recent_denials",
        denial_points,
        format!("{} in the last 30 days", ctx.recent_denials),
    );
    if ctx.recent_break_glass > 0 {
        add(
            "recent_break_glass",
            w.recent_break_glass,
            format!("{} in the last 30 days", ctx.recent_break_glass),
        );
    }

    let total: u32 = factors
        .iter()
        .map(|f| f.points)
        .fold(0, u32::saturating_add);
    RiskAssessment {
        score: total.min(100) as u8,
        factors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RiskContext {
        RiskContext {
            sensitivity: Sensitivity::Low,
            privileged: false,
            production: false,
            duration: Duration::from_secs(1800),
            off_hours: false,
            first_request: false,
            recent_denials: 0,
            recent_break_glass: 0,
        }
    }

    #[test]
    fn quiet_request_scores_zero_with_no_factors() {
        let r = assess(&ctx(), &RiskWeights::default());
        assert_eq!(r.score, 0);
        assert!(r.factors.is_empty());
    }

    #[test]
    fn duration_counts_started_hours_beyond_the_first_and_is_capped() {
        let w = RiskWeights::default();
        let points = |secs| {
            let r = assess(
                &RiskContext {
                    duration: Duration::from_secs(secs),
                    ..ctx()
                },
                &w,
            );
            r.score
        };
        assert_eq!(points(3600), 0);
        assert_eq!(points(3601), 3);
        assert_eq!(points(2 * 3600), 3);
        assert_eq!(points(4 * 3600), 9);
        assert_eq!(points(100 * 3600), 15);
        assert_eq!(points(u64::MAX), 15);
    }

    #[test]
    fn everything_at_once_is_clamped_to_100() {
        let w = RiskWeights {
            sensitivity_critical: 90,
            ..RiskWeights::default()
        };
        let r = assess(
            &RiskContext {
                sensitivity: Sensitivity::Critical,
                privileged: true,
                production: true,
                duration: Duration::from_secs(10 * 3600),
                off_hours: true,
                first_request: true,
                recent_denials: 9,
                recent_break_glass: 1,
            },
            &w,
        );
        assert_eq!(r.score, 100);
        let names: Vec<_> = r.factors.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sensitivity",
                "privileged",
                "production",
                "duration",
                "off_hours",
                "first_request",
                "recent_denials",
                "recent_break_glass"
            ]
        );
    }

    #[test]
    fn the_score_without_off_hours_leaves_out_its_points_only() {
        let r = assess(
            &RiskContext {
                off_hours: true,
                privileged: true,
                ..ctx()
            },
            &RiskWeights::default(),
        );
        assert_eq!(r.score, 30);
        assert_eq!(r.score_without(OFF_HOURS), 20);
        assert_eq!(r.score_without("nonexistent"), 30);
    }

    #[test]
    fn recent_denials_are_capped() {
        let r = assess(
            &RiskContext {
                recent_denials: 100,
                ..ctx()
            },
            &RiskWeights::default(),
        );
        assert_eq!(r.score, 15);
    }
}
