//! Worklists executed on the twin: a 96-transfer worklist leaves exactly the expected volumes; a bad
//! step stops the run cleanly at its line.

use std::time::Duration;

use cellos_core::deck::default_deck;
use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::GatewayError;
use cellos_gateway::evo::EvoDriver;
use cellos_gateway::handlers::{EvoHandler, StarHandler};
use cellos_gateway::liquid::Workcell;
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{Protocol, SerialConfig, open_serial};
use cellos_gateway::worklist::hamilton::{self, Transfer};
use cellos_gateway::worklist::{gwl, gwl_to_transfers, run_gwl, run_transfers, transfers_to_gwl};

/// 96 transfers from the medium trough into every well of PLATE_1, 10 µL to 105 µL.
fn plate_fill() -> Vec<Transfer> {
    let rows = "ABCDEFGH";
    (0..96)
        .map(|i| Transfer {
            source: "MEDIUM".into(),
            source_well: String::new(),
            target: "PLATE_1".into(),
            target_well: format!("{}{:02}", &rows[i / 12..i / 12 + 1], i % 12 + 1),
            volume_ul: 10.0 + i as f64,
        })
        .collect()
}

fn check_volumes(t: &TwinServer) {
    let twin = t.twin.lock().unwrap();
    for i in 0..96 {
        assert_eq!(twin.deck.plates[0].wells[i].liquid.volume_ul, 10.0 + i as f64, "well {i}");
    }
    let used: f64 = (0..96).map(|i| 10.0 + i as f64).sum();
    assert_eq!(twin.deck.troughs[1].liquid.volume_ul, 50_000.0 - used);
    assert_eq!(twin.counters.tip_pickups, 96);
    assert_eq!(twin.counters.tip_drops, 96);
    assert_eq!(twin.counters.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gwl_of_96_transfers_on_the_evo_twin() {
    let t = TwinServer::start(HostTwin::new(1, Timing::INSTANT), None, None, None).unwrap();
    let deck = default_deck();
    let records = transfers_to_gwl(&deck, &plate_fill()).unwrap();
    let text = gwl::emit(&records).unwrap();
    assert!(text.starts_with("A;MEDIUM;;;1;;10.00;;;1;\r\nD;PLATE_1;;;1;;10.00;;;1;\r\nW;\r\nA;MEDIUM;;;1;;11.00;;;1;\r\nD;PLATE_1;;;9;;11.00;;;1;"));
    // The file form parses back to the same records and transfers.
    let parsed = gwl::parse("fill.gwl", &text).unwrap();
    assert_eq!(parsed, records);
    assert_eq!(gwl_to_transfers(&deck, &parsed).unwrap(), plate_fill());
    let (tx, rx) = open_serial(&SerialConfig::new(&t.evo), Protocol::Evo).unwrap();
    let mut w = Workcell::new(EvoHandler::new(EvoDriver::new(tx, rx, Duration::from_secs(2))), deck);
    w.initialise().await.unwrap();
    let mut seen = 0;
    run_gwl(&mut w, "fill.gwl", &parsed, |done, total| {
        assert_eq!(total, 288);
        seen = done;
    })
    .await
    .unwrap();
    assert_eq!(seen, 288);
    check_volumes(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_list_of_96_on_the_star_twin() {
    let t = TwinServer::start(HostTwin::new(1, Timing::INSTANT), None, None, None).unwrap();
    let csv = hamilton::emit_transfers(&plate_fill());
    let transfers = hamilton::parse_transfers("fill.csv", &csv).unwrap();
    let (tx, rx) = open_serial(&SerialConfig::new(&t.star), Protocol::Star).unwrap();
    let mut w = Workcell::new(
        StarHandler::new(StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(2)), 8)),
        default_deck(),
    );
    w.initialise().await.unwrap();
    run_transfers(&mut w, "fill.csv", &transfers, |_, _| {}).await.unwrap();
    check_volumes(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_step_stops_the_run_at_its_line() {
    let t = TwinServer::start(HostTwin::new(1, Timing::INSTANT), None, None, None).unwrap();
    let mut list = plate_fill();
    list.truncate(8);
    list[4].volume_ul = 400.0; // beyond a 360 µL tip
    let (tx, rx) = open_serial(&SerialConfig::new(&t.star), Protocol::Star).unwrap();
    let mut w = Workcell::new(
        StarHandler::new(StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(2)), 8)),
        default_deck(),
    );
    w.initialise().await.unwrap();
    let e = run_transfers(&mut w, "bad.csv", &list, |_, _| {}).await.unwrap_err();
    let GatewayError::AtStep { line, cause, .. } = &e else { panic!("{e}") };
    assert_eq!(*line, 6, "row 5 is line 6 after the header");
    assert!(matches!(**cause, GatewayError::Refused { rule: cellos_core::deck::Rule::TipCapacity, .. }), "{cause}");
    assert!(e.to_string().contains("stopped here: refused by the safety envelope (tip capacity)"), "{e}");
    let twin = t.twin.lock().unwrap();
    let filled: Vec<f64> = (0..8).map(|i| twin.deck.plates[0].wells[i].liquid.volume_ul).collect();
    assert_eq!(filled, [10.0, 11.0, 12.0, 13.0, 0.0, 0.0, 0.0, 0.0]);
    // The tip of the refused step was picked up, and is still on channel 1: nothing was hidden.
    assert!(twin.star.channels[0].is_some());
}
