//! ITSM ticket validation (W1.11, docs/design.md "Ticket validation"):
//! what a validator is asked, how its answer is read, and what the answer
//! does to a request or an approval. No I/O: the command (`tickets.rs`)
//! and the webhook (`jit-deliver`) only carry the bytes.

use serde::{Deserialize, Serialize};

use super::model::{Route, UnixTime};
use super::sanitize;

/// Most bytes of an answer read (a command's stdout, a webhook's body).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Longest title and message kept (characters), after escaping.
pub const MAX_TITLE: usize = 200;
pub const MAX_MESSAGE: usize = 500;

/// What the validator is given, as JSON (on the command's stdin, as the
/// webhook's body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketAsk {
    pub ticket: String,
    pub requester: String,
    pub resource: String,
    pub stage: Stage,
}

/// When a ticket is checked: as the request is made, and again as each
/// approver approves it (a ticket closed meanwhile no longer holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Request,
    Approval,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    /// No answer: the validator timed out, crashed, answered something
    /// else than the documented JSON, or could not be reached.
    Unavailable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// A check's result, recorded on the request (the latest) and audited
/// (every one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCheck {
    pub verdict: Verdict,
    /// The ticket's title, as the validator gave it (terminal-safe, cut).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The validator's message, or why there was no answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub stage: Stage,
    pub at: UnixTime,
}

/// What a validator must answer: `{"valid": true|false, "title": "...",
/// "message": "..."}`; other fields are ignored (an ITSM's own).
#[derive(Deserialize)]
struct Answer {
    valid: bool,
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
}

impl TicketCheck {
    /// The check an answer (a command's stdout, a webhook's 2xx body) makes.
    pub fn from_answer(body: &[u8], stage: Stage, at: UnixTime) -> TicketCheck {
        if body.len() > MAX_ANSWER {
            return TicketCheck::unavailable(
                format!("the validator answered more than {MAX_ANSWER} bytes"),
                stage,
                at,
            );
        }
        // An object, as documented: serde would also read `[true]`.
        let answer = serde_json::from_slice::<serde_json::Value>(body).and_then(|v| match v {
            serde_json::Value::Object(_) => serde_json::from_value::<Answer>(v),
            _ => Err(serde::de::Error::custom("an answer is a JSON object")),
        });
        match answer {
            Ok(a) => TicketCheck {
                verdict: if a.valid {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                title: clean(&a.title, MAX_TITLE),
                message: clean(&a.message, MAX_MESSAGE),
                stage,
                at,
            },
            Err(e) => TicketCheck::unavailable(
                format!(
                    "the validator's answer is not {{\"valid\": true|false, ...}}: {}",
                    clean(&e.to_string(), MAX_MESSAGE)
                ),
                stage,
                at,
            ),
        }
    }

    /// No answer, and why (said to the requester: never a secret).
    pub fn unavailable(why: impl AsRef<str>, stage: Stage, at: UnixTime) -> TicketCheck {
        TicketCheck {
            verdict: Verdict::Unavailable,
            title: String::new(),
            message: clean(why.as_ref(), MAX_MESSAGE),
            stage,
            at,
        }
    }
}

impl TicketCheck {
    /// One line for people: the verdict, with the title or the message.
    pub fn summary(&self) -> String {
        let said = match (self.verdict, self.title.is_empty(), self.message.is_empty()) {
            (Verdict::Valid, false, _) => format!(": {}", self.title),
            (_, _, false) => format!(": {}", self.message),
            _ => String::new(),
        };
        let stage = match self.stage {
            Stage::Request => "at the request",
            Stage::Approval => "at an approval",
        };
        match self.verdict {
            Verdict::Unavailable => format!("not checked, {stage} (validator unavailable{said})"),
            verdict => format!("{} {stage}{said}", verdict.as_str()),
        }
    }
}

/// `text` escaped for a terminal (it reaches approvers' terminals, mail and
/// chat) and cut to `max` characters.
fn clean(text: &str, max: usize) -> String {
    let safe = sanitize::for_terminal(text.trim());
    match safe.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &safe[..cut]),
        None => safe.into_owned(),
    }
}

