//! The growth model: one culture (a flask or a well), and a plate of them.
//!
//! The law (`MODEL.md` §2) is `dN/dt = r · L(t) · (1 − E) · g(c) · N` with `r = ln 2 / T_d`, the lag ramp
//! `L = clamp((t − t_s) / T_lag, 0, 1)`, the edge penalty `E`, and the confluence brake
//! `g(c) = max(0, 1 − (c / c_max)²)`.
//!
//! It is integrated in closed form rather than stepped. With `x = N / (K · c_max)` and the effective time
//! `τ = r (1 − E) ∫ L dt`, the law reads `dx/dτ = x (1 − x²)`, whose solution is
//! `x² / (1 − x²) = x₀² / (1 − x₀²) · e^{2τ}`. `∫ L dt` is piecewise quadratic and exact too. So advancing
//! 24 h in one call and in 24 calls of 1 h agree to rounding (about 1e-15), where the legacy code's
//! answer depended on its step.
//!
//! Over-confluence starvation (viability falls 0.1 per 24 h while `c ≥ 0.98 c_max`, never below 0.5)
//! starts at the exact moment the culture crosses the threshold inside a call, found by inverting the
//! same closed form.
//!
//! A [`Culture`] keeps its age (hours since seeding or its last passage) instead of absolute times: the
//! caller's clock never enters the model.

use core::fmt;

use rand_core::RngCore;

use crate::params::{CellLineParams, CompoundSensitivity, Defaults};
use crate::plate::{PlateFormat, Well};
use crate::readout::hill_inhibition;
use crate::rng::noise_factor;

/// Viability of freshly seeded cells.
pub const INITIAL_VIABILITY: f64 = 0.98;
/// Starvation begins when confluence reaches this fraction of the line's maximum confluence.
pub const STARVATION_THRESHOLD: f64 = 0.98;
/// Viability lost per hour of starvation (0.1 per 24 h).
pub const STARVATION_LOSS_PER_H: f64 = 0.1 / 24.0;
/// Starvation never takes viability below this.
pub const STARVATION_FLOOR: f64 = 0.5;
/// How many treatments one culture remembers (they multiply; the doses are kept for the readouts).
pub const MAX_TREATMENTS: usize = 2;

/// The plate-independent constants of the growth law.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct GrowthConstants {
    /// Duration of the lag ramp after seeding or passage, hours.
    pub lag_duration_h: f64,
    /// Fraction of growth rate lost by an edge well.
    pub edge_penalty: f64,
}

impl GrowthConstants {
    /// The legacy platform's values: 12 h lag, 15 % edge penalty.
    pub const LEGACY: GrowthConstants = GrowthConstants { lag_duration_h: 12.0, edge_penalty: 0.15 };
}

impl From<&Defaults> for GrowthConstants {
    fn from(d: &Defaults) -> Self {
        GrowthConstants { lag_duration_h: d.lag_duration_h, edge_penalty: d.edge_penalty }
    }
}

/// A caller-chosen tag for a compound (the built-in table uses its index in
/// [`crate::params::builtin::COMPOUNDS`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CompoundId(pub u16);

/// One treatment a culture received.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Treatment {
    /// Which compound.
    pub compound: CompoundId,
    /// Final concentration in the vessel, µM.
    pub dose_um: f64,
    /// The surviving fraction it applied to cells and viability (noise included).
    pub surviving_fraction: f64,
}

