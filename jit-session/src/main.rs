//! jit-session: a recorded session. Run through sudo (`jitctl shell` /
//! `jitctl run`), it records a root session into the file jitd creates; as
//! the login shell of a non-root account, it runs the real shell and sends the
//! recording to jitd through a pipe (see `jit_session::pipe`). See design.md,
//! "Recordings".

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use jit_session::jitd::{self, BusJitd, Jitd, NoEvents, OnFailure, OpenRequest};
use jit_session::record::Recording;
use jit_session::session::{End, Expiry};
use jit_session::{asciicast, monitor, pipe, pty, relay};

/// Grace between SIGHUP and SIGKILL when a session is ended.
const GRACE: Duration = Duration::from_millis(500);

#[derive(Parser)]
#[command(
    name = "jit-session",
    about = "A recorded session: started by 'jitctl shell' / 'jitctl run' through sudo, \
             or as the login shell of an account gated by pam_jit"
)]
struct Args {
    /// Tests and benchmarks only (needs euid 0): relay and record into FILE
    /// without jitd; the header's `jit` field is {"standalone": true}.
    #[arg(long, value_name = "FILE", hide = true)]
    standalone_record: Option<PathBuf>,
    /// As a login shell: run COMMAND with the real shell (`ssh host COMMAND`).
    #[arg(short = 'c', value_name = "COMMAND")]
    login_command: Option<OsString>,
    /// The command (default: the target user's login shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

/// How this run records.
enum Mode {
    /// Root through sudo: jitd creates the file, jit-session writes it.
    Sudo,
    /// Tests only: a file of root's choosing, no jitd.
    Standalone(PathBuf),
    /// A non-root login shell: jitd holds the file; events go through a pipe.
    Login(Option<OsString>),
}

/// The recording, opened.
struct Opened {
    out: File,
    /// The header to write first (None: jitd wrote it).
    header_jit: Option<serde_json::Value>,
    record_input: bool,
    on_failure: OnFailure,
    expiry: Option<Expiry>,
    bus: Option<BusJitd>,
    close: Close,
    /// The command, when only jitd's answer decides it (login shells).
    command: Option<monitor::Command>,
}

/// How the recording is closed at the end.
enum Close {
    Nothing,
    /// CloseRecording with the digest (sudo mode).
    Jitd(u64),
    /// The end line into the pipe; jitd hashes the file (login shells).
    EndLine,
}

fn cstr(s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| "an argument contains a NUL byte".to_string())
}

/// Who runs the command, from the password database.
struct Account {
    name: String,
    home: PathBuf,
}

fn account(uid: nix::unistd::Uid) -> Option<(Account, PathBuf)> {
    let u = nix::unistd::User::from_uid(uid).ok().flatten()?;
    Some((
        Account {
            name: u.name,
            home: u.dir,
        },
        u.shell,
    ))
}

/// `shell` as a login shell (argv[0] "-NAME") in the account's home, or
/// `shell -c COMMAND`, with HOME, SHELL, USER and LOGNAME set.
fn shell_command(
    shell: &Path,
    who: &Account,
    command: Option<&OsStr>,
) -> Result<monitor::Command, String> {
    let base = shell
        .file_name()
        .map(|b| b.as_bytes().to_vec())
        .unwrap_or_else(|| b"sh".to_vec());
    let path = cstr(shell.as_os_str().as_bytes())?;
    let argv = match command {
        None => {
            let mut argv0 = b"-".to_vec();
            argv0.extend_from_slice(&base);
            vec![cstr(&argv0)?]
        }
        Some(c) => vec![cstr(&base)?, cstr(b"-c")?, cstr(c.as_bytes())?],
    };
    let home = who.home.as_os_str().as_bytes();
    let env = vec![
        (cstr(b"HOME")?, cstr(home)?),
        (cstr(b"SHELL")?, path.clone()),
        (cstr(b"USER")?, cstr(who.name.as_bytes())?),
        (cstr(b"LOGNAME")?, cstr(who.name.as_bytes())?),
    ];
    Ok(monitor::Command {
        path,
        argv,
        env,
        cwd: Some(cstr(home)?),
    })
}

