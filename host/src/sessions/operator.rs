//! A module's `operator` hook: its long-running work, in an instance of its own with no
//! CPU budget (it still yields at every epoch tick), started again with backoff when it
//! fails or traps, as a supervisor would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::describe_failure;
use super::limits::LimitFlag;
use super::slot::ModuleSlot;
use crate::guest_host::state::Phase;
use crate::modules::instance;
use crate::modules::load::hook_state;

/// Pause before an operator that failed is started again; it doubles with each failure in
/// a row, up to [`RESTART_PAUSE_MAX`].
const RESTART_PAUSE_FIRST: Duration = Duration::from_secs(1);

/// Longest pause between restarts. An operator that ran longer than this before failing
/// starts again after [`RESTART_PAUSE_FIRST`].
const RESTART_PAUSE_MAX: Duration = Duration::from_secs(60);

/// Runs the operator until it returns `ok`; after a failure or a trap (a limit hit
/// included) it runs again, on the module's current version, after a growing pause.
pub async fn supervise(engine: Engine, slot: Arc<ModuleSlot>) {
    let mut pause = RESTART_PAUSE_FIRST;
    loop {
        let started = Instant::now();
        if run_once(&engine, &slot).await {
            return;
        }
        if started.elapsed() > RESTART_PAUSE_MAX {
            pause = RESTART_PAUSE_FIRST;
        }
        tracing::warn!(module = %slot.name, "operator restarts in {}s", pause.as_secs());
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RESTART_PAUSE_MAX);
    }
}

/// One run of the operator; whether it finished well.
async fn run_once(engine: &Engine, slot: &ModuleSlot) -> bool {
    let version = slot.current.load_full();
    let result = async |hit: &mut Option<Arc<LimitFlag>>| {
        let mut state = hook_state(version.context.clone(), Phase::Unprivileged);
        state.cpu_tick_budget = u64::MAX;
        if let Some(terminal) = version.context.terminal() {
            state.set_stdout(terminal);
        }
        *hit = Some(state.limiter.hit.clone());
        let (mut store, module) = instance::create(engine, version.pre(), state).await?;
        anyhow::Ok(module.call_operator(&mut store).await?)
    };
    let mut hit = None;
    match result(&mut hit).await {
        Ok(Ok(())) => {
            tracing::debug!(module = %slot.name, "operator finished");
            return true;
        }
        Ok(Err(message)) => tracing::error!(module = %slot.name, "operator failed: {message}"),
        Err(e) => match hit.and_then(|h| h.get()) {
            Some(limit) => {
                let limits = &version.context.limits;
                limits.count(limit);
                tracing::error!(module = %slot.name, "operator trapped: limit `{}` hit: {}", limits.setting(limit), describe_failure(&e))
            }
            None => {
                tracing::error!(module = %slot.name, "operator trapped: {}", describe_failure(&e))
            }
        },
    }
    false
}
