//! Delivering the notification outbox: one thread of its own, away from the
//! bus, the engine lock and the PAM path, so a hung endpoint only ever
//! delays other notifications.
//!
//! Each attempt is bounded (`notify.timeout` for connecting and for the
//! whole exchange). A delivery counts only once the endpoint acknowledged it
//! (SMTP 250 after DATA, HTTP 2xx), and is marked delivered in its own
//! committed transaction at once. If jitd dies between the acknowledgement
//! and that commit (or the power fails before the mark reaches the disk),
//! the delivery is sent again after restart: at least once,
//! with the same `jit notification N` id (in the text, the Message-ID and
//! the `X-Jit-Notification` header) for receivers to drop the duplicate.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, HookKind, NotifyConfig, SmtpTls};
use crate::core::model::UnixTime;
use crate::core::notify::{self, render, Audience, Channel};
use crate::directory;
use crate::store::{Delivery, Doorbell, Outbox, Planner, StoreError};

/// Deliveries read per pass.
const BATCH: u32 = 32;
/// Longest sleep with nothing due (the doorbell wakes it sooner).
const IDLE: Duration = Duration::from_secs(60);

/// What the store queues per audit event, or `None` if nothing is configured.
pub fn planner(config: &Arc<Config>) -> Option<Planner> {
    if !config.notify.enabled() {
        return None;
    }
    let config = Arc::clone(config);
    Some(Arc::new(move |trigger, req| {
        notify::plan(
            trigger,
            req,
            &config.notify.policy,
            &|audience, resource| members(&config, audience, resource),
        )
    }))
}

/// User names in an audience, looked up when the event happens.
fn members(config: &Config, audience: Audience, resource: &str) -> Vec<String> {
    let principals = match audience {
        Audience::Owner => config
            .resource(resource)
            .map_or(&[][..], |r| r.owners.as_slice()),
        Audience::Manager => &config.roles.manager,
        Audience::Security => &config.roles.security,
        Audience::Requester | Audience::Escalation => &[],
    };
    directory::names(principals)
}

/// Starts the delivery thread on the outbox in `state_dir`.
pub fn start(
    config: Arc<Config>,
    state_dir: &Path,
    bell: Arc<Doorbell>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let outbox = Outbox::open(state_dir)?;
    outbox.make_all_due()?;
    let sender = Sender::new(&config.notify);
    std::thread::Builder::new()
        .name("jitd-notify".into())
        .spawn(move || run(&config.notify, &outbox, &sender, &bell))
        .map_err(|e| StoreError::Corrupt(format!("cannot start the notification thread: {e}")))
}

fn now() -> Duration {
    SystemClock.wall_precise()
}

fn run(config: &NotifyConfig, outbox: &Outbox, sender: &Sender, bell: &Doorbell) {
    let random = SystemRandom::new();
    loop {
        let due = match outbox.due(now().as_millis() as i64, BATCH) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the notification outbox");
                bell.wait(Duration::from_secs(1));
                continue;
            }
        };
        // An endpoint that just failed is not tried again in this pass: its
        // other deliveries wait for the same retry time, so a hung endpoint
        // costs one timeout per pass, not one per delivery.
        let mut failed: HashMap<(Channel, &str), i64> = HashMap::new();
        for d in &due {
            let endpoint = endpoint(d);
            let result = match failed.get(&endpoint) {
                Some(&retry_at) => outbox.postpone(d.id, retry_at),
                None => attempt(config, outbox, sender, &random, d).map(|retry_at| {
                    if let Some(at) = retry_at {
                        failed.insert(endpoint, at);
                    }
                }),
            };
            if let Err(e) = result {
                // The row stays as it was (a delivered one is sent again: at
                // least once); pause rather than resend in a tight loop.
                tracing::error!(id = d.id, error = %e, "cannot record a notification's delivery state");
                bell.wait(Duration::from_secs(1));
                break;
            }
        }
        if !due.is_empty() {
            continue;
        }
        let sleep = match outbox.next_due_ms() {
            Ok(Some(at)) => {
                Duration::from_millis(u64::try_from(at - now().as_millis() as i64).unwrap_or(0))
            }
            Ok(None) => IDLE,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the notification outbox");
                Duration::from_secs(1)
            }
        };
        bell.wait(sleep.min(IDLE));
    }
}

