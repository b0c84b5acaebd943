//! Dose search: which tBHP dose gives the most CellROX signal while the cells stay healthy.
//!
//! A search is a state machine with no I/O. The caller asks [`DoseSearch::next`] for a batch of doses
//! (no more than the wells it offers), runs the experiment, and hands back one [`Observation`] per well
//! with [`DoseSearch::observe`] (each carrying the dose the well really received). When the search has
//! what it needs, `next` returns [`Step::Done`] with a [`SearchResult`]: the chosen dose, the readouts
//! predicted there, a 90 % interval on the dose, a status, and the wells used.
//!
//! The goal (`MODEL.md` §4): maximise CellROX subject to mean viability ≥ 0.70 and mean segmentation
//! quality ≥ 0.80. CellROX rises with dose and both constraints fall, so the optimum is the smallest dose
//! at which a constraint binds. The criteria, range and budget are data ([`SearchConfig`]).
//!
//! Two strategies:
//!
//! - [`Strategy::Grid`], the legacy finder kept for comparison: one pass over 0 and 11 log-spaced doses,
//!   pick the qualifying dose with the highest CellROX.
//! - [`Strategy::Adaptive`]: scout the range, then fit the viability curve (a Hill curve, in log space)
//!   and the segmentation quality *per unit of viability* (each well's segmentation reading divided by
//!   its own viability reading, which cancels the well's biological noise), solve for the boundary, and
//!   place each later batch where it most reduces the variance of the boundary estimate (greedy c-optimal
//!   design on the fits' information matrices). It stops when the 90 % interval is tight enough or the
//!   budget is spent.
//!
//! Memory is bounded: at most [`MAX_WELLS`] observations are kept, in the search state itself.
//!
//! How good it can be: the binding constraint of the table's lines is segmentation, whose per-well
//! noise is the treatment's biological CV plus the reading's. Near the optimum, mean segmentation falls by
//! about 0.38 % per 1 % of dose, so 48 wells all placed at the (unknown) optimum, with the quality curve
//! known exactly and only viability noise left (HepG2: 0.07 ⊕ 0.03), would give a 90th-percentile dose
//! error of about 4.7 % for HepG2. With the untreated viability known, wells above the optimum do
//! better: there viability is more sensitive to the IC50 (the slope of `ln V` in `ln IC50` grows from
//! 0.32 at HepG2's optimum to 1 at the IC50), and the known plateau and the Hill shape carry what they
//! learn down to the boundary. For HepG2 the locally c-optimal design (linearised at the true curves,
//! with the noise as measured; `dose_search_bench` prints it as `c_optimal`) puts about 80 % of 48
//! wells near 1.7 × the optimum and the rest at 300–500 µM, for a 90th percentile of about 4.1 % (4.5 %
//! if the viability and quality fits are taken as independent, as here). So the design's candidates
//! cover every dose from below the optimum to the range's top.
//! `examples/dose_search_bench.rs` measures how close the adaptive strategy comes.

use core::fmt;

use rand_core::RngCore;

use crate::fit::{self, FitOptions, FourPl, Model};
use crate::model::{CompoundId, Culture, GrowthConstants, INITIAL_VIABILITY};
use crate::params::{CellLineParams, CellRoxParams, CompoundSensitivity, SegmentationParams};
use crate::readout;

/// The adaptive search scouts from `hi / SCOUT_SPAN` to `hi`. Below a twentieth of the range's top the
/// table's lines barely respond (HepG2 keeps 97 % of its viability at 25 µM), and a well there falls
/// outside the clamp-free range the fits use: from a fiftieth, three of eight scouts (10, 17.5 and
/// 30.6 µM) were lost that way for HepG2.
pub const SCOUT_SPAN: f64 = 20.0;
/// The largest number of wells one search can use.
pub const MAX_WELLS: usize = 128;
/// Number of doses in the legacy grid.
pub const GRID_DOSES: usize = 12;
/// z-value of a two-sided 90 % interval.
const Z90: f64 = 1.6448536269514722;

/// What counts as a good dose.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Criteria {
    /// Mean viability must be at least this.
    pub min_viability: f64,
    /// Mean segmentation quality must be at least this.
    pub min_segmentation: f64,
    /// CellROX signal (AU) a successful dose reaches.
    pub target_cellrox_au: f64,
    /// Fallback score weight of viability.
    pub weight_viability: f64,
    /// Fallback score weight of `min(CellROX / target, 1)`.
    pub weight_cellrox: f64,
    /// Fallback score weight of segmentation.
    pub weight_segmentation: f64,
}

impl Default for Criteria {
    /// The legacy criteria: viability ≥ 0.70, segmentation ≥ 0.80, target 200 AU, weights 2 / 1 / 1.5.
    fn default() -> Self {
        Criteria {
            min_viability: 0.70,
            min_segmentation: 0.80,
            target_cellrox_au: 200.0,
            weight_viability: 2.0,
            weight_cellrox: 1.0,
            weight_segmentation: 1.5,
        }
    }
}

impl Criteria {
    fn qualifies(&self, o: &Observation) -> bool {
        o.viability >= self.min_viability && o.segmentation >= self.min_segmentation
    }

    fn fallback_score(&self, o: &Observation) -> f64 {
        self.weight_viability * o.viability
            + self.weight_cellrox * (o.cellrox_au / self.target_cellrox_au).min(1.0)
            + self.weight_segmentation * o.segmentation
    }
}

/// Which search to run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Strategy {
    /// The legacy single pass over 12 doses.
    Grid,
    /// Scout, fit, and place later doses at the constraint boundary.
    Adaptive,
}

/// Settings of a search.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Lowest dose considered, µM.
    pub lo_um: f64,
    /// Highest dose considered, µM.
    pub hi_um: f64,
    /// Most wells the search may use (at most [`MAX_WELLS`]).
    pub budget_wells: u16,
    /// What counts as a good dose.
    pub criteria: Criteria,
    /// Grid: wells per grid dose. Adaptive: ignored.
    pub replicates: u16,
    /// Adaptive: wells in the first, scouting batch.
    pub scout_wells: u16,
    /// Adaptive: wells per later batch.
    pub batch_wells: u16,
    /// Adaptive: stop once the 90 % interval's half width, relative to the dose, is below this.
    pub target_rel_halfwidth: f64,
    /// Adaptive: segmentation quality per viable cell of untreated wells, when known (`MODEL.md` §3
    /// defines it as 1); `None` fits it from the data, at the cost of precision.
    pub quality_plateau: Option<f64>,
    /// Adaptive: mean viability of untreated wells, when known (the model seeds every well at
    /// [`INITIAL_VIABILITY`]; a bench measures it on its controls); `None` fits it from the treated
    /// wells, at the cost of precision (`dose_search_bench` prints both, the second as
    /// `strategy=adaptive_fitted_plateau`).
    pub viability_plateau: Option<f64>,
}

