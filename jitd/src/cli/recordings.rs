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

/// Checks the file against the digest in the audit trail. Exit 0: intact
/// (the digest is jitd's, of the bytes the recorder sent); 1: edited, or no
/// digest yet; 7 ([`Exit::Unverified`]): it matches a digest jitd took of
/// the file as found, or a root recorder's own report, which vouch only for
/// what happened after.
pub async fn verify(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<Exit, CliError> {
    let (fd, json) = jitd.open_recording_file(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    let Some(expected) = view.sha256.clone() else {
        return Err(CliError::new(
            Exit::Failed,
            format!("recording {id} has no digest yet (still being recorded?)"),
        ));
    };
    let actual = Finished::of(recording_file(fd))
        .map(|f| f.sha256)
        .map_err(|e| CliError::new(Exit::Failed, format!("cannot read recording {id}: {e}")))?;
    if actual != expected {
        return Err(CliError::new(
            Exit::Failed,
            format!(
                "recording {id} does NOT match its digest in the audit trail: it was edited \
                 (expected {expected}, file has {actual})"
            ),
        ));
    }
    if view.vouched() {
        println!(
            "Recording {id} matches its digest in the audit trail: intact, as jitd received \
             the session ({expected})."
        );
        return Ok(Exit::Ok);
    }
    let whose = match view.digest_of.as_deref() {
        Some("file") => {
            "jitd took of the file as it found it, its writer gone (end abandoned); \
             changes made before then cannot be told"
        }
        _ => {
            "its root recorder reported (before jitd took the session's bytes itself); \
             changes made before the recording closed cannot be told"
        }
    };
    Err(CliError::new(
        Exit::Unverified,
        format!(
            "recording {id} matches its digest in the audit trail but is UNVERIFIED: the \
             digest is the one {whose} ({expected})"
        ),
    ))
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

/// Replays the "o" events with their timing (idle gaps capped at `max_idle`).
pub async fn play(
    jitd: &Daemon1Proxy<'_>,
    id: u64,
    speed: f64,
    max_idle: f64,
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
        let _ = stdout.write_all(&jit_session::asciicast::decode_output(text));
        let _ = stdout.flush();
    }
    Ok(Exit::Ok)
}
