//! The twin: one deck shared by the STAR, the EVO and the plate reader, and the byte-level ports that
//! serve each of them from an `embedded-io` stream.
//!
//! Time comes in as an argument (`now_ms`), as everywhere in cellos: the host passes a monotonic clock,
//! a microcontroller a tick counter (or 0, with [`crate::star::Timing::INSTANT`]).

use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use cellos_core::proto::wire::{self, Counters, Identity, Link, Refusal, Request, Response, Tag, VERSION};
use embedded_io::{Read, ReadReady, Write};

use crate::deck::{Deck, default_deck};
use crate::evo::Evo;
use crate::faults::{Action, Injector, corrupt_evo, corrupt_star, corrupt_wire};
use crate::reader;
use crate::star::{Star, Timing};

/// The whole twin: deck, instruments, counters, fault injectors and the noise seed.
#[derive(Clone, Debug)]
pub struct Twin<const P: usize, const W: usize> {
    /// The shared deck.
    pub deck: Deck<P, W>,
    /// The STAR.
    pub star: Star,
    /// The EVO.
    pub evo: Evo,
    /// Execution counters.
    pub counters: Counters,
    /// Faults on STAR replies.
    pub star_faults: Injector,
    /// Faults on EVO replies.
    pub evo_faults: Injector,
    /// Faults on reader replies (never on control requests).
    pub wire_faults: Injector,
    /// Seed of all reader noise.
    pub seed: u64,
    /// This twin's instance number, reported by `Identify` (its low 32 bits are the STAR's serial
    /// number). A host twin draws it when it starts.
    pub instance: u64,
    /// A `Shutdown` request arrived: the server stops after answering it.
    pub shutdown: bool,
    /// Simulated hours per real hour for incubations; 0 (the default) makes an incubation instant.
    /// With a scale, `Incubate` puts the plate in the incubator and answers at once; the plate's clock
    /// then runs `time_scale` times real time until the hours are done (24 h take 24/N real hours).
    pub time_scale: f64,
    /// The plates in the incubator, by deck index.
    pub incubating: [Option<Incubation>; P],
}

/// A real-time incubation under way.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Incubation {
    /// When it began (the port's clock, ms).
    pub started_ms: u64,
    /// The plate's clock then, h.
    pub from_h: f64,
    /// How long, h.
    pub hours: f64,
}

impl<const P: usize, const W: usize> Twin<P, W> {
    /// A twin on the built-in deck.
    pub fn new(seed: u64, timing: Timing) -> Self {
        Self::with_deck(default_deck(), seed, timing)
    }

    /// A twin on a given deck.
    pub fn with_deck(deck: Deck<P, W>, seed: u64, timing: Timing) -> Self {
        Twin { deck, ..Self::empty(seed, timing) }
    }

    /// A twin with an empty deck, built at compile time: a microcontroller keeps it in a static and
    /// fills the deck in place, without a stack-sized copy of the whole state.
    pub const fn empty(seed: u64, timing: Timing) -> Self {
        Twin {
            deck: Deck::empty(),
            star: Star::new(timing),
            evo: Evo::new(),
            counters: Counters::ZERO,
            star_faults: Injector::new(),
            evo_faults: Injector::new(),
            wire_faults: Injector::new(),
            seed,
            instance: 0,
            shutdown: false,
            time_scale: 0.0,
            incubating: [None; P],
        }
    }

    /// Brings the plates in the incubator up to `now_ms`: a plate's clock runs at `time_scale` times real
    /// time, and a plate whose hours are done leaves the incubator with its clock at exactly `from + hours`
    /// (the same number an instant incubation gives).
    pub fn settle(&mut self, now_ms: u64) {
        for (i, slot) in self.incubating.iter_mut().enumerate() {
            let Some(inc) = *slot else { continue };
            let Some(p) = self.deck.plates.get_mut(i) else {
                *slot = None;
                continue;
            };
            let elapsed_h = now_ms.saturating_sub(inc.started_ms) as f64 * self.time_scale / 3_600_000.0;
            if elapsed_h >= inc.hours {
                p.clock_h = inc.from_h + inc.hours;
                *slot = None;
            } else {
                p.clock_h = inc.from_h + elapsed_h;
            }
        }
    }