impl SearchConfig {
    /// The legacy grid: 0–500 µM, 12 wells, one per dose.
    pub fn legacy_grid() -> SearchConfig {
        SearchConfig {
            lo_um: 0.0,
            hi_um: 500.0,
            budget_wells: GRID_DOSES as u16,
            criteria: Criteria::default(),
            replicates: 1,
            scout_wells: 12,
            batch_wells: 12,
            target_rel_halfwidth: 0.03,
            quality_plateau: Some(1.0),
            viability_plateau: Some(INITIAL_VIABILITY),
        }
    }

    /// The adaptive search's defaults: 0–500 µM, at most 45 wells in three rounds: 11 scouts, then two
    /// batches of 17. With a campaign's control well in each round, a round takes 12, 18 and 18 wells:
    /// whole columns of a plate's six inner rows, so that each of the eight-channel arm's commands serves a
    /// full column (at 8, 20 and 20 the rounds took 9, 21 and 21 wells, ten columns where eight do).
    pub fn adaptive() -> SearchConfig {
        SearchConfig { budget_wells: 45, scout_wells: 11, batch_wells: 17, ..SearchConfig::legacy_grid() }
    }

    /// The most rounds (batches) the search can take: the scouts, then batches until the budget is spent
    /// (adaptive); the grid's passes of at most `wells_per_round` wells.
    pub fn max_rounds(&self, strategy: Strategy, wells_per_round: usize) -> usize {
        let budget = usize::from(self.budget_wells);
        match strategy {
            Strategy::Grid => (GRID_DOSES * usize::from(self.replicates)).min(budget).div_ceil(wells_per_round.max(1)),
            Strategy::Adaptive => {
                let scouts = budget.min(usize::from(self.scout_wells));
                1 + (budget - scouts).div_ceil(usize::from(self.batch_wells).max(1))
            }
        }
    }

    fn validate(&self) -> Result<(), SearchError> {
        let ok = self.lo_um.is_finite()
            && self.hi_um.is_finite()
            && self.lo_um >= 0.0
            && self.hi_um > self.lo_um
            && self.hi_um > 0.0
            && self.budget_wells > 0
            && usize::from(self.budget_wells) <= MAX_WELLS
            && self.replicates > 0
            && self.scout_wells >= 6
            && self.batch_wells > 0
            && self.target_rel_halfwidth > 0.0
            && self.viability_plateau.is_none_or(|v| v.is_finite() && v > 0.0 && v <= 1.0);
        if ok { Ok(()) } else { Err(SearchError::InvalidConfig) }
    }
}

/// The readouts of one well.
#[derive(Copy, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Observation {
    /// The dose the well received, µM.
    pub dose_um: f64,
    /// Viability reading, 0–1.
    pub viability: f64,
    /// CellROX reading, AU.
    pub cellrox_au: f64,
    /// Segmentation-quality reading, 0–1.
    pub segmentation: f64,
}

/// How a search ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// A dose meets the constraints and reaches the target signal.
    Success,
    /// A dose meets the constraints but its signal is below the target.
    SuboptimalSignal,
    /// No dose meets the constraints; the fallback score chose.
    FailedConstraints,
}

impl Status {
    /// The legacy spelling: `success`, `suboptimal_signal`, `failed_constraints`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::SuboptimalSignal => "suboptimal_signal",
            Status::FailedConstraints => "failed_constraints",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a search.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The chosen dose, µM.
    pub dose_um: f64,
    /// Readouts expected at that dose (`dose_um` repeated inside).
    pub predicted: Observation,
    /// Lower end of the 90 % interval on the dose, µM.
    pub lo_um: f64,
    /// Upper end of the 90 % interval on the dose, µM.
    pub hi_um: f64,
    /// How the search ended.
    pub status: Status,
    /// Wells observed.
    pub wells: u16,
}

/// What the search wants next.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Step {
    /// Run this many wells at the doses written into the caller's buffer, then call `observe`.
    Batch(usize),
    /// The search is over.
    Done(SearchResult),
}

/// Why a search call was refused. The state is unchanged when one is returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SearchError {
    /// The configuration is out of range (range, budget above [`MAX_WELLS`], zero batch…).
    InvalidConfig,
    /// `next` was called while a batch is still waiting for its observations.
    AwaitingObservations,
    /// `observe` was called with no batch outstanding, or with more observations than wells asked for.
    UnexpectedObservations,
    /// An observation holds a negative or non-finite value.
    InvalidObservation,
    /// `next` was offered no wells, or a buffer too small for one dose.
    NoWells,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SearchError::InvalidConfig => "search configuration out of range",
            SearchError::AwaitingObservations => "the previous batch has not been observed yet",
            SearchError::UnexpectedObservations => "more observations than wells were asked for",
            SearchError::InvalidObservation => "an observation is negative or not finite",
            SearchError::NoWells => "no wells offered for the next batch",
        })
    }
}

impl core::error::Error for SearchError {}

/// The legacy dose grid: 0, then 11 log-spaced doses from `max(1, lo)` to `hi`.
pub fn legacy_grid(lo_um: f64, hi_um: f64) -> [f64; GRID_DOSES] {
    let start = lo_um.max(1.0);
    let (a, b) = (libm::log(start), libm::log(hi_um));
    core::array::from_fn(|i| match i {
        0 => 0.0,
        i if i == GRID_DOSES - 1 => hi_um,
        i => libm::exp(a + (b - a) * (i - 1) as f64 / (GRID_DOSES - 2) as f64),
    })
}

/// A dose search of either strategy, behind one interface.
#[derive(Clone, Debug)]
pub struct DoseSearch {
    config: SearchConfig,
    strategy: Strategy,
    observations: heapless::Vec<Observation, MAX_WELLS>,
    pending: usize,
    proposed: usize,
    done: Option<SearchResult>,
    estimate: Option<Estimate>,
}

