//! The ground floor of the host's accounting: one meter per module (its budgets, the
//! memory and descriptors its instances hold, the limits they hit, the wait channels they
//! sit in) and one per instance (its linear-memory limiter, CPU budget, log budget and the
//! first limit it hit). Every interface charges the meter; a session's end reads one
//! verdict from it. Nothing here knows about modules, sessions or interfaces.

pub mod cpu;
pub mod descriptors;
pub mod limit;
pub mod memory;
pub mod waits;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::logging::owner::LogShare;

pub use cpu::{CpuBudget, Refill, STRETCH_BYTES};
pub use descriptors::{DescriptorPermit, Descriptors, ProcessDescriptors};
pub use limit::{Budgets, FirstLimit, Limit};
pub use memory::{Counter, HostCharge, InstanceLimiter};
pub use waits::{Channel, WaitChannels};

/// Host memory one instance holds whatever it does: its store data, WASI context and
/// resource table, before any handle (measured roughly; a conservative round figure).
pub const INSTANCE_BASE_BYTES: usize = 16 << 10;

/// Host memory one entry of an instance's resource table may hold: the table's slot and
/// the boxed resource behind it (streams, pollables, file handles).
pub const HANDLE_BYTES: usize = 256;

/// One module's budgets and what its instances use, shared by every instance of every
/// version of the module (a hot swap keeps it).
#[derive(Debug)]
pub struct ModuleMeter {
    /// What the module may use.
    pub budgets: Budgets,
    /// Linear memory of its live instances.
    pub linear_memory: Counter,
    /// Host memory its instances caused.
    pub host_memory: Counter,
    /// Bytes its keyed store holds (`capabilities/store`), against `store_mb`.
    pub store: Counter,
    /// Descriptors its instances hold.
    pub descriptors: Descriptors,
    /// Where its instances wait, for the report.
    pub waits: Arc<WaitChannels>,
    /// Log events its instances emitted past their budget, dropped.
    pub log_dropped: AtomicU64,
    /// Its part of the stderr queue: what its lines may hold while the reader lags.
    pub log_queue: Arc<LogShare>,
    hits: [AtomicU64; Limit::ALL.len()],
}

impl ModuleMeter {
    /// A meter with nothing charged yet.
    pub fn new(budgets: Budgets, process: ProcessDescriptors) -> Arc<Self> {
        Arc::new(ModuleMeter {
            budgets,
            linear_memory: Counter::default(),
            host_memory: Counter::default(),
            store: Counter::default(),
            descriptors: Descriptors::new(budgets.descriptors, process),
            waits: Arc::default(),
            log_dropped: AtomicU64::new(0),
            log_queue: Arc::default(),
            hits: Default::default(),
        })
    }

    /// `option = value` of `limit`, for log lines.
    pub fn setting(&self, limit: Limit) -> String {
        self.budgets.setting(limit)
    }

    /// Counts one instance that hit `limit`.
    pub fn count(&self, limit: Limit) {
        self.hits[limit as usize - 1].fetch_add(1, Ordering::Relaxed);
    }

    /// Records in `hit` that an instance hit `limit`, counting it the first time.
    pub fn record(&self, hit: &FirstLimit, limit: Limit) {
        if hit.record(limit) {
            self.count(limit);
        }
    }

    /// Charges `bytes` to the keyed store; false (nothing charged, the refusal counted as
    /// a hit of `store_mb`) past its budget.
    pub fn charge_store(&self, bytes: usize) -> bool {
        let charged = self.store.charge(bytes, Some(self.budgets.store));
        if !charged {
            // Counted per refused write, not per instance: the session goes on, as with
            // the log budget.
            self.count(Limit::Store);
        }
        charged
    }

    /// Gives back `bytes` the keyed store charged.
    pub fn release_store(&self, bytes: usize) {
        self.store.release(bytes);
    }

    /// Instances that hit each limit so far, in [`Limit::ALL`] order.
    pub fn hits(&self) -> [(Limit, u64); Limit::ALL.len()] {
        Limit::ALL.map(|l| (l, self.hits[l as usize - 1].load(Ordering::Relaxed)))
    }