    fn in_incubator(&self, plate: u8) -> bool {
        self.incubating.get(usize::from(plate)).is_some_and(Option::is_some)
    }

    /// Sets the instance number (and the STAR serial number derived from it).
    pub fn set_instance(&mut self, instance: u64) {
        self.instance = instance;
        self.star.serial_number = instance as u32;
    }

    /// Answers one `wire` request at `now_ms` (the port's clock; it matters only with a time scale).
    pub fn request(&mut self, req: Request, now_ms: u64) -> Response {
        let refused = Response::Refused;
        self.settle(now_ms);
        match req {
            Request::Hello => Response::Hello { version: VERSION, plates: self.deck.plates.len() as u8 },
            Request::Incubate { plate, .. } | Request::Read { plate, .. } if self.in_incubator(plate) => {
                Response::Refused(Refusal::InIncubator)
            }
            Request::Incubate { plate, hours } if self.time_scale > 0.0 => {
                let from_h = match self.deck.plates.get(usize::from(plate)) {
                    Some(p) => p.clock_h,
                    None => return Response::Refused(Refusal::NoSuchPlate),
                };
                if !(hours.is_finite() && hours >= 0.0) {
                    return Response::Refused(Refusal::BadValue);
                }
                if let Some(slot) = self.incubating.get_mut(usize::from(plate)) {
                    *slot = Some(Incubation { started_ms: now_ms, from_h, hours });
                }
                self.settle(now_ms);
                Response::Done
            }
            Request::Incubate { plate, hours } => {
                reader::incubate(&mut self.deck, plate, hours).map_or_else(refused, |()| Response::Done)
            }
            Request::Read { plate, well, readout } => {
                reader::read(&self.deck, self.seed, plate, well, readout).map_or_else(refused, Response::Value)
            }
            Request::WellState { plate, well } => {
                reader::well_contents(&self.deck, plate, well).map_or_else(refused, Response::Well)
            }
            Request::SetFaults(f) => {
                self.star_faults.set(f);
                self.evo_faults.set(f);
                Response::Done
            }
            Request::Counters => Response::Counters(self.counters),
            Request::Reboot => {
                self.star.reboot();
                self.evo.reboot();
                Response::Done
            }
            Request::TroughState { trough } => match self.deck.troughs.get(usize::from(trough)) {
                Some(t) => Response::Well(cellos_core::proto::wire::WellContents {
                    volume_ul: t.liquid.volume_ul,
                    compound_um: t.liquid.concentration_um(),
                    cells: t.liquid.cells,
                    incubated_h: 0.0,
                }),
                None => Response::Refused(Refusal::NoSuchWell),
            },
            Request::Identify => Response::Identity(Identity { instance: self.instance, seed: self.seed }),
            Request::SetLinkFaults { link, faults } => {
                match link {
                    Link::Star => self.star_faults.set(faults),
                    Link::Evo => self.evo_faults.set(faults),
                    Link::Reader => self.wire_faults.set(faults),
                }
                Response::Done
            }
            Request::Shutdown => {
                self.shutdown = true;
                Response::Done
            }
            Request::Setup { seed, instance, lines } => self.setup(seed, instance, lines),
        }
    }

    /// Whether the twin has done anything a setup would undo: executed a command, or moved a plate's
    /// clock.
    pub fn started(&self) -> bool {
        self.counters.commands > 0
            || self.deck.plates.iter().any(|p| p.clock_h != 0.0)
            || self.incubating.iter().any(Option::is_some)
    }

