//! The deck: tip racks, plates and troughs at known positions, the liquid in them, and the pipetting
//! rules ([`rules`]) that the gateway's safety envelope and both instrument twins apply.
//!
//! Positions are in 0.1 mm in one coordinate system for both arms (ASSUMPTION: the twin does not model
//! the STAR's and the EVO's different origins). A labware's reference point is the centre of its A1
//! position; columns go to +x and rows to −y, one pitch apart. A position addresses a well or tip spot
//! when it is within [`TOLERANCE_01MM`] of its centre on both axes, and a trough anywhere inside it.
//!
//! Liquid is tracked as [`Liquid`]: volume, compound amount and cells, which mix proportionally. A well
//! also remembers when cells first arrived and when they were first exposed to compound (on its plate's
//! clock), which is what the reader needs to simulate the culture.

use crate::plate::PlateFormat;

pub mod campaign;
pub mod file;
pub mod rules;

pub use rules::{CHANNEL_PITCH_01MM, Effect, Operation, Rule, Rules, Tip, apply, check_spacing, held_after};

/// How far a commanded position may be from a well's or tip's centre, 0.1 mm.
pub const TOLERANCE_01MM: i32 = 20;
/// Tip racks on a deck.
pub const MAX_TIP_RACKS: usize = 4;
/// Troughs on a deck.
pub const MAX_TROUGHS: usize = 6;
/// Longest labware name.
pub const NAME_LEN: usize = 16;

/// A labware name.
pub type Name = heapless::String<NAME_LEN>;

/// A volume of liquid and what is in it.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Liquid {
    /// Volume, µL.
    pub volume_ul: f64,
    /// Compound amount, pmol (µM × µL).
    pub compound_pmol: f64,
    /// Cells.
    pub cells: f64,
    /// Lentivirus, transducing units.
    pub virus_tu: f64,
}

impl Liquid {
    /// Takes `volume_ul` out, with its proportional share of compound and cells. The caller checks
    /// that there is enough.
    pub fn take(&mut self, volume_ul: f64) -> Liquid {
        if self.volume_ul <= 0.0 {
            return Liquid::default();
        }
        let f = (volume_ul / self.volume_ul).clamp(0.0, 1.0);
        let part = Liquid {
            volume_ul,
            compound_pmol: self.compound_pmol * f,
            cells: self.cells * f,
            virus_tu: self.virus_tu * f,
        };
        self.volume_ul = (self.volume_ul - volume_ul).max(0.0);
        self.compound_pmol -= part.compound_pmol;
        self.cells -= part.cells;
        self.virus_tu -= part.virus_tu;
        if self.volume_ul == 0.0 {
            *self = Liquid::default();
        }
        part
    }

    /// Adds liquid.
    pub fn add(&mut self, other: Liquid) {
        self.volume_ul += other.volume_ul;
        self.compound_pmol += other.compound_pmol;
        self.cells += other.cells;
        self.virus_tu += other.virus_tu;
    }

    /// Compound concentration, µM.
    pub fn concentration_um(&self) -> f64 {
        if self.volume_ul > 0.0 { self.compound_pmol / self.volume_ul } else { 0.0 }
    }
}

/// What a trough holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TroughContent {
    /// Plain medium.
    Medium,
    /// A cell suspension of a built-in cell line (index into the core's table).
    Cells {
        /// Index into `crate::params::builtin::CELL_LINES`.
        line: u8,
    },
    /// A compound stock (index into the core's compound table).
    Compound {
        /// Index into `crate::params::builtin::COMPOUNDS`.
        compound: u8,
    },
    /// A lentivirus (BFP reporter) stock.
    Virus,
}

/// A trough: a rectangle of the deck holding one liquid.
#[derive(Clone, Debug, PartialEq)]
pub struct Trough {
    /// Name.
    pub name: Name,
    /// Lower-left corner x, 0.1 mm.
    pub x_01mm: i32,
    /// Lower-left corner y, 0.1 mm.
    pub y_01mm: i32,
    /// Extent in x, 0.1 mm.
    pub width_01mm: i32,
    /// Extent in y, 0.1 mm.
    pub depth_01mm: i32,
    /// Capacity, µL.
    pub capacity_ul: f64,
    /// What it holds.
    pub content: TroughContent,
    /// The liquid in it.
    pub liquid: Liquid,
}

