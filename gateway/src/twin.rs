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
    // The twin may close its lines before its answer is read: the line then ends (EOF) or, on a pty,
    // fails to read (EIO). Either way it is stopped if it no longer answers as itself.
    match client.ask(&Request::Shutdown).await {
        Ok(Response::Done) | Err(GatewayError::Closed) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) => {
            drop(client);
            if still_answers(reader, instance).await { Err(e) } else { Ok(true) }
        }
    }
}

/// Whether the twin `instance` still answers on its reader line `reader` (a line that cannot be opened,
/// or that does not answer, or answers as another instance, is not it).
async fn still_answers(reader: &str, instance: u64) -> bool {
    let config = crate::transport::SerialConfig::new(reader);
    let Ok((tx, rx, _)) = crate::transport::open_line(&config, crate::transport::Protocol::Wire).await else {
        return false;
    };
    let client = crate::wire::WireClient::new(tx, rx, std::time::Duration::from_secs(2));
    client.identify().await.is_ok_and(|i| i.instance == instance)
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

/// Starts the twin's Cortex-M3 image (`elf`, built from `firmware/qemu`) under `qemu-system-arm`
/// (`lm3s6965evb`): UART0 (the STAR) and UART1 (the reader) each on a new pty. QEMU's messages and the
/// image's defmt log go to `log`, where the pty paths are read from. The image starts with an empty
/// deck: [`setup_qemu`] gives it the campaign's. There is no bench line.
pub fn spawn_qemu(elf: &Path, log: &Path) -> Result<TwinProcess, GatewayError> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::process::CommandExt;
    let fail = |m: String| GatewayError::Twin(m);
    if !elf.is_file() {
        return Err(fail(format!(
            "no twin image at {} (build it: cargo build -p cellos-twin-qemu --features target --target thumbv7m-none-eabi --profile firmware)",
            elf.display()
        )));
    }
    let open = || std::fs::OpenOptions::new().create(true).append(true).open(log);
    let out = open().map_err(|e| fail(format!("{}: {e}", log.display())))?;
    let from = out.metadata().map(|m| m.len()).unwrap_or(0);
    let err = out.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", "lm3s6965evb", "-display", "none", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-serial", "pty", "-serial", "pty", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("running qemu-system-arm: {e} (Debian's package qemu-system-arm has it)")))?;
    // QEMU names each pty as it opens it: "char device redirected to /dev/pts/N (label serialK)".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let mut text = Vec::new();
        if let Ok(mut f) = std::fs::File::open(log) {
            let _ = f.seek(SeekFrom::Start(from));
            let _ = f.read_to_end(&mut text);
        }
        let text = String::from_utf8_lossy(&text);
        let pty = |label: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("(label {label})")))
                .find_map(|l| l.split_whitespace().find(|w| w.starts_with("/dev/")).map(str::to_string))
        };
        if let (Some(star), Some(reader)) = (pty("serial0"), pty("serial1")) {
            return Ok(TwinProcess { child: Some(child), star, evo: String::new(), reader, bench: String::new() });
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(fail(format!("qemu-system-arm did not open its two ptys ({status}); see {}", log.display())));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sets up a twin started without a command line (the Cortex-M3 image) on its reader line: seed,
/// a new instance number and the campaign deck of `lines`. Returns the instance number.
pub async fn setup_qemu(reader: &str, seed: u64, lines: &[String]) -> Result<u64, GatewayError> {
    use cellos_core::proto::wire::{Refusal, Request, Response};
    let lines = cellos_core::deck::campaign::Lines::by_name(lines)
        .map_err(|e| GatewayError::Twin(format!("campaign lines {lines:?}: {e}")))?;
    let (tx, rx, _) =
        crate::transport::open_line(&crate::transport::SerialConfig::new(reader), crate::transport::Protocol::Wire)
            .await?;
    let client = crate::wire::WireClient::new(tx, rx, std::time::Duration::from_secs(5));
    let instance = cellos_firmware::host::draw_instance();
    match client.ask(&Request::Setup { seed, instance, lines }).await? {
        Response::Done => Ok(instance),
        Response::Refused(Refusal::Started) => {
            Err(GatewayError::Twin("the image on that line has already worked: it cannot be set up again".into()))
        }
        other => Err(GatewayError::Twin(format!("the image refused its setup: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_twin_still_answers_only_as_itself_and_only_while_it_runs() {
        let mut twin = HostTwin::with_deck(default_deck(), 1, Timing::INSTANT);
        twin.set_instance(77);
        let server = TwinServer::start(twin, None, None, None).unwrap();
        let reader = server.reader.clone();
        assert!(still_answers(&reader, 77).await);
        assert!(!still_answers(&reader, 78).await, "another instance is not it");
        // Stopped through its line: it answers no more, and its line is gone.
        assert!(shutdown(&reader, 77).await.unwrap());
        drop(server);
        assert!(!still_answers(&reader, 77).await);
        assert!(!still_answers("/dev/cellos-no-such-line", 77).await);
    }
}
