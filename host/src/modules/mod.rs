//! The module registry: finding a personality's modules (files in `modules/` and
//! built-ins), loading them (compile, version rule, describe, construct), and the
//! versions sessions run on (a module as served, with its current version, is a
//! `sessions::slot::ModuleSlot`).

pub mod builtin;
pub mod load;
pub mod source;
pub mod watch;

use std::sync::Arc;

use crate::contract::bindings::ModulePre;
use crate::holdings::ModuleContext;
use crate::instance::InstanceState;

pub use load::LoadedModule;

/// One configured version of a module: its compiled code plus the configuration it runs
/// with. Sessions pin the version they started on, so a hot swap never changes code
/// under a live session.
pub struct ModuleVersion {
    /// Counts up from 1 with each swap.
    pub generation: u64,
    /// The compiled module and its descriptor.
    pub loaded: Arc<LoadedModule>,
    /// Its checked configuration and grants.
    pub context: Arc<ModuleContext>,
    /// When its sessions must end: set when a swap replaces it and `swap_drain_timeout`
    /// bounds how long they may still run.
    pub drain_deadline: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

impl ModuleVersion {
    /// A version with no drain deadline.
    pub fn new(generation: u64, loaded: Arc<LoadedModule>, context: Arc<ModuleContext>) -> Self {
        ModuleVersion {
            generation,
            loaded,
            context,
            drain_deadline: tokio::sync::watch::Sender::new(None),
        }
    }

    /// Resolves when the version's drain deadline passes (never, if none is set).
    pub async fn drained(&self) {
        let mut deadline = self.drain_deadline.subscribe();
        loop {
            let at = *deadline.borrow_and_update();
            match at {
                Some(at) => return tokio::time::sleep_until(at).await,
                None if deadline.changed().await.is_err() => return std::future::pending().await,
                None => {}
            }
        }
    }

    /// The pre-instantiated component sessions are created from.
    pub fn pre(&self) -> &ModulePre<InstanceState> {
        &self.loaded.pre
    }
}
