//! # cellos-hil: hardware-in-the-loop scenarios
//!
//! A scenario (TOML, in `hil/scenarios/`) is a list of steps, liquid operations or raw instrument
//! commands, each with the outcome it expects: `ok`, `refused:<rule>` (the safety envelope, nothing
//! sent), `instrument:<code>/<trace>` (an error reply; EVO replies have trace 0), `timeout` (no reply; the
//! run stops without retrying), `malformed` (a corrupted reply), or `error` (any failure). A scenario
//! may set a fault-injection profile and the twin's seed.
//!
//! The runner starts a twin for each scenario (default), or talks to a real instrument on the port
//! named by `CELLOS_HIL_PORT` (with `CELLOS_HIL_INSTRUMENT=star|evo`). Steps that need the twin's
//! control link (volume and counter checks, faults, incubation and readings) are skipped on hardware,
//! and the report says so.

use std::path::Path;
use std::time::Duration;

use cellos_core::proto::evo::EvoCommand;
use cellos_core::proto::star::StarMessage;
use cellos_core::proto::wire::{Link, Readout, Request, Response};
use cellos_firmware::HostTwin;
use cellos_firmware::host::{TwinServer, parse_faults};
use cellos_firmware::star::Timing;
use cellos_gateway::GatewayError;
use cellos_gateway::evo::EvoDriver;
use cellos_gateway::handlers::{EvoHandler, StarHandler};
use cellos_gateway::liquid::{LiquidHandler, Op, Place, Workcell};
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{Protocol, SerialConfig, SerialRx, SerialTx, open_serial};
use cellos_gateway::wire::WireClient;
use serde::Deserialize;

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows.
    pub name: String,
    /// `star` or `evo`.
    pub instrument: String,
    /// Twin noise seed.
    #[serde(default = "one")]
    pub seed: u64,
    /// Time limit per command, ms.
    #[serde(default = "two_seconds")]
    pub timeout_ms: u64,
    /// Fault-injection profile (the `cellos-twin --faults` syntax).
    #[serde(default)]
    pub faults: String,
    /// Whether the twin answers at once (no simulated durations).
    #[serde(default = "yes")]
    pub instant: bool,
    /// Initialise the instrument before the first step.
    #[serde(default = "yes")]
    pub initialise: bool,
    /// The steps.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

fn one() -> u64 {
    1
}
fn two_seconds() -> u64 {
    2000
}
fn yes() -> bool {
    true
}

/// One step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// `pick_up`, `aspirate`, `dispense`, `drop`, `move_plate`, `raw`, `set_faults`, `incubate`, `read`,
    /// `check_volume`, `check_counter`.
    pub op: String,
    /// Channel, 1-based.
    #[serde(default = "one_usize")]
    pub channel: usize,
    /// Place (`PLATE_1:A1`, `MEDIUM`, `WASTE`).
    pub at: Option<String>,
    /// Second place (move_plate target as `x,y` in 0.1 mm; or unused).
    pub to: Option<String>,
    /// Volume, µL.
    pub volume_ul: Option<f64>,
    /// Raw command (STAR text or EVO frame with `\u0002` … `\u0000`).
    pub command: Option<String>,
    /// Fault specification for `set_faults`.
    pub faults: Option<String>,
    /// Hours for `incubate`.
    pub hours: Option<f64>,
    /// Readout for `read`: viability, cellrox, segmentation, count.
    pub readout: Option<String>,
    /// Counter for `check_counter`: aspirates, dispenses, tip_pickups, tip_drops, errors, commands.
    pub counter: Option<String>,
    /// Expected value (counter), or lower bound (read).
    pub min: Option<f64>,
    /// Upper bound (read) or exact value (counter, with `min`).
    pub max: Option<f64>,
    /// Expected outcome.
    #[serde(default = "ok")]
    pub expect: String,
}

fn one_usize() -> usize {
    1
}
fn ok() -> String {
    "ok".into()
}

