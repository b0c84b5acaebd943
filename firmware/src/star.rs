//! The STAR master as the twin plays it: 8 pipetting channels on the shared deck.
//!
//! Commands are executed when they arrive; their replies are released when the command's simulated
//! duration has passed (see [`Timing`]). Movement commands (initialise, tips, aspirate, dispense) run one
//! after another, each starting when the previous one ends; status queries (`C0QW`, `C0RT`, `C0RF`,
//! `C0RI`, `C0QM`, `C0RM`) and `C0TT` answer at once, even while a movement is under way. So a `C0RF` sent after a
//! `C0DI` is answered first: replies complete out of order, matched by id, as on the instrument.
//!
//! The twin checks a whole command before it changes anything: an error reply means nothing happened.
//! Error replies (ASSUMPTIONS where `PROTOCOLS.md` names only a trace are marked *):
//!
//! | condition | reply |
//! |---|---|
//! | unknown command | `er01/30` |
//! | missing or malformed parameter | `er01/31` |
//! | value out of range (tip type, list longer than 8) | `er01/32` |
//! | command without id | `id0000er01/35` |
//! | not initialised (before `C0VI`/`C0DI`) | `er03/00` * |
//! | tip already fitted | `er99/00 Pn07/76` |
//! | no tip on the channel, or no tip at the pick-up spot | `er99/00 Pn08/75` |
//! | too little liquid in the well | `er99/00 Pn06/71` |
//! | volume beyond the tip's capacity, or beyond a well's | `er99/00 Pn15/53` * |
//! | dispense more than the tip holds | `er99/00 Pn15/32` * |
//! | position not on the deck | `er99/00 Pn27/54` |
//! | iSWAP: no plate at the get position, or none held at put | `er21/00` |
//! | iSWAP: already holding a plate | `er22/00` |
//! | iSWAP: put position not free | `er24/00` |
//! | channels of one command out of order or under 9 mm apart | every channel `27/54` |
//!
//! The twin also keeps the **lab time** its liquid-handling commands would take on a real STAR
//! (`Counters::lab_ms`, by `cellos_core::labtime::Profile::STAR`), whatever its own reply timing.

use core::fmt::Write;

use cellos_core::labtime::{self, Profile};
use cellos_core::proto::star::StarMessage;
use cellos_core::proto::star_command::{Answer, ChannelAt, Command, Pipetting, PlateAt, TipMove};
use cellos_core::proto::wire::Counters;

pub use crate::deck::Tip;
use crate::deck::{Deck, Effect, Location, Operation, Rule, Rules, check_spacing};

/// The bench the twin's lab time is kept for.
const LAB: Profile = Profile::STAR;

/// Pipetting channels of the twin.
pub const CHANNELS: usize = 8;
/// Replies waiting for their time, at most.
pub const MAX_PENDING: usize = 64;
/// Bytes of reply text waiting, at most: the replies are kept end to end, as in an instrument's output
/// buffer, so 64 short replies fit, or a dozen of the longest. When a reply does not fit, the oldest
/// waiting are lost, as when a real buffer overruns.
pub const PENDING_BYTES: usize = 4096;
/// Longest reply.
pub const MAX_REPLY: usize = 192;

/// A reply text.
pub type ReplyText = heapless::String<MAX_REPLY>;

/// Simulated durations of commands, ms.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// `C0VI` pre-initialisation.
    pub pre_initialise_ms: u32,
    /// `C0DI` initialisation.
    pub initialise_ms: u32,
    /// `C0TP`, `C0TR`.
    pub tip_ms: u32,
    /// `C0AS`, `C0DS`.
    pub pipette_ms: u32,
}

impl Timing {
    /// Durations that keep tests quick but still order replies like the instrument.
    pub const DEFAULT: Timing = Timing { pre_initialise_ms: 300, initialise_ms: 200, tip_ms: 20, pipette_ms: 30 };
    /// Everything at once (a microcontroller without a clock).
    pub const INSTANT: Timing = Timing { pre_initialise_ms: 0, initialise_ms: 0, tip_ms: 0, pipette_ms: 0 };
}

