//! The one `Linker` every instance is created through: WASI p2 (with no ambient authority
//! granted by the per-instance `WasiCtx`) plus the contract's host interfaces.

use anyhow::Result;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::state::InstanceState;
use crate::contract::bindings::{
    config, connection, database, filesystem, heap, log, maildrop, prestart, stats, types,
};

/// Builds the linker, once per engine.
pub fn build(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    // WASI p2 also provides wasi:io, which the contract's connection streams reuse.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    config::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    prestart::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    connection::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    stats::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    heap::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    filesystem::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    database::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    maildrop::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}
