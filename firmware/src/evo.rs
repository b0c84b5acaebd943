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

use crate::deck::{Deck, Liquid, Location, TroughContent};

/// Tips of the LiHa.
pub const TIPS: usize = 8;

/// A tip on the LiHa.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct EvoTip {
    /// Capacity, µL.
    pub capacity_ul: f64,
    /// What it holds.
    pub liquid: Liquid,
    /// The trough content it last aspirated from.
    pub source: Option<TroughContent>,
}

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
            b"AGT" => self.get_tips(cmd, deck, c),
            b"AST" => self.drop_tips(cmd, deck, c),
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

    fn get_tips<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let Some(mask) = Self::mask(cmd) else { return (3, none) };
        for k in (0..TIPS).filter(|k| mask & (1 << k) != 0) {
            if self.tips[k].is_some() {
                return (27, none);
            }
            let (x, y) = self.tip_position(k);
            match deck.locate(x, y) {
                Some(Location::Tip { rack, index }) if deck.tip_racks[rack].has_tip(index) => {}
                _ => return (25, none),
            }
        }
        for k in (0..TIPS).filter(|k| mask & (1 << k) != 0) {
            let (x, y) = self.tip_position(k);
            if let Some(Location::Tip { rack, index }) = deck.locate(x, y) {
                deck.tip_racks[rack].set_tip(index, false);
                let capacity = f64::from(deck.tip_racks[rack].tip_volume_01ul) / 10.0;
                self.tips[k] = Some(EvoTip { capacity_ul: capacity, liquid: Liquid::default(), source: None });
                c.tip_pickups = c.tip_pickups.wrapping_add(1);
            }
        }
        (0, none)
    }

    fn drop_tips<const P: usize, const W: usize>(
        &mut self,
        cmd: &EvoCommand,
        deck: &mut Deck<P, W>,
        c: &mut Counters,
    ) -> (u8, heapless::Vec<i32, MAX_DATA>) {
        let none = heapless::Vec::new();
        let Some(mask) = Self::mask(cmd) else { return (3, none) };
        if (0..TIPS).any(|k| mask & (1 << k) != 0 && self.tips[k].is_none()) {
            return (26, none);
        }
        for k in (0..TIPS).filter(|k| mask & (1 << k) != 0) {
            // Over an empty tip spot the tip goes back into the rack; anywhere else into the waste.
            let (x, y) = self.tip_position(k);
            if let Some(Location::Tip { rack, index }) = deck.locate(x, y)
                && !deck.tip_racks[rack].has_tip(index)
            {
                deck.tip_racks[rack].set_tip(index, true);
            }
            self.tips[k] = None;
            c.tip_drops = c.tip_drops.wrapping_add(1);
        }
        (0, none)
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
        // Net volume already put into (+) or taken from (−) each location by earlier tips of this move.
        let mut drawn: heapless::Vec<(Location, f64), TIPS> = heapless::Vec::new();
        for (k, &v) in moves.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            let Some(tip) = self.tips[k] else { return (26, none) };
            let (x, y) = self.tip_position(k);
            let at = match deck.locate(x, y) {
                Some(at @ (Location::Well { .. } | Location::Trough { .. })) => at,
                _ => return (3, none),
            };
            let already: f64 = drawn.iter().filter(|(l, _)| *l == at).map(|(_, v)| v).sum();
            if v > 0.0 {
                let available = deck.liquid(at).map_or(0.0, |l| l.volume_ul) + already;
                if available <= 1e-9 {
                    return (9, none);
                }
                if v > available + 1e-9 {
                    return (11, none);
                }
                if tip.liquid.volume_ul + v > tip.capacity_ul + 1e-9 {
                    return (15, none);
                }
                let _ = drawn.push((at, -v));
            } else {
                if -v > tip.liquid.volume_ul + 1e-9 {
                    return (3, none);
                }
                if -v > deck.room_ul(at).unwrap_or(0.0) - already + 1e-9 {
                    return (15, none);
                }
                let _ = drawn.push((at, -v));
            }
        }
        for (k, &v) in moves.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            let (x, y) = self.tip_position(k);
            let (Some(at), Some(tip)) = (deck.locate(x, y), self.tips[k].as_mut()) else { continue };
            if v > 0.0 {
                let part = deck.take(at, v);
                tip.liquid.add(part);
                if let Some(content) = deck.trough_content(at) {
                    tip.source = Some(content);
                }
                c.aspirates = c.aspirates.wrapping_add(1);
            } else {
                let part = tip.liquid.take(-v);
                deck.put(at, part, tip.source);
                c.dispenses = c.dispenses.wrapping_add(1);
            }
        }
        (0, none)
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
