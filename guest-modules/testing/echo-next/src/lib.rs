//! echo-next: a test-only second version of `echo` (2.0.0, same vocabulary) that answers
//! every line with `v2 ` in front, so hot-swap tests can tell which version served a line.

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{
    Client, Connection, Descriptor, Line, Module, OptionType, Version, config, prestart,
};

struct EchoNext;

impl Module for EchoNext {
    fn describe() -> Descriptor {
        let same =
            |name: &str, option_type| option(name, option_type, &format!("as echo's `{name}`"));
        Descriptor::new(
            "echo",
            "Line echo, version 2: every line comes back after `v2 `",
            Version::new(2, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            same("address", OptionType::Address).default_text("0.0.0.0"),
            same("port", OptionType::Port).default_integer(7),
            same("backlog", OptionType::Integer).default_integer(128),
            same("greeting", OptionType::Text),
            same("fault_injection", OptionType::Boolean).default_flag(false),
        ])
    }

    fn prestart() -> Result<(), String> {
        // Only reached when this version is the one started; a swap never runs prestart.
        let port = config::integer_as::<u16>("port")?.unwrap_or(7);
        prestart::bind_listener("127.0.0.1", port, 128).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let mut client = Client::new(conn)?;
        if let Some(greeting) = config::text("greeting") {
            client
                .send(format!("v2 {greeting}\n").as_bytes())
                .map_err(|e| e.to_string())?;
        }
        // A line longer than the SDK's limit ends the session.
        while let Line::Complete(line) | Line::Unterminated(line) =
            client.read_line().map_err(|e| e.to_string())?
        {
            if line.trim_ascii_end() == b"QUIT" {
                break;
            }
            client
                .send(&[b"v2 ", &line[..]].concat())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

serverkit_sdk::export!(EchoNext);
