//! A deck description as a file holds it (TOML on a host, see `docs/twin.md`), and the deck built from
//! it. The types deserialize with serde and need no heap, so the gateway, the host twin and anything else
//! read one schema and check it one way; the text format is the caller's (`toml::from_str::<DeckFile>`).

use core::fmt;

use serde::{Deserialize, Serialize};

use super::{Deck, Liquid, MAX_TIP_RACKS, MAX_TROUGHS, NAME_LEN, Name, Plate, TipRack, Trough, TroughContent};
use super::{compound_index, line_index};
use crate::plate::PlateFormat;

/// Plates a deck file may hold.
pub const MAX_PLATES: usize = 8;

/// A deck file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeckFile {
    /// Tip racks.
    #[serde(default)]
    pub tip_rack: heapless::Vec<TipRackFile, MAX_TIP_RACKS>,
    /// Plates.
    #[serde(default)]
    pub plate: heapless::Vec<PlateFile, MAX_PLATES>,
    /// Troughs.
    #[serde(default)]
    pub trough: heapless::Vec<TroughFile, MAX_TROUGHS>,
    /// The tip waste.
    pub waste: RectFile,
}

/// A tip rack in a deck file: A1 centre, format, tip capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TipRackFile {
    /// Name.
    pub name: Name,
    /// A1 centre x, 0.1 mm.
    pub x: i32,
    /// A1 centre y, 0.1 mm.
    pub y: i32,
    /// Wells (96 unless given).
    #[serde(default = "default_format")]
    pub format: u16,
    /// Tip capacity, µL.
    pub tip_volume_ul: f64,
}

/// A plate in a deck file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateFile {
    /// Name.
    pub name: Name,
    /// A1 centre x, 0.1 mm.
    pub x: i32,
    /// A1 centre y, 0.1 mm.
    pub y: i32,
    /// Wells (96 unless given).
    #[serde(default = "default_format")]
    pub format: u16,
    /// Working capacity of a well, µL.
    pub well_capacity_ul: f64,
}

/// A trough in a deck file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TroughFile {
    /// Name.
    pub name: Name,
    /// Lower-left corner x, 0.1 mm.
    pub x: i32,
    /// Lower-left corner y, 0.1 mm.
    pub y: i32,
    /// Extent in x, 0.1 mm.
    pub width: i32,
    /// Extent in y, 0.1 mm.
    pub depth: i32,
    /// Capacity, µL.
    pub capacity_ul: f64,
    /// Liquid in it at the start, µL.
    pub volume_ul: f64,
    /// `medium`, `cells`, `compound` or `virus`.
    pub content: Name,
    /// Cells: the built-in cell line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<Name>,
    /// Cells: per µL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells_per_ul: Option<f64>,
    /// Compound: the built-in compound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compound: Option<Name>,
    /// Compound: concentration, µM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concentration_um: Option<f64>,
    /// Virus: transducing units per µL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub titer_tu_per_ul: Option<f64>,
}

/// A rectangle of the deck: lower-left corner and extent, 0.1 mm.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RectFile {
    /// x, 0.1 mm.
    pub x: i32,
    /// y, 0.1 mm.
    pub y: i32,
    /// Extent in x, 0.1 mm.
    pub width: i32,
    /// Extent in y, 0.1 mm.
    pub depth: i32,
}

fn default_format() -> u16 {
    96
}

/// Why a deck file does not make a deck. Each names the labware.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DeckFileError {
    /// A well count that is not a plate format.
    Format {
        /// The labware.
        name: Name,
        /// Its well count.
        wells: u16,
    },
    /// More labware of a kind than the deck holds.
    TooMany {
        /// `tip racks`, `plates`, `troughs`.
        what: &'static str,
        /// The most.
        most: usize,
    },
    /// A plate with more wells than the deck's plates hold.
    TooManyWells {
        /// The plate.
        name: Name,
        /// The most.
        most: usize,
    },
    /// A trough content that needs a field without it.
    Missing {
        /// The trough.
        name: Name,
        /// The field.
        field: &'static str,
    },
    /// A cell line or compound not in the built-in table.
    Unknown {
        /// The trough.
        name: Name,
        /// `cell line` or `compound`.
        what: &'static str,
        /// What the file says.
        value: Name,
    },
    /// A content that is not medium, cells, compound or virus.
    Content {
        /// The trough.
        name: Name,
        /// What the file says.
        value: Name,
    },
    /// A volume, capacity or concentration that is negative or not a number.
    BadAmount {
        /// The labware.
        name: Name,
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for DeckFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeckFileError::Format { name, wells } => {
                write!(f, "{name}: {wells} wells is not a plate format (6, 24, 96, 384, 1536)")
            }
            DeckFileError::TooMany { what, most } => write!(f, "at most {most} {what}"),
            DeckFileError::TooManyWells { name, most } => write!(f, "{name}: at most {most} wells"),
            DeckFileError::Missing { name, field } => write!(f, "{name}: this content needs `{field}`"),
            DeckFileError::Unknown { name, what, value } => write!(f, "{name}: unknown {what} {value}"),
            DeckFileError::Content { name, value } => {
                write!(f, "{name}: content `{value}` is not medium, cells, compound or virus")
            }
            DeckFileError::BadAmount { name, field } => write!(f, "{name}: `{field}` must be a number ≥ 0"),
        }
    }
}

