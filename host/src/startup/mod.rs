//! ServerKit's startup sequence, step by step (docs/architecture.md, "Startup"):
//!
//! 1. locate the personality;
//! 2. load its modules;
//! 3. read `c11n` with the combined vocabulary;
//! 4. apply the root policy;
//! 5. take the identity;
//! 6. plan the database pools (opened after the drop, on the host runtime); open the
//!    granted directories and files;
//! 7. bind the metrics endpoint; run each module's `prestart` as root;
//! 8. drop privileges, then install the seccomp filter;
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

use crate::capabilities::files::GrantedFiles;
use crate::databases;
use crate::engine::{ComponentCache, EpochTicker};
use crate::heaps::HeapRegistry;
use crate::holdings::{Grants, Holdings, ModuleContext};
use crate::logging::LogSwitch;
use crate::logging::syslog::{self, Syslog};
use crate::meter::descriptors::HOST_RESERVED_DESCRIPTORS;
use crate::meter::{ModuleMeter, ProcessDescriptors};
use crate::modules::LoadedModule;
use crate::options::session::SessionOptions;
use crate::personality::Personality;
use crate::process::{identity, limits, privileges, seccomp};

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

/// A loaded module and its checked configuration: what its section grants is decided.
pub struct ConfiguredModule {
    /// The compiled, described module.
    pub module: Arc<LoadedModule>,
    /// Its section (its defaults when the operator wrote none).
    pub section: Section,
    /// Its session options.
    pub options: SessionOptions,
    /// What its section grants (nothing without a section the operator wrote).
    pub grants: Grants,
}

impl ConfiguredModule {
    /// A module configured by `section`; `written` says whether the operator wrote it.
    /// Relative paths are resolved against the personality directory `base`.
    pub fn new(
        module: impl Into<Arc<LoadedModule>>,
        section: Section,
        written: bool,
        options: SessionOptions,
        base: &std::path::Path,
    ) -> Self {
        let module = module.into();
        let grants = Grants::decide(&module.spec, &section, written, base);
        ConfiguredModule {
            module,
            section,
            options,
            grants,
        }
    }

    /// Opens what its section grants (step 6b: as root at startup, unprivileged for a
    /// module added while serving) and gives its context, which every generation of the
    /// module then carries.
    pub fn hold(self, process: &ProcessDescriptors) -> Result<HeldModule> {
        let name = self.module.name().to_string();
        let meter = ModuleMeter::new(self.options.budgets, process.clone());
        let holdings = Holdings::open(&name, self.grants, meter)?;
        let context = ModuleContext::new(&name, Some(Arc::new(self.section)), Arc::new(holdings));
        Ok(HeldModule {
            module: self.module,
            options: self.options,
            context,
        })
    }
}

/// A configured module with what the host opened for it: ready for prestart and serving.
pub struct HeldModule {
    /// The compiled, described module.
    pub module: Arc<LoadedModule>,
    /// Its session options.
    pub options: SessionOptions,
    /// Its name, section and holdings.
    pub context: Arc<ModuleContext>,
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
    // Before reading the modules: a file replaced from here on is a hot swap.
    let files_at_load = crate::modules::watch::Baseline::take(&personality.modules_dir());
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

    // After the drop, reloads and the modules watcher read the personality as the
    // service user: say so now, once, if it cannot.
    if let privileges::Plan::Switch { uid, gid } = plan {
        check_readable_after_drop(personality, uid, gid);
    }

    // 5. Identity.
    if let Some(id) = globals.str("identity") {
        identity::set(id)?;
        tracing::info!(identity = %identity::title(id), "identity set");
    }

    // Sessions need descriptors and memory mappings: raise both for the pool while root;
    // the modules' descriptor budgets share what the process may then open.
    let process = descriptor_share(&loaded.modules, u64::from(loaded.pool.capacity));

    // 6. Database pools: checked now, opened after the drop (pools start threads, and
    //    the drop needs a single-threaded process); see `databases::HostRuntime`.
    let pools = databases::plan(&loaded.config, &personality.dir)?;

    // 6b. What the modules' sections grant (directories, files, terminals), opened while
    //     still root, each once.
    let held = std::mem::take(&mut loaded.modules)
        .into_iter()
        .map(|configured| configured.hold(&process))
        .collect::<Result<Vec<_>>>()?;

