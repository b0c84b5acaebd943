//! Autonomous dose-finding campaigns: the closed loop on the gateway, persisted step by step, resumable
//! after a crash at any point.
//!
//! Per cell line, the core's [`DoseSearch`] proposes doses; each batch becomes one iteration on that
//! line's assay plate:
//!
//! 1. **Layout.** Wells are taken in order from the plate's inner 60 (rows B–G, columns 2–11); the edge
//!    ring stays empty (documented rule: edge wells grow differently). Every iteration has one control
//!    well (no compound) before its dosed wells.
//! 2. **Seeding.** 100 µL of the line's cell suspension (100 cells/µL) per well; 24 h in the incubator.
//! 3. **Treatment.** Each well is brought to 200 µL: medium, then compound. The compound comes from the
//!    1 mM stock, or from a 100 µM or 10 µM intermediate prepared on the dilution plate when the direct
//!    volume would fall under the 0.5 µL minimum; the intermediate is made fresh in the iteration that
//!    needs it. 24 h in the incubator.
//! 4. **Reading.** Viability, CellROX and segmentation of every well, through the reader link. The dose
//!    fed back is what the transfers put in the well (the deck model's concentration, which is what the
//!    twin tracks too).
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

use std::path::{Path, PathBuf};
use std::time::Instant;

use cellos_core::proto::wire::{Readout, Request, Response};
use cellos_core::search::{DoseSearch, Observation, SearchConfig, Step, Strategy, TbhpAssay};
use cellos_firmware::deck::Location;
use cellos_host::store::{Db, Store};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::GatewayError;
use crate::liquid::{DeckModel, LiquidHandler, Op, Place, Workcell};
use crate::transport::{SerialRx, SerialTx};
use crate::wire::WireClient;

/// Cells per µL in the suspension troughs.
pub const CELLS_PER_UL: f64 = 100.0;
/// Cell suspension per well, µL.
pub const SEED_UL: f64 = 100.0;
/// Final well volume after treatment, µL.
pub const FINAL_UL: f64 = 200.0;
/// Stock concentration, µM.
pub const STOCK_UM: f64 = 1000.0;
/// Smallest volume pipetted, µL.
pub const MIN_UL: f64 = 0.5;
/// Compound volumes are pipetted in 0.1 µL steps; under this volume a more dilute source is used when
/// there is one, so the rounding costs at most 2.5 % of the dose. (With 0.5 µL it would cost up to 10 %.)
/// An intermediate (200 µL) then serves at most 8 wells × 20 µL and the 20 µL of the next one.
pub const PRECISE_UL: f64 = 2.0;
/// The titer of the lentivirus trough on the campaign deck (what the twin knows), TU/µL.
pub const VIRUS_TITER_TU_PER_UL: f64 = 5000.0;
/// The titration's virus volumes, µL (the legacy series).
pub const TITRATION_UL: [f64; 8] = cellos_core::titer::DEFAULT_VOLUMES_UL;
/// The BFP-positive fraction the titration sizes the virus for.
pub const TARGET_BFP: f64 = 0.30;
/// Journal iterations of the titrations: this plus the line's number (dose-finding iterations count from 1).
const TITRATION_ITERATION: i64 = 1000;
/// The most dilute intermediate, µM (the stock diluted 10× at most three times).
pub const LOWEST_UM: f64 = 1.0;

/// A campaign's settings (TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Campaign id (generated when absent).
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Cell lines, at most 3 (each gets a plate and a cell trough).
    pub lines: Vec<String>,
    /// Compound (the built-in tBHP readout sets are used).
    #[serde(default = "tbhp")]
    pub compound: String,
    /// Dose range, µM.
    #[serde(default = "range")]
    pub dose_range_um: [f64; 2],
    /// `adaptive` or `grid`.
    #[serde(default = "adaptive")]
    pub strategy: String,
    /// Wells per line for the search.
    #[serde(default = "budget")]
    pub budget_wells: u16,
    /// Twin noise seed.
    #[serde(default = "one")]
    pub seed: u64,
    /// STAR serial device (absent: the twin).
    #[serde(default)]
    pub star_port: Option<String>,
    /// Reader serial device (absent: the twin).
    #[serde(default)]
    pub reader_port: Option<String>,
    /// The POSH stages per line: MCB → WCB → tBHP dose finding → lentivirus titration.
    #[serde(default)]
    pub posh: bool,
}

fn tbhp() -> String {
    "tbhp".into()
}
fn range() -> [f64; 2] {
    [0.0, 500.0]
}
fn adaptive() -> String {
    "adaptive".into()
}
fn budget() -> u16 {
    48
}
fn one() -> u64 {
    1
}

impl CampaignConfig {
    /// The demo's settings: U2OS, HepG2 and A549, adaptive, 48 wells each.
    pub fn demo() -> CampaignConfig {
        toml::from_str("lines = [\"U2OS\", \"HepG2\", \"A549\"]").unwrap_or_else(|_| unreachable!("a valid literal"))
    }

    /// Refuses settings the runner cannot carry out, with the reason.
    pub fn check(&self) -> Result<(), GatewayError> {
        let bad = |m: String| GatewayError::Config { path: "campaign".into(), message: m };
        if self.lines.is_empty() || self.lines.len() > 3 {
            return Err(bad("give 1 to 3 cell lines".into()));
        }
        for l in &self.lines {
            TbhpAssay::builtin(l)
                .map_err(|e| bad(format!("cell line {l}: {e} (lines with a tBHP set: U2OS, HepG2, A549)")))?;
        }
        if !self.compound.eq_ignore_ascii_case("tbhp") {
            return Err(bad("only tBHP campaigns are modelled".into()));
        }
        if !matches!(self.strategy.as_str(), "adaptive" | "grid") {
            return Err(bad("strategy is adaptive or grid".into()));
        }
        let [lo, hi] = self.dose_range_um;
        let range = |why: &str| bad(format!("dose_range_um = [{lo}, {hi}]: {why}"));
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(range("both ends must be numbers"));
        }
        if lo < 0.0 {
            return Err(range("a dose cannot be negative"));
        }
        if hi <= lo {
            return Err(range("the upper end must be above the lower end"));
        }
        if hi > MAX_DOSE_UM {
            return Err(range(&format!(
                "at most {MAX_DOSE_UM} µM ({} µL of the {STOCK_UM} µM stock in a {FINAL_UL} µL well)",
                FINAL_UL - SEED_UL
            )));
        }
        let least = MIN_UL * LOWEST_UM / FINAL_UL;
        if lo > 0.0 && lo < least {
            return Err(range(&format!(
                "the least dose the deck can make is {least} µM ({MIN_UL} µL of the {LOWEST_UM} µM intermediate)"
            )));
        }
        if hi / SCOUT_SPAN < least {
            return Err(range(&format!(
                "the search scouts from a fiftieth of the upper end, which must be at least {least} µM: give an upper end of at least {} µM",
                least * SCOUT_SPAN
            )));
        }
        if self.budget_wells == 0 {
            return Err(bad("budget_wells = 0: the search needs at least one well".into()));
        }
        let search = self.search()?;
        let needed = plate_wells_needed(search.strategy(), search.config());
        if needed > INNER_WELLS {
            let most = (1..=self.budget_wells)
                .rev()
                .find(|&b| {
                    let c = SearchConfig { budget_wells: b, ..*search.config() };
                    plate_wells_needed(search.strategy(), &c) <= INNER_WELLS
                })
                .unwrap_or(0);
            return Err(bad(format!(
                "budget_wells = {}: the search may need {needed} wells with one control per iteration, and a line's plate has {INNER_WELLS} inner wells: at most {most}",
                self.budget_wells
            )));
        }
        Ok(())
    }

    fn search(&self) -> Result<DoseSearch, GatewayError> {
        let (strategy, base) = if self.strategy == "grid" {
            (Strategy::Grid, SearchConfig::legacy_grid())
        } else {
            (Strategy::Adaptive, SearchConfig::adaptive())
        };
        let cfg = SearchConfig {
            lo_um: self.dose_range_um[0],
            hi_um: self.dose_range_um[1],
            budget_wells: self.budget_wells.max(base.budget_wells.min(self.budget_wells)),
            ..base
        };
        DoseSearch::new(strategy, cfg).map_err(|e| GatewayError::Config {
            path: "campaign".into(),
            message: format!(
                "budget_wells = {} with strategy {}: {e} (the grid needs at least 12 wells)",
                self.budget_wells, self.strategy
            ),
        })
    }
}

