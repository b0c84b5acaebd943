//! Benchmark: one 384-well plate through seeding, growth, a tBHP dose series and readouts.
//!
//! Workload (one repetition): every well seeded with 5,000 U2OS cells (capacity 2e5), 24 h of growth in
//! one step, tBHP at 5 µM × (column − 1), then 72 steps of 1 h, then CellROX and segmentation read for
//! every well. A well-step is one well advanced by one call (the 24 h growth counts as one step), so a
//! repetition is 384 × 73 well-steps.
//!
//! Prints `well_steps_per_s=<n>` (best of several timed batches, one core) and
//! `plate_state_bytes=<size of the 384-well plate>`.
//!
//! Run: `cargo run --release -p cellos-core --example plate_sim`

use std::hint::black_box;
use std::time::Instant;

use cellos_core::model::{CompoundId, GrowthConstants, Plate};
use cellos_core::params::builtin;
use cellos_core::plate::PlateFormat;
use cellos_core::readout::{read_cellrox, read_segmentation};
use cellos_core::rng::seeded;

const TBHP: CompoundId = CompoundId(6);
const STEPS_PER_REP: u64 = 73;

fn one_plate(seed: u64) -> f64 {
    let line = builtin::cell_line("U2OS").unwrap();
    let tox = builtin::sensitivity("tbhp", "U2OS").unwrap();
    let cellrox = builtin::cellrox("U2OS").unwrap();
    let seg = builtin::segmentation("U2OS").unwrap();
    let format = PlateFormat::W384;
    let mut rng = seeded(seed);
    let mut plate = Plate::<384>::new(format, line, GrowthConstants::LEGACY).unwrap();
    for well in format.wells_iter() {
        plate.seed(well, 5_000.0, 2e5).unwrap();
    }
    plate.advance(24.0).unwrap();
    for well in format.wells_iter() {
        plate.treat(well, TBHP, 5.0 * f64::from(well.col()), &tox, &mut rng).unwrap();
    }
    for _ in 0..72 {
        plate.advance(1.0).unwrap();
    }
    let mut checksum = 0.0;
    for (_, c) in plate.cultures() {
        let dose = c.dose_um(TBHP);
        checksum += read_cellrox(&cellrox, &line, dose, &mut rng);
        checksum += read_segmentation(&seg, dose, c.viability(), &mut rng);
    }
    checksum
}

fn main() {
    let wells = u64::from(PlateFormat::W384.wells());
    // Warm up, then time batches of repetitions and keep the best.
    black_box(one_plate(0));
    let reps = 200;
    let mut best = f64::INFINITY;
    for batch in 0..5 {
        let start = Instant::now();
        for r in 0..reps {
            black_box(one_plate(batch * 1000 + r));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let well_steps = (reps * wells * STEPS_PER_REP) as f64;
    println!("well_steps_per_s={:.0}", well_steps / best);
    println!("plate_state_bytes={}", std::mem::size_of::<Plate<384>>());
}
