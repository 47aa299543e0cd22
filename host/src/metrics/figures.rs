//! The status report's figures as metric families, read from the same counters the report
//! reads (`crate::report`), so both always agree. Only counters are read: no module hook
//! runs (a module's own report lines are free text, not figures), so a scrape costs
//! microseconds and answers while a module is broken or being swapped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::family::{Family, Kind};
use crate::contract::version;
use crate::databases::Databases;
use crate::heaps::HeapRegistry;
use crate::logging::Syslog;
use crate::meter::Channel;
use crate::report::Reporter;
use crate::sessions::slot::ModuleSlot;
use crate::sessions::threads::WORKER_STACK_BYTES;

/// Every family, in the report's order: thread pools, wait channels, database pools, heaps,
/// then the modules' sessions, limits, swaps, TLS and PROXY figures, then syslog.
pub fn families(reporter: &Reporter) -> Vec<Family> {
    let modules: Vec<Arc<ModuleSlot>> = reporter
        .servers
        .modules()
        .into_iter()
        .map(|(slot, _)| slot)
        .collect();
    let mut out = thread_pools(&modules);
    out.push(wait_channels(&modules));
    out.extend(database_pools(reporter.databases.as_deref()));
    out.extend(heaps(&reporter.heaps, &modules));
    out.extend(sessions(&modules));
    out.extend(meters(&modules));
    out.extend(swaps(&modules));
    out.extend(tls_and_proxy(&modules));
    out.extend(logins(&modules));
    out.extend(syslog(reporter.syslog.as_deref()));
    out
}

fn module(slot: &ModuleSlot) -> Vec<(&'static str, String)> {
    vec![("module", slot.name.clone())]
}

/// One sample per module of `value`.
fn per_module(
    modules: &[Arc<ModuleSlot>],
    (name, kind, help): (&'static str, Kind, &'static str),
    value: impl Fn(&ModuleSlot) -> u64,
) -> Family {
    let mut family = Family::new(name, kind, help);
    for slot in modules {
        family.add(module(slot), value(slot));
    }
    family
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn thread_pools(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut stack = Family::new(
        "serverkit_worker_thread_stack_bytes",
        Kind::Gauge,
        "Stack size of every worker thread",
    );
    stack.add(Vec::new(), WORKER_STACK_BYTES);
    vec![
        per_module(
            modules,
            (
                "serverkit_worker_threads_min",
                Kind::Gauge,
                "min_threads of the module's worker pool",
            ),
            |s| s.options.min_threads as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_worker_threads_max",
                Kind::Gauge,
                "max_threads of the module's worker pool",
            ),
            |s| s.options.max_threads as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_worker_threads",
                Kind::Gauge,
                "Threads of the module's worker pool alive now (the report's ActiveTotal)",
            ),
            |s| s.threads.alive() as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_worker_threads_busy",
                Kind::Gauge,
                "Threads of the module's worker pool running now, not parked (the report's ActiveBusy)",
            ),
            |s| s.threads.busy() as u64,
        ),
        stack,
    ]
}

fn wait_channels(modules: &[Arc<ModuleSlot>]) -> Family {
    let mut family = Family::new(
        "serverkit_sessions_waiting",
        Kind::Gauge,
        "Sessions waiting in each wait channel now",
    );
    for slot in modules {
        let waits = slot.current.load().context.holdings.meter.waits.clone();
        for channel in Channel::ALL {
            let labels = vec![
                ("module", slot.name.clone()),
                ("channel", channel.name().replace(' ', "_")),
            ];
            family.add(labels, waits.waiting(channel));
        }
    }
    family
}

fn database_pools(databases: Option<&Databases>) -> Vec<Family> {
    let mut min = Family::new(
        "serverkit_database_connections_min",
        Kind::Gauge,
        "pool_min of the database pool",
    );
    let mut max = Family::new(
        "serverkit_database_connections_max",
        Kind::Gauge,
        "pool_max of the database pool",
    );
    let mut busy = Family::new(
        "serverkit_database_connections_busy",
        Kind::Gauge,
        "Connections of the pool lent to a query now",
    );
    let mut open = Family::new(
        "serverkit_database_connections_open",
        Kind::Gauge,
        "Connections of the pool open now",
    );
    let mut errors = Family::new(
        "serverkit_database_connection_errors",
        Kind::Counter,
        "Connection errors of the pool",
    );
    for pool in databases.map(Databases::pools).unwrap_or_default() {
        let label = || vec![("pool", pool.name.clone())];
        let (in_use, total) = pool.figures();
        min.add(label(), pool.config.min);
        max.add(label(), pool.config.max);
        busy.add(label(), in_use);
        open.add(label(), total);
        errors.add(label(), load(&pool.errors));
    }
    vec![min, max, busy, open, errors]
}

