//! Ticket validators (W1.11, docs/design.md "Ticket validation"): the
//! `[tickets]` command, run as an unprivileged user, and the webhook,
//! posted by jit-deliver over [`crate::deliver::tickets`]. Each check is
//! bounded by `[tickets] timeout` and runs off the engine (T45): the requester
//! (or approver) waits for it, nobody else does.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::clock::{Clock, SystemClock};
use crate::config::{TicketsConfig, Validator};
use crate::core::tickets::{TicketAsk, TicketCheck, MAX_ANSWER};
use crate::deliver::tickets::{Answer, Reply, ToWorker, SOCKET_NAME, VERSION};
use crate::deliver::wire::{self, Hidden};

/// Checks at once; more wait for a turn (within their timeout).
const AT_ONCE: usize = 8;

/// The configured validator, shared by every bus call.
#[derive(Clone)]
pub struct Tickets {
    config: Arc<TicketsConfig>,
    turns: Arc<Semaphore>,
    desk: Option<Desk>,
}

impl Tickets {
    /// The validator of `config`; a webhook's socket is bound in
    /// `runtime_dir` for jit-deliver to connect to.
    pub fn start(config: &TicketsConfig, runtime_dir: &Path) -> io::Result<Tickets> {
        let desk = match &config.validator {
            Some(Validator::Webhook { url }) => {
                Some(Desk::start(url, config.timeout, runtime_dir)?)
            }
            _ => None,
        };
        Ok(Tickets {
            config: Arc::new(config.clone()),
            turns: Arc::new(Semaphore::new(AT_ONCE)),
            desk,
        })
    }

    pub fn configured(&self) -> bool {
        self.config.validator.is_some()
    }

