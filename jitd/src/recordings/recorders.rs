//! The recordings jitd is writing, each bound to its recorder's process
//! (held by a pidfd): only that process may close its recording, and its
//! exit ends it. Each entry also holds the write end of its follower's wake
//! pipe: dropping the entry (a close, or the grant's end) wakes the follower,
//! even if some process still holds the recording's pipe open.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use jit_recording::End;
use tokio::sync::oneshot;

use crate::engine::EngineError;
use crate::sessions::pidfd::Process;

/// Recordings one grant may have open at once (each is a thread and an open
/// file; each needs a session of its own, and a grant may have many).
pub const MAX_OPEN_PER_GRANT: usize = 32;

/// The recorder's close, for the follower: how the session ended, and
/// where to answer once the recording is sealed.
pub struct CloseRequest {
    pub end: End,
    pub reply: oneshot::Sender<Result<(), EngineError>>,
}

/// What a follower watches besides its pipe.
pub struct Watch {
    /// Readable (EOF) once the entry is dropped.
    pub wake: OwnedFd,
    /// The recorder's close, if it asked (sent before the wake).
    pub requests: mpsc::Receiver<CloseRequest>,
}

/// Why a close was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseRefused {
    /// jitd is not writing that recording (closed, unknown, or left by a
    /// previous jitd).
    NotOpen,
    /// The caller is not the process that opened it.
    NotRecorder,
}

struct Entry {
    grant: u64,
    recorder: Arc<Process>,
    /// The bus connection (unique name) the recording was opened on: the
    /// pid the bus reports for a connection is the one it saw at connect,
    /// which a process that exited can leave to another; a unique name is
    /// never reused.
    connection: String,
    /// Dropped to wake the follower.
    _wake: OwnedFd,
    requests: mpsc::Sender<CloseRequest>,
}

#[derive(Clone, Default)]
pub struct Recorders {
    open: Arc<Mutex<HashMap<u64, Entry>>>,
}

impl Recorders {
    /// How many recordings of `grant` are open.
    pub fn count(&self, grant: u64) -> usize {
        self.lock().values().filter(|e| e.grant == grant).count()
    }

    /// Registers `recording`, written for `recorder`; returns what its
    /// follower watches.
    pub fn add(
        &self,
        grant: u64,
        recording: u64,
        recorder: Arc<Process>,
        connection: String,
    ) -> io::Result<Watch> {
        let (wake, wake_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (requests_tx, requests) = mpsc::channel();
        self.lock().insert(
            recording,
            Entry {
                grant,
                recorder,
                connection,
                _wake: wake_end,
                requests: requests_tx,
            },
        );
        Ok(Watch { wake, requests })
    }

    /// Closes `recording` as its recorder asked: `caller` must be the
    /// recorder process, still running (then the pid names it), on the
    /// connection it opened the recording on. Returns
    /// where the follower answers once the recording is sealed.
    pub fn close(
        &self,
        recording: u64,
        caller: u32,
        connection: &str,
        end: End,
    ) -> Result<oneshot::Receiver<Result<(), EngineError>>, CloseRefused> {
        let mut open = self.lock();
        let entry = open.get(&recording).ok_or(CloseRefused::NotOpen)?;
        if entry.recorder.pid != caller
            || entry.connection != connection
            || !entry.recorder.is_running()
        {
            return Err(CloseRefused::NotRecorder);
        }
        let (reply, answer) = oneshot::channel();
        let Some(entry) = open.remove(&recording) else {
            return Err(CloseRefused::NotOpen);
        };
        // The follower reads the request when the entry's drop wakes it.
        entry
            .requests
            .send(CloseRequest { end, reply })
            .map_err(|_| CloseRefused::NotOpen)?;
        Ok(answer)
    }

    /// Ends the recordings of `grant` still open (its sessions are gone):
    /// their followers wake and close them as "terminated".
    pub fn stop(&self, grant: u64) {
        let mut open = self.lock();
        let before = open.len();
        open.retain(|_, e| e.grant != grant);
        let stopped = before - open.len();
        if stopped > 0 {
            tracing::info!(grant, count = stopped, "closing recordings left open");
        }
    }

    /// Forgets `recording` (its follower is done).
    pub fn remove(&self, recording: u64) {
        self.lock().remove(&recording);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> (std::process::Child, Arc<Process>) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let process = Arc::new(Process::hold(child.id()).unwrap());
        (child, process)
    }

    fn woken(watch: &Watch) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&watch.wake),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap() == 1
    }

    #[test]
    fn only_the_recorder_closes_its_recording() {
        let (mut child, recorder) = sleeper();
        let recorders = Recorders::default();
        let watch = recorders
            .add(7, 3, Arc::clone(&recorder), ":1.7".into())
            .unwrap();
        assert_eq!(recorders.count(7), 1);

        let other = std::process::id();
        assert_eq!(
            recorders.close(3, other, ":1.7", End::Exit).err(),
            Some(CloseRefused::NotRecorder)
        );
        assert!(!woken(&watch), "a refused close woke the follower");
        // The recorder's pid on another bus connection: one the bus saw when
        // the pid was someone else's.
        assert_eq!(
            recorders.close(3, recorder.pid, ":1.8", End::Exit).err(),
            Some(CloseRefused::NotRecorder)
        );
        assert_eq!(
            recorders.close(4, recorder.pid, ":1.7", End::Exit).err(),
            Some(CloseRefused::NotOpen)
        );

        let answer = recorders
            .close(3, recorder.pid, ":1.7", End::Expired)
            .unwrap();
        assert!(woken(&watch));
        let request = watch.requests.try_recv().unwrap();
        assert_eq!(request.end, End::Expired);
        request.reply.send(Ok(())).unwrap();
        assert!(answer.blocking_recv().unwrap().is_ok());
        assert_eq!(recorders.count(7), 0);
        assert_eq!(
            recorders.close(3, recorder.pid, ":1.7", End::Exit).err(),
            Some(CloseRefused::NotOpen)
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_recorder_that_exited_closes_nothing() {
        let (mut child, recorder) = sleeper();
        let recorders = Recorders::default();
        let _watch = recorders
            .add(7, 3, Arc::clone(&recorder), ":1.7".into())
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // Its pid may name another process now.
        assert_eq!(
            recorders.close(3, recorder.pid, ":1.7", End::Exit).err(),
            Some(CloseRefused::NotRecorder)
        );
    }

    #[test]
    fn a_grant_end_wakes_its_followers_without_a_request() {
        let (mut child, recorder) = sleeper();
        let recorders = Recorders::default();
        let watch = recorders
            .add(7, 3, Arc::clone(&recorder), ":1.7".into())
            .unwrap();
        let other = recorders
            .add(8, 4, Arc::clone(&recorder), ":1.7".into())
            .unwrap();
        recorders.stop(7);
        assert!(woken(&watch));
        assert!(watch.requests.try_recv().is_err());
        assert!(!woken(&other));
        assert_eq!(recorders.count(8), 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
