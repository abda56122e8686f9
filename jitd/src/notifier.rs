//! Dispatching the notification outbox to the delivery worker: one thread
//! of its own, away from the bus, the engine lock and the PAM path, so a
//! hung endpoint only ever delays other notifications.
//!
//! jitd parses no SMTP, TLS or HTTP: `jit-deliver` (an unprivileged
//! service, see [`crate::deliver`]) connects to `deliver.socket` in jitd's
//! runtime directory, and this thread hands it one due delivery at a time
//! and records its acknowledgement. jitd keeps the outbox, the retry
//! schedule and the audit; the worker keeps nothing.
//!
//! A delivery counts only once the endpoint acknowledged it (SMTP 250 after
//! DATA, HTTP 2xx) and the worker said so; it is then marked delivered in
//! its own committed transaction at once. If the worker dies or overruns
//! its lease before acknowledging, or jitd dies between the acknowledgement
//! and that commit (or the power fails before the mark reaches the disk),
//! the delivery is handed out again: at least once, with the same
//! `jit notification N` id (in the text, the Message-ID and the
//! `X-Jit-Notification` header) for receivers to drop the duplicate.

use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, NotifyConfig};
use crate::core::model::UnixTime;
use crate::core::notify::{self, Audience, Channel};
use crate::core::sanitize::for_terminal;
use crate::deliver::wire::{
    self, Ack, Hidden, HookWire, Job, Outcome, SmtpWire, ToWorker, Transports,
};
use crate::deliver::{self, SOCKET_NAME};
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

/// Binds `deliver.socket` in `runtime_dir` and starts the dispatching
/// thread on the outbox in `state_dir`.
pub fn start(
    config: Arc<Config>,
    state_dir: &Path,
    runtime_dir: &Path,
    bell: Arc<Doorbell>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let outbox = Outbox::open(state_dir)?;
    outbox.make_all_due()?;
    let (listener, path) = deliver::bind(runtime_dir, SOCKET_NAME).map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot listen on {}: {e}",
            runtime_dir.join(SOCKET_NAME).display()
        ))
    })?;
    std::thread::Builder::new()
        .name("jitd-notify".into())
        .spawn(move || serve(&config.notify, &outbox, &listener, &path, &bell))
        .map_err(|e| StoreError::Corrupt(format!("cannot start the notification thread: {e}")))
}

/// How long the worker has to acknowledge one delivery before jitd gives up
/// on the connection (and hands the delivery out again to the next one).
/// An SMTP exchange is several steps, each bounded by `notify.timeout`.
fn lease(config: &NotifyConfig) -> Duration {
    deliver::lease(config.timeout)
}

/// The channels, with their secrets, for the worker's hello.
fn transports(config: &NotifyConfig) -> Transports {
    Transports {
        smtp: config.smtp.as_ref().map(|s| SmtpWire {
            server: s.server.clone(),
            port: s.port,
            tls: s.tls,
            from: s.from.clone(),
            username: s.username.clone(),
            password: s.password.as_ref().map(|p| Hidden(p.expose().to_owned())),
        }),
        hooks: config
            .hooks
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    HookWire {
                        kind: h.kind,
                        url: Hidden(h.url.expose().to_owned()),
                    },
                )
            })
            .collect(),
        timeout_ms: config.timeout.as_millis() as u64,
    }
}

