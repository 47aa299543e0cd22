//! contract-v1-0: a test-only line echo built against `serverkit:module@1.0.0`, from a
//! frozen copy of that contract's WIT (`wit/` beside this file, never to be edited), with
//! no SDK. The host speaks a later 1.x: this module proves a module built against an
//! earlier minor version still loads, binds and serves (the version rule, and the
//! linker's semver-compatible lookup of `serverkit:module/*@1.0.0` imports).

wit_bindgen::generate!({
    world: "module",
    path: "wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use std::io::{BufRead, BufReader, Write};

use serverkit::module::types::{ConfigValue, OptionSpec, OptionType, Version};
use serverkit::module::{config, prestart};

struct Old;

fn option(name: &str, option_type: OptionType, default: Option<ConfigValue>) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default,
        required: false,
        help: name.into(),
    }
}

impl Guest for Old {
    fn describe() -> Descriptor {
        let v1 = Version {
            major: 1,
            minor: 0,
            patch: 0,
        };
        Descriptor {
            name: "oldecho".into(),
            description: "Test-only: a line echo built against contract 1.0.0".into(),
            version: v1,
            contract: v1,
            authors: vec![],
            vocabulary: vec![
                option(
                    "address",
                    OptionType::Address,
                    Some(ConfigValue::Text("127.0.0.1".into())),
                ),
                option("port", OptionType::Port, None),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        let Some(ConfigValue::Text(address)) = config::get("address") else {
            return Err("no address".into());
        };
        let Some(ConfigValue::Integer(port)) = config::get("port") else {
            return Err("no port".into());
        };
        prestart::bind_listener(&address, port as u16, 16).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    fn operator() -> Result<(), String> {
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let (input, mut output) = conn.streams().ok_or("streams taken")?;
        let mut lines = BufReader::new(input);
        let mut line = String::new();
        while lines.read_line(&mut line).map_err(|e| e.to_string())? > 0 {
            output
                .write_all(format!("old {line}").as_bytes())
                .and_then(|()| Write::flush(&mut output))
                .map_err(|e| e.to_string())?;
            line.clear();
        }
        Ok(())
    }

    fn report() -> Vec<String> {
        vec!["built against contract 1.0.0".into()]
    }
}

export!(Old);
