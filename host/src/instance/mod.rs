//! One module instance: its store data (a WASI context granting nothing, its resource
//! table, its module's context and its meter), the linker that hands each interface a view
//! of it, and its creation under a CPU budget.
//!
//! - `state`: [`state::InstanceState`] and how it is built for a hook or a session.
//! - `linker`: the one `Linker`, one view per interface.
//! - `create`: a fresh store and instance.

pub mod create;
pub mod linker;
pub mod state;

pub use create::{HOOK_CPU_BUDGET, HOOK_WALL_TIMEOUT, create, create_bare, within_hook_wall};
pub use state::{InstanceState, Phase};
