//! Autonomous dose-finding campaigns: the closed loop on the gateway, persisted step by step, resumable
//! after a crash at any point.
//!
//! Per cell line, the core's [`DoseSearch`](cellos_core::search::DoseSearch) proposes doses; an
//! iteration takes each line's batch at once, every line on its own assay plate:
//!
//! 1. **Layout.** Wells are taken in order from the plate's inner 60 (rows B–G, columns 2–11, column by
//!    column); the edge ring stays empty (documented rule: edge wells grow differently). Every
//!    iteration has one control well (no compound) per line before its dosed wells.
//! 2. **Seeding.** 100 µL of the line's cell suspension (100 cells/µL) per well, a day ahead: the first
//!    iteration seeds its own wells and incubates 24 h; every iteration seeds the next one's wells
//!    during its own treatment.
//! 3. **Treatment.** Each well is brought to 200 µL: medium, then compound. The compound comes from the
//!    1 mM stock, or from a 100 µM or 10 µM intermediate prepared on the dilution plate when the direct
//!    volume would fall under the 2 µL precision limit; the intermediate is made fresh in the iteration
//!    that needs it. 24 h in the incubator, all plates together.
//! 4. **Reading.** Viability, CellROX and segmentation of every well, through the reader link. The dose
//!    fed back is what the transfers put in the well (the deck model's concentration, which is what the
//!    twin tracks too).
//!
//! Transfers go on up to eight channels at once ([`plan::commands`]: column by column from a trough,
//! with multi-dispense), and [`labtime`] counts what the campaign takes: the same figures before it runs
//! (`campaign plan`) and measured after.
//!
//! **Persistence.** The journal (`campaigns.db`) records every liquid operation and incubation before it
//! is sent and its outcome after. An iteration then commits its measurements (one transaction in
//! `experimental_results.db`, keyed by campaign and iteration, so repeating it replaces rather than
//! duplicates) and its iteration row (one transaction in `campaigns.db`). SQLite cannot make one
//! transaction across two files in WAL mode; a crash between the two commits is repaired on resume.
//!
//! **Resume.** The deck model is rebuilt from the journal's completed entries. The interrupted iteration
//! is planned again (the search replays its committed observations, so it proposes the same doses) and
//! its steps run in order: completed ones are skipped; one left pending is reconciled with the instrument
//! (tips from `C0RT`, well and trough volumes and the plate clock from the twin's control link) and
//! counted as done if it happened, sent only if it certainly did not. The twin's noise depends only on
//! (seed, plate, well, readout, time), so a resumed campaign reads what an uninterrupted one reads.

//!
//! The module's parts: [`config`] (the settings, checked once), [`plan`] (pure: deck, wells, treatment,
//! multi-channel commands, titration), [`labtime`] (the calendar and the robot's hours), [`journal`]
//! (what the campaign keeps, through `cellos-store`), [`runner`] (the loop that carries the plan out).
//! Progress goes out as [`Event`]s on a channel.

pub mod config;
pub mod journal;
pub mod labtime;
pub mod operator;
pub mod plan;
pub mod runner;

use std::path::Path;

use cellos_store::{Db, campaign as records, journal as entries, outputs};
use serde::Serialize;
use serde_json::{Value, json};

pub use config::{CampaignConfig, Equipment, INNER_WELLS, MAX_DOSE_UM, plate_wells_needed};
pub use journal::{
    CampaignLock, InstrumentId, JournalOp, Stored, TwinRecord, check_identity, claim, record_twin, recorded_identity,
    set_status, stored,
};
pub use plan::{PlanError, deck_model, deck_path, deck_toml};
pub use runner::{Control, Runner};

use crate::GatewayError;

