//! Ticket validators (W1.11, docs/design.md "Ticket validation"): jitd's
//! side. The `[tickets]` command or webhook is run by `jit-deliver
//! --tickets` (`jit-ticket.service`, the unprivileged `jit-ticket` user,
//! with the network jitd's unit denies itself) over
//! [`crate::deliver::tickets`]. Each check is bounded by `[tickets]
//! timeout` and runs off the engine (T45): the requester (or approver)
//! waits for it, nobody else does.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::clock::{Clock, SystemClock};
use crate::config::{TicketsConfig, Validator};
use crate::core::tickets::{TicketAsk, TicketCheck};
use crate::deliver::tickets::{Answer, Reply, ToWorker, ValidatorWire, SOCKET_NAME, USER, VERSION};
use crate::deliver::wire::{self, Hidden};

/// Checks at once; more wait for a turn (within their timeout).
const AT_ONCE: usize = 8;
/// Checks one caller may have at once: nobody takes every turn (and so
/// makes everyone else's checks time out, or their tickets unchecked).
pub const PER_CALLER: usize = 2;

/// The configured validator, shared by every bus call.
#[derive(Clone)]
pub struct Tickets {
    config: Arc<TicketsConfig>,
    turns: Arc<Semaphore>,
    /// Checks under way by caller uid.
    callers: Arc<Mutex<HashMap<u32, usize>>>,
    desk: Option<Desk>,
}

/// A caller who has [`PER_CALLER`] checks under way.
#[derive(Debug, thiserror::Error)]
#[error(
    "you have {PER_CALLER} ticket checks under way, the most one may have; wait for their answers"
)]
pub struct Busy;

/// One of a caller's checks under way, counted until dropped.
struct Counted<'a>(&'a Mutex<HashMap<u32, usize>>, u32);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        let mut callers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = callers.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                callers.remove(&self.1);
            }
        }
    }
}

impl Tickets {
    /// The validator of `config`: its socket is bound in `runtime_dir` for
    /// the worker to connect to.
    pub fn start(config: &TicketsConfig, runtime_dir: &Path) -> io::Result<Tickets> {
        let desk = match &config.validator {
            Some(validator) => Some(Desk::start(validator, config.timeout, runtime_dir)?),
            None => None,
        };
        Ok(Tickets {
            config: Arc::new(config.clone()),
            turns: Arc::new(Semaphore::new(AT_ONCE)),
            callers: Arc::default(),
            desk,
        })
    }

    pub fn configured(&self) -> bool {
        self.config.validator.is_some()
    }

    /// The validator's check of `ask` for `caller` (a uid): a validator
    /// that does not answer in time is `unavailable`; refused only to a
    /// caller with [`PER_CALLER`] checks under way already.
    pub async fn check(&self, caller: u32, ask: TicketAsk) -> Result<TicketCheck, Busy> {
        let _counted = self.count(caller)?;
        Ok(self.check_now(ask).await)
    }

    fn count(&self, caller: u32) -> Result<Counted<'_>, Busy> {
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        let under_way = callers.entry(caller).or_default();
        if *under_way >= PER_CALLER {
            return Err(Busy);
        }
        *under_way += 1;
        Ok(Counted(&self.callers, caller))
    }

    async fn check_now(&self, ask: TicketAsk) -> TicketCheck {
        let stage = ask.stage;
        let limit = self.config.timeout;
        let deadline = std::time::Instant::now() + limit;
        let answer = tokio::time::timeout(limit, async {
            let _turn = self.turns.acquire().await;
            match &self.desk {
                Some(desk) => desk.post(ask, deadline).await,
                None => Err("no validator is configured".into()),
            }
        })
        .await;
        let now = SystemClock.wall();
        match answer {
            Ok(Ok(body)) => TicketCheck::from_answer(&body, stage, now),
            Ok(Err(why)) => TicketCheck::unavailable(why, stage, now),
            Err(_) => TicketCheck::unavailable(
                format!(
                    "the validator did not answer within {}",
                    humantime::format_duration(limit)
                ),
                stage,
                now,
            ),
        }
    }
}

/// jitd's side of the validator: the worker's connection (numbered: a
/// check waits for an answer on the connection it was sent on), and the
/// checks waiting for answers by id.
#[derive(Clone)]
struct Desk {
    worker: Arc<Mutex<Option<(u64, UnixStream)>>>,
    waiting: Arc<Mutex<HashMap<u64, Waiting>>>,
    next: Arc<AtomicU64>,
}

/// A check sent on a connection (by its number), and where its answer goes.
type Waiting = (u64, mpsc::Sender<Reply>);