    // 7. The metrics endpoint, then prestart, serially, still privileged.
    let metrics = crate::metrics::bind_endpoint(&loaded.config)?;
    let listeners = on_startup_thread(
        &loaded.engine,
        prestart::prestart_all(&loaded.engine, &held),
    )?;

    // 8. Drop privileges while this is the only thread; then the system call filter,
    //    which every later thread inherits.
    privileges::apply(&plan)?;
    seccomp::apply(globals.bool(seccomp::OPTION).unwrap_or(true))?;
    crate::logging::start_writer()?;
    if let Some(syslog) = &syslog {
        syslog.start_sender()?;
    }

    // 9. Serve.
    let shutdown_timeout =
        Duration::from_secs(globals.int(SHUTDOWN_TIMEOUT_KEY).unwrap_or(10).max(0) as u64);
    let modules = held.into_iter().zip(listeners).collect();
    let reloader = reload::Reloader {
        engine: loaded.engine.clone(),
        pool: loaded.pool,
        process,
        cache: loaded.cache.clone(),
        personality: personality.clone(),
        slots: Vec::new(),
        text: loaded.text,
        config: loaded.config.clone(),
        serving: None,
        removed: Vec::new(),
        retiring: Vec::new(),
        files_at_load,
    };
    serve::serve(
        &loaded.engine,
        reloader,
        (modules, metrics),
        pools,
        shutdown_timeout,
        heaps,
        syslog,
    )
}

/// `serverkit check`: steps 1-3, step 6's pool checks, and the granted directories and
/// files opened as `run` would open them (read-only, as the calling user). Binds and
/// connects nothing. With `candidate`, that file is checked as if it were in `modules/`,
/// in place of the module of its name.
pub fn check(personality: &Personality, candidate: Option<&std::path::Path>) -> Result<()> {
    let loaded = load::load_with(personality, candidate)?;
    databases::plan(&loaded.config, &personality.dir)?;
    for configured in &loaded.modules {
        GrantedFiles::open(&configured.grants.files)
            .with_context(|| format!("module `{}`", configured.module.name()))?;
    }
    Ok(())
}

/// Warns, once and clearly, when the service user cannot read the personality's `c11n` or
/// list its `modules/`: every SIGHUP would then fail with `Permission denied`, and the
/// watcher would see no module file change.
fn check_readable_after_drop(personality: &Personality, uid: u32, gid: u32) {
    let (c11n, modules) = (personality.c11n_path(), personality.modules_dir());
    let probe = || {
        std::fs::read(&c11n).map_err(|e| format!("`{}`: {e}", c11n.display()))?;
        match std::fs::read_dir(&modules) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("`{}`: {e}", modules.display()))
            }
            _ => Ok(()),
        }
    };
    if let Some(Err(why)) = privileges::probe_as(uid, gid, probe) {
        tracing::warn!(
            "after the drop to uid {uid}, the personality cannot be read ({why}): SIGHUP and hot swaps will fail and new module files will go unseen; make the personality's directories searchable and `c11n` and `modules/` readable by uid {uid}"
        );
    }
}

/// Raises the process's limits for `instances` and the modules' descriptor budgets, and
/// gives the modules' share of the descriptors: the open-files limit in force minus the
/// host's reserve. Says so when the budgets add up to more than that share, since then one
/// module's clients may wait for descriptors another holds.
fn descriptor_share(modules: &[ConfiguredModule], instances: u64) -> ProcessDescriptors {
    let budgets: usize = modules.iter().map(|m| m.options.budgets.descriptors).sum();
    let wanted = budgets + HOST_RESERVED_DESCRIPTORS;
    let limit = limits::prepare(instances, wanted as u64);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if wanted > limit {
        tracing::warn!(
            "the modules' descriptor budgets (`max_descriptors`) add up to {budgets}, more than the {} the process may open beside the host's reserve of {HOST_RESERVED_DESCRIPTORS}: under load one module's clients may wait for descriptors another module holds",
            limit.saturating_sub(HOST_RESERVED_DESCRIPTORS)
        );
    }
    ProcessDescriptors::new(limit)
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
