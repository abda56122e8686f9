//! A synchronous, single-socket D-Bus client for one short exchange with
//! jitd, under one monotonic deadline.
//!
//! No threads, no forks, no signal handlers, no environment: pam_jit runs
//! inside sudo and sshd (docs/design.md, "pam_jit.so (contract)"). The socket
//! is closed when the client is dropped, on every path.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use crate::wire::{self, Call, Kind, Message, Value, WireError, MAX_AUTH_LINE};

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// jitd's private socket: peer-to-peer D-Bus for root, tried before the bus.
pub const PRIVATE_SOCKET: &str = "/run/jit/pam.socket";
pub const JITD_NAME: &str = "org.jit.Daemon1";
const JITD_PATH: &str = "/org/jit/Daemon1";
const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";
/// Replies we may hold while waiting for another one (signals are dropped).
const MAX_STASHED: usize = 8;

#[derive(Debug)]
pub enum ClientError {
    Connect {
        path: String,
        source: std::io::Error,
    },
    Io(std::io::Error),
    Timeout,
    /// The bus rejected our authentication, or said something unexpected.
    Auth(String),
    Wire(WireError),
    /// Nobody owns jitd's name: jitd is not running.
    NotRunning,
    /// jitd's name, or its private socket, belongs to a process that is not root.
    Impostor {
        uid: u32,
    },
    /// jitd (or the bus) answered with a D-Bus error.
    Remote {
        name: String,
        message: String,
    },
    /// A reply of the wrong shape, or from the wrong sender.
    Unexpected(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, source } => {
                write!(f, "cannot connect to {path}: {source}")
            }
            ClientError::Io(e) => write!(f, "bus I/O error: {e}"),
            ClientError::Timeout => f.write_str("timed out waiting for jitd"),
            ClientError::Auth(what) => write!(f, "bus authentication failed: {what}"),
            ClientError::Wire(e) => write!(f, "bad reply: {e}"),
            ClientError::NotRunning => f.write_str("jitd is not running"),
            ClientError::Impostor { uid } => {
                write!(
                    f,
                    "jitd's endpoint is owned by uid {uid}, not root: refusing to trust it"
                )
            }
            ClientError::Remote { name, message } => write!(f, "{name}: {message}"),
            ClientError::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl ClientError {
    /// The other end closed the connection: nothing was answered.
    pub fn is_closed(&self) -> bool {
        matches!(self, ClientError::Io(e) if matches!(
            e.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ))
    }
}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        ClientError::Wire(e)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

pub struct Client {
    stream: UnixStream,
    deadline: Instant,
    serial: u32,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Messages queued by `send`, written together by `flush`.
    out: Vec<u8>,
    stash: Vec<Message>,
    /// The server's answer to AUTH is still to be read (the first call's).
    awaiting_auth: bool,
}

impl Client {
    /// Connects to the bus socket at `path` and authenticates (SASL
    /// EXTERNAL). Every step shares one deadline.
    pub fn connect(path: &str, deadline: Instant) -> Result<Client> {
        let stream = connect_unix(path, deadline)?;
        Ok(Client::authenticating(stream, deadline))
    }

    /// Connects to jitd's private socket at `path`, if jitd serves one.
    /// `Ok(None)`: nobody listens there (no such socket, or a stale one):
    /// ask through the bus instead. The listener must be root (SO_PEERCRED,
    /// taken by the kernel when it called listen): anyone else is an impostor.
    pub fn connect_private(path: &str, deadline: Instant) -> Result<Option<Client>> {
        let stream = match connect_unix(path, deadline) {
            Ok(stream) => stream,
            Err(ClientError::Connect { source, .. }) if absent(&source) => return Ok(None),
            Err(e) => return Err(e),
        };
        match peer_uid(&stream).map_err(ClientError::Io)? {
            0 => Ok(Some(Client::authenticating(stream, deadline))),
            uid => Err(ClientError::Impostor { uid }),
        }
    }

