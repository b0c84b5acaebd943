//! A campaign's lab time: the calendar, the robot's hours, the tips and plates it takes, by one
//! accounting ([`LabTally`]) over the same profile the twin keeps (`cellos_core::labtime`).
//!
//! The calendar counts what a bench does one thing after another: the robot's commands, the plate
//! moves in and out of the incubator, the readings, and the incubations, where the plates of one
//! iteration incubate together (their hours count once). [`forecast`] gives the figures of a campaign
//! before it runs, from its plan alone (`campaign plan`); a run measures the same figures from its
//! journal at the end (`campaign run`).

use cellos_core::labtime::Profile;
use cellos_core::search::{Step, TbhpAssay};
use cellos_schedule::{Budget, Need, Objective, Problem, Resource, Task, solve_within};
use serde::Serialize;

use super::plan::{self, Action, IterationPlan, LineWells, Rounds, TIP_UL};
use super::{CampaignConfig, JournalOp};
use crate::GatewayError;

/// The figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LabFigures {
    /// Calendar time, days.
    pub calendar_days: f64,
    /// Robot time (liquid handling), hours.
    pub robot_hours: f64,
    /// Time at the plate reader, hours.
    pub reader_hours: f64,
    /// Incubation, hours (plates side by side counted once).
    pub incubation_hours: f64,
    /// Tips used.
    pub tips: usize,
    /// Plates used (one per line and the dilution plate).
    pub plates: usize,
    /// Liquid-handling commands.
    pub commands: usize,
    /// Iterations.
    pub iterations: usize,
}

impl std::fmt::Display for LabFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} days ({:.0} h incubating, {:.2} h robot, {:.2} h reader), {} iterations, {} tips, {} plates, {} commands",
            self.calendar_days,
            self.incubation_hours,
            self.robot_hours,
            self.reader_hours,
            self.iterations,
            self.tips,
            self.plates,
            self.commands
        )
    }
}

/// A campaign's work on [`Profile::STAR`], as a timeline in the order the runner does it: the robot
/// (liquid handling and plate moves) does one thing at a time, the reader too, and plates incubate side
/// by side. A command waits for the plates it touches to be out of the incubator; a reading waits for
/// its plate; an iteration's treatment waits for the readings the searches need.
#[derive(Clone, Debug)]
pub struct LabTally {
    profile: Profile,
    robot_ms: u64,
    read_ms: u64,
    moves_ms: u64,
    tips: usize,
    commands: usize,
    iterations: usize,
    /// When the robot and the reader are next free, ms from the start.
    robot_at: u64,
    reader_at: u64,
    /// Plates in the incubator, and when each comes out.
    incubating: Vec<(String, u64)>,
    /// Every incubation, `[start, end)` ms.
    intervals: Vec<(u64, u64)>,
}

impl Default for LabTally {
    fn default() -> Self {
        Self::new()
    }
}

impl LabTally {
    /// Nothing done yet.
    pub fn new() -> LabTally {
        LabTally {
            profile: Profile::STAR,
            robot_ms: 0,
            read_ms: 0,
            moves_ms: 0,
            tips: 0,
            commands: 0,
            iterations: 0,
            robot_at: 0,
            reader_at: 0,
            incubating: Vec::new(),
            intervals: Vec::new(),
        }
    }

    /// A liquid-handling command (after the plates it touches are out of the incubator).
    pub fn command(&mut self, a: &Action) {
        for plate in plates_of(a) {
            self.take_out(&plate);
        }
        let ms = u64::from(a.lab_ms(&self.profile));
        self.robot_ms += ms;
        self.robot_at += ms;
        self.tips += a.tips();
        self.commands += 1;
    }

    /// A plate goes into the incubator for `hours`.
    pub fn incubate(&mut self, plate: &str, hours: f64) {
        self.take_out(plate);
        self.move_plate();
        let end = self.robot_at + (hours * 3.6e6) as u64;
        self.intervals.push((self.robot_at, end));
        self.incubating.push((plate.to_string(), end));
    }

