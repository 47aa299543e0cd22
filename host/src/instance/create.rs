//! Creating a sandboxed instance of a module: a fresh store with its memory limiter and
//! epoch callback, instantiated from the pre-linked component.

use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::Instance;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::state::InstanceState;
use crate::contract::bindings::{Module, ModulePre};

/// CPU budget of the lifecycle hooks (describe, construct, prestart, report): generous,
/// but a hook that never returns must not hang startup.
pub const HOOK_CPU_BUDGET: Duration = Duration::from_secs(10);

/// Wall-clock bound of the lifecycle hooks run while loading and starting a module
/// (describe, construct, prestart): a hook that sleeps or waits on a clock must not hang
/// startup, `check`, `inspect` or the reload thread either.
pub const HOOK_WALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Awaits the `hook` call of module `module` within [`HOOK_WALL_TIMEOUT`].
pub async fn within_hook_wall<T>(
    module: &str,
    hook: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(HOOK_WALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            anyhow::bail!(
                "module {module} did not return from `{hook}` within {}s",
                HOOK_WALL_TIMEOUT.as_secs()
            )
        })
}

/// Instantiates `pre` in a new store holding `state`. Each epoch tick spent in wasm counts
/// against the instance's CPU budget; past it the guest traps with an interrupt. Until
/// then it yields to other tasks at every tick, so a busy guest cannot starve a worker
/// thread.
pub async fn create(
    engine: &Engine,
    pre: &ModulePre<InstanceState>,
    state: InstanceState,
) -> Result<(Store<InstanceState>, Module)> {
    let mut store = new_store(engine, state);
    let module = pre
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("failed to instantiate the module")?;
    Ok((store, module))
}

/// Like [`create`], but the bare component instance: for an export whose result the host
/// lifts with its own type (`contract::bounded`) rather than the bindings' whole copy.
pub async fn create_bare(
    engine: &Engine,
    pre: &ModulePre<InstanceState>,
    state: InstanceState,
) -> Result<(Store<InstanceState>, Instance)> {
    let mut store = new_store(engine, state);
    let instance = pre
        .instance_pre()
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("failed to instantiate the module")?;
    Ok((store, instance))
}

/// A store for `state`: its memory limiter, its CPU budget, and its hostcall fuel.
///
/// Hostcall fuel bounds what one call copies from the guest into the host (strings and
/// lists, the arguments of an import or the result of an export; never what the host
/// hands the guest): the instance's `instance_memory_mb`, not wasmtime's 128 MiB. A
/// list's entries count at their host size (24 bytes a string, 32 a database value), so
/// a call could in theory need more than the guest holds; no call of the contract comes
/// near it (256 query parameters, 100 000 Maildir names: under 8 MiB). Beyond that only
/// entries that overlap (a million strings over one buffer) ask for more, and a session
/// makes the host hold at most its own memory's worth of copies at once.
fn new_store(engine: &Engine, state: InstanceState) -> Store<InstanceState> {
    let fuel = state.meter.module.budgets.instance_memory;
    let mut store = Store::new(engine, state);
    store.set_hostcall_fuel(fuel);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|cx| {
        Ok(if cx.data().meter.cpu.tick() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}
