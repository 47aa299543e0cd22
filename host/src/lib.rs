//! serverkit: ServerKit, the 2008 C server SDK, reborn as a host for sandboxed
//! WebAssembly modules.
//!
//! The host owns everything privileged or shared (listening sockets, pools, threads,
//! statistics); modules are wasm components speaking the `serverkit:module` contract in
//! `wit/`, and each client connection runs in a fresh instance of its module.
//!
//! Layout, from the ground floor up; a layer imports only the layers below it, except
//! bindgen's generated cycle between [`contract`] and the capability types it maps WIT
//! resources to (docs/architecture.md tells how they fit together):
//!
//! 1. Ground: [`meter`] (per-module accounting: budgets, memory, descriptors, CPU, log,
//!    wait channels), [`heaps`] (ServerKit's allocators), [`engine`] (the wasm engine,
//!    epoch ticker, compile cache), [`process`] (identity, credentials, system limits),
//!    [`logging`], [`personality`], [`failure`], [`text`].
//! 2. [`contract`]: bindings generated from `wit/`, the version rule.
//! 3. [`options`]: what each kind of option means to the host (the option-kind table),
//!    the host's session options, a descriptor as a c11n section.
//! 4. [`databases`]: the database pools and the host runtime their connections live on.
//! 5. [`capabilities`]: one folder per capability (listen, tls, files, maildrop, database,
//!    terminal, heap, log, config, connection, stats): its grant, its opening, its
//!    interface on a view of the instance.
//! 6. [`holdings`]: what a module's section grants, decided once, and what the host holds
//!    for it, carried whole across swaps.
//! 7. [`instance`]: one instance's store data, the linker of views, instance creation.
//! 8. [`modules`]: finding, compiling, loading modules; the versions sessions run on.
//! 9. [`sessions`]: each served module (slot, worker pool, accept loops, operator), one
//!    instance per session, shutdown.
//! 10. [`report`]: the status report, in ServerKit's layout; [`metrics`]: its figures for
//!     Prometheus at `GET /metrics`.
//! 11. [`startup`]: ServerKit's startup sequence, from personality to serving; reloads.
//! 12. [`cli`], [`inspect`], [`scaffold`] (`serverkit new`): the binary's edges.

#![deny(missing_docs)]

pub mod capabilities;
pub mod cli;
pub mod contract;
pub mod databases;
pub mod engine;
pub mod failure;
pub mod heaps;
pub mod holdings;
pub mod inspect;
pub mod instance;
pub mod logging;
pub mod meter;
pub mod metrics;
pub mod modules;
pub mod options;
pub mod personality;
pub mod process;
pub mod report;
pub mod scaffold;
pub mod sessions;
pub mod startup;
pub mod text;
