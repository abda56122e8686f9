//! `jitctl recordings list|verify|export` and `jitctl shell|run` (play: `play.rs`).

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::client::{failure, Daemon1Proxy};
use super::render;
use super::{CliError, Exit};
use crate::api::{AuditView, RecordingView, RequestView};
use jit_recording::asciicast::Finished;

/// Where the packages install the recorder (and where the sudoers rule points).
pub const JIT_SESSION: &str = "/usr/libexec/jit/jit-session";

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, CliError> {
    serde_json::from_str(json)
        .map_err(|e| CliError::new(Exit::Failed, format!("unexpected reply from jitd: {e}")))
}

/// How long `--as` waits for jitd to check the account out once the grant
/// is active: a checkout takes tens of milliseconds, a failed one is
/// retried after 5 s (`accounts::keeper`'s first backoff).
const CHECKOUT_WAIT: Duration = Duration::from_secs(10);
/// Polls start quick and slow down to 4 a second: well inside jitd's
/// per-user call limits (10 a second, bursts of 50, by default).
const FIRST_POLL: Duration = Duration::from_millis(10);
const SLOWEST_POLL: Duration = Duration::from_millis(250);

/// Replaces jitctl with `sudo jit-session [-- CMD...]`, or with `--as`
/// `sudo -u ACCOUNT jit-session [-c 'CMD']` (a recorded login shell as the
/// account), after checking that `grant` (if named) is the caller's and
/// active, and with `--as` that it holds the account checked out (jitd
/// records a session as the account only then). sudo (with pam_jit in its
/// stack: for `-u ACCOUNT` the stack the sudoers `Defaults>ACCOUNT
/// pam_service=` names, gated by the account's resource) decides;
/// jit-session finds the grant from the PAM session.
pub async fn elevate(
    jitd: &Daemon1Proxy<'_>,
    grant: Option<u64>,
    account: Option<&str>,
    command: &[String],
) -> Result<Exit, CliError> {
    if let Some(id) = grant {
        let view = own_active_grant(jitd, id).await?;
        if let Some(account) = account {
            wait_for_checkout(jitd, view, account).await?;
        }
    } else if let Some(account) = account {
        let view = grant_holding(jitd, account).await?;
        wait_for_checkout(jitd, view, account).await?;
    }
    let mut sudo = std::process::Command::new("sudo");
    match account {
        None => {
            sudo.arg("--").arg(JIT_SESSION);
            if !command.is_empty() {
                sudo.arg("--").args(command);
            }
        }
        Some(account) => {
            sudo.args(["-u", account, "--", JIT_SESSION]);
            if !command.is_empty() {
                sudo.arg("-c").arg(shell_quoted(command));
            }
        }
    }
    let err = sudo.exec();
    Err(CliError::new(
        Exit::Failed,
        format!("cannot run sudo: {err}"),
    ))
}

fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Grant `id`, checked to be the caller's and active.
async fn own_active_grant(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<RequestView, CliError> {
    let view: RequestView = parse(&jitd.show(id).await.map_err(failure)?)?;
    if view.uid != my_uid() {
        return Err(CliError::new(
            Exit::Denied,
            format!("grant {id} is not yours"),
        ));
    }
    if view.state != "active" {
        return Err(CliError::new(
            Exit::Conflict,
            format!("grant {id} is {}, not active", view.state),
        ));
    }
    Ok(view)
}

/// The caller's active grant whose resource checks `account` out.
async fn grant_holding(jitd: &Daemon1Proxy<'_>, account: &str) -> Result<RequestView, CliError> {
    let active: Vec<RequestView> = parse(&jitd.list("active").await.map_err(failure)?)?;
    for mine in active.iter().filter(|g| g.uid == my_uid()) {
        let view: RequestView = parse(&jitd.show(mine.id).await.map_err(failure)?)?;
        if view.account.as_ref().is_some_and(|a| a.name == account) {
            return Ok(view);
        }
    }
    Err(no_grant_for(account))
}

fn no_grant_for(account: &str) -> CliError {
    CliError::new(
        Exit::Denied,
        format!(
            "no active grant of yours checks out {account}: request the resource whose \
             account it is (jitctl status lists what you may request)"
        ),
    )
}

/// Waits (bounded) until grant `view` holds `account` checked out.
async fn wait_for_checkout(
    jitd: &Daemon1Proxy<'_>,
    mut view: RequestView,
    account: &str,
) -> Result<(), CliError> {
    let until = Instant::now() + CHECKOUT_WAIT;
    let mut pause = FIRST_POLL;
    loop {
        match &view.account {
            Some(a) if a.name == account && a.checked_out => return Ok(()),
            Some(a) if a.name == account => {}
            _ => return Err(no_grant_for(account)),
        }
        if view.state != "active" {
            return Err(CliError::new(
                Exit::Conflict,
                format!("grant {} is {}, not active", view.id, view.state),
            ));
        }
        if Instant::now() >= until {
            return Err(CliError::new(
                Exit::Failed,
                format!(
                    "jitd has not checked {account} out to grant {} after {}s; see jitctl \
                     show {} (security is told when a checkout fails)",
                    view.id,
                    CHECKOUT_WAIT.as_secs(),
                    view.id
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(SLOWEST_POLL);
        view = parse(&jitd.show(view.id).await.map_err(failure)?)?;
    }
}

/// `command` as one line for `sh -c`, each word single-quoted.
fn shell_quoted(command: &[String]) -> String {
    command
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn recording_file(fd: zbus::OwnedFd) -> File {
    File::from(OwnedFd::from(fd))
}

/// Checks the file against the digest in the audit trail. Exit 0: intact
/// (the digest is jitd's, of the bytes the recorder sent); 1: edited, or no
/// digest yet; 7 ([`Exit::Unverified`]): it matches a digest jitd took of
/// the file as found, or a root recorder's own report, which vouch only for
/// what happened after.
pub async fn verify(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<Exit, CliError> {
    let (fd, json) = jitd.open_recording_file(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    let Some(expected) = view.sha256.clone() else {
        return Err(CliError::new(
            Exit::Failed,
            format!("recording {id} has no digest yet (still being recorded?)"),
        ));
    };
    let actual = Finished::of(recording_file(fd))
        .map(|f| f.sha256)
        .map_err(|e| CliError::new(Exit::Failed, format!("cannot read recording {id}: {e}")))?;
    if actual != expected {
        return Err(CliError::new(
            Exit::Failed,
            format!(
                "recording {id} does NOT match its digest in the audit trail: it was edited \
                 (expected {expected}, file has {actual})"
            ),
        ));
    }
    if view.vouched() {
        println!(
            "Recording {id} matches its digest in the audit trail: intact, as jitd received \
             the session ({expected})."
        );
        return Ok(Exit::Ok);
    }
    let whose = match view.digest_of.as_deref() {
        Some("file") => {
            "jitd took of the file as it found it, its writer gone (end abandoned); \
             changes made before then cannot be told"
        }
        _ => {
            "its root recorder reported (before jitd took the session's bytes itself); \
             changes made before the recording closed cannot be told"
        }
    };
    Err(CliError::new(
        Exit::Unverified,
        format!(
            "recording {id} matches its digest in the audit trail but is UNVERIFIED: the \
             digest is the one {whose} ({expected})"
        ),
    ))
}

pub async fn export(jitd: &Daemon1Proxy<'_>, id: u64, dir: &Path) -> Result<Exit, CliError> {
    let (fd, json) = jitd.open_recording_file(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    let events: Vec<AuditView> = parse(&jitd.audit(0).await.map_err(failure)?)?;
    let events: Vec<&AuditView> = events
        .iter()
        .filter(|e| e.request == Some(view.grant))
        .collect();
    let cast = dir.join(format!("recording-{id}.cast"));
    let sidecar = dir.join(format!("recording-{id}.json"));
    // Both are made before either is written: a refusal leaves nothing behind.
    let mut cast_file = create_new_private(&cast)?;
    let mut sidecar_file = create_new_private(&sidecar).inspect_err(|_| {
        let _ = std::fs::remove_file(&cast);
    })?;
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| CliError::new(Exit::Failed, format!("cannot write {path}: {e}"))
    };
    std::io::copy(&mut recording_file(fd), &mut cast_file).map_err(write_err(&cast))?;
    let doc = serde_json::json!({"recording": view, "audit": events});
    sidecar_file
        .write_all(render::json(&doc).as_bytes())
        .map_err(write_err(&sidecar))?;
    println!("Wrote {} and {}.", cast.display(), sidecar.display());
    Ok(Exit::Ok)
}

/// Creates `path` for the exporter alone (0600, a recording can hold
/// secrets), as a new file: never an existing one (no truncation), never
/// through a symbolic link in its place (O_EXCL refuses a link, dangling or
/// not; O_NOFOLLOW too). The refusal is a conflict (exit 6).
fn create_new_private(path: &Path) -> Result<File, CliError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| refusal(path, &e))
}

/// Why `path` could not be created: something in its place (a conflict),
/// or anything else.
fn refusal(path: &Path, e: &std::io::Error) -> CliError {
    let taken =
        e.kind() == std::io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ELOOP);
    let shown = path.display();
    if !taken {
        return CliError::new(Exit::Failed, format!("cannot create {shown}: {e}"));
    }
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    let what = if is_link {
        "is a symbolic link; export does not follow links"
    } else {
        "already exists; export does not overwrite"
    };
    CliError::new(
        Exit::Conflict,
        format!("{shown} {what} (remove it or choose another --out)"),
    )
}

#[cfg(test)]
mod tests {
    use super::shell_quoted;

    #[test]
    fn a_command_is_quoted_word_by_word_for_the_login_shell() {
        let words = ["psql", "-c", "select 'x'; drop"].map(String::from);
        assert_eq!(
            shell_quoted(&words),
            r"'psql' '-c' 'select '\''x'\''; drop'"
        );
    }
}