/// Who answers for a delivery: the SMTP server for every address, or one webhook.
fn endpoint(d: &Delivery) -> (Channel, &str) {
    match d.channel {
        Channel::Email => (Channel::Email, ""),
        Channel::Hook => (Channel::Hook, &d.target),
    }
}

/// One delivery attempt, recorded; returns the retry time if it failed and will be retried.
fn attempt(
    config: &NotifyConfig,
    outbox: &Outbox,
    sender: &Sender,
    random: &SystemRandom,
    d: &Delivery,
) -> Result<Option<i64>, StoreError> {
    let result = sender.send(config, d);
    let at = now();
    let Err(error) = result else {
        outbox.delivered(d.id, at.as_secs() as UnixTime)?;
        return Ok(None);
    };
    let age = at
        .as_secs()
        .saturating_sub(u64::try_from(d.created_at).unwrap_or(0));
    let next = (age < config.give_up_after.as_secs()).then(|| {
        let mut jitter = [0u8; 4];
        let _ = random.fill(&mut jitter);
        let delay = notify::backoff(
            d.attempts + 1,
            config.retry_first,
            config.retry_max,
            u32::from_ne_bytes(jitter),
        );
        (at + delay).as_millis() as i64
    });
    tracing::warn!(id = d.id, target = %d.target, %error, gave_up = next.is_none(), "notification not delivered");
    outbox.failed(d.id, &error, next)?;
    Ok(next)
}

/// The configured transports, built once.
struct Sender {
    http: ureq::Agent,
    smtp: Option<(SmtpTransport, Mailbox)>,
    host: String,
}

impl Sender {
    fn new(config: &NotifyConfig) -> Sender {
        let http = ureq::Agent::config_builder()
            .timeout_connect(Some(config.timeout))
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .build()
            .into();
        let smtp = config.smtp.as_ref().and_then(|s| {
            let builder = match s.tls {
                SmtpTls::Starttls => SmtpTransport::starttls_relay(&s.server),
                SmtpTls::Tls => SmtpTransport::relay(&s.server),
                SmtpTls::None => Ok(SmtpTransport::builder_dangerous(&s.server)),
            };
            let mut builder = match builder {
                Ok(b) => b.port(s.port).timeout(Some(config.timeout)),
                Err(e) => {
                    tracing::error!(error = %e, server = %s.server, "SMTP server unusable; no email will be sent");
                    return None;
                }
            };
            if let (Some(user), Some(password)) = (&s.username, &s.password) {
                builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
            }
            // Checked when the config was loaded.
            let from = s.from.parse().ok()?;
            Some((builder.build(), from))
        });
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Sender { http, smtp, host }
    }

    fn send(&self, config: &NotifyConfig, d: &Delivery) -> Result<(), String> {
        match d.channel {
            Channel::Email => self.email(d),
            Channel::Hook => {
                let hook = config
                    .hooks
                    .get(&d.target)
                    .ok_or_else(|| format!("webhook '{}' is no longer configured", d.target))?;
                let body = match hook.kind {
                    HookKind::Slack => render::slack(&d.notice, d.id),
                    HookKind::Teams => render::teams(&d.notice, d.id),
                    HookKind::Json => render::json(&d.notice, d.id),
                };
                self.http
                    .post(&hook.url.0)
                    .header("X-Jit-Notification", d.id.to_string())
                    .content_type("application/json")
                    .send(body.to_string())
                    .map(drop)
                    // The error is shown by `jitctl show`; the URL may be a secret.
                    .map_err(|e| e.to_string().replace(&hook.url.0, "<webhook url>"))
            }
        }
    }

    fn email(&self, d: &Delivery) -> Result<(), String> {
        let (transport, from) = self.smtp.as_ref().ok_or("no SMTP server is configured")?;
        let to: Mailbox = d
            .target
            .parse()
            .map_err(|e| format!("bad address '{}': {e}", d.target))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&d.notice.title)
            .message_id(Some(format!("<jit-notification-{}@{}>", d.id, self.host)))
            .multipart(MultiPart::alternative_plain_html(
                render::email_text(&d.notice, d.id),
                render::email_html(&d.notice, d.id),
            ))
            .map_err(|e| e.to_string())?;
        transport
            .send(&message)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
