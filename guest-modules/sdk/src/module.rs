//! The [`Module`] trait: the contract's hooks with the defaults most modules write by hand.

use crate::bindings::Guest;
use crate::{Connection, Descriptor};

/// A serverkit module. Only [`Module::describe`] is required; every other hook has the
/// default a module without that need would write. Export it with
/// `serverkit_sdk::export!(MyModule)`.
///
/// The host calls each hook in a fresh instance: nothing a hook stores in memory is seen
/// by the next one (see `docs/module-guide.md`).
pub trait Module {
    /// Who the module is and what its section accepts. Must not call the host.
    fn describe() -> Descriptor;

    /// Checks that need no configuration, at load and before a hot swap is published.
    fn construct() -> Result<(), String> {
        Ok(())
    }

    /// Privileged setup, as root, once: bind listeners here (see [`crate::listen`]).
    fn prestart() -> Result<(), String> {
        Ok(())
    }

    /// Long-running work after the privilege drop; returns at once by default.
    fn operator() -> Result<(), String> {
        Ok(())
    }

    /// Serves one client connection. By default refuses it: a module that binds no
    /// listener is never called here.
    fn session(conn: Connection) -> Result<(), String> {
        drop(conn);
        Err("this module serves no connections".into())
    }

    /// Lines for the status report; none by default.
    fn report() -> Vec<String> {
        Vec::new()
    }
}

/// The generated export glue calls `Guest`; every `Module` is one.
impl<T: Module> Guest for T {
    fn describe() -> Descriptor {
        T::describe()
    }

    fn construct() -> Result<(), String> {
        T::construct()
    }

    fn prestart() -> Result<(), String> {
        T::prestart()
    }

    fn operator() -> Result<(), String> {
        T::operator()
    }

    fn session(conn: Connection) -> Result<(), String> {
        T::session(conn)
    }

    fn report() -> Vec<String> {
        T::report()
    }
}
