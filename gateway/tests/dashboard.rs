//! `cellos dashboard` over HTTP, against a data directory filled the way a lab fills it: the legacy seed
//! files through the importers, a dose-finding campaign run on the twin by the gateway binary, a saved
//! facility plan, and a running campaign whose id is markup. Every page and the CSV download are checked
//! for values read back from the databases; a browser test drives the pages through WebDriver when
//! Debian's chromium and chromium-driver are installed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use cellos_host::dashboard::Dashboard;
use cellos_host::dashboard::pages::num;
use cellos_host::kinds::Kind;
use cellos_host::store::Store;
use rusqlite::params;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cellos-gateway");
const EVIL: &str = "<script>alert(1)</script>";

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tools/tests/fixtures").join(p)
}

/// The data directory, filled once for all tests of this file.
struct Data {
    dir: PathBuf,
    /// The dose-finding campaign's id.
    campaign: String,
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-data");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir).unwrap();
        for (kind, file) in [
            (Kind::Params, "simulation_parameters.yaml"),
            (Kind::CellLines, "cell_lines.yaml"),
            (Kind::Results, "phase0_all_plates.csv"),
            (Kind::Campaigns, "campaigns_db_export"),
        ] {
            kind.import(&mut store, &fixture(file), &mut |_, _| {}).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let out = Command::new(BIN)
            .args(["campaign", "run", "--lines", "U2OS,HepG2", "--posh", "--twin", "--data-dir"])
            .arg(&dir)
            .env_remove("CELLOS_DATA_DIR")
            .env_remove("CELLOS_CRASH_AFTER")
            .output()
            .unwrap();
        assert!(out.status.success(), "campaign: {}", String::from_utf8_lossy(&out.stderr));
        let input: cellos_host::facility::PlanInput =
            toml::from_str(&std::fs::read_to_string(fixture("facility_stress.toml")).unwrap()).unwrap();
        let plan = cellos_host::facility::plan(&input).unwrap();
        cellos_host::facility::save(&store, "stress", &input, &plan).unwrap();
        // A facility too small for the same requests, with no shifting allowed: violations remain.
        let mut tight = input.clone();
        tight.facility.incubator_flasks = 6;
        for r in &mut tight.requests {
            r.max_shift_days = 0;
        }
        let tight_plan = cellos_host::facility::plan(&tight).unwrap();
        cellos_host::facility::save(&store, "tight", &tight, &tight_plan).unwrap();
        // A running campaign named with markup, with one committed iteration of legacy-shaped results.
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, status, config, created_at) \
                 VALUES (?1, 'autonomous', ?1, '2026-11-24T08:00:00Z', 'running', ?2, '2026-11-24T08:00:00Z')",
                params![EVIL, json!({ "note": EVIL }).to_string()],
            )
            .unwrap();
        add_iteration(&store, EVIL);
        // Another running campaign, watched by the browser test.
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, start_date, status, created_at) \
                 VALUES ('live', 'autonomous', '2026-11-24T09:00:00Z', 'running', '2026-11-24T09:00:00Z')",
                [],
            )
            .unwrap();
        add_iteration(&store, "live");
        let campaign: String = store
            .campaigns
            .query_row("SELECT campaign_id FROM campaigns WHERE campaign_type IN ('dose_finding', 'posh')", [], |r| {
                r.get(0)
            })
            .unwrap();
        Data { dir, campaign }
    })
}

/// Commits the next iteration of a running campaign (one legacy-shaped result whose line is markup).
fn add_iteration(store: &Store, id: &str) {
    let results = json!([{ "cell_line": EVIL, "compound": "staurosporine", "dose": 0.1, "measurement": 0.5 }]);
    store
        .campaigns
        .execute(
            "INSERT INTO campaign_iterations (campaign_id, iteration_number, timestamp, results) VALUES (?1, \
             (SELECT coalesce(max(iteration_number), 0) + 1 FROM campaign_iterations WHERE campaign_id = ?1), '2026-11-24T08:00:00Z', ?2)",
            params![id, results.to_string()],
        )
        .unwrap();
}