    /// Host memory one instance reserves when it is created: its base, a full resource
    /// table and a full write permit. Charged up front, so that however the instance uses
    /// them the module's total stays within `host_memory_mb`.
    pub fn instance_reservation(budgets: &Budgets) -> usize {
        INSTANCE_BASE_BYTES + budgets.handles * HANDLE_BYTES + budgets.buffered
    }
}

/// What one instance uses, charged to its module's meter.
#[derive(Debug)]
pub struct InstanceMeter {
    /// The module's meter.
    pub module: Arc<ModuleMeter>,
    /// Its CPU budget (shared with the streams that renew it).
    pub cpu: Arc<CpuBudget>,
    /// Log events emitted so far (`log` calls and stdout/stderr lines).
    pub log_events: Arc<AtomicU32>,
    /// The first limit it hit.
    pub first_limit: Arc<FirstLimit>,
    /// Where its waits are counted.
    pub waits: Arc<WaitChannels>,
    _reserved: HostCharge,
}

impl InstanceMeter {
    /// Charges a new instance's reservation to `module`; `None` (and a hit of
    /// `host_memory_mb`) when the module has no room left for another instance.
    pub fn new(module: &Arc<ModuleMeter>, cpu: CpuBudget) -> Option<Self> {
        let first_limit = Arc::new(FirstLimit::default());
        let bytes = ModuleMeter::instance_reservation(&module.budgets);
        let reserved = HostCharge::take(module, bytes, &first_limit)?;
        Some(InstanceMeter {
            module: module.clone(),
            cpu: Arc::new(cpu),
            log_events: Arc::default(),
            first_limit,
            waits: module.waits.clone(),
            _reserved: reserved,
        })
    }

    /// Records that the instance hit `limit` (counted once per instance).
    pub fn hit(&self, limit: Limit) {
        self.module.record(&self.first_limit, limit);
    }

    /// Charges `bytes` of host memory; `None` (a hit) past the module's budget.
    pub fn charge(&self, bytes: usize) -> Option<HostCharge> {
        HostCharge::take(&self.module, bytes, &self.first_limit)
    }

    /// Takes one descriptor; `None` (a hit) past the module's or the process's budget.
    pub fn descriptor(&self) -> Option<DescriptorPermit> {
        let permit = self.module.descriptors.try_take();
        if permit.is_none() {
            self.hit(Limit::Descriptors);
        }
        permit
    }

    /// Its linear-memory limiter, for the store.
    pub fn limiter(&self) -> InstanceLimiter {
        InstanceLimiter::new(self.module.clone(), self.first_limit.clone())
    }

    /// Counts one log event against `max_log_events`.
    pub fn log_event(&self) -> LogEvent {
        log_event(&self.module, &self.log_events)
    }

    /// What its end will be blamed on; kept apart from the instance, since a failed
    /// instantiation drops the store that holds the meter.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            first_limit: self.first_limit.clone(),
            cpu: self.cpu.clone(),
            module: self.module.clone(),
        }
    }
}

/// Reads which limit, if any, an instance lost to.
#[derive(Debug, Clone)]
pub struct Verdict {
    first_limit: Arc<FirstLimit>,
    cpu: Arc<CpuBudget>,
    module: Arc<ModuleMeter>,
}

impl Verdict {
    /// The limit the instance lost to, if it did: the one a limiter or host call recorded
    /// first; else its CPU budget, if it was interrupted with the budget spent; else
    /// `max_handles`, if its resource table was full. `None` for a plain trap. The limit
    /// is counted in the module's hits (once per instance).
    pub fn of(&self, error: &anyhow::Error) -> Option<Limit> {
        let limit = self.first_limit.get().or_else(|| {
            let interrupted = error
                .chain()
                .any(|e| e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt));
            let table_full = error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                    Some(wasmtime::component::ResourceTableError::Full)
                )
            });
            if interrupted && self.cpu.spent() {
                Some(Limit::Cpu)
            } else if table_full {
                Some(Limit::Handles)
            } else {
                None
            }
        });
        if let Some(limit) = limit {
            self.module.record(&self.first_limit, limit);
        }
        limit
    }
}

