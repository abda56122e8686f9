//! Request-to-approver-notified latency: jit-bench is the requester and the
//! approvers' webhook (a JSON hook on 127.0.0.1), so one clock times both
//! the request's reply and the notification's arrival.

use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use zbus::Connection;

use crate::{BoxError, Samples};
use jitd::api::{BUS_NAME, INTERFACE, OBJECT_PATH};

/// What the webhook does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No webhook listens (jitd has no notifications configured): the baseline.
    Off,
    /// Answers every notification with 200.
    Live,
    /// Accepts connections and never answers.
    Hung,
}

/// Serves the webhook on its own thread; each notification's request id
/// and arrival time go to the channel.
fn serve(listener: TcpListener, mode: Mode, arrivals: mpsc::UnboundedSender<(u64, Instant)>) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            if mode == Mode::Hung {
                held.push(conn);
                continue;
            }
            if let Ok(Some(id)) = answer(conn) {
                let _ = arrivals.send((id, Instant::now()));
            }
        }
    });
}

/// Reads one POST, answers 200 and returns the notice's request id.
fn answer(conn: TcpStream) -> std::io::Result<Option<u64>> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    let mut len = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(doc["request"].as_u64())
}

pub(crate) async fn request(conn: &Connection, resource: &str) -> Result<u64, BoxError> {
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "Request",
            &(resource, 60u64, "bench: notification latency", ""),
        )
        .await?;
    let doc: String = reply.body().deserialize()?;
    let view: jitd::api::RequestView = serde_json::from_str(&doc)?;
    if view.state != "pending" {
        return Err(format!(
            "request {} is {}, not pending: pick a resource that needs approval",
            view.id, view.state
        )
        .into());
    }
    Ok(view.id)
}

/// When request `id`'s message arrived: one that came earlier is in
/// `early`; others received while waiting go there; `None` past `deadline`.
pub(crate) async fn arrival(
    rx: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    early: &mut HashMap<u64, Instant>,
    id: u64,
    deadline: Instant,
) -> Option<Instant> {
    if let Some(at) = early.remove(&id) {
        return Some(at);
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((got, at))) if got == id => return Some(at),
            Ok(Some((got, at))) => {
                early.insert(got, at);
            }
            _ => return None,
        }
    }
}

/// `calls` requests for `resource` one after another (after `warmup`): the
/// time to jitd's reply and, unless `mode` is `Off`, to the approvers'
/// webhook receiving the notification.
pub async fn latency(
    calls: usize,
    warmup: usize,
    port: u16,
    resource: &str,
    mode: Mode,
) -> Result<serde_json::Value, BoxError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    if mode != Mode::Off {
        serve(TcpListener::bind(("127.0.0.1", port))?, mode, tx);
    }
    let conn = Connection::system().await?;
    let (mut replies, mut notified) = (Samples::default(), Samples::default());
    let mut early: HashMap<u64, Instant> = HashMap::new();
    let mut lost = 0;
    for i in 0..warmup + calls {
        let t = Instant::now();
        let id = request(&conn, resource).await?;
        let replied = t.elapsed();
        let arrived = if mode == Mode::Live {
            arrival(&mut rx, &mut early, id, t + Duration::from_secs(5)).await
        } else {
            None
        };
        if i < warmup {
            continue;
        }
        replies.0.push(replied.as_nanos() as u64);
        match arrived {
            Some(at) => notified.0.push(at.duration_since(t).as_nanos() as u64),
            None if mode == Mode::Live => lost += 1,
            None => {}
        }
    }
    Ok(json!({
        "mode": format!("{mode:?}").to_lowercase(),
        "resource": resource,
        "reply": replies.summary(),
        "notified": (!notified.0.is_empty()).then(|| notified.summary()),
        "lost": lost,
    }))
}
