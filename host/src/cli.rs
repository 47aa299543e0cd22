//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::personality::PERSONALITY_ENV;
pub use crate::scaffold::Lang;

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

/// `serverkit check`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The personality to check.
    #[command(flatten)]
    pub personality: PersonalityArg,

    /// A module file to check as if it were in the personality's `modules/`, in place of
    /// the module of its name: a preflight before copying it in for a hot swap.
    #[arg(long, value_name = "FILE")]
    pub module: Option<PathBuf>,
}

/// `serverkit new`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The module's name, which is also its c11n section's and the project directory's:
    /// a lowercase letter, then lowercase letters, digits and `_`.
    pub name: String,

    /// The module's language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,

    /// The `guest-modules/sdk` of a serverkit checkout, for a Rust project's SDK
    /// dependency (default: the checkout this binary was built from).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// serverkit's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a personality in the foreground until SIGTERM or SIGINT (the default command).
    Run(PersonalityArg),
    /// Load a personality's modules and check its c11n; print every error, or `ok`. Binds nothing.
    Check(CheckArgs),
    /// Write a new module project in ./NAME: the module, a unit test, a personality that
    /// runs it, and the commands to build, check and run it.
    New(NewArgs),
    /// Describe a module: name, versions, authors, contract version and vocabulary.
    Inspect {
        /// A `.wasm` module file, or the name of a built-in module.
        module: String,
    },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::{Cli, Command, Lang};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("serverkit").chain(args.iter().copied()))
    }

    #[test]
    fn new_defaults_to_rust_and_the_built_checkouts_sdk() {
        let Some(Command::New(new)) = parse(&["new", "hello"]).unwrap().command else {
            panic!("not `new`");
        };
        assert_eq!(
            (new.name.as_str(), new.lang, new.sdk),
            ("hello", Lang::Rust, None)
        );
    }

    #[test]
    fn new_takes_a_language_and_an_sdk() {
        let cli = parse(&["new", "kv", "--lang", "python"]).unwrap();
        let Some(Command::New(new)) = cli.command else {
            panic!("not `new`");
        };
        assert_eq!(new.lang, Lang::Python);
        let cli = parse(&["new", "--sdk", "/src/sk/guest-modules/sdk", "kv"]).unwrap();
        let Some(Command::New(new)) = cli.command else {
            panic!("not `new`");
        };
        assert_eq!(
            new.sdk.as_deref(),
            Some(Path::new("/src/sk/guest-modules/sdk"))
        );
    }

    #[test]
    fn new_refuses_an_unknown_language_and_a_missing_name() {
        let error = parse(&["new", "kv", "--lang", "go"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("possible values: rust, python"), "{error}");
        assert!(parse(&["new"]).is_err());
    }

    #[test]
    fn check_takes_a_candidate_module() {
        let cli = parse(&["check", "p", "--module", "build/kv.wasm"]).unwrap();
        let Some(Command::Check(check)) = cli.command else {
            panic!("not `check`");
        };
        assert_eq!(
            check.personality.personality.as_deref(),
            Some(Path::new("p"))
        );
        assert_eq!(check.module.as_deref(), Some(Path::new("build/kv.wasm")));
        let cli = parse(&["check", "p"]).unwrap();
        let Some(Command::Check(check)) = cli.command else {
            panic!("not `check`");
        };
        assert_eq!(check.module, None);
    }

    #[test]
    fn a_bare_personality_still_runs() {
        let cli = parse(&["personalities/pop"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(
            cli.run.personality.as_deref(),
            Some(Path::new("personalities/pop"))
        );
    }
}
