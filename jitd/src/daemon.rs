//! jitd's process: open the state, take the bus name, run the expiry timer
//! and serve until SIGTERM.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use zbus::Connection;

use crate::accounts::segments::Nft;
use crate::accounts::vendors::ShadowVendors;
use crate::accounts::{Gpasswd, HostTools, Keeper, ShadowUtils, RECOVERY_FILE};
use crate::api::{BUS_NAME, OBJECT_PATH};
use crate::bus::{private, CallLimits, Callers, Daemon, Gate};
use crate::clock::SystemClock;
use crate::config::{self, ConfigError};
use crate::directory::Nss;
use crate::engine::{Engine, EngineError};
use crate::sessions::{Effects, SessionControl, SessionEnds};
use crate::standing::scanner::Scanner;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runtime directory {path}: {source}")]
    RuntimeDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("timer: {0}")]
    Timer(#[from] nix::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
}

/// Logs the config's names that resolve to nobody ([`config::names`]) from
/// a thread of its own: a slow directory (an LDAP that enumerates every
/// account) must not hold up jitd's start, during which every gated sudo is
/// refused.
fn warn_about_names(path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("jitd-names".into())
        .spawn(
            move || match config::load_and_check_names(&path, &Nss::default()) {
                Ok((_, warnings)) => {
                    for warning in warnings {
                        tracing::warn!("{warning}");
                    }
                }
                Err(e) => tracing::warn!("cannot check the config's names: {e}"),
            },
        );
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot check the config's names");
    }
}

pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let config = Arc::new(config::load(&opts.config)?);
    warn_about_names(opts.config.clone());
    create_state_dir(&opts.state_dir)?;
    // Expire and lapse what ended while we were down before taking the name:
    // nobody may be told "granted" about a grant that is already over.
    let control = SessionControl::new(&config.sessions);
    let (engine, recovered) =
        Engine::open(Arc::clone(&config), &opts.state_dir, Arc::new(SystemClock))?;
    if config.notify.enabled() {
        crate::notifier::start(
            Arc::clone(&config),
            &opts.state_dir,
            &opts.runtime_dir,
            engine.doorbell(),
        )
        .map_err(EngineError::from)?;
    }
    if config.siem.enabled() {
        crate::feed::start(
            config.siem.clone(),
            &opts.state_dir,
            &opts.runtime_dir,
            engine.audit_bell(),
        )
        .map_err(EngineError::from)?;
    }
    control.sweep(|grant| engine.is_active(grant));
    // Every recording still open was written by the jitd before this one:
    // nobody writes it any more (its recorders lost their pipes and end
    // their sessions), so it is sealed as found.
    let orphaned = engine.recordings_orphaned_at_start()?;
    let engine = Arc::new(Mutex::new(engine));
    // Before serving: no managed account keeps a password someone knows,
    // one a stopped jitd was replacing, or one whose grant ended while
    // jitd was down; no group keeps a member whose grant ended.
    let tools = HostTools {
        passwords: Box::new(ShadowUtils::new()),
        groups: Box::new(Gpasswd),
        vendors: Box::new(ShadowVendors::new()),
        firewall: Box::new(Nft),
    };
    let keeper = Keeper::new(
        Arc::clone(&engine),
        &config,
        tools,
        &opts.state_dir,
        control.clone(),
    );
    keeper.spawn(keeper.pass())?;
    let recovery = opts.state_dir.join(RECOVERY_FILE);
    if recovery.exists() {
        tracing::warn!(file = %recovery.display(),
            "root's recovery password is still on this host: store it offline, then delete the file");
    }
    let effects = Effects::new(Arc::clone(&engine), control.clone(), keeper);
    effects.seal(orphaned);
    if !recovered.is_empty() {
        tracing::info!(
            count = recovered.len(),
            "ended requests that expired while jitd was down"
        );
        effects.terminate_ended(&recovered);
    }
    let rearm = Arc::new(Notify::new());

    let conn = zbus::connection::Builder::system().build().await?;
    let ends = SessionEnds::new(Arc::clone(&engine), control.clone());
    ends.resume().await;
    let asker = crate::polkit::asker::resolve(&config.polkit);
    if let Ok(Some(asker)) = &asker {
        tracing::info!(
            asker = %config.polkit.asker,
            uid = asker.uid,
            resource = %asker.resource,
            "polkit gate: the asker may check anyone's grant for the resource"
        );
    }
    // polkitd asks for every user's admin actions: one user's burst of
    // them must not use up the answers everyone else's need.
    let asker_uid = asker.as_ref().ok().and_then(|a| a.as_ref().map(|a| a.uid));
    let limits = CallLimits::new(&config.limits).unlimited(asker_uid);
    let gate = Gate::new(Arc::clone(&engine), control, ends.clone()).with_polkit(asker);
    // Denied account checks go to the audit trail from this runtime,
    // never from the thread serving pam_jit.
    let denials = gate.denials().clone();
    tokio::spawn(denials.clone().run(Arc::clone(&engine)));
    let scanner = Scanner::new(Arc::clone(&engine));
    let tickets =
        crate::tickets::Tickets::start(&config.tickets, &opts.runtime_dir).map_err(|source| {
            DaemonError::RuntimeDir {
                path: opts.runtime_dir.clone(),
                source,
            }
        })?;
    let daemon = Daemon::new(
        gate.clone(),
        Callers::new(limits),
        effects.clone(),
        Arc::clone(&rearm),
        scanner.clone(),
        tickets,
    );
    conn.object_server().at(OBJECT_PATH, daemon).await?;
    conn.request_name(BUS_NAME).await?;
    let (listener, socket) =
        private::bind(&opts.runtime_dir).map_err(|source| DaemonError::RuntimeDir {
            path: opts.runtime_dir.clone(),
            source,
        })?;
    private::spawn(listener, gate.clone())?;
    for warning in gate.warnings() {
        tracing::warn!("{warning}");
    }
    tracing::info!(name = BUS_NAME, socket = %socket.display(), "jitd ready");
    tokio::spawn(scanner.run_every(config.scan));
    let rosters = lock(&engine).rosters();
    tokio::spawn(crate::oncall::watch(rosters, Arc::clone(&engine)));

    let timer = tokio::spawn(run_deadlines(
        Arc::clone(&engine),
        conn.clone(),
        effects,
        rearm,
    ));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
        result = timer => {
            if let Ok(Err(e)) = result {
                return Err(e);
            }
        }
    }
    std::fs::remove_file(&socket).ok();
    conn.release_name(BUS_NAME).await.ok();
    ends.flush();
    denials.flush_all(&engine);
    Ok(())
}

