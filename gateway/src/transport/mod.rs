//! Message links: how the drivers reach an instrument.
//!
//! A link is split into a sending half ([`LinkTx`]) and a receiving half ([`LinkRx`]) that carry whole
//! messages, so a driver can have one task reading replies while others send. The serial link frames
//! messages per protocol ([`Protocol`]): STAR text ends with CR on the way out and is split at CR, LF or
//! CR LF on the way in (our ASSUMPTION for byte streams, see `docs/wire.md`); EVO frames are
//! self-delimiting (`0x02` … `0x00`); our `wire` frames end with `0x00`. The USB bulk transport ([`usb`]:
//! one transfer, one message) implements the same two traits; [`sim`] simulates a USB device in front of
//! a serial instrument for the tests. [`open`] opens a line from its description (a serial path, `usb`,
//! `usb:SERIAL` or `usb-sim:MPS:PATH`) as [`AnyTx`] and [`AnyRx`], so the drivers take any of them.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::error::GatewayError;

pub mod capture;
pub mod sim;
pub mod usb;

/// Sends whole messages.
pub trait LinkTx: Send + 'static {
    /// Sends one message (the link adds the protocol's terminator where it has one).
    fn send(&mut self, message: &[u8]) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

/// Receives whole messages.
pub trait LinkRx: Send + 'static {
    /// The next message (without its terminator), waiting as long as it takes; `Ok(None)` when the
    /// line closed.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, GatewayError>> + Send;
}

/// Which protocol a link carries, and so how it is framed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Hamilton STAR text.
    Star,
    /// Tecan EVO frames.
    Evo,
    /// Our `wire` link.
    Wire,
}

impl Protocol {
    fn framing(self) -> Framing {
        match self {
            Protocol::Star => Framing::Lines,
            Protocol::Evo => Framing::StxNul,
            Protocol::Wire => Framing::Nul,
        }
    }
}

/// Parity of a serial line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Settings of a serial line.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// Device path (`/dev/ttyUSB0`, a pty, …).
    pub path: String,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Parity.
    #[serde(default)]
    pub parity: Parity,
}

fn default_baud() -> u32 {
    115_200
}

impl SerialConfig {
    /// A line at 115,200 baud, 8N1.
    pub fn new(path: impl Into<String>) -> SerialConfig {
        SerialConfig { path: path.into(), baud: default_baud(), parity: Parity::None }
    }
}

/// The sending half of a serial link.
pub struct SerialTx {
    half: WriteHalf<SerialStream>,
    protocol: Protocol,
}

/// The receiving half of a serial link.
pub struct SerialRx {
    half: ReadHalf<SerialStream>,
    frames: Framer,
    path: String,
}

/// Turns received bytes into whole messages, queued in order.
pub struct Framer {
    acc: Box<Accumulator<4096>>,
    queue: VecDeque<Vec<u8>>,
    protocol: Protocol,
}

impl Framer {
    /// A framer for a protocol.
    pub fn new(protocol: Protocol) -> Framer {
        Framer { acc: Box::new(Accumulator::new(protocol.framing())), queue: VecDeque::new(), protocol }
    }

    /// Feeds bytes; complete messages are queued.
    pub fn push(&mut self, mut input: &[u8]) {
        loop {
            match self.acc.feed(input) {
                Feed::Consumed => return,
                Feed::Overflow { remaining } => input = remaining,
                Feed::Frame { frame, remaining } => {
                    self.queue.push_back(frame.to_vec());
                    input = remaining;
                }
            }
        }
    }

    /// The oldest complete message.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
}

/// Opens a serial line for a protocol.
pub fn open_serial(config: &SerialConfig, protocol: Protocol) -> Result<(SerialTx, SerialRx), GatewayError> {
    let parity = match config.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stream = tokio_serial::new(&config.path, config.baud)
        .parity(parity)
        .timeout(Duration::from_millis(100))
        .open_native_async()
        .map_err(|source| GatewayError::Open { path: config.path.clone(), source })?;
    // Whatever waits in the input buffer answers a previous session (one that crashed mid-exchange, say);
    // it must not be taken as the reply to this session's first command.
    tokio_serial::SerialPort::clear(&stream, tokio_serial::ClearBuffer::Input)
        .map_err(|source| GatewayError::Open { path: config.path.clone(), source })?;
    Ok(split(stream, protocol, config.path.clone()))
}

