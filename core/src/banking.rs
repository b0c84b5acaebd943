//! Cell banking: expanding a vial into a master (MCB) or working (WCB) cell bank, day by day.
//!
//! `MODEL.md` §5: thaw a vial into a T75 flask (capacity 2.5e7 cells), grow with the growth model,
//! passage a flask when its confluence exceeds 0.8 into `n = clamp(floor(N / 0.5e6), 1, 20)` flasks, and
//! stop when the cells reach target vials × cells per vial (or after 60 days); then freeze
//! `min(floor(total / cells per vial), target)` vials, and the rest is waste.
//!
//! A [`BankingRun`] advances one day per [`BankingRun::step_day`] and reports that day's work and
//! state ([`DayReport`]): the facility planner stacks these reports. Flasks are bounded
//! ([`MAX_FLASKS`]); cells a passage cannot place for lack of flasks are counted as waste.
//!
//! ASSUMPTIONS, ours, not the legacy platform's: a thawed vial's cells attach with the line's seeding
//! efficiency; a T75 holds 15 mL of medium, which a feed replaces and each new flask of a passage
//! receives; freezing takes the day's passage-or-feed handling and no extra time.

use core::fmt;

use rand_core::RngCore;

use crate::model::{Culture, GrowthConstants, ModelError};
use crate::params::CellLineParams;
use crate::rng::uniform_open01;

/// Most flasks one run can hold.
pub const MAX_FLASKS: usize = 64;

/// Which bank is being made.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BankKind {
    /// Master cell bank, from a vendor vial.
    Master,
    /// Working cell bank, from one master-bank vial.
    Working,
}

/// The settings of a banking run; [`BankingConfig::mcb`] and [`BankingConfig::wcb`] are the legacy ones.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BankingConfig {
    /// Which bank.
    pub kind: BankKind,
    /// Vials to freeze.
    pub target_vials: u16,
    /// Cells per frozen vial (and in the vial thawed).
    pub cells_per_vial: f64,
    /// Cells at confluence 1 in one flask (T75: 2.5e7).
    pub flask_capacity: f64,
    /// A flask above this confluence is passaged.
    pub passage_confluence: f64,
    /// A passage makes one new flask per this many cells…
    pub cells_per_new_flask: f64,
    /// …but at most this many.
    pub max_split: u16,
    /// Give up (and freeze what there is) after this many days.
    pub max_days: u16,
    /// Medium per flask per feed, and per new flask at passage, mL.
    pub media_per_flask_ml: f64,
}

impl BankingConfig {
    fn legacy(kind: BankKind, target_vials: u16) -> BankingConfig {
        BankingConfig {
            kind,
            target_vials,
            cells_per_vial: 1e6,
            flask_capacity: 2.5e7,
            passage_confluence: 0.8,
            cells_per_new_flask: 0.5e6,
            max_split: 20,
            max_days: 60,
            media_per_flask_ml: 15.0,
        }
    }

    /// The legacy master bank: 10 vials of 1e6 cells.
    pub fn mcb() -> BankingConfig {
        Self::legacy(BankKind::Master, 10)
    }

    /// The legacy working bank: 30 vials of 1e6 cells.
    pub fn wcb() -> BankingConfig {
        Self::legacy(BankKind::Working, 30)
    }
}

/// Daily resource loads of `MODEL.md` §5, hours.
pub mod load {
    /// Staff hours every day.
    pub const BASE_STAFF_H: f64 = 0.1;
    /// Extra BSC hours on day 1 (the thaw).
    pub const THAW_BSC_H: f64 = 1.0;
    /// Extra staff hours on day 1.
    pub const THAW_STAFF_H: f64 = 1.0;
    /// BSC hours per flask passaged.
    pub const PASSAGE_BSC_H: f64 = 0.5;
    /// Staff hours per flask passaged.
    pub const PASSAGE_STAFF_H: f64 = 0.75;
    /// BSC hours per flask fed.
    pub const FEED_BSC_H: f64 = 0.1;
    /// Staff hours per flask fed.
    pub const FEED_STAFF_H: f64 = 0.15;
    /// Contamination risk per flask-day is this × days since passage × [`CONTAMINATION_FACTOR`].
    pub const CONTAMINATION_BASE: f64 = 0.01;
    /// See [`CONTAMINATION_BASE`].
    pub const CONTAMINATION_FACTOR: f64 = 0.05;
}

