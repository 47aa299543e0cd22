//! The limits a module's instances can hit, each set by a host session option of its
//! section, and the budgets those options give, in bytes and counts.

use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::Duration;

/// A limit a session (or a module's other instances) can lose to.
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
    /// `host_memory_mb`: host memory the module's instances caused (heaps, buffers...).
    HostMemory,
    /// `max_descriptors`: descriptors the module's instances hold.
    Descriptors,
    /// `store_mb`: the module's keyed store is full (the write is refused, the session
    /// goes on).
    Store,
}

impl Limit {
    /// Every limit, in report order.
    pub const ALL: [Limit; 10] = [
        Limit::InstanceMemory,
        Limit::ModuleMemory,
        Limit::Wall,
        Limit::Cpu,
        Limit::Handles,
        Limit::Buffered,
        Limit::Log,
        Limit::HostMemory,
        Limit::Descriptors,
        Limit::Store,
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
            Limit::HostMemory => "host_memory_mb",
            Limit::Descriptors => "max_descriptors",
            Limit::Store => "store_mb",
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
            Limit::HostMemory => "host memory",
            Limit::Descriptors => "descriptors",
            Limit::Store => "store",
        }
    }

    fn from_u8(v: u8) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| *l as u8 == v)
    }
}

/// What one module may use, in bytes and counts (c11n gives MiB, KiB and milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budgets {
    /// Linear memory of one instance.
    pub instance_memory: usize,
    /// Linear memory of all the module's live instances together; `None` for no bound.
    pub module_memory: Option<usize>,
    /// How long one session may last; `None` for no bound.
    pub wall: Option<Duration>,
    /// wasm execution an instance may use between two waits for its client.
    pub cpu: Duration,
    /// Host resources one instance may hold (its resource table's capacity).
    pub handles: usize,
    /// Bytes the host holds for one instance's output until the socket takes them (the
    /// write permit), and the longest send-file head.
    pub buffered: usize,
    /// Log events one instance may emit (`log` calls and stdout/stderr lines together).
    pub log_events: u32,
    /// Host memory all the module's instances may cause together.
    pub host_memory: usize,
    /// Descriptors all the module's instances may hold together.
    pub descriptors: usize,
    /// Bytes the module's keyed store may hold: keys, values and each entry's bookkeeping.
    pub store: usize,
    /// Longest key of the keyed store.
    pub store_key: usize,
    /// Longest value of the keyed store.
    pub store_value: usize,
}

impl Budgets {
    /// `option = value`, in the option's own unit, for log lines.
    pub fn setting(&self, limit: Limit) -> String {
        let value = match limit {
            Limit::InstanceMemory => (self.instance_memory >> 20) as u64,
            Limit::ModuleMemory => (self.module_memory.unwrap_or(0) >> 20) as u64,
            Limit::Wall => self.wall.map_or(0, |w| w.as_secs()),
            Limit::Cpu => self.cpu.as_millis() as u64,
            Limit::Handles => self.handles as u64,
            Limit::Buffered => (self.buffered >> 10) as u64,
            Limit::Log => u64::from(self.log_events),
            Limit::HostMemory => (self.host_memory >> 20) as u64,
            Limit::Descriptors => self.descriptors as u64,
            Limit::Store => (self.store >> 20) as u64,
        };
        format!("{} = {value}", limit.option())
    }
}

/// The limits one instance hit: the first (what its end is blamed on) and every one seen
/// (so that each is counted once per instance in the module's hits).
#[derive(Debug, Default)]
pub struct FirstLimit {
    first: AtomicU8,
    seen: AtomicU16,
}

impl FirstLimit {
    /// Records `limit`; true the first time this instance hits it (count it then).
    pub fn record(&self, limit: Limit) -> bool {
        let _ = self
            .first
            .compare_exchange(0, limit as u8, Ordering::Relaxed, Ordering::Relaxed);
        let bit = 1u16 << (limit as u8);
        self.seen.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// The first limit recorded, if any.
    pub fn get(&self) -> Option<Limit> {
        Limit::from_u8(self.first.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_shown_in_their_units() {
        let budgets = Budgets {
            instance_memory: 8 << 20,
            module_memory: Some(20 << 20),
            wall: None,
            cpu: Duration::from_millis(1500),
            handles: 64,
            buffered: 64 << 10,
            log_events: 5,
            host_memory: 96 << 20,
            descriptors: 300,
            store: 16 << 20,
            store_key: 1024,
            store_value: 1 << 20,
        };
        assert_eq!(
            budgets.setting(Limit::InstanceMemory),
            "instance_memory_mb = 8"
        );
        assert_eq!(
            budgets.setting(Limit::ModuleMemory),
            "module_memory_mb = 20"
        );
        assert_eq!(budgets.setting(Limit::Buffered), "max_buffered_kb = 64");
        assert_eq!(budgets.setting(Limit::Cpu), "session_cpu_ms = 1500");
        assert_eq!(budgets.setting(Limit::HostMemory), "host_memory_mb = 96");
        assert_eq!(budgets.setting(Limit::Descriptors), "max_descriptors = 300");
        assert_eq!(budgets.setting(Limit::Store), "store_mb = 16");
    }

    #[test]
    fn the_first_limit_stays() {
        let flag = FirstLimit::default();
        assert_eq!(flag.get(), None);
        assert!(flag.record(Limit::Handles));
        assert!(flag.record(Limit::Wall));
        assert!(!flag.record(Limit::Handles), "seen before");
        assert_eq!(flag.get(), Some(Limit::Handles));
    }
}
