//! Recording files on disk: created by jitd, readable by root and the
//! recordings group only. jit-session run through sudo (root) writes its own;
//! a login shell's (run by the user) is written by jitd from the events
//! jit-session sends through a pipe ([`follow`]), so the user never holds a
//! writable descriptor of it (threat T17).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jit_session::asciicast::Recorder;
use jit_session::pipe::{check_line, Line, Lines};
use jit_session::session::End;
use nix::unistd::{chown, Group};

use crate::engine::Engine;

/// Bytes read from a login shell's pipe at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Creates the empty recording at `path` (0640, group `group`), and its
/// directory (0750) if needed, and returns it open for writing. Refuses to
/// reuse an existing file.
pub fn create(path: &Path, group: &str) -> io::Result<File> {
    let gid = Group::from_name(group).ok().flatten().map(|g| g.gid);
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
            if let Some(gid) = gid {
                chown(dir, None, Some(gid)).map_err(io::Error::from)?;
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o750))?;
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)?;
    if let Some(gid) = gid {
        chown(path, None, Some(gid)).map_err(io::Error::from)?;
    }
    // The umask of jitd (077) would otherwise strip the group's read bit.
    file.set_permissions(fs::Permissions::from_mode(0o640))?;
    Ok(file)
}

/// Appends what a login shell's jit-session sends through `pipe` to
/// `recorder` (whose header is written) on a thread of its own, then closes
/// the recording: its digest goes into the audit trail like CloseRecording's.
/// A pipe that closes without the end line (jit-session killed), a line that
/// is not an event, or one too long ends the recording as "terminated"; a
/// failed write (full disk) as "write_failed", and closing the pipe at once
/// makes jit-session's next write fail, which ends the session.
pub fn follow(
    engine: Arc<Mutex<Engine>>,
    recording: u64,
    recorder: Recorder<File>,
    pipe: OwnedFd,
    record_input: bool,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("recording-{recording}"))
        .spawn(move || {
            let mut recorder = recorder;
            let (mut end, problem) = pump(&mut recorder, File::from(pipe), record_input);
            let finished = match recorder.finish(Instant::now()) {
                Ok((finished, _)) => finished,
                Err((e, finished)) => {
                    tracing::warn!(recording, error = %e, "login recording: write failed");
                    end = End::WriteFailed;
                    finished
                }
            };
            if let Some(problem) = problem {
                tracing::warn!(recording, %problem, end = end.as_str(), "login recording ended abnormally");
            }
            let closed = engine.lock().unwrap_or_else(|e| e.into_inner()).close_recording(
                recording,
                &finished.sha256,
                finished.bytes,
                end.as_str(),
            );
            if let Err(e) = closed {
                tracing::error!(recording, error = %e, "cannot close a login recording");
            }
        })
        .map(drop)
}

/// Copies checked event lines from the pipe to the recording until the end
/// line, EOF or a problem; returns how the recording ended and, if it was
/// not clean, why. Returning drops (closes) the read end.
fn pump(
    recorder: &mut Recorder<File>,
    mut pipe: File,
    record_input: bool,
) -> (End, Option<String>) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => {
                return (
                    End::Terminated,
                    Some("the recorder closed the pipe without ending the recording".into()),
                );
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (End::Terminated, Some(format!("reading the pipe: {e}"))),
        };
        let complete = match lines.feed(&buf[..n]) {
            Ok(c) => c,
            Err(e) => return (End::Terminated, Some(e.to_string())),
        };
        let (events, last) = checked_events(&complete, record_input);
        if let Err(e) = recorder.lines(Instant::now(), &complete[..events]) {
            return (End::WriteFailed, Some(e.to_string()));
        }
        match last {
            None => {}
            Some(Ok(end)) => return (end, None),
            Some(Err(problem)) => return (End::Terminated, Some(problem)),
        }
    }
}

/// How many bytes of `complete` (whole lines) are events to append, and
/// what stopped the scan: the end line, or a line that is not an event.
fn checked_events(complete: &[u8], record_input: bool) -> (usize, Option<Result<End, String>>) {
    let mut events = 0;
    for line in complete.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        match check_line(text, record_input) {
            Ok(Line::Event) => events += line.len(),
            Ok(Line::End(end)) => return (events, Some(Ok(end))),
            Err(e) => return (events, Some(Err(e.to_string()))),
        }
    }
    (events, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_up_to_the_end_line_are_appended() {
        let text = b"[0.1,\"o\",\"a\"]\n[0.2,\"m\",\"end: exit\"]\n{\"end\":\"exit\"}\n[9,\"o\",\"late\"]\n";
        let (n, last) = checked_events(text, false);
        assert_eq!(
            &text[..n],
            b"[0.1,\"o\",\"a\"]\n[0.2,\"m\",\"end: exit\"]\n"
        );
        assert_eq!(last, Some(Ok(End::Exit)));
    }

    #[test]
    fn a_bad_line_stops_the_recording_after_the_good_ones() {
        let text = b"[0.1,\"o\",\"a\"]\n{\"version\":2}\n[0.2,\"o\",\"b\"]\n";
        let (n, last) = checked_events(text, false);
        assert_eq!(&text[..n], b"[0.1,\"o\",\"a\"]\n");
        assert!(matches!(last, Some(Err(_))));
        let (n, last) = checked_events(b"[0.1,\"i\",\"pw\"]\n", false);
        assert_eq!((n, last.is_some()), (0, true));
        let (n, last) = checked_events(b"[0.1,\"o\",\"a\"]\n", false);
        assert_eq!((n, last), (14, None));
    }
}
