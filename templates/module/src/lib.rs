//! reverse: a serverkit module template. It greets each client with its `greeting`
//! option, then answers every line with the same characters in reverse order; `QUIT`
//! ends the session.
//!
//! Rename it in `Cargo.toml` and in `describe`, keep the shape: `describe` declares the
//! options, `prestart` binds the listener they name, `session` speaks the protocol.

use std::io::Write;

use serverkit_sdk::describe::{self, option};
use serverkit_sdk::{Client, Connection, Descriptor, Line, Module, OptionType, Version};
use serverkit_sdk::{config, listen};

struct Reverse;

impl Module for Reverse {
    fn describe() -> Descriptor {
        Descriptor::new(
            "reverse",
            "Greets, then sends every line back reversed",
            Version::new(0, 1, 0),
        )
        .author("Your Name <you@example.org>")
        .options(describe::listen_options(7070, 64))
        .options([option(
            "greeting",
            OptionType::Text,
            "Line sent to each client when it connects",
        )
        .default_text("hello")])
    }

    fn prestart() -> Result<(), String> {
        // The host binds only the address and port the section names.
        listen::plain().map(drop)
    }

    fn session(conn: Connection) -> Result<(), String> {
        let mut client = Client::new(conn)?;
        let greeting = config::text("greeting").unwrap_or_default();
        writeln!(client, "{greeting}").map_err(|e| e.to_string())?;
        loop {
            let line = client.read_line().map_err(|e| e.to_string())?;
            let text = match &line {
                Line::Complete(_) | Line::Unterminated(_) => line.content().unwrap_or_default(),
                Line::TooLong => return Err("line too long".into()),
                Line::Closed => return Ok(()),
            };
            let text = String::from_utf8_lossy(text);
            if text == "QUIT" {
                return writeln!(client, "bye").map_err(|e| e.to_string());
            }
            writeln!(client, "{}", reverse(&text)).map_err(|e| e.to_string())?;
        }
    }
}

/// `text` with its characters in reverse order.
fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

serverkit_sdk::export!(Reverse);

#[cfg(test)]
mod tests {
    use super::reverse;

    #[test]
    fn reverses_characters_not_bytes() {
        assert_eq!(reverse("héllo"), "olléh");
        assert_eq!(reverse(""), "");
    }
}
