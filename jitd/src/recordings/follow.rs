//! The thread that writes one recording: it appends what the recorder sends
//! through the pipe ([`Follower`]: checked lines, hashed as written) until
//! the recorder closes it, the recorder exits, or the grant ends, then
//! seals it with the digest of the bytes it received (`digest_of` =
//! "session"). Edits to the file on disk, at any time, then show.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use jit_recording::asciicast::Recorder;
use jit_recording::pipe::{Follower, Stop};
use jit_recording::End;
use tokio::sync::oneshot;

use super::recorders::{Recorders, Watch};
use crate::engine::{Engine, EngineError};
use crate::sessions::pidfd::Process;
use crate::store::{Closed, DigestOf};

/// Reads of what is left in the pipe when the recording closes: a
/// recorder's last writes fit in the pipe's buffer many times over, and
/// another writer of the pipe cannot hold the close up.
const LAST_READS: usize = 16;

/// One recording to follow.
pub struct Follow {
    pub engine: Arc<Mutex<Engine>>,
    pub recorders: Recorders,
    pub grant: u64,
    pub recording: u64,
    pub record_input: bool,
    /// The process that opened the recording, and its bus connection.
    pub recorder: Arc<Process>,
    pub connection: String,
}

/// Follows `pipe` into `recorder` (whose header is written) on a thread of
/// its own.
pub fn start(f: Follow, recorder: Recorder<File>, pipe: OwnedFd) -> io::Result<()> {
    let watch = f.recorders.add(
        f.grant,
        f.recording,
        Arc::clone(&f.recorder),
        f.connection.clone(),
    )?;
    let (recorders, recording) = (f.recorders.clone(), f.recording);
    let follower = Follower::new(recorder, File::from(pipe), f.record_input);
    std::thread::Builder::new()
        .name(format!("recording-{recording}"))
        .spawn(move || run(f, watch, follower))
        .map(drop)
        .inspect_err(|_| recorders.remove(recording))
}

/// How the recording ended, as its follower saw it.
struct Ending {
    end: End,
    /// Why it ended otherwise than by its recorder's close.
    problem: Option<String>,
    /// The recorder's close, waiting for the seal.
    reply: Option<oneshot::Sender<Result<(), EngineError>>>,
}

fn run(f: Follow, watch: Watch, mut follower: Follower<File>) {
    let ending = copy_until_closed(&mut follower, &watch, &f.recorder);
    f.recorders.remove(f.recording);
    // Closes the pipe: a recorder still writing learns at once.
    let (finished, failure) = follower.finish();
    let (end, problem) = match (ending.problem, failure) {
        (None, Some(failure)) => (failure.end, Some(failure.problem)),
        (problem, _) => (ending.end, problem),
    };
    if let Some(problem) = &problem {
        tracing::warn!(recording = f.recording, %problem, end = end.as_str(), "a recording ended abnormally");
    }
    let sealed = f
        .engine
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .close_recording(
            f.recording,
            &Closed {
                sha256: &finished.sha256,
                bytes: finished.bytes,
                end: end.as_str(),
                digest_of: DigestOf::Session,
            },
        );
    if let Err(e) = &sealed {
        tracing::error!(recording = f.recording, error = %e, "cannot close a recording");
    }
    if let Some(reply) = ending.reply {
        let answer = sealed.and_then(|()| match problem {
            None => Ok(()),
            Some(problem) => Err(EngineError::Io(format!(
                "the recording ended as {}: {problem}",
                end.as_str()
            ))),
        });
        // The recorder may have given up waiting.
        let _ = reply.send(answer);
    }
}

/// Copies until the recorder's close, its exit or the grant's end, then
/// what the pipe still holds.
fn copy_until_closed(follower: &mut Follower<File>, watch: &Watch, recorder: &Process) -> Ending {
    let wake = [watch.wake.as_fd(), recorder.fd.as_fd()];
    let recorder_exited = match follower.follow(&wake) {
        Stop::Woken(i) => i == 1,
        // Every writer closed the pipe: the recorder closes next, or exits.
        Stop::Eof => wait(&wake) == 1,
        Stop::Failed(failure) => {
            return Ending {
                end: failure.end,
                problem: Some(failure.problem),
                reply: None,
            }
        }
    };
    let request = watch.requests.try_recv().ok();
    let drained = follower.drain(LAST_READS);
    let (end, problem) = match (&request, drained) {
        (_, Err(failure)) => (failure.end, Some(failure.problem)),
        (Some(request), Ok(())) => (request.end, None),
        (None, Ok(())) if recorder_exited => (
            End::Terminated,
            Some("the recorder exited without closing its recording".into()),
        ),
        (None, Ok(())) => (
            End::Terminated,
            Some("the grant ended with the recording still open".into()),
        ),
    };
    Ending {
        end,
        problem,
        reply: request.map(|r| r.reply),
    }
}

