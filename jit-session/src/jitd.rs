//! The jitd client: OpenRecording / OpenLoginRecording / CloseRecording and
//! the grant lifecycle signals. The bus runs on its own thread (a tokio
//! current-thread runtime, started after the forks); the relay sees a
//! blocking trait and a pipe that becomes readable when signals arrive.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::fdo::DBusProxy;
use zbus::names::BusName;
use zbus::{proxy, Connection};

use jit_recording::End;

use crate::session::GrantSignal;

/// Fixed on purpose: jit-session runs under sudo with the user's environment,
/// so `DBUS_SYSTEM_BUS_ADDRESS` is not to be trusted.
pub const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
pub const BUS_NAME: &str = "org.jit.Daemon1";
const ERROR_PREFIX: &str = "org.jit.Daemon1.Error.";
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum JitdError {
    #[error("cannot reach jitd: {0}")]
    Unreachable(String),
    #[error("org.jit.Daemon1 is owned by uid {0}, not root: refusing to talk to an impostor")]
    Impostor(u32),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("jitd: {0}")]
    Failed(String),
    #[error("unexpected answer from jitd: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Terminate,
    Continue,
}

#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub cols: u32,
    pub rows: u32,
    pub command: String,
    pub term: String,
    pub shell: String,
}

/// A recording jitd opened: it created the file, wrote its header, and
/// reads the events from `pipe`, the write end of a pipe (see
/// [`jit_recording::pipe`]). The recorder never holds the file.
#[derive(Debug)]
pub struct Opened {
    pub pipe: OwnedFd,
    pub recording: u64,
    pub record_input: bool,
    pub on_failure: OnFailure,
    pub grant: u64,
    pub expires_at: i64,
    /// A login shell's: the real shell to run (`[recordings] login_shell`).
    pub shell: Option<PathBuf>,
}

/// Grant signals, readable without blocking.
pub trait Events {
    /// Readable when [`Events::take`] has something.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    fn take(&mut self) -> Vec<GrantSignal>;
}

pub trait Jitd: Events {
    /// A root session's recording (jit-session run through sudo).
    fn open_recording(&mut self, req: &OpenRequest) -> Result<Opened, JitdError>;
    /// A login shell's recording.
    fn open_login_recording(&mut self, req: &OpenRequest) -> Result<Opened, JitdError>;
    /// Ends the recording once every event is in the pipe; jitd seals it
    /// with the digest of what it received and answers when that is done.
    fn close_recording(&mut self, recording: u64, end: End) -> Result<(), JitdError>;
}

/// No jitd (standalone recordings): no signals.
pub struct NoEvents;

impl Events for NoEvents {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn take(&mut self) -> Vec<GrantSignal> {
        vec![]
    }
}

#[proxy(
    interface = "org.jit.Daemon1",
    default_service = "org.jit.Daemon1",
    default_path = "/org/jit/Daemon1"
)]
trait Daemon1 {
    fn open_recording(
        &self,
        cols: u32,
        rows: u32,
        command: &str,
        term: &str,
        shell: &str,
    ) -> zbus::Result<(zbus::OwnedFd, String)>;
    fn close_recording(&self, recording: u64, end: &str) -> zbus::Result<()>;
    fn open_login_recording(
        &self,
        cols: u32,
        rows: u32,
        command: &str,
        term: &str,
    ) -> zbus::Result<(zbus::OwnedFd, String)>;
    #[zbus(signal)]
    fn grant_expiring(&self, id: u64, expires_at: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    fn grant_extended(&self, id: u64, expires_at: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    fn grant_ended(&self, id: u64, uid: u32, resource: &str, reason: &str) -> zbus::Result<()>;
}

enum Request {
    Open(OpenRequest, std_mpsc::Sender<Result<Opened, JitdError>>),
    OpenLogin(OpenRequest, std_mpsc::Sender<Result<Opened, JitdError>>),
    Close(u64, End, std_mpsc::Sender<Result<(), JitdError>>),
}

/// jitd over the system bus.
pub struct BusJitd {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    events: std_mpsc::Receiver<GrantSignal>,
    wake: OwnedFd,
}

impl BusJitd {
    /// Starts the bus thread, connects, checks that jitd is root's and
    /// subscribes to the lifecycle signals.
    pub fn connect() -> Result<BusJitd, JitdError> {
        let (req_tx, req_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (wake_r, wake_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| JitdError::Unreachable(e.to_string()))?;
        std::thread::Builder::new()
            .name("jitd-bus".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(JitdError::Unreachable(e.to_string())));
                        return;
                    }
                };
                rt.block_on(bus_main(req_rx, ev_tx, wake_w, ready_tx));
            })
            .map_err(|e| JitdError::Unreachable(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| JitdError::Unreachable("the bus thread died".into()))??;
        Ok(BusJitd {
            requests: req_tx,
            events: ev_rx,
            wake: wake_r,
        })
    }
}