pub use cellos_core::deck::campaign::{CELLS_PER_UL, STOCK_UM, VIRUS_TITER_TU_PER_UL};
/// Cell suspension per well, µL.
pub const SEED_UL: f64 = 100.0;
/// Final well volume after treatment, µL.
pub const FINAL_UL: f64 = 200.0;
/// Smallest volume pipetted, µL.
pub const MIN_UL: f64 = 0.5;
/// Compound volumes are pipetted in 0.1 µL steps; under this volume a more dilute source is used when
/// there is one, so the rounding costs at most 2.5 % of the dose. (With 0.5 µL it would cost up to 10 %.)
/// An intermediate (200 µL) then serves at most 8 wells × 20 µL and the 20 µL of the next one.
pub const PRECISE_UL: f64 = 2.0;
/// The titration's virus volumes, µL (the legacy series).
pub const TITRATION_UL: [f64; 8] = cellos_core::titer::DEFAULT_VOLUMES_UL;
/// The BFP-positive fraction the titration sizes the virus for.
pub const TARGET_BFP: f64 = 0.30;
/// Journal iterations of the titrations: this plus the line's number (dose-finding iterations count from 1).
const TITRATION_ITERATION: i64 = 1000;
/// The most dilute intermediate, µM (the stock diluted 10× at most three times).
pub const LOWEST_UM: f64 = 1.0;

/// What the runner reports at the end of a line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineResult {
    /// Cell line.
    pub line: String,
    /// Chosen dose, µM.
    pub dose_um: f64,
    /// 90 % interval, µM.
    pub lo_um: f64,
    /// 90 % interval, µM.
    pub hi_um: f64,
    /// Search wells used.
    pub wells: u16,
    /// Search status.
    pub status: String,
    /// The model's noise-free optimum, µM.
    pub optimum_um: f64,
}

/// What a running campaign reports, as it happens.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A fresh twin was brought to the journal's state.
    Replayed {
        /// Operations carried out again.
        operations: usize,
    },
    /// A bank of a line was made.
    Banked {
        /// The line.
        line: String,
        /// `MCB` or `WCB`.
        bank: String,
        /// Vials frozen.
        vials: u16,
        /// Days it took.
        days: u16,
        /// Why it ended.
        reason: String,
    },
    /// An iteration was committed.
    Iteration {
        /// The line.
        line: String,
        /// Its number.
        iteration: i64,
        /// Wells (with the control).
        wells: usize,
        /// Wall time, s.
        seconds: f64,
        /// The doses, µM.
        doses_um: Vec<f64>,
    },
    /// An iteration's plan: the journal steps it will take.
    Planned {
        /// The iteration.
        iteration: i64,
        /// Its steps.
        steps: usize,
    },
    /// A journal step was done (confirmed by the instrument).
    Step {
        /// The iteration.
        iteration: i64,
        /// The step, from 1.
        seq: i64,
        /// What it did.
        op: String,
        /// The tips after it.
        tips: crate::liquid::Tips,
    },
    /// A line's dose was chosen.
    LineDone(LineResult),
    /// The campaign waits at a safe point, as the operator asked.
    Paused {
        /// The iteration it waits in.
        iteration: i64,
    },
    /// It goes on after a pause.
    Resumed {
        /// The iteration.
        iteration: i64,
    },
    /// It ended at a safe point, as the operator asked.
    Stopped {
        /// The iteration it ended in.
        iteration: i64,
    },
    /// A plate went into the incubator; it comes out at `until`.
    Incubating {
        /// The iteration.
        iteration: i64,
        /// The plate.
        plate: String,
        /// Lab hours.
        hours: f64,
        /// When it ends in real time (UTC).
        until: String,
    },
    /// The operator is asked to do something (`confirm`) or to upload a reader export (`upload`); the
    /// campaign waits for the answer.
    Prompt {
        /// Answer it with `POST /runs/{id}/prompts/{prompt_id}` or `campaign answer`.
        prompt_id: String,
        /// `confirm` or `upload`.
        kind: String,
        /// What to do.
        text: String,
        /// What an answer must hold (an upload's plate, wells and readouts).
        spec: Value,
    },
    /// An instrument line went away; the campaign waits for it to come back.
    Disconnected {
        /// What was seen.
        error: String,
    },
    /// The operator answered; the campaign goes on.
    Answered {
        /// The prompt.
        prompt_id: String,
    },
    /// The campaign is over: the lab time it took, measured from its journal, and the robot time the
    /// same iterations take planned on one channel.
    LabTime {
        /// The figures.
        measured: labtime::LabFigures,
        /// Robot hours of the same iterations on one channel.
        single_channel_robot_hours: f64,
    },
    /// A line's lentivirus was titrated.
    Titrated {
        /// The line.
        line: String,
        /// TU/µL.
        titer_tu_per_ul: f64,
        /// The largest BFP fraction.
        max_fraction: f64,
        /// µL for the target fraction.
        volume_ul: f64,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Replayed { operations } => {
                write!(f, "the new twin was brought to the journal's state ({operations} operations replayed)")
            }
            Event::Banked { line, bank, vials, days, reason } => {
                write!(f, "{line} {bank}: {vials} vials in {days} days ({reason})")
            }
            Event::Iteration { line, iteration, wells, seconds, doses_um } => {
                let doses: Vec<String> = doses_um.iter().map(|d| format!("{d:.1}")).collect();
                write!(
                    f,
                    "{line} iteration {iteration}: {wells} wells, {seconds:.2} s, doses µM [{}]",
                    doses.join(", ")
                )
            }
            Event::LineDone(r) => {
                write!(
                    f,
                    "{}: {:.2} µM (90 % {:.2}–{:.2}), {} wells, {}",
                    r.line, r.dose_um, r.lo_um, r.hi_um, r.wells, r.status
                )
            }
            Event::Planned { iteration, steps } => write!(f, "iteration {iteration}: {steps} steps planned"),
            Event::Step { iteration, seq, op, .. } => write!(f, "iteration {iteration} step {seq}: {op}"),
            Event::Paused { iteration } => write!(f, "paused in iteration {iteration}, at a safe point"),
            Event::Resumed { iteration } => write!(f, "resumed in iteration {iteration}"),
            Event::Stopped { iteration } => write!(f, "stopped in iteration {iteration}, at a safe point"),
            Event::Incubating { plate, hours, until, .. } => {
                write!(f, "{plate} incubating for {hours} h, until {until}")
            }
            Event::Prompt { prompt_id, kind, text, .. } => {
                let how = if kind == "upload" { " --file EXPORT" } else { "" };
                write!(f, "operator: {text} (answer: cellos-gateway campaign answer CAMPAIGN {prompt_id}{how})")
            }
            Event::Answered { prompt_id } => write!(f, "operator answered {prompt_id}"),
            Event::Disconnected { error } => write!(f, "instrument line lost: {error}"),
            Event::LabTime { measured, single_channel_robot_hours } => {
                write!(f, "lab time: {measured}; on one channel the robot would take {single_channel_robot_hours:.2} h")
            }
            Event::Titrated { line, titer_tu_per_ul, max_fraction, volume_ul } => write!(
                f,
                "{line} titration: {titer_tu_per_ul:.0} TU/µL, A {max_fraction:.2}, {volume_ul:.2} µL for {:.0} % BFP",
                TARGET_BFP * 100.0
            ),
        }
    }
}