impl DoseSearch {
    /// A new search.
    pub fn new(strategy: Strategy, config: SearchConfig) -> Result<DoseSearch, SearchError> {
        config.validate()?;
        if strategy == Strategy::Grid && usize::from(config.replicates) * GRID_DOSES > usize::from(config.budget_wells)
        {
            return Err(SearchError::InvalidConfig);
        }
        Ok(DoseSearch {
            config,
            strategy,
            observations: heapless::Vec::new(),
            pending: 0,
            proposed: 0,
            done: None,
            estimate: None,
        })
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The configuration.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Every observation so far.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// The next batch: writes at most `doses.len()` doses and returns [`Step::Batch`] with their
    /// number, or [`Step::Done`].
    pub fn next(&mut self, doses: &mut [f64]) -> Result<Step, SearchError> {
        if self.pending > 0 {
            return Err(SearchError::AwaitingObservations);
        }
        if let Some(done) = self.done {
            return Ok(Step::Done(done));
        }
        if doses.is_empty() {
            return Err(SearchError::NoWells);
        }
        let left = usize::from(self.config.budget_wells) - self.observations.len();
        let n = match self.strategy {
            Strategy::Grid => self.next_grid(doses, left),
            Strategy::Adaptive => self.next_adaptive(doses, left),
        };
        if n == 0 {
            let result = self.finish();
            info!("dose search done: {} µM ({} wells)", result.dose_um, result.wells);
            self.done = Some(result);
            return Ok(Step::Done(result));
        }
        self.pending = n;
        self.proposed += n;
        Ok(Step::Batch(n))
    }

    /// The most wells the batch after the one outstanding can ask for when `offered` are offered (0 when
    /// there will be none): a runner that prepares the next batch's wells while this one is under way
    /// (cells seeded a day ahead) prepares this many. The batch may then ask for fewer, or end the search.
    pub fn upcoming(&self, offered: usize) -> usize {
        if self.done.is_some() {
            return 0;
        }
        let left = usize::from(self.config.budget_wells).saturating_sub(self.observations.len() + self.pending);
        let n = match self.strategy {
            Strategy::Grid => (GRID_DOSES * usize::from(self.config.replicates)).saturating_sub(self.proposed),
            Strategy::Adaptive if self.proposed == 0 => usize::from(self.config.scout_wells),
            Strategy::Adaptive => usize::from(self.config.batch_wells),
        };
        n.min(left).min(offered)
    }

    /// Records the readouts of the last batch (fewer than asked for is allowed: a lost well is simply
    /// not observed).
    pub fn observe(&mut self, readouts: &[Observation]) -> Result<(), SearchError> {
        if readouts.len() > self.pending {
            return Err(SearchError::UnexpectedObservations);
        }
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        if readouts
            .iter()
            .any(|o| !(valid(o.dose_um) && valid(o.viability) && valid(o.cellrox_au) && valid(o.segmentation)))
        {
            return Err(SearchError::InvalidObservation);
        }
        for o in readouts {
            // Cannot overflow: the budget is at most MAX_WELLS and batches never exceed what is left.
            let _ = self.observations.push(*o);
        }
        self.pending = 0;
        Ok(())
    }

    fn next_grid(&mut self, doses: &mut [f64], left: usize) -> usize {
        let grid = legacy_grid(self.config.lo_um, self.config.hi_um);
        let total = GRID_DOSES * usize::from(self.config.replicates);
        let n = doses.len().min(total.saturating_sub(self.proposed)).min(left);
        for (k, d) in doses[..n].iter_mut().enumerate() {
            *d = grid[(self.proposed + k) % GRID_DOSES];
        }
        n
    }

    fn finish(&self) -> SearchResult {
        match self.strategy {
            Strategy::Grid => self.finish_grid(),
            Strategy::Adaptive => self.finish_adaptive(),
        }
    }

    /// Per-dose means of the observations, in dose order (at most [`MAX_WELLS`] groups).
    fn dose_means(&self) -> heapless::Vec<Observation, MAX_WELLS> {
        let mut groups: heapless::Vec<(Observation, u16), MAX_WELLS> = heapless::Vec::new();
        for o in &self.observations {
            match groups.iter_mut().find(|(g, _)| g.dose_um == o.dose_um) {
                Some((g, n)) => {
                    g.viability += o.viability;
                    g.cellrox_au += o.cellrox_au;
                    g.segmentation += o.segmentation;
                    *n += 1;
                }
                None => {
                    let _ = groups.push((*o, 1));
                }
            }
        }
        groups.sort_unstable_by(|a, b| a.0.dose_um.total_cmp(&b.0.dose_um));
        groups
            .iter()
            .map(|(g, n)| {
                let n = f64::from(*n);
                Observation {
                    dose_um: g.dose_um,
                    viability: g.viability / n,
                    cellrox_au: g.cellrox_au / n,
                    segmentation: g.segmentation / n,
                }
            })
            .collect()
    }

    /// The legacy choice over per-dose means: the qualifying dose with the highest CellROX, else the
    /// best fallback score.
    fn pick_from_means(&self) -> (Observation, Status, usize, usize) {
        let means = self.dose_means();
        let c = &self.config.criteria;
        let best_qualifying = means
            .iter()
            .enumerate()
            .filter(|(_, o)| c.qualifies(o))
            .max_by(|a, b| a.1.cellrox_au.total_cmp(&b.1.cellrox_au));
        let (i, status) = match best_qualifying {
            Some((i, o)) if o.cellrox_au >= c.target_cellrox_au => (i, Status::Success),
            Some((i, _)) => (i, Status::SuboptimalSignal),
            None => {
                let i = means
                    .iter()
                    .enumerate()
                    .max_by(|a, b| c.fallback_score(a.1).total_cmp(&c.fallback_score(b.1)))
                    .map_or(0, |(i, _)| i);
                (i, Status::FailedConstraints)
            }
        };
        (means.get(i).copied().unwrap_or(NO_OBSERVATION), status, i, means.len())
    }

    fn finish_grid(&self) -> SearchResult {
        let (chosen, status, i, groups) = self.pick_from_means();
        let means = self.dose_means();
        // The boundary lies between the chosen dose and the next dose tried.
        let hi = if i + 1 < groups { means[i + 1].dose_um } else { self.config.hi_um };
        SearchResult {
            dose_um: chosen.dose_um,
            predicted: chosen,
            lo_um: chosen.dose_um,
            hi_um: hi,
            status,
            wells: self.observations.len() as u16,
        }
    }
}

const NO_OBSERVATION: Observation = Observation { dose_um: 0.0, viability: 0.0, cellrox_au: 0.0, segmentation: 0.0 };

// ---------------------------------------------------------------------------------------------------
// The adaptive strategy.

/// `ln V = ln top − ln(1 + (D / IC50)^h)` with parameters `[ln top, ln IC50, h]`: the viability curve in
/// log space, where multiplicative noise has constant variance.
#[derive(Copy, Clone, Debug)]
struct LogHill;

impl Model<3> for LogHill {
    fn eval(&self, x: f64, t: &[f64; 3], g: &mut [f64; 3]) -> f64 {
        let [ln_top, ln_ic50, h] = *t;
        if x <= 0.0 {
            *g = [1.0, 0.0, 0.0];
            return ln_top;
        }
        let z = h * (libm::log(x) - ln_ic50);
        // softplus(z) = ln(1 + e^z), and its derivative, the logistic a = e^z / (1 + e^z).
        let (softplus, a) = if z > 0.0 {
            let e = libm::exp(-z);
            (z + libm::log1p(e), 1.0 / (1.0 + e))
        } else {
            let e = libm::exp(z);
            (libm::log1p(e), e / (1.0 + e))
        };
        *g = [1.0, h * a, -(libm::log(x) - ln_ic50) * a];
        ln_top - softplus
    }
}

/// The adaptive search's current model of the assay.
#[derive(Copy, Clone, Debug, PartialEq)]
struct Estimate {
    /// Viability fit, `[ln top, ln IC50, h]`, and its covariance.
    viability: fit::Fit<3>,
    /// Segmentation per unit viability (a 4PL), and its covariance.
    quality: Option<fit::Fit<4>>,
    /// CellROX (a 4PL).
    cellrox: Option<fit::Fit<4>>,
    /// The estimated boundary dose and the standard error of its logarithm.
    dose_um: f64,
    ln_dose_se: f64,
    /// Whether a constraint binds inside the range (else the dose is the range's top).
    binds: bool,
    /// Whether even the lowest dose fails the constraints.
    infeasible: bool,
    /// Which viability parameters were fitted (the plateau may be held known).
    viability_free: [bool; 3],
    /// Which quality parameters were fitted (the plateau may be fixed).
    quality_free: [bool; 4],
    /// The dose above which wells are clamp-free and enter the fits.
    clamp_free_from_um: f64,
}

fn viability_at(t: &[f64; 3], dose: f64) -> f64 {
    libm::exp(LogHill.eval(dose, t, &mut [0.0; 3]))
}

fn quality_at(q: Option<&fit::Fit<4>>, dose: f64) -> f64 {
    q.map_or(1.0, |q| FourPl.eval(dose, &q.theta, &mut [0.0; 4]))
}

impl Estimate {
    /// `min(V − v_min, Q·V − s_min)` at a dose, in log terms; positive where the dose qualifies.
    fn margin(c: &Criteria, v: &[f64; 3], q: Option<&[f64; 4]>, dose: f64) -> f64 {
        let ln_v = LogHill.eval(dose, v, &mut [0.0; 3]);
        let quality = q.map_or(1.0, |q| FourPl.eval(dose, q, &mut [0.0; 4]));
        let seg = if quality > 0.0 { libm::log(quality) + ln_v } else { f64::NEG_INFINITY };
        (ln_v - libm::log(c.min_viability)).min(seg - libm::log(c.min_segmentation))
    }

