//! The module's keyed store: byte values under string keys in host memory, one store per
//! module (in its holdings, so shared by all its instances and kept across hot swaps and
//! reloads), optionally written through to an embedded SQLite database
//! ([`persist`]) so it survives a restart. Every byte it holds, the allocations of keys
//! and values and a fixed bookkeeping cost per entry, is charged to the module's meter against `store_mb`, and a
//! write past it is refused with [`StoreError::Full`]: a module can fill its own store,
//! never the server's memory. Keys and values are bounded by `store_max_key_bytes` and
//! `store_max_value_kb` before anything is charged.
//!
//! One mutex over the entries, never held across an await or a file write: every call
//! is a few map operations, so two sessions' writes are ordered and compare-and-swap is
//! atomic. A persisted store's writes also take its file's lock (an async one) and run on
//! a blocking thread, so SQLite's waits never stall a worker. Expired keys read as absent;
//! each write sweeps up to [`SWEEP_PER_CALL`] of them, and all of them before it is
//! refused.

pub mod host;
pub mod persist;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

use crate::contract::bindings::store::StoreError;
use crate::meter::ModuleMeter;
use persist::Persisted;

/// Most keys one `list` call returns: what it defends is the host memory and the guest
/// memory of one answer (1000 keys of at most `store_max_key_bytes`), so a store of a
/// million keys is paged through, never copied in one call.
pub const MAX_LIST: u32 = 1000;

/// Host memory an entry costs besides the allocations of its key and value: its slot in
/// the map's nodes (a `String` and an `Entry`, 64 bytes) in nodes half full, the worst
/// case (keys inserted in order split every node in its middle and leave it so). So a
/// million small keys cost what they really hold: measured, 189 bytes a key for keys of
/// 13 bytes and values of 4, charged 192 (`tests/e2e/store.rs`).
pub const ENTRY_BYTES: usize = 128;

/// Host memory the expiry index costs per expiring entry besides its copy of the key (a
/// 32-byte slot in nodes half full).
const EXPIRY_BYTES: usize = 72;

/// Host memory one heap allocation of `bytes` takes: rounded up to the allocator's
/// 16-byte granule, plus its header; none for an empty one.
fn allocation(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes.next_multiple_of(16) + 16
    }
}

/// Expired entries a write sweeps away at most: bounds the work one call does.
pub const SWEEP_PER_CALL: usize = 64;

/// Where a module's store is kept: what `store_persist` grants.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StoreGrant {
    /// The SQLite file, when the section asks for persistence.
    pub persist: Option<PathBuf>,
}

/// A module's keyed store.
pub struct ModuleStore {
    shared: Arc<Shared>,
    /// The SQLite copy, when persisted. Its lock orders the writes: a write holds it from
    /// its decision (sweep, charge, compare-and-swap's check) until memory has changed,
    /// awaiting it rather than blocking a worker. Reads never take it.
    disk: Option<Arc<tokio::sync::Mutex<Persisted>>>,
}

/// What a write running on a blocking thread reaches: the entries and the meter.
struct Shared {
    meter: Arc<ModuleMeter>,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: BTreeMap<String, Entry>,
    /// Expiring keys by deadline, for the sweep.
    expiring: BTreeSet<(u64, String)>,
    /// Bytes charged to the meter.
    charged: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: Vec<u8>,
    /// Milliseconds since the Unix epoch (wall time, so a persisted deadline means the
    /// same after a restart).
    expires: Option<u64>,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// What an entry costs against `store_mb`.
fn cost(key: &str, value: &[u8], expires: Option<u64>) -> usize {
    let expiry = if expires.is_some() {
        allocation(key.len()) + EXPIRY_BYTES
    } else {
        0
    };
    allocation(key.len()) + allocation(value.len()) + ENTRY_BYTES + expiry
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Figures for the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreStats {
    /// Keys held (expired ones not yet swept included).
    pub keys: usize,
    /// Bytes charged against `store_mb`.
    pub bytes: usize,
    /// `store_mb`, in bytes.
    pub budget: usize,
    /// Whether it is persisted.
    pub persisted: bool,
}

/// One change a write asks for, owned so it can run on a blocking thread.
#[derive(Debug, Clone)]
enum Change {
    /// Set `key` to `value`, expiring at `expires`.
    Put {
        key: String,
        value: Vec<u8>,
        expires: Option<u64>,
    },
    /// Delete `key`.
    Delete { key: String },
    /// When `key` holds `expected` (`None`: absent), make the change.
    Swap {
        expected: Option<Vec<u8>>,
        then: Box<Change>,
    },
}

impl Change {
    fn key(&self) -> &str {
        match self {
            Change::Put { key, .. } | Change::Delete { key } => key,
            Change::Swap { then, .. } => then.key(),
        }
    }
}

/// What a write did.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The change was made; for a delete, whether the key held a live value.
    Done { was_live: bool },
    /// Compare-and-swap found another value.
    Unchanged,
}

impl ModuleStore {
    /// An empty store in memory, charged to `meter`.
    pub fn in_memory(meter: Arc<ModuleMeter>) -> Self {
        ModuleStore {
            shared: Arc::new(Shared {
                meter,
                entries: Mutex::default(),
            }),
            disk: None,
        }
    }

