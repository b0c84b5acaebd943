//! The `cellos-gateway` command line: argument types (clap) and one function per command. `main` only
//! parses and dispatches, as in espflash.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::GatewayError;
use crate::campaign;
use crate::evo::{EVO_TIMEOUT, EvoDriver};
use crate::handlers::{EvoHandler, StarHandler};
use crate::liquid::{DeckModel, LiquidHandler, Workcell};
use crate::star::{StarDriver, Timeouts};
use crate::transport::{Protocol, SerialConfig, open_line};
use crate::twin::{TwinOptions, TwinProcess};
use crate::worklist::{self, gwl, hamilton};
use cellos_output::outln;
use cellos_store::campaign::CampaignStatus;

/// cellos lab gateway: drives Hamilton STAR and Tecan EVO liquid handlers, runs worklists, and inspects
/// instrument traces.
#[derive(Parser, Debug)]
#[command(name = "cellos-gateway", version, after_help = cellos_output::EXIT_CODES)]
pub struct Cli {
    /// Print JSON instead of tables and sentences, for the commands that print data (refused by those
    /// that print none: serve, replay, worklist convert, decode --roundtrip).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log level (error, warn, info, debug, trace), or a tracing filter.
    #[arg(long, global = true, env = "CELLOS_LOG", default_value = "warn")]
    pub log: String,
    /// Record every message on every instrument line, both ways, with time stamps, into FILE (the
    /// format is in docs/usb.md); `replay FILE` plays it back in place of the instrument.
    #[arg(long, global = true, value_name = "FILE")]
    pub capture: Option<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Decode STAR or EVO traces and Tecan worklists: one JSON object per message, or (--roundtrip) the
    /// messages re-emitted, which must equal the input.
    Decode(DecodeArgs),
    /// Run or convert worklists.
    #[command(subcommand)]
    Worklist(WorklistCommand),
    /// Ask an instrument who it is: initialisation, firmware version, channels.
    Probe(ProbeArgs),
    /// Autonomous dose-finding campaigns: run, resume after a crash, show progress, or the demo.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Serve the gateway as a service: an HTTP/JSON API under /api/v1 (runs, actions, Server-Sent
    /// Events, OpenAPI at /api/v1/openapi.json), on loopback unless --allow-remote with TLS, until
    /// SIGTERM or Ctrl-C (the running
    /// campaign then stops at its next safe point). Every route but /health needs a token (`token
    /// create`). See docs/gateway-service.md.
    Serve(ServeArgs),
    /// Tokens for the gateway service: `create` prints a token once (only its hash is kept), `list`,
    /// `revoke`. Scopes: read < operate (submit and act on runs) < admin (manage tokens).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The service's audit trail: `verify` checks its hash chain and names the first edited, deleted or
    /// inserted row (exit 1).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Play a recording (made with --capture) back in place of the instrument: the command it
    /// recorded runs again, its instrument line replaced by the recording; it fails at the first message
    /// that differs from the recording, naming the recording's line.
    Replay {
        /// The recording.
        file: PathBuf,
    },
    /// Serve the instrument twin on pty pairs (used by --twin).
    #[command(hide = true)]
    Twin(TwinArgs),
}

/// `serve` arguments. Each may also come from `--config FILE` (TOML, the same names with underscores:
/// `bind`, `data_dir`, `star`, `reader`, `evo`, `twin`, `time_scale`, `timeouts`, `allow_remote`,
/// `tls_cert`, `tls_key`, `self_signed`); the command line wins.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service's settings (TOML); the command line overrides them.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8470). Loopback unless --allow-remote (which needs TLS).
    #[arg(long)]
    pub bind: Option<String>,
    /// Allow an address other machines can reach; it must be served with TLS.
    #[arg(long)]
    pub allow_remote: bool,
    /// TLS certificate (PEM), with --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM), with --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS with a self-signed certificate made once in the data directory; its SHA-256 fingerprint is
    /// printed for clients to pin.
    #[arg(long)]
    pub self_signed: bool,
    /// Run each campaign (and worklist) on an instrument twin the service starts (and stops when the
    /// run ends).
    #[arg(long)]
    pub twin: bool,
    /// The EVO's serial line, for worklist runs on the EVO.
    #[arg(long, conflicts_with = "twin")]
    pub evo: Option<String>,
    /// Lab time runs N times real time for campaigns that do not set `time_scale` (and the twins
    /// started for them with --twin take 24/N real hours for a 24 h incubation). For tests and
    /// demonstrations; absent on a real bench.
    #[arg(long, value_name = "N")]
    pub time_scale: Option<f64>,
    /// Also serve SiLA 2 (gRPC) on this address, e.g. 127.0.0.1:50052: the SiLAService feature and
    /// io.cellos/lab/DoseFinding/v1, on the same runs. TLS, from a certificate authority made once in the
    /// data directory (clients trust `sila-ca.pem`).
    #[arg(long, value_name = "IP:PORT")]
    pub sila: Option<String>,
    /// Serve SiLA 2 as plain gRPC (loopback only).
    #[arg(long, requires = "sila")]
    pub sila_insecure: bool,
    /// Announce the SiLA 2 server by mDNS (service `_sila._tcp`, its UUID as the instance, the
    /// certificate authority in the TXT record), for lab software that discovers servers.
    #[arg(long, requires = "sila")]
    pub announce: bool,
    /// Data directory and instrument lines.
    #[command(flatten)]
    pub ports: Ports,
}

/// `serve --config`: the service's settings.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    star: Option<String>,
    reader: Option<String>,
    evo: Option<String>,
    #[serde(default)]
    twin: bool,
    time_scale: Option<f64>,
    timeouts: Option<String>,
    #[serde(default)]
    allow_remote: bool,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    self_signed: bool,
    sila: Option<String>,
    #[serde(default)]
    sila_insecure: bool,
    #[serde(default)]
    announce: bool,
    reconnect: Option<u64>,
}

/// What `serve` runs with: the address, the workcell and how it is reached.
#[derive(Clone, Debug)]
pub struct Serve {
    /// Address to listen on.
    pub bind: String,
    /// The workcell.
    pub setup: crate::service::Setup,
    /// Remote access and TLS.
    pub access: crate::service::Access,
    /// The SiLA 2 front end, if any.
    pub sila: Option<crate::sila::Listen>,
}

impl ServeArgs {
    /// The settings: the command line over `--config` over the defaults; the file is checked whole.
    pub fn resolve(&self) -> Result<Serve, GatewayError> {
        let file: ServeFile = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| GatewayError::Config { path: p.clone(), message: e.to_string() })?;
                toml::from_str(&text).map_err(|e| GatewayError::Config { path: p.clone(), message: e.to_string() })?
            }
            None => ServeFile::default(),
        };
        let bad = |m: &str| GatewayError::Config {
            path: self.config.clone().unwrap_or_else(|| "serve".into()),
            message: m.to_string(),
        };
        let star = self.ports.star.clone().or(file.star);
        let reader = self.ports.reader.clone().or(file.reader);
        let twin = self.twin || file.twin;
        if star.is_some() != reader.is_some() {
            return Err(bad("give the STAR's and the reader's lines together (star and reader)"));
        }
        if twin && (self.ports.star.is_some() || self.evo.is_some()) {
            return Err(bad("--twin runs on a twin: leave out the instruments' lines"));
        }
        let (star, reader, evo) = if twin { (None, None, None) } else { (star, reader, self.evo.clone().or(file.evo)) };
        let tls_cert = self.tls_cert.clone().or(file.tls_cert);
        let tls_key = self.tls_key.clone().or(file.tls_key);
        let self_signed = self.self_signed || file.self_signed;
        let tls = match (tls_cert, tls_key, self_signed) {
            (Some(_), Some(_), true) => return Err(bad("give a certificate and key, or self_signed, not both")),
            (Some(cert), Some(key), false) => crate::service::Tls::Files { cert, key },
            (Some(_), None, _) | (None, Some(_), _) => return Err(bad("tls_cert and tls_key go together")),
            (None, None, true) => crate::service::Tls::SelfSigned,
            (None, None, false) => crate::service::Tls::None,
        };
        let timeouts = if self.ports.timeouts.is_empty() {
            file.timeouts.unwrap_or_default()
        } else {
            self.ports.timeouts.clone()
        };
        // A service rides through a lost line: ten minutes unless told otherwise.
        let reconnect = Some(self.ports.reconnect.or(file.reconnect).unwrap_or(600));
        let ports = Ports {
            data_dir: self.ports.data_dir.clone().or(file.data_dir),
            star,
            reader,
            timeouts,
            reconnect,
            twin_qemu: self.ports.twin_qemu.clone(),
        };
        Ok(Serve {
            bind: self.bind.clone().or(file.bind).unwrap_or_else(|| "127.0.0.1:8470".into()),
            setup: crate::service::Setup { ports, twin, evo, time_scale: self.time_scale.or(file.time_scale) },
            access: crate::service::Access { allow_remote: self.allow_remote || file.allow_remote, tls },
            sila: self.sila.clone().or(file.sila).map(|bind| crate::sila::Listen {
                bind,
                insecure: self.sila_insecure || file.sila_insecure,
                announce: self.announce || file.announce,
            }),
        })
    }
}

