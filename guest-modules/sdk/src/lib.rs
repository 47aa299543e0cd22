//! serverkit-sdk: what a Rust module needs to speak the `serverkit:module` contract.
//!
//! A module implements [`Module`] (only `describe` is required), exports it with
//! [`export!`], and uses the helpers below instead of the raw bindings:
//!
//! ```no_run
//! use serverkit_sdk::{Connection, Descriptor, Module, Version, describe, listen, lines};
//!
//! struct Hello;
//!
//! impl Module for Hello {
//!     fn describe() -> Descriptor {
//!         Descriptor::new("hello", "Echoes every line", Version::new(0, 1, 0))
//!             .options(describe::listen_options(7070, 16))
//!     }
//!     fn prestart() -> Result<(), String> {
//!         listen::plain()?; // the section's address and port
//!         Ok(())
//!     }
//!     fn session(conn: Connection) -> Result<(), String> {
//!         let (lines, mut reply) = lines::split(conn)?;
//!         for line in lines {
//!             reply.line(&line?)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! serverkit_sdk::export!(Hello);
//! ```
//!
//! Layout: [`bindings`] (the contract, generated once from `wit/`), [`module`] (the
//! [`Module`] trait with default hooks), [`client`] (a session's connection as
//! `std::io`, bounded line reading), [`lines`] (a line protocol's session: its lines as
//! an iterator, and the replies), [`error`] (one [`Error`] that `?` converts every
//! failure into, and that converts into a hook's `String`), [`config`] (typed reads of the module's section),
//! [`describe`] (descriptor and vocabulary builders, [`CONTRACT`]), [`listen`] (binding
//! the listeners a section names, in prestart), [`auth`] (password checks and guessing
//! limits done by the host), [`store`] (the module's keyed store, shared by its sessions).
//!
//! The SDK compiles natively too (every host call then panics), so a module's pure logic
//! can keep unit tests that run with a plain `cargo test`.

#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod describe;
pub mod error;
pub mod lines;
pub mod listen;
pub mod module;
pub mod store;

/// The contract's bindings, generated from the checkout's `wit/` (the only definition of
/// the interface), with `wasi:io` mapped onto the `wasip2` crate so a connection's streams
/// are `std::io::Read` and `Write`.
#[expect(missing_docs, reason = "generated code; wit/ documents the contract")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "module",
        // Relative to this crate's manifest: the SDK always compiles from inside a
        // serverkit checkout (a path dependency), so it reads the one published WIT.
        path: "../../wit",
        with: {
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
        },
        // `serverkit_sdk::export!(MyModule)` from a module crate: the macro finds the
        // generated types here, not beside its caller.
        pub_export_macro: true,
        default_bindings_module: "serverkit_sdk::bindings",
    });
}

pub use bindings::export;
pub use bindings::serverkit::module::connection::Connection;
pub use bindings::serverkit::module::types::{
    ConfigValue, Descriptor, OptionSpec, OptionType, Version,
};
pub use bindings::serverkit::module::{
    connection, database, filesystem, heap, log, maildrop, prestart, stats, types,
};
pub use client::{Client, Line};
pub use describe::CONTRACT;
pub use error::Error;
pub use module::Module;

/// The `wasip2` crate the bindings map `wasi:io` onto, for modules that use streams,
/// pollables or clocks directly.
pub use wasip2;
