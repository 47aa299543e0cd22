//! ServerKit's startup sequence, step by step (docs/architecture.md, "Startup"):
//!
//! 1. locate the personality;
//! 2. load its modules;
//! 3. read `c11n` with the combined vocabulary;
//! 4. apply the root policy;
//! 5. take the identity;
//! 6. plan the database pools (opened after the drop, on the host runtime); open the
//!    granted directories and files;
//! 7. run each module's `prestart` as root;
//! 8. drop privileges;
//! 9. serve.
//!
//! Steps 1-8 run on the main thread alone, with current-thread runtimes and scoped epoch
//! tickers stopped before the drop: nothing that holds root credentials outlives it.

mod load;
mod membership;
mod pool;
mod prestart;
mod reload;
mod serve;
mod swap_rules;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serverkit_c11n::{Config, Section};
use wasmtime::Engine;

use crate::contract::bindings::types::OptionType;
use crate::databases;
use crate::directories;
use crate::engine::{ComponentCache, EpochTicker};
use crate::guest_host::state::{Grants, ModuleContext};
use crate::heaps::HeapRegistry;
use crate::logging::LogSwitch;
use crate::logging::syslog::{self, Syslog};
use crate::modules::LoadedModule;
use crate::personality::Personality;
use crate::process::{identity, limits, privileges};
use crate::sessions::limits::ModuleLimits;
use crate::sessions::options::SessionOptions;

pub use load::load;

/// Core option: seconds live sessions get to finish after SIGTERM or SIGINT.
const SHUTDOWN_TIMEOUT_KEY: &str = "shutdown_timeout";

/// Core option: seconds sessions on a module version replaced by a hot swap may still run;
/// 0 (the default) for no bound.
const SWAP_DRAIN_TIMEOUT_KEY: &str = "swap_drain_timeout";

/// A personality whose modules are loaded and whose configuration is checked (steps 1-3).
pub struct Loaded {
    /// Where logs go when `bypass_libc_syslog` is on: address and format.
    pub syslog: Option<(String, syslog::Format)>,
    /// The engine every module was compiled for.
    pub engine: Engine,
    /// Its instance pool's size.
    pub pool: crate::engine::PoolPlan,
    /// The compile cache, opened before the drop and used for hot swaps after it.
    pub cache: Arc<ComponentCache>,
    /// The checked configuration.
    pub config: Config,
    /// Each module with its configuration.
    pub modules: Vec<ConfiguredModule>,
    /// The personality directory: relative paths in c11n (directories, SQLite files)
    /// are resolved against it.
    pub dir: std::path::PathBuf,
    /// The text of `c11n` as checked: what a module swap is checked against until SIGHUP
    /// rereads the file.
    pub text: String,
}

/// A loaded module and its checked configuration.
pub struct ConfiguredModule {
    /// The compiled, described module.
    pub module: Arc<LoadedModule>,
    /// Its section (or its defaults).
    pub section: Arc<Section>,
    /// Its session options.
    pub options: SessionOptions,
    /// What its instances know: name, section, grants, what prestart opened for it.
    pub context: Arc<ModuleContext>,
}

impl ConfiguredModule {
    /// A module configured by `section`.
    pub fn new(
        module: impl Into<Arc<LoadedModule>>,
        section: Section,
        options: SessionOptions,
    ) -> Self {
        let module = module.into();
        let section = Arc::new(section);
        let grants = Grants::of(&module.spec, &section, Arc::default());
        let limits = ModuleLimits::new(options.limits, options.session_cpu);
        let context = ModuleContext::new(module.name(), Some(section.clone()), grants, limits);
        ConfiguredModule {
            module,
            section,
            options,
            context,
        }
    }

