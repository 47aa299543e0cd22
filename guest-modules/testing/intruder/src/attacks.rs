//! The intruder's one-line attacks, each answering what the host let it do:
//!
//! - `heap-chunk`: a heap of 16 Mi one-byte units in one chunk, then one unit of it;
//! - `heap-labels`: heaps with 50 KB labels, then as many heaps as the host allows;
//! - `heap-fill`: one-byte units (up to 32 Mi) until the host refuses one;
//! - `heap-retain N`: one unit retained N times;
//! - `stats`: the status report through `stats` (its size);
//! - `open N`: the file `f` of `doc_root` opened N times, held until the next line;
//! - `send-file PATH HEAD OFFSET LENGTH TIMES`: a range of a `doc_root` file sent by the
//!   host `TIMES` times, behind `HEAD` bytes each;
//! - `starttls-then-write N`: STARTTLS (the host answers `go`), then N bytes written
//!   before anything is read, more than rustls holds before the client's hello;
//! - `starttls-then-read`: STARTTLS (the host answers `go`), then two receives of what
//!   the client sends next, logged (a session whose TLS failed cannot answer);
//! - `db SQL`: the SQL on the pool option `db` names;
//! - `log-forge`: log events, stdout and stderr lines carrying newlines, CR and ESC;
//! - `stdout-flood N`: N lines on stdout;
//! - `log-flood N SIZE`: N `log` calls at `info`, each SIZE bytes;
//! - `auth-refusals N`: N password checks of a stored password whose scheme is 4000
//!   control characters, each refused (and logged by the host, escaped: 16 KB a line).

use std::io::Write;

use serverkit_sdk::heap::{self, HeapError, HeapSpec};
use serverkit_sdk::{Connection, config, connection, database, filesystem, log, stats};

