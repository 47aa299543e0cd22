//! Reading the client's lines: CRLF or bare LF, at most [`MAX_LINE`] bytes, over the
//! connection's input stream (pipelined commands wait in the buffer, in order).

use std::io::{BufRead, BufReader, Read};

use wasip2::io::streams::InputStream;

/// Longest line accepted. RFC 2449 limits commands to 255 octets; a SASL response with a
/// long password may exceed that, so the limit is a little wider for every line.
pub const MAX_LINE: usize = 1024;

/// One line read.
pub enum Line {
    /// The line without its line ending.
    Text(String),
    /// Longer than [`MAX_LINE`]: the rest of it was read and discarded.
    TooLong,
    /// The client closed the connection (or it broke).
    Closed,
}

/// The client's side of the connection.
pub struct Lines {
    reader: BufReader<InputStream>,
}

impl Lines {
    /// Reads from `input`.
    pub fn new(input: InputStream) -> Self {
        Lines {
            reader: BufReader::new(input),
        }
    }

    /// The next line.
    pub fn next(&mut self) -> Line {
        let mut buf = Vec::new();
        match (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) | Err(_) => return Line::Closed,
            Ok(_) => {}
        }
        if !buf.ends_with(b"\n") {
            if buf.len() <= MAX_LINE {
                return Line::Closed; // end of stream in the middle of a line
            }
            return self.discard_rest();
        }
        let text = buf.trim_ascii_end_matches();
        Line::Text(String::from_utf8_lossy(text).into_owned())
    }

    /// Drops what was read but not yet taken as lines (STLS: sent before the handshake).
    pub fn discard_buffered(&mut self) {
        let buffered = self.reader.buffer().len();
        self.reader.consume(buffered);
    }

    fn discard_rest(&mut self) -> Line {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match (&mut self.reader)
                .take(64 * 1024)
                .read_until(b'\n', &mut sink)
            {
                Ok(0) | Err(_) => return Line::Closed,
                Ok(_) if sink.ends_with(b"\n") => return Line::TooLong,
                Ok(_) => {}
            }
        }
    }
}

trait TrimLineEnd {
    fn trim_ascii_end_matches(&self) -> &[u8];
}

impl TrimLineEnd for Vec<u8> {
    /// Drops the LF and a CR before it.
    fn trim_ascii_end_matches(&self) -> &[u8] {
        let s = self.strip_suffix(b"\n").unwrap_or(self);
        s.strip_suffix(b"\r").unwrap_or(s)
    }
}
