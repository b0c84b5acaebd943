//! Campaigns end to end: `cellos-gateway campaign run` against a twin in a separate process, and the
//! same campaign killed at many points and resumed, which must end exactly where the uninterrupted run
//! ends, without an operation done twice or skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cellos_core::proto::wire::{Counters, Request, Response};
use cellos_gateway::campaign::{deck_path, deck_toml};
use cellos_gateway::transport::{Protocol, SerialConfig, open_serial};
use cellos_gateway::twin::{TwinOptions, TwinProcess};
use cellos_gateway::wire::WireClient;
use rusqlite::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_cellos-gateway");

/// A scratch data directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "cellos-campaign-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bench: a data directory, a campaign file and a twin process serving the campaign deck.
struct Bench {
    dir: Scratch,
    config: PathBuf,
    twin: TwinProcess,
}

impl Bench {
    fn new(tag: &str, config: &str, lines: &[&str]) -> Bench {
        Bench::with_reader_faults(tag, config, lines, "")
    }

    /// A bench whose twin applies `reader_faults` to the reader line (see `cellos-twin --help`).
    fn with_reader_faults(tag: &str, config: &str, lines: &[&str], reader_faults: &str) -> Bench {
        let dir = Scratch::new(tag);
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        std::fs::write(deck_path(&dir.0), deck_toml(&lines).unwrap()).unwrap();
        let twin = TwinProcess::spawn(
            Path::new(BIN),
            &TwinOptions {
                seed: 7,
                deck: Some(deck_path(&dir.0)),
                reader_faults: reader_faults.into(),
                instant: true,
                ..TwinOptions::default()
            },
        )
        .unwrap();
        let path = dir.0.join("campaign.toml");
        std::fs::write(&path, config).unwrap();
        Bench { dir, config: path, twin }
    }

    fn gateway(&self, args: &[&str], crash_after: Option<(u64, &str)>) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .args([
                "--data-dir",
                self.dir.0.to_str().unwrap(),
                "--star",
                &self.twin.star,
                "--reader",
                &self.twin.reader,
            ])
            .env_remove("CELLOS_CRASH_AFTER")
            .env_remove("CELLOS_CRASH_AT")
            .env_remove("CELLOS_DATA_DIR");
        if let Some((n, label)) = crash_after {
            c.env("CELLOS_CRASH_AFTER", n.to_string()).env("CELLOS_CRASH_AT", label);
        }
        c.output().unwrap()
    }

    fn run(&self, crash_after: Option<(u64, &str)>) -> Output {
        self.gateway(&["campaign", "run", "--config", self.config.to_str().unwrap()], crash_after)
    }

    fn counters(&self) -> Counters {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (tx, rx) = open_serial(&SerialConfig::new(self.twin.reader.as_str()), Protocol::Wire).unwrap();
            let client = WireClient::new(tx, rx, Duration::from_secs(2));
            match client.ask(&Request::Counters).await.unwrap() {
                Response::Counters(c) => c,
                other => panic!("{other:?}"),
            }
        })
    }

    fn db(&self, name: &str) -> Connection {
        Connection::open(self.dir.0.join(name)).unwrap()
    }

    /// Everything the campaign leaves behind that must not depend on crashes: the outputs, the
    /// measurements, the iterations and the journal's operations, in order.
    fn outcome(&self) -> Outcome {
        outcome_of(&self.dir.0)
    }
}

