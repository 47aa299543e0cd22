//! Step 7: each module's `prestart`, serially, while the process is still root. The
//! module's requests (binds, TLS) are carried out by the host and kept by it.

use anyhow::{Context, Result, anyhow};
use wasmtime::Engine;

use super::HeldModule;
use crate::capabilities::listen::BoundListener;
use crate::capabilities::listen::host::PrestartResults;
use crate::capabilities::log::{MAX_LOG_MESSAGE_BYTES, truncate};
use crate::instance::{self, Phase};
use crate::modules::load::hook_state;

/// Runs every module's prestart; returns each module's listeners, in module order.
pub async fn prestart_all(
    engine: &Engine,
    modules: &[HeldModule],
) -> Result<Vec<Vec<BoundListener>>> {
    let mut all = Vec::new();
    for held in modules {
        all.push(prestart_one(engine, held).await?);
    }
    Ok(all)
}

/// One module's prestart, with the binds and TLS its section grants. As root at startup;
/// unprivileged for a module added while serving, where the operating system refuses what
/// needs root.
pub async fn prestart_one(engine: &Engine, held: &HeldModule) -> Result<Vec<BoundListener>> {
    let name = held.module.name();
    let prestart = Phase::Prestart(PrestartResults::default());
    let state = hook_state(held.context.clone(), prestart)?;
    let (mut store, instance) = instance::create(engine, &held.module.pre, state).await?;
    let call = async {
        instance
            .call_prestart(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| format!("module `{name}` trapped in prestart"))
    };
    let outcome = instance::within_hook_wall(&format!("`{name}`"), "prestart", call).await?;
    let Phase::Prestart(mut results) =
        std::mem::replace(&mut store.data_mut().phase, Phase::Unprivileged)
    else {
        unreachable!("the phase is Prestart until replaced here")
    };
    if let Err(message) = outcome {
        // Keep the operating system's error as the cause: it decides the exit code.
        let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
        let context = format!("module `{name}` failed in prestart: {message}");
        return Err(match results.failures.pop() {
            Some(cause) => cause.context(context),
            None => anyhow!(context),
        });
    }
    Ok(results.listeners)
}
