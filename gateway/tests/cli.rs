//! `cellos-gateway` as a user runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;

const BIN: &str = env!("CARGO_BIN_EXE_cellos-gateway");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

const STAR_VECTORS: &str = "C0QMid1111\nC0QMid1111 er00/00\nC0QMid1111 er00/00 P100/00\nC0QMid1111 er01/30\nP1OQid1111er30\nC0ZBid0001er00/00bb/08ABCDEFGH\nC0ZBid0001er00/00bb/00\nP1VWid0001vw1 1 1 1\nP1VWid0001vw0 0\nC0TTid0001tt01tf1tl0519tv03600tg2tu0\nC0TPid0002xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0\nC0DSid0001dm1 1&tm1 0&xp02983 00000&yp1457 0000&zx1866 1866&lp2000 2000&zl1866 1866&po0100 0100&ip0000 0000&it0 0&fp0000 0000&zu0032 0032&zr06180 06180&th2450te2450dv01072 01072&ds1800 1800&ss0050 0050&rv000 000&ta050 050&ba0300 0300&lm0 0&dj00zo000 000&ll1 1&lv1 1&de0010 0010&wt00 00&mv00000 00000&mc00 00&mp000 000&ms0010 0010&mh0000 0000&gi000 000&gj0gk0\nC0CPid0001cl3FFFFFFFFFFFFFcb00000000000000\nC0RFid0001\nC0VIid0001\nC0RTid0001\nC0QWid0001\nR0QWid0001\n";

#[test]
fn decode_roundtrips_every_vector() {
    let o = run(&["decode", "star", "--roundtrip"], STAR_VECTORS.as_bytes());
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), STAR_VECTORS);
    let evo: &[u8] = b"\x02C5PIA\x00\x02C5\x80\x00\x02C5RNT1\x00\x02C5\x808\x00\x02W1PIB\x00\x02W1\x85\x00\x02C5\x89\x00\x02C5SHZ2100,2100,2100,2100,2100,2100,2100,2100\x00\x02C5PAA45,1031,90,1200,1200,1200,1200,1200,1200,1200,1200\x00";
    let o = run(&["decode", "evo", "--roundtrip", "-"], evo);
    assert!(o.status.success());
    assert_eq!(o.stdout, evo);
    for gwl in [
        "A;WaterTrough;;;1;;200.00;;;;\r\nA;WaterTrough;12345;my_rack_id;1;my_tube_id;200.00;;;;\r\nD;A;;;1;;10.00;;;73;\r\nC;This is a simple comment\r\nR;S1;;;1;20;D1;;;2;21;50;;1;1;0",
        "S;1\r\nB;\r\nS;2",
    ] {
        let o = run(&["decode", "gwl", "--roundtrip"], gwl.as_bytes());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8(o.stdout).unwrap(), gwl);
    }
    // JSON lines, fields named and errors explained.
    let o = run(&["decode", "star"], b"C0QMid1111 er01/30\n");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"][0]["meaning"], "syntax error (unknown command)");
}

#[test]
fn malformed_input_names_its_place_and_fails() {
    let o = run(&["decode", "star"], b"C0QMid1111\nC0QMid1111 er00/00\nc0QM\n");
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "error: line 3: module must be like C0, P1 or H0");
    let o = run(&["decode", "evo"], b"\x02C5PIA\x00\x02C5\x00");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: byte 7:"));
    let o = run(&["decode", "gwl"], b"A;T;;;1;;1.00;;;;\r\nQ;");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("-:2: unknown record type `Q`"));
}

#[test]
fn convert_between_formats() {
    let dir = std::env::temp_dir().join(format!("cellos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("t.csv");
    let list = "Source Plate Name,Source Well,Destination Plate Name,Destination Well,Transfer Volume\r\nMEDIUM,,PLATE_1,B1,25\r\nPLATE_1,B1,PLATE_2,H12,5.5\r\n";
    std::fs::write(&csv, list).unwrap();
    let gwl = dir.join("t.gwl");
    let o = run(&["worklist", "convert", csv.to_str().unwrap(), "--to", "gwl", "-o", gwl.to_str().unwrap()], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // B1 is position 2 column-major; H12 is 96.
    assert_eq!(
        std::fs::read_to_string(&gwl).unwrap(),
        "A;MEDIUM;;;1;;25.00;;;1;\r\nD;PLATE_1;;;2;;25.00;;;1;\r\nW;\r\nA;PLATE_1;;;2;;5.50;;;1;\r\nD;PLATE_2;;;96;;5.50;;;1;\r\nW;"
    );
    let back = run(&["worklist", "convert", gwl.to_str().unwrap(), "--to", "transfer"], b"");
    assert_eq!(String::from_utf8(back.stdout).unwrap(), list.replace("B1", "B01"));
    let legacy = run(&["worklist", "convert", csv.to_str().unwrap(), "--to", "hamilton"], b"");
    assert!(String::from_utf8(legacy.stdout).unwrap().contains("Aspirate,25,MEDIUM,,1,MEDIUM,PLATE_1:B1,,,"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_a_worklist_on_a_twin_it_starts() {
    let dir = std::env::temp_dir().join(format!("cellos-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gwl = dir.join("w.gwl");
    std::fs::write(&gwl, "A;MEDIUM;;;1;;40.00;;;1;\r\nD;PLATE_1;;;1;;40.00;;;1;\r\nW;\r\nA;MEDIUM;;;1;;400.00;;;1;\r\nD;PLATE_1;;;1;;400.00;;;1;").unwrap();
    let o = run(&["worklist", "run", gwl.to_str().unwrap(), "--instrument", "evo", "--twin"], b"");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("w.gwl:4: stopped here: refused by the safety envelope (tip capacity)"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn probe_the_twin() {
    let t = TwinServer::start(HostTwin::new(1, Timing::DEFAULT), None, None, None).unwrap();
    let o = run(&["probe", "--port", &t.star, "--json"], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["initialised"].as_bool(), v["firmware"].as_str(), v["channels"].as_u64()),
        (Some(false), Some("1.0.0 CELLOS TWIN"), Some(8))
    );
    let o = run(&["probe", "--port", &t.evo, "--instrument", "evo"], b"");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("initialised: false") && text.contains("tips: 8"), "{text}");
}