    /// [`Request::Setup`]: the seed, the instance number and the campaign deck of `lines`, built in
    /// place.
    fn setup(&mut self, seed: u64, instance: u64, lines: cellos_core::deck::campaign::Lines) -> Response {
        if self.started() {
            return Response::Refused(Refusal::Started);
        }
        if P < cellos_core::deck::campaign::MAX_PLATES || W < 96 {
            return Response::Refused(Refusal::BadValue);
        }
        let Ok(file) = lines.deck_file() else { return Response::Refused(Refusal::BadValue) };
        if file.build_into(&mut self.deck).is_err() {
            self.deck.plates.clear();
            self.deck.troughs.clear();
            self.deck.tip_racks.clear();
            return Response::Refused(Refusal::BadValue);
        }
        self.seed = seed;
        self.set_instance(instance);
        Response::Done
    }

    /// Answers one `wire` frame (without its delimiter, decoded in place) into `out`, in the frame's
    /// version and with its id; returns the length of the response frame and the request it answered
    /// (`None` for a damaged frame, answered untagged with `Refused(BadFrame)`).
    pub fn wire_frame(&mut self, frame: &mut [u8], out: &mut [u8], now_ms: u64) -> (usize, Option<Request>) {
        let (tag, response, req) = match wire::decode_tagged::<Request>(frame) {
            Ok((tag, req)) => (tag, self.request(req, now_ms), Some(req)),
            Err(_) => (Tag::Untagged, Response::Refused(Refusal::BadFrame), None),
        };
        (wire::encode_tagged(tag, &response, out).unwrap_or(0), req)
    }
}

/// Bytes read per poll.
const CHUNK: usize = 64;

/// Serves the STAR on a byte stream: commands end with CR or LF, replies with CR LF.
pub struct StarPort {
    acc: Accumulator<{ cellos_core::proto::star::MAX_MESSAGE }>,
}

impl Default for StarPort {
    fn default() -> Self {
        Self::new()
    }
}

impl StarPort {
    /// A port with nothing buffered.
    pub const fn new() -> Self {
        StarPort { acc: Accumulator::new(Framing::Lines) }
    }

    /// Feeds received bytes: executes every complete command.
    pub fn receive<const P: usize, const W: usize>(&mut self, twin: &mut Twin<P, W>, mut input: &[u8], now_ms: u64) {
        loop {
            match self.acc.feed(input) {
                Feed::Consumed => return,
                Feed::Frame { frame, remaining } => {
                    twin.star_faults.on_command(now_ms);
                    let code = [frame.get(2).copied().unwrap_or(0), frame.get(3).copied().unwrap_or(0)];
                    let delay = late(twin, Link::Star, code);
                    let line = core::str::from_utf8(frame).unwrap_or("");
                    twin.star.command(line, now_ms + delay, &mut twin.deck, &mut twin.counters);
                    input = remaining;
                }
                Feed::Overflow { remaining } => input = remaining,
            }
        }
    }

    /// Writes every reply due at `now_ms`, with faults applied.
    pub fn transmit<const P: usize, const W: usize, IO: Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if twin.star_faults.stalled(now_ms) {
            return Ok(());
        }
        while let Some(p) = twin.star.next_due(now_ms) {
            let mut bytes: heapless::Vec<u8, { crate::star::MAX_REPLY + 2 }> = heapless::Vec::new();
            let _ = bytes.extend_from_slice(p.text.as_bytes());
            let _ = bytes.extend_from_slice(b"\r\n");
            let action = twin.star_faults.action(p.code);
            send(io, &mut twin.counters, action, &mut bytes, corrupt_star)?;
        }
        io.flush()
    }

    /// One round of service: read what is ready, execute, write what is due.
    pub fn poll<const P: usize, const W: usize, IO: Read + ReadReady + Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if io.read_ready()? {
            let mut buf = [0u8; CHUNK];
            let n = io.read(&mut buf)?;
            self.receive(twin, &buf[..n], now_ms);
        }
        self.transmit(twin, io, now_ms)
    }
}