    /// The boundary dose in `[lo, hi]` by bisection on `ln D` (the margin falls with dose).
    fn boundary(c: &Criteria, v: &[f64; 3], q: Option<&[f64; 4]>, lo: f64, hi: f64) -> (f64, bool, bool) {
        let lo = lo.max(hi * 1e-4);
        if Self::margin(c, v, q, lo) < 0.0 {
            return (lo, false, true);
        }
        if Self::margin(c, v, q, hi) >= 0.0 {
            return (hi, false, false);
        }
        let (mut a, mut b) = (libm::log(lo), libm::log(hi));
        for _ in 0..60 {
            let m = 0.5 * (a + b);
            if Self::margin(c, v, q, libm::exp(m)) >= 0.0 {
                a = m;
            } else {
                b = m;
            }
        }
        (libm::exp(0.5 * (a + b)), true, false)
    }

    /// Gradient of `ln D*` with respect to the viability and quality parameters, by central differences.
    fn ln_dose_gradient(&self, c: &Criteria, lo: f64, hi: f64) -> ([f64; 3], [f64; 4]) {
        let mut gv = [0.0; 3];
        let mut gq = [0.0; 4];
        if !self.binds {
            return (gv, gq);
        }
        let v = self.viability.theta;
        let q = self.quality.map(|f| f.theta);
        let solve = |v: &[f64; 3], q: Option<&[f64; 4]>| libm::log(Self::boundary(c, v, q, lo, hi).0);
        for i in 0..3 {
            let h = 1e-5 * (1.0 + libm::fabs(v[i]));
            let (mut up, mut down) = (v, v);
            up[i] += h;
            down[i] -= h;
            gv[i] = (solve(&up, q.as_ref()) - solve(&down, q.as_ref())) / (2.0 * h);
        }
        if let Some(q) = q {
            for i in 0..4 {
                let h = 1e-5 * (1.0 + libm::fabs(q[i]));
                let (mut up, mut down) = (q, q);
                up[i] += h;
                down[i] -= h;
                gq[i] = (solve(&v, Some(&up)) - solve(&v, Some(&down))) / (2.0 * h);
            }
        }
        (gv, gq)
    }
}

/// `gᵀ M⁻¹ g` for an information matrix `M` over its free parameters.
fn quadratic_inverse<const P: usize>(m: &[[f64; P]; P], g: &[f64; P], mask: &[bool; P]) -> f64 {
    match fit::invert(m, mask) {
        Some(inv) => {
            let mut s = 0.0;
            for a in 0..P {
                for b in 0..P {
                    s += g[a] * inv[a][b] * g[b];
                }
            }
            s
        }
        None => f64::INFINITY,
    }
}

/// The information matrix `Σ⁻¹` of a fit over its free parameters (zero when it cannot be inverted).
fn information<const P: usize>(f: &fit::Fit<P>) -> [[f64; P]; P] {
    let free: [bool; P] = core::array::from_fn(|i| f.covariance[i][i] != 0.0);
    fit::invert(&f.covariance, &free).unwrap_or([[0.0; P]; P])
}

/// Wells whose predicted viability is above this fraction of the fitted plateau are left out of the
/// fits: there the biology clamps survival at 1 (and the readers clamp at 1), which biases the plateau.
/// At 0.95 the bias left in the wells kept is below 0.6 % (for a biological CV of 0.06).
const CLAMP_FREE_FRACTION: f64 = 0.95;

impl DoseSearch {
    /// Log-spaced doses over `[a, b]`, `offset` in [0, 1) shifting them within their intervals.
    fn spread(out: &mut [f64], a: f64, b: f64, offset: f64) {
        let n = out.len();
        let (la, lb) = (libm::log(a), libm::log(b));
        for (i, d) in out.iter_mut().enumerate() {
            let t = if n < 2 { 0.5 } else { (i as f64 + offset) / (n - 1) as f64 };
            *d = libm::exp(la + (lb - la) * t.min(1.0));
        }
    }

