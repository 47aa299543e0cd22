//! CPU attacks on a session's budget (`session_cpu_ms`, renewed at each wait for the
//! client):
//!
//! - `spin`: never waits;
//! - `work-between-reads K MS`: K stretches of MS milliseconds of work, each answered with
//!   `worked I` and followed by a read of the client's next line (a busy but honest
//!   session);
//! - `poll-spin MS TOTAL`: stretches of MS milliseconds of work for TOTAL milliseconds,
//!   each followed by a poll of the client's input that never reads it, so that bytes
//!   the client left unread make every poll return at once;
//! - `work-while-sending MS TOTAL BYTES`: stretches of MS milliseconds of work for TOTAL
//!   milliseconds, each followed by BYTES bytes (`x`) sent to the client and never a read:
//!   a long answer made piece by piece for a client that keeps up, or, with few bytes, a
//!   loop sending a trickle to keep its budget.

use std::io::{BufRead, Write};

use serverkit_sdk::wasip2::clocks::monotonic_clock::now;
use serverkit_sdk::wasip2::io::streams::{InputStream, OutputStream};

/// Loops without end (the CPU budget ends it).
pub fn spin() -> Result<(), String> {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Works `ms` milliseconds of wall time without waiting for anything.
fn work(ms: u64) {
    let start = now();
    let mut n = 0u64;
    while now() - start < ms * 1_000_000 {
        for _ in 0..10_000 {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

/// `work-between-reads`.
pub fn work_between_reads(
    input: &mut impl BufRead,
    output: &mut OutputStream,
    stretches: u64,
    ms: u64,
) -> Result<String, String> {
    let mut line = String::new();
    for i in 0..stretches {
        work(ms);
        writeln!(output, "worked {i}").map_err(|e| e.to_string())?;
        output.flush().map_err(|e| e.to_string())?;
        line.clear();
        input.read_line(&mut line).map_err(|e| e.to_string())?;
    }
    Ok(format!("worked {stretches} stretches of {ms} ms"))
}

/// `poll-spin`.
pub fn poll_spin(input: &InputStream, ms: u64, total: u64) -> String {
    let start = now();
    while now() - start < total * 1_000_000 {
        work(ms);
        input.subscribe().block();
    }
    format!("poll-spun {total} ms")
}

/// `work-while-sending`.
pub fn work_while_sending(
    output: &mut OutputStream,
    ms: u64,
    total: u64,
    bytes: usize,
) -> Result<String, String> {
    let piece = vec![b'x'; bytes];
    let (start, mut sent) = (now(), 0);
    while now() - start < total * 1_000_000 {
        work(ms);
        output.write_all(&piece).map_err(|e| e.to_string())?;
        sent += bytes;
    }
    Ok(format!("sent {sent} bytes in stretches of {ms} ms"))
}
