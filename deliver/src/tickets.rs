//! The ticket webhook (W1.11): takes jitd's checks from its
//! `tickets.socket` ([`jitd::deliver::tickets`]), posts each as JSON to the
//! configured URL on a thread of its own (a slow ITSM holds up only its
//! own check) and hands back the answer's body for jitd to read.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jitd::core::tickets::MAX_ANSWER;
use jitd::deliver::tickets::{Answer, Reply, ToWorker, VERSION};
use jitd::deliver::wire::{self, Hidden};

/// Serves jitd on `socket` until killed; quiet while jitd has no webhook
/// validator (no socket).
pub fn run(socket: &Path) -> ! {
    crate::serve_forever(socket, "ticket webhook", true, serve)
}

fn serve(mut stream: UnixStream) -> io::Result<()> {
    let (url, timeout) = match wire::read::<ToWorker>(&mut stream)? {
        ToWorker::Hello {
            version: VERSION,
            url,
            timeout_ms,
        } => (url, Duration::from_millis(timeout_ms)),
        ToWorker::Hello { version, .. } => {
            return Err(io::Error::other(format!(
                "jitd speaks ticket protocol version {version}, not {VERSION}"
            )))
        }
        ToWorker::Check { .. } => return Err(io::Error::other("a check before the hello")),
    };
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let url = Arc::new(url);
    let answers = Arc::new(Mutex::new(stream.try_clone()?));
    loop {
        let (id, ask) = match wire::read::<ToWorker>(&mut stream) {
            Ok(ToWorker::Check { id, ask }) => (id, ask),
            Ok(ToWorker::Hello { .. }) => return Err(io::Error::other("a second hello")),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let (http, url, answers) = (http.clone(), Arc::clone(&url), Arc::clone(&answers));
        std::thread::Builder::new()
            .name("jit-deliver-ticket".into())
            .spawn(move || {
                let reply = post(&http, &url, &ask);
                let mut stream = answers.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = wire::write(&mut *stream, &Answer { id, reply }) {
                    tracing::warn!(error = %e, "cannot hand a ticket answer to jitd");
                }
            })?;
    }
}

/// The webhook's answer to `ask`: a 2xx body, or why there is none.
fn post(http: &ureq::Agent, url: &Hidden, ask: &jitd::core::tickets::TicketAsk) -> Reply {
    let body = match serde_json::to_string(ask) {
        Ok(body) => body,
        Err(e) => return Reply::Failed(e.to_string()),
    };
    // The URL may carry a token: never in what is handed back or logged.
    let hide = |e: String| e.replace(&url.0, "<ticket webhook url>");
    let response = match http
        .post(&url.0)
        .content_type("application/json")
        .send(body)
    {
        Ok(response) => response,
        Err(e) => return Reply::Failed(hide(e.to_string())),
    };
    let status = response.status();
    if !status.is_success() {
        return Reply::Failed(format!("http status: {status}"));
    }
    let mut text = Vec::new();
    let read = response
        .into_body()
        .into_reader()
        .take(MAX_ANSWER as u64 + 1)
        .read_to_end(&mut text);
    match read {
        Ok(_) => Reply::Body(String::from_utf8_lossy(&text).into_owned()),
        Err(e) => Reply::Failed(hide(e.to_string())),
    }
}