/// Inner wells of a line's 96-well plate (rows B–G × columns 2–11).
pub const INNER_WELLS: usize = 60;
/// The highest dose a well can get: the stock's share of the final volume.
pub const MAX_DOSE_UM: f64 = STOCK_UM * (FINAL_UL - SEED_UL) / FINAL_UL;
/// The adaptive search scouts from a fiftieth of the upper end of the range.
const SCOUT_SPAN: f64 = 50.0;

/// The most wells a search can take from its line's plate: every batch at its largest, plus a control
/// well per batch. Batches are the scouts, then `batch_wells` each until the budget is spent (adaptive),
/// or the whole grid at once.
pub fn plate_wells_needed(strategy: Strategy, c: &SearchConfig) -> usize {
    let budget = usize::from(c.budget_wells);
    match strategy {
        Strategy::Grid => budget.min(12 * usize::from(c.replicates)) + 1,
        Strategy::Adaptive => {
            let scouts = budget.min(usize::from(c.scout_wells));
            let batches = 1 + (budget - scouts).div_ceil(usize::from(c.batch_wells).max(1));
            budget + batches
        }
    }
}

/// The deck of a campaign, as a TOML deck file (given to the twin, and parsed for the model): two tip
/// racks, an assay plate per line, a dilution plate, a cell trough per line, medium, the 1 mM stock.
pub fn deck_toml(lines: &[String]) -> String {
    let mut t = String::new();
    for (name, y) in [("TIPS_1", 2418), ("TIPS_2", 1418)] {
        t += &format!("[[tip_rack]]\nname = \"{name}\"\nx = 1179\ny = {y}\ntip_volume_ul = 360\n\n");
    }
    let plates = [(2983, 1457), (2983, 2557), (4283, 1457), (4283, 2557)];
    for (i, _) in lines.iter().enumerate() {
        t += &format!(
            "[[plate]]\nname = \"ASSAY_{}\"\nx = {}\ny = {}\nwell_capacity_ul = 300\n\n",
            i + 1,
            plates[i].0,
            plates[i].1
        );
    }
    t += &format!(
        "[[plate]]\nname = \"DILUTION\"\nx = {}\ny = {}\nwell_capacity_ul = 300\n\n",
        plates[3].0, plates[3].1
    );
    for (i, l) in lines.iter().enumerate() {
        t += &format!(
            "[[trough]]\nname = \"CELLS_{}\"\nx = {}\ny = 500\nwidth = 190\ndepth = 1000\ncapacity_ul = 100000\nvolume_ul = 60000\ncontent = \"cells\"\nline = \"{l}\"\ncells_per_ul = {CELLS_PER_UL}\n\n",
            i + 1,
            6000 + 300 * i
        );
    }
    t += "[[trough]]\nname = \"MEDIUM\"\nx = 6900\ny = 500\nwidth = 190\ndepth = 1000\ncapacity_ul = 100000\nvolume_ul = 80000\ncontent = \"medium\"\n\n";
    t += &format!(
        "[[trough]]\nname = \"STOCK\"\nx = 7200\ny = 500\nwidth = 190\ndepth = 1000\ncapacity_ul = 50000\nvolume_ul = 20000\ncontent = \"compound\"\ncompound = \"tbhp\"\nconcentration_um = {STOCK_UM}\n\n"
    );
    t += &format!(
        "[[trough]]\nname = \"VIRUS\"\nx = 7500\ny = 500\nwidth = 190\ndepth = 1000\ncapacity_ul = 5000\nvolume_ul = 2000\ncontent = \"virus\"\ntiter_tu_per_ul = {VIRUS_TITER_TU_PER_UL}\n\n"
    );
    t += "[waste]\nx = 100\ny = 100\nwidth = 800\ndepth = 2000\n";
    t
}

/// A step of an iteration, as the journal records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalOp {
    /// Pick up a tip.
    PickUp {
        /// Channel.
        channel: usize,
        /// Spot.
        at: String,
    },
    /// Aspirate.
    Aspirate {
        /// Channel.
        channel: usize,
        /// Source.
        from: String,
        /// µL.
        volume_ul: f64,
    },
    /// Dispense.
    Dispense {
        /// Channel.
        channel: usize,
        /// Target.
        to: String,
        /// µL.
        volume_ul: f64,
    },
    /// Drop a tip.
    Drop {
        /// Channel.
        channel: usize,
    },
    /// Incubate a plate.
    Incubate {
        /// Deck plate index.
        plate: u8,
        /// Hours.
        hours: f64,
    },
}

impl JournalOp {
    fn liquid(&self) -> Option<Op> {
        Some(match self {
            JournalOp::PickUp { channel, at } => Op::PickUpTip { channel: *channel, at: Place::parse(at) },
            JournalOp::Aspirate { channel, from, volume_ul } => {
                Op::Aspirate { channel: *channel, from: Place::parse(from), volume_ul: *volume_ul }
            }
            JournalOp::Dispense { channel, to, volume_ul } => {
                Op::Dispense { channel: *channel, to: Place::parse(to), volume_ul: *volume_ul }
            }
            JournalOp::Drop { channel } => Op::DropTip { channel: *channel, to: Place::named("WASTE") },
            JournalOp::Incubate { .. } => return None,
        })
    }
}

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

