//! A session's connection as `std::io`: buffered reads, lines bounded by a named limit,
//! writes in as few host calls as the host's write permits allow.

use std::io::{self, BufRead, BufReader, Read, Write};

use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::Connection;

/// Longest line [`Client::read_line`] returns by default, line ending included. It
/// defends the module's memory against a client that never sends a newline: past it the
/// line is [`Line::TooLong`] and its rest is left unread.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Bytes [`Client::skip_line`] reads per call while it looks for the end of a long line.
const SKIP_CHUNK: u64 = 64 * 1024;

/// One line read by [`Client::read_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A whole line as received, its ending (`\n` or `\r\n`) included.
    Complete(Vec<u8>),
    /// The client closed the connection in the middle of a line: these bytes had no
    /// ending.
    Unterminated(Vec<u8>),
    /// Longer than the limit; the rest of the line is still unread
    /// ([`Client::skip_line`] drops it).
    TooLong,
    /// The client closed the connection (or it broke) before sending another byte.
    Closed,
}

impl Line {
    /// The line's bytes without `\n` or `\r\n`; `None` for `TooLong` and `Closed`.
    pub fn content(&self) -> Option<&[u8]> {
        match self {
            Line::Complete(bytes) | Line::Unterminated(bytes) => {
                let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                Some(bytes.strip_suffix(b"\r").unwrap_or(bytes))
            }
            Line::TooLong | Line::Closed => None,
        }
    }
}

/// Bytes of input buffered for line reads. Command lines are short (POP3's are at most 255
/// bytes); std's default of 8 KiB cost an idle POP3 session about 4 KiB of resident guest
/// memory (`tools/bench-pop`: 70.7 -> 66.9 KiB). A longer line takes one host read per
/// KiB; `Read` into a buffer at least this large bypasses it.
const READ_BUFFER: usize = 1024;

/// The client's side of a session: the connection's streams as `Read`/`BufRead`/`Write`,
/// and the connection itself for its address, TLS and wait-channel calls.
pub struct Client {
    reader: BufReader<InputStream>,
    output: OutputStream,
    max_line: usize,
    /// Last: the streams above are its children and must be dropped first.
    connection: Connection,
}

impl Client {
    /// Takes `connection`'s streams; fails if they were taken already.
    pub fn new(connection: Connection) -> Result<Self, String> {
        let (input, output) = connection
            .streams()
            .ok_or("connection streams already taken")?;
        Ok(Client {
            reader: BufReader::with_capacity(READ_BUFFER, input),
            output,
            max_line: DEFAULT_MAX_LINE,
            connection,
        })
    }

    /// The longest line [`Client::read_line`] accepts, ending included (a protocol's own
    /// limit, e.g. POP3's).
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// The connection, for its addresses, `is_tls`, `start_tls`, `sending`, `send_file`.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The client's address, `ip:port`.
    pub fn peer(&self) -> String {
        self.connection.peer_address()
    }

    /// The next line, at most the limit long (see [`DEFAULT_MAX_LINE`]). Pipelined
    /// lines wait in the buffer, in order.
    pub fn read_line(&mut self) -> io::Result<Line> {
        read_line(&mut self.reader, self.max_line)
    }

    /// Reads and drops everything up to the next line ending; `false` if the connection
    /// ended first.
    pub fn skip_line(&mut self) -> io::Result<bool> {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let n = (&mut self.reader)
                .take(SKIP_CHUNK)
                .read_until(b'\n', &mut sink)?;
            if n == 0 {
                return Ok(false);
            }
            if sink.ends_with(b"\n") {
                return Ok(true);
            }
        }
    }

    /// Drops what was received but not read yet (STARTTLS: bytes sent before the
    /// handshake must never be taken as commands).
    pub fn discard_buffered(&mut self) {
        let buffered = self.reader.buffer().len();
        self.reader.consume(buffered);
    }

    /// Sends `bytes` in as few host calls as the write permits allow (std's `Write` for a
    /// WASI stream goes 4 KiB at a time, each write flushed and awaited), then starts a
    /// flush without waiting for it: the next read, or [`Client::finish`], waits instead.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        send(&self.output, bytes)
    }

    /// Splits the session into the client's lines, as an iterator, and the replies: the
    /// shape of a line protocol (see [`crate::lines`]).
    pub fn into_lines(self) -> (crate::lines::Lines, crate::lines::Replies) {
        crate::lines::Lines::split(self.reader, self.output, self.max_line, self.connection)
    }

    /// Waits until everything sent has reached the socket (before `start_tls`, or at the
    /// end of a session).
    pub fn finish(&mut self) -> Result<(), StreamError> {
        self.output.blocking_flush()
    }
}

/// The next line from `reader`, at most `max_line` bytes long, ending included.
pub(crate) fn read_line(reader: &mut BufReader<InputStream>, max_line: usize) -> io::Result<Line> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(max_line as u64)
        .read_until(b'\n', &mut buf)?;
    Ok(if n == 0 {
        Line::Closed
    } else if buf.ends_with(b"\n") {
        Line::Complete(buf)
    } else if buf.len() < max_line || reader.fill_buf()?.is_empty() {
        Line::Unterminated(buf)
    } else {
        Line::TooLong
    })
}

/// Writes all of `bytes` in as few calls as the write permits allow, then starts a flush.
pub(crate) fn send(output: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let permit = output.check_write()?;
        if permit == 0 {
            output.subscribe().block();
            continue;
        }
        let n = bytes
            .len()
            .min(usize::try_from(permit).unwrap_or(usize::MAX));
        output.write(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    output.flush()
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BufRead for Client {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

impl Write for Client {
    // `OutputStream` has inherent `write` and `flush` (non-blocking, `StreamError`); the
    // `std::io::Write` ones write everything and wait for the flush.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut self.output, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn content_strips_lf_and_crlf() {
        assert_eq!(
            Line::Complete(b"USER a\r\n".to_vec()).content(),
            Some(&b"USER a"[..])
        );
        assert_eq!(Line::Complete(b"hi\n".to_vec()).content(), Some(&b"hi"[..]));
        assert_eq!(
            Line::Unterminated(b"hi".to_vec()).content(),
            Some(&b"hi"[..])
        );
        assert_eq!(Line::TooLong.content(), None);
        assert_eq!(Line::Closed.content(), None);
    }
}
