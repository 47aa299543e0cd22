//! Modules added to or removed from `modules/` while serving. A new file starts as a new
//! module when it needs nothing privileged (it runs `prestart` unprivileged, so the
//! operating system refuses a port below 1024 or a root-only file). A removed file's
//! module stops accepting, drains and stops, or falls back to the built-in of its name
//! when the configuration names one: what a restart would do.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serverkit_c11n::Config;
use tokio::sync::watch;
use wasmtime::Engine;

use super::load::module_section;
use super::pool::{Misfit, misfit};
use super::prestart::prestart_one;
use super::{ConfiguredModule, HeldModule};
use crate::capabilities::listen::BoundListener;
use crate::capabilities::stats::ReportSource;
use crate::databases::Databases;
use crate::engine::PoolPlan;
use crate::heaps::HeapRegistry;
use crate::meter::ProcessDescriptors;
use crate::modules::ModuleVersion;
use crate::modules::load::{LoadedModule, Loader, digest};
use crate::modules::source::{ModuleSource, module_files};
use crate::options::session::SessionOptions;
use crate::sessions::running::RunningServers;
use crate::sessions::server::ModuleServer;
use crate::sessions::slot::ModuleSlot;

/// What starting and stopping modules while serving needs.
pub struct Serving {
    /// The running module servers.
    pub servers: Arc<RunningServers>,
    /// Where each module's session heap is registered for the report.
    pub heaps: HeapRegistry,
    /// The database pools, opened at startup.
    pub databases: Arc<Databases>,
    /// The status report, for modules that read it.
    pub report: Arc<dyn ReportSource>,
    /// The process's stop, which new servers watch too.
    pub stopping: watch::Receiver<bool>,
}

/// What became of one running module's file.
#[derive(Clone)]
pub(super) enum SlotChange {
    Keep,
    Replace(Arc<LoadedModule>),
    Remove,
}

/// The `modules/` folder compared with the running modules.
pub(super) struct FileChanges {
    /// One entry per running module, in slot order.
    pub slots: Vec<SlotChange>,
    /// Modules in files that no running module came from.
    pub added: Vec<Arc<LoadedModule>>,
}

/// Whether `dir` holds a module file no running module came from.
pub(super) fn has_new_files(dir: &Path, slots: &[Arc<ModuleSlot>]) -> bool {
    module_files(dir)
        .unwrap_or_default()
        .iter()
        .any(|file| !slots.iter().any(|s| from_file(s, file)))
}

/// The module files in `dir` that no running module serves as they are now: new files, and
/// files whose content differs from the version their module runs. After a refused swap
/// these are the files that `serverkit check` and the next restart would load.
pub(super) fn unserved_files(dir: &Path, slots: &[Arc<ModuleSlot>]) -> Vec<std::path::PathBuf> {
    let serves = |file: &Path| {
        slots.iter().any(|s| {
            let current = s.current.load();
            current.loaded.path.as_deref() == Some(file)
                && std::fs::read(file).is_ok_and(|wasm| digest(&wasm) == current.loaded.digest)
        })
    };
    module_files(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|file| !serves(file))
        .collect()
}

fn from_file(slot: &ModuleSlot, file: &Path) -> bool {
    slot.current.load().loaded.path.as_deref() == Some(file)
}

