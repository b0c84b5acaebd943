//! The plate reader and incubator of the twin, served over `wire`.
//!
//! A well's culture is simulated by `cellos-core` from what was actually dispensed into it: the cells
//! from the cell-suspension trough (seeded when they arrived, on the plate's clock), the compound
//! concentration when the cells were first exposed to it, and the hours the plate has been incubated.
//! Nothing is stored between reads: a read replays the well's history through the growth model.
//!
//! All noise is a pure function of `(seed, plate, well, readout, simulated time)`: the treatment's
//! biological noise of `(seed, plate, well, "treat", exposure time)`, and each reading's of its own key. So
//! reading a well twice gives identical values, and a run interrupted and resumed reads what an
//! uninterrupted one would.
//!
//! ASSUMPTIONS, ours: one cell line and one compound per plate (the first to arrive); a well is exposed
//! once, at the concentration it has when compound first meets cells; a well's capacity is
//! `cellos_core::search::ASSAY_WELL_CAPACITY` cells at confluence 1.

use cellos_core::model::{CompoundId, Culture, GrowthConstants};
use cellos_core::params::builtin;
use cellos_core::proto::wire::{Readout, Refusal, WellContents};
use cellos_core::readout;
use cellos_core::rng::{SimRng, normal};
use cellos_core::search::ASSAY_WELL_CAPACITY;
use cellos_core::titer::{DEFAULT_READ_SD, Transduction};
use rand_core::SeedableRng;

use crate::deck::Deck;

/// The twin's largest BFP-positive fraction `A` (MODEL.md §5): the share of cells a lentivirus can reach.
pub const BFP_MAX_FRACTION: f64 = 0.85;

/// Mixes a key into a 64-bit seed (SplitMix64's finaliser).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator for one noise draw, keyed by everything the draw depends on.
pub fn keyed_rng(seed: u64, plate: u8, well: u16, what: u8, time_h: f64) -> SimRng {
    let mut k = mix(seed);
    for part in [u64::from(plate), u64::from(well), u64::from(what), time_h.to_bits()] {
        k = mix(k ^ part);
    }
    SimRng::seed_from_u64(k)
}

const TREAT_KEY: u8 = 0xff;

fn readout_key(r: Readout) -> u8 {
    match r {
        Readout::Viability => 0,
        Readout::CellRox => 1,
        Readout::Segmentation => 2,
        Readout::CellCount => 3,
        Readout::BfpFraction => 4,
    }
}

/// The state of a well's contents as the host sees them.
pub fn well_contents<const P: usize, const W: usize>(
    deck: &Deck<P, W>,
    plate: u8,
    well: u16,
) -> Result<WellContents, Refusal> {
    let p = deck.plates.get(usize::from(plate)).ok_or(Refusal::NoSuchPlate)?;
    let w = usize::from(well).checked_sub(1).and_then(|i| p.wells.get(i)).ok_or(Refusal::NoSuchWell)?;
    Ok(WellContents {
        volume_ul: w.liquid.volume_ul,
        compound_um: w.liquid.concentration_um(),
        cells: w.liquid.cells,
        incubated_h: p.clock_h,
    })
}

/// Advances a plate's clock.
pub fn incubate<const P: usize, const W: usize>(deck: &mut Deck<P, W>, plate: u8, hours: f64) -> Result<(), Refusal> {
    if !(hours.is_finite() && hours >= 0.0) {
        return Err(Refusal::BadValue);
    }
    let p = deck.plates.get_mut(usize::from(plate)).ok_or(Refusal::NoSuchPlate)?;
    p.clock_h += hours;
    Ok(())
}

/// Reads one well (1-based row-major) with noise keyed by `seed`.
pub fn read<const P: usize, const W: usize>(
    deck: &Deck<P, W>,
    seed: u64,
    plate: u8,
    well: u16,
    what: Readout,
) -> Result<f64, Refusal> {
    let p = deck.plates.get(usize::from(plate)).ok_or(Refusal::NoSuchPlate)?;
    let index = usize::from(well).checked_sub(1).filter(|i| *i < p.wells.len()).ok_or(Refusal::NoSuchWell)?;
    let w = &p.wells[index];
    let (Some(seeded_at), Some(line_index)) = (w.seeded_at_h, p.line) else { return Err(Refusal::EmptyWell) };
    let (_, line) = builtin::CELL_LINES[usize::from(line_index)];
    let line_name = builtin::CELL_LINES[usize::from(line_index)].0;
    let k = GrowthConstants::LEGACY;
    let edge = p.format.from_row_major(well).is_ok_and(|wl| p.format.is_edge(wl));
    let mut culture = Culture::seed(w.seeded_cells, ASSAY_WELL_CAPACITY, edge).map_err(|_| Refusal::EmptyWell)?;
    let now = p.clock_h;
    let mut dose_um = 0.0;
    let compound = p.compound.map(|c| &builtin::COMPOUNDS[usize::from(c)]);
    match (w.treated, compound) {
        (Some((at, conc)), Some(entry)) if at <= now => {
            let _ = culture.grow(&line, &k, at - seeded_at);
            dose_um = conc;
            let sensitivity = builtin::sensitivity(entry.name, line_name).map_err(|_| Refusal::BadValue)?;
            let mut rng = keyed_rng(seed, plate, well, TREAT_KEY, at);
            let _ = culture.treat(CompoundId(0), conc, &sensitivity, &line, &mut rng);
            let _ = culture.grow(&line, &k, now - at);
        }
        _ => {
            let _ = culture.grow(&line, &k, now - seeded_at);
        }
    }
    let mut rng = keyed_rng(seed, plate, well, readout_key(what), now);
    let value = match what {
        Readout::Viability => readout::read_viability(&culture, &line, &mut rng),
        Readout::CellCount => readout::read_cell_count(&culture, &line, &mut rng),
        Readout::CellRox => {
            let p = builtin::cellrox(line_name).map_err(|_| Refusal::BadValue)?;
            readout::read_cellrox(&p, &line, dose_um, &mut rng)
        }
        Readout::Segmentation => {
            let p = builtin::segmentation(line_name).map_err(|_| Refusal::BadValue)?;
            readout::read_segmentation(&p, dose_um, culture.viability(), &mut rng)
        }
        Readout::BfpFraction => {
            // MODEL.md §5 with the well's own virus (TU) and seeded cells; flow-cytometry noise.
            let t = Transduction { titer_tu_per_ul: 1.0, max_fraction: BFP_MAX_FRACTION, cells: w.seeded_cells };
            (t.fraction(w.liquid.virus_tu) + normal(&mut rng, 0.0, DEFAULT_READ_SD)).clamp(0.0, 1.0)
        }
    };
    Ok(value)
}
