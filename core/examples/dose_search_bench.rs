//! Benchmark of the dose-search strategies against the model's noisy readouts.
//!
//! For U2OS, HepG2 and A549, each strategy runs for 300 seeds; every well is simulated through the
//! growth model (seed 10,000 cells, 24 h, tBHP, 24 h, read) with the noise of `MODEL.md` §3. The error is
//! measured against the noise-free optimum, found here by bisection on the mean readouts. One line per
//! (line, strategy):
//!
//! `line=U2OS strategy=adaptive wells=<mean> median_err_pct=<…> p90_err_pct=<…> within10_pct=<…> coverage90_pct=<…>`
//!
//! then `fit_4pl_us=<µs for one 96-point 4PL fit>` and `search_state_bytes=<size of the search state>`.
//!
//! Run: `cargo run --release -p cellos-core --example dose_search_bench [SEEDS]`

use std::time::Instant;

use cellos_core::fit::{FitOptions, fit_four_pl};
use cellos_core::readout::FourPl;
use cellos_core::rng::{normal, seeded};
use cellos_core::search::{Criteria, DoseSearch, MAX_WELLS, SearchConfig, Step, Strategy, TbhpAssay};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    for line in ["U2OS", "HepG2", "A549"] {
        let assay = TbhpAssay::builtin(line).expect("built-in tBHP set");
        let truth = assay.optimum(&Criteria::default(), 0.0, 500.0);
        for (strategy, config) in
            [(Strategy::Grid, SearchConfig::legacy_grid()), (Strategy::Adaptive, SearchConfig::adaptive())]
        {
            let mut errors = Vec::new();
            let (mut wells, mut covered) = (0u64, 0u64);
            for seed in 0..seeds {
                let mut rng = seeded(seed);
                let mut search = DoseSearch::new(strategy, config).expect("valid config");
                let mut doses = [0.0; MAX_WELLS];
                let result = loop {
                    match search.next(&mut doses).expect("search step") {
                        Step::Done(r) => break r,
                        Step::Batch(n) => {
                            let obs: Vec<_> = doses[..n].iter().map(|&d| assay.sample(d, &mut rng)).collect();
                            search.observe(&obs).expect("observe");
                        }
                    }
                };
                errors.push(((result.dose_um - truth) / truth).abs() * 100.0);
                wells += u64::from(result.wells);
                covered += u64::from(result.lo_um <= truth && truth <= result.hi_um);
            }
            errors.sort_by(f64::total_cmp);
            let within10 = errors.iter().filter(|e| **e <= 10.0).count() as f64 / errors.len() as f64 * 100.0;
            println!(
                "line={line} strategy={} wells={:.1} median_err_pct={:.2} p90_err_pct={:.2} within10_pct={:.1} coverage90_pct={:.1}",
                match strategy {
                    Strategy::Grid => "grid",
                    Strategy::Adaptive => "adaptive",
                },
                wells as f64 / seeds as f64,
                percentile(&errors, 0.5),
                percentile(&errors, 0.9),
                within10,
                covered as f64 / seeds as f64 * 100.0,
            );
        }
    }

    // One 96-point 4PL fit: 8 replicates at 12 doses, 3 % noise.
    let truth = FourPl { bottom: 0.0, top: 1.0, ic50: 0.3, hill: 1.0 };
    let doses = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0];
    let mut rng = seeded(99);
    let xs: Vec<f64> = (0..96).map(|i| doses[i % 12]).collect();
    let ys: Vec<f64> = xs.iter().map(|&x| truth.eval(x) * normal(&mut rng, 1.0, 0.03)).collect();
    let options = FitOptions::default();
    let reps = 20_000;
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(fit_four_pl(std::hint::black_box(&xs), &ys, None, None, &options).expect("fit"));
    }
    println!("fit_4pl_us={:.2}", start.elapsed().as_secs_f64() / f64::from(reps) * 1e6);
    println!("search_state_bytes={}", std::mem::size_of::<DoseSearch>());
}
