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