    /// `wells` wells of `plate` read, `readouts` readouts each.
    pub fn read(&mut self, plate: &str, wells: u32, readouts: u32) {
        self.take_out(plate);
        let ms = self.profile.read_ms(wells, readouts);
        self.read_ms += ms;
        self.reader_at = self.reader_at.max(self.robot_at) + ms;
    }

    /// Every plate out of the incubator (before a treatment: its intermediates are made fresh).
    pub fn await_all(&mut self) {
        while let Some((plate, _)) = self.incubating.first().cloned() {
            self.take_out(&plate);
        }
    }

    /// Plates in the incubator now.
    pub fn incubating(&self) -> usize {
        self.incubating.len()
    }

    /// An iteration's readings are over: the searches propose, and the robot goes on with what they ask.
    pub fn readings_done(&mut self) {
        self.robot_at = self.robot_at.max(self.reader_at);
        self.iterations += 1;
    }

    fn take_out(&mut self, plate: &str) {
        if let Some(k) = self.incubating.iter().position(|(p, _)| p == plate) {
            let (_, end) = self.incubating.remove(k);
            self.robot_at = self.robot_at.max(end);
            self.move_plate();
        }
    }

    fn move_plate(&mut self) {
        let ms = u64::from(self.profile.plate_move_ms);
        self.moves_ms += ms;
        self.robot_at += ms;
    }

    /// The figures, with `plates` plates.
    pub fn figures(&self, plates: usize) -> LabFigures {
        let h = |ms: u64| ms as f64 / 3.6e6;
        let end = self.incubating.iter().map(|p| p.1).chain([self.robot_at, self.reader_at]).max().unwrap_or(0);
        // Time with at least one plate incubating (the union of the incubations).
        let mut spans = self.intervals.clone();
        spans.sort_unstable();
        let (mut covered, mut upto) = (0u64, 0u64);
        for (a, b) in spans {
            let a = a.max(upto);
            if b > a {
                covered += b - a;
                upto = b;
            }
        }
        LabFigures {
            calendar_days: h(end) / 24.0,
            robot_hours: h(self.robot_ms),
            reader_hours: h(self.read_ms),
            incubation_hours: h(covered),
            tips: self.tips,
            plates,
            commands: self.commands,
            iterations: self.iterations,
        }
    }
}

/// The plates a command touches (`ASSAY_1` of `ASSAY_1:B2`).
fn plates_of(a: &Action) -> Vec<String> {
    let places: Vec<&str> = match a {
        Action::Aspirate(v) | Action::Dispense(v) => v.iter().map(|m| m.1.as_str()).collect(),
        Action::PickUp(_) | Action::Drop(_) => Vec::new(),
    };
    let mut plates: Vec<String> = places.iter().filter_map(|p| p.split_once(':')).map(|(l, _)| l.to_string()).collect();
    plates.dedup();
    plates
}

/// The plan's command for a journal step (`None` for an incubation).
pub fn action_of(op: &JournalOp) -> Option<Action> {
    let parts = op.parts();
    let channels = || parts.iter().filter_map(JournalOp::channel).collect();
    let moves = || {
        parts
            .iter()
            .filter_map(|p| match p {
                JournalOp::Aspirate { channel, from: place, volume_ul }
                | JournalOp::Dispense { channel, to: place, volume_ul } => Some((*channel, place.clone(), *volume_ul)),
                _ => None,
            })
            .collect()
    };
    Some(match parts.first()? {
        JournalOp::PickUp { .. } => Action::PickUp(channels()),
        JournalOp::Drop { .. } => Action::Drop(channels()),
        JournalOp::Aspirate { .. } => Action::Aspirate(moves()),
        JournalOp::Dispense { .. } => Action::Dispense(moves()),
        JournalOp::Incubate { .. } | JournalOp::Channels { .. } => return None,
    })
}

