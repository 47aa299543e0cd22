//! The data of one instance's store: its WASI context (no ambient authority), its resource
//! table, what its module's configuration grants, and its CPU budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serverkit_c11n::{OptionType, Section, SectionSpec, Value};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::stdio::GuestLog;
use crate::databases::Databases;
use crate::listeners::BoundListener;
use crate::maildrops::GrantedDirectory;

/// Most host resources (connections, streams) one instance may hold: what it defends is
/// host memory against a guest that opens handles in a loop.
pub const MAX_INSTANCE_RESOURCES: usize = 1024;

/// Which hook an instance was created for; privileged requests are honoured in `Prestart`.
pub enum Phase {
    /// describe / construct / report / operator / session: nothing privileged.
    Unprivileged,
    /// `prestart`, as root: what the module's requests produced so far.
    Prestart(PrestartResults),
}

/// Listeners bound for a module in prestart, and the errors its failed requests met (kept
/// so a failed prestart reports the operating system's error, not only the guest's words).
#[derive(Default)]
pub struct PrestartResults {
    /// Listeners bound, in request order (their ids).
    pub listeners: Vec<BoundListener>,
    /// Errors of refused requests.
    pub failures: Vec<anyhow::Error>,
}

/// What an instance knows about its module.
pub struct ModuleContext {
    /// Module (and section) name, for logs.
    pub name: String,
    /// The module's checked c11n section; `None` while describing, before c11n is read.
    pub section: Option<Arc<Section>>,
    /// What the section lets the module ask for.
    pub grants: Grants,
    /// Directories the host opened for its `directory` options in prestart.
    pub directories: Arc<Vec<GrantedDirectory>>,
    /// The personality's database pools, once open (after the privilege drop); only
    /// those named in `grants.databases` are reachable.
    pub databases: Option<Arc<Databases>>,
}

/// Privileged resources a module's section grants: the values of its options of type
/// port and address. A module can bind nothing else.
#[derive(Debug, Default, Clone)]
pub struct Grants {
    /// Ports it may bind.
    pub ports: Vec<u16>,
    /// Addresses it may bind (the wildcard address is always allowed).
    pub addresses: Vec<IpAddr>,
    /// Database pools it may query: the values of its `database-ref` options.
    pub databases: Vec<String>,
    /// Its `directory` options and their paths, opened by the host at prestart.
    pub directories: Vec<(String, String)>,
}

impl Grants {
    /// The grants of `section`, whose option types `spec` gives.
    pub fn of(spec: &SectionSpec, section: &Section) -> Self {
        let mut grants = Grants::default();
        for option in &spec.options {
            match (&option.ty, section.get(&option.name)) {
                (OptionType::Port, Some(Value::Int(p))) => {
                    grants.ports.extend(u16::try_from(*p).ok())
                }
                (OptionType::Address, Some(Value::Str(a))) => {
                    grants.addresses.extend(a.parse::<IpAddr>().ok())
                }
                (OptionType::DatabaseRef, Some(Value::Str(d))) => grants.databases.push(d.clone()),
                (OptionType::Directory, Some(Value::Str(d))) => {
                    grants.directories.push((option.name.clone(), d.clone()))
                }
                _ => {}
            }
        }
        grants
    }
}

/// Store data of one module instance.
pub struct InstanceState {
    wasi: WasiCtx,
    /// Host resources handed to the guest.
    pub table: ResourceTable,
    /// The module this instance belongs to.
    pub module: Arc<ModuleContext>,
    /// The hook being run.
    pub phase: Phase,
    /// Epoch ticks of wasm execution used so far.
    pub cpu_ticks: u64,
    /// Ticks allowed before the instance is interrupted; `u64::MAX` for none.
    pub cpu_tick_budget: u64,
    /// The client's address, for log lines of a session instance.
    pub peer: Option<SocketAddr>,
}

impl InstanceState {
    /// A fresh state: no preopened directories, no sockets, no environment, no arguments;
    /// stdout and stderr go to the host log labelled with the module.
    pub fn new(module: Arc<ModuleContext>, phase: Phase) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(GuestLog::stdout(&module.name))
            .stderr(GuestLog::stderr(&module.name))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_INSTANCE_RESOURCES);
        InstanceState {
            wasi,
            table,
            module,
            phase,
            cpu_ticks: 0,
            cpu_tick_budget: u64::MAX,
            peer: None,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
