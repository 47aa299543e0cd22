//! `connection.send-file` abused: heads and ranges past their bounds are refused, and
//! sessions that have the host send file ranges to clients that never read park with
//! what one send holds (the head and at most 16 KiB read behind it), not one buffer per
//! call; another module's clients are served meanwhile.

use std::net::SocketAddr;

use super::{
    Intruder, bystander_served, descriptors_back_to, open_descriptors, personality, rss_kib,
    sections,
};
use crate::harness::{Server, free_port};

/// A server whose intruder has a `doc_root` holding `g`, 16 KiB of `g` (no newline, so a
/// session's answer is the one line after what it sent).
fn start() -> (Server, SocketAddr) {
    let (intruder_port, echo_port) = (free_port(), free_port());
    let personality = personality(&sections(
        intruder_port,
        "  doc_root = www\n  max_sessions = 40",
        echo_port,
    ));
    std::fs::create_dir(personality.path().join("www")).unwrap();
    std::fs::write(personality.path().join("www/g"), vec![b'g'; 16 * 1024]).unwrap();
    let server = Server::start(personality, echo_port);
    (server, ([127, 0, 0, 1], intruder_port).into())
}

#[test]
fn heads_and_ranges_past_their_bounds_are_refused_and_the_session_goes_on() {
    let (server, intruder) = start();
    let mut session = Intruder::connect(intruder);
    // The head may be `max_buffered_kb` (64 KiB by default), no more.
    let too_long = session.answer("send-file g 65537 0 1 1");
    assert!(
        too_long.ends_with("sent 0, then SendError::HeadTooLong"),
        "{too_long}"
    );
    let past_end = session.answer("send-file g 0 1 16384 1");
    assert!(
        past_end.ends_with("sent 0, then SendError::OutOfRange"),
        "{past_end}"
    );
    let wrapping = session.answer(&format!("send-file g 0 {} 2 1", u64::MAX));
    assert!(
        wrapping.ends_with("sent 0, then SendError::OutOfRange"),
        "{wrapping}"
    );
    let sent = session.answer("send-file g 2 16380 4 3");
    let expected = format!("{}sent 3", "hhgggg".repeat(3));
    assert_eq!(sent, expected, "each head, then its range, in order");
    bystander_served(&server, "after refused sends");
}

#[test]
fn sends_to_clients_that_never_read_hold_one_buffer_each_not_one_per_call() {
    let (server, intruder) = start();
    let mut sessions: Vec<Intruder> = (0..20).map(|_| Intruder::connect(intruder)).collect();
    for session in &mut sessions {
        assert!(session.answer("hello").starts_with("unknown command"));
    }
    let (rss_before, descriptors_before) = (rss_kib(&server), open_descriptors(&server));
    // Each asks for 4000 sends of a 64 KiB head and a 16 KiB range (320 MB); its client
    // reads nothing, so each parks once the socket's buffers are full.
    for session in &mut sessions {
        session.client().send("send-file g 65536 0 16384 4000");
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let grown = rss_kib(&server).saturating_sub(rss_before);
    eprintln!("20 sessions parked in send-file: the server grew by {grown} KiB");
    // What one pending send holds is 80 KiB: 1.6 MiB for the 20, and their instances'
    // memory beside it. A buffer kept per call would be hundreds of MiB.
    assert!(grown < 32 * 1024, "the server grew by {grown} KiB");
    bystander_served(&server, "while 20 sessions are parked in send-file");
    drop(sessions);
    descriptors_back_to(&server, descriptors_before - 20);
}
