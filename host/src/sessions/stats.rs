//! Session counters of one module, read live by the status report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::waits::WaitChannels;

/// How sessions of a module ended.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// Sessions started (instances created for a connection).
    pub started: AtomicU64,
    /// Sessions whose `session` hook returned `ok`.
    pub ok: AtomicU64,
    /// Sessions whose hook returned an error.
    pub failed: AtomicU64,
    /// Sessions that trapped (including CPU-budget interrupts).
    pub trapped: AtomicU64,
    /// Sessions ended by the idle timeout.
    pub timed_out: AtomicU64,
    /// Sessions waiting in each wait channel now; every session instance holds a handle.
    pub waits: Arc<WaitChannels>,
}

impl SessionStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions that started and have not ended.
    pub fn live(&self) -> u64 {
        let ended = self.ok.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.trapped.load(Ordering::Relaxed)
            + self.timed_out.load(Ordering::Relaxed);
        self.started.load(Ordering::Relaxed).saturating_sub(ended)
    }
}
