//! `serverkit:module/heap`: labelled heaps of fixed-size byte units in host memory, one set
//! per module (shared by all its instances), bounded by [`MAX_MODULE_HEAP_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::contract::bindings::heap::{HeapError, HeapSpec as WitSpec, Host, UnitId};
use crate::guest_host::state::InstanceState;
use crate::heaps::{Heap, HeapOptions, HeapSpec, HeapStats, Unit};

/// Largest unit: what it defends is the cost of one read or write copy.
pub const MAX_UNIT_BYTES: u32 = 64 * 1024;

/// Most bytes all of a module's heaps may hold at their maximum: what it defends is host
/// memory against a module allocating without bound.
pub const MAX_MODULE_HEAP_BYTES: u64 = 64 << 20;

type Bytes = Box<[u8]>;

/// A module's heaps.
#[derive(Default)]
pub struct GuestHeaps {
    inner: Mutex<Heaps>,
}

#[derive(Default)]
struct Heaps {
    by_label: BTreeMap<String, GuestHeap>,
    next_unit: UnitId,
    reserved_bytes: u64,
}

struct GuestHeap {
    spec: WitSpec,
    unit_size: usize,
    heap: Arc<Heap<Bytes>>,
    /// Every reference the guest holds, per unit.
    units: HashMap<UnitId, Vec<Unit<Bytes>>>,
}

impl GuestHeaps {
    fn lock(&self) -> MutexGuard<'_, Heaps> {
        // Every mutation below completes before anything that could panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The figures of every heap, labelled `<module>.<label>`.
    pub fn stats(&self) -> Vec<HeapStats> {
        self.lock()
            .by_label
            .values()
            .map(|h| h.heap.stats())
            .collect()
    }

    fn create(&self, module: &str, spec: WitSpec) -> Result<(), HeapError> {
        let invalid = |why: &str| Err(HeapError::InvalidSpec(why.into()));
        let mut heaps = self.lock();
        if let Some(existing) = heaps.by_label.get(&spec.label) {
            return if same_spec(&existing.spec, &spec) {
                Ok(())
            } else {
                invalid("a heap of that label exists with another spec")
            };
        }
        if spec.label.is_empty()
            || !spec
                .label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return invalid("the label must be [a-z0-9_]+");
        }
        if spec.unit_size == 0 || spec.unit_size > MAX_UNIT_BYTES {
            return invalid("unit-size must be 1 to 65536 bytes");
        }
        let budget = MAX_MODULE_HEAP_BYTES - heaps.reserved_bytes;
        let max_units = if spec.unlimited {
            budget / u64::from(spec.unit_size)
        } else {
            u64::from(spec.max_units)
        };
        let bytes = max_units * u64::from(spec.unit_size);
        if max_units == 0 || bytes > budget {
            return invalid("the module's heaps would exceed 64 MiB at their maximum");
        }
        heaps.reserved_bytes += bytes;
        let heap = Heap::new(HeapSpec {
            label: format!("{module}.{}", spec.label),
            units_per_chunk: spec.units_per_chunk.max(1) as usize,
            max_units: max_units as usize,
            // `unlimited` is honoured above, as the module's byte budget.
            options: HeapOptions {
                grow_exponentially: spec.grow_exponentially,
                shrink: spec.shrink,
                unlimited: false,
            },
        });
        let unit_size = spec.unit_size as usize;
        heaps.by_label.insert(
            spec.label.clone(),
            GuestHeap {
                spec,
                unit_size,
                heap,
                units: HashMap::new(),
            },
        );
        Ok(())
    }

    fn alloc(&self, label: &str) -> Result<UnitId, HeapError> {
        let mut heaps = self.lock();
        let id = heaps.next_unit;
        let heap = heaps.by_label.get_mut(label).ok_or(HeapError::NoSuchHeap)?;
        let unit = heap
            .heap
            .alloc(vec![0; heap.unit_size].into_boxed_slice())
            .map_err(|_| HeapError::Full)?;
        heap.units.insert(id, vec![unit]);
        heaps.next_unit += 1;
        Ok(id)
    }

    /// Runs `f` on the first reference of a unit.
    fn with_unit<R>(
        &self,
        label: &str,
        id: UnitId,
        f: impl FnOnce(&mut Vec<Unit<Bytes>>) -> Result<R, HeapError>,
    ) -> Result<R, HeapError> {
        let mut heaps = self.lock();
        let heap = heaps.by_label.get_mut(label).ok_or(HeapError::NoSuchHeap)?;
        let refs = heap.units.get_mut(&id).ok_or(HeapError::NoSuchUnit)?;
        let result = f(refs);
        if refs.is_empty() {
            heap.units.remove(&id);
        }
        result
    }
}

/// Whether two specs are the same (the generated type has no `PartialEq`).
fn same_spec(a: &WitSpec, b: &WitSpec) -> bool {
    (
        a.label.as_str(),
        a.unit_size,
        a.units_per_chunk,
        a.max_units,
        a.grow_exponentially,
        a.shrink,
        a.unlimited,
    ) == (
        b.label.as_str(),
        b.unit_size,
        b.units_per_chunk,
        b.max_units,
        b.grow_exponentially,
        b.shrink,
        b.unlimited,
    )
}

