//! vtstats on a pseudo-terminal: the report appears every interval, the screen is cleared
//! between reports, and console blanking is turned off.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::harness::{Server, TestPersonality, echo_c11n, free_port};

#[test]
fn the_report_appears_on_the_terminal_every_interval() {
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let tty = nix::unistd::ttyname(&pty.slave).unwrap();
    let port = free_port();
    let c11n = format!(
        "{}vtstats {{\n  tty = {}\n  interval = 1\n  disable_blanking = on\n}}\n",
        echo_c11n(port, ""),
        tty.display()
    );
    let server = Server::start(TestPersonality::new(&c11n), port);
    server.client().echo("one session for the figures");

    // Read what the terminal shows for three seconds and a half.
    let flags = nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    let mut master = std::fs::File::from(pty.master);
    let mut shown = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        let mut buf = [0u8; 8192];
        match master.read(&mut buf) {
            Ok(n) => shown.extend_from_slice(&buf[..n]),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let shown = String::from_utf8_lossy(&shown);
    let reports = shown.matches("ServerKit status report").count();
    assert!(
        (2..=5).contains(&reports),
        "a report a second, not more: {reports} in\n{shown}"
    );
    assert_eq!(
        shown.matches("\x1b[H\x1b[2J").count(),
        reports,
        "the screen is cleared before each report"
    );
    assert!(shown.starts_with("\x1b[9;0]"), "blanking is disabled first");
    assert!(
        shown.contains("Module echo") && shown.contains("Module vtstats"),
        "{shown}"
    );
    assert!(shown.contains("echo_workers"), "{shown}");
    assert!(
        pty.slave.as_raw_fd() >= 0,
        "the slave stays open while the server writes"
    );
}