/// A campaign's progress, read from the databases (another process may be running it).
pub fn status(data_dir: &Path, id: &str) -> Result<Value, GatewayError> {
    // Read-only: works on a read-only data directory and migrates nothing.
    let conn = cellos_store::db::open_read_only(data_dir, Db::Campaigns)?;
    let c = records::get(&conn, id)?
        .ok_or_else(|| GatewayError::Config { path: data_dir.into(), message: format!("no campaign `{id}`") })?;
    let iterations = records::iteration_count(&conn, id)?;
    let journal = entries::counts(&conn, id)?;
    let mut outputs = outputs::list(&conn, id)?;
    outputs.sort_by(|a, b| a.line.cmp(&b.line));
    let outputs: Vec<Value> =
        outputs.into_iter().map(|o| json!({ "line": o.line, "key": o.key, "value": o.value })).collect();
    let config: Option<CampaignConfig> =
        c.config.as_ref().and_then(|v| serde_json::from_value(v["config"].clone()).ok());
    let lab_time = config.and_then(|cfg| labtime::measured(&conn, id, &cfg).ok());
    Ok(json!({ "campaign_id": id, "status": c.status.as_str(), "failure": c.failure, "iterations": iterations,
               "journal_entries": journal.entries, "journal_not_done": journal.not_done,
               "outputs": outputs, "summary": c.results_summary, "lab_time": lab_time }))
}
