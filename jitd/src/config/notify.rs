//! `[notify]`: channels (SMTP, webhooks), who hears what, retries, secrets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use super::HumanDuration;
use crate::core::notify::{Audience, Policy, Target};
use crate::core::password::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No TLS: only for a relay on localhost.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Slack,
    Teams,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub kind: HookKind,
    pub url: Secret,
}

/// The resolved `[notify]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    pub policy: Policy,
    pub smtp: Option<Smtp>,
    pub hooks: BTreeMap<String, Hook>,
    /// Bound on connecting, and on each read or write, of one delivery attempt.
    pub timeout: Duration,
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// A delivery still failing this long after it was queued is given up.
    pub give_up_after: Duration,
}

impl NotifyConfig {
    /// Whether anything can be sent at all.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some() || !self.hooks.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    server: String,
    port: Option<u16>,
    #[serde(default = "default_tls")]
    tls: SmtpTls,
    from: Spanned<String>,
    username: Option<Spanned<String>>,
    password: Option<String>,
    password_secret: Option<Spanned<String>>,
}

fn default_tls() -> SmtpTls {
    SmtpTls::Starttls
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    kind: HookKind,
    url: Option<Spanned<String>>,
    url_secret: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawNotify {
    requester: Vec<Spanned<String>>,
    owner: Vec<Spanned<String>>,
    manager: Vec<Spanned<String>>,
    security: Vec<Spanned<String>>,
    escalation: Vec<Spanned<String>>,
    email_domain: Option<Spanned<String>>,
    addresses: BTreeMap<String, Spanned<String>>,
    secrets: Option<Spanned<PathBuf>>,
    timeout: HumanDuration,
    retry_first: HumanDuration,
    retry_max: HumanDuration,
    give_up_after: HumanDuration,
    smtp: Option<RawSmtp>,
    hooks: BTreeMap<String, RawHook>,
}

fn email_target() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "email".to_owned())]
}

impl Default for RawNotify {
    fn default() -> Self {
        let secs = |s| HumanDuration(Duration::from_secs(s));
        RawNotify {
            requester: email_target(),
            owner: email_target(),
            manager: email_target(),
            security: email_target(),
            escalation: Vec::new(),
            email_domain: None,
            addresses: BTreeMap::new(),
            secrets: None,
            timeout: secs(10),
            retry_first: secs(10),
            retry_max: secs(15 * 60),
            give_up_after: secs(3 * 24 * 3600),
            smtp: None,
            hooks: BTreeMap::new(),
        }
    }
}

/// A semantic error at a span of the config file.
pub(super) type SpanError = (Option<Range<usize>>, String);

fn valid_address(text: &str) -> bool {
    text.parse::<lettre::Address>().is_ok()
}

/// Parses `"email"`, `"email:ADDRESS"` or `"hook:NAME"`.
pub(super) fn parse_targets(
    raw: &[Spanned<String>],
    hooks: &BTreeMap<String, Hook>,
) -> Result<Vec<Target>, SpanError> {
    raw.iter()
        .map(|t| {
            let bad = |message: String| (Some(t.span()), message);
            match t.get_ref().split_once(':') {
                None if t.get_ref() == "email" => Ok(Target::Email),
                Some(("email", addr)) if valid_address(addr) => Ok(Target::Address(addr.into())),
                Some(("email", addr)) => Err(bad(format!("'{addr}' is not an email address"))),
                Some(("hook", name)) if hooks.contains_key(name) => Ok(Target::Hook(name.into())),
                Some(("hook", name)) => Err(bad(format!(
                    "no webhook named '{name}'; define it as [notify.hooks.{name}]"
                ))),
                _ => Err(bad(format!(
                    "'{}' is not a target; use \"email\", \"email:ADDRESS\" or \"hook:NAME\"",
                    t.get_ref()
                ))),
            }
        })
        .collect()
}

/// `NAME = "value"` pairs from a file only root may read.
fn read_secrets(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let shown = path.display();
    let text = super::read_private(path, "secrets file")?;
    toml::from_str(&text).map_err(|e| {
        let line = text[..e.span().map_or(0, |s| s.start)]
            .matches('\n')
            .count()
            + 1;
        format!("secrets file {shown}:{line}: {}", e.message().trim())
    })
}

