//! Serving the twin from a host (feature `host`): pty pairs or serial devices, one thread per
//! instrument, the deck file and the fault specification.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cellos_core::plate::PlateFormat;
use cellos_core::proto::wire::{Faults, LinkFaults};
use embedded_io_adapters::std::FromStd;
use serde::Deserialize;
use serialport::SerialPort;

use crate::deck::{self, Deck, Liquid, Plate, TipRack, Trough, TroughContent};
use crate::{EvoPort, HostTwin, StarPort, WirePort};

/// What went wrong setting the twin up.
#[derive(Debug, thiserror::Error)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeckFile {
    #[serde(default)]
    tip_rack: Vec<TipRackFile>,
    #[serde(default)]
    plate: Vec<PlateFile>,
    #[serde(default)]
    trough: Vec<TroughFile>,
    waste: RectFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TipRackFile {
    name: String,
    x: i32,
    y: i32,
    #[serde(default = "default_format")]
    format: u16,
    tip_volume_ul: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlateFile {
    name: String,
    x: i32,
    y: i32,
    #[serde(default = "default_format")]
    format: u16,
    well_capacity_ul: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TroughFile {
    name: String,
    x: i32,
    y: i32,
    width: i32,
    depth: i32,
    capacity_ul: f64,
    volume_ul: f64,
    content: String,
    line: Option<String>,
    cells_per_ul: Option<f64>,
    compound: Option<String>,
    concentration_um: Option<f64>,
    titer_tu_per_ul: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RectFile {
    x: i32,
    y: i32,
    width: i32,
    depth: i32,
}

fn default_format() -> u16 {
    96
}

fn name(s: &str) -> deck::Name {
    s.chars().take(deck::NAME_LEN).collect()
}

/// Parses a deck description (TOML, see `docs/twin.md`).
pub fn parse_deck(text: &str) -> Result<Deck<4, 384>, String> {
    let file: DeckFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let format = |wells: u16, what: &str| {
        PlateFormat::from_well_count(wells)
            .ok_or_else(|| format!("{what}: {wells} wells is not a plate format (6, 24, 96, 384, 1536)"))
    };
    let mut d = Deck {
        tip_racks: heapless::Vec::new(),
        plates: heapless::Vec::new(),
        troughs: heapless::Vec::new(),
        waste: (0, 0, 0, 0),
    };
    for r in &file.tip_rack {
        let rack =
            TipRack::full(&r.name, r.x, r.y, format(r.format, &r.name)?, (r.tip_volume_ul * 10.0).round() as u32);
        d.tip_racks.push(rack).map_err(|_| format!("at most {} tip racks", deck::MAX_TIP_RACKS))?;
    }
    for p in &file.plate {
        let plate = Plate::empty(&p.name, p.x, p.y, format(p.format, &p.name)?, p.well_capacity_ul)
            .ok_or_else(|| format!("{}: at most 384 wells", p.name))?;
        d.plates.push(plate).map_err(|_| "at most 4 plates".to_string())?;
    }
    for t in &file.trough {
        let need = |v: Option<f64>, what: &str| v.ok_or_else(|| format!("{}: {} needs `{what}`", t.name, t.content));
        let (content, liquid) = match t.content.as_str() {
            "medium" => (TroughContent::Medium, Liquid { volume_ul: t.volume_ul, ..Liquid::default() }),
            "cells" => {
                let line_name = t.line.as_deref().ok_or_else(|| format!("{}: cells need `line`", t.name))?;
                let line =
                    deck::line_index(line_name).ok_or_else(|| format!("{}: unknown cell line {line_name}", t.name))?;
                let cells = t.volume_ul * need(t.cells_per_ul, "cells_per_ul")?;
                (TroughContent::Cells { line }, Liquid { volume_ul: t.volume_ul, cells, ..Liquid::default() })
            }
            "compound" => {
                let c = t.compound.as_deref().ok_or_else(|| format!("{}: a compound needs `compound`", t.name))?;
                let compound = deck::compound_index(c).ok_or_else(|| format!("{}: unknown compound {c}", t.name))?;
                let pmol = t.volume_ul * need(t.concentration_um, "concentration_um")?;
                (
                    TroughContent::Compound { compound },
                    Liquid { volume_ul: t.volume_ul, compound_pmol: pmol, ..Liquid::default() },
                )
            }
            "virus" => {
                let tu = t.volume_ul * need(t.titer_tu_per_ul, "titer_tu_per_ul")?;
                (TroughContent::Virus, Liquid { volume_ul: t.volume_ul, virus_tu: tu, ..Liquid::default() })
            }
            other => return Err(format!("{}: content `{other}` is not medium, cells, compound or virus", t.name)),
        };
        let trough = Trough {
            name: name(&t.name),
            x_01mm: t.x,
            y_01mm: t.y,
            width_01mm: t.width,
            depth_01mm: t.depth,
            capacity_ul: t.capacity_ul,
            content,
            liquid,
        };
        d.troughs.push(trough).map_err(|_| format!("at most {} troughs", deck::MAX_TROUGHS))?;
    }
    d.waste = (file.waste.x, file.waste.y, file.waste.width, file.waste.depth);
    Ok(d)
}

/// Reads a deck description file.
pub fn load_deck(path: &Path) -> Result<Deck<4, 384>, TwinError> {
    let text = std::fs::read_to_string(path).map_err(|source| TwinError::Read { path: path.into(), source })?;
    parse_deck(&text).map_err(|message| TwinError::Deck { path: path.into(), message })
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
        for (kind, path) in [(Kind::Star, star), (Kind::Evo, evo), (Kind::Wire, reader)] {
            let ep = Endpoint::open(path)?;
            paths.push(ep.path.clone());
            let (twin, stop) = (Arc::clone(&twin), Arc::clone(&stop));
            let thread = std::thread::Builder::new()
                .name(format!("{kind:?}"))
                .spawn(move || serve(kind, ep, &twin, &stop, start))
                .map_err(TwinError::Thread)?;
            threads.push(thread);
        }
        let reader = paths.pop().unwrap_or_default();
        let evo = paths.pop().unwrap_or_default();
        let star = paths.pop().unwrap_or_default();
        Ok(TwinServer { twin, star, evo, reader, stop, threads })
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
fn draw_instance() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    crate::reader::mix(nanos ^ (u64::from(std::process::id()) << 40)).max(1)
}

fn serve(kind: Kind, mut ep: Endpoint, twin: &Mutex<HostTwin>, stop: &AtomicBool, start: Instant) {
    let mut star = StarPort::new();
    let mut evo = EvoPort::new();
    let mut wire = WirePort::new();
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
            Kind::Wire => {
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
        assert_eq!(d.troughs[0].content, TroughContent::Cells { line: deck::line_index("HepG2").unwrap() });
        let err = parse_deck("[waste]\nx = 0\ny = 0\nwidth = 1\ndepth = 1\n[[plate]]\nname = \"P\"\nx = 1\ny = 1\nformat = 48\nwell_capacity_ul = 1\n").unwrap_err();
        assert_eq!(err, "P: 48 wells is not a plate format (6, 24, 96, 384, 1536)");
        let err = parse_deck("[waste]\nx = 0\ny = 0\nwidth = 1\nheight = 1\n").unwrap_err();
        assert!(err.contains("line 5"), "{err}");
    }
}
