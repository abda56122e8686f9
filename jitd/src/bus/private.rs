//! The private socket: pam_jit's calls over peer-to-peer D-Bus from root,
//! without dbus-daemon in between (as systemctl reaches PID 1 on
//! `/run/systemd/private`). Served by [`PeerConnection`], not zbus: see there.
//!
//! Through the bus, every sudo pays for a new bus connection (authentication,
//! Hello, the name-owner checks) and jitd for a second round trip to learn
//! who is calling. Here the kernel tells each end who the other is
//! (SO_PEERCRED): only root is served, and pam_jit trusts only a root
//! listener. Same interface, same rules ([`Gate`]); the bus stays the
//! fallback when this socket is absent.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jit_wire::{Message, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use zbus::{DBusError, Guid};

use super::gate::{Bound, Gate, SessionOpening};
use super::peer::{PeerConnection, PeerError};
use super::BusError;
use crate::api::{INTERFACE, OBJECT_PATH};
use crate::sessions::pidfd::{Pidfd, Process};

/// The socket's name in jitd's runtime directory (`/run/jit`).
pub const SOCKET_NAME: &str = "pam.socket";
/// Connections served at once; more wait for a slot (their PAM timeout runs).
const MAX_CONNECTIONS: usize = 256;
/// Connections served at once for the processes of one real uid (every
/// sudo connects as root; its real uid is the user's): one user's stopped
/// or slow sudo runs cannot take the slots everyone's sudo needs (T30).
/// More wait for one of these, within pam_jit's timeout (`xargs -P 40 sudo`
/// works). Root's own processes (sshd's, before a login has a uid) are not
/// counted, nor anyone's while jitd is quiet ([`COUNT_USERS_FROM`]).
const SERVED_PER_USER: usize = 16;
/// Connections one real uid may have open, served or waiting; more are
/// closed at once (pam_jit denies), so waiting ones cannot pile up.
const OPEN_PER_USER: usize = 64;
/// Connections are counted per user from this many open on (all users'):
/// below it nobody can be crowded out, and a quiet jitd skips the lookup.
const COUNT_USERS_FROM: usize = 32;
/// pam_jit's longest timeout: nobody needs a connection for longer.
const MAX_LIFETIME: Duration = Duration::from_secs(30);
/// Between the account check and the session hook, and before the first
/// call. A connection idle longer is closed: pam_jit's next hook opens a
/// new one, and jitd binds its process again at registration.
const MAX_IDLE: Duration = Duration::from_secs(10);

/// Binds the socket in `dir` (created if missing), replacing a socket left
/// by a jitd that was killed. Called once jitd owns its bus name, so a
/// second jitd never takes the socket from the first.
pub fn bind(dir: &Path) -> io::Result<(std::os::unix::net::UnixListener, PathBuf)> {
    // Root's alone where jitd makes it (systemd's RuntimeDirectory= makes it
    // 0755, the delivery socket 0711): the socket's own mode decides.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(SOCKET_NAME);
    // 0700 by jitd's umask: root alone may connect, whatever the directory
    // allows (the delivery socket makes it 0711).
    let listener = crate::socket_file::bind_replacing_stale(&path)?;
    listener.set_nonblocking(true)?;
    Ok((listener, path))
}

/// Serves pam_jit on `listener` from a thread of its own, with a
/// single-threaded runtime: an exchange is a handful of short steps, and
/// handing them between the main runtime's workers would cost more in
/// wake-ups than the steps themselves. Runs until jitd exits.
pub fn spawn(listener: std::os::unix::net::UnixListener, gate: Gate) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("jitd-pam".into())
        .spawn(move || {
            runtime.block_on(async move {
                match UnixListener::from_std(listener) {
                    Ok(listener) => serve(listener, gate).await,
                    Err(e) => tracing::error!(error = %e, "private socket: cannot listen"),
                }
            })
        })?;
    Ok(())
}

