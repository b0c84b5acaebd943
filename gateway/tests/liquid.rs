//! The liquid-handling layer against the twin: the model and the twin agree, the safety envelope
//! refuses and sends nothing, and a failed liquid operation stops the run without a retry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cellos_core::deck::default_deck;
use cellos_core::proto::wire::Faults;
use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::GatewayError;
use cellos_gateway::error::Rule;
use cellos_gateway::evo::EvoDriver;
use cellos_gateway::handlers::{EvoHandler, StarHandler};
use cellos_gateway::liquid::{Journal, LiquidHandler, Op, OpOutcome, Place, Workcell};
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{LinkTx, Protocol, SerialConfig, open_serial};

fn twin() -> TwinServer {
    TwinServer::start(HostTwin::new(9, Timing::INSTANT), None, None, None).unwrap()
}

fn star(t: &TwinServer, limit: Duration) -> Workcell<StarHandler<impl LinkTx>> {
    let (tx, rx) = open_serial(&SerialConfig::new(&t.star), Protocol::Star).unwrap();
    Workcell::new(StarHandler::new(StarDriver::new(tx, rx, Timeouts::uniform(limit), 8)), default_deck())
}

fn commands(t: &TwinServer) -> u32 {
    t.twin.lock().unwrap().counters.commands
}

fn twin_volume(t: &TwinServer, plate: usize, index: usize) -> f64 {
    t.twin.lock().unwrap().deck.plates[plate].wells[index].liquid.volume_ul
}

