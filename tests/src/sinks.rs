//! Local endpoints that capture what jitd sends: a minimal SMTP server and
//! a minimal HTTP server on 127.0.0.1, each on a thread of the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `[notify]` section that sends `audiences` (lines such as
/// `security = ["hook:json"]`) to a JSON webhook on 127.0.0.1:`port`, path
/// `/json`, with short timeouts and retries.
pub fn json_hook_notify(audiences: &str, port: u16) -> String {
    format!(
        r#"
[notify]
{audiences}
timeout = "1s"
retry_first = "1s"
retry_max = "1s"

[notify.hooks.json]
kind = "json"
url = "http://127.0.0.1:{port}/json"
"#
    )
}

/// A port nothing listens on (yet): bound, then released.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn listen(port: u16) -> TcpListener {
    // Retried: a port released a moment ago may still be in use.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("cannot listen on 127.0.0.1:{port}: {e}"),
        }
    }
}

/// One message as the SMTP server received it.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (CRLF line ends, dot-stuffing undone).
    pub data: String,
}

impl Mail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The decoded body of the part with this content type.
    pub fn part(&self, content_type: &str) -> String {
        let at = self
            .data
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part in:\n{}", self.data));
        let part = &self.data[at..];
        let (head, body) = part.split_once("\r\n\r\n").expect("part body");
        let body = body.split("\r\n--").next().unwrap_or_default();
        if head.contains("quoted-printable") {
            decode_qp(body)
        } else if head.contains("base64") {
            decode_base64(body)
        } else {
            body.to_owned()
        }
    }
}

fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A plain SMTP server (no TLS, no auth) that accepts every message.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = listen(0);
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&mails);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let _ = smtp_session(conn, &store);
                });
            }
        });
        SmtpSink { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        crate::wait_for(timeout, || {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
        .unwrap_or_else(|| panic!("expected {n} mails, got {:#?}", self.mails()))
    }
}

fn smtp_session(conn: TcpStream, store: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let arg = |prefix: &str| {
            line[prefix.len()..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?,
            "MAIL" => {
                from = arg("MAIL FROM:");
                to.clear();
                out.write_all(b"250 ok\r\n")?
            }
            "RCPT" => {
                to.push(arg("RCPT TO:"));
                out.write_all(b"250 ok\r\n")?
            }
            "DATA" => {
                out.write_all(b"354 go on\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                store.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                out.write_all(b"250 queued\r\n")?
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 ok\r\n")?,
        }
    }
}

/// One HTTP request the server answered.
#[derive(Clone, Debug)]
pub struct Post {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// How the server answers a request: status and body.
pub type Answerer = Arc<dyn Fn(&Post) -> (u16, String) + Send + Sync>;

/// An HTTP server answering every request with 200 (or as its answerer
/// says), or, while hung, accepting connections and never answering.
pub struct HttpSink {
    pub port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
    hung: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl HttpSink {
    pub fn start() -> HttpSink {
        HttpSink::on_port(0)
    }

    /// Listens on any free port, answering each request as `answer` says.
    pub fn answering(answer: impl Fn(&Post) -> (u16, String) + Send + Sync + 'static) -> HttpSink {
        HttpSink::serve(0, Arc::new(answer))
    }

    /// Listens on `port` (0: any free port).
    pub fn on_port(port: u16) -> HttpSink {
        HttpSink::serve(port, Arc::new(|_: &Post| (200, "ok".to_owned())))
    }

    fn serve(port: u16, answer: Answerer) -> HttpSink {
        let listener = listen(port);
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let sink = HttpSink {
            port,
            posts: Arc::default(),
            hung: Arc::default(),
            stop: Arc::default(),
        };
        let (posts, hung, stop) = (
            Arc::clone(&sink.posts),
            Arc::clone(&sink.hung),
            Arc::clone(&sink.stop),
        );
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) if hung.load(Ordering::SeqCst) => held.push(conn),
                    Ok((conn, _)) => {
                        let (posts, answer) = (Arc::clone(&posts), Arc::clone(&answer));
                        std::thread::spawn(move || {
                            let _ = conn.set_nonblocking(false);
                            if let Ok(post) = http_exchange(conn, &answer) {
                                posts.lock().unwrap().push(post);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
                if !hung.load(Ordering::SeqCst) {
                    held.clear();
                }
            }
        });
        sink
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// While hung, connections are accepted and never answered.
    pub fn set_hung(&self, hung: bool) {
        self.hung.store(hung, Ordering::SeqCst);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests were answered.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Post> {
        crate::wait_for(timeout, || {
            let posts = self.posts();
            (posts.len() >= n).then_some(posts)
        })
        .unwrap_or_else(|| panic!("expected {n} posts, got {:#?}", self.posts()))
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn http_exchange(conn: TcpStream, answer: &Answerer) -> std::io::Result<Post> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let post = Post {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let (status, text) = answer(&post);
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    Ok(post)
}
