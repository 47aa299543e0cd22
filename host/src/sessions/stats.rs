//! Session counters of one module, read live by the status report.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Idle keep-alive sessions ended to make room at `max_sessions`.
    pub reclaimed: AtomicU64,
    /// TLS handshakes completed (on TLS listeners or after STARTTLS).
    pub tls_ok: AtomicU64,
    /// TLS sessions that ended before their handshake completed (refused or abandoned).
    pub tls_failed: AtomicU64,
    /// Completed handshakes that negotiated TLS 1.3 (the others are TLS 1.2).
    pub tls13: AtomicU64,
    /// Connections refused for coming from outside `proxy_protocol_from`.
    pub proxy_refused: AtomicU64,
    /// Trusted connections closed for a missing, late or malformed PROXY header.
    pub proxy_failed: AtomicU64,
}

impl SessionStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts how the TLS of an ended session went: `None` without TLS, else whether the
    /// handshake completed and with TLS 1.3.
    pub fn count_tls(&self, outcome: Option<Option<bool>>) {
        match outcome {
            None => {}
            Some(None) => Self::bump(&self.tls_failed),
            Some(Some(tls13)) => {
                Self::bump(&self.tls_ok);
                if tls13 {
                    Self::bump(&self.tls13);
                }
            }
        }
    }

    /// Sessions that started and have not ended.
    pub fn live(&self) -> u64 {
        let ended = self.ok.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.trapped.load(Ordering::Relaxed)
            + self.timed_out.load(Ordering::Relaxed)
            + self.reclaimed.load(Ordering::Relaxed);
        self.started.load(Ordering::Relaxed).saturating_sub(ended)
    }
}