/// A reply waiting for its time.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// When it may be sent, ms.
    pub due_ms: u64,
    /// Command code it answers (for fault filters).
    pub code: [u8; 2],
    /// The reply.
    pub text: ReplyText,
}

/// The STAR side of the twin.
#[derive(Clone, Debug)]
pub struct Star {
    /// Durations.
    pub timing: Timing,
    initialised: bool,
    tip_types: [u32; 100],
    /// Tip per channel.
    pub channels: [Option<Tip>; CHANNELS],
    busy_until_ms: u64,
    pending: ReplyQueue,
    /// The plate the iSWAP holds (deck plate index).
    pub held_plate: Option<usize>,
    /// The instrument serial number reported by `C0RI` (the host twin draws it when it starts).
    pub serial_number: u32,
}

/// The firmware version the twin reports (`C0RF`).
pub const FIRMWARE_VERSION: &str = "1.0.0 CELLOS TWIN";

/// The replies waiting: their times and codes, and their texts end to end in one buffer (a fixed slot
/// of [`MAX_REPLY`] bytes each would take three times the memory for the same replies).
#[derive(Clone, Debug)]
struct ReplyQueue {
    slots: heapless::Vec<Slot, MAX_PENDING>,
    text: heapless::Vec<u8, PENDING_BYTES>,
}

/// One waiting reply: its text is the `len` bytes after those of the slots before it.
#[derive(Copy, Clone, Debug)]
struct Slot {
    due_ms: u64,
    code: [u8; 2],
    len: u8,
}

const _: () = assert!(MAX_REPLY <= u8::MAX as usize && MAX_REPLY <= PENDING_BYTES);

impl ReplyQueue {
    const fn new() -> Self {
        ReplyQueue { slots: heapless::Vec::new(), text: heapless::Vec::new() }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.text.clear();
    }

    /// Queues a reply, losing the oldest ones waiting while it does not fit.
    fn push(&mut self, p: &Pending) {
        let bytes = p.text.as_bytes();
        while !self.slots.is_empty() && (self.slots.is_full() || self.text.len() + bytes.len() > PENDING_BYTES) {
            self.remove(0);
        }
        if self.text.extend_from_slice(bytes).is_ok() {
            let _ = self.slots.push(Slot { due_ms: p.due_ms, code: p.code, len: bytes.len() as u8 });
        }
    }

    /// Takes out the `i`-th reply waiting.
    fn remove(&mut self, i: usize) -> Pending {
        let start: usize = self.slots[..i].iter().map(|s| usize::from(s.len)).sum();
        let slot = self.slots.remove(i);
        let end = start + usize::from(slot.len);
        let mut text = ReplyText::new();
        let _ = text.push_str(core::str::from_utf8(&self.text[start..end]).unwrap_or_default());
        let total = self.text.len();
        self.text.copy_within(end..total, start);
        self.text.truncate(total - usize::from(slot.len));
        Pending { due_ms: slot.due_ms, code: slot.code, text }
    }
}

enum Outcome {
    /// A reply body after `er00/00` (data parameters), released after `duration_ms`.
    Ok { data: heapless::String<96>, duration_ms: u32, movement: bool },
    /// A master error.
    Master(u8, u8),
    /// Channel errors: (channel index, code, trace).
    Channels(heapless::Vec<(usize, u8, u8), CHANNELS>),
}

fn channel_module(i: usize) -> [u8; 2] {
    let n = i as u8 + 1;
    [b'P', if n < 10 { b'0' + n } else { b'A' + n - 10 }]
}

impl Star {
    /// A powered-on, uninitialised STAR.
    pub const fn new(timing: Timing) -> Star {
        Star {
            timing,
            initialised: false,
            tip_types: [0; 100],
            channels: [None; CHANNELS],
            busy_until_ms: 0,
            pending: ReplyQueue::new(),
            held_plate: None,
            serial_number: 0,
        }
    }

