//! The twin driven in process: exact replies for the happy path and every error class, volumes moved
//! only as commands move them, EVO frames, and reader determinism.

use cellos_core::proto::evo::EvoReply;
use cellos_core::proto::star::cmd::{self, Pipette, TipMove, TipType};
use cellos_core::proto::wire::{Readout, Request, Response};
use cellos_firmware::Twin;
use cellos_firmware::deck::Location;
use cellos_firmware::star::Timing;

type T = Twin<2, 96>;

/// Sends one command and returns its reply (everything due at once with `Timing::INSTANT`).
fn star(t: &mut T, line: &str) -> String {
    t.star.command(line, 0, &mut t.deck, &mut t.counters);
    t.star.next_due(u64::MAX).map(|p| p.text.to_string()).unwrap_or_default()
}

const TIP: TipType =
    TipType { index: 1, filter: true, length_01mm: 519, max_volume_01ul: 3600, size: 2, pickup_method: 0 };
const A1: (u32, u32) = (2983, 1457);
const A2: (u32, u32) = (2983 + 90, 1457);
const MEDIUM: (u32, u32) = (4900, 1000);

fn ready() -> T {
    let mut t = T::new(7, Timing::INSTANT);
    assert_eq!(star(&mut t, "C0DIid0001"), "C0DIid0001er00/00");
    assert_eq!(star(&mut t, &cmd::define_tip(2, &TIP).unwrap()), "C0TTid0002er00/00");
    t
}

fn pick_up(id: u16, mask: u16, xs: &[u32], ys: &[u32]) -> String {
    let m = TipMove {
        mask,
        x_01mm: xs,
        y_01mm: ys,
        tip_type: 1,
        begin_z_01mm: 2244,
        end_z_01mm: 2164,
        traverse_01mm: 2450,
        method: 0,
    };
    cmd::pick_up_tips(id, 8, &m).unwrap().to_string()
}

fn pipette(code: &str, id: u16, at: (u32, u32), volume_ul: f64) -> String {
    let p = Pipette {
        x_01mm: &[at.0],
        y_01mm: &[at.1],
        volume_01ul: &[(volume_ul * 10.0) as u32],
        traverse_01mm: 2450,
        flow_01ul_s: 1000,
    };
    if code == "AS" { cmd::aspirate(id, 8, 1, &p) } else { cmd::dispense(id, 8, 1, &p) }.unwrap().to_string()
}

fn volume(t: &T, plate: usize, index: usize) -> f64 {
    t.deck.plates[plate].wells[index].liquid.volume_ul
}

#[test]
fn pick_up_aspirate_dispense_discard() {
    let mut t = ready();
    assert_eq!(star(&mut t, &pick_up(3, 1, &[1179], &[2418])), "C0TPid0003er00/00");
    assert!(!t.deck.tip_racks[0].has_tip(0));
    assert_eq!(star(&mut t, "C0RTid0004"), "C0RTid0004er00/00rt1 0 0 0 0 0 0 0");
    // 150 µL of medium into A1, then 100 µL of it from A1 into A2.
    assert_eq!(star(&mut t, &pipette("AS", 5, MEDIUM, 150.0)), "C0ASid0005er00/00");
    assert_eq!(star(&mut t, &pipette("DS", 6, A1, 150.0)), "C0DSid0006er00/00");
    assert_eq!(volume(&t, 0, 0), 150.0);
    assert_eq!(star(&mut t, &pipette("AS", 7, A1, 100.0)), "C0ASid0007er00/00");
    assert_eq!(volume(&t, 0, 0), 50.0);
    assert_eq!(t.star.channels[0].unwrap().liquid.volume_ul, 100.0);
    assert_eq!(star(&mut t, &pipette("DS", 8, A2, 100.0)), "C0DSid0008er00/00");
    assert_eq!(volume(&t, 0, 1), 100.0);
    // Discard into the waste.
    let m = TipMove {
        mask: 1,
        x_01mm: &[500],
        y_01mm: &[500],
        tip_type: 1,
        begin_z_01mm: 0,
        end_z_01mm: 0,
        traverse_01mm: 2450,
        method: 0,
    };
    assert_eq!(star(&mut t, &cmd::discard_tips(9, 8, &m).unwrap()), "C0TRid0009er00/00");
    assert_eq!(star(&mut t, "C0RTid0010"), "C0RTid0010er00/00rt0 0 0 0 0 0 0 0");
    let c = t.counters;
    assert_eq!((c.tip_pickups, c.aspirates, c.dispenses, c.tip_drops, c.errors), (1, 2, 2, 1, 0));
    assert_eq!(t.deck.troughs[1].liquid.volume_ul, 50_000.0 - 150.0);
}

