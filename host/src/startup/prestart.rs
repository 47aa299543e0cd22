//! Step 7: each module's `prestart`, serially, while the process is still root. The
//! module's requests (binds) are carried out by the host and kept by it.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use super::Loaded;
use crate::guest_host::state::{Phase, PrestartResults};
use crate::listeners::BoundListener;
use crate::maildrops::GrantedDirectory;
use crate::modules::instance;
use crate::modules::load::hook_state;

/// What prestart produced for one module: its listeners and the directories the host
/// opened for its `directory` options.
pub struct Prestarted {
    /// Listeners, by id.
    pub listeners: Vec<BoundListener>,
    /// Opened directories.
    pub directories: Arc<Vec<GrantedDirectory>>,
}

/// Runs every module's prestart; returns what each produced, in module order.
pub async fn prestart_all(loaded: &Loaded) -> Result<Vec<Prestarted>> {
    let mut all = Vec::new();
    for configured in &loaded.modules {
        let name = configured.module.name();
        let context = configured.context();
        let directories = context
            .grants
            .directories
            .iter()
            .map(|(option, path)| GrantedDirectory::open(option, &loaded.dir.join(path)))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("module `{name}`: prestart"))?;
        let state = hook_state(context, Phase::Prestart(PrestartResults::default()));
        let (mut store, instance) =
            instance::create(&loaded.engine, &configured.module.pre, state).await?;
        let outcome = instance
            .call_prestart(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| format!("module `{name}` trapped in prestart"))?;
        let Phase::Prestart(mut results) =
            std::mem::replace(&mut store.data_mut().phase, Phase::Unprivileged)
        else {
            unreachable!("the phase is Prestart until replaced here")
        };
        if let Err(message) = outcome {
            // Keep the operating system's error as the cause: it decides the exit code.
            let context = format!("module `{name}` failed in prestart: {message}");
            return Err(match results.failures.pop() {
                Some(cause) => cause.context(context),
                None => anyhow!(context),
            });
        }
        all.push(Prestarted {
            listeners: results.listeners,
            directories: Arc::new(directories),
        });
    }
    Ok(all)
}
