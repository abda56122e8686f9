//! `--standalone-record FILE` (tests and benchmarks, root only): a session
//! recorded as with jitd, through a pipe, to a child process that stands in
//! for jitd with the same [`Follower`]. A benchmark of this mode measures
//! the whole path of a real session's bytes (the child's CPU is counted
//! with jit-session's once it is reaped).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use jit_recording::asciicast::{Header, Recorder};
use jit_recording::pipe::{self, Follower, Stop};

/// The follower child.
pub struct Child(Pid);

/// Creates `file` (it must not exist) and forks the child that writes
/// `header` and then what comes through the pipe into it. Call it before
/// any thread exists and before the session's descriptors are opened (the
/// child would keep them open). Returns the write end of the pipe.
pub fn start(file: &Path, header: &Header) -> Result<(OwnedFd, Child), String> {
    let out = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(file)
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    let (read, write) =
        pipe::recording_pipe().map_err(|e| format!("cannot make the recording pipe: {e}"))?;
    let recorder =
        Recorder::new(out, header, Instant::now()).map_err(|e| format!("recorder: {e}"))?;
    // SAFETY: no thread exists yet (the caller's contract): the child may
    // allocate and run any code.
    match unsafe { fork() }.map_err(|e| format!("cannot fork the recorder: {e}"))? {
        ForkResult::Child => {
            drop(write);
            let mut follower = Follower::new(recorder, File::from(read), false);
            let stop = follower.follow(&[]);
            let (_, failure) = follower.finish();
            let ok = stop == Stop::Eof && failure.is_none();
            // SAFETY: _exit(2) ends the child without running the parent's
            // exit handlers or flushing buffers it inherited.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => Ok((write, Child(child))),
    }
}

impl Child {
    /// Waits for the child: call it once every write end of the pipe is
    /// closed (the child copies until the pipe ends).
    pub fn wait(self) -> Result<(), String> {
        match waitpid(self.0, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(status) => Err(format!("the recording child ended with {status:?}")),
            Err(e) => Err(format!("cannot wait for the recording child: {e}")),
        }
    }
}
