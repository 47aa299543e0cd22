//! Defence in depth after the privilege drop: a seccomp-bpf filter, built with the
//! `seccompiler` crate (rust-vmm, Firecracker's), that makes the kernel refuse the system
//! calls serverkit never needs. It is installed at startup step 8 while the process has
//! one thread, and every later thread inherits it (`Seccomp: 2` in each
//! `/proc/PID/task/*/status`). `seccomp = false` in c11n leaves it out, for debugging.
//!
//! What is denied, and why the host can do without it:
//! - running programs: `execve`, `execveat` (the host never runs one; with no_new_privs a
//!   setuid program would not regain root, but any program is code the sandbox did not vet);
//! - other processes' memory: `ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`, `kcmp`;
//! - the file system namespace: `mount`, `umount2`, `pivot_root`, `chroot` and the new
//!   mount API (`fsopen`, `fsconfig`, `fsmount`, `fspick`, `move_mount`, `open_tree`,
//!   `mount_setattr`), `open_by_handle_at`;
//! - namespaces: `setns`, `unshare`, and `clone` with any `CLONE_NEW*` flag (an unprivileged
//!   user namespace is a large kernel surface). `clone3` passes its flags in memory, where a
//!   filter cannot read them, so it fails with `ENOSYS` instead, on which glibc (2.34 and
//!   later) creates threads with `clone`: the host's threads all start under the filter;
//! - the kernel itself: `kexec_load`, `kexec_file_load`, `init_module`, `finit_module`,
//!   `delete_module`, `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*` (whose
//!   operations no seccomp filter sees), `keyctl`, `add_key`, `request_key`,
//!   `fanotify_init`, `syslog` (the kernel log);
//! - the machine: `reboot`, `swapon`, `swapoff`, `acct`, `quotactl`, `quotactl_fd`,
//!   `settimeofday`, `clock_settime`, `clock_adjtime`, `adjtimex`, `sethostname`,
//!   `setdomainname`, `vhangup`;
//! - `personality`, except the query `personality(0xffffffff)`: a change (such as
//!   `READ_IMPLIES_EXEC` or `ADDR_NO_RANDOMIZE`) weakens what the process maps next;
//! - on x86_64, `iopl`, `ioperm`, `modify_ldt`, `uselib`, `_sysctl`, and every call of the
//!   x32 ABI (numbers with bit 30 set: they name the same calls under other numbers, so a
//!   deny list must close them). Calls of another architecture (i386 through `int 0x80`)
//!   kill the process: that is seccompiler's architecture check.
//!
//! Each denied call fails with `EPERM`, `execve` included. Killing the process on `execve`
//! would make an exploit louder, but it would also hand a way to stop the whole server to
//! any code path that can be made to try it, and the call is refused all the same; an
//! `EPERM` shows up as "Operation not permitted" in the error that follows. The filter is a
//! deny list, not an allow list: the host runs wasmtime, tokio, rustls, three database
//! drivers and SQLite, and an allow list would break on a dependency's next syscall.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The c11n core option that turns the filter off.
pub const OPTION: &str = "seccomp";

/// `personality`'s argument that only reads the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// Every `CLONE_NEW*` flag `clone` accepts (`CLONE_NEWTIME` only exists for `clone3` and
/// `unshare`, which are handled whole).
const CLONE_NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// Denied whatever their arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_open_by_handle_at,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_fanotify_init,
    libc::SYS_syslog,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_modify_ldt,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
];

/// Installs the filter when `enabled`, or says loudly that it is off. Call after the
/// privilege drop, while the process has one thread.
pub fn apply(enabled: bool) -> Result<()> {
    if !enabled {
        tracing::warn!(
            "`{OPTION} = false`: no system call filter; meant for debugging, not for serving"
        );
        return Ok(());
    }
    install(&programs()?).with_context(|| {
        format!("failed to install the seccomp filter (`{OPTION} = false` runs without it)")
    })?;
    tracing::info!(
        "seccomp filter installed: {} system calls denied, and `personality` changes and `clone` into a namespace",
        DENIED.len()
    );
    Ok(())
}

/// The BPF programs, in the order they are installed.
pub fn programs() -> Result<Vec<BpfProgram>> {
    let mut programs = vec![
        compile(denials()?, libc::EPERM)?,
        compile(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            libc::ENOSYS,
        )?,
    ];
    if cfg!(target_arch = "x86_64") {
        programs.push(x32_guard());
    }
    Ok(programs)
}

/// Installs `programs` on the calling thread (and, should one exist, every other: TSYNC).
/// seccompiler sets no_new_privs first, which the kernel requires of a caller without
/// `CAP_SYS_ADMIN`: a server that keeps root (`uid` unset) gets it too.
pub fn install(programs: &[BpfProgram]) -> Result<()> {
    for program in programs {
        seccompiler::apply_filter_all_threads(program).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// The rules of the main program: each denied call, `personality` unless it queries, and
/// `clone` with a namespace flag.
fn denials() -> Result<BTreeMap<i64, Vec<SeccompRule>>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&call| (call, Vec::new())).collect();
    let changes_persona = condition(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        PERSONALITY_QUERY,
    )?;
    rules.insert(libc::SYS_personality, vec![rule(changes_persona)?]);
    let namespaces = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            rule(condition(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, namespaces);
    Ok(rules)
}

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| anyhow!("seccomp condition: {e}"))
}

fn rule(condition: SeccompCondition) -> Result<SeccompRule> {
    SeccompRule::new(vec![condition]).map_err(|e| anyhow!("seccomp rule: {e}"))
}

/// A program failing the calls of `rules` with `errno` and allowing the rest.
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: libc::c_int) -> Result<BpfProgram> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| anyhow!("seccomp does not support {}: {e}", std::env::consts::ARCH))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| anyhow!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e| anyhow!("seccomp filter: {e}"))
}

