//! The legacy inputs, imported: the legacy counts, idempotence, verification that passes and then
//! fails on a changed value, and the legacy databases read directly.

use std::path::{Path, PathBuf};

use cellos_host::kinds::Kind;
use cellos_host::store::{Store, count};
use cellos_host::verify::verify;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

fn import(store: &mut Store, kind: Kind, p: &str) -> cellos_host::kinds::Summary {
    kind.import(store, &fixture(p), &mut |_, _| {}).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn counts(store: &Store) -> Vec<i64> {
    [
        (&store.params, "cell_line_params"),
        (&store.params, "compound_sensitivity"),
        (&store.params, "cellrox_params"),
        (&store.params, "segmentation_params"),
        (&store.params, "default_params"),
        (&store.lines, "cell_lines"),
        (&store.lines, "cell_line_characteristics"),
        (&store.lines, "cell_line_protocols"),
        (&store.results, "measurements"),
        (&store.campaigns, "campaigns"),
        (&store.campaigns, "campaign_iterations"),
    ]
    .iter()
    .map(|(c, t)| count(c, t).unwrap())
    .collect()
}

/// Non-null leaves of `cell_lines.yaml` and of the campaign export (counted apart, with PyYAML).
const FIELDS_CELL_LINES: usize = 391;
const FIELDS_CAMPAIGNS: usize = 608;

#[test]
fn seed_files_import_with_the_legacy_counts_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let s = import(&mut store, Kind::Params, "simulation_parameters.yaml");
    assert!(s.warnings.is_empty());
    let s = import(&mut store, Kind::CellLines, "cell_lines.yaml");
    assert!(s.warnings.is_empty());
    import(&mut store, Kind::Results, "phase0_all_plates.csv");
    import(&mut store, Kind::Campaigns, "campaigns_db_export");
    assert_eq!(counts(&store), [8, 35, 3, 3, 13, 13, 130, 30, 528, 2, 8]);
    // The same sources again add nothing.
    for (k, p) in [
        (Kind::Params, "simulation_parameters.yaml"),
        (Kind::CellLines, "cell_lines.yaml"),
        (Kind::Results, "phase0_all_plates.csv"),
        (Kind::Campaigns, "campaigns_db_export"),
    ] {
        assert!(import(&mut store, k, p).already_imported, "{p}");
    }
    assert_eq!(counts(&store), [8, 35, 3, 3, 13, 13, 130, 30, 528, 2, 8]);
    // Every field of every source is in the database.
    // Params: 8 lines × 9 values + iPSC's coating flag, 35 IC50s + 7 slopes + 1 description, 3 × 4
    // CellROX and 3 × 3 segmentation values, 13 defaults.
    for (k, p, fields) in [
        (Kind::Params, "simulation_parameters.yaml", 8 * 9 + 1 + 35 + 7 + 1 + 12 + 9 + 13),
        (Kind::CellLines, "cell_lines.yaml", FIELDS_CELL_LINES),
        (Kind::Results, "phase0_all_plates.csv", 528 * 12),
        (Kind::Campaigns, "campaigns_db_export", FIELDS_CAMPAIGNS),
    ] {
        let r = verify(&store, k, &fixture(p)).unwrap();
        assert!(r.differences.is_empty(), "{p}: {:?}", &r.differences[..r.differences.len().min(5)]);
        assert_eq!(r.fields, fields, "{p}");
    }
}

#[test]
fn verify_fails_and_names_the_field_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(&mut store, Kind::Params, "simulation_parameters.yaml");
    import(&mut store, Kind::CellLines, "cell_lines.yaml");
    import(&mut store, Kind::Results, "phase0_all_plates.csv");
    import(&mut store, Kind::Campaigns, "campaigns_db_export");
    store.params.execute("UPDATE cell_line_params SET viability_cv = 0.5 WHERE cell_line_id = 'U2OS'", []).unwrap();
    let r = verify(&store, Kind::Params, &fixture("simulation_parameters.yaml")).unwrap();
    assert_eq!(r.differences.len(), 1);
    assert_eq!(r.differences[0].to_string(), "cell_lines.U2OS.viability_cv: source 0.02, database 0.5");
    store.lines.execute("UPDATE cell_line_characteristics SET value = 'x' WHERE cell_line_id = 'HeLa' AND characteristic = 'freezing_media'", []).unwrap();
    let r = verify(&store, Kind::CellLines, &fixture("cell_lines.yaml")).unwrap();
    assert_eq!(r.differences[0].path, "cell_lines.HeLa.profile.freezing_media");
    store.results.execute("UPDATE measurements SET raw_signal = raw_signal + 1 WHERE source_row = 17", []).unwrap();
    let r = verify(&store, Kind::Results, &fixture("phase0_all_plates.csv")).unwrap();
    assert_eq!(r.differences.len(), 1);
    assert_eq!(r.differences[0].path, "[16].raw_signal");
    store.campaigns.execute("UPDATE campaigns SET status = 'running' WHERE campaign_id = 'demo_campaign'", []).unwrap();
    let r = verify(&store, Kind::Campaigns, &fixture("campaigns_db_export")).unwrap();
    assert_eq!(r.differences[0].path, "campaigns[1].status");
}

