//! The liquid-handling layer against the twin: the model and the twin agree, the safety envelope
//! refuses and sends nothing, and a failed liquid operation stops the run without a retry.

mod common;

use common::on_big_stack;
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

/// A twin and a STAR workcell on the campaign deck of one line.
fn campaign_bench() -> (TwinServer, Workcell<StarHandler<impl LinkTx>>) {
    let deck = cellos_gateway::campaign::deck_model(&["U2OS".to_string()]).unwrap();
    let t = TwinServer::start(HostTwin::with_deck(deck.clone(), 3, Timing::INSTANT), None, None, None).unwrap();
    let (tx, rx) = open_serial(&SerialConfig::new(&t.star), Protocol::Star).unwrap();
    let w =
        Workcell::new(StarHandler::new(StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(2)), 8)), deck);
    (t, w)
}

/// A plan's command as the workcell's operations; tips from column `column` of TIPS_1, row = channel.
fn ops_of(a: &cellos_gateway::campaign::plan::Action, column: u8) -> Vec<Op> {
    use cellos_gateway::campaign::plan::Action;
    let row = |c: usize| format!("{}{column}", (b'A' + c as u8) as char);
    match a {
        Action::PickUp(ch) => {
            ch.iter().map(|&c| Op::PickUpTip { channel: c, at: Place::well("TIPS_1", &row(c)) }).collect()
        }
        Action::Aspirate(v) => {
            v.iter().map(|(c, p, ul)| Op::Aspirate { channel: *c, from: Place::parse(p), volume_ul: *ul }).collect()
        }
        Action::Dispense(v) => {
            v.iter().map(|(c, p, ul)| Op::Dispense { channel: *c, to: Place::parse(p), volume_ul: *ul }).collect()
        }
        Action::Drop(ch) => ch.iter().map(|&c| Op::DropTip { channel: c, to: Place::named("WASTE") }).collect(),
    }
}

fn well_volume(t: &TwinServer, name: &str) -> f64 {
    let format = cellos_core::plate::PlateFormat::W96;
    let i = usize::from(format.row_major(format.parse_well(name).unwrap())) - 1;
    twin_volume(t, 0, i)
}

/// Eight-channel commands from the plan: seeding 24 wells column by column with multi-dispense, then
/// medium of a different volume in each well. The twin's deck, well by well, holds exactly what was
/// planned; every command went as one instrument command of several channels; the twin's lab time is
/// the plan's.
#[test]
fn multi_channel_commands_put_the_planned_volume_in_every_well() {
    on_big_stack(|| async {
        use cellos_gateway::campaign::plan;
        let (t, mut w) = campaign_bench();
        w.initialise().await.unwrap();
        let wells = plan::iteration_wells("ASSAY_1", 0, 23).unwrap();
        let seeding = plan::seeding("CELLS_1", "ASSAY_1", &wells);
        // Medium: 30 µL in the first well, 1 µL more in each next one.
        let medium: Vec<plan::Transfer> = wells
            .iter()
            .enumerate()
            .map(|(k, w)| ("MEDIUM".to_string(), format!("ASSAY_1:{w}"), 30.0 + k as f64))
            .collect();
        let before = t.twin.lock().unwrap().counters;
        let trough_before =
            |name: &str| w.envelope.deck.troughs.iter().find(|x| &*x.name == name).unwrap().liquid.volume_ul;
        let (cells0, medium0) = (trough_before("CELLS_1"), trough_before("MEDIUM"));
        let mut planned_ms = 0u64;
        let mut sent = 0;
        for (column, group) in [(1u8, &seeding), (2, &medium)] {
            for a in plan::commands(group, 8, plan::TIP_UL) {
                planned_ms += u64::from(a.lab_ms(&cellos_core::labtime::Profile::STAR));
                w.run_all(&ops_of(&a, column)).await.unwrap();
                sent += 1;
            }
        }
        let after = t.twin.lock().unwrap().counters;
        // One instrument command per plan command, each carrying its channels.
        assert_eq!(after.commands - before.commands, sent);
        assert!(sent < 20, "{sent} commands for 48 transfers");
        assert_eq!(after.dispenses - before.dispenses, 48, "a dispense per well and transfer");
        assert_eq!(after.tip_pickups - before.tip_pickups, 12, "six tips per run, one per row");
        assert_eq!(after.lab_ms - before.lab_ms, planned_ms, "the twin keeps the plan's lab time");
        for (k, name) in wells.iter().enumerate() {
            let expected = 100.0 + 30.0 + k as f64;
            assert!(
                (well_volume(&t, name) - expected).abs() < 1e-9,
                "{name}: {} µL, {expected} planned",
                well_volume(&t, name)
            );
        }
        // The troughs gave exactly that much, and the model agrees with the twin everywhere.
        let total_medium: f64 = (0..24).map(|k| 30.0 + k as f64).sum();
        let twin_trough = |i: usize| t.twin.lock().unwrap().deck.troughs[i].liquid.volume_ul;
        let index = |name: &str| w.envelope.deck.troughs.iter().position(|x| &*x.name == name).unwrap();
        assert!((twin_trough(index("CELLS_1")) - (cells0 - 2400.0)).abs() < 1e-9);
        assert!((twin_trough(index("MEDIUM")) - (medium0 - total_medium)).abs() < 1e-9);
        let model = &w.envelope.deck;
        let twin_deck = t.twin.lock().unwrap().deck.clone();
        for i in 0..96 {
            assert_eq!(
                model.plates[0].wells[i].liquid.volume_ul, twin_deck.plates[0].wells[i].liquid.volume_ul,
                "well {i}"
            );
        }
        assert_eq!(w.handler().tip_presence().await.unwrap(), Some(vec![false; 8]));
    });
}