    /// The validator's check of `ask`: never an error, a validator that
    /// does not answer in time is `unavailable`.
    pub async fn check(&self, ask: TicketAsk) -> TicketCheck {
        let stage = ask.stage;
        let limit = self.config.timeout;
        let answer = tokio::time::timeout(limit, async {
            let _turn = self.turns.acquire().await;
            match (&self.config.validator, &self.desk) {
                (Some(Validator::Command { argv, user }), _) => run_command(argv, user, &ask).await,
                (Some(Validator::Webhook { .. }), Some(desk)) => desk.post(ask).await,
                _ => Err("no validator is configured".into()),
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

/// Runs the command as `user` with `ask` as JSON on its stdin and returns
/// its stdout. Dropped at the timeout, it kills the command's process
/// group (whatever it started too).
async fn run_command(argv: &[String], user: &str, ask: &TicketAsk) -> Result<Vec<u8>, String> {
    let input = serde_json::to_vec(ask).map_err(|e| e.to_string())?;
    let name = user.to_owned();
    let account = tokio::task::spawn_blocking(move || nix::unistd::User::from_name(&name))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("no user {user} to run the validator as"))?;
    if account.uid.is_root() {
        return Err(format!("user {user} is root: the validator is not run"));
    }
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .current_dir("/")
        .uid(account.uid.as_raw())
        .gid(account.gid.as_raw())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl and close_range are async-signal-safe and touch no
    // memory shared with the parent. The command dies with jitd, gains
    // nothing by exec (no setuid program makes it root again) and keeps
    // none of jitd's descriptors past exec, even one jitd inherited
    // without close-on-exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(io::Error::from)?;
            nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
            let all_from_3 = (3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            if libc::syscall(
                libc::SYS_close_range,
                all_from_3.0,
                all_from_3.1,
                all_from_3.2,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let group = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    let _reaper = KillGroup(group);
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // A command that does not read its input still gets its answer read.
    let write = async {
        if let Some(mut pipe) = stdin.take() {
            let _ = pipe.write_all(&input).await;
        }
    };
    let mut out = Vec::new();
    let mut limited = stdout.take(MAX_ANSWER as u64 + 1);
    let read = limited.read_to_end(&mut out);
    let (_, read) = tokio::join!(write, read);
    read.map_err(|e| format!("cannot read the validator's answer: {e}"))?;
    if out.len() > MAX_ANSWER {
        return Err(format!(
            "the validator answered more than {MAX_ANSWER} bytes"
        ));
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the validator failed ({status})"));
    }
    Ok(out)
}

/// Kills a command's process group when its check ends, however it ends:
/// nothing it started outlives the answer or the timeout.
struct KillGroup(Option<nix::unistd::Pid>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The webhook's side in jitd: jit-deliver's connection (numbered: a
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
    fn start(url: &str, timeout: Duration, runtime_dir: &Path) -> io::Result<Desk> {
        let (listener, _) = crate::deliver::bind(runtime_dir, SOCKET_NAME)?;
        let desk = Desk {
            worker: Arc::default(),
            waiting: Arc::default(),
            next: Arc::default(),
        };
        let hello = ToWorker::Hello {
            version: VERSION,
            url: Hidden(url.to_owned()),
            timeout_ms: timeout.as_millis() as u64,
        };
        let serving = desk.clone();
        std::thread::Builder::new()
            .name("jitd-tickets".into())
            .spawn(move || serving.accept(&listener, &hello))?;
        Ok(desk)
    }

    /// Takes jit-deliver's connections, the newest replacing the last.
    fn accept(&self, listener: &UnixListener, hello: &ToWorker) {
        for (connection, stream) in (1u64..).zip(listener.incoming()) {
            let Ok(mut stream) = stream else { continue };
            if let Err(why) = crate::deliver::peer_is_worker(&stream) {
                tracing::warn!(%why, "ticket socket: refused a connection");
                continue;
            }
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let (Ok(()), Ok(reader)) = (wire::write(&mut stream, hello), stream.try_clone()) else {
                continue;
            };
            *self.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some((connection, stream));
            let desk = self.clone();
            let _ = std::thread::Builder::new()
                .name("jitd-tickets-read".into())
                .spawn(move || desk.read_answers(connection, reader));
        }
    }

    /// Hands each answer to the check waiting for it on `connection`, until
    /// the connection ends; then fails the checks still waiting on it.
    fn read_answers(&self, connection: u64, mut stream: UnixStream) {
        while let Ok(answer) = wire::read::<Answer>(&mut stream) {
            let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, check)) = waiting.get(&answer.id).filter(|(c, _)| *c == connection) {
                let _ = check.send(answer.reply);
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for (_, check) in waiting.values().filter(|(c, _)| *c == connection) {
            let _ = check.send(Reply::Failed("jit-deliver went away".into()));
        }
    }

    /// Hands `ask` to jit-deliver and waits for the webhook's answer (the
    /// caller bounds the wait).
    async fn post(&self, ask: TicketAsk) -> Result<Vec<u8>, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tell, answer) = mpsc::channel();
        let desk = self.clone();
        let _done = Forget(self.clone(), id);
        let result = tokio::task::spawn_blocking(move || -> Result<Reply, String> {
            desk.send(id, ask, tell)?;
            // Polled, so that an abandoned check (timed out) ends too.
            loop {
                match answer.recv_timeout(Duration::from_millis(100)) {
                    Ok(reply) => return Ok(reply),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Err(NOT_RUNNING.into()),
                    Err(mpsc::RecvTimeoutError::Timeout) if desk.abandoned(id) => {
                        return Err("abandoned".into())
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
        });
        match result.await.map_err(|e| e.to_string())?? {
            Reply::Body(body) => Ok(body.into_bytes()),
            Reply::Failed(why) => Err(format!("the webhook failed: {why}")),
        }
    }

    /// Registers check `id` on the current connection and sends it there.
    fn send(&self, id: u64, ask: TicketAsk, tell: mpsc::Sender<Reply>) -> Result<(), String> {
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        let Some((connection, stream)) = worker.as_mut() else {
            return Err(NOT_RUNNING.to_owned());
        };
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (*connection, tell));
        wire::write(stream, &ToWorker::Check { id, ask })
            .map_err(|e| format!("{NOT_RUNNING} ({e})"))
    }

    fn abandoned(&self, id: u64) -> bool {
        !self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
    }
}

const NOT_RUNNING: &str = "jit-deliver, which posts the ticket webhook, is not connected";

/// Forgets a check when its wait ends (answered, failed or timed out).
struct Forget(Desk, u64);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tickets::{Stage, Verdict};
    use std::os::unix::fs::PermissionsExt;

    fn ask(ticket: &str) -> TicketAsk {
        TicketAsk {
            ticket: ticket.into(),
            requester: "alice".into(),
            resource: "sudo".into(),
            stage: Stage::Request,
        }
    }

    /// A command validator of `script`, run as nobody, with a 1 s timeout.
    fn validator(dir: &tempfile::TempDir, script: &str) -> Tickets {
        let path = dir.path().join("check");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = TicketsConfig {
            validator: Some(Validator::Command {
                argv: vec![path.display().to_string()],
                user: "nobody".into(),
            }),
            timeout: Duration::from_secs(1),
            ..TicketsConfig::default()
        };
        Tickets::start(&config, dir.path()).unwrap()
    }

    #[tokio::test]
    async fn a_hung_command_and_what_it_started_are_killed_at_the_timeout() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to run the validator as nobody");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("{}", std::process::id());
        let tickets = validator(&dir, &format!("sleep 6{marker} & sleep 7{marker}"));
        let check = tickets.check(ask("INC-1")).await;
        assert_eq!(check.verdict, Verdict::Unavailable, "{check:?}");
        assert!(check.message.contains("within 1s"), "{check:?}");
        std::thread::sleep(Duration::from_millis(200));
        let left = std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep [67]{marker}")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&left.stdout), "", "left running");
    }
}
