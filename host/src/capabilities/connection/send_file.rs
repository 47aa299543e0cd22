//! `connection.send-file`: a response head and a file range sent by the host, the file's
//! bytes moving from the page cache to the socket by sendfile(2), never through the guest.
//!
//! Order on the wire: first what the guest already wrote to the output stream (drained
//! here), then `head`, then the file range. The head is sent with `MSG_MORE`, so the kernel
//! coalesces it with the first file bytes into full segments (nginx's `tcp_nopush`); the
//! sendfile call itself pushes the last segment out.
//!
//! A small range on a plain connection (at most [`SMALL_RANGE_BYTES`]) that is all in the
//! page cache is read by the host (`RWF_NOWAIT`, so the worker never waits for the disk)
//! into the head's buffer and goes out in one send: for a few KiB, copying costs the
//! kernel less than a second send through the page cache (`tools/bench-small-send.c`).
//! A small range not cached goes by sendfile like a large one.
//!
//! On a TLS connection the host reads the range itself (pread, in chunks) and writes it
//! through TLS: still never through guest memory.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::Delivery;
use super::streams::{Outgoing, lock};
use super::transport::Transport;
use crate::capabilities::files::blocking;
use crate::contract::bindings::connection::SendError;
use crate::contract::bindings::filesystem::EntryKind;
use tokio::io::Interest;

/// Longest head `send-file` accepts: what it defends is host memory against a guest
/// passing a huge buffer as "headers".
pub const MAX_SEND_HEAD_BYTES: usize = 64 * 1024;