/// The command to run through sudo, and the header's `command` and `SHELL`.
fn plan(args: &[OsString]) -> Result<(monitor::Command, String, String), String> {
    if args.is_empty() {
        let (who, shell) = account(nix::unistd::geteuid()).unwrap_or((
            Account {
                name: "root".into(),
                home: "/".into(),
            },
            PathBuf::new(),
        ));
        let shell = if shell.as_os_str().is_empty() {
            PathBuf::from("/bin/sh")
        } else {
            shell
        };
        let shown = shell.to_string_lossy().into_owned();
        Ok((shell_command(&shell, &who, None)?, shown.clone(), shown))
    } else {
        let argv = args
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let shown = args
            .iter()
            .map(|a| quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        Ok((
            monitor::Command {
                path: argv[0].clone(),
                argv,
                env: vec![],
                cwd: None,
            },
            shown,
            shell,
        ))
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn fail(msg: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("jit-session: {msg}");
    ExitCode::from(code)
}

/// Opens the file jitd created for us: an existing regular file, no symlink.
fn open_recording_file(path: &std::path::Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() || ft.is_fifo() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// The same uid as the user must not ptrace jit-session or open its
/// descriptors through /proc (the pipe to jitd): not dumpable. Inherited by
/// the monitor; the command's exec resets it.
fn not_dumpable() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "cannot protect the recorder: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Which mode the invocation asks for, or why it is refused.
fn mode(args: &Args, root: bool) -> Result<Mode, String> {
    if !root {
        if args.standalone_record.is_some() || !args.command.is_empty() {
            return Err("as a login shell jit-session takes only '-c COMMAND'; \
                 for a root session use 'jitctl shell'"
                .into());
        }
        return Ok(Mode::Login(args.login_command.clone()));
    }
    if args.login_command.is_some() {
        return Err("'-c' is for the login shells of non-root accounts".into());
    }
    // Through sudo, only recorded sessions: sudo puts SUDO_UID in the
    // command's environment and the user cannot take it out, so the
    // test-only mode (no jitd, a file of the caller's choosing) stays out of
    // reach of the sudoers rule that lets gated users start jit-session.
    match &args.standalone_record {
        Some(_) if std::env::var_os("SUDO_UID").is_some() => {
            Err("--standalone-record is for tests run by root, not through sudo".into())
        }
        Some(file) => Ok(Mode::Standalone(file.clone())),
        None => Ok(Mode::Sudo),
    }
}

fn open_standalone(file: &Path) -> Result<Opened, String> {
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(file)
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    Ok(Opened {
        out,
        header_jit: Some(serde_json::json!({ "standalone": true })),
        record_input: false,
        on_failure: OnFailure::Terminate,
        expiry: None,
        bus: None,
        close: Close::Nothing,
        command: None,
    })
}

fn open_sudo(req: &OpenRequest) -> Result<Opened, String> {
    let mut j = BusJitd::connect().map_err(|e| e.to_string())?;
    let o = j.open_recording(req).map_err(|e| e.to_string())?;
    let out = open_recording_file(&o.path)
        .map_err(|e| format!("cannot open the recording {}: {e}", o.path.display()))?;
    Ok(Opened {
        out,
        header_jit: Some(o.metadata),
        record_input: o.record_input,
        on_failure: o.on_failure,
        expiry: Some(Expiry::new(o.grant, Some(o.expires_at))),
        bus: Some(j),
        close: Close::Jitd(o.recording),
        command: None,
    })
}

/// jitd finds the grant from our bus credentials (uid, and the PAM
/// session's cgroup our pid is in), writes the header and hands us a pipe.
fn open_login(req: &OpenRequest, command: Option<&OsStr>) -> Result<Opened, String> {
    // Before jitd starts a recording: nothing to run without an account.
    let (who, _) =
        account(nix::unistd::getuid()).ok_or("this account is not in the password database")?;
    let mut j = BusJitd::connect().map_err(|e| e.to_string())?;
    let o = j.open_login_recording(req).map_err(|e| e.to_string())?;
    let command = shell_command(&o.shell, &who, command)?;
    Ok(Opened {
        out: File::from(o.pipe),
        header_jit: None,
        record_input: o.record_input,
        on_failure: o.on_failure,
        expiry: Some(Expiry::new(o.grant, Some(o.expires_at))),
        bus: Some(j),
        close: Close::EndLine,
        command: Some(command),
    })
}

fn main() -> ExitCode {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        if let Err(e) = not_dumpable() {
            return fail(e, 1);
        }
    }
    let args = Args::parse();
    let mode = match mode(&args, root) {
        Ok(m) => m,
        Err(e) => return fail(e, 2),
    };
    // A login shell's command depends on jitd's answer; the others' are known now.
    let (command, shown, shell) = match &mode {
        Mode::Login(c) => (
            None,
            c.as_ref()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            String::new(),
        ),
        _ => match plan(&args.command) {
            Ok((c, shown, shell)) => (Some(c), shown, shell),
            Err(e) => return fail(e, 2),
        },
    };
    let stdin = std::io::stdin();
    let tty_in = pty::is_tty(stdin.as_fd());
    let settings = tty_in
        .then(|| nix::sys::termios::tcgetattr(stdin.as_fd()).ok())
        .flatten();
    let size = pty::user_winsize()
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .unwrap_or(pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });

    // Everything that forks happens before any thread exists.
    let handled = monitor::handled_signals();
    if let Err(e) = handled.thread_block() {
        return fail(format!("cannot block signals: {e}"), 1);
    }
    let pair = match pty::open(Some(&size), settings.as_ref()) {
        Ok(p) => p,
        Err(e) => return fail(e, 1),
    };
    // What is not a terminal (a pipe, a file, /dev/null) is a pipe to the
    // command, as with sudo: input ends, output stays as written.
    let tty_out = pty::is_tty(std::io::stdout().as_fd());
    let piped = monitor::Piped {
        stdin: !tty_in,
        stdout: !tty_out,
        stderr: !pty::is_tty(std::io::stderr().as_fd()),
    };
    let monitor::Spawn {
        mut spawned,
        master,
        pipes,
    } = match monitor::spawn(pair, piped) {
        Ok(s) => s,
        Err(e) => return fail(e, 1),
    };
    // Output redirected from a terminal: the PTY's own output (echoes,
    // prompts) and the notices still belong on the terminal.
    let terminal = if tty_in && !tty_out {
        File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/tty")
            .ok()
            .map(OwnedFd::from)
    } else {
        None
    };
    let signals =
        match SignalFd::with_flags(&handled, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(s) => s,
            Err(e) => {
                spawned.kill_and_reap();
                return fail(format!("cannot watch signals: {e}"), 1);
            }
        };

    // The recording (threads may start from here on).
    let term = std::env::var("TERM").unwrap_or_default();
    let req = OpenRequest {
        cols: size.ws_col.into(),
        rows: size.ws_row.into(),
        command: shown.clone(),
        term: term.clone(),
        shell: shell.clone(),
    };
    let opened = match &mode {
        Mode::Standalone(file) => open_standalone(file),
        Mode::Sudo => open_sudo(&req),
        Mode::Login(c) => open_login(&req, c.as_deref()),
    };
    let mut opened = match opened {
        Ok(o) => o,
        Err(e) => {
            // The monitor never got the go-ahead: the command never ran.
            spawned.kill_and_reap();
            return fail(format!("{e}; not starting an unrecorded session"), 1);
        }
    };
    let Some(command) = opened.command.take().or(command) else {
        spawned.kill_and_reap();
        return fail("no command to run", 1);
    };
    let pipe = match opened.close {
        Close::EndLine => opened.out.try_clone().ok().map(OwnedFd::from),
        Close::Nothing | Close::Jitd(_) => None,
    };
    let start = Instant::now();
    let recorder = match opened.header_jit.take() {
        Some(jit) => {
            let header = asciicast::Header {
                width: size.ws_col,
                height: size.ws_row,
                timestamp: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
                command: shown,
                term,
                shell,
                jit,
            };
            asciicast::Recorder::new(opened.out, &header, start)
        }
        None => Ok(asciicast::Recorder::events_only(opened.out, start)),
    };
    let recorder = match recorder.and_then(Recording::start) {
        Ok(r) => r,
        Err(e) => {
            spawned.kill_and_reap();
            return fail(e, 1);
        }
    };
    let guard = if tty_in {
        match pty::RawGuard::enter(stdin.as_fd()) {
            Ok(g) => Some(g),
            Err(e) => {
                spawned.kill_and_reap();
                return fail(e, 1);
            }
        }
    } else {
        None
    };
    if let Err(e) = spawned.go(&command) {
        drop(guard);
        spawned.kill_and_reap();
        return fail(e, 1);
    }
    let mut no_events = NoEvents;
    let events: &mut dyn jitd::Events = match opened.bus.as_mut() {
        Some(b) => b,
        None => &mut no_events,
    };
    let (outcome, recorder, spawned) = relay::run(relay::Relay {
        master,
        spawned,
        recorder,
        record_input: opened.record_input,
        on_failure: opened.on_failure,
        expiry: opened.expiry,
        events,
        grace: GRACE,
        pipes,
        notices: match (tty_out, &terminal) {
            (true, _) => relay::Sink::Stdout,
            (false, Some(_)) => relay::Sink::Terminal,
            (false, None) => relay::Sink::Stderr,
        },
        terminal,
        signals,
        pipe,
    });
    spawned.kill_and_reap();
    drop(guard);

    let (finished, out, problem) = match recorder.finish() {
        Ok((f, out)) => (f, Some(out), outcome.record_error.clone()),
        Err((e, f)) => (
            f,
            None,
            outcome.record_error.clone().or(Some(e.to_string())),
        ),
    };
    let end = if problem.is_some() && outcome.end == End::Exit {
        End::WriteFailed
    } else {
        outcome.end
    };
    let closed = match (&opened.close, opened.bus.as_mut(), out) {
        (Close::Jitd(id), Some(j), _) => j
            .close_recording(*id, &finished.sha256, finished.bytes, end)
            .map_err(|e| e.to_string()),
        // A pipe that failed was closed by jitd, which recorded why.
        (Close::EndLine, _, Some(mut pipe)) => pipe
            .write_all(&pipe::end_line(end))
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    };
    if let Err(e) = closed {
        eprintln!("jit-session: cannot close the recording with jitd: {e}");
    }
    let code = match outcome.status {
        Some(s) => s.code(),
        None => 1,
    };
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
