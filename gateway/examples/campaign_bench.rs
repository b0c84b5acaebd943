//! Benchmark of the demo campaign's throughput and accuracy: the README's main job (U2OS, HepG2 and
//! A549, 45 wells each) on an instrument twin for N seeds, each in a fresh data directory.
//!
//! For each seed the twin runs in this process on pty pairs, with the seed as its noise seed and the
//! campaign's. At the end the lab-time figures (the calendar, the robot's hours on the twin's eight
//! channels, and the same iterations planned on one channel, in the same run) and each line's dose error
//! against the model's noise-free optimum are gathered. Prints per seed
//! `seed=<s> calendar_days=<…> robot_hours=<…> robot_hours_single_channel=<…> tips=<…> twin_robot_hours=<…>`
//! (the twin's own count) and each line's `err_pct_<line>=<…>`, then over all seeds
//! `calendar_days=<max> robot_hours=<mean> robot_hours_single_channel=<mean> robot_pct_of_single=<…> tips=<mean>`
//! and per line `line=<L> wells=<max> rounds=<max> median_err_pct=<…> p90_err_pct=<…>`.
//!
//! Run: `cargo run --release -p cellos-gateway --example campaign_bench [SEEDS [FIRST]]` (default 100
//! seeds from seed 1).

use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::campaign::{self, Event};
use cellos_gateway::cli::{Hooks, Ports, Start, drive};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let first: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let root = std::env::temp_dir().join(format!("cellos-campaign-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lines = campaign::CampaignConfig::demo().lines;
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); lines.len()];
    let mut wells = vec![0u16; lines.len()];
    let (mut days, mut robot, mut single, mut tips, mut rounds) = (0.0f64, 0.0, 0.0, 0.0, 0usize);
    for seed in first..first + seeds {
        let dir = root.join(format!("seed-{seed}"));
        std::fs::create_dir_all(&dir)?;
        let deck = campaign::deck_model(&lines)?;
        let twin = TwinServer::start(HostTwin::with_deck(deck, seed, Timing::INSTANT), None, None, None)?;
        let ports = Ports::lines(Some(dir.clone()), Some(twin.star.clone()), Some(twin.reader.clone()));
        let config = campaign::CampaignConfig { seed, ..campaign::CampaignConfig::demo() };
        let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let hooks = Hooks { events: Some(events), control: None };
        let (_, results) = runtime.block_on(drive(Start::New, config, &dir, &ports, false, hooks))?;
        let mut lab = None;
        while let Ok(e) = seen.try_recv() {
            match e {
                Event::LabTime { measured, single_channel_robot_hours } => {
                    lab = Some((measured, single_channel_robot_hours))
                }
                Event::Iteration { iteration, .. } => rounds = rounds.max(iteration as usize),
                _ => {}
            }
        }
        let (m, s) = lab.ok_or("the campaign reported no lab time")?;
        let twin_hours = twin.twin.lock().map_err(|_| "twin lock")?.counters.lab_ms as f64 / 3.6e6;
        print!(
            "seed={seed} calendar_days={:.2} robot_hours={:.3} robot_hours_single_channel={s:.3} tips={} twin_robot_hours={twin_hours:.3}",
            m.calendar_days, m.robot_hours, m.tips
        );
        for (k, r) in results.iter().enumerate() {
            let err = ((r.dose_um - r.optimum_um) / r.optimum_um).abs() * 100.0;
            print!(" err_pct_{}={err:.3}", r.line);
            errors[k].push(err);
            wells[k] = wells[k].max(r.wells);
        }
        println!();
        days = days.max(m.calendar_days);
        robot += m.robot_hours;
        single += s;
        tips += m.tips as f64;
        drop(twin);
        std::fs::remove_dir_all(&dir)?;
    }
    let n = seeds as f64;
    println!(
        "calendar_days={days:.2} robot_hours={:.3} robot_hours_single_channel={:.3} robot_pct_of_single={:.1} tips={:.1}",
        robot / n,
        single / n,
        100.0 * robot / single,
        tips / n
    );
    for (k, line) in lines.iter().enumerate() {
        let e = &mut errors[k];
        e.sort_by(f64::total_cmp);
        println!(
            "line={line} wells={} rounds={rounds} median_err_pct={:.2} p90_err_pct={:.2}",
            wells[k],
            percentile(e, 0.5),
            percentile(e, 0.9)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