fn heaps(registry: &HeapRegistry, modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut max = Family::new(
        "serverkit_heap_units_max",
        Kind::Gauge,
        "Most units the heap may hold; opts are its flags as in the report (E grows exponentially, S shrinks, U unlimited: no most)",
    );
    let mut units = Family::new(
        "serverkit_heap_units",
        Kind::Gauge,
        "Units in the heap's chunks now",
    );
    let mut in_use = Family::new(
        "serverkit_heap_units_in_use",
        Kind::Gauge,
        "Units of the heap allocated now",
    );
    let mut chunks = Family::new(
        "serverkit_heap_chunks",
        Kind::Gauge,
        "Chunks of the heap now",
    );
    let mut chunk = Family::new(
        "serverkit_heap_chunk_units",
        Kind::Gauge,
        "Units in the heap's newest chunk",
    );
    let guest_heaps = modules
        .iter()
        .flat_map(|m| m.current.load().context.holdings.heaps.stats());
    for h in registry.stats().into_iter().chain(guest_heaps) {
        let label = || vec![("heap", h.label.clone())];
        max.add(
            vec![("heap", h.label.clone()), ("opts", h.opts.clone())],
            h.max_units,
        );
        units.add(label(), h.units);
        in_use.add(label(), h.allocated);
        chunks.add(label(), h.chunks);
        chunk.add(label(), h.chunk_size);
    }
    vec![max, units, in_use, chunks, chunk]
}

fn sessions(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut info = Family::new(
        "serverkit_module",
        Kind::Info,
        "The version of each module new sessions start on",
    );
    let mut ended = Family::new(
        "serverkit_sessions_ended",
        Kind::Counter,
        "Sessions ended, by outcome: ok, error (the module returned one), trap (including limits hit), timeout (idle, wall clock, drained after a swap), reclaimed (idle between requests, ended to make room at max_sessions)",
    );
    let mut draining = Family::new(
        "serverkit_sessions_draining",
        Kind::Gauge,
        "Sessions (and an operator) still running on a module version a hot swap replaced",
    );
    for slot in modules {
        let current = slot.current.load();
        let shown = version::display(&current.loaded.descriptor.version);
        info.add(
            vec![("module", slot.name.clone()), ("version", shown)],
            1u64,
        );
        let s = &slot.stats;
        for (outcome, counter) in [
            ("ok", &s.ok),
            ("error", &s.failed),
            ("trap", &s.trapped),
            ("timeout", &s.timed_out),
            ("reclaimed", &s.reclaimed),
        ] {
            let labels = vec![("module", slot.name.clone()), ("outcome", outcome.into())];
            ended.add(labels, load(counter));
        }
        for (generation, live) in slot.draining() {
            let labels = vec![
                ("module", slot.name.clone()),
                ("generation", generation.to_string()),
            ];
            draining.add(labels, live);
        }
    }
    vec![
        info,
        per_module(
            modules,
            (
                "serverkit_module_generation",
                Kind::Gauge,
                "Generation of the module version new sessions start on (1 at start, one more per hot swap)",
            ),
            |s| s.current.load().generation,
        ),
        per_module(
            modules,
            (
                "serverkit_sessions_live",
                Kind::Gauge,
                "Sessions started and not ended",
            ),
            |s| s.stats.live(),
        ),
        per_module(
            modules,
            (
                "serverkit_sessions_started",
                Kind::Counter,
                "Sessions started (instances created for a connection)",
            ),
            |s| load(&s.stats.started),
        ),
        ended,
        draining,
    ]
}

fn meters(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut hits = Family::new(
        "serverkit_limit_hits",
        Kind::Counter,
        "Instances that hit a limit, by the option that sets it",
    );
    for slot in modules {
        for (limit, n) in slot.current.load().context.holdings.meter.hits() {
            let labels = vec![
                ("module", slot.name.clone()),
                ("limit", limit.option().into()),
            ];
            hits.add(labels, n);
        }
    }
    let meter = |s: &ModuleSlot| s.current.load().context.holdings.meter.clone();
    vec![
        hits,
        per_module(
            modules,
            (
                "serverkit_linear_memory_bytes",
                Kind::Gauge,
                "Linear memory of the module's live instances",
            ),
            |s| meter(s).linear_memory.used() as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_host_memory_bytes",
                Kind::Gauge,
                "Host memory the module's instances hold (heaps, buffers, resource tables)",
            ),
            |s| meter(s).host_memory.used() as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_host_memory_limit_bytes",
                Kind::Gauge,
                "host_memory_mb of the module, in bytes",
            ),
            |s| meter(s).budgets.host_memory as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_store_keys",
                Kind::Gauge,
                "Keys in the module's keyed store (expired ones not yet swept included)",
            ),
            |s| s.current.load().context.holdings.store.stats().keys as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_store_bytes",
                Kind::Gauge,
                "Bytes the module's keyed store holds against store_mb (keys, values, bookkeeping)",
            ),
            |s| meter(s).store.used() as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_store_limit_bytes",
                Kind::Gauge,
                "store_mb of the module, in bytes",
            ),
            |s| meter(s).budgets.store as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_descriptors_in_use",
                Kind::Gauge,
                "Descriptors the module's instances hold (sockets, files, Maildirs)",
            ),
            |s| {
                let m = meter(s);
                (m.budgets.descriptors - m.descriptors.available()) as u64
            },
        ),
        per_module(
            modules,
            (
                "serverkit_descriptors_limit",
                Kind::Gauge,
                "max_descriptors of the module",
            ),
            |s| meter(s).budgets.descriptors as u64,
        ),
        per_module(
            modules,
            (
                "serverkit_log_events_dropped",
                Kind::Counter,
                "Log events dropped past max_log_events",
            ),
            |s| load(&meter(s).log_dropped),
        ),
    ]
}

