//! Serving the twin from a host (feature `host`): pty pairs or serial devices, one thread per
//! instrument, the deck file and the fault specification.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cellos_core::proto::wire::{Faults, LinkFaults};
use embedded_io_adapters::std::FromStd;
use serialport::SerialPort;

use crate::deck::{self, Deck};
use crate::{EvoPort, HostTwin, StarPort, WirePort};

/// What went wrong setting the twin up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The deck file is not valid.
    #[error("deck file {path}: {message}")]
    Deck {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the TOML line and column where known.
        message: String,
    },
    /// The fault specification is not valid.
    #[error("fault `{item}`: {message}")]
    Faults {
        /// The item of the specification.
        item: String,
        /// What is wrong.
        message: String,
    },
    /// A serial device or pty could not be set up.
    #[error("serial {what}: {source}")]
    Serial {
        /// The device, or "pty pair".
        what: String,
        /// Why.
        source: serialport::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Parses a fault specification: comma-separated `drop=N`, `corrupt=N`, `dup=N`, `late=N`, `delay=MS`,
/// `stall=MS`, `only=CODE` (an empty specification: no faults). `late=N` delays only the next N replies
/// by `delay`; `only=CODE` is two upper-case letters or digits: a STAR command (`AS`), an EVO module
/// (`C5`), or a reader request (`RD` read, `IN` incubate, `WS` well state, `TS` trough state, `HE`
/// hello, `ID` identify).
pub fn parse_faults(spec: &str) -> Result<LinkFaults, TwinError> {
    let mut f = Faults::default();
    let mut late_next = 0;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let fail = |message: &str| TwinError::Faults { item: item.into(), message: message.into() };
        let (k, v) = item.split_once('=').ok_or_else(|| fail("expected KIND=VALUE"))?;
        let num = || v.parse::<u32>().map_err(|_| fail("value is not a whole number"));
        let count = || num().and_then(|n| u16::try_from(n).map_err(|_| fail("count above 65535")));
        match k {
            "drop" => f.drop_next = count()?,
            "corrupt" => f.corrupt_next = count()?,
            "dup" => f.duplicate_next = count()?,
            "late" => late_next = count()?,
            "delay" => f.delay_ms = num()?,
            "stall" => f.stall_ms = num()?,
            "only" => {
                let b = v.as_bytes();
                if b.len() != 2 || !b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                    return Err(fail("a code is two upper-case letters or digits, like AS, C5 or RD"));
                }
                f.only_code = Some([b[0], b[1]]);
            }
            _ => return Err(fail("unknown kind (drop, corrupt, dup, late, delay, stall, only)")),
        }
    }
    if late_next > 0 && f.delay_ms == 0 {
        return Err(TwinError::Faults { item: spec.into(), message: "late=N needs delay=MS".into() });
    }
    Ok(LinkFaults { faults: f, late_next })
}

/// Why a deck description does not make a deck.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeckError {
    /// Not TOML of the deck file's shape (the message has the line and column).
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A deck file whose content is wrong.
    #[error("{0}")]
    Content(#[from] deck::file::DeckFileError),
}

/// Parses a deck description (TOML of [`deck::file::DeckFile`], see `docs/twin.md`).
pub fn parse_deck(text: &str) -> Result<Deck<4, 384>, DeckError> {
    Ok(toml::from_str::<deck::file::DeckFile>(text)?.build()?)
}

/// Reads a deck description file.
pub fn load_deck(path: &Path) -> Result<Deck<4, 384>, TwinError> {
    let text = std::fs::read_to_string(path).map_err(|source| TwinError::Read { path: path.into(), source })?;
    parse_deck(&text).map_err(|e| TwinError::Deck { path: path.into(), message: e.to_string() })
}

/// One served line: the port, and for a pty the other end, kept open so that the line stays up while
/// clients come and go.
pub struct Endpoint {
    port: serialport::TTYPort,
    _peer: Option<serialport::TTYPort>,
    path: String,
}

impl Endpoint {
    /// Opens a serial device, or creates a pty pair when `path` is `None`.
    pub fn open(path: Option<&Path>) -> Result<Endpoint, TwinError> {
        let serial = |what: String| move |source| TwinError::Serial { what, source };
        match path {
            Some(p) => {
                let port = serialport::new(p.to_string_lossy(), 115_200)
                    .timeout(Duration::from_millis(1))
                    .open_native()
                    .map_err(serial(p.display().to_string()))?;
                Ok(Endpoint { port, _peer: None, path: p.display().to_string() })
            }
            None => {
                let (mut master, slave) = serialport::TTYPort::pair().map_err(serial("pty pair".into()))?;
                master.set_timeout(Duration::from_millis(1)).map_err(serial("pty pair".into()))?;
                let path = slave.name().unwrap_or_default();
                Ok(Endpoint { port: master, _peer: Some(slave), path })
            }
        }
    }