/// A rack of disposable tips.
#[derive(Clone, Debug, PartialEq)]
pub struct TipRack {
    /// Name.
    pub name: Name,
    /// A1 centre x, 0.1 mm.
    pub x_01mm: i32,
    /// A1 centre y, 0.1 mm.
    pub y_01mm: i32,
    /// Spacing, 0.1 mm.
    pub pitch_01mm: i32,
    /// Layout.
    pub format: PlateFormat,
    /// Tip capacity, 0.1 µL.
    pub tip_volume_01ul: u32,
    /// Tip present, per position (row-major), bit set = present.
    pub present: [u64; 6],
}

impl TipRack {
    /// A full rack.
    pub fn full(name: &str, x_01mm: i32, y_01mm: i32, format: PlateFormat, tip_volume_01ul: u32) -> TipRack {
        let mut present = [0u64; 6];
        for i in 0..usize::from(format.wells()).min(384) {
            present[i / 64] |= 1 << (i % 64);
        }
        TipRack { name: name_of(name), x_01mm, y_01mm, pitch_01mm: pitch_of(format), format, tip_volume_01ul, present }
    }

    /// Whether position `i` (0-based row-major) holds a tip.
    pub fn has_tip(&self, i: usize) -> bool {
        i < 384 && self.present[i / 64] & (1 << (i % 64)) != 0
    }

