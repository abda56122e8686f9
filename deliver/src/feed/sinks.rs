//! The sinks: each takes a batch of records in order and says how many,
//! from the first, reached it. A connection is kept between batches and
//! dropped at the first failure (the next batch makes a new one).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jitd::config::SinkKind;
use jitd::deliver::feed::{Labels, Record};

use super::format;
use super::relp::Relp;

/// How many timeouts one batch may take in all; below jitd's lease
/// (10 of them and 5 s), so the answer reaches jitd before it gives up.
const BATCH_TIMEOUTS: u32 = 8;

/// What became of a batch: how many records, from the first, the sink
/// took, and why the others were not.
pub type Sent = (usize, Option<String>);

pub trait Sink: Send {
    fn send(&mut self, records: &[Record]) -> Sent;
}

/// The sink `kind` describes, connected lazily. `reopen` is raised by
/// SIGHUP (the file sink reopens its file).
pub fn new(kind: &SinkKind, labels: &Labels, reopen: Arc<AtomicBool>) -> Box<dyn Sink> {
    let labels = labels.clone();
    let timeout = Duration::from_millis(labels.timeout_ms.max(1));
    match kind.clone() {
        SinkKind::Relp { address } => Box::new(RelpSink {
            address,
            labels,
            timeout,
            session: None,
        }),
        SinkKind::Tcp { address } => Box::new(Octets {
            connect: Box::new(move || connect(&address, timeout).map(Stream::Plain)),
            labels,
            stream: None,
        }),
        SinkKind::Tls {
            address,
            ca,
            server_name,
        } => Box::new(Octets {
            connect: Box::new(move || {
                tls(&address, &ca, &server_name, timeout).map(|s| Stream::Tls(Box::new(s)))
            }),
            labels,
            stream: None,
        }),
        SinkKind::Udp { address } => Box::new(Udp {
            address,
            labels,
            socket: None,
        }),
        SinkKind::File { path } => Box::new(JsonFile {
            path,
            labels,
            reopen,
            file: None,
        }),
        SinkKind::Journald { socket } => Box::new(Journal { socket, labels }),
    }
}

