//! `identity = pop` makes the process show as `server.pop`: in `/proc/PID/comm` (what
//! `ps -c` prints) and as argv[0] in `/proc/PID/cmdline` (what `ps` prints).
//!
//! Rust gives no handle on the argv memory, so, as setproctitle does, we find the argument
//! area through `/proc/self/stat` (fields `arg_start` and `arg_end`) and write there.

use std::ffi::CString;

use anyhow::{Context, Result, ensure};

/// Longest name `/proc/PID/comm` holds (`TASK_COMM_LEN` less the NUL).
const COMM_MAX: usize = 15;

/// The process title for an identity.
pub fn title(identity: &str) -> String {
    format!("server.{identity}")
}

/// Shows the process as `server.<identity>`. Call on the main thread.
pub fn set(identity: &str) -> Result<()> {
    let title = title(identity);
    let comm: String = title.chars().take(COMM_MAX).collect();
    let comm = CString::new(comm).context("identity contains a NUL byte")?;
    nix::sys::prctl::set_name(&comm).context("failed to set the process name")?;
    rewrite_argv(&title)
}

/// Overwrites the argument area with `title` followed by NULs, truncating the title if the
/// original arguments were shorter.
fn rewrite_argv(title: &str) -> Result<()> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").context("failed to read /proc/self/stat")?;
    let (start, end) = arg_area(&stat).context("unexpected /proc/self/stat format")?;
    ensure!(end > start, "empty argument area");
    let len = end - start;
    let bytes = title.as_bytes();
    let n = bytes.len().min(len - 1);
    // SAFETY: [start, end) is this process's argument area as the kernel reports it: the
    // argv strings on the initial stack, mapped, writable, and never freed. The standard
    // library has already copied what it needs; we write only inside the area.
    unsafe {
        let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
        area[..n].copy_from_slice(&bytes[..n]);
        area[n..].fill(0);
    }
    Ok(())
}

/// `arg_start` and `arg_end`: fields 48 and 49 of `/proc/PID/stat` (proc(5)), counted after
/// the command name, which may itself contain spaces and parentheses.
fn arg_area(stat: &str) -> Option<(usize, usize)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
    Some((field(48)?, field(49)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_server_dot_identity() {
        assert_eq!(title("pop"), "server.pop");
    }

    #[test]
    fn finds_the_argument_area_of_this_process() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (start, end) = arg_area(&stat).unwrap();
        assert!(end > start);
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(end - start, cmdline.len());
    }

    #[test]
    fn parses_a_command_name_with_spaces_and_parens() {
        let mut stat = String::from("42 (a b) c) S");
        for n in 4..=52 {
            stat.push_str(&format!(" {n}"));
        }
        assert_eq!(arg_area(&stat), Some((48, 49)));
    }
}
