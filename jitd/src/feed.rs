//! The SIEM feed (X.2, docs/design.md "SIEM feed"): every audit event, as
//! it is committed, to each configured sink, through the unprivileged
//! `jit-deliver` service (jitd itself has no network).
//!
//! `jit-deliver` connects to `siem.socket` once per sink. Each connection
//! is served by a thread of its own with its own SQLite connection: it
//! reads the audit rows after the sink's cursor, sends them as a batch
//! (ending with an anchor, the chain's head, when one is due), and commits
//! the cursor past what the worker says the sink took. What it did not
//! take is sent again, from the cursor, after a backoff: at least once and
//! in order, with the same audit ids. A slow or dead sink holds only its
//! own thread: never the engine lock, the bus, or pam_jit's path.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::SiemConfig;
use crate::core::feed::{anchor_due, batch_limit, until_next_anchor, AnchorPolicy, Position};
use crate::core::sanitize::for_terminal;
use crate::deliver::feed::{Anchor, FromJitd, FromWorker, Labels, Record, SOCKET_NAME, VERSION};
use crate::deliver::{self, wire};
use crate::store::{AuditBell, Cursor, Feed, StoreError};

/// Events per batch, at most (a frame stays well under `wire::MAX_FRAME`
/// unless events are unusually large; see [`fit`]).
const BATCH: u64 = 500;
/// Longest sleep with nothing to send.
const IDLE: Duration = Duration::from_secs(60);
/// Connections served at once beyond one per sink (a restarting worker's
/// new connections while its old ones are noticed gone).
const SPARE_CONNECTIONS: usize = 8;
/// First pause after a failed batch; doubles up to `retry_max`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// What every connection's thread shares.
struct Shared {
    config: SiemConfig,
    labels: Labels,
    state_dir: PathBuf,
    bell: Arc<AuditBell>,
    /// The connection now serving each sink (by a counter): an older one
    /// for the same sink stops at its next step.
    owners: Mutex<HashMap<String, u64>>,
    next_owner: Mutex<u64>,
    open: AtomicUsize,
}

/// Binds `siem.socket` in `runtime_dir` and serves the worker's connections.
pub fn start(
    config: SiemConfig,
    state_dir: &Path,
    runtime_dir: &Path,
    bell: Arc<AuditBell>,
) -> Result<(), StoreError> {
    // Fails now, not in a thread, if the database cannot be read.
    Feed::open(state_dir)?;
    let (listener, path) = deliver::bind(runtime_dir, SOCKET_NAME).map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot listen on {}: {e}",
            runtime_dir.join(SOCKET_NAME).display()
        ))
    })?;
    let labels = Labels {
        host: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into()),
        facility: config.facility,
        timeout_ms: u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let shared = Arc::new(Shared {
        config,
        labels,
        state_dir: state_dir.to_owned(),
        bell,
        owners: Mutex::new(HashMap::new()),
        next_owner: Mutex::new(0),
        open: AtomicUsize::new(0),
    });
    std::thread::Builder::new()
        .name("jitd-siem".into())
        .spawn(move || accept(&shared, &listener, &path))
        .map(drop)
        .map_err(|e| StoreError::Corrupt(format!("cannot start the SIEM feed: {e}")))
}