    /// The store `grant` names: in memory, or opened from its SQLite file (created if
    /// missing) with every live entry loaded and charged. Fails if what is kept no longer
    /// fits `store_mb`.
    pub fn open(module: &str, grant: &StoreGrant, meter: Arc<ModuleMeter>) -> Result<Self> {
        let mut store = ModuleStore::in_memory(meter);
        let Some(path) = &grant.persist else {
            return Ok(store);
        };
        let db = Persisted::open(path)?;
        {
            let meter = &store.shared.meter;
            let mut entries = store.shared.lock();
            for (key, value, expires) in db.load(now_ms())? {
                let bytes = cost(&key, &value, expires);
                if !meter.store.charge_within(bytes, meter.budgets.store) {
                    bail!(
                        "module `{module}`: its persisted store `{}` holds more than {} allows; raise it or delete keys",
                        path.display(),
                        meter.setting(crate::meter::Limit::Store)
                    );
                }
                entries.charged += bytes;
                entries.insert(key, Entry { value, expires });
            }
        }
        store.disk = Some(Arc::new(tokio::sync::Mutex::new(db)));
        Ok(store)
    }

    /// Figures for the report.
    pub fn stats(&self) -> StoreStats {
        let entries = self.shared.lock();
        StoreStats {
            keys: entries.map.len(),
            bytes: entries.charged,
            budget: self.shared.meter.budgets.store,
            persisted: self.disk.is_some(),
        }
    }

    /// The value of `key` at time `now`. An expired key reads as absent; writes sweep it.
    pub fn get(&self, key: &str, now: u64) -> Option<Vec<u8>> {
        let entries = self.shared.lock();
        entries
            .map
            .get(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.value.clone())
    }

    /// Sets `key` to `value`, expiring `ttl_ms` after `now` if given.
    pub async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.check(key, Some(value))?;
        let change = Change::Put {
            key: key.into(),
            value: value.into(),
            expires: deadline(now, ttl_ms),
        };
        self.write(change, now).await.map(drop)
    }

    /// Deletes `key`; whether it held a live value.
    pub async fn delete(&self, key: &str, now: u64) -> bool {
        let change = Change::Delete { key: key.into() };
        // A delete's failure on disk is logged by the write; memory forgets the key.
        matches!(
            self.write(change, now).await,
            Ok(Outcome::Done { was_live: true })
        )
    }