/// One day of a run.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct DayReport {
    /// Day number, from 1 (the thaw).
    pub day: u16,
    /// Flasks in culture at the end of the day.
    pub flasks: u16,
    /// Cells in culture at the end of the day (before freezing).
    pub total_cells: f64,
    /// Mean confluence over the flasks.
    pub mean_confluence: f64,
    /// Mean viability over the flasks.
    pub mean_viability: f64,
    /// Biosafety-cabinet hours worked.
    pub bsc_h: f64,
    /// Staff hours worked.
    pub staff_h: f64,
    /// Medium used, mL.
    pub media_ml: f64,
    /// Flasks passaged.
    pub passages: u16,
    /// Flasks fed.
    pub feeds: u16,
    /// New flasks made by passages.
    pub new_flasks: u16,
    /// Flasks lost to contamination.
    pub contaminated: u16,
    /// Vials frozen (non-zero on the last day only).
    pub vials_frozen: u16,
}

/// Why a run ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StopReason {
    /// Enough cells for the target.
    TargetReached,
    /// The day limit passed first.
    DayLimit,
    /// Every flask was lost.
    AllFlasksLost,
}

/// The result of a finished run.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BankOutcome {
    /// Vials frozen.
    pub vials: u16,
    /// Cells not frozen: the rest at the end, plus cells a passage could not place.
    pub waste_cells: f64,
    /// Days the run took.
    pub days: u16,
    /// Flasks lost to contamination over the run.
    pub contamination_events: u16,
    /// Why it ended.
    pub reason: StopReason,
}

/// Why a run could not start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BankingError {
    /// A setting is out of range.
    InvalidConfig,
    /// The thaw was refused by the model.
    Model(ModelError),
}

impl fmt::Display for BankingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankingError::InvalidConfig => f.write_str("banking settings out of range"),
            BankingError::Model(e) => write!(f, "thaw refused: {e}"),
        }
    }
}

impl core::error::Error for BankingError {}

/// A banking run in progress.
#[derive(Clone, Debug)]
pub struct BankingRun {
    config: BankingConfig,
    line: CellLineParams,
    constants: GrowthConstants,
    flasks: heapless::Vec<Culture, MAX_FLASKS>,
    day: u16,
    waste_cells: f64,
    contamination_events: u16,
    outcome: Option<BankOutcome>,
}

impl BankingRun {
    /// A run that thaws one vial on day 1.
    pub fn new(line: CellLineParams, config: BankingConfig, constants: GrowthConstants) -> Result<Self, BankingError> {
        let ok = config.target_vials > 0
            && config.cells_per_vial > 0.0
            && config.flask_capacity > 0.0
            && config.passage_confluence > 0.0
            && config.cells_per_new_flask > 0.0
            && config.max_split > 0
            && config.max_days > 0
            && config.media_per_flask_ml >= 0.0;
        if !ok {
            return Err(BankingError::InvalidConfig);
        }
        Ok(BankingRun {
            config,
            line,
            constants,
            flasks: heapless::Vec::new(),
            day: 0,
            waste_cells: 0.0,
            contamination_events: 0,
            outcome: None,
        })
    }

    /// The outcome, once the run has ended.
    pub fn outcome(&self) -> Option<BankOutcome> {
        self.outcome
    }

    /// The flasks in culture.
    pub fn flasks(&self) -> &[Culture] {
        &self.flasks
    }

