//! Looking for what an earlier session left in linear memory. The pool hands a freed slot
//! to the next instance of the same module after resetting it (in place where the kernel
//! has `PAGEMAP_SCAN`, `engine/mod.rs`): nothing written by one session may be readable by
//! the next.
//!
//! - `plant SEED`: a 64-byte pattern made from SEED written into a static buffer and
//!   all over a 512 KiB heap block (more than the 128 KiB the pool resets in place), both
//!   kept until the session ends;
//! - `scan SEED`: how many places in the whole linear memory hold the pattern, not
//!   counting the one copy the scan makes to compare with.

use std::sync::Mutex;

const PATTERN: usize = 64;
const BLOCK: usize = 512 << 10;

static PLANTED: Mutex<[u8; PATTERN]> = Mutex::new([0; PATTERN]);
static HELD: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The pattern of `seed`: bytes no ordinary data spells.
fn pattern(seed: u64) -> Vec<u8> {
    (0..PATTERN as u64)
        .map(|i| ((seed.wrapping_mul(31).wrapping_add(i * 7)) % 251) as u8 ^ 0xa5)
        .collect()
}

pub fn plant(seed: u64) -> String {
    let pattern = pattern(seed);
    if let Ok(mut planted) = PLANTED.lock() {
        planted.copy_from_slice(&pattern);
    }
    let mut block = Vec::with_capacity(BLOCK);
    while block.len() + PATTERN <= BLOCK {
        block.extend_from_slice(&pattern);
    }
    if let Ok(mut held) = HELD.lock() {
        *held = block;
    }
    "planted".into()
}

pub fn scan(seed: u64) -> String {
    let needle = pattern(seed);
    let size = core::arch::wasm32::memory_size(0) * 65536;
    // Address 0 is memory like any other in wasm, but not a pointer Rust may read.
    // SAFETY: every address below the memory's size is readable linear memory.
    let memory = unsafe { std::slice::from_raw_parts(1 as *const u8, size - 1) };
    let own = needle.as_ptr() as usize;
    let found = memory
        .windows(PATTERN)
        .enumerate()
        .filter(|(at, window)| at + 1 != own && *window == needle.as_slice())
        .count();
    format!("found {found}")
}
