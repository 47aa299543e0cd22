//! Each module's share of a pool that several modules name. A pool is the operator's to
//! share (pop's `users` with a webmail module, say), but one module must not take all of
//! it: each module may hold at most `pool_max` less one connection per other module that
//! names the pool, so every other module always finds one. A pool one module names is
//! all that module's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// The modules naming one pool, and the turns each may hold at once.
pub struct Shares {
    pool_max: usize,
    /// The modules that named the pool at startup.
    named_by: Vec<String>,
    turns: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Shares {
    /// Shares of a pool of `pool_max` connections among the modules `named_by`.
    pub fn new(pool_max: usize, named_by: Vec<String>) -> Self {
        Shares {
            pool_max,
            named_by,
            turns: Mutex::default(),
        }
    }

    /// How many queries `module` may run at once. A module added while serving counts
    /// every module named at startup as another.
    pub fn size(&self, module: &str) -> usize {
        let others = self.named_by.iter().filter(|m| *m != module).count();
        self.pool_max.saturating_sub(others).max(1)
    }

    /// The turns of `module`.
    pub fn of(&self, module: &str) -> Arc<Semaphore> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Every query asks: no key is allocated but the module's first time.
        if let Some(turns) = turns.get(module) {
            return turns.clone();
        }
        let made = Arc::new(Semaphore::new(self.size(module)));
        turns.insert(module.to_string(), made.clone());
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_module_leaves_one_connection_to_every_other() {
        let alone = Shares::new(4, vec!["pop".into()]);
        assert_eq!(
            alone.size("pop"),
            4,
            "a pool one module names is all its own"
        );
        let shared = Shares::new(4, vec!["pop".into(), "webmail".into()]);
        assert_eq!((shared.size("pop"), shared.size("webmail")), (3, 3));
        assert_eq!(shared.size("added"), 2, "a module added later counts both");
        let small = Shares::new(2, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(small.size("a"), 1, "never less than one");
        assert_eq!(shared.of("pop").available_permits(), 3);
        assert!(Arc::ptr_eq(&shared.of("pop"), &shared.of("pop")));
    }
}