    /// The path a client opens.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Which instrument an endpoint serves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Hamilton STAR text protocol.
    Star,
    /// Tecan EVO frames.
    Evo,
    /// The reader and twin control, over `wire`.
    Wire,
    /// The bench: an operator's hands in a simulation, over `wire`, without faults.
    Bench,
}

/// A running twin: its endpoints' paths and the threads serving them.
pub struct TwinServer {
    /// The shared twin (tests may look inside).
    pub twin: Arc<Mutex<HostTwin>>,
    /// Path of the STAR line.
    pub star: String,
    /// Path of the EVO line.
    pub evo: String,
    /// Path of the reader line.
    pub reader: String,
    /// Path of the bench line: what an operator does by hand (a manual incubator, a stand-alone reader)
    /// in a simulation, with the reader's requests.
    pub bench: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TwinServer {
    /// Serves `twin` on the given devices (a new pty pair for each `None`).
    pub fn start(
        twin: HostTwin,
        star: Option<&Path>,
        evo: Option<&Path>,
        reader: Option<&Path>,
    ) -> Result<TwinServer, TwinError> {
        let mut twin = twin;
        if twin.instance == 0 {
            twin.set_instance(draw_instance());
        }
        let twin = Arc::new(Mutex::new(twin));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let mut paths = Vec::new();
        let mut threads = Vec::new();
        for (kind, path) in [(Kind::Star, star), (Kind::Evo, evo), (Kind::Wire, reader), (Kind::Bench, None)] {
            let ep = Endpoint::open(path)?;
            paths.push(ep.path.clone());
            let (twin, stop) = (Arc::clone(&twin), Arc::clone(&stop));
            let thread = std::thread::Builder::new()
                .name(format!("{kind:?}"))
                .spawn(move || serve(kind, ep, &twin, &stop, start))
                .map_err(TwinError::Thread)?;
            threads.push(thread);
        }
        let bench = paths.pop().unwrap_or_default();
        let reader = paths.pop().unwrap_or_default();
        let evo = paths.pop().unwrap_or_default();
        let star = paths.pop().unwrap_or_default();
        Ok(TwinServer { twin, star, evo, reader, bench, stop, threads })
    }

    /// Writes the lines' paths as `star=PATH`, `evo=PATH`, `reader=PATH`, `bench=PATH` and `ready`, one a
    /// line, then serves until stopped: what a twin process prints for whoever started it.
    pub fn announce_and_serve(self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "star={}\nevo={}\nreader={}\nbench={}\nready", self.star, self.evo, self.reader, self.bench)?;
        out.flush()?;
        self.join();
        Ok(())
    }

    /// Waits for the serving threads (they run until [`TwinServer::stop`]).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops serving and closes the lines.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for TwinServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A number no other twin on this machine is likely to have drawn: the clock's nanoseconds and the
/// process id, mixed. Never 0 (which means "not drawn").
pub fn draw_instance() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    crate::reader::mix(nanos ^ (u64::from(std::process::id()) << 40)).max(1)
}

fn serve(kind: Kind, mut ep: Endpoint, twin: &Mutex<HostTwin>, stop: &AtomicBool, start: Instant) {
    let mut star = StarPort::new();
    let mut evo = EvoPort::new();
    let mut wire = if kind == Kind::Bench { WirePort::bench() } else { WirePort::new() };
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let n = match ep.port.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => {
                // A pty whose client went away reports an error until the next one opens it.
                log_error(&ep.path, &e);
                std::thread::sleep(Duration::from_millis(5));
                0
            }
        };
        let now = start.elapsed().as_millis() as u64;
        let Ok(mut t) = twin.lock() else { return };
        let mut io = FromStd::new(&mut ep.port);
        let result = match kind {
            Kind::Star => {
                star.receive(&mut t, &buf[..n], now);
                star.transmit(&mut t, &mut io, now)
            }
            Kind::Evo => {
                evo.receive(&mut t, &buf[..n], now);
                evo.transmit(&mut t, &mut io, now)
            }
            Kind::Wire | Kind::Bench => {
                wire.receive(&mut t, &buf[..n], now);
                let sent = wire.transmit(&mut t, &mut io, now);
                if t.shutdown && !wire.holding() {
                    stop.store(true, Ordering::Relaxed);
                }
                sent
            }
        };
        drop(t);
        if let Err(e) = result {
            log_error(&ep.path, &e);
        }
    }
}

