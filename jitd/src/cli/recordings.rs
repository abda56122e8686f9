//! `jitctl recordings ...` and `jitctl shell|run`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use super::client::{failure, Daemon1Proxy};
use super::{CliError, Exit};
use crate::api::{AuditView, RecordingView, RequestView};
use crate::core::replay::ReplayFilter;
use jit_session::asciicast::Finished;

/// Where the packages install the recorder (and where the sudoers rule points).
pub const JIT_SESSION: &str = "/usr/libexec/jit/jit-session";

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, CliError> {
    serde_json::from_str(json)
        .map_err(|e| CliError::new(Exit::Failed, format!("unexpected reply from jitd: {e}")))
}

/// Replaces jitctl with `sudo jit-session [-- CMD...]`, after checking that
/// `grant` (if named) is the caller's and active. sudo (with pam_jit in its
/// stack) decides; jit-session finds the grant from the PAM session.
pub async fn elevate(
    jitd: &Daemon1Proxy<'_>,
    grant: Option<u64>,
    command: &[String],
) -> Result<Exit, CliError> {
    if let Some(id) = grant {
        let view: RequestView = parse(&jitd.show(id).await.map_err(failure)?)?;
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        if view.uid != me {
            return Err(CliError::new(
                Exit::Denied,
                format!("grant {id} is not yours"),
            ));
        }
        if view.state != "active" {
            return Err(CliError::new(
                Exit::Conflict,
                format!("grant {id} is {}, not active", view.state),
            ));
        }
    }
    let mut sudo = std::process::Command::new("sudo");
    sudo.arg("--").arg(JIT_SESSION);
    if !command.is_empty() {
        sudo.arg("--").args(command);
    }
    let err = sudo.exec();
    Err(CliError::new(
        Exit::Failed,
        format!("cannot run sudo: {err}"),
    ))
}

fn recording_file(fd: zbus::OwnedFd) -> File {
    File::from(OwnedFd::from(fd))
}