/// What to do when the validator gives no answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenDown {
    /// The request (or the approval) is refused: ask again later.
    #[default]
    Refuse,
    /// It goes on, recorded as unchecked, and a person approves it: never
    /// risk's `auto` or a policy rule.
    Approvers,
}

/// What a check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    /// Proceed, but only a person may approve.
    HumanOnly,
    Refuse,
}

pub fn outcome(check: &TicketCheck, when_down: WhenDown) -> Outcome {
    match (check.verdict, when_down) {
        (Verdict::Valid, _) => Outcome::Proceed,
        (Verdict::Invalid, _) => Outcome::Refuse,
        (Verdict::Unavailable, WhenDown::Refuse) => Outcome::Refuse,
        (Verdict::Unavailable, WhenDown::Approvers) => Outcome::HumanOnly,
    }
}

/// The route of a request nobody may approve but a person: what risk or a
/// rule approved at once goes to its owners (to both roles without owners).
pub fn human_route(route: Route, has_owners: bool) -> Route {
    match route {
        Route::Auto | Route::Policy if has_owners => Route::Owner,
        Route::Auto | Route::Policy => Route::Dual,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> TicketCheck {
        TicketCheck::from_answer(body.as_bytes(), Stage::Request, 7)
    }

    #[test]
    fn answers_are_read_escaped_and_cut() {
        let ok = read(r#"{"valid": true, "title": "Disk full on db1", "extra": 1}"#);
        assert_eq!(
            (ok.verdict, ok.title.as_str(), ok.message.as_str()),
            (Verdict::Valid, "Disk full on db1", "")
        );
        let no = read(r#"{"valid": false, "message": "closed \u001b[2J yesterday"}"#);
        assert_eq!(no.verdict, Verdict::Invalid);
        assert!(!no.message.contains('\u{1b}'), "{no:?}");
        assert!(no.message.starts_with("closed "), "{no:?}");
        let long = read(&format!(
            r#"{{"valid": true, "title": "{}"}}"#,
            "é".repeat(500)
        ));
        assert_eq!(
            long.title.chars().count(),
            MAX_TITLE + 1,
            "cut, with an ellipsis"
        );
    }

    #[test]
    fn anything_but_the_documented_answer_is_no_answer() {
        for body in ["", "yes", "{}", r#"{"valid": "true"}"#, "[true]", "\u{0}"] {
            let check = read(body);
            assert_eq!(check.verdict, Verdict::Unavailable, "{body:?}");
            assert!(check.message.contains("not {\"valid\""), "{check:?}");
        }
        let huge = format!(
            r#"{{"valid": true, "title": "{}"}}"#,
            "x".repeat(MAX_ANSWER)
        );
        assert_eq!(read(&huge).verdict, Verdict::Unavailable);
    }

    #[test]
    fn a_validator_that_is_down_refuses_or_leaves_it_to_people() {
        let down = TicketCheck::unavailable("timed out", Stage::Approval, 1);
        assert_eq!(outcome(&down, WhenDown::Refuse), Outcome::Refuse);
        assert_eq!(outcome(&down, WhenDown::Approvers), Outcome::HumanOnly);
        let invalid = read(r#"{"valid": false}"#);
        assert_eq!(outcome(&invalid, WhenDown::Approvers), Outcome::Refuse);
        let valid = read(r#"{"valid": true}"#);
        assert_eq!(outcome(&valid, WhenDown::Refuse), Outcome::Proceed);
        assert_eq!(human_route(Route::Auto, true), Route::Owner);
        assert_eq!(human_route(Route::Policy, false), Route::Dual);
        assert_eq!(human_route(Route::Dual, true), Route::Dual);
        assert_eq!(human_route(Route::Owner, true), Route::Owner);
    }

    #[test]
    fn summaries_say_the_verdict_and_what_matters_of_it() {
        let valid = read(r#"{"valid": true, "title": "Disk full", "message": "ok"}"#);
        assert_eq!(valid.summary(), "valid at the request: Disk full");
        let invalid = read(r#"{"valid": false, "message": "closed"}"#);
        assert_eq!(invalid.summary(), "invalid at the request: closed");
        let down = TicketCheck::unavailable("timed out", Stage::Approval, 1);
        assert_eq!(
            down.summary(),
            "not checked, at an approval (validator unavailable: timed out)"
        );
    }
}
