//! The module servers running now: those started at step 9, plus modules added while
//! serving, minus those removed. The report and the shutdown read it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::server::ModuleServer;
use super::slot::ModuleSlot;

/// Every running module server, in start order.
#[derive(Default)]
pub struct RunningServers {
    servers: Mutex<Vec<ModuleServer>>,
}

impl RunningServers {
    fn lock(&self) -> MutexGuard<'_, Vec<ModuleServer>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a started server.
    pub fn add(&self, server: ModuleServer) {
        self.lock().push(server);
    }

    /// Each module and a handle on its pool, for the report.
    pub fn modules(&self) -> Vec<(Arc<ModuleSlot>, Handle)> {
        self.lock()
            .iter()
            .map(|s| (s.slot().clone(), s.handle()))
            .collect()
    }

    /// Stops `name` accepting at once, then, on a thread of its own, waits for its live
    /// sessions (up to `drain`, if given) and stops its pool. Returns whether it ran.
    pub fn retire(&self, name: &str, drain: Option<Duration>) -> bool {
        let server = {
            let mut servers = self.lock();
            let Some(at) = servers.iter().position(|s| s.slot().name == name) else {
                return false;
            };
            servers.remove(at)
        };
        server.stop_accepting();
        let owned = name.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("retire-{name}"))
            .spawn(move || {
                let name = owned;
                // No bound: wait as long as sessions last (a year stands for ever).
                let deadline = Instant::now() + drain.unwrap_or(Duration::from_secs(365 * 86400));
                let abandoned = server.drain(deadline);
                if abandoned > 0 {
                    tracing::warn!(module = %name, abandoned, "drain deadline passed: closing live sessions");
                }
                server.stop();
                tracing::info!(module = %name, "removed module stopped");
            });
        if let Err(e) = spawned {
            tracing::error!("module `{name}` stopped at once: no thread to drain it: {e}");
        }
        true
    }

    /// Every server, to drain and stop at shutdown.
    pub fn take_all(&self) -> Vec<ModuleServer> {
        std::mem::take(&mut *self.lock())
    }
}
