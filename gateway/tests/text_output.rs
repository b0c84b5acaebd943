//! The text `cellos-gateway` prints for people, against snapshots in `tests/snapshots/` (the command
//! line, its exit status and its output; what varies from run to run — a campaign's id, seconds taken,
//! a pty's name — is masked). `CELLOS_UPDATE_SNAPSHOTS=1 cargo test -p cellos-gateway --test
//! text_output` rewrites them after a deliberate change. Also: the exit codes (0 done, 1 failed, 2 bad
//! usage or input), `--json` refused where it means nothing, and a closed pipe that ends quietly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;

const BIN: &str = env!("CARGO_BIN_EXE_cellos-gateway");

/// Runs the gateway in `dir` and returns (status, transcript), with `masks` replaced.
fn run(dir: &Path, args: &[&str], masks: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("CELLOS_DATA_DIR")
        .env_remove("CELLOS_CRASH_AFTER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let mut text = format!(
        "$ cellos-gateway {}\nexit {code}\n--- stdout\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
    );
    if code != 0 {
        text += &format!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    }
    for (from, to) in masks {
        text = text.replace(from, to);
    }
    (code, text)
}

fn snapshot(name: &str, text: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("CELLOS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CELLOS_UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert!(want == text, "{name}: the output differs from {}:\n--- snapshot\n{want}\n--- now\n{text}", path.display());
}

/// The last line of the results (`0.6 s`) and the campaign id, masked.
fn campaign_masks(text: &str) -> Vec<(String, String)> {
    let mut m = Vec::new();
    if let Some(id) = text.lines().find_map(|l| l.strip_prefix("campaign ")) {
        m.push((id.to_string(), "<id>".to_string()));
    }
    if let Some(s) = text.lines().rev().find(|l| l.ends_with(" s") && l[..l.len() - 2].parse::<f64>().is_ok()) {
        m.push((format!("\n{s}\n"), "\n<seconds> s\n".to_string()));
    }
    m
}

#[test]
fn text_output_of_the_main_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, text) = run(d, &["campaign", "plan", "--lines", "U2OS,HepG2,A549"], &[]);
    assert_eq!(code, 0, "{text}");
    snapshot("campaign_plan", &text);

    let (code, text) = run(d, &["campaign", "demo", "--data-dir", "data"], &[]);
    assert_eq!(code, 0, "{text}");
    let masks = campaign_masks(&text);
    let masked: Vec<(&str, &str)> = masks.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let text = masked.iter().fold(text.clone(), |t, (a, b)| t.replace(a, b));
    snapshot("campaign_demo", &text);
    let id = masks[0].0.clone();

    let (code, text) = run(d, &["campaign", "status", &id, "--data-dir", "data"], &[(&id, "<id>")]);
    assert_eq!(code, 0, "{text}");
    snapshot("campaign_status", &text);

    // The same through --json: the numbers in full, the same values.
    let out = Command::new(BIN)
        .args(["--json", "campaign", "status", &id, "--data-dir", "data"])
        .current_dir(d)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["lab_time"]["tips"], 90);
    assert!(text.contains(&format!("tips              {}", v["lab_time"]["tips"])), "{text}");

    let t = TwinServer::start(HostTwin::new(1, Timing::DEFAULT), None, None, None).unwrap();
    let (code, text) = run(d, &["probe", "--port", &t.star], &[(&t.star, "<pty>")]);
    assert_eq!(code, 0, "{text}");
    // The round trip's milliseconds vary: the line is checked, then masked.
    let rt = text.lines().find(|l| l.starts_with("round trip ms")).expect("round trip line").to_string();
    // So does the twin's serial number (one per instance).
    let serial = text.lines().find(|l| l.starts_with("serial number")).expect("serial line").to_string();
    snapshot("probe_star", &text.replace(&rt, "round trip ms   <ms>").replace(&serial, "serial number  <serial>"));

    std::fs::write(d.join("bad.gwl"), "A;MEDIUM;;;1;;40.00;;;1;\r\nQ;\r\n").unwrap();
    std::fs::write(d.join("big.gwl"), "A;MEDIUM;;;1;;400.00;;;1;\r\nD;PLATE_1;;;1;;400.00;;;1;\r\n").unwrap();
    let errors: &[(&str, &[&str], i32)] = &[
        ("error_missing_settings", &["campaign", "run", "--config", "missing.toml", "--twin"], 2),
        ("error_json_serve", &["--json", "serve"], 2),
        ("error_bad_worklist", &["worklist", "run", "bad.gwl", "--instrument", "evo", "--twin"], 2),
        ("error_refused_step", &["worklist", "run", "big.gwl", "--instrument", "evo", "--twin"], 1),
        ("error_no_device", &["probe", "--port", "/dev/cellos-no-such-device"], 2),
        ("error_unknown_campaign", &["campaign", "status", "nope", "--data-dir", "data"], 2),
    ];
    for (name, args, want) in errors {
        let (code, text) = run(d, args, &[]);
        assert_eq!(code, *want, "{text}");
        snapshot(name, &text);
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:\n  0  done\n  1  the operation failed"), "{help}");
}

/// `cellos-gateway decode star big.trace | head -c 64`: the gateway stops at the closed pipe with
/// status 0 and no message.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("big.trace");
    std::fs::write(&trace, "C0QMid1111 er00/00\n".repeat(50_000)).unwrap();
    let mut child = Command::new(BIN)
        .args(["decode", "star"])
        .arg(&trace)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"{"), "{}", String::from_utf8_lossy(&first[..n]));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
