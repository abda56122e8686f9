//! Signals sent to jit-session itself (the terminal is raw: nothing typed
//! arrives as a signal).

use std::os::fd::AsFd;
use std::time::Instant;

use jit_recording::End;

use super::State;
use crate::{pty, session};

impl<W> State<'_, W> {
    pub(super) fn on_signals(&mut self) {
        while let Ok(Some(info)) = self.r.signals.read_signal() {
            self.on_signal(info.ssi_signo as i32);
        }
    }

    fn on_signal(&mut self, signo: i32) {
        match signo {
            libc::SIGWINCH => {
                if let Some(ws) = pty::user_winsize() {
                    let _ = pty::set_winsize(self.r.master.as_fd(), &ws);
                    self.record(|r| r.resize(Instant::now(), ws.ws_col, ws.ws_row));
                }
            }
            libc::SIGTERM | libc::SIGHUP => {
                if signo == libc::SIGTERM {
                    self.say("\r\n[jit] jit-session was told to stop: ending the session\r\n");
                }
                self.record(|r| r.marker(Instant::now(), "terminated"));
                self.begin_terminate(End::Terminated);
            }
            libc::SIGINT | libc::SIGQUIT | libc::SIGUSR1 | libc::SIGUSR2 => {
                // Sent to us, not typed (the terminal is raw): the monitor
                // passes it on to the command, as sudo passes on what its
                // user sends it (`kill -USR1` for dd's progress).
                session::pidfd_signal(self.r.spawned.pidfd.as_fd(), signo);
            }
            _ => {}
        }
    }
}
