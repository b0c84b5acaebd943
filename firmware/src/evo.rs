//! The EVO as the twin plays it: a LiHa (`C5`, 8 tips) and a RoMa (`C1`) on the shared deck; the MCA
//! (`W1`) is absent and answers error 5, as an instrument without one does.
//!
//! One command is outstanding at a time: every command is answered at once. The LiHa keeps its x, y,
//! tip spacing and per-tip z from `PAA`; tip `k` (0-based) sits at `(x, y − k · spacing)`.
//! ASSUMPTION, ours: a `PPR` step is 0.1 µL (the real LiHa counts plunger steps with a syringe factor).
//!
//! | condition | error |
//! |---|---|
//! | unknown command | 2 |
//! | missing or malformed operand, position off the deck | 3 |
//! | module absent (`W1`) | 5 |
//! | not initialised (before `PIA`) | 7 |
//! | no liquid in the well under a tip (`MDT`, `PPR` aspirate) | 9 |
//! | not enough liquid | 11 |
//! | volume beyond a tip's or a well's capacity | 15 |
//! | no tip at the pick-up spot | 25 |
//! | no tip mounted | 26 |
//! | tip already mounted | 27 |

use cellos_core::proto::evo::{EvoCommand, EvoReply, MAX_DATA};
use cellos_core::proto::wire::Counters;

use crate::deck::{Deck, Effect, Location, Operation, Rule, Rules, Tip};

/// Tips of the LiHa.
pub const TIPS: usize = 8;

/// A tip on the LiHa (the deck's one tip type).
pub type EvoTip = Tip;

/// The EVO side of the twin.
#[derive(Clone, Debug)]
pub struct Evo {
    liha_initialised: bool,
    roma_initialised: bool,
    x_01mm: i32,
    y_01mm: i32,
    spacing_01mm: i32,
    z_01mm: [i32; TIPS],
    travel_heights: [i32; TIPS],
    /// Tips mounted.
    pub tips: [Option<EvoTip>; TIPS],
}

/// A reply frame.
pub type Frame = heapless::Vec<u8, 96>;

fn reply(module: &[u8; 2], error: u8, data: &[i32]) -> Frame {
    let mut buf = [0u8; 96];
    let n = EvoReply::emit_fields(module, error, data, &mut buf).unwrap_or(0);
    heapless::Vec::from_slice(&buf[..n]).unwrap_or_default()
}

impl Default for Evo {
    fn default() -> Self {
        Evo::new()
    }
}

impl Evo {
    /// A powered-on, uninitialised EVO.
    pub const fn new() -> Evo {
        Evo {
            liha_initialised: false,
            roma_initialised: false,
            x_01mm: 0,
            y_01mm: 0,
            spacing_01mm: 90,
            z_01mm: [0; TIPS],
            travel_heights: [0; TIPS],
            tips: [None; TIPS],
        }
    }

    /// Forgets initialisation, as after a power cycle; tips stay mounted.
    pub fn reboot(&mut self) {
        self.liha_initialised = false;
        self.roma_initialised = false;
    }

    fn tip_position(&self, k: usize) -> (i32, i32) {
        (self.x_01mm, self.y_01mm - k as i32 * self.spacing_01mm)
    }

    /// Executes one frame and returns the reply frame. A frame that is not a command gets error 2 from
    /// the module it names (or `C5`).
    pub fn frame<const P: usize, const W: usize>(
        &mut self,
        frame: &[u8],
        deck: &mut Deck<P, W>,
        counters: &mut Counters,
    ) -> Frame {
        counters.commands = counters.commands.wrapping_add(1);
        let (module, error, data) = match EvoCommand::parse(frame) {
            Ok(cmd) => {
                let (e, d) = self.execute(&cmd, deck, counters);
                (cmd.module, e, d)
            }
            Err(_) => {
                let module = match frame {
                    [_, a, b, ..] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => [*a, *b],
                    _ => *b"C5",
                };
                (module, 2, heapless::Vec::new())
            }
        };
        if error != 0 {
            counters.errors = counters.errors.wrapping_add(1);
        }
        reply(&module, error, &data)
    }

