//! `cellos-hil`: run hardware-in-the-loop scenarios against the twin (default) or a real instrument.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Scenario files or folders given on the command line, or `hil/scenarios` by default.
fn scenario_files(args: &[String]) -> Result<Vec<PathBuf>, String> {
    let roots: Vec<PathBuf> = if args.is_empty() {
        vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")]
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let mut files = Vec::new();
    for root in roots {
        if root.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
                .map_err(|e| format!("{}: {e}", root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(root);
        }
    }
    Ok(files)
}

const HELP: &str = "cellos-hil [SCENARIO.toml | DIR]...

Runs hardware-in-the-loop scenarios (default: the crate's scenarios folder). Each starts its own
instrument twin, unless CELLOS_HIL_PORT names a serial device: then the scenarios for the instrument in
CELLOS_HIL_INSTRUMENT (star or evo, default star) run against it, and steps that need the twin's control
link are skipped. Ends with a line `N passed, M failed`; exits non-zero if any failed.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let port = std::env::var("CELLOS_HIL_PORT").ok();
    let instrument = std::env::var("CELLOS_HIL_INSTRUMENT").unwrap_or_else(|_| "star".into());
    let files = match scenario_files(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let scenario = match cellos_hil::load(f) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {}: {e}", f.display());
                failed += 1;
                continue;
            }
        };
        if port.is_some() && (scenario.instrument != instrument || !scenario.faults.is_empty()) {
            println!("SKIP {} (needs the twin or another instrument)", scenario.name);
            continue;
        }
        match runtime.block_on(cellos_hil::run(&scenario, port.as_deref())) {
            Ok(report) => {
                passed += 1;
                let skipped = if report.skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped: {}", report.skipped.join(", "))
                };
                println!("PASS {} ({} steps{skipped})", scenario.name, report.steps);
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", scenario.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
