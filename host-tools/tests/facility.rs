//! Facility planning on the legacy stress fixture.

use cellos_host::facility::{PlanInput, csv, plan};

fn fixture() -> PlanInput {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/facility_stress.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

#[test]
fn the_stress_fixture_loses_its_bsc_overloads_by_shifting() {
    let input = fixture();
    let p = plan(&input).unwrap();
    // As requested: ten banks thawed within five days overload the cabinet on the thaw days.
    assert!(p.violations_before.iter().any(|v| v.resource == "bsc"), "{:?}", p.violations_before);
    assert!(p.peaks_before[1] > 2.0);
    // After shifting: every BSC overload is gone and nothing else broke; each request moved within
    // its allowance and none started early.
    assert!(p.violations_after.is_empty(), "{:?}", p.violations_after);
    assert!(p.remaining.is_empty(), "{:?}", p.remaining);
    assert!(p.peaks_after[1] <= 2.0 && p.peaks_after[0] <= 20.0 && p.peaks_after[2] <= 8.0, "{:?}", p.peaks_after);
    for (r, s) in input.requests.iter().zip(&p.start_days) {
        assert!(*s >= r.start_day && *s <= r.start_day + r.max_shift_days);
    }
    // The days' work is the same, only moved: total BSC and staff hours are unchanged.
    let total = |d: &[cellos_host::facility::DayLoad]| {
        d.iter().map(|x| (x.bsc_h, x.staff_h)).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let (b0, s0) = total(&p.before);
    let (b1, s1) = total(&p.after);
    assert!((b0 - b1).abs() < 1e-9 && (s0 - s1).abs() < 1e-9, "{b0} {b1} {s0} {s1}");
    // Every working day's operations were scheduled inside the cabinet's hours and the working day.
    for d in &p.after {
        if d.operations > 0 {
            assert!(d.scheduled_min > 0 && d.scheduled_min <= 8 * 60, "day {}: {}", d.day, d.scheduled_min);
        }
    }
    let table = csv(&p);
    assert_eq!(table.lines().count(), 61);
    assert!(table.starts_with("day,flasks_before,bsc_h_before"));
}

#[test]
fn overloads_that_no_shift_can_clear_are_explained() {
    let mut input = fixture();
    for r in &mut input.requests {
        r.max_shift_days = 0;
    }
    let p = plan(&input).unwrap();
    assert_eq!(p.start_days, input.requests.iter().map(|r| r.start_day).collect::<Vec<_>>());
    assert_eq!(p.violations_after, p.violations_before);
    assert!(!p.remaining.is_empty());
    assert!(
        p.remaining.iter().all(|r| r.contains("bsc") || r.contains("staff") || r.contains("incubator")),
        "{:?}",
        p.remaining
    );
    // A cabinet too small for one thaw day: the request alone is named.
    input.facility.bsc_hours_per_day = 0.5;
    let p = plan(&input).unwrap();
    assert!(p.remaining.iter().any(|r| r.contains("alone needs")), "{:?}", p.remaining);
    // Unknown lines and kinds are refused by name.
    input.requests[0].line = "Vero".into();
    assert!(plan(&input).unwrap_err().to_string().contains("Vero"));
}

#[test]
fn a_saved_plan_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = cellos_host::store::Store::open(dir.path()).unwrap();
    let input = fixture();
    let p = plan(&input).unwrap();
    let id = cellos_host::facility::save(&store, "stress", &input, &p).unwrap();
    let id2 = cellos_host::facility::save(&store, "again", &input, &p).unwrap();
    assert_eq!((id, id2), (1, 2));
    let back = cellos_host::facility::saved(&store, id).unwrap();
    assert_eq!((back.name.as_str(), &back.input, &back.plan), ("stress", &input, &p));
    let list = cellos_host::facility::saved_list(&store).unwrap();
    assert_eq!(list.iter().map(|x| (x.0, x.1.as_str())).collect::<Vec<_>>(), [(2, "again"), (1, "stress")]);
    assert!(cellos_host::facility::saved(&store, 3).unwrap_err().to_string().contains("no saved facility plan 3"));
}

#[test]
fn a_plan_depends_on_its_input_alone_even_under_load() {
    // The days are scheduled with a budget of search steps, not of time: four plans computed at once,
    // on a machine kept busy by each other, equal the one computed alone.
    let input = fixture();
    let alone = plan(&input).unwrap();
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| plan(&input).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in together {
        assert_eq!(p, alone);
    }
    assert!(alone.after.iter().map(|d| d.scheduled_min).sum::<u32>() > 0);
}
