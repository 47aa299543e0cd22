//! Hot swap while serving: a host thread rereads changed module files (and, on SIGHUP,
//! `c11n`), loads and checks them off the serving path, and publishes the new module
//! versions all together or not at all. Nothing privileged is redone: a new version reuses
//! the listeners, directories, terminal and database pools the host already holds, and does
//! not run `prestart`; a change that would need them redone is refused ("restart needed").

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use anyhow::{Context, Result, anyhow, bail};
use serverkit_c11n::{Config, OptionType, Parsed, Section};
use wasmtime::Engine;

use super::load::{module_section, vocabulary};
use crate::contract::bindings::types::OptionType as WitType;
use crate::contract::version;
use crate::engine::ComponentCache;
use crate::guest_host::linker;
use crate::guest_host::state::{Grants, ModuleContext};
use crate::modules::load::{LoadedModule, Loader, digest};
use crate::modules::source::{ModuleSource, module_files};
use crate::modules::{ModuleSlot, ModuleVersion};
use crate::personality::{Personality, shown};
use crate::sessions::options::SessionOptions;

/// What to recheck.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// A module file changed: reload changed files against the configuration in force.
    Files,
    /// SIGHUP: reload changed files and reread `c11n`.
    All,
}

/// The serving configuration and the modules it configures.
pub struct Reloader {
    /// The process's engine (new versions must come from it).
    pub engine: Engine,
    /// Where `c11n` and `modules/` are.
    pub personality: Personality,
    /// Every module being served.
    pub slots: Vec<Arc<ModuleSlot>>,
    /// The text of the configuration in force.
    pub text: String,
    /// The configuration in force.
    pub config: Config,
}

/// A new version ready to publish.
struct Candidate {
    slot: Arc<ModuleSlot>,
    version: ModuleVersion,
    what: &'static str,
}

