//! USB links from the outside: the packet framing against a simulated device of 64- and 512-byte packets
//! in front of the twin (replies split across packets, exact multiples ending with a zero-length packet,
//! a lost short packet timing out with what had arrived), a worklist and a campaign run end to end over
//! the simulated USB link with the outputs of the pty, and `probe --usb` on a machine without
//! instruments. The real instruments' tests run only with `CELLOS_USB_STAR=1` or `CELLOS_USB_EVO=1`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cellos_gateway::transport::usb::{self, UsbTimeouts};
use cellos_gateway::transport::{LinkRx, LinkTx, Protocol, sim};

mod common;

use common::BIN;

fn twin() -> cellos_gateway::twin::TwinProcess {
    let options = cellos_gateway::twin::TwinOptions { seed: 7, instant: true, ..Default::default() };
    cellos_gateway::twin::TwinProcess::spawn(Path::new(BIN), &options).unwrap()
}

#[test]
fn star_commands_over_simulated_bulk_endpoints() {
    let t = twin();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let rf = b"C0RFid0001er00/00rf1.0.0 CELLOS TWIN".len();
        // 64 and 512 bytes as real endpoints; 8 splits a reply across packets; the reply's own length
        // makes it an exact multiple, ended by a zero-length packet.
        for mps in [64usize, 512, 8, rf] {
            let (out, inp, device) = sim::endpoints(mps);
            let faults = device.faults.clone();
            let star = t.star.clone();
            let bridge = tokio::spawn(async move { device.bridge(&star, Protocol::Star).await });
            let timeouts = UsbTimeouts { packet: Duration::from_secs(2), message: Duration::from_millis(300) };
            let (mut tx, mut rx) = usb::link(out, inp, Protocol::Star, timeouts, "simulated STAR");
            tx.send(b"C0RFid0001").await.unwrap();
            let reply = rx.recv().await.unwrap().unwrap();
            assert_eq!(reply, b"C0RFid0001er00/00rf1.0.0 CELLOS TWIN", "{mps}-byte packets");
            // The next reply loses its short packet: the read fails naming what came, and the one after
            // is whole again.
            faults.lose_short_packet.store(1, Ordering::SeqCst);
            tx.send(b"C0RFid0002").await.unwrap();
            if reply.len() >= mps {
                let e = rx.recv().await.unwrap_err().to_string();
                assert!(e.contains("short packet did not come within 300ms") && e.contains("C0RF"), "{mps}: {e}");
            } else {
                // A reply of one short packet that is lost never begins: the driver's own limit applies.
                assert!(tokio::time::timeout(Duration::from_millis(400), rx.recv()).await.is_err(), "{mps}");
            }
            tx.send(b"C0RFid0003").await.unwrap();
            assert_eq!(rx.recv().await.unwrap().unwrap(), b"C0RFid0003er00/00rf1.0.0 CELLOS TWIN");
            drop(tx);
            let _ = tokio::time::timeout(Duration::from_secs(1), bridge).await;
        }
    });
}

fn campaign_on(star: &str, reader: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    common::cli_campaign(
        dir.path(),
        "lines = [\"U2OS\"]\nbudget_wells = 24\nseed = 7\n",
        &["--star", star, "--reader", reader],
    );
    (common::readings(dir.path(), "ref"), common::status(dir.path(), "ref")["summary"].to_string())
}