/// A token's scope.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Read runs, instruments and events.
    Read,
    /// Also submit runs, act on them, answer prompts.
    Operate,
    /// Also manage tokens.
    Admin,
}

impl From<ScopeArg> for cellos_store::access::Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Read => cellos_store::access::Scope::Read,
            ScopeArg::Operate => cellos_store::access::Scope::Operate,
            ScopeArg::Admin => cellos_store::access::Scope::Admin,
        }
    }
}

/// `token` commands.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it (once: it cannot be shown again).
    Create {
        /// A name saying who uses it (`lab-pc`, `scheduler`).
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List the tokens (names, scopes, dates; never the tokens).
    List {
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Revoke a token by name.
    Revoke {
        /// Its name.
        name: String,
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `audit` commands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain.
    Verify {
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `token …`: each change is written to the audit trail as done by `cli`.
pub fn token(cmd: &TokenCommand, json: bool) -> Result<(), GatewayError> {
    use cellos_store::access::{self, Change};
    let open = |d: &Option<PathBuf>| cellos_store::db::open(&data_dir(d.as_deref()), cellos_store::Db::Campaigns);
    match cmd {
        TokenCommand::Create { name, scope, data_dir: d } => {
            let mut db = open(d)?;
            let made = access::create_token(&db, name, (*scope).into());
            let result = made.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into());
            access::record(&mut db, &Change { token: "cli", action: "create token", target: name, result: &result })?;
            let (t, secret) = made?;
            if json {
                outln!("{}", json!({ "name": t.name, "scope": t.scope.as_str(), "token": secret }));
            } else {
                outln!("{secret}");
            }
            eprintln!("token `{}` ({}) made; it is shown only now", t.name, t.scope.as_str());
        }
        TokenCommand::List { data_dir: d } => {
            let db = cellos_store::db::open_read_only(&data_dir(d.as_deref()), cellos_store::Db::Campaigns)?;
            let rows: Vec<serde_json::Value> = access::tokens(&db)?
                .into_iter()
                .map(|t| json!({ "name": t.name, "scope": t.scope.as_str(), "created": t.created_at, "revoked": t.revoked_at }))
                .collect();
            let v = serde_json::Value::Array(rows);
            if json {
                outln!("{v}");
            } else {
                cellos_output::print_or_exit(&cellos_output::render(&cellos_output::sorted(&v)));
            }
        }
        TokenCommand::Revoke { name, data_dir: d } => {
            let mut db = open(d)?;
            let done = access::revoke_token(&db, name);
            let result = done.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into());
            access::record(&mut db, &Change { token: "cli", action: "revoke token", target: name, result: &result })?;
            done?;
            if json {
                outln!("{}", json!({ "name": name, "revoked": true }));
            } else {
                outln!("token `{name}` revoked");
            }
        }
    }
    Ok(())
}

/// `audit verify`.
pub fn audit(cmd: &AuditCommand, json: bool) -> Result<(), GatewayError> {
    let AuditCommand::Verify { data_dir: d } = cmd;
    let db = cellos_store::db::open_read_only(&data_dir(d.as_deref()), cellos_store::Db::Campaigns)?;
    match cellos_store::access::verify(&db)? {
        cellos_store::access::Verdict::Intact { rows } => {
            if json {
                outln!("{}", json!({ "intact": true, "rows": rows }));
            } else {
                outln!("audit trail intact: {rows} rows, each chained to the one before");
            }
            Ok(())
        }
        cellos_store::access::Verdict::Broken { entry_id, why } => Err(GatewayError::AuditBroken { entry_id, why }),
    }
}

/// Which format `decode` reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecodeKind {
    /// Hamilton STAR: one message per line (CR, LF or CR LF).
    Star,
    /// Tecan EVO: raw frames as sent on the wire (0x02 … 0x00).
    Evo,
    /// Tecan worklist (.gwl).
    Gwl,
}

/// `decode` arguments.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Input format.
    pub kind: DecodeKind,
    /// Input file; `-` or nothing for standard input.
    pub input: Option<PathBuf>,
    /// Print only the re-emitted messages (STAR and GWL one per line, EVO as raw frames).
    #[arg(long)]
    pub roundtrip: bool,
}

/// Which instrument.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Instrument {
    /// Hamilton STAR.
    Star,
    /// Tecan EVO.
    Evo,
}

/// How to reach an instrument.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Which instrument.
    #[arg(long, value_enum)]
    pub instrument: Instrument,
    /// The instrument's line: a serial device, `usb` (the instrument's USB device), `usb:SERIAL` (the
    /// one with that serial number), or `usb-sim:MPS:PATH` (a simulated USB device in front of a
    /// serial line, for tests).
    #[arg(long, conflicts_with = "twin", required_unless_present = "twin")]
    pub port: Option<PathBuf>,
    /// Start the instrument twin and use it instead of hardware.
    #[arg(long)]
    pub twin: bool,
    /// Deck description (TOML, docs/twin.md); the built-in deck when absent. Also given to the twin.
    #[arg(long)]
    pub deck: Option<PathBuf>,
    /// Time-limit overrides, `CODE=SECONDS,…` (STAR codes like AS; `default=` for the rest).
    #[arg(long, default_value = "")]
    pub timeouts: String,
    /// Baud rate of the serial line.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Noise seed of the twin (with --twin).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Worklist commands.
#[derive(Subcommand, Debug)]
pub enum WorklistCommand {
    /// Execute a worklist (.gwl, transfer list CSV, or legacy Hamilton CSV) through the safety
    /// envelope, stopping at the first refused or failed step.
    Run {
        /// The worklist.
        file: PathBuf,
        /// The instrument to run it on.
        #[command(flatten)]
        connection: Connection,
    },
    /// Convert between a transfer list CSV, the legacy Hamilton CSV layout and a .gwl.
    Convert {
        /// The worklist to read.
        input: PathBuf,
        /// The format to write.
        #[arg(long, value_enum)]
        to: WorklistFormat,
        /// Where to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Deck description, for well positions (.gwl counts them column-major per labware).
        #[arg(long)]
        deck: Option<PathBuf>,
    },
}

/// Worklist formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorklistFormat {
    /// Tecan .gwl.
    Gwl,
    /// Transfer list CSV (Source Plate Name, Source Well, …).
    Transfer,
    /// The legacy cell_OS Hamilton CSV layout.
    Hamilton,
}