    fn authenticating(stream: UnixStream, deadline: Instant) -> Client {
        let mut client = Client {
            stream,
            deadline,
            serial: 0,
            buf: Vec::with_capacity(1024),
            out: Vec::with_capacity(1024),
            stash: Vec::new(),
            awaiting_auth: true,
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        // BEGIN is pipelined after AUTH (as sd-bus does): one round trip for
        // the handshake and the calls.
        client
            .out
            .extend_from_slice(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes());
        client
    }

    /// Calls `member(args)` on jitd over its private socket: no bus, no
    /// Hello; the peer was checked to be root when connecting. A connection
    /// may carry several calls, one after the other.
    pub fn call_private(&mut self, member: &str, args: &[Value]) -> Result<Vec<Value>> {
        let call = self.send(None, JITD_PATH, JITD_NAME, member, args);
        self.flush()?;
        if self.awaiting_auth {
            self.authenticated()?;
            self.awaiting_auth = false;
        }
        self.reply(call, None)
    }

    /// Gives the next exchange on this connection a deadline of its own.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Calls `member(args)` on jitd and returns the reply's values, trusting
    /// them only if jitd's name is owned by uid 0 and the reply comes from
    /// that owner (threats T1, T2).
    ///
    /// Everything goes out in one write, so the whole exchange is one round
    /// trip: Hello, GetNameOwner(jitd), GetConnectionUnixUser(jitd) and the
    /// call, all addressed by jitd's well-known name. The bus handles one
    /// connection's messages in order, so the owner it names, the owner whose
    /// uid it reports and the owner the call reaches are the same process
    /// unless the name changed hands in between; the reply's sender must then
    /// be the owner first named, and only root may own the name.
    pub fn call_jitd(&mut self, member: &str, args: &[Value]) -> Result<Vec<Value>> {
        let name = || [Value::Str(JITD_NAME.into())];
        let hello = self.ask_bus("Hello", &[]);
        let owner = self.ask_bus("GetNameOwner", &name());
        let owner_uid = self.ask_bus("GetConnectionUnixUser", &name());
        let call = self.send(Some(JITD_NAME), JITD_PATH, JITD_NAME, member, args);
        self.flush()?;
        self.authenticated()?;
        self.reply(hello, Some(BUS_NAME))?;
        let jitd = match self.reply(owner, Some(BUS_NAME)) {
            Ok(values) => match values.as_slice() {
                [Value::Str(unique)] if unique.starts_with(':') => unique.clone(),
                _ => return Err(ClientError::Unexpected("GetNameOwner")),
            },
            Err(ClientError::Remote { name, .. }) if name.ends_with("NameHasNoOwner") => {
                return Err(ClientError::NotRunning)
            }
            Err(e) => return Err(e),
        };
        match self.reply(owner_uid, Some(BUS_NAME))?.as_slice() {
            [Value::U32(0)] => {}
            [Value::U32(uid)] => return Err(ClientError::Impostor { uid: *uid }),
            _ => return Err(ClientError::Unexpected("GetConnectionUnixUser")),
        }
        self.reply(call, Some(&jitd))
    }

    /// Reads the server's answer to AUTH.
    fn authenticated(&mut self) -> Result<()> {
        let ok = self.read_line()?;
        if !ok.starts_with("OK ") {
            return Err(ClientError::Auth(ok));
        }
        Ok(())
    }

    /// Queues a method call for the next `flush`; returns its serial.
    fn send(
        &mut self,
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> u32 {
        self.serial += 1;
        let bytes = wire::encode(&Call {
            serial: self.serial,
            destination,
            path,
            interface,
            member,
            args,
        });
        self.out.extend_from_slice(&bytes);
        self.serial
    }

    /// Queues a call to the bus itself.
    fn ask_bus(&mut self, member: &str, args: &[Value]) -> u32 {
        self.send(Some(BUS_NAME), BUS_PATH, BUS_NAME, member, args)
    }

    /// Waits for the reply to `serial`, which must come from `sender` (none
    /// on a peer-to-peer connection).
    fn reply(&mut self, serial: u32, sender: Option<&str>) -> Result<Vec<Value>> {
        let msg = match self
            .stash
            .iter()
            .position(|m| m.reply_serial == Some(serial))
        {
            Some(i) => self.stash.swap_remove(i),
            None => loop {
                let msg = self.read_message()?;
                match (msg.kind, msg.reply_serial) {
                    (Kind::MethodReturn | Kind::Error, Some(s)) if s == serial => break msg,
                    (Kind::MethodReturn | Kind::Error, Some(_))
                        if self.stash.len() < MAX_STASHED =>
                    {
                        self.stash.push(msg)
                    }
                    (Kind::Signal, _) => {} // e.g. NameAcquired after Hello
                    _ => return Err(ClientError::Unexpected("message out of sequence")),
                }
            },
        };
        // The bus speaks as org.freedesktop.DBus; jitd as its unique name.
        if msg.sender.as_deref() != sender {
            return Err(ClientError::Unexpected("reply from the wrong sender"));
        }
        if msg.kind == Kind::Error {
            let message = match msg.body.first() {
                Some(Value::Str(s)) => s.clone(),
                _ => String::new(),
            };
            return Err(ClientError::Remote {
                name: msg.error_name.unwrap_or_default(),
                message,
            });
        }
        Ok(msg.body)
    }

    fn read_line(&mut self) -> Result<String> {
        loop {
            if let Some(line) = wire::take_auth_line(&mut self.buf) {
                return Ok(line);
            }
            if self.buf.len() > MAX_AUTH_LINE {
                return Err(ClientError::Auth("overlong line".into()));
            }
            self.fill()?;
        }
    }

    fn read_message(&mut self) -> Result<Message> {
        loop {
            match wire::frame_len(&self.buf) {
                Ok(len) if self.buf.len() >= len => {
                    let msg = wire::decode(&self.buf[..len]);
                    self.buf.drain(..len);
                    return Ok(msg?);
                }
                Ok(_) | Err(WireError::Incomplete) => self.fill()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads whatever is available, waiting until the deadline at most.
    fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Io(ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait(&self.stream, libc::POLLIN, self.deadline)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Writes everything queued, in as few system calls as the socket allows.
    fn flush(&mut self) -> Result<()> {
        let out = std::mem::take(&mut self.out);
        let mut bytes = out.as_slice();
        while !bytes.is_empty() {
            // std sends with MSG_NOSIGNAL: a peer gone meanwhile (jitd
            // restarted while a kept connection waited) is EPIPE here, never
            // a SIGPIPE to the host program.
            match self.stream.write(bytes) {
                Ok(0) => return Err(ClientError::Io(ErrorKind::WriteZero.into())),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait(&self.stream, libc::POLLOUT, self.deadline)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        Ok(())
    }
}

/// Polls `fd` for `events` until the deadline.
fn wait(fd: &impl AsRawFd, events: libc::c_short, deadline: Instant) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout);
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        match n {
            1 => return Ok(()),
            0 => {} // loop: re-checks the deadline
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return Err(ClientError::Io(e));
                }
            }
        }
    }
}

/// Nobody serves this path: no socket there, or one left by a dead process.
/// (EACCES too: only root may connect, and a module run by another user
/// still has the bus.)
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ECONNREFUSED | libc::EACCES)
    )
}

/// The uid of the process at the other end of a Unix socket.
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    // SAFETY: SO_PEERCRED fills a ucred.
    let cred: libc::ucred = unsafe { socket_option(stream, libc::SO_PEERCRED) }?;
    Ok(cred.uid)
}