/// A campaign in progress.
pub struct Runner<H: LiquidHandler> {
    /// The instrument behind the safety envelope.
    pub workcell: Workcell<H>,
    reader: WireClient<SerialTx, SerialRx>,
    store: Store,
    /// The campaign.
    pub id: String,
    config: CampaignConfig,
    /// Plate clocks the model expects (hours), by deck plate index.
    clocks: Vec<f64>,
    /// Journal entries of the campaign: (iteration, seq) → (state, op).
    journal: std::collections::HashMap<(i64, i64), (String, JournalOp)>,
    /// The operations the journal holds as done, in the order they were done.
    done_in_order: Vec<JournalOp>,
    /// Replay `done_in_order` on a fresh twin before going on.
    replay: bool,
    iteration: i64,
    seq: i64,
    /// Print a line per iteration on standard error.
    pub progress: bool,
}

fn sql(e: rusqlite::Error) -> GatewayError {
    GatewayError::Campaign(format!("database: {}", cellos_host::store::describe(&e)))
}

fn host(e: cellos_host::StoreError) -> GatewayError {
    GatewayError::Config { path: "data".into(), message: e.to_string() }
}

impl<H: LiquidHandler> Runner<H> {
    /// A runner for campaign `id` (claimed with [`claim`] before, or being resumed) over a workcell and a
    /// reader: the journal is loaded and the deck model rebuilt from what certainly happened.
    pub fn new(
        workcell: Workcell<H>,
        reader: WireClient<SerialTx, SerialRx>,
        store: Store,
        id: String,
        config: CampaignConfig,
    ) -> Result<Self, GatewayError> {
        config.check()?;
        let plates = workcell.envelope.deck.plates.len();
        let mut r = Runner {
            workcell,
            reader,
            store,
            id,
            config,
            clocks: vec![0.0; plates],
            journal: Default::default(),
            done_in_order: Vec::new(),
            replay: false,
            iteration: 0,
            seq: 0,
            progress: false,
        };
        r.load_journal()?;
        Ok(r)
    }

    /// The instrument is a fresh twin standing in for one that is gone: before the campaign goes on, every
    /// operation the journal holds as done is carried out on it again, in order, so that it holds what
    /// the old one held (the reader's noise depends only on seed, plate, well, readout and time, so it
    /// then reads what the old one would have).
    pub fn replay_on_fresh_twin(&mut self) {
        self.replay = true;
    }