async fn serve(listener: UnixListener, gate: Gate) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_user = PerUser::default();
    let open = Arc::new(AtomicUsize::new(0));
    let mut closed = Closed::default();
    // One server GUID for the socket's lifetime, as the D-Bus spec asks.
    let guid: Arc<str> = Guid::generate().to_string().into();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                tracing::warn!(error = %e, "private socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Counted per user only once jitd is busy: reading the caller's
        // real uid from /proc costs every sudo, and a quiet jitd has room.
        let user_slot = if open.load(Ordering::Relaxed) < COUNT_USERS_FROM {
            UserSlot(None)
        } else {
            let real_uid = stream
                .peer_cred()
                .ok()
                .and_then(|c| c.pid())
                .and_then(|pid| u32::try_from(pid).ok())
                .and_then(|pid| gate.control().uid_of_process(pid));
            match per_user.take(real_uid) {
                Some(slot) => slot,
                None => {
                    closed.note(real_uid);
                    continue;
                }
            }
        };
        let opened = Open::new(&open);
        let slots = Arc::clone(&slots);
        let gate = gate.clone();
        let guid = Arc::clone(&guid);
        // Waiting happens here, never in the accept loop: one user's queue
        // holds up nobody else's connection.
        tokio::spawn(async move {
            let _opened = opened;
            let served = tokio::time::timeout(MAX_LIFETIME, async {
                let _turn = user_slot.turn().await;
                let _slot = slots.acquire_owned().await.ok()?;
                Some(serve_one(stream, gate, &guid).await)
            });
            if let Ok(Some(Err(e))) = served.await {
                tracing::debug!(error = %e, "private socket: connection ended");
            }
        });
    }
}

/// One open connection, counted in the total until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(open))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections closed for their user's cap, logged at most every
/// [`CLOSED_LOG_EVERY`] (a user could otherwise fill the log).
#[derive(Default)]
struct Closed {
    since_logged: u64,
    logged_at: Option<std::time::Instant>,
}

const CLOSED_LOG_EVERY: Duration = Duration::from_secs(10);

impl Closed {
    fn note(&mut self, real_uid: Option<u32>) {
        self.since_logged += 1;
        if self
            .logged_at
            .is_some_and(|at| at.elapsed() < CLOSED_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            ?real_uid,
            closed = self.since_logged,
            "private socket: too many connections from one user's processes; closed the excess"
        );
        self.since_logged = 0;
        self.logged_at = Some(std::time::Instant::now());
    }
}

/// Connections open per real uid of the connecting process, and the turns
/// of each to be served.
#[derive(Clone, Default)]
struct PerUser(Arc<std::sync::Mutex<HashMap<u32, UserConnections>>>);

struct UserConnections {
    open: usize,
    turns: Arc<Semaphore>,
}

/// A connection counted against its user until dropped.
struct UserSlot(Option<(PerUser, u32, Arc<Semaphore>)>);

impl PerUser {
    /// A slot for a process of `real_uid`; None past [`OPEN_PER_USER`]. A
    /// caller whose uid cannot be read (gone already) is counted as nobody:
    /// it is refused at authentication anyway if it is not root.
    fn take(&self, real_uid: Option<u32>) -> Option<UserSlot> {
        let uid = match real_uid {
            Some(0) => return Some(UserSlot(None)),
            Some(uid) => uid,
            None => u32::MAX,
        };
        let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let user = users.entry(uid).or_insert_with(|| UserConnections {
            open: 0,
            turns: Arc::new(Semaphore::new(SERVED_PER_USER)),
        });
        if user.open >= OPEN_PER_USER {
            return None;
        }
        user.open += 1;
        Some(UserSlot(Some((self.clone(), uid, Arc::clone(&user.turns)))))
    }
}

impl UserSlot {
    /// Waits until fewer than [`SERVED_PER_USER`] of the user's connections
    /// are served; the turn lasts as long as the returned permit.
    async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.0 {
            None => None,
            Some((_, _, turns)) => turns.acquire().await.ok(),
        }
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Some((per_user, uid, _)) = self.0.take() {
            let mut users = per_user.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(user) = users.get_mut(&uid) {
                user.open -= 1;
                if user.open == 0 {
                    users.remove(&uid);
                }
            }
        }
    }
}

