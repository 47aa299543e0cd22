//! ServerKit's startup sequence, step by step (docs/architecture.md, "Startup"):
//!
//! 1. locate the personality;
//! 2. load its modules;
//! 3. read `c11n` with the combined vocabulary;
//! 4. apply the root policy;
//! 5. take the identity;
//! 6. plan the database pools (opened after the drop, on the host runtime);
//! 7. run each module's `prestart` as root;
//! 8. drop privileges;
//! 9. serve.
//!
//! Steps 1-8 run on the main thread alone, with current-thread runtimes and scoped epoch
//! tickers stopped before the drop: nothing that holds root credentials outlives it.

mod load;
mod prestart;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serverkit_c11n::{Config, Section};
use wasmtime::Engine;

use crate::databases::{self, Databases};
use crate::engine::EpochTicker;
use crate::guest_host::state::{Grants, ModuleContext};
use crate::maildrops::GrantedDirectory;
use crate::modules::LoadedModule;
use crate::personality::Personality;
use crate::process::{identity, limits, privileges};
use crate::sessions::options::SessionOptions;

pub use load::load;

/// Core option: seconds live sessions get to finish after SIGTERM or SIGINT.
const SHUTDOWN_TIMEOUT_KEY: &str = "shutdown_timeout";

/// A personality whose modules are loaded and whose configuration is checked (steps 1-3).
pub struct Loaded {
    /// The engine every module was compiled for.
    pub engine: Engine,
    /// The checked configuration.
    pub config: Config,
    /// Each module with its configuration.
    pub modules: Vec<ConfiguredModule>,
    /// The personality directory: relative paths in c11n (directories, SQLite files)
    /// are resolved against it.
    pub dir: std::path::PathBuf,
}

/// A loaded module and its checked configuration.
pub struct ConfiguredModule {
    /// The compiled, described module.
    pub module: Arc<LoadedModule>,
    /// Its section (or its defaults).
    pub section: Arc<Section>,
    /// Its session options.
    pub options: SessionOptions,
}

impl ConfiguredModule {
    /// What an instance of it knows in prestart: its name, section and grants.
    pub fn context(&self) -> Arc<ModuleContext> {
        self.context_with(Default::default(), None)
    }

    /// What an instance of it knows once serving: also the directories opened for it
    /// and the pools.
    pub fn context_with(
        &self,
        directories: Arc<Vec<GrantedDirectory>>,
        databases: Option<Arc<Databases>>,
    ) -> Arc<ModuleContext> {
        Arc::new(ModuleContext {
            name: self.module.name().to_string(),
            section: Some(self.section.clone()),
            grants: Grants::of(&self.module.spec, &self.section),
            directories,
            databases,
        })
    }
}

/// Runs `work` on a current-thread runtime with an epoch ticker, both gone when it returns:
/// how the steps before the privilege drop run async hooks without leaving threads behind.
pub(crate) fn on_startup_thread<T>(
    engine: &Engine,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let ticker = EpochTicker::start(engine)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the startup runtime")?;
    let result = runtime.block_on(work);
    drop(runtime);
    ticker.stop();
    result
}

/// The whole sequence: runs until SIGTERM or SIGINT.
pub fn run(personality: &Personality) -> Result<()> {
    let loaded = load(personality)?;
    let globals = &loaded.config.globals;

    // 4. The root policy, checked before anything privileged happens.
    let policy = privileges::RootPolicy {
        executes_as_root: globals.bool("executes_as_root").unwrap_or(false),
        uid: id_option(globals, "uid")?,
        gid: id_option(globals, "gid")?,
    };
    let plan = privileges::plan(
        policy,
        nix::unistd::geteuid().as_raw(),
        privileges::primary_gid,
    )?;

    // 5. Identity.
    if let Some(id) = globals.str("identity") {
        identity::set(id)?;
        tracing::info!(identity = %identity::title(id), "identity set");
    }

    // Sessions need descriptors: take what the hard limit allows.
    match limits::raise_open_files() {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!("could not raise the open files limit: {e}"),
    }

    // 6. Database pools: checked now, opened after the drop (pools start threads, and
    //    the drop needs a single-threaded process); see `databases::HostRuntime`.
    let pools = databases::plan(&loaded.config, &personality.dir)?;

    // 7. prestart, serially, still privileged: directories, then the module's binds.
    let prestarted = on_startup_thread(&loaded.engine, prestart::prestart_all(&loaded))?;

    // 8. Drop privileges while this is the only thread.
    privileges::apply(&plan)?;

    // 9. Serve.
    let shutdown_timeout =
        Duration::from_secs(globals.int(SHUTDOWN_TIMEOUT_KEY).unwrap_or(10).max(0) as u64);
    let modules = loaded.modules.into_iter().zip(prestarted).collect();
    serve::serve(&loaded.engine, modules, pools, shutdown_timeout)
}

fn id_option(globals: &Section, key: &str) -> Result<Option<u32>> {
    globals
        .int(key)
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| anyhow!("`{key}` must be between 0 and {}, found {v}", u32::MAX))
        })
        .transpose()
}
