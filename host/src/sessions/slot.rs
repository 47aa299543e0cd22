//! A module as the server runs it: the version new sessions start on (swapped atomically
//! by a hot swap), its session options, counters and session records, and the versions
//! still draining.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::live::LiveSessions;
use super::stats::SessionStats;
use super::threads::ThreadCounts;
use crate::heaps::{Heap, HeapOptions, HeapRegistry, HeapSpec};
use crate::logging::owner::LogShare;
use crate::modules::ModuleVersion;
use crate::options::session::SessionOptions;

/// A module as the server runs it: the current version behind an atomic pointer, its
/// session options and counters.
pub struct ModuleSlot {
    /// Module and section name.
    pub name: String,
    /// The version new sessions start on.
    pub current: ArcSwap<ModuleVersion>,
    /// Its host session options.
    pub options: SessionOptions,
    /// Its session counters.
    pub stats: SessionStats,
    /// Live figures of its worker pool.
    pub threads: Arc<ThreadCounts>,
    /// One unit per live session (the report's `<module>_sessions` heap).
    pub records: Arc<Heap<SessionRecord>>,
    /// The live sessions, for reclaiming idle keep-alive ones at `max_sessions`.
    pub live: Arc<LiveSessions>,
    /// Held while its `report` hook runs: one at a time.
    pub report_hook: Arc<tokio::sync::Semaphore>,
    /// The hook's last lines and when they came, given again for a while
    /// (`sessions::server::REPORT_LINES_REUSED`).
    pub report_lines: std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
    /// When the last hot swap was tried and how it ended, for the report.
    pub last_swap: std::sync::Mutex<Option<SwapRecord>>,
    /// Versions replaced by a swap, while sessions still run on them.
    retired: std::sync::Mutex<Vec<std::sync::Weak<ModuleVersion>>>,
}

/// The time and outcome of a hot swap attempt.
#[derive(Debug, Clone)]
pub struct SwapRecord {
    /// When it ended.
    pub at: std::time::SystemTime,
    /// `generation N` on success, else why the old version stayed.
    pub outcome: String,
}

impl ModuleSlot {
    /// Its share of the log's queues, which its sessions, operator and hooks are charged
    /// (the same for every version: the meter is carried across swaps).
    pub fn log_share(&self) -> Arc<LogShare> {
        self.current.load().context.holdings.meter.log_queue.clone()
    }

    /// Records a swap attempt for the report.
    pub fn record_swap(&self, outcome: String) {
        let record = SwapRecord {
            at: std::time::SystemTime::now(),
            outcome,
        };
        *self.last_swap.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
    }

    /// Publishes `version` for new sessions; the one it replaces stays listed (for the
    /// report) until its last session ends and frees it. Sessions on the replaced version get `drain` to finish, if given.
    pub fn publish(&self, version: ModuleVersion, drain: Option<std::time::Duration>) {
        let old = self.current.swap(Arc::new(version));
        if let Some(drain) = drain {
            old.drain_deadline
                .send_replace(Some(tokio::time::Instant::now() + drain));
        }
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.retain(|v| v.strong_count() > 0);
        retired.push(Arc::downgrade(&old));
    }

    /// Replaced versions still in use: (generation, holders), oldest first. The holders of
    /// a version's `Arc` are its live sessions, and its operator while that still runs (an
    /// operator is not restarted by a swap).
    pub fn draining(&self) -> Vec<(u64, usize)> {
        let retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired
            .iter()
            .filter_map(|v| v.upgrade())
            // Minus the reference just taken by `upgrade`.
            .map(|v| (v.generation, Arc::strong_count(&v) - 1))
            .filter(|(_, sessions)| *sessions > 0)
            .collect()
    }

    /// The last swap attempt, if any.
    pub fn last_swap(&self) -> Option<SwapRecord> {
        self.last_swap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What the host keeps about a live session.
#[derive(Debug)]
pub struct SessionRecord {
    /// The client.
    pub peer: std::net::SocketAddr,
    /// When it was accepted.
    pub started: std::time::Instant,
    /// The module generation serving it.
    pub generation: u64,
}

impl ModuleSlot {
    /// A slot serving `version`, with its session heap registered in `heaps`: at most
    /// `max_sessions` records, `min_sessions` of them reserved now.
    pub fn new(
        name: &str,
        version: ModuleVersion,
        options: SessionOptions,
        heaps: &HeapRegistry,
    ) -> Self {
        let records = Heap::new(HeapSpec {
            label: format!("{name}_sessions"),
            units_per_chunk: options.min_sessions.max(MIN_RECORDS_PER_CHUNK),
            max_units: options.max_sessions,
            options: HeapOptions {
                grow_exponentially: true,
                shrink: true,
                unlimited: false,
            },
        });
        heaps.register(&records);
        let reserved: Vec<_> = (0..options.min_sessions)
            .filter_map(|_| records.alloc(SessionRecord::placeholder()).ok())
            .collect();
        drop(reserved);
        ModuleSlot {
            name: name.to_string(),
            current: ArcSwap::from_pointee(version),
            options,
            stats: SessionStats::default(),
            threads: Arc::default(),
            records,
            live: Arc::default(),
            report_hook: Arc::new(tokio::sync::Semaphore::new(1)),
            report_lines: std::sync::Mutex::new(None),
            last_swap: std::sync::Mutex::new(None),
            retired: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// Session records per chunk at least, so a small `min_sessions` does not grow the heap one
/// record at a time.
const MIN_RECORDS_PER_CHUNK: usize = 16;

impl SessionRecord {
    fn placeholder() -> Self {
        SessionRecord {
            peer: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            started: std::time::Instant::now(),
            generation: 0,
        }
    }
}
