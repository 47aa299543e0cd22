//! The session engine: per-module worker pools, accept loops with back-pressure, one fresh
//! sandboxed instance per connection, time limits, and graceful shutdown.

pub mod options;
pub mod server;
pub mod session;
pub mod stats;
pub mod waits;