fn ops() -> Vec<Op> {
    vec![
        Op::PickUpTip { channel: 0, at: Place::well("TIPS_1", "A1") },
        Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 150.0 },
        Op::Dispense { channel: 0, to: Place::well("PLATE_1", "A1"), volume_ul: 150.0 },
        Op::Aspirate { channel: 0, from: Place::well("PLATE_1", "A1"), volume_ul: 100.0 },
        Op::Dispense { channel: 0, to: Place::well("PLATE_1", "A2"), volume_ul: 100.0 },
        Op::DropTip { channel: 0, to: Place::named("WASTE") },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_workcell_moves_liquid() {
    let t = twin();
    let mut w = star(&t, Duration::from_secs(2));
    w.initialise().await.unwrap();
    for op in ops() {
        w.run(&op).await.unwrap();
    }
    assert_eq!((twin_volume(&t, 0, 0), twin_volume(&t, 0, 1)), (50.0, 100.0));
    // The model agrees with the twin.
    assert_eq!(w.envelope.deck.plates[0].wells[0].liquid.volume_ul, 50.0);
    assert_eq!(w.envelope.deck.plates[0].wells[1].liquid.volume_ul, 100.0);
    assert!(!w.envelope.deck.tip_racks[0].has_tip(0));
    assert_eq!(w.handler().tip_presence().await.unwrap(), Some(vec![false; 8]));
    // Move PLATE_2 (A1 at 298.3, 245.7 mm) to free deck.
    w.handler().move_plate((2983, 2457), (7000, 2457)).await.unwrap();
    assert_eq!(t.twin.lock().unwrap().deck.plates[1].x_01mm, 7000);
    // Nothing to grip where PLATE_2 was: 21. PLATE_1 half a pitch onto PLATE_2: 24, and the iSWAP
    // still holds it.
    let e = w.handler().move_plate((2983, 2457), (9000, 2457)).await.unwrap_err();
    assert!(matches!(e, GatewayError::Instrument(ref i) if i.code == 21), "{e}");
    let e = w.handler().move_plate((2983, 1457), (7045, 2457)).await.unwrap_err();
    assert!(matches!(e, GatewayError::Instrument(ref i) if i.code == 24), "{e}");
    assert_eq!(t.twin.lock().unwrap().star.held_plate, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evo_workcell_moves_liquid() {
    let t = twin();
    let (tx, rx) = open_serial(&SerialConfig::new(&t.evo), Protocol::Evo).unwrap();
    let mut w = Workcell::new(EvoHandler::new(EvoDriver::new(tx, rx, Duration::from_secs(2))), default_deck());
    w.initialise().await.unwrap();
    for op in ops() {
        w.run(&op).await.unwrap();
    }
    assert_eq!((twin_volume(&t, 0, 0), twin_volume(&t, 0, 1)), (50.0, 100.0));
    let c = t.twin.lock().unwrap().counters;
    assert_eq!((c.tip_pickups, c.aspirates, c.dispenses, c.tip_drops, c.errors), (1, 2, 2, 1, 0));
    // Tip 3 reaches its spot and its well too.
    w.run(&Op::PickUpTip { channel: 2, at: Place::well("TIPS_1", "C1") }).await.unwrap();
    w.run(&Op::Aspirate { channel: 2, from: Place::well("PLATE_1", "A2"), volume_ul: 40.0 }).await.unwrap();
    assert_eq!(twin_volume(&t, 0, 1), 60.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_refuses_and_sends_nothing() {
    let t = twin();
    let mut w = star(&t, Duration::from_secs(2));
    w.initialise().await.unwrap();
    let refused = |e: GatewayError| match e {
        GatewayError::Refused { rule, .. } => rule,
        other => panic!("expected a refusal, got {other}"),
    };
    let before = commands(&t);
    let cases = [
        (Op::Dispense { channel: 0, to: Place::well("PLATE_1", "A1"), volume_ul: 10.0 }, Rule::NoTip),
        (Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 10.0 }, Rule::NoTip),
        (Op::PickUpTip { channel: 9, at: Place::well("TIPS_1", "A1") }, Rule::NoChannel),
        (Op::PickUpTip { channel: 0, at: Place::well("TIPS_9", "A1") }, Rule::OffDeck),
        (Op::PickUpTip { channel: 0, at: Place::well("TIPS_1", "Q1") }, Rule::OffDeck),
    ];
    for (op, rule) in cases {
        assert_eq!(refused(w.run(&op).await.unwrap_err()), rule, "{op}");
    }
    assert_eq!(commands(&t), before, "nothing was sent");
    w.run(&Op::PickUpTip { channel: 0, at: Place::well("TIPS_1", "A1") }).await.unwrap();
    let before = commands(&t);
    let cases = [
        (Op::PickUpTip { channel: 0, at: Place::well("TIPS_1", "B1") }, Rule::TipAlreadyFitted),
        (Op::PickUpTip { channel: 1, at: Place::well("TIPS_1", "A1") }, Rule::NoTipAtSpot),
        (Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 400.0 }, Rule::TipCapacity),
        (Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 0.2 }, Rule::BadVolume),
        (Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: f64::NAN }, Rule::BadVolume),
        (Op::Aspirate { channel: 0, from: Place::well("PLATE_1", "H12"), volume_ul: 10.0 }, Rule::NotEnoughLiquid),
        (Op::Aspirate { channel: 0, from: Place::well("PLATE_1", "A13"), volume_ul: 10.0 }, Rule::OffDeck),
        (Op::Dispense { channel: 0, to: Place::well("PLATE_1", "A1"), volume_ul: 10.0 }, Rule::TipEmpty),
        (Op::DropTip { channel: 0, to: Place::named("MEDIUM") }, Rule::OffDeck),
    ];
    for (op, rule) in cases {
        assert_eq!(refused(w.run(&op).await.unwrap_err()), rule, "{op}");
    }
    w.run(&Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 350.0 }).await.unwrap();
    let e = w.run(&Op::Dispense { channel: 0, to: Place::well("PLATE_1", "A1"), volume_ul: 350.0 }).await.unwrap_err();
    assert_eq!(refused(e), Rule::WellCapacity);
    assert_eq!(commands(&t) - before, 1, "only the valid aspirate was sent");
    let msg = w
        .run(&Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 20.0 })
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "refused by the safety envelope (tip capacity): aspirate 20 µL from MEDIUM with channel 1: the tip holds 350 µL of 360 µL; nothing was sent"
    );
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Journal for Recorder {
    fn before(&mut self, op: &Op) -> Result<u64, GatewayError> {
        let mut v = self.0.lock().unwrap();
        v.push(format!("before {op}"));
        Ok(v.len() as u64)
    }

    fn after(&mut self, entry: u64, outcome: &OpOutcome) -> Result<(), GatewayError> {
        let kind = match outcome {
            OpOutcome::Done => "done",
            OpOutcome::Failed(_) => "failed",
            OpOutcome::Unknown(_) => "unknown",
        };
        self.0.lock().unwrap().push(format!("after {entry} {kind}"));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_dispense_reply_stops_without_retry() {
    let t = twin();
    let journal = Recorder::default();
    let mut w = star(&t, Duration::from_millis(300)).with_journal(Box::new(journal.clone()));
    w.initialise().await.unwrap();
    w.run(&Op::PickUpTip { channel: 0, at: Place::well("TIPS_1", "A1") }).await.unwrap();
    w.run(&Op::Aspirate { channel: 0, from: Place::named("MEDIUM"), volume_ul: 100.0 }).await.unwrap();
    t.twin.lock().unwrap().star_faults.set(Faults { drop_next: 1, only_code: Some(*b"DS"), ..Faults::default() });
    let before = commands(&t);
    let e = w.run(&Op::Dispense { channel: 0, to: Place::well("PLATE_1", "B2"), volume_ul: 100.0 }).await.unwrap_err();
    let GatewayError::OperationFailed { cause, known, unknown, .. } = &e else { panic!("{e}") };
    assert!(matches!(**cause, GatewayError::Timeout { .. }));
    assert_eq!(known, "tips on channels 1");
    assert!(unknown.contains("whether the liquid moved"), "{unknown}");
    assert!(e.to_string().contains("nothing was retried"));
    // Sent once (the dispense), plus one tip query; the twin did dispense, the model does not claim it.
    assert_eq!(commands(&t) - before, 2);
    assert_eq!(twin_volume(&t, 0, 13), 100.0);
    assert_eq!(w.envelope.deck.plates[0].wells[13].liquid.volume_ul, 0.0);
    let log = journal.0.lock().unwrap().clone();
    assert_eq!(log.last().unwrap(), "after 5 unknown");
    assert_eq!(log[log.len() - 2], "before dispense 100 µL into PLATE_1:B2 with channel 1");
    // An error reply is "failed", not "unknown": the instrument refused it.
    t.twin.lock().unwrap().deck.plates[0].wells[13].liquid.volume_ul = 0.0;
    w.envelope.deck.plates[0].wells[13].liquid.volume_ul = 50.0;
    let e = w.run(&Op::Aspirate { channel: 0, from: Place::well("PLATE_1", "B2"), volume_ul: 10.0 }).await.unwrap_err();
    assert!(e.to_string().contains("Not known: nothing: the instrument refused the command"), "{e}");
    // (The recorder numbers its lines: this aspirate's "before" is line 7.)
    assert_eq!(journal.0.lock().unwrap().last().unwrap(), "after 7 failed");
}
