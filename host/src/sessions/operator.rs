//! A module's `operator` hook: its long-running work, in an instance of its own, started
//! again with backoff when it fails or traps, as a supervisor would. It has a session's
//! budgets (memory, handles, log events, host memory), and a CPU budget of `session_cpu_ms`
//! that refills with wall time (`meter::cpu`): a report every few seconds never runs out,
//! a loop that never waits is interrupted and restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::describe_failure;
use super::slot::ModuleSlot;
use crate::capabilities::log::{MAX_LOG_MESSAGE_BYTES, truncate};
use crate::instance::{self, InstanceState, Phase};
use crate::meter::{CpuBudget, Refill, Verdict};

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
    let holdings = &version.context.holdings;
    let result = async |verdict: &mut Option<Verdict>| {
        let cpu = CpuBudget::new(slot.options.budgets.cpu, Refill::WithTime);
        let mut state = InstanceState::new(version.context.clone(), Phase::Unprivileged, cpu)
            .ok_or_else(|| anyhow::anyhow!("no host memory left for another instance"))?;
        if let Some(terminal) = holdings.terminal() {
            state.set_stdout(terminal);
        }
        *verdict = Some(state.meter.verdict());
        let (mut store, module) = instance::create(engine, version.pre(), state).await?;
        anyhow::Ok(module.call_operator(&mut store).await?)
    };
    let mut verdict = None;
    match result(&mut verdict).await {
        Ok(Ok(())) => {
            tracing::debug!(module = %slot.name, "operator finished");
            return true;
        }
        Ok(Err(message)) => {
            let message = truncate(&message, MAX_LOG_MESSAGE_BYTES);
            tracing::error!(module = %slot.name, "operator failed: {message}")
        }
        Err(e) => match verdict.and_then(|v| v.of(&e)) {
            Some(limit) => {
                let setting = holdings.meter.setting(limit);
                tracing::error!(module = %slot.name, "operator trapped: limit `{setting}` hit: {}", describe_failure(&e))
            }
            None => {
                tracing::error!(module = %slot.name, "operator trapped: {}", describe_failure(&e))
            }
        },
    }
    false
}
