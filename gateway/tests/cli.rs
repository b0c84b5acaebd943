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
    assert!(text.contains("initialised  no") && text.contains("tips         8"), "{text}");
}

/// `token create/list/revoke` and `audit verify`, as a user runs them: the token is printed once and
/// only its hash is stored; every change is in the audit trail; a trail edited, cut or added to by hand
/// is caught, naming the row.
#[test]
fn tokens_and_the_audit_trail_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let gw = |args: &[&str]| Command::new(BIN).args(args).args(["--data-dir", d]).output().unwrap();
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let o = gw(&["token", "create", "--name", "lab-pc", "--scope", "operate"]);
    assert!(o.status.success(), "{}", text(&o));
    let secret = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(secret.starts_with("cellos_") && secret.len() == 71, "{secret}");
    let o = gw(&["token", "create", "--name", "lab-pc", "--scope", "read"]);
    assert!(!o.status.success() && text(&o).contains("exists"), "{}", text(&o));
    assert!(gw(&["token", "create", "--name", "viewer", "--scope", "read"]).status.success());
    let o = gw(&["token", "list"]);
    let list = text(&o);
    assert!(list.contains("lab-pc") && list.contains("operate") && list.contains("viewer"), "{list}");
    assert!(!list.contains(&secret[7..]), "the token is never shown again");
    let db = rusqlite::Connection::open(dir.path().join("campaigns.db")).unwrap();
    let hashes: String = db.query_row("SELECT group_concat(sha256) FROM tokens", [], |r| r.get(0)).unwrap();
    assert!(!hashes.contains(&secret[7..]));
    assert!(gw(&["token", "revoke", "lab-pc"]).status.success());
    let o = gw(&["token", "revoke", "lab-pc"]);
    assert!(!o.status.success() && text(&o).contains("no token `lab-pc` in use"), "{}", text(&o));
    // Five changes tried, five rows: the refused ones too.
    let o = gw(&["audit", "verify"]);
    assert!(o.status.success() && text(&o).contains("intact: 5 rows"), "{}", text(&o));
    let rows: Vec<(String, String)> = db
        .prepare("SELECT action, result FROM audit ORDER BY entry_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows[0], ("create token".to_string(), "ok".to_string()));
    assert!(rows[1].1.contains("exists") && rows[4].1.contains("no token"), "{rows:?}");
    // Edited by hand.
    db.execute("UPDATE audit SET target = 'someone-else' WHERE entry_id = 3", []).unwrap();
    let o = gw(&["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("changed at row 3: the row was edited"), "{}", text(&o));
    // Restored, then a row cut out.
    db.execute("UPDATE audit SET target = 'viewer' WHERE entry_id = 3", []).unwrap();
    assert!(gw(&["audit", "verify"]).status.success());
    db.execute("DELETE FROM audit WHERE entry_id = 2", []).unwrap();
    let o = gw(&["audit", "verify"]);
    assert!(!o.status.success() && text(&o).contains("changed at row 3: a row before it was deleted"), "{}", text(&o));
}
