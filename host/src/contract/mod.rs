//! The module contract: bindings generated from `wit/` and the version rule.

pub mod bindings;
pub mod bounded;
pub mod version;
