//! The data of one instance's store: its WASI context (no ambient authority), its resource
//! table, what its module holds, its meter, and the hook it runs.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::auth::Session;
use crate::capabilities::listen::host::PrestartResults;
use crate::capabilities::log::stdio::{GuestLog, LogBudget};
use crate::holdings::ModuleContext;
use crate::meter::{CpuBudget, InstanceLimiter, InstanceMeter};

/// Which hook an instance was created for; privileged requests are honoured in `Prestart`.
pub enum Phase {
    /// describe / construct / report / operator / session: nothing privileged.
    Unprivileged,
    /// `prestart`, as root: what the module's requests produced so far.
    Prestart(PrestartResults),
}

/// Store data of one module instance.
pub struct InstanceState {
    wasi: WasiCtx,
    /// Host resources handed to the guest.
    pub table: ResourceTable,
    /// The module this instance belongs to.
    pub module: Arc<ModuleContext>,
    /// What it uses, charged to its module.
    pub meter: InstanceMeter,
    /// Charges its linear memory to its module (the store's `ResourceLimiter`).
    pub limiter: InstanceLimiter,
    /// The hook being run.
    pub phase: Phase,
    /// The client's address, for log lines of a session instance.
    pub peer: Option<SocketAddr>,
    /// The session's standing with its client's address (`auth.admit`), released when
    /// the instance ends.
    pub login: Option<Session>,
}

impl InstanceState {
    /// A fresh state with `cpu` as its CPU budget: no preopened directories, no sockets,
    /// no environment, no arguments; stdout and stderr go to the host log labelled with the
    /// module, within its log budget. `None` when the module has no host memory left for
    /// another instance (a hit of `host_memory_mb`).
    pub fn new(module: Arc<ModuleContext>, phase: Phase, cpu: CpuBudget) -> Option<Self> {
        let meter = InstanceMeter::new(&module.holdings.meter, cpu)?;
        let mut table = ResourceTable::new();
        table.set_max_capacity(meter.module.budgets.handles);
        let wasi = sandbox(&module.name, log_budget(&meter), None);
        Some(InstanceState {
            wasi,
            table,
            module,
            limiter: meter.limiter(),
            meter,
            phase,
            peer: None,
            login: None,
        })
    }

    /// Makes `file` the guest's standard output (the operator's terminal).
    pub fn set_stdout(&mut self, file: std::fs::File) {
        self.wasi = sandbox(&self.module.name, log_budget(&self.meter), Some(file));
    }
}

fn log_budget(meter: &InstanceMeter) -> LogBudget {
    LogBudget {
        meter: meter.module.clone(),
        events: meter.log_events.clone(),
    }
}

/// A WASI context granting nothing: no preopened directory, no socket, no name lookup, no
/// environment, no arguments. stdout and stderr go to the host log labelled with the
/// module, or stdout to `stdout` when given.
fn sandbox(module: &str, budget: LogBudget, stdout: Option<std::fs::File>) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    match stdout {
        Some(file) => builder.stdout(wasmtime_wasi::cli::OutputFile::new(file)),
        None => builder.stdout(GuestLog::stdout(module, budget.clone())),
    };
    builder
        .stderr(GuestLog::stderr(module, budget))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
