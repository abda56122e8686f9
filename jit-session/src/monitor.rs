//! The process layout (modelled on sudo's use_pty): the parent keeps the
//! user's terminal; a **monitor** child becomes session leader with the PTY
//! slave as its controlling terminal, waits for the parent's go-ahead (which
//! carries the command: a login shell's comes from jitd, after the fork),
//! forks the **command** into its own foreground process group, forwards signals
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

/// The encoded command may not be larger (the monitor reads it into memory).
const MAX_COMMAND: usize = 8 << 20;

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

impl Command {
    /// The go-ahead message: a length, then NUL-terminated strings (path,
    /// cwd or "", argc, argv..., envc, name, value, ...). No string holds a
    /// NUL (they are `CString`s), so the split is unambiguous.
    fn encode(&self) -> Vec<u8> {
        let cwd: &[u8] = self.cwd.as_ref().map_or(b"", |c| c.as_bytes());
        let argc = self.argv.len().to_string();
        let envc = self.env.len().to_string();
        let mut fields: Vec<&[u8]> = vec![self.path.as_bytes(), cwd, argc.as_bytes()];
        fields.extend(self.argv.iter().map(|a| a.as_bytes()));
        fields.push(envc.as_bytes());
        for (k, v) in &self.env {
            fields.extend([k.as_bytes(), v.as_bytes()]);
        }
        let body: Vec<u8> = fields
            .iter()
            .flat_map(|f| f.iter().copied().chain([0]))
            .collect();
        let mut msg = u32::try_from(body.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes()
            .to_vec();
        msg.extend_from_slice(&body);
        msg
    }

    /// The inverse of [`Command::encode`]'s body; None if it is malformed.
    fn decode(body: &[u8]) -> Option<Command> {
        let mut fields = body.strip_suffix(&[0])?.split(|&b| b == 0);
        let mut next = || fields.next().and_then(|f| CString::new(f).ok());
        let count = |c: CString| c.to_str().ok()?.parse::<usize>().ok();
        let path = next()?;
        let cwd = next().filter(|c| !c.as_bytes().is_empty());
        let argc = count(next()?)?;
        let argv = (0..argc).map(|_| next()).collect::<Option<Vec<_>>>()?;
        let envc = count(next()?)?;
        let env = (0..envc)
            .map(|_| Some((next()?, next()?)))
            .collect::<Option<Vec<_>>>()?;
        if next().is_some() || argv.is_empty() {
            return None;
        }
        Some(Command {
            path,
            argv,
            env,
            cwd,
        })
    }
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

/// Which of the command's standard descriptors are pipes instead of the
/// slave: those whose counterpart in jit-session is not a terminal, as sudo
/// does. Input then ends when the user's ends, and output reaches files and
/// pipes as the command wrote it (no CR added by the PTY, stderr apart).
#[derive(Debug, Clone, Copy)]
pub struct Piped {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The parent's ends of the command's pipes.
#[derive(Default)]
pub struct Pipes {
    /// Write end: closing it is the end of the command's input.
    pub stdin: Option<OwnedFd>,
    /// Read ends.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// What [`spawn`] gives the parent.
pub struct Spawn {
    pub spawned: Spawned,
    pub master: OwnedFd,
    pub pipes: Pipes,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)
}

/// The pipes `piped` asks for: the parent's ends, and the command's (by
/// the descriptor each replaces).
fn pipes(piped: Piped) -> Result<(Pipes, [Option<OwnedFd>; 3]), SpawnError> {
    let mut parent = Pipes::default();
    let mut command: [Option<OwnedFd>; 3] = Default::default();
    if piped.stdin {
        let (r, w) = pipe()?;
        (parent.stdin, command[0]) = (Some(w), Some(r));
    }
    if piped.stdout {
        let (r, w) = pipe()?;
        (parent.stdout, command[1]) = (Some(r), Some(w));
    }
    if piped.stderr {
        let (r, w) = pipe()?;
        (parent.stderr, command[2]) = (Some(r), Some(w));
    }
    Ok((parent, command))
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
    /// Lets the monitor start `cmd`.
    pub fn go(&mut self, cmd: &Command) -> Result<(), SpawnError> {
        if let Some(fd) = self.go.take() {
            let msg = cmd.encode();
            if msg.len() - 4 > MAX_COMMAND {
                return Err(SpawnError::Go(nix::Error::E2BIG));
            }
            let mut rest = msg.as_slice();
            while !rest.is_empty() {
                match nix::unistd::write(&fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(SpawnError::Go(e)),
                }
            }
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
/// The slave end is closed in the parent, which gets the master back. The
/// command comes with [`Spawned::go`]; its standard descriptors are the
/// slave or, as `piped` says, pipes whose other ends the parent gets.
pub fn spawn(pty: Pty, piped: Piped) -> Result<Spawn, SpawnError> {
    let (pipes, command_ends) = pipes(piped)?;
    let (go_r, go_w) = pipe()?;
    let (st_r, st_w) = pipe()?;
    let parent = nix::unistd::getpid();
    // SAFETY: no other thread exists yet (main forks before starting any), so
    // the child may run arbitrary code; it never returns into the caller.
    match unsafe { nix::unistd::fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => {
            drop(go_w);
            drop(st_r);
            // Only the parent may hold them: the command sees the end of
            // its input once the parent closes it, the parent the end of
            // the output once the command's tree is gone.
            drop(pipes);
            let Pty { master, slave } = pty;
            drop(master);
            let code = monitor_main(parent, slave, command_ends, go_r, st_w);
            // SAFETY: _exit ends the process without running the parent's
            // atexit handlers or destructors twice.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(st_w);
            drop(pty.slave);
            drop(command_ends);
            let pidfd = pidfd_open(child).map_err(SpawnError::Pidfd)?;
            let spawned = Spawned {
                monitor: child,
                pidfd,
                go: Some(go_w),
                status: st_r,
            };
            Ok(Spawn {
                spawned,
                master: pty.master,
                pipes,
            })
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

/// Reads the go-ahead: the command to run (None: the parent refused or died).
fn read_command(go: &OwnedFd) -> Option<Command> {
    let read_exact = |buf: &mut [u8]| -> Option<()> {
        let mut done = 0;
        while done < buf.len() {
            match nix::unistd::read(go, &mut buf[done..]) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(nix::Error::EINTR) => {}
                Err(_) => return None,
            }
        }
        Some(())
    };
    let mut len = [0u8; 4];
    read_exact(&mut len)?;
    let len = usize::try_from(u32::from_le_bytes(len)).ok()?;
    if len > MAX_COMMAND {
        return None;
    }
    let mut body = vec![0u8; len];
    read_exact(&mut body)?;
    Command::decode(&body)
}

fn monitor_main(
    parent: Pid,
    slave: OwnedFd,
    command_ends: [Option<OwnedFd>; 3],
    go: OwnedFd,
    status: OwnedFd,
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
    // Allocating here is sound: the parent had no other thread when it forked.
    let Some(cmd) = read_command(&go) else {
        return 1; // the parent refused (no recording) or died
    };
    drop(go);
    let mut argv: Vec<*const libc::c_char> = cmd.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: the monitor is single-threaded (forked from a single-threaded
    // parent); the child execs or _exits.
    let command = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(status);
            let fds = command_ends
                .each_ref()
                .map(|end| end.as_ref().map_or(slave.as_fd(), AsFd::as_fd));
            command_main(slave.as_fd(), fds, &cmd, &argv)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => return 1,
    };
    drop(command_ends);
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

fn command_main(
    slave: BorrowedFd<'_>,
    std_fds: [BorrowedFd<'_>; 3],
    cmd: &Command,
    argv: &[*const libc::c_char],
) -> ! {
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
    for (target, source) in std_fds.iter().enumerate() {
        // SAFETY: dup2 onto the standard descriptors, which we own here.
        unsafe { libc::dup2(source.as_raw_fd(), target as RawFd) };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn the_go_ahead_carries_the_command_intact() {
        let cmd = Command {
            path: c("/bin/bash"),
            argv: vec![c("-bash"), c(""), c("a b\tc\u{e9}")],
            env: vec![(c("HOME"), c("/home/v")), (c("SHELL"), c(""))],
            cwd: Some(c("/home/v")),
        };
        let msg = cmd.encode();
        let len = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        assert_eq!(len, msg.len() - 4);
        let back = Command::decode(&msg[4..]).unwrap();
        assert_eq!(back.path, cmd.path);
        assert_eq!(back.argv, cmd.argv);
        assert_eq!(back.env, cmd.env);
        assert_eq!(back.cwd, cmd.cwd);

        let no_cwd = Command { cwd: None, ..cmd };
        assert_eq!(Command::decode(&no_cwd.encode()[4..]).unwrap().cwd, None);
    }

    /// Each field NUL-terminated.
    fn body(fields: &[&str]) -> Vec<u8> {
        fields.iter().flat_map(|f| f.bytes().chain([0])).collect()
    }

    #[test]
    fn a_malformed_go_ahead_runs_nothing() {
        for fields in [
            &["/bin/sh", ""][..],
            &["/bin/sh", "", "0", "0"],                // no argv
            &["/bin/sh", "", "1", "sh"],               // no envc
            &["/bin/sh", "", "1", "sh", "0", "extra"], // a field too many
            &["/bin/sh", "", "x", "sh", "0"],          // argc not a number
        ] {
            assert!(Command::decode(&body(fields)).is_none(), "{fields:?}");
        }
        assert!(Command::decode(b"").is_none());
        let good = body(&["/bin/sh", "", "1", "sh", "0"]);
        assert!(
            Command::decode(&good[..good.len() - 1]).is_none(),
            "not NUL-terminated"
        );
        assert!(Command::decode(&good).is_some());
    }
}
