//! The session engine: per-module worker pools, accept loops with back-pressure, one fresh
//! sandboxed instance per connection, time limits, and graceful shutdown.

pub mod options;
pub mod server;
pub mod session;
pub mod stats;
pub mod threads;
pub mod waits;

/// The first line of an error's text: traps carry a wasm backtrace after it.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
