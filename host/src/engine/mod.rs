//! The wasm engine: one per process, configured for many short-lived instances (pooling
//! allocator, epoch interruption), plus its epoch ticker and the compiled-module cache.
//!
//! The engine must start no thread of its own before the root drop (see
//! docs/architecture.md, "Privileges"): parallel compilation is off, the cache is ours
//! (`cache`: no background worker), and the ticker is started by the caller when it is safe.

mod cache;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::ComponentCache;

/// Instances a module holds besides its sessions: its operator, a `report` hook, and the
/// `describe` and `construct` instances of a hot swap being loaded.
pub const HOOK_INSTANCES_PER_MODULE: u32 = 4;

/// Virtual address space one linear-memory slot reserves by default (wasmtime's
/// `memory_reservation` on 64-bit hosts), which lets compiled code skip bounds checks.
const DEFAULT_MEMORY_RESERVATION: u64 = 4 << 30;

/// Guard region after each slot (wasmtime's default `memory_guard_size`).
const MEMORY_GUARD: u64 = 32 << 20;

/// Fiber stack of one instance in the pool (`async_stack_size`).
const ASYNC_STACK: u64 = 2 << 20;

/// User address space of the process: 47 bits on x86-64 and on arm64 with 48-bit
/// addresses (half of it is the kernel's).
const USER_ADDRESS_SPACE: u64 = 1 << 47;

/// Share of the address space the pool may reserve: the rest is for the heap, thread
/// stacks, mapped files and the kernel's own layout.
const POOL_SHARE_OF_ADDRESS_SPACE: (u64, u64) = (3, 4);

/// The instance pool's size, computed from the personality at startup
/// (`startup::load::pool_plan`) and fixed for the life of the process: a change of
/// `max_sessions` or `instance_memory_mb` needs a restart anyway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolPlan {
    /// Most instances alive at once: every live session, operator and hook holds one.
    pub capacity: u32,
    /// Largest linear memory of one instance (the largest `instance_memory_mb`); a guest
    /// growing past it gets a failed `memory.grow`. Each module's limiter may hold its
    /// instances lower.
    pub instance_memory: usize,
}

impl PoolPlan {
    /// A pool for one module's hooks (`serverkit inspect`).
    pub const SMALL: PoolPlan = PoolPlan {
        capacity: 16,
        instance_memory: 64 << 20,
    };

    /// Address space the pool reserves with linear-memory slots of `slot` bytes.
    fn reservation(&self, slot: u64) -> u64 {
        u64::from(self.capacity) * (slot + MEMORY_GUARD + ASYNC_STACK)
    }

    /// The slot size the pool can use: wasmtime's default reservation when the whole
    /// pool fits the address space (no bounds checks in compiled code), else just the
    /// largest memory (explicit bounds checks), else an error with the figures.
    fn memory_reservation(&self) -> Result<u64> {
        let (num, den) = POOL_SHARE_OF_ADDRESS_SPACE;
        let mut budget = USER_ADDRESS_SPACE / den * num;
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS)
            && soft != nix::sys::resource::RLIM_INFINITY
        {
            budget = budget.min(soft / den * num);
        }
        if self.reservation(DEFAULT_MEMORY_RESERVATION) <= budget {
            return Ok(DEFAULT_MEMORY_RESERVATION);
        }
        let small = (self.instance_memory as u64).next_multiple_of(64 << 10);
        anyhow::ensure!(
            self.reservation(small) <= budget,
            "the instance pool ({} instances of at most {} MiB) needs {} GiB of address space, more than the {} GiB available: lower `max_sessions`, `instance_memory_mb` or `instance_capacity`",
            self.capacity,
            self.instance_memory >> 20,
            self.reservation(small) >> 30,
            budget >> 30
        );
        tracing::warn!(
            "the instance pool ({} instances) does not fit the address space with 4 GiB per memory: reserving {} MiB each, so compiled modules check memory bounds (slower)",
            self.capacity,
            small >> 20
        );
        Ok(small)
    }
}

