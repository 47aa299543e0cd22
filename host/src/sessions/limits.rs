//! Per-module limits on what one instance may use (linear memory, alone and summed over
//! the module's live instances; host handles; bytes the host buffers for it; log events;
//! wall-clock time), the memory limiter that enforces the memory ones in each store, and
//! the counters of sessions that lost to a limit (the report's `Limits hit` line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::ResourceLimiter;

use super::options::DEFAULT_INSTANCE_MEMORY_MB;

/// A limit a session can lose to; each is a host session option of the module's section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Limit {
    /// `instance_memory_mb`.
    InstanceMemory = 1,
    /// `module_memory_mb`.
    ModuleMemory,
    /// `session_wall_seconds`.
    Wall,
    /// `session_cpu_ms`.
    Cpu,
    /// `max_handles`.
    Handles,
    /// `max_buffered_kb`.
    Buffered,
    /// `max_log_events` (the session goes on; its later events are dropped).
    Log,
}

impl Limit {
    /// Every limit, in report order.
    pub const ALL: [Limit; 7] = [
        Limit::InstanceMemory,
        Limit::ModuleMemory,
        Limit::Wall,
        Limit::Cpu,
        Limit::Handles,
        Limit::Buffered,
        Limit::Log,
    ];

    /// The c11n option that sets it.
    pub fn option(self) -> &'static str {
        match self {
            Limit::InstanceMemory => "instance_memory_mb",
            Limit::ModuleMemory => "module_memory_mb",
            Limit::Wall => "session_wall_seconds",
            Limit::Cpu => "session_cpu_ms",
            Limit::Handles => "max_handles",
            Limit::Buffered => "max_buffered_kb",
            Limit::Log => "max_log_events",
        }
    }

    /// Its name in the report's `Limits hit` line.
    pub fn label(self) -> &'static str {
        match self {
            Limit::InstanceMemory => "memory",
            Limit::ModuleMemory => "module memory",
            Limit::Wall => "wall",
            Limit::Cpu => "cpu",
            Limit::Handles => "handles",
            Limit::Buffered => "buffered",
            Limit::Log => "log",
        }
    }

    fn from_u8(v: u8) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| *l as u8 == v)
    }
}

/// The limits of one module's instances, in bytes and counts (c11n gives MiB and KiB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Linear memory of one instance.
    pub instance_memory: usize,
    /// Linear memory of all the module's live instances together; `None` for no bound.
    pub module_memory: Option<usize>,
    /// How long one session may last; `None` for no bound.
    pub wall: Option<Duration>,
    /// Host resources one instance may hold (its resource table's capacity).
    pub handles: usize,
    /// Bytes the host holds for one instance at a time (the write permit, a send-file
    /// head, a Maildir read).
    pub buffered: usize,
    /// Log events one instance may emit.
    pub log_events: u32,
}

impl Default for Limits {
    /// The defaults of the c11n options (see `options.rs`).
    fn default() -> Self {
        Limits {
            instance_memory: (DEFAULT_INSTANCE_MEMORY_MB as usize) << 20,
            module_memory: None,
            wall: Some(Duration::from_secs(3600)),
            handles: 1024,
            buffered: 64 << 10,
            log_events: 1000,
        }
    }
}

/// A module's limits, the memory its live instances hold now, and how many sessions hit
/// each limit. Shared by every instance of the module, across hot swaps.
#[derive(Debug, Default)]
pub struct ModuleLimits {
    /// The limits.
    pub limits: Limits,
    /// `session_cpu_ms`, for log lines.
    pub cpu: Duration,
    /// Linear memory of the module's live instances, in bytes.
    memory: AtomicUsize,
    hits: [AtomicU64; Limit::ALL.len()],
}

impl ModuleLimits {
    /// Limits with nothing charged or counted yet.
    pub fn new(limits: Limits, cpu: Duration) -> Arc<Self> {
        Arc::new(ModuleLimits {
            limits,
            cpu,
            ..ModuleLimits::default()
        })
    }

    /// `option = value`, in the option's own unit, for log lines.
    pub fn setting(&self, limit: Limit) -> String {
        let l = &self.limits;
        let value = match limit {
            Limit::InstanceMemory => (l.instance_memory >> 20) as u64,
            Limit::ModuleMemory => (l.module_memory.unwrap_or(0) >> 20) as u64,
            Limit::Wall => l.wall.map_or(0, |w| w.as_secs()),
            Limit::Cpu => self.cpu.as_millis() as u64,
            Limit::Handles => l.handles as u64,
            Limit::Buffered => (l.buffered >> 10) as u64,
            Limit::Log => l.log_events as u64,
        };
        format!("{} = {value}", limit.option())
    }