/// `probe` arguments.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The instrument's line: a serial device, `usb`, `usb:SERIAL` (or `usb-sim:MPS:PATH`).
    #[arg(long, required_unless_present = "usb")]
    pub port: Option<String>,
    /// List the USB devices with a STAR's (08af:8000) or an EVO's (0c47:4000) ids, instead of probing one.
    #[arg(long, conflicts_with = "port")]
    pub usb: bool,
    /// Which instrument.
    #[arg(long, value_enum, default_value = "star")]
    pub instrument: Instrument,
}

/// `twin` arguments.
#[derive(Args, Debug)]
pub struct TwinArgs {
    /// Noise seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Deck description.
    #[arg(long)]
    pub deck: Option<PathBuf>,
    /// Fault specification of the STAR and EVO lines.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Fault specification of the reader line.
    #[arg(long, default_value = "")]
    pub reader_faults: String,
    /// No simulated durations.
    #[arg(long)]
    pub instant: bool,
    /// Incubations take real time at N times its pace.
    #[arg(long, value_name = "N")]
    pub time_scale: Option<f64>,
}

fn read_input(path: Option<&Path>) -> Result<(String, Vec<u8>), GatewayError> {
    match path {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => Ok((
            p.display().to_string(),
            std::fs::read(p).map_err(|source| GatewayError::Io { path: p.into(), source })?,
        )),
    }
}

fn read_stdin() -> Result<(String, Vec<u8>), GatewayError> {
    let mut v = Vec::new();
    std::io::stdin().read_to_end(&mut v).map_err(|source| GatewayError::Io { path: "-".into(), source })?;
    Ok(("-".into(), v))
}

fn write_out(bytes: &[u8]) -> Result<(), GatewayError> {
    cellos_output::print_bytes(bytes).map_err(|source| GatewayError::Io { path: "standard output".into(), source })
}

/// `decode`.
pub fn decode(args: &DecodeArgs) -> Result<(), GatewayError> {
    let (name, input) = read_input(args.input.as_deref())?;
    match args.kind {
        DecodeKind::Star => {
            let text = String::from_utf8(input).map_err(|e| GatewayError::Decode {
                location: format!("byte {}", e.utf8_error().valid_up_to()),
                message: "not text".into(),
            })?;
            let lines = crate::decode::star(&text, args.roundtrip)?;
            if args.roundtrip {
                write_out(crate::decode::with_input_endings(text.as_bytes(), &lines).as_bytes())
            } else {
                write_out(lines.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())
            }
        }
        DecodeKind::Evo => {
            let (json, bytes) = crate::decode::evo(&input, args.roundtrip)?;
            if args.roundtrip {
                write_out(&bytes)
            } else {
                write_out(json.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())
            }
        }
        DecodeKind::Gwl => {
            let out = crate::decode::gwl(&name, &input, args.roundtrip)?;
            if args.roundtrip {
                let bytes = gwl::to_latin1(&out[0])
                    .map_err(|m| GatewayError::Decode { location: name.clone(), message: m.to_string() })?;
                write_out(&bytes)
            } else {
                write_out(out.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())
            }
        }
    }
}

/// The deck model from a file, or the built-in deck.
pub fn deck(path: Option<&Path>) -> Result<DeckModel, GatewayError> {
    match path {
        None => Ok(cellos_core::deck::default_deck()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| GatewayError::Io { path: p.into(), source })?;
            crate::liquid::parse_deck(&text, p)
        }
    }
}

/// A worklist read from a file: its transfers (CSV) or records (.gwl).
pub enum Loaded {
    /// A Tecan worklist.
    Gwl(Vec<gwl::Record>),
    /// A Hamilton CSV, either layout.
    Transfers(Vec<hamilton::Transfer>),
}

impl Loaded {
    /// Its steps.
    pub fn steps(&self) -> usize {
        match self {
            Loaded::Gwl(r) => r.len(),
            Loaded::Transfers(t) => t.len(),
        }
    }
}

fn load_worklist(path: &Path) -> Result<Loaded, GatewayError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| GatewayError::Io { path: path.into(), source })?;
    parse_worklist(&name, path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gwl")), &bytes)
}

/// A worklist's text: a `.gwl` (Latin-1) when `gwl`, else a Hamilton CSV (UTF-8, either layout).
/// Errors name `name`, the line and the field.
pub fn parse_worklist(name: &str, gwl: bool, bytes: &[u8]) -> Result<Loaded, GatewayError> {
    let name = name.to_string();
    if gwl {
        return Ok(Loaded::Gwl(gwl::parse(&name, &gwl::latin1(bytes))?));
    }
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| GatewayError::Worklist {
        file: name.clone(),
        line: 1,
        message: "a CSV worklist must be UTF-8 text".into(),
    })?;
    match hamilton::layout(&name, &text)? {
        hamilton::Layout::Transfer => Ok(Loaded::Transfers(hamilton::parse_transfers(&name, &text)?)),
        hamilton::Layout::Legacy => {
            Ok(Loaded::Transfers(hamilton::legacy_transfers(&name, &hamilton::parse_legacy(&name, &text)?)?))
        }
    }
}

/// `worklist convert`.
pub fn convert(
    input: &Path,
    to: WorklistFormat,
    output: Option<&Path>,
    deck_file: Option<&Path>,
) -> Result<(), GatewayError> {
    let deck = deck(deck_file)?;
    let name = input.display().to_string();
    let fail =
        |e: worklist::WorklistError| GatewayError::Worklist { file: name.clone(), line: 0, message: e.to_string() };
    let transfers = match load_worklist(input)? {
        Loaded::Transfers(t) => t,
        Loaded::Gwl(records) => worklist::gwl_to_transfers(&deck, &records).map_err(fail)?,
    };
    let bytes = match to {
        WorklistFormat::Transfer => hamilton::emit_transfers(&transfers).into_bytes(),
        WorklistFormat::Hamilton => hamilton::emit_legacy(&transfers).into_bytes(),
        WorklistFormat::Gwl => {
            let records = worklist::transfers_to_gwl(&deck, &transfers).map_err(fail)?;
            gwl::to_latin1(&gwl::emit(&records).map_err(fail)?).map_err(fail)?
        }
    };
    match output {
        None => write_out(&bytes),
        Some(p) => {
            // Write beside the target and rename, so that a failure leaves nothing half-written.
            let tmp = p.with_extension("part");
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::rename(&tmp, p))
                .map_err(|source| GatewayError::Io { path: p.into(), source })
        }
    }
}

/// Where to reach an instrument: its device, or a twin started now (kept alive by the returned handle).
pub fn connect(c: &Connection) -> Result<(String, Option<TwinProcess>), GatewayError> {
    if c.twin {
        let exe = std::env::current_exe().map_err(|e| GatewayError::Twin(e.to_string()))?;
        let twin =
            TwinProcess::spawn(&exe, &TwinOptions { seed: c.seed, deck: c.deck.clone(), ..TwinOptions::default() })?;
        let path = match c.instrument {
            Instrument::Star => twin.star.clone(),
            Instrument::Evo => twin.evo.clone(),
        };
        return Ok((path, Some(twin)));
    }
    let port = c.port.as_ref().ok_or_else(|| GatewayError::Twin("give --port PATH or --twin".into()))?;
    Ok((port.display().to_string(), None))
}

async fn run_on<H: LiquidHandler>(
    mut w: Workcell<H>,
    file: &Path,
    loaded: Loaded,
    json: bool,
) -> Result<(), GatewayError> {
    w.initialise().await?;
    let name = file.display().to_string();
    let total = match &loaded {
        Loaded::Gwl(r) => r.len(),
        Loaded::Transfers(t) => t.len(),
    };
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} steps [{bar:30}] {elapsed_precise}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = match &loaded {
        Loaded::Gwl(records) => worklist::run_gwl(&mut w, &name, records, |d, _| bar.set_position(d as u64)).await,
        Loaded::Transfers(t) => worklist::run_transfers(&mut w, &name, t, |d, _| bar.set_position(d as u64)).await,
    };
    bar.finish_and_clear();
    result?;
    if json {
        outln!("{}", json!({ "worklist": name, "steps": total, "operations": w.operations_sent() }));
    } else {
        outln!("{name}: {total} steps done, {} instrument operations", w.operations_sent());
    }
    Ok(())
}

