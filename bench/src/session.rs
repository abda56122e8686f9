//! Session recorders inside an outer PTY standing in for the user's
//! terminal (a thread drains it): throughput of a large text output, the
//! recorder's CPU and peak RSS (wait4 of the tree's top process), the
//! recording's size; keystroke-to-echo latency through the relay.

use crate::stats::median;
use serde_json::{json, Value};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Outer {
    master: OwnedFd,
    pid: libc::pid_t,
}

/// Starts `argv` on the slave of a new 80x24 PTY, as its session leader
/// with the slave as controlling terminal.
fn spawn(argv: &[String]) -> Result<Outer, BoxError> {
    let mut master = -1;
    let mut slave = -1;
    let ws = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty with valid out-pointers, no name, default termios, a winsize.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if rc != 0 {
        return Err(format!("openpty: {}", std::io::Error::last_os_error()).into());
    }
    // SAFETY: openpty returned two fresh descriptors that we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let fd = slave.as_raw_fd();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(slave);
    Ok(Outer {
        master,
        pid: child.id() as libc::pid_t,
    })
}

/// wait4: exit status, and the rusage of the process and what it reaped.
fn wait4(pid: libc::pid_t) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    (status, ru)
}

fn secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// One run: wall time until the command exited and the terminal drained,
/// CPU and peak RSS of the tree, bytes the terminal got, recording size.
fn run_once(argv: &[String], recording: Option<&Path>) -> Result<Value, BoxError> {
    if let Some(r) = recording {
        let _ = std::fs::remove_file(r);
    }
    let start = Instant::now();
    let outer = spawn(argv)?;
    let mut reader = std::fs::File::from(outer.master.try_clone()?);
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break, // EIO: every slave descriptor closed
            }
        }
        (total, Instant::now())
    });
    let (status, ru) = wait4(outer.pid);
    let exited = Instant::now();
    let (terminal_bytes, drained) = drain.join().map_err(|_| "drain thread")?;
    let wall = drained.max(exited) - start;
    let recording_bytes = recording
        .and_then(|r| std::fs::metadata(r).ok())
        .map(|m| m.len());
    Ok(json!({
        "wall_s": wall.as_secs_f64(),
        "cpu_s": secs(ru.ru_utime) + secs(ru.ru_stime),
        "user_s": secs(ru.ru_utime),
        "sys_s": secs(ru.ru_stime),
        "maxrss_kb": ru.ru_maxrss,
        "terminal_bytes": terminal_bytes,
        "recording_bytes": recording_bytes,
        "status": status,
    }))
}

/// `runs` runs of `argv`; medians plus every run.
pub fn throughput(
    label: &str,
    argv: &[String],
    recording: Option<&Path>,
    output_bytes: u64,
    runs: usize,
) -> Result<Value, BoxError> {
    let mut all = Vec::new();
    for _ in 0..runs {
        let r = run_once(argv, recording)?;
        if r["status"] != 0 {
            return Err(format!("{label}: {argv:?} failed: {r}").into());
        }
        all.push(r);
    }
    let col = |k: &str| {
        median(
            all.iter()
                .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
                .collect(),
        )
    };
    Ok(json!({
        "label": label,
        "command": argv.join(" "),
        "output_bytes": output_bytes,
        "runs": all.len(),
        "wall_s": col("wall_s"),
        "cpu_s": col("cpu_s"),
        "maxrss_kb": col("maxrss_kb"),
        "recording_bytes": col("recording_bytes"),
        "terminal_bytes": col("terminal_bytes"),
        "all": all,
    }))
}

fn write_byte(fd: &OwnedFd, b: u8) -> Result<(), BoxError> {
    // SAFETY: writing one byte from a valid buffer to our master descriptor.
    let n = unsafe { libc::write(fd.as_raw_fd(), [b].as_ptr().cast(), 1) };
    if n != 1 {
        return Err(format!("write: {}", std::io::Error::last_os_error()).into());
    }
    Ok(())
}

/// Reads from the master until `want` has been seen (after what was already read).
fn read_until(fd: &OwnedFd, want: &[u8], limit: Duration) -> Result<(), BoxError> {
    let deadline = Instant::now() + limit;
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(want.len()).any(|w| w == want) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no echo of {want:?} within {limit:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            )
            .into());
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if rc <= 0 {
            continue;
        }
        // SAFETY: read into a valid buffer from our master descriptor.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return Err("the terminal closed".into());
        }
        seen.extend_from_slice(&buf[..n as usize]);
    }
    Ok(())
}

/// Waits for the session on `fd` to echo (it is up), then empties the
/// line and drains what is pending.
fn wait_until_up(fd: &OwnedFd, label: &str, argv: &[String]) -> Result<(), BoxError> {
    let up = Instant::now() + Duration::from_secs(10);
    loop {
        write_byte(fd, b'z')?;
        if read_until(fd, b"z", Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > up {
            return Err(format!("{label}: no echo from {argv:?}").into());
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    write_byte(fd, 0x15)?; // ^U: empty the line
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll/read on our own descriptor with valid buffers.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            break;
        }
        // SAFETY: as above.
        if unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } <= 0 {
            break;
        }
    }
    Ok(())
}

