//! {{name}}: a serverkit module. It greets each client with its `greeting` option, then
//! answers every line with the line reversed; `QUIT` ends the session.
//!
//! `describe` declares the options, `prestart` binds the listener they name, `session`
//! speaks the protocol. Replace `answer` (and the greeting) with your own protocol.

use serverkit_sdk::describe::{listen_options, option};
use serverkit_sdk::{Connection, Descriptor, Module, OptionType, Version, config, lines, listen};

struct {{Name}};

impl Module for {{Name}} {
    fn describe() -> Descriptor {
        Descriptor::new(
            "{{name}}",
            "Greets, then sends every line back reversed",
            Version::new(0, 1, 0),
        )
        .author("Your Name <you@example.org>")
        .options(listen_options(7070, 64))
        .options([option(
            "greeting",
            OptionType::Text,
            "Line sent to each client when it connects",
        )
        .default_text("hello")])
    }

    fn prestart() -> Result<(), String> {
        listen::plain()?; // the section's address and port; the host refuses any other
        Ok(())
    }

    fn session(conn: Connection) -> Result<(), String> {
        let (lines, mut reply) = lines::split(conn)?;
        reply.line(&config::text("greeting").unwrap_or_default())?;
        for line in lines {
            match answer(&line?) {
                Some(text) => reply.line(&text)?,
                None => return Ok(reply.line("bye")?),
            }
        }
        Ok(())
    }
}

/// The answer to one line: its characters reversed, or `None` for `QUIT`.
fn answer(line: &str) -> Option<String> {
    (line != "QUIT").then(|| line.chars().rev().collect())
}

serverkit_sdk::export!({{Name}});

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn reverses_characters_not_bytes_and_quits() {
        assert_eq!(answer("héllo").as_deref(), Some("olléh"));
        assert_eq!(answer("").as_deref(), Some(""));
        assert_eq!(answer("QUIT"), None);
    }
}
