//! construct-fails: a test-only module named `echo` whose `construct` fails, so hot-swap
//! tests can see a broken replacement refused while the old version keeps serving.

use serverkit_sdk::describe::SERVERKIT_AUTHORS;
use serverkit_sdk::{Connection, Descriptor, Module, Version};

struct ConstructFails;

impl Module for ConstructFails {
    fn describe() -> Descriptor {
        Descriptor::new(
            "echo",
            "Fails in construct, on purpose",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
    }

    fn construct() -> Result<(), String> {
        Err("construct-fails refuses to start, as it was built to".into())
    }

    fn session(_conn: Connection) -> Result<(), String> {
        Err("never constructed".into())
    }
}

serverkit_sdk::export!(ConstructFails);
