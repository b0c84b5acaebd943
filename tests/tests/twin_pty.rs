//! The twin served on real ptys, driven by small clients: the liquid path, every error class, faults,
//! and out-of-order completion.

use std::time::Duration;

use cellos_core::proto::star::StarMessage;
use cellos_core::proto::star::cmd::{self, Pipette, TipMove, TipType};
use cellos_core::proto::wire::{Faults, Readout, Request, Response};
use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_tests::{EvoLine, StarLine, WireLine};

fn server(timing: Timing) -> TwinServer {
    TwinServer::start(HostTwin::new(5, timing), None, None, None).expect("twin")
}

const TIP: TipType =
    TipType { index: 1, filter: true, length_01mm: 519, max_volume_01ul: 3600, size: 2, pickup_method: 0 };

fn pick_up(id: u16, x: u32, y: u32) -> String {
    let m = TipMove {
        mask: 1,
        x_01mm: &[x],
        y_01mm: &[y],
        tip_type: 1,
        begin_z_01mm: 2244,
        end_z_01mm: 2164,
        traverse_01mm: 2450,
        method: 0,
    };
    cmd::pick_up_tips(id, 8, &m).unwrap().to_string()
}

fn discard(id: u16, x: u32, y: u32) -> String {
    let m = TipMove {
        mask: 1,
        x_01mm: &[x],
        y_01mm: &[y],
        tip_type: 1,
        begin_z_01mm: 0,
        end_z_01mm: 0,
        traverse_01mm: 2450,
        method: 0,
    };
    cmd::discard_tips(id, 8, &m).unwrap().to_string()
}

fn pipette(aspirate: bool, id: u16, x: u32, y: u32, volume_ul: u32) -> String {
    let p =
        Pipette { x_01mm: &[x], y_01mm: &[y], volume_01ul: &[volume_ul * 10], traverse_01mm: 2450, flow_01ul_s: 1000 };
    if aspirate { cmd::aspirate(id, 8, 1, &p) } else { cmd::dispense(id, 8, 1, &p) }.unwrap().to_string()
}

fn well_volume(reader: &mut WireLine, well: u16) -> f64 {
    match reader.ask(&Request::WellState { plate: 0, well }) {
        Response::Well(w) => w.volume_ul,
        other => panic!("{other:?}"),
    }
}

const MEDIUM: (u32, u32) = (4900, 1000);

#[test]
fn liquid_path_over_ptys() {
    let s = server(Timing::DEFAULT);
    let mut star = StarLine::open(&s.star);
    let mut reader = WireLine::open(&s.reader);
    // A version-1 request (no id) is still answered, in version 1; the twin speaks up to VERSION.
    assert_eq!(reader.ask(&Request::Hello), Response::Hello { version: cellos_core::proto::wire::VERSION, plates: 2 });
    assert_eq!(star.ask("C0DIid0001"), "C0DIid0001er00/00");
    assert_eq!(star.ask(&cmd::define_tip(2, &TIP).unwrap()), "C0TTid0002er00/00");
    assert_eq!(star.ask(&pick_up(3, 1179, 2418)), "C0TPid0003er00/00");
    // Fill A1 with 150 µL, then take 100 µL from it into A2.
    assert_eq!(star.ask(&pipette(true, 4, MEDIUM.0, MEDIUM.1, 150)), "C0ASid0004er00/00");
    assert_eq!(star.ask(&pipette(false, 5, 2983, 1457, 150)), "C0DSid0005er00/00");
    assert_eq!(well_volume(&mut reader, 1), 150.0);
    assert_eq!(star.ask(&pipette(true, 6, 2983, 1457, 100)), "C0ASid0006er00/00");
    assert_eq!(well_volume(&mut reader, 1), 50.0);
    assert_eq!(star.ask(&pipette(false, 7, 3073, 1457, 100)), "C0DSid0007er00/00");
    assert_eq!(well_volume(&mut reader, 2), 100.0);
    assert_eq!(star.ask(&discard(8, 500, 500)), "C0TRid0008er00/00");
    assert_eq!(star.ask("C0RTid0009"), "C0RTid0009er00/00rt0 0 0 0 0 0 0 0");
    let Response::Counters(c) = reader.ask(&Request::Counters) else { panic!() };
    assert_eq!((c.tip_pickups, c.aspirates, c.dispenses, c.tip_drops, c.errors), (1, 2, 2, 1, 0));
    // The shared state agrees.
    assert_eq!(s.twin.lock().unwrap().deck.plates[0].wells[0].liquid.volume_ul, 50.0);
}

