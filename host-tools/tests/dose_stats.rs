//! The running sums the fit and the summary read (`dose_stats`, `plate_stats`) agree with the rows
//! themselves after every kind of write: an import by the real binary (whose load lifts the triggers
//! and adds its sums at the end), a repeated import, a failed one, and rows inserted, changed and
//! deleted by other writers (the triggers).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use cellos_host::admin::{self, ByDose};
use cellos_host::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_cellos");

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

fn cellos(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("--data-dir").arg(data).args(args).output().unwrap()
}

type Row = (String, String, f64, i64, i64, f64, f64);

/// `dose_stats` and what grouping the rows gives, in the same order.
fn both(c: &rusqlite::Connection) -> (Vec<Row>, Vec<Row>) {
    let q = |sql: &str| -> Vec<Row> {
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    (
        q("SELECT * FROM dose_stats ORDER BY cell_line, compound, dose_uM"),
        q("SELECT cell_line, ifnull(compound, ''), ifnull(dose_uM, -1.0) AS d, count(*), count(viability_norm), \
           total(viability_norm), total(viability_norm * viability_norm) FROM measurements \
           GROUP BY cell_line, ifnull(compound, ''), d ORDER BY 1, 2, 3"),
    )
}

fn assert_consistent(c: &rusqlite::Connection, when: &str) {
    let (kept, grouped) = both(c);
    assert_eq!(kept.len(), grouped.len(), "{when}: {} sums kept, {} groups", kept.len(), grouped.len());
    for (k, g) in kept.iter().zip(&grouped) {
        assert_eq!((&k.0, &k.1, k.2, k.3, k.4), (&g.0, &g.1, g.2, g.3, g.4), "{when}");
        for (a, b) in [(k.5, g.5), (k.6, g.6)] {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{when}: {k:?} against {g:?}");
        }
    }
    let plates = |sql: &str| -> Vec<(String, i64)> {
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    assert_eq!(
        plates("SELECT plate_id, rows FROM plate_stats ORDER BY plate_id"),
        plates("SELECT plate_id, count(*) FROM measurements GROUP BY plate_id ORDER BY plate_id"),
        "{when}"
    );
    let triggers: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'measurements'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(triggers, 3, "{when}: the triggers are in place");
    // The natural key's index (a bulk load lifts it and builds it again), with its own SQL.
    let index: String = c
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'measurements_natural'", [], |r| {
            r.get(0)
        })
        .unwrap_or_else(|e| panic!("{when}: the natural key's index is missing ({e})"));
    assert!(index.contains("UNIQUE") && index.contains("WHERE campaign_id IS NULL"), "{when}: {index}");
    // Every measurement references a recorded import (a load checks that by construction, not per row).
    let fk: i64 =
        c.query_row("SELECT count(*) FROM pragma_foreign_key_check('measurements')", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0, "{when}: every measurement's import is recorded");
}

