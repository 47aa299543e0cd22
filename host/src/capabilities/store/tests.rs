//! The keyed store's rules: bounds, budget, expiry, compare-and-swap, paging, persistence.

use super::*;
use crate::meter::Limit;
use crate::meter::tests::meter;
use std::time::Duration;

/// A store on a meter with `store_mb = 1`, keys of at most 64 bytes, values of 4 KiB.
fn store() -> ModuleStore {
    ModuleStore::in_memory(meter(8, None, 1))
}

#[tokio::test]
async fn values_are_set_read_replaced_and_deleted() {
    let s = store();
    assert_eq!(s.get("a", 0), None);
    s.set("a", b"one", None, 0).await.unwrap();
    s.set("a", b"two", None, 0).await.unwrap();
    assert_eq!(s.get("a", 0).as_deref(), Some(&b"two"[..]));
    assert!(s.delete("a", 0).await);
    assert!(!s.delete("a", 0).await, "gone already");
    assert_eq!(s.get("a", 0), None);
    assert_eq!(s.stats().keys, 0);
    assert_eq!(s.shared.meter.store.used(), 0, "everything given back");
}

#[tokio::test]
async fn keys_and_values_past_their_bounds_are_refused_before_anything_is_charged() {
    let s = store();
    let long_key = "k".repeat(65);
    let err = s.set(&long_key, b"v", None, 0).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidKey(m) if m.contains("store_max_key_bytes = 64")),
        "{err:?}"
    );
    assert!(matches!(
        s.set("", b"v", None, 0).await,
        Err(StoreError::InvalidKey(_))
    ));
    let err = s.set("k", &[0; 4097], None, 0).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::ValueTooLarge(m) if m.contains("store_max_value_kb = 4")),
        "{err:?}"
    );
    assert!(matches!(
        s.compare_and_swap("k", None, Some(&[0; 4097]), None, 0)
            .await,
        Err(StoreError::ValueTooLarge(_))
    ));
    s.set(&"k".repeat(64), &[0; 4096], None, 0)
        .await
        .expect("exactly at both bounds");
    assert_eq!(
        s.shared.meter.store.used(),
        (64 + 16) + (4096 + 16) + ENTRY_BYTES
    );
}

#[tokio::test]
async fn the_budget_refuses_a_write_past_it_and_never_grows_beyond() {
    let s = store();
    let mut n = 0;
    let err = loop {
        match s.set(&format!("key{n:08}"), &[7; 1000], None, 0).await {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, StoreError::Full(m) if m.contains("store_mb = 1")),
        "{err:?}"
    );
    let each = (16 + 16) + (1008 + 16) + ENTRY_BYTES;
    assert_eq!(cost("key00000000", &[7; 1000], None), each);
    assert_eq!(n, (1 << 20) / each, "as many as fit");
    assert!(s.shared.meter.store.used() <= 1 << 20);
    assert_eq!(s.shared.meter.hits()[9], (Limit::Store, 1));
    // Replacing a value by a smaller one, or deleting, still works on a full store, and
    // makes room.
    s.set("key00000000", b"small", None, 0).await.unwrap();
    assert!(s.delete("key00000001", 0).await);
    s.set("another", &[1; 1000], None, 0)
        .await
        .expect("room was made");
    let module = s.shared.meter.clone();
    drop(s);
    assert_eq!(module.store.used(), 0, "all given back when the store goes");
}

#[tokio::test]
async fn expired_keys_are_gone_and_their_room_is_reused() {
    let s = store();
    s.set("short", b"v", Some(100), 1000).await.unwrap();
    s.set("long", b"v", Some(10_000), 1000).await.unwrap();
    s.set("forever", b"v", None, 1000).await.unwrap();
    assert_eq!(s.get("short", 1099).as_deref(), Some(&b"v"[..]));
    assert_eq!(s.get("short", 1100), None, "expired at its deadline");
    assert_eq!(s.list("", None, 10, 1100), ["forever", "long"]);
    assert!(
        !s.delete("long", 20_000).await,
        "expired: nothing live deleted"
    );
    assert_eq!(s.stats().keys, 1);
    // Setting again without a ttl clears the deadline.
    s.set("x", b"1", Some(10), 1000).await.unwrap();
    s.set("x", b"2", None, 1000).await.unwrap();
    assert_eq!(s.get("x", 99_999).as_deref(), Some(&b"2"[..]));
    // A full store of expiring keys: once they expire, each write sweeps a few...
    let mut n = 0;
    while s
        .set(&format!("t{n:06}"), &[0; 1000], Some(50), 2000)
        .await
        .is_ok()
    {
        n += 1;
    }
    assert!(n > 500, "{n}");
    s.set("after", &[0; 1000], None, 2050)
        .await
        .expect("the expired keys made room");
    assert_eq!(s.stats().keys, 3 + n - SWEEP_PER_CALL, "{:?}", s.stats());
    // ...and a write that would be refused sweeps all of them first.
    while s
        .set(&format!("u{n:06}"), &[0; 1000], None, 2050)
        .await
        .is_ok()
    {
        n += 1;
    }
    assert!(
        s.list("t", None, 10, 0).is_empty(),
        "every expired key swept before the refusal"
    );
}