fn server() -> &'static Dashboard {
    static SERVER: OnceLock<Dashboard> = OnceLock::new();
    SERVER.get_or_init(|| Dashboard::start(&data().dir, "127.0.0.1:0", false).unwrap())
}

struct Page {
    status: u16,
    content_type: String,
    disposition: String,
    body: String,
}

fn get(path: &str) -> Page {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(&format!("http://{}{path}", server().addr())).call().unwrap();
    let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = r.status().as_u16();
    let body = r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
    Page { status, content_type, disposition, body }
}

fn ok(path: &str) -> String {
    let p = get(path);
    assert_eq!(p.status, 200, "{path}: {}", p.body);
    assert!(p.content_type.starts_with("text/html"), "{path}: {}", p.content_type);
    p.body
}

fn store() -> Store {
    Store::open(&data().dir).unwrap()
}

/// The page's text in a table cell, as the templates write it.
fn cell(text: &str) -> String {
    format!("<td>{text}</td>")
}

fn chosen(id: &str, line: &str) -> Value {
    let s = store();
    let v: String = s
        .campaigns
        .query_row(
            "SELECT value FROM stage_outputs WHERE campaign_id = ?1 AND cell_line_id = ?2 AND key = 'optimal_tbhp_dose_uM'",
            [id, line],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&v).unwrap()
}

#[test]
fn campaign_list_shows_every_campaign_and_filters() {
    let d = data();
    let page = ok("/");
    for id in [d.campaign.as_str(), "demo_campaign", "campaign_20251128_145616"] {
        assert!(page.contains(&format!(">{id}</a>")), "{id} missing");
    }
    // The legacy campaign's row: 5 iterations, 30 results, 2.26 s from its summary.
    assert!(page.contains("<td class=\"n\">2.26 s</td><td class=\"n\">5</td><td class=\"n\">30</td>"), "{page}");
    // The cellos campaign: its iterations and wells as stored.
    let s = store();
    let its: i64 = s
        .campaigns
        .query_row("SELECT count(*) FROM campaign_iterations WHERE campaign_id = ?1", [&d.campaign], |r| r.get(0))
        .unwrap();
    let wells: i64 = s
        .results
        .query_row("SELECT count(*) FROM measurements WHERE campaign_id = ?1", [&d.campaign], |r| r.get(0))
        .unwrap();
    assert!(its >= 3 && wells >= 96, "{its} iterations, {wells} wells");
    assert!(page.contains(&format!("<td class=\"n\">{its}</td><td class=\"n\">{wells}</td>")));
    let running = ok("/?status=running");
    assert!(running.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !running.contains("demo_campaign"));
    let dose = ok("/?type=posh");
    assert!(dose.contains("<td>POSH</td>"), "a POSH campaign is labelled so");
    assert!(dose.contains(&d.campaign) && !dose.contains("demo_campaign") && !dose.contains("alert"));
    assert!(ok("/?status=failed").contains("No campaigns match these filters"));
}