    /// Sets `key` to `new` (deletes it for `None`) if it holds `expected` now.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.check(key, new)?;
        let then = match new {
            Some(value) => Change::Put {
                key: key.into(),
                value: value.into(),
                expires: deadline(now, ttl_ms),
            },
            None => Change::Delete { key: key.into() },
        };
        let change = Change::Swap {
            expected: expected.map(<[u8]>::to_vec),
            then: Box::new(then),
        };
        Ok(self.write(change, now).await? != Outcome::Unchanged)
    }

    /// Makes `change`: in memory at once, or, when persisted, on a blocking thread (the
    /// file first, then memory) under the disk's lock, so a write that waits for SQLite
    /// (a checkpoint's sync, a lock an operator's `sqlite3` holds) waits off the worker and
    /// every other session of the module goes on. Once started on that thread the write
    /// completes even if the session goes, so memory, file and meter stay in step.
    async fn write(&self, change: Change, now: u64) -> Result<Outcome, StoreError> {
        let Some(disk) = &self.disk else {
            let mut entries = self.shared.lock();
            let plan = entries
                .plan(&change, now, &self.shared.meter)
                .map_err(|refused| refused.error)?;
            return Ok(entries.commit(change, plan, now, &self.shared.meter));
        };
        let db = disk.clone().lock_owned().await;
        let shared = self.shared.clone();
        let share = shared.meter.log_queue.clone();
        tokio::task::spawn_blocking(move || {
            crate::logging::owner::as_owner(&share, || shared.write_through(&db, change, now))
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("the store's write failed: {e}"))))
    }

    /// Live keys starting with `prefix`, after `after`, at most `limit` (and
    /// [`MAX_LIST`]).
    pub fn list(&self, prefix: &str, after: Option<&str>, limit: u32, now: u64) -> Vec<String> {
        let entries = self.shared.lock();
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        entries
            .map
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .take(limit.min(MAX_LIST) as usize)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Refuses a key or value past the section's bounds, before anything is charged.
    fn check(&self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        let budgets = &self.shared.meter.budgets;
        if key.is_empty() {
            return Err(StoreError::InvalidKey("the key is empty".into()));
        }
        if key.len() > budgets.store_key {
            return Err(StoreError::InvalidKey(format!(
                "the key is {} bytes, longer than store_max_key_bytes = {}",
                key.len(),
                budgets.store_key
            )));
        }
        if let Some(value) = value
            && value.len() > budgets.store_value
        {
            return Err(StoreError::ValueTooLarge(format!(
                "the value is {} bytes, longer than store_max_value_kb = {}",
                value.len(),
                budgets.store_value >> 10
            )));
        }
        Ok(())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Each mutation's bookkeeping completes before anything that could panic.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A persisted write, on a blocking thread holding the disk's lock: decide and
    /// charge in memory, write the file, then change memory. The entries' lock is taken
    /// only for the two memory steps, never across the file's write, so reads go on.
    fn write_through(
        &self,
        db: &Persisted,
        change: Change,
        now: u64,
    ) -> Result<Outcome, StoreError> {
        let plan = match self.lock().plan(&change, now, &self.meter) {
            Ok(plan) => plan,
            Err(Refused { swept, error }) => {
                // What its sweep removed from memory goes from the file too: left there,
                // refused writes could grow the file past `store_mb` without end.
                let swept: Vec<&str> = swept.iter().map(String::as_str).collect();
                if !swept.is_empty()
                    && let Err(e) = db.apply(&swept, None)
                {
                    tracing::warn!("store: failed to delete expired keys from the file: {e:#}");
                }
                return Err(error);
            }
        };
        let mut deletes: Vec<&str> = plan.swept().iter().map(String::as_str).collect();
        let mut put = None;
        match (&plan, &change) {
            (Plan::Skip { .. }, _) => {}
            (_, Change::Swap { then, .. }) => match then.as_ref() {
                Change::Put {
                    key,
                    value,
                    expires,
                } => put = Some((key.as_str(), &value[..], *expires)),
                other => deletes.push(other.key()),
            },
            (
                _,
                Change::Put {
                    key,
                    value,
                    expires,
                },
            ) => put = Some((key.as_str(), &value[..], *expires)),
            (_, Change::Delete { key }) => deletes.push(key),
        }
        if (put.is_some() || !deletes.is_empty())
            && let Err(e) = db.apply(&deletes, put)
        {
            if put.is_some() {
                // The file is written before memory changes, so a failed put leaves both
                // as they were (keys its sweep removed had expired: the next start drops
                // them from the file).
                self.meter.release_store(plan.growth());
                return Err(StoreError::Io(format!("{e:#}")));
            }
            // A delete has no error to carry: memory forgets the key, the file keeps it
            // until it is written again, and a restart brings it back.
            tracing::warn!("store: failed to delete persisted keys: {e:#}");
        }
        Ok(self.lock().commit(change, plan, now, &self.meter))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let charged = self.lock().charged;
        self.meter.release_store(charged);
    }
}

fn deadline(now: u64, ttl_ms: Option<u64>) -> Option<u64> {
    ttl_ms.map(|ttl| now.saturating_add(ttl))
}

/// A write refused while deciding, with the expired keys its sweep removed from memory
/// all the same.
struct Refused {
    swept: Vec<String>,
    error: StoreError,
}

/// What a write decided before anything is written: the keys its sweep removed from
/// memory (to delete from the file too) and what it charged.
#[derive(Debug)]
enum Plan {
    /// Compare-and-swap found another value: nothing to change but what was swept.
    Skip { swept: Vec<String> },
    /// Make the change; `growth` is charged already, `shrink` given back at the commit.
    Make {
        swept: Vec<String>,
        growth: usize,
        shrink: usize,
    },
}

impl Plan {
    fn swept(&self) -> &[String] {
        match self {
            Plan::Skip { swept } | Plan::Make { swept, .. } => swept,
        }
    }

    fn growth(&self) -> usize {
        match self {
            Plan::Skip { .. } => 0,
            Plan::Make { growth, .. } => *growth,
        }
    }
}

impl Entries {
    fn insert(&mut self, key: String, entry: Entry) {
        if let Some(old) = self.map.get(&key)
            && let Some(at) = old.expires
        {
            self.expiring.remove(&(at, key.clone()));
        }
        if let Some(at) = entry.expires {
            self.expiring.insert((at, key.clone()));
        }
        self.map.insert(key, entry);
    }

    /// What `key` costs now (0 if absent).
    fn cost_of(&self, key: &str) -> usize {
        self.map
            .get(key)
            .map_or(0, |e| cost(key, &e.value, e.expires))
    }

    /// Decides `change`: sweeps up to [`SWEEP_PER_CALL`] expired keys, checks
    /// compare-and-swap's expectation and charges a put's growth (sweeping every expired
    /// key before refusing it).
    fn plan(&mut self, change: &Change, now: u64, meter: &ModuleMeter) -> Result<Plan, Refused> {
        let mut swept = self.sweep(now, SWEEP_PER_CALL, meter);
        let change = match change {
            Change::Swap { expected, then } => {
                let current = self.map.get(then.key()).filter(|e| e.live(now));
                if current.map(|e| &e.value) != expected.as_ref() {
                    return Ok(Plan::Skip { swept });
                }
                then
            }
            change => change,
        };
        let Change::Put {
            key,
            value,
            expires,
        } = change
        else {
            return Ok(Plan::Make {
                swept,
                growth: 0,
                shrink: 0,
            });
        };
        let new = cost(key, value, *expires);
        let mut old = self.cost_of(key);
        let mut growth = new.saturating_sub(old);
        if growth > 0 && !meter.store.charge_within(growth, meter.budgets.store) {
            // Room held by expired keys is the module's before it is refused.
            swept.extend(self.sweep(now, usize::MAX, meter));
            old = self.cost_of(key);
            growth = new.saturating_sub(old);
            if !meter.charge_store(growth) {
                let error = StoreError::Full(format!(
                    "the store holds {} KiB of {}; this entry needs {} bytes more",
                    self.charged >> 10,
                    meter.setting(crate::meter::Limit::Store),
                    growth
                ));
                return Err(Refused { swept, error });
            }
        }
        Ok(Plan::Make {
            swept,
            growth,
            shrink: old.saturating_sub(new),
        })
    }

    /// Makes in memory what [`Entries::plan`] decided.
    fn commit(&mut self, change: Change, plan: Plan, now: u64, meter: &ModuleMeter) -> Outcome {
        let Plan::Make { growth, shrink, .. } = plan else {
            return Outcome::Unchanged;
        };
        let change = match change {
            Change::Swap { then, .. } => *then,
            change => change,
        };
        match change {
            Change::Put {
                key,
                value,
                expires,
            } => {
                self.charged += growth;
                self.charged -= shrink;
                meter.release_store(shrink);
                self.insert(key, Entry { value, expires });
                Outcome::Done { was_live: true }
            }
            Change::Delete { key } => Outcome::Done {
                was_live: self.remove(&key, meter).is_some_and(|e| e.live(now)),
            },
            Change::Swap { .. } => unreachable!("a swap's change is a put or a delete"),
        }
    }

    /// Removes `key` from memory and gives back its cost; its entry if it was there.
    fn remove(&mut self, key: &str, meter: &ModuleMeter) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        if let Some(at) = entry.expires {
            self.expiring.remove(&(at, key.to_string()));
        }
        let bytes = cost(key, &entry.value, entry.expires);
        self.charged -= bytes;
        meter.release_store(bytes);
        Some(entry)
    }

    /// Removes up to `most` entries expired at `now`; their keys.
    fn sweep(&mut self, now: u64, most: usize, meter: &ModuleMeter) -> Vec<String> {
        let mut swept = Vec::new();
        while swept.len() < most {
            let Some((at, key)) = self.expiring.first().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            self.remove(&key, meter);
            swept.push(key);
        }
        swept
    }
}

#[cfg(test)]
mod tests;
