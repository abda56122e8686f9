//! Local accounts' password fields through shadow-utils, as admins change
//! them: `chpasswd -e` reads `name:field` on its standard input (never
//! argv or the environment, which /proc shows) and replaces `/etc/shadow`
//! under shadow-utils' own lock. The field is a hash jitd made
//! ([`super::crypt`]), `!` in front to lock it: a rotation and its lock
//! are one replacement. Writing `/etc/shadow` ourselves would mean the lock
//! protocol, backups and SELinux labels of our own. Every change is
//! verified by reading the entry back, byte for byte.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHPASSWD: &str = "/usr/sbin/chpasswd";
const PASSWD_FILE: &str = "/etc/passwd";
const SHADOW_FILE: &str = "/etc/shadow";
/// How long a shadow-utils program may take (it waits for the lock others
/// hold).
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);
/// Enough of a tool's complaint for the log.
const STDERR_MAX: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("'{0}' is not a local account (no line in /etc/passwd and /etc/shadow)")]
    NotLocal(String),
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{tool} did not finish within {TOOL_TIMEOUT:?}; killed")]
    Timeout { tool: &'static str },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("account '{name}': {what}")]
    Verify { name: String, what: &'static str },
}

/// An account's `/etc/shadow` password field.
#[derive(Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    /// `!` in front: no password opens it (the account itself still runs).
    pub locked: bool,
    /// The field without its lock marks: the hash, `*`, or empty.
    pub hash: String,
}

impl std::fmt::Debug for ShadowEntry {
    /// Never the hash: it is as good as the password to an offline attack.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowEntry")
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

/// `name`'s entry in `/etc/shadow`, if the account is local (in
/// `/etc/passwd` too: an NSS account from a directory is not ours to manage).
pub fn entry(name: &str) -> Result<ShadowEntry, AccountError> {
    let not_local = || AccountError::NotLocal(name.to_owned());
    let passwd = std::fs::read_to_string(PASSWD_FILE)?;
    fields_after(&passwd, name).ok_or_else(not_local)?;
    let shadow = zeroize::Zeroizing::new(std::fs::read_to_string(SHADOW_FILE)?);
    let field = fields_after(&shadow, name)
        .ok_or_else(not_local)?
        .next()
        .unwrap_or_default();
    Ok(ShadowEntry {
        locked: field.starts_with('!'),
        hash: field.trim_start_matches('!').to_owned(),
    })
}

/// The fields after the name on `name`'s line of a colon-separated file.
fn fields_after<'a>(text: &'a str, name: &str) -> Option<std::str::Split<'a, char>> {
    text.lines()
        .map(|l| l.split(':'))
        .find_map(|mut fields| (fields.next() == Some(name)).then_some(fields))
}

impl ShadowEntry {
    /// The field as `/etc/shadow` holds it.
    fn field(&self) -> String {
        format!("{}{}", if self.locked { "!" } else { "" }, self.hash)
    }
}

/// Sets `name`'s password field to `field` (a hash, `!` in front to lock
/// it) and checks that `/etc/shadow` holds exactly that.
pub fn set_field(name: &str, field: &str) -> Result<(), AccountError> {
    entry(name)?;
    let line = zeroize::Zeroizing::new(format!("{name}:{field}\n"));
    run(CHPASSWD, "chpasswd", &["-e"], Some(line.as_bytes()))?;
    let written = zeroize::Zeroizing::new(entry(name)?.field());
    if *written != field {
        return Err(AccountError::Verify {
            name: name.to_owned(),
            what: "chpasswd succeeded but /etc/shadow does not hold the new password field",
        });
    }
    Ok(())
}

/// Runs a shadow-utils program with a clean environment, `input` on its
/// standard input, within [`TOOL_TIMEOUT`].
fn run(
    path: &'static str,
    tool: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<(), AccountError> {
    if !Path::new(path).exists() {
        return Err(AccountError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{path} is missing (the passwd package)"),
        )));
    }
    let mut child = Command::new(path)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input)?;
    }
    let status = wait(&mut child, tool)?;
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
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

fn wait(child: &mut Child, tool: &'static str) -> Result<std::process::ExitStatus, AccountError> {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AccountError::Timeout { tool });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
