//! Messages far larger than an instance's memory, named without `,W=` so pop counts their
//! sizes itself: listed and retrieved byte-exact at the default limits, several of
//! 20+ MiB with a raw client, one of 1 GiB with Python's poplib while the server's
//! resident memory is measured; and a RETR far longer than the CPU budget.

use std::io::{BufWriter, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pop_fixture::{Backend, PopSetup};

/// A message body of at least `target` bytes, `seed` in every line so no two messages or
/// blocks look alike: lines of varying length, lines to stuff (`.x`, `..`, a lone `.`),
/// LF and CRLF endings, blank lines and a CR inside a line.
fn lines(seed: usize, target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 1024);
    let mut i = 0;
    while out.len() < target {
        // Mostly long lines (poplib refuses lines over 2048 bytes), so a GiB is a few
        // million lines and the client keeps up.
        let line = match i % 8 {
            0 => format!("line {i} of {seed}: {}\n", "x".repeat(i * 7 % 1900)),
            1 => format!(".dot-started {i} of {seed}{}\n", ".".repeat(i % 500)),
            2 => "..two dots\n".to_string(),
            3 => ".\n".to_string(),
            4 => format!("crlf {i} of {seed}: {}\r\n", "z".repeat(i * 11 % 1500)),
            5 => "\n".to_string(),
            6 => format!("cr\rinside {i}: {}\n", "w".repeat(i * 5 % 1200)),
            _ => format!("{}{i}\n", "y".repeat(i * 13 % 1700)),
        };
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out
}

/// The message as POP3 sends it before stuffing: CRLF endings, a last line ended.
fn crlf_form(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 8);
    for line in stored.split_inclusive(|&b| b == b'\n') {
        let text = match line.strip_suffix(b"\n") {
            Some(text) => text.strip_suffix(b"\r").unwrap_or(text),
            None => line, // the last line, without its newline
        };
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn several_messages_of_20_mib_no_longer_lock_a_user_out() {
    let setup = PopSetup::new(Backend::Sqlite);
    // Plain names and one with a `,S=` field (a wrong one): none carries the CRLF size
    // (`,W=`), so pop counts each at login.
    let mut messages = Vec::new();
    for (seed, name) in [
        "new/1700000101.M1P1.big",
        "new/1700000102.M2P1.big,S=0",
        "cur/1700000103.M3P1.big:2,S",
    ]
    .into_iter()
    .enumerate()
    {
        let mut stored = format!("Subject: big {seed}\n\n").into_bytes();
        stored.extend(lines(seed, (20 << 20) + seed * 300_001));
        stored.extend_from_slice(b"last line, no newline");
        std::fs::write(setup.maildir("bob").join(name), &stored).unwrap();
        let unique = name[4..].split(':').next().unwrap().to_string();
        messages.push((unique, crlf_form(&stored)));
    }
    let server = setup.start("");
    // Each login counts all three (63 MiB); one RETR per session keeps each session's
    // work well inside the default `session_cpu_ms` even in a debug build.
    let mut c = server.login("bob", "hunter2");
    let total: usize = messages.iter().map(|(_, m)| m.len()).sum();
    assert_eq!(c.cmd("STAT"), format!("+OK 3 {total}"));
    c.ok("LIST");
    let listed: Vec<String> = (1..=3)
        .map(|n| format!("{n} {}", messages[n - 1].1.len()))
        .collect();
    assert_eq!(c.body(), listed);
    c.ok("UIDL");
    let uidls: Vec<String> = (1..=3)
        .map(|n| format!("{n} {}", messages[n - 1].0))
        .collect();
    assert_eq!(c.body(), uidls);
    assert!(c.cmd("TOP 2 2").starts_with("+OK"));
    assert_eq!(
        c.body(),
        [
            "Subject: big 1",
            "",
            "line 0 of 1: ",
            "..dot-started 1 of 1."
        ]
    );
    for (n, (_, expected)) in messages.iter().enumerate() {
        if n > 0 {
            c.ok("QUIT");
            c = server.login_when_free("bob", "hunter2");
        }
        assert_eq!(
            c.cmd(&format!("RETR {}", n + 1)),
            format!("+OK {} octets", expected.len())
        );
        let mut received = Vec::with_capacity(expected.len());
        for line in c.body() {
            received.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
            received.extend_from_slice(b"\r\n");
        }
        assert!(received == *expected, "RETR {} is byte-exact", n + 1);
    }
    c.ok("QUIT");
    assert_eq!(server.setup.files("bob").len(), 3, "nothing deleted");
}

/// A RETR that streams for far longer than `session_cpu_ms` to a client that keeps up is
/// not cut: each MiB the client takes starts a new stretch of the budget, as a wait for
/// it does. Before, such a RETR never waited, and a 1 GiB one was cut at 858 MB at the
/// default 10 s; here 64 MiB against a 50 ms budget.
#[test]
fn a_retr_longer_than_the_cpu_budget_is_not_cut() {
    let setup = PopSetup::new(Backend::Sqlite);
    let mut stored = b"Subject: long\n\n".to_vec();
    stored.extend(lines(3, 64 << 20));
    let expected = crlf_form(&stored);
    // `,W=` spares the login counting the size: the budget is the RETR's alone.
    let name = format!("new/1700000300.M1P1.long,W={}", expected.len());
    std::fs::write(setup.maildir("bob").join(name), &stored).unwrap();
    let server = setup.start("session_cpu_ms = 50");
    let mut c = server.login("bob", "hunter2");
    let started = Instant::now();
    assert_eq!(c.cmd("RETR 1"), format!("+OK {} octets", expected.len()));
    let mut received = Vec::with_capacity(expected.len());
    for line in c.body() {
        received.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
        received.extend_from_slice(b"\r\n");
    }
    eprintln!(
        "pop_big: a RETR of {} MiB took {:?} against a 50 ms CPU budget",
        expected.len() >> 20,
        started.elapsed()
    );
    assert!(received == expected, "RETR is byte-exact");
    c.ok("QUIT");
    assert!(
        !server.server.log().contains("session_cpu_ms"),
        "{}",
        server.server.log()
    );
}

/// The 1 GiB message's size, and blocks of about 1 MiB it is written in.
const GIB: usize = 1 << 30;
const BLOCK: usize = 1 << 20;

/// Python's poplib logs in, lists and retrieves message 1 through its own line reader
/// (poplib's `retr` would keep 1 GiB of lines in a list), hashing what it receives as
/// sent (stuffed) and un-stuffed; then hashes the stored file turned into that form, the
/// oracle. Prints one JSON object.
const CLIENT: &str = r#"
import hashlib, poplib, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
def say(key, *values):
    print(key, *values, sep='\t')
start = time.monotonic()
p = poplib.POP3('127.0.0.1', port, timeout=300)
p.user('bob')
say('welcome', p.pass_('hunter2').decode())
say('login_s', time.monotonic() - start)
say('stat', *p.stat())
say('list', *[l.decode() for l in p.list()[1]])
say('uidl', *[l.decode() for l in p.uidl()[1]])
say('top', *[l.decode() for l in p.top(1, 2)[1]])
start = time.monotonic()
say('retr', p._shortcmd('RETR 1').decode())
sent, plain, octets = hashlib.sha256(), hashlib.sha256(), 0
while True:
    line, _ = p._getline()
    if line == b'.':
        break
    sent.update(line + b'\r\n')
    if line.startswith(b'..'):
        line = line[1:]
    plain.update(line + b'\r\n')
    octets += len(line) + 2
say('retr_s', time.monotonic() - start)
say('received', sent.hexdigest(), plain.hexdigest(), octets)
say('quit', p.quit().decode())
sent, plain, octets = hashlib.sha256(), hashlib.sha256(), 0
with open(path, 'rb') as f:
    for line in f:
        if line.endswith(b'\r\n'):
            pass
        elif line.endswith(b'\n'):
            line = line[:-1] + b'\r\n'
        else:
            line += b'\r\n'
        sent.update(b'.' + line if line.startswith(b'.') else line)
        plain.update(line)
        octets += len(line)
say('expected', sent.hexdigest(), plain.hexdigest(), octets)
"#;

/// The tab-separated fields the client printed after `key`.
fn field<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    let line = output
        .lines()
        .find(|l| l.split('\t').next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in {output}"));
    line.split('\t').skip(1).collect()
}

#[test]
fn a_1_gib_message_is_listed_and_retrieved_byte_exact_in_bounded_memory() {
    let setup = PopSetup::new(Backend::Sqlite);
    let name = "new/1700000200.M1P1.huge";
    let path = setup.maildir("bob").join(name);
    let written = Instant::now();
    let block = lines(7, BLOCK);
    let mut file = BufWriter::new(std::fs::File::create(&path).unwrap());
    file.write_all(b"Subject: one GiB\n\n").unwrap();
    let mut size = 0;
    for k in 0.. {
        if size >= GIB {
            break;
        }
        let head = format!("block {k}\n");
        file.write_all(head.as_bytes()).unwrap();
        file.write_all(&block).unwrap();
        size += head.len() + block.len();
    }
    file.write_all(b"the end, no newline").unwrap();
    file.into_inner().unwrap().sync_all().unwrap();
    eprintln!("pop_big: wrote {size} bytes in {:.1?}", written.elapsed());

    // Every limit at its default. The CPU budget bounds the work between two waits for the
    // client, and each MiB the client took renews it, so the RETR is never cut; but
    // counting the 1 GiB message at login is work before any of those: about 1.5 s in a
    // release build, 16 s in a debug one, whose host copies each read into the instance
    // byte by byte. A debug server gets the budget that count needs.
    let debug_server = crate::harness::binary().contains("/debug/");
    let server = setup.start(if debug_server {
        "session_cpu_ms = 60000"
    } else {
        ""
    });
    let pid = server.server.pid();
    let before = status_kib(pid, "VmRSS");
    // Resets VmHWM to the current RSS (proc(5), clear_refs), so the peak read afterwards
    // is this test's, not startup's (compiling modules).
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let sampled = Arc::new(AtomicU64::new(before));
    let samples = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (sampled, samples, stop) = (sampled.clone(), samples.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sampled.fetch_max(status_kib(pid, "VmRSS"), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let python = std::env::var("SERVERKIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ran = Instant::now();
    let out = Command::new(python)
        .args(["-c", CLIENT, &server.setup.port.to_string()])
        .arg(&path)
        .output()
        .expect("run python");
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    // VmHWM is only brought up to date at some kernel events, so the samples count too.
    let highest_sample = sampled.load(Ordering::Relaxed);
    let hwm = if reset { status_kib(pid, "VmHWM") } else { 0 };
    let peak = hwm.max(highest_sample);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.server.log()
    );
    let got = |key| field(&stdout, key);
    let seconds = |key| got(key)[0].parse::<f64>().unwrap();
    let wire: u64 = got("expected")[2].parse().unwrap();
    eprintln!(
        "pop_big: 1 GiB message ({wire} octets on the wire): login with its size counted \
         {:.1} s, RETR {:.1} s ({:.0} MiB/s), client run {:.1?}; server RSS {} MiB before, \
         peak {} MiB (VmHWM after clear_refs and {} samples of VmRSS: {})",
        seconds("login_s"),
        seconds("retr_s"),
        wire as f64 / f64::from(1 << 20) / seconds("retr_s"),
        ran.elapsed(),
        before >> 10,
        peak >> 10,
        samples.load(Ordering::Relaxed),
        if reset {
            format!(
                "VmHWM {} MiB, highest sample {} MiB",
                hwm >> 10,
                highest_sample >> 10
            )
        } else {
            "clear_refs refused, samples only".to_string()
        },
    );
    assert_eq!(got("welcome"), [format!("+OK 1 message ({wire} octets)")]);
    assert_eq!(got("stat"), ["1".to_string(), wire.to_string()]);
    assert_eq!(got("list"), [format!("1 {wire}")]);
    assert_eq!(got("uidl"), ["1 1700000200.M1P1.huge"]);
    assert_eq!(
        got("top"),
        ["Subject: one GiB", "", "block 0", "line 0 of 7: "]
    );
    assert_eq!(got("retr"), [format!("+OK {wire} octets")]);
    assert_eq!(
        got("received"),
        got("expected"),
        "RETR is byte-exact: [stuffed, un-stuffed, octets] as received against the stored file"
    );
    assert!(wire > GIB as u64);
    // The message is 1 GiB; pop holds one 64 KiB chunk of it at a time and the host
    // buffers at most `max_buffered_kb` per session.
    assert!(
        peak < 256 << 10,
        "server peak RSS {} MiB during a 1 GiB RETR",
        peak >> 10
    );
    // The file goes with the personality's temporary directory when `server` drops.
}

/// A `/proc/PID/status` figure in KiB (0 if the process is gone).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
