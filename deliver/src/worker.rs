//! `jit-deliver`: the unprivileged delivery worker.
//!
//! Connects to jitd's `deliver.socket`, takes the transports from jitd's
//! hello, then sends each delivery it is handed and answers with an
//! acknowledgement. It keeps nothing durable and never opens jitd's
//! database: if it dies, jitd hands the unacknowledged delivery out again.
//!
//! Each attempt is bounded: `notify.timeout` for connecting and for each
//! read and write, and [`ATTEMPT_TIMEOUTS`] of them for the whole attempt
//! (an SMTP server that trickles bytes could otherwise hold it for ever).
//! A delivery counts only once the endpoint acknowledged it
//! (SMTP 250 after DATA, HTTP 2xx). Every delivery carries its `jit
//! notification N` id (in the text, the Message-ID and the
//! `X-Jit-Notification` header) for receivers to drop a duplicate.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use jitd::config::{HookKind, SmtpTls};
use jitd::core::notify::{render, Channel};
use jitd::deliver::wire::{self, Ack, Job, Outcome, ToWorker, Transports};

/// How many `notify.timeout`s one attempt may take in all: an SMTP exchange
/// is several steps. Below jitd's lease (`notifier::lease`, 10 of them and
/// 5 s), so the failure reaches jitd before it gives up on the worker.
const ATTEMPT_TIMEOUTS: u32 = 8;

/// Serves jitd on `socket` until killed, reconnecting whenever jitd goes away.
pub fn run(socket: &Path) -> ! {
    crate::serve_forever(socket, "notifications", false, serve)
}

fn serve(mut stream: UnixStream) -> io::Result<()> {
    let sender = match wire::read::<ToWorker>(&mut stream)? {
        ToWorker::Hello {
            version: wire::VERSION,
            transports,
        } => Arc::new(Sender::new(&transports)),
        ToWorker::Hello { version, .. } => {
            return Err(io::Error::other(format!(
                "jitd speaks protocol version {version}, not {}",
                wire::VERSION
            )))
        }
        ToWorker::Deliver(_) => return Err(io::Error::other("a delivery before the hello")),
    };
    loop {
        let job = match wire::read::<ToWorker>(&mut stream) {
            Ok(ToWorker::Deliver(job)) => job,
            Ok(ToWorker::Hello { .. }) => return Err(io::Error::other("a second hello")),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let (id, channel) = (job.id, job.channel);
        let outcome = match send_within(&sender, job) {
            Ok(()) => Outcome::Delivered,
            Err(reason) => {
                tracing::warn!(id, channel = channel.as_str(), %reason, "not delivered");
                Outcome::Failed(reason)
            }
        };
        wire::write(&mut stream, &Ack { id, outcome })?;
    }
}

/// Sends `job` on a thread of its own and waits at most [`ATTEMPT_TIMEOUTS`]
/// timeouts for it. Past that the attempt has failed; its thread is left to
/// end with its connection (lettre cannot be cancelled), one per hung
/// attempt, and jitd retries no sooner than its backoff.
fn send_within(sender: &Arc<Sender>, job: Job) -> Result<(), String> {
    let limit = sender.timeout.saturating_mul(ATTEMPT_TIMEOUTS);
    let (done, result) = mpsc::channel();
    let sending = Arc::clone(sender);
    std::thread::Builder::new()
        .name("jit-deliver-send".into())
        .spawn(move || {
            // The receiver is gone only once the attempt was given up.
            let _ = done.send(sending.send(&job));
        })
        .map_err(|e| format!("cannot start the attempt: {e}"))?;
    result.recv_timeout(limit).unwrap_or_else(|_| {
        Err(format!(
            "no answer within {} s (the endpoint is too slow or stalls)",
            limit.as_secs()
        ))
    })
}

/// The transports jitd described, built once per connection.
struct Sender {
    timeout: Duration,
    http: ureq::Agent,
    smtp: Option<(SmtpTransport, Mailbox)>,
    hooks: std::collections::BTreeMap<String, wire::HookWire>,
    host: String,
}

impl Sender {
    fn new(t: &Transports) -> Sender {
        let timeout = Duration::from_millis(t.timeout_ms);
        let http = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .build()
            .into();
        let smtp = t.smtp.as_ref().and_then(|s| {
            let builder = match s.tls {
                SmtpTls::Starttls => SmtpTransport::starttls_relay(&s.server),
                SmtpTls::Tls => SmtpTransport::relay(&s.server),
                SmtpTls::None => Ok(SmtpTransport::builder_dangerous(&s.server)),
            };
            let mut builder = match builder {
                Ok(b) => b.port(s.port).timeout(Some(timeout)),
                Err(e) => {
                    tracing::error!(error = %e, server = %s.server, "SMTP server unusable; no email will be sent");
                    return None;
                }
            };
            if let (Some(user), Some(password)) = (&s.username, &s.password) {
                builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
            }
            let from = match s.from.parse() {
                Ok(from) => from,
                Err(e) => {
                    tracing::error!(error = %e, "bad sender address; no email will be sent");
                    return None;
                }
            };
            Some((builder.build(), from))
        });
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Sender {
            timeout,
            http,
            smtp,
            hooks: t.hooks.clone(),
            host,
        }
    }

    fn send(&self, d: &Job) -> Result<(), String> {
        match d.channel {
            Channel::Email => self.email(d),
            Channel::Hook => {
                let hook = self
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
                    // The error is shown by `jitctl show`; the URL may be a secret.
                    .map_err(|e| e.to_string().replace(&hook.url.0, "<webhook url>"))
                    // ureq returns a 3xx as a response (no redirect is
                    // followed): only a 2xx means the hook took it.
                    .and_then(|response| match response.status() {
                        status if status.is_success() => Ok(()),
                        status => Err(format!("http status: {status}")),
                    })
            }
        }
    }

    fn email(&self, d: &Job) -> Result<(), String> {
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
