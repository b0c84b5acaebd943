//! A 96-well tBHP dose-response plate, simulated end to end and printed as a table.
//!
//! U2OS cells (10,000 per well) are seeded, grown 24 h, treated with tBHP along the plate's columns
//! (0 µM, then 11 log-spaced doses from 1 to 500 µM, eight replicate rows each), grown another 24 h, and
//! read: viability, CellROX and segmentation quality. The table gives mean ± SD per dose and marks the
//! doses that meet the assay's constraints (viability ≥ 0.70, segmentation ≥ 0.80).
//!
//! Run: `cargo run --release -p cellos-core --example plate_demo [LINE] [SEED]`

use cellos_core::model::{CompoundId, GrowthConstants, Plate};
use cellos_core::params::builtin;
use cellos_core::plate::PlateFormat;
use cellos_core::readout::{read_cellrox, read_segmentation, read_viability};
use cellos_core::rng::seeded;
use cellos_core::search::legacy_grid;

const TBHP: CompoundId = CompoundId(6);

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "U2OS".to_owned());
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);

    let line = builtin::cell_line(&name).map_err(|e| format!("{name}: {e}"))?;
    let tox = builtin::sensitivity("tbhp", &name).map_err(|e| format!("tBHP on {name}: {e}"))?;
    let cellrox = builtin::cellrox(&name).map_err(|e| format!("{name}: {e}"))?;
    let seg = builtin::segmentation(&name).map_err(|e| format!("{name}: {e}"))?;

    let format = PlateFormat::W96;
    // Column 1 untreated, columns 2..12 log-spaced from 1 to 500 µM: the legacy grid.
    let doses = legacy_grid(0.0, 500.0);

    let mut rng = seeded(seed);
    let mut plate = Plate::<96>::new(format, line, GrowthConstants::LEGACY)?;
    for well in format.wells_iter() {
        plate.seed(well, 10_000.0, 1e6)?;
    }
    plate.advance(24.0)?;
    for well in format.wells_iter() {
        plate.treat(well, TBHP, doses[usize::from(well.col())], &tox, &mut rng)?;
    }
    plate.advance(24.0)?;

    println!("cellos plate simulation: {name}, 96 wells, seed {seed}");
    println!("seeded 10,000 cells/well, 24 h growth, tBHP by column, 24 h exposure, 8 replicates per dose\n");
    println!("{:>9}  {:>15}  {:>17}  {:>15}  {:>9}  ok", "dose µM", "viability", "CellROX AU", "segmentation", "cells");
    for (c, dose) in doses.iter().enumerate() {
        let (mut v, mut s, mut q, mut n) = (vec![], vec![], vec![], vec![]);
        for row in 0..format.rows() {
            let culture = plate.culture(format.well(row, c as u8)?).ok_or("empty well")?;
            v.push(read_viability(culture, &line, &mut rng));
            s.push(read_cellrox(&cellrox, &line, *dose, &mut rng));
            q.push(read_segmentation(&seg, *dose, culture.viability(), &mut rng));
            n.push(culture.cells());
        }
        let ((vm, vs), (sm, ss), (qm, qs), (nm, _)) = (mean_sd(&v), mean_sd(&s), mean_sd(&q), mean_sd(&n));
        let ok = if vm >= 0.70 && qm >= 0.80 { "yes" } else { "no" };
        println!("{dose:>9.2}  {vm:>7.3} ± {vs:<5.3}  {sm:>8.1} ± {ss:<6.1}  {qm:>7.3} ± {qs:<5.3}  {nm:>9.0}  {ok}");
    }
    Ok(())
}
