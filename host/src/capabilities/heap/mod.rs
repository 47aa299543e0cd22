//! Heaps for modules: labelled heaps of fixed-size byte units in host memory, one set per
//! module (shared by all its instances and kept across hot swaps), listed in the report.
//! Every byte they cost the host (the units, the heap's slots, the labels, the
//! bookkeeping) is charged to the module's `host_memory_mb` as it is taken, and the shape of
//! a heap is bounded too ([`MAX_HEAPS`], [`MAX_LABEL_BYTES`], [`MAX_MODULE_HEAP_BYTES`]),
//! so a module can neither grow the server nor the report without bound.

pub mod host;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::contract::bindings::heap::{HeapError, HeapSpec as WitSpec, UnitId};
use crate::heaps::{Heap, HeapOptions, HeapSpec, HeapStats, Unit};
use crate::meter::{HostCharge, InstanceMeter};

/// Largest unit: what it defends is the cost of one read or write copy.
pub const MAX_UNIT_BYTES: u32 = 64 * 1024;

/// Most bytes all of a module's heaps may hold at their maximum, in units: what it
/// defends is host memory against a module declaring heaps without bound (their real
/// cost is charged to `host_memory_mb` besides).
pub const MAX_MODULE_HEAP_BYTES: u64 = 64 << 20;

/// Most heaps one module may create: what it defends is the report (each heap is a line)
/// and the host's bookkeeping.
pub const MAX_HEAPS: usize = 64;

/// Longest heap label: what it defends is the report's size.
pub const MAX_LABEL_BYTES: usize = 64;

/// Host memory a heap costs besides its units: its record, its label's allocation, its
/// report line.
const HEAP_BYTES: usize = 512;

/// Host memory one slot of a heap's chunk costs, whether a unit fills it or not.
const SLOT_BYTES: usize = 48;

/// Host memory an allocated unit costs besides its bytes: its allocation's header and its
/// entry in the unit table.
const UNIT_OVERHEAD_BYTES: usize = 96;

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
    units: HashMap<UnitId, Allocated>,
    /// What the heap itself and each of its chunks cost, in chunk order.
    charges: Vec<HostCharge>,
}

/// One allocated unit: the heap's reference, how many the guest holds, and its charge.
struct Allocated {
    unit: Unit<Bytes>,
    refs: u32,
    _charge: HostCharge,
}

/// Host memory the module has no room for: the error the guest sees.
fn no_memory() -> HeapError {
    HeapError::InvalidSpec("the module's host memory budget (host_memory_mb) is spent".into())
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

    fn create(&self, module: &str, spec: WitSpec, meter: &InstanceMeter) -> Result<(), HeapError> {
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
            || spec.label.len() > MAX_LABEL_BYTES
            || !spec
                .label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return invalid("the label must be [a-z0-9_]+, at most 64 characters");
        }
        if heaps.by_label.len() >= MAX_HEAPS {
            return invalid("a module may have at most 64 heaps");
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
        let charge = meter
            .charge(HEAP_BYTES + spec.label.len())
            .ok_or_else(no_memory)?;
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
                charges: vec![charge],
            },
        );
        Ok(())
    }

    fn alloc(&self, label: &str, meter: &InstanceMeter) -> Result<UnitId, HeapError> {
        let mut heaps = self.lock();
        let id = heaps.next_unit;
        let heap = heaps.by_label.get_mut(label).ok_or(HeapError::NoSuchHeap)?;
        let growth = heap.heap.next_growth();
        if growth > 0 {
            let chunk = meter.charge(growth * SLOT_BYTES).ok_or(HeapError::Full)?;
            heap.charges.push(chunk);
        }
        let cost = heap.unit_size.next_multiple_of(16) + UNIT_OVERHEAD_BYTES;
        let charge = meter.charge(cost);
        let unit = charge.and_then(|charge| {
            let unit = heap.heap.alloc(vec![0; heap.unit_size].into_boxed_slice());
            unit.ok().map(|unit| (unit, charge))
        });
        heap.give_back_chunks();
        let (unit, charge) = unit.ok_or(HeapError::Full)?;
        heap.units.insert(
            id,
            Allocated {
                unit,
                refs: 1,
                _charge: charge,
            },
        );
        heaps.next_unit += 1;
        Ok(id)
    }

    /// Runs `f` on an allocated unit of heap `label`.
    fn with_unit<R>(
        &self,
        label: &str,
        id: UnitId,
        f: impl FnOnce(&mut Allocated) -> Result<R, HeapError>,
    ) -> Result<R, HeapError> {
        let mut heaps = self.lock();
        let heap = heaps.by_label.get_mut(label).ok_or(HeapError::NoSuchHeap)?;
        let allocated = heap.units.get_mut(&id).ok_or(HeapError::NoSuchUnit)?;
        let result = f(allocated);
        if allocated.refs == 0 {
            heap.units.remove(&id);
            heap.give_back_chunks();
        }
        result
    }

    fn write(&self, label: &str, unit: UnitId, offset: u32, data: &[u8]) -> Result<(), HeapError> {
        self.with_unit(label, unit, |a| {
            a.unit.with(|bytes| {
                let r = range(bytes.len(), offset, data.len())?;
                bytes[r].copy_from_slice(data);
                Ok(())
            })
        })
    }

    fn read(&self, label: &str, unit: UnitId, offset: u32, len: u32) -> Result<Vec<u8>, HeapError> {
        self.with_unit(label, unit, |a| {
            a.unit
                .with(|bytes| Ok(bytes[range(bytes.len(), offset, len as usize)?].to_vec()))
        })
    }

    fn retain(&self, label: &str, unit: UnitId) -> Result<(), HeapError> {
        self.with_unit(label, unit, |a| {
            // A count, not a copy per reference: retaining costs no memory.
            a.refs = a.refs.checked_add(1).ok_or(HeapError::Full)?;
            Ok(())
        })
    }

    fn release(&self, label: &str, unit: UnitId) -> Result<(), HeapError> {
        self.with_unit(label, unit, |a| {
            a.refs -= 1;
            Ok(())
        })
    }
}