/// Whether a log event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEvent {
    /// Within the budget: write it.
    Write,
    /// The first past the budget: drop it, and say once that the rest are dropped.
    DropFirst,
    /// Past the budget: drop it.
    Drop,
}

/// Counts one log event of an instance against its module's `max_log_events`; events
/// past it are dropped and counted, and the instance is counted once as a hit. Shared by
/// `log` calls and the instance's stdout and stderr lines. The session goes on: its work
/// is not wrong for being chatty.
pub fn log_event(module: &ModuleMeter, events: &AtomicU32) -> LogEvent {
    // Not a `FirstLimit` hit: the session is not ended for it.
    let n = events.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    let budget = module.budgets.log_events;
    if n <= budget {
        return LogEvent::Write;
    }
    module.log_dropped.fetch_add(1, Ordering::Relaxed);
    if n == budget.saturating_add(1) {
        module.count(Limit::Log);
        LogEvent::DropFirst
    } else {
        LogEvent::Drop
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// A meter with `instance_mb` of linear memory per instance, `module_mb` for all, and
    /// `host_mb` of host memory.
    pub(crate) fn meter(
        instance_mb: usize,
        module_mb: Option<usize>,
        host_mb: usize,
    ) -> Arc<ModuleMeter> {
        let budgets = Budgets {
            instance_memory: instance_mb << 20,
            module_memory: module_mb.map(|m| m << 20),
            wall: None,
            cpu: Duration::from_secs(1),
            handles: 16,
            buffered: 1024,
            log_events: 2,
            host_memory: host_mb << 20,
            descriptors: 8,
            store: 1 << 20,
            store_key: 64,
            store_value: 4096,
        };
        ModuleMeter::new(budgets, ProcessDescriptors::new(1 << 16))
    }

    #[test]
    fn instances_reserve_host_memory_until_the_module_has_none() {
        let module = meter(8, None, 1);
        let each = ModuleMeter::instance_reservation(&module.budgets);
        let fit = (1 << 20) / each;
        let live: Vec<_> = (0..fit)
            .map(|_| InstanceMeter::new(&module, CpuBudget::unbounded()).unwrap())
            .collect();
        assert!(InstanceMeter::new(&module, CpuBudget::unbounded()).is_none());
        assert_eq!(module.hits()[7], (Limit::HostMemory, 1));
        drop(live);
        assert_eq!(module.host_memory.used(), 0);
    }

    #[test]
    fn the_log_budget_drops_and_counts_the_rest() {
        let module = meter(8, None, 1);
        let instance = InstanceMeter::new(&module, CpuBudget::unbounded()).unwrap();
        assert_eq!(instance.log_event(), LogEvent::Write);
        assert_eq!(instance.log_event(), LogEvent::Write);
        assert_eq!(instance.log_event(), LogEvent::DropFirst);
        assert_eq!(instance.log_event(), LogEvent::Drop);
        assert_eq!(module.log_dropped.load(Ordering::Relaxed), 2);
        assert_eq!(instance.first_limit.get(), None, "the session goes on");
        assert_eq!(
            module.hits()[6],
            (Limit::Log, 1),
            "counted once per instance"
        );
    }

    #[test]
    fn the_verdict_names_the_limit_lost_to() {
        let module = meter(8, None, 1);
        let budget = CpuBudget::new(crate::engine::EPOCH_TICK, Refill::PerWait);
        let instance = InstanceMeter::new(&module, budget).unwrap();
        let trap = anyhow::Error::from(wasmtime::Trap::Interrupt);
        let verdict = instance.verdict();
        assert_eq!(verdict.of(&trap), None, "interrupted within budget");
        instance.cpu.tick();
        instance.cpu.tick();
        assert_eq!(verdict.of(&trap), Some(Limit::Cpu));
        assert_eq!(module.hits()[3], (Limit::Cpu, 1));
        let budget = CpuBudget::new(crate::engine::EPOCH_TICK, Refill::PerWait);
        let other = InstanceMeter::new(&module, budget).unwrap();
        other.hit(Limit::Buffered);
        other.cpu.tick();
        other.cpu.tick();
        assert_eq!(
            other.verdict().of(&trap),
            Some(Limit::Buffered),
            "the first wins"
        );
    }
}