impl Reloader {
    /// Starts the reload thread (after the privilege drop: it runs unprivileged) and
    /// returns where to send requests; the thread ends when every sender is gone.
    pub fn start(self) -> Result<Sender<Request>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || self.run(rx))
            .context("failed to start the reload thread")?;
        Ok(tx)
    }

    fn run(mut self, requests: Receiver<Request>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return tracing::error!("hot swap disabled: no reload runtime: {e}"),
        };
        while let Ok(request) = requests.recv() {
            runtime.block_on(self.handle(request));
        }
    }

    async fn handle(&mut self, request: Request) {
        let started = std::time::Instant::now();
        let text = match request {
            Request::Files => Ok(self.text.clone()),
            Request::All => self.personality.read_c11n(),
        };
        let prepared = match text {
            Ok(text) => self.prepare(&text).await.map(|p| (text, p)),
            Err(e) => Err(e),
        };
        match prepared {
            Ok((text, (config, candidates))) => {
                if candidates.is_empty() && request_is_files(request) {
                    tracing::debug!("modules folder changed, no module did");
                }
                self.publish(candidates, started);
                self.text = text;
                self.config = config;
            }
            Err(e) => {
                tracing::error!("hot swap refused, every module keeps its version: {e:#}");
                for slot in &self.slots {
                    slot.record_swap(format!("refused: {e:#}"));
                }
            }
        }
    }

    fn publish(&self, candidates: Vec<Candidate>, started: std::time::Instant) {
        for Candidate {
            slot,
            version,
            what,
        } in candidates
        {
            let generation = version.generation;
            let v = version::display(&version.loaded.descriptor.version);
            slot.current.store(Arc::new(version));
            slot.record_swap(format!("generation {generation} ({what})"));
            tracing::info!(
                module = %slot.name,
                generation,
                version = %v,
                took_ms = started.elapsed().as_millis() as u64,
                "hot swap: new sessions start on the new {what}"
            );
        }
    }

    /// Loads every changed module and checks `text` against them; returns the checked
    /// configuration and the versions to publish, or every reason to refuse.
    async fn prepare(&self, text: &str) -> Result<(Config, Vec<Candidate>)> {
        let loaded = self.load_changed().await?;
        let file = shown(&self.personality.c11n_path());
        let modules = self
            .slots
            .iter()
            .zip(&loaded)
            .map(|(slot, new)| {
                new.clone()
                    .unwrap_or_else(|| slot.current.load().loaded.clone())
            })
            .collect::<Vec<_>>();
        let config = Parsed::new(&file, text)
            .check(&vocabulary(modules.iter().map(|m| m.as_ref())))
            .map_err(|d| anyhow!("invalid configuration `{file}`:\n{d}"))?;
        let mut problems = restart_needed(&self.config, &config);
        let mut candidates = Vec::new();
        for ((slot, new), module) in self.slots.iter().zip(loaded).zip(modules) {
            match candidate(&config, slot, new.is_some(), module) {
                Ok(Some(c)) => candidates.push(c),
                Ok(None) => {}
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok((config, candidates))
    }

    /// Each slot's module reloaded from its file when the file's content changed.
    async fn load_changed(&self) -> Result<Vec<Option<Arc<LoadedModule>>>> {
        let linker = linker::build(&self.engine)?;
        // After the root drop the process runs as the service user: the cache is only
        // used if its directory belongs to that user (a root-owned one is refused).
        let cache = ComponentCache::new(ComponentCache::default_dir());
        let loader = Loader {
            engine: &self.engine,
            linker: &linker,
            cache: &cache,
        };
        self.note_added_files();
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for slot in &self.slots {
            match reload_file(&loader, slot).await {
                Ok(new) => loaded.push(new.map(Arc::new)),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("\n"));
        }
        Ok(loaded)
    }

    /// Files added at runtime are not started: say so.
    fn note_added_files(&self) {
        let dir = self.personality.modules_dir();
        for file in module_files(&dir).unwrap_or_default() {
            let known = self
                .slots
                .iter()
                .any(|s| s.current.load().loaded.path.as_deref() == Some(file.as_path()));
            if !known {
                tracing::warn!(
                    "module file {} was added while serving: a new module needs a restart",
                    file.display()
                );
            }
        }
    }
}

fn request_is_files(request: Request) -> bool {
    matches!(request, Request::Files)
}

/// The slot's module loaded again when its file now holds different bytes.
async fn reload_file(loader: &Loader<'_>, slot: &ModuleSlot) -> Result<Option<LoadedModule>> {
    let current = slot.current.load_full();
    let Some(path) = &current.loaded.path else {
        return Ok(None);
    };
    if !path.exists() {
        tracing::warn!(
            "module file {} was removed: module `{}` keeps serving until a restart",
            path.display(),
            slot.name
        );
        return Ok(None);
    }
    let source = ModuleSource::file(path)?;
    if digest(&source.wasm) == current.loaded.digest {
        return Ok(None);
    }
    let loaded = loader
        .load(&source)
        .await
        .with_context(|| format!("new version of module `{}` not loaded", slot.name))?;
    if loaded.name() != slot.name {
        bail!(
            "{} now holds a module named `{}`, not `{}`: renaming a module needs a restart",
            path.display(),
            loaded.name(),
            slot.name
        );
    }
    Ok(Some(loaded))
}

/// The new version of one slot, if its module or its section changed.
fn candidate(
    config: &Config,
    slot: &Arc<ModuleSlot>,
    new_module: bool,
    module: Arc<LoadedModule>,
) -> Result<Option<Candidate>> {
    let current = slot.current.load_full();
    let section = module_section(config, &module)?;
    let old_section = current.context.section.as_deref();
    let section_changed = old_section.is_none_or(|old| old.values != section.values);
    if !new_module && !section_changed {
        return Ok(None);
    }
    let options = SessionOptions::from_section(&config.file, &section)?;
    if options != slot.options {
        bail!(
            "module `{}`: its session options (threads, sessions, timeouts) changed: restart needed",
            slot.name
        );
    }
    let changed = privileged_changes(&module, old_section, &section);
    if !changed.is_empty() {
        bail!(
            "module `{}`: {} changed: restart needed (ports, addresses, files and directories are opened as root)",
            slot.name,
            changed.join(", ")
        );
    }
    let context = if section_changed {
        carry_over(&current.context, &module, section)
    } else {
        current.context.clone()
    };
    let what = match (new_module, section_changed) {
        (true, true) => "module and configuration",
        (true, false) => "module",
        _ => "configuration",
    };
    let version = ModuleVersion {
        generation: current.generation + 1,
        loaded: module,
        context,
    };
    Ok(Some(Candidate {
        slot: slot.clone(),
        version,
        what,
    }))
}

/// The module's options whose values the host acted on as root, and which differ.
fn privileged_changes(module: &LoadedModule, old: Option<&Section>, new: &Section) -> Vec<String> {
    let privileged = |name: &str| {
        let ty = module
            .spec
            .options
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.ty);
        let terminal = module
            .descriptor
            .vocabulary
            .iter()
            .any(|o| o.name == name && o.option_type == WitType::Terminal);
        terminal
            || matches!(
                ty,
                Some(
                    OptionType::Port
                        | OptionType::Address
                        | OptionType::Directory
                        | OptionType::File
                        | OptionType::DatabaseRef
                )
            )
    };
    module
        .spec
        .options
        .iter()
        .map(|o| o.name.as_str())
        .filter(|name| privileged(name))
        .filter(|name| old.and_then(|s| s.get(name)) != new.get(name))
        .map(|name| format!("`{name}`"))
        .collect()
}

/// Global options and database sections are applied once, before the root drop.
fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if old.globals.values != new.globals.values {
        problems.push(format!(
            "{}: global options changed: restart needed",
            new.file
        ));
    }
    let databases = |c: &Config| {
        c.sections_named("database")
            .map(|s| (s.title.clone(), s.values.clone()))
            .collect::<Vec<_>>()
    };
    if databases(old) != databases(new) {
        problems.push(format!(
            "{}: database sections changed: restart needed",
            new.file
        ));
    }
    problems
}

/// A context for the new section that keeps what the host opened for the module: its
/// granted files, directories, terminal and database pools. Guest heaps start empty.
fn carry_over(old: &ModuleContext, module: &LoadedModule, section: Section) -> Arc<ModuleContext> {
    let section = Arc::new(section);
    let grants = Grants::of(&module.spec, &section, old.grants.fs.clone());
    let context = ModuleContext::new(&old.name, Some(section), grants);
    *context.terminal.lock().unwrap_or_else(|p| p.into_inner()) = old.terminal();
    if let Some(directories) = old.directories.get() {
        let _ = context.directories.set(directories.clone());
    }
    if let Some(databases) = old.databases.get() {
        let _ = context.databases.set(databases.clone());
    }
    context
}
