//! A RELP client (the protocol of rsyslog's imrelp/omrelp): each syslog
//! message is a command the receiver answers once it has taken it, so a
//! message counts as delivered only on its "200 OK".
//!
//! Frames are `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. Up to [`WINDOW`]
//! commands are outstanding at once; answers may come in any order, and
//! what counts is the prefix of the batch answered with 200.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Commands outstanding at once (rsyslog's default window is 128).
const WINDOW: usize = 128;
/// Longest answer read (an error text with it).
const MAX_DATA: usize = 64 * 1024;
const OFFERS: &str = "relp_version=0\nrelp_software=jit\ncommands=syslog";

fn broken(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

pub struct Relp {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next: u32,
}

/// One frame read from the server.
struct Frame {
    txnr: u32,
    command: String,
    data: Vec<u8>,
}

impl Relp {
    /// Opens a session on a connected stream (with its timeouts set).
    pub fn open(stream: TcpStream) -> io::Result<Relp> {
        let reader = BufReader::new(stream.try_clone()?);
        let mut relp = Relp {
            writer: stream,
            reader,
            next: 1,
        };
        let txnr = relp.send("open", OFFERS.as_bytes())?;
        relp.writer.flush()?;
        let answer = relp.read_frame()?;
        if answer.txnr != txnr || answer.command != "rsp" {
            return Err(broken(format!(
                "the receiver answered '{} {}' to open",
                answer.txnr, answer.command
            )));
        }
        let status = String::from_utf8_lossy(&answer.data);
        if !status.starts_with("200") {
            return Err(broken(format!(
                "the receiver refused the session: {}",
                first_line(&status)
            )));
        }
        if !status.lines().any(|l| l.trim() == "commands=syslog") {
            return Err(broken("the receiver does not take syslog messages".into()));
        }
        Ok(relp)
    }

    pub fn socket(&self) -> &TcpStream {
        &self.writer
    }

    fn send(&mut self, command: &str, data: &[u8]) -> io::Result<u32> {
        let txnr = self.next;
        self.next = if self.next >= 999_999_999 {
            1
        } else {
            self.next + 1
        };
        let mut frame = format!("{txnr} {command} {}", data.len()).into_bytes();
        if !data.is_empty() {
            frame.push(b' ');
            frame.extend_from_slice(data);
        }
        frame.push(b'\n');
        self.writer.write_all(&frame)?;
        Ok(txnr)
    }

    fn read_token(&mut self, max: usize) -> io::Result<String> {
        let mut token = Vec::new();
        loop {
            let mut byte = [0u8; 1];
            self.reader.read_exact(&mut byte)?;
            match byte[0] {
                b' ' | b'\n' if !token.is_empty() => {
                    token.push(byte[0]);
                    break;
                }
                b if b.is_ascii_alphanumeric() && token.len() < max => token.push(b),
                b => return Err(broken(format!("unexpected byte {b:#04x} in a RELP header"))),
            }
        }
        String::from_utf8(token).map_err(|_| broken("a header that is not text".into()))
    }

    fn read_frame(&mut self) -> io::Result<Frame> {
        let txnr = self.read_token(9)?;
        let txnr = txnr
            .trim_end()
            .parse()
            .map_err(|_| broken(format!("bad transaction number '{}'", txnr.trim_end())))?;
        let command = self.read_token(32)?.trim_end().to_owned();
        let len = self.read_token(9)?;
        let ended = len.ends_with('\n');
        let len: usize = len
            .trim_end()
            .parse()
            .map_err(|_| broken("bad data length".into()))?;
        if len > MAX_DATA {
            return Err(broken(format!("an answer of {len} bytes")));
        }
        let mut data = vec![0u8; len];
        if !ended {
            self.reader.read_exact(&mut data)?;
            let mut trailer = [0u8; 1];
            self.reader.read_exact(&mut trailer)?;
            if trailer[0] != b'\n' {
                return Err(broken("a frame without its trailer".into()));
            }
        } else if len != 0 {
            return Err(broken("a frame shorter than its length".into()));
        }
        Ok(Frame {
            txnr,
            command,
            data,
        })
    }

    /// Sends `messages` in order; returns how many, from the first, the
    /// receiver took, and why the rest were not (the session is then
    /// unusable). Stops sending at `deadline`.
    pub fn send_all(&mut self, messages: &[String], deadline: Instant) -> (usize, Option<String>) {
        let mut waiting: HashMap<u32, usize> = HashMap::new();
        let mut acked = vec![false; messages.len()];
        let mut sent = 0;
        let mut prefix = 0;
        let result = (|| -> io::Result<()> {
            while prefix < messages.len() {
                while sent < messages.len() && waiting.len() < WINDOW {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the batch took too long",
                        ));
                    }
                    let txnr = self.send("syslog", messages[sent].as_bytes())?;
                    waiting.insert(txnr, sent);
                    sent += 1;
                }
                self.writer.flush()?;
                let frame = self.read_frame()?;
                if frame.command == "serverclose" {
                    return Err(broken("the receiver closed the session".into()));
                }
                let Some(index) = waiting
                    .remove(&frame.txnr)
                    .filter(|_| frame.command == "rsp")
                else {
                    return Err(broken(format!(
                        "an answer '{} {}' to nothing sent",
                        frame.txnr, frame.command
                    )));
                };
                let status = String::from_utf8_lossy(&frame.data);
                if !status.starts_with("200") {
                    return Err(broken(format!(
                        "the receiver refused a message: {}",
                        first_line(&status)
                    )));
                }
                acked[index] = true;
                while prefix < messages.len() && acked[prefix] {
                    prefix += 1;
                }
            }
            Ok(())
        })();
        (prefix, result.err().map(|e| e.to_string()))
    }

    /// Ends the session politely (best effort).
    pub fn close(mut self) {
        if self
            .send("close", b"")
            .and_then(|_| self.writer.flush())
            .is_ok()
        {
            let _ = self.read_frame();
        }
    }
}

fn first_line(text: &str) -> String {
    jitd::core::sanitize::for_terminal(text.lines().next().unwrap_or(""))
        .chars()
        .take(200)
        .collect()
}