/// The delay of the reply to a command `code` on `link`, counting a late reply as a fault applied.
fn late<const P: usize, const W: usize>(twin: &mut Twin<P, W>, link: Link, code: [u8; 2]) -> u64 {
    let injector = match link {
        Link::Star => &mut twin.star_faults,
        Link::Evo => &mut twin.evo_faults,
        Link::Reader => &mut twin.wire_faults,
    };
    let (delay, counted) = injector.reply_delay(code);
    if counted {
        twin.counters.faults_applied = twin.counters.faults_applied.wrapping_add(1);
    }
    delay
}

/// Writes one reply under a fault action: dropped, corrupted (by `corrupt`) or sent twice, and counted
/// when it is anything but a plain send.
fn send<IO: Write>(
    io: &mut IO,
    counters: &mut Counters,
    action: Action,
    reply: &mut [u8],
    corrupt: fn(&mut [u8]),
) -> Result<(), IO::Error> {
    if action != Action::Send {
        counters.faults_applied = counters.faults_applied.wrapping_add(1);
    }
    match action {
        Action::Drop => return Ok(()),
        Action::Corrupt => corrupt(reply),
        _ => {}
    }
    io.write_all(reply)?;
    if action == Action::Duplicate {
        io.write_all(reply)?;
    }
    Ok(())
}

/// Serves the EVO on a byte stream of STX…NUL frames; every command is answered at once.
pub struct EvoPort {
    acc: Accumulator<128>,
    held: heapless::Deque<(u64, heapless::Vec<u8, 96>), 4>,
}

impl Default for EvoPort {
    fn default() -> Self {
        Self::new()
    }
}

impl EvoPort {
    /// A port with nothing buffered.
    pub fn new() -> Self {
        EvoPort { acc: Accumulator::new(Framing::StxNul), held: heapless::Deque::new() }
    }

    /// Feeds received bytes; replies are held until `transmit`.
    pub fn receive<const P: usize, const W: usize>(&mut self, twin: &mut Twin<P, W>, mut input: &[u8], now_ms: u64) {
        loop {
            match self.acc.feed(input) {
                Feed::Consumed => return,
                Feed::Frame { frame, remaining } => {
                    twin.evo_faults.on_command(now_ms);
                    let code = [frame.get(1).copied().unwrap_or(0), frame.get(2).copied().unwrap_or(0)];
                    let delay = late(twin, Link::Evo, code);
                    let reply = twin.evo.frame(frame, &mut twin.deck, &mut twin.counters);
                    let due = now_ms + delay;
                    if self.held.is_full() {
                        self.held.pop_front();
                    }
                    let _ = self.held.push_back((due, reply));
                    input = remaining;
                }
                Feed::Overflow { remaining } => input = remaining,
            }
        }
    }

    /// Writes the replies due at `now_ms`, with faults applied.
    pub fn transmit<const P: usize, const W: usize, IO: Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if twin.evo_faults.stalled(now_ms) {
            return Ok(());
        }
        while self.held.front().is_some_and(|(due, _)| *due <= now_ms) {
            let Some((_, mut frame)) = self.held.pop_front() else { break };
            let code = [frame.get(1).copied().unwrap_or(0), frame.get(2).copied().unwrap_or(0)];
            let action = twin.evo_faults.action(code);
            send(io, &mut twin.counters, action, &mut frame, corrupt_evo)?;
        }
        io.flush()
    }

    /// One round of service.
    pub fn poll<const P: usize, const W: usize, IO: Read + ReadReady + Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if io.read_ready()? {
            let mut buf = [0u8; CHUNK];
            let n = io.read(&mut buf)?;
            self.receive(twin, &buf[..n], now_ms);
        }
        self.transmit(twin, io, now_ms)
    }
}