#[test]
fn every_error_class_over_ptys() {
    let s = server(Timing::INSTANT);
    let mut star = StarLine::open(&s.star);
    assert_eq!(star.ask(&pick_up(1, 1179, 2418)), "C0TPid0001er03/00", "not initialised");
    assert_eq!(star.ask("C0DIid0002"), "C0DIid0002er00/00");
    assert_eq!(star.ask(&cmd::define_tip(3, &TIP).unwrap()), "C0TTid0003er00/00");
    assert_eq!(star.ask("C0ZZid0004"), "C0ZZid0004er01/30", "unknown command");
    assert_eq!(star.ask("C0ASid0005tm1&"), "C0ASid0005er01/31", "missing parameter");
    assert_eq!(star.ask("C0TTid0006tt00tf1tl0519tv00000tg2tu0"), "C0TTid0006er01/32", "out of range");
    assert_eq!(star.ask(&pipette(true, 7, MEDIUM.0, MEDIUM.1, 10)), "C0ASid0007er99/00 P108/75", "no tip");
    assert_eq!(star.ask(&pick_up(8, 9000, 9000)), "C0TPid0008er99/00 P127/54", "not reachable");
    assert_eq!(star.ask(&pick_up(9, 1179, 2418)), "C0TPid0009er00/00");
    assert_eq!(star.ask(&pick_up(10, 1269, 2418)), "C0TPid0010er99/00 P107/76", "tip already fitted");
    assert_eq!(star.ask(&pipette(true, 11, 2983, 1457, 10)), "C0ASid0011er99/00 P106/71", "not enough liquid");
    assert_eq!(
        star.ask(&pipette(true, 12, MEDIUM.0, MEDIUM.1, 370)),
        "C0ASid0012er99/00 P115/53",
        "beyond tip capacity"
    );
    let err = StarMessage::parse("C0ASid0012er99/00 P115/53").unwrap();
    let e = err.errors().next().unwrap();
    assert_eq!((e.channel(), e.trace_meaning()), (Some(1), "maximum volume in tip reached"));

    let mut evo = EvoLine::open(&s.evo);
    assert_eq!(evo.ask(b"\x02C5PPR100\x00"), b"\x02C5\x87\x00", "not initialised");
    assert_eq!(evo.ask(b"\x02C5PIA\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo.ask(b"\x02C5RNT1\x00"), b"\x02C5\x808\x00");
    assert_eq!(evo.ask(b"\x02W1PIB\x00"), b"\x02W1\x85\x00", "module absent");
    assert_eq!(evo.ask(b"\x02C5QQQ\x00"), b"\x02C5\x82\x00", "invalid command");
    assert_eq!(evo.ask(b"\x02C5PAA-1,0,90\x00"), b"\x02C5\x83\x00", "invalid operand");
    assert_eq!(evo.ask(b"\x02C5PPR100\x00"), b"\x02C5\x9a\x00", "tip not mounted");
    // Tip 1 at the second rack's A1 (the STAR took the first rack's).
    assert_eq!(evo.ask(b"\x02C5PAA1179,1418,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo.ask(b"\x02C5AGT1,1000,100,0\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo.ask(b"\x02C5AGT1,1000,100,0\x00"), b"\x02C5\x9b\x00", "tip mounted");
    assert_eq!(evo.ask(b"\x02C5PAA2983,1457,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo.ask(b"\x02C5PPR100\x00"), b"\x02C5\x89\x00", "no liquid");
}

#[test]
fn out_of_order_completion_over_ptys() {
    let s = server(Timing::DEFAULT);
    let mut star = StarLine::open(&s.star);
    star.send("C0DIid0001");
    star.send("C0RFid0002");
    star.send("C0QWid0003");
    let got: Vec<String> = (0..3).map(|_| star.recv(Duration::from_secs(2)).expect("reply")).collect();
    assert_eq!(got, ["C0RFid0002er00/00rf1.0.0 CELLOS TWIN", "C0QWid0003er00/00qw1", "C0DIid0001er00/00"]);
}

#[test]
fn faults_over_ptys() {
    let s = server(Timing::INSTANT);
    let mut star = StarLine::open(&s.star);
    let mut control = WireLine::open(&s.reader);
    let mut evo = EvoLine::open(&s.evo);
    // Drop one reply: nothing comes; the next command is answered.
    assert_eq!(control.ask(&Request::SetFaults(Faults { drop_next: 1, ..Faults::default() })), Response::Done);
    star.send("C0RFid0001");
    assert_eq!(star.recv(Duration::from_millis(200)), None);
    assert_eq!(star.ask("C0QWid0002"), "C0QWid0002er00/00qw0");
    // Corrupt: the reply no longer parses. Duplicate: it comes twice.
    control.ask(&Request::SetFaults(Faults { corrupt_next: 1, duplicate_next: 1, ..Faults::default() }));
    let bad = star.ask("C0RFid0003");
    assert!(StarMessage::parse(&bad).is_err(), "{bad}");
    assert_eq!(star.ask("C0QWid0004"), "C0QWid0004er00/00qw0");
    assert_eq!(star.recv(Duration::from_secs(1)).as_deref(), Some("C0QWid0004er00/00qw0"));
    // On the EVO: a corrupted status byte.
    control.ask(&Request::SetFaults(Faults { corrupt_next: 1, ..Faults::default() }));
    let reply = evo.ask(b"\x02C5RNT1\x00");
    assert!(cellos_core::proto::evo::EvoReply::parse(&reply).is_err());
    // Stall: no answer for 300 ms after the next command, then it arrives.
    control.ask(&Request::SetFaults(Faults { stall_ms: 300, ..Faults::default() }));
    star.send("C0RFid0005");
    assert_eq!(star.recv(Duration::from_millis(150)), None);
    assert_eq!(star.recv(Duration::from_secs(2)).as_deref(), Some("C0RFid0005er00/00rf1.0.0 CELLOS TWIN"));
    // Reboot forgets replies in flight.
    control.ask(&Request::SetFaults(Faults { delay_ms: 500, ..Faults::default() }));
    star.send("C0RFid0006");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(control.ask(&Request::Reboot), Response::Done);
    assert_eq!(star.recv(Duration::from_millis(800)), None);
    let Response::Counters(c) = control.ask(&Request::Counters) else { panic!() };
    assert!(c.faults_applied >= 4, "{c:?}");
    // Reading an empty well is refused, not crashed on.
    assert!(matches!(
        control.ask(&Request::Read { plate: 0, well: 1, readout: Readout::Viability }),
        Response::Refused(_)
    ));
}
