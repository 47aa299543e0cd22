//! serverkit: ServerKit, the 2008 C server SDK, reborn as a host for sandboxed
//! WebAssembly modules.
//!
//! The host owns everything privileged or shared (listening sockets, pools, threads,
//! statistics); modules are wasm components speaking the `serverkit:module` contract in
//! `wit/`, and each client connection runs in a fresh instance of its module.
//!
//! Layout (docs/architecture.md tells how they fit together):
//! - [`startup`]: ServerKit's startup sequence, from personality to serving.
//! - [`personality`]: the personality directory.
//! - [`contract`]: bindings generated from `wit/`, the version rule, vocabulary translation.
//! - [`modules`]: finding, compiling, loading modules; the versions sessions run on.
//! - [`engine`]: the wasm engine, its epoch ticker, the compiled-module cache.
//! - [`guest_host`]: what an instance gets from the host: its store data and the host side
//!   of each imported interface (log, config, prestart, connection, filesystem, stats,
//!   heap, database, maildrop, stdio).
//! - [`heaps`]: ServerKit's fixed-size allocators, for the host's records and the report.
//! - [`listeners`]: listening sockets bound for modules.
//! - [`tls`]: certificates and private keys read at prestart; rustls server configurations.
//! - [`directories`]: directories and files granted to modules, resolved beneath.
//! - [`databases`]: the database pools and the host runtime their connections live on.
//! - [`maildrops`]: directories opened for modules, and Maildirs beneath them.
//! - [`sessions`]: each served module (slot, worker pool, accept loops, operator), one
//!   instance per session, limits, shutdown.
//! - [`process`]: identity (process title) and credentials (root policy and drop).
//! - [`report`]: the status report, in ServerKit's layout.
//! - [`cli`], [`inspect`], [`logging`], [`failure`]: the binary's edges.

#![deny(missing_docs)]

pub mod cli;
pub mod contract;
pub mod databases;
pub mod directories;
pub mod engine;
pub mod failure;
pub mod guest_host;
pub mod heaps;
pub mod inspect;
pub mod listeners;
pub mod logging;
pub mod maildrops;
pub mod modules;
pub mod personality;
pub mod process;
pub mod report;
pub mod sessions;
pub mod startup;
pub mod tls;