    /// Runs one day: thaw (day 1), 24 h of growth, contamination draws, passage or feed of each flask,
    /// and the stop check. Returns `None` once the run has ended.
    pub fn step_day<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> Result<Option<DayReport>, BankingError> {
        if self.outcome.is_some() {
            return Ok(None);
        }
        let cfg = self.config;
        self.day += 1;
        let mut r = DayReport {
            day: self.day,
            flasks: 0,
            total_cells: 0.0,
            mean_confluence: 0.0,
            mean_viability: 0.0,
            bsc_h: 0.0,
            staff_h: load::BASE_STAFF_H,
            media_ml: 0.0,
            passages: 0,
            feeds: 0,
            new_flasks: 0,
            contaminated: 0,
            vials_frozen: 0,
        };
        if self.day == 1 {
            let cells = cfg.cells_per_vial * self.line.seeding_efficiency;
            let flask = Culture::seed(cells, cfg.flask_capacity, false).map_err(BankingError::Model)?;
            let _ = self.flasks.push(flask);
            r.bsc_h += load::THAW_BSC_H;
            r.staff_h += load::THAW_STAFF_H;
            r.media_ml += cfg.media_per_flask_ml;
        }
        // Growth, then contamination: a flask's risk grows with the days since it was last passaged.
        let mut i = 0;
        while i < self.flasks.len() {
            let _ = self.flasks[i].grow(&self.line, &self.constants, 24.0);
            let days_since_passage = self.flasks[i].age_h() / 24.0;
            let risk = load::CONTAMINATION_BASE * days_since_passage * load::CONTAMINATION_FACTOR;
            if uniform_open01(rng) < risk {
                let lost = self.flasks.swap_remove(i);
                self.waste_cells += lost.cells();
                r.contaminated += 1;
                continue;
            }
            i += 1;
        }
        self.contamination_events += r.contaminated;
        // Passage the confluent flasks; feed the others.
        let existing = self.flasks.len();
        for i in 0..existing {
            let flask = self.flasks[i].clone();
            let passaged = if flask.confluence() > cfg.passage_confluence {
                let n = libm::floor(flask.cells() / cfg.cells_per_new_flask).clamp(1.0, f64::from(cfg.max_split));
                flask.passaged(&self.line, n).ok().map(|child| (child, n as u16))
            } else {
                None
            };
            match passaged {
                Some((child, n)) => {
                    r.passages += 1;
                    r.bsc_h += load::PASSAGE_BSC_H;
                    r.staff_h += load::PASSAGE_STAFF_H;
                    self.flasks[i] = child.clone();
                    r.media_ml += cfg.media_per_flask_ml;
                    for _ in 1..n {
                        if self.flasks.push(child.clone()).is_err() {
                            self.waste_cells += child.cells();
                        } else {
                            r.new_flasks += 1;
                            r.media_ml += cfg.media_per_flask_ml;
                        }
                    }
                }
                None => {
                    r.feeds += 1;
                    r.bsc_h += load::FEED_BSC_H;
                    r.staff_h += load::FEED_STAFF_H;
                    r.media_ml += cfg.media_per_flask_ml;
                }
            }
        }
        let n = self.flasks.len();
        r.flasks = n as u16;
        r.total_cells = self.flasks.iter().map(Culture::cells).sum();
        if n > 0 {
            r.mean_confluence = self.flasks.iter().map(Culture::confluence).sum::<f64>() / n as f64;
            r.mean_viability = self.flasks.iter().map(Culture::viability).sum::<f64>() / n as f64;
        }
        let needed = f64::from(cfg.target_vials) * cfg.cells_per_vial;
        let reason = if n == 0 {
            Some(StopReason::AllFlasksLost)
        } else if r.total_cells >= needed {
            Some(StopReason::TargetReached)
        } else if self.day >= cfg.max_days {
            Some(StopReason::DayLimit)
        } else {
            None
        };
        if let Some(reason) = reason {
            let vials = libm::floor(r.total_cells / cfg.cells_per_vial).min(f64::from(cfg.target_vials)) as u16;
            r.vials_frozen = vials;
            self.waste_cells += r.total_cells - f64::from(vials) * cfg.cells_per_vial;
            self.flasks.clear();
            self.outcome = Some(BankOutcome {
                vials,
                waste_cells: self.waste_cells,
                days: self.day,
                contamination_events: self.contamination_events,
                reason,
            });
            debug!("bank finished on day {}: {} vials", self.day, vials);
        }
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::builtin;
    use crate::rng::seeded;

    fn run(line: &str, config: BankingConfig, seed: u64) -> (BankOutcome, heapless::Vec<DayReport, 64>) {
        let mut bank = BankingRun::new(builtin::cell_line(line).unwrap(), config, GrowthConstants::LEGACY).unwrap();
        let mut rng = seeded(seed);
        let mut days = heapless::Vec::new();
        while let Some(day) = bank.step_day(&mut rng).unwrap() {
            days.push(day).unwrap();
        }
        (bank.outcome().unwrap(), days)
    }

    #[test]
    fn u2os_master_bank() {
        let (out, days) = run("U2OS", BankingConfig::mcb(), 1);
        assert_eq!(out.reason, StopReason::TargetReached);
        assert_eq!(out.vials, 10);
        // 0.82e6 attached cells to 1e7: 3.6 doublings of 26 h plus the lag, about 4–6 days.
        assert!((4..=7).contains(&out.days), "{} days", out.days);
        assert_eq!(days.len(), usize::from(out.days));
        assert_eq!(days.last().unwrap().vials_frozen, 10);
        // Day 1: thaw + feed of one flask.
        let d1 = days[0];
        assert_eq!((d1.flasks, d1.feeds, d1.passages), (1, 1, 0));
        assert!((d1.bsc_h - (1.0 + 0.1)).abs() < 1e-12);
        assert!((d1.staff_h - (0.1 + 1.0 + 0.15)).abs() < 1e-12);
        // Later days: base + one feed per flask.
        let d2 = days[1];
        assert!((d2.bsc_h - 0.1 * f64::from(d2.flasks)).abs() < 1e-12);
        assert!((d2.staff_h - (0.1 + 0.15 * f64::from(d2.flasks))).abs() < 1e-12);
        assert!(days.windows(2).all(|w| w[1].total_cells > w[0].total_cells));
        // Nothing is lost: frozen + waste = the cells at the end.
        let end = days.last().unwrap().total_cells;
        assert!((out.waste_cells + 1e7 - end).abs() < 1e-3 * end);
    }

    #[test]
    fn working_bank_passages_and_loads() {
        let (out, days) = run("U2OS", BankingConfig::wcb(), 2);
        assert_eq!(out.vials, 30);
        let passage_day = days.iter().find(|d| d.passages > 0).expect("a WCB needs a passage");
        // A flask above 0.8 confluence (2e7 cells) splits into the 20-flask maximum.
        assert_eq!(passage_day.new_flasks, 19);
        assert_eq!(passage_day.flasks, 20);
        let expect_bsc = 0.5 * f64::from(passage_day.passages) + 0.1 * f64::from(passage_day.feeds);
        let expect_staff = 0.1 + 0.75 * f64::from(passage_day.passages) + 0.15 * f64::from(passage_day.feeds);
        assert!((passage_day.bsc_h - expect_bsc).abs() < 1e-12);
        assert!((passage_day.staff_h - expect_staff).abs() < 1e-12);
        assert!(out.days < 20, "{}", out.days);
    }

    #[test]
    fn slow_lines_take_longer_and_day_limit_holds() {
        let (u2os, _) = run("U2OS", BankingConfig::mcb(), 3);
        let (hepg2, _) = run("HepG2", BankingConfig::mcb(), 3);
        assert!(hepg2.days > u2os.days);
        let short = BankingConfig { max_days: 2, ..BankingConfig::mcb() };
        let (out, days) = run("HepG2", short, 3);
        assert_eq!(out.reason, StopReason::DayLimit);
        assert_eq!(days.len(), 2);
        // Whatever grew is frozen, vial by whole vial.
        let total = days[1].total_cells;
        assert!(total > 1e6 && total < 2e6, "{total}");
        assert_eq!(out.vials, 1);
        assert!((out.waste_cells - (total - 1e6)).abs() < 1e-6);
    }

    #[test]
    fn contamination_comes_from_the_seed() {
        // With a certain risk, every flask is lost on day 1 and nothing is frozen.
        let mut bank =
            BankingRun::new(builtin::cell_line("U2OS").unwrap(), BankingConfig::mcb(), GrowthConstants::LEGACY)
                .unwrap();
        struct Always;
        impl RngCore for Always {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, d: &mut [u8]) {
                d.fill(0);
            }
        }
        let day = bank.step_day(&mut Always).unwrap().unwrap();
        assert_eq!(day.contaminated, 1);
        let out = bank.outcome().unwrap();
        assert_eq!((out.reason, out.vials, out.contamination_events), (StopReason::AllFlasksLost, 0, 1));
        // Same seed, same run.
        let (a, da) = run("iPSC", BankingConfig::wcb(), 77);
        let (b, db) = run("iPSC", BankingConfig::wcb(), 77);
        assert_eq!(a, b);
        assert_eq!(da, db);
    }

    #[test]
    fn invalid_config() {
        let bad = BankingConfig { target_vials: 0, ..BankingConfig::mcb() };
        let line = builtin::cell_line("U2OS").unwrap();
        assert_eq!(BankingRun::new(line, bad, GrowthConstants::LEGACY).unwrap_err(), BankingError::InvalidConfig);
    }
}