#[tokio::test]
async fn compare_and_swap_changes_only_what_it_expected() {
    let s = store();
    assert!(
        s.compare_and_swap("n", None, Some(b"1"), None, 0)
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_swap("n", None, Some(b"x"), None, 0)
            .await
            .unwrap(),
        "present now"
    );
    assert!(
        !s.compare_and_swap("n", Some(b"0"), Some(b"x"), None, 0)
            .await
            .unwrap()
    );
    assert!(
        s.compare_and_swap("n", Some(b"1"), Some(b"2"), None, 0)
            .await
            .unwrap()
    );
    assert_eq!(s.get("n", 0).as_deref(), Some(&b"2"[..]));
    assert!(
        s.compare_and_swap("n", Some(b"2"), None, None, 0)
            .await
            .unwrap()
    );
    assert_eq!(s.get("n", 0), None, "swapped for nothing: deleted");
    s.set("e", b"old", Some(5), 0).await.unwrap();
    assert!(
        s.compare_and_swap("e", None, Some(b"new"), None, 10)
            .await
            .unwrap(),
        "an expired key counts as absent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counting_from_many_threads_loses_no_increment() {
    let s = Arc::new(store());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..250 {
                    loop {
                        let old = s.get("count", 0);
                        let n: u32 = old
                            .as_deref()
                            .map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap());
                        let new = (n + 1).to_string();
                        if s.compare_and_swap(
                            "count",
                            old.as_deref(),
                            Some(new.as_bytes()),
                            None,
                            0,
                        )
                        .await
                        .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.await.unwrap();
    }
    assert_eq!(s.get("count", 0).as_deref(), Some(&b"1000"[..]));
}

#[tokio::test]
async fn listing_pages_by_prefix_and_never_returns_more_than_the_cap() {
    let s = ModuleStore::in_memory({
        let m = meter(8, None, 1);
        // A bigger budget for 3000 keys.
        let mut budgets = m.budgets;
        budgets.store = 4 << 20;
        ModuleMeter::new(budgets, crate::meter::ProcessDescriptors::new(16))
    });
    for i in 0..3000 {
        s.set(&format!("user:{i:05}"), b"", None, 0).await.unwrap();
    }
    s.set("other", b"", None, 0).await.unwrap();
    s.set("user", b"", None, 0).await.unwrap();
    let first = s.list("user:", None, u32::MAX, 0);
    assert_eq!(first.len(), MAX_LIST as usize);
    assert_eq!(first[0], "user:00000");
    let mut all = first;
    loop {
        let page = s.list("user:", all.last().map(String::as_str), 700, 0);
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    assert_eq!(all.len(), 3000, "every key once, in order");
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.list("user", None, 2, 0), ["user", "user:00000"]);
    assert_eq!(
        s.list("user:", Some("a"), 1, 0),
        ["user:00000"],
        "after before the prefix"
    );
    assert!(s.list("zzz", None, 10, 0).is_empty());
}

#[tokio::test]
async fn a_persisted_store_comes_back_with_its_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let grant = StoreGrant {
        persist: Some(dir.path().join("store/m.sqlite")),
    };
    let module = meter(8, None, 1);
    let now = now_ms();
    {
        let s = ModuleStore::open("m", &grant, module.clone()).unwrap();
        s.set("kept", b"value", None, now).await.unwrap();
        s.set("gone", b"value", None, now).await.unwrap();
        assert!(s.delete("gone", now).await);
        s.set("later", b"v", Some(3_600_000), now).await.unwrap();
        s.set("soon", b"v", Some(1), now - 10).await.unwrap();
        assert!(
            s.compare_and_swap("cas", None, Some(b"1"), None, now)
                .await
                .unwrap()
        );
        assert!(s.stats().persisted);
    }
    assert_eq!(module.store.used(), 0);
    let s = ModuleStore::open("m", &grant, module.clone()).unwrap();
    assert_eq!(s.get("kept", now).as_deref(), Some(&b"value"[..]));
    assert_eq!(s.get("gone", now), None);
    assert_eq!(s.get("cas", now).as_deref(), Some(&b"1"[..]));
    assert_eq!(s.list("", None, 10, now), ["cas", "kept", "later"]);
    assert!(
        s.get("later", now + 3_600_001).is_none(),
        "its deadline kept"
    );
    assert_eq!(module.store.used(), s.stats().bytes);
    drop(s);
    // A budget lowered below what is kept is a startup error naming the option.
    let mut budgets = module.budgets;
    budgets.store = 100;
    let small = ModuleMeter::new(budgets, crate::meter::ProcessDescriptors::new(16));
    let err = ModuleStore::open("m", &grant, small).err().unwrap();
    assert!(format!("{err:#}").contains("store_mb = 0"), "{err:#}");
}