impl Events for BusJitd {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.wake.as_fd())
    }
    fn take(&mut self) -> Vec<GrantSignal> {
        let mut buf = [0u8; 256];
        while matches!(nix::unistd::read(&self.wake, &mut buf), Ok(n) if n > 0) {}
        self.events.try_iter().collect()
    }
}

impl Jitd for BusJitd {
    fn open_recording(&mut self, req: &OpenRequest) -> Result<Opened, JitdError> {
        self.call(|tx| Request::Open(req.clone(), tx))
    }

    fn open_login_recording(&mut self, req: &OpenRequest) -> Result<Opened, JitdError> {
        self.call(|tx| Request::OpenLogin(req.clone(), tx))
    }

    fn close_recording(&mut self, recording: u64, end: End) -> Result<(), JitdError> {
        self.call(|tx| Request::Close(recording, end, tx))
    }
}

impl BusJitd {
    /// Sends `make(reply)` to the bus thread and waits for the reply.
    fn call<T>(
        &self,
        make: impl FnOnce(std_mpsc::Sender<Result<T, JitdError>>) -> Request,
    ) -> Result<T, JitdError> {
        let (tx, rx) = std_mpsc::channel();
        self.requests
            .send(make(tx))
            .map_err(|_| JitdError::Unreachable("the bus thread died".into()))?;
        rx.recv()
            .map_err(|_| JitdError::Unreachable("the bus thread died".into()))?
    }
}

async fn connect() -> Result<Daemon1Proxy<'static>, JitdError> {
    let conn: Connection = zbus::connection::Builder::address(SYSTEM_BUS)
        .build()
        .await
        .map_err(|e| JitdError::Unreachable(format!("the system bus: {e}")))?;
    let owner = DBusProxy::new(&conn)
        .await
        .map_err(|e| JitdError::Unreachable(e.to_string()))?
        .get_connection_unix_user(
            BusName::try_from(BUS_NAME).map_err(|e| JitdError::Unreachable(e.to_string()))?,
        )
        .await
        .map_err(|_| JitdError::Unreachable("jitd is not running".into()))?;
    if owner != 0 {
        return Err(JitdError::Impostor(owner));
    }
    Daemon1Proxy::new(&conn)
        .await
        .map_err(|e| JitdError::Unreachable(e.to_string()))
}

fn call_error(e: zbus::Error) -> JitdError {
    match &e {
        zbus::Error::MethodError(name, message, _) => {
            let text = message.clone().unwrap_or_else(|| name.to_string());
            match name.strip_prefix(ERROR_PREFIX) {
                Some("NotAuthorized") => JitdError::NotAuthorized(text),
                _ => JitdError::Failed(text),
            }
        }
        _ => JitdError::Unreachable(e.to_string()),
    }
}

fn parse_on_failure(text: &str) -> Result<OnFailure, JitdError> {
    match text {
        "terminate" => Ok(OnFailure::Terminate),
        "continue" => Ok(OnFailure::Continue),
        other => Err(JitdError::Protocol(format!("on_failure {other:?}"))),
    }
}

/// OpenRecording's and OpenLoginRecording's reply: the pipe and a JSON
/// object (a login shell's names the real shell too).
fn parse_opened((pipe, json): (zbus::OwnedFd, String)) -> Result<Opened, JitdError> {
    let v: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| JitdError::Protocol(format!("reply: {e}")))?;
    let field = |name: &str| {
        v.get(name)
            .ok_or_else(|| JitdError::Protocol(format!("reply without {name}")))
    };
    let number = |name: &str| {
        field(name)?
            .as_u64()
            .ok_or_else(|| JitdError::Protocol(format!("{name} is not a number")))
    };
    let shell = match v.get("shell") {
        None => None,
        Some(shell) => {
            let shell = PathBuf::from(
                shell
                    .as_str()
                    .ok_or_else(|| JitdError::Protocol("shell is not a string".into()))?,
            );
            if !shell.is_absolute() {
                return Err(JitdError::Protocol(
                    "the shell is not an absolute path".into(),
                ));
            }
            Some(shell)
        }
    };
    Ok(Opened {
        pipe: pipe.into(),
        recording: number("recording")?,
        grant: number("grant")?,
        expires_at: field("expires_at")?
            .as_i64()
            .ok_or_else(|| JitdError::Protocol("expires_at is not a number".into()))?,
        record_input: field("record_input")?
            .as_bool()
            .ok_or_else(|| JitdError::Protocol("record_input is not a boolean".into()))?,
        on_failure: parse_on_failure(
            field("on_failure")?
                .as_str()
                .ok_or_else(|| JitdError::Protocol("on_failure is not a string".into()))?,
        )?,
        shell,
    })
}