fn accept(shared: &Arc<Shared>, listener: &UnixListener, path: &Path) {
    let mut warned = false;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => {
                warned = false;
                stream
            }
            Err(e) => {
                if !warned {
                    tracing::error!(socket = %path.display(), error = %e, "SIEM socket: cannot accept");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(why) = deliver::peer_is_worker(&stream) {
            tracing::warn!(%why, "SIEM socket: connection refused");
            continue;
        }
        let limit = shared.config.sinks.len() + SPARE_CONNECTIONS;
        if shared.open.load(Ordering::Relaxed) >= limit {
            tracing::warn!(limit, "SIEM socket: too many connections; refused one");
            continue;
        }
        shared.open.fetch_add(1, Ordering::Relaxed);
        let for_thread = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("jitd-siem-sink".into())
            .spawn(move || {
                if let Err(e) = serve(&for_thread, stream) {
                    tracing::warn!(error = %e, "SIEM worker connection ended");
                }
                for_thread.open.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            shared.open.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot serve a SIEM worker connection");
        }
    }
}

fn now() -> i64 {
    SystemClock.wall()
}

fn other(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One connection: the hello, the sink it takes, then its batches.
fn serve(shared: &Shared, mut stream: UnixStream) -> io::Result<()> {
    let lease = deliver::lease(shared.config.timeout);
    stream.set_read_timeout(Some(lease))?;
    stream.set_write_timeout(Some(lease))?;
    wire::write(
        &mut stream,
        &FromJitd::Hello {
            version: VERSION,
            labels: shared.labels.clone(),
            sinks: shared.config.sinks.clone(),
        },
    )?;
    let sink = match wire::read::<FromWorker>(&mut stream) {
        Ok(FromWorker::Take { sink }) if shared.config.sinks.contains_key(&sink) => sink,
        Ok(FromWorker::Take { sink }) => {
            return Err(other(format!(
                "no sink named '{}'",
                for_terminal(&sink).chars().take(64).collect::<String>()
            )))
        }
        Ok(FromWorker::Sent { .. }) => return Err(other("a result before any batch".into())),
        // The worker read the hello to learn the sinks, and left.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(e) => return Err(e),
    };
    let owner = {
        let mut next = shared.next_owner.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next
    };
    shared
        .owners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sink.clone(), owner);
    tracing::info!(%sink, "SIEM sink connected");
    let feed = Feed::open(&shared.state_dir).map_err(|e| io::Error::other(e.to_string()))?;
    Sender {
        shared,
        sink: &sink,
        owner,
        feed,
        stream,
    }
    .run()
}

struct Sender<'a> {
    shared: &'a Shared,
    sink: &'a str,
    owner: u64,
    feed: Feed,
    stream: UnixStream,
}

fn position(c: &Cursor) -> Position {
    Position {
        through: c.through,
        anchored_through: c.anchored_through,
        anchored_at: c.anchored_at,
    }
}

impl Sender<'_> {
    fn policy(&self) -> AnchorPolicy {
        AnchorPolicy {
            every: self.shared.config.anchor_every,
            interval: i64::try_from(self.shared.config.anchor_interval.as_secs())
                .unwrap_or(i64::MAX),
        }
    }

    fn still_owner(&self) -> bool {
        self.shared
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(self.sink)
            == Some(&self.owner)
    }

    fn store<T>(&self, result: Result<T, StoreError>) -> io::Result<T> {
        result.map_err(|e| io::Error::other(format!("the SIEM cursor: {e}")))
    }

    /// Sends batches until the connection fails or another takes the sink.
    fn run(mut self) -> io::Result<()> {
        let mut backoff = FIRST_RETRY;
        while self.still_owner() {
            let seen = self.shared.bell.count();
            let cursor = self.store(self.feed.cursor(self.sink))?;
            let at = position(&cursor);
            let batch = self.batch(at)?;
            if batch.is_empty() {
                let anchor_in = until_next_anchor(at, now(), self.policy());
                let sleep = Duration::from_secs(u64::try_from(anchor_in).unwrap_or(0)).min(IDLE);
                self.shared
                    .bell
                    .wait_past(seen, sleep.max(Duration::from_millis(100)));
                continue;
            }
            wire::write(&mut self.stream, &FromJitd::Batch(batch.clone()))?;
            let (taken, error) = match wire::read::<FromWorker>(&mut self.stream)? {
                FromWorker::Sent { taken, error } if taken as usize <= batch.len() => {
                    (taken as usize, error)
                }
                other_answer => {
                    return Err(other(format!(
                        "answered {other_answer:?} to a batch of {}",
                        batch.len()
                    )))
                }
            };
            self.took(&batch[..taken])?;
            match error {
                None if taken == batch.len() => backoff = FIRST_RETRY,
                error => {
                    let reason = error.unwrap_or_else(|| "the sink took part of a batch".into());
                    let reason: String = for_terminal(&reason)
                        .chars()
                        .take(wire::MAX_REASON)
                        .collect();
                    tracing::warn!(sink = self.sink, %reason, "SIEM sink failing; retrying");
                    self.store(self.feed.failed(self.sink, &reason, now()))?;
                    std::thread::sleep(backoff);
                    backoff = backoff
                        .saturating_mul(2)
                        .min(self.shared.config.retry_max.max(FIRST_RETRY));
                }
            }
        }
        Ok(())
    }

    /// The next events after `at`, ending with an anchor when one is due;
    /// empty when there is nothing to send.
    fn batch(&self, at: Position) -> io::Result<Vec<Record>> {
        let policy = self.policy();
        let events = self.store(
            self.feed
                .events_after(at.through, batch_limit(at, BATCH, policy)),
        )?;
        let mut batch = fit(events);
        let last = batch.last().map_or(at.through, |r| match r {
            Record::Event(e) => e.id,
            Record::Anchor(a) => a.last_id,
        });
        let now = now();
        if anchor_due(at, last, now, policy) {
            if let Some(mac) = self.store(self.feed.mac_of(last))? {
                batch.push(Record::Anchor(Anchor {
                    last_id: last,
                    mac,
                    at: now,
                }));
            }
        }
        Ok(batch)
    }

    /// Commits the cursor past `taken`.
    fn took(&self, taken: &[Record]) -> io::Result<()> {
        let mut through = None;
        let mut anchored = None;
        for record in taken {
            match record {
                Record::Event(e) => through = Some(e.id),
                Record::Anchor(a) => {
                    through = Some(a.last_id);
                    anchored = Some(a.at);
                }
            }
        }
        match through {
            Some(through) => self.store(self.feed.advance(self.sink, through, anchored, now())),
            None => Ok(()),
        }
    }
}

/// As many of `events` (in order) as fit in one frame, at least one.
fn fit(events: Vec<crate::deliver::feed::EventRecord>) -> Vec<Record> {
    let budget = wire::MAX_FRAME / 2;
    let mut used = 0;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let size = serde_json::to_vec(&event).map_or(budget, |v| v.len());
        if !out.is_empty() && used + size > budget {
            break;
        }
        used += size;
        out.push(Record::Event(event));
    }
    out
}
