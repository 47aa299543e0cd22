//! The connection's bytes as the module uses them: a receive buffer filled with a deadline
//! (`connection.receive`, one host call per wait, so a slow client cannot hold a session
//! past its timeout), and whole-buffer writes labelled with their wait channel.

use std::io::Write;

use serverkit_sdk::wasip2::clocks::monotonic_clock;
use serverkit_sdk::wasip2::io::streams::{InputStream, OutputStream};

use serverkit_sdk::connection::{Connection, ReceiveError, SendKind};

/// Bytes asked of the host per read (its own cap is 64 KiB): request heads are small.
const READ_CHUNK: u64 = 16 * 1024;

/// Nanoseconds in a second, for deadlines.
pub const SECOND: u64 = 1_000_000_000;

/// The connection broke while sending: the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// What waiting for bytes produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// New bytes are in the buffer.
    Data,
    /// The client closed (or reset) the connection.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// A session's streams and receive buffer. The input stream is held, unread: bytes come
/// through `connection.receive`.
pub struct Streams {
    input: InputStream,
    output: OutputStream,
    /// Received bytes not consumed yet.
    pub buf: Vec<u8>,
    kind: SendKind,
}

impl Streams {
    /// Takes the connection's streams.
    pub fn new(conn: &Connection) -> Result<Self, String> {
        let (input, output) = conn.streams().ok_or("connection streams already taken")?;
        Ok(Streams {
            input,
            output,
            buf: Vec::with_capacity(4096),
            kind: SendKind::Body,
        })
    }

    /// Now, on the monotonic clock, in nanoseconds.
    pub fn now() -> u64 {
        monotonic_clock::now()
    }

    /// Reads what is available into `buf`, waiting until `deadline` (monotonic ns).
    pub fn fill(&mut self, conn: &Connection, deadline: u64) -> Fill {
        let timeout = deadline.saturating_sub(Self::now());
        self.receive(conn, timeout, false)
    }

    /// Waits up to `timeout` (ns) for the client's next request, telling the host the
    /// session is between requests meanwhile.
    pub fn fill_between_requests(&mut self, conn: &Connection, timeout: u64) -> Fill {
        self.receive(conn, timeout, true)
    }

    fn receive(&mut self, conn: &Connection, timeout: u64, between_requests: bool) -> Fill {
        match conn.receive(READ_CHUNK, timeout, between_requests) {
            Ok(bytes) => {
                self.buf.extend_from_slice(&bytes);
                Fill::Data
            }
            Err(ReceiveError::TimedOut) => Fill::TimedOut,
            Err(ReceiveError::Closed | ReceiveError::Failed(_)) => Fill::Closed,
        }
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Writes all of `bytes` and flushes, counted in wait channel `kind`.
    pub fn send(
        &mut self,
        conn: &Connection,
        kind: SendKind,
        bytes: &[u8],
    ) -> Result<(), Disconnected> {
        self.label(conn, kind);
        self.output.write_all(bytes).map_err(|_| Disconnected)?;
        self.output.flush().map_err(|_| Disconnected)
    }

    /// Tells the host what the next writes are, if it changed.
    pub fn label(&mut self, conn: &Connection, kind: SendKind) {
        if self.kind != kind {
            conn.sending(kind);
            self.kind = kind;
        }
    }

    /// Closes both streams; call before dropping the connection.
    pub fn close(self) {
        drop(self.input);
        drop(self.output);
    }
}