    fn next_adaptive(&mut self, doses: &mut [f64], left: usize) -> usize {
        let cfg = self.config;
        let scout_lo = cfg.lo_um.max(cfg.hi_um / SCOUT_SPAN);
        if self.proposed == 0 {
            // Scouts: log-spaced from hi/20 to hi (see SCOUT_SPAN).
            let n = doses.len().min(usize::from(cfg.scout_wells)).min(left);
            Self::spread(&mut doses[..n], scout_lo, cfg.hi_um, 0.0);
            return n;
        }
        if left == 0 {
            return 0;
        }
        let n = doses.len().min(usize::from(cfg.batch_wells)).min(left);
        self.estimate = self.estimate_model();
        let after_scouts = self.observations.len() > usize::from(cfg.scout_wells);
        match self.estimate {
            None => {
                // Too few wells in the informative range: look again between the scouts.
                Self::spread(&mut doses[..n], scout_lo, cfg.hi_um, 0.5);
                n
            }
            Some(est) if est.infeasible => {
                if after_scouts {
                    return 0;
                }
                // Even the lowest dose seems to fail: check the low end once more before giving up.
                Self::spread(&mut doses[..n], cfg.lo_um.max(cfg.hi_um * 1e-3), scout_lo * 4.0, 0.0);
                n
            }
            Some(est) if !est.binds => 0,
            Some(est) if Z90 * est.ln_dose_se <= cfg.target_rel_halfwidth => 0,
            Some(est) => {
                self.design(&est, &mut doses[..n]);
                n
            }
        }
    }

    /// Greedy c-optimal design: each well goes to the candidate dose that most reduces the predicted
    /// variance of `ln D*` once its information is added to the fits'. The variance is over the fitted
    /// parameters only: a plateau held known carries no uncertainty for a well to reduce.
    fn design(&self, est: &Estimate, out: &mut [f64]) {
        const CANDIDATES: usize = 25;
        let cfg = &self.config;
        let (gv, gq) = est.ln_dose_gradient(&cfg.criteria, cfg.lo_um, cfg.hi_um);
        let mut mv = information(&est.viability);
        let mut mq = est.quality.as_ref().map(information);
        let sv2 = (est.viability.rss / est.viability.dof.max(1) as f64).max(1e-6);
        let sq2 = est.quality.as_ref().map_or(1.0, |q| (q.rss / q.dof.max(1) as f64).max(1e-6));
        // Candidates: from below D* to the range's top (above D* a known plateau makes wells more
        // informative, see the module's notes), but only where the fits will use the wells.
        let floor = cfg.lo_um.max(cfg.hi_um * 1e-4);
        let lo = (0.6 * est.dose_um).max(1.05 * est.clamp_free_from_um).max(floor).min(cfg.hi_um);
        let hi = cfg.hi_um;
        let candidate = |k: usize| libm::exp(libm::log(lo) + libm::log(hi / lo) * k as f64 / (CANDIDATES - 1) as f64);
        let (viability_free, quality_free) = (est.viability_free, est.quality_free);
        for slot in out.iter_mut() {
            let mut best = (f64::INFINITY, est.dose_um);
            for k in 0..CANDIDATES {
                let d = candidate(k);
                let mut jv = [0.0; 3];
                LogHill.eval(d, &est.viability.theta, &mut jv);
                let mut tv = mv;
                add_outer(&mut tv, &jv, 1.0 / sv2);
                let mut var = quadratic_inverse(&tv, &gv, &viability_free);
                if let (Some(q), Some(mq)) = (est.quality.as_ref(), mq.as_ref()) {
                    let mut jq = [0.0; 4];
                    FourPl.eval(d, &q.theta, &mut jq);
                    let mut tq = *mq;
                    add_outer(&mut tq, &jq, 1.0 / sq2);
                    var += quadratic_inverse(&tq, &gq, &quality_free);
                }
                if var < best.0 {
                    best = (var, d);
                }
            }
            *slot = best.1;
            let mut jv = [0.0; 3];
            LogHill.eval(best.1, &est.viability.theta, &mut jv);
            add_outer(&mut mv, &jv, 1.0 / sv2);
            if let (Some(q), Some(mq)) = (est.quality.as_ref(), mq.as_mut()) {
                let mut jq = [0.0; 4];
                FourPl.eval(best.1, &q.theta, &mut jq);
                add_outer(mq, &jq, 1.0 / sq2);
            }
        }
    }

