//! Recording files on disk: created by jitd, readable by root and the
//! recordings group only, and written by jitd alone from what each session's
//! recorder sends through a pipe ([`follow`]): a root session's recorder
//! could be tampered with by the shell it records, a login shell's is run by
//! the user (threat T17), so neither holds the file nor reports its digest.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use jit_recording::asciicast::{Finished, Header, Recorder};
use nix::unistd::{chown, Group};

use crate::engine::{Engine, EngineError, RecordingStart};
use crate::store::{Closed, DigestOf, RecordingRecord};

pub mod admission;
pub mod follow;
pub mod recorders;

pub use recorders::{CloseRefused, Recorders, MAX_OPEN_PER_GRANT};

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

/// How a recording sealed as found ended: the jitd that wrote it stopped
/// before it closed.
pub const ABANDONED: &str = "abandoned";

/// Opens `rec`'s file for reading as jitd stored it: a symbolic link in its
/// place is not followed (it is not the file jitd wrote), and whatever is
/// not a regular file (a FIFO put there would block jitd) is refused.
pub fn open_recorded(rec: &RecordingRecord) -> Result<File, EngineError> {
    let unreadable = |reason: String| EngineError::RecordingUnreadable {
        id: rec.id,
        path: rec.path.clone(),
        reason,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&rec.path)
        .map_err(|e| {
            unreadable(match e.raw_os_error() {
                Some(libc::ENOENT) => "the file is gone (deleted or moved)".into(),
                Some(libc::ELOOP) => "a symbolic link is in the file's place".into(),
                _ => e.to_string(),
            })
        })?;
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(file),
        Ok(_) => Err(unreadable("not a regular file".into())),
        Err(e) => Err(unreadable(e.to_string())),
    }
}

/// Seals recordings whose writer is gone (the jitd before this one): the
/// digest of each file as found goes into the audit trail
/// (`recording_closed`, end [`ABANDONED`], `digest_of` "file"). `jitctl
/// recordings verify` then tells later edits, but calls the recording
/// unverified: what happened to the file before is unknown. Hashes without
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
            .close_recording(
                rec.id,
                &Closed {
                    sha256: &found.sha256,
                    bytes: found.bytes,
                    end: ABANDONED,
                    digest_of: DigestOf::File,
                },
            );
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

/// Starts writing `start`'s recording: creates the file with `header`,
/// and the pipe whose read end a thread of jitd follows ([`follow::start`]);
/// returns the write end, for the recorder. If any of it fails the
/// recording is closed at once as "write_failed" (with the digest of what
/// reached the file), and no session starts.
pub fn begin(
    e: &mut Engine,
    follow: follow::Follow,
    start: &RecordingStart,
    header: &Header,
) -> Result<OwnedFd, EngineError> {
    let failed = |e: &mut Engine, what: &str, err: &dyn std::fmt::Display, so_far: Finished| {
        let problem = EngineError::Io(format!("{what} {}: {err}", start.path));
        let closed = Closed {
            sha256: &so_far.sha256,
            bytes: so_far.bytes,
            end: "write_failed",
            digest_of: DigestOf::Session,
        };
        match e.close_recording(start.recording, &closed) {
            Ok(()) => problem,
            Err(close) => close,
        }
    };
    let now = Instant::now();
    let file = match create(Path::new(&start.path), &start.group) {
        Ok(f) => f,
        Err(err) => return Err(failed(e, "cannot create", &err, Finished::empty())),
    };
    let mut recorder = Recorder::new(file, header, now)
        .map_err(|err| failed(e, "cannot start", &err, Finished::empty()))?;
    if let Err(err) = recorder.flush(now) {
        return Err(failed(e, "cannot write", &err, recorder.written_so_far()));
    }
    let (read, write) = match jit_recording::pipe::recording_pipe() {
        Ok(p) => p,
        Err(err) => return Err(failed(e, "no pipe for", &err, recorder.written_so_far())),
    };
    let so_far = recorder.written_so_far();
    if let Err(err) = follow::start(follow, recorder, read) {
        return Err(failed(e, "cannot follow", &err, so_far));
    }
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Person;
    use crate::engine::RecordedSession;
    use std::sync::Arc;

    #[test]
    fn a_recording_left_open_is_sealed_as_found() {
        use crate::clock::SystemClock;
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
        let root = Person::root();
        let mut start = |session| {
            engine
                .open_recording(&RecordedSession {
                    grant: grant.id,
                    session,
                    pid: 42,
                    target: &root,
                    login: false,
                    command: "/bin/bash",
                    host: "h",
                })
                .unwrap()
        };
        let (found, missing) = (start(1), start(2));
        // As a kill of the jitd writing it leaves it: the last line cut short.
        let written = b"{\"version\": 2}\n[0.5, \"o\", \"cut";
        fs::write(&found.path, written).unwrap();
        let engine = Mutex::new(engine);
        let left = engine
            .lock()
            .unwrap()
            .recordings_orphaned_at_start()
            .unwrap();
        assert_eq!(left.len(), 2);

        seal(&engine, &left);
        let engine = engine.into_inner().unwrap();
        let sealed = engine.recording(&Person::root(), found.recording).unwrap();
        assert_eq!(sealed.end.as_deref(), Some(ABANDONED));
        assert_eq!(sealed.digest_of, Some(DigestOf::File));
        assert_eq!(sealed.bytes, Some(written.len() as u64));
        let expected = Finished::of(File::open(&found.path).unwrap()).unwrap();
        assert_eq!(sealed.sha256, Some(expected.sha256));
        assert_eq!(
            fs::read(&found.path).unwrap(),
            written,
            "sealing changed the file"
        );
        // Without its file there is nothing to vouch for: it stays open.
        let still_open = engine.recordings_orphaned_at_start().unwrap();
        assert_eq!(
            still_open.iter().map(|r| r.id).collect::<Vec<_>>(),
            [missing.recording]
        );
    }
}
