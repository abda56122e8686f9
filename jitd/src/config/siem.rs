//! `[siem]`: where every audit event is forwarded (X.2, docs/design.md
//! "SIEM feed"), and how often the chain's head is anchored there.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

use super::HumanDuration;

/// How one sink is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SinkKind {
    /// RFC 5424 over RELP: each message acknowledged by the receiver.
    Relp { address: String },
    /// RFC 5424 over TCP, octet-counted (RFC 6587).
    Tcp { address: String },
    /// RFC 5424 over TLS, octet-counted (RFC 5425).
    Tls {
        address: String,
        /// The CA bundle the receiver's certificate must chain to.
        ca: PathBuf,
        /// The name its certificate must carry.
        server_name: String,
    },
    /// RFC 5424 over UDP (RFC 5426): best effort, nothing is acknowledged.
    Udp { address: String },
    /// One JSON object per line, appended; reopened on SIGHUP or rename.
    File { path: PathBuf },
    /// journald's native protocol, one datagram per event.
    Journald { socket: PathBuf },
}

impl SinkKind {
    /// The transport's name, as `jitctl siem status` shows it.
    pub fn label(&self) -> &'static str {
        match self {
            SinkKind::Relp { .. } => "relp",
            SinkKind::Tcp { .. } => "tcp",
            SinkKind::Tls { .. } => "tls",
            SinkKind::Udp { .. } => "udp (best effort)",
            SinkKind::File { .. } => "file",
            SinkKind::Journald { .. } => "journald",
        }
    }

    /// Where it goes.
    pub fn destination(&self) -> String {
        match self {
            SinkKind::Relp { address }
            | SinkKind::Tcp { address }
            | SinkKind::Tls { address, .. }
            | SinkKind::Udp { address } => address.clone(),
            SinkKind::File { path } | SinkKind::Journald { socket: path } => {
                path.display().to_string()
            }
        }
    }
}

/// The syslog facility of the RFC 5424 sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Auth,
    Authpriv,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// The resolved `[siem]` section; no sinks means no feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiemConfig {
    pub sinks: BTreeMap<String, SinkKind>,
    /// The chain's head goes to every sink after this many events ...
    pub anchor_every: u64,
    /// ... and at least this often, events or not.
    pub anchor_interval: Duration,
    /// Bound on connecting, and on each read or write, of one attempt.
    pub timeout: Duration,
    /// A failing sink is tried again after 1 s, doubling up to this.
    pub retry_max: Duration,
    pub facility: Facility,
}

