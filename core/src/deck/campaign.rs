//! The deck of a dose-finding campaign, for its cell lines: two tip racks, an assay plate per line, a
//! dilution plate, a cell-suspension trough per line, medium, the 1 mM tBHP stock, the lentivirus and
//! the tip waste.
//!
//! One description for every side: the gateway writes it as the host twin's deck file and plans
//! against it; a twin without a file system (the Cortex-M3 image) builds the same deck in place from
//! the lines' built-in indices ([`DeckFile::build_into`]). So both twins start from one deck, value for
//! value.

use core::fmt;

use super::file::{DeckFile, PlateFile, RectFile, TipRackFile, TroughFile};
use super::name_of as name;
use crate::params::builtin;

/// Cell lines a campaign deck holds (each gets an assay plate and a cell trough).
pub const MAX_LINES: usize = 3;
/// Plates of a campaign deck: the assay plates and the dilution plate.
pub const MAX_PLATES: usize = MAX_LINES + 1;
/// Tip capacity, µL.
pub const TIP_UL: f64 = 360.0;
/// Cells per µL in the suspension troughs.
pub const CELLS_PER_UL: f64 = 100.0;
/// Stock concentration, µM.
pub const STOCK_UM: f64 = 1000.0;
/// The titer of the lentivirus trough, TU/µL.
pub const VIRUS_TITER_TU_PER_UL: f64 = 5000.0;

/// Plate positions (A1 centre, 0.1 mm): the assay plates in order, the dilution plate last.
const PLATE_AT: [(i32, i32); MAX_PLATES] = [(2983, 1457), (2983, 2557), (4283, 1457), (4283, 2557)];

/// Why lines do not make a campaign deck.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CampaignDeckError {
    /// No line, or more than [`MAX_LINES`].
    Lines(usize),
    /// A name that is not a built-in cell line (or a line index beyond the table).
    UnknownLine,
}

impl fmt::Display for CampaignDeckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CampaignDeckError::Lines(n) => write!(f, "a campaign deck holds 1 to {MAX_LINES} lines, not {n}"),
            CampaignDeckError::UnknownLine => f.write_str("not a built-in cell line"),
        }
    }
}

impl core::error::Error for CampaignDeckError {}

/// The lines of a campaign deck by their index in the built-in table, a `Copy` value that fits in one
/// message to a twin.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lines {
    count: u8,
    index: [u8; MAX_LINES],
}

impl Lines {
    /// The lines named (built-in names, any case).
    pub fn by_name<S: AsRef<str>>(names: &[S]) -> Result<Lines, CampaignDeckError> {
        if names.is_empty() || names.len() > MAX_LINES {
            return Err(CampaignDeckError::Lines(names.len()));
        }
        let mut index = [0; MAX_LINES];
        for (slot, n) in index.iter_mut().zip(names) {
            *slot = super::line_index(n.as_ref()).ok_or(CampaignDeckError::UnknownLine)?;
        }
        Ok(Lines { count: names.len() as u8, index })
    }

    /// The built-in names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.index[..usize::from(self.count).min(MAX_LINES)]
            .iter()
            .map(|&i| builtin::CELL_LINES.get(usize::from(i)).map_or("", |l| l.0))
    }

    /// The deck file of these lines, checked: each index names a built-in line.
    pub fn deck_file(&self) -> Result<DeckFile, CampaignDeckError> {
        let count = usize::from(self.count);
        if count == 0 || count > MAX_LINES {
            return Err(CampaignDeckError::Lines(count));
        }
        if self.index[..count].iter().any(|&i| usize::from(i) >= builtin::CELL_LINES.len()) {
            return Err(CampaignDeckError::UnknownLine);
        }
        Ok(build_file(self.names()))
    }
}

/// The deck file of a campaign on `lines` (built-in names in any case, 1 to [`MAX_LINES`]; the file
/// keeps each name as given).
pub fn deck_file<S: AsRef<str>>(lines: &[S]) -> Result<DeckFile, CampaignDeckError> {
    Lines::by_name(lines)?;
    Ok(build_file(lines.iter().map(AsRef::as_ref)))
}

fn numbered(prefix: &str, i: usize) -> super::Name {
    let mut n = name(prefix);
    let _ = n.push('_');
    let _ = n.push(char::from(b'1' + i as u8));
    n
}

