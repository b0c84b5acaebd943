//! Benchmark of the measurements importer and the fit query.
//!
//! Generates a 1,000,000-row measurements CSV (10 lines × 10 compounds × 10,000 wells, Hill-shaped
//! viability with 5 % noise) in a temporary folder, imports it into a fresh store (one transaction, every
//! row checked), then runs `results fit` for one (line, compound) — 10,000 points. Prints
//! `import_rows_per_s=<n> fit_query_ms=<n>`.
//!
//! Run: `cargo run --release -p cellos-host --example import_bench [ROWS]`

use std::io::Write;
use std::time::Instant;

use cellos_core::rng::{normal, seeded};
use cellos_host::admin;
use cellos_host::kinds::Kind;
use cellos_host::store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("cellos-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("measurements.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(
        w,
        "plate_id,well_id,cell_line,compound,dose_uM,time_h,raw_signal,is_control,date,incubator_id,liquid_handler_id,viability_norm"
    )?;
    let mut rng = seeded(1);
    let doses = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];
    for i in 0..rows {
        let (line, compound) = (i % 10, (i / 10) % 10);
        let plate = i / 1536;
        let well = i % 1536;
        let (r, c) = (well / 48, well % 48);
        let row_name = if r < 26 {
            format!("{}", (b'A' + r as u8) as char)
        } else {
            format!("A{}", (b'A' + (r - 26) as u8) as char)
        };
        let dose = doses[(i / 100) % 10];
        let v = 1.0 / (1.0 + (dose / (0.5 + compound as f64)).powf(1.2)) * normal(&mut rng, 1.0, 0.05);
        writeln!(
            w,
            "P{plate},{row_name}{},L{line},C{compound},{dose},24,{},{},2026-01-01,inc1,star1,{v}",
            c + 1,
            10_000.0 * v,
            u8::from(dose == 0.0)
        )?;
    }
    w.flush()?;
    drop(w);
    let mut store = Store::open(&dir.join("data"))?;
    let start = Instant::now();
    let s = Kind::Results.import(&mut store, &csv, &mut |_, _| {})?;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(s.rows, vec![("measurements".to_string(), rows as u64)]);
    let start = Instant::now();
    let f = admin::results_fit(&store, "L3", "C4")?;
    let fit_ms = start.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "# fitted IC50 {:.3} µM (true 4.5) over {} points",
        f["ic50_uM"].as_f64().unwrap_or(f64::NAN),
        f["points"]
    );
    println!("import_rows_per_s={:.0} fit_query_ms={fit_ms:.1}", rows as f64 / secs);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
