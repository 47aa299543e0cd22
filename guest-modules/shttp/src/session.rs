//! One client connection: requests read, answered in order (pipelining included) and
//! logged, until the client closes, asks to close, idles past `keepalive_timeout`, or is
//! too slow sending a head (`header_timeout`, which drops slowloris clients). Request
//! bodies are never used: read and dropped to stay in step, or refused.

use crate::access_log;
use crate::io::{Disconnected, Fill, Streams};
use crate::request::{self, HeadError, Request};
use crate::response::{Head, error_body};
use crate::serve::{Answered, serves};
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
    /// `Strict-Transport-Security`'s value, on a TLS connection with `hsts_max_age`.
    hsts: Option<String>,
}

/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What became of a request's body.
enum Body {
    /// Read (and dropped), or there was none: the connection is in step.
    Discarded,
    /// Not asked for: the client waits for `100 Continue`, which will not come.
    Unread,
    /// The client left.
    Gone,
}

/// What the next head read gave.
enum Next {
    Request(Request),
    /// A head refused with this error: answer, then close.
    Refused(HeadError),
    /// The client left, or was too slow.
    End,
}

impl<'a> Session<'a> {
    /// A session on `conn`, with the fields every response of it carries.
    pub fn new(conn: &'a Connection, io: Streams, root: Directory, settings: Settings) -> Self {
        let hsts = (settings.hsts_max_age > 0 && conn.is_tls())
            .then(|| format!("max-age={}", settings.hsts_max_age));
        Session {
            conn,
            io,
            root,
            settings,
            mime_table: None,
            hsts,
        }
    }

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
                    let line = self
                        .settings
                        .access_log
                        .then(|| access_log::first_line(&self.io.buf));
                    let answered = self.simple(error.status(), &[], false, 0);
                    if let Some(line) = line {
                        self.log_access(&peer, &line, answered);
                    }
                    self.linger();
                    break;
                }
                Next::End => break,
            };
            let (answered, go_on) = self.exchange(&request);
            if self.settings.access_log {
                self.log_access(&peer, &access_log::request_line(&request), answered);
            }
            if !go_on {
                break;
            }
        }
        self.io.close();
    }

    /// Handles the body of `request` and answers it; whether the connection goes on.
    fn exchange(&mut self, request: &Request) -> (Answered, bool) {
        if request.body_length > MAX_DISCARDED_BODY {
            let answered = self.simple(413, &[], false, request.minor);
            self.linger();
            return (answered, false);
        }
        match self.receive_body(request) {
            Body::Discarded => {
                let keep_alive = request.keep_alive();
                let answered = self.answer(request, keep_alive);
                (answered, keep_alive && answered.is_ok())
            }
            Body::Unread => {
                let answered = self.answer(request, false);
                self.linger();
                (answered, false)
            }
            Body::Gone => (Err(Disconnected), false),
        }
    }

    /// Reads and drops the body, first sending `100 Continue` if the client waits for it
    /// (RFC 9110 §10.1.1). A body shttp has no use for, announced by a client that waits
    /// (a POST, say, answered 405 whatever it holds), is not asked for: the final status
    /// goes at once, and since the client may send the body anyway or not at all, the
    /// connection closes after it.
    fn receive_body(&mut self, request: &Request) -> Body {
        let waiting =
            request.expects_continue() && (self.io.buf.len() as u64) < request.body_length;
        if waiting {
            if !serves(request.method()) {
                return Body::Unread;
            }
            if self
                .io
                .send(self.conn, SendKind::Headers, CONTINUE)
                .is_err()
            {
                return Body::Gone;
            }
        }
        if self.discard_body(request.body_length) {
            Body::Discarded
        } else {
            Body::Gone
        }
    }

    /// Logs one access line (`access_log` is on) if the answer went out.
    fn log_access(&self, peer: &str, request_line: &[u8], answered: Answered) {
        if let Ok((status, bytes)) = answered {
            let line = access_log::line(peer, request_line, status, bytes);
            log::log(log::Level::Info, &line);
        }
    }

    /// A response head with the fields every response of this session carries.
    pub fn head(&self, status: u16) -> Head {
        let head = Head::new(status);
        match &self.hsts {
            Some(value) => head.field("Strict-Transport-Security", value),
            None => head,
        }
    }

    /// Reads the next request head. The `first` of a connection has `header_timeout` from
    /// the connection's start: a client that connects and stays silent is a slowloris
    /// that sent nothing, not an idle persistent connection.
    fn next_head(&mut self, first: bool) -> Next {
        let mut started = first || !self.io.buf.is_empty();
        // Taken when the head needs more than what the first wait brought (rarely), so a
        // request whose head comes in one piece costs no clock read.
        let mut deadline = None;
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
            let filled = if started {
                let header_timeout = self.settings.header_timeout;
                let at = *deadline.get_or_insert_with(|| Streams::now() + header_timeout);
                self.io.fill(self.conn, at)
            } else {
                // Every answer is out: the host may end this idle persistent connection to
                // make room for a new client, and a session past a budget ends here.
                self.io
                    .fill_between_requests(self.conn, self.settings.keepalive_timeout)
            };
            match filled {
                Fill::Data => started = true,
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
            if self.io.fill(self.conn, deadline) != Fill::Data {
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
        let mut head = self
            .head(status)
            .field("Content-Type", "text/html; charset=utf-8");
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
        while discarded < LINGER_BYTES && self.io.fill(self.conn, deadline) == Fill::Data {
            discarded += self.io.buf.len();
            self.io.buf.clear();
        }
    }
}