/// The lab time a campaign took so far, from its journal (every step that happened, in order) and the
/// wells its committed iterations read (after the iteration's last step, in its lines' order): what
/// [`forecast`] predicts, measured.
pub fn measured(db: &rusqlite::Connection, id: &str, config: &CampaignConfig) -> Result<LabFigures, GatewayError> {
    let mut tally = LabTally::new();
    let mut steps = cellos_store::journal::entries::<JournalOp>(db, id)?;
    steps.sort_by_key(|e| (e.iteration, e.seq));
    let committed = cellos_store::campaign::iterations(db, id)?;
    let read = |tally: &mut LabTally, iteration: i64| {
        let Some(it) = committed.iter().find(|c| c.number == iteration) else { return };
        for l in it.results["lines"].as_array().into_iter().flatten() {
            let Some(li) = config.lines.iter().position(|x| l["line"] == serde_json::json!(x)) else { continue };
            let wells = l["observations"].as_array().map_or(0, Vec::len) + 1;
            tally.read(&plan::assay_plate(li), wells as u32, 3);
        }
        tally.readings_done();
    };
    // The plates of an iteration: once all are in the incubator and a transfer follows, that is the first
    // iteration's treatment, which waits for them all (the runner does).
    let plates_in = |iteration: i64| {
        committed
            .iter()
            .find(|c| c.number == iteration)
            .and_then(|c| c.results["lines"].as_array().map(Vec::len))
            .unwrap_or(config.lines.len())
    };
    let mut current = None;
    for e in steps.iter().filter(|e| e.state.happened()) {
        if current.is_some_and(|c| c != e.iteration) {
            read(&mut tally, current.unwrap_or(0));
        }
        current = Some(e.iteration);
        if !matches!(e.op, JournalOp::Incubate { .. })
            && tally.incubating() > 0
            && tally.incubating() == plates_in(e.iteration)
        {
            tally.await_all();
        }
        match &e.op {
            JournalOp::Incubate { plate, hours } => {
                let name = config.lines.get(usize::from(*plate)).map(|_| plan::assay_plate(usize::from(*plate)));
                tally.incubate(&name.unwrap_or_else(|| format!("plate {plate}")), *hours);
            }
            other => {
                if let Some(a) = action_of(other) {
                    tally.command(&a);
                }
            }
        }
    }
    if let Some(c) = current {
        read(&mut tally, c);
    }
    Ok(tally.figures(config.lines.len() + 1))
}

/// The figures of a campaign's iterations (each a batch per line still searching) planned on
/// `channels` channels, in the runner's order: what the same campaign takes with another arm.
pub fn of_iterations(
    config: &CampaignConfig,
    iterations: &[Vec<LineWells>],
    channels: usize,
) -> Result<LabFigures, GatewayError> {
    let mut tally = LabTally::new();
    let run = |tally: &mut LabTally, g: &[plan::Transfer]| {
        for a in plan::commands(g, channels, TIP_UL) {
            tally.command(&a);
        }
    };
    for (i, batches) in iterations.iter().enumerate() {
        let p = IterationPlan::new(i as i64 + 1, batches, config.lines.len())?;
        for (g, b) in p.seed_now.iter().zip(batches) {
            run(&mut tally, g);
            tally.incubate(&plan::assay_plate(b.li), 24.0);
        }
        tally.await_all();
        for g in &p.treatment {
            run(&mut tally, g);
        }
        for (g, b) in p.seed_next.iter().zip(batches) {
            run(&mut tally, g);
            tally.incubate(&plan::assay_plate(b.li), 24.0);
        }
        for b in batches {
            tally.read(&plan::assay_plate(b.li), b.wells.len() as u32, 3);
        }
        tally.readings_done();
    }
    Ok(tally.figures(config.lines.len() + 1))
}