fn build_file<'a>(lines: impl Iterator<Item = &'a str>) -> DeckFile {
    let mut f = DeckFile {
        tip_rack: heapless::Vec::new(),
        plate: heapless::Vec::new(),
        trough: heapless::Vec::new(),
        waste: RectFile { x: 100, y: 100, width: 800, depth: 2000 },
    };
    for (n, y) in [("TIPS_1", 2418), ("TIPS_2", 1418)] {
        let _ = f.tip_rack.push(TipRackFile { name: name(n), x: 1179, y, format: 96, tip_volume_ul: TIP_UL });
    }
    let trough = |name: super::Name, x: i32, capacity_ul: f64, volume_ul: f64, content: &str| TroughFile {
        name,
        x,
        y: 500,
        width: 190,
        depth: 1000,
        capacity_ul,
        volume_ul,
        content: self::name(content),
        line: None,
        cells_per_ul: None,
        compound: None,
        concentration_um: None,
        titer_tu_per_ul: None,
    };
    for (i, line) in lines.enumerate() {
        let (x, y) = PLATE_AT[i];
        let _ = f.plate.push(PlateFile { name: numbered("ASSAY", i), x, y, format: 96, well_capacity_ul: 300.0 });
        let cells = TroughFile {
            line: Some(name(line)),
            cells_per_ul: Some(CELLS_PER_UL),
            ..trough(numbered("CELLS", i), 6000 + 300 * i as i32, 100_000.0, 60_000.0, "cells")
        };
        let _ = f.trough.push(cells);
    }
    let (x, y) = PLATE_AT[MAX_LINES];
    let _ = f.plate.push(PlateFile { name: name("DILUTION"), x, y, format: 96, well_capacity_ul: 300.0 });
    let _ = f.trough.push(trough(name("MEDIUM"), 6900, 100_000.0, 80_000.0, "medium"));
    let _ = f.trough.push(TroughFile {
        compound: Some(name("tbhp")),
        concentration_um: Some(STOCK_UM),
        ..trough(name("STOCK"), 7200, 50_000.0, 20_000.0, "compound")
    });
    let _ = f.trough.push(TroughFile {
        titer_tu_per_ul: Some(VIRUS_TITER_TU_PER_UL),
        ..trough(name("VIRUS"), 7500, 5_000.0, 2_000.0, "virus")
    });
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deck::{Deck, TroughContent};

    #[test]
    fn the_demo_deck_has_a_plate_and_a_trough_per_line() {
        let f = deck_file(&["U2OS", "hepg2", "A549"]).unwrap();
        let d: Deck<MAX_PLATES, 96> = f.build().unwrap();
        let plates: heapless::Vec<&str, 4> = d.plates.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(plates.as_slice(), ["ASSAY_1", "ASSAY_2", "ASSAY_3", "DILUTION"]);
        assert_eq!(d.plates[2].x_01mm, 4283);
        assert_eq!(d.troughs.len(), 6);
        let hepg2 = crate::deck::line_index("HepG2").unwrap();
        assert_eq!(d.troughs[1].content, TroughContent::Cells { line: hepg2 });
        assert_eq!(d.troughs[1].liquid.cells, 60_000.0 * CELLS_PER_UL);
        assert_eq!(d.troughs[4].liquid.compound_pmol, 20_000.0 * STOCK_UM);
        assert_eq!(d.troughs[5].liquid.virus_tu, 2_000.0 * VIRUS_TITER_TU_PER_UL);
        assert_eq!(d.tip_racks[0].tip_volume_01ul, 3600);
        // The dilution plate stays at its place with one line.
        let one: Deck<MAX_PLATES, 96> = deck_file(&["A549"]).unwrap().build().unwrap();
        assert_eq!((one.plates.len(), one.plates[1].name.as_str(), one.plates[1].x_01mm), (2, "DILUTION", 4283));
    }

    #[test]
    fn lines_by_index_make_the_same_deck_as_by_name() {
        let lines = Lines::by_name(&["A549", "U2OS"]).unwrap();
        let names: heapless::Vec<&str, 3> = lines.names().collect();
        assert_eq!(names.as_slice(), ["A549", "U2OS"]);
        let by_name: Deck<MAX_PLATES, 96> = deck_file(&["a549", "u2os"]).unwrap().build().unwrap();
        let mut in_place: Deck<MAX_PLATES, 96> = crate::deck::default_deck();
        lines.deck_file().unwrap().build_into(&mut in_place).unwrap();
        assert_eq!(in_place, by_name);
        assert_eq!(deck_file::<&str>(&[]), Err(CampaignDeckError::Lines(0)));
        assert_eq!(deck_file(&["U2OS"; 4]), Err(CampaignDeckError::Lines(4)));
        assert_eq!(deck_file(&["HeLa-X"]), Err(CampaignDeckError::UnknownLine));
        let bad = Lines { count: 1, index: [200, 0, 0] };
        assert_eq!(bad.deck_file(), Err(CampaignDeckError::UnknownLine));
    }
}