/// Waits until one of `fds` polls readable; returns its index.
fn wait(fds: &[BorrowedFd]) -> usize {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    loop {
        let mut polled: Vec<PollFd> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        match nix::poll::poll(&mut polled, PollTimeout::NONE) {
            Ok(_) => {
                if let Some(i) = polled
                    .iter()
                    .position(|p| p.revents().is_some_and(|r| !r.is_empty()))
                {
                    return i;
                }
            }
            Err(nix::Error::EINTR) => {}
            // Nothing to wait on that works: end it as the grant's end would.
            Err(e) => {
                tracing::error!(error = %e, "cannot wait on a recording's recorder");
                return 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    struct Fixture {
        follower: Follower<File>,
        pipe: File,
        recorders: Recorders,
        watch: Watch,
        child: std::process::Child,
        recorder: Arc<Process>,
    }

    fn fixture() -> Fixture {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let recorder = Arc::new(Process::hold(child.id()).unwrap());
        let recorders = Recorders::default();
        let watch = recorders
            .add(7, 3, Arc::clone(&recorder), ":1.7".into())
            .unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        let rec = Recorder::events_only(tempfile::tempfile().unwrap(), Instant::now());
        Fixture {
            follower: Follower::new(rec, File::from(read), false),
            pipe: File::from(write),
            recorders,
            watch,
            child,
            recorder,
        }
    }

    #[test]
    fn the_recorders_close_ends_it_with_its_reason_and_its_last_events() {
        let mut f = fixture();
        f.pipe.write_all(b"[0.1,\"o\",\"last\"]\n").unwrap();
        let answer = f
            .recorders
            .close(3, f.recorder.pid, ":1.7", End::Expired)
            .unwrap();
        // The recorder's pipe is still open: the close does not wait for it.
        let ending = copy_until_closed(&mut f.follower, &f.watch, &f.recorder);
        assert_eq!((ending.end, ending.problem), (End::Expired, None));
        assert!(ending.reply.is_some());
        let (finished, failure) = f.follower.finish();
        assert_eq!((finished.bytes, failure), (17, None));
        drop(answer);
        f.child.kill().unwrap();
        f.child.wait().unwrap();
    }

    #[test]
    fn a_recorder_that_exits_without_closing_ends_it_as_terminated() {
        let mut f = fixture();
        f.pipe.write_all(b"[0.1,\"o\",\"a\"]\n").unwrap();
        // Someone else keeps the pipe open: the recorder's exit still counts.
        let _kept = f.pipe.try_clone().unwrap();
        f.child.kill().unwrap();
        f.child.wait().unwrap();
        let ending = copy_until_closed(&mut f.follower, &f.watch, &f.recorder);
        assert_eq!(ending.end, End::Terminated);
        assert!(ending.problem.unwrap().contains("exited"));
        assert_eq!(f.follower.finish().0.bytes, 14);
    }

    #[test]
    fn after_eof_the_close_still_counts() {
        let mut f = fixture();
        f.pipe.write_all(b"[0.1,\"o\",\"a\"]\n").unwrap();
        drop(f.pipe);
        let recorders = f.recorders.clone();
        let pid = f.recorder.pid;
        let closer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            recorders.close(3, pid, ":1.7", End::Exit).map(drop)
        });
        let ending = copy_until_closed(&mut f.follower, &f.watch, &f.recorder);
        assert_eq!((ending.end, ending.problem), (End::Exit, None));
        assert!(closer.join().unwrap().is_ok());
        f.child.kill().unwrap();
        f.child.wait().unwrap();
    }

    #[test]
    fn the_grants_end_closes_it_as_terminated() {
        let mut f = fixture();
        f.recorders.stop(7);
        let ending = copy_until_closed(&mut f.follower, &f.watch, &f.recorder);
        assert_eq!(ending.end, End::Terminated);
        assert!(ending.problem.unwrap().contains("grant ended"));
        f.child.kill().unwrap();
        f.child.wait().unwrap();
    }
}
