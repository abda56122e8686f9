//! The SIEM feed: forwarding throughput into a real rsyslog (against
//! rsyslog taking the same messages from one plain TCP client), and the
//! time from an event's commit to its arrival at a syslog receiver that
//! jit-bench itself is (so one clock times both).

use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use zbus::Connection;

use crate::notify::{arrival, request};
use crate::{BoxError, Samples};

fn lines_in(file: &Path) -> usize {
    std::fs::File::open(file)
        .map(|f| BufReader::new(f).lines().count())
        .unwrap_or(0)
}

/// Waits until `file` has `count` lines; the time it took.
fn until_lines(
    file: &Path,
    count: usize,
    started: Instant,
    limit: Duration,
) -> Result<Duration, BoxError> {
    loop {
        if lines_in(file) >= count {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{} has {} of {count} lines after {limit:?}",
                file.display(),
                lines_in(file)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `deliver` (jit-deliver's command line) against a jitd whose
/// database holds `count` audit rows, and times rsyslog writing them all
/// to `file`; then sends rsyslog the same messages, as received, from one
/// TCP connection to `baseline_port` and times their arrival in `baseline_file`.
pub fn throughput(
    deliver: &[String],
    file: &Path,
    count: usize,
    baseline_port: u16,
    baseline_file: &Path,
) -> Result<serde_json::Value, BoxError> {
    let limit = Duration::from_secs(600);
    let started = Instant::now();
    let (program, args) = deliver.split_first().ok_or("no jit-deliver command")?;
    let mut worker = Command::new(program).args(args).spawn()?;
    let forwarded = until_lines(file, count, started, limit);
    let _ = worker.kill();
    let _ = worker.wait();
    let forwarded = forwarded?;

    let text = std::fs::read_to_string(file)?;
    let mut frames = Vec::with_capacity(text.len() + count * 8);
    for line in text.lines().take(count) {
        frames.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
    }
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", baseline_port))?;
    stream.write_all(&frames)?;
    stream.flush()?;
    let direct = until_lines(baseline_file, count, started, limit)?;
    drop(stream);
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    Ok(json!({
        "events": count,
        "bytes": frames.len(),
        "forwarded_secs": forwarded.as_secs_f64(),
        "forwarded_per_sec": rate(forwarded),
        "direct_secs": direct.as_secs_f64(),
        "direct_per_sec": rate(direct),
    }))
}

/// Serves octet-counted syslog (RFC 6587) on `listener`; the request id
/// and arrival time of each `requested` event go to the channel.
fn receive(listener: TcpListener, arrivals: mpsc::UnboundedSender<(u64, Instant)>) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                loop {
                    let mut len = Vec::new();
                    if reader.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                        return;
                    }
                    let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
                        return;
                    };
                    let mut message = vec![0u8; n];
                    if reader.read_exact(&mut message).is_err() {
                        return;
                    }
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&message);
                    let Some(json) = text.find(" {\"").map(|i| &text[i + 1..]) else {
                        continue;
                    };
                    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                    if doc["event"] == "requested" {
                        if let Some(id) = doc["request"].as_u64() {
                            let _ = arrivals.send((id, at));
                        }
                    }
                }
            });
        }
    });
}

/// `calls` requests for `resource` one after another (after `warmup`): the
/// time to jitd's reply, and to the `requested` event reaching the TCP sink
/// jit-bench serves on `port`.
pub async fn latency(
    calls: usize,
    warmup: usize,
    port: u16,
    resource: &str,
) -> Result<serde_json::Value, BoxError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    receive(TcpListener::bind(("127.0.0.1", port))?, tx);
    let conn = Connection::system().await?;
    let (mut replies, mut arrived) = (Samples::default(), Samples::default());
    let mut early: HashMap<u64, Instant> = HashMap::new();
    let mut lost = 0;
    for i in 0..warmup + calls {
        let t = Instant::now();
        let id = request(&conn, resource).await?;
        let replied = t.elapsed();
        let found = arrival(&mut rx, &mut early, id, t + Duration::from_secs(5)).await;
        if i < warmup {
            continue;
        }
        replies.0.push(replied.as_nanos() as u64);
        match found {
            Some(at) => arrived.0.push(at.duration_since(t).as_nanos() as u64),
            None => lost += 1,
        }
    }
    Ok(json!({
        "resource": resource,
        "reply": replies.summary(),
        "received": (!arrived.0.is_empty()).then(|| arrived.summary()),
        "lost": lost,
    }))
}
