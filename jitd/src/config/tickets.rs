//! `[tickets]`: how the tickets of resources with `require_ticket` are
//! checked (W1.11, docs/design.md "Ticket validation"): a command or a
//! webhook, both run by `jit-deliver --tickets` as the unprivileged
//! `jit-ticket` user; neither means a ticket is required but not checked.

use serde::Deserialize;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use super::HumanDuration;
use crate::core::tickets::WhenDown;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `timeout`: a requester (or an approver) waits for the answer.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// argv (no shell): given the ask as JSON on stdin, answering on stdout.
    Command { argv: Vec<String> },
    /// Posted the ask as JSON, answering in its body.
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
    url: Option<Spanned<String>>,
    /// The webhook's URL in a file of its own (it may hold a token; the
    /// config is world-readable): root's, not readable by others.
    url_file: Option<Spanned<String>>,
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
        let url = match (self.url, self.url_file) {
            (Some(_), Some(file)) => {
                return Err((
                    file.span(),
                    "[tickets] has a url and a url_file: give one".into(),
                ))
            }
            (Some(url), None) => Some(url),
            (None, Some(file)) => Some(read_url_file(file)?),
            (None, None) => None,
        };
        let validator = match (self.command, url) {
            (Some(_), Some(url)) => {
                return Err((
                    url.span(),
                    "[tickets] has a command and a url: give one".into(),
                ))
            }
            (Some(command), None) => Some(command_validator(command)?),
            (None, Some(url)) => Some(webhook_validator(url)?),
            (None, None) => None,
        };
        Ok(TicketsConfig {
            validator,
            timeout,
            when_down: self.when_down,
        })
    }
}

fn command_validator(command: Spanned<Vec<String>>) -> Result<Validator, SpanError> {
    let span = command.span();
    let argv = command.into_inner();
    match argv.first() {
        None => {
            return Err((
                span,
                "[tickets] command is empty: give the program and its arguments".into(),
            ))
        }
        Some(program) if !program.starts_with('/') => {
            return Err((
                span,
                format!(
                    "[tickets] command runs '{program}': give its absolute path (no shell, no PATH)"
                ),
            ))
        }
        Some(_) => {}
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err((span, "[tickets] command has a NUL byte".into()));
    }
    Ok(Validator::Command { argv })
}

/// The URL in `file` (its one line), a file of secrets: the config names
/// it, and the token a URL may hold stays out of the world-readable config.
fn read_url_file(file: Spanned<String>) -> Result<Spanned<String>, SpanError> {
    let span = file.span();
    let text = super::read_private(std::path::Path::new(file.get_ref()), "[tickets] url_file")
        .map_err(|why| (span.clone(), why))?;
    Ok(Spanned::new(span, text.trim().to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = "[roles]\nmanager = [\"user:mike\"]\nsecurity = [\"user:sam\"]\n[tickets]\n";

    fn parse(tickets: &str) -> Result<crate::config::Config, String> {
        crate::config::parse(&format!("{BASE}{tickets}"), Path::new("jitd.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_command_or_a_url_with_their_defaults() {
        let c = parse("command = [\"/usr/local/bin/check\", \"--prod\"]\n").unwrap();
        assert_eq!(
            c.tickets.validator,
            Some(Validator::Command {
                argv: vec!["/usr/local/bin/check".into(), "--prod".into()],
            })
        );
        assert_eq!(c.tickets.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.tickets.when_down, WhenDown::Refuse);
        let c = parse(
            "url = \"https://itsm.example/v\"\nwhen_down = \"approvers\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(
            c.tickets.validator,
            Some(Validator::Webhook {
                url: "https://itsm.example/v".into()
            })
        );
        assert_eq!(c.tickets.when_down, WhenDown::Approvers);
        assert_eq!(c.tickets.timeout, Duration::from_secs(2));
        assert_eq!(parse("").unwrap().tickets.validator, None);
    }

    #[test]
    fn a_url_file_is_read_only_when_nobody_else_can() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "https://itsm.example/v?token=s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = parse(&format!("url_file = \"{}\"\n", file.display())).unwrap();
        assert_eq!(
            c.tickets.validator,
            Some(Validator::Webhook {
                url: "https://itsm.example/v?token=s3cret".into()
            })
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = parse(&format!("url_file = \"{}\"\n", file.display())).unwrap_err();
        assert!(
            err.starts_with("jitd.toml:5:12: [tickets] url_file "),
            "{err}"
        );
        assert!(
            err.contains("accessible by group or others (mode 0644)"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        let err = parse(&format!("url_file = \"{}\"\n", dir.path().display())).unwrap_err();
        assert!(err.ends_with("is not a regular file"), "{err}");
    }

    #[test]
    fn every_mistake_is_refused_where_it_is() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("command = []\n", "5:11: [tickets] command is empty"),
            ("command = [\"check\"]\n", "5:11: [tickets] command runs 'check': give its absolute path"),
            ("command = [\"/c\"]\nurl = \"https://x\"\n", "6:7: [tickets] has a command and a url"),
            ("url = \"ftp://x\"\n", "5:7: [tickets] url is an http:// or https:// URL"),
            ("url = \"https://x\"\nurl_file = \"/etc/jit/url\"\n", "6:12: [tickets] has a url and a url_file"),
            ("user = \"nobody\"\n", "5:1: unknown field `user`"),
            ("url = \"https://x\"\ntimeout = \"2m\"\n", "6:11: [tickets] timeout is more than 0 and at most 1m"),
            ("url = \"https://x\"\nwhen_down = \"allow\"\n", "6:13: unknown variant `allow`"),
            ("url = \"https://x\"\nretries = 3\n", "6:1: unknown field `retries`"),
        ];
        for (text, want) in cases {
            let got = parse(text).map(drop).unwrap_err();
            assert!(
                got.starts_with(&format!("jitd.toml:{want}")),
                "{text:?}: {got}"
            );
        }
    }

    #[test]
    fn a_rule_approving_on_a_ticket_names_only_resources_whose_tickets_are_checked() {
        let text = |require: &str, tickets: &str| {
            format!(
                "[roles]\nmanager = [\"user:mike\"]\nsecurity = [\"user:sam\"]\n\
                 [[resource]]\nname = \"db\"\nowners = [\"user:olivia\"]\neligible = [\"user:alice\"]\n{require}\
                 [[policy]]\nname = \"chg\"\nusers = [\"alice\"]\nresources = [\"db\"]\nmax_duration = \"1h\"\n\
                 ticket = \"CHG-[0-9]+\"\naction = \"approve\"\n{tickets}"
            )
        };
        let checked = "[tickets]\nurl = \"https://itsm.example/v\"\n";
        let err = crate::config::parse(&text("", checked), Path::new("jitd.toml"))
            .map(drop)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("jitd.toml:13:10: policy 'chg' approves on a ticket, but resource 'db' does not have its tickets checked"),
            "{err}"
        );
        for ok in [text("require_ticket = true\n", checked), text("", "")] {
            crate::config::parse(&ok, Path::new("jitd.toml")).unwrap();
        }
    }
}
