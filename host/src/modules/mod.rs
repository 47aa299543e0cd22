//! The module registry: finding a personality's modules (files in `modules/` and
//! built-ins), loading them (compile, version rule, describe, construct), and the
//! versions sessions run on.

pub mod builtin;
pub mod instance;
pub mod load;
pub mod source;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::contract::bindings::ModulePre;
use crate::guest_host::state::{InstanceState, ModuleContext};
use crate::sessions::options::SessionOptions;
use crate::sessions::stats::SessionStats;

pub use load::LoadedModule;

/// One configured version of a module: its compiled code plus the configuration it runs
/// with. Sessions pin the version they started on, so a swap (a later issue) never
/// changes code under a live session.
pub struct ModuleVersion {
    /// Counts up from 1 with each swap.
    pub generation: u64,
    /// The compiled module and its descriptor.
    pub loaded: Arc<LoadedModule>,
    /// Its checked configuration and grants.
    pub context: Arc<ModuleContext>,
}

impl ModuleVersion {
    /// The pre-instantiated component sessions are created from.
    pub fn pre(&self) -> &ModulePre<InstanceState> {
        &self.loaded.pre
    }
}

/// A module as the server runs it: the current version behind an atomic pointer, its
/// session options and counters.
pub struct ModuleSlot {
    /// Module and section name.
    pub name: String,
    /// The version new sessions start on.
    pub current: ArcSwap<ModuleVersion>,
    /// Its host session options.
    pub options: SessionOptions,
    /// Its session counters.
    pub stats: SessionStats,
}