#[test]
fn two_channels_like_the_protocol_vector() {
    let mut t = ready();
    let line = pick_up(2, 0b11, &[1179, 1179], &[2418, 2328]);
    assert_eq!(line, "C0TPid0002xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0");
    assert_eq!(star(&mut t, &line), "C0TPid0002er00/00");
    assert!(!t.deck.tip_racks[0].has_tip(0) && !t.deck.tip_racks[0].has_tip(12));
    assert_eq!(star(&mut t, "C0RTid0003"), "C0RTid0003er00/00rt1 1 0 0 0 0 0 0");
}

#[test]
fn error_replies() {
    let mut fresh = T::new(1, Timing::INSTANT);
    assert_eq!(star(&mut fresh, &pick_up(1, 1, &[1179], &[2418])), "C0TPid0001er03/00");
    assert_eq!(star(&mut fresh, "C0QWid0002"), "C0QWid0002er00/00qw0");

    let mut t = ready();
    // Unknown command, missing parameter, out of range, no id, garbage after the code.
    assert_eq!(star(&mut t, "C0XXid0011"), "C0XXid0011er01/30");
    assert_eq!(star(&mut t, "P1OQid0012"), "P1OQid0012er01/30");
    assert_eq!(star(&mut t, "C0ASid0013tm1&xp01000&yp1000&"), "C0ASid0013er01/31");
    assert_eq!(star(&mut t, "C0TTid0014tt00tf1tl0519tv00000tg2tu0"), "C0TTid0014er01/32");
    assert_eq!(star(&mut t, "C0TPid0015xp01179&yp2418&tm1&tt99tp2244tz2164th2450td0"), "C0TPid0015er01/32");
    assert_eq!(star(&mut t, "C0RF"), "C0RFid0000er01/35");
    assert_eq!(star(&mut t, "C0RFid0016X"), "C0RFid0016er01/31");

    // No tip on the channel: 08/75.
    assert_eq!(star(&mut t, &pipette("AS", 20, MEDIUM, 10.0)), "C0ASid0020er99/00 P108/75");
    assert_eq!(star(&mut t, &pipette("DS", 21, A1, 10.0)), "C0DSid0021er99/00 P108/75");
    // Position not reachable: 27/54.
    assert_eq!(star(&mut t, &pick_up(22, 1, &[9000], &[9000])), "C0TPid0022er99/00 P127/54");
    // Pick up, then again: tip already fitted, 07/76.
    assert_eq!(star(&mut t, &pick_up(23, 1, &[1179], &[2418])), "C0TPid0023er00/00");
    assert_eq!(star(&mut t, &pick_up(24, 1, &[1179 + 90], &[2418])), "C0TPid0024er99/00 P107/76");
    // Channel 2 at the spot channel 1 emptied: no tip there, 08/75.
    assert_eq!(star(&mut t, &pick_up(25, 0b10, &[0, 1179], &[0, 2418])), "C0TPid0025er99/00 P208/75");
    // Too little liquid: 06/71 (A1 is empty).
    assert_eq!(star(&mut t, &pipette("AS", 26, A1, 10.0)), "C0ASid0026er99/00 P106/71");
    // Beyond the tip's 360 µL: 15/53.
    assert_eq!(star(&mut t, &pipette("AS", 27, MEDIUM, 370.0)), "C0ASid0027er99/00 P115/53");
    // Dispensing more than the tip holds: 15/32; beyond a well's 300 µL: 15/53.
    assert_eq!(star(&mut t, &pipette("DS", 28, A1, 5.0)), "C0DSid0028er99/00 P115/32");
    assert_eq!(star(&mut t, &pipette("AS", 29, MEDIUM, 350.0)), "C0ASid0029er00/00");
    assert_eq!(star(&mut t, &pipette("DS", 30, A1, 350.0)), "C0DSid0030er99/00 P115/53");
    // Errors changed nothing.
    assert_eq!(volume(&t, 0, 0), 0.0);
    assert_eq!(t.star.channels[0].unwrap().liquid.volume_ul, 350.0);
    assert_eq!(t.counters.aspirates, 1);
}

