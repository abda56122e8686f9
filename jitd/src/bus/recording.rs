//! A recorder's calls: `OpenRecording` (jit-session run as root through
//! sudo), `OpenLoginRecording` (jit-session as a non-root login shell) and
//! `CloseRecording`. The caller's bus credentials decide everything: its
//! process names the grant and the session ([`admission`]), and only that
//! process may close what it opened. jitd creates the file, writes the
//! header and hands the recorder the write end of a pipe.

use std::sync::Arc;

use jit_recording::asciicast::Header;
use jit_recording::End;

use super::{BusError, Gate};
use crate::directory::Person;
use crate::engine::{EngineError, RecordedSession, RecordingStart};
use crate::recordings::admission::{self, Admitted};
use crate::recordings::{self, follow, CloseRefused, Recorders, MAX_OPEN_PER_GRANT};
use crate::sessions::pidfd::Process;

/// Who records: root through sudo (with the shell to name in the header),
/// or a login shell.
pub enum Recorder {
    Root { shell: String },
    Login,
}

/// What the recorder tells about its terminal and command.
pub struct Terminal {
    pub cols: u32,
    pub rows: u32,
    pub command: String,
    pub term: String,
}

/// Opens the recording of the session the caller (`uid`, process `pid`)
/// runs in. Returns the pipe and a JSON object: recording, grant,
/// expires_at, record_input, on_failure, and a login shell's `shell`.
pub async fn open(
    gate: &Gate,
    recorders: &Recorders,
    (uid, pid): (u32, u32),
    connection: String,
    kind: Recorder,
    terminal: Terminal,
) -> Result<(zbus::OwnedFd, String), BusError> {
    let login = matches!(kind, Recorder::Login);
    if !login && uid != 0 {
        return Err(EngineError::NotRoot.into());
    }
    let size = |n: u32| u16::try_from(n).ok().filter(|n| *n > 0);
    let (Some(width), Some(height)) = (size(terminal.cols), size(terminal.rows)) else {
        return Err(BusError::InvalidArgument(
            "cols and rows are between 1 and 65535".into(),
        ));
    };
    if terminal.term.len() > 256 {
        return Err(EngineError::TooLong("term").into());
    }
    if matches!(&kind, Recorder::Root { shell } if shell.len() > 4096) {
        return Err(EngineError::TooLong("shell").into());
    }
    let (control, engine, recorders) = (gate.control().clone(), gate.engine(), recorders.clone());
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (start, pipe) = gate
        .run(move |e| {
            // Held first: what /proc says of the pid is checked against it.
            let recorder = Arc::new(Process::hold(pid).map_err(|_| EngineError::NotInSession)?);
            let target = if login {
                Person::lookup(uid)?
            } else {
                Person::root()
            };
            let Admitted { grant, session } =
                admission::session_of_recorder(&control, e, &recorder, uid)?;
            if recorders.count(grant) >= MAX_OPEN_PER_GRANT {
                return Err(EngineError::TooManyRecordings {
                    grant,
                    max: MAX_OPEN_PER_GRANT,
                });
            }
            let start = e.open_recording(&RecordedSession {
                grant,
                session,
                pid,
                target: &target,
                login,
                command: &terminal.command,
                host: &host,
            })?;
            let shell = match kind {
                Recorder::Root { shell } => shell,
                Recorder::Login => start.login_shell.to_string_lossy().into_owned(),
            };
            let header = Header {
                width,
                height,
                timestamp: e.now(),
                command: if terminal.command.is_empty() {
                    shell.clone()
                } else {
                    terminal.command
                },
                term: terminal.term,
                shell,
                jit: start.metadata.clone(),
            };
            let follow = follow::Follow {
                engine,
                recorders,
                grant,
                recording: start.recording,
                record_input: start.record_input,
                recorder: Arc::clone(&recorder),
                connection,
            };
            let pipe = recordings::begin(e, follow, &start, &header)?;
            // Out of the session's cgroup, so that ending the session does
            // not end its recorder before it closes the recording.
            if !recorder.is_running() {
                tracing::warn!(pid, "the recorder is gone: not moving its pid");
            } else if let Err(err) = control.adopt_recorder(grant, pid) {
                tracing::warn!(pid, error = %err, "could not move the recorder out of the session");
            }
            Ok((start, pipe))
        })
        .await?;
    let reply = reply(&start, login)?;
    Ok((pipe.into(), reply))
}

fn reply(start: &RecordingStart, login: bool) -> Result<String, BusError> {
    let on_failure = match start.on_failure {
        crate::config::OnRecordFailure::Terminate => "terminate",
        crate::config::OnRecordFailure::Continue => "continue",
    };
    let mut reply = serde_json::json!({
        "recording": start.recording,
        "grant": start.grant,
        "expires_at": start.expires_at,
        "record_input": start.record_input,
        "on_failure": on_failure,
    });
    if login {
        reply["shell"] = serde_json::json!(start.login_shell);
    }
    serde_json::to_string(&reply).map_err(|e| BusError::Failed(e.to_string()))
}

/// Closes `recording` for its recorder, the caller (`uid`, process `pid`),
/// once every event is in the pipe; answers when jitd has sealed it with
/// the digest of what it received. Anyone else's close is refused: audited
/// if root or the recording's user asked, "not found" for everyone else.
pub async fn close(
    gate: &Gate,
    recorders: &Recorders,
    (uid, pid): (u32, u32),
    connection: &str,
    recording: u64,
    end: &str,
) -> Result<(), BusError> {
    let end = End::parse(end).ok_or_else(|| {
        BusError::InvalidArgument(
            "end is one of exit, expired, revoked, write_failed, terminated".into(),
        )
    })?;
    let refused = match recorders.close(recording, pid, connection, end) {
        Ok(sealed) => {
            return sealed
                .await
                .map_err(|_| BusError::Failed("the recording's writer stopped".into()))?
                .map_err(BusError::from);
        }
        Err(refused) => refused,
    };
    gate.run(move |e| {
        let rec = e.recording(&Person::root(), recording)?;
        // Someone else's recording is none of the caller's business: one
        // answer for all of them, and no audit row a user could pile up.
        if uid != 0 && uid != rec.uid {
            return Err(EngineError::NoRecording(recording));
        }
        if refused == CloseRefused::NotOpen && rec.ended_at.is_some() {
            return Err(EngineError::RecordingClosed(recording));
        }
        // Open, and not the caller's to close: evidence of an attempt.
        e.audit_refused_close(recording, &Person::lookup(uid)?, pid)?;
        Err(EngineError::NotRecorder(recording))
    })
    .await
}
