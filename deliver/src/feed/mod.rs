//! The SIEM feed's senders (see `jitd::feed` for jitd's side): one thread
//! and one connection to jitd's `siem.socket` per sink, each taking its
//! batches from jitd and answering how much of each the sink took. Nothing
//! is kept here: jitd holds every sink's cursor, and resends from it.

mod format;
mod relp;
mod sinks;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use jitd::config::SinkKind;
use jitd::deliver::feed::{FromJitd, FromWorker, Labels, VERSION};
use jitd::deliver::wire;

/// Pause before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The sinks being served, and what wakes the discoverer when none is.
struct Running {
    sinks: Mutex<BTreeSet<String>>,
    none_left: Condvar,
    socket: PathBuf,
    reopen: Arc<AtomicBool>,
}

/// Serves jitd's SIEM feed on `socket` until killed. `reopen` is raised on
/// SIGHUP: the file sinks reopen their files.
pub fn run(socket: &Path, reopen: Arc<AtomicBool>) -> ! {
    let running = Arc::new(Running {
        sinks: Mutex::new(BTreeSet::new()),
        none_left: Condvar::new(),
        socket: socket.to_owned(),
        reopen,
    });
    // jitd's sinks are learnt from its hello. While some are served, their
    // own connections see every new hello (jitd restarted with a new
    // config); with none served, this loop asks.
    loop {
        {
            let sinks = running.sinks.lock().unwrap_or_else(|e| e.into_inner());
            let _idle = running
                .none_left
                .wait_while(sinks, |sinks| !sinks.is_empty())
                .unwrap_or_else(|e| e.into_inner());
        }
        if let Ok((_, _, sinks)) = connect(socket) {
            start_missing(&running, &sinks);
        }
        std::thread::sleep(RECONNECT);
    }
}

/// Connects and reads jitd's hello.
fn connect(socket: &Path) -> io::Result<(UnixStream, Labels, BTreeMap<String, SinkKind>)> {
    let mut stream = UnixStream::connect(socket)?;
    match wire::read::<FromJitd>(&mut stream)? {
        FromJitd::Hello {
            version: VERSION,
            labels,
            sinks,
        } => Ok((stream, labels, sinks)),
        FromJitd::Hello { version, .. } => Err(io::Error::other(format!(
            "jitd speaks feed protocol version {version}, not {VERSION}"
        ))),
        FromJitd::Batch(_) => Err(io::Error::other("a batch before the hello")),
    }
}

fn start_missing(running: &Arc<Running>, sinks: &BTreeMap<String, SinkKind>) {
    let mut serving = running.sinks.lock().unwrap_or_else(|e| e.into_inner());
    for name in sinks.keys() {
        if serving.contains(name) {
            continue;
        }
        let (for_thread, sink) = (Arc::clone(running), name.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("siem-{name}"))
            .spawn(move || serve_sink(&for_thread, &sink));
        match spawned {
            Ok(_) => {
                serving.insert(name.clone());
            }
            Err(e) => tracing::error!(sink = %name, error = %e, "cannot start a SIEM sender"),
        }
    }
}

/// Serves one sink for as long as jitd's config has it.
fn serve_sink(running: &Arc<Running>, name: &str) {
    let mut complained = false;
    loop {
        match connect(&running.socket) {
            Ok((stream, labels, sinks)) => {
                complained = false;
                let Some(kind) = sinks.get(name).cloned() else {
                    tracing::info!(sink = %name, "sink no longer configured; stopping its sender");
                    break;
                };
                start_missing(running, &sinks);
                if let Err(e) = take(stream, name, &kind, &labels, running) {
                    tracing::warn!(sink = %name, error = %e, "SIEM connection to jitd ended");
                }
            }
            Err(e) if !complained => {
                complained = true;
                tracing::warn!(socket = %running.socket.display(), error = %e, "cannot reach jitd's SIEM feed; retrying");
            }
            Err(_) => {}
        }
        std::thread::sleep(RECONNECT);
    }
    let mut serving = running.sinks.lock().unwrap_or_else(|e| e.into_inner());
    serving.remove(name);
    if serving.is_empty() {
        running.none_left.notify_all();
    }
}

/// Takes `name` on this connection and sends each batch jitd hands out.
fn take(
    mut stream: UnixStream,
    name: &str,
    kind: &SinkKind,
    labels: &Labels,
    running: &Running,
) -> io::Result<()> {
    wire::write(
        &mut stream,
        &FromWorker::Take {
            sink: name.to_owned(),
        },
    )?;
    tracing::info!(sink = %name, kind = kind.label(), to = %kind.destination(), "sending the SIEM feed");
    let mut sink = sinks::new(kind, labels, Arc::clone(&running.reopen));
    loop {
        let batch = match wire::read::<FromJitd>(&mut stream) {
            Ok(FromJitd::Batch(batch)) => batch,
            Ok(FromJitd::Hello { .. }) => return Err(io::Error::other("a second hello")),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let (taken, error) = sink.send(&batch);
        if let Some(error) = &error {
            tracing::warn!(sink = %name, taken, %error, "SIEM sink did not take the whole batch");
        }
        wire::write(
            &mut stream,
            &FromWorker::Sent {
                taken: u32::try_from(taken).unwrap_or(u32::MAX),
                error,
            },
        )?;
    }
}
