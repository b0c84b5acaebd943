//! Benchmark of the measurements importer, the queries on what it loaded, the export and the
//! verification, at scale.
//!
//! Generates an N-row measurements CSV (10 lines × 10 compounds × 10 doses cycling from row to row,
//! 1536-well plates, Hill-shaped viability with 5 % noise) in a temporary folder, then, in this process:
//! imports it into a fresh store (one transaction, every row checked), runs `results fit` for one (line,
//! compound) and `results summary` (medians of 5), and exports the measurements back to CSV and checks
//! the export against the source row by row. With `--legacy-python PYTHON` (a Python with pandas) it
//! also times the legacy path on the same file in the same run (`legacy_import.py`: pandas `read_csv`
//! then `to_sql`), twice: into the legacy platform's own schema, copied from its shipped
//! `experimental_results.db` (an AUTOINCREMENT id, a `created_at` default, indexes on cell line,
//! compound, plate and date), and into a bare table of pandas' own (no id, no index). Prints
//! `rows=<n> import_rows_per_s=<n> peak_rss_mib=<n> fit_query_ms=<n> summary_ms=<n> export_rows_per_s=<n>
//! verify_rows_per_s=<n> verify_peak_rss_mib=<n>` (`verify results`, streamed, every field compared)
//! and, with the legacy path, `legacy_rows_per_s=<n> ratio=<import / legacy> legacy_bare_rows_per_s=<n>
//! ratio_bare=<import / legacy into the bare table>`.
//!
//! `peak_rss_mib` is this process's peak resident memory while the import runs (the high-water mark is
//! reset just before it, Linux's `/proc/self/clear_refs`).
//!
//! Run: `cargo run --release -p cellos-host --example import_bench -- [--rows N] [--legacy-python PYTHON]`
//! (default 1,000,000 rows).

use std::io::{BufRead, Write};
use std::time::Instant;

use cellos_core::rng::{normal, seeded};
use cellos_host::admin;
use cellos_host::kinds::Kind;
use cellos_host::store::Store;

/// This process's peak resident set, MiB (`VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median_ms(
    mut run: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let rows: usize = value("--rows").map(|s| s.replace('_', "").parse()).transpose()?.unwrap_or(1_000_000);
    let legacy = value("--legacy-python");
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
    // On disk before either path is timed: neither shares the disk with the generator's writes.
    w.get_ref().sync_all()?;
    drop(w);
    let mut store = Store::open(&dir.join("data"))?;
    // Reset the high-water mark: the peak is the import's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    let s = Kind::Results.import(&mut store, &csv, &mut |_, _| {})?;
    let secs = start.elapsed().as_secs_f64();
    let peak = peak_rss_mib().unwrap_or(f64::NAN);
    if s.rows != vec![("measurements".to_string(), rows as u64)] {
        return Err(format!("imported {:?}, expected {rows} rows", s.rows).into());
    }
    let fit = admin::results_fit(&store, "L3", "C4")?;
    eprintln!(
        "# fitted IC50 {:.3} µM (true 4.5) over {} points",
        fit["ic50_uM"].as_f64().unwrap_or(f64::NAN),
        fit["points"]
    );
    let fit_ms = median_ms(|| admin::results_fit(&store, "L3", "C4").map(drop).map_err(Into::into))?;
    let summary_ms = median_ms(|| admin::results_summary(&store).map(drop).map_err(Into::into))?;
    // The export, and the round trip: every line of the export is the source's line, in order, except
    // for the numbers' spelling (the export prints them as the legacy files do), so compare parsed rows.
    let exported = dir.join("exported.csv");
    let start = Instant::now();
    Kind::Results.export(&store, &exported)?;
    let export_secs = start.elapsed().as_secs_f64();
    let (a, b) =
        (std::io::BufReader::new(std::fs::File::open(&csv)?), std::io::BufReader::new(std::fs::File::open(&exported)?));
    let mut compared = 0usize;
    for (k, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        let (x, y) = (x?, y?);
        let same = x
            .split(',')
            .zip(y.split(','))
            .all(|(p, q)| p == q || matches!((p.parse::<f64>(), q.parse::<f64>()), (Ok(u), Ok(v)) if u == v));
        if !same {
            return Err(format!("line {}: source `{x}`, export `{y}`", k + 1).into());
        }
        compared += 1;
    }
    if compared != rows + 1 {
        return Err(format!("the export has {} lines, the source {}", compared, rows + 1).into());
    }
    // `verify results`: every field of the source against the store, streamed.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    let report = cellos_host::verify::verify(&store, Kind::Results, &csv)?;
    let verify_secs = start.elapsed().as_secs_f64();
    let verify_peak = peak_rss_mib().unwrap_or(f64::NAN);
    if !report.differences.is_empty() || report.fields != rows * 12 {
        return Err(format!("verify: {} fields, {} differ", report.fields, report.differences.len()).into());
    }
    print!(
        "rows={rows} import_rows_per_s={:.0} peak_rss_mib={peak:.0} fit_query_ms={fit_ms:.2} summary_ms={summary_ms:.2} export_rows_per_s={:.0} \
         verify_rows_per_s={:.0} verify_peak_rss_mib={verify_peak:.0}",
        rows as f64 / secs,
        rows as f64 / export_secs,
        rows as f64 / verify_secs
    );
    drop(store);
    if let Some(python) = legacy {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = here.join("examples/legacy_import.py");
        let schema = here.join("tests/fixtures/db_snapshots/experimental_results.db");
        // Into the legacy platform's own schema (as its shipped database has it), then into a bare table.
        for (db, with_schema, name) in [("legacy.db", true, ""), ("legacy-bare.db", false, "_bare")] {
            let mut command = std::process::Command::new(&python);
            command.arg(&script).arg(&csv).arg(dir.join(db));
            if with_schema {
                command.arg("--schema").arg(&schema);
            }
            let out = command.output()?;
            if !out.status.success() {
                return Err(format!("the legacy path failed: {}", String::from_utf8_lossy(&out.stderr)).into());
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let legacy_rate: f64 = text
                .split_whitespace()
                .find_map(|f| f.strip_prefix("legacy_rows_per_s="))
                .and_then(|v| v.parse().ok())
                .ok_or("the legacy path printed no rate")?;
            print!(" legacy{name}_rows_per_s={legacy_rate:.0} ratio{name}={:.2}", rows as f64 / secs / legacy_rate);
            std::fs::remove_file(dir.join(db))?;
        }
    }
    println!();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
