//! One dose-response fit: the dashboard's page and `cellos results fit` give the same numbers for the
//! same data, from one function over one point set.

use std::path::Path;

use cellos_host::admin;
use cellos_host::dashboard::{Dashboard, data, pages::num};
use cellos_host::kinds::Kind;
use cellos_host::store::Store;

fn agree(a: f64, b: f64) -> bool {
    (a - b).abs() <= 5e-7 * a.abs().max(b.abs())
}

#[test]
fn the_dashboard_and_the_cli_fit_the_phase0_data_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phase0_all_plates.csv");
    Kind::Results.import(&mut store, &csv, &mut |_, _| {}).unwrap();
    let server = Dashboard::start(dir.path(), "127.0.0.1:0", false).unwrap();
    let mut compared = 0;
    for line in ["HepG2", "U2OS"] {
        for compound in ["H2O2", "staurosporine", "tunicamycin"] {
            let cli = admin::results_fit(&store, line, compound).unwrap();
            let (ic50, hill) = (cli["ic50_uM"].as_f64().unwrap(), cli["hill"].as_f64().unwrap());
            // What the page's curve is computed from, to 6 significant digits (here: exactly).
            let points = admin::viability_points(&store, line, compound).unwrap();
            let f = data::fit(&points, true).unwrap_or_else(|| panic!("{line} {compound}: no curve"));
            assert!(agree(f.curve.ic50, ic50) && agree(f.curve.hill, hill), "{line} {compound}: {f:?} vs {cli}");
            assert!(agree(f.curve.ic50 * f.ic50_rel_err(), ic50 * cli["ic50_rel_se"].as_f64().unwrap()));
            // And what the page shows: the same value at the page's precision.
            let url = format!("http://{}/results/fit?line={line}&compound={compound}", server.addr());
            let page = ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap();
            let cell = format!("<th>IC50 (µM)</th><td class=\"n\">{} ± ", num(ic50));
            assert!(page.contains(&cell), "{line} {compound}: {cell} not in the page");
            assert!(page.contains(&format!("<th>Measurements</th><td class=\"n\">{}</td>", cli["points"])));
            compared += 1;
        }
    }
    assert_eq!(compared, 6);
    // The case of the report: HepG2 staurosporine, 0.04786 on the page and 0.04863 from the CLI before.
    let cli = admin::results_fit(&store, "HepG2", "staurosporine").unwrap();
    let ic50 = cli["ic50_uM"].as_f64().unwrap();
    assert!((ic50 / 0.05 - 1.0).abs() < 0.13, "{ic50}");
}
