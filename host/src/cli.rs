//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::personality::PERSONALITY_ENV;

/// serverkit: a server host that runs sandboxed WebAssembly modules, ServerKit reborn.
///
/// A personality is a directory with a `c11n` configuration file and a `modules/` folder
/// of `.wasm` modules; a c11n section named after a built-in module loads the built-in.
/// serverkit runs in the foreground and logs to stderr (supervise it with daemontools).
/// Exit codes: 0 after a clean shutdown, 100 for a permanent failure (configuration,
/// module), 111 for a temporary one (a port still in use).
#[derive(Debug, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Run `serverkit help <command>` for a command's options."
)]
pub struct Cli {
    /// The command; `run` when only a personality is given.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The personality of the default `run` command.
    #[command(flatten)]
    pub run: PersonalityArg,
}

/// The personality directory argument.
#[derive(Debug, clap::Args)]
pub struct PersonalityArg {
    /// Personality directory (default: $SERVER_PERSONALITY_PATH).
    #[arg(value_name = "PERSONALITY", env = PERSONALITY_ENV)]
    pub personality: Option<PathBuf>,
}

/// serverkit's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a personality in the foreground until SIGTERM or SIGINT (the default command).
    Run(PersonalityArg),
    /// Load a personality's modules and check its c11n; print every error, or `ok`. Binds nothing.
    Check(PersonalityArg),
    /// Describe a module: name, versions, authors, contract version and vocabulary.
    Inspect {
        /// A `.wasm` module file, or the name of a built-in module.
        module: String,
    },
}
