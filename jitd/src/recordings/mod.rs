//! Recording files on disk: created by jitd, readable by root and the
//! recordings group only. jit-session run through sudo (root) writes its own;
//! a login shell's (run by the user) is written by jitd from the events
//! jit-session sends through a pipe ([`follow`]), so the user never holds a
//! writable descriptor of it (threat T17).

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jit_session::asciicast::{Finished, Recorder};
use jit_session::pipe::{check_line, Line, Lines};
use jit_session::session::End;
use nix::unistd::{chown, Group};

use crate::engine::{Engine, EngineError};
use crate::store::RecordingRecord;

/// Bytes read from a login shell's pipe at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Login recordings one grant may have open at once (each is a thread and
/// an open file; a user could otherwise open them in a loop).
pub const MAX_OPEN_PER_GRANT: usize = 32;

/// The login recordings being followed, by grant. Each holds the write end
/// of a stop pipe: dropping it (the grant ended, its sessions are gone)
/// wakes the reader, which closes the recording even if some process still
/// holds the other end of its pipe.
#[derive(Clone, Default)]
pub struct Following {
    open: Arc<Mutex<OpenByGrant>>,
}

/// grant -> (recording, the write end of its stop pipe).
type OpenByGrant = HashMap<u64, Vec<(u64, OwnedFd)>>;

impl Following {
    /// How many login recordings of `grant` are open.
    pub fn count(&self, grant: u64) -> usize {
        self.lock().get(&grant).map_or(0, Vec::len)
    }

    /// Closes the recordings of `grant` that are still open.
    pub fn stop(&self, grant: u64) {
        if let Some(stopped) = self.lock().remove(&grant) {
            tracing::info!(
                grant,
                count = stopped.len(),
                "closing login recordings left open"
            );
        }
    }

