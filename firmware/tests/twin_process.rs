//! `cellos-twin` as a separate process: it prints its pty paths, serves them, and refuses bad settings
//! with a clear message and a non-zero exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cellos-twin");

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_on_printed_ptys() {
    let mut child = Child(Command::new(BIN).args(["--seed", "3"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut paths = std::collections::HashMap::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        let (k, v) = line.split_once('=').expect("name=path");
        paths.insert(k.to_string(), v.to_string());
    }
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["bench", "evo", "reader", "star"]);
    let mut port = serialport::new(&paths["star"], 115_200).timeout(Duration::from_millis(20)).open().unwrap();
    port.write_all(b"C0RFid0001\r").unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while !got.ends_with(b"\r\n") && Instant::now() < end {
        let mut buf = [0u8; 64];
        if let Ok(n) = port.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"C0RFid0001er00/00rf1.0.0 CELLOS TWIN\r\n");
}

#[test]
fn refuses_bad_settings() {
    let out = Command::new(BIN).args(["--faults", "melt=1"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fault `melt=1`: unknown kind"), "{err}");
    let out = Command::new(BIN).args(["--deck", "/nonexistent/deck.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/deck.toml"));
    for scale in ["0", "-2", "fast"] {
        let out = Command::new(BIN).arg(format!("--time-scale={scale}")).output().unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("`{scale}` is not a positive number")),
            "{scale}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Fault injection"));
}