#[test]
fn campaign_page_shows_summary_charts_table_and_config() {
    let d = data();
    let page = ok(&format!("/campaigns/{}", d.campaign));
    let svgs = page.matches("<svg").count()
        - page.matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"platemap\"").count();
    // trajectory + one dose-response and one titration per line + two box plots
    assert_eq!(svgs, 1 + 2 + 2 + 2, "charts");
    for line in ["U2OS", "HepG2"] {
        let c = chosen(&d.campaign, line);
        let (v, lo, hi) = (c["value"].as_f64().unwrap(), c["lo"].as_f64().unwrap(), c["hi"].as_f64().unwrap());
        assert!(page.contains(&format!("chosen dose {v:.2} µM")), "{line} chosen dose");
        assert!(page.contains(&format!("90 % interval {lo:.2}–{hi:.2} µM")), "{line} interval");
        assert!(page.contains(&format!("{line} · tbhp")));
        let output = format!(
            "<td>{line}</td><td>tBHP dose finding</td><td>chosen tBHP dose</td><td>{v:.2} µM (90 % interval {lo:.2}–{hi:.2} µM), 45 wells, {}</td>",
            c["status"].as_str().unwrap()
        );
        assert!(page.contains(&output), "{output}");
    }
    assert!(page.contains("viability ≥ 0.70") && page.contains("segmentation ≥ 0.80"));
    // The POSH titration: measured fractions, the fitted curve with the stored titer, the target and
    // the chosen volume.
    for line in ["U2OS", "HepG2"] {
        let output = |key: &str| -> Value {
            let v: String = store()
                .campaigns
                .query_row(
                    "SELECT value FROM stage_outputs WHERE campaign_id = ?1 AND cell_line_id = ?2 AND key = ?3",
                    [d.campaign.as_str(), line, key],
                    |r| r.get(0),
                )
                .unwrap();
            serde_json::from_str(&v).unwrap()
        };
        let (titer, volume) = (output("lv_estimated_titer"), output("lv_optimal_volume_ul"));
        assert!(page.contains(&format!("{line} · lentivirus titration")));
        let fit = format!(
            "BFP fraction fit: titer {} TU/µL, plateau {}",
            num(titer["value"].as_f64().unwrap()),
            num(titer["max_fraction"].as_f64().unwrap())
        );
        assert!(page.contains(&fit), "{fit}");
        assert!(page.contains(&format!("chosen volume {:.2} µL", volume["value"].as_f64().unwrap())));
        assert!(page.contains("target 30 % BFP"));
        assert_eq!(titer["series"].as_array().unwrap().len(), 8);
    }
    assert!(page.contains("viability fit: IC50") && page.contains("segmentation fit: IC50"));
    assert!(page.contains("Optimisation trajectory") && page.contains("U2OS best so far"));
    assert!(page.contains("by dose band") && page.contains("by cell line"));
    // The first measurement of the table, as stored.
    let s = store();
    let (well, dose, cellrox): (String, f64, f64) = s
        .results
        .query_row(
            "SELECT well_id, dose_uM, raw_signal FROM measurements WHERE campaign_id = ?1 ORDER BY iteration, id LIMIT 1",
            [&d.campaign],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let table = &page[page.find("id=\"measurements\"").unwrap()..];
    let first_row = &table[table.find("<tr><td").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(first_row.contains(&cell(&well)), "{first_row}");
    assert!(first_row.contains(&num(dose)), "{first_row}");
    assert!(first_row.contains(&num(cellrox)), "{first_row}");
    // Summary and configuration.
    assert!(page.contains("<th>Status</th><td class=\"completed\">completed</td>"));
    assert!(page.contains("posh_screen_setup"), "the goal of a POSH campaign");
    assert!(page.contains("<tr><th>dose range µM</th><td>0, 500</td></tr>"), "the settings as a table");
    assert!(!page.contains("/dev/pts") && !page.contains("\"pid\""), "no pty paths or process ids");
    assert!(!page.contains("watch.js"), "a completed campaign does not reload");
}

#[test]
fn legacy_campaign_page_charts_its_results() {
    let page = ok("/campaigns/demo_campaign");
    assert!(page.contains("<th>Iterations</th><td class=\"n\">5</td>"));
    assert!(page.contains("<th>Experiments</th>"));
    // Each (line, compound) of the legacy results gets a dose-response chart.
    for pair in ["U2OS · staurosporine", "HEK293T · tunicamycin"] {
        assert!(page.contains(pair), "{pair}");
    }
    assert!(page.contains("30 measurements;"));
    assert!(page.contains("<tr><th>batch size</th><td>6</td></tr>"), "the settings as a table");
}

#[test]
fn csv_download_holds_every_measurement_exactly() {
    let d = data();
    let p = get(&format!("/campaigns/{}/measurements.csv", d.campaign));
    assert_eq!(p.status, 200);
    assert!(p.content_type.starts_with("text/csv"));
    assert_eq!(p.disposition, format!("attachment; filename=\"{}-measurements.csv\"", d.campaign));
    let mut r = csv::Reader::from_reader(p.body.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[..5], ["iteration", "cell_line", "compound", "dose_uM", "cellrox_au"]);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let s = store();
    let mut st = s
        .results
        .prepare(
            "SELECT iteration, well_id, dose_uM, raw_signal, viability_norm, segmentation, virus_ul, bfp_fraction \
             FROM measurements WHERE campaign_id = ?1 ORDER BY iteration, id",
        )
        .unwrap();
    type Stored = (i64, String, [Option<f64>; 6]);
    let stored: Vec<Stored> = st
        .query_map([&d.campaign], |r| {
            Ok((r.get(0)?, r.get(1)?, [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?]))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), stored.len());
    assert_eq!(header[10..], ["virus_uL", "bfp_fraction"]);
    let number = |t: &str| (!t.is_empty()).then(|| t.parse::<f64>().unwrap());
    for (row, (it, well, values)) in rows.iter().zip(&stored) {
        assert_eq!(row[0].parse::<i64>().unwrap(), *it);
        assert_eq!(&row[8], well);
        let shown =
            [number(&row[3]), number(&row[4]), number(&row[5]), number(&row[6]), number(&row[10]), number(&row[11])];
        assert_eq!(&shown, values, "row of {well}");
    }
    // The titration's wells are there: eight per line, with their virus and BFP fraction.
    let titration: Vec<&Stored> = stored.iter().filter(|s| s.2[4].is_some()).collect();
    assert_eq!(titration.len(), 8 * 2, "{titration:?}");
    assert!(titration.iter().all(|s| s.2[5].is_some_and(|f| (0.0..=1.0).contains(&f))));
    let legacy = get("/campaigns/demo_campaign/measurements.csv");
    assert_eq!(csv::Reader::from_reader(legacy.body.as_bytes()).records().count(), 30);
}

#[test]
fn markup_in_values_is_shown_as_text() {
    let list = ok("/");
    let page = ok(&format!("/campaigns/{}", cellos_host::dashboard::encode(EVIL)));
    for p in [&list, &page] {
        assert!(!p.contains(EVIL), "raw markup in a page");
        assert!(p.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    // The chart titles and legends (SVG text) are escaped too.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; · staurosporine"));
    // The only script a page loads is the dashboard's own.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains("<script src=\"/watch.js\">"));
    let csv = get(&format!("/campaigns/{}/measurements.csv", cellos_host::dashboard::encode(EVIL)));
    assert_eq!(csv.disposition, "attachment; filename=\"_script_alert_1___script_-measurements.csv\"");
}

#[test]
fn running_campaign_page_follows_its_iterations() {
    let state = |()| -> Value {
        serde_json::from_str(&get(&format!("/campaigns/{}/state", cellos_host::dashboard::encode(EVIL))).body).unwrap()
    };
    let page = ok(&format!("/campaigns/{}", cellos_host::dashboard::encode(EVIL)));
    let before = state(())["iterations"].as_i64().unwrap();
    assert!(page.contains(&format!("data-iterations=\"{before}\"")));
    assert!(page.contains("data-state-url=\"/campaigns/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/state\""));
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
    add_iteration(&store(), EVIL);
    let after = state(());
    assert_eq!(after["iterations"], before + 1);
    assert_eq!(after["status"], "running");
    assert!(
        ok(&format!("/campaigns/{}", cellos_host::dashboard::encode(EVIL)))
            .contains(&format!("data-iterations=\"{}\"", before + 1))
    );
    let js = get("/watch.js");
    assert!(js.content_type.starts_with("text/javascript") && js.body.contains("location.reload()"));
}

/// A running campaign the gateway service runs (its run id is the campaign id), as the service
/// records it.
fn served_campaign(store: &Store, id: &str) {
    store
        .campaigns
        .execute_batch(&format!(
            "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, status, config, created_at) \
             VALUES ('{id}', 'dose_finding', 'optimal_tbhp_dose', '2026-12-01T08:00:00Z', 'running', '{{}}', '2026-12-01T08:00:00Z'); \
             INSERT INTO service_runs (run_id, kind, config, state, created_at, updated_at) \
             VALUES ('{id}', 'campaign', '{{}}', 'running', '2026-12-01T08:00:00Z', '2026-12-01T08:00:00Z');"
        ))
        .unwrap();
}

/// Writes event `n` of service run `id`, as the gateway service does (another process, the same tables).
fn service_event(store: &Store, id: &str, n: i64, event: &Value) {
    store
        .campaigns
        .execute(
            "INSERT INTO service_events (run_id, event_id, event) VALUES (?1, ?2, ?3)",
            params![id, n, event.to_string()],
        )
        .unwrap();
}

#[test]
fn a_served_campaign_page_follows_the_gateway_services_event_stream() {
    let s = store();
    let id = "served_campaign";
    served_campaign(&s, id);
    service_event(&s, id, 1, &json!({ "event": "state", "state": "running" }));
    service_event(&s, id, 2, &json!({ "event": "planned", "iteration": 1, "steps": 40 }));
    service_event(&s, id, 3, &json!({ "event": "step", "done": 1, "of": 40 }));
    // The page lists the latest events and tells its script where the stream is and what it has shown.
    let page = ok(&format!("/campaigns/{id}"));
    assert!(page.contains(&format!("data-events-url=\"/campaigns/{id}/events\"")), "{page}");
    assert!(page.contains("data-events-after=\"3\""));
    assert!(page.contains("<ol id=\"events\" reversed><li>3 step "), "newest first");
    // The stream: what came after Last-Event-ID, then what the gateway writes while it is open, until
    // the run is over.
    let writer = std::thread::spawn(move || {
        let s = store();
        std::thread::sleep(Duration::from_millis(800));
        service_event(&s, id, 4, &json!({ "event": "iteration", "line": "U2OS", "iteration": 1 }));
        std::thread::sleep(Duration::from_millis(400));
        service_event(&s, id, 5, &json!({ "event": "state", "state": "succeeded" }));
        s.campaigns.execute("UPDATE service_runs SET state = 'succeeded' WHERE run_id = ?1", [id]).unwrap();
    });
    let mut r = ureq::get(&format!("http://{}/campaigns/{id}/events", server().addr()))
        .header("Last-Event-ID", "1")
        .call()
        .unwrap();
    assert!(r.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    let body = r.body_mut().read_to_string().unwrap();
    writer.join().unwrap();
    // Events 4 and 5 were written after the request: the stream waited for them.
    let events: Vec<(String, String, Value)> = body
        .split("\n\n")
        .filter(|b| b.contains("data:"))
        .map(|b| {
            let field = |k: &str| b.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_default().trim().to_string();
            (field("id:"), field("event:"), serde_json::from_str(&field("data:")).unwrap())
        })
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["2", "3", "4", "5"], "{body}");
    assert_eq!(events[2].1, "iteration");
    assert_eq!(events[2].2["line"], "U2OS");
    assert_eq!(events[3].2["state"], "succeeded");
    // `?after=` (the page's script) gives the same; a campaign no service runs has no stream.
    let after = get(&format!("/campaigns/{id}/events?after=4"));
    assert_eq!(after.status, 200);
    assert!(after.body.contains("id: 5") || after.body.contains("id:5"), "{}", after.body);
    assert!(!after.body.contains("id: 4") && !after.body.contains("id:4"));
    assert_eq!(get("/campaigns/live/events").status, 404);
}

#[test]
fn results_page_fits_the_phase0_data() {
    let page = ok("/results");
    for pair in ["HepG2", "U2OS", "staurosporine", "tunicamycin", "H2O2", "tbhp"] {
        assert!(page.contains(&cell(pair)), "{pair}");
    }
    // True IC50s of the phase-0 data (MODEL.md §6): HepG2 staurosporine 0.05, U2OS H2O2 250.
    for (line, compound, truth) in [("HepG2", "staurosporine", 0.05), ("U2OS", "H2O2", 250.0)] {
        let fit = ok(&format!("/results/fit?line={line}&compound={compound}"));
        let at = fit.find("<th>IC50 (µM)</th><td class=\"n\">").unwrap() + "<th>IC50 (µM)</th><td class=\"n\">".len();
        let ic50: f64 = fit[at..].split(' ').next().unwrap().parse().unwrap();
        assert!((ic50 / truth - 1.0).abs() < 0.13, "{line} {compound}: {ic50}");
        assert!(fit.contains("<svg") && fit.contains("viability fit: IC50"));
        assert!(fit.contains("<th>Measurements</th><td class=\"n\">72</td>"), "{fit}");
    }
    assert_eq!(get("/results/fit?line=HepG2&compound=nothing").status, 404);
    assert_eq!(get("/results/fit?line=HepG2").status, 400);
}

#[test]
fn facility_page_shows_loads_capacities_and_violations() {
    let page = ok("/facility/1");
    let s = store();
    let plan = cellos_host::facility::saved(&s, 1).unwrap();
    assert!(page.contains("Plan 1: stress"));
    assert!(page.contains("No violation remains.") && plan.plan.remaining.is_empty());
    assert_eq!(page.matches("<svg").count(), 3);
    for t in ["Incubator", "Biosafety cabinet", "Staff", "capacity 20.00", "capacity 2.00", "after scheduling"] {
        assert!(page.contains(t), "{t}");
    }
    let before = plan.plan.violations_before.len();
    let after = plan.plan.violations_after.len();
    assert!(before > after, "{before} → {after}");
    assert!(
        page.contains(&format!("<td class=\"n\">{before}</td>"))
            && page.contains(&format!("<td class=\"n\">{after}</td>"))
    );
    // The newest plan is the default; its remaining violations are listed with their reasons.
    let tight = cellos_host::facility::saved(&s, 2).unwrap();
    let page = ok("/facility");
    assert!(page.contains("Plan 2: tight") && page.contains("capacity 6.00"));
    assert!(!tight.plan.remaining.is_empty());
    for r in &tight.plan.remaining {
        let shown = r.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(page.contains(&format!("<li>{shown}</li>")), "{r}");
    }
    assert!(page.contains(&format!("<td class=\"n\">{}</td>", tight.plan.violations_after.len())));
    assert_eq!(get("/facility/99").status, 404);
}

#[test]
fn lines_inventory_and_parameter_pages() {
    let lines = ok("/lines");
    assert!(lines.contains("href=\"/lines/HEK293T\"") && lines.contains("href=\"/lines/iPSC\""));
    // The POSH campaign banked U2OS: 10 MCB vials (one thawed for the WCB, so used) and 30 WCB vials.
    assert!(
        lines.contains("<td><a href=\"/lines/U2OS\">U2OS</a></td><td class=\"n\">39</td><td class=\"n\">1</td>"),
        "{lines}"
    );
    let u2os = ok("/lines/U2OS");
    assert_eq!(u2os.matches("_U2OS_WCB_").count(), 30);
    assert!(u2os.contains(&format!("{}_U2OS_MCB_01", data().campaign)));
    let line = ok("/lines/HEK293T");
    for t in ["Characteristics", "Protocols", "Inventory", "Usage", "Simulation parameters, every version"] {
        assert!(line.contains(t), "{t}");
    }
    let params = ok("/params");
    let s = store();
    let dt: f64 = s
        .params
        .query_row(
            "SELECT doubling_time_h FROM cell_line_params WHERE cell_line_id = 'U2OS' AND valid_to IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(params.contains("href=\"/params?line=U2OS\""));
    assert!(params.contains(&num(dt)));
    let history = ok("/params?line=U2OS");
    assert!(history.contains("History of U2OS"));
    assert_eq!(get("/params?line=Nope").status, 404);
    assert_eq!(get("/lines/Nope").status, 404);
}

#[test]
fn unknown_pages_are_404_and_the_server_is_read_only() {
    assert_eq!(get("/nothing/here").status, 404);
    assert_eq!(get("/campaigns/nope").status, 404);
    assert_eq!(get("/campaigns/%ZZ").status, 400);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent.post(&format!("http://{}/", server().addr())).send("x").unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let css = get("/style.css");
    assert!(css.content_type.starts_with("text/css") && css.body.contains("table"));
}

#[test]
fn non_loopback_bind_needs_allow_remote() {
    let e = Dashboard::start(&data().dir, "0.0.0.0:0", false).err().expect("refused");
    assert!(e.to_string().contains("--allow-remote"), "{e}");
    let d = Dashboard::start(&data().dir, "0.0.0.0:0", true).unwrap();
    assert!(!d.addr().ip().is_loopback());
    d.stop();
    assert!(Dashboard::start(&data().dir, "[::1]:0", false).is_ok() || TcpListener::bind("[::1]:0").is_err());
    let e = Dashboard::start(Path::new("/nonexistent/cellos"), "127.0.0.1:0", false).err().expect("no data");
    assert!(e.to_string().contains("no data directory"), "{e}");
}

// ---- browser test (WebDriver) -------------------------------------------------------------------------

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one session, both ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,2000", format!("--user-data-dir={}", profile.display())]
        } } } });
        let mut b = Browser { driver, base, session: String::new() };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("session").to_string();
        Some(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A WebDriver command; its error (a stale element, say) as text.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let r = match (method, body) {
            ("GET", _) => ureq::get(&url).call(),
            ("DELETE", _) => ureq::delete(&url).call(),
            (_, body) => ureq::post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let v: Value = r.map_err(|e| e.to_string())?.body_mut().read_json().map_err(|e| e.to_string())?;
        Ok(v["value"].clone())
    }

    fn find(&self, using: &str, value: &str) -> Vec<String> {
        let v = self.call("POST", "/elements", Some(json!({ "using": using, "value": value })));
        v.as_array().unwrap().iter().map(|e| e[ELEMENT].as_str().unwrap().to_string()).collect()
    }

    /// The page's full width and the window's, CSS pixels: equal when nothing scrolls sideways.
    fn widths(&self) -> (i64, i64) {
        let script = "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];";
        let v = self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })));
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn browser_opens_list_clicks_into_a_campaign_and_screenshots_it() {
    let Some(b) = Browser::start() else {
        eprintln!(
            "SKIPPED: {CHROMIUM} and {CHROMEDRIVER} are not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let d = data();
    let root = format!("http://{}/", server().addr());
    b.call("POST", "/url", Some(json!({ "url": root })));
    let link = b.find("link text", &d.campaign);
    assert_eq!(link.len(), 1, "the campaign's link in the list");
    b.call("POST", &format!("/element/{}/click", link[0]), None);
    let url = b.call("GET", "/url", None);
    assert_eq!(url.as_str().unwrap(), format!("{root}campaigns/{}", d.campaign));
    // The charts are SVG in the page, with the chosen doses in their legends.
    let svgs = b.find("css selector", "div.chart svg");
    assert_eq!(svgs.len(), 7);
    // Plate maps: four readouts per plate shown (the titration's BFP among them), every well of a
    // 96-well plate drawn, the controls ringed and the edge ring marked empty, the values in each
    // well's tooltip.
    let plates: i64 = store()
        .results
        .query_row("SELECT count(DISTINCT plate_id) FROM measurements WHERE campaign_id = ?1", [&d.campaign], |r| {
            r.get(0)
        })
        .unwrap();
    let shown_plates = (plates as usize).min(cellos_host::dashboard::PLATES_SHOWN);
    assert_eq!(b.find("css selector", "svg.platemap").len(), 4 * shown_plates);
    assert_eq!(b.find("css selector", "svg.platemap rect.well").len(), 4 * 96 * shown_plates);
    assert!(!b.find("css selector", "svg.platemap rect.control").is_empty());
    assert!(!b.find("css selector", "svg.platemap rect.edge").is_empty());
    let map_texts: Vec<String> = b.find("css selector", "svg.platemap text").iter().map(|e| b.text(e)).collect();
    for t in ["viability (fraction)", "segmentation (quality)", "CellROX (AU)", "BFP-positive (fraction)"] {
        assert!(map_texts.iter().any(|x| x == t), "plate map title {t} missing");
    }
    // The dose-response legend: the objective, both thresholds told apart, the feasible window.
    for want in ["viability ≥ 0.70", "segmentation ≥ 0.80", "CellROX, mean per dose bin (right axis)"] {
        assert!(
            b.find("css selector", "div.chart svg text").iter().any(|e| b.text(e) == want),
            "{want} not in a legend"
        );
    }
    assert!(
        b.find("css selector", "div.chart svg text").iter().any(|e| b.text(e).starts_with("feasible doses")),
        "the feasible window's legend entry"
    );
    let texts: Vec<String> = b.find("css selector", "div.chart svg text").iter().map(|e| b.text(e)).collect();
    for line in ["U2OS", "HepG2"] {
        let v = chosen(&d.campaign, line)["value"].as_f64().unwrap();
        let want = format!("chosen dose {v:.2} µM");
        assert!(texts.iter().any(|t| t == &want), "{want} not among the chart texts");
    }
    // The table shows the stored first well.
    let well: String = store()
        .results
        .query_row(
            "SELECT well_id FROM measurements WHERE campaign_id = ?1 ORDER BY iteration, id LIMIT 1",
            [&d.campaign],
            |r| r.get(0),
        )
        .unwrap();
    let table = b.find("css selector", "#measurements tr:nth-child(2)");
    assert!(b.text(&table[0]).contains(&well), "first row");
    // A 1,400 px window shows the whole width: nothing scrolls sideways.
    let (page, window) = b.widths();
    assert!(window <= 1400 && page <= window, "the campaign page is {page} px wide in a {window} px window");
    let png = b.call("GET", "/screenshot", None);
    let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-campaign.png");
    std::fs::write(&out, &bytes).unwrap();
    eprintln!("screenshot: {} ({} bytes)", out.display(), bytes.len());
    // The phase-0 plates, on a fit page: a map per plate and readout, saved as a screenshot too.
    b.call("POST", "/url", Some(json!({ "url": format!("{root}results/fit?line=HepG2&compound=staurosporine") })));
    assert!(b.find("css selector", "svg.platemap").len() >= 2, "phase-0 plate maps");
    let (page, window) = b.widths();
    assert!(page <= window, "the fit page is {page} px wide in a {window} px window");
    for path in ["", "lines", "params"] {
        b.call("POST", "/url", Some(json!({ "url": format!("{root}{path}") })));
        let (page, window) = b.widths();
        assert!(page <= window, "/{path} is {page} px wide in a {window} px window");
    }
    b.call("POST", "/url", Some(json!({ "url": format!("{root}results/fit?line=HepG2&compound=staurosporine") })));
    let png = b.call("GET", "/screenshot", None);
    let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-phase0-plates.png");
    std::fs::write(&out, &bytes).unwrap();
    eprintln!("screenshot: {} ({} bytes)", out.display(), bytes.len());
    // A campaign the gateway service runs: its page follows the service's event stream, adding each
    // event to its list as the gateway writes it, and reloads on a committed iteration.
    let s = store();
    let id = "served_in_browser";
    served_campaign(&s, id);
    service_event(&s, id, 1, &json!({ "event": "state", "state": "running" }));
    b.call("POST", "/url", Some(json!({ "url": format!("{root}campaigns/{id}") })));
    let listed = || b.find("css selector", "#events li").len();
    assert_eq!(listed(), 1);
    service_event(&s, id, 2, &json!({ "event": "step", "done": 1, "of": 40 }));
    let deadline = Instant::now() + Duration::from_secs(15);
    while listed() < 2 {
        assert!(Instant::now() < deadline, "the page did not show the gateway's new event");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = b.text(&b.find("css selector", "#events li")[0]);
    assert!(first.starts_with("2 step "), "newest first: {first}");
    service_event(&s, id, 3, &json!({ "event": "iteration", "line": "U2OS", "iteration": 1 }));
    let after = || -> Option<String> {
        let body = b.try_call("POST", "/element", Some(json!({ "using": "css selector", "value": "body" }))).ok()?;
        let el = body[ELEMENT].as_str()?.to_string();
        b.try_call("GET", &format!("/element/{el}/attribute/data-events-after"), None)
            .ok()?
            .as_str()
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while after().as_deref() != Some("3") {
        assert!(Instant::now() < deadline, "the page did not reload on the committed iteration");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A running campaign's page reloads itself in the browser once an iteration is committed.
    b.call("POST", "/url", Some(json!({ "url": format!("{root}campaigns/live") })));
    let shown = || -> Option<String> {
        let body = b.try_call("POST", "/element", Some(json!({ "using": "css selector", "value": "body" }))).ok()?;
        let id = body[ELEMENT].as_str()?.to_string();
        b.try_call("GET", &format!("/element/{id}/attribute/data-iterations"), None).ok()?.as_str().map(str::to_string)
    };
    let before: i64 = shown().expect("the live page").parse().unwrap();
    add_iteration(&store(), "live");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if shown().is_some_and(|n| n == (before + 1).to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "the running campaign's page did not reload");
        std::thread::sleep(Duration::from_millis(200));
    }
}
