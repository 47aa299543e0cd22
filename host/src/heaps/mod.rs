//! Heaps: ServerKit's fixed-size allocators. A heap hands out units of one kind from
//! chunks it grows on demand (by a fixed number of units, or doubling), up to a maximum;
//! released units are reused; units are reference counted. The host keeps its own
//! fixed-size records in heaps (each module's session records, the syslog queue), and every
//! heap reports its figures live in the status report.
//!
//! Columns, as the seed report shows them: `MaxUnits`; `Opts` (`E` grows exponentially,
//! `S` shrinks, `U` unlimited; `-` when unset); `ActChnkSiz`, the size in units of the
//! newest chunk (of the first one while there is none); `ActivUnits`, units in all chunks;
//! `ActivChnks`, chunks; `AllocUnits`, units handed out and not yet released.

mod registry;

use std::sync::{Arc, Mutex, MutexGuard};

pub use registry::HeapRegistry;

/// How a heap grows and shrinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapOptions {
    /// Each new chunk is twice the size of the previous one.
    pub grow_exponentially: bool,
    /// A chunk whose units are all released at the end of the heap is given back (never
    /// the first, the heap's reserve).
    pub shrink: bool,
    /// `max_units` is ignored.
    pub unlimited: bool,
}

impl HeapOptions {
    /// The report's three flag letters, e.g. `ES-`.
    pub fn flags(&self) -> String {
        [
            (self.grow_exponentially, 'E'),
            (self.shrink, 'S'),
            (self.unlimited, 'U'),
        ]
        .iter()
        .map(|&(on, c)| if on { c } else { '-' })
        .collect()
    }
}

/// What a heap is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapSpec {
    /// Its name in the report.
    pub label: String,
    /// Units added by the first chunk (and by each chunk, without `grow_exponentially`).
    pub units_per_chunk: usize,
    /// Most units at once, unless `unlimited`.
    pub max_units: usize,
    /// Growth and shrinking.
    pub options: HeapOptions,
}

/// A heap's figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapStats {
    /// Label.
    pub label: String,
    /// Most units.
    pub max_units: usize,
    /// Flag letters.
    pub opts: String,
    /// Size of the newest chunk.
    pub chunk_size: usize,
    /// Units in all chunks.
    pub units: usize,
    /// Chunks.
    pub chunks: usize,
    /// Units in use.
    pub allocated: usize,
}

/// The heap is at its maximum and every unit is in use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("heap `{label}` is full ({max_units} units in use)")]
pub struct HeapFull {
    /// Which heap.
    pub label: String,
    /// Its maximum.
    pub max_units: usize,
}

/// A thread-safe heap of `T` units.
pub struct Heap<T> {
    spec: HeapSpec,
    inner: Mutex<Chunks<T>>,
}

struct Slot<T> {
    value: T,
    refs: u32,
}

struct Chunks<T> {
    chunks: Vec<Vec<Option<Slot<T>>>>,
    free: Vec<(usize, usize)>,
    allocated: usize,
}

impl<T> Heap<T> {
    /// A heap with no chunk yet.
    pub fn new(spec: HeapSpec) -> Arc<Self> {
        let spec = HeapSpec {
            units_per_chunk: spec.units_per_chunk.max(1),
            ..spec
        };
        Arc::new(Heap {
            spec,
            inner: Mutex::new(Chunks {
                chunks: Vec::new(),
                free: Vec::new(),
                allocated: 0,
            }),
        })
    }

    /// Its description.
    pub fn spec(&self) -> &HeapSpec {
        &self.spec
    }

    fn lock(&self) -> MutexGuard<'_, Chunks<T>> {
        // A panic while holding the lock cannot leave the chunks inconsistent: every
        // mutation below completes before anything that could panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Places `value` in a unit, growing the heap if needed; the unit has one reference.
    pub fn alloc(self: &Arc<Self>, value: T) -> Result<Unit<T>, HeapFull> {
        let mut inner = self.lock();
        if inner.free.is_empty() {
            self.grow(&mut inner)?;
        }
        let (chunk, index) = inner.free.pop().expect("grow added free units or failed");
        inner.chunks[chunk][index] = Some(Slot { value, refs: 1 });
        inner.allocated += 1;
        Ok(Unit {
            heap: self.clone(),
            chunk,
            index,
        })
    }

