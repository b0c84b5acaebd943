//! `cellos-gateway`: parse the command line and hand each command to the library.

use std::process::ExitCode;

use cellos_gateway::cli::{self, Cli, Command, WorklistCommand};
use clap::Parser;

fn run(args: &Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &args.command {
        Command::Decode(a) => cli::decode(a)?,
        Command::Worklist(WorklistCommand::Convert { input, to, output, deck }) => {
            cli::convert(input, *to, output.as_deref(), deck.as_deref())?;
        }
        Command::Worklist(WorklistCommand::Run { file, connection }) => {
            runtime.block_on(cli::run_worklist(file, connection))?
        }
        Command::Probe(a) => runtime.block_on(cli::probe(a))?,
        Command::Campaign(c) => runtime.block_on(cli::campaign(c))?,
        Command::Serve(a) => {
            let s = a.resolve()?;
            runtime.block_on(cellos_gateway::service::serve(&s.bind, s.setup, s.access, s.sila))?
        }
        Command::Token(t) => cli::token(t)?,
        Command::Audit(a) => cli::audit(a)?,
        Command::Twin(a) => cli::twin(a)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A message for the user, not a backtrace: every error says what happened and what to do.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
