//! `cellos-gateway`: parse the command line and hand each command to the library.

use std::process::ExitCode;

use cellos_gateway::cli::{self, Cli, Command, WorklistCommand};
use cellos_output::Exit;
use clap::Parser;

/// `--json` given to a command that prints no data.
#[derive(Debug, thiserror::Error)]
#[error("--json: `{0}` prints no data to give as JSON")]
struct NoJson(&'static str);

fn run(args: &Cli) -> anyhow::Result<()> {
    let json = args.json;
    let refuse = match &args.command {
        Command::Serve(_) => Some("serve"),
        Command::Twin(_) => Some("twin"),
        Command::Replay { .. } => Some("replay"),
        Command::Worklist(WorklistCommand::Convert { .. }) => Some("worklist convert"),
        Command::Decode(a) if a.roundtrip => Some("decode --roundtrip"),
        _ => None,
    };
    if let (true, Some(name)) = (json, refuse) {
        return Err(NoJson(name).into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &args.command {
        Command::Decode(a) => cli::decode(a)?,
        Command::Worklist(WorklistCommand::Convert { input, to, output, deck }) => {
            cli::convert(input, *to, output.as_deref(), deck.as_deref())?;
        }
        Command::Worklist(WorklistCommand::Run { file, connection }) => {
            runtime.block_on(cli::run_worklist(file, connection, json))?
        }
        Command::Probe(a) => runtime.block_on(cli::probe(a, json))?,
        Command::Campaign(c) => runtime.block_on(cli::campaign(c, json))?,
        Command::Serve(a) => {
            let s = a.resolve()?;
            runtime.block_on(cellos_gateway::service::serve(&s.bind, s.setup, s.access, s.sila))?
        }
        Command::Token(t) => cli::token(t, json)?,
        Command::Audit(a) => cli::audit(a, json)?,
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

/// The exit status of an error: the gateway's own errors say which they are; a wrong `--json` is bad
/// usage; anything else (the runtime, a child process) is a failure.
fn exit_of(e: &anyhow::Error) -> Exit {
    if let Some(g) = e.downcast_ref::<cellos_gateway::GatewayError>() {
        g.exit()
    } else if e.downcast_ref::<NoJson>().is_some() {
        Exit::Usage
    } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
        Exit::of_io(io)
    } else {
        Exit::Failed
    }
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
            eprintln!("error: {}", cellos_output::error_text(&e));
            return e.exit().code();
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(&args) {
        Ok(()) => Exit::Done.code(),
        Err(e) => {
            // A message for the user, not a backtrace: every error says what happened and what to do,
            // each cause once.
            eprintln!("error: {}", cellos_output::error_text(e.as_ref()));
            exit_of(&e).code()
        }
    }
}
