//! A campaign's settings, checked once, before anything is written or any instrument is touched: every
//! error names the field and the allowed range.

use cellos_core::search::{DoseSearch, SearchConfig, Strategy, TbhpAssay};
use serde::{Deserialize, Serialize};

use super::{FINAL_UL, LOWEST_UM, MIN_UL, SEED_UL, STOCK_UM};
use crate::GatewayError;

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
    /// `automated` (on the reader link) or `manual`: an operator moves the plates in and out, asked
    /// through prompts, and the gateway keeps the time.
    #[serde(default)]
    pub incubator: Equipment,
    /// `automated` (on the reader link) or `manual`: an operator reads the plate on a stand-alone reader
    /// and uploads its export.
    #[serde(default)]
    pub reader: Equipment,
    /// Lab time runs this many times faster than real time (a twin started with `--time-scale N`);
    /// 1 on a real bench. Sets when a manual incubation ends and how long an automated one may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// Pipetting channels the campaign uses at once, 1–8 (absent: all the instrument has, at most 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
}

/// How an incubator or a reader is worked.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Equipment {
    /// By the gateway, over its link.
    #[default]
    Automated,
    /// By an operator, whom the gateway asks.
    Manual,
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
    45
}
fn one() -> u64 {
    1
}

impl CampaignConfig {
    /// The demo's settings: U2OS, HepG2 and A549, adaptive, 45 wells each.
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
                "the search scouts from a twentieth of the upper end, which must be at least {least} µM: give an upper end of at least {} µM",
                least * SCOUT_SPAN
            )));
        }
        if let Some(n) = self.time_scale
            && !(n.is_finite() && n > 0.0)
        {
            return Err(bad(format!("time_scale = {n}: give a positive number (1 on a real bench)")));
        }
        if self.budget_wells == 0 {
            return Err(bad("budget_wells = 0: the search needs at least one well".into()));
        }
        if let Some(c) = self.channels
            && !(1..=8).contains(&c)
        {
            return Err(bad(format!("channels = {c}: give 1 to 8")));
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

    /// Real seconds one lab hour takes.
    pub fn seconds_per_hour(&self) -> f64 {
        3600.0 / self.time_scale.unwrap_or(1.0)
    }

    /// Whether an operator is needed (a manual incubator or reader).
    pub fn needs_operator(&self) -> bool {
        self.incubator == Equipment::Manual || self.reader == Equipment::Manual
    }

    pub(super) fn search(&self) -> Result<DoseSearch, GatewayError> {
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
/// The adaptive search scouts from a twentieth of the upper end of the range.
use cellos_core::search::SCOUT_SPAN;

/// The most wells a search can take from its line's plate: every batch at its largest, plus a control
/// well per batch. Batches are the scouts, then `batch_wells` each until the budget is spent (adaptive),
/// or the whole grid at once.
pub fn plate_wells_needed(strategy: Strategy, c: &SearchConfig) -> usize {
    let budget = usize::from(c.budget_wells);
    match strategy {
        Strategy::Grid => budget.min(12 * usize::from(c.replicates)) + 1,
        Strategy::Adaptive => budget + c.max_rounds(strategy, MAX_BATCH),
    }
}

/// The most doses the runner offers a search per iteration.
pub const MAX_BATCH: usize = 64;