    /// Fits viability, quality per viability and CellROX, and solves for the boundary. `None` while the
    /// wells in the clamp-free range cannot support the fits.
    fn estimate_model(&self) -> Option<Estimate> {
        let cfg = &self.config;
        let mut xs = [0.0; MAX_WELLS];
        let mut ys = [0.0; MAX_WELLS];
        let positive = |o: &&Observation| o.viability > 0.0 && o.segmentation > 0.0;
        let mut k = 0;
        for o in self.observations.iter().filter(positive) {
            xs[k] = o.dose_um;
            ys[k] = libm::log(o.viability);
            k += 1;
        }
        if k < 4 {
            return None;
        }
        let v_opts = FitOptions::<3> { lower: [-3.0, -10.0, 0.3], upper: [0.5, 12.0, 8.0], ..FitOptions::default() };
        let start =
            [ys[..k].iter().fold(f64::NEG_INFINITY, |m, &y| m.max(y)), fit::four_pl_start(&xs[..k], &ys[..k])[2], 1.0];
        let mut v_opts = v_opts;
        let mut start = start;
        // A known plateau is held, as the geometric mean the log-space fit estimates (corrected below).
        let known_top = cfg.viability_plateau.map(libm::log);
        if let Some(ln_top) = known_top {
            start[0] = ln_top;
            v_opts.fixed[0] = true;
        }
        let first = fit::levenberg_marquardt(&LogHill, &xs[..k], &ys[..k], None, start, &v_opts).ok()?;
        // Refit on the clamp-free wells only, until the set of wells used stops changing.
        let mut theta = first.theta;
        let mut viability = first;
        let mut used = k;
        for _ in 0..3 {
            let plateau = libm::exp(theta[0]);
            let mut m = 0;
            for o in self.observations.iter().filter(positive) {
                if viability_at(&theta, o.dose_um) <= CLAMP_FREE_FRACTION * plateau {
                    xs[m] = o.dose_um;
                    ys[m] = libm::log(o.viability);
                    m += 1;
                }
            }
            if m < 5 {
                return None;
            }
            viability = fit::levenberg_marquardt(&LogHill, &xs[..m], &ys[..m], None, theta, &v_opts).ok()?;
            theta = viability.theta;
            if m == used {
                break;
            }
            used = m;
        }
        // A fit in log space estimates the geometric mean, which lies s²/2 below the arithmetic mean the
        // criteria are about (multiplicative noise of variance s² in log terms): shift the plateau up.
        if viability.dof > 0 {
            let shift = 0.5 * viability.rss / viability.dof as f64;
            match known_top {
                // Held at the known arithmetic mean: refit with the geometric one under it.
                Some(ln_top) => {
                    theta[0] = ln_top - shift;
                    viability =
                        fit::levenberg_marquardt(&LogHill, &xs[..used], &ys[..used], None, theta, &v_opts).ok()?;
                    viability.theta[0] = ln_top;
                }
                None => viability.theta[0] += shift,
            }
            theta = viability.theta;
        }
        let plateau = libm::exp(theta[0]);
        // Quality per unit viability on the same wells: the well's biological noise cancels.
        let mut m = 0;
        for o in self.observations.iter().filter(positive) {
            if viability_at(&theta, o.dose_um) <= CLAMP_FREE_FRACTION * plateau {
                xs[m] = o.dose_um;
                ys[m] = o.segmentation / o.viability;
                m += 1;
            }
        }
        let mut q_opts =
            FitOptions::<4> { lower: [0.0, 0.2, -10.0, 0.3], upper: [1.5, 1.5, 12.0, 8.0], ..FitOptions::default() };
        let mut q_start = fit::four_pl_start(&xs[..m], &ys[..m]);
        q_start[FourPl::HILL] = 2.0;
        q_start[FourPl::BOTTOM] = q_start[FourPl::BOTTOM].min(0.9);
        if let Some(top) = cfg.quality_plateau {
            q_start[FourPl::TOP] = top;
            q_opts.fixed[FourPl::TOP] = true;
        }
        let quality = fit::levenberg_marquardt(&FourPl, &xs[..m], &ys[..m], None, q_start, &q_opts).ok();
        let mut k = 0;
        for o in &self.observations {
            xs[k] = o.dose_um;
            ys[k] = o.cellrox_au;
            k += 1;
        }
        let cellrox = fit::fit_four_pl(&xs[..k], &ys[..k], None, None, &FitOptions::default()).ok().map(|f| f.fit);
        let (dose_um, binds, infeasible) =
            Estimate::boundary(&cfg.criteria, &theta, quality.as_ref().map(|q| &q.theta), cfg.lo_um, cfg.hi_um);
        // Where predicted viability falls to the clamp-free fraction of the plateau.
        let clamp_free_from_um =
            readout::hill_inhibition_inverse(CLAMP_FREE_FRACTION, libm::exp(theta[1]), theta[2]).unwrap_or(cfg.lo_um);
        let mut est = Estimate {
            viability,
            quality,
            viability_free: core::array::from_fn(|i| !v_opts.fixed[i]),
            quality_free: core::array::from_fn(|i| !q_opts.fixed[i]),
            cellrox,
            dose_um,
            ln_dose_se: f64::INFINITY,
            binds,
            infeasible,
            clamp_free_from_um,
        };
        let (gv, gq) = est.ln_dose_gradient(&cfg.criteria, cfg.lo_um, cfg.hi_um);
        let mut var = 0.0;
        for a in 0..3 {
            for b in 0..3 {
                var += gv[a] * est.viability.covariance[a][b] * gv[b];
            }
        }
        if let Some(q) = est.quality.as_ref() {
            for a in 0..4 {
                for b in 0..4 {
                    var += gq[a] * q.covariance[a][b] * gq[b];
                }
            }
        }
        est.ln_dose_se = if var.is_finite() && var >= 0.0 { libm::sqrt(var) } else { f64::INFINITY };
        Some(est)
    }

