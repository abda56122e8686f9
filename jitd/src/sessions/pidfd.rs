//! Signalling and watching processes through pidfds, so a recycled pid is
//! never hit (threat T5): a pidfd names one process for its whole life.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub struct Pidfd(OwnedFd);

impl Pidfd {
    pub fn open(pid: u32) -> io::Result<Pidfd> {
        let pid =
            libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor; we own it.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// The process at the other end of a Unix socket, as the kernel knew it
    /// at connect(2) (SO_PEERPIDFD, Linux 6.5): unlike the peer's pid, it
    /// cannot name another process that reused the pid after the caller
    /// exited (T5). None on a kernel without it. Its pid is the one
    /// SO_PEERCRED reports: both are taken at connect(2).
    pub fn of_socket_peer(socket: BorrowedFd<'_>) -> io::Result<Option<Pidfd>> {
        let mut raw: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes into `raw`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERPIDFD,
                (&mut raw as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOPROTOOPT) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: the kernel just gave us this descriptor; we own it.
        Ok(Some(Pidfd(unsafe { OwnedFd::from_raw_fd(raw) })))
    }

    /// Another descriptor for the same process.
    pub fn try_clone(&self) -> io::Result<Pidfd> {
        Ok(Pidfd(self.0.try_clone()?))
    }

    /// Sends `signal`; a process that already exited is not an error.
    pub fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(2) with a valid pidfd, no siginfo, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether the process has exited (the pidfd polls readable from then on).
    pub fn exited(&self) -> io::Result<bool> {
        let mut poll = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut poll, 1, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(poll.revents & libc::POLLIN != 0)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A running process, held by a pidfd, with its start time: (pid, start
/// time) names one process across jitd restarts, as polkit's subjects do.
pub struct Process {
    pub pid: u32,
    /// Clock ticks after boot (`/proc/PID/stat`, field 22).
    pub started: u64,
    pub fd: Pidfd,
}

impl Process {
    /// Holds `pid`, which must be running.
    pub fn hold(pid: u32) -> io::Result<Process> {
        let fd = Pidfd::open(pid)?;
        let started = start_time(pid)?;
        // /proc/PID was read after the pidfd was taken: if the process still
        // runs now, both named the same one.
        if fd.exited()? {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(Process { pid, started, fd })
    }

    /// `pid`, held by `fd`, a pidfd that names it (one the kernel gave for a
    /// socket's peer, [`Pidfd::of_socket_peer`]); an error if it has exited.
    pub fn from_pidfd(fd: Pidfd, pid: u32) -> io::Result<Process> {
        let started = start_time(pid)?;
        // /proc/PID was read after the pidfd was taken: if the process still
        // runs now, both named the same one.
        if fd.exited()? {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(Process { pid, started, fd })
    }

    /// Another handle on the same process.
    #[cfg(test)]
    pub fn try_clone(&self) -> io::Result<Process> {
        Ok(Process {
            pid: self.pid,
            started: self.started,
            fd: self.fd.try_clone()?,
        })
    }

    /// Holds `pid` if it still is the process that started at `started`.
    pub fn find(pid: u32, started: u64) -> Option<Process> {
        Process::hold(pid).ok().filter(|p| p.started == started)
    }

    /// Whether the process still runs (an error counts as not running).
    pub fn is_running(&self) -> bool {
        matches!(self.fd.exited(), Ok(false))
    }
}

/// `SO_PEERPIDFD` from <asm-generic/socket.h> (the libc crate has no name for it yet).
const SO_PEERPIDFD: libc::c_int = 77;

/// More than the longest `/proc/PID/stat` line: 52 fields of at most 20
/// digits, and a command name of at most 16 bytes.
const STAT_MAX: usize = 1280;

/// Field 22 of `/proc/PID/stat`, read with one read(2): this sits on every
/// sudo's session registration (`read_to_string` takes six).
pub fn start_time(pid: u32) -> io::Result<u64> {
    stat_number(pid, 22)
}

/// The pids of the processes running now (`/proc`'s numeric entries).
pub fn running_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// The parent of `pid` (field 4 of its `/proc/PID/stat`).
pub fn parent_of(pid: u32) -> io::Result<u32> {
    let parent = stat_number(pid, 4)?;
    u32::try_from(parent).map_err(|_| io::Error::other(format!("/proc/{pid}/stat: bad parent")))
}

/// Field `n` of `/proc/PID/stat`, a number. The command name is anybody's
/// bytes: it need not be UTF-8.
fn stat_number(pid: u32, n: usize) -> io::Result<u64> {
    let mut buf = [0u8; STAT_MAX];
    let read = std::fs::File::open(format!("/proc/{pid}/stat"))?.read(&mut buf)?;
    Some(String::from_utf8_lossy(&buf[..read]))
        .filter(|_| read < buf.len())
        .and_then(|stat| stat_field(&stat, n)?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no field {n}")))
}

/// Field `n` (numbered from 1, as in proc(5)) of a `/proc/PID/stat` line.
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted after its last ')'.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(n.checked_sub(3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_peer_is_held_as_the_process_that_connected() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let me = Process::hold(std::process::id()).unwrap();
        match Pidfd::of_socket_peer(ours.as_fd()).unwrap() {
            // Linux 6.5 and later.
            Some(fd) => {
                let peer = Process::from_pidfd(fd, me.pid).unwrap();
                assert_eq!((peer.pid, peer.started), (me.pid, me.started));
                let copy = peer.try_clone().unwrap();
                assert!(copy.is_running() && copy.pid == me.pid);
            }
            None => eprintln!("skipped: no SO_PEERPIDFD on this kernel"),
        }
        drop(theirs);
    }

    #[test]
    fn a_pidfd_of_an_exited_process_holds_nothing() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = Pidfd::open(child.id()).unwrap();
        child.wait().unwrap();
        assert!(Process::from_pidfd(fd, child.id()).is_err());
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("7"));
        assert_eq!(stat_field(stat, 22), Some("987654"));
        assert_eq!(stat_field("42 (short) S 1", 22), None);
        assert_eq!(stat_field("garbage", 4), None);
    }

    #[test]
    fn holds_a_running_process_and_sees_it_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let process = Process::hold(child.id()).expect("hold");
        assert!(!process.fd.exited().unwrap());
        assert!(Process::find(child.id(), process.started).is_some());
        assert!(Process::find(child.id(), process.started + 1).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(process.fd.exited().unwrap());
        assert!(!process.is_running());
        assert!(Process::find(child.id(), process.started).is_none());
    }

    #[test]
    fn holds_a_process_whose_name_is_not_utf8_and_has_a_parenthesis() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        // The command name is the name the program was started by.
        let link = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"sl\xffep ) 1 2"));
        std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
        let mut child = std::process::Command::new(&link).arg("30").spawn().unwrap();
        let held = Process::hold(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        let started = held.expect("hold").started;
        assert!(started > 0);
    }
}