/// Why a model operation was refused. Nothing is changed when one is returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelError {
    /// A cell count that is negative or not finite.
    InvalidCells,
    /// A capacity that is not positive and finite.
    InvalidCapacity,
    /// A dose that is negative or not finite.
    InvalidDose,
    /// A split ratio below 1 or not finite.
    InvalidSplit,
    /// A duration that is negative or not finite.
    InvalidDuration,
    /// The line has reached its maximum passage number.
    PassageLimit,
    /// The culture already holds [`MAX_TREATMENTS`] treatments.
    TooManyTreatments,
    /// The plate's well array does not have as many wells as its format.
    FormatMismatch {
        /// Wells the format has.
        format_wells: u16,
        /// Wells the array has.
        array_wells: usize,
    },
    /// The well is not on this plate's format.
    WellNotOnPlate,
    /// The well holds no culture.
    EmptyWell,
    /// The well already holds a culture.
    AlreadySeeded,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::InvalidCells => f.write_str("cell count must be finite and not negative"),
            ModelError::InvalidCapacity => f.write_str("vessel capacity must be finite and positive"),
            ModelError::InvalidDose => f.write_str("dose must be finite and not negative"),
            ModelError::InvalidSplit => f.write_str("split ratio must be finite and at least 1"),
            ModelError::InvalidDuration => f.write_str("duration must be finite and not negative"),
            ModelError::PassageLimit => f.write_str("the culture is at the line's maximum passage number"),
            ModelError::TooManyTreatments => f.write_str("the culture cannot record another treatment"),
            ModelError::FormatMismatch { format_wells, array_wells } => {
                write!(f, "plate format has {format_wells} wells but the plate holds {array_wells}")
            }
            ModelError::WellNotOnPlate => f.write_str("the well is not on this plate"),
            ModelError::EmptyWell => f.write_str("the well holds no cells"),
            ModelError::AlreadySeeded => f.write_str("the well is already seeded"),
        }
    }
}

impl core::error::Error for ModelError {}

/// The state of cells in one vessel or well.
#[derive(Clone, Debug, PartialEq)]
pub struct Culture {
    cells: f64,
    viability: f64,
    capacity: f64,
    age_h: f64,
    passage: u16,
    edge: bool,
    treatments: heapless::Vec<Treatment, MAX_TREATMENTS>,
}

/// `∫₀ᵗ clamp(s / lag, 0, 1) ds`: the effective growth time of the lag ramp.
fn lag_integral(age_h: f64, lag_h: f64) -> f64 {
    if age_h <= 0.0 {
        0.0
    } else if age_h < lag_h {
        age_h * age_h / (2.0 * lag_h)
    } else {
        age_h - 0.5 * lag_h
    }
}

/// The age at which [`lag_integral`] reaches `g` (its inverse for `g ≥ 0`).
fn lag_integral_inverse(g: f64, lag_h: f64) -> f64 {
    if g < 0.5 * lag_h { libm::sqrt(2.0 * lag_h * g) } else { g + 0.5 * lag_h }
}

/// `(1 − x²) / x²`, the quantity that decays as `e^{−2τ}`; written to keep precision near `x = 1`.
fn odds(x: f64) -> f64 {
    (1.0 - x) * (1.0 + x) / (x * x)
}

impl Culture {
    /// Cells seeded into a fresh vessel: viability 0.98, age 0 (the lag starts now), passage 0.
    pub fn seed(cells: f64, capacity: f64, edge: bool) -> Result<Culture, ModelError> {
        if !(cells.is_finite() && cells >= 0.0) {
            return Err(ModelError::InvalidCells);
        }
        if !(capacity.is_finite() && capacity > 0.0) {
            return Err(ModelError::InvalidCapacity);
        }
        Ok(Culture {
            cells,
            viability: INITIAL_VIABILITY,
            capacity,
            age_h: 0.0,
            passage: 0,
            edge,
            treatments: heapless::Vec::new(),
        })
    }

    /// The same culture, declared to have been in its vessel for `age_h` hours already (an acclimated
    /// culture has `age_h` at least the lag duration). Nothing else changes.
    pub fn with_age_h(mut self, age_h: f64) -> Result<Culture, ModelError> {
        if !(age_h.is_finite() && age_h >= 0.0) {
            return Err(ModelError::InvalidDuration);
        }
        self.age_h = age_h;
        Ok(self)
    }

    /// Number of cells.
    pub fn cells(&self) -> f64 {
        self.cells
    }

    /// Fraction of live cells.
    pub fn viability(&self) -> f64 {
        self.viability
    }