    /// Counts one session that hit `limit`.
    pub fn count(&self, limit: Limit) {
        self.hits[limit as usize - 1].fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions that hit each limit so far, in [`Limit::ALL`] order.
    pub fn hits(&self) -> [(Limit, u64); Limit::ALL.len()] {
        Limit::ALL.map(|l| (l, self.hits[l as usize - 1].load(Ordering::Relaxed)))
    }

    /// Linear memory of the module's live instances now, in bytes.
    pub fn memory_in_use(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    /// Charges `bytes` to the module; false (nothing charged) past `module_memory`.
    fn charge(&self, bytes: usize) -> bool {
        let Some(budget) = self.limits.module_memory else {
            self.memory.fetch_add(bytes, Ordering::Relaxed);
            return true;
        };
        self.memory
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= budget)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.memory.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The first limit one instance hit, if any; set by the limiter and by host calls that
/// refuse a guest for a limit, read when its session ends.
#[derive(Debug, Default)]
pub struct LimitFlag(AtomicU8);

impl LimitFlag {
    /// Records `limit` unless another was recorded first.
    pub fn set(&self, limit: Limit) {
        let _ = self
            .0
            .compare_exchange(0, limit as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The limit recorded, if any.
    pub fn get(&self) -> Option<Limit> {
        Limit::from_u8(self.0.load(Ordering::Relaxed))
    }
}

/// The `ResourceLimiter` of one store: refuses a memory past `instance_memory_mb` or past
/// what `module_memory_mb` leaves, and returns what it charged when the store is dropped.
/// Pooling's `max_memory_size` stays the hard ceiling above it. It counts declared
/// pages, not resident memory.
pub struct InstanceLimiter {
    module: Arc<ModuleLimits>,
    charged: usize,
    /// The growth allowed last, taken back if the grow then fails.
    last_growth: usize,
    /// Where a refusal is recorded.
    pub hit: Arc<LimitFlag>,
}

impl InstanceLimiter {
    /// A limiter charging `module`.
    pub fn new(module: Arc<ModuleLimits>) -> Self {
        InstanceLimiter {
            module,
            charged: 0,
            last_growth: 0,
            hit: Arc::default(),
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
        if desired > self.module.limits.instance_memory {
            self.hit.set(Limit::InstanceMemory);
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        if !self.module.charge(growth) {
            self.hit.set(Limit::ModuleMemory);
            return Ok(false);
        }
        self.charged += growth;
        self.last_growth = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.module.release(self.last_growth);
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
        self.module.release(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(instance_mb: usize, module_mb: Option<usize>) -> Arc<ModuleLimits> {
        let limits = Limits {
            instance_memory: instance_mb << 20,
            module_memory: module_mb.map(|m| m << 20),
            ..Limits::default()
        };
        ModuleLimits::new(limits, Duration::from_secs(1))
    }

    #[test]
    fn an_instance_is_refused_past_its_own_limit() {
        let mut limiter = InstanceLimiter::new(module(8, None));
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(!limiter.memory_growing(4 << 20, 9 << 20, None).unwrap());
        assert_eq!(limiter.hit.get(), Some(Limit::InstanceMemory));
    }

    #[test]
    fn the_module_budget_is_shared_and_given_back() {
        let shared = module(16, Some(20));
        let mut a = InstanceLimiter::new(shared.clone());
        let mut b = InstanceLimiter::new(shared.clone());
        assert!(a.memory_growing(0, 12 << 20, None).unwrap());
        assert!(!b.memory_growing(0, 12 << 20, None).unwrap());
        assert_eq!(b.hit.get(), Some(Limit::ModuleMemory));
        assert!(b.memory_growing(0, 8 << 20, None).unwrap());
        assert_eq!(shared.memory_in_use(), 20 << 20);
        drop(a);
        assert_eq!(shared.memory_in_use(), 8 << 20);
        b.memory_grow_failed(wasmtime::format_err!("no")).unwrap();
        assert_eq!(shared.memory_in_use(), 0);
    }

    #[test]
    fn settings_are_shown_in_their_units() {
        let m = module(8, Some(20));
        assert_eq!(m.setting(Limit::InstanceMemory), "instance_memory_mb = 8");
        assert_eq!(m.setting(Limit::ModuleMemory), "module_memory_mb = 20");
        assert_eq!(m.setting(Limit::Buffered), "max_buffered_kb = 64");
        let flag = LimitFlag::default();
        flag.set(Limit::Handles);
        flag.set(Limit::Wall);
        assert_eq!(flag.get(), Some(Limit::Handles), "the first limit stays");
    }
}
