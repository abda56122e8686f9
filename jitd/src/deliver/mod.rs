//! Notification delivery out of the root daemon (issue 17, item 6).
//!
//! jitd keeps the outbox, the retry schedule and the audit (see
//! [`crate::notifier`]); the network work (SMTP, TLS, HTTP) is done by
//! `jit-deliver`, an unprivileged service of its own (the `jit-deliver`
//! crate, which links the SMTP, TLS and HTTP code jitd does not), which
//! never opens jitd's database. They talk over jitd's root-owned socket
//! `deliver.socket` in its runtime directory with the small protocol of
//! [`wire`]: jitd hands out one delivery at a time and takes back its
//! acknowledgement.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod feed;
pub mod tickets;
pub mod wire;

/// The socket's file name in jitd's runtime directory.
pub const SOCKET_NAME: &str = "deliver.socket";

/// The system user `jit-deliver` runs as (sysusers.d); the only one, with
/// root, that jitd serves on the socket.
pub const USER: &str = "jit-deliver";

/// How long the worker has to answer one job (a delivery, a batch) before
/// jitd gives up on the connection and hands the job out again. The worker
/// bounds its own attempts below it (several steps of `timeout` each).
pub fn lease(timeout: Duration) -> Duration {
    timeout
        .saturating_mul(10)
        .saturating_add(Duration::from_secs(5))
}

/// The runtime directory (traversable, not listable, by others: each socket
/// in it says who may connect) and the socket `name` in it: 0660 root and
/// the jit-deliver user's group, 0600 if there is no such user (then only a
/// worker running as root is served).
pub(crate) fn bind(runtime_dir: &Path, name: &str) -> io::Result<(UnixListener, PathBuf)> {
    bind_for(runtime_dir, name, USER)
}

/// [`bind`] for the service running as `user`.
pub(crate) fn bind_for(
    runtime_dir: &Path,
    name: &str,
    user: &str,
) -> io::Result<(UnixListener, PathBuf)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(runtime_dir)?;
    let meta = std::fs::metadata(runtime_dir)?;
    if meta.permissions().mode() & 0o011 != 0o011 {
        std::fs::set_permissions(
            runtime_dir,
            std::fs::Permissions::from_mode(meta.permissions().mode() | 0o011),
        )?;
    }
    let path = runtime_dir.join(name);
    let listener = crate::socket_file::bind_replacing_stale(&path)?;
    match nix::unistd::User::from_name(user) {
        Ok(Some(account)) => {
            nix::unistd::chown(&path, None, Some(account.gid))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
        }
        _ => tracing::warn!(
            user,
            socket = name,
            "no such user: only a worker running as root can connect"
        ),
    }
    Ok((listener, path))
}

/// Whether the peer is the delivery worker: root, or the jit-deliver user.
pub(crate) fn peer_is_worker(stream: &UnixStream) -> Result<u32, String> {
    peer_is(stream, USER)
}

/// Whether the peer is root or `user`.
pub(crate) fn peer_is(stream: &UnixStream, user: &str) -> Result<u32, String> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| format!("no peer credentials: {e}"))?;
    let uid = cred.uid();
    let worker = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    if uid == 0 || Some(uid) == worker {
        Ok(uid)
    } else {
        Err(format!("uid {uid} is not {user}"))
    }
}
