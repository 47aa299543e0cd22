//! Integration tests of serverkit-c11n, in one binary. Fixtures live in the workspace's
//! `tests/c11n/` folder.
//!
//! - `vocab`: the vocabulary the fixtures are written against: core, `pop`, `echo`.
//! - `seed`: ServerKit's own sample `/etc/server/pop/c11n` loads with the values it shows.
//! - `broken`: each `tests/c11n/broken/NAME.c11n` prints exactly `NAME.expected`.

mod broken;
mod seed;
mod vocab;

use std::path::PathBuf;

/// The workspace's `tests/c11n/` folder.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/c11n")
}
