//! Descriptors a module's instances hold (their sockets, the files and Maildirs they
//! open), counted twice: against the module's `max_descriptors`, and against what the
//! process may open minus a reserve the host keeps for itself (listeners, database
//! connections, logs). A module past its budget is refused (or, for accepting, made to
//! wait), so it can never take the descriptors another module or the host needs.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors the host keeps outside every module's budget: listeners, database
/// connections, the log, the engine, the reload thread's files.
pub const HOST_RESERVED_DESCRIPTORS: usize = 1024;

/// The descriptors all modules together may hold: the process's open-files limit minus
/// [`HOST_RESERVED_DESCRIPTORS`]. One per process.
#[derive(Debug, Clone)]
pub struct ProcessDescriptors(Arc<Semaphore>);

impl ProcessDescriptors {
    /// The modules' share of an open-files limit of `limit`.
    pub fn new(limit: usize) -> Self {
        let share = limit
            .saturating_sub(HOST_RESERVED_DESCRIPTORS)
            .clamp(1, Semaphore::MAX_PERMITS);
        ProcessDescriptors(Arc::new(Semaphore::new(share)))
    }

    /// Descriptors free for modules now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

impl Default for ProcessDescriptors {
    /// The modules' share of the soft open-files limit in force now.
    fn default() -> Self {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        ProcessDescriptors::new(usize::try_from(limit).unwrap_or(usize::MAX))
    }
}

/// One module's descriptor budget, and the process's.
#[derive(Debug)]
pub struct Descriptors {
    module: Arc<Semaphore>,
    process: ProcessDescriptors,
}

/// One descriptor held, counted in both budgets until dropped.
#[derive(Debug)]
pub struct DescriptorPermit {
    _module: OwnedSemaphorePermit,
    _process: OwnedSemaphorePermit,
}

impl Descriptors {
    /// A budget of `budget` descriptors for one module, within `process`.
    pub fn new(budget: usize, process: ProcessDescriptors) -> Self {
        Descriptors {
            module: Arc::new(Semaphore::new(budget.min(Semaphore::MAX_PERMITS))),
            process,
        }
    }

    /// One descriptor now, or `None` if the module or the process has none left.
    pub fn try_take(&self) -> Option<DescriptorPermit> {
        let module = self.module.clone().try_acquire_owned().ok()?;
        let process = self.process.0.clone().try_acquire_owned().ok()?;
        Some(DescriptorPermit {
            _module: module,
            _process: process,
        })
    }

    /// One descriptor, waiting until both budgets have one (accepting a client).
    pub async fn take(&self) -> DescriptorPermit {
        // Neither semaphore is ever closed.
        let module = self.module.clone().acquire_owned().await;
        let process = self.process.0.clone().acquire_owned().await;
        DescriptorPermit {
            _module: module.expect("the module's descriptor budget is never closed"),
            _process: process.expect("the process's descriptor budget is never closed"),
        }
    }

    /// Descriptors the module may still take.
    pub fn available(&self) -> usize {
        self.module.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_held_to_its_budget_and_the_process_to_its_share() {
        let process = ProcessDescriptors::new(HOST_RESERVED_DESCRIPTORS + 3);
        let a = Descriptors::new(2, process.clone());
        let b = Descriptors::new(5, process.clone());
        let held: Vec<_> = (0..2).map(|_| a.try_take().unwrap()).collect();
        assert!(a.try_take().is_none(), "past the module's budget");
        let one = b.try_take().unwrap();
        assert!(b.try_take().is_none(), "past the process's share");
        assert_eq!(b.available(), 4, "a refused take holds nothing more");
        drop(held);
        drop(one);
        assert_eq!(process.available(), 3);
    }
}
