//! pop's reading of client input in the AUTHORIZATION and TRANSACTION states: each line
//! as a command, an AUTH PLAIN response, and the operator's maildrop query format. Must
//! never panic; a parsed command must be one the line really named.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop::fuzzing::{Command, Style, compile_query, parse_command, plain_credentials};

fuzz_target!(|data: &[u8]| {
    // The server reads lines lossily (lines.rs): the same here.
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Ok(command) = parse_command(line) {
            let keyword = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let named = format!("{command:?}").to_ascii_uppercase();
            assert!(
                named.starts_with(&keyword),
                "{line:?} parsed as {command:?}"
            );
            if let Command::User(user) = &command {
                assert!(!user.is_empty());
            }
        }
        if let Some((user, password)) = plain_credentials(line) {
            assert!(!user.contains('\0') && !password.contains('\0'));
        }
    }
    for style in [Style::Question, Style::Dollar] {
        let _ = compile_query(&text, style);
    }
});
