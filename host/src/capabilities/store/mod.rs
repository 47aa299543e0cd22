//! The module's keyed store: byte values under string keys in host memory, one store per
//! module (in its holdings, so shared by all its instances and kept across hot swaps and
//! reloads), optionally written through to an embedded SQLite database
//! ([`persist`]) so it survives a restart. Every byte it holds, the allocations of keys
//! and values and a fixed bookkeeping cost per entry, is charged to the module's meter against `store_mb`, and a
//! write past it is refused with [`StoreError::Full`]: a module can fill its own store,
//! never the server's memory. Keys and values are bounded by `store_max_key_bytes` and
//! `store_max_value_kb` before anything is charged.
//!
//! One mutex per store, never held across an await: every call is a few map operations
//! (and, when persisted, one SQLite statement), so two sessions' writes are ordered and
//! compare-and-swap is atomic. Expired keys are dropped when they are read, and up to
//! [`SWEEP_PER_CALL`] of them by each write; all of them before a write is refused.

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
    meter: Arc<ModuleMeter>,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: BTreeMap<String, Entry>,
    /// Expiring keys by deadline, for the sweep.
    expiring: BTreeSet<(u64, String)>,
    /// Bytes charged to the meter.
    charged: usize,
    db: Option<Persisted>,
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

impl ModuleStore {
    /// An empty store in memory, charged to `meter`.
    pub fn in_memory(meter: Arc<ModuleMeter>) -> Self {
        ModuleStore {
            meter,
            inner: Mutex::default(),
        }
    }

    /// The store `grant` names: in memory, or opened from its SQLite file (created if
    /// missing) with every live entry loaded and charged. Fails if what is kept no longer
    /// fits `store_mb`.
    pub fn open(module: &str, grant: &StoreGrant, meter: Arc<ModuleMeter>) -> Result<Self> {
        let store = ModuleStore::in_memory(meter);
        let Some(path) = &grant.persist else {
            return Ok(store);
        };
        let db = Persisted::open(path)?;
        let now = now_ms();
        {
            let mut entries = store.lock();
            for (key, value, expires) in db.load(now)? {
                let bytes = cost(&key, &value, expires);
                if !store
                    .meter
                    .store
                    .charge_within(bytes, store.meter.budgets.store)
                {
                    bail!(
                        "module `{module}`: its persisted store `{}` holds more than {} allows; raise it or delete keys",
                        path.display(),
                        store.meter.setting(crate::meter::Limit::Store)
                    );
                }
                entries.charged += bytes;
                entries.insert(key, Entry { value, expires });
            }
            entries.db = Some(db);
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Each mutation's bookkeeping completes before anything that could panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Figures for the report.
    pub fn stats(&self) -> StoreStats {
        let entries = self.lock();
        StoreStats {
            keys: entries.map.len(),
            bytes: entries.charged,
            budget: self.meter.budgets.store,
            persisted: entries.db.is_some(),
        }
    }

    /// The value of `key` at time `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<Vec<u8>> {
        let mut entries = self.lock();
        match entries.map.get(key) {
            Some(entry) if entry.live(now) => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key, &self.meter);
                None
            }
            None => None,
        }
    }

    /// Sets `key` to `value`, expiring `ttl_ms` after `now` if given.
    pub fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.check(key, Some(value))?;
        let mut entries = self.lock();
        entries.sweep(now, SWEEP_PER_CALL, &self.meter);
        entries.put(key, value, deadline(now, ttl_ms), now, &self.meter)
    }

    /// Deletes `key`; whether it held a live value.
    pub fn delete(&self, key: &str, now: u64) -> bool {
        let mut entries = self.lock();
        let live = entries.map.get(key).is_some_and(|e| e.live(now));
        entries.remove(key, &self.meter);
        live
    }

    /// Sets `key` to `new` (deletes it for `None`) if it holds `expected` now.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.check(key, new)?;
        let mut entries = self.lock();
        entries.sweep(now, SWEEP_PER_CALL, &self.meter);
        let current = entries
            .map
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| e.value.as_slice());
        if current != expected {
            return Ok(false);
        }
        match new {
            Some(value) => entries.put(key, value, deadline(now, ttl_ms), now, &self.meter)?,
            None => {
                entries.remove(key, &self.meter);
            }
        }
        Ok(true)
    }

    /// Live keys starting with `prefix`, after `after`, at most `limit` (and
    /// [`MAX_LIST`]).
    pub fn list(&self, prefix: &str, after: Option<&str>, limit: u32, now: u64) -> Vec<String> {
        let entries = self.lock();
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
        let budgets = &self.meter.budgets;
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

impl Drop for ModuleStore {
    fn drop(&mut self) {
        let charged = self.lock().charged;
        self.meter.release_store(charged);
    }
}

fn deadline(now: u64, ttl_ms: Option<u64>) -> Option<u64> {
    ttl_ms.map(|ttl| now.saturating_add(ttl))
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

    /// Puts `key`, charging the difference in cost first; persisted before memory
    /// changes, so a failed write leaves both as they were.
    fn put(
        &mut self,
        key: &str,
        value: &[u8],
        expires: Option<u64>,
        now: u64,
        meter: &ModuleMeter,
    ) -> Result<(), StoreError> {
        let new = cost(key, value, expires);
        let mut old = self.cost_of(key);
        let mut growth = new.saturating_sub(old);
        if growth > 0 && !meter.store.charge_within(growth, meter.budgets.store) {
            // Room held by expired keys is the module's before it is refused.
            self.sweep(now, usize::MAX, meter);
            old = self.cost_of(key);
            growth = new.saturating_sub(old);
            if !meter.charge_store(growth) {
                return Err(StoreError::Full(format!(
                    "the store holds {} KiB of {}; this entry needs {} bytes more",
                    self.charged >> 10,
                    meter.setting(crate::meter::Limit::Store),
                    growth
                )));
            }
        }
        if let Some(db) = &self.db
            && let Err(e) = db.put(key, value, expires)
        {
            meter.release_store(growth);
            return Err(StoreError::Io(format!("{e:#}")));
        }
        self.charged += growth;
        let shrink = old.saturating_sub(new);
        self.charged -= shrink;
        meter.release_store(shrink);
        self.insert(
            key.to_string(),
            Entry {
                value: value.to_vec(),
                expires,
            },
        );
        Ok(())
    }

    /// Removes `key` and gives back its cost; whether it was there.
    fn remove(&mut self, key: &str, meter: &ModuleMeter) -> bool {
        let Some(entry) = self.map.remove(key) else {
            return false;
        };
        if let Some(at) = entry.expires {
            self.expiring.remove(&(at, key.to_string()));
        }
        if let Some(db) = &self.db
            && let Err(e) = db.delete(key)
        {
            // Memory and disk differ until the key is written again; a restart brings it
            // back. Logged, since the guest's call has no error to carry it.
            tracing::warn!("store: failed to delete a persisted key: {e:#}");
        }
        let bytes = cost(key, &entry.value, entry.expires);
        self.charged -= bytes;
        meter.release_store(bytes);
        true
    }

    /// Removes up to `most` entries expired at `now`.
    fn sweep(&mut self, now: u64, most: usize, meter: &ModuleMeter) {
        for _ in 0..most {
            let Some((at, key)) = self.expiring.first().cloned() else {
                return;
            };
            if at > now {
                return;
            }
            self.remove(&key, meter);
        }
    }
}

#[cfg(test)]
mod tests;
