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
        Command::Replay { file } => {
            let args = cli::replay_args(file)?;
            let status = std::process::Command::new(std::env::current_exe()?).args(&args).status()?;
            if !status.success() {
                anyhow::bail!("the replay of {} differs from the recording (above)", file.display());
            }
            eprintln!("replay of {}: every message as recorded", file.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Some(path) = &args.capture {
        // The command as given, without the capture itself: what `replay` runs again.
        let mut command: Vec<String> = std::env::args().skip(1).collect();
        if let Some(i) = command.iter().position(|a| a == "--capture") {
            command.drain(i..(i + 2).min(command.len()));
        }
        command.retain(|a| !a.starts_with("--capture="));
        if let Err(e) = cellos_gateway::transport::capture::start(path, &command) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
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