/// `worklist run`.
pub async fn run_worklist(file: &Path, c: &Connection, json: bool) -> Result<(), GatewayError> {
    let loaded = load_worklist(file)?;
    let deck = deck(c.deck.as_deref())?;
    let timeouts = Timeouts::default()
        .parse_overrides(&c.timeouts)
        .map_err(|m| GatewayError::Config { path: "--timeouts".into(), message: m.to_string() })?;
    let (path, _twin) = connect(c)?;
    match c.instrument {
        Instrument::Star => {
            let (tx, rx) = crate::transport::open(&path, Protocol::Star, c.baud).await?;
            run_on(Workcell::new(StarHandler::new(StarDriver::new(tx, rx, timeouts, 8)), deck), file, loaded, json)
                .await
        }
        Instrument::Evo => {
            let (tx, rx) = crate::transport::open(&path, Protocol::Evo, c.baud).await?;
            let limit = if c.timeouts.contains("default=") { timeouts.default_limit() } else { EVO_TIMEOUT };
            run_on(Workcell::new(EvoHandler::new(EvoDriver::new(tx, rx, limit)), deck), file, loaded, json).await
        }
    }
}

/// `probe`.
pub async fn probe(args: &ProbeArgs, json: bool) -> Result<(), GatewayError> {
    if args.usb {
        return probe_usb(json).await;
    }
    let port = args.port.clone().unwrap_or_default();
    let report = match args.instrument {
        Instrument::Star => {
            let (tx, rx) = crate::transport::open(&port, Protocol::Star, 115_200).await?;
            let d = StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(5)), 8);
            let initialised = d.initialised(2).await?;
            let (firmware, rf) = d.firmware(2).await?;
            let serial_number = d.serial_number().await.ok().flatten();
            let tips = d.tip_presence().await?;
            json!({"instrument": "STAR", "initialised": initialised, "firmware": firmware, "serial_number": serial_number, "channels": tips.len(),
                   "tips": tips, "round_trip_ms": rf.elapsed.as_secs_f64() * 1e3})
        }
        Instrument::Evo => {
            let (tx, rx) = crate::transport::open(&port, Protocol::Evo, 115_200).await?;
            let d = EvoDriver::new(tx, rx, Duration::from_secs(5));
            let cmd = |c: &[u8; 3], p: &[Option<i32>]| {
                cellos_core::proto::evo::EvoCommand::new(b"C5", c, p)
                    .map_err(|e| GatewayError::Malformed { command: "probe".into(), detail: e.to_string() })
            };
            let tips = d.command(&cmd(b"RNT", &[Some(1)])?).await?;
            let initialised = match d.command(&cmd(b"RPX", &[Some(0)])?).await {
                Ok(_) => true,
                Err(GatewayError::Instrument(e)) if e.code == 7 => false,
                Err(e) => return Err(e),
            };
            json!({"instrument": "EVO", "initialised": initialised, "tips": tips.fields.first().copied().flatten()})
        }
    };
    let text = if json { format!("{report}\n") } else { cellos_output::render(&cellos_output::sorted(&report)) };
    write_out(text.as_bytes())
}

/// The arguments that replay a recording: its command, with its instrument line (`--port`, `--star`,
/// or `--twin`) replaced by `replay:FILE`. Only commands on one liquid handler replay (worklists, probe).
pub fn replay_args(file: &Path) -> Result<Vec<String>, GatewayError> {
    let rec = crate::transport::capture::read(file)?;
    let bad = |m: String| GatewayError::Config { path: file.into(), message: m };
    let mut args = rec.command.clone();
    if args.is_empty() {
        return Err(bad("the recording does not say which command made it (`# command:`)".into()));
    }
    if !(args.first().is_some_and(|a| a == "worklist" || a == "probe")) {
        return Err(bad(format!(
            "`{}` recordings are not replayed: worklist and probe recordings are (a campaign's reader line is not)",
            args[0]
        )));
    }
    let line = format!("replay:{}", file.display());
    args.retain(|a| a != "--twin");
    let mut replaced = false;
    for i in 0..args.len() {
        if (args[i] == "--port" || args[i] == "--star") && i + 1 < args.len() {
            args[i + 1] = line.clone();
            replaced = true;
        }
    }
    if !replaced {
        args.extend(["--port".to_string(), line]);
    }
    Ok(args)
}

/// `probe --usb`: the attached USB devices with an instrument's ids; with none, what was looked for
/// and what the udev rule must allow.
async fn probe_usb(json: bool) -> Result<(), GatewayError> {
    use crate::transport::usb::{EVO_IDS, STAR_IDS};
    let (found, bus) = match crate::transport::usb::candidates().await {
        Ok(found) => (found, String::new()),
        Err(e) => (Vec::new(), format!(" This machine shows no USB bus ({e}).")),
    };
    let looked =
        format!("Hamilton STAR {:04x}:{:04x}, Tecan EVO {:04x}:{:04x}", STAR_IDS.0, STAR_IDS.1, EVO_IDS.0, EVO_IDS.1);
    let text = if json {
        format!(
            "{}
",
            json!({ "looked_for": looked, "devices": found, "udev_rule": "gateway/dist/60-cellos.rules" })
        )
    } else if found.is_empty() {
        [
            format!("no USB instrument attached (looked for {looked}).{bus}"),
            "If one is plugged in and not listed, the gateway's user may lack access to it: install".into(),
            "gateway/dist/60-cellos.rules as /etc/udev/rules.d/60-cellos.rules (it gives the group `dialout`".into(),
            "read and write access to those ids), then run `udevadm control --reload` and plug it in again.".into(),
        ]
        .join("\n")
            + "\n"
    } else {
        let mut s = format!(
            "USB instruments attached (looked for {looked}):
"
        );
        for d in &found {
            let line = match &d.serial {
                Some(serial) => format!("usb:{serial}"),
                None => "usb".into(),
            };
            s += &format!(
                "  {} {:04x}:{:04x} at {} serial {} (line: {line})
",
                d.instrument,
                d.vendor_id,
                d.product_id,
                d.bus_path,
                d.serial.as_deref().unwrap_or("none")
            );
        }
        s
    };
    write_out(text.as_bytes())
}

/// `twin`.
pub fn twin(args: &TwinArgs) -> Result<(), GatewayError> {
    crate::twin::serve(&TwinOptions {
        seed: args.seed,
        deck: args.deck.clone(),
        faults: args.faults.clone(),
        reader_faults: args.reader_faults.clone(),
        instant: args.instant,
        time_scale: args.time_scale,
        log: None,
    })
}

