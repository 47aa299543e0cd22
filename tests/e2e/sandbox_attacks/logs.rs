//! Issue 12 item 8: what a module writes to the log (`log` calls, stdout, stderr) cannot
//! forge a line: every control character is escaped and each event stays one line; stdout
//! lines count against `max_log_events` like `log` calls. The error a session, operator or
//! prestart returns is logged cut to 4 KiB, like a `log` call. A reader of stderr that
//! stops reading costs log lines, never a module's worker, and a module flooding it
//! loses only its own lines.

use std::time::Duration;

use super::{Intruder, bystander_served, personality, sections, start};
use crate::harness::{binary, free_port};

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

/// multilog stalled (a full disk, a stopped logger): stderr's pipe fills and stays full.
/// A module logging 5000 lines (about 400 KB, six pipes' worth) must still answer, and
/// so must its next session: no thread waits for the pipe.
#[test]
fn a_stalled_log_reader_stalls_no_session() {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let text = sections(
        intruder_port,
        "  max_log_events = 6000\n  min_threads = 2",
        echo_port,
    );
    let intruder = std::net::SocketAddr::from(([127, 0, 0, 1], intruder_port));
    let (mut child, _personality) = serving_with_stderr_unread(&text, intruder);
    let flood = Intruder::connect(intruder).ask("stdout-flood 5000");
    let forged = Intruder::connect(intruder).ask("log-forge");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        flood.as_deref(),
        Some("flooded"),
        "a session waited for the full pipe"
    );
    assert_eq!(
        forged.as_deref(),
        Some("forged"),
        "the next session waited too"
    );
}

/// stderr's reader lags while a module floods the log: the queue in front of it fills,
/// and before each module had a share of it, the flood took all of it, so another
/// module's lines were dropped. The intruder writes 12 MB of log lines into a pipe nobody
/// reads yet, then 3000 short ones; echo's warning after them must still reach the log
/// once the reader reads.
#[test]
fn a_module_flooding_a_lagging_log_cannot_crowd_out_another_modules_lines() {
    // Large lines fill the queue, then one-byte lines fill what room they leave, so no
    // line longer than the shortest flood line could fit any more.
    let text = echo_warning_after(
        "  max_log_events = 5000",
        &[
            ("log-flood 3000 4000", "flooded"),
            ("log-flood 3000 1", "flooded"),
        ],
    );
    let flooded = text.lines().filter(|l| l.contains("INFO f module")).count();
    assert!(
        flooded < 3000 && text.contains("INFO ffff"),
        "the flood overran the queue, or the test proves nothing: {flooded} lines"
    );
}

/// The lines the host writes because of a module's calls are the module's too: a refused
/// password check logs the refusal, scheme name included (16 KB escaped here), and a
/// module checking in a loop filled the lagging queue with host lines, past its
/// `max_log_events` and outside its share (short lines then fill what room is left).
#[test]
fn host_lines_a_modules_calls_cause_count_as_its_own() {
    let text = echo_warning_after(
        "  max_log_events = 5000",
        &[
            ("auth-refusals 1000", "refused 1000"),
            ("log-flood 3000 1", "flooded"),
        ],
    );
    let refusals = text.matches("stored password refused").count();
    assert!(
        refusals < 1000 && refusals > 0,
        "the refusals overran the queue, or the test proves nothing: {refusals} lines"
    );
}

/// Runs `floods` on an intruder (its section's extra lines `intruder`) while nobody reads
/// the server's stderr, then makes echo log a warning, then reads stderr: what it held,
/// once echo's warning is in it (the test fails if it never comes).
fn echo_warning_after(intruder: &str, floods: &[(&str, &str)]) -> String {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let text = format!(
        "intruder {{\n  address = 127.0.0.1\n  port = {intruder_port}\n{intruder}\n}}\n\
         echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n  fault_injection = on\n}}\n"
    );
    let [intruder, echo] =
        [intruder_port, echo_port].map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)));
    let (mut child, _personality) = serving_with_stderr_unread(&text, echo);
    for (flood, answer) in floods {
        let answered = Intruder::connect(intruder).ask(flood);
        assert_eq!(answered.as_deref(), Some(*answer), "{flood}");
    }
    let mut bystander = std::net::TcpStream::connect(echo).unwrap();
    std::io::Write::write_all(&mut bystander, b"!trap\n").unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut bystander, &mut rest); // closed by the trap

    let mut stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 1 << 16];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stderr, &mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let wanted = "fault injection: trapping on request";
    let started = std::time::Instant::now();
    let text = loop {
        let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        if text.contains(wanted) || started.elapsed() > Duration::from_secs(20) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains(wanted),
        "echo's warning was dropped behind the intruder's flood ({} bytes logged)",
        text.len()
    );
    text
}

/// The server of the personality with `sections`, its stderr a pipe nobody reads until
/// the test does; returns once `ready` accepts connections (with the personality, which
/// must outlive the server).
fn serving_with_stderr_unread(
    sections: &str,
    ready: std::net::SocketAddr,
) -> (std::process::Child, crate::harness::TestPersonality) {
    let personality = personality(sections);
    let child = std::process::Command::new(binary())
        .arg("run")
        .arg(personality.path())
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(ready).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, personality)
}
