//! The TRANSACTION state and its end, the UPDATE state: the only code that deletes.

use serverkit_sdk::log::{self, Level};
use serverkit_sdk::maildrop::{Error, Maildir};

use crate::chunks::Chunks;
use crate::command::Command;
use crate::message;
use crate::session::{Client, Next};

/// One message of the maildrop as listed at login.
struct Entry {
    name: String,
    /// Bytes on disk when listed: the first read asks for one more, so a short read
    /// ends the message in one host call.
    stored: u64,
    /// The RFC 1939 size.
    size: u64,
    deleted: bool,
}

/// The TRANSACTION state: the locked maildrop, its messages numbered from 1 as listed at
/// login (numbers never shift), and the deletion marks.
pub struct Transaction {
    maildir: Maildir,
    entries: Vec<Entry>,
}

impl Transaction {
    /// Lists the maildrop and learns each message's size: from a `,W=` name, else by
    /// reading the message through once, chunk by chunk. A message the operating system
    /// will not let it read (a bad sector, a file an MDA left unreadable) is logged and
    /// left out of this session, so the rest of the maildrop stays reachable; unlisted, it
    /// cannot be deleted either.
    pub fn open(maildir: Maildir) -> Result<Self, String> {
        let listed = maildir
            .messages()
            .map_err(|e| format!("listing failed: {e:?}"))?;
        let mut entries = Vec::with_capacity(listed.len());
        for m in listed {
            let size = match message::size_from_name(&m.name) {
                Some(size) => size,
                None => match count_size(&maildir, &m.name, m.size) {
                    Ok(size) => size,
                    // Deleted or moved by another program since the listing: it is not
                    // in the maildrop any more (a moved one is listed at the next login).
                    Err(Error::NotFound(_)) => continue,
                    Err(Error::Io(e)) => {
                        let why = format!("message `{}` cannot be read, left out: {e}", m.name);
                        log::log(Level::Warn, &why);
                        continue;
                    }
                    Err(e) => return Err(format!("cannot read `{}`: {e:?}", m.name)),
                },
            };
            entries.push(Entry {
                name: m.name,
                stored: m.size,
                size,
                deleted: false,
            });
        }
        Ok(Transaction { maildir, entries })
    }

    pub fn count(&self) -> usize {
        self.entries.iter().filter(|e| !e.deleted).count()
    }

    pub fn octets(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .map(|e| e.size)
            .sum()
    }

