//! The instrument twin as a separate process.
//!
//! `cellos-gateway` starts the twin by running its own binary with the hidden `twin` subcommand, which
//! serves `cellos-firmware`'s twin on three pty pairs and prints their paths. A separate process, so that
//! the twin's state (the liquid in its wells, its counters) survives the gateway: a crashed campaign
//! resumes against the same twin.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cellos_core::deck::default_deck;
use cellos_firmware::HostTwin;
use cellos_firmware::host::{TwinServer, load_deck, parse_faults};
use cellos_firmware::star::Timing;

use crate::GatewayError;

/// How to start a twin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TwinOptions {
    /// Seed of the twin's noise.
    pub seed: u64,
    /// Deck file (the built-in deck when `None`).
    pub deck: Option<PathBuf>,
    /// Fault specification of the STAR and EVO lines (see `cellos-twin --help`).
    pub faults: String,
    /// Fault specification of the reader line.
    pub reader_faults: String,
    /// Answer every STAR command at once.
    pub instant: bool,
    /// Incubations take real time at this many times its pace (`None`: instant).
    pub time_scale: Option<f64>,
    /// Where the twin writes its diagnostics (inherited standard error when `None`). A twin that must
    /// outlive the gateway gets a file: it must not hold the gateway's own output open.
    pub log: Option<PathBuf>,
}

impl TwinOptions {
    fn args(&self) -> Vec<String> {
        let mut a = vec!["twin".to_string(), "--seed".into(), self.seed.to_string()];
        if let Some(d) = &self.deck {
            a.push("--deck".into());
            a.push(d.display().to_string());
        }
        if !self.faults.is_empty() {
            a.push("--faults".into());
            a.push(self.faults.clone());
        }
        if !self.reader_faults.is_empty() {
            a.push("--reader-faults".into());
            a.push(self.reader_faults.clone());
        }
        if self.instant {
            a.push("--instant".into());
        }
        if let Some(n) = self.time_scale {
            a.push("--time-scale".into());
            a.push(n.to_string());
        }
        a
    }
}

/// A running twin process and the paths of its lines. Dropping it stops the twin, unless it was
/// [`TwinProcess::detach`]ed.
pub struct TwinProcess {
    child: Option<Child>,
    /// STAR line.
    pub star: String,
    /// EVO line.
    pub evo: String,
    /// Reader line.
    pub reader: String,
    /// Bench line: an operator's hands in the simulation (see `cellos-twin --help`).
    pub bench: String,
}

impl TwinProcess {
    /// Starts `exe twin …` (`exe` is a `cellos-gateway` binary) and waits for its paths.
    pub fn spawn(exe: &Path, options: &TwinOptions) -> Result<TwinProcess, GatewayError> {
        use std::os::unix::process::CommandExt;
        let stderr = match &options.log {
            Some(p) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| GatewayError::Twin(format!("{}: {e}", p.display())))?,
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(exe)
            .args(options.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: a Ctrl-C meant for the gateway does not take the twin with it.
            .process_group(0)
            .spawn()
            .map_err(|e| GatewayError::Twin(format!("running {}: {e}", exe.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| GatewayError::Twin("no standard output".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut star, mut evo, mut reader, mut bench) = (None, None, None, None);
        for line in lines.by_ref() {
            let line = line.map_err(|e| GatewayError::Twin(e.to_string()))?;
            match line.split_once('=') {
                Some(("star", p)) => star = Some(p.to_string()),
                Some(("evo", p)) => evo = Some(p.to_string()),
                Some(("reader", p)) => reader = Some(p.to_string()),
                Some(("bench", p)) => bench = Some(p.to_string()),
                _ if line == "ready" => break,
                _ => {}
            }
        }
        // Keep draining the twin's output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        match (star, evo, reader, bench) {
            (Some(star), Some(evo), Some(reader), Some(bench)) => {
                Ok(TwinProcess { child: Some(child), star, evo, reader, bench })
            }
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(GatewayError::Twin(format!("the twin exited before it was ready ({status})")))
            }
        }
    }

    /// The twin's process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Lets the twin outlive this handle (for a campaign that may be resumed by another process).
    pub fn detach(mut self) {
        self.child = None;
    }
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asks the twin on `reader` to stop, if it is the one with `instance` (any other twin on that line is
/// left alone). Returns whether it was stopped.
pub async fn shutdown(reader: &str, instance: u64) -> Result<bool, GatewayError> {
    use cellos_core::proto::wire::{Request, Response};
    let (tx, rx, _) =
        crate::transport::open_line(&crate::transport::SerialConfig::new(reader), crate::transport::Protocol::Wire)
            .await?;
    let client = crate::wire::WireClient::new(tx, rx, std::time::Duration::from_secs(2));
    if client.identify().await?.instance != instance {
        return Ok(false);
    }
    // The twin may close its lines before its answer is read: that is the shutdown too.
    match client.ask(&Request::Shutdown).await {
        Ok(Response::Done) | Err(GatewayError::Closed) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Serves a twin in this process until killed, printing its paths (the hidden `twin` subcommand).
pub fn serve(options: &TwinOptions) -> Result<(), GatewayError> {
    let deck = match &options.deck {
        Some(p) => load_deck(p).map_err(|e| GatewayError::Twin(e.to_string()))?,
        None => default_deck(),
    };
    let faults = parse_faults(&options.faults).map_err(|e| GatewayError::Twin(e.to_string()))?;
    let reader_faults = parse_faults(&options.reader_faults).map_err(|e| GatewayError::Twin(e.to_string()))?;
    let mut twin =
        HostTwin::with_deck(deck, options.seed, if options.instant { Timing::INSTANT } else { Timing::DEFAULT });
    twin.star_faults.set(faults);
    twin.evo_faults.set(faults);
    twin.wire_faults.set(reader_faults);
    twin.time_scale = match options.time_scale {
        Some(n) if n.is_finite() && n > 0.0 => n,
        Some(n) => return Err(GatewayError::Twin(format!("--time-scale {n}: give a positive number"))),
        None => 0.0,
    };
    let server = TwinServer::start(twin, None, None, None).map_err(|e| GatewayError::Twin(e.to_string()))?;
    server.announce_and_serve(&mut std::io::stdout()).map_err(|e| GatewayError::Twin(e.to_string()))?;
    Ok(())
}