fn connect(address: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{address}: no address"));
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn tls(
    address: &str,
    ca: &Path,
    server_name: &str,
    timeout: Duration,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| io::Error::other(format!("{}: {e}", ca.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| io::Error::other(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| io::Error::other(format!("{}: {e}", ca.display())))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| io::Error::other(format!("server name '{server_name}': {e}")))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, connect(address, timeout)?);
    // The handshake now, so a bad certificate fails the connection, not a write.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A connection to a syslog receiver, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }
}

/// Whether the receiver closed (or began closing) the connection: a
/// syslog receiver never speaks first, so anything to read (its FIN, a TLS
/// close_notify, RELP's serverclose) means a new connection is needed.
/// Checked before each batch, so one written to a receiver that restarted
/// since the last batch is not written into a dead connection.
pub(super) fn peer_gone(socket: &TcpStream) -> bool {
    if socket.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let gone = !matches!(socket.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    socket.set_nonblocking(false).is_err() || gone
}

/// RFC 5424 messages octet-counted (RFC 6587 / RFC 5425) on TCP or TLS: a
/// batch counts once the whole of it was written. Only RELP hears back
/// from the receiver: what TCP had in flight when the receiver died is
/// lost (docs/design.md "SIEM feed").
struct Octets {
    connect: Box<dyn Fn() -> io::Result<Stream> + Send>,
    labels: Labels,
    stream: Option<Stream>,
}

impl Sink for Octets {
    fn send(&mut self, records: &[Record]) -> Sent {
        let mut frames = Vec::new();
        for record in records {
            let message = format::rfc5424(record, &self.labels);
            frames.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
        }
        if self.stream.as_ref().is_some_and(|s| peer_gone(s.socket())) {
            self.stream = None;
        }
        let result = (|| {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => self.stream.insert((self.connect)()?),
            };
            stream.write_all(&frames)
        })();
        match result {
            Ok(()) => (records.len(), None),
            Err(e) => {
                self.stream = None;
                (0, Some(e.to_string()))
            }
        }
    }
}

struct RelpSink {
    address: String,
    labels: Labels,
    timeout: Duration,
    session: Option<Relp>,
}

impl Sink for RelpSink {
    fn send(&mut self, records: &[Record]) -> Sent {
        let deadline = Instant::now() + self.timeout.saturating_mul(BATCH_TIMEOUTS);
        let mut session = match self.session.take() {
            Some(session) if !peer_gone(session.socket()) => session,
            _ => match connect(&self.address, self.timeout).and_then(Relp::open) {
                Ok(session) => session,
                Err(e) => return (0, Some(e.to_string())),
            },
        };
        let messages: Vec<String> = records
            .iter()
            .map(|r| format::rfc5424(r, &self.labels))
            .collect();
        let (taken, error) = session.send_all(&messages, deadline);
        match error {
            None => self.session = Some(session),
            Some(_) => session.close(),
        }
        (taken, error)
    }
}

/// Best effort: a datagram each, nothing acknowledged.
struct Udp {
    address: String,
    labels: Labels,
    socket: Option<UdpSocket>,
}

impl Sink for Udp {
    fn send(&mut self, records: &[Record]) -> Sent {
        if self.socket.is_none() {
            let socket = self
                .address
                .to_socket_addrs()
                .and_then(|mut addrs| addrs.next().ok_or_else(|| io::Error::other("no address")))
                .and_then(|addr| {
                    let any: std::net::SocketAddr = if addr.is_ipv6() {
                        "[::]:0".parse().map_err(io::Error::other)?
                    } else {
                        "0.0.0.0:0".parse().map_err(io::Error::other)?
                    };
                    let socket = UdpSocket::bind(any)?;
                    socket.connect(addr)?;
                    Ok(socket)
                });
            match socket {
                Ok(socket) => self.socket = Some(socket),
                Err(e) => return (0, Some(e.to_string())),
            }
        }
        let Some(socket) = &self.socket else {
            return (0, Some("no socket".into()));
        };
        for (index, record) in records.iter().enumerate() {
            if let Err(e) = socket.send(format::rfc5424(record, &self.labels).as_bytes()) {
                self.socket = None;
                return (index, Some(e.to_string()));
            }
        }
        (records.len(), None)
    }
}

/// JSON lines, appended and synced; reopened when the file was renamed
/// or removed (logrotate) or on SIGHUP.
struct JsonFile {
    path: PathBuf,
    labels: Labels,
    reopen: Arc<AtomicBool>,
    file: Option<File>,
}

impl JsonFile {
    /// Whether the open file is still the one at `path`.
    fn current(&self) -> bool {
        let (Some(file), Ok(now)) = (&self.file, std::fs::metadata(&self.path)) else {
            return false;
        };
        file.metadata()
            .is_ok_and(|open| open.dev() == now.dev() && open.ino() == now.ino())
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.reopen.swap(false, Ordering::Relaxed) || !self.current() {
            self.file = None;
        }
        if self.file.is_none() {
            let file = open_log(&self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no file"))
    }
}

/// The file at `path` opened to append, made 0640 if it is new (the
/// directory's group, jit-audit on a package install, reads it; the
/// worker's umask is 077). A link planted there is never followed.
fn open_log(path: &Path) -> io::Result<File> {
    let open = |new: bool| {
        OpenOptions::new()
            .append(true)
            .create_new(new)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
    };
    match open(true) {
        Ok(file) => {
            file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open(false),
        Err(e) => Err(e),
    }
}

impl Sink for JsonFile {
    fn send(&mut self, records: &[Record]) -> Sent {
        let mut lines = String::new();
        for record in records {
            lines.push_str(&format::json_line(record, &self.labels));
        }
        let result = self.file().and_then(|file| {
            file.write_all(lines.as_bytes())?;
            file.sync_data()
        });
        match result {
            Ok(()) => (records.len(), None),
            Err(e) => {
                self.file = None;
                (0, Some(e.to_string()))
            }
        }
    }
}

/// journald's native protocol: a datagram per record on its socket.
struct Journal {
    socket: PathBuf,
    labels: Labels,
}

impl Sink for Journal {
    fn send(&mut self, records: &[Record]) -> Sent {
        let socket = match UnixDatagram::unbound() {
            Ok(socket) => socket,
            Err(e) => return (0, Some(e.to_string())),
        };
        for (index, record) in records.iter().enumerate() {
            let datagram = format::journal_datagram(&format::journal_fields(record, &self.labels));
            if let Err(e) = socket.send_to(&datagram, &self.socket) {
                return (index, Some(format!("{}: {e}", self.socket.display())));
            }
        }
        (records.len(), None)
    }
}
