//! Terminal primitives: the PTY pair, window sizes, raw mode and its guard.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::termios::{self, SetArg, Termios};

#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(#[source] nix::Error),
    #[error("cannot set up the terminal: {0}")]
    Setup(#[source] nix::Error),
}

pub type Winsize = libc::winsize;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a PTY pair with the user's size and settings, both ends close-on-exec.
pub fn open(size: Option<&Winsize>, settings: Option<&Termios>) -> Result<Pty, PtyError> {
    let pair = nix::pty::openpty(size, settings).map_err(PtyError::Open)?;
    for fd in [&pair.master, &pair.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(PtyError::Setup)?;
    }
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
    })
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), PtyError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(PtyError::Setup)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(PtyError::Setup)?;
    Ok(())
}

pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The size of the user's terminal: stdin's, or stdout's when only stdout
/// is one (`cmd | jitctl run ID -- less`).
pub fn user_winsize() -> Option<Winsize> {
    winsize(std::io::stdin().as_fd()).or_else(|| winsize(std::io::stdout().as_fd()))
}

/// The window size of a terminal, if it is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, live `ws`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(ws)
}

/// Sets the window size (on the master: the kernel signals the foreground
/// process group of the PTY with SIGWINCH).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `winsize` from the valid `ws`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts a terminal in raw mode and restores its settings when dropped.
pub struct RawGuard {
    fd: RawFd,
    saved: Termios,
}

impl RawGuard {
    /// `fd` must stay open for the guard's lifetime (it is the process's stdin).
    pub fn enter(fd: BorrowedFd<'_>) -> Result<RawGuard, PtyError> {
        let saved = termios::tcgetattr(fd).map_err(PtyError::Setup)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).map_err(PtyError::Setup)?;
        Ok(RawGuard {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        // SAFETY: the guard is only built on stdin, which stays open for the
        // whole process.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}