    /// Units the next `alloc` adds to the heap (0 when a unit is free): what a caller
    /// charging memory must charge before it.
    pub fn next_growth(&self) -> usize {
        let inner = self.lock();
        if !inner.free.is_empty() {
            return 0;
        }
        let units: usize = inner.chunks.iter().map(Vec::len).sum();
        let size = self.next_chunk_size(&inner);
        if self.spec.options.unlimited {
            size
        } else {
            size.min(self.spec.max_units.saturating_sub(units))
        }
    }

    /// Chunks the heap holds now.
    pub fn chunks(&self) -> usize {
        self.lock().chunks.len()
    }

    fn grow(&self, inner: &mut Chunks<T>) -> Result<(), HeapFull> {
        let units: usize = inner.chunks.iter().map(Vec::len).sum();
        let mut size = self.next_chunk_size(inner);
        if !self.spec.options.unlimited {
            size = size.min(self.spec.max_units.saturating_sub(units));
        }
        if size == 0 {
            return Err(HeapFull {
                label: self.spec.label.clone(),
                max_units: self.spec.max_units,
            });
        }
        let chunk = inner.chunks.len();
        inner.chunks.push((0..size).map(|_| None).collect());
        inner.free.extend((0..size).rev().map(|i| (chunk, i)));
        Ok(())
    }

    fn next_chunk_size(&self, inner: &Chunks<T>) -> usize {
        match inner.chunks.last() {
            Some(last) if self.spec.options.grow_exponentially => last.len().saturating_mul(2),
            _ => self.spec.units_per_chunk,
        }
    }

    fn release(&self, chunk: usize, index: usize) {
        let mut inner = self.lock();
        let slot = inner.chunks[chunk][index]
            .as_mut()
            .expect("a live unit has a slot");
        slot.refs -= 1;
        if slot.refs > 0 {
            return;
        }
        inner.chunks[chunk][index] = None;
        inner.allocated -= 1;
        inner.free.push((chunk, index));
        if self.spec.options.shrink {
            shrink(&mut inner);
        }
    }

    /// Its figures now.
    pub fn stats(&self) -> HeapStats {
        let inner = self.lock();
        HeapStats {
            label: self.spec.label.clone(),
            max_units: self.spec.max_units,
            opts: self.spec.options.flags(),
            chunk_size: inner
                .chunks
                .last()
                .map_or(self.spec.units_per_chunk, Vec::len),
            units: inner.chunks.iter().map(Vec::len).sum(),
            chunks: inner.chunks.len(),
            allocated: inner.allocated,
        }
    }
}

/// Gives back trailing chunks with no unit in use (only trailing ones, so the position of
/// every live unit stays valid). The first chunk is the heap's reserve and stays.
fn shrink<T>(inner: &mut Chunks<T>) {
    while inner.chunks.len() > 1 {
        let last = inner.chunks.last().expect("more than one chunk");
        if last.iter().any(Option::is_some) {
            return;
        }
        let gone = inner.chunks.len() - 1;
        inner.chunks.pop();
        inner.free.retain(|&(chunk, _)| chunk != gone);
    }
}

/// One unit of a heap: a reference. Cloning adds a reference; dropping the last one
/// releases the unit for reuse.
pub struct Unit<T> {
    heap: Arc<Heap<T>>,
    chunk: usize,
    index: usize,
}

impl<T> Unit<T> {
    /// Runs `f` on the unit's value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut inner = self.heap.lock();
        let slot = inner.chunks[self.chunk][self.index]
            .as_mut()
            .expect("a live unit has a slot");
        f(&mut slot.value)
    }
}

impl<T> Clone for Unit<T> {
    fn clone(&self) -> Self {
        let mut inner = self.heap.lock();
        inner.chunks[self.chunk][self.index]
            .as_mut()
            .expect("a live unit has a slot")
            .refs += 1;
        Unit {
            heap: self.heap.clone(),
            chunk: self.chunk,
            index: self.index,
        }
    }
}

impl<T> Drop for Unit<T> {
    fn drop(&mut self) {
        self.heap.release(self.chunk, self.index);
    }
}

#[cfg(test)]
mod tests;
