//! The root policy (ServerKit's `executes_as_root`, `uid`, `gid`) and the privilege drop.
//!
//! Capability bounding sets, inheritable and ambient sets and no_new_privs are per thread
//! on Linux, so the drop is only complete if it runs while the process has a single
//! thread: every thread created afterwards inherits the dropped state. `drop_to` checks
//! that, and the startup sequence starts no thread before it (docs/architecture.md).

use anyhow::{Context, Result, bail, ensure};
use caps::CapSet;
use nix::unistd::{Gid, Uid, User};

/// What the personality asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootPolicy {
    /// `executes_as_root`.
    pub executes_as_root: bool,
    /// `uid` to switch to after prestart.
    pub uid: Option<u32>,
    /// `gid` to switch to after prestart.
    pub gid: Option<u32>,
}

/// Runs `probe` in a child process that has dropped to `uid`/`gid`, and returns what it
/// said (`None` if the child could not be made or run). For startup checks of what the
/// service user will reach once the whole process has dropped; call it only while the
/// process has one thread (before step 8), where `fork` is safe.
pub fn probe_as(
    uid: u32,
    gid: u32,
    probe: impl FnOnce() -> Result<(), String>,
) -> Option<Result<(), String>> {
    use std::io::{Read, Write};
    let (mut reader, mut writer) = std::io::pipe().ok()?;
    // SAFETY: the process has one thread here (startup before the drop, checked by the
    // caller's place in the sequence), so the child inherits no lock held by another
    // thread, and may allocate and do I/O as the parent would.
    match unsafe { nix::unistd::fork() }.ok()? {
        nix::unistd::ForkResult::Child => {
            let said = nix::unistd::setgroups(&[])
                .and_then(|()| nix::unistd::setgid(Gid::from_raw(gid)))
                .and_then(|()| nix::unistd::setuid(Uid::from_raw(uid)))
                .map_err(|e| format!("could not switch to uid {uid}: {e}"))
                .and_then(|()| probe());
            let _ = writer.write_all(said.err().unwrap_or_default().as_bytes());
            drop(writer);
            // Exit without running the parent's destructors or flushing its buffers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(writer);
            let mut said = String::new();
            let read = reader.read_to_string(&mut said);
            let _ = nix::sys::wait::waitpid(child, None);
            read.ok()?;
            Some(if said.is_empty() { Ok(()) } else { Err(said) })
        }
    }
}

/// What to do at the drop.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Not root: run on as the current user, dropping nothing but setting no_new_privs.
    StayUnprivileged,
    /// Root with no `uid`: keep running as root (warned about).
    StayRoot,
    /// Switch to these ids and clear every capability.
    Switch {
        /// The uid to switch to.
        uid: u32,
        /// The gid to switch to.
        gid: u32,
    },
}

/// Applies ServerKit's rules. `euid` is the effective uid now; `primary_gid` finds the
/// primary group of a uid when `gid` is not set.
pub fn plan(
    policy: RootPolicy,
    euid: u32,
    primary_gid: impl Fn(u32) -> Option<u32>,
) -> Result<Plan> {
    if !policy.executes_as_root && (policy.uid.is_some() || policy.gid.is_some()) {
        bail!(
            "`uid` and `gid` need `executes_as_root = true`: switching ids requires starting as root"
        );
    }
    if euid != 0 {
        if policy.uid.is_some() || policy.gid.is_some() {
            tracing::info!("not started as root: running as uid {euid} without switching ids");
        }
        return Ok(Plan::StayUnprivileged);
    }
    if !policy.executes_as_root {
        bail!(
            "started as root, but the personality does not say `executes_as_root = true`: \
             start serverkit as an unprivileged user, or set `executes_as_root = true` with `uid` and `gid` to drop to after prestart"
        );
    }
    let Some(uid) = policy.uid else {
        if policy.gid.is_some() {
            bail!("`gid` is set without `uid`: set both to drop root after prestart");
        }
        return Ok(Plan::StayRoot);
    };
    if uid == 0 {
        bail!("`uid = 0` is root: name the unprivileged uid to drop to after prestart");
    }
    let gid = match policy.gid {
        Some(gid) => gid,
        None => primary_gid(uid).with_context(|| format!("`gid` is not set and uid {uid} has no passwd entry to take its group from: set `gid`"))?,
    };
    if gid == 0 {
        bail!("`gid = 0` is root's group: name an unprivileged gid");
    }
    Ok(Plan::Switch { uid, gid })
}

/// The primary group of `uid` from the passwd database.
pub fn primary_gid(uid: u32) -> Option<u32> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.gid.as_raw())
}

