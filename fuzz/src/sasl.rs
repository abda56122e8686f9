//! The server side of SASL EXTERNAL on jitd's private socket
//! (`jitd::bus::peer`), driven over a real socketpair, the client's bytes
//! arriving in chunks of a size the input picks.
//!
//! Input: one byte choosing the uid the kernel reports, one byte the chunk
//! size, then what the client sends.
//!
//! Properties, beyond not panicking:
//! - each command the server reads gets one answer, of the forms the D-Bus
//!   specification allows (`OK guid`, `DATA`, `REJECTED EXTERNAL`, `ERROR`);
//!   at most 8 commands are read, none longer than `MAX_AUTH_LINE`;
//! - `OK` answers only a claim of the uid the kernel reported (or an empty
//!   `DATA` after `AUTH EXTERNAL`, which leaves the identity to the server);
//! - the handshake succeeds only at `BEGIN`, after an `OK` that no
//!   `REJECTED` has since withdrawn (a rejected client is back at `AUTH`);
//! - after it, the calls the server reads are `jit_wire::decode` of the
//!   frames the client sent, and each call that wants a reply gets one.

use std::cell::RefCell;

use jit_wire::{self as wire, Kind, Message, Value, WireError, MAX_AUTH_LINE, NO_REPLY_EXPECTED};
use jitd::fuzzing::{PeerConnection, PeerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

const GUID: &str = "0123456789abcdef0123456789abcdef";
const UIDS: [u32; 4] = [0, 1000, u32::MAX, 65534];
const MAX_COMMANDS: usize = 8;
/// Calls answered per connection (pam_jit makes two).
const MAX_CALLS: usize = 16;
/// The serial of the harness's own last "call" (see `serve`).
const FLUSH_SERIAL: u32 = u32::MAX;

thread_local! {
    static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

pub fn check(data: &[u8]) {
    let [uid_byte, chunk_byte, client @ ..] = data else {
        return;
    };
    let uid = UIDS[usize::from(uid_byte & 3)];
    let chunk = match chunk_byte {
        0 => client.len().max(1),
        n => usize::from(*n),
    };
    let (auth, calls, sent) = RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            // A write to a closed socket must be EPIPE, not SIGPIPE (no
            // Rust `main` ignored it for us).
            // SAFETY: setting a signal's disposition to SIG_IGN.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("a runtime")
        });
        rt.block_on(serve(uid, chunk, client))
    });
    judge(uid, client, &auth, &calls, &sent);
}

