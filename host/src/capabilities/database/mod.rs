//! Databases for modules: the pools a module's `database-ref` options name (its
//! [`DatabaseGrant`]) and `serverkit:module/database` (`host`). The pools themselves are
//! the host's, shared by every module that names them (`crate::databases`).

pub mod host;

/// The database pools a module's section names.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DatabaseGrant {
    /// The titles of the `database` sections its `database-ref` options name.
    pub pools: Vec<String>,
}
