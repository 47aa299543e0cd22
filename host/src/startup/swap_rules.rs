//! The rules a new module version must pass before it is published: nothing the host
//! did as root (listeners, files, directories, terminal, pools, identity) may need redoing,
//! and its context carries over what the host opened for the module.

use std::sync::Arc;

use anyhow::{Result, bail};
use serverkit_c11n::{Config, OptionType, Section};

use super::load::module_section;
use crate::contract::bindings::types::OptionType as WitType;
use crate::guest_host::state::{Grants, ModuleContext};
use crate::modules::ModuleVersion;
use crate::modules::load::LoadedModule;
use crate::sessions::options::SessionOptions;
use crate::sessions::slot::ModuleSlot;

/// A new version ready to publish.
pub(super) struct Candidate {
    pub slot: Arc<ModuleSlot>,
    pub version: ModuleVersion,
    pub what: &'static str,
}

/// The new version of one slot, if its module or its section changed.
pub(super) fn candidate(
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
            "module `{}`: its session options (threads, sessions, timeouts, limits) changed: restart needed",
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
    let version = ModuleVersion::new(current.generation + 1, module, context);
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
pub(super) fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
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
/// granted files, directories, terminal and database pools, and its limits with the memory
/// its live instances hold. Guest heaps start empty.
fn carry_over(old: &ModuleContext, module: &LoadedModule, section: Section) -> Arc<ModuleContext> {
    let section = Arc::new(section);
    let grants = Grants::of(&module.spec, &section, old.grants.fs.clone());
    let context = ModuleContext::new(&old.name, Some(section), grants, old.limits.clone());
    *context.terminal.lock().unwrap_or_else(|p| p.into_inner()) = old.terminal();
    if let Some(directories) = old.directories.get() {
        let _ = context.directories.set(directories.clone());
    }
    if let Some(databases) = old.databases.get() {
        let _ = context.databases.set(databases.clone());
    }
    context
}
