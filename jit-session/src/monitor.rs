//! The process layout (modelled on sudo's use_pty): the parent keeps the
//! user's terminal; a **monitor** child becomes session leader with the PTY
//! slave as its controlling terminal, waits for the parent's go-ahead, forks
//! the **command** into its own foreground process group, forwards signals
//! to it and reports its exit status over a pipe. The monitor is a child
//! subreaper, so orphaned descendants stay in its tree for termination.
//!
//! Everything here runs before any thread exists (fork in a multi-threaded
//! process is unsafe); the children only use what was prepared before fork.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{ForkResult, Pid};

use crate::pty::Pty;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create a pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error("cannot fork: {0}")]
    Fork(#[source] nix::Error),
    #[error("cannot open a pidfd for the monitor: {0}")]
    Pidfd(#[source] std::io::Error),
    #[error("cannot start the command: {0}")]
    Go(#[source] nix::Error),
}

/// What the command is, prepared before fork.
pub struct Command {
    pub path: CString,
    pub argv: Vec<CString>,
    /// Variables to set in the command's environment.
    pub env: Vec<(CString, CString)>,
    pub cwd: Option<CString>,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
        }
    }

    fn encode(self) -> [u8; 8] {
        let (kind, value) = match self {
            Status::Exited(c) => (0i32, c),
            Status::Signaled(s) => (1, s),
        };
        let mut b = [0; 8];
        b[..4].copy_from_slice(&kind.to_ne_bytes());
        b[4..].copy_from_slice(&value.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; 8]) -> Status {
        let kind = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let value = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        if kind == 0 {
            Status::Exited(value)
        } else {
            Status::Signaled(value)
        }
    }
}

/// The signals the parent and the monitor handle through a signalfd; they
/// stay blocked in both (the command gets a clean mask).
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGPIPE,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGCONT,
    ] {
        set.add(s);
    }
    set
}

pub struct Spawned {
    pub monitor: Pid,
    /// Against pid reuse when signalling the monitor.
    pub pidfd: OwnedFd,
    go: Option<OwnedFd>,
    /// The monitor writes the command's status here (8 bytes).
    pub status: OwnedFd,
}

impl Spawned {
    /// Lets the monitor start the command.
    pub fn go(&mut self) -> Result<(), SpawnError> {
        if let Some(fd) = self.go.take() {
            nix::unistd::write(&fd, &[1]).map_err(SpawnError::Go)?;
        }
        Ok(())
    }

    /// Kills the monitor (last, once its tree is gone) and reaps it.
    pub fn kill_and_reap(&self) {
        crate::session::pidfd_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.monitor, None);
    }
}