fn swaps(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut at = Family::new(
        "serverkit_swap_last_timestamp_seconds",
        Kind::Gauge,
        "When the module's last hot swap attempt ended, in seconds since the epoch",
    );
    let mut ok = Family::new(
        "serverkit_swap_last_succeeded",
        Kind::Gauge,
        "1 if the module's last hot swap attempt published a new version, 0 if it was refused (the log says why)",
    );
    for slot in modules {
        let Some(swap) = slot.last_swap() else {
            continue;
        };
        let secs = swap
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        at.add(module(slot), secs);
        ok.add(module(slot), u64::from(published(&swap.outcome)));
    }
    vec![at, ok]
}

/// Whether a swap record's outcome tells of a published version: the reload writes
/// `generation N (...)` then, and `refused: why` otherwise.
fn published(outcome: &str) -> bool {
    outcome.starts_with("generation ")
}

/// The `auth` capability's counters: failed logins, penalties, refusals per address.
fn logins(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let counters = |s: &ModuleSlot| s.current.load().context.holdings.logins.clone();
    vec![
        per_module(
            modules,
            (
                "serverkit_logins_failed",
                Kind::Counter,
                "Login attempts reported failed through auth",
            ),
            |s| load(&counters(s).book.counters.failed),
        ),
        per_module(
            modules,
            (
                "serverkit_logins_penalised",
                Kind::Counter,
                "Login attempts that waited their address's penalty",
            ),
            |s| load(&counters(s).book.counters.penalised),
        ),
        per_module(
            modules,
            (
                "serverkit_sessions_refused_unauthenticated",
                Kind::Counter,
                "Sessions refused over max_unauthenticated_per_address",
            ),
            |s| load(&counters(s).book.counters.refused),
        ),
        per_module(
            modules,
            (
                "serverkit_stored_passwords_refused",
                Kind::Counter,
                "Stored passwords refused unchecked (unknown scheme, malformed, cost above the caps)",
            ),
            |s| load(&counters(s).book.counters.hashes_refused),
        ),
    ]
}

fn tls_and_proxy(modules: &[Arc<ModuleSlot>]) -> Vec<Family> {
    let mut handshakes = Family::new(
        "serverkit_tls_handshakes",
        Kind::Counter,
        "TLS handshakes completed, by protocol version",
    );
    for slot in modules {
        let s = &slot.stats;
        let (ok, tls13) = (load(&s.tls_ok), load(&s.tls13));
        for (version, n) in [("TLSv1.3", tls13), ("TLSv1.2", ok.saturating_sub(tls13))] {
            let labels = vec![("module", slot.name.clone()), ("version", version.into())];
            handshakes.add(labels, n);
        }
    }
    vec![
        handshakes,
        per_module(
            modules,
            (
                "serverkit_tls_handshakes_failed",
                Kind::Counter,
                "TLS sessions that ended before their handshake completed",
            ),
            |s| load(&s.stats.tls_failed),
        ),
        per_module(
            modules,
            (
                "serverkit_proxy_connections_refused",
                Kind::Counter,
                "Connections refused for coming from outside proxy_protocol_from",
            ),
            |s| load(&s.stats.proxy_refused),
        ),
        per_module(
            modules,
            (
                "serverkit_proxy_headers_failed",
                Kind::Counter,
                "Connections closed for a missing, late or malformed PROXY header",
            ),
            |s| load(&s.stats.proxy_failed),
        ),
    ]
}

fn syslog(syslog: Option<&Syslog>) -> Vec<Family> {
    let Some(syslog) = syslog else {
        return Vec::new();
    };
    let (sent, dropped) = syslog.counts();
    let mut sent_family = Family::new(
        "serverkit_syslog_datagrams_sent",
        Kind::Counter,
        "Log datagrams sent to the remote syslog",
    );
    sent_family.add(Vec::new(), sent);
    let mut dropped_family = Family::new(
        "serverkit_syslog_datagrams_dropped",
        Kind::Counter,
        "Log datagrams dropped (queue full, or the send failed)",
    );
    dropped_family.add(Vec::new(), dropped);
    vec![sent_family, dropped_family]
}
