//! Hot swap while serving: a host thread rereads changed module files (and, on SIGHUP,
//! `c11n`), loads and checks them off the serving path, and publishes the new module
//! versions all together or not at all. Nothing privileged is redone: a new version reuses
//! the listeners, directories, terminal and database pools the host already holds, and does
//! not run `prestart`; a change that would need them redone is refused ("restart needed").

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use anyhow::{Context, Result, anyhow, bail};
use serverkit_c11n::{Config, Parsed};
use wasmtime::Engine;

use super::load::vocabulary;
use super::swap_rules::{Candidate, candidate, restart_needed};
use crate::contract::version;
use crate::engine::ComponentCache;
use crate::guest_host::linker;
use crate::modules::ModuleSlot;
use crate::modules::load::{LoadedModule, Loader, digest};
use crate::modules::source::{ModuleSource, module_files};
use crate::personality::{Personality, shown};

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
        let linker = match linker::build(&self.engine) {
            Ok(linker) => linker,
            Err(e) => return tracing::error!("hot swap disabled: {e:#}"),
        };
        // After the root drop the process runs as the service user: the cache is used only
        // if its directory belongs to that user (a root-owned one is refused, and swaps
        // compile without it; see docs/architecture.md).
        let cache = ComponentCache::new(ComponentCache::default_dir());
        let engine = self.engine.clone();
        let loader = Loader {
            engine: &engine,
            linker: &linker,
            cache: &cache,
        };
        while let Ok(request) = requests.recv() {
            runtime.block_on(self.handle(&loader, request));
        }
    }

    async fn handle(&mut self, loader: &Loader<'_>, request: Request) {
        let started = std::time::Instant::now();
        let text = match request {
            Request::Files => Ok(self.text.clone()),
            Request::All => self.personality.read_c11n(),
        };
        let prepared = match text {
            Ok(text) => self.prepare(loader, &text).await.map(|p| (text, p)),
            Err(e) => Err(e),
        };
        match prepared {
            Ok((text, (config, candidates))) => {
                if candidates.is_empty() {
                    match request {
                        Request::Files => tracing::debug!("modules folder changed, no module did"),
                        Request::All => tracing::info!("reload: no module and no option changed"),
                    }
                }
                self.text = text;
                self.config = config;
                self.publish(candidates, started);
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
            slot.publish(version, self.drain_timeout());
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

    /// How long sessions on a replaced version may still run (`swap_drain_timeout`; 0 for
    /// no bound).
    fn drain_timeout(&self) -> Option<std::time::Duration> {
        let seconds = self
            .config
            .globals
            .int(super::SWAP_DRAIN_TIMEOUT_KEY)
            .unwrap_or(0);
        (seconds > 0).then(|| std::time::Duration::from_secs(seconds as u64))
    }

    /// Loads every changed module and checks `text` against them; returns the checked
    /// configuration and the versions to publish, or every reason to refuse.
    async fn prepare(&self, loader: &Loader<'_>, text: &str) -> Result<(Config, Vec<Candidate>)> {
        let loaded = self.load_changed(loader).await?;
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
    async fn load_changed(&self, loader: &Loader<'_>) -> Result<Vec<Option<Arc<LoadedModule>>>> {
        self.note_added_files();
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for slot in &self.slots {
            match reload_file(loader, slot).await {
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
