//! The runner's order of a multi-line campaign against the constraint scheduler: the demo campaign's
//! work (robot runs of commands, plate moves, incubations side by side, readings) as a scheduling
//! problem on the robot, the incubator and the reader, solved for the least makespan. The runner's
//! order (each plate into the incubator right after its own last transfer, plates read in the order
//! they went in, the treatment after every reading its searches need) is as short as the solver's
//! best, to the unit of the problem.

use std::time::Duration;

use cellos_gateway::campaign::CampaignConfig;
use cellos_gateway::campaign::labtime::{UNIT_S, forecast, of_iterations, scheduling_problem};
use cellos_host::schedule::{Budget, Problem, Task, check, solve_within};

/// The makespan of the runner's order, in the problem's units: the robot takes its tasks one after
/// another in the runner's sequence (each plate's seeding then its move in; the moves out in the order
/// the plates went in; the treatment), each when its predecessors are done; the incubator holds every
/// plate; the reader reads in the order the plates come out.
fn runners_order(p: &Problem) -> u32 {
    let find = |id: &str| p.tasks.iter().find(|t| t.id == id).unwrap_or_else(|| panic!("{id}"));
    let iterations = p.tasks.iter().filter(|t| t.id.ends_with("-treat")).count();
    let lines = p.tasks.iter().filter(|t| t.id.starts_with("i0-next-")).count();
    let mut robot_seq: Vec<String> = Vec::new();
    let mut reads: Vec<String> = Vec::new();
    for i in 0..iterations {
        if i == 0 {
            for l in 0..lines {
                robot_seq.extend([format!("i0-seed-{l}"), format!("i0-in0-{l}")]);
            }
            robot_seq.extend((0..lines).map(|l| format!("i0-out0-{l}")));
        }
        robot_seq.push(format!("i{i}-treat"));
        for l in 0..lines {
            robot_seq.extend([format!("i{i}-next-{l}"), format!("i{i}-in-{l}")]);
        }
        robot_seq.extend((0..lines).map(|l| format!("i{i}-out-{l}")));
        reads.extend((0..lines).map(|l| format!("i{i}-read-{l}")));
    }
    let mut end: std::collections::HashMap<String, u32> = Default::default();
    let ready = |t: &Task, end: &std::collections::HashMap<String, u32>| {
        t.predecessors
            .iter()
            .map(|q| end.get(q).copied())
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().max().unwrap_or(0))
    };
    let (mut robot, mut reader) = (0u32, 0u32);
    let (mut r, mut k) = (0, 0);
    // Advance whichever of the robot and the reader can go next, incubations as soon as they may.
    while r < robot_seq.len() || k < reads.len() {
        let mut moved = false;
        for t in p.tasks.iter().filter(|t| t.id.contains("-inc")) {
            if !end.contains_key(&t.id)
                && let Some(at) = ready(t, &end)
            {
                end.insert(t.id.clone(), at + t.duration_min);
                moved = true;
            }
        }
        if r < robot_seq.len() {
            let t = find(&robot_seq[r]);
            if let Some(at) = ready(t, &end) {
                robot = robot.max(at) + t.duration_min;
                end.insert(t.id.clone(), robot);
                r += 1;
                moved = true;
            }
        }
        if k < reads.len() {
            let t = find(&reads[k]);
            if let Some(at) = ready(t, &end) {
                reader = reader.max(at) + t.duration_min;
                end.insert(t.id.clone(), reader);
                k += 1;
                moved = true;
            }
        }
        assert!(moved, "the runner's order is stuck at {:?} / {:?}", robot_seq.get(r), reads.get(k));
    }
    end.values().copied().max().unwrap_or(0)
}

#[test]
fn the_runners_order_is_as_short_as_the_schedulers() {
    let config: CampaignConfig = toml::from_str("lines = [\"U2OS\", \"HepG2\", \"A549\"]\nseed = 7\n").unwrap();
    let (figures, iterations) = forecast(&config, 8).unwrap();
    assert_eq!(iterations.len(), 3);
    let p = scheduling_problem(&config, &iterations, 8).unwrap();
    assert!(p.tasks.len() > 40, "{} tasks", p.tasks.len());
    let s = solve_within(&p, Budget { time: Duration::from_secs(60), steps: Some(200_000) }).unwrap();
    check(&p, &s).unwrap();
    // The runner's order in the problem's units is the solver's proven optimum.
    let ours = runners_order(&p);
    assert!(s.optimal, "{s:?}");
    assert_eq!(s.makespan_min, ours, "the solver's best against the runner's order, in {UNIT_S} s units");
    // And the lab-time figures agree with the problem, to its rounding.
    let ours_s = figures.calendar_days * 86_400.0;
    let solver_s = f64::from(s.makespan_min) * UNIT_S;
    assert!((solver_s - ours_s).abs() <= UNIT_S * p.tasks.len() as f64, "{solver_s} s against {ours_s} s");
    // The same campaign on one channel only moves the robot's part.
    let one = of_iterations(&config, &iterations, 1).unwrap();
    assert!(one.calendar_days > figures.calendar_days);
    eprintln!(
        "{} tasks: solver {:.0} s ({}), runner's order {ours_s:.0} s",
        p.tasks.len(),
        solver_s,
        if s.optimal { "optimal" } else { "best found" }
    );
}
