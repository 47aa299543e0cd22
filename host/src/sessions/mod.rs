//! The session engine: per-module worker pools, accept loops with back-pressure, one fresh
//! sandboxed instance per connection, time limits, and graceful shutdown.

pub mod live;
pub mod operator;
pub mod proxy;
pub mod running;
pub mod server;
pub mod session;
pub mod slot;
pub mod stats;
pub mod threads;

/// What a trap or host failure was, in one line: the wasm trap's kind if there is one
/// (`wasm trap: out of bounds memory access`), else the root cause (`resource table has
/// no free keys`). The full error carries a wasm backtrace, which is not for the log.
pub(crate) fn describe_failure(error: &anyhow::Error) -> String {
    if let Some(trap) = error
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime::Trap>())
    {
        return trap.to_string();
    }
    let root = error.root_cause().to_string();
    root.lines().next().unwrap_or(&root).to_string()
}