async fn serve_one(stream: UnixStream, gate: Gate, guid: &str) -> Result<(), PeerError> {
    // Who connected, as the kernel saw it at connect(2): the caller for
    // every call on this connection.
    let peer = stream.peer_cred()?;
    let (uid, pid) = match (peer.uid(), peer.pid().and_then(|p| u32::try_from(p).ok())) {
        (0, Some(pid)) => (0, pid),
        (uid, pid) => {
            tracing::warn!(
                uid,
                ?pid,
                "private socket: refused a caller that is not root"
            );
            return Ok(());
        }
    };
    // Held from connect(2) on where the kernel can (a pid alone could be
    // reused if the caller dies meanwhile); read only if a binding needs it.
    let peer = match Pidfd::of_socket_peer(stream.as_fd()) {
        Ok(peer) => peer,
        Err(e) => {
            tracing::debug!(pid, error = %e, "private socket: the caller is gone");
            return Ok(());
        }
    };
    let mut conn = PeerConnection::new(stream);
    conn.authenticate(uid, guid).await?;
    let mut caller = Caller {
        pid,
        peer,
        bound: None,
    };
    // The account check, then maybe the session.
    while let Ok(next) = tokio::time::timeout(MAX_IDLE, conn.next_message()).await {
        let Some(message) = next? else { break };
        if message.kind != jit_wire::Kind::MethodCall {
            continue;
        }
        let outcome = call(&gate, uid, pid, &mut caller, &message).await;
        let registered = member(&message) == "RegisterSession";
        conn.answer(&message, outcome).await?;
        if registered {
            // pam_jit calls nothing after it: closing here, not at its
            // close, spares both ends a wake-up on every sudo.
            break;
        }
    }
    Ok(())
}

/// The process at the other end of a connection.
struct Caller {
    pid: u32,
    /// From SO_PEERPIDFD, where the kernel has it.
    peer: Option<Pidfd>,
    /// Once a granted check has bound it to its grant: sudo opens its
    /// session next, from the same process, and finds it bound.
    bound: Option<Bound>,
}

impl Caller {
    /// The process for a new binding: the bound one (a second check), else
    /// the peer, which must still run (None: hold it by pid).
    fn held(&mut self) -> Result<Option<Process>, BusError> {
        if let Some(bound) = self.bound.take() {
            return Ok(Some(bound.into_process()));
        }
        let Some(peer) = &self.peer else {
            return Ok(None);
        };
        peer.try_clone()
            .and_then(|fd| Process::from_pidfd(fd, self.pid))
            .map(Some)
            .map_err(|e| BusError::Failed(format!("the caller's process {}: {e}", self.pid)))
    }
}

fn member(m: &Message) -> &str {
    m.member.as_deref().unwrap_or_default()
}