impl Desk {
    fn start(validator: &Validator, timeout: Duration, runtime_dir: &Path) -> io::Result<Desk> {
        let (listener, _) = crate::deliver::bind_for(runtime_dir, SOCKET_NAME, USER)?;
        let desk = Desk {
            worker: Arc::default(),
            waiting: Arc::default(),
            next: Arc::default(),
        };
        let hello = ToWorker::Hello {
            version: VERSION,
            validator: match validator {
                Validator::Command { argv } => ValidatorWire::Command(argv.clone()),
                Validator::Webhook { url } => ValidatorWire::Webhook(Hidden(url.clone())),
            },
            timeout_ms: timeout.as_millis() as u64,
        };
        let serving = desk.clone();
        std::thread::Builder::new()
            .name("jitd-tickets".into())
            .spawn(move || serving.accept(&listener, &hello))?;
        Ok(desk)
    }

    /// Takes the worker's connection. While one is live, another is
    /// refused: the command runs as the worker's user, and a command that
    /// connected in its place would answer every later check.
    fn accept(&self, listener: &UnixListener, hello: &ToWorker) {
        for (connection, stream) in (1u64..).zip(listener.incoming()) {
            let Ok(mut stream) = stream else {
                // Out of descriptors, say: not a reason to spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            if let Err(why) = crate::deliver::peer_is(&stream, USER) {
                tracing::warn!(%why, "ticket socket: refused a connection");
                continue;
            }
            let mut worker = self.lock_worker();
            if worker.is_some() {
                tracing::warn!("ticket socket: refused a second worker while one is connected");
                continue;
            }
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let (Ok(()), Ok(reader)) = (wire::write(&mut stream, hello), stream.try_clone()) else {
                continue;
            };
            let desk = self.clone();
            let reading = std::thread::Builder::new()
                .name("jitd-tickets-read".into())
                .spawn(move || desk.read_answers(connection, reader));
            match reading {
                Ok(_) => *worker = Some((connection, stream)),
                Err(e) => tracing::warn!(error = %e, "ticket socket: cannot read the worker"),
            }
        }
    }

    fn lock_worker(&self) -> std::sync::MutexGuard<'_, Option<(u64, UnixStream)>> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets `connection` if it is still the worker's, hanging up on it.
    fn drop_connection(&self, connection: u64) {
        let mut worker = self.lock_worker();
        if worker.as_ref().is_some_and(|(c, _)| *c == connection) {
            if let Some((_, stream)) = worker.take() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Hands each answer to the check waiting for it on `connection`, until
    /// the connection ends; then fails the checks still waiting on it.
    fn read_answers(&self, connection: u64, mut stream: UnixStream) {
        while let Ok(answer) = wire::read::<Answer>(&mut stream) {
            let waiting = self.lock_waiting();
            if let Some((_, check)) = waiting.get(&answer.id).filter(|(c, _)| *c == connection) {
                let _ = check.send(answer.reply);
            }
        }
        self.drop_connection(connection);
        let waiting = self.lock_waiting();
        for (_, check) in waiting.values().filter(|(c, _)| *c == connection) {
            let _ = check.send(Reply::Failed(
                "the ticket validator's worker went away".into(),
            ));
        }
    }

    /// Hands `ask` to the worker and waits for the validator's answer (the
    /// caller bounds the wait: dropped, this future tells the waiting
    /// thread to give up).
    async fn post(&self, ask: TicketAsk, deadline: std::time::Instant) -> Result<Vec<u8>, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUp(Arc::clone(&given_up));
        let desk = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let reply = desk.exchange(id, ask, deadline, &given_up);
            desk.lock_waiting().remove(&id);
            reply
        });
        match result.await.map_err(|e| e.to_string())?? {
            Reply::Body(body) => Ok(body.into_bytes()),
            Reply::Failed(why) => Err(why),
        }
    }

    /// Sends check `id` on the current connection and waits for its answer
    /// there, polling `given_up`.
    fn exchange(
        &self,
        id: u64,
        ask: TicketAsk,
        deadline: std::time::Instant,
        given_up: &AtomicBool,
    ) -> Result<Reply, String> {
        let (tell, answer) = mpsc::channel();
        {
            let mut worker = self.lock_worker();
            let Some((connection, stream)) = worker.as_mut() else {
                return Err(NOT_RUNNING.to_owned());
            };
            let connection = *connection;
            self.lock_waiting().insert(id, (connection, tell));
            let within_ms = deadline
                .saturating_duration_since(std::time::Instant::now())
                .as_millis() as u64;
            if let Err(e) = wire::write(stream, &ToWorker::Check { id, ask, within_ms }) {
                drop(worker);
                self.drop_connection(connection);
                return Err(format!("{NOT_RUNNING} ({e})"));
            }
        }
        loop {
            match answer.recv_timeout(Duration::from_millis(100)) {
                Ok(reply) => return Ok(reply),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(NOT_RUNNING.into()),
                Err(mpsc::RecvTimeoutError::Timeout) if given_up.load(Ordering::Relaxed) => {
                    return Err("given up".into())
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

const NOT_RUNNING: &str =
    "the ticket validator's worker (jit-ticket.service, jit-deliver --tickets) is not connected";

/// Tells a check's waiting thread that nobody waits for it any more.
struct GiveUp(Arc<AtomicBool>);

impl Drop for GiveUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