impl core::error::Error for DeckFileError {}

/// Longest labware name a file may give (longer ones do not deserialize).
pub const MAX_NAME: usize = NAME_LEN;

impl DeckFile {
    /// The deck the file describes: full tip racks, empty plates, troughs with their liquid.
    pub fn build<const P: usize, const W: usize>(&self) -> Result<Deck<P, W>, DeckFileError> {
        let mut d = Deck::empty();
        self.build_into(&mut d)?;
        Ok(d)
    }

    /// Builds the deck in place of `d`, whatever it held (a microcontroller keeps its deck in a static
    /// and has no stack for a second one). On an error `d` holds part of the deck.
    pub fn build_into<const P: usize, const W: usize>(&self, d: &mut Deck<P, W>) -> Result<(), DeckFileError> {
        let format = |wells: u16, name: &Name| {
            PlateFormat::from_well_count(wells).ok_or_else(|| DeckFileError::Format { name: name.clone(), wells })
        };
        let amount = |v: f64, name: &Name, field: &'static str| {
            if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(DeckFileError::BadAmount { name: name.clone(), field }) }
        };
        d.tip_racks.clear();
        d.plates.clear();
        d.troughs.clear();
        for r in &self.tip_rack {
            let volume = amount(r.tip_volume_ul, &r.name, "tip_volume_ul")?;
            let rack = TipRack::full(&r.name, r.x, r.y, format(r.format, &r.name)?, libm::round(volume * 10.0) as u32);
            d.tip_racks.push(rack).map_err(|_| DeckFileError::TooMany { what: "tip racks", most: MAX_TIP_RACKS })?;
        }
        for p in &self.plate {
            let capacity = amount(p.well_capacity_ul, &p.name, "well_capacity_ul")?;
            let format = format(p.format, &p.name)?;
            let too_many_wells = || DeckFileError::TooManyWells { name: p.name.clone(), most: W };
            if usize::from(format.wells()) > W {
                return Err(too_many_wells());
            }
            d.plates
                .push(Plate::without_wells(&p.name, p.x, p.y, format, capacity))
                .map_err(|_| DeckFileError::TooMany { what: "plates", most: P })?;
            if !d.plates.last_mut().is_some_and(Plate::fill_wells) {
                return Err(too_many_wells());
            }
        }
        for t in &self.trough {
            let name = &t.name;
            let need = |v: Option<f64>, field: &'static str| {
                v.ok_or_else(|| DeckFileError::Missing { name: name.clone(), field })
                    .and_then(|v| amount(v, name, field))
            };
            let volume_ul = amount(t.volume_ul, name, "volume_ul")?;
            let capacity_ul = amount(t.capacity_ul, name, "capacity_ul")?;
            let (content, liquid) = match t.content.as_str() {
                "medium" => (TroughContent::Medium, Liquid { volume_ul, ..Liquid::default() }),
                "cells" => {
                    let line_name =
                        t.line.as_ref().ok_or_else(|| DeckFileError::Missing { name: name.clone(), field: "line" })?;
                    let line = line_index(line_name).ok_or_else(|| DeckFileError::Unknown {
                        name: name.clone(),
                        what: "cell line",
                        value: line_name.clone(),
                    })?;
                    let cells = volume_ul * need(t.cells_per_ul, "cells_per_ul")?;
                    (TroughContent::Cells { line }, Liquid { volume_ul, cells, ..Liquid::default() })
                }
                "compound" => {
                    let c = t
                        .compound
                        .as_ref()
                        .ok_or_else(|| DeckFileError::Missing { name: name.clone(), field: "compound" })?;
                    let compound = compound_index(c).ok_or_else(|| DeckFileError::Unknown {
                        name: name.clone(),
                        what: "compound",
                        value: c.clone(),
                    })?;
                    let pmol = volume_ul * need(t.concentration_um, "concentration_um")?;
                    (
                        TroughContent::Compound { compound },
                        Liquid { volume_ul, compound_pmol: pmol, ..Liquid::default() },
                    )
                }
                "virus" => {
                    let tu = volume_ul * need(t.titer_tu_per_ul, "titer_tu_per_ul")?;
                    (TroughContent::Virus, Liquid { volume_ul, virus_tu: tu, ..Liquid::default() })
                }
                _ => return Err(DeckFileError::Content { name: name.clone(), value: t.content.clone() }),
            };
            let trough = Trough {
                name: name.clone(),
                x_01mm: t.x,
                y_01mm: t.y,
                width_01mm: t.width,
                depth_01mm: t.depth,
                capacity_ul,
                content,
                liquid,
            };
            d.troughs.push(trough).map_err(|_| DeckFileError::TooMany { what: "troughs", most: MAX_TROUGHS })?;
        }
        d.waste = (self.waste.x, self.waste.y, self.waste.width, self.waste.depth);
        Ok(())
    }
}
