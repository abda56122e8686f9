//! jit-deliver: sends jitd's notifications (SMTP, webhooks) and its SIEM
//! feed (syslog, RELP, a JSON lines file, journald) as an unprivileged
//! service of its own; with `--tickets`, runs jitd's ticket validator (a
//! command or a webhook) as another (`jit-ticket.service`), so that the
//! command shares none of this one's secrets. See `jitd::deliver`.

mod feed;
mod tickets;
mod worker;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

/// Sends jitd's notifications and its SIEM feed. Run by
/// jit-deliver.service as the jit-deliver user; takes everything it needs
/// from jitd's sockets.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// jitd's delivery socket.
    #[arg(long, default_value = "/run/jit/deliver.socket")]
    socket: PathBuf,
    /// jitd's SIEM feed socket.
    #[arg(long, default_value = "/run/jit/siem.socket")]
    siem_socket: PathBuf,
    /// jitd's ticket validator socket.
    #[arg(long, default_value = "/run/jit/tickets.socket")]
    tickets_socket: PathBuf,
    /// Run the ticket validator (the [tickets] command or webhook) for
    /// jitd, and nothing else: jit-ticket.service, as the jit-ticket user.
    #[arg(long)]
    tickets: bool,
}

fn main() {
    let args = Args::parse();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JIT_DELIVER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if nix::unistd::geteuid().is_root() {
        tracing::warn!(
            "running as root: jit-deliver is meant to run as the jit-deliver user (jit-ticket with --tickets)"
        );
    }
    if args.tickets {
        tickets::run(&args.tickets_socket)
    }
    // SIGHUP (logrotate's postrotate) reopens the SIEM feed's files.
    let reopen = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reopen)) {
        tracing::error!(error = %e, "cannot catch SIGHUP");
    }
    let siem_socket = args.siem_socket;
    let spawned = std::thread::Builder::new()
        .name("siem".into())
        .spawn(move || feed::run(&siem_socket, reopen));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the SIEM feed");
    }
    worker::run(&args.socket)
}

/// Pause before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Connects to jitd's `socket` and runs `serve` on each connection, until
/// killed, reconnecting whenever jitd goes away; says once that it cannot
/// connect (not even that where jitd may have no such socket, `optional`).
fn serve_forever(
    socket: &Path,
    what: &str,
    optional: bool,
    mut serve: impl FnMut(UnixStream) -> io::Result<()>,
) -> ! {
    let mut complained = false;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => {
                complained = false;
                tracing::info!(socket = %socket.display(), "{what}: connected to jitd");
                if let Err(e) = serve(stream) {
                    tracing::warn!(error = %e, "{what}: connection to jitd ended");
                }
            }
            Err(e) if complained || (optional && e.kind() == io::ErrorKind::NotFound) => {}
            Err(e) => {
                complained = true;
                tracing::warn!(socket = %socket.display(), error = %e, "{what}: cannot reach jitd; retrying");
            }
        }
        std::thread::sleep(RECONNECT);
    }
}
