//! After a round of attacks the server holds what it held before: the descriptors, no live
//! session of the intruder, none of its host memory or linear memory, none of its
//! descriptor budget; and echo serves on.

use std::time::Duration;

use super::{
    Intruder, bystander_served, descriptors_back_to, limits_line, open_descriptors, personality,
    report, sections,
};
use crate::harness::{Server, free_port};

#[test]
fn nothing_leaks_after_the_attacks() {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let extra =
        "  max_sessions = 20\n  doc_root = www\n  session_cpu_ms = 300\n  max_log_events = 50";
    let personality = personality(&sections(intruder_port, extra, echo_port));
    std::fs::create_dir(personality.path().join("www")).unwrap();
    std::fs::write(personality.path().join("www/f"), "a file\n").unwrap();
    let mut server = Server::start(personality, echo_port);
    let intruder = ([127, 0, 0, 1], intruder_port).into();
    let mut held = server.client();
    held.echo("before the attacks");
    let before = open_descriptors(&server);

    let mut session = Intruder::connect(intruder);
    assert!(session.answer("open 50").starts_with("opened 50"));
    assert_eq!(session.answer("release"), "released");
    assert_eq!(session.answer("log-forge"), "forged");
    assert_eq!(session.answer("stdout-flood 1000"), "flooded");
    assert!(session.answer("stats").starts_with("report "));
    drop(session);
    // Ended mid-hold, by the client, and by the CPU budget.
    let mut dropped = Intruder::connect(intruder);
    assert!(dropped.answer("open 30").starts_with("opened 30"));
    drop(dropped);
    assert_eq!(Intruder::connect(intruder).ask("spin"), None);
    held.echo("after the attacks");

    descriptors_back_to(&server, before);
    std::thread::sleep(Duration::from_millis(200));
    let report = report(&mut server);
    let row = report
        .lines()
        .skip_while(|l| *l != "Module intruder")
        .nth(3)
        .expect("the intruder's row");
    assert_eq!(
        row.split_whitespace().nth(2),
        Some("0"),
        "no live session: {row}"
    );
    let limits = limits_line(&report, "intruder");
    for nothing in [
        "linear memory now 0 KiB",
        "host memory now 0 KiB",
        // The accept loop's, for its next client.
        "descriptors 1 of 124",
    ] {
        assert!(limits.contains(nothing), "{nothing}: {limits}");
    }
    bystander_served(&server, "after the attacks");
}