async fn bus_main(
    mut requests: tokio::sync::mpsc::UnboundedReceiver<Request>,
    events: std_mpsc::Sender<GrantSignal>,
    wake: OwnedFd,
    ready: std_mpsc::Sender<Result<(), JitdError>>,
) {
    let setup = async {
        let proxy = connect().await?;
        let sub = |e: zbus::Error| JitdError::Unreachable(format!("subscribing: {e}"));
        let expiring = proxy.receive_grant_expiring().await.map_err(sub)?;
        let extended = proxy.receive_grant_extended().await.map_err(sub)?;
        let ended = proxy.receive_grant_ended().await.map_err(sub)?;
        Ok::<_, JitdError>((proxy, expiring, extended, ended))
    };
    let (proxy, mut expiring, mut extended, mut ended) = match setup.await {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let emit = |s: GrantSignal| {
        let _ = events.send(s);
        let _ = nix::unistd::write(&wake, &[1]);
    };
    loop {
        tokio::select! {
            req = requests.recv() => match req {
                None => return,
                Some(Request::Open(r, reply)) => {
                    let res = tokio::time::timeout(
                        CALL_TIMEOUT,
                        proxy.open_recording(r.cols, r.rows, &r.command, &r.term, &r.shell),
                    )
                    .await
                    .map_err(|_| JitdError::Unreachable("OpenRecording timed out".into()))
                    .and_then(|r| r.map_err(call_error))
                    .and_then(parse_opened);
                    let _ = reply.send(res);
                }
                Some(Request::OpenLogin(r, reply)) => {
                    let res = tokio::time::timeout(
                        CALL_TIMEOUT,
                        proxy.open_login_recording(r.cols, r.rows, &r.command, &r.term),
                    )
                    .await
                    .map_err(|_| JitdError::Unreachable("OpenLoginRecording timed out".into()))
                    .and_then(|r| r.map_err(call_error))
                    .and_then(parse_opened);
                    let _ = reply.send(res);
                }
                Some(Request::Close(rec, end, reply)) => {
                    let res = tokio::time::timeout(
                        CALL_TIMEOUT,
                        proxy.close_recording(rec, end.as_str()),
                    )
                    .await
                    .map_err(|_| JitdError::Unreachable("CloseRecording timed out".into()))
                    .and_then(|r| r.map_err(call_error));
                    let _ = reply.send(res);
                }
            },
            Some(s) = expiring.next() => {
                if let Ok(a) = s.args() {
                    emit(GrantSignal::Expiring { id: a.id, expires_at: a.expires_at });
                }
            }
            Some(s) = extended.next() => {
                if let Ok(a) = s.args() {
                    emit(GrantSignal::Extended { id: a.id, expires_at: a.expires_at });
                }
            }
            Some(s) = ended.next() => {
                if let Ok(a) = s.args() {
                    emit(GrantSignal::Ended { id: a.id, reason: a.reason.to_string() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(json: &str) -> Result<Opened, JitdError> {
        let (r, _w) = nix::unistd::pipe().unwrap();
        parse_opened((r.into(), json.into()))
    }

    #[test]
    fn parses_open_replies() {
        let root = r#"{"recording":3,"grant":7,"expires_at":1700000000,"record_input":false,
                       "on_failure":"terminate"}"#;
        let o = reply(root).unwrap();
        assert_eq!((o.recording, o.grant, o.expires_at), (3, 7, 1_700_000_000));
        assert_eq!(o.on_failure, OnFailure::Terminate);
        assert_eq!(o.shell, None);
        let login = root.replace("}", r#","shell":"/bin/bash"}"#);
        assert_eq!(
            reply(&login).unwrap().shell,
            Some(PathBuf::from("/bin/bash"))
        );
        assert!(reply(&login.replace("/bin/bash", "bash")).is_err());
        assert!(reply(&root.replace("\"grant\":7,", "")).is_err());
        assert!(reply(&root.replace("terminate", "maybe")).is_err());
        assert!(reply("[]").is_err());
    }
}
