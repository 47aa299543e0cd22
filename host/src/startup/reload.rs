//! Hot swap while serving: a host thread rereads changed module files (and, on SIGHUP,
//! `c11n`), loads and checks them off the serving path, and publishes the new module
//! versions all together or not at all. Nothing privileged is redone: a new version reuses
//! the listeners, directories, terminal and database pools the host already holds, and does
//! not run `prestart`; a change that would need them redone is refused ("restart needed").
//! Files added to or removed from `modules/` start or stop modules (`membership`).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use anyhow::{Context, Result, anyhow, bail};
use serverkit_c11n::{Config, Parsed};
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::HeldModule;
use super::load::vocabulary;
use super::membership::{self, Serving, SlotChange, launch};
use super::swap_rules::{Candidate, candidate, restart_needed};
use crate::capabilities::listen::BoundListener;
use crate::contract::version;
use crate::engine::ComponentCache;
use crate::instance::{InstanceState, linker};
use crate::meter::ProcessDescriptors;
use crate::modules::load::{LoadedModule, Loader};
use crate::personality::{Personality, shown};
use crate::sessions::slot::ModuleSlot;

/// What a refusal adds about the files left in `modules/`: the old versions keep serving,
/// but `serverkit check` and the next restart load the files as they are.
fn refused_files_note(files: &[std::path::PathBuf]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let names: Vec<String> = files.iter().map(|f| format!("`{}`", f.display())).collect();
    format!(
        "\nnote: the refused file{s} {names} stay{verb} in modules/: `serverkit check` and the next \
         restart fail on {it} while the old version serves; remove {it} or replace {it} with a \
         fixed build (preflight one with `serverkit check PERSONALITY --module FILE`)",
        s = if files.len() == 1 { "" } else { "s" },
        names = names.join(", "),
        verb = if files.len() == 1 { "s" } else { "" },
        it = if files.len() == 1 { "it" } else { "them" },
    )
}

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
    /// Its instance pool, sized at startup: modules added while serving must fit it.
    pub pool: crate::engine::PoolPlan,
    /// The descriptors modules share, which a module added while serving shares too.
    pub process: ProcessDescriptors,
    /// The process's compile cache (opened as root before the drop).
    pub cache: Arc<ComponentCache>,
    /// Where `c11n` and `modules/` are.
    pub personality: Personality,
    /// Every module being served.
    pub slots: Vec<Arc<ModuleSlot>>,
    /// The text of the configuration in force.
    pub text: String,
    /// The configuration in force.
    pub config: Config,
    /// What starting and stopping modules needs; set when serving starts.
    pub serving: Option<Serving>,
    /// Modules removed while serving: their sections may stay in `c11n` until it is
    /// edited, so their vocabulary still checks it (a restart would refuse them).
    pub removed: Vec<Arc<LoadedModule>>,
    /// Modules removed while serving whose sessions may still be draining: their live
    /// sessions hold pool instances that a module added meanwhile cannot have.
    pub retiring: Vec<std::sync::Weak<ModuleSlot>>,
    /// `modules/` as it was just before startup loaded the modules: what the watcher
    /// compares with first.
    pub files_at_load: crate::modules::watch::Baseline,
}

/// What the reload thread works with, made by [`Reloader::make_tools`].
pub struct ReloadTools {
    runtime: tokio::runtime::Runtime,
    linker: Linker<InstanceState>,
}

/// A reload's changes, all checked: applied together or not at all.
struct Plan {
    config: Config,
    swaps: Vec<Candidate>,
    added: Vec<(HeldModule, Vec<BoundListener>)>,
    removed: Vec<Arc<ModuleSlot>>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.swaps.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

impl Reloader {
    /// Makes the reload thread's runtime and linker. Called before any module serves, so
    /// that a failure stops startup before a client is accepted, and so that once the
    /// server says it is serving, hot swap is ready and holds every descriptor it will hold
    /// (a runtime made later on the thread was four descriptors a leak check could see
    /// appear).
    pub fn make_tools(&self) -> Result<ReloadTools> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the reload runtime")?;
        let linker =
            linker::build(&self.engine).context("failed to build the reload thread's linker")?;
        Ok(ReloadTools { runtime, linker })
    }

