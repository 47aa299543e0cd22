//! Watching a `modules/` folder for replaced files: a host thread polls its `.wasm` files
//! (size, modification time, inode) and reports a change once it has held still for one
//! more poll, so a copy still being written is not loaded half-way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

/// How often the folder is looked at. A replaced file is picked up within two polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What identifies one version of a file without reading it.
type Stamp = (u64, Option<SystemTime>, u64);

/// The folder's `.wasm` files as seen at one moment: the watcher's first reference.
#[derive(Debug, Clone, Default)]
pub struct Baseline(BTreeMap<PathBuf, Stamp>);

impl Baseline {
    /// Looks at `dir` now. Taken before the modules are loaded, so that a file replaced
    /// while the server starts (after it was read, before the watcher runs) is a change.
    pub fn take(dir: &Path) -> Baseline {
        Baseline(snapshot(dir))
    }
}

/// Starts the watcher thread, reporting changes from `baseline` on. `on_change` runs after
/// each settled change; it returns `false` to stop watching (the reloader is gone).
pub fn spawn(
    dir: PathBuf,
    baseline: Baseline,
    on_change: impl Fn() -> bool + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("modules-watch".into())
        .spawn(move || watch(&dir, baseline.0, on_change))
        .with_context(|| "failed to start the modules watcher thread")
}

fn watch(dir: &Path, mut settled: BTreeMap<PathBuf, Stamp>, on_change: impl Fn() -> bool) {
    let mut pending: Option<BTreeMap<PathBuf, Stamp>> = None;
    let mut unreadable = false;
    loop {
        std::thread::sleep(POLL_INTERVAL);
        let now = match super::source::module_files(dir) {
            Ok(_) => {
                unreadable = false;
                snapshot(dir)
            }
            Err(e) => {
                if !unreadable {
                    tracing::warn!(
                        "the modules watcher cannot read {}: {e:#}; no module change is seen until it can",
                        dir.display()
                    );
                    unreadable = true;
                }
                continue;
            }
        };
        match pending.take() {
            // Unchanged since the last poll and different from what was reported: settled.
            Some(previous) if previous == now => {
                settled = now;
                if !on_change() {
                    return;
                }
            }
            _ if now != settled => pending = Some(now),
            _ => {}
        }
    }
}

/// The stamps of the folder's `.wasm` files; an unreadable folder counts as empty.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Stamp> {
    use std::os::unix::fs::MetadataExt;
    let Ok(files) = super::source::module_files(dir) else {
        return BTreeMap::new();
    };
    files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, (meta.len(), meta.modified().ok(), meta.ino())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};

    #[test]
    fn a_replaced_file_is_reported_once_it_settles() {
        let dir = std::env::temp_dir().join(format!("sk-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        std::fs::write(dir.join("a.wasm"), b"one").expect("temp dir is writable");
        let (tx, rx) = mpsc::channel();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        spawn(dir.clone(), Baseline::take(&dir), move || {
            seen.fetch_add(1, Ordering::SeqCst);
            tx.send(()).is_ok()
        })
        .expect("thread starts");
        std::thread::sleep(POLL_INTERVAL * 3);
        assert_eq!(count.load(Ordering::SeqCst), 0, "no change, no report");
        std::fs::write(dir.join("b.tmp"), b"two!").expect("temp dir is writable");
        std::fs::rename(dir.join("b.tmp"), dir.join("a.wasm")).expect("rename works");
        rx.recv_timeout(POLL_INTERVAL * 10)
            .expect("the replacement is reported");
        std::thread::sleep(POLL_INTERVAL * 3);
        assert_eq!(count.load(Ordering::SeqCst), 1, "reported once");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_replaced_before_the_watcher_starts_is_a_change() {
        let dir = std::env::temp_dir().join(format!("sk-watch-early-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        std::fs::write(dir.join("a.wasm"), b"one").expect("temp dir is writable");
        let baseline = Baseline::take(&dir);
        // Replaced while the server was still starting.
        std::fs::write(dir.join("b.tmp"), b"two!").expect("temp dir is writable");
        std::fs::rename(dir.join("b.tmp"), dir.join("a.wasm")).expect("rename works");
        let (tx, rx) = mpsc::channel();
        spawn(dir.clone(), baseline, move || tx.send(()).is_ok()).expect("thread starts");
        rx.recv_timeout(POLL_INTERVAL * 10)
            .expect("the early replacement is reported");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
