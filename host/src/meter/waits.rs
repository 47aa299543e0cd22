//! Wait channels, ServerKit's name for "what a session is waiting on": every host call
//! that can wait belongs to one, and each channel counts the sessions waiting in it right
//! now, for the status report.

use std::sync::atomic::{AtomicU64, Ordering};

/// The channels, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Waiting for request bytes from the client.
    Recv,
    /// Waiting for the socket to take body bytes.
    Send,
    /// ... protocol headers.
    SendHeaders,
    /// ... a generated directory listing.
    SendAutoidx,
    /// ... a constant response (health checks).
    SendConstantResponse,
    /// In a host-side file transfer (sendfile).
    Sendfile,
    /// Opening a file.
    Open,
    /// Opening a directory to list it.
    Opendir,
    /// Reading a directory's entries.
    Readdir,
    /// Waiting for a database query.
    DatabaseQuery,
    /// A login attempt waiting its address's penalty (`auth.attempt`).
    AuthPenalty,
    /// A stored password being checked, or waiting its turn (`auth.verify`).
    PasswordCheck,
}

impl Channel {
    /// Every channel, in report order.
    pub const ALL: [Channel; 12] = [
        Channel::Recv,
        Channel::Send,
        Channel::SendHeaders,
        Channel::SendAutoidx,
        Channel::SendConstantResponse,
        Channel::Sendfile,
        Channel::Open,
        Channel::Opendir,
        Channel::Readdir,
        Channel::DatabaseQuery,
        Channel::AuthPenalty,
        Channel::PasswordCheck,
    ];

    /// Its name in the status report, as ServerKit's.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Recv => "recv",
            Channel::Send => "send",
            Channel::SendHeaders => "send headers",
            Channel::SendAutoidx => "send autoidx",
            Channel::SendConstantResponse => "send constant response",
            Channel::Sendfile => "sendfile",
            Channel::Open => "open",
            Channel::Opendir => "opendir",
            Channel::Readdir => "readdir",
            Channel::DatabaseQuery => "database query",
            Channel::AuthPenalty => "auth penalty",
            Channel::PasswordCheck => "password check",
        }
    }
}

/// Sessions waiting in each channel now, for one module.
#[derive(Debug, Default)]
pub struct WaitChannels {
    counts: [AtomicU64; Channel::ALL.len()],
}

impl WaitChannels {
    /// Counts one more waiter in `channel` until the guard drops.
    pub fn enter(&self, channel: Channel) -> WaitGuard<'_> {
        let count = &self.counts[channel as usize];
        count.fetch_add(1, Ordering::Relaxed);
        WaitGuard { count }
    }

    /// Sessions waiting in `channel` now.
    pub fn waiting(&self, channel: Channel) -> u64 {
        self.counts[channel as usize].load(Ordering::Relaxed)
    }

    /// `(name, waiting)` for every channel, in report order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Channel::ALL
            .iter()
            .map(|&c| (c.name(), self.waiting(c)))
            .collect()
    }
}

/// Holds one waiter's place in a channel.
#[must_use = "the wait is counted only while the guard lives"]
pub struct WaitGuard<'a> {
    count: &'a AtomicU64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_waiters_while_their_guards_live() {
        let waits = WaitChannels::default();
        let a = waits.enter(Channel::Sendfile);
        let b = waits.enter(Channel::Sendfile);
        let _c = waits.enter(Channel::Recv);
        assert_eq!(waits.waiting(Channel::Sendfile), 2);
        drop(a);
        drop(b);
        assert_eq!(waits.waiting(Channel::Sendfile), 0);
        assert_eq!(waits.snapshot()[0], ("recv", 1));
    }
}