/// Serves the reader and twin control on a `wire` byte stream. Every request is executed when it
/// arrives; its response is held until it is due (reader faults may delay it) and sent by `transmit`.
pub struct WirePort {
    acc: Accumulator<{ wire::MAX_FRAME }>,
    held: heapless::Deque<(u64, Action, heapless::Vec<u8, { wire::MAX_FRAME }>), 8>,
    /// Reader faults apply (not on a bench port).
    faulty: bool,
}

impl Default for WirePort {
    fn default() -> Self {
        Self::new()
    }
}

impl WirePort {
    /// A port with nothing buffered.
    pub const fn new() -> Self {
        WirePort { acc: Accumulator::new(Framing::Nul), held: heapless::Deque::new(), faulty: true }
    }

    /// A port for the bench: what an operator does by hand in a simulation (moves a plate into the
    /// incubator, reads it on a stand-alone reader) over the same requests, never touched by faults.
    pub const fn bench() -> Self {
        WirePort { acc: Accumulator::new(Framing::Nul), held: heapless::Deque::new(), faulty: false }
    }

    /// Feeds received bytes: executes every complete request and holds its response.
    pub fn receive<const P: usize, const W: usize>(&mut self, twin: &mut Twin<P, W>, mut input: &[u8], now_ms: u64) {
        loop {
            let mut out = [0u8; wire::MAX_FRAME];
            let (len, req) = match self.acc.feed(input) {
                Feed::Consumed => return,
                Feed::Frame { frame, remaining } => {
                    input = remaining;
                    let mut copy = [0u8; wire::MAX_FRAME];
                    let n = frame.len().min(copy.len());
                    copy[..n].copy_from_slice(&frame[..n]);
                    twin.wire_frame(&mut copy[..n], &mut out, now_ms)
                }
                Feed::Overflow { remaining } => {
                    input = remaining;
                    (wire::encode(&Response::Refused(Refusal::BadFrame), &mut out).unwrap_or(0), None)
                }
            };
            // Faults touch reader requests only: a test's control requests always get through.
            let (action, delay) = match req {
                Some(r) if self.faulty && !r.is_control() => {
                    twin.wire_faults.on_command(now_ms);
                    let delay = late(twin, Link::Reader, r.code());
                    (twin.wire_faults.action(r.code()), delay)
                }
                _ => (Action::Send, 0),
            };
            let mut frame = heapless::Vec::new();
            let _ = frame.extend_from_slice(&out[..len]);
            if self.held.is_full() {
                self.held.pop_front();
            }
            let _ = self.held.push_back((now_ms + delay, action, frame));
        }
    }

    /// Writes the responses due at `now_ms`, in order, with faults applied.
    pub fn transmit<const P: usize, const W: usize, IO: Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if self.faulty && twin.wire_faults.stalled(now_ms) {
            return Ok(());
        }
        while self.held.front().is_some_and(|(due, ..)| *due <= now_ms) {
            let Some((_, action, mut frame)) = self.held.pop_front() else { break };
            // The delimiter stays: a corrupted frame must still end where it ends.
            let corrupt: fn(&mut [u8]) = |f| {
                let body = f.len().saturating_sub(1);
                corrupt_wire(&mut f[..body]);
            };
            send(io, &mut twin.counters, action, &mut frame[..], corrupt)?;
        }
        io.flush()
    }

    /// Whether responses are waiting.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// One round of service.
    pub fn poll<const P: usize, const W: usize, IO: Read + ReadReady + Write>(
        &mut self,
        twin: &mut Twin<P, W>,
        io: &mut IO,
        now_ms: u64,
    ) -> Result<(), IO::Error> {
        if io.read_ready()? {
            let mut buf = [0u8; CHUNK];
            let n = io.read(&mut buf)?;
            self.receive(twin, &buf[..n], now_ms);
        }
        self.transmit(twin, io, now_ms)
    }
}