/// Most core wasm instances one component may create. A Rust module has one or two; a
/// componentize-py module (CPython as a set of dynamically linked core modules: libpython,
/// libc, the WASI adapter, shims) has 14 for a one-file app, and more with each native
/// extension it bundles. Only a counter in wasmtime: it reserves no memory.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Core instances per pooled instance, for the pool's total. Also only a counter, sized so
/// that every live instance can be a componentize-py module's (14 core instances, rounded
/// up).
const CORE_INSTANCES_PER_INSTANCE: u32 = 16;

/// Dirty bytes of a freed instance's linear memory the pool resets in place (found with
/// Linux's `PAGEMAP_SCAN`, zeroed with `memset`) rather than handing back to the kernel.
/// A short session dirties tens of KiB; returning them with `madvise` costs a TLB flush on
/// every core running the process and the next instance's page faults, the largest
/// per-connection cost in a profile of connection-per-request HTTP (docs/benchmarks.md).
/// The price: a slot that was used keeps up to this much resident while free. Only where
/// the kernel has `PAGEMAP_SCAN` (6.7 and later).
const MEMORY_KEEP_RESIDENT: usize = 128 << 10;

/// The same for each freed instance's tables (function references: a few KiB).
const TABLE_KEEP_RESIDENT: usize = 16 << 10;

/// Period of the epoch tick: the granularity of CPU budgets and of yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Creates the engine with an instance pool sized by `plan`; fails with the figures when
/// the pool cannot fit the address space.
pub fn new(plan: &PoolPlan) -> Result<Engine> {
    let capacity = plan.capacity;
    let mut config = Config::new();
    config.epoch_interruption(true);
    // `SERVERKIT_PROFILE=perfmap` writes /tmp/perf-PID.map, so `perf report` can name the
    // guests' compiled functions (docs/benchmarks.md, "Where the time goes").
    if std::env::var_os("SERVERKIT_PROFILE").is_some_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(ASYNC_STACK as usize);
    config.parallel_compilation(false);
    config.memory_reservation(plan.memory_reservation()?);
    config.memory_guard_size(MEMORY_GUARD);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(capacity)
        .total_core_instances(capacity * CORE_INSTANCES_PER_INSTANCE)
        .total_memories(capacity)
        .total_tables(capacity * 2)
        .total_stacks(capacity)
        .max_memory_size(plan.instance_memory)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .linear_memory_keep_resident(0)
        .table_keep_resident(0);
    // Without PAGEMAP_SCAN (Linux before 6.7) keeping memory resident would `memset` all
    // of it on every free, touched or not: there, freed memory goes back to the kernel.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "failed to create the wasm engine (a pool of {capacity} instances of at most {} MiB)",
                plan.instance_memory >> 20
            )
        })
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until stopped or the engine is gone.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub fn start(engine: &Engine) -> Result<Self> {
        let weak = engine.weak();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .context("failed to start the epoch ticker thread")?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it to end, so that it holds no credentials when
    /// the process drops root.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(capacity: u32, instance_mb: usize) -> PoolPlan {
        PoolPlan {
            capacity,
            instance_memory: instance_mb << 20,
        }
    }

    #[test]
    fn a_pool_that_fits_keeps_the_default_reservation() {
        let reservation = plan(20_000, 64).memory_reservation().unwrap();
        assert_eq!(reservation, DEFAULT_MEMORY_RESERVATION);
    }

    #[test]
    fn a_pool_too_large_for_4_gib_slots_reserves_its_largest_memory() {
        let reservation = plan(100_000, 8).memory_reservation().unwrap();
        assert_eq!(reservation, 8 << 20);
    }

    #[test]
    fn a_pool_that_cannot_fit_is_an_error_with_the_figures() {
        let err = plan(u32::MAX / 4, 4096)
            .memory_reservation()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the instance pool (1073741823 instances of at most 4096 MiB) needs"),
            "{err}"
        );
        assert!(err.contains("lower `max_sessions`"), "{err}");
    }
}
