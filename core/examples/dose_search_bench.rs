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
//! then, per line, what a well-placed design should give: `c_optimal line=HepG2 wells=48 p90_err_pct=<…>
//! p90_err_pct_independent_fits=<…> design_um_share=<dose:share,…>`, the locally c-optimal design (at the true curves, with the noise of
//! `MODEL.md` §3; the plateaus known, as in `adaptive`) and the 90th percentile of its linearised error,
//! with the viability and quality fits joint (their per-well errors correlate through the viability
//! reading) and taken as independent (as the search does), and the doses of the joint design with at
//! least 2 % of its wells each (neighbouring doses of the grid share a peak). It is a guide, not a bound: the
//! linearisation is approximate, and the search's nonlinear fits can come out a little below it;
//!
//! then `fit_4pl_us=<µs for one 96-point 4PL fit>` and `search_state_bytes=<size of the search state>`.
//!
//! Run: `cargo run --release -p cellos-core --example dose_search_bench [SEEDS]`

use std::time::Instant;

use cellos_core::fit::{FitOptions, fit_four_pl};
use cellos_core::model::INITIAL_VIABILITY;
use cellos_core::readout::FourPl;
use cellos_core::readout::SEGMENTATION_CV;
use cellos_core::rng::{normal, seeded};
use cellos_core::search::{Criteria, DoseSearch, MAX_WELLS, SearchConfig, Step, Strategy, TbhpAssay};

