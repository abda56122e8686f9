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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::time::Duration;

    /// A RELP server that accepts the session, then answers the first
    /// `good` messages with 200 (last first, to show answers out of order
    /// count by transaction) and the next with 500.
    fn server(good: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut frame = || -> Option<(String, String, String)> {
                let mut head = Vec::new();
                reader.read_until(b' ', &mut head).ok()?;
                let txnr = String::from_utf8(head).ok()?.trim().to_owned();
                let mut command = Vec::new();
                reader.read_until(b' ', &mut command).ok()?;
                let mut len = Vec::new();
                reader.read_until(b' ', &mut len).ok()?;
                let len: usize = String::from_utf8(len).ok()?.trim().parse().ok()?;
                let mut data = vec![0u8; len + 1];
                reader.read_exact(&mut data).ok()?;
                data.pop();
                Some((
                    txnr,
                    String::from_utf8(command).ok()?.trim().to_owned(),
                    String::from_utf8(data).ok()?,
                ))
            };
            let (txnr, command, offers) = frame().unwrap();
            assert_eq!(command, "open");
            assert!(offers.contains("commands=syslog"), "{offers}");
            let answer = "200 OK\nrelp_version=0\ncommands=syslog";
            writeln!(out, "{txnr} rsp {} {answer}", answer.len()).unwrap();
            let mut messages = Vec::new();
            let mut held = Vec::new();
            while let Some((txnr, command, data)) = frame() {
                assert_eq!(command, "syslog");
                messages.push(data);
                if messages.len() <= good {
                    held.push(txnr);
                    if messages.len() == good {
                        for txnr in held.drain(..).rev() {
                            writeln!(out, "{txnr} rsp 6 200 OK").unwrap();
                        }
                    }
                } else {
                    writeln!(out, "{txnr} rsp 8 500 full").unwrap();
                    break;
                }
            }
            messages
        });
        (port, handle)
    }

    fn session(port: u16) -> Relp {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Relp::open(stream).unwrap()
    }

    #[test]
    fn only_the_acknowledged_prefix_counts() {
        let (port, server) = server(3);
        let mut relp = session(port);
        let messages: Vec<String> = (0..6).map(|i| format!("message {i}")).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        let (taken, error) = relp.send_all(&messages, deadline);
        assert_eq!(taken, 3);
        assert!(error.unwrap().contains("500 full"));
        let received = server.join().unwrap();
        assert_eq!(received[..4], messages[..4]);
    }

    #[test]
    fn a_whole_batch_acknowledged_counts_whole() {
        let (port, server) = server(4);
        let mut relp = session(port);
        let messages: Vec<String> = (0..4).map(|i| format!("line\n{i}")).collect();
        let (taken, error) = relp.send_all(&messages, Instant::now() + Duration::from_secs(5));
        assert_eq!((taken, error), (4, None));
        drop(relp);
        assert_eq!(server.join().unwrap(), messages);
    }
}