fn create_state_dir(path: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| DaemonError::StateDir {
        path: path.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)
}

/// The one timer for every grant: sleep on CLOCK_BOOTTIME until the earliest
/// deadline (counting suspend), and wake early if the wall clock is set.
async fn run_deadlines(
    engine: Arc<Mutex<Engine>>,
    conn: Connection,
    effects: Effects,
    rearm: Arc<Notify>,
) -> Result<(), DaemonError> {
    let timer = Timer::register(ClockId::CLOCK_BOOTTIME)?;
    let clock_set = Timer::register(ClockId::CLOCK_REALTIME)?;
    arm_clock_watch(&clock_set.get_ref().0)?;
    loop {
        let next = lock(&engine).next_deadline();
        match next {
            // A zero absolute time would disarm the timer; deadlines are never at boot.
            Some(at) => timer.get_ref().0.set(
                Expiration::OneShot(TimeSpec::from(at.max(Duration::from_nanos(1)))),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )?,
            None => timer.get_ref().0.unset()?,
        }
        let clock_changed = tokio::select! {
            guard = timer.readable() => { drain(guard?); false }
            guard = clock_set.readable() => { drain(guard?); true }
            _ = rearm.notified() => false,
        };
        let engine_ref = Arc::clone(&engine);
        let events = tokio::task::spawn_blocking(move || {
            let mut engine = lock(&engine_ref);
            if clock_changed {
                engine.clock_changed()
            } else {
                engine.tick()
            }
        })
        .await
        .map_err(|e| DaemonError::Io(std::io::Error::other(e)))?;
        match events {
            Ok(events) => effects.apply(&conn, &events).await,
            // A failed batch rolled back; its deadlines were consumed, so
            // reload them rather than lose a grant's expiry.
            Err(e) => {
                tracing::error!(error = %e, "expiry pass failed; retrying in 1s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let engine_ref = Arc::clone(&engine);
                tokio::task::spawn_blocking(move || lock(&engine_ref).reload())
                    .await
                    .map_err(|e| DaemonError::Io(std::io::Error::other(e)))??;
            }
        }
        if clock_changed {
            arm_clock_watch(&clock_set.get_ref().0)?;
        }
    }
}

/// A far-future absolute CLOCK_REALTIME timer with CANCEL_ON_SET: reading it
/// fails with ECANCELED as soon as anyone sets the wall clock.
fn arm_clock_watch(fd: &TimerFd) -> nix::Result<()> {
    fd.set(
        Expiration::OneShot(TimeSpec::new(i64::from(i32::MAX) * 4, 0)),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
    )
}

/// A timerfd that tokio can poll.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Timer {
    fn register(clock: ClockId) -> Result<AsyncFd<Timer>, DaemonError> {
        let fd = TimerFd::new(clock, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        // SAFETY: the TimerFd owns its descriptor for as long as the AsyncFd
        // owns the Timer, and as_raw_fd always returns that descriptor.
        unsafe { AsyncFd::register(Timer(fd)) }
            .map_err(|e| DaemonError::Io(std::io::Error::other(e.to_string())))
    }
}

fn drain(mut guard: tokio::io::unix::AsyncFdReadyGuard<'_, Timer>) {
    let mut buf = [0u8; 8];
    // EAGAIN (spurious wake-up) and ECANCELED (clock set) both just clear readiness.
    let _ = nix::unistd::read(guard.get_inner().0.as_fd(), &mut buf);
    guard.clear_ready();
}

fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}
