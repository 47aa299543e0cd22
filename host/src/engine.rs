//! The wasm engine: one per process, configured for many short-lived instances (pooling
//! allocator, epoch interruption), plus its epoch ticker and the compiled-module cache.
//!
//! The engine must start no thread of its own before the root drop (see
//! docs/architecture.md, "Privileges"): parallel compilation is off, the cache is ours
//! (no background worker), and the ticker is started by the caller when it is safe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Most module instances alive at once in the process: every live session and operator
/// holds one. Startup refuses a personality whose `max_sessions` add up to more.
pub const INSTANCE_CAPACITY: u32 = 10_000;

/// Largest linear memory of one instance; a guest growing past it gets a failed
/// `memory.grow` (and a Rust guest aborts: only its session ends).
pub const MAX_INSTANCE_MEMORY_BYTES: usize = 64 << 20;

/// Most core wasm instances one component may create. A Rust module has one or two; a
/// componentize-py module (CPython as a set of dynamically linked core modules: libpython,
/// libc, the WASI adapter, shims) has 14 for a one-file app, and more with each native
/// extension it bundles. Only a counter in wasmtime: it reserves no memory.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Core instances alive at once in the whole process. Also only a counter, sized so that
/// every live instance can be a componentize-py module's (14 core instances, rounded up).
const TOTAL_CORE_INSTANCES: u32 = INSTANCE_CAPACITY * 16;

/// Period of the epoch tick: the granularity of CPU budgets and of yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Creates the engine.
pub fn new() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(2 << 20);
    config.parallel_compilation(false);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(INSTANCE_CAPACITY)
        .total_core_instances(TOTAL_CORE_INSTANCES)
        .total_memories(INSTANCE_CAPACITY)
        .total_tables(INSTANCE_CAPACITY * 2)
        .total_stacks(INSTANCE_CAPACITY)
        .max_memory_size(MAX_INSTANCE_MEMORY_BYTES)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .linear_memory_keep_resident(0)
        .table_keep_resident(0);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("failed to create the wasm engine")
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

/// Compiled components on disk, keyed by the wasm's content and the engine's compatibility
/// hash, so a restart with unchanged modules skips compilation.
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir`, or no cache when `dir` is `None` or not safe to load code from.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.filter(|d| match usable_cache_dir(d) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("not caching compiled modules: {e:#}");
                false
            }
        });
        ComponentCache { dir }
    }

    /// The default cache directory: `$SERVERKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/serverkit`,
    /// else `~/.cache/serverkit`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("SERVERKIT_CACHE_DIR") {
            return Some(dir.into());
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(Path::new(&dir).join("serverkit"));
        }
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").join("serverkit"))
    }

    /// Compiles `wasm`, or loads it from the cache when it was compiled before.
    pub fn component(&self, engine: &Engine, wasm: &[u8], label: &str) -> Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed to compile {label}"));
        };
        let path = dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
        if path.exists() {
            // SAFETY: the file was written by this cache (below) into a directory that
            // `usable_cache_dir` checked is ours and writable by no one else, and its name
            // binds it to these wasm bytes and this engine's configuration.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!("ignoring unusable cached module {}: {e:#}", path.display())
                }
            }
        }
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to compile {label}"))?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!(
                "could not cache the compiled {label} at {}: {e:#}",
                path.display()
            );
        }
        Ok(component)
    }
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut compat = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}", compat.finish())
}

fn store(path: &Path, component: &Component) -> Result<()> {
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A cache directory is usable when it exists (or can be made), belongs to us, and no one
/// else can write to it: loading a compiled module is loading native code.
fn usable_cache_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    let meta =
        std::fs::metadata(dir).with_context(|| format!("failed to stat {}", dir.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    anyhow::ensure!(
        meta.uid() == euid,
        "{} belongs to uid {}, not to us (uid {euid})",
        dir.display(),
        meta.uid()
    );
    anyhow::ensure!(
        meta.mode() & 0o022 == 0,
        "{} is writable by group or others",
        dir.display()
    );
    Ok(())
}
