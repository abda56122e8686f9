//! The server's end of one peer-to-peer D-Bus connection from pam_jit:
//! SASL EXTERNAL, then method calls answered in order.
//!
//! pam_jit's calls are a fixed pair of basic-typed methods, and pam_jit
//! encodes them with the codec used here (`jit-wire`). A zbus server
//! connection did the same job for ~0.2 ms of jitd's CPU per sudo
//! (measured: its set-up, its tasks and its tear-down), on a 2-vCPU host
//! time taken from the sudo that waits.

use std::io;

use jit_wire::{
    self as wire, Message, Value, WireError, MAX_AUTH_LINE, MAX_MESSAGE, NO_REPLY_EXPECTED,
};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A client needs AUTH, maybe DATA or NEGOTIATE_UNIX_FD, then BEGIN.
const MAX_AUTH_COMMANDS: usize = 8;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    #[error(transparent)]
    Wire(#[from] WireError),
}

pub struct PeerConnection {
    stream: UnixStream,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Bytes to send before the next read, or with the next reply.
    out: Vec<u8>,
    serial: u32,
}

impl PeerConnection {
    pub fn new(stream: UnixStream) -> PeerConnection {
        PeerConnection {
            stream,
            buf: Vec::with_capacity(1024),
            out: Vec::new(),
            serial: 0,
        }
    }

