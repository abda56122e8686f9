//! A Unix stream for zbus whose peer jitd already knows.
//!
//! To authenticate a peer-to-peer client, zbus asks the socket for the
//! peer's credentials and, on its own sockets, also looks the peer's groups
//! up through NSS on the blocking pool: a hop to another thread on every
//! pam_jit exchange, for groups jitd never uses. jitd read SO_PEERCRED
//! itself when it accepted the connection; this socket hands that over.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::export::async_trait::async_trait;
use zbus::fdo::ConnectionCredentials;

#[derive(Debug)]
pub struct PeerSocket {
    stream: UnixStream,
    uid: u32,
    pid: u32,
}

impl PeerSocket {
    pub fn new(stream: UnixStream, uid: u32, pid: u32) -> PeerSocket {
        PeerSocket { stream, uid, pid }
    }
}

impl Socket for PeerSocket {
    type ReadHalf = Reader;
    type WriteHalf = Writer;

    fn split(self) -> Split<Reader, Writer> {
        let (read, write) = self.stream.into_split();
        let reader = Reader {
            read,
            uid: self.uid,
            pid: self.pid,
        };
        Split::new(reader, Writer(write))
    }
}

#[derive(Debug)]
pub struct Reader {
    read: OwnedReadHalf,
    uid: u32,
    pid: u32,
}

#[async_trait]
impl ReadHalf for Reader {
    async fn recvmsg(&mut self, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        // pam_jit's calls carry no descriptors.
        Ok((self.read.read(buffer).await?, vec![]))
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        Ok(ConnectionCredentials::default()
            .set_unix_user_id(self.uid)
            .set_process_id(self.pid))
    }
}

#[derive(Debug)]
pub struct Writer(OwnedWriteHalf);

#[async_trait]
impl WriteHalf for Writer {
    async fn sendmsg(&mut self, buffer: &[u8], _fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.0.write(buffer).await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}
