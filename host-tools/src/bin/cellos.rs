//! `cellos`: parse the command line and run the command.

use std::process::ExitCode;

use cellos_host::cli::{Cli, Outcome, run};
use cellos_output::Exit;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(Outcome::Done) => Exit::Done.code(),
        Ok(Outcome::Differences) => Exit::Failed.code(),
        Err(e) => {
            eprintln!("error: {}", cellos_output::error_text(&e));
            e.exit().code()
        }
    }
}
