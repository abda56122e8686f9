//! jit-session: a recorded elevated session (run through `jitctl shell` /
//! `jitctl run`, i.e. sudo). See design.md, "Recordings".

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use jit_session::jitd::{self, BusJitd, Jitd, NoEvents, OnFailure, OpenRequest};
use jit_session::record::Recording;
use jit_session::session::{End, Expiry};
use jit_session::{asciicast, monitor, pty, relay};

/// Grace between SIGHUP and SIGKILL when a session is ended.
const GRACE: Duration = Duration::from_millis(500);

#[derive(Parser)]
#[command(
    name = "jit-session",
    about = "A recorded elevated session (started by 'jitctl shell' / 'jitctl run' through sudo)"
)]
struct Args {
    /// Tests and benchmarks only (needs euid 0): relay and record into FILE
    /// without jitd; the header's `jit` field is {"standalone": true}.
    #[arg(long, value_name = "FILE", hide = true)]
    standalone_record: Option<PathBuf>,
    /// The command (default: the target user's login shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

fn cstr(s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| "an argument contains a NUL byte".to_string())
}

/// The command to run, and the header's `command` and `SHELL`.
fn plan(args: &[OsString]) -> Result<(monitor::Command, String, String), String> {
    if args.is_empty() {
        let uid = nix::unistd::geteuid();
        let user = nix::unistd::User::from_uid(uid).ok().flatten();
        let (shell, home, name) = match &user {
            Some(u) => (u.shell.clone(), u.dir.clone(), u.name.clone()),
            None => ("/bin/sh".into(), "/".into(), "root".into()),
        };
        let shell = if shell.as_os_str().is_empty() {
            PathBuf::from("/bin/sh")
        } else {
            shell
        };
        let base = shell
            .file_name()
            .map(|b| b.as_bytes().to_vec())
            .unwrap_or_else(|| b"sh".to_vec());
        let mut argv0 = b"-".to_vec();
        argv0.extend_from_slice(&base);
        let path = cstr(shell.as_os_str().as_bytes())?;
        let env = vec![
            (cstr(b"HOME")?, cstr(home.as_os_str().as_bytes())?),
            (cstr(b"SHELL")?, path.clone()),
            (cstr(b"USER")?, cstr(name.as_bytes())?),
            (cstr(b"LOGNAME")?, cstr(name.as_bytes())?),
        ];
        let shown = shell.to_string_lossy().into_owned();
        Ok((
            monitor::Command {
                path,
                argv: vec![cstr(&argv0)?],
                env,
                cwd: Some(cstr(home.as_os_str().as_bytes())?),
            },
            shown.clone(),
            shown,
        ))
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

fn main() -> ExitCode {
    let args = Args::parse();
    // Through sudo, only recorded sessions: sudo puts SUDO_UID in the
    // command's environment and the user cannot take it out, so the
    // test-only mode (no jitd, a file of the caller's choosing) stays out of
    // reach of the sudoers rule that lets gated users start jit-session.
    if args.standalone_record.is_some() && std::env::var_os("SUDO_UID").is_some() {
        return fail(
            "--standalone-record is for tests run by root, not through sudo",
            2,
        );
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("jit-session: run it through 'jitctl shell' (it needs sudo)");
        return ExitCode::from(2);
    }
    let (command, shown, shell) = match plan(&args.command) {
        Ok(p) => p,
        Err(e) => return fail(e, 2),
    };
    let stdin = std::io::stdin();
    let tty_in = pty::is_tty(stdin.as_fd());
    let (settings, size) = if tty_in {
        (
            nix::sys::termios::tcgetattr(stdin.as_fd()).ok(),
            pty::winsize(stdin.as_fd()),
        )
    } else {
        (None, None)
    };
    let size = size
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
    let (mut spawned, master) = match monitor::spawn(pair, &command) {
        Ok(s) => s,
        Err(e) => return fail(e, 1),
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
    let mut bus: Option<BusJitd> = None;
    let mut recording_id = 0;
    let opened = if let Some(file) = &args.standalone_record {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(file)
            .map(|f| {
                (
                    f,
                    serde_json::json!({ "standalone": true }),
                    false,
                    OnFailure::Terminate,
                    None,
                )
            })
            .map_err(|e| format!("cannot create {}: {e}", file.display()))
    } else {
        (|| {
            let mut j = BusJitd::connect().map_err(|e| e.to_string())?;
            let o = j
                .open_recording(&OpenRequest {
                    cols: size.ws_col.into(),
                    rows: size.ws_row.into(),
                    command: shown.clone(),
                    term: term.clone(),
                    shell: shell.clone(),
                })
                .map_err(|e| e.to_string())?;
            let f = open_recording_file(&o.path)
                .map_err(|e| format!("cannot open the recording {}: {e}", o.path.display()))?;
            recording_id = o.recording;
            bus = Some(j);
            Ok::<_, String>((
                f,
                o.metadata,
                o.record_input,
                o.on_failure,
                Some(Expiry::new(o.grant, Some(o.expires_at))),
            ))
        })()
    };
    let (file, jit, record_input, on_failure, expiry) = match opened {
        Ok(o) => o,
        Err(e) => {
            // The monitor never got the go-ahead: the command never ran.
            spawned.kill_and_reap();
            return fail(format!("{e}; not starting an unrecorded session"), 1);
        }
    };
    let start = Instant::now();
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
    let recorder = match asciicast::Recorder::new(file, &header, start).and_then(Recording::start) {
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
    if let Err(e) = spawned.go() {
        drop(guard);
        spawned.kill_and_reap();
        return fail(e, 1);
    }
    let mut no_events = NoEvents;
    let events: &mut dyn jitd::Events = match bus.as_mut() {
        Some(b) => b,
        None => &mut no_events,
    };
    let (outcome, recorder, spawned) = relay::run(relay::Relay {
        master,
        spawned,
        recorder,
        record_input,
        on_failure,
        expiry,
        events,
        grace: GRACE,
        tty_in,
        signals,
    });
    spawned.kill_and_reap();
    drop(guard);

    let (finished, problem) = match recorder.finish() {
        Ok((f, _file)) => (f, outcome.record_error.clone()),
        Err((e, f)) => (f, outcome.record_error.clone().or(Some(e.to_string()))),
    };
    let end = if problem.is_some() && outcome.end == End::Exit {
        End::WriteFailed
    } else {
        outcome.end
    };
    if let Some(j) = bus.as_mut() {
        if let Err(e) = j.close_recording(recording_id, &finished.sha256, finished.bytes, end) {
            eprintln!("jit-session: cannot close the recording with jitd: {e}");
        }
    }
    let code = match outcome.status {
        Some(s) => s.code(),
        None => 1,
    };
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
