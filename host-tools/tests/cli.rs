//! `cellos` as a user runs it: JSON shapes, exit statuses, messages.

use std::path::Path;
use std::process::{Command, Output};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_cellos");

fn cellos(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--data-dir").arg(dir).args(args).output().unwrap()
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p).display().to_string()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn commands_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = json(&cellos(d, &["--json", "import", "params", &fixture("simulation_parameters.yaml")]));
    assert_eq!(s["already_imported"], false);
    json(&cellos(d, &["--json", "import", "cell-lines", &fixture("cell_lines.yaml")]));
    let list = json(&cellos(d, &["--json", "lines", "list", "--coating", "true"]));
    assert_eq!(list.as_array().unwrap().len(), 7);
    let show = json(&cellos(d, &["--json", "params", "show", "HeLa"]));
    assert_eq!((show["doubling_time_h"].as_f64(), show["version"].as_i64()), (Some(20.0), Some(1)));
    let verify = cellos(d, &["verify", "params", &fixture("simulation_parameters.yaml")]);
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("150 fields compared, 0 differ"));
    json(&cellos(d, &["--json", "params", "set", "HeLa", "doubling_time_h=19.5", "--note", "new stock"]));
    let verify = cellos(d, &["verify", "params", &fixture("simulation_parameters.yaml")]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("cell_lines.HeLa.doubling_time_h: source 20.0, database 19.5")
    );
    let history = json(&cellos(d, &["--json", "params", "history", "HeLa"]));
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(history[0]["valid_to"].is_string() && history[1]["valid_to"].is_null());
    let bad = cellos(d, &["params", "set", "HeLa", "doubling_time_h=-1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).trim(), "error: doubling_time_h=-1: out of range");
    json(&cellos(d, &["--json", "inventory", "add", "HeLa", "V1"]));
    json(&cellos(d, &["--json", "inventory", "use", "V1"]));
    let again = cellos(d, &["inventory", "use", "V1"]);
    assert_eq!(String::from_utf8_lossy(&again.stderr).trim(), "error: vial `V1` is used, not available");
    let status = json(&cellos(d, &["--json", "db", "status"]));
    assert_eq!(status[0]["schema_version"], 1);
    let table = cellos(d, &["lines", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("cell line id"));
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("import the legacy platform's data without loss"));
}

#[test]
fn schedule_solve_reads_the_contract_and_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"{"resources":[{"id":"robot","capacity":1},{"id":"incubator","capacity":10}],
            "tasks":[{"id":"t1","duration_min":10,"resources":["robot"]},
                     {"id":"t2","duration_min":60,"resources":[{"id":"incubator","demand":2}],"predecessors":["t1"]}],
            "horizon_min":600}"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let v = json(&cellos(&data, &["--json", "schedule", "solve", f, "--time-limit", "5"]));
    assert_eq!(v["makespan_min"], 70);
    assert_eq!(v["optimal"], true);
    assert_eq!(v["bound_min"], 70);
    assert!(v["solve_ms"].is_u64());
    assert_eq!(v["tasks"][1]["start_min"], 10);
    assert_eq!(v["tasks"][1]["end_min"], 70);
    assert_eq!(v["tasks"][1]["units"]["incubator"], serde_json::json!(["incubator_1", "incubator_2"]));
    let table = cellos(&data, &["schedule", "solve", f]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("makespan 70 min (optimal)"));
    std::fs::write(&file, r#"{"resources":[],"tasks":[{"id":"a","duration_min":5,"predecessors":["a"]}]}"#).unwrap();
    let o = cellos(&data, &["schedule", "solve", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cycle"));
    assert!(!data.exists(), "scheduling creates no databases");
}

#[test]
fn dashboard_refuses_remote_binds_and_serves_a_saved_plan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = cellos(d, &["dashboard", "--bind", "0.0.0.0:8080"]);
    assert_eq!(o.status.code(), Some(2), "refused like any invalid request");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("reachable from other machines") && err.contains("--allow-remote"), "{err}");
    assert!(!d.join("campaigns.db").exists(), "a refused dashboard creates nothing");
    let o = cellos(d, &["dashboard", "--bind", "no-such-host-name.invalid:1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("give HOST:PORT"));
    // A plan saved by `facility plan --save` is what the Facility page shows.
    let o = cellos(d, &["facility", "plan", &fixture("facility_stress.toml"), "--save", "--name", "winter"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("saved as plan 1 `winter`"));
    let page = dashboard_page(d, "/facility");
    assert!(page.contains("Plan 1: winter") && page.matches("<svg").count() == 3, "{page}");
}

/// Serves the dashboard of `d` on a free port, returns the body of `path`, and stops it.
fn dashboard_page(d: &Path, path: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(BIN)
        .arg("--data-dir")
        .arg(d)
        .args(["dashboard", "--bind", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        match ureq::get(&format!("http://127.0.0.1:{port}{path}")).call() {
            Ok(mut r) => break r.body_mut().read_to_string().unwrap(),
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => panic!("dashboard did not answer: {e}"),
        }
    };
    server.kill().unwrap();
    server.wait().unwrap();
    page
}

/// Reading commands (`campaigns list`, `db status`, `results summary`, `lines list`, the dashboard) on a
/// read-only data directory: they answer, and nothing is migrated or created. A damaged database is an
/// error that names the file. (The read-only part needs root, to mount a tmpfs and remount it
/// read-only; elsewhere it says it is skipped.)
#[test]
fn reading_commands_work_on_a_read_only_data_directory() {
    // A damaged file is named.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&cellos(d, &["--json", "import", "cell-lines", &fixture("cell_lines.yaml")]));
    let mut bytes = std::fs::read(d.join("cell_lines.db")).unwrap();
    for b in &mut bytes[..100] {
        *b = 0x5a;
    }
    std::fs::write(d.join("cell_lines.db"), &bytes).unwrap();
    let _ = std::fs::remove_file(d.join("cell_lines.db-wal"));
    let o = cellos(d, &["lines", "list"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "a damaged database is a failure, not bad usage: {err}");
    assert!(err.contains("cell_lines.db") && err.contains("not a database"), "{err}");

    let mnt = tempfile::tempdir().unwrap();
    let Some(disk) = common::Tmpfs::mount(mnt.path(), "16m", "the read-only part") else { return };
    let d = &mnt.path().join("data");
    json(&cellos(d, &["--json", "import", "cell-lines", &fixture("cell_lines.yaml")]));
    json(&cellos(d, &["--json", "import", "results", &fixture("phase0_all_plates.csv")]));
    json(&cellos(d, &["--json", "import", "campaigns", &fixture("campaigns_db_export")]));
    // An older schema of one database (version 2: what migrations 3 to 6 add taken away again):
    // reading it must not migrate it.
    let c = rusqlite::Connection::open(d.join("experimental_results.db")).unwrap();
    c.execute_batch(
        "DROP INDEX measurements_natural; DROP INDEX measurements_campaign_order; DROP TRIGGER measurements_stats_insert; DROP TRIGGER measurements_stats_delete; \
         DROP TRIGGER measurements_stats_update; DROP TABLE dose_stats; DROP TABLE plate_stats; \
         CREATE INDEX measurements_line_compound ON measurements (cell_line, compound, dose_uM, viability_norm); \
         ALTER TABLE measurements DROP COLUMN virus_ul; ALTER TABLE measurements DROP COLUMN bfp_fraction; \
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(c);
    let listing = |d: &Path| {
        let mut names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let c = rusqlite::Connection::open(d.join("experimental_results.db")).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(c);
    disk.remount("ro");
    let files = listing(d);

    // The results database is a version behind: a read-only directory cannot migrate it, and every
    // command says so, naming the file.
    for args in [&["db", "status"][..], &["campaigns", "list"]] {
        let o = cellos(d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("experimental_results.db") && err.contains("run a writing command once"), "{err}");
    }
    assert_eq!(listing(d), files, "nothing created");

    // Migrated (writable again), then read-only: every reading command answers.
    disk.remount("rw");
    json(&cellos(d, &["--json", "db", "status"]));
    let c = rusqlite::Connection::open(d.join("experimental_results.db")).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(c);
    disk.remount("ro");
    let list = json(&cellos(d, &["--json", "campaigns", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let lines = json(&cellos(d, &["--json", "lines", "list"]));
    assert_eq!(lines.as_array().unwrap().len(), 13);
    let status = json(&cellos(d, &["--json", "db", "status"]));
    assert_eq!(status[3]["rows"]["measurements"], 528, "{status}");
    assert_eq!(status[3]["schema_version"], 6);
    let summary = json(&cellos(d, &["--json", "results", "summary"]));
    assert_eq!(summary["measurements"], 528);
    let page = dashboard_page(d, "/");
    assert!(page.contains("demo_campaign"), "{page}");
}