impl SiemConfig {
    pub fn enabled(&self) -> bool {
        !self.sinks.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Relp,
    Tcp,
    Tls,
    Udp,
    File,
    Journald,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    #[serde(rename = "type")]
    kind: Spanned<RawKind>,
    address: Option<Spanned<String>>,
    ca: Option<Spanned<PathBuf>>,
    server_name: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    socket: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSiem {
    anchor_every: Spanned<u64>,
    anchor_interval: HumanDuration,
    timeout: HumanDuration,
    retry_max: HumanDuration,
    facility: Facility,
    sinks: BTreeMap<Spanned<String>, RawSink>,
}

impl Default for RawSiem {
    fn default() -> Self {
        RawSiem {
            anchor_every: Spanned::new(0..0, 1000),
            anchor_interval: HumanDuration(Duration::from_secs(5 * 60)),
            timeout: HumanDuration(Duration::from_secs(10)),
            retry_max: HumanDuration(Duration::from_secs(60)),
            facility: Facility::Authpriv,
            sinks: BTreeMap::new(),
        }
    }
}

/// A semantic error at a span of the config file.
type SpanError = (Range<usize>, String);

const DEFAULT_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
const DEFAULT_JOURNAL: &str = "/run/systemd/journal/socket";

fn valid_sink_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

/// `host:port` or `[v6]:port`; the host is looked up when connecting.
fn check_address(address: &Spanned<String>) -> Result<String, SpanError> {
    let text = address.get_ref();
    let bad = || {
        (
            address.span(),
            format!("'{text}' is not HOST:PORT (an IPv6 address goes in brackets: [::1]:514)"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(':') && !text.starts_with('[') {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.clone()),
        _ => Err(bad()),
    }
}

fn absolute(path: &Spanned<PathBuf>, what: &str) -> Result<PathBuf, SpanError> {
    if path.get_ref().is_absolute() {
        Ok(path.get_ref().clone())
    } else {
        Err((path.span(), format!("{what} must be an absolute path")))
    }
}

impl RawSink {
    fn resolve(self, name: &str) -> Result<SinkKind, SpanError> {
        let kind_span = self.kind.span();
        let needs = |field: &str| {
            (
                kind_span.clone(),
                format!("sink '{name}' needs '{field}' for its type"),
            )
        };
        // Each type takes only its own fields: a stray one is a mistake
        // (a path on a tcp sink would silently be ignored).
        let allowed: &[&str] = match self.kind.get_ref() {
            RawKind::Relp | RawKind::Tcp | RawKind::Udp => &["address"],
            RawKind::Tls => &["address", "ca", "server_name"],
            RawKind::File => &["path"],
            RawKind::Journald => &["socket"],
        };
        let given = [
            ("address", self.address.as_ref().map(Spanned::span)),
            ("ca", self.ca.as_ref().map(Spanned::span)),
            ("server_name", self.server_name.as_ref().map(Spanned::span)),
            ("path", self.path.as_ref().map(Spanned::span)),
            ("socket", self.socket.as_ref().map(Spanned::span)),
        ];
        if let Some((field, Some(span))) = given
            .into_iter()
            .find(|(field, span)| span.is_some() && !allowed.contains(field))
        {
            return Err((
                span,
                format!("sink '{name}': '{field}' does not apply to its type"),
            ));
        }
        let address = || self.address.as_ref().ok_or_else(|| needs("address"));
        Ok(match self.kind.into_inner() {
            RawKind::Relp => SinkKind::Relp {
                address: check_address(address()?)?,
            },
            RawKind::Tcp => SinkKind::Tcp {
                address: check_address(address()?)?,
            },
            RawKind::Udp => SinkKind::Udp {
                address: check_address(address()?)?,
            },
            RawKind::Tls => {
                let address = check_address(address()?)?;
                let host = address
                    .rsplit_once(':')
                    .map_or("", |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                SinkKind::Tls {
                    ca: match &self.ca {
                        Some(ca) => absolute(ca, "ca")?,
                        None => PathBuf::from(DEFAULT_CA),
                    },
                    server_name: self.server_name.map_or(host, Spanned::into_inner),
                    address,
                }
            }
            RawKind::File => SinkKind::File {
                path: absolute(self.path.as_ref().ok_or_else(|| needs("path"))?, "path")?,
            },
            RawKind::Journald => SinkKind::Journald {
                socket: match &self.socket {
                    Some(socket) => absolute(socket, "socket")?,
                    None => PathBuf::from(DEFAULT_JOURNAL),
                },
            },
        })
    }
}

impl RawSiem {
    pub(super) fn resolve(self) -> Result<SiemConfig, SpanError> {
        if *self.anchor_every.get_ref() == 0 {
            return Err((
                self.anchor_every.span(),
                "anchor_every must be at least 1".into(),
            ));
        }
        let mut sinks = BTreeMap::new();
        for (name, raw) in self.sinks {
            let span = name.span();
            let name = name.into_inner();
            if !valid_sink_name(&name) {
                return Err((
                    span,
                    format!("sink name '{name}' must be 1-32 characters of a-z, 0-9, '-' or '_'"),
                ));
            }
            let kind = raw.resolve(&name)?;
            sinks.insert(name, kind);
        }
        Ok(SiemConfig {
            sinks,
            anchor_every: self.anchor_every.into_inner(),
            anchor_interval: self.anchor_interval.0,
            timeout: self.timeout.0,
            retry_max: self.retry_max.0,
            facility: self.facility,
        })
    }
}