impl GuestHeap {
    /// Gives back the charges of chunks a shrinking heap returned (or a growth that did
    /// not happen).
    fn give_back_chunks(&mut self) {
        // charges[0] is the heap itself; one more per chunk.
        self.charges.truncate(1 + self.heap.chunks());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::tests::meter;
    use crate::meter::{CpuBudget, Limit};

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

    fn instance(host_mb: usize) -> InstanceMeter {
        InstanceMeter::new(&meter(8, None, host_mb), CpuBudget::unbounded()).unwrap()
    }

    #[test]
    fn units_are_shared_counted_and_reused() {
        let m = instance(4);
        let heaps = GuestHeaps::default();
        heaps.create("m", spec("visits", 8, 3), &m).unwrap();
        heaps
            .create("m", spec("visits", 8, 3), &m)
            .expect("the same spec again is fine");
        let a = heaps.alloc("visits", &m).unwrap();
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
        let b = heaps.alloc("visits", &m).unwrap();
        assert_eq!(
            heaps.read("visits", b, 0, 5).unwrap(),
            [0; 5],
            "a reused unit is zeroed"
        );
    }

    #[test]
    fn limits_hold() {
        let m = instance(4);
        let heaps = GuestHeaps::default();
        heaps.create("m", spec("small", 4, 2), &m).unwrap();
        heaps.alloc("small", &m).unwrap();
        heaps.alloc("small", &m).unwrap();
        assert!(matches!(heaps.alloc("small", &m), Err(HeapError::Full)));
        assert!(matches!(
            heaps.alloc("nope", &m),
            Err(HeapError::NoSuchHeap)
        ));
        for bad in [
            spec("small", 8, 2),
            spec("Bad", 8, 2),
            spec(&"x".repeat(65), 8, 2),
        ] {
            assert!(matches!(
                heaps.create("m", bad, &m),
                Err(HeapError::InvalidSpec(_))
            ));
        }
        assert!(
            matches!(
                heaps.create("m", spec("huge", 65536, 2000), &m),
                Err(HeapError::InvalidSpec(_))
            ),
            "2000 x 64 KiB is over the module's 64 MiB"
        );
        assert!(matches!(range(8, 6, 4), Err(HeapError::OutOfBounds)));
        assert_eq!(range(8, 4, 4).unwrap(), 4..8);
    }

    #[test]
    fn a_module_gets_at_most_64_heaps() {
        let m = instance(4);
        let heaps = GuestHeaps::default();
        for i in 0..MAX_HEAPS {
            heaps.create("m", spec(&format!("h{i}"), 1, 1), &m).unwrap();
        }
        assert!(matches!(
            heaps.create("m", spec("one_more", 1, 1), &m),
            Err(HeapError::InvalidSpec(_))
        ));
    }

    #[test]
    fn what_heaps_cost_is_charged_and_refused_past_the_budget() {
        let m = instance(1);
        let module = m.module.clone();
        let heaps = GuestHeaps::default();
        // 32 Mi one-byte units in one chunk would cost a gigabyte of slots.
        let mut greedy = spec("greedy", 1, 32 << 20);
        greedy.units_per_chunk = 32 << 20;
        heaps.create("m", greedy, &m).unwrap();
        assert!(matches!(heaps.alloc("greedy", &m), Err(HeapError::Full)));
        assert_eq!(m.first_limit.get(), Some(Limit::HostMemory));
        let used = module.host_memory.used();
        assert!(used < 1 << 20, "within the budget: {used}");
        // Units one by one: refused once the megabyte is spent, never past it.
        let mut small = spec("small", 1, 1 << 20);
        small.grow_exponentially = false;
        small.units_per_chunk = 64;
        heaps.create("m", small, &m).unwrap();
        let mut n = 0;
        while heaps.alloc("small", &m).is_ok() {
            n += 1;
        }
        assert!(n > 1000, "{n} units fitted");
        assert!(module.host_memory.used() <= 1 << 20);
        drop(heaps);
        let reservation = crate::meter::ModuleMeter::instance_reservation(&module.budgets);
        assert_eq!(module.host_memory.used(), reservation, "all given back");
    }
}
