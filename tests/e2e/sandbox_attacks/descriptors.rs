//! Issue 12 item 4: descriptors a module's sessions hold (their sockets, the files they
//! open) are held to its `max_descriptors` across all its sessions, so another module's
//! clients are always accepted (the issue saw `accept failed: Too many open files`).

use std::net::SocketAddr;

use super::{
    Intruder, bystander_served, descriptors_back_to, open_descriptors, personality, sections,
};
use crate::harness::{Server, free_port};

/// What the module sees once its budget is spent.
const SPENT: &str =
    "FsError::OsError(\"the module's descriptor budget (max_descriptors) is spent\")";

/// A server whose intruder has `extra` lines and a `doc_root` holding the file `f`.
fn start(extra: &str) -> (Server, SocketAddr) {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let extra = format!("{extra}\n  doc_root = www");
    let personality = personality(&sections(intruder_port, &extra, echo_port));
    std::fs::create_dir(personality.path().join("www")).unwrap();
    std::fs::write(personality.path().join("www/f"), "a file\n").unwrap();
    let server = Server::start(personality, echo_port);
    (server, ([127, 0, 0, 1], intruder_port).into())
}

/// How many files an `open` answer says were opened.
fn opened(answer: &str) -> usize {
    answer
        .strip_prefix("opened ")
        .and_then(|rest| rest.split([',', ' ']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("not an open answer: {answer}"))
}

#[test]
fn sessions_opening_files_are_held_to_max_descriptors() {
    // The default budget: 3 per session plus 64, so 124 for 20 sessions. The accept loop
    // holds one for its next client.
    let (server, intruder) = start("  max_sessions = 20");
    let before = open_descriptors(&server);
    let mut sessions: Vec<Intruder> = (0..10).map(|_| Intruder::connect(intruder)).collect();
    // Each is accepted and running before the budget is spent: clients beyond it wait in
    // the listen backlog, the module's own back-pressure.
    for session in &mut sessions {
        assert!(session.answer("hello").starts_with("unknown command"));
    }
    let answers: Vec<String> = sessions.iter_mut().map(|s| s.answer("open 1000")).collect();
    let files: usize = answers.iter().map(|a| opened(a)).sum();
    let held = open_descriptors(&server) - before;
    eprintln!("10 sessions opened {files} files; the server holds {held} more descriptors");
    assert_eq!(
        files + sessions.len() + 1,
        124,
        "sockets and files: {answers:?}"
    );
    assert!(answers.iter().all(|a| a.ends_with(SPENT)), "{answers:?}");
    assert!(held <= 124 + 4, "{held} descriptors past the budget");
    bystander_served(&server, "while the budget is spent");

    for session in &mut sessions {
        assert_eq!(session.answer("release"), "released");
    }
    drop(sessions);
    descriptors_back_to(&server, before);
    bystander_served(&server, "after the files were released");
    assert!(!server.log().contains("accept failed"), "{}", server.log());
}

#[test]
fn a_lowered_max_descriptors_refuses_at_that_figure() {
    let (server, intruder) = start("  max_descriptors = 40");
    let mut session = Intruder::connect(intruder);
    let answer = session.answer("open 1000");
    assert_eq!(
        answer,
        format!("opened 38, then {SPENT}"),
        "its socket is one, the accept loop's next client another"
    );
    bystander_served(&server, "while the intruder holds 40");
    assert_eq!(session.answer("release"), "released");
}
