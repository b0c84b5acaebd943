//! Benchmark of the dose-search strategies against the model's noisy readouts.
//!
//! For U2OS, HepG2 and A549, each strategy runs for 300 seeds; every well is simulated through the
//! growth model (seed 10,000 cells, 24 h, tBHP, 24 h, read) with the noise of `MODEL.md` §3. The error is
//! measured against the noise-free optimum, found here by bisection on the mean readouts. One line per
//! (line, strategy):
//!
//! `line=U2OS strategy=adaptive rounds=<mean> wells=<mean> median_err_pct=<…> p90_err_pct=<…> within10_pct=<…> coverage90_pct=<…>`
//! (strategies `grid`, `adaptive`, and `adaptive_fitted_plateau`: the untreated viability fitted rather
//! than held known)
//!
//! then the trade-off of the adaptive search, a table of the 90th-percentile error (%) by the most rounds
//! it may take and its well budget (8 scouts, then equal batches), per line:
//!
//! `table line=HepG2 rounds=3 wells=48 p90_err_pct=<…>`
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

/// What `seeds` runs of one search gave: sorted errors (%), mean rounds, mean wells, interval coverage (%).
struct Runs {
    errors: Vec<f64>,
    rounds: f64,
    wells: f64,
    coverage: f64,
}

fn run(assay: &TbhpAssay, truth: f64, strategy: Strategy, config: SearchConfig, seeds: u64) -> Runs {
    let mut errors = Vec::new();
    let (mut wells, mut covered, mut rounds) = (0u64, 0u64, 0u64);
    for seed in 0..seeds {
        let mut rng = seeded(seed);
        let mut search = DoseSearch::new(strategy, config).expect("valid config");
        let mut doses = [0.0; MAX_WELLS];
        let result = loop {
            match search.next(&mut doses).expect("search step") {
                Step::Done(r) => break r,
                Step::Batch(n) => {
                    rounds += 1;
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
    let n = seeds as f64;
    Runs { errors, rounds: rounds as f64 / n, wells: wells as f64 / n, coverage: covered as f64 / n * 100.0 }
}

fn main() {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let lines = ["U2OS", "HepG2", "A549"];
    for line in lines {
        let assay = TbhpAssay::builtin(line).expect("built-in tBHP set");
        let truth = assay.optimum(&Criteria::default(), 0.0, 500.0);
        let fitted = SearchConfig { viability_plateau: None, ..SearchConfig::adaptive() };
        for (name, strategy, config) in [
            ("grid", Strategy::Grid, SearchConfig::legacy_grid()),
            ("adaptive", Strategy::Adaptive, SearchConfig::adaptive()),
            // The untreated viability fitted from the treated wells instead of held known.
            ("adaptive_fitted_plateau", Strategy::Adaptive, fitted),
        ] {
            let r = run(&assay, truth, strategy, config, seeds);
            let within10 = r.errors.iter().filter(|e| **e <= 10.0).count() as f64 / r.errors.len() as f64 * 100.0;
            println!(
                "line={line} strategy={name} rounds={:.2} wells={:.1} median_err_pct={:.2} p90_err_pct={:.2} within10_pct={:.1} coverage90_pct={:.1}",
                r.rounds,
                r.wells,
                percentile(&r.errors, 0.5),
                percentile(&r.errors, 0.9),
                within10,
                r.coverage,
            );
        }
    }
    // The trade-off: rounds against wells.
    let (round_counts, budgets) = ([2u16, 3, 4, 6], [24u16, 36, 48]);
    let mut rows = Vec::new();
    for line in lines {
        let assay = TbhpAssay::builtin(line).expect("built-in tBHP set");
        let truth = assay.optimum(&Criteria::default(), 0.0, 500.0);
        for rounds in round_counts {
            let mut row = Vec::new();
            for budget in budgets {
                let scouts = 8;
                let config = SearchConfig {
                    budget_wells: budget,
                    scout_wells: scouts,
                    batch_wells: (budget - scouts).div_ceil(rounds - 1),
                    ..SearchConfig::adaptive()
                };
                let p90 = percentile(&run(&assay, truth, Strategy::Adaptive, config, seeds).errors, 0.9);
                println!("table line={line} rounds={rounds} wells={budget} p90_err_pct={p90:.2}");
                row.push(p90);
            }
            rows.push((line, rounds, row));
        }
    }
    println!("p90 error (%) by rounds and wells:");
    print!("{:>8} {:>6}", "line", "rounds");
    for w in budgets {
        print!(" {:>9}", format!("{w} wells"));
    }
    println!();
    for (line, rounds, row) in rows {
        print!("{line:>8} {rounds:>6}");
        for p in row {
            print!(" {p:>9.2}");
        }
        println!();
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