    /// Cells at confluence 1.0.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Confluence, cells / capacity.
    pub fn confluence(&self) -> f64 {
        self.cells / self.capacity
    }

    /// Hours since seeding or the last passage.
    pub fn age_h(&self) -> f64 {
        self.age_h
    }

    /// Passage number (0 for a seeded culture).
    pub fn passage_number(&self) -> u16 {
        self.passage
    }

    /// Whether the culture is in an edge well.
    pub fn is_edge(&self) -> bool {
        self.edge
    }

    /// The treatments received, in order.
    pub fn treatments(&self) -> &[Treatment] {
        &self.treatments
    }

    /// Total dose of one compound received, µM (0 if none).
    pub fn dose_um(&self, compound: CompoundId) -> f64 {
        self.treatments.iter().filter(|t| t.compound == compound).map(|t| t.dose_um).sum()
    }

    /// Advances the culture by `dt_h` hours under the growth law. Negative or non-finite durations are
    /// refused; the result does not depend on how a span of time is cut into calls.
    pub fn grow(&mut self, line: &CellLineParams, k: &GrowthConstants, dt_h: f64) -> Result<(), ModelError> {
        if !(dt_h.is_finite() && dt_h >= 0.0) {
            return Err(ModelError::InvalidDuration);
        }
        self.grow_unchecked(line, k, dt_h);
        Ok(())
    }

    fn grow_unchecked(&mut self, line: &CellLineParams, k: &GrowthConstants, dt_h: f64) {
        let t0 = self.age_h;
        let t1 = t0 + dt_h;
        self.age_h = t1;
        let rate = line.growth_rate_per_h() * if self.edge { 1.0 - k.edge_penalty } else { 1.0 };
        let g0 = lag_integral(t0, k.lag_duration_h);
        let tau = rate * (lag_integral(t1, k.lag_duration_h) - g0);
        let full = self.capacity * line.max_confluence;
        let x0 = self.cells / full;
        let mut x1 = x0;
        if x0 > 0.0 && x0 < 1.0 && tau > 0.0 {
            x1 = 1.0 / libm::sqrt(1.0 + odds(x0) * libm::exp(-2.0 * tau));
            self.cells = x1 * full;
        }
        if x1 >= STARVATION_THRESHOLD {
            let starving_h = if x0 >= STARVATION_THRESHOLD || rate <= 0.0 {
                dt_h
            } else {
                // τ at which x reaches the threshold, then the age at which the ramp has delivered it.
                let tau_star = 0.5 * libm::log(odds(x0) / odds(STARVATION_THRESHOLD));
                let t_star = lag_integral_inverse(g0 + tau_star / rate, k.lag_duration_h);
                (t1 - t_star).clamp(0.0, dt_h)
            };
            if self.viability > STARVATION_FLOOR {
                self.viability = (self.viability - STARVATION_LOSS_PER_H * starving_h).max(STARVATION_FLOOR);
            }
        }
    }

    /// The culture after a passage with split ratio `split` (1 : `split`) into a fresh vessel of the same
    /// capacity: `N / split` cells, viability reduced by the line's passage stress, passage number + 1, a
    /// new lag (age 0), no treatments (fresh medium). The original is left as it was.
    pub fn passaged(&self, line: &CellLineParams, split: f64) -> Result<Culture, ModelError> {
        if !(split.is_finite() && split >= 1.0) {
            return Err(ModelError::InvalidSplit);
        }
        if u32::from(self.passage) >= line.max_passage {
            return Err(ModelError::PassageLimit);
        }
        debug!("passage {} split 1:{}", self.passage + 1, split);
        Ok(Culture {
            cells: self.cells / split,
            viability: self.viability * (1.0 - line.passage_stress),
            capacity: self.capacity,
            age_h: 0.0,
            passage: self.passage + 1,
            edge: false,
            treatments: heapless::Vec::new(),
        })
    }