/// Campaign commands. Data goes to `--data-dir` (or `CELLOS_DATA_DIR`, default `./cellos-data`), the
/// same four databases the `cellos` tool administers.
#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Start a campaign from a TOML file (`lines`, `dose_range_um`, `strategy`, `budget_wells`, `seed`,
    /// optional `campaign_id`, `star_port`, `reader_port`), on the instruments at those ports, or with
    /// `--twin` on a twin started with the campaign deck. Every setting is checked before anything is
    /// written; an id that exists is refused (use `resume`). The twin outlives a failed or killed
    /// gateway, so `resume` finds it again; it is stopped when the campaign completes or is abandoned.
    Run {
        /// Campaign settings (TOML); the defaults with `--lines` when absent.
        #[arg(long, required_unless_present = "lines")]
        config: Option<PathBuf>,
        /// Cell lines, comma-separated (overrides the settings' `lines`).
        #[arg(long, value_delimiter = ',')]
        lines: Vec<String>,
        /// Run the POSH stages per line: MCB (10 vials) → WCB (30 vials) → tBHP dose finding →
        /// lentivirus titration.
        #[arg(long)]
        posh: bool,
        /// Start the instrument twin and run on it instead of the configured ports.
        #[arg(long, conflicts_with_all = ["star", "reader"])]
        twin: bool,
        /// Where the databases and instruments are.
        #[command(flatten)]
        ports: Ports,
    },
    /// Print, without running anything, what a campaign will take: its calendar time, robot time, reader
    /// time, tips and plates, on the campaign's channels and on one. Each line's search runs on the
    /// model's noise-free readouts to choose its doses and goes on as long as its budget allows, so the
    /// figures are the most the campaign takes; `campaign run` prints the same figures measured.
    Plan {
        /// Campaign settings (TOML); the defaults with `--lines` when absent.
        #[arg(long, required_unless_present = "lines")]
        config: Option<PathBuf>,
        /// Cell lines, comma-separated (overrides the settings' `lines`).
        #[arg(long, value_delimiter = ',')]
        lines: Vec<String>,
    },
    /// Finish an interrupted or failed campaign on the instruments it ran on (their identities are
    /// checked; another instrument is refused): completed steps are skipped, the one in flight is
    /// checked on the instrument, and the rest run.
    Resume {
        /// Campaign id.
        id: String,
        /// The campaign ran on a twin that is gone: start a new twin and bring it to the journal's state
        /// (every operation done so far is carried out on it again) before going on.
        #[arg(long, conflicts_with_all = ["star", "reader"])]
        twin: bool,
        /// Where the databases and instruments are.
        #[command(flatten)]
        ports: Ports,
    },
    /// Give up a campaign that will not be finished: its status becomes `abandoned` and the twin it
    /// ran on, if any, is stopped.
    Abandon {
        /// Campaign id.
        id: String,
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Answer what a running campaign asks its operator (a manual incubator or reader): confirm that a
    /// plate was moved, or upload a plate-reader export (a plate grid or a `well,readout,value` CSV).
    /// A bad export is refused with its line, and the campaign keeps waiting. Without a prompt id,
    /// lists the open prompts.
    Answer {
        /// Campaign id.
        id: String,
        /// The prompt (as the campaign printed it).
        prompt_id: Option<String>,
        /// The reader export, for an upload prompt (`-` reads standard input).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print a campaign's progress (reads only: works on a read-only data directory).
    Status {
        /// Campaign id.
        id: String,
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The demo: U2OS, HepG2 and A549 against the built-in twin; prints each line's dose.
    Demo {
        /// Data directory.
        #[arg(long, env = "CELLOS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Twin noise seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run on the twin's Cortex-M3 image under qemu-system-arm instead of the host twin (see
        /// `campaign run --help`); the results are the host twin's, bit for bit.
        #[arg(long, value_name = "ELF")]
        twin_qemu: Option<PathBuf>,
    },
}

/// Where a campaign's data and instruments are.
#[derive(Args, Debug, Clone)]
pub struct Ports {
    /// Data directory.
    #[arg(long, env = "CELLOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// STAR line (overrides the settings): a serial device, `usb`, `usb:SERIAL` or `usb-sim:MPS:PATH`.
    #[arg(long, requires = "reader")]
    pub star: Option<String>,
    /// Reader serial device (overrides the settings).
    #[arg(long, requires = "star")]
    pub reader: Option<String>,
    /// Time-limit overrides, `CODE=SECONDS,…`: STAR codes like AS, `default=` for the other STAR
    /// commands, `reader=` for a request on the reader link (5 s).
    #[arg(long, default_value = "")]
    pub timeouts: String,
    /// When an instrument line goes away mid-campaign (a cable pulled, an instrument power-cycled),
    /// wait up to SECS for it to come back and go on from the journal, reconciling with the instrument
    /// as after a crash (default: fail at once; `serve`: 600).
    #[arg(long, value_name = "SECS")]
    pub reconnect: Option<u64>,
    /// Run on the twin's Cortex-M3 image under qemu-system-arm instead of the host twin (implies
    /// --twin): ELF is the image (`cargo build -p cellos-twin-qemu --features target --target
    /// thumbv7m-none-eabi --profile firmware` makes target/thumbv7m-none-eabi/firmware/cellos-twin-qemu).
    #[arg(long, value_name = "ELF", conflicts_with_all = ["star", "reader"])]
    pub twin_qemu: Option<PathBuf>,
}

impl Ports {
    /// A data directory and the two instrument lines, with the default time limits and no reconnection.
    pub fn lines(data_dir: Option<PathBuf>, star: Option<String>, reader: Option<String>) -> Ports {
        Ports { data_dir, star, reader, timeouts: String::new(), reconnect: None, twin_qemu: None }
    }
}

fn data_dir(d: Option<&Path>) -> PathBuf {
    cellos_store::db::data_dir(d)
}

/// Splits `--timeouts` into the STAR limits and the reader's.
fn campaign_timeouts(spec: &str) -> Result<(Timeouts, Duration), GatewayError> {
    let bad = |m: String| GatewayError::Config { path: "--timeouts".into(), message: m };
    let mut reader = crate::wire::WIRE_TIMEOUT;
    let mut star = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some(("reader", v)) => {
                let secs: f64 =
                    v.parse().map_err(|_| bad(format!("timeout `{item}`: `{v}` is not a number of seconds")))?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err(bad(format!("timeout `{item}`: must be positive")));
                }
                reader = Duration::from_secs_f64(secs);
            }
            _ => star.push(item),
        }
    }
    Ok((Timeouts::default().parse_overrides(&star.join(",")).map_err(|e| bad(e.to_string()))?, reader))
}

/// New campaign or resumed one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new campaign (its id must be free).
    New,
    /// One that exists and may be resumed.
    Resume,
}

/// Who else follows and steers a campaign the gateway drives (the service): its events, and pause and
/// stop requests.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Where the runner's events go too.
    pub events: Option<tokio::sync::mpsc::UnboundedSender<campaign::Event>>,
    /// Pause and stop requests.
    pub control: Option<tokio::sync::watch::Receiver<campaign::Control>>,
}

/// The lines a campaign runs on, and the twin behind them if it runs on one.
struct Lines {
    star: String,
    reader: String,
    twin: Option<campaign::TwinRecord>,
    /// Why the recorded instruments were replaced (a new twin brought to the journal's state).
    replaced: Option<String>,
}

/// Whether the twin a campaign recorded still answers on its reader line as itself.
async fn twin_alive(t: &campaign::TwinRecord) -> bool {
    let Ok((tx, rx, _)) = open_line(&SerialConfig::new(t.reader.as_str()), Protocol::Wire).await else { return false };
    let client = crate::wire::WireClient::new(tx, rx, Duration::from_secs(1));
    client.identify().await.is_ok_and(|i| i.instance == t.instance)
}

/// Starts a twin for a campaign (detached: it outlives this process) and records it.
async fn start_twin(
    config: &campaign::CampaignConfig,
    dir: &Path,
    db: &rusqlite::Connection,
    id: &str,
    qemu: Option<&Path>,
) -> Result<campaign::TwinRecord, GatewayError> {
    if let Some(elf) = qemu {
        if config.time_scale.is_some() {
            return Err(GatewayError::Twin(
                "the Cortex-M3 twin has no clock: it cannot run incubations in real time (time_scale)".into(),
            ));
        }
        let t = crate::twin::spawn_qemu(elf, &dir.join("twin-qemu.log"))?;
        // On an error, dropping `t` stops QEMU.
        let instance = crate::twin::setup_qemu(&t.reader, config.seed, &config.lines).await?;
        let record = campaign::TwinRecord { star: t.star.clone(), reader: t.reader.clone(), pid: t.id(), instance };
        t.detach();
        campaign::record_twin(db, id, &record)?;
        return Ok(record);
    }
    let exe = std::env::current_exe().map_err(|e| GatewayError::Twin(e.to_string()))?;
    let t = TwinProcess::spawn(
        &exe,
        &TwinOptions {
            seed: config.seed,
            deck: Some(campaign::deck_path(dir)),
            instant: true,
            time_scale: config.time_scale,
            log: Some(dir.join("twin.log")),
            ..TwinOptions::default()
        },
    )?;
    let (tx, rx, _) = open_line(&SerialConfig::new(t.reader.as_str()), Protocol::Wire).await?;
    let identity = crate::wire::WireClient::new(tx, rx, Duration::from_secs(2)).identify().await?;
    let record = campaign::TwinRecord {
        star: t.star.clone(),
        reader: t.reader.clone(),
        pid: t.id(),
        instance: identity.instance,
    };
    t.detach();
    campaign::record_twin(db, id, &record)?;
    Ok(record)
}