/// Serves one worker at a time, for as long as jitd runs.
fn serve(
    config: &NotifyConfig,
    outbox: &Outbox,
    listener: &UnixListener,
    path: &Path,
    bell: &Doorbell,
) {
    let mut warned = false;
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => {
                warned = false;
                stream
            }
            Err(e) => {
                if !warned {
                    tracing::error!(socket = %path.display(), error = %e, "delivery socket: cannot accept");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let uid = match deliver::peer_is_worker(&stream) {
            Ok(uid) => uid,
            Err(why) => {
                tracing::warn!(%why, "delivery socket: connection refused");
                continue;
            }
        };
        let lease = lease(config);
        let hello = stream
            .set_read_timeout(Some(lease))
            .and_then(|()| stream.set_write_timeout(Some(lease)))
            .and_then(|()| {
                wire::write(
                    &mut stream,
                    &ToWorker::Hello {
                        version: wire::VERSION,
                        transports: transports(config),
                    },
                )
            });
        if let Err(e) = hello {
            tracing::warn!(error = %e, "delivery worker: hello failed");
            continue;
        }
        tracing::info!(uid, "delivery worker connected");
        let mut worker = Worker { stream };
        let e = run(config, outbox, &mut worker, bell);
        // Whatever was handed out and not acknowledged is still pending and
        // due: the next worker gets it.
        tracing::warn!(error = %e, "delivery worker gone; waiting for it to reconnect");
    }
}

/// A connected delivery worker.
struct Worker {
    stream: UnixStream,
}

impl Worker {
    /// Hands out one delivery and waits for its acknowledgement. An error
    /// means the connection is unusable (gone, hung past its lease, or
    /// broke the protocol); the delivery stays as it was.
    fn deliver(&mut self, d: &Delivery) -> io::Result<Result<(), String>> {
        wire::write(
            &mut self.stream,
            &ToWorker::Deliver(Job {
                id: d.id,
                channel: d.channel,
                target: d.target.clone(),
                notice: d.notice.clone(),
            }),
        )?;
        let ack: Ack = wire::read(&mut self.stream)?;
        // The worker is not trusted: only the delivery it was handed may be acknowledged.
        if ack.id != d.id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("acknowledged {} when handed {}", ack.id, d.id),
            ));
        }
        Ok(match ack.outcome {
            Outcome::Delivered => Ok(()),
            Outcome::Failed(reason) => {
                let reason: String = for_terminal(&reason)
                    .chars()
                    .take(wire::MAX_REASON)
                    .collect();
                Err(if reason.is_empty() {
                    "failed".into()
                } else {
                    reason
                })
            }
        })
    }
}

fn now() -> Duration {
    SystemClock.wall_precise()
}

/// Dispatches due deliveries until the worker's connection fails.
fn run(config: &NotifyConfig, outbox: &Outbox, worker: &mut Worker, bell: &Doorbell) -> io::Error {
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
                None => match attempt(config, outbox, worker, &random, d) {
                    Ok(result) => result.map(|retry_at| {
                        if let Some(at) = retry_at {
                            failed.insert(endpoint, at);
                        }
                    }),
                    Err(e) => return e,
                },
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

/// One delivery attempt through the worker, recorded; returns the retry
/// time if it failed and will be retried. The outer error is the worker's
/// connection failing (nothing recorded).
fn attempt(
    config: &NotifyConfig,
    outbox: &Outbox,
    worker: &mut Worker,
    random: &SystemRandom,
    d: &Delivery,
) -> io::Result<Result<Option<i64>, StoreError>> {
    let result = match worker.deliver(d) {
        Ok(result) => result,
        // The worker bounds its own attempts below the lease: one silent
        // past it is stuck (a hostile endpoint, a bug). The attempt counts
        // as failed, with its backoff, so that the next worker starts with
        // other deliveries, then this connection is dropped.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            let error = format!(
                "the delivery worker did not answer within {} s",
                lease(config).as_secs()
            );
            if let Err(store) = failed(config, outbox, random, d, error) {
                tracing::error!(id = d.id, error = %store, "cannot record a notification's delivery state");
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let Err(error) = result else {
        return Ok(outbox
            .delivered(d.id, now().as_secs() as UnixTime)
            .map(|()| None));
    };
    Ok(failed(config, outbox, random, d, error))
}

/// Records a failed attempt at `d`; returns its retry time, None once it
/// is given up.
fn failed(
    config: &NotifyConfig,
    outbox: &Outbox,
    random: &SystemRandom,
    d: &Delivery,
    error: String,
) -> Result<Option<i64>, StoreError> {
    let at = now();
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
        at.saturating_add(delay).as_millis() as i64
    });
    tracing::warn!(id = d.id, target = %d.target, %error, gave_up = next.is_none(), "notification not delivered");
    outbox.failed(d.id, &error, next).map(|()| next)
}
