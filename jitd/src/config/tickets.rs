//! `[tickets]`: how the tickets of resources with `require_ticket` are
//! checked (W1.11, docs/design.md "Ticket validation"): a command run as
//! an unprivileged user, or a webhook posted by jit-deliver; neither means
//! a ticket is required but not checked.

use serde::Deserialize;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use super::HumanDuration;
use crate::core::tickets::WhenDown;

/// The user a command validator runs as unless `user` says otherwise
/// (sysusers.d: a system user that owns nothing).
pub const DEFAULT_USER: &str = "jit-ticket";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `timeout`: a requester (or an approver) waits for the answer.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// argv (no shell): given the ask as JSON on stdin, answering on stdout.
    Command { argv: Vec<String>, user: String },
    /// Posted the ask as JSON by jit-deliver, answering in its body.
    Webhook { url: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketsConfig {
    pub validator: Option<Validator>,
    pub timeout: Duration,
    pub when_down: WhenDown,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            validator: None,
            timeout: DEFAULT_TIMEOUT,
            when_down: WhenDown::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTickets {
    command: Option<Spanned<Vec<String>>>,
    user: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<HumanDuration>>,
    when_down: WhenDown,
}

type SpanError = (Range<usize>, String);

impl RawTickets {
    pub(super) fn resolve(self) -> Result<TicketsConfig, SpanError> {
        let timeout = match self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t.get_ref().0.is_zero() || t.get_ref().0 > MAX_TIMEOUT => {
                return Err((
                    t.span(),
                    format!(
                        "[tickets] timeout is more than 0 and at most {}",
                        humantime::format_duration(MAX_TIMEOUT)
                    ),
                ))
            }
            Some(t) => t.into_inner().0,
        };
        let validator = match (self.command, self.url) {
            (Some(_), Some(url)) => {
                return Err((
                    url.span(),
                    "[tickets] has a command and a url: give one".into(),
                ))
            }
            (Some(command), None) => Some(command_validator(command, self.user)?),
            (None, Some(url)) => {
                if let Some(user) = self.user {
                    return Err((
                        user.span(),
                        "[tickets] user is for a command; a webhook is posted by jit-deliver"
                            .into(),
                    ));
                }
                Some(webhook_validator(url)?)
            }
            (None, None) => {
                if let Some(user) = self.user {
                    return Err((user.span(), "[tickets] user without a command".into()));
                }
                None
            }
        };
        Ok(TicketsConfig {
            validator,
            timeout,
            when_down: self.when_down,
        })
    }
}

fn command_validator(
    command: Spanned<Vec<String>>,
    user: Option<Spanned<String>>,
) -> Result<Validator, SpanError> {
    let span = command.span();
    let argv = command.into_inner();
    match argv.first() {
        None => {
            return Err((
                span,
                "[tickets] command is empty: give the program and its arguments".into(),
            ))
        }
        Some(program) if !program.starts_with('/') => return Err((
            span,
            format!(
                "[tickets] command runs '{program}': give its absolute path (no shell, no PATH)"
            ),
        )),
        Some(_) => {}
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err((span, "[tickets] command has a NUL byte".into()));
    }
    let user = match user {
        None => DEFAULT_USER.to_owned(),
        Some(u) if u.get_ref() == "root" || u.get_ref() == "0" => {
            return Err((
                u.span(),
                "[tickets] user must not be root: the command reads what requesters type".into(),
            ))
        }
        Some(u) if !crate::core::model::valid_account_name(u.get_ref()) => {
            return Err((
                u.span(),
                format!("'{}' is not a valid user name", u.get_ref()),
            ))
        }
        Some(u) => u.into_inner(),
    };
    Ok(Validator::Command { argv, user })
}

fn webhook_validator(url: Spanned<String>) -> Result<Validator, SpanError> {
    let text = url.get_ref();
    if !(text.starts_with("https://") || text.starts_with("http://"))
        || text.contains(char::is_whitespace)
    {
        return Err((
            url.span(),
            "[tickets] url is an http:// or https:// URL".into(),
        ));
    }
    Ok(Validator::Webhook {
        url: url.into_inner(),
    })
}