/// A command of several channels is refused whole when any one channel breaks a rule, or when the
/// channels are out of order or too close: nothing is sent and nothing changes. The twin refuses such
/// a command too, on every channel, when it gets one.
#[test]
fn a_multi_channel_command_is_refused_whole_when_one_channel_breaks_a_rule() {
    on_big_stack(|| async {
        let (t, mut w) = campaign_bench();
        w.initialise().await.unwrap();
        let refused = |e: GatewayError| match e {
            GatewayError::Refused { rule, detail } => (rule, detail),
            other => panic!("expected a refusal, got {other}"),
        };
        let pick: Vec<Op> = (1..7)
            .map(|c| Op::PickUpTip { channel: c, at: Place::well("TIPS_1", &format!("{}1", (b'A' + c as u8) as char)) })
            .collect();
        w.run_all(&pick).await.unwrap();
        let asp: Vec<Op> =
            (1..7).map(|c| Op::Aspirate { channel: c, from: Place::named("MEDIUM"), volume_ul: 200.0 }).collect();
        w.run_all(&asp).await.unwrap();
        let column = |v: &dyn Fn(usize) -> f64| -> Vec<Op> {
            (1..7)
                .map(|c| Op::Dispense {
                    channel: c,
                    to: Place::well("ASSAY_1", &format!("{}2", (b'A' + c as u8) as char)),
                    volume_ul: v(c),
                })
                .collect()
        };
        let before = t.twin.lock().unwrap().counters.commands;
        let snapshot = t.twin.lock().unwrap().deck.clone();
        // Channel 5 alone asks for more than its tip holds; channel 3 alone for less than the minimum.
        let (rule, detail) = refused(w.run_all(&column(&|c| if c == 4 { 250.0 } else { 100.0 })).await.unwrap_err());
        assert_eq!(rule, Rule::TipEmpty, "{detail}");
        assert!(detail.contains("channel 5"), "{detail}");
        let (rule, _) = refused(w.run_all(&column(&|c| if c == 2 { 0.2 } else { 100.0 })).await.unwrap_err());
        assert_eq!(rule, Rule::BadVolume);
        // A channel with no tip in the command.
        let mut with_bare = column(&|_| 50.0);
        with_bare.push(Op::Dispense { channel: 7, to: Place::well("ASSAY_1", "H2"), volume_ul: 50.0 });
        assert_eq!(refused(w.run_all(&with_bare).await.unwrap_err()).0, Rule::NoTip);
        // Two channels at one well, out of order, or the same channel twice.
        let same_well = vec![
            Op::Dispense { channel: 1, to: Place::well("ASSAY_1", "B2"), volume_ul: 50.0 },
            Op::Dispense { channel: 2, to: Place::well("ASSAY_1", "B2"), volume_ul: 50.0 },
        ];
        assert_eq!(refused(w.run_all(&same_well).await.unwrap_err()).0, Rule::ChannelSpacing);
        let mut reversed = column(&|_| 50.0);
        reversed.reverse();
        assert_eq!(refused(w.run_all(&reversed).await.unwrap_err()).0, Rule::ChannelSpacing);
        let mut mixed = column(&|_| 50.0);
        mixed.push(Op::DropTip { channel: 7, to: Place::named("WASTE") });
        assert_eq!(refused(w.run_all(&mixed).await.unwrap_err()).0, Rule::ChannelSpacing);
        assert_eq!(t.twin.lock().unwrap().counters.commands, before, "nothing was sent");
        assert_eq!(t.twin.lock().unwrap().deck, snapshot, "nothing changed on the twin");
        // The twin checks the spacing itself: two channels 4.5 mm apart are refused on both, and
        // nothing moves.
        use cellos_gateway::liquid::{ChannelAt, ChannelVolume};
        let (x, y) = w.envelope.deck.plates[0].well_position(13);
        let close = [
            ChannelVolume { at: ChannelAt { channel: 1, x_01mm: x, y_01mm: y }, volume_ul: 50.0 },
            ChannelVolume { at: ChannelAt { channel: 2, x_01mm: x, y_01mm: y - 45 }, volume_ul: 50.0 },
        ];
        let e = w.handler().dispense(&close).await.unwrap_err();
        assert!(matches!(e, GatewayError::Instrument(ref i) if (i.code, i.trace) == (27, 54)), "{e}");
        assert_eq!(t.twin.lock().unwrap().deck, snapshot, "the twin moved nothing");
        // The whole column goes.
        w.run_all(&column(&|c| 100.0 + c as f64)).await.unwrap();
        for c in 1..7 {
            assert_eq!(well_volume(&t, &format!("{}2", (b'A' + c as u8) as char)), 100.0 + c as f64);
        }
    });
}