/// Why a scenario could not run or did not pass.
#[derive(Debug, thiserror::Error)]
pub enum HilError {
    /// The file is not a valid scenario.
    #[error("{0}")]
    Scenario(String),
    /// A step's outcome differed from the expectation.
    #[error("step {step} ({op}): expected {expected}, got {got}")]
    Mismatch {
        /// 1-based step.
        step: usize,
        /// The step's op.
        op: String,
        /// Expected outcome.
        expected: String,
        /// What happened.
        got: String,
    },
    /// The bench could not be set up.
    #[error("setup: {0}")]
    Setup(String),
}

/// Reads a scenario file.
pub fn load(path: &Path) -> Result<Scenario, HilError> {
    let text = std::fs::read_to_string(path).map_err(|e| HilError::Scenario(format!("{}: {e}", path.display())))?;
    let s: Scenario = toml::from_str(&text).map_err(|e| HilError::Scenario(format!("{}: {e}", path.display())))?;
    if !matches!(s.instrument.as_str(), "star" | "evo") {
        return Err(HilError::Scenario(format!("{}: instrument is star or evo", path.display())));
    }
    parse_faults(&s.faults).map_err(|e| HilError::Scenario(format!("{}: {e}", path.display())))?;
    Ok(s)
}

/// The outcome of a step, in the expectation grammar.
fn outcome(r: &Result<(), GatewayError>) -> String {
    fn of(e: &GatewayError) -> String {
        match e {
            GatewayError::Refused { rule, .. } => format!("refused:{}", serde_plain(rule)),
            GatewayError::Instrument(i) => format!("instrument:{:02}/{:02}", i.code, i.trace),
            GatewayError::Timeout { .. } => "timeout".into(),
            GatewayError::Malformed { .. } => "malformed".into(),
            GatewayError::OperationFailed { cause, .. } => of(cause),
            other => format!("error: {other}"),
        }
    }
    match r {
        Ok(()) => "ok".into(),
        Err(e) => of(e),
    }
}

fn serde_plain(rule: &cellos_gateway::error::Rule) -> String {
    // The rule's snake_case name, as the error type serialises it.
    format!("{rule:?}").chars().fold(String::new(), |mut s, c| {
        if c.is_uppercase() && !s.is_empty() {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
        s
    })
}

fn matches(expected: &str, got: &str) -> bool {
    expected == got || (expected == "error" && got != "ok")
}

/// What a run of one scenario reports.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps executed.
    pub steps: usize,
    /// Steps skipped (they need the twin).
    pub skipped: Vec<String>,
}

enum Bench {
    Star(Workcell<StarHandler<SerialTx>>),
    Evo(Workcell<EvoHandler<SerialTx, SerialRx>>),
}

struct Rig {
    bench: Bench,
    control: Option<WireClient<SerialTx, SerialRx>>,
    _twin: Option<TwinServer>,
}

fn star_raw_outcome(text: &str) -> String {
    match StarMessage::parse(text) {
        Err(_) => "malformed".into(),
        Ok(m) => match m.errors().next() {
            None => "ok".into(),
            Some(e) => format!("instrument:{:02}/{:02}", e.code, e.trace),
        },
    }
}

