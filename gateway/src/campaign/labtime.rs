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

/// Adds up a campaign's work on [`Profile::STAR`].
#[derive(Clone, Debug)]
pub struct LabTally {
    profile: Profile,
    robot_ms: u64,
    read_ms: u64,
    moves_ms: u64,
    incubation_h: f64,
    tips: usize,
    commands: usize,
    iterations: usize,
}

impl LabTally {
    /// Nothing done yet.
    pub fn new(_config: &CampaignConfig) -> LabTally {
        LabTally {
            profile: Profile::STAR,
            robot_ms: 0,
            read_ms: 0,
            moves_ms: 0,
            incubation_h: 0.0,
            tips: 0,
            commands: 0,
            iterations: 0,
        }
    }

    /// A liquid-handling command.
    pub fn command(&mut self, a: &Action) {
        self.robot_ms += u64::from(a.lab_ms(&self.profile));
        self.tips += a.tips();
        self.commands += 1;
    }

    /// An incubation of every plate of the moment, side by side.
    pub fn incubation(&mut self, hours: f64) {
        self.incubation_h += hours;
    }

    /// Plates carried in or out of the incubator.
    pub fn plate_moves(&mut self, n: u32) {
        self.moves_ms += u64::from(self.profile.plate_move_ms) * u64::from(n);
    }

    /// `wells` wells read, `readouts` readouts each (an iteration's reading).
    pub fn read(&mut self, wells: u32, readouts: u32) {
        self.read_ms += self.profile.read_ms(wells, readouts);
        self.iterations += 1;
    }

    /// The figures, with `plates` plates.
    pub fn figures(&self, plates: usize) -> LabFigures {
        let h = |ms: u64| ms as f64 / 3.6e6;
        let hours = self.incubation_h + h(self.robot_ms + self.read_ms + self.moves_ms);
        LabFigures {
            calendar_days: hours / 24.0,
            robot_hours: h(self.robot_ms),
            reader_hours: h(self.read_ms),
            incubation_hours: self.incubation_h,
            tips: self.tips,
            plates,
            commands: self.commands,
            iterations: self.iterations,
        }
    }
}

/// The plan's command for a journal step (`None` for an incubation).
pub fn action_of(op: &JournalOp) -> Option<Action> {
    let parts = op.parts();
    let first = parts.first()?;
    Some(match first {
        JournalOp::PickUp { .. } => Action::PickUp(parts.iter().filter_map(JournalOp::channel).collect()),
        JournalOp::Drop { .. } => Action::Drop(parts.iter().filter_map(JournalOp::channel).collect()),
        JournalOp::Aspirate { .. } => Action::Aspirate(
            parts
                .iter()
                .filter_map(|p| match p {
                    JournalOp::Aspirate { channel, from, volume_ul } => Some((*channel, from.clone(), *volume_ul)),
                    _ => None,
                })
                .collect(),
        ),
        JournalOp::Dispense { .. } => Action::Dispense(
            parts
                .iter()
                .filter_map(|p| match p {
                    JournalOp::Dispense { channel, to, volume_ul } => Some((*channel, to.clone(), *volume_ul)),
                    _ => None,
                })
                .collect(),
        ),
        JournalOp::Incubate { .. } | JournalOp::Channels { .. } => return None,
    })
}

/// The lab time a campaign took so far, from its journal (every step that happened, in order) and the
/// wells its committed iterations read: what [`forecast`] predicts, measured.
pub fn measured(db: &rusqlite::Connection, id: &str, config: &CampaignConfig) -> Result<LabFigures, GatewayError> {
    let mut tally = LabTally::new(config);
    let mut steps = cellos_store::journal::entries::<JournalOp>(db, id)?;
    steps.sort_by_key(|e| (e.iteration, e.seq));
    let mut incubating: Option<(i64, f64)> = None;
    for e in steps.iter().filter(|e| e.state.happened()) {
        match &e.op {
            JournalOp::Incubate { hours, .. } => {
                // Plates put in one after another incubate together: the group's hours count once.
                if incubating != Some((e.iteration, *hours)) {
                    tally.incubation(*hours);
                }
                incubating = Some((e.iteration, *hours));
                tally.plate_moves(2);
            }
            other => {
                incubating = None;
                if let Some(a) = action_of(other) {
                    tally.command(&a);
                }
            }
        }
    }
    for it in cellos_store::campaign::iterations(db, id)? {
        tally.read(it.metrics["wells"].as_u64().unwrap_or(0) as u32, 3);
    }
    Ok(tally.figures(config.lines.len() + 1))
}

/// The figures of a campaign's iterations (each a batch per line still searching) planned on
/// `channels` channels: what the same campaign takes with another arm.
pub fn of_iterations(
    config: &CampaignConfig,
    iterations: &[Vec<LineWells>],
    channels: usize,
) -> Result<LabFigures, GatewayError> {
    let mut tally = LabTally::new(config);
    for (i, batches) in iterations.iter().enumerate() {
        let p = IterationPlan::new(i as i64 + 1, batches, config.lines.len())?;
        for g in p.groups() {
            for a in plan::commands(g, channels, TIP_UL) {
                tally.command(&a);
            }
        }
        for _ in 0..p.incubations() {
            tally.incubation(24.0);
            tally.plate_moves(2 * batches.len() as u32);
        }
        tally.read(batches.iter().map(|b| b.wells.len() as u32).sum(), 3);
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
