//! jit-deliver: sends jitd's notifications (SMTP, webhooks) as an
//! unprivileged service of its own; see `jitd::deliver`.

mod worker;

use std::path::PathBuf;

use clap::Parser;

/// Sends jitd's notifications. Run by jit-deliver.service as the
/// jit-deliver user; takes everything it needs from jitd's socket.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// jitd's delivery socket.
    #[arg(long, default_value = "/run/jit/deliver.socket")]
    socket: PathBuf,
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
        tracing::warn!("running as root: jit-deliver is meant to run as the jit-deliver user");
    }
    worker::run(&args.socket)
}