    /// The server side of SASL EXTERNAL (D-Bus specification,
    /// "Authentication protocol"): the identity the client claims must be
    /// `uid`, which the kernel reported for it. Answers wait until more must
    /// be read: pam_jit sends its handshake and first call at once, and gets
    /// "OK" and the reply in one write, woken once.
    pub async fn authenticate(&mut self, uid: u32, guid: &str) -> Result<(), PeerError> {
        while self.buf.is_empty() {
            if !self.fill().await? {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
        // The credentials byte.
        if self.buf.remove(0) != 0 {
            return Err(PeerError::Auth("no credentials byte"));
        }
        let (mut authenticated, mut awaiting_data) = (false, false);
        for _ in 0..MAX_AUTH_COMMANDS {
            let line = self.read_line().await?;
            let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let identity_ok = |hex: &str| hex.is_empty() || claimed_uid(hex) == Some(uid);
            let answer = match command {
                "AUTH" if !authenticated => match rest.split_once(' ') {
                    None if rest == "EXTERNAL" => {
                        awaiting_data = true;
                        "DATA".to_owned()
                    }
                    // A new AUTH ends the DATA an earlier one awaited.
                    Some(("EXTERNAL", hex)) if !hex.is_empty() && identity_ok(hex) => {
                        (authenticated, awaiting_data) = (true, false);
                        format!("OK {guid}")
                    }
                    _ => "REJECTED EXTERNAL".to_owned(),
                },
                "DATA" if awaiting_data && identity_ok(rest) => {
                    (authenticated, awaiting_data) = (true, false);
                    format!("OK {guid}")
                }
                "BEGIN" if authenticated => return Ok(()),
                "NEGOTIATE_UNIX_FD" if authenticated => {
                    "ERROR descriptors are not passed here".into()
                }
                "DATA" | "CANCEL" | "ERROR" => "REJECTED EXTERNAL".to_owned(),
                _ => "ERROR".to_owned(),
            };
            // A rejection sends the client back to AUTH (D-Bus
            // specification, "Authentication state diagrams"): it withdraws
            // an earlier OK, or the DATA awaited.
            if answer.starts_with("REJECTED") {
                (authenticated, awaiting_data) = (false, false);
            }
            self.out
                .extend_from_slice(format!("{answer}\r\n").as_bytes());
        }
        Err(PeerError::Auth("too many commands"))
    }

    /// The next message, or None once the client has closed the connection.
    pub async fn next_message(&mut self) -> Result<Option<Message>, PeerError> {
        loop {
            match wire::frame_len(&self.buf) {
                Ok(len) if self.buf.len() >= len => {
                    let message = wire::decode(&self.buf[..len]);
                    self.buf.drain(..len);
                    return Ok(Some(message?));
                }
                Ok(_) | Err(WireError::Incomplete) => {
                    if !self.fill().await? {
                        return match self.buf.is_empty() {
                            true => Ok(None),
                            false => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                        };
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Answers `call` with its values or a named error, unless its caller
    /// asked for no reply.
    pub async fn answer(
        &mut self,
        call: &Message,
        outcome: Result<Vec<Value>, (String, String)>,
    ) -> io::Result<()> {
        if call.flags & NO_REPLY_EXPECTED != 0 {
            return Ok(());
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        let bytes = match outcome {
            Ok(values) => wire::encode_return(self.serial, call.serial, &values),
            Err((name, message)) => wire::encode_error(self.serial, call.serial, &name, &message),
        };
        self.out.extend_from_slice(&bytes);
        self.flush().await
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String, PeerError> {
        loop {
            if let Some(line) = wire::take_auth_line(&mut self.buf) {
                // A whole line may have come in one read.
                if line.len() > MAX_AUTH_LINE {
                    return Err(PeerError::Auth("overlong line"));
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_AUTH_LINE {
                return Err(PeerError::Auth("overlong line"));
            }
            if !self.fill().await? {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
    }

    /// Reads what is available, once the client has all our answers; false
    /// at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.flush().await?;
        if self.buf.len() > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "more unread data than a message may hold",
            ));
        }
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}

/// The uid a client claims in SASL EXTERNAL: its decimal text, hex-encoded.
fn claimed_uid(hex: &str) -> Option<u32> {
    if !hex.len().is_multiple_of(2) || hex.len() > 20 {
        return None;
    }
    let text: Option<String> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(hex.get(i..i + 2)?, 16)
                .ok()
                .map(char::from)
        })
        .collect();
    text?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_wire::{Call, Kind};

    const GUID: &str = "0123456789abcdef0123456789abcdef";

    fn check_grant(serial: u32) -> Vec<u8> {
        wire::encode(&Call {
            serial,
            destination: None,
            path: "/org/jit/Daemon1",
            interface: "org.jit.Daemon1",
            member: "CheckGrant",
            args: &[Value::U32(1000), Value::Str("sudo".into())],
        })
    }

    /// What the server made of `client_sends` (all sent at once, as pam_jit
    /// pipelines its handshake and call), and what it wrote back.
    async fn exchange(
        client_sends: Vec<u8>,
        uid: u32,
    ) -> (Result<Option<Message>, PeerError>, Vec<u8>) {
        let (server, mut client) = UnixStream::pair().unwrap();
        client.write_all(&client_sends).await.unwrap();
        client.shutdown().await.unwrap();
        let mut conn = PeerConnection::new(server);
        let result = match conn.authenticate(uid, GUID).await {
            Ok(()) => conn.next_message().await,
            Err(e) => Err(e),
        };
        if let Ok(Some(call)) = &result {
            conn.answer(call, Ok(vec![Value::Bool(true)]))
                .await
                .unwrap();
        }
        drop(conn);
        let mut seen = Vec::new();
        client.read_to_end(&mut seen).await.unwrap();
        (result, seen)
    }

    #[tokio::test]
    async fn a_pipelined_handshake_and_call_are_answered() {
        let mut sends = b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(7));
        let (call, seen) = exchange(sends, 0).await;
        let call = call.unwrap().unwrap();
        assert_eq!(call.member.as_deref(), Some("CheckGrant"));
        let ok = format!("OK {GUID}\r\n");
        assert!(seen.starts_with(ok.as_bytes()), "{seen:?}");
        let reply = wire::decode(&seen[ok.len()..]).unwrap();
        assert_eq!(
            (reply.kind, reply.reply_serial),
            (Kind::MethodReturn, Some(7))
        );
        assert_eq!(reply.body, [Value::Bool(true)]);
    }

    async fn expect(client: &mut UnixStream, want: String) {
        let mut got = vec![0u8; want.len()];
        let read = client.read_exact(&mut got);
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("no answer")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// A client that waits for each answer (as libdbus does) gets each
    /// answer before it sends the next command.
    #[tokio::test]
    async fn a_client_that_waits_for_ok_gets_it() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let served = tokio::spawn(async move {
            let mut conn = PeerConnection::new(server);
            conn.authenticate(0, GUID).await?;
            let call = conn.next_message().await?.expect("a call");
            conn.answer(&call, Ok(vec![])).await?;
            Ok::<_, PeerError>(())
        });
        client.write_all(b"\0AUTH EXTERNAL\r\n").await.unwrap();
        expect(&mut client, "DATA\r\n".into()).await;
        client.write_all(b"DATA\r\n").await.unwrap();
        expect(&mut client, format!("OK {GUID}\r\n")).await;
        client.write_all(b"BEGIN\r\n").await.unwrap();
        client.write_all(&check_grant(3)).await.unwrap();
        let mut reply = Vec::new();
        client.shutdown().await.unwrap();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(wire::decode(&reply).unwrap().reply_serial, Some(3));
        served.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_data_exchange_and_fd_negotiation_are_understood() {
        let mut sends = b"\0AUTH EXTERNAL\r\nDATA\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(1));
        let (call, seen) = exchange(sends, 0).await;
        assert!(call.unwrap().is_some());
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.starts_with(&format!("DATA\r\nOK {GUID}\r\nERROR ")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn another_identity_or_no_credentials_byte_is_refused() {
        // Claims uid 1000 where the kernel saw uid 0.
        let mut sends = b"\0AUTH EXTERNAL 31303030\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(1));
        let (result, seen) = exchange(sends, 0).await;
        assert!(result.is_err(), "{result:?}");
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("REJECTED EXTERNAL\r\nERROR\r\n"), "{text}");
        assert!(!text.contains("OK "), "{text}");
        let (result, _) = exchange(b"AUTH EXTERNAL 30\r\n".to_vec(), 0).await;
        assert!(matches!(result, Err(PeerError::Auth(_))), "{result:?}");
    }

    #[tokio::test]
    async fn garbage_after_the_handshake_is_an_error_and_eof_is_the_end() {
        let mut sends = b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec();
        sends.extend([b'B'; 64]);
        let (result, _) = exchange(sends, 0).await;
        assert!(matches!(result, Err(PeerError::Wire(_))), "{result:?}");
        let (result, _) = exchange(b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec(), 0).await;
        assert!(matches!(result, Ok(None)), "{result:?}");
    }

    /// Found by fuzz/ (target sasl): BEGIN was accepted after the
    /// server had answered REJECTED to the OK'd client's CANCEL, ERROR or
    /// DATA, and DATA after a REJECTED still completed the AUTH before it.
    #[tokio::test]
    async fn a_rejection_withdraws_an_earlier_ok() {
        let mut sends = b"\0AUTH EXTERNAL\r\nAUTH EXT\r\nDATA\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(1));
        let (result, seen) = exchange(sends, 0).await;
        assert!(result.is_err(), "{result:?}");
        let text = String::from_utf8_lossy(&seen);
        let want = "DATA\r\nREJECTED EXTERNAL\r\nREJECTED EXTERNAL\r\nERROR\r\n";
        assert!(text.starts_with(want), "{text}");
        for withdraw in ["CANCEL", "ERROR", "DATA"] {
            let mut sends = format!("\0AUTH EXTERNAL 30\r\n{withdraw}\r\nBEGIN\r\n").into_bytes();
            sends.extend(check_grant(1));
            let (result, seen) = exchange(sends, 0).await;
            assert!(result.is_err(), "{withdraw}: {result:?}");
            let text = String::from_utf8_lossy(&seen);
            let want = format!("OK {GUID}\r\nREJECTED EXTERNAL\r\nERROR\r\n");
            assert!(text.starts_with(&want), "{withdraw}: {text}");
        }
        // Authenticating again after the rejection works.
        let mut sends = b"\0AUTH EXTERNAL 30\r\nCANCEL\r\nAUTH EXTERNAL 30\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(2));
        let (call, _) = exchange(sends, 0).await;
        assert_eq!(call.unwrap().unwrap().serial, 2);
    }

    /// Found by fuzz/ (target sasl): an AUTH with its identity, after an AUTH
    /// that awaited DATA, left DATA awaited: a later DATA got a second OK.
    #[tokio::test]
    async fn an_auth_ends_the_data_an_earlier_one_awaited() {
        let mut sends = b"\0AUTH EXTERNAL\r\nAUTH EXTERNAL 30\r\nDATA\r\nBEGIN\r\n".to_vec();
        sends.extend(check_grant(1));
        let (_, seen) = exchange(sends, 0).await;
        let text = String::from_utf8_lossy(&seen);
        let want = format!("DATA\r\nOK {GUID}\r\nREJECTED EXTERNAL\r\n");
        assert!(text.starts_with(&want), "{text}");
    }

    /// Found by fuzz/ (target sasl): a line longer than MAX_AUTH_LINE was
    /// answered when it came whole in one read.
    #[tokio::test]
    async fn an_overlong_line_is_refused_even_in_one_read() {
        let long = "X".repeat(MAX_AUTH_LINE + 1);
        let mut sends = format!("\0{long}\r\nAUTH EXTERNAL 30\r\nBEGIN\r\n").into_bytes();
        sends.extend(check_grant(1));
        let (result, seen) = exchange(sends, 0).await;
        assert!(matches!(result, Err(PeerError::Auth(_))), "{result:?}");
        assert!(seen.is_empty(), "{seen:?}");
        let fits = "X".repeat(MAX_AUTH_LINE);
        let mut sends = format!("\0{fits}\r\nAUTH EXTERNAL 30\r\nBEGIN\r\n").into_bytes();
        sends.extend(check_grant(1));
        assert!(exchange(sends, 0).await.0.unwrap().is_some());
    }

    /// Found by fuzz/ (target sasl): a client that closed without sending
    /// a byte kept the server reading the end of the stream in a loop (its
    /// thread busy until the connection's lifetime ran out).
    #[tokio::test]
    async fn a_client_that_sends_nothing_ends_the_handshake() {
        let exchanged =
            tokio::time::timeout(std::time::Duration::from_secs(5), exchange(Vec::new(), 0));
        let (result, seen) = exchanged.await.expect("the handshake ends");
        assert!(matches!(result, Err(PeerError::Io(_))), "{result:?}");
        assert!(seen.is_empty(), "{seen:?}");
    }

    #[test]
    fn claimed_uids_are_hex_encoded_decimal() {
        assert_eq!(claimed_uid("30"), Some(0));
        assert_eq!(claimed_uid("31303030"), Some(1000));
        for bad in ["3", "zz", "2d31", "", "3130303030303030303030"] {
            assert_eq!(claimed_uid(bad), None, "{bad}");
        }
    }
}
