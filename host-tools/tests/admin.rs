//! Queries and administration: the phase-0 fits, inventory rules, concurrent writers, backup.

use std::path::{Path, PathBuf};
use std::process::Command;

use cellos_host::admin;
use cellos_host::kinds::Kind;
use cellos_host::store::{Store, count};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

#[test]
fn results_fit_recovers_the_generating_ic50s() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    Kind::Results.import(&mut store, &fixture("phase0_all_plates.csv"), &mut |_, _| {}).unwrap();
    for (line, compound, truth) in [
        ("HepG2", "staurosporine", 0.05),
        ("HepG2", "tunicamycin", 0.80),
        ("HepG2", "H2O2", 150.0),
        ("U2OS", "staurosporine", 0.20),
        ("U2OS", "tunicamycin", 0.30),
        ("U2OS", "H2O2", 250.0),
    ] {
        let f = admin::results_fit(&store, line, compound).unwrap();
        let ic50 = f["ic50_uM"].as_f64().unwrap();
        assert!(((ic50 - truth) / truth).abs() < 0.30, "{line} {compound}: {ic50} vs {truth}");
        assert_eq!(f["points"], 72);
        assert!(f["ic50_rel_se"].as_f64().unwrap() > 0.0);
    }
    let e = admin::results_fit(&store, "HeLa", "H2O2").unwrap_err().to_string();
    assert_eq!(e, "no measurements of H2O2 on HeLa (see `cellos results summary`)");
    let s = admin::results_summary(&store).unwrap();
    assert_eq!((s["measurements"].as_i64(), s["plates"].as_i64()), (Some(528), Some(6)));
}

#[test]
fn inventory_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    Kind::CellLines.import(&mut store, &fixture("cell_lines.yaml"), &mut |_, _| {}).unwrap();
    let e = admin::inventory_add(&store, "Vero", "V-1", None, None, None).unwrap_err().to_string();
    assert!(e.contains("no cell line `Vero`"), "{e}");
    admin::inventory_add(&store, "HeLa", "HELA-001", Some(3), Some("tank 2"), None).unwrap();
    assert!(
        admin::inventory_add(&store, "HeLa", "HELA-001", None, None, None)
            .unwrap_err()
            .to_string()
            .contains("already exists")
    );
    admin::inventory_use(&mut store, "HELA-001", Some("thaw"), Some("run-7")).unwrap();
    let e = admin::inventory_use(&mut store, "HELA-001", None, None).unwrap_err().to_string();
    assert_eq!(e, "vial `HELA-001` is used, not available");
    let h = admin::inventory_history(&store, Some("HELA-001"), None).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["execution_id"], "run-7");
    assert_eq!(admin::inventory_list(&store, Some("HeLa"), Some("used")).unwrap().as_array().unwrap().len(), 1);
    let show = admin::lines_show(&store, "iPSC").unwrap();
    assert_eq!(show["characteristics"].as_array().unwrap().len(), 10);
    assert_eq!(show["protocols"].as_array().unwrap().len(), 4);
    // iPSC, hESC, iNeurons, iMicroglia, Cardiomyocytes and the primary neurons and astrocytes.
    assert_eq!(admin::lines_list(&store, None, Some(true), None).unwrap().as_array().unwrap().len(), 7);
}

#[test]
fn two_processes_write_campaigns_db_at_once() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap();
    // Each process inserts 200 campaigns, one transaction each, as fast as it can.
    let script = |tag: &str| {
        let mut sql = String::new();
        for i in 0..200 {
            sql += &format!(
                "INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES ('{tag}-{i}', 'test', 'running');\n"
            );
        }
        sql
    };
    let run = |tag: String| {
        let d = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let conn = cellos_host::store::open(&d, cellos_host::store::Db::Campaigns).unwrap();
            for stmt in script(&tag).lines() {
                conn.execute(stmt, []).unwrap();
            }
        })
    };
    // Two OS processes: this test binary re-run as a child, and this process.
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture"])
        .env("CELLOS_WRITER_DIR", dir.path())
        .spawn()
        .unwrap();
    run("parent".into()).join().unwrap();
    let status = child.wait_with_output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(count(&store.campaigns, "campaigns").unwrap(), 400);
}

/// The second writer of `two_processes_write_campaigns_db_at_once` (runs only as its child).
#[test]
fn writer_child() {
    let Ok(dir) = std::env::var("CELLOS_WRITER_DIR") else { return };
    let conn = cellos_host::store::open(Path::new(&dir), cellos_host::store::Db::Campaigns).unwrap();
    for i in 0..200 {
        conn.execute(
            "INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES (?1, 'test', 'running')",
            [format!("child-{i}")],
        )
        .unwrap();
    }
}

#[test]
fn backup_copies_every_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("data")).unwrap();
    Kind::Results.import(&mut store, &fixture("phase0_all_plates.csv"), &mut |_, _| {}).unwrap();
    let mut calls = 0;
    admin::db_backup(&store, &dir.path().join("copy"), &mut |_, _, _| calls += 1).unwrap();
    assert!(calls >= 4);
    let copy = Store::open(&dir.path().join("copy")).unwrap();
    assert_eq!(count(&copy.results, "measurements").unwrap(), 528);
    let status = admin::db_status(&store).unwrap();
    assert_eq!(status.as_array().unwrap().len(), 4);
    assert_eq!(status[3]["rows"]["measurements"], 528);
}
