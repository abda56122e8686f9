//! An impostor for the threat tests (T1, T2): owns `org.jit.Daemon1` on the
//! bus at `--address ADDRESS`, or listens at `--listen PATH` as if it were
//! jitd's private socket, and answers "granted" to everything.
//! Prints `ready` once it owns the name or listens, then, on the private
//! socket, `connection` for each connection and the member of each call:
//! run as root, it is a scripted jitd for pam_jit's connection handling.
//! `--listen PATH --hang-up` closes each connection after its first call,
//! as a restarting jitd would.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use zbus::interface;

#[derive(Default)]
struct Yes {
    /// Told of every call.
    called: Arc<Notify>,
}

impl Yes {
    fn called(&self, member: &str) {
        println!("{member}");
        self.called.notify_one();
    }
}

const FAR_FUTURE: i64 = 4_102_444_800; // 2100-01-01

#[interface(name = "org.jit.Daemon1")]
impl Yes {
    async fn check_grant(&self, _uid: u32, _resource: String) -> (bool, u64, i64, u64) {
        self.called("CheckGrant");
        (true, 1, FAR_FUTURE, 0)
    }

    async fn check_access(
        &self,
        _uid: u32,
        _resource: String,
        _service: String,
        _tty: String,
        _rhost: String,
    ) -> (bool, u64, i64, u64) {
        self.called("CheckAccess");
        (true, 1, FAR_FUTURE, 0)
    }

    async fn register_session(
        &self,
        _uid: u32,
        _resource: String,
        _service: String,
        _tty: String,
        _rhost: String,
    ) -> (u64, u64, i64) {
        self.called("RegisterSession");
        (1, 1, FAR_FUTURE)
    }

    async fn status(&self) -> String {
        "{\"impostor\":true}".into()
    }

    async fn list(&self, _filter: String) -> String {
        "[]".into()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next().as_deref()) {
        (Some("--address"), Some(address), None) => on_bus(&address).await,
        (Some("--listen"), Some(path), None) => listen(&path, false).await,
        (Some("--listen"), Some(path), Some("--hang-up")) => listen(&path, true).await,
        _ => {
            eprintln!("usage: fake-jitd --address ADDRESS | --listen PATH [--hang-up]");
            std::process::exit(2);
        }
    }
}

async fn on_bus(address: &str) -> zbus::Result<()> {
    let conn = zbus::connection::Builder::address(address)
        .serve_at("/org/jit/Daemon1", Yes::default())
        .name("org.jit.Daemon1")
        .build()
        .await?;
    println!("ready");
    let _keep = conn;
    std::future::pending::<()>().await;
    Ok(())
}

/// Peer-to-peer, like jitd's private socket: every connection gets a yes.
async fn listen(path: &str, hang_up: bool) -> zbus::Result<()> {
    let listener = tokio::net::UnixListener::bind(path)?;
    println!("ready");
    let mut kept = Vec::new();
    loop {
        let (stream, _) = listener.accept().await?;
        println!("connection");
        let yes = Yes::default();
        let called = Arc::clone(&yes.called);
        let stream = stream.into_std()?;
        let fd = stream.as_raw_fd();
        let conn = zbus::connection::Builder::unix_stream(stream)
            .server(zbus::Guid::generate())
            .p2p()
            .serve_at("/org/jit/Daemon1", yes)
            .build()
            .await;
        match conn {
            Ok(conn) if hang_up => {
                tokio::spawn(async move {
                    called.notified().await;
                    // Time for the reply to leave.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    // Both ways, as a process that exits: the client's next
                    // write fails with EPIPE (and would raise SIGPIPE).
                    // SAFETY: `fd` is the connection's socket, still open.
                    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                    let _ = conn.close().await;
                });
            }
            Ok(conn) => kept.push(conn),
            Err(_) => {}
        }
    }
}
