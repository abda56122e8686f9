//! The request state machine: who may move a request from which state to which.
//!
//! Every function takes the request and the acting person's facts and either
//! returns the change to make or the reason it is refused.

use std::time::Duration;
use thiserror::Error;

use super::model::{
    Decision, Kind, Request, RequestId, Role, Route, State, Uid, UnixTime, Verdict,
    MAX_COMMENT_BYTES, MAX_REASON_BYTES, MAX_TICKET_BYTES,
};

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WorkflowError {
    #[error("unknown resource '{0}'")]
    UnknownResource(String),
    #[error("you are not eligible to request '{0}'")]
    NotEligible(String),
    #[error("requested duration {requested} exceeds the {cap} maximum for '{resource}'")]
    OverCap {
        resource: String,
        requested: String,
        cap: String,
    },
    #[error("duration must be at least 1s")]
    ZeroDuration,
    #[error("a reason is required")]
    EmptyReason,
    #[error("the reason is longer than {MAX_REASON_BYTES} bytes")]
    ReasonTooLong,
    #[error("the ticket reference is longer than {MAX_TICKET_BYTES} bytes")]
    TicketTooLong,
    #[error("the comment is longer than {MAX_COMMENT_BYTES} bytes")]
    CommentTooLong,
    #[error("a comment is required")]
    EmptyComment,
    #[error("request {0} not found")]
    NotFound(RequestId),
    #[error("you cannot approve or deny your own request")]
    SelfApproval,
    #[error("you are not an approver for request {0}")]
    NotApprover(RequestId),
    #[error("you have already decided on request {0}")]
    AlreadyDecided(RequestId),
    #[error("request {id} already has its {role} approval; it is waiting for another role")]
    RoleFilled { id: RequestId, role: &'static str },
    #[error("request {id} is {state}, not pending")]
    NotPending { id: RequestId, state: State },
    #[error("request {id} is {state}, not active")]
    NotActive { id: RequestId, state: State },
    #[error("request {id} is {state}, not awaiting activation")]
    NotAwaitingActivation { id: RequestId, state: State },
    #[error("request {0} was not activated in time; request it again")]
    ActivationLapsed(RequestId),
    #[error("request {0} belongs to another user")]
    NotYours(RequestId),
    #[error("grant {0} is a vendor's: its sponsor asks for a new vendor request instead")]
    VendorGrant(RequestId),
    #[error("grant {id} already has a pending extension (request {pending})")]
    ExtensionPending { id: RequestId, pending: RequestId },
    #[error("the start {0} has passed: give a time ahead, or leave out --start")]
    StartPassed(String),
    #[error("the start {start} is more than {within} ahead ([limits] start_within): ask nearer the time")]
    StartTooFar { start: String, within: String },
    #[error("request {0}'s window has ended: it can no longer be approved")]
    WindowOver(RequestId),
}

/// What the requester asked for, before any policy is applied.
pub struct Submission<'a> {
    pub duration: Duration,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
}

/// Checks the parts of a submission that do not depend on who asks.
pub fn validate_submission(
    resource: &str,
    sub: &Submission<'_>,
    max_duration: Duration,
) -> Result<(), WorkflowError> {
    if sub.duration < Duration::from_secs(1) {
        return Err(WorkflowError::ZeroDuration);
    }
    if sub.duration > max_duration {
        return Err(WorkflowError::OverCap {
            resource: resource.to_owned(),
            requested: humantime::format_duration(sub.duration).to_string(),
            cap: humantime::format_duration(max_duration).to_string(),
        });
    }
    validate_reason(sub.reason)?;
    sub.ticket.map_or(Ok(()), validate_ticket)
}

pub fn validate_ticket(ticket: &str) -> Result<(), WorkflowError> {
    if ticket.len() > MAX_TICKET_BYTES {
        return Err(WorkflowError::TicketTooLong);
    }
    Ok(())
}

pub fn validate_reason(reason: &str) -> Result<(), WorkflowError> {
    if reason.trim().is_empty() {
        Err(WorkflowError::EmptyReason)
    } else if reason.len() > MAX_REASON_BYTES {
        Err(WorkflowError::ReasonTooLong)
    } else {
        Ok(())
    }
}

