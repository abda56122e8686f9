//! Break-glass (W2): an emergency grant without approval, paid for afterwards
//! with a justification from its holder and a review by a manager and by
//! security. Pure rules; the engine stores what they decide.

use std::time::Duration;
use thiserror::Error;

use super::model::{RequestId, Role, Uid, UnixTime};
use super::workflow::{validate_comment, validate_reason, Actor, WorkflowError};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BreakGlassError {
    #[error("you may not use break-glass for '{0}'; use 'jitctl request {0}' instead")]
    NotAllowed(String),
    #[error(
        "break-glass refused: you used it {used} times in the last {window} (limit {limit}); \
         call {contact}"
    )]
    RateLimited {
        used: u32,
        limit: u32,
        window: String,
        contact: String,
    },
    #[error("request {0} is not a break-glass grant")]
    NotBreakGlass(RequestId),
    #[error("only the holder of break-glass grant {0} may justify it")]
    NotHolder(RequestId),
    #[error("break-glass grant {0} is already justified")]
    AlreadyJustified(RequestId),
    #[error("you cannot review your own break-glass grant")]
    SelfReview,
    #[error("reviewing break-glass grant {0} needs the manager or security role")]
    NotReviewer(RequestId),
    #[error("break-glass grant {id} already has its {role} review")]
    RoleReviewed { id: RequestId, role: &'static str },
    #[error(
        "you have already reviewed break-glass grant {0}; the other review needs someone else"
    )]
    AlreadyReviewed(RequestId),
    #[error("the verdict is 'justified' or 'unjustified'")]
    BadVerdict,
    /// A justification or comment that a request's reason or comment could not be either.
    #[error(transparent)]
    Invalid(#[from] WorkflowError),
    #[error("incident {0} not found")]
    NoIncident(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewVerdict {
    Justified,
    Unjustified,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Justified => "justified",
            ReviewVerdict::Unjustified => "unjustified",
        }
    }

    pub fn parse(text: &str) -> Result<ReviewVerdict, BreakGlassError> {
        match text {
            "justified" => Ok(ReviewVerdict::Justified),
            "unjustified" => Ok(ReviewVerdict::Unjustified),
            _ => Err(BreakGlassError::BadVerdict),
        }
    }
}

/// One post-facto review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub uid: Uid,
    pub name: String,
    pub role: Role,
    pub verdict: ReviewVerdict,
    pub comment: String,
    pub at: UnixTime,
}

/// The follow-up every break-glass grant opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub grant: RequestId,
    pub holder: Uid,
    pub due_at: UnixTime,
    pub justification: Option<String>,
    pub justified_at: Option<UnixTime>,
    /// When the missing justification was escalated.
    pub overdue_at: Option<UnixTime>,
    pub reviews: Vec<Review>,
    /// Incidents opened by "unjustified" verdicts.
    pub incidents: Vec<u64>,
    pub closed_at: Option<UnixTime>,
}

/// The roles that review every break-glass grant, one person each.
pub const REVIEWERS: [Role; 2] = [Role::Manager, Role::Security];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    AwaitingJustification,
    /// The justification is late (and was escalated).
    Overdue,
    AwaitingReview,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::AwaitingJustification => "awaiting justification",
            CaseStatus::Overdue => "justification overdue",
            CaseStatus::AwaitingReview => "awaiting review",
            CaseStatus::Closed => "closed",
        }
    }
}

impl Case {
    /// Where the case stands; "overdue" once jitd escalated it (on time:
    /// the deadline is a timer like any expiry).
    pub fn status(&self) -> CaseStatus {
        if self.closed_at.is_some() {
            CaseStatus::Closed
        } else if self.justification.is_some() {
            CaseStatus::AwaitingReview
        } else if self.overdue_at.is_some() {
            CaseStatus::Overdue
        } else {
            CaseStatus::AwaitingJustification
        }
    }

    pub fn awaiting_reviews(&self) -> Vec<Role> {
        REVIEWERS
            .into_iter()
            .filter(|role| !self.reviews.iter().any(|r| r.role == *role))
            .collect()
    }

    /// Whether reaching the justification deadline (a timer on the boot
    /// clock, like every expiry) escalates: nothing filed, not escalated yet.
    pub fn owes_escalation(&self) -> bool {
        self.justification.is_none() && self.overdue_at.is_none() && self.closed_at.is_none()
    }
}

/// Refuses a break-glass grant beyond `limit` per `window`.
pub fn check_rate(
    used: u32,
    limit: u32,
    window: Duration,
    contact: &str,
) -> Result<(), BreakGlassError> {
    if used < limit {
        return Ok(());
    }
    Err(BreakGlassError::RateLimited {
        used,
        limit,
        window: humantime::format_duration(window).to_string(),
        contact: contact.to_owned(),
    })
}

/// The holder files the justification; one is enough, late is still accepted.
pub fn justify(case: &Case, who: Uid, text: &str) -> Result<(), BreakGlassError> {
    if who != case.holder {
        return Err(BreakGlassError::NotHolder(case.grant));
    }
    if case.justification.is_some() {
        return Err(BreakGlassError::AlreadyJustified(case.grant));
    }
    Ok(validate_reason(text)?)
}

/// What a review changes.
#[derive(Debug, PartialEq, Eq)]
pub struct Reviewed {
    pub review: Review,
    /// An unjustified verdict opens a security incident.
    pub opens_incident: bool,
    /// That was the last review: the case closes.
    pub closes_case: bool,
}