/// A persisted store (`store_mb = 1`) in a fresh directory, and its file.
fn persisted() -> (tempfile::TempDir, std::path::PathBuf, ModuleStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store/m.sqlite");
    let grant = StoreGrant {
        persist: Some(path.clone()),
    };
    let store = ModuleStore::open("m", &grant, meter(8, None, 1)).unwrap();
    (dir, path, store)
}

/// A module runs its sessions on `min_threads` workers, one by default: like this test's
/// runtime. A write waiting for the file's lock (an operator's `sqlite3` holding a write
/// transaction) must leave that worker to the module's other sessions.
#[tokio::test(flavor = "current_thread")]
async fn a_persisted_write_waiting_for_a_lock_leaves_the_worker_to_other_sessions() {
    let (_dir, path, s) = persisted();
    let s = Arc::new(s);
    let now = now_ms();
    s.set("before", b"1", None, now).await.unwrap();
    // Long enough that the write can only finish by the lock's release below: on a
    // blocked worker this test would never get to release it.
    let disk = s.disk.clone().unwrap();
    disk.lock().await.wait_for_locks(Duration::from_secs(30));
    let operator = rusqlite::Connection::open(&path).unwrap();
    operator.execute_batch("BEGIN IMMEDIATE").unwrap();

    let writer = tokio::spawn({
        let s = s.clone();
        async move { s.set("during", b"2", None, now).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writer.is_finished(), "the write waits for the lock");
    assert_eq!(
        s.get("before", now).as_deref(),
        Some(&b"1"[..]),
        "reads go on meanwhile"
    );
    assert_eq!(s.get("during", now), None, "memory changes after the file");

    operator.execute_batch("COMMIT").unwrap();
    writer
        .await
        .unwrap()
        .expect("written once the lock is free");
    assert_eq!(s.get("during", now).as_deref(), Some(&b"2"[..]));
    let stored: Vec<u8> = operator
        .query_row("SELECT value FROM store WHERE key = 'during'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, b"2");
}

/// A write the lock holder outlasts fails with an error the guest sees, and leaves memory,
/// file and meter as they were.
#[tokio::test]
async fn a_persisted_write_that_cannot_get_the_lock_changes_nothing() {
    let (_dir, path, s) = persisted();
    let now = now_ms();
    s.set("k", b"old", None, now).await.unwrap();
    let used = s.shared.meter.store.used();
    s.disk
        .as_ref()
        .unwrap()
        .lock()
        .await
        .wait_for_locks(Duration::from_millis(50));
    let operator = rusqlite::Connection::open(&path).unwrap();
    operator.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = s.set("k", &[7; 2000], None, now).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Io(m) if m.contains("locked")),
        "{err:?}"
    );
    assert_eq!(s.get("k", now).as_deref(), Some(&b"old"[..]));
    assert_eq!(s.shared.meter.store.used(), used, "the growth given back");
    operator.execute_batch("COMMIT").unwrap();
    assert!(s.delete("k", now).await, "and later writes go through");
    assert_eq!(s.shared.meter.store.used(), 0);
}

/// A write refused for room still sweeps expired keys from the file, not only from
/// memory: else a module alternating an expiring key and a refused write would grow the
/// file past `store_mb` without end.
#[tokio::test]
async fn a_refused_persisted_write_deletes_what_it_swept_from_the_file() {
    let (_dir, path, s) = persisted();
    let now = now_ms();
    // The 1 MiB budget filled for good, but for room for one small expiring key.
    let mut n = 0;
    while s
        .set(&format!("kept{n}"), &[1; 4000], None, now)
        .await
        .is_ok()
    {
        n += 1;
    }
    while s.set(&format!("small{n}"), b"1", None, now).await.is_ok() {
        n += 1;
    }
    for gone in [n - 1, n - 2] {
        assert!(s.delete(&format!("small{gone}"), now).await);
    }
    s.set("brief", b"2", Some(1), now).await.unwrap();
    let refused = s.set("big", &[3; 4096], None, now + 10).await;
    assert!(matches!(refused, Err(StoreError::Full(_))), "{refused:?}");
    let file = rusqlite::Connection::open(&path).unwrap();
    let brief: i64 = file
        .query_row("SELECT count(*) FROM store WHERE key = 'brief'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(brief, 0, "swept from the file too");
}