#[test]
fn legacy_databases_import_with_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let s = import(&mut store, Kind::Legacy, "db_snapshots");
    assert!(!s.already_imported);
    // The legacy schema has no CellROX or segmentation tables: those two stay empty.
    assert_eq!(counts(&store), [8, 35, 0, 0, 13, 13, 130, 30, 528, 2, 8]);
    assert!(import(&mut store, Kind::Legacy, "db_snapshots").already_imported);
    let r = verify(&store, Kind::Legacy, &fixture("db_snapshots")).unwrap();
    assert!(r.differences.is_empty(), "{:?}", &r.differences[..r.differences.len().min(5)]);
    assert!(r.fields > 528 * 12, "{}", r.fields);
    store.results.execute("UPDATE measurements SET incubator_id = 'inc-9' WHERE source_row = 1", []).unwrap();
    let r = verify(&store, Kind::Legacy, &fixture("db_snapshots")).unwrap();
    assert_eq!(r.differences.len(), 1);
    assert_eq!(r.differences[0].path, "experimental_results.db.measurements[0].incubator_id");
}

fn present(s: &cellos_host::kinds::Summary, table: &str) -> u64 {
    s.already_present.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n)
}

fn added(s: &cellos_host::kinds::Summary, table: &str) -> u64 {
    s.rows.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n)
}

/// Fits of every (line, compound) of the phase-0 data, as `cellos results fit` reports them.
fn fits(store: &Store) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for line in ["HepG2", "U2OS"] {
        for compound in ["H2O2", "staurosporine", "tunicamycin"] {
            out.push(cellos_host::admin::results_fit(store, line, compound).unwrap());
        }
    }
    out
}

/// A second source of the same measurements adds nothing and says so: the legacy database after the
/// CSV, the CSV after the legacy database, the CSV again with one more line ending. The fits (and their
/// standard errors) are those of one copy.
#[test]
fn a_second_source_of_the_same_measurements_adds_nothing() {
    let one = tempfile::tempdir().unwrap();
    let mut single = Store::open(one.path()).unwrap();
    import(&mut single, Kind::Results, "phase0_all_plates.csv");
    let expected = fits(&single);
    assert!(expected.iter().all(|f| f["ic50_rel_se"].as_f64().is_some_and(|e| e > 0.0)), "{expected:?}");

    let scratch = tempfile::tempdir().unwrap();
    let mut text = std::fs::read(fixture("phase0_all_plates.csv")).unwrap();
    text.push(b'\n');
    let newline = scratch.path().join("phase0_with_an_extra_newline.csv");
    std::fs::write(&newline, &text).unwrap();

    // CSV, then legacy, then the CSV with an extra newline.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(added(&import(&mut store, Kind::Results, "phase0_all_plates.csv"), "measurements"), 528);
    let s = import(&mut store, Kind::Legacy, "db_snapshots");
    assert_eq!((added(&s, "measurements"), present(&s, "measurements")), (0, 528));
    let s = Kind::Results.import(&mut store, &newline, &mut |_, _| {}).unwrap();
    assert!(!s.already_imported, "another file (its hash differs)");
    assert_eq!((added(&s, "measurements"), present(&s, "measurements")), (0, 528));
    assert_eq!(count(&store.results, "measurements").unwrap(), 528);
    assert_eq!(fits(&store), expected);

    // Legacy first, then the CSV.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(&mut store, Kind::Legacy, "db_snapshots");
    let s = import(&mut store, Kind::Results, "phase0_all_plates.csv");
    assert_eq!((added(&s, "measurements"), present(&s, "measurements")), (0, 528));
    assert_eq!(count(&store.results, "measurements").unwrap(), 528);

    // A row of the same plate, well and time with another value is refused, naming both values and
    // where the stored one came from; nothing is imported.
    let csv = String::from_utf8(text).unwrap();
    let changed = csv.replacen("0.9512201444213735", "0.5", 1);
    assert_ne!(changed, csv);
    let bad = scratch.path().join("changed.csv");
    std::fs::write(&bad, changed).unwrap();
    let e = Kind::Results.import(&mut store, &bad, &mut |_, _| {}).unwrap_err().to_string();
    assert!(
        e.contains("plate HepG2_P1 well A09 at this time is already in the store (from the legacy import of")
            && e.contains("with viability_norm = 0.9512201444213736, this file has 0.5"),
        "{e}"
    );
    assert_eq!(count(&store.results, "measurements").unwrap(), 528);
}

