//! The ticket validator (W1.11), run by `jit-deliver --tickets` as the
//! unprivileged `jit-ticket` user (`jit-ticket.service`): takes jitd's
//! checks from its `tickets.socket` ([`jitd::deliver::tickets`]), runs the
//! command or posts to the webhook for each on a thread of its own (a
//! slow ticketing system holds up only its own check), and hands back
//! the answer for jitd to read.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use jitd::core::tickets::{TicketAsk, MAX_ANSWER};
use jitd::deliver::tickets::{Answer, Reply, ToWorker, ValidatorWire, VERSION};
use jitd::deliver::wire::{self, Hidden};

/// Serves jitd on `socket` until killed; quiet while jitd has no validator
/// (no socket).
pub fn run(socket: &Path) -> ! {
    crate::serve_forever(socket, "ticket validator", true, serve)
}

/// What the worker was told to run, and within what time.
struct Validator {
    what: ValidatorWire,
    timeout: Duration,
    http: ureq::Agent,
}

fn serve(mut stream: UnixStream) -> io::Result<()> {
    let validator = match wire::read::<ToWorker>(&mut stream)? {
        ToWorker::Hello {
            version: VERSION,
            validator,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            Arc::new(Validator {
                what: validator,
                timeout,
                http: ureq::Agent::config_builder()
                    .timeout_connect(Some(timeout))
                    .timeout_global(Some(timeout))
                    .max_redirects(0)
                    .http_status_as_error(false)
                    .build()
                    .into(),
            })
        }
        ToWorker::Hello { version, .. } => {
            return Err(io::Error::other(format!(
                "jitd speaks ticket protocol version {version}, not {VERSION}"
            )))
        }
        ToWorker::Check { .. } => return Err(io::Error::other("a check before the hello")),
    };
    let answers = Arc::new(Mutex::new(stream.try_clone()?));
    loop {
        let (id, ask, within) = match wire::read::<ToWorker>(&mut stream) {
            Ok(ToWorker::Check { id, ask, within_ms }) => {
                (id, ask, Duration::from_millis(within_ms))
            }
            Ok(ToWorker::Hello { .. }) => return Err(io::Error::other("a second hello")),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let (validator, answers) = (Arc::clone(&validator), Arc::clone(&answers));
        std::thread::Builder::new()
            .name("jit-deliver-ticket".into())
            .spawn(move || {
                let timeout = validator.timeout.min(within);
                let reply = match &validator.what {
                    ValidatorWire::Command(argv) => run_command(argv, &ask, timeout),
                    ValidatorWire::Webhook(url) => post(&validator.http, url, &ask, timeout),
                };
                let mut stream = answers.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = wire::write(&mut *stream, &Answer { id, reply }) {
                    tracing::warn!(error = %e, "cannot hand a ticket answer to jitd");
                }
            })?;
    }
}

/// The command's answer to `ask`: its stdout if it exits 0 within
/// `timeout`. Everything in its process group is killed when it ends, and
/// at the timeout.
fn run_command(argv: &[String], ask: &TicketAsk, timeout: Duration) -> Reply {
    let Some((program, args)) = argv.split_first() else {
        return Reply::Failed("no command".into());
    };
    let input = match serde_json::to_vec(ask) {
        Ok(input) => input,
        Err(e) => return Reply::Failed(e.to_string()),
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Before Linux 5.11 (no CLOSE_RANGE_CLOEXEC), each descriptor up to
    // the limit is marked one by one.
    // SAFETY: sysconf reads a limit; nothing is shared.
    let open_max = match unsafe { libc::sysconf(libc::_SC_OPEN_MAX) } {
        n if n > 3 => i32::try_from(n).unwrap_or(i32::MAX),
        _ => 1024,
    };
    // SAFETY: prctl, close_range and fcntl are async-signal-safe and touch
    // no memory shared with the parent: the command dies with the worker
    // and keeps none of its descriptors (the socket to jitd above all).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(io::Error::from)?;
            let all_from_3 = (3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            if libc::syscall(
                libc::SYS_close_range,
                all_from_3.0,
                all_from_3.1,
                all_from_3.2,
            ) != 0
            {
                for fd in 3..open_max {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Reply::Failed(format!("cannot run {program}: {e}")),
    };
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let kill_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    };
    // Written and read on threads of their own: a command that does not
    // read its input, or writes without end, still ends at the timeout.
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (out_tx, out_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.take(MAX_ANSWER as u64 + 1).read_to_end(&mut out);
            let _ = out_tx.send(out);
        });
    }
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if std::time::Instant::now() >= deadline => break Err(()),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill_group();
                return Reply::Failed(e.to_string());
            }
        }
    };
    // Whatever it started goes with it.
    kill_group();
    let Ok(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Reply::Failed(format!(
            "the validator did not answer within {}",
            humantime::format_duration(timeout)
        ));
    };
    if !status.success() {
        return Reply::Failed(format!("the validator failed ({status})"));
    }
    // Its group is gone: the pipe is closed, or the rest of the answer is.
    match out_rx.recv_timeout(Duration::from_secs(1)) {
        Ok(out) => Reply::Body(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => Reply::Failed("the validator's answer did not end".into()),
    }
}

