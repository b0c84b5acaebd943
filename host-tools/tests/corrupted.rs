//! Corrupted variants of the legacy inputs: each import fails with the exact location of the problem,
//! and the database is left exactly as it was.

use std::path::{Path, PathBuf};

use cellos_host::kinds::Kind;
use cellos_host::store::{Store, count};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

fn text(p: &str) -> String {
    std::fs::read_to_string(fixture(p)).unwrap()
}

fn counts(store: &Store) -> Vec<i64> {
    let t = [
        (&store.params, "cell_line_params"),
        (&store.params, "compound_sensitivity"),
        (&store.params, "default_params"),
        (&store.params, "imports"),
        (&store.lines, "cell_lines"),
        (&store.lines, "cell_line_characteristics"),
        (&store.lines, "cell_line_protocols"),
        (&store.lines, "imports"),
        (&store.results, "measurements"),
        (&store.results, "imports"),
        (&store.campaigns, "campaigns"),
        (&store.campaigns, "campaign_iterations"),
        (&store.campaigns, "imports"),
    ];
    t.iter().map(|(c, n)| count(c, n).unwrap()).collect()
}

/// Replaces the `n`th (1-based) occurrence of `from`.
fn nth(s: &str, from: &str, to: &str, n: usize) -> String {
    let at = s.match_indices(from).nth(n - 1).unwrap_or_else(|| panic!("no {n}th `{from}`")).0;
    format!("{}{to}{}", &s[..at], &s[at + from.len()..])
}

enum Src {
    Text(String),
    Bytes(Vec<u8>),
}

struct Case {
    kind: Kind,
    name: &'static str,
    src: Src,
    location: &'static str,
    message: &'static str,
}