/// Exactly one of a literal value and the name of a secret.
fn literal_or_secret(
    literal: Option<String>,
    secret: Option<&Spanned<String>>,
    secrets: &mut dyn FnMut() -> Result<BTreeMap<String, String>, SpanError>,
    what: &str,
) -> Result<Option<Secret>, SpanError> {
    match (literal, secret) {
        (Some(_), Some(name)) => Err((
            Some(name.span()),
            format!("give either {what} or {what}_secret, not both"),
        )),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(name)) => {
            let value = secrets()?.remove(name.get_ref()).ok_or_else(|| {
                (
                    Some(name.span()),
                    format!("the secrets file has no entry '{}'", name.get_ref()),
                )
            })?;
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

impl RawNotify {
    /// Resolves targets, addresses and secrets. `resources` are each
    /// resource's name and its raw `notify` targets.
    pub(super) fn resolve(
        self,
        resources: &[(String, Vec<Spanned<String>>)],
    ) -> Result<NotifyConfig, SpanError> {
        let secrets_key = self.secrets;
        let mut cache: Option<BTreeMap<String, String>> = None;
        let mut secrets = || -> Result<BTreeMap<String, String>, SpanError> {
            let Some(path) = &secrets_key else {
                return Err((
                    None,
                    "a *_secret key needs notify.secrets (the path of the secrets file)".into(),
                ));
            };
            if cache.is_none() {
                cache = Some(read_secrets(path.get_ref()).map_err(|m| (Some(path.span()), m))?);
            }
            Ok(cache.clone().unwrap_or_default())
        };
        let mut hooks = BTreeMap::new();
        for (name, raw) in self.hooks {
            let at = raw
                .url
                .as_ref()
                .or(raw.url_secret.as_ref())
                .map(|s| s.span());
            let url = literal_or_secret(
                raw.url.map(Spanned::into_inner),
                raw.url_secret.as_ref(),
                &mut secrets,
                "url",
            )?
            .ok_or_else(|| {
                (
                    None,
                    format!("[notify.hooks.{name}] needs url or url_secret"),
                )
            })?;
            if !(url.expose().starts_with("https://") || url.expose().starts_with("http://")) {
                return Err((
                    at,
                    format!("the url of webhook '{name}' must start with https:// or http://"),
                ));
            }
            hooks.insert(
                name,
                Hook {
                    kind: raw.kind,
                    url,
                },
            );
        }
        let smtp = match self.smtp {
            None => None,
            Some(raw) => {
                if !valid_address(strip_name(raw.from.get_ref())) {
                    return Err((
                        Some(raw.from.span()),
                        format!("'{}' is not an email address", raw.from.get_ref()),
                    ));
                }
                let password = literal_or_secret(
                    raw.password,
                    raw.password_secret.as_ref(),
                    &mut secrets,
                    "password",
                )?;
                if password.is_some() != raw.username.is_some() {
                    let at = raw.username.as_ref().or(raw.password_secret.as_ref());
                    return Err((
                        at.map(Spanned::span),
                        "[notify.smtp] takes username and a password together (for AUTH), or neither".into(),
                    ));
                }
                Some(Smtp {
                    port: raw.port.unwrap_or(match raw.tls {
                        SmtpTls::Starttls => 587,
                        SmtpTls::Tls => 465,
                        SmtpTls::None => 25,
                    }),
                    server: raw.server,
                    tls: raw.tls,
                    from: raw.from.into_inner(),
                    username: raw.username.map(Spanned::into_inner),
                    password,
                })
            }
        };
        let mut addresses = BTreeMap::new();
        for (user, addr) in self.addresses {
            if !valid_address(addr.get_ref()) {
                return Err((
                    Some(addr.span()),
                    format!("'{}' is not an email address", addr.get_ref()),
                ));
            }
            addresses.insert(user, addr.into_inner());
        }
        let email_domain = match self.email_domain {
            Some(d) if !valid_address(&format!("x@{}", d.get_ref())) => {
                return Err((
                    Some(d.span()),
                    format!("'{}' is not a mail domain", d.get_ref()),
                ))
            }
            d => d.map(Spanned::into_inner),
        };
        let mut targets = BTreeMap::new();
        for (audience, raw) in [
            (Audience::Requester, &self.requester),
            (Audience::Owner, &self.owner),
            (Audience::Manager, &self.manager),
            (Audience::Security, &self.security),
            (Audience::Escalation, &self.escalation),
        ] {
            targets.insert(audience, parse_targets(raw, &hooks)?);
        }
        let mut resource_targets = BTreeMap::new();
        for (name, raw) in resources {
            if !raw.is_empty() {
                resource_targets.insert(name.clone(), parse_targets(raw, &hooks)?);
            }
        }
        if self.retry_first.0 > self.retry_max.0 {
            return Err((
                None,
                "notify.retry_first must not exceed notify.retry_max".into(),
            ));
        }
        Ok(NotifyConfig {
            policy: Policy {
                targets,
                resource_targets,
                email_domain,
                addresses,
                email_enabled: smtp.is_some(),
            },
            smtp,
            hooks,
            timeout: self.timeout.0,
            retry_first: self.retry_first.0,
            retry_max: self.retry_max.0,
            give_up_after: self.give_up_after.0,
        })
    }
}

/// The address in `"Name <addr>"`, or the whole text.
pub fn strip_name(text: &str) -> &str {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text.trim(),
    }
}
