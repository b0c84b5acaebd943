//! Property tests of the core model: step-size independence, monotonicity of every readout in dose,
//! and determinism per seed.

use cellos_core::model::{CompoundId, Culture, GrowthConstants, Plate};
use cellos_core::params::{CellLineParams, builtin};
use cellos_core::plate::PlateFormat;
use cellos_core::readout::{
    cellrox_mean, hill_activation, hill_inhibition, read_cellrox, read_segmentation, segmentation_mean,
};
use cellos_core::rng::{SimRng, seeded};
use proptest::prelude::*;

const K: GrowthConstants = GrowthConstants::LEGACY;

fn any_line() -> impl Strategy<Value = CellLineParams> {
    (0..builtin::CELL_LINES.len()).prop_map(|i| builtin::CELL_LINES[i].1)
}

fn tbhp_line() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("U2OS"), Just("HepG2"), Just("A549")]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Cutting a span of time into any number of calls gives the same culture as one call.
    #[test]
    fn step_size_independence(
        line in any_line(),
        cells in 1.0f64..2e6,
        capacity in 1e4f64..1e7,
        edge in any::<bool>(),
        age in 0.0f64..30.0,
        cuts in proptest::collection::vec(0.01f64..30.0, 1..40),
    ) {
        let start = Culture::seed(cells, capacity, edge).unwrap().with_age_h(age).unwrap();
        let total: f64 = cuts.iter().sum();
        let mut one = start.clone();
        one.grow(&line, &K, total).unwrap();
        let mut many = start;
        for dt in &cuts {
            many.grow(&line, &K, *dt).unwrap();
        }
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        prop_assert!(rel(one.cells(), many.cells()) < 1e-9, "cells {} vs {}", one.cells(), many.cells());
        prop_assert!(rel(one.viability(), many.viability()) < 1e-9,
            "viability {} vs {}", one.viability(), many.viability());
        prop_assert!(one.confluence() <= line.max_confluence.max(cells / capacity) * (1.0 + 1e-12));
    }

    /// Growth never shrinks a culture, and a longer time never gives fewer cells.
    #[test]
    fn growth_is_monotone_in_time(line in any_line(), cells in 1.0f64..1e6, a in 0.0f64..100.0, b in 0.0f64..100.0) {
        let (short, long) = if a < b { (a, b) } else { (b, a) };
        let start = Culture::seed(cells, 1e6, false).unwrap();
        let mut s = start.clone();
        s.grow(&line, &K, short).unwrap();
        let mut l = start;
        l.grow(&line, &K, long).unwrap();
        prop_assert!(s.cells() >= cells && l.cells() >= s.cells());
    }

    /// Every readout is monotone in dose: the means, and the noisy readings for the same noise draw.
    #[test]
    fn readouts_monotone_in_dose(name in tbhp_line(), d1 in 0.0f64..2000.0, d2 in 0.0f64..2000.0, seed in any::<u64>()) {
        let (lo, hi) = if d1 < d2 { (d1, d2) } else { (d2, d1) };
        let line = builtin::cell_line(name).unwrap();
        let cellrox = builtin::cellrox(name).unwrap();
        let seg = builtin::segmentation(name).unwrap();
        let tox = builtin::sensitivity("tbhp", name).unwrap();

        prop_assert!(cellrox_mean(&cellrox, lo) <= cellrox_mean(&cellrox, hi));
        prop_assert!(segmentation_mean(&seg, lo) >= segmentation_mean(&seg, hi));
        prop_assert!(hill_inhibition(lo, tox.ic50_um, tox.hill) >= hill_inhibition(hi, tox.ic50_um, tox.hill));
        prop_assert!(hill_activation(lo, 50.0, 1.8) <= hill_activation(hi, 50.0, 1.8));

        let rng = seeded(seed);
        prop_assert!(read_cellrox(&cellrox, &line, lo, &mut rng.clone()) <= read_cellrox(&cellrox, &line, hi, &mut rng.clone()));
        prop_assert!(read_segmentation(&seg, lo, 0.9, &mut rng.clone()) >= read_segmentation(&seg, hi, 0.9, &mut rng.clone()));

        // Treatment: viability and cells after the same draw fall with dose.
        let mut a = Culture::seed(1e4, 1e6, false).unwrap();
        let mut b = a.clone();
        a.treat(CompoundId(6), lo, &tox, &line, &mut rng.clone()).unwrap();
        b.treat(CompoundId(6), hi, &tox, &line, &mut rng.clone()).unwrap();
        prop_assert!(a.viability() >= b.viability() && a.cells() >= b.cells());
    }

    /// The same seed and the same calls give bit-identical plates and readings.
    #[test]
    fn deterministic_per_seed(seed in any::<u64>(), dose_step in 0.5f64..20.0) {
        let run = |seed: u64| -> Vec<u64> {
            let mut rng: SimRng = seeded(seed);
            let line = builtin::cell_line("A549").unwrap();
            let tox = builtin::sensitivity("tbhp", "A549").unwrap();
            let seg = builtin::segmentation("A549").unwrap();
            let format = PlateFormat::W24;
            let mut plate = Plate::<24>::new(format, line, K).unwrap();
            for w in format.wells_iter() {
                plate.seed(w, 5e3, 2e5).unwrap();
            }
            plate.advance(24.0).unwrap();
            for w in format.wells_iter() {
                plate.treat(w, CompoundId(6), dose_step * f64::from(w.col()), &tox, &mut rng).unwrap();
            }
            plate.advance(24.0).unwrap();
            plate.cultures()
                .flat_map(|(_, c)| {
                    let r = read_segmentation(&seg, c.dose_um(CompoundId(6)), c.viability(), &mut rng);
                    [c.cells().to_bits(), c.viability().to_bits(), r.to_bits()]
                })
                .collect()
        };
        let first = run(seed);
        prop_assert_eq!(&first, &run(seed));
        prop_assert_ne!(&first, &run(seed.wrapping_add(1)));
    }
}