/// Carries out `plan`. Must run while the process has exactly one thread.
pub fn apply(plan: &Plan) -> Result<()> {
    let threads = settled_thread_count()?;
    ensure!(
        threads == 1,
        "internal error: {threads} threads exist at the privilege drop; every thread must start after it"
    );
    match *plan {
        Plan::StayRoot => {
            tracing::warn!(
                "executes_as_root is set without `uid`: serverkit KEEPS RUNNING AS ROOT; set `uid` and `gid` to drop privileges after prestart"
            );
            Ok(())
        }
        Plan::StayUnprivileged => no_new_privs(),
        Plan::Switch { uid, gid } => switch(uid, gid),
    }
}

fn switch(uid: u32, gid: u32) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    nix::unistd::setgroups(&[gid]).context("failed to set supplementary groups")?;
    nix::unistd::setresgid(gid, gid, gid)
        .with_context(|| format!("failed to switch to gid {gid}"))?;
    // The bounding set can only shrink while we still have CAP_SETPCAP, so before setuid.
    // Every capability this kernel knows, which may be fewer than the caps crate knows.
    for cap in caps::runtime::thread_all_supported() {
        caps::drop(None, CapSet::Bounding, cap)
            .with_context(|| format!("failed to drop {cap} from the bounding set"))?;
    }
    caps::clear(None, CapSet::Inheritable).context("failed to clear inheritable capabilities")?;
    caps::clear(None, CapSet::Ambient).context("failed to clear ambient capabilities")?;
    nix::unistd::setresuid(uid, uid, uid)
        .with_context(|| format!("failed to switch to uid {uid}"))?;
    // Leaving uid 0 clears these already; clear them explicitly in case of SECBIT_KEEP_CAPS.
    caps::clear(None, CapSet::Effective).context("failed to clear effective capabilities")?;
    caps::clear(None, CapSet::Permitted).context("failed to clear permitted capabilities")?;
    no_new_privs()?;
    ensure!(
        nix::unistd::setuid(Uid::from_raw(0)).is_err(),
        "root could be regained after the drop"
    );
    tracing::info!(
        uid = uid.as_raw(),
        gid = gid.as_raw(),
        "dropped root: capabilities cleared, no_new_privs set"
    );
    Ok(())
}

fn no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().context("failed to set no_new_privs")
}

/// The number of threads once any that were joined just before have left the kernel's
/// list: `join` returns when a thread has finished running, but its task stays in
/// `/proc/self/task` until the kernel reaps it, a moment later (seen in CI right after
/// the epoch ticker was stopped). A thread still running after a second is a real one.
fn settled_thread_count() -> Result<usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let threads = thread_count()?;
        if threads == 1 || std::time::Instant::now() >= deadline {
            return Ok(threads);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn thread_count() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")
        .context("failed to list /proc/self/task")?
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(executes_as_root: bool, uid: Option<u32>, gid: Option<u32>) -> RootPolicy {
        RootPolicy {
            executes_as_root,
            uid,
            gid,
        }
    }

    fn no_passwd(_: u32) -> Option<u32> {
        None
    }

    #[test]
    fn root_without_executes_as_root_is_refused() {
        let err = plan(policy(false, None, None), 0, no_passwd)
            .unwrap_err()
            .to_string();
        assert!(err.contains("executes_as_root = true"), "{err}");
        // main prints `serverkit: {error}`: the message must not name serverkit first.
        assert!(err.starts_with("started as root, but"), "{err}");
    }

    #[test]
    fn uid_without_executes_as_root_is_an_error_even_unprivileged() {
        assert!(plan(policy(false, Some(30000), None), 1000, no_passwd).is_err());
    }

    #[test]
    fn root_with_uid_and_gid_switches() {
        assert_eq!(
            plan(policy(true, Some(30000), Some(30001)), 0, no_passwd).unwrap(),
            Plan::Switch {
                uid: 30000,
                gid: 30001
            }
        );
    }

    #[test]
    fn gid_defaults_to_the_users_primary_group() {
        assert_eq!(
            plan(policy(true, Some(65534), None), 0, |_| Some(65534)).unwrap(),
            Plan::Switch {
                uid: 65534,
                gid: 65534
            }
        );
        assert!(plan(policy(true, Some(30000), None), 0, no_passwd).is_err());
    }

    #[test]
    fn root_without_uid_stays_root() {
        assert_eq!(
            plan(policy(true, None, None), 0, no_passwd).unwrap(),
            Plan::StayRoot
        );
    }

    #[test]
    fn an_ordinary_user_runs_without_switching() {
        assert_eq!(
            plan(policy(true, Some(65534), Some(65534)), 1000, no_passwd).unwrap(),
            Plan::StayUnprivileged
        );
    }

    #[test]
    fn switching_to_root_ids_is_refused() {
        assert!(plan(policy(true, Some(0), Some(5)), 0, no_passwd).is_err());
        assert!(plan(policy(true, Some(5), Some(0)), 0, no_passwd).is_err());
    }
}
