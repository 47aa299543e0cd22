//! Maildirs: the Maildir protocol (`maildir`) over the directories the host opened for a
//! module's `directory` options (`capabilities::files`), and `serverkit:module/maildrop`
//! (`host`). Transport apart from protocol, as mini-redis keeps frames apart from commands.

pub mod host;
pub mod maildir;

pub use maildir::{Maildir, MaildropError};
