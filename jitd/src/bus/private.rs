//! The private socket: pam_jit's calls over peer-to-peer D-Bus from root,
//! without dbus-daemon in between (as systemctl reaches PID 1 on
//! `/run/systemd/private`).
//!
//! Through the bus, every sudo pays for a new bus connection (authentication,
//! Hello, the name-owner checks) and jitd for a second round trip to learn
//! who is calling. Here the kernel tells each end who the other is
//! (SO_PEERCRED): only root is served, and pam_jit trusts only a root
//! listener. Same interface, same rules ([`Gate`]); the bus stays the
//! fallback when this socket is absent.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use zbus::connection::{AuthMechanism, Builder};
use zbus::{interface, Guid, MessageStream};

use super::gate::{Gate, SessionOpening};
use super::peer_socket::PeerSocket;
use super::BusError;
use crate::api::OBJECT_PATH;

/// The socket's name in jitd's runtime directory (`/run/jit`).
pub const SOCKET_NAME: &str = "pam.socket";
/// Connections served at once; more wait for a slot (their PAM timeout runs).
const MAX_CONNECTIONS: usize = 256;
/// pam_jit's longest timeout: nobody needs a connection for longer.
const MAX_LIFETIME: Duration = Duration::from_secs(30);

/// Binds the socket in `dir` (created if missing), replacing a socket left
/// by a jitd that was killed. Called once jitd owns its bus name, so a
/// second jitd never takes the socket from the first.
pub fn bind(dir: &Path) -> io::Result<(std::os::unix::net::UnixListener, PathBuf)> {
    // Root's alone, like the socket (systemd's RuntimeDirectory= makes it
    // 0755; either way only root may connect).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(SOCKET_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // jitd's umask (0077) leaves the socket 0700: root alone may connect.
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
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
    let guid = Guid::generate();
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
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let gate = gate.clone();
        let guid = guid.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, gate, guid).await {
                tracing::debug!(error = %e, "private socket: connection ended");
            }
            drop(slot);
        });
    }
}

async fn serve_one(stream: UnixStream, gate: Gate, guid: Guid<'static>) -> zbus::Result<()> {
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
    let served = async {
        let conn = Builder::socket(PeerSocket::new(stream, uid, pid))
            .server(guid)
            .p2p()
            .auth_mechanism(AuthMechanism::External)
            .serve_at(OBJECT_PATH, PrivateGate { gate, uid, pid })
            .build()
            .await?;
        // The connection lives until pam_jit closes its end.
        let mut messages = MessageStream::from(&conn);
        while messages.next().await.is_some() {}
        Ok::<_, zbus::Error>(())
    };
    tokio::time::timeout(MAX_LIFETIME, served)
        .await
        .unwrap_or(Ok(()))
}

/// `org.jit.Daemon1` on the private socket: pam_jit's two methods only,
/// for the one caller at the other end.
struct PrivateGate {
    gate: Gate,
    uid: u32,
    pid: u32,
}

#[interface(name = "org.jit.Daemon1", introspection_docs = false)]
impl PrivateGate {
    #[zbus(out_args("active", "grant", "expires_at", "pending"))]
    async fn check_grant(
        &self,
        uid: u32,
        resource: String,
    ) -> Result<(bool, u64, i64, u64), BusError> {
        self.gate.check(self.uid, uid, &resource)
    }

    #[zbus(out_args("session", "grant", "expires_at"))]
    async fn register_session(
        &self,
        uid: u32,
        resource: String,
        service: String,
        tty: String,
        rhost: String,
    ) -> Result<(u64, u64, i64), BusError> {
        let opening = SessionOpening {
            uid,
            resource,
            service,
            tty,
            rhost,
        };
        self.gate.register(self.uid, self.pid, opening).await
    }
}
