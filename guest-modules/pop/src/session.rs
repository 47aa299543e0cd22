//! One POP3 session, its states as types: [`Authorization`] until a login succeeds,
//! [`Transaction`](crate::transaction::Transaction) with the maildrop open and locked, and the UPDATE state as
//! [`Transaction::update`](crate::transaction::Transaction::update), reached only by QUIT: the one place that deletes anything.

use wasip2::io::streams::{OutputStream, StreamError};

use crate::Connection;
use crate::authorization::Authorization;
use crate::command::{self, Command};
use crate::lines::{Line, Lines};

/// What reading the next command gave.
pub enum Next {
    /// A command, arguments checked.
    Command(Command),
    /// A bad line, already answered with `-ERR`.
    Answered,
    /// The client left (or the connection broke).
    Closed,
}

/// The client's streams and address.
pub struct Client {
    pub lines: Lines,
    out: OutputStream,
    pub peer: String,
    /// Whether `STLS` is offered: a certificate was prepared and TLS is not on yet.
    stls: bool,
    /// Last: the streams above are its children and must be dropped first.
    conn: Connection,
}

impl Client {
    /// Sends one response line.
    pub fn reply(&mut self, line: &str) -> Result<(), String> {
        self.send(format!("{line}\r\n").as_bytes())
    }

    /// Reads and parses the next command; answers bad lines itself.
    pub fn next_command(&mut self) -> Result<Next, String> {
        let line = match self.lines.next() {
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

    /// Sends `bytes` in as few host calls as the connection's write permits allow (std's
    /// `Write` for a WASI stream goes 4 KiB at a time, each write flushed and awaited),
    /// then starts a flush without waiting for it: the next command's read, or
    /// [`Client::finish`], waits instead.
    pub fn send(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let failed = |e: StreamError| format!("write to the client failed: {e:?}");
        while !bytes.is_empty() {
            let permit = self.out.check_write().map_err(failed)?;
            if permit == 0 {
                self.out.subscribe().block();
                continue;
            }
            let n = bytes
                .len()
                .min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.out.write(&bytes[..n]).map_err(failed)?;
            bytes = &bytes[n..];
        }
        self.out.flush().map_err(failed)
    }

    /// Waits until everything sent has reached the socket: the end of a session.
    fn finish(&mut self) {
        let _ = self.out.blocking_flush();
    }

    /// Whether a login must wait for TLS (`plaintext_login`): `never` refuses it on every
    /// plain connection, `local-only` on those from another host.
    pub fn login_needs_tls(&self) -> bool {
        let policy = crate::text("plaintext_login").unwrap_or_default();
        needs_tls(&policy, &self.peer) && !self.conn.is_tls()
    }

    /// STLS: the host sends the `+OK` after discarding unread input, then TLS starts;
    /// lines this side had buffered (sent before the handshake) are dropped too.
    pub fn start_tls(&mut self) -> Result<(), String> {
        if !self.stls {
            return self.reply("-ERR STLS not available");
        }
        self.out
            .blocking_flush()
            .map_err(|e| format!("write to the client failed: {e:?}"))?;
        self.conn
            .start_tls(b"+OK begin TLS negotiation\r\n")
            .map_err(|e| format!("STLS failed: {e}"))?;
        self.lines.discard_buffered();
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
    let (input, out) = conn.streams().ok_or("connection streams already taken")?;
    let mut client = Client {
        lines: Lines::new(input),
        out,
        peer: conn.peer_address(),
        stls: crate::text("certificate").is_some() && !conn.is_tls(),
        conn,
    };
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
