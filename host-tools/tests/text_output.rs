//! The text `cellos` prints for people, command by command, against snapshots in `tests/snapshots/`
//! (one file per command: the command line, its exit status, its standard output and its standard
//! error). A change of wording shows here as a diff; `CELLOS_UPDATE_SNAPSHOTS=1 cargo test -p
//! cellos-host --test text_output` rewrites the files after a deliberate change.
//!
//! The commands run in a scratch directory holding copies of the seed fixtures, named relatively, so
//! that no path of the machine that runs them shows in the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cellos");

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for f in ["simulation_parameters.yaml", "cell_lines.yaml", "phase0_all_plates.csv", "facility_stress.toml"] {
            std::fs::copy(fixtures.join(f), dir.path().join(f)).unwrap();
        }
        let campaigns = dir.path().join("campaigns_db_export");
        std::fs::create_dir(&campaigns).unwrap();
        for f in std::fs::read_dir(fixtures.join("campaigns_db_export")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, campaigns.join(f.file_name().unwrap())).unwrap();
        }
        Scratch { dir }
    }

    /// Runs `cellos ARGS` in the scratch directory (data in `./data`) and returns the transcript.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out =
            Command::new(BIN).args(args).current_dir(self.dir.path()).env("CELLOS_DATA_DIR", "data").output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let text = mask_now(&format!(
            "$ cellos {}\nexit {code}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
        .replace(&self.dir.path().display().to_string(), "<scratch>");
        (code, text)
    }
}

/// The time stamps the store writes at import (`2026-12-02T04:48:13.635011Z`) as `<now>`; the legacy
/// data's own (without the `Z`) stay.
fn mask_now(text: &str) -> String {
    let b = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = |k: usize| {
            k + shape.len() <= b.len()
                && shape.iter().zip(&b[k..]).all(|(s, c)| if *s == b'd' { c.is_ascii_digit() } else { s == c })
        };
        if fits(i) {
            let mut j = i + shape.len();
            if b.get(j) == Some(&b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if b.get(j) == Some(&b'Z') {
                out += "<now>";
                i = j + 1;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Compares `text` with `tests/snapshots/NAME.txt` (or writes it when asked to).
fn snapshot(name: &str, text: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("CELLOS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CELLOS_UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        panic!(
            "{name}: the output differs from {} from line {}:\n--- snapshot\n{}\n--- now\n{}",
            path.display(),
            first + 1,
            want.lines().skip(first).take(5).collect::<Vec<_>>().join("\n"),
            text.lines().skip(first).take(5).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn text_output_of_the_main_commands() {
    let s = Scratch::new();
    let steps: &[(&str, &[&str], i32)] = &[
        ("import_params", &["import", "params", "simulation_parameters.yaml"], 0),
        ("import_cell_lines", &["import", "cell-lines", "cell_lines.yaml"], 0),
        ("import_results", &["import", "results", "phase0_all_plates.csv"], 0),
        ("import_results_again", &["import", "results", "phase0_all_plates.csv"], 0),
        ("import_campaigns", &["import", "campaigns", "campaigns_db_export"], 0),
        ("verify_results", &["verify", "results", "phase0_all_plates.csv"], 0),
        ("results_summary", &["results", "summary"], 0),
        ("results_fit", &["results", "fit", "--line", "HepG2", "--compound", "staurosporine"], 0),
        ("results_query_plate", &["results", "query", "--plate", "HepG2_P1", "--compound", "DMSO"], 0),
        ("campaigns_list", &["campaigns", "list"], 0),
        ("campaigns_show", &["campaigns", "show", "demo_campaign"], 0),
        ("lines_list", &["lines", "list"], 0),
        ("lines_show", &["lines", "show", "HeLa"], 0),
        ("params_show", &["params", "show", "U2OS"], 0),
        ("facility_plan", &["facility", "plan", "facility_stress.toml"], 0),
        // Bad input ends with status 2 and one line that says what is wrong.
        ("error_missing_file", &["import", "results", "missing.csv"], 2),
        ("error_unknown_campaign", &["campaigns", "show", "nope"], 2),
        ("error_fit_without_data", &["results", "fit", "--line", "HepG2", "--compound", "tBHP"], 2),
        ("error_json_dashboard", &["--json", "dashboard"], 2),
        ("error_usage", &["results", "fit", "--line"], 2),
    ];
    for (name, args, code) in steps {
        let (got, text) = s.run(args);
        assert_eq!(got, *code, "{text}");
        // Numbers for people: no float noise anywhere in the text output.
        assert!(!text.contains("00000000") && !text.contains("99999999"), "unrounded number in:\n{text}");
        snapshot(name, &text);
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:\n  0  done\n  1  the operation failed"), "{help}");
    assert!(help.contains("2  bad usage or bad input"), "{help}");
}

/// `cellos results query | head -1`: the reader goes away after one line; `cellos` ends at once with
/// status 0 and says nothing about a broken pipe.
#[test]
fn a_closed_pipe_ends_quietly() {
    let s = Scratch::new();
    assert_eq!(s.run(&["import", "results", "phase0_all_plates.csv"]).0, 0);
    let mut child = Command::new(BIN)
        .args(["results", "query"])
        .current_dir(s.dir.path())
        .env("CELLOS_DATA_DIR", "data")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("plate id"));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