/// The same campaign on two twins of the same seed: over the pty, and over simulated USB endpoints of
/// 64-byte packets in front of the other twin's STAR line. Every reading and the result are the same.
#[test]
fn a_campaign_and_a_worklist_over_simulated_usb_end_as_over_the_pty() {
    let decks = tempfile::tempdir().unwrap();
    let (a, b) =
        (common::campaign_twin(decks.path(), &["U2OS"], None), common::campaign_twin(decks.path(), &["U2OS"], None));
    let over_pty = campaign_on(&a.star, &a.reader);
    let over_usb = campaign_on(&format!("usb-sim:64:{}", b.star), &b.reader);
    assert!(!over_pty.0.is_empty());
    assert_eq!(over_usb, over_pty);
    // A worklist, with 512-byte packets.
    let dir = tempfile::tempdir().unwrap();
    let gwl = dir.path().join("w.gwl");
    std::fs::write(&gwl, "A;MEDIUM;;;1;;40.00;;;1;\r\nD;PLATE_1;;;1;;40.00;;;1;\r\nW;\r\n").unwrap();
    let c = twin();
    let o = Command::new(BIN)
        .args(["worklist", "run"])
        .arg(&gwl)
        .args(["--instrument", "star", "--port", &format!("usb-sim:512:{}", c.star)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 steps done"), "{}", String::from_utf8_lossy(&o.stdout));
}

/// `probe --usb` on a machine without the instruments: exit 0, the ids looked for and the udev rule.
#[test]
fn probe_usb_says_what_it_looked_for() {
    if std::env::var("CELLOS_USB_STAR").is_ok() || std::env::var("CELLOS_USB_EVO").is_ok() {
        return;
    }
    let o = Command::new(BIN).args(["probe", "--usb"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("08af:8000") && out.contains("0c47:4000") && out.contains("60-cellos.rules"), "{out}");
    let o = Command::new(BIN).args(["probe", "--port", "usb:NO-SUCH-SERIAL"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("serial NO-SUCH-SERIAL: no such device attached"), "{err}");
    let o = Command::new(BIN).args(["probe", "--port", "usb-sim:0:/dev/null"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("packet size `0`: 1 to 1024"));
}

/// The real STAR over USB, when one is attached and `CELLOS_USB_STAR=1`.
#[test]
fn a_real_star_over_usb() {
    if std::env::var("CELLOS_USB_STAR").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set CELLOS_USB_STAR=1 with a STAR attached");
        return;
    }
    let o = Command::new(BIN).args(["probe", "--port", "usb", "--instrument", "star", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["instrument"], "STAR");
}

/// The real EVO over USB, when one is attached and `CELLOS_USB_EVO=1`.
#[test]
fn a_real_evo_over_usb() {
    if std::env::var("CELLOS_USB_EVO").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set CELLOS_USB_EVO=1 with an EVO attached");
        return;
    }
    let o = Command::new(BIN).args(["probe", "--port", "usb", "--instrument", "evo", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A worklist recorded against the twin (`--capture`) replays in place of the instrument; a recording
/// with one byte changed in a command fails at that message, naming the recording's line.
#[test]
fn a_recorded_session_replays_and_a_changed_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let gwl = dir.path().join("w.gwl");
    std::fs::write(&gwl, "A;MEDIUM;;;1;;40.00;;;1;\r\nD;PLATE_1;;;1;;40.00;;;1;\r\nW;\r\n").unwrap();
    let cap = dir.path().join("s.cap");
    let o = Command::new(BIN)
        .arg("--capture")
        .arg(&cap)
        .args(["worklist", "run"])
        .arg(&gwl)
        .args(["--instrument", "star", "--twin"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&cap).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# cellos capture 1");
    assert!(lines[1].starts_with("# command: [\"worklist\",\"run\""), "{}", lines[1]);
    let sent = lines.iter().filter(|l| l.contains(" star > ")).count();
    let got = lines.iter().filter(|l| l.contains(" star < ")).count();
    assert!(sent >= 6 && sent == got, "every command and its reply: {text}");
    let o = Command::new(BIN).arg("replay").arg(&cap).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("every message as recorded"));
    // The aspirate's volume changed by one digit in the recording: the replay stops there.
    let (n, line) = lines.iter().enumerate().find(|(_, l)| l.contains(" star > C0AS")).unwrap();
    let at = line.find("av").expect("an aspirate volume") + 2;
    let mut changed = line.to_string();
    let digit = changed.as_bytes()[at + 1];
    changed.replace_range(at + 1..at + 2, if digit == b'9' { "8" } else { "9" });
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[n] = changed;
    let bad = dir.path().join("bad.cap");
    std::fs::write(&bad, edited.join("\n") + "\n").unwrap();
    let o = Command::new(BIN).arg("replay").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("bad.cap line {}: sent `C0AS", n + 1)), "{err}");
}
