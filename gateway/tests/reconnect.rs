//! A lost instrument line mid-campaign, from the outside: the gateway reaches the twin's STAR through a
//! "cable" (a pty pair relayed to the twin, found through a fixed path), which the test pulls and plugs
//! back in while the campaign runs. The gateway waits, reopens the line, checks it is the same
//! instrument, reconciles the step in flight with it as after a crash, and finishes with the readings
//! and doses of an uninterrupted run; the twin's counters show no aspirate or dispense done twice.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Cable};

fn counters(t: &cellos_gateway::twin::TwinProcess) -> (u32, u32, u32, u32) {
    let c = common::counters(t);
    (c.aspirates, c.dispenses, c.tip_pickups, c.tip_drops)
}

fn outcome(dir: &Path) -> (Vec<String>, String) {
    (common::readings(dir, "c"), common::status(dir, "c")["summary"].to_string())
}

fn journal_entries(dir: &Path) -> i64 {
    let Ok(db) =
        rusqlite::Connection::open_with_flags(dir.join("campaigns.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM journal WHERE campaign_id = 'c'", [], |r| r.get(0)).unwrap_or(0)
}

const SETTINGS: &str = "campaign_id = \"c\"\nlines = [\"U2OS\"]\nbudget_wells = 48\nseed = 7\n";

#[test]
fn a_pulled_cable_mid_campaign_is_ridden_through() {
    // The reference: the same campaign on a twin of the same seed, uninterrupted.
    let reference = tempfile::tempdir().unwrap();
    let a = common::campaign_twin(reference.path(), &["U2OS"], None);
    std::fs::write(reference.path().join("c.toml"), SETTINGS).unwrap();
    let o = Command::new(BIN)
        .args(["campaign", "run", "--config"])
        .arg(reference.path().join("c.toml"))
        .args(["--star", &a.star, "--reader", &a.reader, "--data-dir"])
        .arg(reference.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = outcome(reference.path());
    let expected_counters = counters(&a);

    let dir = tempfile::tempdir().unwrap();
    let b = common::campaign_twin(dir.path(), &["U2OS"], None);
    let link = dir.path().join("star-cable");
    std::fs::write(dir.path().join("c.toml"), SETTINGS).unwrap();
    let child = Command::new(BIN)
        .args(["campaign", "run", "--reconnect", "60", "--config"])
        .arg(dir.path().join("c.toml"))
        .arg("--star")
        .arg(&link)
        .args(["--reader", &b.reader, "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("gateway.log")).unwrap()))
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    // The cable is plugged in after the gateway has started: a child process would inherit the pty
    // pair's master (without close-on-exec) and keep the line up when the test pulls the cable. The
    // gateway finds no instrument at first, and waits for it as for a lost line.
    std::thread::sleep(Duration::from_millis(300));
    let mut cable = Cable::plug(&link, &b.star);
    // Pulled twice, at different points of the run, and plugged back in after a while.
    for at in [15i64, 45] {
        let deadline = Instant::now() + Duration::from_secs(60);
        while journal_entries(dir.path()) < at {
            if Instant::now() > deadline {
                panic!("the campaign did not reach {at} journal entries: {}", log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cable.pull();
        std::thread::sleep(Duration::from_millis(1500));
        cable = Cable::plug(&link, &b.star);
    }
    let mut child = child;
    let status = child.wait().unwrap();
    let err = log();
    assert!(status.success(), "{err}");
    // Not there at the start, then pulled twice: three waits, three returns.
    assert_eq!(err.matches("the instrument line is lost").count(), 3, "{err}");
    assert_eq!(err.matches("the line came back").count(), 3, "{err}");
    assert_eq!(outcome(dir.path()), expected, "the readings and doses of the uninterrupted run");
    assert_eq!(counters(&b), expected_counters, "no aspirate, dispense, pick-up or drop done twice");
    cable.pull();
}