/// The EVO's LiHa takes the same eight-channel plan: tips in a line 9 mm apart move together, one arm
/// move and one `AGT`, `AST` or `PPR` per command; every well holds what was planned.
#[test]
fn the_evo_moves_its_tips_together_for_a_column() {
    on_big_stack(|| async {
        use cellos_gateway::campaign::plan;
        let deck = cellos_gateway::campaign::deck_model(&["U2OS".to_string()]).unwrap();
        let t = TwinServer::start(HostTwin::with_deck(deck.clone(), 3, Timing::INSTANT), None, None, None).unwrap();
        let (tx, rx) = open_serial(&SerialConfig::new(&t.evo), Protocol::Evo).unwrap();
        let mut w = Workcell::new(EvoHandler::new(EvoDriver::new(tx, rx, Duration::from_secs(2))), deck);
        w.initialise().await.unwrap();
        let wells = plan::iteration_wells("ASSAY_1", 0, 11).unwrap();
        let seeding = plan::seeding("CELLS_1", "ASSAY_1", &wells);
        let actions = plan::commands(&seeding, 8, plan::TIP_UL);
        let before = t.twin.lock().unwrap().counters;
        for a in &actions {
            w.run_all(&ops_of(a, 1)).await.unwrap();
        }
        let after = t.twin.lock().unwrap().counters;
        // Pick-up, one aspiration, two columns, drop: five commands, each an arm move and one more.
        assert_eq!(actions.len(), 5);
        assert_eq!(after.commands - before.commands, 10);
        assert_eq!((after.tip_pickups - before.tip_pickups, after.dispenses - before.dispenses), (6, 12));
        assert_eq!(after.errors, before.errors);
        for name in &wells {
            assert_eq!(well_volume(&t, name), 100.0, "{name}");
        }
    });
}
