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
    store.results.execute("UPDATE measurements SET well_id = 'B01' WHERE source_row = 1", []).unwrap();
    let r = verify(&store, Kind::Legacy, &fixture("db_snapshots")).unwrap();
    assert_eq!(r.differences.len(), 1);
    assert_eq!(r.differences[0].path, "experimental_results.db.measurements[0].well_id");
}
