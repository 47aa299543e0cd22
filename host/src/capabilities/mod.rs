//! What a module can be given, one folder per capability: what a section grants of it (its
//! grant type, decided in `crate::holdings` from the option-kind table), how the host opens
//! it, and the contract interface through which a module uses it, implemented on a small
//! view of the instance (wasmtime's `add_to_linker` with a getter returning the view, as
//! `wasi-config` does). Every capability charges the instance's meter (`crate::meter`).
//! Capabilities import only the ground floor, the contract and each other's lower parts
//! (maildrop builds on files; connection sends files and starts TLS). `store` is the
//! newest, built this way whole: read it first.
//!
//! Adding one: a folder here with its grant type, its opening and `host.rs` with the view
//! and the `Host` impls; a row in `options::KINDS` if a new option type grants it; its
//! place in `holdings::Grants::decide` and `holdings::Holdings`; a line in
//! `instance::linker`; a test in which a hostile module abuses it.

pub mod auth;
pub mod config;
pub mod connection;
pub mod database;
pub mod files;
pub mod heap;
pub mod listen;
pub mod log;
pub mod maildrop;
pub mod stats;
pub mod store;
pub mod terminal;
pub mod tls;
