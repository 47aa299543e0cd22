//! The module contract: bindings generated from `wit/`, the version rule, and the
//! translation between a module's descriptor and c11n's vocabulary.

pub mod bindings;
pub mod version;
pub mod vocabulary;