/// What the server made of `client`: the handshake's result, the calls it
/// read (and how reading stopped), and everything it wrote.
async fn serve(
    uid: u32,
    chunk: usize,
    client: &[u8],
) -> (
    Result<(), PeerError>,
    Vec<Result<Option<Message>, PeerError>>,
    Vec<u8>,
) {
    let (server, peer) = UnixStream::pair().expect("a socketpair");
    let (mut from_server, mut to_server) = peer.into_split();
    let send = async {
        for piece in client.chunks(chunk) {
            if to_server.write_all(piece).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = to_server.shutdown().await;
    };
    let run = async {
        let mut conn = PeerConnection::new(server);
        let auth = conn.authenticate(uid, GUID).await;
        let mut calls = Vec::new();
        if auth.is_ok() {
            for _ in 0..MAX_CALLS {
                let next = conn.next_message().await;
                if let Ok(Some(call)) = &next {
                    conn.answer(call, Ok(vec![Value::Bool(true)]))
                        .await
                        .expect("the client reads everything at the end");
                }
                let done = !matches!(next, Ok(Some(_)));
                calls.push(next);
                if done {
                    break;
                }
            }
        }
        // Answers wait in the server until it reads or replies; an error
        // drops them with the connection. One more reply sends them, so
        // that each command read can be matched with its answer.
        let marker = Message {
            serial: FLUSH_SERIAL,
            ..Message::default()
        };
        conn.answer(&marker, Ok(vec![]))
            .await
            .expect("the client reads everything at the end");
        // Closed, as jitd does: a client still sending gets an error.
        drop(conn);
        (auth, calls)
    };
    let ((), (auth, calls)) = tokio::join!(send, run);
    // A server that closes with the client's bytes unread resets the
    // connection; what it wrote before is read first all the same.
    let mut sent = Vec::new();
    match from_server.read_to_end(&mut sent).await {
        Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => {
            panic!("reading the server's answers: {e}")
        }
        _ => {}
    }
    (auth, calls, sent)
}

/// The uid a claim names: hex-encoded ASCII decimal (a leading `+` and
/// zeros read as `str::parse` reads them; the number is what counts).
fn claim(hex: &str) -> Option<u32> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let text: Vec<u8> = bytes
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect::<Option<_>>()?;
    let digits = text.strip_prefix(b"+").unwrap_or(&text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn judge(
    uid: u32,
    client: &[u8],
    auth: &Result<(), PeerError>,
    calls: &[Result<Option<Message>, PeerError>],
    sent: &[u8],
) {
    // The answers: CRLF-terminated text before the first reply.
    let mut answers = Vec::new();
    let mut rest = sent;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        if rest.first() == Some(&b'l') {
            break; // a little-endian D-Bus message
        }
        answers.push(String::from_utf8(rest[..end].to_vec()).expect("answers are text"));
        rest = &rest[end + 2..];
    }
    let Some((&0, commands)) = client.split_first() else {
        assert!(
            matches!(auth, Err(PeerError::Auth(_)) | Err(PeerError::Io(_))),
            "no credentials byte, yet {auth:?}"
        );
        let only_marker = wire::frame_len(sent) == Ok(sent.len())
            && wire::decode(sent).is_ok_and(|m| m.reply_serial == Some(FLUSH_SERIAL));
        assert!(
            only_marker,
            "answered a client without credentials byte: {sent:?}"
        );
        return;
    };
    // The commands, as the server splits them (lossy UTF-8, as jit-wire).
    let mut lines = Vec::new();
    let mut buf = commands.to_vec();
    while let Some(line) = wire::take_auth_line(&mut buf) {
        lines.push(line);
    }
    let consumed = answers.len() + usize::from(auth.is_ok());
    assert!(consumed <= MAX_COMMANDS, "{consumed} commands read");
    assert!(
        consumed <= lines.len(),
        "{} answers to {} lines",
        answers.len(),
        lines.len()
    );
    let mut ok_standing = false;
    let mut awaiting_data = false;
    for (line, answer) in lines.iter().zip(&answers) {
        assert!(
            line.len() <= MAX_AUTH_LINE,
            "answered a line of {} bytes",
            line.len()
        );
        let (command, arg) = line.split_once(' ').unwrap_or((line, ""));
        match answer.as_str() {
            "DATA" => {
                assert_eq!(line, "AUTH EXTERNAL", "DATA answers {line:?}");
                awaiting_data = true;
            }
            "REJECTED EXTERNAL" => (ok_standing, awaiting_data) = (false, false),
            "ERROR" | "ERROR descriptors are not passed here" => {}
            ok if ok == format!("OK {GUID}") => {
                let claimed = match (command, arg.split_once(' ')) {
                    ("AUTH", Some(("EXTERNAL", hex))) => claim(hex),
                    ("DATA", _) if awaiting_data && arg.is_empty() => Some(uid),
                    ("DATA", _) if awaiting_data => claim(arg),
                    _ => panic!("OK answers {line:?}"),
                };
                assert_eq!(claimed, Some(uid), "OK for {line:?}, kernel uid {uid}");
                (ok_standing, awaiting_data) = (true, false);
            }
            other => panic!("answer {other:?} to {line:?}"),
        }
    }
    let Ok(()) = auth else {
        assert!(calls.is_empty());
        assert_eq!(
            wire::decode(rest).map(|m| m.reply_serial),
            Ok(Some(FLUSH_SERIAL))
        );
        return;
    };
    // A command is its line's first word ("BEGIN " is BEGIN).
    let begin = &lines[answers.len()];
    assert_eq!(
        begin
            .split_once(' ')
            .map_or(begin.as_str(), |(command, _)| command),
        "BEGIN",
        "answers {answers:?}, sent {sent:?}"
    );
    assert!(
        ok_standing,
        "BEGIN accepted without a standing OK: {lines:?} / {answers:?}"
    );
    // After BEGIN: the frames the client sent, decoded as jit-wire does.
    let mut after = commands;
    for _ in 0..consumed {
        let end = after
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a consumed line");
        after = &after[end + 2..];
    }
    let mut replies = rest;
    for call in calls {
        let expected = match wire::frame_len(after) {
            Ok(len) if len <= after.len() => {
                let decoded = wire::decode(&after[..len]);
                after = &after[len..];
                Some(decoded)
            }
            Err(WireError::Incomplete) | Ok(_) if after.is_empty() => None,
            _ => {
                assert!(call.is_err(), "{call:?} from bytes that do not frame");
                break;
            }
        };
        match (call, expected) {
            (Ok(Some(got)), Some(Ok(want))) => {
                assert_eq!(got, &want);
                if got.flags & NO_REPLY_EXPECTED == 0 {
                    let len = wire::frame_len(replies).expect("a reply");
                    let reply = wire::decode(&replies[..len]).expect("a decodable reply");
                    assert_eq!(
                        (reply.kind, reply.reply_serial, reply.body.as_slice()),
                        (
                            Kind::MethodReturn,
                            Some(got.serial),
                            &[Value::Bool(true)][..]
                        )
                    );
                    replies = &replies[len..];
                }
            }
            (Ok(None), None) | (Err(_), Some(Err(_))) => break,
            // Truncated at the end of the stream.
            (Err(PeerError::Io(_)), None) => break,
            (got, want) => panic!("server read {got:?} where the bytes decode to {want:?}"),
        }
    }
    // Last, the harness's own reply.
    assert_eq!(
        wire::decode(replies).map(|m| m.reply_serial),
        Ok(Some(FLUSH_SERIAL))
    );
}