/// `org.jit.Daemon1` on the private socket: pam_jit's methods only,
/// for the one caller at the other end. Errors as (name, message).
async fn call(
    gate: &Gate,
    uid: u32,
    pid: u32,
    caller: &mut Caller,
    m: &Message,
) -> Result<Vec<Value>, (String, String)> {
    let named = |e: BusError| {
        let message = e.description().unwrap_or_default().to_owned();
        (e.name().to_string(), message)
    };
    let fdo = |name: &str, message: String| (format!("org.freedesktop.DBus.Error.{name}"), message);
    let interface = m.interface.as_deref().unwrap_or(INTERFACE);
    let member = member(m);
    // Peer methods answer on any path (D-Bus specification); the rest live
    // at jitd's object only.
    if interface == "org.freedesktop.DBus.Peer" && member == "Ping" && m.body.is_empty() {
        return Ok(vec![]);
    }
    if m.path.as_deref() != Some(OBJECT_PATH) {
        return Err(fdo("UnknownObject", format!("no object at {:?}", m.path)));
    }
    match (interface, member, m.body.as_slice()) {
        (INTERFACE, "CheckGrant", [Value::U32(holder), Value::Str(resource)])
            if m.signature == "us" =>
        {
            let answer = gate.check(uid, *holder, resource).map_err(named)?;
            checked(gate, uid, pid, caller, *holder, resource, answer).map_err(named)
        }
        // pam_jit's account check: CheckGrant with what a denial records.
        (
            INTERFACE,
            "CheckAccess",
            [Value::U32(holder), Value::Str(resource), Value::Str(service), Value::Str(tty), Value::Str(rhost)],
        ) if m.signature == "ussss" => {
            let answer = gate
                .check_access(uid, *holder, resource, service, tty, rhost)
                .map_err(named)?;
            checked(gate, uid, pid, caller, *holder, resource, answer).map_err(named)
        }
        (
            INTERFACE,
            "RegisterSession",
            [Value::U32(holder), Value::Str(resource), Value::Str(service), Value::Str(tty), Value::Str(rhost)],
        ) if m.signature == "ussss" => {
            let opening = SessionOpening {
                uid: *holder,
                resource: resource.clone(),
                service: service.clone(),
                tty: tty.clone(),
                rhost: rhost.clone(),
            };
            let bound = caller.bound.take();
            let held = match bound {
                Some(_) => None,
                None => caller.held().map_err(named)?,
            };
            let (session, grant, expires_at) = gate
                .register(uid, pid, bound, held, opening)
                .await
                .map_err(named)?;
            Ok(vec![
                Value::U64(session),
                Value::U64(grant),
                Value::I64(expires_at),
            ])
        }
        (INTERFACE, "MfaLogin", [Value::U32(holder), Value::Str(code)]) if m.signature == "us" => {
            let (state, text) = gate
                .mfa_login(uid, *holder, code.clone())
                .await
                .map_err(named)?;
            Ok(vec![Value::Str(state), Value::Str(text)])
        }
        (INTERFACE, "CheckGrant" | "CheckAccess" | "RegisterSession" | "MfaLogin", _) => Err(fdo(
            "InvalidArgs",
            format!("{member} does not take ({})", m.signature),
        )),
        _ => Err(fdo(
            "UnknownMethod",
            format!("no method {interface}.{member} on the private socket"),
        )),
    }
}

