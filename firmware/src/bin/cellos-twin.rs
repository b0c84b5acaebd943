//! `cellos-twin`: serves the instrument twin on serial endpoints, one per instrument.

use std::path::PathBuf;

use anyhow::Result;
use cellos_firmware::HostTwin;
use cellos_firmware::deck;
use cellos_firmware::host::{TwinServer, load_deck, parse_faults};
use cellos_firmware::star::Timing;
use clap::Parser;

/// Serve the cellos instrument twin (Hamilton STAR, Tecan EVO, plate reader) on serial lines.
///
/// Without --star/--evo/--reader, creates pty pairs and prints `star=PATH`, `evo=PATH`, `reader=PATH`,
/// `bench=PATH` and `ready` on standard output; open those paths as the instruments' serial ports (the
/// bench line takes the reader's requests for what an operator does by hand: a plate put in a manual
/// incubator, a plate read on a stand-alone reader). Runs until killed.
/// The deck, its error replies and timing are described in docs/twin.md.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seed of all simulated noise (a reading depends only on seed, plate, well, readout and time).
    #[arg(long, default_value_t = 1, env = "CELLOS_TWIN_SEED")]
    seed: u64,
    /// Deck description (TOML); the built-in deck when absent.
    #[arg(long)]
    deck: Option<PathBuf>,
    /// Fault injection on the STAR and EVO lines, comma-separated: drop=N, corrupt=N, dup=N, late=N,
    /// delay=MS, stall=MS, only=CODE (e.g. `drop=1,only=AS` drops the next aspirate reply; `only=C5`
    /// targets the EVO's LiHa replies).
    #[arg(long, default_value = "")]
    faults: String,
    /// Fault injection on the reader line, same syntax; codes RD (read), IN (incubate), WS (well state),
    /// TS (trough state), HE (hello), ID (identify). Control requests are never touched.
    /// E.g. `late=1,delay=6000,only=RD` answers the next reading after 6 s.
    #[arg(long, default_value = "")]
    reader_faults: String,
    /// Serve the STAR on this serial device instead of a new pty.
    #[arg(long)]
    star: Option<PathBuf>,
    /// Serve the EVO on this serial device instead of a new pty.
    #[arg(long)]
    evo: Option<PathBuf>,
    /// Serve the reader and twin control on this serial device instead of a new pty.
    #[arg(long)]
    reader: Option<PathBuf>,
    /// Answer every STAR command at once (no simulated durations).
    #[arg(long)]
    instant: bool,
    /// Incubations take real time at N times its pace (24 h take 24/N h); `Incubate` then answers at
    /// once and the plate cannot be read until the hours are done. Absent: incubations are instant.
    #[arg(long, value_name = "N", value_parser = positive)]
    time_scale: Option<f64>,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let faults = parse_faults(&args.faults)?;
    let reader_faults = parse_faults(&args.reader_faults)?;
    let deck = match &args.deck {
        Some(p) => load_deck(p)?,
        None => deck::default_deck(),
    };
    let timing = if args.instant { Timing::INSTANT } else { Timing::DEFAULT };
    let mut twin = HostTwin::with_deck(deck, args.seed, timing);
    twin.star_faults.set(faults);
    twin.evo_faults.set(faults);
    twin.wire_faults.set(reader_faults);
    twin.time_scale = args.time_scale.unwrap_or(0.0);
    let server = TwinServer::start(twin, args.star.as_deref(), args.evo.as_deref(), args.reader.as_deref())?;
    // Standard output is not locked while serving: the lock would be held for the twin's whole life.
    let mut out = std::io::stdout();
    server.announce_and_serve(&mut out)?;
    Ok(())
}