    /// Opens the directories and files its section grants (step 6b, as root); its
    /// instances see them from then on.
    pub fn open_granted(&mut self, base: &std::path::Path) -> Result<()> {
        let fs = directories::open_granted(base, &self.module.spec, &self.section)?;
        let grants = Grants::of(&self.module.spec, &self.section, Arc::new(fs));
        let limits = self.context.limits.clone();
        self.context = ModuleContext::new(
            self.module.name(),
            Some(self.section.clone()),
            grants,
            limits,
        );
        Ok(())
    }

    /// Paths of its options of type terminal, for prestart to open.
    pub fn terminals(&self) -> Vec<String> {
        self.module
            .descriptor
            .vocabulary
            .iter()
            .filter(|o| o.option_type == OptionType::Terminal)
            .filter_map(|o| self.section.str(&o.name).map(String::from))
            .collect()
    }

    /// The module's `certificate` and `private-key` options with a value, and their paths
    /// resolved against the personality directory `dir`.
    pub fn tls_files(&self, dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
        self.module
            .descriptor
            .vocabulary
            .iter()
            .filter(|o| {
                matches!(
                    o.option_type,
                    OptionType::Certificate | OptionType::PrivateKey
                )
            })
            .filter_map(|o| Some((o.name.clone(), dir.join(self.section.str(&o.name)?))))
            .collect()
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

/// The whole sequence: runs until SIGTERM or SIGINT. `log` is switched to remote syslog
/// when the configuration asks for it.
pub fn run(personality: &Personality, log: &LogSwitch) -> Result<()> {
    let mut loaded = load(personality)?;
    let globals = &loaded.config.globals;
    let heaps = HeapRegistry::default();
    let app = globals
        .str("identity")
        .map(identity::title)
        .unwrap_or_else(|| "serverkit".into());
    let syslog = match &loaded.syslog {
        Some((address, format)) => {
            let syslog = Syslog::new(address, *format, &app, &heaps)?;
            tracing::info!("logging to syslog at {address} from now on");
            log.to_syslog(syslog.clone());
            Some(syslog)
        }
        None => None,
    };

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

    // Sessions need descriptors and memory mappings: raise both for the pool while root.
    limits::prepare(u64::from(loaded.pool.capacity));

    // 6. Database pools: checked now, opened after the drop (pools start threads, and
    //    the drop needs a single-threaded process); see `databases::HostRuntime`.
    let pools = databases::plan(&loaded.config, &personality.dir)?;

    // 6b. Directories and files the modules' sections grant, opened while still root.
    for configured in &mut loaded.modules {
        configured.open_granted(&personality.dir)?;
    }

    // 7. prestart, serially, still privileged.
    let listeners = on_startup_thread(&loaded.engine, prestart::prestart_all(&loaded))?;

    // 8. Drop privileges while this is the only thread.
    privileges::apply(&plan)?;
    if let Some(syslog) = &syslog {
        syslog.start_sender()?;
    }

    // 9. Serve.
    let shutdown_timeout =
        Duration::from_secs(globals.int(SHUTDOWN_TIMEOUT_KEY).unwrap_or(10).max(0) as u64);
    let modules = loaded.modules.into_iter().zip(listeners).collect();
    let reloader = reload::Reloader {
        engine: loaded.engine.clone(),
        pool: loaded.pool,
        cache: loaded.cache.clone(),
        personality: personality.clone(),
        slots: Vec::new(),
        text: loaded.text,
        config: loaded.config.clone(),
        serving: None,
        removed: Vec::new(),
    };
    serve::serve(
        &loaded.engine,
        reloader,
        modules,
        pools,
        shutdown_timeout,
        heaps,
        syslog,
    )
}

/// `serverkit check`: steps 1-3, step 6's pool checks, and the granted directories and
/// files looked up as `run` would open them (read-only, as the calling user). Binds and
/// connects nothing.
pub fn check(personality: &Personality) -> Result<()> {
    let loaded = load(personality)?;
    databases::plan(&loaded.config, &personality.dir)?;
    for configured in &loaded.modules {
        directories::open_granted(
            &personality.dir,
            &configured.module.spec,
            &configured.section,
        )?;
    }
    Ok(())
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
