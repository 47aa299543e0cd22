//! Process and system limits a server of many sessions runs into: open files (what the
//! modules' descriptor budgets add up to, plus the host's reserve) and memory mappings
//! (each live instance splits the pool's reservation into several). At startup, still as
//! root, the host raises what it can; what it cannot is logged with the command that would
//! (docs/c11n.md, "Limits the host raises").

use nix::sys::resource::{Resource, getrlimit, setrlimit};

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

/// Raises the open-files limit to `needed`: the soft limit to the hard one, and the hard
/// one (which needs root's CAP_SYS_RESOURCE) up to `needed`, within the kernel's
/// `fs.nr_open`. Reports the soft limit in force.
pub fn raise_open_files(needed: u64) -> nix::Result<Raised> {
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

/// Raises both limits, the open files to `descriptors` and the mappings for `instances`,
/// and logs the outcome: a limit left too low is a warning naming what to run, since it
/// would hold sessions back only under load. Returns the open-files limit in force.
pub fn prepare(instances: u64, descriptors: u64) -> u64 {
    let in_force = match raise_open_files(descriptors) {
        Ok(Raised::Enough(limit)) => {
            tracing::debug!(limit, "open files limit");
            limit
        }
        Ok(Raised::Raised(from, to)) => {
            tracing::info!(
                "raised the open files limit from {from} to {to} for the modules' descriptor budgets"
            );
            to
        }
        Ok(Raised::TooLow(limit, needed, why)) => {
            tracing::warn!(
                "the open files limit is {limit}, below the {needed} the modules' descriptor budgets add up to ({why}): modules share what there is, and their clients wait in the listen backlog when it is taken; raise it before starting (ulimit -Hn {needed}, or softlimit -o {needed} under daemontools)"
            );
            limit
        }
        Err(e) => {
            tracing::warn!("could not raise the open files limit: {e}");
            getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
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
    in_force
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_least_at_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        raise_open_files(1024).unwrap();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(soft >= hard, "soft {soft} hard {hard}");
    }

    #[test]
    fn a_small_pool_needs_no_change() {
        assert!(matches!(ensure_map_count(1), Raised::Enough(_)));
    }
}
