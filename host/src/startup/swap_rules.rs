//! The rules a new module version must pass before it is published: nothing the host did
//! as root (listeners, files, directories, terminal, certificates, pools, identity) may need
//! redoing. What its section grants is decided again and must be what the module holds;
//! the new version then carries the module's holdings whole (`holdings`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use serverkit_c11n::Config;

use super::load::module_section;
use crate::holdings::Grants;
use crate::modules::ModuleVersion;
use crate::modules::load::LoadedModule;
use crate::options::session::SessionOptions;
use crate::options::vocabulary::METRICS_SECTION;
use crate::sessions::slot::ModuleSlot;

/// A new version ready to publish.
pub(super) struct Candidate {
    pub slot: Arc<ModuleSlot>,
    pub version: ModuleVersion,
    pub what: &'static str,
}

/// The new version of one slot, if its module or its section changed. `base` is the
/// personality directory, which relative paths are resolved against.
pub(super) fn candidate(
    config: &Config,
    base: &Path,
    slot: &Arc<ModuleSlot>,
    new_module: bool,
    module: Arc<LoadedModule>,
) -> Result<Option<Candidate>> {
    let current = slot.current.load_full();
    let (section, written) = module_section(config, &module)?;
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
    let grants = Grants::decide(&module.spec, &section, written, base);
    let changed = grants.changes_from(&current.context.holdings.grants);
    if !changed.is_empty() {
        bail!(
            "module `{}`: what its section grants changed ({}): restart needed (ports, addresses, directories, files, terminals, certificates and keys are opened as root)",
            slot.name,
            changed.join(", ")
        );
    }
    let context = if section_changed {
        current.context.reconfigured(section)
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

/// Global options, database sections and the metrics section are applied once, before the
/// root drop.
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
    let metrics = |c: &Config| c.section(METRICS_SECTION).map(|s| s.values.clone());
    if metrics(old) != metrics(new) {
        problems.push(format!(
            "{}: the metrics section changed: restart needed",
            new.file
        ));
    }
    problems
}
