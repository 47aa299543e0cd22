//! A stored message read through the maildrop in bounded chunks: counting its size and
//! sending it never hold the whole message in instance memory, whatever its size.

use serverkit_sdk::maildrop::{Error, Maildir};

/// Bytes read from a message per host call. It bounds the instance memory a message costs
/// (this chunk and its wire form, at most about three times as long), so a message of any
/// size fits the default `instance_memory_mb`; it is also the host's default write permit
/// (`max_buffered_kb`), so one chunk's wire form goes out in a few writes.
pub const READ_CHUNK: u32 = 64 * 1024;

/// The chunks of one message, in order, each at most [`READ_CHUNK`] bytes.
pub struct Chunks<'a> {
    maildir: &'a Maildir,
    name: &'a str,
    offset: u64,
    asked: u32,
    /// A short read was the end of the message.
    ended: bool,
}

impl<'a> Chunks<'a> {
    /// The chunks of message `name`, about `stored` bytes long as listed: the first read
    /// asks for one byte more, so a message smaller than a chunk takes one host call.
    pub fn new(maildir: &'a Maildir, name: &'a str, stored: u64) -> Self {
        let asked =
            u32::try_from(stored.saturating_add(1)).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
        Chunks {
            maildir,
            name,
            offset: 0,
            asked,
            ended: false,
        }
    }

    /// The next chunk, or `None` after the last (a message that grew since it was listed
    /// is read to its new end; one that shrank, to its new end).
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if self.ended {
            return Ok(None);
        }
        let chunk = self.maildir.read(self.name, self.offset, self.asked)?;
        self.ended = chunk.len() < self.asked as usize;
        self.offset += chunk.len() as u64;
        self.asked = READ_CHUNK;
        Ok(Some(chunk))
    }
}
