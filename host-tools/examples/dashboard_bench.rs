//! Benchmark of the dashboard's campaign page.
//!
//! Writes a dose-finding campaign with 10,000 measured wells (3 lines, 100 iterations of 32 dosed wells
//! and a few controls each, readings drawn from the tBHP assay model with its noise) into a fresh store,
//! then renders the campaign page — the store queries, three 4PL fits per line, five SVG charts and the
//! HTML — 20 times, as the server answers a request (`dashboard::Pool::answer`: on the connections
//! its workers hold, one of them lent to read half of the wells). Prints `campaign_page_ms=<median> max_ms=<…>
//! page_bytes=<…> measurements=<…>`, then the read of the campaign with its wells alone (median of 20),
//! on one connection and in two halves on two: `read_ms_one_connection=<…> read_ms_two_connections=<…>`.
//!
//! Run: `cargo run --release -p cellos-host --example dashboard_bench [MEASUREMENTS]`; with
//! `DASHBOARD_BENCH_PAGE=FILE` the page is also written to FILE, to look at.

use std::time::Instant;

use cellos_core::rng::seeded;
use cellos_core::search::TbhpAssay;
use cellos_host::store::Store;
use rusqlite::params;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wanted: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("cellos-dashboard-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open(&dir)?;
    let id = "bench_campaign";
    let now = cellos_host::time::now();
    store.campaigns.execute(
        "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, status, config, created_at) \
         VALUES (?1, 'dose_finding', 'optimal_tbhp_dose', ?2, 'running', ?3, ?2)",
        params![id, now, json!({ "lines": ["U2OS", "HepG2", "A549"], "dose_range_um": [0.0, 500.0] }).to_string()],
    )?;
    let lines = ["U2OS", "HepG2", "A549"];
    let mut rng = seeded(7);
    let (mut written, mut iteration) = (0usize, 0i64);
    let tx = store.results.transaction()?;
    let ctx = store.campaigns.transaction()?;
    while written < wanted {
        iteration += 1;
        let line = lines[(iteration as usize - 1) * lines.len() / 100 % lines.len()];
        let assay = TbhpAssay::builtin(line)?;
        for k in 0..36.min(wanted - written) {
            let control = k >= 32;
            let dose = if control { 0.0 } else { 5.0 * 60f64.powf(f64::from(k as u32) / 31.0) };
            let o = assay.sample(dose, &mut rng);
            tx.execute(
                "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, \
                 viability_norm, segmentation, campaign_id, iteration, created_at) VALUES (?1, ?2, ?3, 'tbhp', ?4, 24, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?7)",
                params![format!("{id}_P{iteration}"), format!("W{k}"), line, dose, o.cellrox_au, i64::from(control), now, o.viability, o.segmentation, id, iteration],
            )?;
            written += 1;
        }
        ctx.execute(
            "INSERT INTO campaign_iterations (campaign_id, iteration_number, timestamp, results) VALUES (?1, ?2, ?3, '{}')",
            params![id, iteration, now],
        )?;
    }
    for line in lines {
        let opt = TbhpAssay::builtin(line)?.optimum(&Default::default(), 0.0, 500.0);
        ctx.execute(
            "INSERT INTO stage_outputs (campaign_id, cell_line_id, stage, key, value, created_at) VALUES (?1, ?2, 'tbhp_dose_finding', 'optimal_tbhp_dose_uM', ?3, ?4)",
            params![id, line, json!({ "value": opt, "lo": opt * 0.95, "hi": opt * 1.05 }).to_string(), now],
        )?;
    }
    tx.commit()?;
    ctx.commit()?;
    // Answered as the server answers a request, less the HTTP: from its pool of connections (one
    // request at a time, so an idle worker's connection reads half the wells).
    let pool = cellos_host::dashboard::Pool::open(&dir, cellos_host::dashboard::WORKERS)?;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let page = pool.answer(&format!("/campaigns/{id}")).ok_or("the page failed to render")?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if page.status != 200 {
            return Err(format!("the page answered {}: {}", page.status, String::from_utf8_lossy(&page.body)).into());
        }
        bytes = page.body.len();
        if let Some(path) = std::env::var_os("DASHBOARD_BENCH_PAGE") {
            std::fs::write(path, &page.body)?;
        }
    }
    times.sort_by(f64::total_cmp);
    print!(
        "campaign_page_ms={:.1} max_ms={:.1} page_bytes={bytes} measurements={written}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    // The part of it that reads the wells, on one connection and in two halves on two.
    let served = cellos_host::dashboard::serving_store(&dir)?;
    let mut spare = cellos_host::dashboard::serving_store(&dir)?;
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let t = Instant::now();
        let whole = cellos_host::dashboard::data::campaign(&served, id)?;
        one.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let halves = cellos_host::dashboard::data::campaign_with(&served, Some(&mut spare.results), id)?;
        two.push(t.elapsed().as_secs_f64() * 1e3);
        if halves.measurements != whole.measurements {
            return Err("the wells read in halves differ from the wells read whole".into());
        }
    }
    one.sort_by(f64::total_cmp);
    two.sort_by(f64::total_cmp);
    println!(" read_ms_one_connection={:.1} read_ms_two_connections={:.1}", one[10], two[10]);
    drop((served, spare, pool, store));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