/// Decides the lines: the given ports, the campaign's twin if it still answers, or a new twin.
#[allow(clippy::too_many_arguments)]
async fn lines_for(
    start: Start,
    config: &campaign::CampaignConfig,
    stored: Option<&campaign::Stored>,
    ports: (Option<String>, Option<String>),
    twin: bool,
    qemu: Option<&Path>,
    dir: &Path,
    db: &rusqlite::Connection,
    id: &str,
) -> Result<Lines, GatewayError> {
    let twin = twin || qemu.is_some();
    let given = match (ports.0.or(config.star_port.clone()), ports.1.or(config.reader_port.clone())) {
        (Some(s), Some(r)) if !twin => Some((s, r)),
        (None, None) => None,
        _ if twin => None,
        _ => {
            return Err(GatewayError::Config {
                path: "campaign".into(),
                message: "give both star_port and reader_port, or neither".into(),
            });
        }
    };
    if let Some((star, reader)) = given {
        return Ok(Lines { star, reader, twin: None, replaced: None });
    }
    let recorded = stored.and_then(|s| s.twin.clone());
    match (start, recorded) {
        (Start::New, _) => {
            let t = start_twin(config, dir, db, id, qemu).await?;
            Ok(Lines { star: t.star.clone(), reader: t.reader.clone(), twin: Some(t), replaced: None })
        }
        (Start::Resume, Some(t)) if twin_alive(&t).await => {
            Ok(Lines { star: t.star.clone(), reader: t.reader.clone(), twin: Some(t), replaced: None })
        }
        (Start::Resume, Some(old)) if twin => {
            let t = start_twin(config, dir, db, id, qemu).await?;
            let why = format!(
                "twin instance {} (lines {}, {}) was gone; a new twin (instance {}) was brought to the journal's state",
                old.instance, old.star, old.reader, t.instance
            );
            Ok(Lines { star: t.star.clone(), reader: t.reader.clone(), twin: Some(t), replaced: Some(why) })
        }
        (Start::Resume, Some(old)) => Err(GatewayError::Config {
            path: "campaign".into(),
            message: format!(
                "campaign `{id}` ran on twin instance {}, which no longer answers on {} (it was stopped, or its lines now belong to another twin): `campaign resume {id} --twin` starts a new twin and brings it to the journal's state",
                old.instance, old.reader
            ),
        }),
        (Start::Resume, None) => {
            if campaign::recorded_identity(db, id, "star")?.is_some() {
                return Err(GatewayError::Config {
                    path: "campaign".into(),
                    message: format!(
                        "campaign `{id}` ran on instruments, not on a twin: give their lines with --star and --reader (a twin cannot stand in for them)"
                    ),
                });
            }
            if !twin {
                return Err(GatewayError::Config {
                    path: "campaign".into(),
                    message: format!(
                        "campaign `{id}` has no instruments recorded: give --star and --reader, or --twin"
                    ),
                });
            }
            let t = start_twin(config, dir, db, id, qemu).await?;
            Ok(Lines { star: t.star.clone(), reader: t.reader.clone(), twin: Some(t), replaced: None })
        }
    }
}

/// What the STAR answers about itself: serial number (`C0RI`) and firmware (`C0RF`).
async fn star_identity<Tx: crate::transport::LinkTx>(
    d: &StarDriver<Tx>,
) -> Result<campaign::InstrumentId, GatewayError> {
    let (firmware, _) = d.firmware(3).await?;
    let serial = d.serial_number().await?.unwrap_or_else(|| "unknown".into());
    Ok(campaign::InstrumentId::new([("serial", serial), ("firmware", firmware)]))
}

/// Runs a new or resumed campaign to its end and returns its results. A failure after the campaign
/// was claimed marks it `failed` with the reason (it can be resumed).
/// Runs (or resumes) a campaign to its end: settings checked, row claimed, lock taken, instruments (or a
/// twin) reached and identified, every step journaled; on an error the row says `failed` and why.
pub async fn drive(
    start: Start,
    config: campaign::CampaignConfig,
    dir: &Path,
    ports: &Ports,
    twin: bool,
    hooks: Hooks,
) -> Result<(String, Vec<campaign::LineResult>), GatewayError> {
    config.check()?;
    let (star_timeouts, reader_timeout) = campaign_timeouts(&ports.timeouts)?;
    let id = config
        .campaign_id
        .clone()
        .unwrap_or_else(|| format!("tbhp_{}", cellos_store::time::now().replace([':', '-', '.'], "")));
    let config = campaign::CampaignConfig { campaign_id: Some(id.clone()), ..config };
    std::fs::create_dir_all(dir).map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
    let store = cellos_store::db::Store::open(dir)
        .map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
    let _lock = campaign::CampaignLock::take(dir, &id)?;
    let stored = campaign::stored(&store.campaigns, &id)?;
    match (start, &stored) {
        (Start::New, _) => campaign::claim(&store.campaigns, &id, &config)?,
        (Start::Resume, None) => {
            return Err(GatewayError::Config { path: dir.into(), message: format!("no campaign `{id}`") });
        }
        (Start::Resume, Some(s)) if s.status.resumable() => {}
        (Start::Resume, Some(s)) => {
            return Err(GatewayError::Config {
                path: dir.into(),
                message: format!("campaign `{id}` is already {}: there is nothing to resume", s.status),
            });
        }
    }
    let status_db = cellos_store::db::open(dir, cellos_store::db::Db::Campaigns)
        .map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
    let attempt = |start, store, stored| {
        carry_out(
            start,
            config.clone(),
            store,
            stored,
            dir,
            ports,
            twin,
            star_timeouts.clone(),
            reader_timeout,
            hooks.clone(),
        )
    };
    let mut result = attempt(start, store, stored).await;
    // A line that went away (a cable pulled, an instrument power-cycled): wait for it to come back, then
    // go on from the journal exactly as `campaign resume` does after a crash; never a blind resend.
    let patience = Duration::from_secs(ports.reconnect.unwrap_or(0));
    loop {
        match &result {
            Err(e) if lost_line(e) && !patience.is_zero() => {
                say!("  the instrument line is lost ({e}); waiting up to {} s for it to come back", patience.as_secs());
                if let Some(events) = &hooks.events {
                    let _ = events.send(campaign::Event::Disconnected { error: e.to_string() });
                }
            }
            _ => break,
        }
        let deadline = std::time::Instant::now() + patience;
        result = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if hooks.control.as_ref().is_some_and(|c| *c.borrow() == campaign::Control::Stop) {
                break Err(GatewayError::Stopped { campaign: id.clone() });
            }
            let store = cellos_store::db::Store::open(dir)
                .map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
            let stored = campaign::stored(&store.campaigns, &id)?;
            let r = attempt(Start::Resume, store, stored).await;
            match &r {
                // Not there yet.
                Err(GatewayError::Open { .. }) if std::time::Instant::now() < deadline => continue,
                Err(GatewayError::Open { .. }) => break r,
                _ => {
                    say!("  the line came back; the campaign went on from its journal");
                    break r;
                }
            }
        };
    }
    if let Err(e) = &result
        && !matches!(e, GatewayError::WrongInstrument { .. })
    {
        // The campaign stopped: say so in its row (a failing disk may refuse even that; the error
        // that stopped it is the one reported).
        let _ = campaign::set_status(&status_db, &id, CampaignStatus::Failed, Some(&e.to_string()));
    }
    result.map(|r| (id, r))
}