    /// Registers `recording`; returns the end its reader watches.
    fn add(&self, grant: u64, recording: u64) -> io::Result<OwnedFd> {
        let (watch, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        self.lock()
            .entry(grant)
            .or_default()
            .push((recording, stop));
        Ok(watch)
    }

    fn remove(&self, grant: u64, recording: u64) {
        let mut open = self.lock();
        if let Some(list) = open.get_mut(&grant) {
            list.retain(|(r, _)| *r != recording);
            if list.is_empty() {
                open.remove(&grant);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenByGrant> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

/// How a recording sealed by jitd ended: its writer went away without
/// closing it (jit-session killed, or the jitd that wrote it).
pub const ABANDONED: &str = "abandoned";

/// Opens `rec`'s file for reading as jitd stored it: a symbolic link in its
/// place is not followed (it is not the file jitd wrote).
pub fn open_recorded(rec: &RecordingRecord) -> Result<File, EngineError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&rec.path)
        .map_err(|e| EngineError::RecordingUnreadable {
            id: rec.id,
            path: rec.path.clone(),
            reason: match e.raw_os_error() {
                Some(libc::ENOENT) => "the file is gone (deleted or moved)".into(),
                Some(libc::ELOOP) => "a symbolic link is in the file's place".into(),
                _ => e.to_string(),
            },
        })
}

/// Seals recordings whose writer is gone: the digest of each file as found
/// goes into the audit trail (`recording_closed`, end [`ABANDONED`]), so
/// `jitctl recordings verify` can vouch for it from then on. Hashes without
/// holding the engine's lock; blocking.
pub fn seal(engine: &Mutex<Engine>, recordings: &[RecordingRecord]) {
    for rec in recordings {
        let found = open_recorded(rec).and_then(|file| {
            Finished::of(file).map_err(|e| EngineError::RecordingUnreadable {
                id: rec.id,
                path: rec.path.clone(),
                reason: e.to_string(),
            })
        });
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot seal a recording left open");
                continue;
            }
        };
        let sealed = engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .close_recording(rec.id, &found.sha256, found.bytes, ABANDONED);
        match sealed {
            Ok(()) => tracing::warn!(
                recording = rec.id,
                grant = rec.grant,
                bytes = found.bytes,
                "sealed a recording its writer left open"
            ),
            // Its writer closed it after all.
            Err(EngineError::RecordingClosed(_)) => {}
            Err(e) => {
                tracing::error!(recording = rec.id, error = %e, "cannot seal a recording left open")
            }
        }
    }
}

/// Appends what a login shell's jit-session sends through `pipe` to
/// `recorder` (whose header is written) on a thread of its own, then closes
/// the recording: its digest goes into the audit trail like CloseRecording's.
/// A pipe that closes without the end line (jit-session killed), a line that
/// is not an event, or one too long ends the recording as "terminated"; a
/// failed write (full disk) as "write_failed", and closing the pipe at once
/// makes jit-session's next write fail, which ends the session.
pub struct Follow {
    pub engine: Arc<Mutex<Engine>>,
    pub following: Following,
    pub grant: u64,
    pub recording: u64,
    pub record_input: bool,
}

pub fn follow(f: Follow, recorder: Recorder<File>, pipe: OwnedFd) -> io::Result<()> {
    let stop = f.following.add(f.grant, f.recording)?;
    let recording = f.recording;
    std::thread::Builder::new()
        .name(format!("recording-{recording}"))
        .spawn(move || {
            let Follow {
                engine,
                following,
                grant,
                recording,
                record_input,
            } = f;
            let mut recorder = recorder;
            let (mut end, problem) = pump(&mut recorder, File::from(pipe), &stop, record_input);
            following.remove(grant, recording);
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
    stop: &OwnedFd,
    record_input: bool,
) -> (End, Option<String>) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if stopped(&pipe, stop) {
            return (
                End::Terminated,
                Some("the grant ended with the recording still open".into()),
            );
        }
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

/// Waits until the pipe has something (data or EOF) or the stop pipe
/// closed; true for the latter.
fn stopped(pipe: &File, stop: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [
            PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                if ready(1) {
                    return true;
                }
                if ready(0) {
                    return false;
                }
            }
            Err(nix::Error::EINTR) => {}
            // Let the read decide (it reports errors itself).
            Err(_) => return false,
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
    use std::io::{Seek, Write};

    fn recorder() -> (Recorder<File>, File) {
        let file = tempfile::tempfile().unwrap();
        let reader = file.try_clone().unwrap();
        (Recorder::events_only(file, Instant::now()), reader)
    }

    fn contents(mut file: File) -> String {
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn a_recording_left_open_is_sealed_as_found() {
        use crate::clock::SystemClock;
        use crate::directory::Person;
        use crate::test_support::{ALICE, CONFIG};
        let dir = tempfile::tempdir().unwrap();
        let recordings = dir.path().join("sessions");
        fs::create_dir(&recordings).unwrap();
        let text = format!(
            "{CONFIG}\n[recordings]\ndir = \"{}\"\n",
            recordings.display()
        );
        let config = crate::config::parse(&text, Path::new("test.toml")).unwrap();
        let (mut engine, _) =
            Engine::open(Arc::new(config), dir.path(), Arc::new(SystemClock)).unwrap();
        let alice = Person {
            uid: ALICE,
            name: "alice".into(),
            gid: ALICE,
        };
        let (grant, _) = engine
            .submit(
                &alice,
                "logs",
                std::time::Duration::from_secs(600),
                "t",
                None,
            )
            .unwrap();
        let mut start = || {
            engine
                .open_recording(grant.id, &Person::root(), "/bin/bash", "h")
                .unwrap()
        };
        let (found, missing) = (start(), start());
        // As a kill leaves it: the last line cut short.
        let written = b"{\"version\": 2}\n[0.5, \"o\", \"cut";
        fs::write(&found.path, written).unwrap();
        let engine = Mutex::new(engine);
        let left = engine
            .lock()
            .unwrap()
            .recordings_left_open(grant.id)
            .unwrap();
        assert_eq!(left.len(), 2);

        seal(&engine, &left);
        let engine = engine.into_inner().unwrap();
        let sealed = engine.recording(&Person::root(), found.recording).unwrap();
        assert_eq!(sealed.end.as_deref(), Some(ABANDONED));
        assert_eq!(sealed.bytes, Some(written.len() as u64));
        let expected = Finished::of(File::open(&found.path).unwrap()).unwrap();
        assert_eq!(sealed.sha256, Some(expected.sha256));
        assert_eq!(
            fs::read(&found.path).unwrap(),
            written,
            "sealing changed the file"
        );
        // Without its file there is nothing to vouch for: it stays open.
        let still_open = engine.recordings_left_open(grant.id).unwrap();
        assert_eq!(
            still_open.iter().map(|r| r.id).collect::<Vec<_>>(),
            [missing.recording]
        );
    }

    #[test]
    fn the_pipe_is_copied_until_the_end_line() {
        let (mut rec, file) = recorder();
        let (read, write) = nix::unistd::pipe().unwrap();
        let (_stop_watch, stop) = nix::unistd::pipe().unwrap();
        let mut write = File::from(write);
        write
            .write_all(b"[0.1,\"o\",\"a\"]\n[0.2,\"o\",\"b\"]\n{\"end\":\"expired\"}\n")
            .unwrap();
        let (end, problem) = pump(&mut rec, File::from(read), &stop, false);
        assert_eq!((end, problem), (End::Expired, None));
        assert_eq!(contents(file), "[0.1,\"o\",\"a\"]\n[0.2,\"o\",\"b\"]\n");
        // The read end is closed: the writer learns at once.
        assert!(write.write_all(b"[1,\"o\",\"c\"]\n").is_err());
    }

    #[test]
    fn eof_without_the_end_line_is_terminated() {
        let (mut rec, _file) = recorder();
        let (read, write) = nix::unistd::pipe().unwrap();
        let (_stop_watch, stop) = nix::unistd::pipe().unwrap();
        File::from(write)
            .write_all(b"[0.1,\"o\",\"a\"]\n[0.2,\"o\"")
            .unwrap();
        let (end, problem) = pump(&mut rec, File::from(read), &stop, false);
        assert_eq!(end, End::Terminated);
        assert!(problem.is_some());
    }

    #[test]
    fn a_stopped_grant_closes_a_pipe_someone_keeps_open() {
        let following = Following::default();
        let watch = following.add(7, 3).unwrap();
        assert_eq!(following.count(7), 1);
        let (mut rec, _file) = recorder();
        let (read, _kept_open) = nix::unistd::pipe().unwrap();
        following.stop(7);
        assert_eq!(following.count(7), 0);
        let (end, problem) = pump(&mut rec, File::from(read), &watch, false);
        assert_eq!(end, End::Terminated);
        assert!(problem.unwrap().contains("grant ended"));
    }

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