    fn execute<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let one = |v: i32| heapless::Vec::from_slice(&[v]).unwrap_or_default();
        match &cmd.module {
            b"C5" => {}
            b"C1" => {
                return match &cmd.command {
                    b"PIA" => {
                        self.roma_initialised = true;
                        (0, none)
                    }
                    b"RPX" | b"RPY" | b"RPZ" if self.roma_initialised => (0, one(0)),
                    b"RPX" | b"RPY" | b"RPZ" => (7, none),
                    _ => (2, none),
                };
            }
            _ => return (5, none),
        }
        match &cmd.command {
            b"PIA" => {
                self.liha_initialised = true;
                (0, none)
            }
            b"RNT" => (0, one(TIPS as i32)),
            _ if !self.liha_initialised => (7, none),
            b"RPX" => (0, one(self.x_01mm)),
            b"RPY" => (0, one(self.y_01mm)),
            b"RPZ" => (0, self.z_01mm.iter().copied().collect()),
            b"SHZ" => {
                for (i, h) in self.travel_heights.iter_mut().enumerate() {
                    if let Some(v) = cmd.param(i) {
                        *h = v;
                    }
                }
                (0, none)
            }
            b"PVL" | b"SEP" | b"SPP" => (0, none),
            b"PAA" => self.move_to(cmd, deck),
            b"AGT" => self.tips_command(cmd, deck, c, true),
            b"AST" => self.tips_command(cmd, deck, c, false),
            b"PPR" => self.plunger(cmd, deck, c),
            b"MDT" => self.detect(cmd, deck),
            _ => (2, none),
        }
    }

    fn move_to<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &Deck<P, W>,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let x = cmd.param(0).unwrap_or(self.x_01mm);
        let y = cmd.param(1).unwrap_or(self.y_01mm);
        let spacing = cmd.param(2).unwrap_or(self.spacing_01mm);
        if !(0..=20_000).contains(&x) || !(0..=20_000).contains(&y) || !(40..=400).contains(&spacing) {
            return (3, heapless::Vec::new());
        }
        let _ = deck;
        self.x_01mm = x;
        self.y_01mm = y;
        self.spacing_01mm = spacing;
        for k in 0..TIPS {
            if let Some(z) = cmd.param(3 + k) {
                self.z_01mm[k] = z;
            }
        }
        (0, heapless::Vec::new())
    }

    fn mask(cmd: &EvoCommand) -> Option<u8> {
        cmd.param(0).and_then(|m| u8::try_from(m).ok()).filter(|m| *m != 0)
    }

    /// The EVO's error code for a broken rule (a pick-up off a tip spot is "no tip at the spot").
    fn code(rule: Rule, op: &Operation) -> u8 {
        match rule {
            Rule::TipAlreadyFitted => 27,
            Rule::NoTip => 26,
            Rule::NoTipAtSpot => 25,
            Rule::OffDeck if matches!(op, Operation::PickUp { .. }) => 25,
            Rule::NotEnoughLiquid => 11,
            Rule::TipCapacity | Rule::WellCapacity | Rule::BadVolume => 15,
            Rule::OffDeck | Rule::TipEmpty | Rule::NoChannel | Rule::ChannelSpacing => 3,
        }
    }

    /// Checks the tips' operations in order (each after the earlier ones of the command) and, if none
    /// breaks a rule, applies them all; otherwise changes nothing and answers the first error.
    fn pipette<const P: usize, const W: usize>(&mut self, ops: &[Operation], deck: &mut Deck<P, W>) -> u8 {
        let mut effects: heapless::Vec<Effect, TIPS> = heapless::Vec::new();
        for op in ops {
            match Rules::INSTRUMENT.check(deck, &self.tips, op, &effects) {
                Ok(e) => {
                    let _ = effects.push(e);
                }
                Err(Rule::NotEnoughLiquid) if matches!(op, Operation::Aspirate { from, .. } if crate::deck::held_after(deck, *from, &effects).unwrap_or(0.0) <= 1e-9) =>
                {
                    // The EVO tells an empty well from one with too little.
                    return 9;
                }
                Err(rule) => return Self::code(rule, op),
            }
        }
        for e in &effects {
            crate::deck::apply(deck, &mut self.tips, e);
        }
        0
    }

    /// `AGT` (get tips) and `AST` (drop tips): every tip of the mask, at its position.
    fn tips_command<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
        get: bool,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let Some(mask) = Self::mask(cmd) else { return (3, none) };
        let ops: heapless::Vec<Operation, TIPS> = (0..TIPS)
            .filter(|k| mask & (1 << k) != 0)
            .map(|k| {
                let (x, y) = self.tip_position(k);
                match deck.at(x, y) {
                    at if get => Operation::PickUp { channel: k, at, max_capacity_ul: f64::INFINITY },
                    // Over an empty tip spot the tip goes back into the rack; anywhere else into the waste.
                    spot @ Location::Tip { rack, index } if !deck.tip_racks[rack].has_tip(index) => {
                        Operation::Drop { channel: k, to: spot }
                    }
                    _ => Operation::Drop { channel: k, to: Location::Waste },
                }
            })
            .collect();
        let e = self.pipette(&ops, deck);
        if e == 0 {
            let n = ops.len() as u32;
            if get {
                c.tip_pickups = c.tip_pickups.wrapping_add(n);
            } else {
                c.tip_drops = c.tip_drops.wrapping_add(n);
            }
        }
        (e, none)
    }

    fn plunger<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let mut moves = [0.0f64; TIPS];
        let mut any = false;
        for (k, m) in moves.iter_mut().enumerate() {
            if let Some(v) = cmd.param(k) {
                *m = f64::from(v) / 10.0;
                any |= v != 0;
            }
        }
        if !any {
            return (3, none);
        }
        // Positive: aspirate; negative: dispense.
        let ops: heapless::Vec<Operation, TIPS> = moves
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(k, &v)| {
                let (x, y) = self.tip_position(k);
                let at = deck.at(x, y);
                if v > 0.0 {
                    Operation::Aspirate { channel: k, from: at, volume_ul: v }
                } else {
                    Operation::Dispense { channel: k, to: at, volume_ul: -v }
                }
            })
            .collect();
        let e = self.pipette(&ops, deck);
        if e == 0 {
            for op in &ops {
                match op {
                    Operation::Aspirate { .. } => c.aspirates = c.aspirates.wrapping_add(1),
                    _ => c.dispenses = c.dispenses.wrapping_add(1),
                }
            }
        }
        (e, none)
    }

    fn detect<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &Deck<P, W>,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let Some(mask) = Self::mask(cmd) else { return (3, none) };
        for k in (0..TIPS).filter(|k| mask & (1 << k) != 0) {
            if self.tips[k].is_none() {
                return (26, none);
            }
            let (x, y) = self.tip_position(k);
            let volume = deck.locate(x, y).and_then(|at| deck.liquid(at)).map_or(0.0, |l| l.volume_ul);
            if volume <= 0.0 {
                return (9, none);
            }
        }
        (0, none)
    }
}