pub async fn verify(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<Exit, CliError> {
    let (fd, json) = jitd.open_recording_file(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    let Some(expected) = view.sha256 else {
        return Err(CliError::new(
            Exit::Failed,
            format!("recording {id} has no digest yet (still being recorded?)"),
        ));
    };
    let actual = Finished::of(recording_file(fd))
        .map(|f| f.sha256)
        .map_err(|e| CliError::new(Exit::Failed, format!("cannot read recording {id}: {e}")))?;
    if actual == expected {
        println!("Recording {id} matches its digest in the audit trail ({expected}).");
        Ok(Exit::Ok)
    } else {
        Err(CliError::new(
            Exit::Failed,
            format!("recording {id} does NOT match its digest in the audit trail (expected {expected}, file has {actual})"),
        ))
    }
}

pub async fn export(jitd: &Daemon1Proxy<'_>, id: u64, dir: &Path) -> Result<Exit, CliError> {
    let (fd, json) = jitd.open_recording_file(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    let events: Vec<AuditView> = parse(&jitd.audit(0).await.map_err(failure)?)?;
    let events: Vec<&AuditView> = events
        .iter()
        .filter(|e| e.request == Some(view.grant))
        .collect();
    let io_err = |e: std::io::Error| {
        CliError::new(
            Exit::Failed,
            format!("cannot write to {}: {e}", dir.display()),
        )
    };
    // A recording can hold secrets: the copies are the exporter's alone (0600).
    let private = |path: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    };
    let cast = dir.join(format!("recording-{id}.cast"));
    std::io::copy(
        &mut recording_file(fd),
        &mut private(&cast).map_err(io_err)?,
    )
    .map_err(io_err)?;
    let sidecar = dir.join(format!("recording-{id}.json"));
    let doc = serde_json::json!({"recording": view, "audit": events});
    private(&sidecar)
        .and_then(|mut f| {
            f.write_all(
                serde_json::to_string_pretty(&doc)
                    .unwrap_or_default()
                    .as_bytes(),
            )
        })
        .map_err(io_err)?;
    println!("Wrote {} and {}.", cast.display(), sidecar.display());
    Ok(Exit::Ok)
}

/// What play writes: the output filtered for the reviewer's terminal
/// (`core::replay`), or, with `--raw`, as recorded.
enum Screen {
    Filtered {
        filter: ReplayFilter,
        shown: Vec<u8>,
    },
    Raw,
}

impl Screen {
    fn new(raw: bool) -> Screen {
        if raw {
            Screen::Raw
        } else {
            Screen::Filtered {
                filter: ReplayFilter::new(),
                shown: Vec::new(),
            }
        }
    }

    /// The part of `bytes` (the next of the recording's output) to write.
    fn show<'a>(&'a mut self, bytes: &'a [u8]) -> &'a [u8] {
        match self {
            Screen::Filtered { filter, shown } => {
                shown.clear();
                filter.feed(bytes, shown);
                shown
            }
            Screen::Raw => bytes,
        }
    }

    /// The end of the recording: what is left to write, and how many
    /// sequences were left out.
    fn finish(&mut self) -> (&[u8], u64) {
        match self {
            Screen::Filtered { filter, shown } => {
                shown.clear();
                filter.finish(shown);
                (shown, filter.left_out())
            }
            Screen::Raw => (&[], 0),
        }
    }
}

/// Replays the "o" events with their timing (idle gaps capped at `max_idle`).
pub async fn play(
    jitd: &Daemon1Proxy<'_>,
    id: u64,
    speed: f64,
    max_idle: f64,
    raw: bool,
) -> Result<Exit, CliError> {
    if !(speed > 0.0 && max_idle >= 0.0) {
        return Err(CliError::new(
            Exit::Usage,
            "--speed must be above 0 and --max-idle at least 0",
        ));
    }
    let (fd, _) = jitd.open_recording_file(id).await.map_err(failure)?;
    let mut lines = BufReader::new(recording_file(fd)).lines();
    let bad = |what: &str| {
        CliError::new(
            Exit::Failed,
            format!("recording {id} is not valid asciicast v2: {what}"),
        )
    };
    let header = lines
        .next()
        .ok_or_else(|| bad("empty"))?
        .map_err(|e| bad(&e.to_string()))?;
    let header: serde_json::Value = serde_json::from_str(&header).map_err(|_| bad("bad header"))?;
    if header["version"] != 2 {
        return Err(bad("not version 2"));
    }
    if raw {
        eprintln!("jitctl: --raw: playing recording {id} unfiltered; its escape sequences reach your terminal as recorded (they can set your clipboard or type into your shell)");
    }
    let mut screen = Screen::new(raw);
    let mut stdout = std::io::stdout().lock();
    let mut last = 0.0f64;
    for line in lines {
        let line = line.map_err(|e| bad(&e.to_string()))?;
        let Ok(serde_json::Value::Array(event)) = serde_json::from_str::<serde_json::Value>(&line)
        else {
            return Err(bad("bad event line"));
        };
        let (Some(at), Some(kind), Some(text)) = (
            event.first().and_then(|v| v.as_f64()),
            event.get(1).and_then(|v| v.as_str()),
            event.get(2).and_then(|v| v.as_str()),
        ) else {
            return Err(bad("bad event"));
        };
        if kind != "o" {
            continue;
        }
        let gap = ((at - last).max(0.0) / speed).min(max_idle);
        last = at;
        if gap > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        }
        let output = jit_session::asciicast::decode_output(text);
        let _ = stdout.write_all(screen.show(&output));
        let _ = stdout.flush();
    }
    let (rest, left_out) = screen.finish();
    let _ = stdout.write_all(rest);
    let _ = stdout.flush();
    if left_out > 0 {
        eprintln!("jitctl: left out {left_out} control sequences of recording {id} that act on the terminal rather than draw (titles, reports, clipboard, ...); --raw plays them");
    }
    Ok(Exit::Ok)
}