/// Most bytes one sendfile(2) call is asked for, so one transfer of a huge file yields to
/// other sessions on the worker between calls.
const SENDFILE_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Bytes read from the file per write through TLS (one TLS record's worth).
const TLS_CHUNK_BYTES: usize = 16 * 1024;

/// Largest range a plain connection sends by copy (pread, then one send with the head)
/// rather than by sendfile(2).
const SMALL_RANGE_BYTES: u64 = 16 * 1024;

/// What a transfer needs from the connection.
pub(super) struct Transfer {
    pub socket: Arc<Transport>,
    pub delivery: Delivery,
    pub outgoing: Arc<Mutex<Outgoing>>,
}

impl Transfer {
    /// Sends `head` then `length` bytes of `fd` (of `size` bytes) from `offset`.
    pub async fn run(
        &self,
        mut head: Vec<u8>,
        fd: Arc<OwnedFd>,
        size: u64,
        kind: EntryKind,
        offset: u64,
        length: u64,
    ) -> Result<u64, SendError> {
        if head.len() > MAX_SEND_HEAD_BYTES {
            return Err(SendError::HeadTooLong);
        }
        if kind != EntryKind::File {
            return Err(SendError::NotAFile);
        }
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(SendError::OutOfRange);
        }
        self.drain_stream().await.map_err(error)?;
        let head_length = head.len() as u64;
        if self.socket.is_tls() {
            let sent = self
                .copy_tls(head, &fd, offset, length)
                .await
                .map_err(error)?;
            return Ok(head_length + sent);
        }
        if length <= SMALL_RANGE_BYTES
            && append_cached_range(&mut head, &fd, offset, length).map_err(error)?
        {
            self.send_all(&head, false).await.map_err(error)?;
            return Ok(head_length + length);
        }
        self.send_all(&head, true).await.map_err(error)?;
        let sent = self.send_range(&fd, offset, length).await.map_err(error)?;
        Ok(head_length + sent)
    }

    /// Waits until the output stream's pending bytes are on the socket.
    pub(super) async fn drain_stream(&self) -> io::Result<()> {
        loop {
            {
                let mut out = lock(&self.outgoing);
                out.push(&self.socket, &self.delivery);
                if let Some(e) = out.take_failure() {
                    return Err(e);
                }
                if out.done() {
                    return Ok(());
                }
            }
            self.socket.writable().await?;
        }
    }

    /// Writes `bytes` through TLS and waits until their ciphertext is on the socket.
    async fn write_tls(&self, mut bytes: &[u8]) -> io::Result<()> {
        loop {
            while !bytes.is_empty() {
                match self.socket.try_write(bytes) {
                    Ok(n) => {
                        self.delivery.sent(n);
                        bytes = &bytes[n..];
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if bytes.is_empty() && self.socket.flush()? {
                return Ok(());
            }
            self.socket.writable().await?;
        }
    }

    /// Reads the range in chunks and writes each through TLS, `head` with the first (read
    /// into the head's own buffer): a small response is one TLS record and one write to
    /// the socket, not two.
    async fn copy_tls(
        &self,
        head: Vec<u8>,
        fd: &OwnedFd,
        mut offset: u64,
        length: u64,
    ) -> io::Result<u64> {
        let end = offset + length;
        let mut buf = head;
        buf.reserve((length as usize).min(TLS_CHUNK_BYTES));
        loop {
            let want = ((end - offset) as usize).min(TLS_CHUNK_BYTES);
            offset += append_read(&mut buf, fd, offset, want)? as u64;
            self.write_tls(&buf).await?;
            if offset >= end {
                return Ok(length);
            }
            buf.clear();
        }
    }

    /// Sends all of `bytes` on the plain socket; `more` (`MSG_MORE`) when file bytes follow.
    pub(super) async fn send_all(&self, mut bytes: &[u8], more: bool) -> io::Result<()> {
        let flags = if more { libc::MSG_MORE } else { 0 } | libc::MSG_NOSIGNAL;
        let tcp = self.socket.socket.as_ref();
        let socket = socket2::SockRef::from(tcp);
        while !bytes.is_empty() {
            tcp.writable().await?;
            match tcp.try_io(Interest::WRITABLE, || socket.send_with_flags(bytes, flags)) {
                Ok(n) => {
                    self.delivery.sent(n);
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn send_range(&self, fd: &OwnedFd, mut offset: u64, length: u64) -> io::Result<u64> {
        let end = offset + length;
        while offset < end {
            let chunk = ((end - offset) as usize).min(SENDFILE_CHUNK_BYTES);
            let tcp = self.socket.socket.as_ref();
            tcp.writable().await?;
            let sent = tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(tcp.as_fd(), fd.as_fd(), Some(&mut offset), chunk)
                    .map_err(io::Error::from)
            });
            match sent {
                // The file shrank under us: stop rather than spin.
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.delivery.sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(length)
    }
}

/// Appends the `length` bytes of `fd` at `offset` to `buf` if they are all in the page
/// cache; false, `buf` as it was, if reading them would wait for the disk (or the file is
/// now shorter than the range: sendfile then finds that out and fails).
fn append_cached_range(
    buf: &mut Vec<u8>,
    fd: &OwnedFd,
    offset: u64,
    length: u64,
) -> io::Result<bool> {
    let start = buf.len();
    buf.resize(start + length as usize, 0);
    let read = blocking::read_cached(fd.as_fd(), &mut buf[start..], offset)?;
    if read == Some(length as usize) {
        return Ok(true);
    }
    buf.truncate(start);
    Ok(false)
}

/// Appends to `buf` up to `want` bytes of `fd` at `offset` (one pread); how many. Nothing
/// read means the file now ends before `offset`: it shrank since its size was read, an
/// error, so a caller never spins on it.
fn append_read(buf: &mut Vec<u8>, fd: &OwnedFd, offset: u64, want: usize) -> io::Result<usize> {
    if want == 0 {
        return Ok(0);
    }
    let start = buf.len();
    buf.resize(start + want, 0);
    let n = rustix::io::pread(fd.as_fd(), &mut buf[start..], offset)?;
    buf.truncate(start + n);
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(n)
}

fn error(e: io::Error) -> SendError {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected => SendError::Closed,
        _ => SendError::OsError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_holding(bytes: &[u8]) -> OwnedFd {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.into()
    }

    #[test]
    fn a_small_cached_range_follows_its_head_in_one_buffer() {
        let fd = file_holding(b"0123456789");
        let mut response = b"HEAD ".to_vec();
        assert!(append_cached_range(&mut response, &fd, 2, 5).unwrap());
        assert_eq!(response, b"HEAD 23456");
        let mut empty = b"HEAD".to_vec();
        assert!(append_cached_range(&mut empty, &fd, 10, 0).unwrap());
        assert_eq!(empty, b"HEAD");
    }

    #[test]
    fn a_file_that_shrank_below_its_range_is_left_to_sendfile() {
        let fd = file_holding(b"0123");
        let mut head = b"HEAD".to_vec();
        assert!(!append_cached_range(&mut head, &fd, 2, 5).unwrap());
        assert_eq!(
            head, b"HEAD",
            "the head is left as it was, for sendfile's path"
        );
    }
}