/// A manager and a security reviewer, two distinct people, neither the holder.
/// Someone holding both roles fills whichever is still open.
pub fn review(
    case: &Case,
    who: &Actor,
    verdict: ReviewVerdict,
    comment: &str,
    now: UnixTime,
) -> Result<Reviewed, BreakGlassError> {
    if who.uid == case.holder {
        return Err(BreakGlassError::SelfReview);
    }
    let held: Vec<Role> = REVIEWERS
        .into_iter()
        .filter(|r| who.roles.contains(r))
        .collect();
    if held.is_empty() {
        return Err(BreakGlassError::NotReviewer(case.grant));
    }
    if case.reviews.iter().any(|r| r.uid == who.uid) {
        return Err(BreakGlassError::AlreadyReviewed(case.grant));
    }
    let awaiting = case.awaiting_reviews();
    let role = held.iter().copied().find(|r| awaiting.contains(r)).ok_or(
        BreakGlassError::RoleReviewed {
            id: case.grant,
            role: held[0].as_str(),
        },
    )?;
    validate_comment(comment, true)?;
    Ok(Reviewed {
        review: Review {
            uid: who.uid,
            name: who.name.clone(),
            role,
            verdict,
            comment: comment.to_owned(),
            at: now,
        },
        opens_incident: verdict == ReviewVerdict::Unjustified,
        closes_case: awaiting.len() == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> Case {
        Case {
            grant: 7,
            holder: 1000,
            due_at: 500,
            justification: None,
            justified_at: None,
            overdue_at: None,
            reviews: Vec::new(),
            incidents: Vec::new(),
            closed_at: None,
        }
    }

    fn actor(uid: Uid, roles: &[Role]) -> Actor {
        Actor {
            uid,
            name: format!("u{uid}"),
            roles: roles.to_vec(),
            may_revoke_any: roles.contains(&Role::Security),
        }
    }

    #[test]
    fn rate_limit_counts_up_to_the_limit_and_names_who_to_call() {
        let day = Duration::from_secs(86400);
        assert_eq!(check_rate(2, 3, day, "x"), Ok(()));
        let err = check_rate(3, 3, day, "the SOC on +1 555 0100").unwrap_err();
        assert_eq!(
            err.to_string(),
            "break-glass refused: you used it 3 times in the last 1day (limit 3); \
             call the SOC on +1 555 0100"
        );
        assert!(check_rate(0, 0, day, "x").is_err(), "limit 0 disables it");
    }

    #[test]
    fn only_the_holder_justifies_once() {
        let mut c = case();
        assert_eq!(
            justify(&c, 1001, "fire"),
            Err(BreakGlassError::NotHolder(7))
        );
        assert_eq!(
            justify(&c, 1000, "  "),
            Err(WorkflowError::EmptyReason.into())
        );
        assert_eq!(justify(&c, 1000, "disk full on db1"), Ok(()));
        c.justification = Some("disk full".into());
        assert_eq!(
            justify(&c, 1000, "again"),
            Err(BreakGlassError::AlreadyJustified(7))
        );
    }

    #[test]
    fn status_follows_the_deadline_justification_and_reviews() {
        let mut c = case();
        assert_eq!(c.status(), CaseStatus::AwaitingJustification);
        assert!(c.owes_escalation());
        c.overdue_at = Some(500);
        assert_eq!(c.status(), CaseStatus::Overdue);
        assert!(!c.owes_escalation(), "escalated once");
        c.justification = Some("late".into());
        assert_eq!(c.status(), CaseStatus::AwaitingReview);
        c.closed_at = Some(901);
        assert_eq!(c.status(), CaseStatus::Closed);
    }

    #[test]
    fn review_needs_two_distinct_eligible_people_neither_the_holder() {
        let mut c = case();
        let holder = actor(1000, &[Role::Manager, Role::Security]);
        assert_eq!(
            review(&c, &holder, ReviewVerdict::Justified, "ok", 1),
            Err(BreakGlassError::SelfReview)
        );
        let nobody = actor(1001, &[Role::Owner]);
        assert_eq!(
            review(&c, &nobody, ReviewVerdict::Justified, "ok", 1),
            Err(BreakGlassError::NotReviewer(7))
        );
        let both = actor(1002, &[Role::Manager, Role::Security]);
        let first = review(&c, &both, ReviewVerdict::Justified, "ok", 1).unwrap();
        assert_eq!(first.review.role, Role::Manager);
        assert!(!first.closes_case && !first.opens_incident);
        c.reviews.push(first.review);
        assert_eq!(
            review(&c, &both, ReviewVerdict::Justified, "again", 2),
            Err(BreakGlassError::AlreadyReviewed(7))
        );
        let manager = actor(1003, &[Role::Manager]);
        assert_eq!(
            review(&c, &manager, ReviewVerdict::Justified, "me too", 2),
            Err(BreakGlassError::RoleReviewed {
                id: 7,
                role: "manager"
            })
        );
        let security = actor(1004, &[Role::Security]);
        assert_eq!(
            review(&c, &security, ReviewVerdict::Unjustified, " ", 2),
            Err(WorkflowError::EmptyComment.into())
        );
        let last = review(&c, &security, ReviewVerdict::Unjustified, "no ticket", 2).unwrap();
        assert_eq!(last.review.role, Role::Security);
        assert!(last.closes_case && last.opens_incident);
    }

    #[test]
    fn verdicts_parse_strictly() {
        assert_eq!(
            ReviewVerdict::parse("justified"),
            Ok(ReviewVerdict::Justified)
        );
        assert_eq!(
            ReviewVerdict::parse("unjustified"),
            Ok(ReviewVerdict::Unjustified)
        );
        assert_eq!(
            ReviewVerdict::parse("yes"),
            Err(BreakGlassError::BadVerdict)
        );
    }
}
