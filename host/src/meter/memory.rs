//! Memory a module's instances use: their linear memory (charged by each store's
//! `ResourceLimiter`), and host memory they cause (heaps, buffered output, resource tables),
//! charged as it is taken and given back when what holds it drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

use super::ModuleMeter;
use super::limit::{FirstLimit, Limit};

/// Bytes counted against an optional budget, shared by a module's instances.
#[derive(Debug, Default)]
pub struct Counter {
    used: AtomicUsize,
}

impl Counter {
    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Counts `bytes` more; false (nothing counted) past `budget`.
    pub(super) fn charge(&self, bytes: usize, budget: Option<usize>) -> bool {
        let Some(budget) = budget else {
            self.used.fetch_add(bytes, Ordering::Relaxed);
            return true;
        };
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= budget)
            })
            .is_ok()
    }

    /// Counts `bytes` more; false (nothing counted) past `budget`.
    pub fn charge_within(&self, bytes: usize, budget: usize) -> bool {
        self.charge(bytes, Some(budget))
    }

    pub(super) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Host memory charged to a module, given back when dropped.
#[derive(Debug)]
#[must_use = "the memory is given back when the charge drops"]
pub struct HostCharge {
    meter: Arc<ModuleMeter>,
    bytes: usize,
}

impl HostCharge {
    /// Charges `bytes` of host memory to the module of `meter`; `None` past its
    /// `host_memory_mb` (recorded as a hit of that limit in `hit`).
    pub fn take(meter: &Arc<ModuleMeter>, bytes: usize, hit: &FirstLimit) -> Option<Self> {
        if meter
            .host_memory
            .charge(bytes, Some(meter.budgets.host_memory))
        {
            return Some(HostCharge {
                meter: meter.clone(),
                bytes,
            });
        }
        meter.record(hit, Limit::HostMemory);
        None
    }

    /// Bytes this charge holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for HostCharge {
    fn drop(&mut self) {
        self.meter.host_memory.release(self.bytes);
    }
}

/// The `ResourceLimiter` of one store: refuses a linear memory past `instance_memory_mb`
/// or past what `module_memory_mb` leaves, and gives back what it charged when the store is
/// dropped. The pool's `max_memory_size` stays the hard ceiling above it. It counts
/// declared pages, not resident memory.
pub struct InstanceLimiter {
    module: Arc<ModuleMeter>,
    charged: usize,
    /// The growth allowed last, taken back if the grow then fails.
    last_growth: usize,
    hit: Arc<FirstLimit>,
}

impl InstanceLimiter {
    /// A limiter charging `module`, recording a refusal in `hit`.
    pub fn new(module: Arc<ModuleMeter>, hit: Arc<FirstLimit>) -> Self {
        InstanceLimiter {
            module,
            charged: 0,
            last_growth: 0,
            hit,
        }
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let budgets = &self.module.budgets;
        if desired > budgets.instance_memory {
            self.module.record(&self.hit, Limit::InstanceMemory);
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        if !self
            .module
            .linear_memory
            .charge(growth, budgets.module_memory)
        {
            self.module.record(&self.hit, Limit::ModuleMemory);
            return Ok(false);
        }
        self.charged += growth;
        self.last_growth = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.module.linear_memory.release(self.last_growth);
        self.charged -= self.last_growth;
        self.last_growth = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's `table_elements`.
        Ok(true)
    }
}

impl Drop for InstanceLimiter {
    fn drop(&mut self) {
        self.module.linear_memory.release(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::tests::meter;

    #[test]
    fn an_instance_is_refused_past_its_own_limit() {
        let hit = Arc::new(FirstLimit::default());
        let mut limiter = InstanceLimiter::new(meter(8, None, 1), hit.clone());
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(!limiter.memory_growing(4 << 20, 9 << 20, None).unwrap());
        assert_eq!(hit.get(), Some(Limit::InstanceMemory));
    }

    #[test]
    fn the_module_budget_is_shared_and_given_back() {
        let shared = meter(16, Some(20), 1);
        let hit = Arc::new(FirstLimit::default());
        let mut a = InstanceLimiter::new(shared.clone(), Arc::default());
        let mut b = InstanceLimiter::new(shared.clone(), hit.clone());
        assert!(a.memory_growing(0, 12 << 20, None).unwrap());
        assert!(!b.memory_growing(0, 12 << 20, None).unwrap());
        assert_eq!(hit.get(), Some(Limit::ModuleMemory));
        assert!(b.memory_growing(0, 8 << 20, None).unwrap());
        assert_eq!(shared.linear_memory.used(), 20 << 20);
        drop(a);
        assert_eq!(shared.linear_memory.used(), 8 << 20);
        b.memory_grow_failed(wasmtime::format_err!("no")).unwrap();
        assert_eq!(shared.linear_memory.used(), 0);
    }

    #[test]
    fn host_memory_is_refused_past_the_budget_and_given_back() {
        let shared = meter(8, None, 1);
        let hit = FirstLimit::default();
        let most = HostCharge::take(&shared, (1 << 20) - 10, &hit).unwrap();
        assert!(HostCharge::take(&shared, 11, &hit).is_none());
        assert!(HostCharge::take(&shared, 11, &hit).is_none());
        assert_eq!(hit.get(), Some(Limit::HostMemory));
        assert_eq!(
            shared.hits()[7],
            (Limit::HostMemory, 1),
            "once per instance"
        );
        let rest = HostCharge::take(&shared, 10, &hit).unwrap();
        assert_eq!(shared.host_memory.used(), 1 << 20);
        drop((most, rest));
        assert_eq!(shared.host_memory.used(), 0);
    }
}
