//! construct-fails: a test-only module named `echo` whose `construct` fails, so hot-swap
//! tests can see a broken replacement refused while the old version keeps serving.

wit_bindgen::generate!({
    world: "module",
    path: "../../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::types::Version;

struct ConstructFails;

impl Guest for ConstructFails {
    fn describe() -> Descriptor {
        let v = Version {
            major: 1,
            minor: 0,
            patch: 0,
        };
        Descriptor {
            name: "echo".into(),
            description: "Fails in construct, on purpose".into(),
            version: v,
            contract: v,
            authors: vec!["The serverkit developers".into()],
            vocabulary: Vec::new(),
        }
    }

    fn construct() -> Result<(), String> {
        Err("construct-fails refuses to start, as it was built to".into())
    }

    fn prestart() -> Result<(), String> {
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(_conn: Connection) -> Result<(), String> {
        Err("never constructed".into())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

export!(ConstructFails);
