//! The c11n parser and vocabulary checker on arbitrary text: they must never panic, and
//! every diagnostic must point inside the file it was given.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serverkit_c11n::{OptionSpec, OptionType, Parsed, SectionSpec, Value, Vocabulary};

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(vocabulary);

fuzz_target!(|data: &[u8]| {
    // Files are read as UTF-8 by the host; lossy keeps non-UTF-8 inputs useful.
    let text = String::from_utf8_lossy(data);
    let _ = serverkit_c11n::parse("fuzz.c11n", &text);
    let parsed = Parsed::new("fuzz.c11n", &text);
    match parsed.check(&VOCABULARY) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(diagnostics) => {
            let lines: Vec<&str> = text.split('\n').collect();
            for d in &diagnostics.0 {
                let (line, column) = (d.location.line as usize, d.location.column as usize);
                let width = lines.get(line.wrapping_sub(1)).map(|l| l.chars().count());
                assert!(
                    width.is_some_and(|w| (1..=w + 1).contains(&column)),
                    "diagnostic outside a {}-line file: {d}",
                    lines.len()
                );
            }
            // Display quotes tokens and underlines them: must not panic either.
            let _ = diagnostics.to_string();
        }
    }
});

/// The core vocabulary and a section with an option of every type, as a module adds it.
fn vocabulary() -> Vocabulary {
    use OptionType::*;
    let mut vocab = Vocabulary::core();
    vocab.add_section(
        SectionSpec::new("pop", "every option type")
            .option(OptionSpec::new("database", DatabaseRef, "pool").required())
            .option(OptionSpec::new("port", Port, "port").with_default(Value::Int(110)))
            .option(OptionSpec::new("address", Address, "address"))
            .option(OptionSpec::new("backlog", Integer, "backlog"))
            .option(OptionSpec::new("tls", Bool, "flag"))
            .option(OptionSpec::new("maildrop_root", Directory, "directory"))
            .option(OptionSpec::new("certificate", File, "file"))
            .option(OptionSpec::new("names", List(Box::new(String)), "list"))
            .option(OptionSpec::new("ports", List(Box::new(Port)), "list"))
            .option(OptionSpec::new("maildrop_query_format_string", String, "query").required()),
    );
    vocab.add_section(
        SectionSpec::new("listener", "titled")
            .titled()
            .repeatable()
            .option(OptionSpec::new("port", Port, "port")),
    );
    vocab
}