/// The byte range `[offset, offset + len)` of a unit of `size` bytes.
fn range(size: usize, offset: u32, len: usize) -> Result<std::ops::Range<usize>, HeapError> {
    let start = offset as usize;
    let end = start
        .checked_add(len)
        .filter(|&end| end <= size)
        .ok_or(HeapError::OutOfBounds)?;
    Ok(start..end)
}

impl GuestHeaps {
    fn write(&self, label: &str, unit: UnitId, offset: u32, data: &[u8]) -> Result<(), HeapError> {
        self.with_unit(label, unit, |refs| {
            refs[0].with(|bytes| {
                let r = range(bytes.len(), offset, data.len())?;
                bytes[r].copy_from_slice(data);
                Ok(())
            })
        })
    }

    fn read(&self, label: &str, unit: UnitId, offset: u32, len: u32) -> Result<Vec<u8>, HeapError> {
        self.with_unit(label, unit, |refs| {
            refs[0].with(|bytes| Ok(bytes[range(bytes.len(), offset, len as usize)?].to_vec()))
        })
    }

    fn retain(&self, label: &str, unit: UnitId) -> Result<(), HeapError> {
        self.with_unit(label, unit, |refs| {
            let another = refs[0].clone();
            refs.push(another);
            Ok(())
        })
    }

    fn release(&self, label: &str, unit: UnitId) -> Result<(), HeapError> {
        self.with_unit(label, unit, |refs| {
            refs.pop();
            Ok(())
        })
    }
}

impl Host for InstanceState {
    async fn create(&mut self, spec: WitSpec) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.module.heaps.create(&self.module.name, spec))
    }

    async fn alloc(&mut self, label: String) -> wasmtime::Result<Result<UnitId, HeapError>> {
        Ok(self.module.heaps.alloc(&label))
    }

    async fn write(
        &mut self,
        label: String,
        unit: UnitId,
        offset: u32,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.module.heaps.write(&label, unit, offset, &data))
    }

    async fn read(
        &mut self,
        label: String,
        unit: UnitId,
        offset: u32,
        len: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, HeapError>> {
        Ok(self.module.heaps.read(&label, unit, offset, len))
    }

    async fn retain(
        &mut self,
        label: String,
        unit: UnitId,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.module.heaps.retain(&label, unit))
    }

    async fn release(
        &mut self,
        label: String,
        unit: UnitId,
    ) -> wasmtime::Result<Result<(), HeapError>> {
        Ok(self.module.heaps.release(&label, unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(label: &str, unit_size: u32, max_units: u32) -> WitSpec {
        WitSpec {
            label: label.into(),
            unit_size,
            units_per_chunk: 2,
            max_units,
            grow_exponentially: true,
            shrink: false,
            unlimited: false,
        }
    }

    #[test]
    fn units_are_shared_counted_and_reused() {
        let heaps = GuestHeaps::default();
        heaps.create("m", spec("visits", 8, 3)).unwrap();
        heaps
            .create("m", spec("visits", 8, 3))
            .expect("the same spec again is fine");
        let a = heaps.alloc("visits").unwrap();
        heaps.write("visits", a, 0, b"hello").unwrap();
        heaps.retain("visits", a).unwrap();
        heaps.release("visits", a).unwrap();
        assert_eq!(
            heaps.read("visits", a, 0, 5).unwrap(),
            b"hello",
            "alive after one of two releases"
        );
        assert_eq!(
            heaps.read("visits", a, 5, 3).unwrap(),
            [0, 0, 0],
            "units start zeroed"
        );
        heaps.release("visits", a).unwrap();
        assert!(matches!(
            heaps.read("visits", a, 0, 1),
            Err(HeapError::NoSuchUnit)
        ));
        let stats = &heaps.stats()[0];
        assert_eq!((stats.label.as_str(), stats.allocated), ("m.visits", 0));
        let b = heaps.alloc("visits").unwrap();
        assert_eq!(
            heaps.read("visits", b, 0, 5).unwrap(),
            [0; 5],
            "a reused unit is zeroed"
        );
    }

    #[test]
    fn limits_hold() {
        let heaps = GuestHeaps::default();
        heaps.create("m", spec("small", 4, 2)).unwrap();
        heaps.alloc("small").unwrap();
        heaps.alloc("small").unwrap();
        assert!(matches!(heaps.alloc("small"), Err(HeapError::Full)));
        assert!(matches!(heaps.alloc("nope"), Err(HeapError::NoSuchHeap)));
        assert!(matches!(
            heaps.create("m", spec("small", 8, 2)),
            Err(HeapError::InvalidSpec(_))
        ));
        assert!(matches!(
            heaps.create("m", spec("Bad", 8, 2)),
            Err(HeapError::InvalidSpec(_))
        ));
        assert!(
            matches!(
                heaps.create("m", spec("huge", 65536, 2000)),
                Err(HeapError::InvalidSpec(_))
            ),
            "2000 x 64 KiB is over the module's 64 MiB"
        );
        assert!(matches!(range(8, 6, 4), Err(HeapError::OutOfBounds)));
        let unit = heaps.alloc("huge").err();
        assert!(matches!(unit, Some(HeapError::NoSuchHeap)));
        assert_eq!(range(8, 4, 4).unwrap(), 4..8);
    }
}