#[test]
fn replies_complete_out_of_order() {
    let mut t = T::new(1, Timing::DEFAULT);
    t.star.command("C0DIid0001", 0, &mut t.deck, &mut t.counters);
    t.star.command("C0RFid0002", 1, &mut t.deck, &mut t.counters);
    t.star.command("C0QWid0003", 2, &mut t.deck, &mut t.counters);
    assert_eq!(t.star.next_due(2).unwrap().text, "C0RFid0002er00/00rf1.0.0 CELLOS TWIN");
    assert_eq!(t.star.next_due(2).unwrap().text, "C0QWid0003er00/00qw1");
    assert!(t.star.next_due(100).is_none());
    assert_eq!(t.star.next_due_ms(), Some(u64::from(Timing::DEFAULT.initialise_ms)));
    assert_eq!(t.star.next_due(1000).unwrap().text, "C0DIid0001er00/00");
    // Movements queue behind each other: two initialisations end at 200 and 400 ms.
    t.star.command("C0DIid0004", 1000, &mut t.deck, &mut t.counters);
    t.star.command("C0DIid0005", 1000, &mut t.deck, &mut t.counters);
    assert!(t.star.next_due(1199).is_none());
    assert_eq!(t.star.next_due(1200).unwrap().text, "C0DIid0004er00/00");
    assert!(t.star.next_due(1399).is_none());
    assert_eq!(t.star.next_due(1400).unwrap().text, "C0DIid0005er00/00");
}

fn evo(t: &mut T, frame: &[u8]) -> Vec<u8> {
    t.evo.frame(frame, &mut t.deck, &mut t.counters).to_vec()
}

#[test]
fn evo_liha() {
    let mut t = T::new(1, Timing::INSTANT);
    assert_eq!(evo(&mut t, b"\x02C5PAA45,1031,90\x00"), b"\x02C5\x87\x00", "not initialised: 7");
    assert_eq!(evo(&mut t, b"\x02C5PIA\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5RNT1\x00"), b"\x02C5\x808\x00");
    assert_eq!(evo(&mut t, b"\x02W1PIB\x00"), b"\x02W1\x85\x00");
    assert_eq!(evo(&mut t, b"\x02C5XYZ\x00"), b"\x02C5\x82\x00");
    assert_eq!(evo(&mut t, b"\x02C5PAA1,x\x00"), b"\x02C5\x82\x00", "unparsable frame: invalid command");
    assert_eq!(evo(&mut t, b"\x02C5PAA99999,1031,90\x00"), b"\x02C5\x83\x00");
    assert_eq!(evo(&mut t, b"\x02C5SHZ2100,2100,2100,2100,2100,2100,2100,2100\x00"), b"\x02C5\x80\x00");
    // Tips 1 and 2 over the rack's A1 and B1 (spacing 9 mm), pick up, and again: 27.
    assert_eq!(evo(&mut t, b"\x02C5PPR100\x00"), b"\x02C5\x9a\x00", "no tip mounted: 26");
    assert_eq!(evo(&mut t, b"\x02C5PAA1179,2418,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5AGT3,1000,100,0\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5AGT1,1000,100,0\x00"), b"\x02C5\x9b\x00");
    assert_eq!(evo(&mut t, b"\x02C5RPX0\x00"), b"\x02C5\x801179\x00");
    // Over the medium trough: aspirate 150 µL with tip 1; over A1: dispense it; then an empty well: 9.
    assert_eq!(evo(&mut t, b"\x02C5PAA4900,1000,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5PPR1500\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5PPR2200\x00"), b"\x02C5\x8f\x00", "beyond the tip (150 + 220 > 360 µL): 15");
    assert_eq!(evo(&mut t, b"\x02C5PAA2983,1457,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5PPR-1500\x00"), b"\x02C5\x80\x00");
    assert_eq!(volume(&t, 0, 0), 150.0);
    assert_eq!(evo(&mut t, b"\x02C5PPR2000\x00"), b"\x02C5\x8b\x00", "not enough liquid: 11");
    assert_eq!(evo(&mut t, b"\x02C5PAA2983,1367,90\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5MDT1\x00"), b"\x02C5\x89\x00", "no liquid detected: 9");
    assert_eq!(evo(&mut t, b"\x02C5PPR100\x00"), b"\x02C5\x89\x00");
    assert_eq!(evo(&mut t, b"\x02C5AST3,0\x00"), b"\x02C5\x80\x00");
    assert_eq!(evo(&mut t, b"\x02C5AST1,0\x00"), b"\x02C5\x9a\x00");
    let r = EvoReply::parse(b"\x02C5\x9b\x00").unwrap();
    assert_eq!(r.error_meaning(), "tip mounted");
    assert_eq!(t.counters.aspirates, 1);
    assert_eq!(t.counters.dispenses, 1);
}

