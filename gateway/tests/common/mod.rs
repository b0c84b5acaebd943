//! What the gateway's outside tests share: a twin process with a campaign's deck, its counters, a
//! campaign run on the command line and what it wrote.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serialport::SerialPort;

use cellos_gateway::twin::{TwinOptions, TwinProcess};

/// The gateway binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_cellos-gateway");

/// A twin in a process of its own (seed 7, instant STAR), with the deck of a campaign on `lines`
/// (written into `dir`), its incubations in real time at `time_scale` when given.
pub fn campaign_twin(dir: &Path, lines: &[&str], time_scale: Option<f64>) -> TwinProcess {
    let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let deck = dir.join("twin-deck.toml");
    std::fs::write(&deck, cellos_gateway::campaign::deck_toml(&lines).unwrap()).unwrap();
    let options = TwinOptions { seed: 7, deck: Some(deck), instant: true, time_scale, ..Default::default() };
    TwinProcess::spawn(Path::new(BIN), &options).unwrap()
}

/// A twin's execution counters, asked on its reader line.
pub fn counters(t: &TwinProcess) -> cellos_core::proto::wire::Counters {
    use cellos_core::proto::wire::{Request, Response};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = cellos_gateway::transport::SerialConfig::new(t.reader.as_str());
        let (tx, rx) = cellos_gateway::transport::open_serial(&cfg, cellos_gateway::transport::Protocol::Wire).unwrap();
        let client = cellos_gateway::wire::WireClient::new(tx, rx, Duration::from_secs(2));
        match client.ask(&Request::Counters).await.unwrap() {
            Response::Counters(c) => c,
            other => panic!("{other:?}"),
        }
    })
}

/// Runs `campaign run` with `settings` (TOML; the id `ref` is added) and `args` (the lines) over `dir`;
/// panics with its standard error if it fails.
pub fn cli_campaign(dir: &Path, settings: &str, args: &[&str]) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("campaign_id = \"ref\"\n{settings}")).unwrap();
    let o = Command::new(BIN)
        .args(["campaign", "run", "--config"])
        .arg(&cfg)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A campaign's status (`campaign status`), as JSON.
pub fn status(dir: &Path, id: &str) -> serde_json::Value {
    let o = Command::new(BIN).args(["--json", "campaign", "status", id, "--data-dir"]).arg(dir).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Each line's chosen dose in a campaign's summary.
pub fn doses(dir: &Path, id: &str) -> Vec<f64> {
    status(dir, id)["summary"].as_array().unwrap().iter().map(|l| l["dose_um"].as_f64().unwrap()).collect()
}

/// Every reading of a campaign: iteration, well, dose and the three readouts, as text.
pub fn readings(dir: &Path, id: &str) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("experimental_results.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT iteration || ' ' || well_id || ' ' || dose_uM || ' ' || viability_norm || ' ' || raw_signal || ' ' || segmentation FROM measurements WHERE campaign_id = ?1 ORDER BY iteration, well_id")
        .unwrap();
    st.query_map([id], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// A cable between a fixed path and the twin's STAR line: a pty pair whose far end is relayed to it.
pub struct Cable {
    stop: Arc<AtomicBool>,
    relay: Option<std::thread::JoinHandle<()>>,
    link: PathBuf,
}

impl Cable {
    pub fn plug(link: &Path, twin_line: &str) -> Cable {
        let (mut master, slave) = serialport::TTYPort::pair().unwrap();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(slave.name().unwrap(), link).unwrap();
        let mut twin = serialport::new(twin_line, 115_200).timeout(Duration::from_millis(5)).open_native().unwrap();
        master.set_timeout(Duration::from_millis(5)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let relay = std::thread::spawn(move || {
            let _slave = slave;
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::Relaxed) {
                if let Ok(n) = master.read(&mut buf)
                    && n > 0
                {
                    let _ = twin.write_all(&buf[..n]);
                }
                if let Ok(n) = twin.read(&mut buf)
                    && n > 0
                {
                    let _ = master.write_all(&buf[..n]);
                }
            }
        });
        Cable { stop, relay: Some(relay), link: link.to_path_buf() }
    }

    /// Pulls the cable: the pty pair closes, the path is gone.
    pub fn pull(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.relay.take() {
            t.join().unwrap();
        }
        let _ = std::fs::remove_file(&self.link);
    }
}

/// Runs `f` on a runtime whose threads have room for the campaign deck (about 125 KB, copied a few
/// times by an unoptimised build; a test thread has 2 MiB).
pub fn on_big_stack<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(64 << 20)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
        .unwrap()
        .join()
        .unwrap();
}
