//! The recording from the relay's side: events go to the recorder thread
//! while it works; when it fails (a send, the thread's failure pipe, or
//! jitd closing a login shell's pipe), the session ends or continues
//! unrecorded, as configured, and the user is told.

use nix::errno::Errno;

use jit_recording::asciicast::RecordError;
use jit_recording::End;

use super::State;
use crate::jitd::OnFailure;
use crate::record::Recording;

impl<W> State<'_, W> {
    pub(super) fn record(&mut self, f: impl FnOnce(&mut Recording<W>) -> Result<(), RecordError>) {
        if !self.recording {
            return;
        }
        if let Err(e) = f(&mut self.r.recorder) {
            self.record_failed(e);
        }
    }

    /// The recording stopped (reported by a send or by the thread's pipe).
    fn record_failed(&mut self, e: RecordError) {
        self.recording = false;
        self.record_error = Some(e.to_string());
        match self.r.on_failure {
            OnFailure::Terminate => {
                self.say(&format!(
                    "\r\n[jit] cannot write the session recording ({e}); ending the session\r\n"
                ));
                self.begin_terminate(End::WriteFailed);
            }
            OnFailure::Continue => self.say(&format!(
                "\r\n[jit] cannot write the session recording ({e}); the session continues unrecorded\r\n"
            )),
        }
    }

    pub(super) fn check_recording(&mut self) {
        if self.recording {
            if let Some(e) = self.r.recorder.take_failure() {
                self.record_failed(e);
            }
        }
    }

    /// jitd closed a login shell's recording pipe.
    pub(super) fn on_pipe_closed(&mut self) {
        // Heard once: a session that continues unrecorded stops watching.
        self.r.pipe = None;
        if self.recording {
            self.record_failed(RecordError::Closed(Errno::EPIPE.into()));
        }
    }
}