/// A SOL_SOCKET option.
///
/// # Safety
/// `T` must be the plain-old-data type the kernel writes for `option`.
unsafe fn socket_option<T>(fd: &impl AsRawFd, option: libc::c_int) -> std::io::Result<T> {
    // SAFETY: T is plain old data (the caller's promise); zeroed is a valid value.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value and len are valid for getsockopt to write, len bytes at most.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value)
}

/// A non-blocking, close-on-exec connect to a Unix stream socket.
fn connect_unix(path: &str, deadline: Instant) -> Result<UnixStream> {
    let connect_err = |source| ClientError::Connect {
        path: path.to_owned(),
        source,
    };
    // SAFETY: plain socket(2) call.
    let raw = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(connect_err(std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor we own; OwnedFd closes it on every path.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_un is plain old data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(connect_err(ErrorKind::InvalidInput.into()));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINPROGRESS) | Some(libc::EAGAIN) => {
                wait(&fd, libc::POLLOUT, deadline)?;
                // SAFETY: SO_ERROR fills an int.
                match unsafe { socket_option::<libc::c_int>(&fd, libc::SO_ERROR) } {
                    Ok(0) => {}
                    Ok(err) => return Err(connect_err(std::io::Error::from_raw_os_error(err))),
                    Err(e) => return Err(connect_err(e)),
                }
            }
            _ => return Err(connect_err(e)),
        }
    }
    Ok(UnixStream::from(fd))
}