/// How long a line must stay quiet after [`open_line`] cleared it.
pub const CLEAR_QUIET: Duration = Duration::from_millis(120);
/// The longest [`open_line`] waits for a line to go quiet.
pub const CLEAR_MAX: Duration = Duration::from_secs(3);

/// Opens a serial line for a protocol and clears it: whatever a previous session left half-written on
/// the instrument's side is terminated (a bare CR for STAR, a lone `0x00` for `wire`; an EVO frame
/// resynchronises at its next STX by itself), and everything the instrument sends back until the line
/// has been quiet for [`CLEAR_QUIET`] is discarded, so that it cannot be taken for this session's replies.
/// Returns the halves and the number of bytes discarded.
pub async fn open_line(config: &SerialConfig, protocol: Protocol) -> Result<(SerialTx, SerialRx, usize), GatewayError> {
    let (mut tx, mut rx) = open_serial(config, protocol)?;
    let io = |e| GatewayError::Link(format!("{}: write: {e}", config.path));
    let flush: &[u8] = match protocol {
        Protocol::Star => b"\r",
        Protocol::Wire => b"\0",
        Protocol::Evo => b"",
    };
    if !flush.is_empty() {
        tx.half.write_all(flush).await.map_err(io)?;
        tx.half.flush().await.map_err(io)?;
    }
    let discarded = rx.discard_until_quiet(CLEAR_QUIET, CLEAR_MAX).await?;
    if discarded > 0 {
        tracing::info!(path = %config.path, discarded, "line cleared of a previous session's bytes");
    }
    Ok((tx, rx, discarded))
}

impl SerialRx {
    /// Reads and drops bytes until none has come for `quiet` (or `max` has passed); returns how many.
    pub async fn discard_until_quiet(&mut self, quiet: Duration, max: Duration) -> Result<usize, GatewayError> {
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 512];
        let mut n = 0;
        while started.elapsed() < max {
            match tokio::time::timeout(quiet, self.half.read(&mut buf)).await {
                Err(_) | Ok(Ok(0)) => break,
                Ok(Ok(k)) => n += k,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Ok(Err(e)) => return Err(GatewayError::Link(format!("{}: read: {e}", self.path))),
            }
        }
        self.frames = Framer::new(self.frames.protocol);
        Ok(n)
    }
}

/// Splits an open stream into framed halves.
pub fn split(stream: SerialStream, protocol: Protocol, path: String) -> (SerialTx, SerialRx) {
    let (r, w) = tokio::io::split(stream);
    (SerialTx { half: w, protocol }, SerialRx { half: r, frames: Framer::new(protocol), path })
}

impl LinkTx for SerialTx {
    async fn send(&mut self, message: &[u8]) -> Result<(), GatewayError> {
        capture::record(self.protocol, true, message);
        let io = |e| GatewayError::Link(format!("write: {e}"));
        // The message and its terminator in one write: a process killed between two writes would leave
        // half a command on the line, to which the next session's first command would be appended.
        if self.protocol == Protocol::Star {
            let mut whole = Vec::with_capacity(message.len() + 1);
            whole.extend_from_slice(message);
            whole.push(b'\r');
            self.half.write_all(&whole).await.map_err(io)?;
        } else {
            self.half.write_all(message).await.map_err(io)?;
        }
        self.half.flush().await.map_err(io)
    }
}

impl LinkRx for SerialRx {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        let mut buf = [0u8; 512];
        loop {
            if let Some(frame) = self.frames.pop() {
                capture::record(self.frames.protocol, false, &frame);
                return Ok(Some(frame));
            }
            match self.half.read(&mut buf).await {
                Ok(0) => return Ok(None),
                Ok(n) => self.frames.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(GatewayError::Link(format!("{}: read: {e}", self.path))),
            }
        }
    }
}

/// What an instrument line is, from its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineSpec {
    /// A serial device (`/dev/ttyUSB0`, a pty).
    Serial(String),
    /// The instrument's USB device (`usb`), or the one with this serial number (`usb:SERIAL`).
    Usb(Option<String>),
    /// A simulated USB device of `mps`-byte packets in front of the serial line `path`
    /// (`usb-sim:MPS:PATH`; for tests).
    UsbSim {
        /// Packet size.
        mps: usize,
        /// The serial line behind it.
        path: String,
    },
    /// A recorded session played back in place of the instrument (`replay:FILE`, see [`capture`]).
    Replay(std::path::PathBuf),
}

