//! Beyond the list: a module's `report` hook runs in an instance of the shared
//! pool each time anyone asks for the report (SIGUSR1, or any module's `stats` call). One
//! that never returns must not let the module take instances from the pool beyond its
//! share, or echo's sessions can no longer be created. One whose `list<string>` entries all
//! point at the same buffer must not make the host copy the buffer once per entry.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{Intruder, bystander_served, peak_kib, personality, report, reset_peak, start};
use crate::harness::{Server, free_port};

/// Whether a fresh echo session at `addr` echoes a line.
fn echo_answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if writeln!(stream, "still here?").is_err() {
        return false;
    }
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line == "still here?\n"
}

#[test]
fn report_hooks_that_never_return_cannot_take_the_instance_pool() {
    let (intruder_port, echo_port) = (free_port(), free_port());
    // The pool as the operator sized it: 4 + 4 hook instances for the intruder, 8 + 4 for
    // echo (`instance_capacity`'s own rule; its default adds room for a module added
    // while serving).
    let c11n = format!(
        "instance_capacity = 20\nintruder {{\n  address = 127.0.0.1\n  port = {intruder_port}\n  max_sessions = 4\n  report_hook = sleep\n}}\n\
         echo {{\n  address = 127.0.0.1\n  port = {echo_port}\n  max_sessions = 8\n}}\n"
    );
    let server = Server::start(personality(&c11n), echo_port);
    let intruder: SocketAddr = ([127, 0, 0, 1], intruder_port).into();
    assert!(echo_answers(server.addr), "echo serves before");
    // Each `stats` waits 1 s for the intruder's hook, which goes on waiting an hour. The
    // sessions stay open (within the intruder's share of 4), as its own clients can keep
    // them.
    let callers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut session = Intruder::connect(intruder);
                let last = (0..8).map(|_| session.answer("stats")).last();
                (session, last.unwrap())
            })
        })
        .collect();
    let sessions: Vec<Intruder> = callers
        .into_iter()
        .map(|caller| {
            let (session, answer) = caller.join().unwrap();
            assert!(answer.starts_with("report "), "{answer}");
            session
        })
        .collect();
    let served = (0..8).filter(|_| echo_answers(server.addr)).count();
    assert_eq!(
        served,
        8,
        "echo serves beside 4 intruder sessions and their 32 hung report hooks:\n{}",
        server.log()
    );
    drop(sessions);
}

/// The hook returns 64 strings over one 16 MiB buffer: lifted whole, 1 GiB of host memory
/// for one report. The host copies at most its 100 lines of 200 bytes.
#[test]
fn a_report_hook_returning_overlapping_strings_costs_the_host_only_its_lines() {
    let (mut server, _) = start("  report_hook = alias", "");
    let before = reset_peak(&server);
    let report = report(&mut server);
    let peak = peak_kib(&server);
    let block = &report[report
        .find("Module intruder")
        .expect("the intruder's block")..];
    eprintln!(
        "peak RSS {before} -> {peak} KiB; the intruder's block:\n{}",
        &block[..block.len().min(600)]
    );
    assert!(
        peak < before + 48 * 1024,
        "the report took the server from {before} to {peak} KiB at its peak"
    );
    // The guest frees the one buffer 64 times in its post-return: a trap, reported as
    // the hook's failure; or, if its allocator lets that pass, the cut lines.
    assert!(
        block.contains("(the report hook failed") || block.contains(&"a".repeat(200)),
        "{block}"
    );
    bystander_served(&server, "after the overlapping report");
}

/// Any module may ask for the report as often as it likes, and each asking ran every
/// module's hook anew, in a fresh instance on that module's own workers. A module's lines
/// are now given again for a second.
#[test]
fn asking_for_the_report_in_a_loop_runs_each_hook_at_most_once_a_second() {
    let (server, intruder) = start("", "");
    let mut session = Intruder::connect(intruder);
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let answer = session.answer("stats");
        assert!(answer.starts_with("report "), "{answer}");
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let runs = server.log().matches("intruder report hook ran").count();
    eprintln!("20 reports in {took:?} ran the intruder's hook {runs} times");
    assert!(runs >= 1, "{}", server.log());
    assert!(
        runs <= took.as_secs() as usize + 2,
        "20 reports in {took:?} ran the intruder's hook {runs} times"
    );
}