/// What a campaign in `dir` left behind (see [`Bench::outcome`]).
fn outcome_of(dir: &Path) -> Outcome {
    let db = |name: &str| Connection::open(dir.join(name)).unwrap();
    let c = db("campaigns.db");
    let rows = |conn: &Connection, sql: &str| -> Vec<String> {
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    };
    let r = db("experimental_results.db");
    Outcome {
        status: rows(&c, "SELECT status FROM campaigns"),
        outputs: rows(&c, "SELECT cell_line_id || ' ' || value FROM stage_outputs ORDER BY cell_line_id"),
        iterations: rows(
            &c,
            "SELECT iteration_number || ' ' || proposals || ' ' || results FROM campaign_iterations ORDER BY iteration_number",
        ),
        journal: rows(&c, "SELECT iteration || '/' || seq || ' ' || op FROM journal ORDER BY iteration, seq"),
        not_done: rows(&c, "SELECT iteration || '/' || seq FROM journal WHERE state NOT IN ('done', 'reconciled')"),
        measurements: rows(
            &r,
            "SELECT iteration || ' ' || well_id || ' ' || is_control || ' ' || ifnull(dose_uM, '-') || ' ' || ifnull(viability_norm, '-') \
                 || ' ' || ifnull(raw_signal, '-') || ' ' || ifnull(segmentation, '-') || ' ' || ifnull(virus_ul, '-') || ' ' \
                 || ifnull(bfp_fraction, '-') FROM measurements ORDER BY iteration, well_id",
        ),
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    status: Vec<String>,
    outputs: Vec<String>,
    iterations: Vec<String>,
    journal: Vec<String>,
    not_done: Vec<String>,
    measurements: Vec<String>,
}

/// The twin executed exactly the reference run's liquid operations (each once) and no error.
fn assert_executed_once(got: &Counters, expected: &Counters, context: &str) {
    assert_eq!(
        (got.aspirates, got.dispenses, got.tip_pickups, got.tip_drops, got.errors),
        (expected.aspirates, expected.dispenses, expected.tip_pickups, expected.tip_drops, 0),
        "{context}"
    );
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const THREE: &str = "campaign_id = \"e2e\"\nlines = [\"U2OS\", \"HepG2\", \"A549\"]\nseed = 7\n";

#[test]
fn a_campaign_finds_each_lines_dose_and_records_it() {
    let bench = Bench::new("e2e", THREE, &["U2OS", "HepG2", "A549"]);
    let o = bench.run(None);
    assert!(o.status.success(), "{}", text(&o));
    // MODEL.md's optima (the model's noise-free best dose over 0–500 µM): within 10 %.
    let outcome = bench.outcome();
    assert_eq!(outcome.status, ["completed"]);
    assert_eq!(outcome.outputs.len(), 3);
    for (line, optimum) in [("A549", 36.47), ("HepG2", 65.16), ("U2OS", 45.24)] {
        let row = outcome.outputs.iter().find(|r| r.starts_with(line)).unwrap();
        let v: serde_json::Value = serde_json::from_str(row.split_once(' ').unwrap().1).unwrap();
        let dose = v["value"].as_f64().unwrap();
        assert!((dose - optimum).abs() / optimum < 0.10, "{line}: {dose} µM, optimum {optimum} µM");
        assert!(v["lo"].as_f64().unwrap() <= dose && dose <= v["hi"].as_f64().unwrap(), "{row}");
        assert_eq!(v["wells"], 45);
    }
    // Every iteration: one control and its dosed wells, all in the measurements with the campaign's id.
    let r = bench.db("experimental_results.db");
    let (n, controls, iterations, lines): (i64, i64, i64, i64) = r
        .query_row(
            "SELECT count(*), sum(is_control), count(DISTINCT iteration), count(DISTINCT cell_line) FROM measurements WHERE campaign_id = 'e2e'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(n, 3 * 45 + controls);
    // The lines ran side by side: every iteration holds a control of each line.
    assert_eq!(controls, 3 * iterations);
    assert_eq!(iterations, 3, "three rounds");
    assert_eq!(iterations as usize, outcome.iterations.len());
    assert_eq!(lines, 3);
    let control_dose: f64 =
        r.query_row("SELECT max(dose_uM) FROM measurements WHERE is_control = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(control_dose, 0.0);
    // Doses in the database are what the transfers put in the wells (200 µL, 0.1 µL steps), and the
    // viability falls with the dose.
    let (lo, hi): (f64, f64) = r
        .query_row(
            "SELECT avg(viability_norm) FILTER (WHERE dose_uM < 30), avg(viability_norm) FILTER (WHERE dose_uM > 300) FROM measurements WHERE is_control = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(lo > 0.8 && hi < 0.3, "viability {lo} at low doses, {hi} at high doses");
    // Everything journaled is done, and the twin did exactly the journal's operations.
    assert!(outcome.not_done.is_empty(), "{:?}", outcome.not_done);
    // A command of several channels counts once per channel, as the twin counts.
    let count = |kind: &str| {
        outcome.journal.iter().map(|j| j.matches(&format!("\"kind\":\"{kind}\"")).count()).sum::<usize>() as u32
    };
    let c = bench.counters();
    assert_eq!(c.aspirates, count("aspirate"));
    assert_eq!(c.dispenses, count("dispense"));
    assert_eq!(c.tip_pickups, count("pick_up"));
    assert_eq!(c.tip_drops, count("drop"));
    assert_eq!(c.errors, 0);
    // One experiment per line and iteration, linked to the campaign in the same transaction as its row.
    let c = bench.db("campaigns.db");
    let (experiments, links): (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM experiments WHERE campaign_id = 'e2e' AND status = 'completed'), \
                    (SELECT count(*) FROM campaign_experiments e JOIN campaign_iterations i \
                       ON i.campaign_id = e.campaign_id AND i.iteration_number = e.iteration_number)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((experiments, links), (3 * iterations, 3 * iterations));
    // The status command reads it back.
    let o = bench.gateway(&["--json", "campaign", "status", "e2e"], None);
    assert!(!o.status.success(), "status takes no instrument lines");
    let o = Command::new(BIN)
        .args(["--json", "campaign", "status", "e2e", "--data-dir", bench.dir.0.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["journal_not_done"], 0);
    assert_eq!(v["outputs"].as_array().unwrap().len(), 3);
}

const ONE: &str = "campaign_id = \"crash\"\nlines = [\"U2OS\"]\nseed = 7\nbudget_wells = 48\n";

#[test]
fn a_campaign_killed_anywhere_resumes_to_the_same_end() {
    let reference = Bench::new("ref", ONE, &["U2OS"]);
    let o = reference.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let expected = reference.outcome();
    let expected_counters = reference.counters();
    assert_eq!(expected.status, ["completed"]);
    assert!(expected.journal.len() > 50, "{} steps", expected.journal.len());
    // Most liquid steps are commands of several channels.
    let multi = |j: &String| j.contains("\"kind\":\"channels\"");
    assert!(
        expected.journal.iter().filter(|j| multi(j)).count() * 2 > expected.journal.len(),
        "{:?}",
        expected.journal
    );
    // Kill points spread over the whole run, for every kind of crash point: the n-th point whose label
    // contains `label`. Counted from the reference run, so every one of them is reached.
    let steps = expected.journal.len() as u64;
    let liquid = expected.journal.iter().filter(|j| !j.contains("incubate")).count() as u64;
    let readings = expected.measurements.len() as u64;
    let commits = expected.iterations.len() as u64;
    let mut kills: Vec<(u64, &str)> = Vec::new();
    for k in 1..=12 {
        kills.push(((steps * k / 12).max(1), "journal written"));
        kills.push(((liquid * k / 12).max(1), "sent, before the reply"));
        kills.push(((steps * k / 12 + 1).min(steps), "reply received"));
    }
    for k in [1, 3, 4] {
        kills.push(((readings * k / 4).max(1), "reading"));
    }
    // Between the commands of one multi-channel run (the aspiration, then each column's dispense),
    // and while a multi-channel command is on the line.
    let between: Vec<u64> = (1..=steps).filter(|&n| multi(&expected.journal[n as usize - 1])).step_by(5).collect();
    for &n in between.iter().take(6) {
        kills.push((n, "journal written"));
        kills.push((n, "reply received"));
    }
    let sent: Vec<u64> = (1..=liquid).step_by(7).take(4).collect();
    kills.extend(sent.iter().map(|&n| (n, "sent, before the reply")));
    for k in 1..=commits {
        kills.push((k, "measurements committed"));
    }
    let (mut crashed, mut reconciled, mut resent) = (0, 0, 0);
    let (mut multi_reconciled, mut multi_resent) = (0, 0);
    for &(n, label) in &kills {
        let bench = Bench::new("kill", ONE, &["U2OS"]);
        let first = bench.run(Some((n, label)));
        let log = text(&first);
        if !first.status.success() {
            crashed += 1;
            assert!(log.contains(&format!("crash point {n} ({label}")), "{n} {label}: {log}");
            // Another process reads the progress of the interrupted campaign.
            let o = Command::new(BIN)
                .args(["--json", "campaign", "status", "crash", "--data-dir", bench.dir.0.to_str().unwrap()])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
            assert_eq!(v["status"], "running");
            assert!(v["journal_entries"].as_i64().unwrap() >= v["journal_not_done"].as_i64().unwrap());
            let o = bench.gateway(&["campaign", "resume", "crash"], None);
            assert!(o.status.success(), "resume after {n} {label}: {}", text(&o));
        }
        let c = bench.db("campaigns.db");
        let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        reconciled += count("SELECT count(*) FROM journal WHERE state = 'reconciled'");
        resent += count("SELECT count(*) FROM journal WHERE detail LIKE '%sent again%'");
        multi_reconciled +=
            count("SELECT count(*) FROM journal WHERE state = 'reconciled' AND op LIKE '%\"kind\":\"channels\"%'");
        multi_resent += count(
            "SELECT count(*) FROM journal WHERE detail LIKE '%sent again%' AND op LIKE '%\"kind\":\"channels\"%'",
        );
        let got = bench.outcome();
        assert_eq!(got.status, expected.status, "after {n} {label}");
        assert_eq!(got.outputs, expected.outputs, "after {n} {label}");
        assert_eq!(got.measurements, expected.measurements, "after {n} {label}");
        assert_eq!(got.iterations.len(), expected.iterations.len(), "after {n} {label}");
        for (g, e) in got.iterations.iter().zip(&expected.iterations) {
            assert_eq!(g, e, "after {n} {label}");
        }
        assert!(got.not_done.is_empty(), "after {n} {label}: {:?}", got.not_done);
        // The same operations in the same order (tip spots included), each executed exactly once.
        assert_eq!(got.journal, expected.journal, "after {n} {label}");
        assert_executed_once(&bench.counters(), &expected_counters, &format!("after {n} {label}"));
    }
    assert!(kills.len() >= 20);
    assert_eq!(crashed, kills.len(), "every kill point is reached");
    // Both ways out of a step left pending were taken: found done on the instrument, and sent again.
    assert!(reconciled > 0 && resent > 0, "{reconciled} reconciled, {resent} sent again");
    // Multi-channel commands among them, both ways: checked on every channel and found done, or found
    // on none and sent again.
    assert!(multi_reconciled > 0 && multi_resent > 0, "{multi_reconciled} reconciled, {multi_resent} sent again");
    eprintln!("{} kill points, {reconciled} steps reconciled, {resent} sent again", kills.len());
}

#[test]
fn resume_refuses_what_it_cannot_resume() {
    let bench = Bench::new("refuse", ONE, &["U2OS"]);
    let o = bench.gateway(&["campaign", "resume", "nope"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("no campaign `nope`"), "{}", text(&o));
    let o = bench.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let o = bench.gateway(&["campaign", "resume", "crash"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("already completed"), "{}", text(&o));
    // Settings the runner cannot carry out are refused before anything is written.
    let fresh = Scratch::new("bad");
    for (bad, why) in [
        ("lines = [\"Vero\"]\n", "Vero"),
        ("lines = [\"U2OS\"]\nstrategy = \"random\"\n", "strategy"),
        ("lines = [\"U2OS\"]\nbudget_wells = 60\n", "at most 56"),
        ("lines = [\"U2OS\"]\nwells = 60\n", "unknown field"),
    ] {
        let file = fresh.0.join("bad.toml");
        std::fs::write(&file, bad).unwrap();
        let o = Command::new(BIN)
            .args(["campaign", "run", "--twin", "--config", file.to_str().unwrap(), "--data-dir"])
            .arg(fresh.0.join("data"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{bad}");
        assert!(text(&o).contains(why), "{bad}: {}", text(&o));
        assert!(!fresh.0.join("data").exists(), "{bad}: nothing written");
    }
}

#[test]
fn run_needs_an_instrument_or_the_twin_and_starts_the_twin_itself() {
    let dir = Scratch::new("twin");
    let config = dir.0.join("c.toml");
    std::fs::write(&config, "campaign_id = \"own\"\nlines = [\"A549\"]\nbudget_wells = 16\n").unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["campaign", "run", "--config", config.to_str().unwrap(), "--data-dir", dir.0.to_str().unwrap()])
            .args(extra)
            .env_remove("CELLOS_CRASH_AFTER")
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--twin"), "{}", text(&o));
    assert!(!dir.0.join("campaigns.db").exists(), "nothing written when there is nothing to run on");
    let o = run(&["--twin"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = out.lines().find(|l| l.starts_with("A549")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("success") && row.contains(" 36.47 ("), "the twin's optimum last: {row}");
    assert!(text(&o).contains("A549 iteration 1:"), "progress is shown: {}", text(&o));
}

#[test]
fn small_doses_go_through_fresh_intermediate_dilutions() {
    let bench = Bench::new(
        "dilute",
        "campaign_id = \"low\"\nlines = [\"U2OS\"]\ndose_range_um = [0.05, 5.0]\nbudget_wells = 16\nstrategy = \"grid\"\n",
        &["U2OS"],
    );
    let o = bench.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let outcome = bench.outcome();
    // Intermediates were made on the dilution plate (medium first, then the higher source) and used.
    let to_dilution = outcome.journal.iter().filter(|j| j.contains("\"to\":\"DILUTION:")).count();
    let from_dilution = outcome.journal.iter().filter(|j| j.contains("\"from\":\"DILUTION:")).count();
    // (One channel takes an intermediate's doses with one aspiration: it multi-dispenses.)
    assert!(to_dilution >= 2 && from_dilution >= 1, "{to_dilution} into, {from_dilution} out of the dilution plate");
    // No transfer under the minimum volume.
    for j in &outcome.journal {
        let v: serde_json::Value = serde_json::from_str(j.split_once(' ').unwrap().1).unwrap();
        if let Some(ul) = v["volume_ul"].as_f64() {
            assert!(ul >= 0.5, "{j}");
        }
    }
    // Each dosed well holds the proposed dose, to the 0.1 µL resolution of the transfers.
    let c = bench.db("campaigns.db");
    let r = bench.db("experimental_results.db");
    let mut st = c.prepare("SELECT iteration_number, proposals FROM campaign_iterations").unwrap();
    let its: Vec<(i64, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert!(!its.is_empty());
    for (it, proposals) in its {
        let p: serde_json::Value = serde_json::from_str(&proposals).unwrap();
        let proposed: Vec<f64> =
            p["lines"][0]["doses_um"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
        let mut st =
            r.prepare("SELECT dose_uM FROM measurements WHERE iteration = ?1 AND is_control = 0 ORDER BY id").unwrap();
        let got: Vec<f64> = st.query_map([it], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), proposed.len());
        for (g, p) in got.iter().zip(&proposed) {
            assert!((g - p).abs() <= 0.025 * p + 1e-9, "iteration {it}: proposed {p} µM, well holds {g} µM");
        }
    }
}

const POSH: &str = "campaign_id = \"posh\"\nlines = [\"U2OS\", \"HepG2\", \"A549\"]\nseed = 7\nposh = true\n";

fn posh_outputs(bench: &Bench) -> Vec<(String, String, serde_json::Value)> {
    let c = bench.db("campaigns.db");
    let mut st = c.prepare("SELECT cell_line_id, key, value FROM stage_outputs ORDER BY cell_line_id, key").unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(l, k, v)| (l, k, serde_json::from_str(&v).unwrap()))
        .collect()
}

#[test]
fn a_posh_campaign_banks_finds_doses_and_titrates_each_line() {
    let bench = Bench::new("posh", POSH, &["U2OS", "HepG2", "A549"]);
    let o = bench.run(None);
    assert!(o.status.success(), "{}", text(&o));
    // The three titrations incubate side by side: 96 h of dose finding, then 48 h, not 3 × 48 h.
    let o = Command::new(BIN)
        .args(["--json", "campaign", "status", "posh", "--data-dir", bench.dir.0.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let incubated = v["lab_time"]["incubation_hours"].as_f64().unwrap();
    assert!((144.0..145.0).contains(&incubated), "{incubated} h incubating");
    let outputs = posh_outputs(&bench);
    for line in ["U2OS", "HepG2", "A549"] {
        let get = |key: &str| {
            outputs
                .iter()
                .find(|(l, k, _)| l == line && k == key)
                .map(|(.., v)| v.clone())
                .unwrap_or_else(|| panic!("{line} {key}"))
        };
        assert_eq!(get("mcb_vial_count"), 10, "{line}");
        assert_eq!(get("wcb_vial_count"), 30, "{line}");
        assert_eq!(get("optimal_tbhp_dose_uM")["status"], "success", "{line}");
        // The twin's virus: 5000 TU/µL, A = 0.85, on 10,000 cells per well.
        let titer = get("lv_estimated_titer")["value"].as_f64().unwrap();
        assert!((titer - 5000.0).abs() / 5000.0 < 0.20, "{line}: {titer} TU/µL");
        let a = get("lv_estimated_titer")["max_fraction"].as_f64().unwrap();
        let truth = -(1.0f64 - 0.30 / 0.85).ln() * 10_000.0 / 5000.0;
        let volume = get("lv_optimal_volume_ul")["value"].as_f64().unwrap();
        assert!((volume - truth).abs() / truth < 0.25, "{line}: {volume} µL for 30 %, truth {truth} µL (A {a})");
    }
    assert_eq!(outputs.len(), 15);
    // Vials: 10 MCB (one thawed for the WCB) and 30 WCB per line, each with its usage record.
    let l = bench.db("cell_lines.db");
    let mut st = l
        .prepare("SELECT cell_line_id, status, count(*) FROM cell_line_inventory GROUP BY 1, 2 ORDER BY 1, 2")
        .unwrap();
    let rows: Vec<(String, String, i64)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    for line in ["A549", "HepG2", "U2OS"] {
        let n = |status: &str| rows.iter().find(|(l, s, _)| l == line && s == status).map_or(0, |r| r.2);
        assert_eq!(n("available") + n("used"), 40, "{line}: {rows:?}");
        assert!(n("used") >= 1, "{line}");
    }
    let usage: i64 =
        l.query_row("SELECT count(*) FROM cell_line_usage WHERE execution_id = 'posh'", [], |r| r.get(0)).unwrap();
    assert_eq!(usage, rows.iter().filter(|r| r.1 == "used").map(|r| r.2).sum::<i64>());

    // Killed during a titration and resumed: the same outputs, no stage repeated, no vial added.
    let killed = Bench::new("posh-kill", POSH, &["U2OS", "HepG2", "A549"]);
    let readings = 3 * 45 + 3 * (bench.outcome().iterations.len() as u64) + 8 + 3;
    let first = killed.run(Some((readings, "reading")));
    assert!(!first.status.success(), "{}", text(&first));
    assert!(
        posh_outputs(&killed).iter().all(|(l, k, _)| k != "lv_estimated_titer" || l != "HepG2"),
        "killed in HepG2's titration"
    );
    let o = killed.gateway(&["campaign", "resume", "posh"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(posh_outputs(&killed), outputs);
    let vials: i64 =
        killed.db("cell_lines.db").query_row("SELECT count(*) FROM cell_line_inventory", [], |r| r.get(0)).unwrap();
    assert_eq!(vials, 120);
    let c = killed.counters();
    let journal = killed.outcome().journal;
    assert_eq!(c.aspirates as usize, journal.iter().map(|j| j.matches("\"aspirate\"").count()).sum::<usize>());
}

/// The reader link's faults, each under a campaign: the outputs, measurements, iterations and journal
/// are exactly those of the fault-free run, and the twin executed each liquid operation once. Before
/// request ids, a duplicated or late reading shifted every later reading by one, and a lost incubation
/// reply made the incubation run twice.
#[test]
fn reader_faults_change_nothing() {
    let reference = Bench::new("rf-ref", ONE, &["U2OS"]);
    let o = reference.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let expected = reference.outcome();
    let expected_counters = reference.counters();
    let readings = expected.measurements.len();
    for spec in [
        "drop=1,only=IN",
        "drop=2,only=RD",
        "late=1,delay=1500,only=RD",
        "late=1,delay=1500,only=IN",
        "corrupt=2,only=RD",
        "corrupt=1,only=IN",
        "dup=3,only=RD",
        "dup=1,only=IN",
        "drop=1,corrupt=1,dup=1",
    ] {
        let bench = Bench::with_reader_faults("rf", ONE, &["U2OS"], spec);
        let o = bench
            .gateway(&["campaign", "run", "--config", bench.config.to_str().unwrap(), "--timeouts", "reader=1"], None);
        assert!(o.status.success(), "{spec}: {}", text(&o));
        let got = bench.outcome();
        assert_eq!(got.measurements.len(), readings, "{spec}");
        assert_eq!(got.measurements, expected.measurements, "{spec}");
        assert_eq!(got.outputs, expected.outputs, "{spec}");
        assert_eq!(got.iterations, expected.iterations, "{spec}");
        assert_eq!(got.journal, expected.journal, "{spec}");
        let c = bench.counters();
        assert!(c.faults_applied >= 1, "{spec}: the fault was applied");
        assert_executed_once(&c, &expected_counters, spec);
    }
}

/// A gateway process killed with SIGKILL at random moments of a campaign (at least 30 kills by default,
/// `CELLOS_KILLS` to change), the twin kept alive: each campaign is killed during its run and again
/// during its first resume, then resumed to the end. No resume hangs, every end is the uninterrupted
/// run's to the last digit, and no liquid operation was executed twice.
#[test]
fn sigkill_at_random_moments_changes_nothing() {
    let kills: usize = std::env::var("CELLOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let reference = Bench::new("sk-ref", ONE, &["U2OS"]);
    let started = std::time::Instant::now();
    let o = reference.run(None);
    let duration = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let expected = reference.outcome();
    let expected_counters = reference.counters();
    // A small xorshift: the kill moments are reproducible (CELLOS_KILL_SEED), uniform over a run's length.
    let mut x: u64 =
        std::env::var("CELLOS_KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut moment = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_micros(x % (duration.as_micros() as u64).max(1))
    };
    let (mut killed, mut campaigns, mut hangs) = (0, 0, 0);
    while killed < kills {
        let bench = Bench::new("sk", ONE, &["U2OS"]);
        campaigns += 1;
        let spawn = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .args([
                    "--data-dir",
                    bench.dir.0.to_str().unwrap(),
                    "--star",
                    &bench.twin.star,
                    "--reader",
                    &bench.twin.reader,
                ])
                .env_remove("CELLOS_CRASH_AFTER")
                .env_remove("CELLOS_DATA_DIR")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        // Killed before it claimed its id, a campaign is started again; after, it is resumed.
        let claimed = || {
            Command::new(BIN)
                .args(["--json", "campaign", "status", "crash", "--data-dir", bench.dir.0.to_str().unwrap()])
                .output()
                .unwrap()
                .status
                .success()
        };
        let run = ["campaign", "run", "--config", bench.config.to_str().unwrap()];
        let resume = ["campaign", "resume", "crash"];
        for _ in 0..2 {
            let mut child = spawn(if claimed() { &resume[..] } else { &run[..] });
            std::thread::sleep(moment());
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            }
            child.wait().unwrap();
        }
        // The last resume runs to the end within a bound; a hang fails the test.
        let mut child = spawn(if claimed() { &resume[..] } else { &run[..] });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                hangs += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
        assert_eq!(hangs, 0, "a resume hung (campaign {campaigns})");
        let got = bench.outcome();
        let at = format!("campaign {campaigns} ({killed} kills so far)");
        assert_eq!(got.status, ["completed"], "{at}");
        assert_eq!(got.outputs, expected.outputs, "{at}");
        assert_eq!(got.measurements, expected.measurements, "{at}");
        assert_eq!(got.iterations, expected.iterations, "{at}");
        assert_eq!(got.journal, expected.journal, "{at}");
        assert!(got.not_done.is_empty(), "{at}: {:?}", got.not_done);
        assert_executed_once(
            &bench.counters(),
            &expected_counters,
            &format!("{at}: every liquid operation executed exactly once"),
        );
        assert!(campaigns <= 4 * kills, "the kills keep missing: {killed} in {campaigns} campaigns");
    }
    eprintln!(
        "{killed} SIGKILLs in {campaigns} campaigns of {duration:?}: 0 hangs, 0 differences, 0 repeated operations"
    );
}

/// Resume checks which instruments it reached: another twin on the lines is refused, naming the
/// instrument expected and the one that answered, and nothing is sent to it.
#[test]
fn resume_refuses_another_instrument() {
    let bench = Bench::new("ident", ONE, &["U2OS"]);
    let first = bench.run(Some((40, "journal written")));
    assert!(!first.status.success());
    let other = Bench::new("ident-other", ONE, &["U2OS"]);
    let o = Command::new(BIN)
        .args(["campaign", "resume", "crash", "--data-dir", bench.dir.0.to_str().unwrap()])
        .args(["--star", &other.twin.star, "--reader", &other.twin.reader])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let log = text(&o);
    assert!(log.contains("is not the instrument this campaign ran on"), "{log}");
    assert!(log.contains("expected firmware") && log.contains("serial"), "{log}");
    let c = other.counters();
    assert_eq!((c.aspirates, c.dispenses, c.tip_pickups), (0, 0, 0), "nothing was sent to the other twin");
    // The right one resumes.
    let o = bench.gateway(&["campaign", "resume", "crash"], None);
    assert!(o.status.success(), "{}", text(&o));
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn twin_pid(dir: &Path) -> i64 {
    Connection::open(dir.join("campaigns.db"))
        .unwrap()
        .query_row("SELECT json_extract(config, '$.twin.pid') FROM campaigns", [], |r| r.get(0))
        .unwrap()
}

fn wait_gone(pid: i64) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A campaign on a twin the gateway started can be resumed after any failure: the twin outlives the
/// failed gateway; once it is gone, `resume --twin` starts a new one and brings it to the journal's
/// state; the result is the uninterrupted run's. `run` on an existing id is refused; a completed or
/// abandoned campaign's twin is stopped.
#[test]
fn a_twin_campaign_resumes_after_any_failure() {
    let gw = |dir: &Path, args: &[&str], crash: Option<(u64, &str)>| {
        let mut c = Command::new(BIN);
        c.args(args).args(["--data-dir", dir.to_str().unwrap()]).env_remove("CELLOS_DATA_DIR");
        c.env_remove("CELLOS_CRASH_AFTER").env_remove("CELLOS_CRASH_AT");
        if let Some((n, label)) = crash {
            c.env("CELLOS_CRASH_AFTER", n.to_string()).env("CELLOS_CRASH_AT", label);
        }
        c.output().unwrap()
    };
    let reference = Scratch::new("tw-ref");
    let config = reference.0.join("c.toml");
    std::fs::write(&config, ONE).unwrap();
    let cfg = config.to_str().unwrap();
    let o = gw(&reference.0, &["campaign", "run", "--twin", "--config", cfg], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(wait_gone(twin_pid(&reference.0)), "the twin of a completed campaign is stopped");
    let expected = outcome_of(&reference.0);

    let dir = Scratch::new("tw");
    let o = gw(&dir.0, &["campaign", "run", "--twin", "--config", cfg], Some((35, "journal written")));
    assert!(!o.status.success());
    let pid = twin_pid(&dir.0);
    assert!(alive(pid), "the twin outlives the failed gateway");
    // `run` again on the same id is refused, pointing to resume.
    let o = gw(&dir.0, &["campaign", "run", "--twin", "--config", cfg], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists") && text(&o).contains("campaign resume crash"), "{}", text(&o));
    // Killed again later, on the same twin.
    let o = gw(&dir.0, &["campaign", "resume", "crash"], Some((10, "sent, before the reply")));
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(twin_pid(&dir.0), pid, "the same twin");
    // The twin dies: resume without --twin says what to do; with it, a new twin replays the journal.
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(wait_gone(pid));
    let o = gw(&dir.0, &["campaign", "resume", "crash"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("--twin"), "{}", text(&o));
    let o = gw(&dir.0, &["campaign", "resume", "crash", "--twin"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("brought to the journal's state"), "{}", text(&o));
    let new_pid = twin_pid(&dir.0);
    assert_ne!(new_pid, pid);
    assert!(wait_gone(new_pid), "the new twin is stopped when the campaign completes");
    let got = outcome_of(&dir.0);
    assert_eq!(got, expected);

    // Abandoned: the twin goes too, and the campaign cannot be resumed.
    let dir = Scratch::new("tw-ab");
    let o = gw(&dir.0, &["campaign", "run", "--twin", "--config", cfg], Some((30, "journal written")));
    assert!(!o.status.success());
    let pid = twin_pid(&dir.0);
    assert!(alive(pid));
    let o = gw(&dir.0, &["campaign", "abandon", "crash"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("was stopped"), "{}", text(&o));
    assert!(wait_gone(pid));
    let o = gw(&dir.0, &["campaign", "resume", "crash", "--twin"], None);
    assert!(!o.status.success() && text(&o).contains("abandoned"), "{}", text(&o));
}

/// Every setting is checked before anything is written, naming the field; the documented largest
/// budget runs; campaigns started together on a fresh data directory both run; one id started twice
/// at once runs once.
#[test]
fn settings_are_checked_before_anything_is_written() {
    let fresh = Scratch::new("cfg");
    let run = |body: &str, data: &Path| {
        let file = fresh.0.join(format!("{}.toml", data.file_name().unwrap().to_string_lossy()));
        std::fs::write(&file, body).unwrap();
        Command::new(BIN)
            .args(["campaign", "run", "--twin", "--config", file.to_str().unwrap(), "--data-dir"])
            .arg(data)
            .env_remove("CELLOS_CRASH_AFTER")
            .output()
            .unwrap()
    };
    for (bad, why) in [
        (
            "lines = [\"U2OS\"]\ndose_range_um = [-50.0, 300.0]\n",
            "dose_range_um = [-50, 300]: a dose cannot be negative",
        ),
        (
            "lines = [\"U2OS\"]\ndose_range_um = [300.0, 10.0]\n",
            "dose_range_um = [300, 10]: the upper end must be above",
        ),
        ("lines = [\"U2OS\"]\ndose_range_um = [0.0, 0.001]\n", "dose_range_um = [0, 0.001]: the search scouts from"),
        ("lines = [\"U2OS\"]\ndose_range_um = [0.0, 900.0]\n", "at most 500 µM"),
        ("lines = [\"U2OS\"]\nbudget_wells = 0\n", "budget_wells = 0"),
        ("lines = [\"U2OS\"]\nbudget_wells = 57\n", "budget_wells = 57: the search may need 61 wells"),
        ("lines = [\"U2OS\"]\nstrategy = \"grid\"\nbudget_wells = 6\n", "grid needs at least 12"),
    ] {
        let data = fresh.0.join("data");
        let o = run(bad, &data);
        assert_eq!(o.status.code(), Some(2), "bad settings are bad input: {bad}");
        assert!(text(&o).contains(why), "{bad}: {}", text(&o));
        assert!(!data.exists(), "{bad}: nothing written");
    }
    // The largest budget the plate holds runs to the end.
    let data = fresh.0.join("big");
    let o = run("campaign_id = \"big\"\nlines = [\"U2OS\"]\nbudget_wells = 56\n", &data);
    assert!(o.status.success(), "{}", text(&o));
    let wells: i64 = Connection::open(data.join("experimental_results.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM measurements WHERE is_control = 0", [], |r| r.get(0))
        .unwrap();
    assert!(wells > 0 && wells <= 56, "{wells}");
    // Two campaigns at once on a fresh data directory; then one id twice at once.
    for (ids, tag) in [(["a", "b"], "two"), (["same", "same"], "one")] {
        let data = fresh.0.join(tag);
        let children: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let file = fresh.0.join(format!("{tag}{k}.toml"));
                std::fs::write(&file, format!("campaign_id = \"{id}\"\nlines = [\"A549\"]\nbudget_wells = 16\n"))
                    .unwrap();
                Command::new(BIN)
                    .args(["campaign", "run", "--twin", "--config", file.to_str().unwrap(), "--data-dir"])
                    .arg(&data)
                    .env_remove("CELLOS_CRASH_AFTER")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let ok = outs.iter().filter(|o| o.status.success()).count();
        if tag == "two" {
            assert_eq!(ok, 2, "{}\n{}", text(&outs[0]), text(&outs[1]));
        } else {
            assert_eq!(ok, 1, "{}\n{}", text(&outs[0]), text(&outs[1]));
            let refused = outs.iter().find(|o| !o.status.success()).unwrap();
            let log = text(refused);
            assert!(log.contains("being run by another process") || log.contains("already exists"), "{log}");
            let rows: i64 = Connection::open(data.join("campaigns.db"))
                .unwrap()
                .query_row("SELECT count(*) FROM campaign_iterations", [], |r| r.get(0))
                .unwrap();
            assert!(rows > 0);
        }
    }
}

/// A gateway killed between a STAR command and its CR left half a command on the line: the next one
/// terminates it and discards the answer, so its own first command is not appended to it.
#[test]
fn half_a_command_left_on_the_star_line_is_cleared() {
    let bench = Bench::new("half", ONE, &["U2OS"]);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&bench.twin.star).unwrap();
        f.write_all(b"C0RFid0042").unwrap();
    }
    let started = std::time::Instant::now();
    let o = Command::new(BIN).args(["probe", "--port", &bench.twin.star, "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["firmware"], "1.0.0 CELLOS TWIN");
    assert_eq!(v["serial_number"].as_str().map(str::len), Some(8));
}

/// A tmpfs of `mib` MiB mounted on a fresh folder (root only), unmounted on drop.
struct Tmpfs(Scratch);

impl Tmpfs {
    fn mount(tag: &str, mib: u32) -> Option<Tmpfs> {
        let dir = Scratch::new(tag);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir.0)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0.0).status();
    }
}

/// Storage faults: a full disk stops the campaign with an error that says so, and after space is freed
/// `resume` finishes it exactly; a 0-byte database is an error naming the file, not a new database; a
/// read-only data directory still answers `campaign status`.
#[test]
fn storage_faults_are_reported_and_survived() {
    let bench = Bench::new("disk", ONE, &["U2OS"]);
    // 0 bytes.
    let empty = Scratch::new("empty");
    std::fs::write(empty.0.join("campaigns.db"), b"").unwrap();
    let o =
        Command::new(BIN).args(["--json", "campaign", "status", "crash", "--data-dir"]).arg(&empty.0).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("campaigns.db") && text(&o).contains("empty (0 bytes)"), "{}", text(&o));
    assert_eq!(std::fs::metadata(empty.0.join("campaigns.db")).unwrap().len(), 0, "left as it was");

    let Some(disk) = Tmpfs::mount("tmpfs", 16) else {
        eprintln!("SKIPPED: full-disk and read-only parts need root to mount a tmpfs");
        return;
    };
    let reference = Bench::new("disk-ref", ONE, &["U2OS"]);
    assert!(reference.run(None).status.success());
    let expected = reference.outcome();
    let data = disk.0.0.join("data");
    let gw = |args: &[&str], crash: Option<(u64, &str)>| {
        let mut c = Command::new(BIN);
        c.args(args)
            .args(["--data-dir", data.to_str().unwrap(), "--star", &bench.twin.star, "--reader", &bench.twin.reader])
            .env_remove("CELLOS_CRASH_AFTER")
            .env_remove("CELLOS_CRASH_AT");
        if let Some((n, label)) = crash {
            c.env("CELLOS_CRASH_AFTER", n.to_string()).env("CELLOS_CRASH_AT", label);
        }
        c.output().unwrap()
    };
    let o = gw(&["campaign", "run", "--config", bench.config.to_str().unwrap()], Some((5, "journal written")));
    assert!(!o.status.success());
    // Fill the disk to the last byte.
    let filler = disk.0.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let byte = [0u8; 1];
        while f.write_all(&byte).is_ok() {}
    }
    let o = gw(&["campaign", "resume", "crash"], None);
    assert!(!o.status.success(), "a full disk must stop the campaign: {}", text(&o));
    assert!(text(&o).contains("disk is full"), "{}", text(&o));
    std::fs::remove_file(&filler).unwrap();
    let o = gw(&["campaign", "resume", "crash"], None);
    assert!(o.status.success(), "{}", text(&o));
    let got = outcome_of(&data);
    assert_eq!(got, expected, "after the disk was full");

    // Read-only: the same directory, remounted read-only, still answers status.
    let ro = Command::new("mount").args(["-o", "remount,ro"]).arg(&disk.0.0).status().is_ok_and(|s| s.success());
    assert!(ro);
    let o =
        Command::new(BIN).args(["--json", "campaign", "status", "crash", "--data-dir"]).arg(&data).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "completed");
}

/// `campaign plan` says, before anything runs, what the demo campaign takes; the run then measures
/// it from its journal (`campaign status`), the twin counts the same robot time, and the plan is the
/// most the run takes: the calendar within 6 days (three rounds, the lines side by side), the robot's
/// hours on eight channels against the same iterations on one.
#[test]
fn the_plan_says_what_the_run_takes() {
    let dir = Scratch::new("plan");
    let config = dir.0.join("three.toml");
    std::fs::write(&config, THREE).unwrap();
    let o =
        Command::new(BIN).args(["campaign", "plan", "--json", "--config", config.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(!dir.0.join("campaigns.db").exists(), "planning writes nothing");
    let planned = &plan["planned"];
    assert_eq!(planned["iterations"], 3);
    // 24 h after the first seeding, then 24 h per iteration (the plates go in a few minutes apart).
    let incubation = planned["incubation_hours"].as_f64().unwrap();
    assert!((96.0..96.5).contains(&incubation), "{incubation} h");
    assert_eq!(planned["plates"], 4);
    let days = planned["calendar_days"].as_f64().unwrap();
    assert!(days > 4.0 && days <= 6.0, "{days} days");
    // The constraint scheduler proves no order of the same work is shorter (to its 10 s units).
    assert_eq!(plan["scheduled_optimal"], true);
    let scheduled = plan["scheduled_calendar_days"].as_f64().unwrap();
    assert!((scheduled - days).abs() < 0.01, "scheduled {scheduled} days, the runner's order {days} days");
    let (robot, single) =
        (planned["robot_hours"].as_f64().unwrap(), plan["robot_hours_single_channel"].as_f64().unwrap());
    assert!(robot > 0.0 && robot < 0.3 * single, "{robot} h on eight channels, {single} h on one");
    // The text form says the same.
    let o = Command::new(BIN).args(["campaign", "plan", "--config", config.to_str().unwrap()]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("calendar        {days:.2} days")), "{out}");
    assert!(out.contains(&format!("tips        {:>8}", planned["tips"].as_u64().unwrap())), "{out}");

    let bench = Bench::new("e2e", THREE, &["U2OS", "HepG2", "A549"]);
    let o = bench.run(None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("lab time: "), "{}", text(&o));
    let o = Command::new(BIN)
        .args(["--json", "campaign", "status", "e2e", "--data-dir", bench.dir.0.to_str().unwrap()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let measured = &v["lab_time"];
    for key in ["iterations", "plates", "tips"] {
        assert_eq!(measured[key], planned[key], "{key}");
    }
    // The plan counts the commands of the most wells each round may take; a run whose search asks for
    // fewer takes fewer (a column of fewer wells is still a command, a column left empty is none).
    let commands = |v: &serde_json::Value| v["commands"].as_u64().unwrap();
    assert!(commands(measured) <= commands(planned), "{measured} run, {planned} planned");
    assert!(commands(measured) + 10 >= commands(planned), "{measured} run, {planned} planned");
    assert!((measured["incubation_hours"].as_f64().unwrap() - incubation).abs() < 0.05);
    let robot_run = measured["robot_hours"].as_f64().unwrap();
    // The twin counted the same commands' lab time.
    let twin_hours = bench.counters().lab_ms as f64 / 3.6e6;
    assert!((robot_run - twin_hours).abs() < 1e-9, "{robot_run} h measured, {twin_hours} h on the twin");
    // The doses differ from the plan's noise-free ones, and so do the volumes: the robot time by little.
    assert!((robot_run - robot).abs() / robot < 0.05, "{robot_run} h run, {robot} h planned");
    assert!(measured["calendar_days"].as_f64().unwrap() <= days + 0.01);
}

/// `channels = 1` runs the same campaign on one channel: every step a single operation, the same
/// doses as on eight channels (the readings depend only on what the wells got), and more commands.
#[test]
fn one_channel_runs_the_same_campaign() {
    let eight =
        Bench::new("eight", "campaign_id = \"c\"\nlines = [\"A549\"]\nseed = 3\nbudget_wells = 28\n", &["A549"]);
    let o = eight.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let one = Bench::new(
        "one",
        "campaign_id = \"c\"\nlines = [\"A549\"]\nseed = 3\nbudget_wells = 28\nchannels = 1\n",
        &["A549"],
    );
    let o = one.run(None);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (eight.outcome(), one.outcome());
    assert!(a.journal.iter().any(|j| j.contains("\"kind\":\"channels\"")));
    assert!(
        b.journal.iter().all(|j| !j.contains("\"kind\":\"channels\"") && !j.contains("\"channel\":1")),
        "{:?}",
        b.journal
    );
    // The same, to rounding: a tip holding another total splits its compound with other last bits, and
    // the fit of the dose carries them on (1.8e-9 of the dose measured; 1e-8 allowed).
    let close = |x: &[String], y: &[String], what: &str| {
        assert_eq!(x.len(), y.len(), "{what}");
        for (p, q) in x.iter().zip(y) {
            let nums = |s: &str| -> Vec<f64> {
                s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
                    .filter_map(|t| t.parse().ok())
                    .collect()
            };
            let (u, v) = (nums(p), nums(q));
            assert_eq!(u.len(), v.len(), "{what}: {p} / {q}");
            for (m, n) in u.iter().zip(&v) {
                assert!((m - n).abs() <= 1e-8 * m.abs().max(1.0), "{what}: {p} / {q}");
            }
        }
    };
    close(&a.outputs, &b.outputs, "the dose");
    close(&a.measurements, &b.measurements, "the readings");
    let (ca, cb) = (eight.counters(), one.counters());
    assert_eq!((ca.dispenses, ca.errors, cb.errors), (cb.dispenses, 0, 0), "the same transfers, no error");
    assert!(cb.commands > 3 * ca.commands / 2, "{} commands on one channel, {} on eight", cb.commands, ca.commands);
}
