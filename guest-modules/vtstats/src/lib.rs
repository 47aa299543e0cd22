//! vtstats: ServerKit's console statistics. A module with no port: its operator writes the
//! status report to a terminal every `interval` seconds (a virtual console such as
//! `/dev/tty12`, which the host opens for it in prestart), clearing the screen between
//! reports, so the last figures stay readable even on a machine that hangs.

use std::io::Write;
use std::time::Duration;

use serverkit_sdk::describe::{SERVERKIT_AUTHORS, option};
use serverkit_sdk::{Connection, Descriptor, Module, OptionType, Version, config, stats};

/// Moves the cursor home and clears the screen (VT100).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Turns console blanking off on a Linux virtual console (`setterm -blank 0`).
const NO_BLANKING: &str = "\x1b[9;0]";

/// Seconds between reports when the section does not say.
const DEFAULT_INTERVAL: i64 = 10;

struct VtStats;

impl Module for VtStats {
    fn describe() -> Descriptor {
        Descriptor::new(
            "vtstats",
            "Prints the status report on a console terminal every few seconds",
            Version::new(1, 0, 0),
        )
        .author(SERVERKIT_AUTHORS)
        .options([
            option(
                "tty",
                OptionType::Terminal,
                "Terminal the report is shown on, e.g. /dev/tty12 (a character device)",
            )
            .required(),
            option("interval", OptionType::Integer, "Seconds between reports")
                .default_integer(DEFAULT_INTERVAL),
            option(
                "disable_blanking",
                OptionType::Boolean,
                "Keep the console from blanking, so the figures stay visible",
            )
            .default_flag(false),
        ])
    }

    fn prestart() -> Result<(), String> {
        if interval() < 1 {
            return Err("`interval` must be at least 1 second".into());
        }
        Ok(())
    }

    fn operator() -> Result<(), String> {
        let interval = Duration::from_secs(interval().max(1) as u64);
        let mut terminal = std::io::stdout();
        if config::flag("disable_blanking") {
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

    fn session(_conn: Connection) -> Result<(), String> {
        Err("vtstats serves no connections".into())
    }
}

fn interval() -> i64 {
    config::integer("interval").unwrap_or(DEFAULT_INTERVAL)
}

serverkit_sdk::export!(VtStats);