/// Whether an error says an instrument line went away (closed, failing, or not there to open).
fn lost_line(e: &GatewayError) -> bool {
    matches!(e, GatewayError::Closed | GatewayError::Open { .. })
        || matches!(e, GatewayError::Link(m) if m.contains("read:") || m.contains("write:"))
        || matches!(e, GatewayError::OperationFailed { cause, .. } if lost_line(cause))
}

#[allow(clippy::too_many_arguments)]
async fn carry_out(
    start: Start,
    config: campaign::CampaignConfig,
    store: cellos_store::db::Store,
    stored: Option<campaign::Stored>,
    dir: &Path,
    ports: &Ports,
    twin: bool,
    star_timeouts: Timeouts,
    reader_timeout: Duration,
    hooks: Hooks,
) -> Result<Vec<campaign::LineResult>, GatewayError> {
    let id = config.campaign_id.clone().unwrap_or_default();
    let deck_file = campaign::deck_path(dir);
    std::fs::write(&deck_file, campaign::deck_toml(&config.lines)?)
        .map_err(|e| GatewayError::Config { path: deck_file.clone(), message: e.to_string() })?;
    let lines = lines_for(
        start,
        &config,
        stored.as_ref(),
        (ports.star.clone(), ports.reader.clone()),
        twin,
        ports.twin_qemu.as_deref(),
        dir,
        &store.campaigns,
        &id,
    )
    .await?;
    let (tx, rx) = crate::transport::open(lines.star.as_str(), Protocol::Star, 115_200).await?;
    let (wtx, wrx, _) = open_line(&SerialConfig::new(lines.reader.as_str()), Protocol::Wire).await?;
    let driver = StarDriver::new(tx, rx, star_timeouts, 8);
    let reader = crate::wire::WireClient::new(wtx, wrx, reader_timeout);
    // The instruments must be the ones the campaign ran on (checked before anything is sent to them).
    let star_id = star_identity(&driver).await?;
    let reader_id = reader
        .identify()
        .await
        .map(|i| campaign::InstrumentId::new([("instance", i.instance.to_string()), ("seed", i.seed.to_string())]))?;
    let note = lines.replaced.as_deref();
    campaign::check_identity(&store.campaigns, &id, "star", &lines.star, &star_id, note)?;
    campaign::check_identity(&store.campaigns, &id, "reader", &lines.reader, &reader_id, note)?;
    if start == Start::Resume {
        campaign::set_status(&store.campaigns, &id, CampaignStatus::Running, None)?;
    }
    let workcell = Workcell::new(StarHandler::new(driver), campaign::deck_model(&config.lines)?);
    let real_time = config.time_scale.is_some() || config.incubator == campaign::Equipment::Manual;
    let mut runner = campaign::Runner::new(workcell, reader, store, id.clone(), config)?;
    if lines.replaced.is_some() {
        runner.replay_on_fresh_twin();
    }
    if let Some(control) = hooks.control {
        runner.controlled_by(control);
    }
    // Progress, printed as it comes (and passed on to whoever else follows).
    let (events, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    runner.report_to(events);
    let follower = hooks.events;
    // An incubation's end in real time means something only when incubations take real time.
    let printer = tokio::spawn(async move {
        while let Some(e) = incoming.recv().await {
            let quiet = match e {
                campaign::Event::LineDone(_) | campaign::Event::Step { .. } | campaign::Event::Planned { .. } => true,
                campaign::Event::Incubating { .. } => !real_time,
                _ => false,
            };
            if !quiet {
                // Standard error may be gone (a service's closed pipe): progress is not worth failing for.
                say!("  {e}");
            }
            if let Some(f) = &follower {
                let _ = f.send(e);
            }
        }
    });
    say!("campaign {id} (data in {})", dir.display());
    let results = runner.run().await;
    // The runner holds the sender: dropping it ends the printer once everything is printed.
    drop(runner);
    let _ = printer.await;
    let results = results?;
    // Finished: the twin it ran on is not needed any more.
    if let Some(t) = &lines.twin
        && let Err(e) = crate::twin::shutdown(&t.reader, t.instance).await
    {
        say!("warning: the campaign's twin (instance {}) did not stop: {e}", t.instance);
    }
    Ok(results)
}

/// `campaign answer`: lists a campaign's open prompts, or answers one.
fn answer(dir: &Path, id: &str, prompt_id: Option<&str>, file: Option<&Path>) -> Result<String, GatewayError> {
    let db = cellos_store::db::open(dir, cellos_store::db::Db::Campaigns)
        .map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
    let Some(prompt_id) = prompt_id else {
        let open = cellos_store::prompts::open(&db, id)?;
        if open.is_empty() {
            return Ok(format!("campaign `{id}` asks nothing now"));
        }
        return Ok(open
            .iter()
            .map(|p| format!("{} ({}): {}", p.prompt_id, p.kind, p.text))
            .collect::<Vec<_>>()
            .join("\n"));
    };
    let bad = |m: String| GatewayError::Config { path: PathBuf::from(prompt_id), message: m };
    let prompt = cellos_store::prompts::get(&db, id, prompt_id)?
        .ok_or_else(|| bad(format!("campaign `{id}` never asked `{prompt_id}`")))?;
    if prompt.answer.is_some() {
        return Err(bad(format!("answered already (by {})", prompt.answered_by.as_deref().unwrap_or("someone"))));
    }
    let content = match file {
        Some(f) => {
            let (_, bytes) = read_input(Some(f))?;
            Some(String::from_utf8(bytes).map_err(|_| bad("the export is not UTF-8 text".into()))?)
        }
        None => None,
    };
    let checked = campaign::operator::check_answer(&prompt, content.as_deref()).map_err(|e| bad(e.to_string()))?;
    if !cellos_store::prompts::answer(&db, id, prompt_id, &checked, "cli")? {
        return Err(bad("answered already".into()));
    }
    Ok(format!("answered {prompt_id}: {}", prompt.text))
}

/// `campaign abandon`: the status becomes `abandoned`, and the campaign's twin (if it still answers as
/// itself) is stopped.
async fn abandon(dir: &Path, id: &str) -> Result<String, GatewayError> {
    let db = cellos_store::db::open(dir, cellos_store::db::Db::Campaigns)
        .map_err(|e| GatewayError::Config { path: dir.into(), message: e.to_string() })?;
    let _lock = campaign::CampaignLock::take(dir, id)?;
    let s = campaign::stored(&db, id)?
        .ok_or_else(|| GatewayError::Config { path: dir.into(), message: format!("no campaign `{id}`") })?;
    if s.status.finished() {
        return Err(GatewayError::Config {
            path: dir.into(),
            message: format!("campaign `{id}` is already {}", s.status),
        });
    }
    campaign::set_status(&db, id, CampaignStatus::Abandoned, None)?;
    Ok(match s.twin {
        Some(t) => match crate::twin::shutdown(&t.reader, t.instance).await {
            Ok(true) => format!("campaign {id} abandoned; its twin (instance {}) was stopped", t.instance),
            Ok(false) => format!("campaign {id} abandoned; its twin (instance {}) was not running", t.instance),
            Err(e) => format!("campaign {id} abandoned; its twin (instance {}) did not answer ({e})", t.instance),
        },
        None => format!("campaign {id} abandoned"),
    })
}

/// A finished campaign's result per line: a table, or with `--json` an object with the lab time measured.
/// The model's noise-free optimum is shown (and its error) only on the twin, where it is the truth the
/// twin's cells follow; on a real bench there is no such column.
fn print_results(dir: &Path, id: &str, results: &[campaign::LineResult], seconds: f64, twin: bool, json: bool) {
    if json {
        let lab_time = campaign::status(dir, id).map(|s| s["lab_time"].clone()).unwrap_or(serde_json::Value::Null);
        let lines: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                let mut v = json!({ "line": r.line, "dose_um": r.dose_um, "lo_um": r.lo_um, "hi_um": r.hi_um,
                    "wells": r.wells, "status": r.status });
                if twin {
                    v["optimum_um"] = json!(r.optimum_um);
                }
                v
            })
            .collect();
        outln!("{}", json!({ "campaign": id, "lines": lines, "lab_time": lab_time, "seconds": seconds }));
        return;
    }
    let mut rows = Vec::new();
    for r in results {
        let mut row = vec![
            r.line.clone(),
            format!("{:.2}", r.dose_um),
            format!("{:.2} – {:.2}", r.lo_um, r.hi_um),
            r.wells.to_string(),
            r.status.clone(),
        ];
        if twin {
            let err = 100.0 * (r.dose_um - r.optimum_um) / r.optimum_um;
            row.push(format!("{:.2} ({err:+.1} %)", r.optimum_um));
        }
        rows.push(row);
    }
    let mut header: Vec<String> =
        ["line", "dose µM", "90 % interval µM", "wells", "status"].iter().map(|s| s.to_string()).collect();
    if twin {
        header.push("twin's true optimum µM".into());
    }
    outln!("campaign {id}");
    cellos_output::print_or_exit(&cellos_output::table(&header, &rows));
    outln!("{seconds:.1} s");
}

