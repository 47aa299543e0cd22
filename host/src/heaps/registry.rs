//! Every heap of the process, for the status report.

use std::sync::{Arc, Mutex, Weak};

use super::{Heap, HeapStats};

/// Something that reports heap figures.
trait StatsSource: Send + Sync {
    fn stats(&self) -> HeapStats;
}

impl<T: Send> StatsSource for Heap<T> {
    fn stats(&self) -> HeapStats {
        Heap::stats(self)
    }
}

/// The heaps the report lists, in registration order. Holds them weakly: a heap that is
/// gone (a module that was removed) leaves the report.
#[derive(Default, Clone)]
pub struct HeapRegistry {
    heaps: Arc<Mutex<Vec<Weak<dyn StatsSource>>>>,
}

impl HeapRegistry {
    /// Lists `heap` in the report.
    pub fn register<T: Send + 'static>(&self, heap: &Arc<Heap<T>>) {
        let weak: Weak<dyn StatsSource> = Arc::downgrade(heap) as Weak<dyn StatsSource>;
        self.heaps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(weak);
    }

    /// The figures of every live heap.
    pub fn stats(&self) -> Vec<HeapStats> {
        let mut heaps = self.heaps.lock().unwrap_or_else(|p| p.into_inner());
        heaps.retain(|h| h.strong_count() > 0);
        heaps
            .iter()
            .filter_map(Weak::upgrade)
            .map(|h| h.stats())
            .collect()
    }
}
