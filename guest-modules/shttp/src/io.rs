//! The connection's byte streams as the module uses them: a receive buffer filled with a
//! deadline (wasi clocks + poll, so a slow client cannot hold a session past its timeout),
//! and whole-buffer writes labelled with their wait channel.

use std::io::Write;

use serverkit_sdk::wasip2::clocks::monotonic_clock;
use serverkit_sdk::wasip2::io::poll::{Pollable, poll};
use serverkit_sdk::wasip2::io::streams::{InputStream, OutputStream, StreamError};

use serverkit_sdk::connection::{Connection, SendKind};

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

/// A session's streams and receive buffer.
pub struct Streams {
    input: InputStream,
    output: OutputStream,
    ready: Pollable,
    /// Received bytes not consumed yet.
    pub buf: Vec<u8>,
    kind: SendKind,
}

impl Streams {
    /// Takes the connection's streams.
    pub fn new(conn: &Connection) -> Result<Self, String> {
        let (input, output) = conn.streams().ok_or("connection streams already taken")?;
        let ready = input.subscribe();
        Ok(Streams {
            input,
            output,
            ready,
            buf: Vec::with_capacity(4096),
            kind: SendKind::Body,
        })
    }

    /// Now, on the monotonic clock, in nanoseconds.
    pub fn now() -> u64 {
        monotonic_clock::now()
    }

    /// Reads what is available into `buf`, waiting until `deadline` (monotonic ns).
    pub fn fill(&mut self, deadline: u64) -> Fill {
        loop {
            match self.input.read(READ_CHUNK) {
                Ok(bytes) if !bytes.is_empty() => {
                    self.buf.extend_from_slice(&bytes);
                    return Fill::Data;
                }
                Ok(_) => {}
                Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => {
                    return Fill::Closed;
                }
            }
            // A deadline already past makes the timer ready at once.
            let timer = monotonic_clock::subscribe_instant(deadline);
            if poll(&[&self.ready, &timer]) == [1] {
                return Fill::TimedOut;
            }
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
        drop(self.ready);
        drop(self.input);
        drop(self.output);
    }
}
