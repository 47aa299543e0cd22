//! Issue 12 item 8: what a module writes to the log (`log` calls, stdout, stderr) cannot
//! forge a line: every control character is escaped and each event stays one line; stdout
//! lines count against `max_log_events` like `log` calls. The error a session, operator or
//! prestart returns is logged cut to 4 KiB, like a `log` call.

use std::time::Duration;

use super::{Intruder, bystander_served, start};

#[test]
fn a_module_cannot_forge_log_lines_or_flood_through_stdout() {
    let (mut server, intruder) = start("  max_log_events = 50", "");
    assert_eq!(Intruder::connect(intruder).answer("log-forge"), "forged");
    server.wait_for_log("FORGED-STDERR", Duration::from_secs(5));
    let log = server.log();
    // Each would-be line is inside the module's own event, after its escaped CR or LF.
    for (forged, after) in [
        ("FORGED-LOG", "innocent\\x0aFORGED-LOG"),
        ("FORGED-STDOUT", "stdout\\x0dFORGED-STDOUT"),
        ("FORGED-STDERR", "\\x0dFORGED-STDERR"),
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(forged)).collect();
        assert_eq!(lines.len(), 1, "{forged}: {lines:?}");
        assert!(
            lines[0].contains(after) && lines[0].contains("intruder"),
            "{forged} is the module's own event: {}",
            lines[0]
        );
    }
    for (raw, name) in [
        ('\x1b', "ESC"),
        ('\r', "CR"),
        ('\x07', "BEL"),
        ('\0', "NUL"),
        ('\x7f', "DEL"),
        ('\u{9b}', "CSI"),
    ] {
        assert!(!log.contains(raw), "a raw {name} reached the log:\n{log}");
    }
    for escaped in [
        "\\x1b[2K",
        "\\x1b]0;title\\x07",
        "\\x00nul",
        "\\x9b31m",
        "red\\x7f",
    ] {
        assert!(log.contains(escaped), "{escaped} is shown escaped:\n{log}");
    }

    // 20 000 stdout lines from one session: the budget's 50 are logged, the rest dropped.
    assert_eq!(
        Intruder::connect(intruder).answer("stdout-flood 20000"),
        "flooded"
    );
    server.wait_for_log(
        "an instance hit limit `max_log_events = 50`: dropping the rest of its log",
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(200));
    let flood = server.log().matches("stdout flood ").count();
    assert_eq!(flood, 50, "stdout counts against max_log_events");
    bystander_served(&server, "after the log attacks");
}

/// 16 MiB of control characters as a session's error: logged escaped (four bytes each)
/// it would be a 64 MiB line per session, a flood that no `max_log_events` counted.
#[test]
fn a_sessions_error_is_logged_cut_to_4_kib() {
    let (mut server, intruder) = start("", "");
    let mut session = Intruder::connect(intruder);
    session.client().send("fail-with 16777216");
    assert_eq!(session.client().line(), None, "the session ended");
    server.wait_for_log("session ended with an error", Duration::from_secs(10));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("session ended with an error"))
        .unwrap();
    assert!(line.contains("\\x01\\x01"), "{line}");
    assert!(line.len() < 4 * 4096 + 200, "{} bytes", line.len());
    bystander_served(&server, "after a session's huge error");
}