/// The legacy databases after the YAML, CSV and JSON imports of the same data: every row is found
/// already present (values the store lacked are filled in), nothing doubles, no internal constraint
/// error; a legacy row that disagrees with the store is refused, naming the table, row, column and both
/// values, and nothing is imported.
#[test]
fn legacy_after_the_other_sources_merges_and_refuses_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(&mut store, Kind::Params, "simulation_parameters.yaml");
    import(&mut store, Kind::CellLines, "cell_lines.yaml");
    import(&mut store, Kind::Results, "phase0_all_plates.csv");
    import(&mut store, Kind::Campaigns, "campaigns_db_export");
    let before = counts(&store);
    assert_eq!(before, [8, 35, 3, 3, 13, 13, 130, 30, 528, 2, 8]);
    // A copy of the legacy databases with one sensitivity changed.
    let scratch = tempfile::tempdir().unwrap();
    for f in ["simulation_params.db", "cell_lines.db", "campaigns.db", "experimental_results.db"] {
        std::fs::copy(fixture("db_snapshots").join(f), scratch.path().join(f)).unwrap();
    }
    let c = rusqlite::Connection::open(scratch.path().join("simulation_params.db")).unwrap();
    c.execute("UPDATE compound_sensitivity SET ic50_um = 0.07 WHERE sensitivity_id = 2", []).unwrap();
    drop(c);
    let e = Kind::Legacy.import(&mut store, scratch.path(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(
        e.contains("table compound_sensitivity, row 2")
            && e.contains("compound_name \"staurosporine\", cell_line_id \"HeLa\", version 1")
            && e.contains("ic50_um = 0.08, the legacy database has 0.07"),
        "{e}"
    );
    assert_eq!(counts(&store), before, "nothing imported");

    let s = import(&mut store, Kind::Legacy, "db_snapshots");
    assert_eq!(counts(&store), before);
    for (table, n) in [
        ("cell_line_params", 8),
        ("compound_sensitivity", 35),
        ("default_params", 13),
        ("cell_lines", 13),
        ("cell_line_characteristics", 130),
        ("cell_line_protocols", 30),
        ("campaigns", 2),
        ("campaign_iterations", 8),
        ("measurements", 528),
    ] {
        assert_eq!((added(&s, table), present(&s, table)), (0, n), "{table}");
    }
    // The legacy's coating flags, which the parameter YAML does not carry, are filled in.
    let flags: i64 = store
        .params
        .query_row("SELECT count(*) FROM cell_line_params WHERE coating_required IS NOT NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(flags, 8);
    // The CSV still verifies; the parameter YAML differs only by those 7 filled flags (iPSC's is in the
    // YAML), which the store now has and the YAML lacks.
    let r = verify(&store, Kind::Results, &fixture("phase0_all_plates.csv")).unwrap();
    assert!(r.differences.is_empty(), "{:?}", &r.differences[..r.differences.len().min(5)]);
    let r = verify(&store, Kind::Params, &fixture("simulation_parameters.yaml")).unwrap();
    assert_eq!(r.differences.len(), 7, "{:?}", r.differences);
    assert!(
        r.differences.iter().all(|d| d.path.ends_with(".coating_required")
            && d.source.is_none()
            && d.database == Some(serde_json::Value::Bool(false))),
        "{:?}",
        r.differences
    );
}

/// A database written by an earlier cellos that doubled the phase-0 rows (legacy database, then CSV:
/// 1,056 rows, the copies differing in the last binary digits) is repaired by its migration: 528 rows.
#[test]
fn the_migration_removes_copies_left_by_earlier_imports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experimental_results.db");
    let mut c = rusqlite::Connection::open(&path).unwrap();
    cellos_host::store::Db::ExperimentalResults.migrations().to_version(&mut c, 2).unwrap();
    let legacy = rusqlite::Connection::open(fixture("db_snapshots/experimental_results.db")).unwrap();
    c.execute("INSERT INTO imports (kind, source, sha256, imported_at) VALUES ('legacy', 'x', 'a', 'now')", [])
        .unwrap();
    c.execute("INSERT INTO imports (kind, source, sha256, imported_at) VALUES ('results', 'y', 'b', 'now')", [])
        .unwrap();
    let cols = "plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, incubator_id, liquid_handler_id, viability_norm";
    let mut rows = Vec::new();
    legacy
        .prepare(&format!("SELECT {cols} FROM measurements ORDER BY id"))
        .unwrap()
        .query_map([], |r| (0..12).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<rusqlite::Result<Vec<_>>>())
        .unwrap()
        .for_each(|r| rows.push(r.unwrap()));
    let mut csv = csv::Reader::from_path(fixture("phase0_all_plates.csv")).unwrap();
    let insert = format!(
        "INSERT INTO measurements ({cols}, import_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    );
    for r in &rows {
        let mut args = r.clone();
        args.push(1.into());
        c.execute(&insert, rusqlite::params_from_iter(args)).unwrap();
    }
    let mut differ = 0;
    for (rec, l) in csv.records().zip(&rows) {
        let rec = rec.unwrap();
        let mut args: Vec<rusqlite::types::Value> = l.clone();
        for (i, name) in [(6, "raw"), (11, "viability")] {
            let x: f64 = rec[i].parse().unwrap();
            differ += usize::from(rusqlite::types::Value::Real(x) != args[i]);
            args[i] = x.into();
            let _ = name;
        }
        args.push(2.into());
        c.execute(&insert, rusqlite::params_from_iter(args)).unwrap();
    }
    assert!(differ > 100, "the CSV's reals differ from the legacy's in {differ} places");
    assert_eq!(count(&c, "measurements").unwrap(), 1056);
    drop(c);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(count(&store.results, "measurements").unwrap(), 528);
    let kept: i64 =
        store.results.query_row("SELECT count(*) FROM measurements WHERE import_id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 528, "the first copy is kept");
}

/// `verify results` streams (a row of each side at a time) and reports exactly what comparing the
/// whole source with the whole database reports: the same field count, the same differences in the
/// same order, whether a value changed, a value went missing, the database lost a row (every later
/// row then sits one place earlier) or holds more rows than the file.
#[test]
fn verifying_measurements_streams_and_reports_what_the_whole_comparison_reports() {
    use cellos_host::kinds::results;
    use cellos_host::verify::{compare, source_name};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("data")).unwrap();
    let csv = dir.path().join("phase0.csv");
    std::fs::copy(fixture("phase0_all_plates.csv"), &csv).unwrap();
    import(&mut store, Kind::Results, csv.to_str().unwrap());
    let whole = |store: &Store| {
        compare(&results::source_value(&csv).unwrap(), &results::export_rows(store, Some(&source_name(&csv))).unwrap())
    };
    let clean = verify(&store, Kind::Results, &csv).unwrap();
    assert_eq!(clean, whole(&store));
    assert!(clean.differences.is_empty());
    assert!(clean.fields > 528 * 10, "{}", clean.fields);
    store.results.execute("UPDATE measurements SET raw_signal = 1.5 WHERE source_row = 17", []).unwrap();
    store.results.execute("UPDATE measurements SET compound = NULL WHERE source_row = 3", []).unwrap();
    let changed = verify(&store, Kind::Results, &csv).unwrap();
    assert_eq!(changed, whole(&store));
    assert_eq!(
        changed.differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
        ["[16].raw_signal", "[2].compound"]
    );
    store.results.execute("DELETE FROM measurements WHERE source_row = 500", []).unwrap();
    let shifted = verify(&store, Kind::Results, &csv).unwrap();
    assert_eq!(shifted, whole(&store));
    assert!(shifted.differences.len() > 28, "{}", shifted.differences.len());
    assert!(shifted.differences.iter().any(|d| d.path.starts_with("[527].") && d.database.is_none()));
    // The file cut to its first 100 rows: the database has 427 more.
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.lines().take(101).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let longer = verify(&store, Kind::Results, &csv).unwrap();
    assert_eq!(longer, whole(&store));
    assert!(longer.differences.iter().any(|d| d.path.starts_with("[526].") && d.source.is_none()));
}
