//! jit-session: a recorded session. Run through sudo (`jitctl shell` /
//! `jitctl run`) it records a root session; as the login shell of a non-root
//! account it runs the real shell. Either way the recording goes to jitd
//! through a pipe (see `jit_recording::pipe`): jitd writes the file and
//! computes its digest. See docs/design.md, "Recordings".

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use jit_recording::{asciicast, End};
use jit_session::jitd::{self, BusJitd, Jitd, NoEvents, OnFailure, OpenRequest};
use jit_session::record::Recording;
use jit_session::session::Expiry;
use jit_session::{monitor, pty, relay, standalone};

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

/// How this run records. Each sends events through a pipe to whoever
/// writes the file (jitd, or the standalone mode's child).
enum Mode {
    /// Root through sudo.
    Sudo,
    /// Tests only: a file of root's choosing, no jitd.
    Standalone(PathBuf),
    /// A non-root login shell.
    Login(Option<OsString>),
}

/// The recording, opened.
struct Opened {
    /// The write end of the recording's pipe.
    out: File,
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
    /// CloseRecording: jitd seals the recording with its own digest.
    Jitd(u64),
    /// The standalone child seals it when the pipe ends.
    Standalone(standalone::Child),
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

/// The header the standalone child writes (jitd writes the others').
fn standalone_header(
    size: &pty::Winsize,
    command: &str,
    term: &str,
    shell: &str,
) -> asciicast::Header {
    asciicast::Header {
        width: size.ws_col,
        height: size.ws_row,
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        command: command.into(),
        term: term.into(),
        shell: shell.into(),
        jit: serde_json::json!({ "standalone": true }),
    }
}

fn opened_standalone((pipe, child): (OwnedFd, standalone::Child)) -> Opened {
    Opened {
        out: File::from(pipe),
        record_input: false,
        on_failure: OnFailure::Terminate,
        expiry: None,
        bus: None,
        close: Close::Standalone(child),
        command: None,
    }
}

/// jitd finds the grant and the session from our bus credentials (the PAM
/// session's cgroup our process is in, and the session's process among our
/// ancestors), writes the header and hands us a pipe.
fn open_sudo(req: &OpenRequest) -> Result<Opened, String> {
    let mut j = BusJitd::connect().map_err(|e| e.to_string())?;
    let o = j.open_recording(req).map_err(|e| e.to_string())?;
    Ok(Opened {
        out: File::from(o.pipe),
        record_input: o.record_input,
        on_failure: o.on_failure,
        expiry: Some(Expiry::new(o.grant, Some(o.expires_at))),
        bus: Some(j),
        close: Close::Jitd(o.recording),
        command: None,
    })
}

/// As [`open_sudo`]; our uid must be the grant's holder.
fn open_login(req: &OpenRequest, command: Option<&OsStr>) -> Result<Opened, String> {
    // Before jitd starts a recording: nothing to run without an account.
    let (who, _) =
        account(nix::unistd::getuid()).ok_or("this account is not in the password database")?;
    let mut j = BusJitd::connect().map_err(|e| e.to_string())?;
    let o = j.open_login_recording(req).map_err(|e| e.to_string())?;
    let shell = o
        .shell
        .ok_or("jitd did not name the shell to run (is it older than jit-session?)")?;
    let command = shell_command(&shell, &who, command)?;
    Ok(Opened {
        out: File::from(o.pipe),
        record_input: o.record_input,
        on_failure: o.on_failure,
        expiry: Some(Expiry::new(o.grant, Some(o.expires_at))),
        bus: Some(j),
        close: Close::Jitd(o.recording),
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

    let term = std::env::var("TERM").unwrap_or_default();

    // Everything that forks happens before any thread exists.
    let handled = monitor::handled_signals();
    if let Err(e) = handled.thread_block() {
        return fail(format!("cannot block signals: {e}"), 1);
    }
    // The standalone recorder's child first: it must not keep the
    // session's descriptors open. It inherits the blocked signals, so the
    // terminal's cannot end it before the session's last bytes.
    let mut standalone = match &mode {
        Mode::Standalone(file) => {
            match standalone::start(file, &standalone_header(&size, &shown, &term, &shell)) {
                Ok(started) => Some(started),
                Err(e) => return fail(e, 1),
            }
        }
        _ => None,
    };
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
    let req = OpenRequest {
        cols: size.ws_col.into(),
        rows: size.ws_row.into(),
        command: shown.clone(),
        term: term.clone(),
        shell: shell.clone(),
    };
    let opened = match (&mode, standalone.take()) {
        (Mode::Standalone(_), Some(started)) => Ok(opened_standalone(started)),
        (Mode::Standalone(_), None) => Err("the standalone recorder did not start".into()),
        (Mode::Sudo, _) => open_sudo(&req),
        (Mode::Login(c), _) => open_login(&req, c.as_deref()),
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
    // Another descriptor of the pipe: the relay hears at once when its
    // reader closed it.
    let pipe = opened.out.try_clone().ok().map(OwnedFd::from);
    let recorder = asciicast::Recorder::sender(opened.out, Instant::now());
    let recorder = match Recording::start(recorder) {
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

    let problem = match recorder.finish() {
        // Every event is in the pipe; ours was its last write end.
        Ok((_, out)) => {
            drop(out);
            outcome.record_error.clone()
        }
        Err((e, _)) => outcome.record_error.clone().or(Some(e.to_string())),
    };
    let end = if problem.is_some() && outcome.end == End::Exit {
        End::WriteFailed
    } else {
        outcome.end
    };
    let closed = match (opened.close, opened.bus.as_mut()) {
        (Close::Jitd(id), Some(j)) if problem.is_none() => {
            j.close_recording(id, end).map_err(|e| e.to_string())
        }
        // A pipe that failed was closed by jitd, which recorded why.
        (Close::Jitd(_), _) => Ok(()),
        (Close::Standalone(child), _) => child.wait(),
    };
    if let Err(e) = closed {
        eprintln!("jit-session: cannot close the recording: {e}");
    }
    let code = match outcome.status {
        Some(s) => s.code(),
        None => 1,
    };
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
