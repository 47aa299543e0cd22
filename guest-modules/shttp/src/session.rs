//! One client connection: requests read, answered in order (pipelining included) and
//! logged, until the client closes, asks to close, idles past `keepalive_timeout`, or is
//! too slow sending a head (`header_timeout`, which drops slowloris clients).

use crate::io::{Fill, Streams};
use crate::request::{self, HeadError, Request};
use crate::response::{Head, error_body};
use crate::serve::Answered;
use crate::settings::{MAX_DISCARDED_BODY, Settings};
use serverkit_sdk::connection::{Connection, SendKind, ShutdownType};
use serverkit_sdk::filesystem::Directory;
use serverkit_sdk::log;

/// How long a closing connection keeps reading (and discarding) what the client still
/// sends, so that closing does not reset the connection before the answer is read.
const LINGER: u64 = crate::io::SECOND;

/// Most bytes discarded while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// A session's state.
pub struct Session<'a> {
    /// The connection.
    pub conn: &'a Connection,
    /// Its streams.
    pub io: Streams,
    /// `doc_root`.
    pub root: Directory,
    /// The section's settings.
    pub settings: Settings,
    /// The `mime_types` file's text, once read.
    pub mime_table: Option<String>,
}

/// What the next head read gave.
enum Next {
    Request(Request),
    /// A head refused with this error: answer, then close.
    Refused(HeadError),
    /// The client left, or was too slow.
    End,
}

impl Session<'_> {
    /// Serves requests until the connection ends.
    pub fn run(mut self) {
        let peer = if self.settings.access_log {
            self.conn.peer_address()
        } else {
            String::new()
        };
        let mut first = true;
        loop {
            let request = match self.next_head(std::mem::take(&mut first)) {
                Next::Request(request) => request,
                Next::Refused(error) => {
                    let _ = self.simple(error.status(), &[], false, 0);
                    self.linger();
                    break;
                }
                Next::End => break,
            };
            let keep_alive = request.keep_alive();
            if request.body_length > MAX_DISCARDED_BODY {
                let _ = self.simple(413, &[], false, request.minor);
                self.linger();
                break;
            }
            if !self.discard_body(request.body_length) {
                break;
            }
            let Ok((status, bytes)) = self.answer(&request, keep_alive) else {
                break;
            };
            if self.settings.access_log {
                let line = format!(
                    "{peer} \"{} {} HTTP/1.{}\" {status} {bytes}",
                    request.method, request.target, request.minor
                );
                log::log(log::Level::Info, &line);
            }
            if !keep_alive {
                break;
            }
        }
        self.io.close();
    }

    /// Reads the next request head. The `first` of a connection has `header_timeout` from
    /// the connection's start: a client that connects and stays silent is a slowloris
    /// that sent nothing, not an idle persistent connection.
    fn next_head(&mut self, first: bool) -> Next {
        let mut deadline = Streams::now() + self.settings.keepalive_timeout;
        let mut started = first || !self.io.buf.is_empty();
        if started {
            deadline = Streams::now() + self.settings.header_timeout;
        }
        loop {
            if !self.io.buf.is_empty() {
                match request::parse(&self.io.buf, self.settings.max_header_bytes) {
                    Ok(Some((request, length))) => {
                        self.io.consume(length);
                        return Next::Request(request);
                    }
                    Ok(None) => {}
                    Err(error) => return Next::Refused(error),
                }
            }
            match self.io.fill(deadline) {
                Fill::Data if !started => {
                    started = true;
                    deadline = Streams::now() + self.settings.header_timeout;
                }
                Fill::Data => {}
                Fill::Closed | Fill::TimedOut => return Next::End,
            }
        }
    }

    /// Reads and drops a request body of `length` bytes; false if the client left.
    fn discard_body(&mut self, mut length: u64) -> bool {
        let deadline = Streams::now() + self.settings.header_timeout;
        loop {
            let taken = (self.io.buf.len() as u64).min(length);
            self.io.consume(taken as usize);
            length -= taken;
            if length == 0 {
                return true;
            }
            if self.io.fill(deadline) != Fill::Data {
                return false;
            }
        }
    }

    /// Answers `status` with its small HTML body (none for HEAD-less statuses such as 304),
    /// plus `fields`; returns the status and body bytes sent.
    pub fn simple(
        &mut self,
        status: u16,
        fields: &[(&str, String)],
        keep_alive: bool,
        minor: u8,
    ) -> Answered {
        self.simple_body(status, fields, keep_alive, minor, true)
    }

    /// As `simple`, with the body left out when `with_body` is false (HEAD).
    pub fn simple_body(
        &mut self,
        status: u16,
        fields: &[(&str, String)],
        keep_alive: bool,
        minor: u8,
        with_body: bool,
    ) -> Answered {
        let body = error_body(status);
        let mut head = Head::new(status).field("Content-Type", "text/html; charset=utf-8");
        for (name, value) in fields {
            head = head.field(name, value);
        }
        let mut bytes = head.finish(body.len() as u64, keep_alive, minor);
        let sent = if with_body {
            bytes.extend_from_slice(body.as_bytes());
            body.len() as u64
        } else {
            0
        };
        self.io.send(self.conn, SendKind::Headers, &bytes)?;
        Ok((status, sent))
    }

    /// Half-closes and reads what the client still sends for a moment, then gives up.
    fn linger(&mut self) {
        self.conn.shutdown(ShutdownType::Send);
        let deadline = Streams::now() + LINGER;
        let mut discarded = 0;
        while discarded < LINGER_BYTES && self.io.fill(deadline) == Fill::Data {
            discarded += self.io.buf.len();
            self.io.buf.clear();
        }
    }
}
