//! jitd: the just-in-time privileged access daemon.

use clap::Parser;
use std::path::Path;
use std::process::ExitCode;

use jitd::command_line::Args;
use jitd::config;
use jitd::daemon::{self, DaemonError, Options};
use jitd::directory::Nss;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return check_config(&path, args.strict);
    }
    // Everything jitd creates (database, WAL, audit key) is root's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    raise_descriptor_limit();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JITD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jitd: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(Options {
        config: args.config,
        state_dir: args.state_dir,
        runtime_dir: args.runtime_dir,
    })) {
        Ok(()) => ExitCode::SUCCESS,
        // Configuration errors are printed bare, as --check-config prints them.
        Err(DaemonError::Config(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("jitd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: errors fail; warnings fail only with `--strict`.
fn check_config(path: &Path, strict: bool) -> ExitCode {
    match config::load_and_check_names(path, &Nss::default()) {
        Ok((cfg, warnings)) => {
            for warning in &warnings {
                eprintln!("{warning}");
            }
            if strict && !warnings.is_empty() {
                eprintln!(
                    "{}: {} warnings, refused (--strict)",
                    path.display(),
                    warnings.len()
                );
                return ExitCode::FAILURE;
            }
            println!(
                "{}: OK ({} resources, {} warnings)",
                path.display(),
                cfg.resources.len(),
                warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// jitd holds a pidfd per open session (`sessions/ends.rs`): take the hard
/// limit on descriptors rather than systemd's soft default of 1024, as
/// systemd asks of services that need many (jitd uses epoll, not select).
fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                eprintln!("jitd: cannot raise the descriptor limit to {hard}: {e}");
            }
        }
        _ => {}
    }
}