/// What a campaign will take, from its plan alone: each line's search runs on the model's noise-free
/// readouts (the built-in parameters of the line) to choose its doses, and goes on for as many
/// iterations as its budget allows even where a real run may stop earlier, so the figures are the most
/// the campaign takes. Nothing is sent anywhere.
pub fn forecast(config: &CampaignConfig, channels: usize) -> Result<(LabFigures, Vec<Vec<LineWells>>), GatewayError> {
    config.check()?;
    let n = config.lines.len();
    let mut searches = Vec::with_capacity(n);
    let mut assays = Vec::with_capacity(n);
    for line in &config.lines {
        searches.push(config.search()?);
        assays.push(TbhpAssay::builtin(line).map_err(|e| GatewayError::Search(format!("{line}: {e}")))?);
    }
    // Each line's last doses: a search that ends early is planned on, repeating them.
    let mut last: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut rounds = Rounds::new(n);
    let mut doses = [0.0; super::config::MAX_BATCH];
    let mut iterations = Vec::new();
    let max_rounds = searches.first().map_or(0, |s| s.config().max_rounds(s.strategy(), doses.len()));
    let mut wells_taken = vec![0usize; n];
    for _ in 0..max_rounds {
        let mut batches = Vec::new();
        for li in 0..n {
            let budget = usize::from(searches[li].config().budget_wells);
            let want = match searches[li].next(&mut doses).map_err(|e| GatewayError::Search(e.to_string()))? {
                Step::Batch(k) => {
                    last[li] = doses[..k].to_vec();
                    last[li].clone()
                }
                Step::Done(_) => {
                    let size = usize::from(searches[li].config().batch_wells);
                    let k = size.min(budget.saturating_sub(wells_taken[li]));
                    (0..k).map(|i| last[li][i % last[li].len().max(1)]).collect()
                }
            };
            if want.is_empty() {
                continue;
            }
            wells_taken[li] += want.len();
            let next = match searches[li].upcoming(doses.len()) {
                0 => usize::from(searches[li].config().batch_wells).min(budget.saturating_sub(wells_taken[li])),
                k => k,
            };
            let observations: Vec<_> = want.iter().map(|&d| assays[li].mean(d)).collect();
            // A finished search takes no more observations.
            let _ = searches[li].observe(&observations);
            batches.push(rounds.line_wells(li, &want, next)?);
        }
        if batches.is_empty() {
            break;
        }
        for b in &batches {
            rounds.advance(b);
        }
        iterations.push(batches);
    }
    Ok((of_iterations(config, &iterations, channels)?, iterations))
}

/// Seconds per unit of a campaign's scheduling problem.
pub const UNIT_S: f64 = 10.0;

fn units(ms: u64) -> u32 {
    (ms as f64 / 1000.0 / UNIT_S).ceil() as u32
}

