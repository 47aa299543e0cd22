//! Live figures of a module's worker pool: threads alive and threads busy, counted by the
//! runtime's thread hooks, for the report's "Thread pools" table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Builder;

/// Stack size of every worker thread (the report's StackSize column).
pub const WORKER_STACK_BYTES: usize = 2 << 20;

/// Threads of one pool.
#[derive(Debug, Default)]
pub struct ThreadCounts {
    alive: AtomicUsize,
    parked: AtomicUsize,
}

impl ThreadCounts {
    /// Installs the counting hooks on a runtime builder.
    pub fn hook(self: &Arc<Self>, builder: &mut Builder) {
        let (start, stop, park, unpark) = (self.clone(), self.clone(), self.clone(), self.clone());
        builder
            .thread_stack_size(WORKER_STACK_BYTES)
            .on_thread_start(move || {
                start.alive.fetch_add(1, Ordering::Relaxed);
            })
            .on_thread_stop(move || {
                stop.alive.fetch_sub(1, Ordering::Relaxed);
            })
            .on_thread_park(move || {
                park.parked.fetch_add(1, Ordering::Relaxed);
            })
            .on_thread_unpark(move || {
                unpark.parked.fetch_sub(1, Ordering::Relaxed);
            });
    }

    /// Threads alive now (the report's ActiveTotal).
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }

    /// Threads running work now rather than parked (the report's ActiveBusy).
    pub fn busy(&self) -> usize {
        self.alive()
            .saturating_sub(self.parked.load(Ordering::Relaxed))
    }
}