    /// Treats the culture with `dose_um` of a compound: the surviving fraction
    /// `f' = clamp(f · ε, 0, 1)`, `f = 1 / (1 + (D / IC50)^h)`, `ε ~ Normal(1, biological CV)`, multiplies
    /// both the cell count and the viability. Returns `f'`. One normal draw is taken from `rng`, and
    /// only when the treatment is accepted.
    pub fn treat<R: RngCore + ?Sized>(
        &mut self,
        compound: CompoundId,
        dose_um: f64,
        sensitivity: &CompoundSensitivity,
        line: &CellLineParams,
        rng: &mut R,
    ) -> Result<f64, ModelError> {
        if !(dose_um.is_finite() && dose_um >= 0.0) {
            return Err(ModelError::InvalidDose);
        }
        if self.treatments.is_full() {
            return Err(ModelError::TooManyTreatments);
        }
        let f = hill_inhibition(dose_um, sensitivity.ic50_um, sensitivity.hill);
        let surviving_fraction = (f * noise_factor(rng, line.biological_cv)).clamp(0.0, 1.0);
        self.cells *= surviving_fraction;
        self.viability *= surviving_fraction;
        // Cannot fail: fullness was checked above, before anything changed.
        let _ = self.treatments.push(Treatment { compound, dose_um, surviving_fraction });
        Ok(surviving_fraction)
    }
}

/// A plate of `W` wells of one cell line, advanced together.
///
/// A plate holds one line, as the lab's assay plates do (the phase-0 plates are one line each). Its
/// wells are empty until seeded; edge wells are found from the format and carry the edge penalty.
#[derive(Clone, Debug)]
pub struct Plate<const W: usize> {
    format: PlateFormat,
    line: CellLineParams,
    constants: GrowthConstants,
    elapsed_h: f64,
    wells: [Option<Culture>; W],
}

impl<const W: usize> Plate<W> {
    /// An empty plate. `W` must equal the format's number of wells.
    pub fn new(format: PlateFormat, line: CellLineParams, constants: GrowthConstants) -> Result<Self, ModelError> {
        if usize::from(format.wells()) != W {
            return Err(ModelError::FormatMismatch { format_wells: format.wells(), array_wells: W });
        }
        Ok(Plate { format, line, constants, elapsed_h: 0.0, wells: [const { None }; W] })
    }

    /// The plate's format.
    pub fn format(&self) -> PlateFormat {
        self.format
    }

    /// The plate's cell line parameters.
    pub fn line(&self) -> &CellLineParams {
        &self.line
    }

    /// Hours the plate has been advanced in total.
    pub fn elapsed_h(&self) -> f64 {
        self.elapsed_h
    }

    fn index(&self, well: Well) -> Result<usize, ModelError> {
        if !self.format.contains(well) {
            return Err(ModelError::WellNotOnPlate);
        }
        Ok(usize::from(self.format.row_major(well)) - 1)
    }

    /// Seeds `cells` into an empty well whose capacity (cells at confluence 1) is `capacity`.
    pub fn seed(&mut self, well: Well, cells: f64, capacity: f64) -> Result<(), ModelError> {
        let i = self.index(well)?;
        if self.wells[i].is_some() {
            return Err(ModelError::AlreadySeeded);
        }
        self.wells[i] = Some(Culture::seed(cells, capacity, self.format.is_edge(well))?);
        Ok(())
    }

    /// The culture in a well, if seeded.
    pub fn culture(&self, well: Well) -> Option<&Culture> {
        self.index(well).ok().and_then(|i| self.wells[i].as_ref())
    }

    /// Every seeded well with its culture, in row-major order.
    pub fn cultures(&self) -> impl Iterator<Item = (Well, &Culture)> {
        self.format.wells_iter().zip(self.wells.iter()).filter_map(|(w, c)| c.as_ref().map(|c| (w, c)))
    }

