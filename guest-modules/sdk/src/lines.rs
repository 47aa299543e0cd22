//! A line protocol's session in two halves: the client's lines as an iterator, and the
//! replies. Most text protocols (the module template's, echo's) are this loop:
//!
//! ```no_run
//! # fn session(conn: serverkit_sdk::Connection) -> Result<(), String> {
//! let (lines, mut reply) = serverkit_sdk::lines::split(conn)?;
//! reply.line("hello")?;
//! for line in lines {
//!     let line = line?;
//!     if line == "QUIT" {
//!         break;
//!     }
//!     reply.line(&line)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::io::BufReader;
use std::rc::Rc;

use wasip2::io::streams::{InputStream, OutputStream};

use crate::client::{Line, read_line, send};
use crate::{Client, Connection, Error};

/// Takes `connection`'s streams and splits them into [`Lines`] and [`Replies`], lines
/// bounded by [`crate::client::DEFAULT_MAX_LINE`] (use [`Client::with_max_line`] and
/// [`Client::into_lines`] for another limit).
pub fn split(connection: Connection) -> Result<(Lines, Replies), Error> {
    Ok(Client::new(connection)?.into_lines())
}

/// The client's lines, without their `\n` or `\r\n`, as UTF-8 (invalid bytes replaced).
/// Ends when the client closes the connection; a line past the limit is an error, after
/// which the iterator ends (its rest was never read, so nothing after it is trusted).
pub struct Lines {
    reader: BufReader<InputStream>,
    max_line: usize,
    done: bool,
    /// Last: the stream above is its child and must be dropped first; shared with
    /// [`Replies`], so whichever half is dropped last drops the connection.
    _connection: Rc<Connection>,
}

impl Lines {
    pub(crate) fn split(
        reader: BufReader<InputStream>,
        output: OutputStream,
        max_line: usize,
        connection: Connection,
    ) -> (Lines, Replies) {
        let connection = Rc::new(connection);
        let lines = Lines {
            reader,
            max_line,
            done: false,
            _connection: connection.clone(),
        };
        (lines, Replies { output, connection })
    }
}

impl Iterator for Lines {
    type Item = Result<String, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = match read_line(&mut self.reader, self.max_line) {
            Ok(line) => line,
            Err(e) => {
                self.done = true;
                return Some(Err(Error::from(e).context("cannot read from the client")));
            }
        };
        match line {
            Line::Closed => {
                self.done = true;
                None
            }
            Line::TooLong => {
                self.done = true;
                let limit = self.max_line;
                Some(Err(Error::new(format!("line longer than {limit} bytes"))))
            }
            Line::Complete(_) | Line::Unterminated(_) => {
                let text = line.content().unwrap_or_default();
                Some(Ok(String::from_utf8_lossy(text).into_owned()))
            }
        }
    }
}

/// What the module sends back: lines and bytes, written in as few host calls as the host
/// allows (no 4096-byte chunking by hand). Dropping it waits until what was sent has
/// reached the socket, so a session's last reply is not lost when it returns.
pub struct Replies {
    output: OutputStream,
    /// Last: the stream above is its child (see [`Lines`]).
    connection: Rc<Connection>,
}

impl Replies {
    /// Sends `text` and a `\n`.
    pub fn line(&mut self, text: &str) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.write_all(&bytes)
    }

    /// Sends all of `bytes`, however many (the host's write permits decide the pieces).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        send(&self.output, bytes).map_err(|e| Error::from(e).context("cannot send"))
    }

    /// Waits until everything sent has reached the socket.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.output
            .blocking_flush()
            .map_err(|e| Error::from(e).context("cannot send"))
    }

    /// The connection, for its addresses and TLS state.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        // The client may be gone already; there is no one left to tell.
        let _ = self.output.blocking_flush();
    }
}