/// The answer to an account check, `answer` as (active, grant,
/// expires_at, pending); a granted caller is bound to its grant first.
#[allow(clippy::too_many_arguments)] // the call's parts, as the match took them apart
fn checked(
    gate: &Gate,
    uid: u32,
    pid: u32,
    caller: &mut Caller,
    holder: u32,
    resource: &str,
    (active, grant, expires_at, pending): (bool, u64, i64, u64),
) -> Result<Vec<Value>, BusError> {
    if active {
        // Bound before the answer: sudo forks its command only after its
        // session hook, but a sudoers `!pam_session` skips that hook, and
        // sshd runs the shell whatever it says.
        let held = caller.held()?;
        caller.bound = Some(gate.bind(uid, pid, held, holder, resource)?);
    }
    Ok(vec![
        Value::Bool(active),
        Value::U64(grant),
        Value::I64(expires_at),
        Value::U64(pending),
    ])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jit_wire::{Call, Kind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::SessionsConfig;
    use crate::sessions::SessionControl;
    use crate::sessions::SessionEnds;
    use crate::test_support::{engine_with_grant, ALICE};

    fn call(serial: u32, member: &str, args: &[Value]) -> Vec<u8> {
        jit_wire::encode(&Call {
            serial,
            destination: None,
            path: OBJECT_PATH,
            interface: INTERFACE,
            member,
            args,
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_users_connections_wait_their_turn_and_roots_do_not() {
        let per_user = PerUser::default();
        let mut open: Vec<UserSlot> = (0..OPEN_PER_USER)
            .map(|_| per_user.take(Some(1000)).expect("under the cap"))
            .collect();
        assert!(per_user.take(Some(1000)).is_none(), "over the cap: closed");
        assert!(per_user.take(Some(1001)).is_some(), "another user is not");
        assert!((0..100).all(|_| per_user.take(Some(0)).is_some()));
        // Served in turns: SERVED_PER_USER at once, the next one waits.
        let mut turns = Vec::new();
        for slot in &open[..SERVED_PER_USER] {
            turns.push(slot.turn().await);
        }
        let waiting = tokio::time::timeout(Duration::from_millis(50), open[SERVED_PER_USER].turn());
        assert!(waiting.await.is_err(), "a turn past the served cap waits");
        turns.pop();
        let next = tokio::time::timeout(Duration::from_millis(50), open[SERVED_PER_USER].turn());
        assert!(next.await.is_ok(), "a finished turn lets the next one in");
        drop(turns);
        open.pop();
        assert!(
            per_user.take(Some(1000)).is_some(),
            "a closed one frees a slot"
        );
        drop(open);
        assert!(per_user.0.lock().unwrap().is_empty());
    }

    /// The next message from `stream`, after the handshake's "OK" line if
    /// `buf` still holds it.
    async fn reply(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Message {
        loop {
            if buf.starts_with(b"OK ") {
                jit_wire::take_auth_line(buf).unwrap();
            }
            if let Ok(len) = jit_wire::frame_len(buf) {
                if buf.len() >= len {
                    let message = jit_wire::decode(&buf[..len]).unwrap();
                    buf.drain(..len);
                    return message;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the reply");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// pam_jit's exchange with a real engine: the caller (this test process,
    /// root as jitd requires) is the session's process, and jitd closes the
    /// connection once the session is registered.
    #[tokio::test(flavor = "current_thread")]
    async fn a_registered_session_is_the_callers_process_and_the_last_call() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: the private socket serves root only");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        // A directory, not cgroupfs: "joining" writes a plain file, which
        // cgroupfs would have made with the grant's cgroup.
        let cgroup = dir.path().join(format!("cgroups/grant-{grant}"));
        std::fs::create_dir_all(&cgroup).unwrap();
        std::fs::write(cgroup.join("cgroup.procs"), "").unwrap();
        let control = SessionControl::new(&SessionsConfig {
            cgroup: Some(dir.path().join("cgroups")),
            ..SessionsConfig::default()
        });
        let gate = Gate::new(
            Arc::clone(&engine),
            control.clone(),
            SessionEnds::new(Arc::clone(&engine), control),
        );
        let (server, mut client) = UnixStream::pair().unwrap();
        let served = tokio::spawn(async move { serve_one(server, gate, "0123456789abcdef").await });

        let mut hello = b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec();
        hello.extend(call(
            1,
            "CheckGrant",
            &[Value::U32(ALICE), Value::Str("logs".into())],
        ));
        client.write_all(&hello).await.unwrap();
        let mut buf = Vec::new();
        let checked = reply(&mut client, &mut buf).await;
        assert_eq!(checked.kind, Kind::MethodReturn, "{checked:?}");
        assert_eq!(checked.body[..2], [Value::Bool(true), Value::U64(grant)]);

        let session = call(
            2,
            "RegisterSession",
            &[
                Value::U32(ALICE),
                Value::Str("logs".into()),
                Value::Str("sudo".into()),
                Value::Str("/dev/pts/7".into()),
                Value::Str(String::new()),
            ],
        );
        client.write_all(&session).await.unwrap();
        let registered = reply(&mut client, &mut buf).await;
        assert_eq!(registered.kind, Kind::MethodReturn, "{registered:?}");
        // Closed by jitd: end of stream, with nothing more sent.
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .expect("jitd kept the connection open")
            .unwrap();
        assert!(rest.is_empty() && buf.is_empty(), "{rest:?}");
        served.await.unwrap().unwrap();

        let sessions = engine.lock().unwrap().sessions_of(grant).unwrap();
        let [s] = sessions.as_slice() else {
            panic!("{sessions:?}")
        };
        let me = crate::sessions::pidfd::Process::hold(std::process::id()).unwrap();
        assert_eq!((s.pid, s.started), (me.pid, Some(me.started)));
    }
}
