//! Seeded random lab instances of 20, 50, 100 and 200 tasks on three resources (capacities 4, 3, 2),
//! random demands and sparse precedences, solved with a 30 s limit. Prints one line per size:
//! `tasks=<n> makespan=<min> optimal=<bool> bound=<min> solve_ms=<ms>`. Then the legacy facility stress
//! test planned (banking model, shifting, a step-budgeted schedule per day): its time (median of 5), the
//! BSC violations before and after, and the minutes of all scheduled days.
//!
//! `cargo run --release -p cellos-host --example schedule_bench [SEED] [--dump DIR]`; with `--dump`, each
//! instance is also written as `DIR/bench-<n>-<seed>.json` (the `cellos schedule solve` input), so that
//! other solvers can be run on the same instances.

use std::time::{Duration, Instant};

use cellos_host::facility::{self, PlanInput};
use cellos_host::schedule::{Problem, check, solve};
use serde_json::json;

fn instance(n: usize, seed: u64) -> Problem {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let caps = [4u64, 3, 2];
    let resources: Vec<_> =
        caps.iter().enumerate().map(|(i, c)| json!({"id": format!("r{i}"), "capacity": c})).collect();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut needs = Vec::new();
            for (r, c) in caps.iter().enumerate() {
                if next(2) == 0 || (r == 2 && needs.is_empty()) {
                    needs.push(json!({"id": format!("r{r}"), "demand": 1 + next(*c)}));
                }
            }
            // Sparse precedence: about one predecessor per three tasks, among the last ten.
            let preds: Vec<String> =
                (i.saturating_sub(10)..i).filter(|_| next(30) == 0).map(|j| format!("t{j}")).collect();
            json!({"id": format!("t{i}"), "duration_min": 5 + next(56), "resources": needs, "predecessors": preds})
        })
        .collect();
    serde_json::from_value(json!({"resources": resources, "tasks": tasks, "horizon_min": 100_000}))
        .unwrap_or_else(|e| panic!("instance: {e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = args.first().and_then(|s| s.parse().ok()).unwrap_or(1);
    let dump = args.iter().position(|a| a == "--dump").and_then(|i| args.get(i + 1));
    for n in [20, 50, 100, 200] {
        let p = instance(n, seed);
        if let Some(dir) = dump {
            let path = std::path::Path::new(dir).join(format!("bench-{n}-{seed}.json"));
            std::fs::write(&path, serde_json::to_string(&p).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        match solve(&p, Duration::from_secs(30)) {
            Ok(s) => {
                assert!(check(&p, &s).is_ok());
                println!(
                    "tasks={n} makespan={} optimal={} bound={} solve_ms={}",
                    s.makespan_min, s.optimal, s.bound_min, s.solve_ms
                );
            }
            Err(e) => println!("tasks={n} error={e}"),
        }
    }
    let input: PlanInput = toml::from_str(include_str!("../tests/fixtures/facility_stress.toml"))
        .unwrap_or_else(|e| panic!("facility fixture: {e}"));
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t = Instant::now();
        last = Some(facility::plan(&input).unwrap_or_else(|e| panic!("facility plan: {e}")));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let plan = last.unwrap_or_else(|| unreachable!("planned five times"));
    let bsc = |v: &[facility::Violation]| v.iter().filter(|v| v.resource == "bsc").count();
    println!(
        "facility_stress_plan_ms={:.1} bsc_violations_before={} bsc_violations_after={} scheduled_min={}",
        times[2],
        bsc(&plan.violations_before),
        bsc(&plan.violations_after),
        plan.after.iter().map(|d| d.scheduled_min).sum::<u32>()
    );
}
