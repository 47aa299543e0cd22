//! listen-defaults: a test-only module that declares, beside `address` and `port`, an
//! `admin_address` defaulting to the wildcard and an `admin_port` defaulting to the
//! privileged [`ADMIN_PORT`], options an operator who writes only `address` and `port`
//! never sees. Its prestart (as root) asks for every address-port pair, the wildcard
//! first, and logs each answer as `prestart: bind ADDRESS:PORT: ok|refused ...`.

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{Descriptor, Module, OptionType, Version, config, log, prestart};

/// The privileged port `admin_port` defaults to.
const ADMIN_PORT: i64 = 1020;

struct ListenDefaults;

impl Module for ListenDefaults {
    fn describe() -> Descriptor {
        Descriptor::new(
            "listen_defaults",
            "Test-only: listen options with defaults of its own",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option("address", OptionType::Address, "Address").default_text("127.0.0.1"),
            option("port", OptionType::Port, "Port").default_integer(7),
            option("admin_address", OptionType::Address, "Admin address").default_text("0.0.0.0"),
            option("admin_port", OptionType::Port, "Admin port").default_integer(ADMIN_PORT),
        ])
    }

    fn prestart() -> Result<(), String> {
        let port = config::integer("port").unwrap_or(0) as u16;
        let admin_port = config::integer("admin_port").unwrap_or(0) as u16;
        for address in ["*", "127.0.0.1"] {
            for port in [port, admin_port] {
                let outcome = prestart::bind_listener(address, port, 16);
                let said = match outcome {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("refused {e:?}"),
                };
                log::log(
                    log::Level::Warn,
                    &format!("prestart: bind {address}:{port}: {said}"),
                );
            }
        }
        Ok(())
    }
}

serverkit_sdk::export!(ListenDefaults);
