//! The data of one instance's store: its WASI context (no ambient authority), its resource
//! table, what its module's configuration grants, and its CPU budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use serverkit_c11n::{OptionType, Section, SectionSpec, Value};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::heap::GuestHeaps;
use super::stdio::GuestLog;
use crate::databases::Databases;
use crate::directories::GrantedFs;
use crate::listeners::BoundListener;
use crate::maildrops::GrantedDirectory;
use crate::sessions::limits::{InstanceLimiter, ModuleLimits};
use crate::sessions::waits::WaitChannels;

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
    /// The module's `certificate` and `private-key` options and their files (resolved
    /// against the personality directory), for `bind-tls-listener`.
    pub tls_files: Vec<(String, std::path::PathBuf)>,
}

/// What an instance knows about its module.
pub struct ModuleContext {
    /// Module (and section) name, for logs.
    pub name: String,
    /// The module's checked c11n section; `None` while describing, before c11n is read.
    pub section: Option<Arc<Section>>,
    /// What the section lets the module ask for.
    pub grants: Grants,
    /// The terminal opened for it in prestart (an option of type terminal), which its
    /// operator writes to as standard output.
    pub terminal: Mutex<Option<std::fs::File>>,
    /// Its heaps (the heap interface), shared by all its instances.
    pub heaps: GuestHeaps,
    /// Log events its instances emitted past their budget, dropped.
    pub log_dropped: std::sync::atomic::AtomicU64,
    /// Directories the host opened for its `directory` options in prestart (Maildirs).
    pub directories: OnceLock<Arc<Vec<GrantedDirectory>>>,
    /// The personality's database pools, once open (after the privilege drop); only
    /// those named in `grants.databases` are reachable.
    pub databases: OnceLock<Arc<Databases>>,
    /// The TLS configuration `prestart.prepare-tls` loaded, for `connection.start-tls`.
    pub tls: OnceLock<Arc<crate::tls::TlsSource>>,
    /// Its limits (the section's session options), the memory its instances hold, and
    /// the sessions that hit a limit; kept across hot swaps.
    pub limits: Arc<ModuleLimits>,
}

impl ModuleContext {
    /// A context; `section` is `None` while describing, before c11n is read.
    pub fn new(
        name: &str,
        section: Option<Arc<Section>>,
        grants: Grants,
        limits: Arc<ModuleLimits>,
    ) -> Arc<Self> {
        Arc::new(ModuleContext {
            name: name.to_string(),
            section,
            grants,
            terminal: Mutex::new(None),
            heaps: GuestHeaps::default(),
            log_dropped: Default::default(),
            directories: OnceLock::new(),
            databases: OnceLock::new(),
            tls: OnceLock::new(),
            limits,
        })
    }

    /// The directories opened for it in prestart (none before).
    pub fn directories(&self) -> &[GrantedDirectory] {
        self.directories.get().map(|d| d.as_slice()).unwrap_or(&[])
    }

    /// The database pools, once serving.
    pub fn databases(&self) -> Option<&Arc<Databases>> {
        self.databases.get()
    }

    /// A handle on the terminal opened for the module in prestart, if any.
    pub fn terminal(&self) -> Option<std::fs::File> {
        let terminal = self.terminal.lock().unwrap_or_else(|p| p.into_inner());
        terminal.as_ref().and_then(|f| f.try_clone().ok())
    }
}

/// Privileged resources a module's section grants: the values of its options of type
/// port and address (what it may bind), and the directories and files its options of
/// type directory and file name (opened by the host in prestart). Nothing else.
#[derive(Debug, Default, Clone)]
pub struct Grants {
    /// Ports it may bind.
    pub ports: Vec<u16>,
    /// Addresses it may bind (the wildcard address is always allowed).
    pub addresses: Vec<IpAddr>,
    /// Directories and files opened for it.
    pub fs: Arc<GrantedFs>,
    /// Database pools it may query: the values of its `database-ref` options.
    pub databases: Vec<String>,
    /// Its `directory` options and their paths, opened by the host at prestart.
    pub directories: Vec<(String, String)>,
}

impl Grants {
    /// The grants of `section`, whose option types `spec` gives.
    pub fn of(spec: &SectionSpec, section: &Section, fs: Arc<GrantedFs>) -> Self {
        let mut grants = Grants {
            fs,
            ..Grants::default()
        };
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
    /// Log events emitted so far (at most the module's `max_log_events` are logged).
    pub log_events: u32,
    /// Charges its linear memory against the module's limits; records the limit hit.
    pub limiter: InstanceLimiter,
    /// The client's address, for log lines of a session instance.
    pub peer: Option<SocketAddr>,
    /// Where this instance's waits are counted: the module's `SessionStats` for a session;
    /// a set of its own, read by nobody, for the lifecycle hooks.
    pub waits: Arc<WaitChannels>,
}

impl InstanceState {
    /// A fresh state: no preopened directories, no sockets, no environment, no arguments;
    /// stdout and stderr go to the host log labelled with the module.
    pub fn new(module: Arc<ModuleContext>, phase: Phase) -> Self {
        let wasi = sandbox(&module.name, None);
        let mut table = ResourceTable::new();
        table.set_max_capacity(module.limits.limits.handles);
        let limiter = InstanceLimiter::new(module.limits.clone());
        InstanceState {
            wasi,
            table,
            module,
            phase,
            cpu_ticks: 0,
            cpu_tick_budget: u64::MAX,
            peer: None,
            log_events: 0,
            limiter,
            waits: Arc::default(),
        }
    }
}

impl InstanceState {
    /// Makes `file` the guest's standard output (the operator's terminal).
    pub fn set_stdout(&mut self, file: std::fs::File) {
        self.wasi = sandbox(&self.module.name, Some(file));
    }
}

/// A WASI context granting nothing: no preopened directory, no socket, no name lookup, no
/// environment, no arguments. stdout and stderr go to the host log labelled with the
/// module, or stdout to `stdout` when given.
fn sandbox(module: &str, stdout: Option<std::fs::File>) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    match stdout {
        Some(file) => builder.stdout(wasmtime_wasi::cli::OutputFile::new(file)),
        None => builder.stdout(GuestLog::stdout(module)),
    };
    builder
        .stderr(GuestLog::stderr(module))
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