fn cases() -> Vec<Case> {
    let p = text("simulation_parameters.yaml");
    let l = text("cell_lines.yaml");
    let r = text("phase0_all_plates.csv");
    let c = text("campaigns_db_export/campaigns.json");
    let y = |kind, name, s: String, location, message| Case { kind, name, src: Src::Text(s), location, message };
    let mut bad_utf8 = p.clone().into_bytes();
    bad_utf8.splice(200..200, [0xff, 0xfe]);
    let mut bad_csv = r.clone().into_bytes();
    bad_csv.splice(500..500, [0xc3, 0x28]);
    let header_end = r.find('\n').unwrap() + 1;
    let rows: Vec<&str> = r[header_end..].lines().collect();
    vec![
        y(
            Kind::Params,
            "p01.yaml",
            nth(&p, "doubling_time_h: 24.0", "doubling_time_h: abc", 1),
            "line 3",
            "cell_lines.HEK293T.doubling_time_h: expected a number, found text",
        ),
        y(
            Kind::Params,
            "p02.yaml",
            nth(&p, "    max_passage: 25\n", "", 1),
            "line 14",
            "cell_lines.HeLa: missing `max_passage`",
        ),
        y(
            Kind::Params,
            "p03.yaml",
            nth(&p, "doubling_time_h: 18.0", "doubling_time_h: -18.0", 1),
            "line 27",
            "must be positive",
        ),
        y(
            Kind::Params,
            "p04.yaml",
            nth(&p, "max_passage: 28", "max_passage: 28.5", 1),
            "line 41",
            "expected a whole number of passages",
        ),
        y(Kind::Params, "p05.yaml", nth(&p, "U2OS: 0.20", "U2OS: -0.2", 1), "line 105", "an IC50 must be positive"),
        y(
            Kind::Params,
            "p06.yaml",
            nth(&p, "hill_slope: 1.3", "hill_slope: steep", 1),
            "line 123",
            "expected a number, found text",
        ),
        y(Kind::Params, "p07.yaml", format!("{p}\nextras:\n  x: 1\n"), "line 205", "extras: unknown section"),
        y(
            Kind::Params,
            "p08.yaml",
            nth(&p, "    max_confluence: 0.9\n", "\tmax_confluence: 0.9\n", 1),
            "line 4",
            "tab used for indentation",
        ),
        y(
            Kind::Params,
            "p09.yaml",
            nth(&p, "hill_slope: 1.0", "hill_slope: [1.0, 2", 1),
            "line 117, column 14",
            "did not find expected ',' or ']'",
        ),
        y(
            Kind::Params,
            "p10.yaml",
            nth(&p, "  CHO:\n", "  HeLa:\n    doubling_time_h: 21.0\n  CHO:\n", 1),
            "line 50, column 3",
            "key `HeLa` repeats the one at line 14 and would lose or change",
        ),
        y(
            Kind::Params,
            "p11.yaml",
            p[..p.find("  U2OS:\n    doubling_time_h").unwrap() + 28]
                .replace("doubling_time_h", "doubling_time_h\n  broken"),
            "line 5, column 19",
            "mapping values are not allowed",
        ),
        y(
            Kind::Params,
            "p12.yaml",
            nth(&p, "coating_required: true", "coating_required: yes please", 1),
            "line 69",
            "expected true or false, found text",
        ),
        y(
            Kind::Params,
            "p13.yaml",
            nth(&p, "  edge_penalty: 0.15", "  edge_penalty: high", 1),
            "line 203",
            "defaults.edge_penalty: expected a number",
        ),
        y(
            Kind::Params,
            "p14.yaml",
            nth(&p, "    biological_cv: 0.05\n", "    biological_cv: 0.05\n    colour: red\n", 1),
            "line 13",
            "cell_lines.HEK293T.colour: unknown field",
        ),
        y(
            Kind::CellLines,
            "l01.yaml",
            nth(&l, "    display_name: \"HeLa (Human Cervical Cancer)\"\n", "", 1),
            "line 187",
            "cell_lines.HeLa: missing `display_name`",
        ),
        y(
            Kind::CellLines,
            "l02.yaml",
            nth(&l, "      cell_type: \"immortalized\"\n", "", 1),
            "line 82",
            "cell_lines.HEK293.profile: missing `cell_type`",
        ),
        y(
            Kind::CellLines,
            "l03.yaml",
            nth(&l, "reference_vessel: T75", "reference_vessel: T175", 1),
            "line 26",
            "reference vessel `T175` has no settings",
        ),
        y(Kind::CellLines, "l04.yaml", format!("{l}\nvendors:\n  a: 1\n"), "line 573", "vendors: unknown section"),
        y(
            Kind::CellLines,
            "l05.yaml",
            nth(&l, "      coating_required: true", "      coating_required: 12", 1),
            "line 11",
            "expected true or false, found 12",
        ),
        y(Kind::Results, "r01.csv", r.replacen(",viability_norm", "", 1), "line 1", "missing column `viability_norm`"),
        y(
            Kind::Results,
            "r02.csv",
            r.replacen("viability_norm", "viability_norm,operator", 1),
            "line 1",
            "unknown column `operator`",
        ),
        y(
            Kind::Results,
            "r03.csv",
            nth(&r, "HepG2_P1,G01,HepG2,H2O2,0.0,", "HepG2_P1,G01,HepG2,H2O2,-1.0,", 1),
            "row 65 (line 66), field dose_uM",
            "a dose cannot be negative (-1.0)",
        ),
        y(
            Kind::Results,
            "r04.csv",
            nth(&r, "HepG2_P1,G01,HepG2,H2O2,0.0,", "HepG2_P1,G01,HepG2,H2O2,abc,", 1),
            "row 65 (line 66), field dose_uM",
            "`abc` is not a number",
        ),
        y(
            Kind::Results,
            "r05.csv",
            nth(&r, "HepG2_P1,A09,", "HepG2_P1,Q99,", 1),
            "row 1 (line 2), field well_id",
            "`Q99`: column 99 does not exist",
        ),
        y(
            Kind::Results,
            "r06.csv",
            nth(&r, "HepG2_P1,A10,", ",A10,", 1),
            "row 2 (line 3), field plate_id",
            "required, but empty",
        ),
        y(
            Kind::Results,
            "r07.csv",
            nth(&r, ",24,9632.366486756968,1,", ",24,9632.366486756968,2,", 1),
            "row 1 (line 2), field is_control",
            "`2` is not 0 or 1",
        ),
        y(Kind::Results, "r08.csv", format!("{r}{}\n", rows[4]), "row 529 (line 530)", "already measured at row 5"),
        y(Kind::Results, "r09.csv", r[..r.len() - 40].to_string(), "line 529", "found record with 9 fields"),
        y(Kind::Campaigns, "c01", c[..c.len() / 2].to_string(), "line 28, column 45", "EOF while parsing"),
        y(
            Kind::Campaigns,
            "c02",
            nth(&c, "\"max_iterations\": 3", "\"max_iterations\": 3", 1).replacen(
                "\"status\": \"completed\"",
                "\"status\": 7",
                1,
            ),
            "line 8, column 15",
            "invalid type: integer `7`, expected a string",
        ),
        y(
            Kind::Campaigns,
            "c03",
            c.replacen("\"demo_campaign\"", "\"campaign_20251128_145616\"", 1),
            "record 2",
            "duplicate campaign_id `campaign_20251128_145616`",
        ),
        y(
            Kind::Campaigns,
            "c04",
            c.replacen("\"goal\": \"optimization\",", "\"goal\": \"optimization\", \"owner\": \"x\",", 1),
            "line 5, column 35",
            "unknown field `owner`",
        ),
        Case {
            kind: Kind::Params,
            name: "p15.yaml",
            src: Src::Bytes(bad_utf8),
            location: "line 10, column 23",
            message: "not valid UTF-8 text",
        },
        Case {
            kind: Kind::Results,
            name: "r10.csv",
            src: Src::Bytes(bad_csv),
            location: "line 6",
            message: "not valid UTF-8 text",
        },
    ]
}

#[test]
fn corrupted_variants_fail_at_their_place_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("data")).unwrap();
    for (k, p) in [
        (Kind::Params, "simulation_parameters.yaml"),
        (Kind::CellLines, "cell_lines.yaml"),
        (Kind::Results, "phase0_all_plates.csv"),
        (Kind::Campaigns, "campaigns_db_export"),
    ] {
        k.import(&mut store, &fixture(p), &mut |_, _| {}).unwrap();
    }
    let before = counts(&store);
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut report = Vec::new();
    for case in &cases {
        let path = dir.path().join(case.name);
        let bytes = match &case.src {
            Src::Text(t) => t.clone().into_bytes(),
            Src::Bytes(b) => b.clone(),
        };
        if case.kind == Kind::Campaigns {
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("campaigns.json"), &bytes).unwrap();
            std::fs::copy(
                fixture("campaigns_db_export/campaign_iterations.json"),
                path.join("campaign_iterations.json"),
            )
            .unwrap();
        } else {
            std::fs::write(&path, &bytes).unwrap();
        }
        let e = case.kind.import(&mut store, &path, &mut |_, _| {}).expect_err(case.name);
        let msg = e.to_string();
        let ok = matches!(e, cellos_host::StoreError::Input { ref location, ref message, .. } if location == case.location && message.contains(case.message));
        report.push(format!("{} {}: {msg}", if ok { "ok  " } else { "FAIL" }, case.name));
        assert_eq!(counts(&store), before, "{}: the database changed", case.name);
    }
    let failures: Vec<&String> = report.iter().filter(|r| r.starts_with("FAIL")).collect();
    assert!(failures.is_empty(), "{}", report.join("\n"));
}