    /// Marks position `i` as holding a tip or not.
    pub fn set_tip(&mut self, i: usize, present: bool) {
        if i < 384 {
            if present {
                self.present[i / 64] |= 1 << (i % 64);
            } else {
                self.present[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// Tips left.
    pub fn tips_left(&self) -> u32 {
        self.present.iter().map(|w| w.count_ones()).sum()
    }
}

/// One well of a plate.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Well {
    /// The liquid in the well.
    pub liquid: Liquid,
    /// Plate clock when cells first arrived, hours (`None`: no cells yet).
    pub seeded_at_h: Option<f64>,
    /// Cells that arrived at seeding.
    pub seeded_cells: f64,
    /// Plate clock when the cells were first exposed to compound, and the concentration then, µM.
    pub treated: Option<(f64, f64)>,
}

/// A plate with `W` wells at most.
#[derive(Clone, Debug, PartialEq)]
pub struct Plate<const W: usize> {
    /// Name.
    pub name: Name,
    /// A1 centre x, 0.1 mm.
    pub x_01mm: i32,
    /// A1 centre y, 0.1 mm.
    pub y_01mm: i32,
    /// Spacing, 0.1 mm.
    pub pitch_01mm: i32,
    /// Layout.
    pub format: PlateFormat,
    /// Working capacity of one well, µL.
    pub well_capacity_ul: f64,
    /// Wells, row-major.
    pub wells: heapless::Vec<Well, W>,
    /// Hours the plate has been incubated (its simulated clock).
    pub clock_h: f64,
    /// The cell line of the cells dispensed into it (core table index), once known.
    pub line: Option<u8>,
    /// The compound dispensed into it (core table index), once known.
    pub compound: Option<u8>,
}

pub(crate) fn name_of(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// The standard SBS pitch of a format, 0.1 mm.
pub fn pitch_of(format: PlateFormat) -> i32 {
    match format {
        PlateFormat::W6 => 390,
        PlateFormat::W24 => 195,
        PlateFormat::W96 => 90,
        PlateFormat::W384 => 45,
        PlateFormat::W1536 => 23,
    }
}

impl<const W: usize> Plate<W> {
    /// An empty plate; `None` if the format has more wells than `W`.
    pub fn empty(name: &str, x_01mm: i32, y_01mm: i32, format: PlateFormat, well_capacity_ul: f64) -> Option<Self> {
        let mut p = Self::without_wells(name, x_01mm, y_01mm, format, well_capacity_ul);
        p.fill_wells().then_some(p)
    }

    /// The plate with no well yet: [`Plate::fill_wells`] adds them in place (a deck built in place then
    /// holds one plate-sized value on the stack, not several).
    pub(crate) fn without_wells(
        name: &str,
        x_01mm: i32,
        y_01mm: i32,
        format: PlateFormat,
        well_capacity_ul: f64,
    ) -> Self {
        Plate {
            name: name_of(name),
            x_01mm,
            y_01mm,
            pitch_01mm: pitch_of(format),
            format,
            well_capacity_ul,
            wells: heapless::Vec::new(),
            clock_h: 0.0,
            line: None,
            compound: None,
        }
    }

    /// Gives the plate its format's empty wells; false when they are more than `W`.
    pub(crate) fn fill_wells(&mut self) -> bool {
        let n = usize::from(self.format.wells());
        n <= W && self.wells.resize(n, Well::default()).is_ok()
    }

    /// The centre of well `i` (0-based row-major), 0.1 mm.
    pub fn well_position(&self, i: usize) -> (i32, i32) {
        grid_position(self.x_01mm, self.y_01mm, self.pitch_01mm, self.format, i)
    }
}

fn grid_position(x0: i32, y0: i32, pitch: i32, format: PlateFormat, i: usize) -> (i32, i32) {
    let cols = usize::from(format.cols());
    (x0 + (i % cols) as i32 * pitch, y0 - (i / cols) as i32 * pitch)
}

fn grid_index(x0: i32, y0: i32, pitch: i32, format: PlateFormat, x: i32, y: i32) -> Option<usize> {
    let dx = x - x0;
    let dy = y0 - y;
    let col = (dx + pitch / 2).div_euclid(pitch);
    let row = (dy + pitch / 2).div_euclid(pitch);
    if col < 0 || row < 0 || col >= i32::from(format.cols()) || row >= i32::from(format.rows()) {
        return None;
    }
    let (cx, cy) = (x0 + col * pitch, y0 - row * pitch);
    if (x - cx).abs() > TOLERANCE_01MM || (y - cy).abs() > TOLERANCE_01MM {
        return None;
    }
    Some(row as usize * usize::from(format.cols()) + col as usize)
}

/// What is at a deck position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Tip position `index` (row-major) of tip rack `rack`.
    Tip {
        /// Rack index.
        rack: usize,
        /// Position in the rack.
        index: usize,
    },
    /// Well `index` (row-major) of plate `plate`.
    Well {
        /// Plate index.
        plate: usize,
        /// Well index.
        index: usize,
    },
    /// Trough `trough`.
    Trough {
        /// Trough index.
        trough: usize,
    },
    /// The tip waste.
    Waste,
    /// A position with nothing at it (where a command may still send a channel).
    Nothing,
}

/// The deck: `P` plates of at most `W` wells each, tip racks, troughs and a waste.
#[derive(Clone, Debug, PartialEq)]
pub struct Deck<const P: usize, const W: usize> {
    /// Tip racks.
    pub tip_racks: heapless::Vec<TipRack, MAX_TIP_RACKS>,
    /// Plates.
    pub plates: heapless::Vec<Plate<W>, P>,
    /// Troughs.
    pub troughs: heapless::Vec<Trough, MAX_TROUGHS>,
    /// The tip waste: lower-left corner and extent, 0.1 mm.
    pub waste: (i32, i32, i32, i32),
}

impl<const P: usize, const W: usize> Deck<P, W> {
    /// A deck with nothing on it.
    pub const fn empty() -> Self {
        Deck {
            tip_racks: heapless::Vec::new(),
            plates: heapless::Vec::new(),
            troughs: heapless::Vec::new(),
            waste: (0, 0, 0, 0),
        }
    }

    /// What is at `(x, y)`: [`Location::Nothing`] when nothing is.
    pub fn at(&self, x: i32, y: i32) -> Location {
        self.locate(x, y).unwrap_or(Location::Nothing)
    }

    /// What is at `(x, y)`, if anything.
    pub fn locate(&self, x: i32, y: i32) -> Option<Location> {
        for (rack, r) in self.tip_racks.iter().enumerate() {
            if let Some(index) = grid_index(r.x_01mm, r.y_01mm, r.pitch_01mm, r.format, x, y) {
                return Some(Location::Tip { rack, index });
            }
        }
        for (plate, p) in self.plates.iter().enumerate() {
            if let Some(index) = grid_index(p.x_01mm, p.y_01mm, p.pitch_01mm, p.format, x, y) {
                return Some(Location::Well { plate, index });
            }
        }
        for (trough, t) in self.troughs.iter().enumerate() {
            if x >= t.x_01mm && x <= t.x_01mm + t.width_01mm && y >= t.y_01mm && y <= t.y_01mm + t.depth_01mm {
                return Some(Location::Trough { trough });
            }
        }
        let (wx, wy, ww, wd) = self.waste;
        if x >= wx && x <= wx + ww && y >= wy && y <= wy + wd {
            return Some(Location::Waste);
        }
        None
    }

    /// Whether a rectangle `(x0, y0, x1, y1)` (0.1 mm, inclusive) is free of every labware and the waste,
    /// ignoring plate `except`.
    pub fn is_free(&self, rect: (i32, i32, i32, i32), except: Option<usize>) -> bool {
        let overlaps = |r: (i32, i32, i32, i32)| rect.0 <= r.2 && r.0 <= rect.2 && rect.1 <= r.3 && r.1 <= rect.3;
        let grid = |x: i32, y: i32, pitch: i32, f: PlateFormat| {
            let (cols, rows) = (i32::from(f.cols()), i32::from(f.rows()));
            (x - pitch / 2, y - (rows - 1) * pitch - pitch / 2, x + (cols - 1) * pitch + pitch / 2, y + pitch / 2)
        };
        let racks = self.tip_racks.iter().map(|r| grid(r.x_01mm, r.y_01mm, r.pitch_01mm, r.format));
        let plates = self
            .plates
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .map(|(_, p)| grid(p.x_01mm, p.y_01mm, p.pitch_01mm, p.format));
        let troughs =
            self.troughs.iter().map(|t| (t.x_01mm, t.y_01mm, t.x_01mm + t.width_01mm, t.y_01mm + t.depth_01mm));
        let (wx, wy, ww, wd) = self.waste;
        !racks.chain(plates).chain(troughs).chain(core::iter::once((wx, wy, wx + ww, wy + wd))).any(overlaps)
    }

    /// The footprint of plate `p` if its A1 were at `(x, y)`.
    pub fn plate_footprint(&self, p: usize, x: i32, y: i32) -> Option<(i32, i32, i32, i32)> {
        let plate = self.plates.get(p)?;
        let (cols, rows, pitch) = (i32::from(plate.format.cols()), i32::from(plate.format.rows()), plate.pitch_01mm);
        Some((x - pitch / 2, y - (rows - 1) * pitch - pitch / 2, x + (cols - 1) * pitch + pitch / 2, y + pitch / 2))
    }

    /// The centre of tip position `index` of rack `rack`.
    pub fn tip_position(&self, rack: usize, index: usize) -> Option<(i32, i32)> {
        let r = self.tip_racks.get(rack)?;
        Some(grid_position(r.x_01mm, r.y_01mm, r.pitch_01mm, r.format, index))
    }

    /// The liquid at a location that holds liquid (a well or a trough).
    pub fn liquid(&self, at: Location) -> Option<&Liquid> {
        match at {
            Location::Well { plate, index } => self.plates.get(plate)?.wells.get(index).map(|w| &w.liquid),
            Location::Trough { trough } => self.troughs.get(trough).map(|t| &t.liquid),
            _ => None,
        }
    }

    /// Room left at a location that holds liquid, µL.
    pub fn room_ul(&self, at: Location) -> Option<f64> {
        match at {
            Location::Well { plate, index } => {
                let p = self.plates.get(plate)?;
                Some(p.well_capacity_ul - p.wells.get(index)?.liquid.volume_ul)
            }
            Location::Trough { trough } => {
                let t = self.troughs.get(trough)?;
                Some(t.capacity_ul - t.liquid.volume_ul)
            }
            _ => None,
        }
    }

    /// Takes liquid from a well or trough (the caller has checked the volume).
    pub fn take(&mut self, at: Location, volume_ul: f64) -> Liquid {
        match at {
            Location::Well { plate, index } => self
                .plates
                .get_mut(plate)
                .and_then(|p| p.wells.get_mut(index))
                .map_or(Liquid::default(), |w| w.liquid.take(volume_ul)),
            Location::Trough { trough } => {
                self.troughs.get_mut(trough).map_or(Liquid::default(), |t| t.liquid.take(volume_ul))
            }
            _ => Liquid::default(),
        }
    }

    /// Puts liquid into a well or trough. Into a well, it also records seeding and first exposure on
    /// the plate's clock, and which line and compound the plate holds (from the trough the liquid came
    /// from, `source`).
    pub fn put(&mut self, at: Location, liquid: Liquid, source: Option<TroughContent>) {
        match at {
            Location::Well { plate, index } => {
                let Some(p) = self.plates.get_mut(plate) else { return };
                match source {
                    Some(TroughContent::Cells { line }) => p.line = Some(line),
                    Some(TroughContent::Compound { compound }) => p.compound = Some(compound),
                    _ => {}
                }
                let clock = p.clock_h;
                let Some(w) = p.wells.get_mut(index) else { return };
                w.liquid.add(liquid);
                if w.seeded_at_h.is_none() && liquid.cells > 0.0 {
                    w.seeded_at_h = Some(clock);
                    w.seeded_cells = w.liquid.cells;
                }
                if w.treated.is_none() && w.seeded_at_h.is_some() && w.liquid.compound_pmol > 0.0 {
                    w.treated = Some((clock, w.liquid.concentration_um()));
                }
            }
            Location::Trough { trough } => {
                if let Some(t) = self.troughs.get_mut(trough) {
                    t.liquid.add(liquid);
                }
            }
            _ => {}
        }
    }

    /// The trough content at a location, if it is a trough.
    pub fn trough_content(&self, at: Location) -> Option<TroughContent> {
        match at {
            Location::Trough { trough } => self.troughs.get(trough).map(|t| t.content),
            _ => None,
        }
    }
}

/// Index of a built-in cell line or compound by name, as the deck stores it.
pub fn line_index(name: &str) -> Option<u8> {
    crate::params::builtin::CELL_LINES.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)).map(|i| i as u8)
}

/// Index of a built-in compound by name.
pub fn compound_index(name: &str) -> Option<u8> {
    crate::params::builtin::COMPOUNDS.iter().position(|c| c.name.eq_ignore_ascii_case(name)).map(|i| i as u8)
}

/// The built-in deck of the twin (see `docs/twin.md`): two 300 µL tip racks, one 96-well plate (and a
/// second when `P` ≥ 2), a U2OS cell suspension, medium and a 1 mM tBHP stock, and a waste.
pub fn default_deck<const P: usize, const W: usize>() -> Deck<P, W> {
    let mut deck = Deck::empty();
    deck.waste = (100, 100, 800, 2000);
    let _ = deck.tip_racks.push(TipRack::full("TIPS_1", 1179, 2418, PlateFormat::W96, 3600));
    let _ = deck.tip_racks.push(TipRack::full("TIPS_2", 1179, 1418, PlateFormat::W96, 3600));
    for (i, (x, y)) in [(2983, 1457), (2983, 2457)].into_iter().enumerate() {
        if let Some(p) = Plate::empty(if i == 0 { "PLATE_1" } else { "PLATE_2" }, x, y, PlateFormat::W96, 300.0) {
            let _ = deck.plates.push(p);
        }
    }
    let trough = |name: &str, x: i32, content: TroughContent, liquid: Liquid| Trough {
        name: name_of(name),
        x_01mm: x,
        y_01mm: 500,
        width_01mm: 190,
        depth_01mm: 1000,
        capacity_ul: 100_000.0,
        content,
        liquid,
    };
    let line = line_index("U2OS").unwrap_or(0);
    let tbhp = compound_index("tbhp").unwrap_or(0);
    let _ = deck.troughs.push(trough(
        "CELLS",
        4500,
        TroughContent::Cells { line },
        Liquid { volume_ul: 50_000.0, cells: 50_000.0 * 100.0, ..Liquid::default() },
    ));
    let _ = deck.troughs.push(trough(
        "MEDIUM",
        4800,
        TroughContent::Medium,
        Liquid { volume_ul: 50_000.0, ..Liquid::default() },
    ));
    let _ = deck.troughs.push(trough(
        "TBHP",
        5100,
        TroughContent::Compound { compound: tbhp },
        Liquid { volume_ul: 20_000.0, compound_pmol: 20_000.0 * 1000.0, ..Liquid::default() },
    ));
    deck
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liquid_mixes_proportionally() {
        let mut a = Liquid { volume_ul: 100.0, compound_pmol: 1000.0, cells: 1e4, virus_tu: 400.0 };
        let part = a.take(25.0);
        assert_eq!(part, Liquid { volume_ul: 25.0, compound_pmol: 250.0, cells: 2500.0, virus_tu: 100.0 });
        assert_eq!(a.volume_ul, 75.0);
        assert_eq!(a.concentration_um(), 10.0);
        let mut b = Liquid { volume_ul: 75.0, ..Liquid::default() };
        b.add(part);
        assert_eq!(b.concentration_um(), 2.5);
        assert_eq!(a.take(75.0).volume_ul, 75.0);
        assert_eq!(a, Liquid::default());
    }

    #[test]
    fn locate_by_position() {
        let deck: Deck<2, 96> = default_deck();
        assert_eq!(deck.locate(1179, 2418), Some(Location::Tip { rack: 0, index: 0 }));
        // Row B is 9 mm lower: the second channel of the PROTOCOLS.md pick-up vector.
        assert_eq!(deck.locate(1179, 2328), Some(Location::Tip { rack: 0, index: 12 }));
        assert_eq!(deck.locate(1179 + 11 * 90, 2418 - 7 * 90), Some(Location::Tip { rack: 0, index: 95 }));
        assert_eq!(deck.locate(2983, 1457), Some(Location::Well { plate: 0, index: 0 }));
        assert_eq!(deck.locate(2983 + 15, 1457 - 15), Some(Location::Well { plate: 0, index: 0 }));
        assert_eq!(deck.locate(2983 + 45, 1457), None);
        assert_eq!(deck.locate(4600, 900), Some(Location::Trough { trough: 0 }));
        assert_eq!(deck.locate(300, 300), Some(Location::Waste));
        assert_eq!(deck.locate(-5000, 0), None);
        assert_eq!(deck.tip_position(0, 12), Some((1179, 2328)));
    }

    #[test]
    fn wells_record_seeding_and_exposure() {
        let mut deck: Deck<1, 96> = default_deck();
        let well = Location::Well { plate: 0, index: 5 };
        let cells = deck.take(Location::Trough { trough: 0 }, 100.0);
        deck.put(well, cells, Some(TroughContent::Cells { line: 3 }));
        deck.plates[0].clock_h = 24.0;
        let stock = deck.take(Location::Trough { trough: 2 }, 5.0);
        deck.put(well, stock, Some(TroughContent::Compound { compound: 6 }));
        let w = deck.plates[0].wells[5];
        assert_eq!(w.seeded_at_h, Some(0.0));
        assert_eq!(w.seeded_cells, 10_000.0);
        let (at, um) = w.treated.unwrap();
        assert_eq!(at, 24.0);
        assert!((um - 5000.0 / 105.0).abs() < 1e-9);
        assert_eq!((deck.plates[0].line, deck.plates[0].compound), (Some(3), Some(6)));
    }
}