fn log_error(path: &str, e: &dyn core::fmt::Debug) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    // At most one message a second: a line without a client errors on every poll.
    if let Ok(mut last) = LAST.lock()
        && last.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
    {
        eprintln!("cellos-twin: {path}: {e:?}");
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_spec() {
        let f = parse_faults("drop=2, corrupt=1,dup=3,delay=50,stall=200,only=AS").unwrap().faults;
        assert_eq!(
            f,
            Faults {
                drop_next: 2,
                corrupt_next: 1,
                duplicate_next: 3,
                delay_ms: 50,
                stall_ms: 200,
                only_code: Some(*b"AS")
            }
        );
        assert_eq!(parse_faults("").unwrap(), LinkFaults::default());
        let f = parse_faults("late=2,delay=6000,only=RD").unwrap();
        assert_eq!((f.late_next, f.faults.delay_ms, f.faults.only_code), (2, 6000, Some(*b"RD")));
        assert_eq!(parse_faults("only=C5").unwrap().faults.only_code, Some(*b"C5"), "an EVO module");
        assert!(parse_faults("late=1").unwrap_err().to_string().contains("needs delay"));
        assert_eq!(parse_faults("drop").unwrap_err().to_string(), "fault `drop`: expected KIND=VALUE");
        assert_eq!(
            parse_faults("only=as").unwrap_err().to_string(),
            "fault `only=as`: a code is two upper-case letters or digits, like AS, C5 or RD"
        );
        assert_eq!(parse_faults("drop=x").unwrap_err().to_string(), "fault `drop=x`: value is not a whole number");
        assert!(parse_faults("melt=1").unwrap_err().to_string().contains("unknown kind"));
    }

    #[test]
    fn deck_file() {
        let d = parse_deck(
            r#"
            [[tip_rack]]
            name = "T1"
            x = 1000
            y = 2000
            tip_volume_ul = 50

            [[plate]]
            name = "P384"
            x = 3000
            y = 2000
            format = 384
            well_capacity_ul = 100

            [[trough]]
            name = "CELLS"
            x = 4000
            y = 500
            width = 190
            depth = 1000
            capacity_ul = 50000
            volume_ul = 40000
            content = "cells"
            line = "hepg2"
            cells_per_ul = 200

            [waste]
            x = 0
            y = 0
            width = 500
            depth = 500
            "#,
        )
        .unwrap();
        assert_eq!(d.tip_racks[0].tip_volume_01ul, 500);
        assert_eq!(d.plates[0].wells.len(), 384);
        assert_eq!(d.plates[0].pitch_01mm, 45);
        assert_eq!(d.troughs[0].liquid.cells, 8e6);
        assert_eq!(d.troughs[0].content, deck::TroughContent::Cells { line: deck::line_index("HepG2").unwrap() });
        let err = parse_deck("[waste]\nx = 0\ny = 0\nwidth = 1\ndepth = 1\n[[plate]]\nname = \"P\"\nx = 1\ny = 1\nformat = 48\nwell_capacity_ul = 1\n").unwrap_err();
        assert!(matches!(err, DeckError::Content(deck::file::DeckFileError::Format { wells: 48, .. })), "{err:?}");
        assert_eq!(err.to_string(), "P: 48 wells is not a plate format (6, 24, 96, 384, 1536)");
        let err = parse_deck("[waste]\nx = 0\ny = 0\nwidth = 1\nheight = 1\n").unwrap_err();
        assert!(matches!(err, DeckError::Syntax(_)) && err.to_string().contains("line 5"), "{err}");
        // Every content field checked: a negative volume, a missing concentration, an unknown line, a
        // name longer than a deck name.
        let trough = |extra: &str| {
            format!(
                "[waste]\nx = 0\ny = 0\nwidth = 1\ndepth = 1\n[[trough]]\nname = \"T\"\nx = 0\ny = 0\nwidth = 1\ndepth = 1\ncapacity_ul = 10\n{extra}"
            )
        };
        for (extra, message) in [
            ("volume_ul = -1\ncontent = \"medium\"\n", "T: `volume_ul` must be a number ≥ 0"),
            (
                "volume_ul = 1\ncontent = \"compound\"\ncompound = \"tbhp\"\n",
                "T: this content needs `concentration_um`",
            ),
            (
                "volume_ul = 1\ncontent = \"cells\"\nline = \"HAL9000\"\ncells_per_ul = 1\n",
                "T: unknown cell line HAL9000",
            ),
            ("volume_ul = 1\ncontent = \"soup\"\n", "T: content `soup` is not medium, cells, compound or virus"),
        ] {
            assert_eq!(parse_deck(&trough(extra)).unwrap_err().to_string(), message);
        }
        let long =
            trough("volume_ul = 1\ncontent = \"medium\"\n").replace("name = \"T\"", "name = \"A_NAME_LONGER_THAN_16\"");
        assert!(matches!(parse_deck(&long), Err(DeckError::Syntax(_))));
    }
}
