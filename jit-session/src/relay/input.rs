//! Input: what the user types (or pipes in) is held until the command
//! takes it, through the PTY or through its own stdin pipe, and recorded
//! if the configuration records input.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;

use super::State;

impl<W> State<'_, W> {
    pub(super) fn read_stdin(&mut self) {
        let mut tmp = [0u8; 4096];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut tmp) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => {
                if self.r.record_input {
                    self.record(|r| r.input(Instant::now(), &tmp[..n]));
                }
                self.input.extend_from_slice(&tmp[..n]);
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    pub(super) fn write_input_to_master(&mut self) {
        if self.input.is_empty() {
            return;
        }
        match nix::unistd::write(&self.r.master, &self.input) {
            Ok(n) => {
                self.input.drain(..n);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => self.input.clear(),
        }
    }

    pub(super) fn write_input_to_pipe(&mut self) {
        let Some(pipe) = &self.r.pipes.stdin else {
            return;
        };
        match nix::unistd::write(pipe, &self.input) {
            Ok(n) => {
                self.input.drain(..n);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => {
                // The command closed its input: nothing more to pass on.
                self.input.clear();
                self.stdin_open = false;
            }
        }
    }

    /// The end of stdin reaches the command once all input has.
    pub(super) fn pass_on_end_of_input(&mut self) {
        if !self.stdin_open && self.input.is_empty() {
            self.r.pipes.stdin = None;
        }
    }
}