/// A campaign's iterations as a scheduling problem in [`UNIT_S`] units, on `channels` channels: per
/// iteration, on the robot, each plate's first seeding (the first iteration), the treatment (after every
/// plate is back and every reading its searches need) and each plate's next seeding; per plate its move
/// into the incubator, its 24 h (an incubator of four places), its move out, and its reading (the
/// reader). Durations round up to whole units.
pub fn scheduling_problem(
    config: &CampaignConfig,
    iterations: &[Vec<LineWells>],
    channels: usize,
) -> Result<Problem, GatewayError> {
    let profile = cellos_core::labtime::Profile::STAR;
    let run_ms = |g: &[plan::Transfer]| -> u64 {
        plan::commands(g, channels, TIP_UL).iter().map(|a| u64::from(a.lab_ms(&profile))).sum()
    };
    let robot = || vec![Need::One("robot".into())];
    let mut tasks: Vec<Task> = Vec::new();
    let task = |id: String, units: u32, resources: Vec<Need>, predecessors: Vec<String>| Task {
        id,
        duration_min: units.max(1),
        resources,
        predecessors,
        release_min: 0,
        due_min: None,
        weight: 1,
    };
    let move_units = units(u64::from(profile.plate_move_ms));
    let day = units(24 * 3_600_000);
    let mut reads_before: Vec<String> = Vec::new();
    for (i, batches) in iterations.iter().enumerate() {
        let p = IterationPlan::new(i as i64 + 1, batches, config.lines.len())?;
        let mut outs = Vec::new();
        // The first seeding: each plate's run, then it incubates.
        for (g, b) in p.seed_now.iter().zip(batches) {
            let id = format!("i{i}-seed-{}", b.li);
            tasks.push(task(id.clone(), units(run_ms(g)), robot(), vec![]));
            let (inn, inc, out) =
                (format!("i{i}-in0-{}", b.li), format!("i{i}-inc0-{}", b.li), format!("i{i}-out0-{}", b.li));
            tasks.push(task(inn.clone(), move_units, robot(), vec![id]));
            tasks.push(task(inc.clone(), day, vec![Need::One("incubator".into())], vec![inn]));
            tasks.push(task(out.clone(), move_units, robot(), vec![inc]));
            outs.push(out);
        }
        // The treatment, on the robot, after every plate is back and every reading its searches need.
        let treat = format!("i{i}-treat");
        let treat_ms: u64 = p.treatment.iter().map(|g| run_ms(g)).sum();
        tasks.push(task(treat.clone(), units(treat_ms), robot(), outs.iter().chain(&reads_before).cloned().collect()));
        reads_before.clear();
        for (g, b) in p.seed_next.iter().zip(batches) {
            let seed = format!("i{i}-next-{}", b.li);
            tasks.push(task(seed.clone(), units(run_ms(g)), robot(), vec![treat.clone()]));
            let (inn, inc, out, read) = (
                format!("i{i}-in-{}", b.li),
                format!("i{i}-inc-{}", b.li),
                format!("i{i}-out-{}", b.li),
                format!("i{i}-read-{}", b.li),
            );
            tasks.push(task(inn.clone(), move_units, robot(), vec![seed]));
            tasks.push(task(inc.clone(), day, vec![Need::One("incubator".into())], vec![inn]));
            tasks.push(task(out.clone(), move_units, robot(), vec![inc]));
            let read_ms = profile.read_ms(b.wells.len() as u32, 3);
            tasks.push(task(read.clone(), units(read_ms), vec![Need::One("reader".into())], vec![out]));
            reads_before.push(read);
        }
    }
    let resource = |id: &str, capacity| Resource { id: id.into(), capacity, windows: vec![] };
    // A horizon with room: the runner's order at one unit per task more than its timeline.
    let horizon_ms = (of_iterations(config, iterations, channels)?.calendar_days * 86_400_000.0) as u64;
    let horizon = units(horizon_ms) + 2 * tasks.len() as u32 + units(3_600_000);
    Ok(Problem {
        resources: vec![resource("robot", 1), resource("incubator", 4), resource("reader", 1)],
        tasks,
        horizon_min: horizon,
        objective: Objective::Makespan,
    })
}

/// The least calendar of a campaign's iterations the constraint scheduler finds (days), and whether it
/// proved it optimal: the order of the robot's, the incubator's and the reader's work is its to choose.
pub fn scheduled_calendar(
    config: &CampaignConfig,
    iterations: &[Vec<LineWells>],
    channels: usize,
) -> Result<(f64, bool), GatewayError> {
    let p = scheduling_problem(config, iterations, channels)?;
    let budget = Budget { time: std::time::Duration::from_secs(20), steps: Some(200_000) };
    let s = solve_within(&p, budget)
        .map_err(|e| GatewayError::Config { path: "campaign plan".into(), message: e.to_string() })?;
    Ok((f64::from(s.makespan_min) * UNIT_S / 86_400.0, s.optimal))
}