    /// The live message numbered `n`, or the `-ERR` text.
    fn live(&self, n: u64) -> Result<&Entry, String> {
        let entry = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.entries.get(i))
            .ok_or_else(|| format!("no message {n}"))?;
        if entry.deleted {
            return Err(format!("message {n} is deleted"));
        }
        Ok(entry)
    }

    /// Serves commands until QUIT (then UPDATE) or disconnection (then nothing is deleted).
    pub fn run(mut self, client: &mut Client) -> Result<(), String> {
        loop {
            match client.next_command()? {
                Next::Command(Command::Quit) => return self.update(client),
                Next::Command(command) => self.command(client, command)?,
                Next::Answered => {}
                // Dropped connection: the deletion marks die with the session.
                Next::Closed => return Ok(()),
            }
        }
    }

    fn command(&mut self, client: &mut Client, command: Command) -> Result<(), String> {
        let answer = match command {
            Command::Capa => return client.capa(true),
            Command::Stat => Ok(format!("+OK {} {}", self.count(), self.octets())),
            Command::Noop => Ok("+OK".into()),
            Command::List(Some(n)) => self.live(n).map(|e| format!("+OK {n} {}", e.size)),
            Command::Uidl(Some(n)) => self
                .live(n)
                .map(|e| format!("+OK {n} {}", message::uidl(&e.name))),
            Command::List(None) => return self.listing(client, |e| e.size.to_string()),
            Command::Uidl(None) => return self.listing(client, |e| message::uidl(&e.name)),
            Command::Retr(n) => return self.send_message(client, n, None),
            Command::Top(n, lines) => return self.send_message(client, n, Some(lines)),
            Command::Dele(n) => match usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) {
                Some(i) if self.live(n).is_ok() => {
                    self.entries[i].deleted = true;
                    Ok(format!("+OK message {n} deleted"))
                }
                _ => self.live(n).map(|_| String::new()),
            },
            Command::Rset => {
                self.entries.iter_mut().for_each(|e| e.deleted = false);
                Ok(format!("+OK {}", message::count(self.count())))
            }
            Command::Stls => Err("STLS only before logging in".into()),
            Command::User(_) | Command::Pass(_) | Command::Auth(..) => {
                Err("already logged in".into())
            }
            Command::Quit => unreachable!("QUIT is handled by run"),
        };
        match answer {
            Ok(text) => client.reply(&text),
            Err(text) => client.reply(&format!("-ERR {text}")),
        }
    }

    fn listing(&self, client: &mut Client, field: impl Fn(&Entry) -> String) -> Result<(), String> {
        let mut text = format!("+OK {}\r\n", message::count(self.count()));
        for (i, entry) in self.entries.iter().enumerate().filter(|(_, e)| !e.deleted) {
            text.push_str(&format!("{} {}\r\n", i + 1, field(entry)));
        }
        text.push_str(".\r\n");
        client.send(text.as_bytes())
    }

    /// RETR (all lines) or TOP (headers and `body_lines`), streamed in chunks.
    fn send_message(
        &self,
        client: &mut Client,
        n: u64,
        body_lines: Option<u64>,
    ) -> Result<(), String> {
        let entry = match self.live(n) {
            Ok(e) => e,
            Err(text) => return client.reply(&format!("-ERR {text}")),
        };
        // Read the first chunk before answering +OK: a message deleted under us is -ERR.
        let mut chunks = Chunks::new(&self.maildir, &entry.name, entry.stored);
        let mut chunk = match chunks.next_chunk() {
            Ok(chunk) => chunk,
            Err(e) => {
                log::log(Level::Warn, &format!("cannot read {}: {e:?}", entry.name));
                return client.reply(&format!("-ERR [SYS/TEMP] message {n} cannot be read"));
            }
        };
        let mut out = format!("+OK {} octets\r\n", entry.size).into_bytes();
        let mut wire = message::Wire::new(true, body_lines);
        // One chunk and its wire form at a time: `out` is sent and emptied before the next
        // read, and `send` waits for the host's write permit, so neither side buffers more.
        while let Some(stored) = chunk {
            wire.feed(&stored, &mut out);
            if wire.done {
                break;
            }
            client.send(&out)?;
            out.clear();
            // Past the +OK a failure can only end the session: the client sees no final
            // `.` and keeps nothing half-received as a whole message.
            chunk = chunks
                .next_chunk()
                .map_err(|e| format!("reading {} failed mid-message: {e:?}", entry.name))?;
        }
        wire.finish(&mut out);
        out.extend_from_slice(b".\r\n");
        client.send(&out)
    }

    /// The UPDATE state: removes the messages marked deleted, in one host call.
    fn update(self, client: &mut Client) -> Result<(), String> {
        let Transaction { maildir, entries } = self;
        let doomed: Vec<String> = entries
            .into_iter()
            .filter(|e| e.deleted)
            .map(|e| e.name)
            .collect();
        let deleted = (!doomed.is_empty()).then(|| maildir.delete(&doomed));
        // The lock goes before the answer: a client that logs in again as soon as it reads
        // `+OK` (a mail client's next poll) must not find its maildrop still in use.
        drop(maildir);
        match deleted {
            None => client.reply("+OK bye"),
            Some(Ok(n)) => {
                client.reply(&format!("+OK bye, {} deleted", message::count(n as usize)))
            }
            Some(Err(e)) => {
                log::log(Level::Error, &format!("deleting messages failed: {e:?}"));
                client.reply("-ERR [SYS/TEMP] some deleted messages were not removed")
            }
        }
    }
}

/// The RFC 1939 size of message `name` (about `stored` bytes on disk), counted one chunk
/// at a time.
fn count_size(maildir: &Maildir, name: &str, stored: u64) -> Result<u64, Error> {
    let mut chunks = Chunks::new(maildir, name, stored);
    let mut size = message::WireSize::default();
    while let Some(chunk) = chunks.next_chunk()? {
        size.feed(&chunk);
    }
    Ok(size.total())
}
