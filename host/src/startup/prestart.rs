//! Step 7: each module's `prestart`, serially, while the process is still root. The
//! module's requests (binds) are carried out by the host and kept by it.

use anyhow::{Context, Result, anyhow};

use super::Loaded;
use crate::guest_host::state::{Phase, PrestartResults};
use crate::listeners::BoundListener;
use crate::modules::instance;
use crate::modules::load::hook_state;

/// Runs every module's prestart; returns each module's listeners, in module order.
pub async fn prestart_all(loaded: &Loaded) -> Result<Vec<Vec<BoundListener>>> {
    let mut all = Vec::new();
    for configured in &loaded.modules {
        let name = configured.module.name();
        let state = hook_state(
            configured.context(),
            Phase::Prestart(PrestartResults::default()),
        );
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
        all.push(results.listeners);
    }
    Ok(all)
}
