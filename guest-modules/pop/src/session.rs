//! One POP3 session, its states as types: [`Authorization`] until a login succeeds,
//! [`Transaction`](crate::transaction::Transaction) with the maildrop open and locked, and the UPDATE state as
//! [`Transaction::update`](crate::transaction::Transaction::update), reached only by QUIT: the one place that deletes anything.

use serverkit_sdk::Connection;
use serverkit_sdk::wasip2::io::streams::StreamError;

use crate::authorization::Authorization;
use crate::command::{self, Command};

/// Longest line accepted, without its LF. RFC 2449 limits commands to 255 octets; a SASL
/// response with a long password may exceed that, so the limit is a little wider for
/// every line.
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

/// What reading the next command gave.
pub enum Next {
    /// A command, arguments checked.
    Command(Command),
    /// A bad line, already answered with `-ERR`.
    Answered,
    /// The client left (or the connection broke).
    Closed,
}

/// The client's connection and address.
pub struct Client {
    io: serverkit_sdk::Client,
    pub peer: String,
    /// Whether `STLS` is offered: a certificate was prepared and TLS is not on yet.
    stls: bool,
}

fn write_failed(e: StreamError) -> String {
    format!("write to the client failed: {e:?}")
}

impl Client {
    /// Sends one response line.
    pub fn reply(&mut self, line: &str) -> Result<(), String> {
        self.send(format!("{line}\r\n").as_bytes())
    }

    /// The next line: CRLF or bare LF, pipelined lines waiting in the buffer in order.
    pub fn next_line(&mut self) -> Line {
        match self.io.read_line() {
            Ok(line @ serverkit_sdk::Line::Complete(_)) => {
                let text = line.content().unwrap_or_default();
                Line::Text(String::from_utf8_lossy(text).into_owned())
            }
            Ok(serverkit_sdk::Line::TooLong) => match self.io.skip_line() {
                Ok(true) => Line::TooLong,
                Ok(false) | Err(_) => Line::Closed,
            },
            // End of stream in the middle of a line is a client that left.
            Ok(serverkit_sdk::Line::Unterminated(_) | serverkit_sdk::Line::Closed) | Err(_) => {
                Line::Closed
            }
        }
    }

    /// Reads and parses the next command; answers bad lines itself.
    pub fn next_command(&mut self) -> Result<Next, String> {
        let line = match self.next_line() {
            Line::Text(line) => line,
            Line::TooLong => {
                self.reply("-ERR line too long")?;
                return Ok(Next::Answered);
            }
            Line::Closed => return Ok(Next::Closed),
        };
        match command::parse(&line) {
            Ok(command) => Ok(Next::Command(command)),
            Err(refusal) => {
                self.reply(&format!("-ERR {refusal}"))?;
                Ok(Next::Answered)
            }
        }
    }

    /// Sends `bytes` without waiting for the flush (see [`serverkit_sdk::Client::send`]).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io.send(bytes).map_err(write_failed)
    }

    /// Waits until everything sent has reached the socket: the end of a session.
    fn finish(&mut self) {
        let _ = self.io.finish();
    }

    /// Whether a login must wait for TLS (`plaintext_login`): `never` refuses it on every
    /// plain connection, `local-only` on those from another host.
    pub fn login_needs_tls(&self) -> bool {
        let policy = serverkit_sdk::config::text("plaintext_login").unwrap_or_default();
        needs_tls(&policy, &self.peer) && !self.io.connection().is_tls()
    }

    /// STLS: the host sends the `+OK` after discarding unread input, then TLS starts;
    /// lines this side had buffered (sent before the handshake) are dropped too.
    pub fn start_tls(&mut self) -> Result<(), String> {
        if !self.stls {
            return self.reply("-ERR STLS not available");
        }
        self.io.finish().map_err(write_failed)?;
        self.io
            .connection()
            .start_tls(b"+OK begin TLS negotiation\r\n")
            .map_err(|e| format!("STLS failed: {e}"))?;
        self.io.discard_buffered();
        self.stls = false;
        Ok(())
    }

    pub fn capa(&mut self, authorized: bool) -> Result<(), String> {
        let mut text = String::from("+OK capability list follows\r\nTOP\r\nUIDL\r\n");
        if !authorized {
            text.push_str("USER\r\nSASL PLAIN\r\n");
        }
        if !authorized && self.stls {
            text.push_str("STLS\r\n");
        }
        text.push_str(
            "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION serverkit-pop\r\n.\r\n",
        );
        self.send(text.as_bytes())
    }
}

/// Whether `policy` (a `plaintext_login` value) refuses a plaintext login from `peer`.
fn needs_tls(policy: &str, peer: &str) -> bool {
    let loopback = peer
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    match policy {
        "never" => true,
        "local-only" => !loopback,
        _ => false,
    }
}

/// Serves `conn` from greeting to QUIT or disconnection.
pub fn serve(conn: Connection) -> Result<(), String> {
    let stls = serverkit_sdk::config::text("certificate").is_some() && !conn.is_tls();
    // The limit counts the LF, MAX_LINE does not.
    let io = serverkit_sdk::Client::new(conn)?.with_max_line(MAX_LINE + 1);
    let mut client = Client {
        peer: io.peer(),
        io,
        stls,
    };
    if !serverkit_sdk::auth::admit() {
        // Too many sessions from this address have not logged in: refused before the
        // greeting (the host logged it and counts it in the report).
        client.reply("-ERR [SYS/TEMP] too many connections from your address, try again later")?;
        client.finish();
        return Ok(());
    }
    client.reply("+OK serverkit POP3 ready")?;
    let result = match Authorization::default().run(&mut client) {
        Ok(Some(transaction)) => transaction.run(&mut client),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    client.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::needs_tls;

    #[test]
    fn plaintext_login_policies() {
        assert!(!needs_tls("allowed", "192.0.2.1:5000"));
        assert!(!needs_tls("local-only", "127.0.0.1:5000"));
        assert!(!needs_tls("local-only", "[::1]:5000"));
        assert!(needs_tls("local-only", "192.0.2.1:5000"));
        assert!(needs_tls("local-only", "[2001:db8::1]:5000"));
        assert!(needs_tls("never", "127.0.0.1:5000"));
    }
}
