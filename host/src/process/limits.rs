//! Process resource limits: a server holding thousands of sessions needs thousands of file
//! descriptors, so the soft limit is raised to the hard one at startup (as nginx's
//! `worker_rlimit_nofile` does); the hard limit stays the operator's to set (`softlimit`,
//! `ulimit -Hn`).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_open_files() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let raised = super::raise_open_files().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, raised), (hard, hard));
    }
}