/// The webhook's answer to `ask` within `timeout`: a 2xx body, or why
/// there is none.
fn post(http: &ureq::Agent, url: &Hidden, ask: &TicketAsk, timeout: Duration) -> Reply {
    let body = match serde_json::to_string(ask) {
        Ok(body) => body,
        Err(e) => return Reply::Failed(e.to_string()),
    };
    let response = http
        .post(&url.0)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .content_type("application/json")
        .send(body);
    let response = match response {
        Ok(response) => response,
        Err(e) => return Reply::Failed(failure(url, &e)),
    };
    let status = response.status();
    if !status.is_success() {
        return Reply::Failed(format!("the webhook failed: http status: {status}"));
    }
    let mut text = Vec::new();
    let read = response
        .into_body()
        .into_reader()
        .take(MAX_ANSWER as u64 + 1)
        .read_to_end(&mut text);
    match read {
        Ok(_) => Reply::Body(String::from_utf8_lossy(&text).into_owned()),
        Err(e) => Reply::Failed(format!(
            "the webhook failed: reading its answer: {}",
            e.kind()
        )),
    }
}

/// What the requester and approvers are told of a failed post: its kind
/// only. ureq's own words may quote the URL (normalized, so no search
/// and replace would find it), and the URL may carry a token: they go to
/// this service's log, the URL cut out where it is found as given.
fn failure(url: &Hidden, e: &ureq::Error) -> String {
    tracing::warn!(error = %e.to_string().replace(&url.0, "<ticket webhook url>"), "ticket webhook failed");
    let kind = match e {
        ureq::Error::Timeout(_) => "it did not answer in time",
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            "it could not be reached"
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS failed",
        _ => "see jit-ticket.service's log",
    };
    format!("the webhook failed: {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitd::core::tickets::Stage;
    use std::os::unix::fs::PermissionsExt;

    fn ask() -> TicketAsk {
        TicketAsk {
            ticket: "INC-1".into(),
            requester: "alice".into(),
            resource: "sudo".into(),
            stage: Stage::Request,
        }
    }

    fn script(dir: &tempfile::TempDir, body: &str) -> Vec<String> {
        let path = dir.path().join("check");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        vec![path.display().to_string()]
    }

    fn left_running(marker: &str) -> String {
        let out = Command::new("pgrep").args(["-f", marker]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_hung_command_and_what_it_started_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("sleep 6{}", std::process::id());
        let argv = script(&dir, &format!("{marker} & {marker}"));
        let reply = run_command(&argv, &ask(), Duration::from_millis(500));
        assert_eq!(
            reply,
            Reply::Failed("the validator did not answer within 500ms".into())
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(left_running(&marker), "", "left running");
    }

    #[test]
    fn the_answer_is_stdout_on_exit_0_and_what_it_started_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("sleep 7{}", std::process::id());
        let argv = script(
            &dir,
            &format!("read ask; {marker} >/dev/null & echo \"{{\\\"got\\\": $ask}}\""),
        );
        let reply = run_command(&argv, &ask(), Duration::from_secs(5));
        let Reply::Body(body) = reply else {
            panic!("{reply:?}")
        };
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(got["got"]["ticket"], "INC-1", "{body}");
        assert_eq!(got["got"]["stage"], "request", "{body}");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(left_running(&marker), "", "left running");
        let failing = script(&dir, "exit 3");
        assert_eq!(
            run_command(&failing, &ask(), Duration::from_secs(5)),
            Reply::Failed("the validator failed (exit status: 3)".into())
        );
    }
}