/// Runs a scenario against a twin started for it, or against `port` (a real instrument).
pub async fn run(s: &Scenario, port: Option<&str>) -> Result<Report, HilError> {
    let limit = Duration::from_millis(s.timeout_ms);
    let setup = |e: GatewayError| HilError::Setup(e.to_string());
    let (twin, line, reader) = match port {
        Some(p) => (None, p.to_string(), None),
        None => {
            let mut t = HostTwin::new(s.seed, if s.instant { Timing::INSTANT } else { Timing::DEFAULT });
            let f = parse_faults(&s.faults).map_err(|e| HilError::Scenario(e.to_string()))?;
            t.star_faults.set(f);
            t.evo_faults.set(f);
            let server = TwinServer::start(t, None, None, None).map_err(|e| HilError::Setup(e.to_string()))?;
            let line = if s.instrument == "star" { server.star.clone() } else { server.evo.clone() };
            let reader = server.reader.clone();
            (Some(server), line, Some(reader))
        }
    };
    let deck = cellos_core::deck::default_deck();
    let control = match &reader {
        Some(r) => {
            let (tx, rx) = open_serial(&SerialConfig::new(r), Protocol::Wire).map_err(setup)?;
            Some(WireClient::new(tx, rx, Duration::from_secs(2)))
        }
        None => None,
    };
    let proto = if s.instrument == "star" { Protocol::Star } else { Protocol::Evo };
    let (tx, rx) = open_serial(&SerialConfig::new(&line), proto).map_err(setup)?;
    let bench = if s.instrument == "star" {
        Bench::Star(Workcell::new(StarHandler::new(StarDriver::new(tx, rx, Timeouts::uniform(limit), 8)), deck))
    } else {
        Bench::Evo(Workcell::new(EvoHandler::new(EvoDriver::new(tx, rx, limit)), deck))
    };
    let mut rig = Rig { bench, control, _twin: twin };
    if s.initialise {
        let r = match &mut rig.bench {
            Bench::Star(w) => w.initialise().await,
            Bench::Evo(w) => w.initialise().await,
        };
        r.map_err(|e| HilError::Setup(format!("initialise: {e}")))?;
    }
    let mut report = Report::default();
    for (i, step) in s.steps.iter().enumerate() {
        let n = i + 1;
        let needs_twin =
            matches!(step.op.as_str(), "set_faults" | "incubate" | "read" | "check_volume" | "check_counter");
        if needs_twin && rig.control.is_none() {
            report.skipped.push(format!("step {n} ({}) needs the twin", step.op));
            continue;
        }
        let got = run_step(&mut rig, step).await.map_err(|e| HilError::Mismatch {
            step: n,
            op: step.op.clone(),
            expected: step.expect.clone(),
            got: e,
        })?;
        if !matches(&step.expect, &got) {
            return Err(HilError::Mismatch { step: n, op: step.op.clone(), expected: step.expect.clone(), got });
        }
        report.steps += 1;
    }
    Ok(report)
}

async fn ask(control: &Option<WireClient<SerialTx, SerialRx>>, req: &Request) -> Result<Response, String> {
    control.as_ref().ok_or("no control link")?.ask(req).await.map_err(|e| e.to_string())
}

fn place(step: &Step) -> Result<Place, String> {
    step.at.as_deref().map(Place::parse).ok_or_else(|| format!("{} needs `at`", step.op))
}

fn volume(step: &Step) -> Result<f64, String> {
    step.volume_ul.ok_or_else(|| format!("{} needs `volume_ul`", step.op))
}

async fn run_liquid<H: LiquidHandler>(w: &mut Workcell<H>, step: &Step) -> Result<String, String> {
    let channel = step.channel.checked_sub(1).ok_or("channels count from 1")?;
    let op = match step.op.as_str() {
        "pick_up" => Op::PickUpTip { channel, at: place(step)? },
        "aspirate" => Op::Aspirate { channel, from: place(step)?, volume_ul: volume(step)? },
        "dispense" => Op::Dispense { channel, to: place(step)?, volume_ul: volume(step)? },
        "drop" => Op::DropTip { channel, to: place(step).unwrap_or(Place::named("WASTE")) },
        "move_plate" => {
            let xy = |s: Option<&String>| -> Result<(i32, i32), String> {
                let s = s.ok_or("move_plate needs `at` and `to` as x,y")?;
                let (x, y) = s.split_once(',').ok_or("x,y")?;
                Ok((x.trim().parse().map_err(|_| "x")?, y.trim().parse().map_err(|_| "y")?))
            };
            let r = w.handler().move_plate(xy(step.at.as_ref())?, xy(step.to.as_ref())?).await;
            return Ok(outcome(&r));
        }
        other => return Err(format!("unknown op `{other}`")),
    };
    Ok(outcome(&w.run(&op).await))
}