/// The 95th percentile of a standard normal: a two-sided 90 % interval's half width, in SDs.
const Z90: f64 = 1.6448536269514722;

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
    for line in lines {
        let assay = TbhpAssay::builtin(line).expect("built-in tBHP set");
        let ((joint, design), (independent, _)) = (c_optimal_p90(&assay, 48, true), c_optimal_p90(&assay, 48, false));
        let design: Vec<String> = design.iter().map(|(d, w)| format!("{d:.0}:{w:.2}")).collect();
        println!(
            "c_optimal line={line} wells=48 p90_err_pct={joint:.2} p90_err_pct_independent_fits={independent:.2} design_um_share={}",
            design.join(",")
        );
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

/// The model's parameters a search fits when the plateaus are known: viability `[ln IC50, hill]`,
/// quality `[bottom, ln IC50, hill]`.
type Theta = [f64; 5];

/// `(ln V, ln Q)` at a dose: the mean viability and segmentation quality per unit viability.
fn curves(t: &Theta, dose: f64) -> (f64, f64) {
    let v = INITIAL_VIABILITY / (1.0 + (dose / t[0].exp()).powf(t[1]));
    let q = t[2] + (1.0 - t[2]) / (1.0 + (dose / t[3].exp()).powf(t[4]));
    (v.ln(), q.ln())
}

/// `ln D*`: where the first criterion fails (bisection on `ln D` over 1–500 µM).
fn ln_boundary(t: &Theta, c: &Criteria) -> f64 {
    let ok = |ln_d: f64| {
        let (v, q) = curves(t, ln_d.exp());
        v >= c.min_viability.ln() && v + q >= c.min_segmentation.ln()
    };
    let (mut a, mut b) = (0.0f64, 500.0f64.ln());
    for _ in 0..100 {
        let m = 0.5 * (a + b);
        if ok(m) { a = m } else { b = m }
    }
    0.5 * (a + b)
}

/// Central differences of `f` in each parameter.
fn gradient<const N: usize>(t: &Theta, f: impl Fn(&Theta) -> [f64; N]) -> [[f64; 5]; N] {
    let mut g = [[0.0; 5]; N];
    for i in 0..5 {
        let h = 1e-6 * (1.0 + t[i].abs());
        let (mut up, mut down) = (*t, *t);
        up[i] += h;
        down[i] -= h;
        let (fu, fd) = (f(&up), f(&down));
        for k in 0..N {
            g[k][i] = (fu[k] - fd[k]) / (2.0 * h);
        }
    }
    g
}

/// `x` with `m x = b` (Gaussian elimination, partial pivoting).
fn solve(mut m: [[f64; 5]; 5], mut b: [f64; 5]) -> [f64; 5] {
    for col in 0..5 {
        let p = (col..5).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs())).unwrap_or(col);
        m.swap(col, p);
        b.swap(col, p);
        for r in col + 1..5 {
            let f = m[r][col] / m[col][col];
            for k in col..5 {
                m[r][k] -= f * m[col][k];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0; 5];
    for r in (0..5).rev() {
        x[r] = (b[r] - (r + 1..5).map(|k| m[r][k] * x[k]).sum::<f64>()) / m[r][r];
    }
    x
}

/// The 90th-percentile dose error (%) of the locally c-optimal design of `wells` wells over 80
/// log-spaced doses from 20 µM to 500 µM, found by the multiplicative algorithm. Each well gives
/// `ln viability` and `ln (segmentation / viability)`, whose errors are `ε_bio + ε_via` and
/// `ε_seg − ε_via`; `joint` keeps their covariance, else each fit has its own variance only. Also the
/// design: each dose with at least 2 % of the wells, and its share.
fn c_optimal_p90(assay: &TbhpAssay, wells: usize, joint: bool) -> (f64, Vec<(f64, f64)>) {
    let c = Criteria::default();
    let t: Theta = [
        assay.toxicity.ic50_um.ln(),
        assay.toxicity.hill,
        assay.segmentation.min_quality,
        assay.segmentation.degradation_ic50_um.ln(),
        assay.segmentation.hill,
    ];
    let g = gradient(&t, |t| [ln_boundary(t, &c)])[0];
    let (bio, via, seg) = (assay.line.biological_cv, assay.line.viability_cv, SEGMENTATION_CV);
    let (a, b, cross) = (bio * bio + via * via, seg * seg + via * via, if joint { -via * via } else { 0.0 });
    let det = a * b - cross * cross;
    let inv = [[b / det, -cross / det], [-cross / det, a / det]];
    let doses: Vec<f64> = (0..80).map(|k| (20.0f64.ln() + (500.0f64 / 20.0).ln() * k as f64 / 79.0).exp()).collect();
    let infos: Vec<[[f64; 5]; 5]> = doses
        .iter()
        .map(|&d| {
            let j = gradient(&t, |t| {
                let (v, q) = curves(t, d);
                [v, q]
            });
            let mut m = [[0.0; 5]; 5];
            for (x, row) in m.iter_mut().enumerate() {
                for (y, cell) in row.iter_mut().enumerate() {
                    *cell = (0..2)
                        .flat_map(|p| (0..2).map(move |q| (p, q)))
                        .map(|(p, q)| j[p][x] * inv[p][q] * j[q][y])
                        .sum();
                }
            }
            m
        })
        .collect();
    let total = |w: &[f64]| {
        let mut m = [[0.0; 5]; 5];
        for (wi, info) in w.iter().zip(&infos) {
            for x in 0..5 {
                for y in 0..5 {
                    m[x][y] += wi * info[x][y];
                }
            }
        }
        m
    };
    let mut w = vec![1.0 / doses.len() as f64; doses.len()];
    for _ in 0..5000 {
        let u = solve(total(&w), g);
        for (wi, info) in w.iter_mut().zip(&infos) {
            let d: f64 = (0..5).flat_map(|x| (0..5).map(move |y| (x, y))).map(|(x, y)| u[x] * info[x][y] * u[y]).sum();
            *wi *= d.max(0.0).sqrt();
        }
        let sum: f64 = w.iter().sum();
        w.iter_mut().for_each(|wi| *wi /= sum);
    }
    let var = solve(total(&w), g).iter().zip(&g).map(|(u, gi)| u * gi).sum::<f64>() / wells as f64;
    let design = doses.iter().zip(&w).filter(|(_, w)| **w >= 0.02).map(|(d, w)| (*d, *w)).collect();
    (100.0 * ((Z90 * var.sqrt()).exp() - 1.0), design)
}