    /// Forgets replies in flight and any movement under way, as after a power cycle. The tips stay
    /// where they physically are.
    pub fn reboot(&mut self) {
        self.pending.clear();
        self.busy_until_ms = 0;
        self.initialised = false;
    }

    /// Replies waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Executes one command line and queues its reply. A line that is not a STAR message at all (no
    /// module and code) is counted as an error and answered with nothing.
    pub fn command<const P: usize, const W: usize>(
        &mut self,
        line: &str,
        now_ms: u64,
        deck: &mut Deck<P, W>,
        counters: &mut Counters,
    ) {
        counters.commands = counters.commands.wrapping_add(1);
        let msg = match StarMessage::parse(line) {
            Ok(m) => m,
            Err(_) => {
                let b = line.as_bytes();
                counters.errors = counters.errors.wrapping_add(1);
                if b.len() >= 4 && b[..4].iter().all(|c| c.is_ascii_alphanumeric()) {
                    let id =
                        line.get(6..10).filter(|_| line.get(4..6) == Some("id")).and_then(|s| s.parse::<u16>().ok());
                    self.queue_error([b[0], b[1]], [b[2], b[3]], id.unwrap_or(0), 1, 31, now_ms);
                }
                return;
            }
        };
        let Some(id) = msg.id else {
            counters.errors = counters.errors.wrapping_add(1);
            self.queue_error(msg.module, msg.code, 0, 1, 35, now_ms);
            return;
        };
        let outcome = self.execute(&msg, deck, counters);
        let (module, code) = (msg.module, msg.code);
        let mut text = ReplyText::new();
        let _ =
            write!(text, "{}{}{}{}id{:04}", module[0] as char, module[1] as char, code[0] as char, code[1] as char, id);
        let due = match outcome {
            Outcome::Ok { data, duration_ms, movement } => {
                let _ = write!(text, "er00/00{data}");
                if movement {
                    let start = self.busy_until_ms.max(now_ms);
                    self.busy_until_ms = start + u64::from(duration_ms);
                    self.busy_until_ms
                } else {
                    now_ms
                }
            }
            Outcome::Master(c, t) => {
                counters.errors = counters.errors.wrapping_add(1);
                let _ = write!(text, "er{c:02}/{t:02}");
                now_ms
            }
            Outcome::Channels(errs) => {
                counters.errors = counters.errors.wrapping_add(1);
                let _ = write!(text, "er99/00");
                for (ch, c, t) in errs {
                    let m = channel_module(ch);
                    let _ = write!(text, " {}{}{c:02}/{t:02}", m[0] as char, m[1] as char);
                }
                self.busy_until_ms.max(now_ms)
            }
        };
        self.queue(Pending { due_ms: due, code, text });
    }

    fn queue_error(&mut self, module: [u8; 2], code: [u8; 2], id: u16, c: u8, t: u8, now_ms: u64) {
        let mut text = ReplyText::new();
        let _ = write!(
            text,
            "{}{}{}{}id{:04}er{c:02}/{t:02}",
            module[0] as char, module[1] as char, code[0] as char, code[1] as char, id
        );
        self.queue(Pending { due_ms: now_ms, code, text });
    }

    fn queue(&mut self, p: Pending) {
        self.pending.push(&p);
    }

    /// Takes the next reply that is due at `now_ms`, earliest first.
    pub fn next_due(&mut self, now_ms: u64) -> Option<Pending> {
        let i =
            self.pending.slots.iter().enumerate().filter(|(_, p)| p.due_ms <= now_ms).min_by_key(|(_, p)| p.due_ms)?.0;
        Some(self.pending.remove(i))
    }

