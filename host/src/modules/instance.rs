//! Creating a sandboxed instance of a module: a fresh store with its CPU budget and epoch
//! callback, instantiated from the pre-linked component.

use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::contract::bindings::{Module, ModulePre};
use crate::engine::EPOCH_TICK;
use crate::guest_host::state::InstanceState;

/// CPU budget of the lifecycle hooks (describe, construct, prestart, report): generous,
/// but a hook that never returns must not hang startup.
pub const HOOK_CPU_BUDGET: Duration = Duration::from_secs(10);

/// Epoch ticks in `budget`, at least one.
pub fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Instantiates `pre` in a new store holding `state`. Each epoch tick spent in wasm counts
/// against `state.cpu_tick_budget`; past it the guest traps with an interrupt. Until then
/// it yields to other tasks at every tick, so a busy guest cannot starve a worker thread.
pub async fn create(
    engine: &Engine,
    pre: &ModulePre<InstanceState>,
    state: InstanceState,
) -> Result<(Store<InstanceState>, Module)> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let state = cx.data_mut();
        state.cpu_ticks += 1;
        Ok(if state.cpu_ticks > state.cpu_tick_budget {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    let module = pre
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("failed to instantiate the module")?;
    Ok((store, module))
}