    fn finish_adaptive(&self) -> SearchResult {
        let wells = self.observations.len() as u16;
        let est = match self.estimate_model() {
            Some(e) if !e.infeasible => e,
            other => {
                // No model, or no dose qualifies: the legacy choice over what was measured.
                let (chosen, status, _, _) = self.pick_from_means();
                let status = if other.is_some() { Status::FailedConstraints } else { status };
                return SearchResult {
                    dose_um: chosen.dose_um,
                    predicted: chosen,
                    lo_um: chosen.dose_um,
                    hi_um: chosen.dose_um,
                    status,
                    wells,
                };
            }
        };
        let c = &self.config.criteria;
        let d = est.dose_um;
        let viability = viability_at(&est.viability.theta, d);
        let segmentation = quality_at(est.quality.as_ref(), d) * viability;
        let cellrox_au = match est.cellrox.as_ref() {
            Some(f) => FourPl.eval(d, &f.theta, &mut [0.0; 4]),
            None => self.pick_from_means().0.cellrox_au,
        };
        let half = if est.ln_dose_se.is_finite() { Z90 * est.ln_dose_se } else { 0.0 };
        let status = if cellrox_au >= c.target_cellrox_au { Status::Success } else { Status::SuboptimalSignal };
        SearchResult {
            dose_um: d,
            predicted: Observation { dose_um: d, viability, cellrox_au, segmentation },
            lo_um: (d * libm::exp(-half)).max(self.config.lo_um),
            hi_um: (d * libm::exp(half)).min(self.config.hi_um),
            status,
            wells,
        }
    }
}

fn add_outer<const P: usize>(m: &mut [[f64; P]; P], j: &[f64; P], w: f64) {
    for a in 0..P {
        for b in 0..P {
            m[a][b] += w * j[a] * j[b];
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The assay, as the model predicts it: for tests, benchmarks and the instrument twin.

/// The tBHP assay of one cell line as `MODEL.md` §4 runs it for each well: seed 10,000 cells,
/// incubate 24 h, treat, incubate 24 h, read viability, CellROX and segmentation.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TbhpAssay {
    /// The line's growth and noise parameters.
    pub line: CellLineParams,
    /// tBHP's potency on the line.
    pub toxicity: CompoundSensitivity,
    /// The line's CellROX set.
    pub cellrox: CellRoxParams,
    /// The line's segmentation set.
    pub segmentation: SegmentationParams,
}

/// Cells seeded per well in the legacy assay.
pub const ASSAY_SEED_CELLS: f64 = 10_000.0;
/// Capacity of a well in the legacy assay (cells at confluence 1).
pub const ASSAY_WELL_CAPACITY: f64 = 1e6;

impl TbhpAssay {
    /// The built-in parameters of a line, if it has a full tBHP set.
    pub fn builtin(line: &str) -> Result<TbhpAssay, crate::params::ParamError> {
        use crate::params::builtin;
        Ok(TbhpAssay {
            line: builtin::cell_line(line)?,
            toxicity: builtin::sensitivity("tbhp", line)?,
            cellrox: builtin::cellrox(line)?,
            segmentation: builtin::segmentation(line)?,
        })
    }

    /// Noise-free readouts at a dose.
    pub fn mean(&self, dose_um: f64) -> Observation {
        let v = crate::model::INITIAL_VIABILITY
            * readout::hill_inhibition(dose_um, self.toxicity.ic50_um, self.toxicity.hill);
        Observation {
            dose_um,
            viability: v,
            cellrox_au: readout::cellrox_mean(&self.cellrox, dose_um),
            segmentation: readout::segmentation_mean(&self.segmentation, dose_um) * v,
        }
    }

    /// One well run through the growth model with the caller's generator (the noise of `MODEL.md` §3).
    pub fn sample<R: RngCore + ?Sized>(&self, dose_um: f64, rng: &mut R) -> Observation {
        const TBHP: CompoundId = CompoundId(6);
        let k = GrowthConstants::LEGACY;
        let Ok(mut well) = Culture::seed(ASSAY_SEED_CELLS, ASSAY_WELL_CAPACITY, false) else {
            return NO_OBSERVATION;
        };
        let _ = well.grow(&self.line, &k, 24.0);
        let _ = well.treat(TBHP, dose_um.max(0.0), &self.toxicity, &self.line, rng);
        let _ = well.grow(&self.line, &k, 24.0);
        Observation {
            dose_um,
            viability: readout::read_viability(&well, &self.line, rng),
            cellrox_au: readout::read_cellrox(&self.cellrox, &self.line, dose_um, rng),
            segmentation: readout::read_segmentation(&self.segmentation, dose_um, well.viability(), rng),
        }
    }

    /// The noise-free optimum in `[lo, hi]`: the smallest dose at which a constraint binds (bisection on
    /// the mean readouts), or `hi` when none binds.
    pub fn optimum(&self, criteria: &Criteria, lo_um: f64, hi_um: f64) -> f64 {
        let ok = |d: f64| {
            let m = self.mean(d);
            m.viability >= criteria.min_viability && m.segmentation >= criteria.min_segmentation
        };
        if ok(hi_um) {
            return hi_um;
        }
        let (mut a, mut b) = (lo_um, hi_um);
        for _ in 0..200 {
            let m = 0.5 * (a + b);
            if ok(m) {
                a = m;
            } else {
                b = m;
            }
        }
        0.5 * (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    fn run<F: FnMut(f64) -> Observation>(s: &mut DoseSearch, mut well: F) -> SearchResult {
        let mut doses = [0.0; 24];
        let mut obs = [NO_OBSERVATION; 24];
        for _ in 0..100 {
            match s.next(&mut doses).unwrap() {
                Step::Done(r) => return r,
                Step::Batch(n) => {
                    for i in 0..n {
                        obs[i] = well(doses[i]);
                    }
                    s.observe(&obs[..n]).unwrap();
                }
            }
        }
        panic!("search did not finish");
    }

    #[test]
    fn legacy_grid_exact() {
        let g = legacy_grid(0.0, 500.0);
        let expect = [0.0, 1.00, 1.86, 3.47, 6.45, 12.01, 22.36, 41.63, 77.50, 144.27, 268.58, 500.0];
        for (a, b) in g.iter().zip(expect) {
            assert!((a - b).abs() < 0.005, "{a} vs {b}");
        }
        assert_eq!(g[1], 1.0);
        assert_eq!(g[11], 500.0);
    }

    #[test]
    fn noise_free_optima() {
        let c = Criteria::default();
        for (line, expect) in [("U2OS", 45.24), ("HepG2", 65.16), ("A549", 36.47)] {
            let opt = TbhpAssay::builtin(line).unwrap().optimum(&c, 0.0, 500.0);
            assert!((opt - expect).abs() < 0.005, "{line}: {opt}");
        }
    }

    #[test]
    fn grid_reproduces_legacy_noise_free_picks() {
        for (line, dose, status) in [
            ("U2OS", 41.63, Status::Success),
            ("HepG2", 41.63, Status::Success),
            ("A549", 22.36, Status::SuboptimalSignal),
        ] {
            let assay = TbhpAssay::builtin(line).unwrap();
            let mut s = DoseSearch::new(Strategy::Grid, SearchConfig::legacy_grid()).unwrap();
            let r = run(&mut s, |d| assay.mean(d));
            assert!((r.dose_um - dose).abs() < 0.005, "{line}: {}", r.dose_um);
            assert_eq!(r.status, status, "{line}");
            assert_eq!(r.wells, 12);
            assert!(r.hi_um > r.dose_um);
        }
    }

    #[test]
    fn failed_constraints_when_nothing_qualifies() {
        // A line so sensitive that even 1 µM kills: no dose of the grid qualifies except 0, and with
        // a criterion nothing meets, the fallback score decides.
        let assay = TbhpAssay::builtin("U2OS").unwrap();
        let strict = Criteria { min_viability: 0.99, ..Criteria::default() };
        let config = SearchConfig { criteria: strict, ..SearchConfig::legacy_grid() };
        let mut s = DoseSearch::new(Strategy::Grid, config).unwrap();
        let r = run(&mut s, |d| assay.mean(d));
        assert_eq!(r.status, Status::FailedConstraints);
        // Fallback: 2·V + min(S/200, 1) + 1.5·Q is highest at 41.63 µM, where CellROX saturates the term.
        let best = legacy_grid(0.0, 500.0)
            .iter()
            .map(|&d| assay.mean(d))
            .max_by(|a, b| strict.fallback_score(a).total_cmp(&strict.fallback_score(b)))
            .unwrap();
        assert_eq!(r.dose_um, best.dose_um);
        let mut s =
            DoseSearch::new(Strategy::Adaptive, SearchConfig { criteria: strict, ..SearchConfig::adaptive() }).unwrap();
        let r = run(&mut s, |d| assay.mean(d));
        assert_eq!(r.status, Status::FailedConstraints);
    }

    #[test]
    fn adaptive_noise_free_finds_the_optimum() {
        for line in ["U2OS", "HepG2", "A549"] {
            let assay = TbhpAssay::builtin(line).unwrap();
            let opt = assay.optimum(&Criteria::default(), 0.0, 500.0);
            let mut s = DoseSearch::new(Strategy::Adaptive, SearchConfig::adaptive()).unwrap();
            let r = run(&mut s, |d| assay.mean(d));
            assert!(((r.dose_um - opt) / opt).abs() < 0.01, "{line}: {} vs {opt}", r.dose_um);
            assert!(r.wells <= 48);
        }
    }

    #[test]
    fn design_spends_no_wells_on_a_known_plateau() {
        // With the untreated viability held known, the wells after the scouts go where they pin the
        // viability curve's IC50 hardest, above the optimum; were the known plateau counted as
        // uncertain, the design would spend them at and below the optimum to learn it.
        for line in ["U2OS", "HepG2", "A549"] {
            let assay = TbhpAssay::builtin(line).unwrap();
            let opt = assay.optimum(&Criteria::default(), 0.0, 500.0);
            let mut rng = seeded(5);
            let mut s = DoseSearch::new(Strategy::Adaptive, SearchConfig::adaptive()).unwrap();
            let mut doses = [0.0; MAX_WELLS];
            let Ok(Step::Batch(n)) = s.next(&mut doses) else { panic!("{line}: no scouts") };
            let mut obs = [NO_OBSERVATION; MAX_WELLS];
            for (o, &d) in obs.iter_mut().zip(&doses[..n]) {
                *o = assay.sample(d, &mut rng);
            }
            let obs = &obs[..n];
            s.observe(obs).unwrap();
            let Ok(Step::Batch(n)) = s.next(&mut doses) else { panic!("{line}: no second batch") };
            let above = doses[..n].iter().filter(|&&d| d > 1.3 * opt).count();
            assert!(above * 4 >= n * 3, "{line}: {above} of {n} above 1.3 × {opt:.1}: {:?}", &doses[..n]);
            assert!(doses[..n].iter().all(|&d| d >= 0.9 * opt && d <= 500.0), "{line}: {:?}", &doses[..n]);
            let mut fitted = DoseSearch::new(
                Strategy::Adaptive,
                SearchConfig { viability_plateau: None, ..SearchConfig::adaptive() },
            )
            .unwrap();
            let Ok(Step::Batch(_)) = fitted.next(&mut doses) else { panic!("{line}: no scouts") };
            fitted.observe(obs).unwrap();
            let Ok(Step::Batch(n)) = fitted.next(&mut doses) else { panic!("{line}: no second batch") };
            let below = doses[..n].iter().filter(|&&d| d < 1.3 * opt).count();
            assert!(below > 0, "{line}, plateau fitted: {:?}", &doses[..n]);
        }
    }

    #[test]
    fn adaptive_noisy_is_close_and_honest() {
        let assay = TbhpAssay::builtin("U2OS").unwrap();
        let opt = assay.optimum(&Criteria::default(), 0.0, 500.0);
        let mut covered = 0;
        let runs = 40;
        for seed in 0..runs {
            let mut rng = seeded(seed);
            let mut s = DoseSearch::new(Strategy::Adaptive, SearchConfig::adaptive()).unwrap();
            let r = run(&mut s, |d| assay.sample(d, &mut rng));
            assert!(((r.dose_um - opt) / opt).abs() < 0.15, "seed {seed}: {} vs {opt}", r.dose_um);
            assert!(r.lo_um <= r.dose_um && r.dose_um <= r.hi_um);
            assert!(r.wells <= 48);
            if r.lo_um <= opt && opt <= r.hi_um {
                covered += 1;
            }
        }
        // A 90 % interval should cover the truth in most runs.
        assert!(covered >= runs * 7 / 10, "covered {covered}/{runs}");
    }

    #[test]
    fn state_fits_a_small_microcontroller() {
        // The whole search, observations included, must fit comfortably in 64 KiB of RAM.
        assert!(core::mem::size_of::<DoseSearch>() <= 8 * 1024, "{}", core::mem::size_of::<DoseSearch>());
    }

    #[test]
    fn protocol_misuse_is_refused() {
        let mut s = DoseSearch::new(Strategy::Adaptive, SearchConfig::adaptive()).unwrap();
        assert_eq!(s.observe(&[NO_OBSERVATION]), Err(SearchError::UnexpectedObservations));
        assert_eq!(s.next(&mut []), Err(SearchError::NoWells));
        let mut doses = [0.0; 8];
        assert_eq!(s.next(&mut doses), Ok(Step::Batch(8)));
        assert_eq!(s.next(&mut doses), Err(SearchError::AwaitingObservations));
        let bad = Observation { viability: f64::NAN, ..NO_OBSERVATION };
        assert_eq!(s.observe(&[bad]), Err(SearchError::InvalidObservation));
        assert_eq!(s.observe(&[NO_OBSERVATION; 9]), Err(SearchError::UnexpectedObservations));
        assert!(s.observations().is_empty());
        let too_big = SearchConfig { budget_wells: 200, ..SearchConfig::adaptive() };
        assert_eq!(DoseSearch::new(Strategy::Adaptive, too_big).unwrap_err(), SearchError::InvalidConfig);
        let inverted = SearchConfig { lo_um: 10.0, hi_um: 5.0, ..SearchConfig::adaptive() };
        assert_eq!(DoseSearch::new(Strategy::Grid, inverted).unwrap_err(), SearchError::InvalidConfig);
    }
}