    /// Advances every seeded well by `dt_h` hours.
    pub fn advance(&mut self, dt_h: f64) -> Result<(), ModelError> {
        if !(dt_h.is_finite() && dt_h >= 0.0) {
            return Err(ModelError::InvalidDuration);
        }
        for c in self.wells.iter_mut().flatten() {
            c.grow_unchecked(&self.line, &self.constants, dt_h);
        }
        self.elapsed_h += dt_h;
        Ok(())
    }

    /// Treats one well (see [`Culture::treat`]).
    pub fn treat<R: RngCore + ?Sized>(
        &mut self,
        well: Well,
        compound: CompoundId,
        dose_um: f64,
        sensitivity: &CompoundSensitivity,
        rng: &mut R,
    ) -> Result<f64, ModelError> {
        let i = self.index(well)?;
        let line = self.line;
        self.wells[i].as_mut().ok_or(ModelError::EmptyWell)?.treat(compound, dose_um, sensitivity, &line, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::builtin;
    use crate::rng::seeded;

    const K: GrowthConstants = GrowthConstants::LEGACY;

    fn hek() -> CellLineParams {
        builtin::cell_line("HEK293T").unwrap()
    }

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn constants_come_from_the_defaults() {
        assert_eq!(GrowthConstants::from(&builtin::DEFAULTS), GrowthConstants::LEGACY);
    }

    #[test]
    fn acclimated_hek_grows_to_about_double_in_24h() {
        let mut c = Culture::seed(1e6, 1e7, false).unwrap().with_age_h(24.0).unwrap();
        c.grow(&hek(), &K, 24.0).unwrap();
        assert!((1.5e6..=2.5e6).contains(&c.cells()), "{}", c.cells());
        // The brake at c = 0.1..0.2 of c_max = 0.9 costs a few percent of a doubling.
        assert!(c.cells() < 2.0e6 && c.cells() > 1.9e6, "{}", c.cells());
        assert_eq!(c.viability(), INITIAL_VIABILITY);
    }

    #[test]
    fn exact_against_numerical_integration() {
        // RK4 with a fine step on the ODE itself, through the lag ramp and into the brake.
        let line = builtin::cell_line("HeLa").unwrap();
        let (cap, n0) = (1e6, 2e5);
        let r = line.growth_rate_per_h() * (1.0 - K.edge_penalty);
        let deriv = |t: f64, n: f64| {
            let lag = (t / K.lag_duration_h).clamp(0.0, 1.0);
            let c = n / cap;
            r * lag * (1.0 - (c / line.max_confluence).powi(2)).max(0.0) * n
        };
        let (mut n, h) = (n0, 1e-3);
        for i in 0..40_000 {
            let t = f64::from(i) * h;
            let k1 = deriv(t, n);
            let k2 = deriv(t + h / 2.0, n + h / 2.0 * k1);
            let k3 = deriv(t + h / 2.0, n + h / 2.0 * k2);
            let k4 = deriv(t + h, n + h * k3);
            n += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        }
        let mut c = Culture::seed(n0, cap, true).unwrap();
        c.grow(&line, &K, 40.0).unwrap();
        assert!(rel(c.cells(), n) < 1e-9, "closed form {} vs RK4 {}", c.cells(), n);
    }

    #[test]
    fn step_size_independent() {
        let line = builtin::cell_line("U2OS").unwrap();
        let mut one = Culture::seed(5e4, 2e5, false).unwrap();
        let mut many = one.clone();
        one.grow(&line, &K, 24.0).unwrap();
        for _ in 0..24 {
            many.grow(&line, &K, 1.0).unwrap();
        }
        assert!(rel(one.cells(), many.cells()) < 1e-12);
        assert_eq!(one.age_h(), many.age_h());
    }

    #[test]
    fn lag_phase() {
        let line = hek();
        let mut fresh = Culture::seed(1e5, 1e7, false).unwrap();
        fresh.grow(&line, &K, 1.0).unwrap();
        assert!(fresh.cells() / 1e5 - 1.0 < 0.01);
        let mut acclimated = Culture::seed(1e5, 1e7, false).unwrap().with_age_h(12.0).unwrap();
        acclimated.grow(&line, &K, 1.0).unwrap();
        assert!(acclimated.cells() / 1e5 - 1.0 > 0.02);
        // The ramp is exact: one hour after seeding, log growth is r/24 (less the brake, x² ≈ 1.2e-4).
        assert!(rel(libm::log(fresh.cells() / 1e5), line.growth_rate_per_h() / 24.0) < 2e-4);
    }

    #[test]
    fn hela_outgrows_hek() {
        let mut a = Culture::seed(1e5, 1e7, false).unwrap();
        let mut b = a.clone();
        a.grow(&builtin::cell_line("HeLa").unwrap(), &K, 48.0).unwrap();
        b.grow(&hek(), &K, 48.0).unwrap();
        assert!(a.cells() > b.cells() * 1.1);
    }

    #[test]
    fn confluence_caps_and_starvation() {
        let line = hek();
        let mut c = Culture::seed(1e6, 1e7, false).unwrap();
        c.grow(&line, &K, 24.0 * 20.0).unwrap();
        assert!(c.confluence() <= line.max_confluence);
        assert!(c.confluence() > 0.98 * line.max_confluence);
        assert!(c.viability() < INITIAL_VIABILITY);
        c.grow(&line, &K, 24.0 * 30.0).unwrap();
        assert_eq!(c.viability(), STARVATION_FLOOR);
    }

    #[test]
    fn starvation_rate_and_split_independence() {
        let line = hek();
        // Already over the threshold: exactly 0.1 per 24 h.
        let full = 1e7 * line.max_confluence;
        let mut c = Culture::seed(0.99 * full, 1e7, false).unwrap().with_age_h(12.0).unwrap();
        c.grow(&line, &K, 24.0).unwrap();
        assert!((c.viability() - (INITIAL_VIABILITY - 0.1)).abs() < 1e-12);
        // Crossing the threshold inside a call: same answer whatever the steps.
        let start = Culture::seed(0.5 * full, 1e7, false).unwrap();
        let mut one = start.clone();
        one.grow(&line, &K, 200.0).unwrap();
        let mut many = start;
        for _ in 0..800 {
            many.grow(&line, &K, 0.25).unwrap();
        }
        assert!(one.viability() < INITIAL_VIABILITY - 0.05);
        assert!((one.viability() - many.viability()).abs() < 1e-9, "{} {}", one.viability(), many.viability());
    }

    #[test]
    fn passage() {
        let line = hek();
        let mut c = Culture::seed(4e6, 1e7, false).unwrap();
        c.grow(&line, &K, 0.0).unwrap();
        let p = c.passaged(&line, 4.0).unwrap();
        assert_eq!(p.cells(), 1e6);
        assert_eq!(p.passage_number(), 1);
        assert_eq!(p.age_h(), 0.0);
        assert!((p.viability() - INITIAL_VIABILITY * 0.98).abs() < 1e-15);
        // The passaged vessel lags again (the legacy code forgot this).
        let mut q = p.clone();
        q.grow(&line, &K, 1.0).unwrap();
        assert!(q.cells() / p.cells() - 1.0 < 0.01);
        assert_eq!(c.passaged(&line, 0.5), Err(ModelError::InvalidSplit));
        assert_eq!(c.passaged(&line, f64::NAN), Err(ModelError::InvalidSplit));
    }

    #[test]
    fn passage_limit() {
        let line = CellLineParams { max_passage: 2, ..hek() };
        let c = Culture::seed(1e6, 1e7, false).unwrap();
        let c = c.passaged(&line, 2.0).unwrap().passaged(&line, 2.0).unwrap();
        assert_eq!(c.passaged(&line, 2.0), Err(ModelError::PassageLimit));
    }

    #[test]
    fn staurosporine_halves_hek_viability() {
        let line = hek();
        let sens = builtin::sensitivity("staurosporine", "HEK293T").unwrap();
        let mut rng = seeded(11);
        let n = 2000;
        let mut sum = 0.0;
        for _ in 0..n {
            let mut c = Culture::seed(1e6, 1e7, false).unwrap();
            let f = c.treat(CompoundId(0), 0.05, &sens, &line, &mut rng).unwrap();
            assert_eq!(c.viability(), INITIAL_VIABILITY * f);
            assert_eq!(c.cells(), 1e6 * f);
            sum += f;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn treatments_multiply_and_are_bounded() {
        let line = CellLineParams { biological_cv: 0.0, ..hek() };
        let sens = CompoundSensitivity { ic50_um: 1.0, hill: 1.0 };
        let mut rng = seeded(3);
        let mut c = Culture::seed(1e6, 1e7, false).unwrap();
        assert_eq!(c.treat(CompoundId(1), 1.0, &sens, &line, &mut rng), Ok(0.5));
        assert_eq!(c.treat(CompoundId(1), 3.0, &sens, &line, &mut rng), Ok(0.25));
        assert_eq!(c.cells(), 1e6 * 0.125);
        assert_eq!(c.dose_um(CompoundId(1)), 4.0);
        assert_eq!(c.dose_um(CompoundId(2)), 0.0);
        let before = c.clone();
        assert_eq!(c.treat(CompoundId(1), 1.0, &sens, &line, &mut rng), Err(ModelError::TooManyTreatments));
        assert_eq!(c, before);
        let mut d = Culture::seed(1e6, 1e7, false).unwrap();
        assert_eq!(d.treat(CompoundId(1), -1.0, &sens, &line, &mut rng), Err(ModelError::InvalidDose));
    }

    #[test]
    fn edge_well_grows_less() {
        let line = hek();
        let mut plate = Plate::<96>::new(PlateFormat::W96, line, K).unwrap();
        let a01 = PlateFormat::W96.parse_well("A01").unwrap();
        let b06 = PlateFormat::W96.parse_well("B06").unwrap();
        plate.seed(a01, 1e4, 1e6).unwrap();
        plate.seed(b06, 1e4, 1e6).unwrap();
        plate.advance(24.0).unwrap();
        let edge = plate.culture(a01).unwrap();
        let inner = plate.culture(b06).unwrap();
        assert!(edge.is_edge() && !inner.is_edge());
        assert!(edge.cells() < inner.cells());
        assert_eq!(plate.cultures().count(), 2);
        assert_eq!(plate.elapsed_h(), 24.0);
    }

    #[test]
    fn plate_refuses_misuse() {
        let line = hek();
        assert_eq!(
            Plate::<96>::new(PlateFormat::W384, line, K).unwrap_err(),
            ModelError::FormatMismatch { format_wells: 384, array_wells: 96 }
        );
        let mut plate = Plate::<6>::new(PlateFormat::W6, line, K).unwrap();
        let off = PlateFormat::W96.parse_well("H12").unwrap();
        assert_eq!(plate.seed(off, 1e4, 1e6), Err(ModelError::WellNotOnPlate));
        let a1 = PlateFormat::W6.parse_well("A1").unwrap();
        assert_eq!(plate.seed(a1, -1.0, 1e6), Err(ModelError::InvalidCells));
        assert_eq!(plate.seed(a1, 1.0, 0.0), Err(ModelError::InvalidCapacity));
        plate.seed(a1, 1e4, 1e6).unwrap();
        assert_eq!(plate.seed(a1, 1e4, 1e6), Err(ModelError::AlreadySeeded));
        let b2 = PlateFormat::W6.parse_well("B2").unwrap();
        let sens = CompoundSensitivity { ic50_um: 1.0, hill: 1.0 };
        assert_eq!(plate.treat(b2, CompoundId(0), 1.0, &sens, &mut seeded(1)), Err(ModelError::EmptyWell));
        assert_eq!(plate.advance(-1.0), Err(ModelError::InvalidDuration));
        assert_eq!(plate.advance(f64::INFINITY), Err(ModelError::InvalidDuration));
    }
}
