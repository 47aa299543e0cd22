//! vtstats: ServerKit's console statistics. A module with no port: its operator writes the
//! status report to a terminal every `interval` seconds (a virtual console such as
//! `/dev/tty12`, which the host opens for it in prestart), clearing the screen between
//! reports, so the last figures stay readable even on a machine that hangs.

use std::io::Write;
use std::time::Duration;

wit_bindgen::generate!({
    world: "module",
    path: "../../wit",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
    },
});

use serverkit::module::{config, stats, types};
use types::{ConfigValue, OptionSpec, OptionType, Version};

/// Moves the cursor home and clears the screen (VT100).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Turns console blanking off on a Linux virtual console (`setterm -blank 0`).
const NO_BLANKING: &str = "\x1b[9;0]";

struct VtStats;

fn option(name: &str, option_type: OptionType, default: ConfigValue, help: &str) -> OptionSpec {
    OptionSpec {
        name: name.into(),
        option_type,
        default: Some(default),
        required: false,
        help: help.into(),
    }
}

fn integer(key: &str, fallback: i64) -> i64 {
    match config::get(key) {
        Some(ConfigValue::Integer(i)) => i,
        _ => fallback,
    }
}

impl Guest for VtStats {
    fn describe() -> types::Descriptor {
        types::Descriptor {
            name: "vtstats".into(),
            description: "Prints the status report on a console terminal every few seconds".into(),
            version: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            contract: Version {
                major: 1,
                minor: 0,
                patch: 0,
            },
            authors: vec!["The serverkit developers".into()],
            vocabulary: vec![
                option(
                    "tty",
                    OptionType::Terminal,
                    ConfigValue::Text("/dev/tty12".into()),
                    "Terminal the report is shown on",
                ),
                option(
                    "interval",
                    OptionType::Integer,
                    ConfigValue::Integer(10),
                    "Seconds between reports",
                ),
                option(
                    "disable_blanking",
                    OptionType::Boolean,
                    ConfigValue::Boolean(false),
                    "Keep the console from blanking, so the figures stay visible",
                ),
            ],
        }
    }

    fn construct() -> Result<(), String> {
        Ok(())
    }

    fn prestart() -> Result<(), String> {
        if integer("interval", 10) < 1 {
            return Err("`interval` must be at least 1 second".into());
        }
        Ok(())
    }

    fn operator() -> Result<(), String> {
        let interval = Duration::from_secs(integer("interval", 10).max(1) as u64);
        let mut terminal = std::io::stdout();
        if matches!(
            config::get("disable_blanking"),
            Some(ConfigValue::Boolean(true))
        ) {
            terminal
                .write_all(NO_BLANKING.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        loop {
            let report = stats::report();
            write!(terminal, "{CLEAR_SCREEN}{report}").map_err(|e| e.to_string())?;
            terminal.flush().map_err(|e| e.to_string())?;
            std::thread::sleep(interval);
        }
    }

    fn session(_conn: serverkit::module::connection::Connection) -> Result<(), String> {
        Err("vtstats serves no connections".into())
    }

    fn report() -> Vec<String> {
        Vec::new()
    }
}

export!(VtStats);