pub fn validate_comment(comment: &str, required: bool) -> Result<(), WorkflowError> {
    if comment.len() > MAX_COMMENT_BYTES {
        Err(WorkflowError::CommentTooLong)
    } else if required && comment.trim().is_empty() {
        Err(WorkflowError::EmptyComment)
    } else {
        Ok(())
    }
}

/// The acting person, as established from bus credentials and configuration.
#[derive(Clone, Debug)]
pub struct Actor {
    pub uid: Uid,
    pub name: String,
    /// Roles this person holds for the request at hand (owner is per resource).
    pub roles: Vec<Role>,
    /// May revoke any grant (root or the security role).
    pub may_revoke_any: bool,
}

/// Outcome of a successful approval.
#[derive(Debug, PartialEq, Eq)]
pub enum Approved {
    /// More approvals are still needed.
    Partial(Decision),
    /// That was the last one: the request is approved.
    Complete(Decision),
}

pub fn approve(
    req: &Request,
    who: &Actor,
    comment: &str,
    now: UnixTime,
) -> Result<Approved, WorkflowError> {
    let role = eligible_role(req, who)?;
    validate_comment(comment, false)?;
    super::schedule::check_open(req, now)?;
    let decision = Decision {
        uid: who.uid,
        name: who.name.clone(),
        role,
        verdict: Verdict::Approve,
        comment: comment.to_owned(),
        at: now,
    };
    let remaining = req.awaiting().into_iter().filter(|r| *r != role).count();
    Ok(if remaining == 0 {
        Approved::Complete(decision)
    } else {
        Approved::Partial(decision)
    })
}

pub fn deny(
    req: &Request,
    who: &Actor,
    comment: &str,
    now: UnixTime,
) -> Result<Decision, WorkflowError> {
    let role = eligible_role(req, who)?;
    validate_comment(comment, true)?;
    Ok(Decision {
        uid: who.uid,
        name: who.name.clone(),
        role,
        verdict: Verdict::Deny,
        comment: comment.to_owned(),
        at: now,
    })
}

/// The role in which `who` may decide on `req`, or why they may not.
///
/// A person holding two roles fills one of them: two distinct people are
/// always needed for dual approval.
fn eligible_role(req: &Request, who: &Actor) -> Result<Role, WorkflowError> {
    if req.state != State::Pending {
        return Err(WorkflowError::NotPending {
            id: req.id,
            state: req.state,
        });
    }
    if who.uid == req.uid {
        return Err(WorkflowError::SelfApproval);
    }
    if req.decisions.iter().any(|d| d.uid == who.uid) {
        return Err(WorkflowError::AlreadyDecided(req.id));
    }
    let required = req.route.required_roles();
    let held: Vec<Role> = required
        .iter()
        .copied()
        .filter(|r| who.roles.contains(r))
        .collect();
    if held.is_empty() {
        return Err(WorkflowError::NotApprover(req.id));
    }
    let awaiting = req.awaiting();
    held.iter()
        .copied()
        .find(|r| awaiting.contains(r))
        .ok_or(WorkflowError::RoleFilled {
            id: req.id,
            role: held[0].as_str(),
        })
}

/// Who may end a request early: the requester (withdraw or drop their own
/// grant), anyone who may revoke any grant, or, once it is approved, someone
/// who approved it and still holds the role they approved it in (an
/// approver watching a session they let happen ends it; a pending request
/// is theirs to deny, with a comment, not to withdraw).
pub fn revoke(req: &Request, who: &Actor) -> Result<(), WorkflowError> {
    let approved_it = matches!(
        req.state,
        State::Active | State::Approved | State::Scheduled
    ) && req
        .approvals()
        .any(|d| d.uid == who.uid && who.roles.contains(&d.role));
    if !approved_it {
        validate_owner_or_admin(req, who)?;
    }
    if req.state.is_final() {
        return Err(WorkflowError::NotActive {
            id: req.id,
            state: req.state,
        });
    }
    Ok(())
}

/// An approved grant awaiting a second factor is activated by its holder
/// only, before `activate_by`.
pub fn check_activation(req: &Request, uid: Uid, now: UnixTime) -> Result<(), WorkflowError> {
    if req.uid != uid {
        return Err(WorkflowError::NotYours(req.id));
    }
    if req.state != State::Approved {
        return Err(WorkflowError::NotAwaitingActivation {
            id: req.id,
            state: req.state,
        });
    }
    if req.activate_by.is_some_and(|by| now >= by) {
        return Err(WorkflowError::ActivationLapsed(req.id));
    }
    Ok(())
}

