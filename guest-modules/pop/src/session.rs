//! One POP3 session, its states as types: [`Authorization`] until a login succeeds,
//! [`Transaction`](crate::transaction::Transaction) with the maildrop open and locked, and the UPDATE state as
//! [`Transaction::update`](crate::transaction::Transaction::update), reached only by QUIT: the one place that deletes anything.

use std::io::Write;

use wasip2::io::streams::OutputStream;

use crate::Connection;
use crate::authorization::Authorization;
use crate::lines::Lines;

/// The client's streams and address.
pub struct Client {
    pub lines: Lines,
    out: OutputStream,
    pub peer: String,
}

impl Client {
    /// Sends one response line.
    pub fn reply(&mut self, line: &str) -> Result<(), String> {
        self.send(format!("{line}\r\n").as_bytes())
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.out.write_all(bytes).map_err(|e| e.to_string())?;
        self.out.flush().map_err(|e| e.to_string())
    }

    pub fn capa(&mut self, authorized: bool) -> Result<(), String> {
        let mut text = String::from("+OK capability list follows\r\nTOP\r\nUIDL\r\n");
        if !authorized {
            text.push_str("USER\r\nSASL PLAIN\r\n");
        }
        text.push_str(
            "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION serverkit-pop\r\n.\r\n",
        );
        self.send(text.as_bytes())
    }
}

/// Serves `conn` from greeting to QUIT or disconnection.
pub fn serve(conn: Connection) -> Result<(), String> {
    let (input, out) = conn.streams().ok_or("connection streams already taken")?;
    let mut client = Client {
        lines: Lines::new(input),
        out,
        peer: conn.peer_address(),
    };
    client.reply("+OK serverkit POP3 ready")?;
    let Some(transaction) = Authorization::default().run(&mut client)? else {
        return Ok(());
    };
    transaction.run(&mut client)
}
