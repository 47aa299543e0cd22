//! Wait channels: how many sessions are blocked, right now, in each kind of host call. The
//! status report's "WaitCount Channel" table reads them.
//!
//! The counters are process-wide, like the report; a static keeps every host call's
//! bookkeeping to one atomic add with nothing to thread through.

use std::sync::atomic::{AtomicI64, Ordering};

/// A kind of host call a session can wait in, named as ServerKit's report named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Waiting for bytes from the client.
    Recv,
    /// Waiting for the client to take bytes.
    Send,
    /// Sending response headers.
    SendHeaders,
    /// Sending a directory listing.
    SendAutoidx,
    /// Sending a fixed response.
    SendConstantResponse,
    /// A zero-copy file transfer.
    Sendfile,
    /// Opening a file.
    Open,
    /// Opening a directory.
    Opendir,
    /// Reading a directory.
    Readdir,
    /// A database query.
    DatabaseQuery,
}

impl Channel {
    /// Every channel, in report order.
    pub const ALL: [Channel; 10] = [
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
    ];

    /// Its name in the report.
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
        }
    }
}

static WAITING: [AtomicI64; Channel::ALL.len()] = [const { AtomicI64::new(0) }; Channel::ALL.len()];

/// Counts one waiter in `channel` until dropped (also when the wait is cancelled).
#[must_use = "the wait is counted only while the guard lives"]
pub struct Waiting(Channel);

impl Waiting {
    /// Starts counting a wait in `channel`.
    pub fn on(channel: Channel) -> Self {
        WAITING[channel as usize].fetch_add(1, Ordering::Relaxed);
        Waiting(channel)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many wait in each channel now, in report order.
pub fn snapshot() -> Vec<(Channel, i64)> {
    Channel::ALL
        .iter()
        .map(|&c| (c, WAITING[c as usize].load(Ordering::Relaxed)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(channel: Channel) -> i64 {
        snapshot()
            .into_iter()
            .find(|(c, _)| *c == channel)
            .unwrap()
            .1
    }

    #[test]
    fn a_guard_counts_while_it_lives() {
        let before = count(Channel::Opendir);
        let a = Waiting::on(Channel::Opendir);
        let b = Waiting::on(Channel::Opendir);
        assert_eq!(count(Channel::Opendir), before + 2);
        drop(a);
        drop(b);
        assert_eq!(count(Channel::Opendir), before);
    }

    #[test]
    fn names_follow_the_seed_report() {
        let names: Vec<_> = Channel::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            &names[..9],
            [
                "recv",
                "send",
                "send headers",
                "send autoidx",
                "send constant response",
                "sendfile",
                "open",
                "opendir",
                "readdir"
            ]
        );
    }
}
