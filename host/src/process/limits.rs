//! Process and system limits a server of many sessions runs into: open files (each session
//! holds a socket, pop's a Maildir's descriptor more) and memory mappings (each live
//! instance splits the pool's reservation into several). At startup, still as root, the
//! host raises what it can for the instances its pool holds; what it cannot is logged with
//! the command that would (docs/c11n.md, "Limits the host raises").

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors one session may hold: its socket, and a locked Maildir (pop) or a file
/// being sent (shttp).
const FILES_PER_INSTANCE: u64 = 2;

/// Descriptors besides the sessions': listeners, database connections, logs, the engine.
const FILES_BESIDES_INSTANCES: u64 = 1024;

/// Memory mappings one live instance adds: its linear memory, tables and stack each split
/// the pool's reservation (about 6 measured with 9 000 sessions; 8 leaves room).
const MAPS_PER_INSTANCE: u64 = 8;

/// Mappings besides the instances': code, heap, thread stacks, shared libraries.
const MAPS_BESIDES_INSTANCES: u64 = 16_384;

/// Where the kernel keeps the mapping limit.
const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

/// What became of a limit.
#[derive(Debug, PartialEq)]
pub enum Raised {
    /// It was high enough.
    Enough(u64),
    /// It was raised from the first figure to the second.
    Raised(u64, u64),
    /// It is below what is needed and could not be raised: (limit, needed, why).
    TooLow(u64, u64, String),
}

/// Descriptors `instances` live instances may need.
pub fn files_needed(instances: u64) -> u64 {
    instances * FILES_PER_INSTANCE + FILES_BESIDES_INSTANCES
}

/// Raises the open-files limit for `instances`: the soft limit to the hard one, and the
/// hard one (which needs root's CAP_SYS_RESOURCE) up to what they need, within the
/// kernel's `fs.nr_open`. Reports the soft limit in force.
pub fn raise_open_files(instances: u64) -> nix::Result<Raised> {
    let needed = files_needed(instances);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let mut target = hard;
    if hard < needed {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20);
        target = needed.min(nr_open);
        if setrlimit(Resource::RLIMIT_NOFILE, target, target).is_err() {
            target = hard;
        }
    }
    if soft < target {
        setrlimit(Resource::RLIMIT_NOFILE, target, target.max(hard))?;
    }
    Ok(if target < needed {
        Raised::TooLow(
            target,
            needed,
            format!("the hard limit is {hard} and only root may raise it"),
        )
    } else if target > soft {
        Raised::Raised(soft, target)
    } else {
        Raised::Enough(soft)
    })
}

/// Makes `vm.max_map_count` fit `instances` live instances: raised if it is lower and we
/// may write it (root, outside a read-only /proc/sys), else reported too low.
pub fn ensure_map_count(instances: u64) -> Raised {
    let needed = instances * MAPS_PER_INSTANCE + MAPS_BESIDES_INSTANCES;
    let current = match std::fs::read_to_string(MAX_MAP_COUNT) {
        Ok(text) => text.trim().parse().unwrap_or(0),
        Err(e) => return Raised::TooLow(0, needed, format!("cannot read {MAX_MAP_COUNT}: {e}")),
    };
    if current >= needed {
        return Raised::Enough(current);
    }
    match std::fs::write(MAX_MAP_COUNT, needed.to_string()) {
        Ok(()) => Raised::Raised(current, needed),
        Err(e) => Raised::TooLow(
            current,
            needed,
            format!("cannot write {MAX_MAP_COUNT}: {e}"),
        ),
    }
}

/// Raises both limits for `instances` and logs the outcome: a limit left too low is a
/// warning naming what to run, since it would fail sessions only under load.
pub fn prepare(instances: u64) {
    match raise_open_files(instances) {
        Ok(Raised::Enough(limit)) => tracing::debug!(limit, "open files limit"),
        Ok(Raised::Raised(from, to)) => {
            tracing::info!(
                "raised the open files limit from {from} to {to} for {instances} instances"
            )
        }
        Ok(Raised::TooLow(limit, needed, why)) => tracing::warn!(
            "the open files limit is {limit}, below the {needed} that {instances} instances may need ({why}): past it accepts fail with EMFILE; raise it before starting (ulimit -Hn {needed}, or softlimit -o {needed} under daemontools)"
        ),
        Err(e) => tracing::warn!("could not raise the open files limit: {e}"),
    }
    match ensure_map_count(instances) {
        Raised::Enough(limit) => tracing::debug!(limit, "vm.max_map_count"),
        Raised::Raised(from, to) => {
            tracing::info!("raised vm.max_map_count from {from} to {to} for {instances} instances")
        }
        Raised::TooLow(limit, needed, why) => tracing::warn!(
            "vm.max_map_count is {limit}, below the {needed} that {instances} instances may need ({why}): past about {} live sessions new ones fail; run `sysctl -w vm.max_map_count={needed}` as root",
            limit.saturating_sub(MAPS_BESIDES_INSTANCES) / MAPS_PER_INSTANCE
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_least_at_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        raise_open_files(1).unwrap();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(soft >= hard, "soft {soft} hard {hard}");
    }

    #[test]
    fn a_small_pool_needs_no_change() {
        assert!(matches!(ensure_map_count(1), Raised::Enough(_)));
        assert_eq!(files_needed(10_000), 21_024);
    }
}
