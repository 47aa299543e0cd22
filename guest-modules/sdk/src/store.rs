//! The module's keyed store (`serverkit:module/store`): values under string keys, kept by
//! the host for every session of the module and across hot swaps (and restarts, with
//! `store_persist = true`). Plain calls, plus what modules would otherwise repeat: text
//! values, an atomic [`update`] (a compare-and-swap loop), a counter, and paging through
//! keys.
//!
//! ```no_run
//! use serverkit_sdk::store;
//!
//! store::set("greeting", "hello").map_err(store::message)?;
//! let visits = store::increment("visits", 1).map_err(store::message)?;
//! for key in store::keys("user:") {
//!     let _ = store::get_text(&key);
//! }
//! # Ok::<(), String>(())
//! ```

use std::time::Duration;

use crate::bindings::serverkit::module::store as host;
pub use crate::bindings::serverkit::module::store::StoreError;

/// Keys [`keys`] asks the host for per call (the host's cap is 1000).
const PAGE: u32 = 256;

/// The value of `key`, if it has one.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// The value of `key` as text (invalid UTF-8 replaced).
pub fn get_text(key: &str) -> Option<String> {
    get(key).map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Sets `key` to `value`, for good.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), StoreError> {
    host::set(key, value.as_ref(), None)
}

/// Sets `key` to `value` for `ttl`, after which it is gone.
pub fn set_for(key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<(), StoreError> {
    host::set(key, value.as_ref(), Some(ttl.as_millis() as u64))
}

/// Deletes `key`; whether it had a value.
pub fn delete(key: &str) -> bool {
    host::delete(key)
}

/// Sets `key` to `new` (deletes it for `None`) only if it holds `expected` (`None`: it is
/// absent); whether it did.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, StoreError> {
    host::compare_and_swap(key, expected, new, None)
}

/// Replaces the value of `key` by `f(current)` (`None` deletes it) atomically: if another
/// session changed it in between, `f` runs again on the new value. Returns what was
/// stored.
pub fn update(
    key: &str,
    mut f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    loop {
        let current = get(key);
        let new = f(current.as_deref());
        if compare_and_swap(key, current.as_deref(), new.as_deref())? {
            return Ok(new);
        }
    }
}

/// Adds `by` to the decimal counter at `key` (absent or not a number counts as 0);
/// returns the new value.
pub fn increment(key: &str, by: i64) -> Result<i64, StoreError> {
    let mut next = 0;
    update(key, |current| {
        let n: i64 = current
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        next = n.saturating_add(by);
        Some(next.to_string().into_bytes())
    })?;
    Ok(next)
}

/// Every key starting with `prefix`, in byte order, fetched a page at a time (so a store
/// of a million keys never crosses in one call).
pub fn keys(prefix: &str) -> Keys {
    Keys {
        prefix: prefix.to_string(),
        page: Vec::new(),
        last: None,
        done: false,
    }
}

/// The iterator [`keys`] returns.
pub struct Keys {
    prefix: String,
    /// The current page, reversed (popped from the end).
    page: Vec<String>,
    last: Option<String>,
    done: bool,
}

impl Iterator for Keys {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.page.is_empty() && !self.done {
            let mut page = host::list_keys(&self.prefix, self.last.as_deref(), PAGE);
            self.done = page.len() < PAGE as usize;
            self.last = page.last().cloned();
            page.reverse();
            self.page = page;
        }
        self.page.pop()
    }
}

/// The error as one line, for a protocol's answer or a hook's `Err(String)`.
pub fn message(error: StoreError) -> String {
    match error {
        StoreError::InvalidKey(why) => format!("invalid key: {why}"),
        StoreError::ValueTooLarge(why) => format!("value too large: {why}"),
        StoreError::Full(why) => format!("store full: {why}"),
        StoreError::Io(why) => format!("store not written: {why}"),
    }
}
