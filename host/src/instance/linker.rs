//! The one `Linker` every instance is created through: WASI p2 (with no ambient authority
//! granted by the per-instance `WasiCtx`) plus the contract's interfaces, each implemented
//! by its capability on a view of the instance holding only what that interface needs.

use anyhow::Result;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::state::{InstanceState, Phase};
use crate::capabilities::auth::host::{Auth, AuthView};
use crate::capabilities::config::{Config, ConfigView, Types, TypesView};
use crate::capabilities::connection::{ConnectionView, Connections};
use crate::capabilities::database::host::{Database, DatabaseView};
use crate::capabilities::files::host::{Files, FilesView};
use crate::capabilities::heap::host::{HeapView, Heaps};
use crate::capabilities::listen::host::{Prestart, PrestartView};
use crate::capabilities::log::{Log, LogView};
use crate::capabilities::maildrop::host::{MaildropView, Maildrops};
use crate::capabilities::stats::{Stats, StatsView};
use crate::capabilities::store::host::{StoreView, Stores};
use crate::contract::bindings::{
    auth, config, connection, database, filesystem, heap, log, maildrop, prestart, stats, store,
    types,
};

/// Builds the linker, once per engine.
pub fn build(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::<InstanceState>::new(engine);
    // WASI p2 also provides wasi:io, which the contract's connection streams reuse.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    types::add_to_linker::<_, Types>(&mut linker, |_| TypesView)?;
    log::add_to_linker::<_, Log>(&mut linker, |s| LogView {
        module: &s.module.name,
        peer: s.peer,
        meter: &s.meter,
    })?;
    config::add_to_linker::<_, Config>(&mut linker, |s| ConfigView {
        section: s.module.section.as_deref(),
    })?;
    prestart::add_to_linker::<_, Prestart>(&mut linker, prestart_view)?;
    connection::add_to_linker::<_, Connections>(&mut linker, |s| ConnectionView {
        table: &mut s.table,
        meter: &s.meter,
        starttls: s.module.holdings.starttls.get(),
    })?;
    stats::add_to_linker::<_, Stats>(&mut linker, |s| StatsView {
        report: s.module.holdings.report.get(),
    })?;
    heap::add_to_linker::<_, Heaps>(&mut linker, |s| HeapView {
        module: &s.module.name,
        heaps: &s.module.holdings.heaps,
        meter: &s.meter,
    })?;
    store::add_to_linker::<_, Stores>(&mut linker, |s| StoreView {
        store: &s.module.holdings.store,
    })?;
    filesystem::add_to_linker::<_, Files>(&mut linker, |s| FilesView {
        table: &mut s.table,
        granted: &s.module.holdings.files,
        meter: &s.meter,
    })?;
    database::add_to_linker::<_, Database>(&mut linker, |s| DatabaseView {
        module: &s.module.name,
        grant: &s.module.holdings.grants.databases,
        pools: s.module.holdings.databases.get(),
        waits: &s.meter.waits,
    })?;
    maildrop::add_to_linker::<_, Maildrops>(&mut linker, |s| MaildropView {
        table: &mut s.table,
        granted: &s.module.holdings.files,
        meter: &s.meter,
        module: &s.module.name,
    })?;
    auth::add_to_linker::<_, Auth>(&mut linker, |s| AuthView {
        module: &s.module.name,
        logins: &s.module.holdings.logins,
        peer: s.peer,
        session: &mut s.login,
        meter: &s.meter,
    })?;
    Ok(linker)
}

fn prestart_view(s: &mut InstanceState) -> PrestartView<'_> {
    let holdings = &s.module.holdings;
    PrestartView {
        module: &s.module.name,
        listen: &holdings.grants.listen,
        tls: &holdings.grants.tls,
        prepared: &holdings.starttls,
        results: match &mut s.phase {
            Phase::Prestart(results) => Some(results),
            Phase::Unprivileged => None,
        },
    }
}
