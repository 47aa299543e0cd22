//! The `serverkit` binary: parse arguments, run the command, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use serverkit::cli::{Cli, Command};
use serverkit::failure::exit_code;
use serverkit::personality::Personality;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = serverkit::logging::init();
    let result = match cli.command {
        None => run(cli.run.personality, &log),
        Some(Command::Run(arg)) => run(arg.personality, &log),
        Some(Command::Check(arg)) => Personality::locate(arg.personality.personality)
            .and_then(|p| serverkit::startup::check(&p, arg.module.as_deref()))
            .map(|()| println!("ok")),
        Some(Command::New(new)) => std::env::current_dir()
            .map_err(anyhow::Error::from)
            .and_then(|parent| {
                serverkit::scaffold::create(&serverkit::scaffold::NewProject {
                    name: new.name,
                    lang: new.lang,
                    sdk: new.sdk,
                    parent,
                })
            })
            .map(|created| println!("{created}")),
        Some(Command::Inspect { module }) => {
            serverkit::inspect::inspect(&module).map(|text| print!("{text}"))
        }
    };
    serverkit::logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("serverkit: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

fn run(
    personality: Option<std::path::PathBuf>,
    log: &serverkit::logging::LogSwitch,
) -> anyhow::Result<()> {
    serverkit::startup::run(&Personality::locate(personality)?, log)
}