fn read(t: &mut T, well: u16, readout: Readout) -> f64 {
    match t.request(Request::Read { plate: 0, well, readout }, 0) {
        Response::Value(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn reader_simulates_what_was_dispensed() {
    let mut t = ready();
    assert_eq!(
        t.request(Request::Read { plate: 0, well: 1, readout: Readout::Viability }, 0),
        Response::Refused(cellos_core::proto::wire::Refusal::EmptyWell)
    );
    // 100 µL of cells (10,000 U2OS) into wells 14 and 15 (B2, B3), 24 h, then 5 µL of 1 mM tBHP into 15.
    assert_eq!(star(&mut t, &pick_up(3, 1, &[1179], &[2418])), "C0TPid0003er00/00");
    let cells = (4600u32, 1000u32);
    for (id, well) in [(4u16, 13usize), (6, 14)] {
        let (x, y) = (2983 + 90 * (well % 12) as u32, 1457 - 90 * (well / 12) as u32);
        assert_eq!(star(&mut t, &pipette("AS", id, cells, 100.0)), format!("C0ASid{id:04}er00/00"));
        assert_eq!(star(&mut t, &pipette("DS", id + 1, (x, y), 100.0)), format!("C0DSid{:04}er00/00", id + 1));
    }
    assert_eq!(t.request(Request::Incubate { plate: 0, hours: 24.0 }, 0), Response::Done);
    let tbhp = (5200u32, 1000u32);
    assert_eq!(star(&mut t, &pipette("AS", 8, tbhp, 5.0)), "C0ASid0008er00/00");
    assert_eq!(star(&mut t, &pipette("DS", 9, (2983 + 180, 1457 - 90), 5.0)), "C0DSid0009er00/00");
    assert_eq!(t.request(Request::Incubate { plate: 0, hours: 24.0 }, 0), Response::Done);
    let Response::Well(w) = t.request(Request::WellState { plate: 0, well: 15 }, 0) else { panic!() };
    assert!((w.compound_um - 5000.0 / 105.0).abs() < 1e-9);
    assert_eq!((w.volume_ul, w.cells, w.incubated_h), (105.0, 10_000.0, 48.0));
    // Treated well: lower viability, higher CellROX, than the untreated one; re-reading is identical.
    let (v_ctl, v_trt) = (read(&mut t, 14, Readout::Viability), read(&mut t, 15, Readout::Viability));
    assert!(v_ctl > 0.9 && v_trt < v_ctl, "{v_ctl} {v_trt}");
    let (c_ctl, c_trt) = (read(&mut t, 14, Readout::CellRox), read(&mut t, 15, Readout::CellRox));
    assert!(c_trt > c_ctl * 2.0, "{c_ctl} {c_trt}");
    assert_eq!(read(&mut t, 15, Readout::CellRox).to_bits(), c_trt.to_bits());
    let count = read(&mut t, 14, Readout::CellCount);
    assert!(count > 15_000.0 && count < 40_000.0, "{count}");
    // Same seed, same history: same values; another seed: others.
    let mut other = t.clone();
    other.seed = 8;
    assert_ne!(read(&mut other, 15, Readout::CellRox), c_trt);
    other.seed = 7;
    assert_eq!(read(&mut other, 15, Readout::CellRox).to_bits(), c_trt.to_bits());
    // Reading advances nothing: the well's liquid is unchanged.
    assert_eq!(t.deck.liquid(Location::Well { plate: 0, index: 14 }).unwrap().volume_ul, 105.0);
}

/// With a time scale an incubation takes (scaled) real time: `Incubate` answers at once, the plate's
/// clock runs at the scale, the plate cannot be read or incubated again meanwhile, and it leaves the
/// incubator with the clock an instant incubation gives, to the bit; the readings are then identical.
#[test]
fn a_real_time_incubation_runs_on_the_ports_clock() {
    use cellos_core::proto::wire::Refusal;
    let seeded = || {
        let mut t = ready();
        assert_eq!(star(&mut t, &pick_up(3, 1, &[1179], &[2418])), "C0TPid0003er00/00");
        assert_eq!(star(&mut t, &pipette("AS", 4, (4600, 1000), 100.0)), "C0ASid0004er00/00");
        assert_eq!(star(&mut t, &pipette("DS", 5, (2983 + 90, 1457 - 90), 100.0)), "C0DSid0005er00/00");
        t
    };
    let clock = |t: &mut T, now: u64| match t.request(Request::WellState { plate: 0, well: 14 }, now) {
        Response::Well(w) => w.incubated_h,
        other => panic!("{other:?}"),
    };
    let mut instant = seeded();
    assert_eq!(instant.request(Request::Incubate { plate: 0, hours: 24.0 }, 0), Response::Done);
    let mut real = seeded();
    // 3600× real time: 24 h take 24 s.
    real.time_scale = 3600.0;
    assert_eq!(real.request(Request::Incubate { plate: 0, hours: 24.0 }, 1_000), Response::Done);
    assert_eq!(clock(&mut real, 1_000), 0.0);
    assert_eq!(clock(&mut real, 13_000), 12.0, "half way after 12 s");
    assert_eq!(
        real.request(Request::Read { plate: 0, well: 14, readout: Readout::Viability }, 13_000),
        Response::Refused(Refusal::InIncubator)
    );
    assert_eq!(
        real.request(Request::Incubate { plate: 0, hours: 1.0 }, 13_000),
        Response::Refused(Refusal::InIncubator)
    );
    assert_eq!(clock(&mut real, 24_999), 23.999);
    assert_eq!(clock(&mut real, 25_000), 24.0);
    assert_eq!(clock(&mut real, 90_000), 24.0, "out of the incubator: the clock stops");
    for readout in [Readout::Viability, Readout::CellRox, Readout::Segmentation] {
        let r = Request::Read { plate: 0, well: 14, readout };
        assert_eq!(real.request(r, 90_000), instant.request(r, 0), "{readout:?}");
    }
    assert_eq!(real.request(Request::Incubate { plate: 9, hours: 1.0 }, 0), Response::Refused(Refusal::NoSuchPlate));
    assert_eq!(real.request(Request::Incubate { plate: 0, hours: -1.0 }, 0), Response::Refused(Refusal::BadValue));
}

/// A twin started without a command line is set up over the reader line: seed, instance and the
/// campaign deck; once it has worked, it refuses.
#[test]
fn setup_gives_the_campaign_deck_seed_and_instance_once() {
    use cellos_core::deck::campaign::{Lines, deck_file};
    use cellos_core::proto::wire::{Identity, Refusal};
    let lines = Lines::by_name(&["U2OS", "HepG2", "A549"]).unwrap();
    let mut t: Twin<4, 96> = Twin::empty(0, Timing::INSTANT);
    assert_eq!(t.request(Request::Hello, 0), Response::Hello { version: 2, plates: 0 });
    assert_eq!(t.request(Request::Setup { seed: 9, instance: 41, lines }, 0), Response::Done);
    assert_eq!(t.request(Request::Identify, 0), Response::Identity(Identity { instance: 41, seed: 9 }));
    assert_eq!(t.star.serial_number, 41);
    let expected: cellos_firmware::deck::Deck<4, 96> = deck_file(&["U2OS", "HepG2", "A549"]).unwrap().build().unwrap();
    assert_eq!(t.deck, expected);
    // Again before any work: allowed (a lost answer is sent again).
    assert_eq!(t.request(Request::Setup { seed: 9, instance: 41, lines }, 0), Response::Done);
    // A plate's clock moved: refused, and nothing changes.
    assert_eq!(t.request(Request::Incubate { plate: 0, hours: 1.0 }, 0), Response::Done);
    let other = Lines::by_name(&["A549"]).unwrap();
    assert_eq!(
        t.request(Request::Setup { seed: 3, instance: 5, lines: other }, 0),
        Response::Refused(Refusal::Started)
    );
    assert_eq!(t.request(Request::Identify, 0), Response::Identity(Identity { instance: 41, seed: 9 }));
    assert_eq!(t.deck.plates.len(), 4);
    // A STAR command counts as work too.
    let mut t: Twin<4, 96> = Twin::empty(0, Timing::INSTANT);
    t.star.command("C0RFid0001", 0, &mut t.deck, &mut t.counters);
    assert_eq!(t.request(Request::Setup { seed: 1, instance: 1, lines }, 0), Response::Refused(Refusal::Started));
    // A twin whose deck cannot hold the campaign's plates refuses the setup.
    let mut small: Twin<1, 96> = Twin::empty(0, Timing::INSTANT);
    assert_eq!(small.request(Request::Setup { seed: 1, instance: 1, lines }, 0), Response::Refused(Refusal::BadValue));
}
