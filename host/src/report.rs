//! The status report, in ServerKit's layout (`../shared/seeds/serverkit-site.txt`): thread
//! pools, wait channels, database pools, heaps, then each module's lines. It only reads
//! counters: producing it never stops or slows serving.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::Engine;

use crate::capabilities::auth::Logins;
use crate::capabilities::stats::ReportSource;
use crate::contract::version;
use crate::databases::Databases;
use crate::heaps::HeapRegistry;
use crate::logging::Syslog;
use crate::meter::Channel;
use crate::sessions::running::RunningServers;
use crate::sessions::server::report_hook_lines;
use crate::sessions::slot::ModuleSlot;
use crate::sessions::threads::WORKER_STACK_BYTES;

/// What the report reads: every module with its pool, the heaps, the syslog counters.
pub struct Reporter {
    /// The engine, for the modules' report hooks.
    pub engine: Engine,
    /// The running modules, each with its pool.
    pub servers: Arc<RunningServers>,
    /// Every heap.
    pub heaps: HeapRegistry,
    /// The syslog sink, when logs go there.
    pub syslog: Option<Arc<Syslog>>,
    /// The database pools.
    pub databases: Option<Arc<Databases>>,
}

impl Reporter {
    /// The report now. Each module's hook runs on its own pool, so this can be awaited
    /// from anywhere: the signal handler's thread or a module asking through `stats`.
    pub async fn render(&self) -> String {
        let mut modules = Vec::new();
        let running = self.servers.modules();
        for (slot, pool) in &running {
            let lines = report_hook_lines(&self.engine, slot, pool).await;
            modules.push(ModuleReport { slot, lines });
        }
        render(
            &modules,
            &self.heaps,
            self.syslog.as_deref(),
            self.databases.as_deref(),
        )
    }
}

impl ReportSource for Reporter {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(Reporter::render(self))
    }
}

const RULE: &str = "------------------------------------------------------------------------------";
const SHORT_RULE: &str = "-------------------";

/// One module's part: its slot and the lines its `report` hook returned.
pub struct ModuleReport<'a> {
    /// The module.
    pub slot: &'a ModuleSlot,
    /// What its hook said (or why it said nothing).
    pub lines: Vec<String>,
}