/// Bit 30 of a system call number on x86_64: the x32 ABI.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Fails every x32 call with `EPERM`. seccompiler matches numbers one by one, so this one
/// range check is four instructions written here: load the number, compare, return.
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const NR_OFFSET: u32 = 0; // seccomp_data.nr
    let op = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, 0, 0, NR_OFFSET),
        // At or above the bit: go on to the next instruction (deny), else skip it.
        op(JGE_K, 0, 1, X32_SYSCALL_BIT),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use std::io::Error;

    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::ForkResult;

    use super::*;

    /// The errno of the last call.
    fn errno() -> i32 {
        Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// Whether a raw call failed with `expected`.
    fn fails_with(result: libc::c_long, expected: i32) -> bool {
        result == -1 && errno() == expected
    }

    fn execve_is_refused() -> bool {
        let argv = [c"/bin/false".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: NUL-terminated path and arrays. Should the call succeed, the child
        // becomes /bin/false, whose exit status 1 reads as this check's failure.
        let r = unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
        fails_with(r.into(), libc::EPERM)
    }

    fn execveat_is_refused() -> bool {
        let argv = [c"/bin/false".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: as for execve.
        let r = unsafe {
            libc::syscall(
                libc::SYS_execveat,
                libc::AT_FDCWD,
                argv[0],
                argv.as_ptr(),
                envp.as_ptr(),
                0,
            )
        };
        fails_with(r, libc::EPERM)
    }

    fn a_user_namespace_is_refused() -> bool {
        // SAFETY: unshare takes flags only.
        let unshared = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
        let unshare_refused = fails_with(unshared.into(), libc::EPERM);
        // A fork-like clone into a new user namespace: a child that exists exits at once.
        let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
        // SAFETY: no new stack, so the child (if any) runs on a copy of ours and leaves.
        let cloned = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if cloned == 0 {
            // SAFETY: the clone child leaves without running anything else.
            unsafe { libc::_exit(0) };
        }
        unshare_refused && fails_with(cloned, libc::EPERM)
    }

    fn clone3_says_enosys() -> bool {
        // SAFETY: a null argument is rejected by the kernel (EFAULT/EINVAL) if it runs.
        fails_with(
            unsafe { libc::syscall(libc::SYS_clone3, 0, 0) },
            libc::ENOSYS,
        )
    }

    fn ptrace_and_mount_are_refused() -> bool {
        // SAFETY: PTRACE_TRACEME takes no pointers; mount is given null pointers, which
        // the kernel would refuse with EFAULT if it ran.
        let traced = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
        let mounted = unsafe {
            libc::mount(
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
            )
        };
        fails_with(traced, libc::EPERM) && fails_with(mounted.into(), libc::EPERM)
    }

    fn personality_may_be_read_not_changed() -> bool {
        // SAFETY: personality takes a number.
        let current = unsafe { libc::personality(PERSONALITY_QUERY as libc::c_ulong) };
        let changed = unsafe { libc::personality(0x0040_0000) }; // READ_IMPLIES_EXEC
        current >= 0 && fails_with(changed.into(), libc::EPERM)
    }

    fn x32_calls_are_refused() -> bool {
        if cfg!(not(target_arch = "x86_64")) {
            return true;
        }
        // getpid through the x32 ABI: ENOSYS without x32 support, EPERM under the filter.
        let nr = libc::SYS_getpid | libc::c_long::from(X32_SYSCALL_BIT as i32);
        fails_with(unsafe { libc::syscall(nr) }, libc::EPERM)
    }

    fn threads_still_start() -> bool {
        std::thread::spawn(|| 42).join().is_ok_and(|n| n == 42)
    }

    /// A check run under the filter: what it proves, and whether it held.
    type Check = (&'static str, fn() -> bool);

    const CHECKS: [Check; 8] = [
        ("execve is refused with EPERM", execve_is_refused),
        ("execveat is refused with EPERM", execveat_is_refused),
        (
            "unshare and clone into a user namespace are refused",
            a_user_namespace_is_refused,
        ),
        ("clone3 fails with ENOSYS", clone3_says_enosys),
        ("ptrace and mount are refused", ptrace_and_mount_are_refused),
        (
            "personality may be read, not changed",
            personality_may_be_read_not_changed,
        ),
        ("x32 calls are refused", x32_calls_are_refused),
        (
            "threads start under the filter (clone3 falls back to clone)",
            threads_still_start,
        ),
    ];

    /// Installs the filter in a forked child and runs every check there: the exit status
    /// is 0, or 1 + the index of the first check that failed (100: not installed).
    #[test]
    fn denied_calls_fail_in_a_filtered_process_and_threads_still_start() {
        let programs = programs().unwrap();
        // SAFETY: the child only installs the filter (no allocation), makes the calls
        // above and leaves with _exit; glibc keeps malloc usable after fork for the thread.
        match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Child => {
                let code = match install(&programs) {
                    Ok(()) => CHECKS
                        .iter()
                        .position(|(_, check)| !check())
                        .map_or(0, |i| i as i32 + 1),
                    Err(_) => 100,
                };
                // SAFETY: leaves the child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) => {}
                WaitStatus::Exited(_, 100) => panic!("the filter could not be installed"),
                WaitStatus::Exited(_, n) => panic!("failed: {}", CHECKS[n as usize - 1].0),
                other => panic!("the filtered child did not exit: {other:?}"),
            },
        }
    }

    #[test]
    fn every_program_compiles_for_this_machine() {
        let programs = programs().unwrap();
        assert_eq!(
            programs.len(),
            if cfg!(target_arch = "x86_64") { 3 } else { 2 }
        );
        assert!(programs.iter().all(|p| !p.is_empty()));
    }
}