/// A campaign's settings from `--config` (or the defaults) with `--lines` over them, and what names
/// them in errors.
fn settings(config: Option<&Path>, lines: &[String]) -> Result<(campaign::CampaignConfig, PathBuf), GatewayError> {
    let (text, source) = match config {
        Some(c) => (
            std::fs::read_to_string(c).map_err(|e| GatewayError::Config { path: c.into(), message: e.to_string() })?,
            c.to_path_buf(),
        ),
        None => ("lines = []".to_string(), PathBuf::from("--lines")),
    };
    let mut cfg: campaign::CampaignConfig =
        toml::from_str(&text).map_err(|e| GatewayError::Config { path: source.clone(), message: e.to_string() })?;
    if !lines.is_empty() {
        cfg.lines = lines.to_vec();
    }
    Ok((cfg, source))
}

/// `campaign …`.
pub async fn campaign(cmd: &CampaignCommand, json: bool) -> Result<(), GatewayError> {
    let started = std::time::Instant::now();
    match cmd {
        CampaignCommand::Run { config, lines, posh, twin, ports } => {
            let twin = &(*twin || ports.twin_qemu.is_some());
            let (mut cfg, source) = settings(config.as_deref(), lines)?;
            cfg.posh |= *posh;
            let dir = data_dir(ports.data_dir.as_deref());
            let cfg = if *twin { campaign::CampaignConfig { star_port: None, reader_port: None, ..cfg } } else { cfg };
            cfg.check().map_err(|e| match e {
                GatewayError::Config { message, .. } => GatewayError::Config { path: source.clone(), message },
                other => other,
            })?;
            campaign_timeouts(&ports.timeouts)?;
            let ports_given = ports.star.is_some() || cfg.star_port.is_some();
            if !*twin && !ports_given {
                return Err(GatewayError::Config {
                    path: source.clone(),
                    message: "no instrument: set star_port and reader_port, pass --star/--reader, or run on the twin with --twin".into(),
                });
            }
            let (id, results) = drive(Start::New, cfg, &dir, ports, *twin, Hooks::default()).await?;
            print_results(&dir, &id, &results, started.elapsed().as_secs_f64(), *twin, json);
        }
        CampaignCommand::Plan { config, lines } => {
            let (cfg, source) = settings(config.as_deref(), lines)?;
            let channels = cfg.channels.unwrap_or(cellos_core::proto::star::DEFAULT_CHANNELS.min(8));
            let relabel = |e: GatewayError| match e {
                GatewayError::Config { message, .. } => GatewayError::Config { path: source.clone(), message },
                other => other,
            };
            let (planned, iterations) = campaign::labtime::forecast(&cfg, channels).map_err(relabel)?;
            let single = campaign::labtime::of_iterations(&cfg, &iterations, 1)?;
            let (scheduled, optimal) = campaign::labtime::scheduled_calendar(&cfg, &iterations, channels)?;
            if json {
                let v = serde_json::json!({ "lines": cfg.lines, "channels": channels, "planned": planned,
                    "robot_hours_single_channel": single.robot_hours, "tips_single_channel": single.tips,
                    "scheduled_calendar_days": scheduled, "scheduled_optimal": optimal });
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                outln!("campaign plan for {} on {channels} channels (at most):", cfg.lines.join(", "));
                outln!("  calendar    {:>8.2} days", planned.calendar_days);
                outln!(
                    "  scheduled   {:>8.2} days   (the constraint scheduler's {} order, in {} s units)",
                    scheduled,
                    if optimal { "proven optimal" } else { "best found" },
                    campaign::labtime::UNIT_S
                );
                outln!("  incubation  {:>8.0} h (plates side by side)", planned.incubation_hours);
                outln!(
                    "  robot       {:>8.2} h   (on one channel {:.2} h: {:.0} %)",
                    planned.robot_hours,
                    single.robot_hours,
                    100.0 * planned.robot_hours / single.robot_hours.max(1e-9)
                );
                outln!("  reader      {:>8.2} h", planned.reader_hours);
                outln!("  iterations  {:>8}", planned.iterations);
                outln!("  tips        {:>8}   (on one channel {})", planned.tips, single.tips);
                outln!("  plates      {:>8}", planned.plates);
                outln!("  commands    {:>8}", planned.commands);
                if cfg.posh {
                    outln!("  (the dose finding only: the POSH banking and titration stages are not planned here)");
                }
            }
        }
        CampaignCommand::Resume { id, twin, ports } => {
            let dir = data_dir(ports.data_dir.as_deref());
            let db = cellos_store::db::open(&dir, cellos_store::db::Db::Campaigns)
                .map_err(|e| GatewayError::Config { path: dir.clone(), message: e.to_string() })?;
            let s = campaign::stored(&db, id)?
                .ok_or_else(|| GatewayError::Config { path: dir.clone(), message: format!("no campaign `{id}`") })?;
            drop(db);
            let on_twin = *twin || s.twin.is_some();
            let (id, results) = drive(Start::Resume, s.config, &dir, ports, *twin, Hooks::default()).await?;
            print_results(&dir, &id, &results, started.elapsed().as_secs_f64(), on_twin, json);
        }
        CampaignCommand::Abandon { id, data_dir: d } => {
            let message = abandon(&data_dir(d.as_deref()), id).await?;
            if json {
                outln!("{}", json!({ "campaign": id, "status": "abandoned", "message": message }));
            } else {
                outln!("{message}");
            }
        }
        CampaignCommand::Answer { id, prompt_id, file, data_dir: d } => {
            let message = answer(&data_dir(d.as_deref()), id, prompt_id.as_deref(), file.as_deref())?;
            if json {
                outln!("{}", json!({ "campaign": id, "prompt": prompt_id, "message": message }));
            } else {
                outln!("{message}");
            }
        }
        CampaignCommand::Status { id, data_dir: d } => {
            let v = campaign::status(&data_dir(d.as_deref()), id)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                cellos_output::print_or_exit(&cellos_output::render(&cellos_output::sorted(&v)));
            }
        }
        CampaignCommand::Demo { data_dir: d, seed, twin_qemu } => {
            let dir = data_dir(d.as_deref());
            let cfg = campaign::CampaignConfig { seed: *seed, ..campaign::CampaignConfig::demo() };
            let ports = Ports { twin_qemu: twin_qemu.clone(), ..Ports::lines(None, None, None) };
            let (id, results) = drive(Start::New, cfg, &dir, &ports, true, Hooks::default()).await?;
            print_results(&dir, &id, &results, started.elapsed().as_secs_f64(), true, json);
        }
    }
    Ok(())
}