impl LineSpec {
    /// Reads a line's description.
    pub fn parse(s: &str) -> Result<LineSpec, GatewayError> {
        let bad = |m: String| GatewayError::Config { path: s.into(), message: m };
        if s == "usb" {
            return Ok(LineSpec::Usb(None));
        }
        if let Some(file) = s.strip_prefix("replay:") {
            return Ok(LineSpec::Replay(file.into()));
        }
        if let Some(rest) = s.strip_prefix("usb-sim:") {
            let (mps, path) =
                rest.split_once(':').ok_or_else(|| bad("usb-sim:MPS:PATH, e.g. usb-sim:64:/dev/pts/3".into()))?;
            let mps: usize = mps
                .parse()
                .ok()
                .filter(|m| (1..=1024).contains(m))
                .ok_or_else(|| bad(format!("packet size `{mps}`: 1 to 1024")))?;
            return Ok(LineSpec::UsbSim { mps, path: path.to_string() });
        }
        if let Some(serial) = s.strip_prefix("usb:") {
            if serial.is_empty() {
                return Err(bad("usb:SERIAL needs the device's serial number (cellos-gateway probe --usb)".into()));
            }
            return Ok(LineSpec::Usb(Some(serial.to_string())));
        }
        Ok(LineSpec::Serial(s.to_string()))
    }
}

/// The sending half of any line.
pub enum AnyTx {
    /// Serial.
    Serial(SerialTx),
    /// USB.
    Usb(usb::UsbTx<usb::NusbOut>),
    /// Simulated USB.
    Sim(usb::UsbTx<sim::SimOut>),
    /// A recording played back.
    Replay(capture::ReplayTx),
}

/// The receiving half of any line.
pub enum AnyRx {
    /// Serial.
    Serial(SerialRx),
    /// USB.
    Usb(usb::UsbRx<usb::NusbIn>),
    /// Simulated USB.
    Sim(usb::UsbRx<sim::SimIn>),
    /// A recording played back.
    Replay(capture::ReplayRx),
}

impl LinkTx for AnyTx {
    async fn send(&mut self, message: &[u8]) -> Result<(), GatewayError> {
        match self {
            AnyTx::Serial(t) => t.send(message).await,
            AnyTx::Usb(t) => t.send(message).await,
            AnyTx::Sim(t) => t.send(message).await,
            AnyTx::Replay(t) => t.send(message).await,
        }
    }
}

impl LinkRx for AnyRx {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        match self {
            AnyRx::Serial(r) => r.recv().await,
            AnyRx::Usb(r) => r.recv().await,
            AnyRx::Sim(r) => r.recv().await,
            AnyRx::Replay(r) => r.recv().await,
        }
    }
}

/// Opens an instrument's line from its description (see [`LineSpec`]) for a protocol (`Star` or `Evo`;
/// the instrument's USB ids follow from it); a serial line at `baud`, cleared as [`open_line`] does.
pub async fn open(spec: &str, protocol: Protocol, baud: u32) -> Result<(AnyTx, AnyRx), GatewayError> {
    match LineSpec::parse(spec)? {
        LineSpec::Serial(path) => {
            let (tx, rx, _) = open_line(&SerialConfig { baud, ..SerialConfig::new(path) }, protocol).await?;
            Ok((AnyTx::Serial(tx), AnyRx::Serial(rx)))
        }
        LineSpec::Usb(serial) => {
            let ids = if protocol == Protocol::Evo { usb::EVO_IDS } else { usb::STAR_IDS };
            let (out, inp) = usb::open_device(&usb::UsbSelector { ids, serial }).await?;
            let (tx, rx) = usb::link(out, inp, protocol, usb::UsbTimeouts::default(), spec);
            Ok((AnyTx::Usb(tx), AnyRx::Usb(rx)))
        }
        LineSpec::Replay(file) => {
            let (tx, rx) = capture::replay(&file, protocol)?;
            Ok((AnyTx::Replay(tx), AnyRx::Replay(rx)))
        }
        LineSpec::UsbSim { mps, path } => {
            let (out, inp, device) = sim::endpoints(mps);
            let name = spec.to_string();
            // Packets the host sends before the device has opened its line wait in its queue.
            tokio::spawn(async move {
                if let Err(e) = device.bridge(&path, protocol).await {
                    tracing::warn!(line = %name, "simulated USB device: {e}");
                }
            });
            let (tx, rx) = usb::link(out, inp, protocol, usb::UsbTimeouts::default(), spec);
            Ok((AnyTx::Sim(tx), AnyRx::Sim(rx)))
        }
    }
}