/// Answers one of the attacks above.
pub fn run(words: &[&str]) -> String {
    let n = |i: usize| {
        words
            .get(i)
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match words {
        ["heap-chunk"] => {
            let mut spec = spec("chunk", 1, 16 << 20);
            spec.units_per_chunk = 16 << 20;
            let created = heap::create(&spec);
            format!("chunk create {created:?} alloc {:?}", heap::alloc("chunk"))
        }
        ["heap-labels"] => long_labels(),
        ["heap-fill"] => {
            let (units, error) = fill_heap("fill", 1);
            format!("filled {units} units, then {error}")
        }
        ["heap-retain", _] => retain(n(1)),
        ["stats"] => {
            let report = stats::report();
            format!(
                "report {} bytes {} lines",
                report.len(),
                report.lines().count()
            )
        }
        ["log-forge"] => forge(),
        ["stdout-flood", _] => {
            for i in 0..n(1) {
                println!("stdout flood {i}");
            }
            "flooded".into()
        }
        ["log-flood", _, _] => {
            let line = "f".repeat(n(2) as usize);
            for _ in 0..n(1) {
                log::log(log::Level::Info, &line);
            }
            "flooded".into()
        }
        ["auth-refusals", _] => {
            let stored = format!("{{{}}}x", "\u{1}".repeat(4000));
            let refused = (0..n(1))
                .filter(|_| serverkit_sdk::auth::verify(&stored, "password", "").is_err())
                .count();
            format!("refused {refused}")
        }
        _ => format!("unknown command {words:?}"),
    }
}

/// A heap of `max_units` units of `unit_size` bytes, growing 64 units at a time.
fn spec(label: &str, unit_size: u32, max_units: u32) -> HeapSpec {
    HeapSpec {
        label: label.into(),
        unit_size,
        units_per_chunk: 64,
        max_units,
        grow_exponentially: false,
        shrink: false,
        unlimited: false,
    }
}

/// Allocates units of heap `label` (32 MiB of them at most: half of what a module's heaps
/// may hold, so the operator's and a session's both fit) until the host refuses one: how
/// many, and the refusal.
pub fn fill_heap(label: &str, unit_size: u32) -> (u64, String) {
    let most = ((32u64 << 20) / u64::from(unit_size)) as u32;
    if let Err(e) = heap::create(&spec(label, unit_size, most)) {
        return (0, format!("create: {e:?}"));
    }
    let mut units = 0;
    loop {
        match heap::alloc(label) {
            Ok(_) => units += 1,
            Err(e) => return (units, format!("{e:?}")),
        }
    }
}

fn long_labels() -> String {
    let long = "x".repeat(50_000);
    let refused = (0..1000)
        .filter(|_| heap::create(&spec(&long, 1, 1)).is_err())
        .count();
    let mut created = 0;
    let mut last: Option<HeapError> = None;
    for i in 0..10_000 {
        let label = format!("{i:0>64}");
        match heap::create(&spec(&label, 1, 1)) {
            Ok(()) => created += 1,
            Err(e) => last = Some(e),
        }
    }
    format!("refused {refused} long labels; created {created} heaps, then {last:?}")
}

fn retain(times: u64) -> String {
    let _ = heap::create(&spec("kept", 8, 4));
    let unit = match heap::alloc("kept") {
        Ok(unit) => unit,
        Err(e) => return format!("alloc {e:?}"),
    };
    let refused = (0..times)
        .filter(|_| heap::retain("kept", unit).is_err())
        .count();
    format!("retained {times} times, {refused} refused")
}

/// `open N`: opens `f` beneath `doc_root` up to `n` times; what it holds and its answer.
pub fn open_many(n: u64) -> (Vec<filesystem::File>, String) {
    let Some(dir) = filesystem::granted_directory("doc_root") else {
        return (Vec::new(), "opened 0, no doc_root".into());
    };
    let mut held = Vec::new();
    for _ in 0..n {
        match dir.open("f") {
            Ok(file) => held.push(file),
            Err(e) => {
                let answer = format!("opened {}, then {e:?}", held.len());
                return (held, answer);
            }
        }
    }
    let answer = format!("opened {}", held.len());
    (held, answer)
}

/// `send-file PATH HEAD OFFSET LENGTH TIMES`: `TIMES` sends of the range of `PATH` beneath
/// `doc_root`, each behind `HEAD` bytes of `h`; how many went, or the first refusal.
pub fn send_file(
    conn: &Connection,
    path: &str,
    head: usize,
    (offset, length): (u64, u64),
    times: u64,
) -> String {
    let Some(dir) = filesystem::granted_directory("doc_root") else {
        return "no doc_root".into();
    };
    let file = match dir.open(path) {
        Ok(file) => file,
        Err(e) => return format!("open {e:?}"),
    };
    for sent in 0..times {
        if let Err(e) = conn.send_file(&vec![b'h'; head], &file, offset, length) {
            return format!("sent {sent}, then {e:?}");
        }
    }
    format!("sent {times}")
}

/// `starttls-then-write N`: what came of the STARTTLS and of the N bytes (`x`) written
/// through it before anything is read.
pub fn starttls_then_write(conn: &Connection, output: &mut impl Write, bytes: usize) -> String {
    if let Err(e) = conn.start_tls(b"go\n") {
        return format!("start-tls {e}");
    }
    match output.write_all(&vec![b'x'; bytes]) {
        Ok(()) => "written".into(),
        Err(e) => format!("write {e}"),
    }
}

/// `count` strings sharing one buffer of `bytes`: the canonical ABI allows entries of a
/// list to overlap, so a host that copied every string would copy `count * bytes`. (The
/// guest's `post-return` then frees the buffer `count` times: its own memory's problem.)
pub fn aliased_lines(count: usize, bytes: usize) -> Vec<String> {
    let buffer = std::mem::ManuallyDrop::new("a".repeat(bytes));
    let (ptr, len, capacity) = (buffer.as_ptr().cast_mut(), buffer.len(), buffer.capacity());
    (0..count)
        // SAFETY: not sound (the strings alias), which is the attack; nothing in this
        // instance reads them before the host does.
        .map(|_| unsafe { String::from_raw_parts(ptr, len, capacity) })
        .collect()
}

/// `starttls-then-read`: after STARTTLS, two receives of the client's next bytes, each
/// waiting at most 5 s; the log gets what each gave. A client sending no TLS fails the
/// first: the second must fail too, at once, not wait (or spin) for bytes.
pub fn starttls_then_read(conn: &Connection) -> String {
    if let Err(e) = conn.start_tls(b"go\n") {
        return format!("start-tls {e}");
    }
    const FIVE_SECONDS: u64 = 5_000_000_000;
    let what = |received: Result<Vec<u8>, connection::ReceiveError>| match received {
        Ok(bytes) => format!("{} bytes", bytes.len()),
        Err(connection::ReceiveError::Closed) => "closed".into(),
        Err(connection::ReceiveError::TimedOut) => "timed out".into(),
        Err(connection::ReceiveError::Failed(_)) => "failed".into(),
    };
    let first = what(conn.receive(4096, FIVE_SECONDS, false));
    let second = what(conn.receive(4096, FIVE_SECONDS, false));
    let outcome = format!("after STARTTLS: first {first}; second {second}.");
    log::log(log::Level::Info, &outcome);
    outcome
}

/// `db-alias COUNT MIB`: the length of each of COUNT byte parameters sharing one buffer
/// of MIB MiB, on the pool option `db` names.
pub fn query_aliased(count: usize, mib: usize) -> String {
    let pool = config::text("db").unwrap_or_default();
    let buffer = std::mem::ManuallyDrop::new(vec![7u8; mib << 20]);
    let (ptr, len, capacity) = (buffer.as_ptr().cast_mut(), buffer.len(), buffer.capacity());
    let params: Vec<database::Value> = (0..count)
        // SAFETY: not sound (the vectors alias), which is the attack; they are never
        // dropped, and the host only reads them.
        .map(|_| database::Value::Bytes(unsafe { Vec::from_raw_parts(ptr, len, capacity) }))
        .collect();
    let params = std::mem::ManuallyDrop::new(params);
    let lengths: Vec<String> = (1..=count).map(|n| format!("length(?{n})")).collect();
    match database::query(&pool, &format!("SELECT {}", lengths.join(", ")), &params) {
        Ok(rows) => format!("ok {} rows", rows.rows.len()),
        Err(e) => format!("err {e:?}"),
    }
}

/// `db SQL` on the pool option `db` names: the first cell of the first row, or the error.
pub fn query(sql: &str) -> String {
    let pool = config::text("db").unwrap_or_default();
    match database::query(&pool, sql, &[]) {
        Ok(rows) => {
            let first = rows.rows.first().and_then(|r| r.first());
            format!("ok {} rows, first {first:?}", rows.rows.len())
        }
        Err(e) => format!("err {e:?}"),
    }
}

/// Control characters in each of the module's ways into the log: a `log` call, stdout,
/// stderr. Each carries a would-be host line after a newline or a carriage return.
fn forge() -> String {
    log::log(
        log::Level::Info,
        "innocent\nFORGED-LOG  INFO serverkit: the host says all is well\r\x1b[2Kcleared\u{9b}31mc1",
    );
    println!("stdout\rFORGED-STDOUT \x1b]0;title\x07 \x1b[31mred\x7f");
    eprintln!("stderr\x1b[1A\rFORGED-STDERR \x00nul");
    "forged".into()
}