#[test]
fn the_running_sums_agree_with_the_rows_after_every_kind_of_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = fixture("phase0_all_plates.csv");
    let csv = csv.to_str().unwrap();
    let o = cellos(&data, &["import", "results", csv]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = rusqlite::Connection::open(data.join("experimental_results.db")).unwrap();
    assert_consistent(&c, "after the import");
    let (kept, _) = both(&c);
    assert_eq!(kept.iter().map(|r| r.3).sum::<i64>(), 528);
    // Again: nothing added, nothing changed.
    assert!(cellos(&data, &["import", "results", csv]).status.success());
    assert_eq!(both(&c).0, kept, "a repeated import changes no sum");
    // A file that fails at its last row: rolled back, sums and triggers as they were.
    let mut bad = std::fs::read_to_string(fixture("phase0_all_plates.csv")).unwrap();
    bad.push_str("P9,A1,HepG2,tbhp,-3,24,1,0,2025-01-01,i,l,0.5\n");
    let bad_path = dir.path().join("bad.csv");
    std::fs::write(&bad_path, bad.replace("_P", "_Q")).unwrap();
    let o = cellos(&data, &["import", "results", bad_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(both(&c).0, kept, "a failed import changes no sum");
    assert_consistent(&c, "after a failed import");
    // Other writers: a campaign's rows, a changed dose and viability, deleted rows.
    c.execute_batch(
        "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, viability_norm, campaign_id, iteration, created_at) \
         VALUES ('C1', 'B2', 'HepG2', 'tbhp', 40.0, 0.8, 'c', 1, 'now'), ('C1', 'B3', 'HepG2', 'tbhp', 40.0, 0.7, 'c', 1, 'now'), \
                ('C1', 'B4', 'HepG2', NULL, NULL, NULL, 'c', 1, 'now');
         UPDATE measurements SET dose_uM = 41.5, viability_norm = 0.66 WHERE well_id = 'B3' AND campaign_id = 'c';
         UPDATE measurements SET plate_id = 'C2', cell_line = 'U2OS' WHERE well_id = 'B2' AND campaign_id = 'c';
         DELETE FROM measurements WHERE id IN (SELECT id FROM measurements WHERE campaign_id IS NULL ORDER BY id LIMIT 40);",
    )
    .unwrap();
    assert_consistent(&c, "after inserts, updates and deletes");
    // The fit from the sums is the fit to every row.
    let store = Store::open(&data).unwrap();
    let (line, compound) = ("HepG2", "staurosporine");
    let every = ByDose::of(admin::viability_points(&store, line, compound).unwrap());
    let sums = admin::viability_by_dose(&store, line, compound).unwrap();
    assert_eq!(sums.observations(), every.observations());
    let sorted = |b: &ByDose| {
        let mut v: Vec<(f64, f64, f64)> = (0..b.doses.len()).map(|i| (b.doses[i], b.means[i], b.counts[i])).collect();
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        v
    };
    let (a, b) = (sorted(&every), sorted(&sums));
    assert_eq!(a.len(), b.len());
    assert!(a.len() >= 5, "{a:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, x.2), (y.0, y.2));
        assert!((x.1 - y.1).abs() < 1e-12, "{x:?} {y:?}");
    }
    assert!((every.within_ss - sums.within_ss).abs() < 1e-9 * every.within_ss.max(1.0));
    let fit = admin::results_fit(&store, line, compound).unwrap();
    assert_eq!(fit["points"], serde_json::json!(every.observations()));
    assert!(fit["ic50_uM"].as_f64().unwrap() > 0.0);
}

/// A measurements CSV of `rows` rows on 1536-well plates (`P0`, `P1`, …), every value valid.
fn big_csv(path: &Path, rows: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "plate_id,well_id,cell_line,compound,dose_uM,time_h,raw_signal,is_control,date,incubator_id,liquid_handler_id,viability_norm").unwrap();
    for i in 0..rows {
        let (plate, well) = (i / 1536, i % 1536);
        let (r, c) = (well / 48, well % 48);
        let row = if r < 26 {
            format!("{}", (b'A' + r as u8) as char)
        } else {
            format!("A{}", (b'A' + (r - 26) as u8) as char)
        };
        let dose = [0.0, 0.1, 1.0, 10.0][i % 4];
        writeln!(
            w,
            "P{plate},{row}{},L{},C{},{dose},24,{},{},2026-01-01,inc1,star1,{}",
            c + 1,
            i % 3,
            i % 5,
            1000 + i % 97,
            u8::from(dose == 0.0),
            0.5 + (i % 89) as f64 / 200.0
        )
        .unwrap();
    }
    w.flush().unwrap();
}

/// In `dir`: a data directory holding the phase-0 rows (528, imported from `phase0`), and a 150,000-row
/// file to import into it (a bulk load). Returns both.
fn phase0_then_big_csv(dir: &Path, phase0: &Path) -> (PathBuf, PathBuf) {
    let (data, csv) = (dir.join("data"), dir.join("big.csv"));
    big_csv(&csv, 150_000);
    assert!(cellos(&data, &["import", "results", phase0.to_str().unwrap()]).status.success());
    (data, csv)
}

/// `cellos import results CSV` into `data`, started (its output dropped).
fn spawn_import(data: &Path, csv: &Path) -> std::process::Child {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["import", "results", csv.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// `cellos import results CSV` into `data`, killed (SIGKILL) `delay_ms` after it started; how it ended.
fn import_killed_after(data: &Path, csv: &Path, delay_ms: u64) -> std::process::ExitStatus {
    let mut child = spawn_import(data, csv);
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    let _ = child.kill();
    child.wait().unwrap()
}

#[test]
fn an_import_killed_at_any_moment_leaves_the_sums_and_the_triggers_as_they_were() {
    let (dir, phase0) = (tempfile::tempdir().unwrap(), fixture("phase0_all_plates.csv"));
    let (data, csv) = phase0_then_big_csv(dir.path(), &phase0);
    let c = rusqlite::Connection::open(data.join("experimental_results.db")).unwrap();
    let before = both(&c).0;
    // SIGKILL at moments spread over the import (it takes a few hundred ms here): while reading, while
    // loading with the triggers lifted, while adding the sums, while committing.
    let mut killed_mid_load = 0;
    for delay_ms in [5u64, 40, 90, 150, 230, 330, 450] {
        let status = import_killed_after(&data, &csv, delay_ms);
        let rows: i64 = c.query_row("SELECT count(*) FROM measurements", [], |r| r.get(0)).unwrap();
        // All of the import or none of it, never a part; the sums and the triggers agree either way.
        assert_consistent(&c, &format!("killed after {delay_ms} ms"));
        if rows == 528 + 150_000 {
            // It committed first (the kill found it folding its log, or done).
            break;
        }
        assert!(!status.success());
        killed_mid_load += 1;
        assert_eq!(rows, 528, "killed after {delay_ms} ms: nothing of the import is left");
        assert_eq!(both(&c).0, before, "killed after {delay_ms} ms: the sums are as they were");
    }
    assert!(killed_mid_load > 0, "no kill landed during the import");
    // And the import then goes through (or was already in), consistent.
    let o = cellos(&data, &["import", "results", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: i64 = c.query_row("SELECT count(*) FROM measurements", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 528 + 150_000);
    assert_consistent(&c, "after the import that went through");
}

/// A bulk load that has the database to itself writes with a rollback journal (its new pages once,
/// not into the log and again into the file): killed at any moment, whoever opens the database next
/// rolls the journal back and finds it as it was, whole (`integrity_check`), its sums agreeing; the next
/// opening by cellos puts WAL back, and an import that goes through leaves WAL too.
#[test]
fn a_bulk_load_alone_with_the_database_killed_at_any_moment_leaves_it_as_it_was() {
    let (dir, phase0) = (tempfile::tempdir().unwrap(), fixture("phase0_all_plates.csv"));
    let (data, csv) = phase0_then_big_csv(dir.path(), &phase0);
    let db = data.join("experimental_results.db");
    let before = {
        let c = rusqlite::Connection::open(&db).unwrap();
        both(&c).0
    };
    let mode = |c: &rusqlite::Connection| c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)).unwrap();
    let (mut killed_mid_load, mut killed_in_rollback_mode) = (0, 0);
    for delay_ms in [5u64, 30, 60, 100, 150, 220, 300, 400, 550] {
        // No connection is open while it runs: the load may take the rollback journal.
        let status = import_killed_after(&data, &csv, delay_ms);
        let c = rusqlite::Connection::open(&db).unwrap();
        // Read before anything else (this reading rolls a journal left behind back).
        let was = mode(&c);
        let rows: i64 = c.query_row("SELECT count(*) FROM measurements", [], |r| r.get(0)).unwrap();
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok", "killed after {delay_ms} ms");
        assert_consistent(&c, &format!("killed after {delay_ms} ms"));
        drop(c);
        if rows == 528 + 150_000 {
            // It committed first.
            break;
        }
        assert!(!status.success());
        killed_mid_load += 1;
        if was == "delete" {
            killed_in_rollback_mode += 1;
            // The store's next opening for writing sets WAL again (here an import that adds nothing).
            assert!(cellos(&data, &["import", "results", phase0.to_str().unwrap()]).status.success());
            let c = rusqlite::Connection::open(&db).unwrap();
            assert_eq!(mode(&c), "wal", "killed after {delay_ms} ms, then opened by cellos");
        }
        let c = rusqlite::Connection::open(&db).unwrap();
        assert_eq!(rows, 528, "killed after {delay_ms} ms: nothing of the import is left");
        assert_eq!(both(&c).0, before, "killed after {delay_ms} ms: the sums are as they were");
    }
    assert!(killed_mid_load > 0, "no kill landed during the import");
    assert!(killed_in_rollback_mode > 0, "no kill landed while the load had the rollback journal");
    let o = cellos(&data, &["import", "results", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = c.query_row("SELECT count(*) FROM measurements", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 528 + 150_000);
    assert_consistent(&c, "after the import that went through");
    assert_eq!(mode(&c), "wal", "an import puts WAL back");
    assert!(!Path::new(&format!("{}-journal", db.display())).exists(), "no journal is left");
}

/// Readers that open the store while a bulk load has it with the rollback journal wait for the load
/// (the busy timeout) and see the store as it was before it or after it, never a part of it.
#[test]
fn a_reader_during_a_bulk_load_alone_sees_all_of_it_or_none() {
    let (dir, phase0) = (tempfile::tempdir().unwrap(), fixture("phase0_all_plates.csv"));
    let (data, csv) = phase0_then_big_csv(dir.path(), &phase0);
    let mut import = spawn_import(&data, &csv);
    let measurements = || {
        let o = cellos(&data, &["--json", "results", "summary"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["measurements"].as_i64().unwrap()
    };
    let (mut seen, mut during) = (Vec::new(), 0);
    for _ in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(40));
        during += usize::from(import.try_wait().unwrap().is_none());
        seen.push(measurements());
    }
    assert!(import.wait().unwrap().success());
    assert!(during > 0, "no reader opened the store while the load ran");
    assert!(seen.iter().all(|&n| n == 528 || n == 528 + 150_000), "{seen:?}");
    assert_eq!(measurements(), 528 + 150_000);
}

#[test]
fn rows_already_in_the_store_add_nothing_but_one_twice_in_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = std::fs::read_to_string(fixture("phase0_all_plates.csv")).unwrap();
    let phase0 = fixture("phase0_all_plates.csv");
    assert!(cellos(&data, &["import", "results", phase0.to_str().unwrap()]).status.success());
    // The same rows with other line endings: another source, every row already present.
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(&crlf, csv.replace('\n', "\r\n")).unwrap();
    let o = cellos(&data, &["--json", "import", "results", crlf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["already_present"], serde_json::json!([["measurements", 528]]), "{summary}");
    // Two rows of one file that are the same present measurement: measured twice, refused.
    let lines: Vec<&str> = csv.lines().collect();
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], lines[1])).unwrap();
    let o = cellos(&data, &["import", "results", twice.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("row 3 (line 4)") && err.contains("already measured at row 1"), "{err}");
    let c = rusqlite::Connection::open(data.join("experimental_results.db")).unwrap();
    assert_consistent(&c, "after both");
    assert_eq!(both(&c).0.iter().map(|r| r.3).sum::<i64>(), 528);
}

/// A file larger than the store is loaded in bulk (the natural key's index built again at the end);
/// whatever such a load meets, its answer is the row-by-row load's: a row already present (same values)
/// adds nothing and is counted, one with another value is refused, a key twice in the file is refused
/// at its second row, and of a repeated key and a malformed row the earlier is the error reported.
#[test]
fn a_bulk_load_answers_as_the_row_by_row_load_does() {
    use cellos_host::kinds::Kind;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let phase0 = fixture("phase0_all_plates.csv");
    let mut store = Store::open(&data).unwrap();
    Kind::Results.import(&mut store, &phase0, &mut |_, _| {}).unwrap();
    let phase0_rows: Vec<String> = std::fs::read_to_string(&phase0).unwrap().lines().map(str::to_string).collect();
    let big = dir.path().join("big.csv");
    big_csv(&big, 20_000);
    // Large enough to be loaded in bulk: more than 128 bytes for each of the store's 528 rows.
    assert!(std::fs::metadata(&big).unwrap().len() > 128 * 528);
    let lines: Vec<String> = std::fs::read_to_string(&big).unwrap().lines().map(str::to_string).collect();
    // `lines` with `edit` applied, written to `name`.
    let variant = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let mut l = lines.clone();
        edit(&mut l);
        let p = dir.path().join(name);
        std::fs::write(&p, l.join("\n") + "\n").unwrap();
        p
    };
    let c = rusqlite::Connection::open(data.join("experimental_results.db")).unwrap();
    let count = || c.query_row("SELECT count(*) FROM measurements", [], |r| r.get::<_, i64>(0)).unwrap();
    let refused = |store: &mut Store, p: &Path| {
        let e = Kind::Results.import(store, p, &mut |_, _| {}).unwrap_err().to_string();
        assert_eq!(count(), 528, "{e}: nothing of the refused file is left");
        assert_consistent(&c, &e);
        e
    };

    // A key twice (row 4,000 repeats row 10's well) and a malformed row after it (row 9,000): the key.
    let twice = variant("twice.csv", &|l| {
        l[4000] = l[10].clone();
        l[9000] = l[9000].replacen(",24,", ",soon,", 1);
    });
    let e = refused(&mut store, &twice);
    assert!(e.contains("row 4000 (line 4001)") && e.contains("already measured at row 10"), "{e}");
    // The malformed row first (row 3,000), the repeated key after it (row 4,000): the malformed row.
    let bad_first = variant("bad_first.csv", &|l| {
        l[4000] = l[10].clone();
        l[3000] = l[3000].replacen(",24,", ",soon,", 1);
    });
    let e = refused(&mut store, &bad_first);
    assert!(e.contains("row 3000 (line 3001)") && e.contains("time_h"), "{e}");
    // A row of phase 0 with another raw signal: refused, naming the store's value and the source.
    let changed = variant("changed.csv", &|l| {
        let f: Vec<&str> = phase0_rows[7].split(',').collect();
        l[15_000] = format!("{},{},{},{},{},{},12345.5,{}", f[0], f[1], f[2], f[3], f[4], f[5], f[7..].join(","));
    });
    let e = refused(&mut store, &changed);
    assert!(
        e.contains("row 15000 (line 15001)") && e.contains("already in the store") && e.contains("raw_signal"),
        "{e}"
    );
    // Two rows of phase 0 as they are: present, counted, not added; the rest added.
    let present = variant("present.csv", &|l| {
        l[5] = phase0_rows[3].clone();
        l[19_000] = phase0_rows[400].clone();
    });
    let s = Kind::Results.import(&mut store, &present, &mut |_, _| {}).unwrap();
    assert_eq!(s.rows, vec![("measurements".to_string(), 19_998)]);
    assert_eq!(s.already_present, vec![("measurements".to_string(), 2)]);
    assert_eq!(count(), 528 + 19_998);
    assert_consistent(&c, "after the file with two present rows");
    // The store's connection checks foreign keys again after every import, failed or not.
    let fk: i64 = store.results.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1);
    let orphan = store.results.execute(
        "INSERT INTO measurements (plate_id, well_id, cell_line, import_id) VALUES ('X', 'A1', 'L', 999999)",
        [],
    );
    assert!(orphan.is_err(), "a measurement of an import that does not exist is refused");
}

/// A disk that fills during a bulk load (the data directory on a 24 MiB tmpfs, a 300,000-row file):
/// the real binary fails with exit 1 and says the disk is full, and the store is as it was, its
/// natural key's index and triggers in place; with room again the same file imports. (Needs root to
/// mount the tmpfs; elsewhere it says it is skipped.)
#[test]
fn a_disk_that_fills_during_a_bulk_load_leaves_the_store_as_it_was() {
    let mnt = tempfile::tempdir().unwrap();
    let Some(disk) = common::Tmpfs::mount(mnt.path(), "24m", "the full-disk test") else { return };
    let data = mnt.path().join("data");
    let phase0 = fixture("phase0_all_plates.csv");
    assert!(cellos(&data, &["import", "results", phase0.to_str().unwrap()]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    big_csv(&csv, 300_000);
    let o = cellos(&data, &["import", "results", csv.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "a full disk is a failure: {err}");
    assert!(err.contains("cannot write") && err.contains("experimental_results.db"), "{err}");
    assert!(err.contains("the disk is full; free space and run the command again"), "{err}");
    let c = rusqlite::Connection::open(data.join("experimental_results.db")).unwrap();
    let rows = || c.query_row("SELECT count(*) FROM measurements", [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(rows(), 528, "nothing of the failed import is left");
    assert_consistent(&c, "after the disk filled");
    disk.remount("size=512m");
    let o = cellos(&data, &["import", "results", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(), 528 + 300_000);
    assert_consistent(&c, "after the import with room");
}