    /// When the next reply falls due, if any is waiting.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.pending.slots.iter().map(|p| p.due_ms).min()
    }

    fn execute<const P: usize, const W: usize>(
        &mut self,
        m: &StarMessage<'_>,
        deck: &mut Deck<P, W>,
        counters: &mut Counters,
    ) -> Outcome {
        let ok = |data: &str, duration_ms: u32, movement: bool| {
            let mut d = heapless::String::new();
            let _ = d.push_str(data);
            Outcome::Ok { data: d, duration_ms, movement }
        };
        // A movement before initialisation is refused whatever its parameters.
        if m.module == *b"C0" && matches!(&m.code, b"TP" | b"TR" | b"AS" | b"DS" | b"PP" | b"PR") && !self.initialised {
            return Outcome::Master(3, 0);
        }
        let command = match Command::parse(m, CHANNELS) {
            Ok(c) => c,
            Err(e) => {
                let (code, trace) = e.code();
                return Outcome::Master(code, trace);
            }
        };
        match command {
            Command::FirmwareVersion => {
                self.answer(Answer::Firmware(heapless::String::try_from(FIRMWARE_VERSION).unwrap_or_default()))
            }
            // ASSUMPTION: the layout PyLabRobot reads (`si` then `sn`); `sn` is 8 hex digits here.
            Command::Identification => {
                let mut serial = heapless::String::new();
                let _ = write!(serial, "{:08X}", self.serial_number);
                self.answer(Answer::Identification { si: 0, serial })
            }
            Command::QueryInitialised => self.answer(Answer::Initialised(self.initialised)),
            Command::MachineConfiguration | Command::ExtendedConfiguration => self.answer(Answer::Nothing),
            Command::TipPresence => {
                self.answer(Answer::TipPresence(self.channels.iter().map(Option::is_some).collect()))
            }
            Command::PreInitialise => {
                self.initialised = true;
                ok("", self.timing.pre_initialise_ms, true)
            }
            Command::Initialise => {
                self.initialised = true;
                ok("", self.timing.initialise_ms, true)
            }
            Command::DefineTip(t) => {
                self.tip_types[usize::from(t.index)] = t.max_volume_01ul;
                Outcome::Ok { data: heapless::String::new(), duration_ms: 0, movement: false }
            }
            Command::GetPlate(p) => self.get_plate(&p, deck),
            Command::PutPlate(p) => self.put_plate(&p, deck),
            Command::PickUpTips(t) => self.pick_up(&t, deck, counters),
            Command::DiscardTips(t) => self.discard(&t, deck, counters),
            Command::Aspirate(p) => self.move_liquid(&p, true, deck, counters),
            Command::Dispense(p) => self.move_liquid(&p, false, deck, counters),
        }
    }

    /// A query's answer, at once.
    fn answer(&self, a: Answer) -> Outcome {
        let mut data = heapless::String::new();
        let _ = a.emit(&mut data);
        Outcome::Ok { data, duration_ms: 0, movement: false }
    }

    /// `C0PP`: the iSWAP grips the plate whose A1 is at (`xs`, `yj`).
    fn get_plate<const P: usize, const W: usize>(&mut self, at: &PlateAt, deck: &Deck<P, W>) -> Outcome {
        let (x, y) = (at.x_01mm as i32, at.y_01mm as i32);
        if self.held_plate.is_some() {
            return Outcome::Master(22, 0);
        }
        match deck.locate(x, y) {
            Some(Location::Well { plate, index: 0 }) => {
                self.held_plate = Some(plate);
                Outcome::Ok { data: heapless::String::new(), duration_ms: self.timing.tip_ms, movement: true }
            }
            _ => Outcome::Master(21, 0),
        }
    }

    /// `C0PR`: the iSWAP puts the plate it holds with its A1 at (`xs`, `yj`), which must be free deck.
    fn put_plate<const P: usize, const W: usize>(&mut self, at: &PlateAt, deck: &mut Deck<P, W>) -> Outcome {
        let (x, y) = (at.x_01mm as i32, at.y_01mm as i32);
        let Some(p) = self.held_plate else { return Outcome::Master(21, 0) };
        let free = deck.plate_footprint(p, x, y).is_some_and(|r| deck.is_free(r, Some(p)));
        if !free {
            return Outcome::Master(24, 0);
        }
        deck.plates[p].x_01mm = x;
        deck.plates[p].y_01mm = y;
        self.held_plate = None;
        Outcome::Ok { data: heapless::String::new(), duration_ms: self.timing.tip_ms, movement: true }
    }

    fn fail(errs: heapless::Vec<(usize, u8, u8), CHANNELS>) -> Option<Outcome> {
        (!errs.is_empty()).then_some(Outcome::Channels(errs))
    }

    /// The STAR's answer to a broken rule: `(code, trace)` of the channel's error.
    fn code(rule: Rule) -> (u8, u8) {
        match rule {
            Rule::TipAlreadyFitted => (7, 76),
            Rule::NoTip | Rule::NoTipAtSpot => (8, 75),
            Rule::NotEnoughLiquid => (6, 71),
            Rule::TipCapacity | Rule::WellCapacity | Rule::BadVolume => (15, 53),
            Rule::TipEmpty => (15, 32),
            Rule::OffDeck | Rule::NoChannel | Rule::ChannelSpacing => (27, 54),
        }
    }

    /// Checks every channel's operation (each after the earlier ones of the command) and, if none
    /// breaks a rule, applies them all; otherwise changes nothing and answers every channel's error.
    fn pipette<const P: usize, const W: usize>(
        &mut self,
        ops: &[Operation],
        deck: &mut Deck<P, W>,
        duration_ms: u32,
    ) -> Outcome {
        let mut effects: heapless::Vec<Effect, CHANNELS> = heapless::Vec::new();
        let mut errs = heapless::Vec::new();
        for op in ops {
            match Rules::INSTRUMENT.check(deck, &self.channels, op, &effects) {
                Ok(e) => {
                    let _ = effects.push(e);
                }
                Err(rule) => {
                    let (code, trace) = Self::code(rule);
                    let _ = errs.push((op.channel(), code, trace));
                }
            }
        }
        if let Some(o) = Self::fail(errs) {
            return o;
        }
        for e in &effects {
            crate::deck::apply(deck, &mut self.channels, e);
        }
        Outcome::Ok { data: heapless::String::new(), duration_ms, movement: true }
    }

    fn pick_up<const P: usize, const W: usize>(
        &mut self,
        t: &TipMove,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> Outcome {
        let tip_type = self.tip_types[usize::from(t.tip_type)];
        if tip_type == 0 {
            return Outcome::Master(1, 32);
        }
        let max_capacity_ul = f64::from(tip_type) / 10.0;
        if let Some(refused) = Self::spacing(&t.channels) {
            return refused;
        }
        let ops: heapless::Vec<Operation, CHANNELS> = t
            .channels
            .iter()
            .map(|ch| Operation::PickUp { channel: usize::from(ch.channel), at: Self::at(deck, ch), max_capacity_ul })
            .collect();
        let out = self.pipette(&ops, deck, self.timing.tip_ms);
        if matches!(out, Outcome::Ok { .. }) {
            c.tip_pickups = c.tip_pickups.wrapping_add(ops.len() as u32);
            c.lab_ms += u64::from(LAB.command_ms(labtime::Command::PickUp));
        }
        out
    }

    fn discard<const P: usize, const W: usize>(
        &mut self,
        t: &TipMove,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> Outcome {
        if let Some(refused) = Self::spacing(&t.channels) {
            return refused;
        }
        let ops: heapless::Vec<Operation, CHANNELS> = t
            .channels
            .iter()
            .map(|ch| Operation::Drop { channel: usize::from(ch.channel), to: Self::at(deck, ch) })
            .collect();
        let out = self.pipette(&ops, deck, self.timing.tip_ms);
        if matches!(out, Outcome::Ok { .. }) {
            c.tip_drops = c.tip_drops.wrapping_add(ops.len() as u32);
            c.lab_ms += u64::from(LAB.command_ms(labtime::Command::Drop));
        }
        out
    }

    /// A command whose channels are out of order or closer than the arm allows is refused on every
    /// channel, before anything moves.
    fn spacing(channels: &[ChannelAt]) -> Option<Outcome> {
        let at = channels.iter().map(|c| (usize::from(c.channel), c.x_01mm as i32, c.y_01mm as i32));
        check_spacing(at).err()?;
        let (code, trace) = Self::code(Rule::ChannelSpacing);
        Self::fail(channels.iter().map(|c| (usize::from(c.channel), code, trace)).collect())
    }

    /// Where a channel of a command goes on the deck.
    fn at<const P: usize, const W: usize>(deck: &Deck<P, W>, ch: &ChannelAt) -> Location {
        deck.at(ch.x_01mm as i32, ch.y_01mm as i32)
    }

    /// `C0AS` (`aspirate`) or `C0DS`.
    fn move_liquid<const P: usize, const W: usize>(
        &mut self,
        p: &Pipetting,
        aspirate: bool,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> Outcome {
        if let Some(refused) = Self::spacing(&p.channels) {
            return refused;
        }
        let ops: heapless::Vec<Operation, CHANNELS> = p
            .channels
            .iter()
            .zip(&p.volumes_01ul)
            .map(|(ch, &v)| {
                let (channel, at, volume_ul) = (usize::from(ch.channel), Self::at(deck, ch), f64::from(v) / 10.0);
                if aspirate {
                    Operation::Aspirate { channel, from: at, volume_ul }
                } else {
                    Operation::Dispense { channel, to: at, volume_ul }
                }
            })
            .collect();
        let out = self.pipette(&ops, deck, self.timing.pipette_ms);
        if matches!(out, Outcome::Ok { .. }) {
            let n = ops.len() as u32;
            let most = p.volumes_01ul.iter().copied().max().map_or(0.0, |v| f64::from(v) / 10.0);
            let command = if aspirate { labtime::Command::Aspirate(most) } else { labtime::Command::Dispense(most) };
            c.lab_ms += u64::from(LAB.command_ms(command));
            if aspirate {
                c.aspirates = c.aspirates.wrapping_add(n);
            } else {
                c.dispenses = c.dispenses.wrapping_add(n);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;
    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    fn reply(due_ms: u64, text: &str) -> Pending {
        let mut t = ReplyText::new();
        t.push_str(text).unwrap();
        Pending { due_ms, code: *b"AS", text: t }
    }

    #[test]
    fn replies_keep_their_texts_when_taken_out_of_order() {
        let mut q = ReplyQueue::new();
        for (due, text) in
            [(30, "C0ASid0001er00/00"), (10, "C0RFid0002er00/00rf1.0.0 CELLOS TWIN"), (20, "C0TPid0003er00/00")]
        {
            q.push(&reply(due, text));
        }
        assert_eq!(q.remove(1).text.as_str(), "C0RFid0002er00/00rf1.0.0 CELLOS TWIN");
        assert_eq!(q.text.len(), 34);
        let rest: Vec<_> = (0..2).map(|_| q.remove(0)).map(|p| (p.due_ms, p.text.to_string())).collect();
        assert_eq!(rest, [(30, "C0ASid0001er00/00".to_string()), (20, "C0TPid0003er00/00".to_string())]);
        assert_eq!((q.len(), q.text.len()), (0, 0));
    }

    #[test]
    fn an_overrun_loses_the_oldest_replies() {
        // 64 short replies fit; the 65th pushes out the first.
        let mut q = ReplyQueue::new();
        for i in 0..65u64 {
            q.push(&reply(i, &format!("C0ASid{i:04}er00/00")));
        }
        assert_eq!(q.len(), MAX_PENDING);
        assert_eq!(q.remove(0).text.as_str(), "C0ASid0001er00/00");
        // Long replies: as many as fit in the bytes, the newest kept.
        let mut q = ReplyQueue::new();
        let long = |i: u64| format!("C0RTid{i:04}er00/00rt{}", "0 ".repeat(86));
        for i in 0..30u64 {
            q.push(&reply(i, &long(i)));
        }
        let each = long(0).len();
        assert_eq!(q.len(), PENDING_BYTES / each);
        assert_eq!(q.remove(q.len() - 1).text.as_str(), long(29));
        assert_eq!(q.remove(0).text.as_str(), long(30 - PENDING_BYTES as u64 / each as u64));
    }
}