    /// Starts the reload thread with `tools` (after the privilege drop: it runs
    /// unprivileged) and returns where to send requests; the thread ends when every sender
    /// is gone.
    pub fn start(self, tools: ReloadTools) -> Result<Sender<Request>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || self.run(&tools.runtime, &tools.linker, rx))
            .context("failed to start the reload thread")?;
        Ok(tx)
    }

    fn run(
        mut self,
        runtime: &tokio::runtime::Runtime,
        linker: &Linker<InstanceState>,
        requests: Receiver<Request>,
    ) {
        let cache = self.cache.clone();
        let engine = self.engine.clone();
        let loader = Loader {
            engine: &engine,
            linker,
            cache: &cache,
        };
        while let Ok(request) = requests.recv() {
            runtime.block_on(self.handle(&loader, request));
        }
    }

    async fn handle(&mut self, loader: &Loader<'_>, request: Request) {
        let started = std::time::Instant::now();
        // A new module file is a configuration change: its section is read from `c11n` as
        // it is now, as SIGHUP would.
        let added = membership::has_new_files(&self.personality.modules_dir(), &self.slots);
        let text = match request {
            Request::Files if !added => Ok(self.text.clone()),
            _ => self.personality.read_c11n(),
        };
        let prepared = match text {
            Ok(text) => self.prepare(loader, &text).await.map(|p| (text, p)),
            Err(e) => Err(e),
        };
        match prepared {
            Ok((text, plan)) => {
                if plan.is_empty() {
                    match request {
                        Request::Files => tracing::debug!("modules folder changed, no module did"),
                        Request::All => tracing::info!("reload: no module and no option changed"),
                    }
                }
                self.text = text;
                self.config = plan.config.clone();
                self.apply(plan, started);
            }
            Err(e) => {
                let stays = refused_files_note(&membership::unserved_files(
                    &self.personality.modules_dir(),
                    &self.slots,
                ));
                tracing::error!("hot swap refused, every module keeps its version: {e:#}{stays}");
                for slot in &self.slots {
                    slot.record_swap(format!("refused: {e:#}"));
                }
            }
        }
    }

    fn apply(&mut self, plan: Plan, started: std::time::Instant) {
        self.publish(plan.swaps, started);
        for slot in plan.removed {
            self.remove(&slot);
        }
        let Some(serving) = &self.serving else {
            return;
        };
        for (configured, listeners) in plan.added {
            let name = configured.module.name().to_string();
            match launch(serving, &self.engine, configured, listeners) {
                Ok(slot) => {
                    slot.record_swap("generation 1 (module added while serving)".into());
                    tracing::info!(module = %name, took_ms = started.elapsed().as_millis() as u64, "module added while serving: started");
                    self.removed.retain(|m| m.name() != name);
                    self.slots.push(slot);
                }
                Err(e) => {
                    tracing::error!("module `{name}` added while serving did not start: {e:#}")
                }
            }
        }
    }

    /// Sessions of removed modules still running: each holds a pool instance.
    fn draining_sessions(&self) -> usize {
        self.retiring
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|slot| slot.live.len())
            .sum()
    }

    /// Stops a module whose file was removed: no new sessions, live ones drain.
    fn remove(&mut self, slot: &Arc<ModuleSlot>) {
        let drain = self.drain_timeout();
        if let Some(serving) = &self.serving {
            serving.servers.retire(&slot.name, drain);
        }
        self.slots.retain(|s| !Arc::ptr_eq(s, slot));
        self.retiring.retain(|s| s.strong_count() > 0);
        self.retiring.push(Arc::downgrade(slot));
        self.removed.push(slot.current.load().loaded.clone());
        let note = if self.config.sections_named(&slot.name).next().is_some() {
            format!(
                "; `{}` still configures it: remove its section before the next restart",
                shown(&self.personality.c11n_path())
            )
        } else {
            String::new()
        };
        tracing::warn!(module = %slot.name, "module file removed: no new sessions, live ones drain, then it stops{note}");
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

    /// Loads every changed module file and checks `text` against the modules that would
    /// then run; returns every change to make, or every reason to refuse them.
    async fn prepare(&self, loader: &Loader<'_>, text: &str) -> Result<Plan> {
        let file = shown(&self.personality.c11n_path());
        let parsed = Parsed::new(&file, text);
        let sections = parsed.document.section_names();
        let dir = self.personality.modules_dir();
        let changes = membership::scan(loader, &dir, &self.slots, &sections).await?;
        let mut running: Vec<Arc<LoadedModule>> = Vec::new();
        for (slot, change) in self.slots.iter().zip(&changes.slots) {
            match change {
                SlotChange::Keep => running.push(slot.current.load().loaded.clone()),
                SlotChange::Replace(new) => running.push(new.clone()),
                SlotChange::Remove => {}
            }
        }
        running.extend(changes.added.iter().cloned());
        let removed = self
            .slots
            .iter()
            .zip(&changes.slots)
            .filter(|(_, c)| matches!(c, SlotChange::Remove))
            .map(|(slot, _)| slot.current.load().loaded.clone());
        let mut vocabulary_of = running.clone();
        for gone in self.removed.iter().cloned().chain(removed) {
            if !vocabulary_of.iter().any(|m| m.name() == gone.name()) {
                vocabulary_of.push(gone);
            }
        }
        let config = parsed
            .check(&vocabulary(vocabulary_of.iter().map(|m| m.as_ref())))
            .map_err(|d| anyhow!("invalid configuration `{file}`:\n{d}"))?;
        let mut problems = restart_needed(&self.config, &config);
        let mut plan = Plan {
            config,
            swaps: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
        };
        for (slot, change) in self.slots.iter().zip(changes.slots) {
            let (new_module, module) = match change {
                SlotChange::Keep => (false, slot.current.load().loaded.clone()),
                SlotChange::Replace(module) => (true, module),
                SlotChange::Remove => {
                    plan.removed.push(slot.clone());
                    continue;
                }
            };
            match candidate(
                &plan.config,
                &self.personality.dir,
                slot,
                new_module,
                module,
            ) {
                Ok(Some(c)) => plan.swaps.push(c),
                Ok(None) => {}
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        if !changes.added.is_empty() {
            let Some(serving) = &self.serving else {
                bail!("modules cannot be added before serving starts");
            };
            for module in changes.added {
                let dir = &self.personality.dir;
                let prepared = membership::prepare_added(
                    &plan.config,
                    dir,
                    serving,
                    (&self.engine, &self.process),
                    module,
                );
                match prepared.await {
                    Ok(added) => plan.added.push(added),
                    Err(e) => problems.push(format!("{e:#}")),
                }
            }
            let added: Vec<_> = plan.added.iter().map(|(m, _)| m).collect();
            let draining = self.draining_sessions();
            if let Err(e) = membership::check_capacity(&self.slots, &added, &self.pool, draining) {
                problems.push(format!("{e:#}"));
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::refused_files_note;

    #[test]
    fn the_refusal_names_the_files_left_behind() {
        assert_eq!(refused_files_note(&[]), "");
        let one = refused_files_note(&["p/modules/kv.wasm".into()]);
        assert!(
            one.contains("the refused file `p/modules/kv.wasm` stays in modules/"),
            "{one}"
        );
        assert!(one.contains("remove it or replace it"), "{one}");
        assert!(
            one.contains("serverkit check PERSONALITY --module FILE"),
            "{one}"
        );
        let two = refused_files_note(&["a.wasm".into(), "b.wasm".into()]);
        assert!(two.contains("files `a.wasm`, `b.wasm` stay in"), "{two}");
    }
}