/// An extension may be asked for by the grant's holder, while it is active.
pub fn check_extendable(grant: &Request, who: &Actor) -> Result<(), WorkflowError> {
    if grant.uid != who.uid {
        return Err(WorkflowError::NotYours(grant.id));
    }
    if grant.route == Route::Vendor {
        return Err(WorkflowError::VendorGrant(grant.id));
    }
    if grant.state != State::Active || grant.kind != Kind::Grant {
        return Err(WorkflowError::NotActive {
            id: grant.id,
            state: grant.state,
        });
    }
    Ok(())
}

/// The expiry an approved extension gives its grant: `added` on top of the
/// current expiry, but never further ahead of `now` than the resource cap.
pub fn extended_expiry(
    current_expiry: UnixTime,
    added: Duration,
    now: UnixTime,
    cap: Duration,
) -> UnixTime {
    let wanted = current_expiry.saturating_add(secs(added));
    wanted.min(now.saturating_add(secs(cap)))
}

/// How far ahead of `now` the grant would reach if extended, to check the cap at request time.
pub fn extension_reach(current_expiry: UnixTime, added: Duration, now: UnixTime) -> Duration {
    let reach = current_expiry
        .saturating_add(secs(added))
        .saturating_sub(now);
    Duration::from_secs(reach.max(0) as u64)
}

fn validate_owner_or_admin(req: &Request, who: &Actor) -> Result<(), WorkflowError> {
    if req.uid == who.uid || who.may_revoke_any {
        Ok(())
    } else {
        Err(WorkflowError::NotYours(req.id))
    }
}

pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Route;
    use crate::core::risk::RiskAssessment;

    fn request(route: Route) -> Request {
        Request {
            id: 7,
            kind: Kind::Grant,
            uid: 1000,
            user: "alice".into(),
            resource: "sudo".into(),
            duration: Duration::from_secs(1800),
            reason: "fix".into(),
            ticket: None,
            requested_at: 0,
            starts_at: None,
            route,
            risk: RiskAssessment {
                score: 80,
                factors: vec![],
            },
            state: State::Pending,
            decisions: vec![],
            expires_at: None,
            activate_by: None,
            ended_at: None,
            ended_by: None,
            ticket_check: None,
            follow_up: None,
            policy: None,
        }
    }

    fn actor(uid: Uid, roles: &[Role]) -> Actor {
        Actor {
            uid,
            name: format!("u{uid}"),
            roles: roles.to_vec(),
            may_revoke_any: false,
        }
    }

    fn approve_as(req: &mut Request, uid: Uid, role: Role) {
        req.decisions.push(Decision {
            uid,
            name: format!("u{uid}"),
            role,
            verdict: Verdict::Approve,
            comment: String::new(),
            at: 1,
        });
    }

    fn record(req: &mut Request, outcome: Approved) -> bool {
        match outcome {
            Approved::Partial(d) => {
                req.decisions.push(d);
                false
            }
            Approved::Complete(d) => {
                req.decisions.push(d);
                true
            }
        }
    }

    #[test]
    fn dual_needs_a_manager_and_a_security_person() {
        let mut req = request(Route::Dual);
        let m = approve(&req, &actor(1, &[Role::Manager]), "", 1).unwrap();
        assert!(!record(&mut req, m));
        assert_eq!(req.awaiting(), vec![Role::Security]);
        let s = approve(&req, &actor(2, &[Role::Security]), "ok", 2).unwrap();
        assert!(record(&mut req, s));
    }

    #[test]
    fn the_same_person_counts_once_even_with_both_roles() {
        let mut req = request(Route::Dual);
        let both = actor(1, &[Role::Manager, Role::Security]);
        let first = approve(&req, &both, "", 1).unwrap();
        assert!(!record(&mut req, first));
        assert_eq!(
            approve(&req, &both, "", 2),
            Err(WorkflowError::AlreadyDecided(7))
        );
    }

    #[test]
    fn a_second_manager_cannot_stand_in_for_security() {
        let mut req = request(Route::Dual);
        let first = approve(&req, &actor(1, &[Role::Manager]), "", 1).unwrap();
        record(&mut req, first);
        assert_eq!(
            approve(&req, &actor(2, &[Role::Manager]), "", 2),
            Err(WorkflowError::RoleFilled {
                id: 7,
                role: "manager"
            })
        );
    }

    #[test]
    fn person_with_both_roles_fills_the_missing_one() {
        let mut req = request(Route::Dual);
        let first = approve(&req, &actor(1, &[Role::Security]), "", 1).unwrap();
        record(&mut req, first);
        let second = approve(&req, &actor(2, &[Role::Manager, Role::Security]), "", 2).unwrap();
        assert_eq!(
            second,
            Approved::Complete(Decision {
                uid: 2,
                name: "u2".into(),
                role: Role::Manager,
                verdict: Verdict::Approve,
                comment: String::new(),
                at: 2
            })
        );
    }

    #[test]
    fn requester_can_never_approve_or_deny() {
        let req = request(Route::Dual);
        let me = actor(1000, &[Role::Manager, Role::Security, Role::Owner]);
        assert_eq!(approve(&req, &me, "", 1), Err(WorkflowError::SelfApproval));
        assert_eq!(deny(&req, &me, "no", 1), Err(WorkflowError::SelfApproval));
    }

    #[test]
    fn outsiders_and_wrong_roles_are_not_approvers() {
        let owner_req = request(Route::Owner);
        assert_eq!(
            approve(&owner_req, &actor(1, &[Role::Manager]), "", 1),
            Err(WorkflowError::NotApprover(7))
        );
        let dual = request(Route::Dual);
        assert_eq!(
            approve(&dual, &actor(1, &[Role::Owner]), "", 1),
            Err(WorkflowError::NotApprover(7))
        );
        assert_eq!(
            deny(&dual, &actor(1, &[]), "no", 1),
            Err(WorkflowError::NotApprover(7))
        );
    }

    #[test]
    fn decided_requests_cannot_be_decided_again() {
        for state in State::ALL.into_iter().filter(|s| *s != State::Pending) {
            let mut req = request(Route::Owner);
            req.state = state;
            assert_eq!(
                approve(&req, &actor(1, &[Role::Owner]), "", 1),
                Err(WorkflowError::NotPending { id: 7, state })
            );
        }
    }

    #[test]
    fn only_the_holder_activates_an_approved_grant_before_its_deadline() {
        let mut req = request(Route::Owner);
        req.state = State::Approved;
        req.activate_by = Some(100);
        assert_eq!(check_activation(&req, 1000, 99), Ok(()));
        assert_eq!(
            check_activation(&req, 1001, 99),
            Err(WorkflowError::NotYours(7))
        );
        assert_eq!(
            check_activation(&req, 1000, 100),
            Err(WorkflowError::ActivationLapsed(7))
        );
        for state in State::ALL.into_iter().filter(|s| *s != State::Approved) {
            req.state = state;
            assert_eq!(
                check_activation(&req, 1000, 99),
                Err(WorkflowError::NotAwaitingActivation { id: 7, state })
            );
        }
    }

    #[test]
    fn an_approver_still_in_the_role_may_end_what_they_approved() {
        let mut req = request(Route::Dual);
        req.state = State::Active;
        approve_as(&mut req, 5, Role::Manager);
        assert_eq!(revoke(&req, &actor(5, &[Role::Manager])), Ok(()));
        // Out of the role since: no more than anyone else.
        assert_eq!(
            revoke(&req, &actor(5, &[])),
            Err(WorkflowError::NotYours(7))
        );
        assert_eq!(
            revoke(&req, &actor(6, &[Role::Manager])),
            Err(WorkflowError::NotYours(7))
        );
        // Pending (half approved): denied with a comment, not withdrawn.
        req.state = State::Pending;
        assert_eq!(
            revoke(&req, &actor(5, &[Role::Manager])),
            Err(WorkflowError::NotYours(7))
        );
    }

    /// A window from 1000 for 30 minutes: approvals complete ahead of it or
    /// late into it, never after it; the grant ends with the window
    /// however late it starts; before its start it is revoked like a grant
    /// and cannot be extended.
    #[test]
    fn a_scheduled_request_is_decided_within_its_window_and_ends_with_it() {
        let mut req = request(Route::Owner);
        req.starts_at = Some(1000);
        let owner = actor(1, &[Role::Owner]);
        assert!(matches!(
            approve(&req, &owner, "", 10),
            Ok(Approved::Complete(_))
        ));
        assert!(approve(&req, &owner, "", 2799).is_ok());
        assert_eq!(
            approve(&req, &owner, "", 2800),
            Err(WorkflowError::WindowOver(7))
        );
        assert_eq!(crate::core::schedule::expiry_from(&req, 10), 2800);
        assert_eq!(crate::core::schedule::expiry_from(&req, 2000), 2800);
        req.starts_at = None;
        assert_eq!(crate::core::schedule::expiry_from(&req, 2000), 3800);

        req.starts_at = Some(1000);
        req.state = State::Scheduled;
        approve_as(&mut req, 1, Role::Owner);
        let holder = actor(1000, &[]);
        assert_eq!(
            check_extendable(&req, &holder),
            Err(WorkflowError::NotActive {
                id: 7,
                state: State::Scheduled
            })
        );
        assert_eq!(revoke(&req, &holder), Ok(()));
        assert_eq!(revoke(&req, &owner), Ok(()));
        assert_eq!(
            revoke(&req, &actor(2, &[Role::Owner])),
            Err(WorkflowError::NotYours(7))
        );
    }

    #[test]
    fn deny_needs_a_comment() {
        let req = request(Route::Owner);
        assert_eq!(
            deny(&req, &actor(1, &[Role::Owner]), "  ", 1),
            Err(WorkflowError::EmptyComment)
        );
        assert!(deny(&req, &actor(1, &[Role::Owner]), "not now", 1).is_ok());
    }

    #[test]
    fn revoke_is_for_the_holder_or_an_admin() {
        let mut req = request(Route::Auto);
        req.state = State::Active;
        assert!(revoke(&req, &actor(1000, &[])).is_ok());
        assert_eq!(
            revoke(&req, &actor(5, &[Role::Manager])),
            Err(WorkflowError::NotYours(7))
        );
        let admin = Actor {
            may_revoke_any: true,
            ..actor(5, &[])
        };
        assert!(revoke(&req, &admin).is_ok());
        req.state = State::Expired;
        assert!(matches!(
            revoke(&req, &admin),
            Err(WorkflowError::NotActive { .. })
        ));
    }

    #[test]
    fn submissions_are_validated() {
        let cap = Duration::from_secs(3600);
        let ok = Submission {
            duration: Duration::from_secs(60),
            reason: "why",
            ticket: Some("T-1"),
        };
        assert_eq!(validate_submission("sudo", &ok, cap), Ok(()));
        let over = Submission {
            duration: Duration::from_secs(3601),
            ..ok
        };
        assert!(matches!(
            validate_submission("sudo", &over, cap),
            Err(WorkflowError::OverCap { .. })
        ));
        let zero = Submission {
            duration: Duration::ZERO,
            reason: "why",
            ticket: None,
        };
        assert_eq!(
            validate_submission("sudo", &zero, cap),
            Err(WorkflowError::ZeroDuration)
        );
        let long = "x".repeat(MAX_REASON_BYTES + 1);
        let blank = Submission {
            duration: Duration::from_secs(60),
            reason: " \n",
            ticket: None,
        };
        assert_eq!(
            validate_submission("sudo", &blank, cap),
            Err(WorkflowError::EmptyReason)
        );
        let too_long = Submission {
            duration: Duration::from_secs(60),
            reason: &long,
            ticket: None,
        };
        assert_eq!(
            validate_submission("sudo", &too_long, cap),
            Err(WorkflowError::ReasonTooLong)
        );
    }

    #[test]
    fn extensions_never_reach_past_the_cap() {
        let cap = Duration::from_secs(4 * 3600);
        assert_eq!(
            extended_expiry(1000, Duration::from_secs(600), 0, cap),
            1600
        );
        assert_eq!(
            extended_expiry(3 * 3600, Duration::from_secs(7200), 0, cap),
            4 * 3600
        );
        assert_eq!(
            extension_reach(1000, Duration::from_secs(600), 400),
            Duration::from_secs(1200)
        );
    }
}