/// Keystroke-to-echo: write 'a' into the outer master, time until it comes
/// back; then a DEL (echoed as "\b \b") keeps the line empty.
pub fn latency(label: &str, argv: &[String], samples: usize) -> Result<Value, BoxError> {
    let outer = spawn(argv)?;
    let fd = &outer.master;
    wait_until_up(fd, label, argv)?;
    let mut us = Vec::with_capacity(samples);
    for i in 0..samples + 200 {
        let t0 = Instant::now();
        write_byte(fd, b'a')?;
        read_until(fd, b"a", Duration::from_secs(5))?;
        let dt = t0.elapsed();
        if i >= 200 {
            us.push(dt.as_secs_f64() * 1e6);
        }
        write_byte(fd, 0x7f)?;
        read_until(fd, b"\x08 \x08", Duration::from_secs(5))?;
    }
    // End the session: ^D on an empty line ends cat.
    write_byte(fd, 0x04)?;
    // SAFETY: kill/wait on our own child.
    unsafe { libc::kill(outer.pid, libc::SIGHUP) };
    let _ = wait4(outer.pid);
    us.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| us[((us.len() as f64 - 1.0) * p) as usize];
    Ok(json!({
        "label": label,
        "command": argv.join(" "),
        "samples": us.len(),
        "p50_us": pct(0.5),
        "p90_us": pct(0.9),
        "p99_us": pct(0.99),
        "mean_us": us.iter().sum::<f64>() / us.len() as f64,
    }))
}

/// Output to a live watcher (W4 item 7): lines typed into a recorded
/// session running `cat` (started by `argv` on a PTY), timed until the
/// session's own terminal shows them (the baseline) and until `jitctl
/// recordings watch` of the session's recording (the newest live one)
/// prints them.
pub fn watch_latency(jitctl: &Path, argv: &[String], samples: usize) -> Result<Value, BoxError> {
    let outer = spawn(argv)?;
    let fd = &outer.master;
    wait_until_up(fd, "watched session", argv)?;
    let listed = Command::new(jitctl)
        .args(["recordings", "list", "--live", "--json"])
        .output()?;
    let live: Value = serde_json::from_slice(&listed.stdout)?;
    let rec = live
        .as_array()
        .and_then(|all| all.iter().filter_map(|r| r["id"].as_u64()).max())
        .ok_or("no live recording to watch")?;
    let mut watcher = Command::new(jitctl)
        .args(["recordings", "watch", &rec.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = watcher.stdout.take().ok_or("no watcher output")?;
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let warmup = 10;
    let (mut terminal_ms, mut watcher_ms) = (Vec::new(), Vec::new());
    let mut shown: Vec<u8> = Vec::new();
    for i in 0..samples + warmup {
        let mark = format!("w{i}x");
        let t0 = Instant::now();
        for b in format!("{mark}\n").bytes() {
            write_byte(fd, b)?;
        }
        read_until(fd, mark.as_bytes(), Duration::from_secs(5))?;
        let on_terminal = t0.elapsed();
        let on_watcher = loop {
            if shown.windows(mark.len()).any(|w| w == mark.as_bytes()) {
                break None;
            }
            let left = (t0 + Duration::from_secs(5)).saturating_duration_since(Instant::now());
            let (at, bytes) = rx
                .recv_timeout(left)
                .map_err(|_| format!("the watcher never showed {mark}"))?;
            shown.extend_from_slice(&bytes);
            if shown.windows(mark.len()).any(|w| w == mark.as_bytes()) {
                break Some(at.saturating_duration_since(t0));
            }
        }
        .unwrap_or_default();
        shown.clear();
        if i >= warmup {
            terminal_ms.push(on_terminal.as_secs_f64() * 1e3);
            watcher_ms.push(on_watcher.as_secs_f64() * 1e3);
        }
        // Let cat's own copy of the line through, then wait a varying
        // while: lines typed in step with the recorder's 100 ms writes
        // would all see the same part of its interval.
        let spread = (i as u64 * 37) % 100;
        std::thread::sleep(Duration::from_millis(20 + spread));
    }
    write_byte(fd, 0x04)?;
    // SAFETY: kill/wait on our own child.
    unsafe { libc::kill(outer.pid, libc::SIGHUP) };
    let _ = wait4(outer.pid);
    let _ = watcher.kill();
    let _ = watcher.wait();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 - 1.0) * p) as usize]
    };
    Ok(json!({
        "samples": samples,
        "terminal_p50_ms": pct(&mut terminal_ms, 0.5),
        "terminal_p99_ms": pct(&mut terminal_ms, 0.99),
        "watcher_p50_ms": pct(&mut watcher_ms, 0.5),
        "watcher_p99_ms": pct(&mut watcher_ms, 0.99),
    }))
}
