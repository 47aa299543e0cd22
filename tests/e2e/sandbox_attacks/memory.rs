//! Issue 12 item 3: host memory a module causes through the `heap` interface (units,
//! chunks, heaps, labels, the report lines they make) is charged to its `host_memory_mb`,
//! refused past it, and the status report stays small; the operator hook is held to the
//! same budget.

use super::{Intruder, bystander_served, hits, limits_line, report, rss_kib, start};

/// Bytes the report may reach whatever a module does with heaps: what it defends is every
/// `stats` caller and the log (issue 12 saw a 500 MB report).
const REPORT_BOUND: usize = 64 << 10;

/// The first number in `text` after `word`.
fn number_after(text: &str, word: &str) -> u64 {
    text.split(word)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word:?} in {text:?}"))
}

#[test]
fn heaps_are_held_to_host_memory_mb_and_the_server_stays_bounded() {
    let (mut server, intruder) = start("  max_sessions = 8", "");
    let mut held = server.client();
    held.echo("before the heap attacks");
    let budget_kib = number_after(limits_line(&report(&mut server), "intruder"), " KiB of ");
    let rss_before = rss_kib(&server);

    let mut session = Intruder::connect(intruder);
    let chunk = session.answer("heap-chunk");
    assert_eq!(
        chunk, "chunk create Ok(()) alloc Err(HeapError::Full)",
        "16 Mi one-byte slots in one chunk: 768 MiB of slots"
    );
    let retain = session.answer("heap-retain 200000");
    assert_eq!(retain, "retained 200000 times, 0 refused");
    let rss_retained = rss_kib(&server);
    let fill = session.answer("heap-fill");
    let units = number_after(&fill, "filled");
    assert!(fill.ends_with("then HeapError::Full"), "{fill}");
    let rss_filled = rss_kib(&server);
    held.echo("during the heap attacks");
    let stats = session.answer("stats");
    let stats_bytes = number_after(&stats, "report") as usize;
    let report = report(&mut server);
    let grown = rss_filled.saturating_sub(rss_before);
    eprintln!(
        "host_memory_mb budget {budget_kib} KiB: {units} one-byte units before the refusal; \
         RSS {rss_before} KiB before, {rss_retained} KiB after 200 000 retains, \
         {rss_filled} KiB filled (+{grown} KiB); report {} bytes, through stats {stats_bytes}",
        report.len()
    );
    assert!(units > 100_000, "the budget let the module work: {fill}");
    assert!(
        grown < budget_kib + (32 << 10),
        "RSS grew {grown} KiB for a budget of {budget_kib} KiB"
    );
    assert!(
        rss_retained < rss_before + (8 << 10),
        "retains cost memory: {rss_before} -> {rss_retained} KiB"
    );
    assert!(stats_bytes < REPORT_BOUND && report.len() < REPORT_BOUND);
    assert!(hits(limits_line(&report, "intruder"), "host memory") >= 1);
    held.echo("after the heap attacks");
    bystander_served(&server, "after the heap attacks");
}

#[test]
fn a_lowered_host_memory_mb_refuses_earlier_and_bounds_the_operator() {
    let (mut server, intruder) = start("  host_memory_mb = 8\n  operator = heap", "");
    server.wait_for_log(
        "operator: heap refused after",
        std::time::Duration::from_secs(20),
    );
    let log = server.log();
    let operator_units = number_after(&log, "operator: heap refused after");
    assert!(
        operator_units > 1000 && operator_units * 1024 <= 8 << 20,
        "the operator's 1 KiB units stop within 8 MiB: {operator_units}"
    );
    bystander_served(&server, "after the operator's heap");
    let fill = Intruder::connect(intruder).answer("heap-fill");
    assert!(
        fill.contains("host_memory_mb") || number_after(&fill, "filled") < 10_000,
        "the budget is spent: {fill}"
    );
    let report = report(&mut server);
    let limits = limits_line(&report, "intruder");
    assert!(
        hits(limits, "host memory") >= 2,
        "operator and session: {limits}, {fill}"
    );
    assert!(limits.contains("of 8192 KiB"), "{limits}");
    bystander_served(&server, "after the session's heap");
}

#[test]
fn heap_labels_and_heap_count_are_bounded() {
    let (mut server, intruder) = start("", "");
    let mut session = Intruder::connect(intruder);
    let labels = session.answer("heap-labels");
    assert_eq!(
        labels,
        "refused 1000 long labels; created 64 heaps, then \
         Some(HeapError::InvalidSpec(\"a module may have at most 64 heaps\"))"
    );
    let stats = session.answer("stats");
    let report = report(&mut server);
    let heap_rows = report
        .lines()
        .filter(|l| l.starts_with("intruder."))
        .count();
    assert_eq!(heap_rows, 64, "{report}");
    assert!(
        number_after(&stats, "report") < REPORT_BOUND as u64 && report.len() < REPORT_BOUND,
        "{stats}, {} bytes",
        report.len()
    );
    bystander_served(&server, "after 64 heaps");
}
