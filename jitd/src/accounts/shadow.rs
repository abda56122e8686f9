//! Local accounts' password fields through shadow-utils, as admins change
//! them: `chpasswd -e` reads `name:field` on its standard input (never
//! argv or the environment, which /proc shows) and replaces `/etc/shadow`
//! under shadow-utils' own lock. The field is a hash jitd made
//! ([`super::crypt`]), `!` in front to lock it: a rotation and its lock
//! are one replacement. Writing `/etc/shadow` ourselves would mean the lock
//! protocol, backups and SELinux labels of our own. Every change is
//! verified by reading the entry back, byte for byte.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::core::password::Secret;

const CHPASSWD: &str = "/usr/sbin/chpasswd";
const PASSWD_FILE: &str = "/etc/passwd";
const SHADOW_FILE: &str = "/etc/shadow";
/// How long a shadow-utils program may take (it waits for the lock others
/// hold).
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);
/// Enough of a tool's complaint for the log.
const STDERR_MAX: usize = 512;
/// The most of a tool's output read (`nft -j list` of jit's table).
const STDOUT_MAX: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("'{0}' is not a local account (no line in /etc/passwd and /etc/shadow)")]
    NotLocal(String),
    #[error("'{0}' is not a local group (no line in /etc/group)")]
    NotLocalGroup(String),
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{tool} did not finish within {after:?}; killed")]
    Timeout { tool: &'static str, after: Duration },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("account '{name}': {what}")]
    Verify { name: String, what: &'static str },
}

/// `name`'s password field in `/etc/shadow` (`!` in front when locked),
/// if the account is local: in `/etc/passwd` too (an NSS account from a
/// directory is not ours to manage), with `x` there (pam_unix would take a
/// password field in `/etc/passwd` instead of the shadow one). The files
/// are read as bytes: any user can put bytes that are not UTF-8 in their
/// own line (chfn), and that must not stop jitd from reading root's.
pub fn field(name: &str) -> Result<Secret, AccountError> {
    let not_local = || AccountError::NotLocal(name.to_owned());
    let passwd = std::fs::read(PASSWD_FILE)?;
    match field_of(&passwd, name) {
        Some(b"x") => {}
        Some(_) => {
            return Err(AccountError::Verify {
                name: name.to_owned(),
                what: "its password is in /etc/passwd, not 'x' pointing to /etc/shadow",
            })
        }
        None => return Err(not_local()),
    }
    let shadow = Zeroizing::new(std::fs::read(SHADOW_FILE)?);
    let field = field_of(&shadow, name).ok_or_else(not_local)?;
    let field = std::str::from_utf8(field).map_err(|_| AccountError::Verify {
        name: name.to_owned(),
        what: "its /etc/shadow password field is not text",
    })?;
    Ok(Secret::new(field.to_owned()))
}

/// The field after the name on `name`'s line of a colon-separated file.
fn field_of<'a>(text: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields_of(text, name).map(|fields| fields.first().copied().unwrap_or_default())
}

/// The fields after the name on `name`'s line of a colon-separated file
/// (`/etc/passwd`, `/etc/shadow`, `/etc/group`), read as bytes.
pub(super) fn fields_of<'a>(text: &'a [u8], name: &str) -> Option<Vec<&'a [u8]>> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b':');
        (fields.next() == Some(name.as_bytes())).then(|| fields.collect())
    })
}

/// Sets `name`'s password field to `field` (a hash, `!` in front to lock
/// it) and checks that `/etc/shadow` holds exactly that.
pub fn set_field(name: &str, field: &Secret) -> Result<(), AccountError> {
    self::field(name)?;
    let line = Zeroizing::new(format!("{name}:{}\n", field.expose()));
    run(CHPASSWD, "chpasswd", &["-e"], Some(line.as_bytes()))?;
    if self::field(name)?.expose() != field.expose() {
        return Err(AccountError::Verify {
            name: name.to_owned(),
            what: "chpasswd succeeded but /etc/shadow does not hold the new password field",
        });
    }
    Ok(())
}

/// Runs a shadow-utils program with a clean environment, `input` on its
/// standard input, within [`TOOL_TIMEOUT`].
pub(super) fn run(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<(), AccountError> {
    run_tool(path, tool, args, input, false, TOOL_TIMEOUT).map(drop)
}

/// [`run`] for a program whose work grows with what it is given (an
/// archive of a home), allowed `timeout`.
pub(super) fn run_for(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    timeout: Duration,
) -> Result<(), AccountError> {
    run_tool(path, tool, args, None, false, timeout).map(drop)
}

/// [`run`], and what the program wrote on its standard output (at most
/// [`STDOUT_MAX`] bytes: the rest is discarded).
pub(super) fn run_read(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<Vec<u8>, AccountError> {
    run_tool(path, tool, args, input, true, TOOL_TIMEOUT)
}

/// [`run_read`] for a program that reads what it is given (the
/// standing-privilege scan's `cvtsudoers` and `sshd -T`), allowed
/// `timeout`.
pub(crate) fn run_read_within(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    timeout: Duration,
) -> Result<Vec<u8>, AccountError> {
    run_tool(path, tool, args, None, true, timeout)
}

fn run_tool(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
    read: bool,
    timeout: Duration,
) -> Result<Vec<u8>, AccountError> {
    if !Path::new(path).exists() {
        return Err(AccountError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{path} is missing"),
        )));
    }
    let mut command = Command::new(path);
    // A jitd killed while the tool waits for shadow-utils' lock must not
    // leave it to write after the next jitd has locked the account: the
    // tool dies with the thread that started it.
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(io::Error::from)
        });
    }
    let mut child = command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if read { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()?;
    // Read on a thread of its own while the program runs: a full pipe
    // would otherwise stall it until the timeout. Killed at the timeout,
    // the program closes the pipe and the thread ends.
    let reader = child.stdout.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut pipe = pipe;
            let _ = (&mut pipe).take(STDOUT_MAX).read_to_end(&mut out);
            // Drain what is over the limit so the program can finish.
            let _ = io::copy(&mut pipe, &mut io::sink());
            out
        })
    });
    // Its complaints too, on a thread: a program that says much (tar over
    // a home of sockets) would otherwise stall on a full pipe.
    let complaints = child.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let mut pipe = pipe;
            let _ = (&mut pipe).take(STDERR_MAX as u64).read_to_end(&mut text);
            let _ = io::copy(&mut pipe, &mut io::sink());
            String::from_utf8_lossy(&text).into_owned()
        })
    });
    // Written, then closed; a failed write (the program exited early) is
    // reported after the wait, with what the program said.
    let written = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => stdin.write_all(input),
        _ => Ok(()),
    };
    let status = wait(&mut child, tool, timeout)?;
    let out = reader
        .map(|r| r.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = complaints
        .map(|c| c.join().unwrap_or_default())
        .unwrap_or_default();
    if status.success() {
        written?;
        return Ok(out);
    }
    let stderr: String = stderr
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(STDERR_MAX)
        .collect();
    Err(AccountError::Tool {
        tool,
        status: status.to_string(),
        stderr,
    })
}

fn wait(
    child: &mut Child,
    tool: &'static str,
    after: Duration,
) -> Result<std::process::ExitStatus, AccountError> {
    let deadline = Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AccountError::Timeout { tool, after });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
