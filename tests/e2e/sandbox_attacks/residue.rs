//! A freed instance's memory is reset before the next session of its module gets the slot
//! (in place where the kernel has `PAGEMAP_SCAN`, `engine/mod.rs`): a session that plants
//! a pattern in its statics and in 512 KiB of heap, and sessions after it that search their
//! whole linear memory for it.

use super::{Intruder, bystander_served, start};

#[test]
fn no_session_reads_what_an_earlier_one_left_in_memory() {
    let (server, intruder) = start("", "");
    let mut planter = Intruder::connect(intruder);
    assert_eq!(planter.answer("plant 4242"), "planted");
    let found = planter.answer("scan 4242");
    assert_ne!(
        found, "found 0",
        "the scan sees what its own session planted"
    );
    drop(planter);
    // The slot just freed is the one the next sessions get (most recently used first).
    for round in 0..20 {
        let mut next = Intruder::connect(intruder);
        assert_eq!(next.answer("scan 4242"), "found 0", "round {round}");
    }
    bystander_served(&server, "after the sessions that searched memory");
}