    fn load_journal(&mut self) -> Result<(), GatewayError> {
        let mut st = self
            .store
            .campaigns
            .prepare("SELECT iteration, seq, state, op FROM journal WHERE campaign_id = ?1 ORDER BY entry_id")
            .map_err(sql)?;
        let rows: Vec<(i64, i64, String, String)> = st
            .query_map([&self.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql)?;
        drop(st);
        for (it, seq, state, op) in rows {
            let op: JournalOp = serde_json::from_str(&op)
                .map_err(|e| GatewayError::Campaign(format!("journal entry {it}/{seq}: {e}")))?;
            // Rebuild the model from what certainly happened.
            if state == "done" || state == "reconciled" {
                self.apply(&op);
                self.done_in_order.push(op.clone());
            }
            self.journal.insert((it, seq), (state, op));
        }
        Ok(())
    }

    /// Carries out the journal's done operations on a fresh twin (see [`Runner::replay_on_fresh_twin`]).
    async fn replay(&mut self) -> Result<(), GatewayError> {
        let ops = std::mem::take(&mut self.done_in_order);
        let deck = deck_model(&self.config.lines)?;
        self.workcell.envelope = crate::liquid::Envelope::new(deck, self.workcell.envelope.tips.len());
        self.clocks = vec![0.0; self.clocks.len()];
        for op in &ops {
            match op {
                JournalOp::Incubate { plate, hours } => {
                    self.reader.incubate(*plate, *hours, self.clocks[usize::from(*plate)]).await?;
                    self.apply(op);
                }
                other => {
                    let o = other.liquid().ok_or_else(|| GatewayError::Campaign("not a liquid step".into()))?;
                    self.workcell.run(&o).await.map_err(|e| {
                        GatewayError::Campaign(format!("replaying the journal on the new twin: {o}: {e}"))
                    })?;
                }
            }
        }
        if self.progress {
            eprintln!("  the new twin was brought to the journal's state ({} operations replayed)", ops.len());
        }
        self.done_in_order = ops;
        Ok(())
    }

    fn apply(&mut self, op: &JournalOp) {
        match op {
            JournalOp::Incubate { plate, hours } => {
                if let Some(c) = self.clocks.get_mut(usize::from(*plate)) {
                    *c += hours;
                }
            }
            other => {
                if let Some(o) = other.liquid()
                    && let Ok((loc, _)) = self.workcell.envelope.check(&o)
                {
                    self.workcell.envelope.apply(&o, loc);
                }
            }
        }
    }

    fn committed_iterations(&self) -> Result<Vec<(i64, Value, Value)>, GatewayError> {
        let mut st = self.store.campaigns.prepare("SELECT iteration_number, proposals, results FROM campaign_iterations WHERE campaign_id = ?1 ORDER BY iteration_number").map_err(sql)?;
        let rows = st
            .query_map([&self.id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql)?;
        Ok(rows
            .into_iter()
            .map(|(n, p, r)| {
                (n, serde_json::from_str(&p).unwrap_or(Value::Null), serde_json::from_str(&r).unwrap_or(Value::Null))
            })
            .collect())
    }

    /// The reader link.
    pub fn reader(&self) -> &WireClient<SerialTx, SerialRx> {
        &self.reader
    }

    /// Runs (or finishes) the campaign; returns each line's result.
    pub async fn run(&mut self) -> Result<Vec<LineResult>, GatewayError> {
        self.workcell.initialise().await?;
        if std::mem::take(&mut self.replay) {
            self.replay().await?;
        }
        if self.config.posh {
            for (li, line) in self.config.lines.clone().iter().enumerate() {
                self.bank(li, line)?;
            }
        }
        let committed = self.committed_iterations()?;
        let lines = self.config.lines.clone();
        let mut out = Vec::new();
        for (li, line) in lines.iter().enumerate() {
            let mut search = self.config.search()?;
            let mut doses = [0.0; 64];
            let mut wells_used = 0usize;
            let result = loop {
                match search.next(&mut doses).map_err(|e| GatewayError::Campaign(e.to_string()))? {
                    Step::Done(r) => break r,
                    Step::Batch(n) => {
                        self.iteration += 1;
                        let batch = doses[..n].to_vec();
                        let observations = match committed.iter().find(|(k, ..)| *k == self.iteration) {
                            Some((_, _, results)) => {
                                // Committed before: replay its observations, and its model effects.
                                serde_json::from_value::<Vec<StoredObs>>(results["observations"].clone())
                                    .map_err(|e| GatewayError::Campaign(e.to_string()))?
                                    .into_iter()
                                    .map(StoredObs::into_obs)
                                    .collect::<Vec<_>>()
                            }
                            None => self.run_iteration(li, line, &batch, wells_used).await?,
                        };
                        wells_used += n + 1;
                        search.observe(&observations).map_err(|e| GatewayError::Campaign(e.to_string()))?;
                    }
                }
            };
            let assay = TbhpAssay::builtin(line).map_err(|e| GatewayError::Campaign(e.to_string()))?;
            let optimum = assay.optimum(
                &cellos_core::search::Criteria::default(),
                self.config.dose_range_um[0],
                self.config.dose_range_um[1],
            );
            let value = json!({ "value": result.dose_um, "lo": result.lo_um, "hi": result.hi_um, "wells": result.wells, "status": result.status.as_str() });
            self.set_output(line, "tbhp_dose_finding", "optimal_tbhp_dose_uM", &value)?;
            out.push(LineResult {
                line: line.clone(),
                dose_um: result.dose_um,
                lo_um: result.lo_um,
                hi_um: result.hi_um,
                wells: result.wells,
                status: result.status.as_str().into(),
                optimum_um: optimum,
            });
        }
        if self.config.posh {
            for (li, line) in lines.iter().enumerate() {
                if self.output(line, "lv_estimated_titer")?.is_none() {
                    self.titrate(li, line).await?;
                }
            }
        }
        self.store
            .campaigns
            .execute(
                "UPDATE campaigns SET status = 'completed', end_date = ?2, results_summary = ?3 WHERE campaign_id = ?1",
                params![self.id, cellos_host::time::now(), serde_json::to_string(&out).unwrap_or_default()],
            )
            .map_err(sql)?;
        Ok(out)
    }

    /// One step of an iteration: skipped if the journal says it happened, reconciled if it was left
    /// pending, sent otherwise.
    async fn step(&mut self, planned: JournalOp) -> Result<(), GatewayError> {
        self.seq += 1;
        let key = (self.iteration, self.seq);
        let recorded = self.journal.get(&key).cloned();
        // A step the journal holds is the one that was (maybe) sent: its tip spot is the one then free.
        let op = match &recorded {
            Some((_, op)) if std::mem::discriminant(op) == std::mem::discriminant(&planned) => op.clone(),
            Some((_, op)) => {
                return Err(GatewayError::Campaign(format!(
                    "journal step {}/{} is {op:?}, the plan now says {planned:?}",
                    key.0, key.1
                )));
            }
            None => planned,
        };
        match recorded.map(|(s, _)| s) {
            Some(s) if s == "done" || s == "reconciled" => return Ok(()),
            Some(_) => {
                if self.happened(&op).await? {
                    self.apply(&op);
                    self.mark(key, "reconciled", Some("found done on the instrument after a restart"))?;
                    return Ok(());
                }
                self.mark(key, "pending", Some("not done on the instrument: sent again after a restart"))?;
            }
            None => {
                self.store
                    .campaigns
                    .execute(
                        "INSERT INTO journal (campaign_id, iteration, seq, op, state, sent_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                        params![self.id, key.0, key.1, serde_json::to_string(&op).unwrap_or_default(), cellos_host::time::now()],
                    )
                    .map_err(sql)?;
            }
        }
        crate::crash::point("journal written, before sending");
        let result = match &op {
            // Never re-sent blindly: a lost reply is settled by reading the plate clock back.
            JournalOp::Incubate { plate, hours } => {
                self.reader.incubate(*plate, *hours, self.clocks[usize::from(*plate)]).await
            }
            other => {
                let o = other.liquid().ok_or_else(|| GatewayError::Campaign("not a liquid step".into()))?;
                self.workcell.run(&o).await
            }
        };
        crate::crash::point("reply received, before recording it");
        match result {
            Ok(()) => {
                if let JournalOp::Incubate { .. } = op {
                    self.apply(&op);
                }
                self.mark(key, "done", None)?;
                self.journal.insert(key, ("done".into(), op));
                Ok(())
            }
            Err(e) => {
                let state = if matches!(e, GatewayError::Refused { .. }) { "failed" } else { "unknown" };
                self.mark(key, state, Some(&e.to_string()))?;
                Err(e)
            }
        }
    }

    fn mark(&self, key: (i64, i64), state: &str, detail: Option<&str>) -> Result<(), GatewayError> {
        self.store
            .campaigns
            .execute(
                "UPDATE journal SET state = ?4, detail = coalesce(?5, detail), done_at = ?6 WHERE campaign_id = ?1 AND iteration = ?2 AND seq = ?3",
                params![self.id, key.0, key.1, state, detail, cellos_host::time::now()],
            )
            .map_err(sql)?;
        Ok(())
    }

    /// Whether a step left pending happened: asks the instrument and the twin's control link, comparing
    /// with what the model expects before the step.
    async fn happened(&mut self, op: &JournalOp) -> Result<bool, GatewayError> {
        let volume = |r: Response| match r {
            Response::Well(w) => Ok(w.volume_ul),
            other => Err(GatewayError::Campaign(format!("state query refused: {other:?}"))),
        };
        Ok(match op {
            JournalOp::PickUp { channel, .. } | JournalOp::Drop { channel } => {
                let tips = self
                    .workcell
                    .handler()
                    .tip_presence()
                    .await?
                    .ok_or_else(|| GatewayError::Unsupported("reconciling tips".into()))?;
                let has = tips.get(*channel).copied().unwrap_or(false);
                if matches!(op, JournalOp::PickUp { .. }) { has } else { !has }
            }
            JournalOp::Incubate { plate, .. } => {
                self.reader.plate_clock(*plate).await? > self.clocks[usize::from(*plate)] + 1e-9
            }
            JournalOp::Aspirate { from, volume_ul, .. } | JournalOp::Dispense { to: from, volume_ul, .. } => {
                let place = Place::parse(from);
                let (loc, _, _) = self.workcell.envelope.locate(&place)?;
                let expected = self.workcell.envelope.deck.liquid(loc).map_or(0.0, |l| l.volume_ul);
                let actual = match loc {
                    Location::Well { plate, index } => volume(
                        self.reader.ask(&Request::WellState { plate: plate as u8, well: index as u16 + 1 }).await?,
                    )?,
                    Location::Trough { trough } => {
                        volume(self.reader.ask(&Request::TroughState { trough: trough as u8 }).await?)?
                    }
                    _ => expected,
                };
                let sign = if matches!(op, JournalOp::Aspirate { .. }) { -1.0 } else { 1.0 };
                (actual - (expected + sign * volume_ul)).abs() < 1e-6
            }
        })
    }

    /// A stage output of a line, if stored.
    fn output(&self, line: &str, key: &str) -> Result<Option<Value>, GatewayError> {
        let v: Option<String> = self
            .store
            .campaigns
            .query_row(
                "SELECT value FROM stage_outputs WHERE campaign_id = ?1 AND cell_line_id = ?2 AND key = ?3",
                params![self.id, line, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
    }

    fn set_output(&self, line: &str, stage: &str, key: &str, value: &Value) -> Result<(), GatewayError> {
        self.store
            .campaigns
            .execute(
                "INSERT INTO stage_outputs (campaign_id, cell_line_id, stage, key, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (campaign_id, cell_line_id, key) DO UPDATE SET value = excluded.value",
                params![self.id, line, stage, key, value.to_string(), cellos_host::time::now()],
            )
            .map_err(sql)?;
        Ok(())
    }

    /// The banking stages of a line (the core's banking model, day by day): a master bank from a vendor
    /// vial, then a working bank from one master vial; frozen vials go into the inventory. Stages with a
    /// stored output are skipped; vial ids are fixed by campaign, line and stage, so a repeat adds nothing.
    fn bank(&mut self, li: usize, line: &str) -> Result<(), GatewayError> {
        use cellos_core::banking::{BankingConfig, BankingRun};
        let stages = [
            ("mcb", "mcb_vial_count", BankingConfig::mcb(), "MCB", 1),
            ("wcb", "wcb_vial_count", BankingConfig::wcb(), "WCB", 2),
        ];
        for (k, (stage, key, config, tag, passage)) in stages.into_iter().enumerate() {
            if self.output(line, key)?.is_some() {
                continue;
            }
            let params =
                cellos_core::params::builtin::cell_line(line).map_err(|e| GatewayError::Campaign(e.to_string()))?;
            // A run that loses every flask (contamination) is repeated from a fresh vial, three times at most.
            let mut attempts = 0u16;
            let out = loop {
                attempts += 1;
                let mut run = BankingRun::new(params, config, cellos_core::model::GrowthConstants::LEGACY)
                    .map_err(|e| GatewayError::Campaign(format!("{line} {tag}: {e:?}")))?;
                let seed = self
                    .config
                    .seed
                    .wrapping_mul(1000)
                    .wrapping_add(li as u64 * 100 + k as u64 * 10 + u64::from(attempts));
                let mut rng = cellos_core::rng::seeded(seed);
                while run
                    .step_day(&mut rng)
                    .map_err(|e| GatewayError::Campaign(format!("{line} {tag}: {e:?}")))?
                    .is_some()
                {}
                let out = run
                    .outcome()
                    .ok_or_else(|| GatewayError::Campaign(format!("{line} {tag}: the run did not finish")))?;
                if self.progress {
                    eprintln!("  {line} {tag}: {} vials in {} days ({:?})", out.vials, out.days, out.reason);
                }
                if out.vials > 0 || attempts == 3 {
                    break out;
                }
            };
            let now = cellos_host::time::now();
            let tx = self.store.lines.transaction().map_err(sql)?;
            tx.execute(
                "INSERT OR IGNORE INTO cell_lines (cell_line_id, display_name, cell_type, growth_media, position, created_at, updated_at) \
                 VALUES (?1, ?1, 'unspecified', 'unspecified', (SELECT coalesce(max(position), 0) + 1 FROM cell_lines), ?2, ?2)",
                params![line, now],
            )
            .map_err(sql)?;
            let vial = |tag: &str, i: u16| format!("{}_{line}_{tag}_{i:02}", self.id);
            if tag == "WCB" {
                for a in 1..=attempts {
                    tx.execute("UPDATE cell_line_inventory SET status = 'used' WHERE vial_id = ?1", [vial("MCB", a)])
                        .map_err(sql)?;
                    tx.execute(
                        "INSERT INTO cell_line_usage (cell_line_id, vial_id, execution_id, usage_date, purpose) \
                         SELECT ?1, ?2, ?3, ?4, 'thawed for the working cell bank' WHERE NOT EXISTS (SELECT 1 FROM cell_line_usage WHERE vial_id = ?2)",
                        params![line, vial("MCB", a), self.id, now],
                    )
                    .map_err(sql)?;
                }
            }
            for i in 1..=out.vials {
                tx.execute(
                    "INSERT OR IGNORE INTO cell_line_inventory (cell_line_id, vial_id, passage_number, freeze_date, location, status, notes, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'LN2', 'available', ?5, ?4)",
                    params![line, vial(tag, i), passage, now, json!({ "campaign_id": self.id, "stage": stage }).to_string()],
                )
                .map_err(sql)?;
            }
            tx.commit().map_err(sql)?;
            self.set_output(line, stage, key, &json!(out.vials))?;
        }
        Ok(())
    }

    /// Lentivirus titration of a line on the bottom edge row of its plate (H1–H8; the BFP fraction of
    /// seeded cells does not depend on edge growth): 100 µL of cells, the legacy volume series of virus
    /// (volumes under 2 µL from a 1:10 dilution made in H12), 48 h, BFP fractions read, the titer and the
    /// largest fraction fitted, and the volume for 30 % BFP on the well's cells.
    async fn titrate(&mut self, li: usize, line: &str) -> Result<(), GatewayError> {
        self.iteration = TITRATION_ITERATION + li as i64 + 1;
        self.seq = 0;
        let plate = format!("ASSAY_{}", li + 1);
        let pi = self.plate_index(&plate);
        let wells: Vec<String> = (1..=TITRATION_UL.len()).map(|c| format!("H{c}")).collect();
        let diluted = format!("{plate}:H12");
        let cells = format!("CELLS_{}", li + 1);
        self.transfers(wells.iter().map(|w| (cells.clone(), format!("{plate}:{w}"), SEED_UL))).await?;
        self.transfers([("MEDIUM".into(), diluted.clone(), 180.0), ("VIRUS".into(), diluted.clone(), 20.0)]).await?;
        for (source, factor) in [(diluted.as_str(), 10.0), ("VIRUS", 1.0)] {
            let mine = wells
                .iter()
                .zip(TITRATION_UL)
                .filter(|(_, v)| *v > 0.0 && ((*v < PRECISE_UL) == (factor > 1.0)))
                .map(|(w, v)| (source.to_string(), format!("{plate}:{w}"), v * factor));
            self.transfers(mine).await?;
        }
        self.step(JournalOp::Incubate { plate: pi, hours: 48.0 }).await?;
        let mut fractions = Vec::new();
        for w in &wells {
            fractions.push(self.read(pi, w, Readout::BfpFraction).await?);
            crate::crash::point("reading");
        }
        let cells = CELLS_PER_UL * SEED_UL;
        let t = cellos_core::titer::titrate(&TITRATION_UL, &fractions, cells, TARGET_BFP)
            .map_err(|e| GatewayError::Campaign(format!("{line} titration: {e}")))?;
        let series: Vec<Value> =
            TITRATION_UL.iter().zip(&fractions).map(|(v, f)| json!({ "volume_ul": v, "bfp_fraction": f })).collect();
        self.set_output(
            line,
            "lv_titration",
            "lv_optimal_volume_ul",
            &json!({ "value": t.volume_ul, "target_bfp": TARGET_BFP, "cells": cells }),
        )?;
        self.set_output(
            line,
            "lv_titration",
            "lv_estimated_titer",
            &json!({ "value": t.fit.titer_tu_per_ul, "max_fraction": t.fit.max_fraction, "std_err": t.fit.std_err, "series": series }),
        )?;
        if self.progress {
            eprintln!(
                "  {line} titration: {:.0} TU/µL, A {:.2}, {:.2} µL for {:.0} % BFP",
                t.fit.titer_tu_per_ul,
                t.fit.max_fraction,
                t.volume_ul,
                TARGET_BFP * 100.0
            );
        }
        Ok(())
    }

    fn plate_index(&self, name: &str) -> u8 {
        self.workcell.envelope.deck.plates.iter().position(|p| p.name == name).unwrap_or(0) as u8
    }

    /// Runs one iteration and commits it; returns its observations (dosed wells, in batch order).
    async fn run_iteration(
        &mut self,
        li: usize,
        line: &str,
        doses: &[f64],
        wells_used: usize,
    ) -> Result<Vec<Observation>, GatewayError> {
        let started = Instant::now();
        self.seq = 0;
        // The most dilute intermediate is 1 µM: refuse, before touching anything, a dose even it cannot make.
        if let Some(d) = doses.iter().find(|&&d| d > 0.0 && d * FINAL_UL / LOWEST_UM < MIN_UL) {
            return Err(GatewayError::Config {
                path: "campaign".into(),
                message: format!(
                    "{d} µM would need under {MIN_UL} µL of the {LOWEST_UM} µM intermediate: raise the dose range"
                ),
            });
        }
        let plate = format!("ASSAY_{}", li + 1);
        let pi = self.plate_index(&plate);
        let inner: Vec<String> =
            (1..7u8).flat_map(|r| (2..12u8).map(move |c| format!("{}{}", (b'A' + r) as char, c))).collect();
        let wells: Vec<String> = inner
            .get(wells_used..wells_used + doses.len() + 1)
            .ok_or_else(|| GatewayError::Campaign(format!("{plate} has no inner wells left")))?
            .to_vec();
        let cells = format!("CELLS_{}", li + 1);
        // Seeding.
        self.transfers(wells.iter().map(|w| (cells.clone(), format!("{plate}:{w}"), SEED_UL))).await?;
        self.step(JournalOp::Incubate { plate: pi, hours: 24.0 }).await?;
        // Sources: the stock, or fresh intermediates for small volumes.
        let mut sources: Vec<(String, f64)> = vec![("STOCK".into(), STOCK_UM)];
        let needs = |c: f64| doses.iter().any(|&d| d > 0.0 && d * FINAL_UL / c < PRECISE_UL);
        let mut level = STOCK_UM;
        while needs(level) && level > LOWEST_UM {
            // Three intermediates at most per iteration (100, 10, 1 µM): a fixed well per iteration and
            // level, so a resumed iteration plans the same wells.
            let slot = (self.iteration as usize - 1) * 3 + sources.len() - 1;
            let well = format!("DILUTION:{}", dilution_well(slot)?);
            let from = sources.last().map(|s| s.0.clone()).unwrap_or_default();
            self.transfers([("MEDIUM".into(), well.clone(), 180.0), (from, well.clone(), 20.0)]).await?;
            level /= 10.0;
            sources.push((well, level));
        }
        let plan: Vec<(Option<(String, f64)>, f64)> = std::iter::once((None, FINAL_UL - SEED_UL))
            .chain(doses.iter().map(|&d| {
                let src = sources
                    .iter()
                    .find(|(_, c)| d * FINAL_UL / c >= PRECISE_UL - 1e-12)
                    .or(sources.last())
                    .cloned()
                    .unwrap_or(("STOCK".into(), STOCK_UM));
                let v = ((d * FINAL_UL / src.1) * 10.0).round() / 10.0;
                if d <= 0.0 { (None, FINAL_UL - SEED_UL) } else { (Some((src.0, v)), FINAL_UL - SEED_UL - v) }
            }))
            .collect();
        // Medium first, one tip for all wells.
        let medium = wells
            .iter()
            .zip(&plan)
            .filter(|(_, (_, m))| *m >= MIN_UL)
            .map(|(w, (_, m))| ("MEDIUM".to_string(), format!("{plate}:{w}"), *m));
        self.transfers(medium).await?;
        // Compound, a tip per source.
        for (src, _) in &sources {
            let wells_of: Vec<(String, String, f64)> = wells
                .iter()
                .zip(&plan)
                .filter_map(|(w, (s, _))| {
                    s.as_ref().filter(|(n, _)| n == src).map(|(_, v)| (src.clone(), format!("{plate}:{w}"), *v))
                })
                .collect();
            self.transfers(wells_of).await?;
        }
        self.step(JournalOp::Incubate { plate: pi, hours: 24.0 }).await?;
        // Reading.
        let mut rows = Vec::new();
        for (k, w) in wells.iter().enumerate() {
            let index = well_index(w)?;
            let loc = Location::Well { plate: usize::from(pi), index: usize::from(index) - 1 };
            let dose = self.workcell.envelope.deck.liquid(loc).map_or(0.0, |l| l.concentration_um());
            let viability = self.read(pi, w, Readout::Viability).await?;
            let cellrox = self.read(pi, w, Readout::CellRox).await?;
            let segmentation = self.read(pi, w, Readout::Segmentation).await?;
            crate::crash::point("reading");
            rows.push((w.clone(), k == 0, Observation { dose_um: dose, viability, cellrox_au: cellrox, segmentation }));
        }
        self.commit(line, &plate, doses, &rows, started.elapsed().as_secs_f64())?;
        Ok(rows.iter().filter(|(_, control, _)| !control).map(|(.., o)| *o).collect())
    }

    /// One tip for a run of transfers `(source, target, µL)` in order, then to waste; nothing if empty.
    async fn transfers(&mut self, moves: impl IntoIterator<Item = (String, String, f64)>) -> Result<(), GatewayError> {
        let mut moves = moves.into_iter().peekable();
        if moves.peek().is_none() {
            return Ok(());
        }
        self.step(JournalOp::PickUp { channel: 0, at: self.next_tip()? }).await?;
        for (from, to, volume_ul) in moves {
            self.step(JournalOp::Aspirate { channel: 0, from, volume_ul }).await?;
            self.step(JournalOp::Dispense { channel: 0, to, volume_ul }).await?;
        }
        self.step(JournalOp::Drop { channel: 0 }).await
    }

    /// One reading of a well of deck plate `plate`.
    async fn read(&self, plate: u8, well: &str, readout: Readout) -> Result<f64, GatewayError> {
        match self.reader.ask(&Request::Read { plate, well: well_index(well)?, readout }).await? {
            Response::Value(v) => Ok(v),
            other => Err(GatewayError::Campaign(format!("reading {readout:?} of {well}: {other:?}"))),
        }
    }

    fn next_tip(&self) -> Result<String, GatewayError> {
        for r in &self.workcell.envelope.deck.tip_racks {
            for i in 0..usize::from(r.format.wells()) {
                if r.has_tip(i) {
                    let w = r.format.from_row_major(i as u16 + 1).map_err(|e| GatewayError::Campaign(e.to_string()))?;
                    return Ok(format!("{}:{w}", r.name));
                }
            }
        }
        Err(GatewayError::Refused { rule: crate::error::Rule::NoTipAtSpot, detail: "no tips left on the deck".into() })
    }

    fn commit(
        &mut self,
        line: &str,
        plate: &str,
        doses: &[f64],
        rows: &[(String, bool, Observation)],
        seconds: f64,
    ) -> Result<(), GatewayError> {
        let it = self.iteration;
        let results = &mut self.store.results;
        let tx = results.transaction().map_err(sql)?;
        tx.execute("DELETE FROM measurements WHERE campaign_id = ?1 AND iteration = ?2", params![self.id, it])
            .map_err(sql)?;
        let now = cellos_host::time::now();
        for (w, control, o) in rows {
            tx.execute(
                "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, incubator_id, liquid_handler_id, \
                 viability_norm, segmentation, campaign_id, iteration, created_at) VALUES (?1, ?2, ?3, 'tbhp', ?4, 24, ?5, ?6, ?7, 'twin', 'star', ?8, ?9, ?10, ?11, ?7)",
                params![format!("{}_{plate}", self.id), w, line, o.dose_um, o.cellrox_au, i64::from(*control), now, o.viability, o.segmentation, self.id, it],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        crate::crash::point("measurements committed, before the iteration");
        let observations: Vec<StoredObs> =
            rows.iter().filter(|(_, c, _)| !c).map(|(.., o)| StoredObs::from(*o)).collect();
        let tx = self.store.campaigns.transaction().map_err(sql)?;
        tx.execute(
            "INSERT INTO campaign_iterations (campaign_id, iteration_number, timestamp, proposals, results, model_state, metrics) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                self.id,
                it,
                now,
                json!({ "line": line, "doses_um": doses }).to_string(),
                json!({ "observations": observations }).to_string(),
                json!({ "journal_seq": self.seq }).to_string(),
                json!({ "wells": rows.len(), "seconds": seconds }).to_string()
            ],
        )
        .map_err(sql)?;
        // The iteration's plate run as an experiment, linked to the campaign.
        let experiment = format!("{}_it{it:03}", self.id);
        tx.execute(
            "INSERT INTO experiments (experiment_id, campaign_id, experiment_type, cell_line_id, start_date, end_date, status, metadata, created_at) \
             VALUES (?1, ?2, 'tbhp_dose_response', ?3, ?4, ?4, 'completed', ?5, ?4)",
            params![experiment, self.id, line, now, json!({ "plate_id": format!("{}_{plate}", self.id), "iteration": it, "wells": rows.len() }).to_string()],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO campaign_experiments (campaign_id, experiment_id, iteration_number, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![self.id, experiment, it, now],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        if self.progress {
            let doses: Vec<String> = doses.iter().map(|d| format!("{d:.1}")).collect();
            eprintln!(
                "  {line} iteration {it}: {} wells, {:.2} s, doses µM [{}]",
                rows.len(),
                seconds,
                doses.join(", ")
            );
        }
        Ok(())
    }
}

/// A 96-well plate's well, 1-based row-major (the reader's numbering).
fn well_index(well: &str) -> Result<u16, GatewayError> {
    let format = cellos_core::plate::PlateFormat::W96;
    format
        .parse_well(well)
        .map(|w| format.row_major(w))
        .map_err(|e| GatewayError::Campaign(format!("well {well}: {e}")))
}

/// The dilution plate's `slot`-th well, row-major over all 96.
fn dilution_well(slot: usize) -> Result<String, GatewayError> {
    let format = cellos_core::plate::PlateFormat::W96;
    u16::try_from(slot + 1)
        .ok()
        .filter(|&i| i <= format.wells())
        .and_then(|i| format.from_row_major(i).ok())
        .map(|w| w.to_string())
        .ok_or_else(|| GatewayError::Campaign("the dilution plate is full".into()))
}

/// An observation as the iteration row stores it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct StoredObs {
    dose_um: f64,
    viability: f64,
    cellrox_au: f64,
    segmentation: f64,
}

impl From<Observation> for StoredObs {
    fn from(o: Observation) -> Self {
        StoredObs { dose_um: o.dose_um, viability: o.viability, cellrox_au: o.cellrox_au, segmentation: o.segmentation }
    }
}

impl StoredObs {
    fn into_obs(self) -> Observation {
        Observation {
            dose_um: self.dose_um,
            viability: self.viability,
            cellrox_au: self.cellrox_au,
            segmentation: self.segmentation,
        }
    }
}

/// The deck model of a campaign.
pub fn deck_model(lines: &[String]) -> Result<DeckModel, GatewayError> {
    cellos_firmware::host::parse_deck(&deck_toml(lines))
        .map_err(|m| GatewayError::Config { path: "campaign deck".into(), message: m })
}

/// Where a campaign keeps its deck file for the twin.
pub fn deck_path(data_dir: &Path) -> PathBuf {
    data_dir.join("campaign-deck.toml")
}

/// The twin a campaign runs on, as the campaign row records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinRecord {
    /// STAR line.
    pub star: String,
    /// Reader line.
    pub reader: String,
    /// The twin's process id when it was started.
    pub pid: Option<u32>,
    /// The twin's instance number (its answer to `Identify`).
    pub instance: u64,
}

/// A stored campaign: its settings, its status and the twin it runs on, if the gateway started one.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The settings (with the campaign id).
    pub config: CampaignConfig,
    /// `running`, `failed`, `completed` or `abandoned`.
    pub status: String,
    /// The twin, if the campaign runs on one the gateway started.
    pub twin: Option<TwinRecord>,
}

/// Reads a stored campaign; `None` if there is none of that id.
pub fn stored(db: &rusqlite::Connection, id: &str) -> Result<Option<Stored>, GatewayError> {
    let row: Option<(String, Option<String>)> = db
        .query_row("SELECT status, config FROM campaigns WHERE campaign_id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)?;
    let Some((status, cfg)) = row else { return Ok(None) };
    let v: Value =
        serde_json::from_str(cfg.as_deref().unwrap_or("null")).map_err(|e| GatewayError::Campaign(e.to_string()))?;
    let mut config: CampaignConfig = serde_json::from_value(v["config"].clone()).map_err(|e| GatewayError::Config {
        path: "campaigns.db".into(),
        message: format!("campaign `{id}` was not started by the gateway: {e}"),
    })?;
    config.campaign_id = Some(id.to_string());
    let twin = serde_json::from_value::<TwinRecord>(v["twin"].clone()).ok();
    Ok(Some(Stored { config, status, twin }))
}

/// Claims campaign id `id` for a new campaign: its row is written with the settings (status `running`).
/// An id that exists is refused, pointing to `resume` and `status`.
pub fn claim(db: &rusqlite::Connection, id: &str, config: &CampaignConfig) -> Result<(), GatewayError> {
    let cfg = json!({ "config": config, "twin": Value::Null });
    let inserted = db
        .execute(
            "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, status, config, created_at) VALUES (?1, 'dose_finding', 'optimal_tbhp_dose', ?2, 'running', ?3, ?2) \
             ON CONFLICT (campaign_id) DO NOTHING",
            params![id, cellos_host::time::now(), cfg.to_string()],
        )
        .map_err(sql)?;
    if inserted == 0 {
        let status: String =
            db.query_row("SELECT status FROM campaigns WHERE campaign_id = ?1", [id], |r| r.get(0)).map_err(sql)?;
        return Err(GatewayError::Config {
            path: "campaign".into(),
            message: format!(
                "campaign `{id}` already exists ({status}): `cellos-gateway campaign resume {id}` continues it, `campaign status {id}` shows it; give another campaign_id for a new one"
            ),
        });
    }
    Ok(())
}

/// Records the twin a campaign runs on in its row.
pub fn record_twin(db: &rusqlite::Connection, id: &str, twin: &TwinRecord) -> Result<(), GatewayError> {
    db.execute(
        "UPDATE campaigns SET config = json_set(config, '$.twin', json(?2)) WHERE campaign_id = ?1",
        params![id, serde_json::to_string(twin).unwrap_or_default()],
    )
    .map_err(sql)?;
    Ok(())
}

/// Sets a campaign's status (`failed` with the reason, `abandoned`, `running`).
pub fn set_status(
    db: &rusqlite::Connection,
    id: &str,
    status: &str,
    failure: Option<&str>,
) -> Result<(), GatewayError> {
    db
        .execute(
            "UPDATE campaigns SET status = ?2, failure = ?3, end_date = CASE WHEN ?2 = 'running' THEN NULL ELSE ?4 END WHERE campaign_id = ?1",
            params![id, status, failure, cellos_host::time::now()],
        )
        .map_err(sql)?;
    Ok(())
}

/// Who an instrument is, as a campaign records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentId {
    /// What the instrument answered, field by field (STAR: `serial`, `firmware`; reader: `instance`,
    /// `seed`).
    pub fields: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

impl InstrumentId {
    /// An identity from `(field, value)` pairs.
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> InstrumentId {
        InstrumentId { fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }
}

/// The identity a campaign last recorded for an instrument role (`star`, `reader`).
pub fn recorded_identity(
    db: &rusqlite::Connection,
    id: &str,
    role: &str,
) -> Result<Option<InstrumentId>, GatewayError> {
    let v: Option<String> = db
        .query_row(
            "SELECT identity FROM campaign_instruments WHERE campaign_id = ?1 AND role = ?2 ORDER BY entry_id DESC LIMIT 1",
            params![id, role],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    v.map(|v| serde_json::from_str(&v).map_err(|e| GatewayError::Campaign(format!("recorded {role} identity: {e}"))))
        .transpose()
}

/// Checks an instrument against the identity the campaign recorded for its role, or records it if
/// there is none yet (or `note` says why it replaces the recorded one). A different instrument is
/// refused, naming the one expected and the one that answered.
pub fn check_identity(
    db: &rusqlite::Connection,
    id: &str,
    role: &str,
    port: &str,
    answered: &InstrumentId,
    replaces: Option<&str>,
) -> Result<(), GatewayError> {
    match recorded_identity(db, id, role)? {
        Some(expected) if &expected == answered => Ok(()),
        Some(expected) if replaces.is_none() => Err(GatewayError::WrongInstrument {
            role: role.to_string(),
            port: port.to_string(),
            expected: expected.to_string(),
            answered: answered.to_string(),
        }),
        _ => {
            db.execute(
                    "INSERT INTO campaign_instruments (campaign_id, role, identity, port, recorded_at, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, role, serde_json::to_string(answered).unwrap_or_default(), port, cellos_host::time::now(), replaces],
                )
                .map_err(sql)?;
            Ok(())
        }
    }
}

/// The lock of a campaign: held by the one process running it (a lock file in the data directory,
/// released by the kernel when the process ends, however it ends).
pub struct CampaignLock {
    _file: std::fs::File,
}

impl CampaignLock {
    /// Takes the lock of campaign `id`, or says that another process holds it.
    pub fn take(dir: &Path, id: &str) -> Result<CampaignLock, GatewayError> {
        let safe: String =
            id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let path = dir.join(format!(".campaign-{safe}.lock"));
        let file =
            cellos_host::store::lock_file(&path).map_err(|source| GatewayError::Io { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(CampaignLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(GatewayError::Config {
                path: dir.into(),
                message: format!(
                    "campaign `{id}` is being run by another process; `campaign status {id}` shows its progress"
                ),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(GatewayError::Io { path, source }),
        }
    }
}

/// A campaign's progress, read from the databases (another process may be running it).
pub fn status(data_dir: &Path, id: &str) -> Result<Value, GatewayError> {
    // Read-only: works on a read-only data directory and migrates nothing.
    let conn = cellos_host::store::open_read_only(data_dir, Db::Campaigns).map_err(host)?;
    let row: Option<(String, Option<String>, Option<String>)> = conn
        .query_row("SELECT status, results_summary, failure FROM campaigns WHERE campaign_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(sql)?;
    let (state, summary, failure) =
        row.ok_or_else(|| GatewayError::Config { path: data_dir.into(), message: format!("no campaign `{id}`") })?;
    let iterations: i64 = conn
        .query_row("SELECT count(*) FROM campaign_iterations WHERE campaign_id = ?1", [id], |r| r.get(0))
        .map_err(sql)?;
    let journal: i64 =
        conn.query_row("SELECT count(*) FROM journal WHERE campaign_id = ?1", [id], |r| r.get(0)).map_err(sql)?;
    let pending: i64 = conn
        .query_row(
            "SELECT count(*) FROM journal WHERE campaign_id = ?1 AND state NOT IN ('done', 'reconciled')",
            [id],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let mut st = conn
        .prepare("SELECT cell_line_id, key, value FROM stage_outputs WHERE campaign_id = ?1 ORDER BY cell_line_id, output_id")
        .map_err(sql)?;
    let outputs: Vec<Value> = st
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .map_err(sql)?
        .filter_map(Result::ok)
        .map(|(l, k, v)| json!({ "line": l, "key": k, "value": serde_json::from_str::<Value>(&v).unwrap_or(Value::Null) }))
        .collect();
    Ok(
        json!({ "campaign_id": id, "status": state, "failure": failure, "iterations": iterations, "journal_entries": journal, "journal_not_done": pending,
               "outputs": outputs, "summary": summary.and_then(|s| serde_json::from_str::<Value>(&s).ok()) }),
    )
}