/// Loads what changed in `dir`: replaced files, new files (new modules, or a file that now
/// overrides a built-in), and removed files. `sections` are the configuration's section
/// names, which decide whether a removed file falls back to a built-in.
pub(super) async fn scan(
    loader: &Loader<'_>,
    dir: &Path,
    slots: &[Arc<ModuleSlot>],
    sections: &[String],
) -> Result<FileChanges> {
    let mut changes = FileChanges {
        slots: vec![SlotChange::Keep; slots.len()],
        added: Vec::new(),
    };
    let mut errors = Vec::new();
    let path_of = |slot: &ModuleSlot| slot.current.load().loaded.path.clone();
    for file in module_files(dir)? {
        if slots.iter().any(|s| from_file(s, &file)) {
            continue;
        }
        let loaded = match loader.load(&ModuleSource::file(&file)?).await {
            Ok(loaded) => Arc::new(loaded),
            Err(e) => {
                errors.push(format!("module file {} not loaded: {e:#}", file.display()));
                continue;
            }
        };
        match slots.iter().position(|s| s.name == loaded.name()) {
            // It overrides a built-in, or the module's file was renamed.
            Some(i) if path_of(&slots[i]).is_none_or(|p| !p.exists()) => {
                changes.slots[i] = SlotChange::Replace(loaded);
            }
            Some(i) => errors.push(format!(
                "{} holds module `{}`, which {} already provides: one file per module",
                file.display(),
                loaded.name(),
                path_of(&slots[i]).unwrap_or_default().display()
            )),
            None if changes.added.iter().any(|m| m.name() == loaded.name()) => {
                errors.push(format!(
                    "{} holds module `{}` a second time",
                    file.display(),
                    loaded.name()
                ))
            }
            None => changes.added.push(loaded),
        }
    }
    for (slot, change) in slots.iter().zip(&mut changes.slots) {
        if matches!(change, SlotChange::Keep) {
            match file_change(loader, slot, sections).await {
                Ok(new) => *change = new,
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(changes)
}

/// What became of the file `slot`'s module was loaded from.
async fn file_change(
    loader: &Loader<'_>,
    slot: &ModuleSlot,
    sections: &[String],
) -> Result<SlotChange> {
    let current = slot.current.load_full();
    let Some(path) = &current.loaded.path else {
        return Ok(SlotChange::Keep);
    };
    if !path.exists() {
        let configured = sections.contains(&slot.name);
        return Ok(match ModuleSource::builtin(&slot.name) {
            Some(builtin) if configured => SlotChange::Replace(Arc::new(
                loader.load(&builtin).await.with_context(|| {
                    format!(
                        "built-in `{}` not loaded in place of its removed file",
                        slot.name
                    )
                })?,
            )),
            _ => SlotChange::Remove,
        });
    }
    let source = ModuleSource::file(path)?;
    if digest(&source.wasm) == current.loaded.digest {
        return Ok(SlotChange::Keep);
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
    Ok(SlotChange::Replace(Arc::new(loaded)))
}

/// Configures a module added while serving, opens what it is granted and runs its
/// prestart, unprivileged.
pub(super) async fn prepare_added(
    config: &Config,
    dir: &Path,
    serving: &Serving,
    (engine, process): (&Engine, &ProcessDescriptors),
    module: Arc<LoadedModule>,
) -> Result<(HeldModule, Vec<BoundListener>)> {
    let name = module.name().to_string();
    let (section, written) = module_section(config, &module)?;
    let options = SessionOptions::from_section(&config.file, &section)?;
    let configured = ConfiguredModule::new(module, section, written, options, dir);
    let not_started = || {
        format!(
            "module `{name}`, added while serving, cannot start without a restart (what it asks for may need root)"
        )
    };
    let held = configured.hold(process).with_context(not_started)?;
    serving.equip(&held);
    let listeners = prestart_one(engine, &held)
        .await
        .with_context(not_started)?;
    Ok((held, listeners))
}

/// Whether `added` more modules fit the instance pool (`pool`, sized at startup) beside
/// `slots` and the `draining` sessions of removed modules, which hold instances until
/// they end. Room for modules added while serving is made with the global
/// `instance_capacity`.
pub(super) fn check_capacity(
    slots: &[Arc<ModuleSlot>],
    added: &[&HeldModule],
    pool: &PoolPlan,
    draining: usize,
) -> Result<()> {
    let running = slots.iter().map(|s| (s.name.as_str(), &s.options));
    let new = added.iter().map(|m| (m.module.name(), &m.options));
    match misfit(pool, running.chain(new), draining) {
        None => Ok(()),
        Some(Misfit::Capacity { sessions, hooks }) if draining > 0 => bail!(
            "the added modules would bring `max_sessions` to {sessions} (plus {hooks} instances for operators and hooks), and {draining} sessions of removed modules still hold instances while they drain: more than the {} instances of the pool sized at startup; add the module again (SIGHUP) once they have ended, or start with a larger `instance_capacity`",
            pool.capacity
        ),
        Some(Misfit::Capacity { sessions, hooks }) => bail!(
            "the added modules would bring `max_sessions` to {sessions} (plus {hooks} instances for operators and hooks), more than the {} instances of the pool sized at startup: restart needed, or start with a larger `instance_capacity`",
            pool.capacity
        ),
        Some(Misfit::Memory { module, asked_mb }) => bail!(
            "module `{module}` asks for `instance_memory_mb` = {asked_mb}, more than the pool's slots ({} MiB): restart needed",
            pool.instance_memory >> 20
        ),
    }
}

impl Serving {
    /// Gives a module what exists only once serving has started: the database pools and
    /// the status report.
    fn equip(&self, held: &HeldModule) {
        let holdings = &held.context.holdings;
        let _ = holdings.databases.set(self.databases.clone());
        let _ = holdings.report.set(self.report.clone());
    }
}

/// Starts serving a held module at generation 1: its slot, pool and accept loops.
pub fn launch(
    serving: &Serving,
    engine: &Engine,
    held: HeldModule,
    listeners: Vec<BoundListener>,
) -> Result<Arc<ModuleSlot>> {
    let name = held.module.name().to_string();
    serving.equip(&held);
    let version = ModuleVersion::new(1, held.module.clone(), held.context.clone());
    let slot = Arc::new(ModuleSlot::new(
        &name,
        version,
        held.options,
        &serving.heaps,
    ));
    let server = ModuleServer::start(engine, slot.clone(), listeners, serving.stopping.clone())?;
    serving.servers.add(server);
    Ok(slot)
}