async fn run_step(rig: &mut Rig, step: &Step) -> Result<String, String> {
    match step.op.as_str() {
        "raw" => {
            let command = step.command.as_deref().ok_or("raw needs `command`")?;
            match &mut rig.bench {
                Bench::Star(w) => {
                    // Sent on the bench's own line with the driver's id in place of the written one, so that
                    // the reply matches; the reply is classified here.
                    let r = w
                        .handler()
                        .driver()
                        .request(|id| {
                            let text = match (command.get(4..6), command.get(10..)) {
                                (Some("id"), Some(rest)) => format!("{}id{id:04}{rest}", &command[..4]),
                                _ => command.to_string(),
                            };
                            heapless::String::try_from(text.as_str())
                                .map_err(|_| cellos_core::proto::star::BuildError::Full)
                        })
                        .await;
                    Ok(match r {
                        Ok(reply) => star_raw_outcome(&reply.text),
                        Err(e) => outcome(&Err(e)),
                    })
                }
                Bench::Evo(w) => {
                    let frame: Vec<u8> = command.chars().map(|c| c as u32 as u8).collect();
                    let cmd = EvoCommand::parse(&frame).map_err(|e| format!("raw EVO frame: {e}"))?;
                    Ok(outcome(&w.handler().driver().command(&cmd).await.map(|_| ())))
                }
            }
        }
        "set_faults" => {
            let f = parse_faults(step.faults.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
            for link in [Link::Star, Link::Evo] {
                ask(&rig.control, &Request::SetLinkFaults { link, faults: f }).await?;
            }
            Ok("ok".into())
        }
        "incubate" => {
            let r =
                ask(&rig.control, &Request::Incubate { plate: 0, hours: step.hours.ok_or("incubate needs `hours`")? })
                    .await?;
            Ok(if r == Response::Done { "ok".into() } else { format!("{r:?}") })
        }
        "read" | "check_volume" | "check_counter" => check(rig, step).await,
        _ => match &mut rig.bench {
            Bench::Star(w) => run_liquid(w, step).await,
            Bench::Evo(w) => run_liquid(w, step).await,
        },
    }
}

fn well_index(place: &Place) -> Result<u16, String> {
    let format = cellos_core::plate::PlateFormat::W96;
    let w = format.parse_well(place.well.as_deref().ok_or("a well")?).map_err(|e| e.to_string())?;
    Ok(format.row_major(w))
}

async fn check(rig: &mut Rig, step: &Step) -> Result<String, String> {
    let within = |v: f64| step.min.is_none_or(|m| v >= m - 1e-9) && step.max.is_none_or(|m| v <= m + 1e-9);
    let value = match step.op.as_str() {
        "check_volume" => {
            let p = place(step)?;
            match ask(&rig.control, &Request::WellState { plate: 0, well: well_index(&p)? }).await? {
                Response::Well(w) => w.volume_ul,
                other => return Ok(format!("{other:?}")),
            }
        }
        "read" => {
            let p = place(step)?;
            let readout = match step.readout.as_deref() {
                Some("viability") => Readout::Viability,
                Some("cellrox") => Readout::CellRox,
                Some("segmentation") => Readout::Segmentation,
                Some("count") => Readout::CellCount,
                _ => return Err("read needs readout = viability | cellrox | segmentation | count".into()),
            };
            match ask(&rig.control, &Request::Read { plate: 0, well: well_index(&p)?, readout }).await? {
                Response::Value(v) => v,
                other => return Ok(format!("{other:?}")),
            }
        }
        _ => {
            let Response::Counters(c) = ask(&rig.control, &Request::Counters).await? else {
                return Err("no counters".into());
            };
            let v = match step.counter.as_deref() {
                Some("aspirates") => c.aspirates,
                Some("dispenses") => c.dispenses,
                Some("tip_pickups") => c.tip_pickups,
                Some("tip_drops") => c.tip_drops,
                Some("errors") => c.errors,
                Some("commands") => c.commands,
                other => return Err(format!("unknown counter {other:?}")),
            };
            f64::from(v)
        }
    };
    Ok(if within(value) { "ok".into() } else { format!("value {value} outside [{:?}, {:?}]", step.min, step.max) })
}