/// Forks the monitor. Signals in [`handled_signals`] must already be blocked.
/// The slave end is closed in the parent, which gets the master back.
pub fn spawn(pty: Pty, cmd: &Command) -> Result<(Spawned, OwnedFd), SpawnError> {
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let (st_r, st_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let parent = nix::unistd::getpid();
    let mut argv: Vec<*const libc::c_char> = cmd.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: no other thread exists yet (main forks before starting any), so
    // the child may run arbitrary code; it never returns into the caller.
    match unsafe { nix::unistd::fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => {
            drop(go_w);
            drop(st_r);
            let Pty { master, slave } = pty;
            drop(master);
            let code = monitor_main(parent, slave, go_r, st_w, cmd, &argv);
            // SAFETY: _exit ends the process without running the parent's
            // atexit handlers or destructors twice.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(st_w);
            drop(pty.slave);
            let pidfd = pidfd_open(child).map_err(SpawnError::Pidfd)?;
            let spawned = Spawned {
                monitor: child,
                pidfd,
                go: Some(go_w),
                status: st_r,
            };
            Ok((spawned, pty.master))
        }
    }
}

pub fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn monitor_main(
    parent: Pid,
    slave: OwnedFd,
    go: OwnedFd,
    status: OwnedFd,
    cmd: &Command,
    argv: &[*const libc::c_char],
) -> i32 {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    if nix::unistd::getppid() != parent {
        return 1;
    }
    if nix::unistd::setsid().is_err() {
        return 1;
    }
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return 1;
    }
    let mut byte = [0u8; 1];
    match nix::unistd::read(&go, &mut byte) {
        Ok(1) => {}
        _ => return 1, // the parent refused (no recording) or died
    }
    drop(go);
    // SAFETY: the monitor is single-threaded (forked from a single-threaded
    // parent); the child execs or _exits.
    let command = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(status);
            command_main(slave.as_fd(), cmd, argv)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => return 1,
    };
    let _ = nix::unistd::setpgid(command, command);
    let _ = nix::unistd::tcsetpgrp(&slave, command);
    drop(slave);

    let Ok(sigfd) = nix::sys::signalfd::SignalFd::with_flags(
        &handled_signals(),
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    ) else {
        return 1;
    };
    let mut reported = false;
    loop {
        let Ok(Some(info)) = sigfd.read_signal() else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            loop {
                let mut st = 0;
                // SAFETY: waitpid writes the status into the valid `st`.
                let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::WUNTRACED) };
                if pid <= 0 {
                    break;
                }
                if pid != command.as_raw() {
                    continue; // an orphan reparented to us
                }
                let ended = if libc::WIFEXITED(st) {
                    Some(Status::Exited(libc::WEXITSTATUS(st)))
                } else if libc::WIFSIGNALED(st) {
                    Some(Status::Signaled(libc::WTERMSIG(st)))
                } else {
                    // Stopped (^Z on a program without job control): there
                    // is no shell above it to resume it, so resume it now.
                    let _ = nix::sys::signal::kill(command, Signal::SIGCONT);
                    None
                };
                if let (Some(s), false) = (ended, reported) {
                    let _ = nix::unistd::write(&status, &s.encode());
                    reported = true;
                }
            }
        } else if !reported && signo != libc::SIGWINCH {
            // Forwarded (SIGWINCH reaches the command from the PTY itself).
            // SAFETY: kill with plain integers.
            unsafe { libc::kill(command.as_raw(), signo) };
        }
        // After the report the monitor stays, reaping orphans, until the
        // parent has emptied its tree and kills it.
    }
}

fn command_main(slave: BorrowedFd<'_>, cmd: &Command, argv: &[*const libc::c_char]) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SIGTTOU is blocked, so a background process group may take the terminal.
    let _ = nix::unistd::tcsetpgrp(slave, nix::unistd::getpid());
    for signo in 1..32 {
        if signo != libc::SIGKILL && signo != libc::SIGSTOP {
            // SAFETY: resetting a disposition to the default is always sound.
            unsafe { libc::signal(signo, libc::SIG_DFL) };
        }
    }
    let _ = SigSet::empty().thread_set_mask();
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own here.
        unsafe { libc::dup2(slave.as_raw_fd(), target) };
    }
    // SAFETY: close_range with integer arguments; marks every inherited
    // descriptor above stderr close-on-exec.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    for (k, v) in &cmd.env {
        // SAFETY: single-threaded child; the strings are NUL-terminated.
        unsafe { libc::setenv(k.as_ptr(), v.as_ptr(), 1) };
    }
    if let Some(dir) = &cmd.cwd {
        // SAFETY: NUL-terminated path.
        if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
            // SAFETY: a valid path literal.
            unsafe { libc::chdir(c"/".as_ptr()) };
        }
    }
    // SAFETY: `argv` is a NULL-terminated array of NUL-terminated strings that
    // outlive this call (exec replaces the image or returns).
    unsafe { libc::execvp(cmd.path.as_ptr(), argv.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let msg = format!(
        "jit-session: cannot run {}: {err}\r\n",
        cmd.path.to_string_lossy()
    );
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    // SAFETY: see above.
    unsafe { libc::_exit(127) }
}