/// Renders the whole report.
pub fn render(
    modules: &[ModuleReport<'_>],
    heaps: &HeapRegistry,
    syslog: Option<&Syslog>,
    databases: Option<&Databases>,
) -> String {
    let mut out = String::from("ServerKit status report\n");
    thread_pools(&mut out, modules);
    wait_channels(&mut out, modules);
    database_pools(&mut out, databases);
    heap_table(&mut out, heaps, modules);
    if let Some(syslog) = syslog {
        let (sent, dropped) = syslog.counts();
        let _ = writeln!(out, "Syslog datagrams sent {sent} dropped {dropped}");
    }
    let dropped = crate::logging::lines_dropped();
    if dropped > 0 {
        let _ = writeln!(
            out,
            "Log lines dropped {dropped} (stderr's reader fell behind)"
        );
    }
    for module in modules {
        module_lines(&mut out, module);
    }
    out
}

fn thread_pools(out: &mut String, modules: &[ModuleReport<'_>]) {
    let _ = writeln!(
        out,
        "Thread pools\n{:<24} {:>10} {:>10} {:>9} {:>10} {:>11}\n{RULE}",
        "Label", "MinThreads", "MaxThreads", "StackSize", "ActiveBusy", "ActiveTotal"
    );
    for ModuleReport { slot, .. } in modules {
        let o = &slot.options;
        let t = &slot.threads;
        let label = format!("{}_workers", slot.name);
        let _ = writeln!(
            out,
            "{label:<24} {:>10} {:>10} {WORKER_STACK_BYTES:>9} {:>10} {:>11}",
            o.min_threads,
            o.max_threads,
            t.busy(),
            t.alive()
        );
    }
}

/// Sessions waiting in each channel, summed over the modules.
fn wait_channels(out: &mut String, modules: &[ModuleReport<'_>]) {
    let _ = writeln!(out, "WaitCount Channel\n{SHORT_RULE}");
    for channel in Channel::ALL {
        let count: u64 = modules
            .iter()
            .map(|m| {
                m.slot
                    .current
                    .load()
                    .context
                    .holdings
                    .meter
                    .waits
                    .waiting(channel)
            })
            .sum();
        let _ = writeln!(out, "{count:>9} {}", channel.name());
    }
}

fn database_pools(out: &mut String, databases: Option<&Databases>) {
    let _ = writeln!(
        out,
        "Database connection pools\n{:<24} {:>8} {:>8} {:>10} {:>10} {:>6}\n{RULE}",
        "Identifier", "MinConns", "MaxConns", "ActiveBusy", "ActivTotal", "Errors"
    );
    for pool in databases.map(Databases::pools).unwrap_or_default() {
        let (busy, total) = pool.figures();
        let errors = pool.errors.load(Ordering::Relaxed);
        let (min, max) = (pool.config.min, pool.config.max);
        let _ = writeln!(
            out,
            "{:<24} {min:>8} {max:>8} {busy:>10} {total:>10} {errors:>6}",
            pool.name
        );
    }
}

fn heap_table(out: &mut String, heaps: &HeapRegistry, modules: &[ModuleReport<'_>]) {
    let _ = writeln!(
        out,
        "Heaps\n{:<24} {:>8} {:>4} {:>10} {:>10} {:>10} {:>10}\n{RULE}",
        "Label", "MaxUnits", "Opts", "ActChnkSiz", "ActivUnits", "ActivChnks", "AllocUnits"
    );
    let guest_heaps = modules
        .iter()
        .flat_map(|m| m.slot.current.load().context.holdings.heaps.stats());
    for h in heaps.stats().into_iter().chain(guest_heaps) {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>4} {:>10} {:>10} {:>10} {:>10}",
            h.label, h.max_units, h.opts, h.chunk_size, h.units, h.chunks, h.allocated
        );
    }
}

fn module_lines(out: &mut String, module: &ModuleReport<'_>) {
    let slot = module.slot;
    let version = slot.current.load();
    let s = &slot.stats;
    let _ = writeln!(
        out,
        "Module {}\n{:<10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n{RULE}",
        slot.name,
        "Version",
        "Generation",
        "Sessions",
        "Started",
        "Ok",
        "Errors",
        "Traps",
        "Timeouts"
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        version::display(&version.loaded.descriptor.version),
        version.generation,
        s.live(),
        s.started.load(Ordering::Relaxed),
        s.ok.load(Ordering::Relaxed),
        s.failed.load(Ordering::Relaxed),
        s.trapped.load(Ordering::Relaxed),
        s.timed_out.load(Ordering::Relaxed),
    );
    let meter = &version.context.holdings.meter;
    let hits: Vec<String> = meter
        .hits()
        .iter()
        .map(|(limit, n)| format!("{} {n}", limit.label()))
        .collect();
    let _ = writeln!(
        out,
        "Limits hit: {}; linear memory now {} KiB; host memory now {} KiB of {} KiB; descriptors {} of {}",
        hits.join(", "),
        meter.linear_memory.used() >> 10,
        meter.host_memory.used() >> 10,
        meter.budgets.host_memory >> 10,
        meter.budgets.descriptors - meter.descriptors.available(),
        meter.budgets.descriptors,
    );
    let store = version.context.holdings.store.stats();
    if store.keys > 0 || store.persisted {
        let _ = writeln!(
            out,
            "Store keys {}; {} KiB of {} KiB (store_mb){}",
            store.keys,
            store.bytes.div_ceil(1024),
            store.budget >> 10,
            if store.persisted { "; persisted" } else { "" }
        );
    }
    let dropped = meter.log_dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        let _ = writeln!(
            out,
            "log events dropped (over the per-session budget) {dropped}"
        );
    }
    let crowded = meter.log_queue.dropped();
    if crowded > 0 {
        let _ = writeln!(
            out,
            "log lines dropped (its share of the log's queue full) {crowded}"
        );
    }
    if let Some(swap) = slot.last_swap() {
        let at = humantime_utc(swap.at);
        let _ = writeln!(out, "Last swap at {at}: {}", swap.outcome);
    }
    let reclaimed = s.reclaimed.load(Ordering::Relaxed);
    if reclaimed > 0 {
        let _ = writeln!(
            out,
            "idle keep-alive sessions ended to make room at max_sessions {reclaimed}"
        );
    }
    for (generation, sessions) in slot.draining() {
        let _ = writeln!(
            out,
            "Draining generation {generation}: {sessions} live (sessions, and its operator if still running)"
        );
    }
    let (tls_ok, tls_failed) = (
        s.tls_ok.load(Ordering::Relaxed),
        s.tls_failed.load(Ordering::Relaxed),
    );
    if tls_ok + tls_failed > 0 {
        let tls13 = s.tls13.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "TLS handshakes ok {tls_ok} (TLSv1.3 {tls13}, TLSv1.2 {}) failed {tls_failed}",
            tls_ok - tls13
        );
    }
    let (refused, failed) = (
        s.proxy_refused.load(Ordering::Relaxed),
        s.proxy_failed.load(Ordering::Relaxed),
    );
    if refused + failed > 0 {
        let _ = writeln!(
            out,
            "PROXY protocol: connections refused (not from proxy_protocol_from) {refused}, headers missing or malformed {failed}"
        );
    }
    logins(out, &version.context.holdings.logins);
    for line in &module.lines {
        let _ = writeln!(out, "{line}");
    }
}

/// The module's logins through `auth`, once it has any to show.
fn logins(out: &mut String, logins: &Logins) {
    let c = &logins.book.counters;
    let [failed, penalised, waited, refused, hashes] = [
        &c.failed,
        &c.penalised,
        &c.penalty_ms,
        &c.refused,
        &c.hashes_refused,
    ]
    .map(|n| n.load(Ordering::Relaxed));
    if failed + penalised + refused + hashes > 0 {
        let _ = writeln!(
            out,
            "Logins failed {failed}, penalised {penalised} ({waited} ms waited), refused over max_unauthenticated_per_address {refused}, stored passwords refused {hashes}; addresses tracked {}",
            logins.book.tracked()
        );
    }
}

/// `at` as seconds since the epoch, UTC (what syslog and `date +%s` compare against).
fn humantime_utc(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs} (unix time)")
}
