//! Bounded least squares without a heap: Levenberg–Marquardt over fixed-size arrays.
//!
//! A model has `P` parameters (a const generic, at most a handful) and gives its value and gradient at
//! a point. [`levenberg_marquardt`] fits it to borrowed data, honouring per-parameter bounds (by
//! projection) and fixed parameters, and returns the estimate, standard errors from the Jacobian
//! (`s² (JᵀWJ)⁻¹`), and whether it converged. Degenerate input is an error value, never a panic.
//!
//! Two models are built in: [`FourPl`] (the four-parameter logistic, IC50 in log space) and
//! [`Lentivirus`] (`BFP(V) = A · (1 − exp(−V · T / N))`, titer in log space). [`fit_four_pl`] and
//! [`fit_lentivirus`] choose starting values from the data.

use core::fmt;

use crate::readout;

/// What a model must give: its value at `x` for parameters `theta`, and the gradient in `grad`.
pub trait Model<const P: usize> {
    /// Value at `x`; writes `∂value/∂theta` into `grad`.
    fn eval(&self, x: f64, theta: &[f64; P], grad: &mut [f64; P]) -> f64;
}

/// Why a fit was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FitError {
    /// `xs`, `ys` (and weights) differ in length.
    LengthMismatch,
    /// Fewer points than free parameters.
    TooFewPoints,
    /// A point, weight, start value or bound is not finite (or a weight is negative).
    NonFinite,
    /// Every response is the same: the curve is not identifiable.
    AllEqual,
    /// A lower bound exceeds its upper bound.
    BadBounds,
    /// The normal equations are singular at the start: the data do not determine the free parameters.
    Singular,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FitError::LengthMismatch => "x, y and weight arrays differ in length",
            FitError::TooFewPoints => "fewer data points than free parameters",
            FitError::NonFinite => "a data point, weight, start value or bound is not finite",
            FitError::AllEqual => "every response is equal: the curve cannot be fitted",
            FitError::BadBounds => "a lower bound is above its upper bound",
            FitError::Singular => "the data do not determine the free parameters",
        })
    }
}

impl core::error::Error for FitError {}

/// How the iteration ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FitStatus {
    /// The residual stopped decreasing (relative change below the tolerance) or the gradient vanished.
    Converged,
    /// The iteration limit was reached first; the estimate is the best found.
    MaxIterations,
}

/// Settings of a fit: bounds, fixed parameters, limits.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FitOptions<const P: usize> {
    /// Lower bound per parameter (`-inf` for none).
    pub lower: [f64; P],
    /// Upper bound per parameter (`inf` for none).
    pub upper: [f64; P],
    /// Parameters held at their start value.
    pub fixed: [bool; P],
    /// Iteration limit.
    pub max_iterations: u32,
    /// Relative change of the residual sum of squares that counts as converged.
    pub tolerance: f64,
}

impl<const P: usize> Default for FitOptions<P> {
    fn default() -> Self {
        FitOptions {
            lower: [f64::NEG_INFINITY; P],
            upper: [f64::INFINITY; P],
            fixed: [false; P],
            max_iterations: 200,
            tolerance: 1e-14,
        }
    }
}

/// The result of a fit.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Fit<const P: usize> {
    /// The estimate.
    pub theta: [f64; P],
    /// Standard errors (0 for fixed parameters; NaN when there are no degrees of freedom).
    pub std_err: [f64; P],
    /// Covariance of the estimate, `s² (JᵀWJ)⁻¹` over the free parameters (0 rows for fixed ones).
    pub covariance: [[f64; P]; P],
    /// Weighted residual sum of squares.
    pub rss: f64,
    /// Degrees of freedom: points less free parameters.
    pub dof: usize,
    /// Iterations used.
    pub iterations: u32,
    /// How the iteration ended.
    pub status: FitStatus,
}

/// Solves `a · x = b` for a symmetric positive (semi)definite `a` restricted to `mask`, by Gaussian
/// elimination with partial pivoting. Returns `None` when singular.
fn solve<const P: usize>(mut a: [[f64; P]; P], mut b: [f64; P], mask: &[bool; P]) -> Option<[f64; P]> {
    // Masked-out rows become identity rows with zero right-hand side.
    for i in 0..P {
        if !mask[i] {
            for j in 0..P {
                a[i][j] = 0.0;
                a[j][i] = 0.0;
            }
            a[i][i] = 1.0;
            b[i] = 0.0;
        }
    }
    let scale = a.iter().flat_map(|r| r.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..P {
        let pivot = (col..P).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        let p = a[pivot][col].abs();
        if p.is_nan() || p <= scale * 1e-15 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..P {
            let factor = a[row][col] / a[col][col];
            for k in col..P {
                a[row][k] -= factor * a[col][k];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; P];
    for row in (0..P).rev() {
        let mut s = b[row];
        for k in row + 1..P {
            s -= a[row][k] * x[k];
        }
        x[row] = s / a[row][row];
    }
    Some(x)
}

/// The inverse of `a` over `mask` (zeros elsewhere), or `None` when singular.
pub(crate) fn invert<const P: usize>(a: &[[f64; P]; P], mask: &[bool; P]) -> Option<[[f64; P]; P]> {
    let mut inv = [[0.0; P]; P];
    for col in 0..P {
        if !mask[col] {
            continue;
        }
        let mut e = [0.0; P];
        e[col] = 1.0;
        let x = solve(*a, e, mask)?;
        for row in 0..P {
            inv[row][col] = x[row];
        }
    }
    Some(inv)
}

struct Normal<const P: usize> {
    jtj: [[f64; P]; P],
    jtr: [f64; P],
    rss: f64,
}

fn normal_equations<M: Model<P>, const P: usize>(
    model: &M,
    xs: &[f64],
    ys: &[f64],
    weights: Option<&[f64]>,
    theta: &[f64; P],
) -> Normal<P> {
    let mut n = Normal { jtj: [[0.0; P]; P], jtr: [0.0; P], rss: 0.0 };
    let mut g = [0.0; P];
    for (i, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        let r = y - model.eval(x, theta, &mut g);
        n.rss += w * r * r;
        for a in 0..P {
            n.jtr[a] += w * g[a] * r;
            for b in a..P {
                n.jtj[a][b] += w * g[a] * g[b];
            }
        }
    }
    for a in 0..P {
        for b in 0..a {
            n.jtj[a][b] = n.jtj[b][a];
        }
    }
    n
}

fn rss_only<M: Model<P>, const P: usize>(
    model: &M,
    xs: &[f64],
    ys: &[f64],
    weights: Option<&[f64]>,
    theta: &[f64; P],
) -> f64 {
    let mut g = [0.0; P];
    let mut rss = 0.0;
    for (i, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        let r = y - model.eval(x, theta, &mut g);
        rss += w * r * r;
    }
    rss
}

/// Fits `model` to `(xs, ys)` from `start`, minimising `Σ wᵢ (yᵢ − f(xᵢ))²`.
pub fn levenberg_marquardt<M: Model<P>, const P: usize>(
    model: &M,
    xs: &[f64],
    ys: &[f64],
    weights: Option<&[f64]>,
    start: [f64; P],
    options: &FitOptions<P>,
) -> Result<Fit<P>, FitError> {
    if xs.len() != ys.len() || weights.is_some_and(|w| w.len() != xs.len()) {
        return Err(FitError::LengthMismatch);
    }
    fit_from(model, xs, ys, weights, start, options, 0.0, xs.len())
}

/// Replicate observations summarised by distinct `x`: at each `xs[i]`, `counts[i]` observations of mean
/// `means[i]`, and `within_ss`, the sum over all points of the squared deviations from their `x`'s mean.
///
/// A least-squares fit to the summary is the fit to the observations themselves: with `n` observations
/// of mean `ȳ` at `x`, `Σⱼ (yⱼ − f(x))² = n (ȳ − f(x))² + Σⱼ (yⱼ − ȳ)²`, so the residual sum of squares
/// is the weighted one on the means plus `within_ss`, and its gradient and Gauss–Newton matrix are the
/// weighted ones. The cost of a fit then grows with the distinct doses, not with the wells.
#[derive(Copy, Clone, Debug)]
pub struct Replicates<'a> {
    /// Distinct `x` values.
    pub xs: &'a [f64],
    /// Mean observation at each.
    pub means: &'a [f64],
    /// Observations at each (positive).
    pub counts: &'a [f64],
    /// Squared deviations of the observations from their `x`'s mean, summed.
    pub within_ss: f64,
}

impl Replicates<'_> {
    /// Observations summarised.
    pub fn observations(&self) -> usize {
        libm::round(self.counts.iter().sum::<f64>()) as usize
    }
}

/// [`levenberg_marquardt`] on replicate observations summarised by [`Replicates`]: the same estimate,
/// residual sum of squares, degrees of freedom and standard errors as the fit to every observation.
pub fn levenberg_marquardt_replicates<M: Model<P>, const P: usize>(
    model: &M,
    data: &Replicates,
    start: [f64; P],
    options: &FitOptions<P>,
) -> Result<Fit<P>, FitError> {
    let Replicates { xs, means, counts, within_ss } = *data;
    if xs.len() != means.len() || counts.len() != xs.len() {
        return Err(FitError::LengthMismatch);
    }
    if !(within_ss.is_finite() && within_ss >= 0.0) || counts.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(FitError::NonFinite);
    }
    fit_from(model, xs, means, Some(counts), start, options, within_ss, data.observations())
}

/// The fit, with `offset` added to every residual sum of squares and `observations` points for the
/// degrees of freedom (the summarised replicates' part, [`Replicates`]).
#[allow(clippy::too_many_arguments)]
fn fit_from<M: Model<P>, const P: usize>(
    model: &M,
    xs: &[f64],
    ys: &[f64],
    weights: Option<&[f64]>,
    start: [f64; P],
    options: &FitOptions<P>,
    offset: f64,
    observations: usize,
) -> Result<Fit<P>, FitError> {
    let free: [bool; P] = core::array::from_fn(|i| !options.fixed[i]);
    let n_free = free.iter().filter(|f| **f).count();
    if xs.len() < n_free.max(1) {
        return Err(FitError::TooFewPoints);
    }
    if xs.iter().chain(ys).chain(start.iter()).any(|v| !v.is_finite())
        || weights.is_some_and(|w| w.iter().any(|v| !(v.is_finite() && *v >= 0.0)))
        || options.lower.iter().chain(options.upper.iter()).any(|v| v.is_nan())
    {
        return Err(FitError::NonFinite);
    }
    if (0..P).any(|i| options.lower[i] > options.upper[i]) {
        return Err(FitError::BadBounds);
    }
    // Every observation equal (replicates with no spread within their x among them).
    if offset == 0.0 && ys.iter().all(|&y| y == ys[0]) {
        return Err(FitError::AllEqual);
    }
    let project = |t: &mut [f64; P]| {
        for i in 0..P {
            t[i] = t[i].clamp(options.lower[i], options.upper[i]);
        }
    };
    let mut theta = start;
    project(&mut theta);
    let mut eq = normal_equations(model, xs, ys, weights, &theta);
    eq.rss += offset;
    if solve(eq.jtj, eq.jtr, &free).is_none() {
        return Err(FitError::Singular);
    }
    let mut lambda = 1e-3;
    let mut status = FitStatus::MaxIterations;
    let mut iterations = 0;
    while iterations < options.max_iterations {
        iterations += 1;
        let mut damped = eq.jtj;
        for i in 0..P {
            damped[i][i] += lambda * eq.jtj[i][i].max(1e-300);
        }
        let Some(step) = solve(damped, eq.jtr, &free) else {
            lambda *= 10.0;
            continue;
        };
        let mut trial = theta;
        for i in 0..P {
            trial[i] += step[i];
        }
        project(&mut trial);
        let trial_rss = rss_only(model, xs, ys, weights, &trial) + offset;
        if trial_rss.is_finite() && trial_rss <= eq.rss {
            let old = eq.rss;
            let moved = (0..P).any(|i| trial[i] != theta[i]);
            theta = trial;
            eq = normal_equations(model, xs, ys, weights, &theta);
            eq.rss += offset;
            lambda = (lambda * 0.2).max(1e-12);
            if !moved || old - eq.rss <= options.tolerance * old || eq.rss <= f64::MIN_POSITIVE {
                status = FitStatus::Converged;
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                // No direction reduces the residual any more: a (possibly bound-constrained) minimum.
                status = FitStatus::Converged;
                break;
            }
        }
    }
    let dof = observations.saturating_sub(n_free);
    let s2 = if dof > 0 { eq.rss / dof as f64 } else { f64::NAN };
    let inv = invert(&eq.jtj, &free).unwrap_or([[f64::NAN; P]; P]);
    let mut covariance = [[0.0; P]; P];
    let mut std_err = [0.0; P];
    for a in 0..P {
        for b in 0..P {
            covariance[a][b] = if free[a] && free[b] { s2 * inv[a][b] } else { 0.0 };
        }
        std_err[a] = if free[a] { libm::sqrt(covariance[a][a]) } else { 0.0 };
    }
    Ok(Fit { theta, std_err, covariance, rss: eq.rss, dof, iterations, status })
}

/// `1 / (1 + exp(z))`, without overflow for large `|z|`.
fn logistic_fall(z: f64) -> f64 {
    if z > 0.0 {
        let e = libm::exp(-z);
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + libm::exp(z))
    }
}

/// The four-parameter logistic with parameters `[bottom, top, ln IC50, hill]`:
/// `bottom + (top − bottom) / (1 + (x / IC50)^hill)`, equal to `top` for `x ≤ 0`.
#[derive(Copy, Clone, Debug, Default)]
pub struct FourPl;

impl FourPl {
    /// Index of `bottom` in the parameter array.
    pub const BOTTOM: usize = 0;
    /// Index of `top`.
    pub const TOP: usize = 1;
    /// Index of `ln IC50`.
    pub const LN_IC50: usize = 2;
    /// Index of the Hill slope.
    pub const HILL: usize = 3;
}

impl Model<4> for FourPl {
    fn eval(&self, x: f64, t: &[f64; 4], g: &mut [f64; 4]) -> f64 {
        let [bottom, top, ln_ic50, hill] = *t;
        if x <= 0.0 {
            *g = [0.0, 1.0, 0.0, 0.0];
            return top;
        }
        let d = libm::log(x) - ln_ic50;
        let s = logistic_fall(hill * d);
        let span = top - bottom;
        let slope = span * s * (1.0 - s);
        *g = [1.0 - s, s, hill * slope, -d * slope];
        bottom + span * s
    }
}

/// The lentivirus transduction model with parameters `[A, ln T]`: the BFP-positive fraction after
/// `x` µL of virus of titer `T` (TU/µL) on `cells` cells is `A · (1 − exp(−x · T / cells))`.
#[derive(Copy, Clone, Debug)]
pub struct Lentivirus {
    /// Number of cells transduced.
    pub cells: f64,
}

impl Model<2> for Lentivirus {
    fn eval(&self, x: f64, t: &[f64; 2], g: &mut [f64; 2]) -> f64 {
        let [a, ln_titer] = *t;
        let k = x * libm::exp(ln_titer) / self.cells;
        let e = libm::exp(-k);
        *g = [1.0 - e, a * e * k];
        a * (1.0 - e)
    }
}

/// A fitted four-parameter logistic, in natural units.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FourPlFit {
    /// The curve (IC50 in µM, not log).
    pub curve: readout::FourPl,
    /// Standard errors of `[bottom, top, ln IC50, hill]`.
    pub std_err: [f64; 4],
    /// The raw fit, parameters `[bottom, top, ln IC50, hill]`.
    pub fit: Fit<4>,
}

impl FourPlFit {
    /// Relative standard error of the IC50 (the standard error of its logarithm).
    pub fn ic50_rel_err(&self) -> f64 {
        self.std_err[FourPl::LN_IC50]
    }
}

/// Starting values for a 4PL from data: the extremes as asymptotes (oriented by the trend), the IC50
/// where the data cross half way, slope 1.
pub fn four_pl_start(xs: &[f64], ys: &[f64]) -> [f64; 4] {
    let (mut lo_x, mut hi_x) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_at_lo, mut y_at_hi) = (0.0, 0.0);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (&x, &y) in xs.iter().zip(ys) {
        if x < lo_x {
            lo_x = x;
            y_at_lo = y;
        }
        if x > hi_x {
            hi_x = x;
            y_at_hi = y;
        }
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let (top, bottom) = if y_at_lo >= y_at_hi { (y_max, y_min) } else { (y_min, y_max) };
    let mid = 0.5 * (top + bottom);
    // The positive dose whose response is nearest the midpoint, as the IC50 guess.
    let mut best = (f64::INFINITY, 1.0);
    for (&x, &y) in xs.iter().zip(ys) {
        if x > 0.0 && (y - mid).abs() < best.0 {
            best = ((y - mid).abs(), x);
        }
    }
    [bottom, top, libm::log(best.1), 1.0]
}

/// Fits a 4PL with data-derived starting values (overridden by `start` where given). The Hill slope is
/// bounded to (0.05, 20] unless `options` says otherwise.
pub fn fit_four_pl(
    xs: &[f64],
    ys: &[f64],
    weights: Option<&[f64]>,
    start: Option<[f64; 4]>,
    options: &FitOptions<4>,
) -> Result<FourPlFit, FitError> {
    let start = start.unwrap_or_else(|| four_pl_start(xs, ys));
    levenberg_marquardt(&FourPl, xs, ys, weights, start, &hill_bounded(options)).map(four_pl_of)
}

/// [`fit_four_pl`] on replicate observations summarised by [`Replicates`] (the starting values from
/// the means).
pub fn fit_four_pl_replicates(
    data: &Replicates,
    start: Option<[f64; 4]>,
    options: &FitOptions<4>,
) -> Result<FourPlFit, FitError> {
    let start = start.unwrap_or_else(|| four_pl_start(data.xs, data.means));
    levenberg_marquardt_replicates(&FourPl, data, start, &hill_bounded(options)).map(four_pl_of)
}

fn hill_bounded(options: &FitOptions<4>) -> FitOptions<4> {
    let mut opts = *options;
    if opts.lower[FourPl::HILL] == f64::NEG_INFINITY {
        opts.lower[FourPl::HILL] = 0.05;
    }
    if opts.upper[FourPl::HILL] == f64::INFINITY {
        opts.upper[FourPl::HILL] = 20.0;
    }
    opts
}

fn four_pl_of(fit: Fit<4>) -> FourPlFit {
    let [bottom, top, ln_ic50, hill] = fit.theta;
    FourPlFit { curve: readout::FourPl { bottom, top, ic50: libm::exp(ln_ic50), hill }, std_err: fit.std_err, fit }
}

/// A fitted lentivirus titration.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LentivirusFit {
    /// Maximum transducible fraction `A`.
    pub max_fraction: f64,
    /// Titer `T`, TU/µL.
    pub titer_tu_per_ul: f64,
    /// Standard errors of `[A, ln T]`.
    pub std_err: [f64; 2],
    /// The raw fit.
    pub fit: Fit<2>,
}

/// Fits `BFP(V) = A · (1 − exp(−V · T / N))` to volumes (µL) and BFP fractions, with `A` in
/// [0.5, 1] as `MODEL.md` §5 requires.
pub fn fit_lentivirus(volumes_ul: &[f64], fractions: &[f64], cells: f64) -> Result<LentivirusFit, FitError> {
    if !(cells.is_finite() && cells > 0.0) {
        return Err(FitError::NonFinite);
    }
    // Start: A from the highest fraction; T from the initial slope, BFP ≈ A · V · T / N.
    let a0 = fractions.iter().fold(0.0f64, |m, &f| m.max(f)).clamp(0.5, 1.0);
    let mut t0 = f64::NAN;
    let mut best_v = f64::INFINITY;
    for (&v, &f) in volumes_ul.iter().zip(fractions) {
        if v > 0.0 && f > 0.0 && f < 0.9 * a0 && v < best_v {
            best_v = v;
            t0 = -libm::log(1.0 - f / a0) * cells / v;
        }
    }
    if !t0.is_finite() || t0 <= 0.0 {
        t0 = cells / volumes_ul.iter().fold(0.0f64, |m, &v| m.max(v)).max(1e-9);
    }
    let options = FitOptions { lower: [0.5, f64::NEG_INFINITY], upper: [1.0, f64::INFINITY], ..FitOptions::default() };
    let fit = levenberg_marquardt(&Lentivirus { cells }, volumes_ul, fractions, None, [a0, libm::log(t0)], &options)?;
    Ok(LentivirusFit {
        max_fraction: fit.theta[0],
        titer_tu_per_ul: libm::exp(fit.theta[1]),
        std_err: fit.std_err,
        fit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal, seeded};

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    const DOSES: [f64; 12] = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0];

    #[test]
    fn a_fit_to_replicates_summarised_by_dose_is_the_fit_to_every_replicate() {
        // Five noisy wells at each of the twelve doses (the untreated one included), bottom held at 0.
        let truth = readout::FourPl { bottom: 0.0, top: 0.95, ic50: 7.0, hill: 1.3 };
        let mut rng = seeded(11);
        let (mut xs, mut ys) = ([0.0; 60], [0.0; 60]);
        for (k, (x, y)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
            *x = DOSES[k / 5];
            *y = truth.eval(*x) + normal(&mut rng, 0.0, 0.04);
        }
        let (mut means, counts, mut within) = ([0.0; 12], [5.0; 12], 0.0);
        for d in 0..12 {
            means[d] = ys[d * 5..d * 5 + 5].iter().sum::<f64>() / 5.0;
            within += ys[d * 5..d * 5 + 5].iter().map(|y| (y - means[d]) * (y - means[d])).sum::<f64>();
        }
        let opts = FitOptions { fixed: [true, false, false, false], ..FitOptions::default() };
        let start = Some([0.0, 1.0, 1.0, 1.0]);
        let every = fit_four_pl(&xs, &ys, None, start, &opts).unwrap();
        let summary = Replicates { xs: &DOSES, means: &means, counts: &counts, within_ss: within };
        assert_eq!(summary.observations(), 60);
        let pooled = fit_four_pl_replicates(&summary, start, &opts).unwrap();
        assert_eq!(pooled.fit.status, FitStatus::Converged);
        assert_eq!(pooled.fit.dof, every.fit.dof);
        assert_eq!(every.fit.dof, 57);
        for i in 1..4 {
            assert!((pooled.fit.theta[i] - every.fit.theta[i]).abs() < 1e-9, "{i}: {pooled:?} {every:?}");
            assert!(rel(pooled.std_err[i], every.std_err[i]) < 1e-6, "{i}: {pooled:?} {every:?}");
        }
        assert!(rel(pooled.fit.rss, every.fit.rss) < 1e-9);
        assert!(rel(pooled.curve.ic50, 7.0) < 0.15, "{}", pooled.curve.ic50);
        // Spread within the doses alone (equal means) still fits; a summary of nothing but one value
        // does not.
        let flat = Replicates { xs: &DOSES, means: &[0.5; 12], counts: &counts, within_ss: 0.0 };
        assert_eq!(fit_four_pl_replicates(&flat, start, &opts).unwrap_err(), FitError::AllEqual);
        let bad = Replicates { counts: &[0.0; 12], ..summary };
        assert_eq!(fit_four_pl_replicates(&bad, start, &opts).unwrap_err(), FitError::NonFinite);
        let short = Replicates { counts: &[5.0; 11], ..summary };
        assert_eq!(fit_four_pl_replicates(&short, start, &opts).unwrap_err(), FitError::LengthMismatch);
    }

    #[test]
    fn four_pl_exact_recovery() {
        let truth = readout::FourPl { bottom: 0.05, top: 1.02, ic50: 2.5, hill: 1.3 };
        let ys: [f64; 12] = core::array::from_fn(|i| truth.eval(DOSES[i]));
        let f = fit_four_pl(&DOSES, &ys, None, None, &FitOptions::default()).unwrap();
        assert_eq!(f.fit.status, FitStatus::Converged);
        assert!(rel(f.curve.ic50, 2.5) < 1e-6, "{:?}", f.curve);
        assert!(rel(f.curve.hill, 1.3) < 1e-6);
        assert!(rel(f.curve.bottom, 0.05) < 1e-6);
        assert!(rel(f.curve.top, 1.02) < 1e-6);
    }

    #[test]
    fn four_pl_rising_curve() {
        // CellROX-like: rises from 100 to 500.
        let truth = readout::FourPl { bottom: 500.0, top: 100.0, ic50: 50.0, hill: 1.8 };
        let xs: [f64; 10] = core::array::from_fn(|i| 5.0 * (1 << i) as f64 / 4.0);
        let ys: [f64; 10] = core::array::from_fn(|i| truth.eval(xs[i]));
        let f = fit_four_pl(&xs, &ys, None, None, &FitOptions::default()).unwrap();
        assert!(rel(f.curve.ic50, 50.0) < 1e-6 && rel(f.curve.hill, 1.8) < 1e-6, "{:?}", f.curve);
    }

    #[test]
    fn four_pl_noisy_within_tolerance() {
        // 96 points, 8 replicates at 12 doses, 3 % multiplicative noise: IC50 within 10 %, and the
        // reported standard error is honest (the truth within 4 standard errors).
        let truth = readout::FourPl { bottom: 0.0, top: 1.0, ic50: 0.3, hill: 1.0 };
        let mut rng = seeded(99);
        let mut xs = [0.0; 96];
        let mut ys = [0.0; 96];
        for i in 0..96 {
            xs[i] = DOSES[i % 12];
            ys[i] = truth.eval(xs[i]) * normal(&mut rng, 1.0, 0.03);
        }
        let f = fit_four_pl(&xs, &ys, None, None, &FitOptions::default()).unwrap();
        assert!(rel(f.curve.ic50, 0.3) < 0.10, "{:?}", f.curve);
        assert!(libm::fabs(libm::log(f.curve.ic50 / 0.3)) < 4.0 * f.ic50_rel_err());
        assert!(f.ic50_rel_err() > 0.0 && f.ic50_rel_err() < 0.1);
        assert_eq!(f.fit.dof, 92);
    }

    #[test]
    fn fixed_and_bounded() {
        let truth = readout::FourPl { bottom: 0.0, top: 1.0, ic50: 10.0, hill: 2.0 };
        let ys: [f64; 12] = core::array::from_fn(|i| truth.eval(DOSES[i]));
        // Bottom fixed at 0.2 (wrong on purpose): it stays there, and its standard error is 0.
        let mut opts = FitOptions { fixed: [true, false, false, false], ..FitOptions::default() };
        let f = fit_four_pl(&DOSES, &ys, None, Some([0.2, 1.0, 2.0, 1.0]), &opts).unwrap();
        assert_eq!(f.curve.bottom, 0.2);
        assert_eq!(f.std_err[0], 0.0);
        // The slope bounded below the truth ends on its bound.
        opts.fixed = [false; 4];
        opts.upper[FourPl::HILL] = 1.5;
        let f = fit_four_pl(&DOSES, &ys, None, None, &opts).unwrap();
        assert_eq!(f.curve.hill, 1.5);
    }

    #[test]
    fn degenerate_input_is_refused() {
        let o = FitOptions::default();
        assert_eq!(
            fit_four_pl(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], None, None, &o).unwrap_err(),
            FitError::TooFewPoints
        );
        assert_eq!(fit_four_pl(&[1.0, 2.0], &[1.0], None, None, &o).unwrap_err(), FitError::LengthMismatch);
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(fit_four_pl(&xs, &[0.5; 5], None, None, &o).unwrap_err(), FitError::AllEqual);
        assert_eq!(fit_four_pl(&xs, &[0.5, 0.4, f64::NAN, 0.2, 0.1], None, None, &o).unwrap_err(), FitError::NonFinite);
        assert_eq!(
            fit_four_pl(&xs, &[0.5, 0.4, 0.3, 0.2, 0.1], Some(&[1.0, 1.0, -1.0, 1.0, 1.0]), None, &o).unwrap_err(),
            FitError::NonFinite
        );
        let bad = FitOptions { lower: [1.0, 0.0, 0.0, 0.0], upper: [0.0, 1.0, 1.0, 1.0], ..o };
        assert_eq!(fit_four_pl(&xs, &[0.5, 0.4, 0.3, 0.2, 0.1], None, None, &bad).unwrap_err(), FitError::BadBounds);
        // All doses equal: the slope and IC50 are not determined.
        assert_eq!(fit_four_pl(&[2.0; 5], &[0.5, 0.4, 0.3, 0.2, 0.1], None, None, &o).unwrap_err(), FitError::Singular);
    }

    #[test]
    fn lentivirus_exact_and_noisy() {
        let cells = 1e5;
        let (a, titer) = (0.85, 1e5);
        let vols = [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
        let model = Lentivirus { cells };
        let mut g = [0.0; 2];
        let ys: [f64; 8] = core::array::from_fn(|i| model.eval(vols[i], &[a, libm::log(titer)], &mut g));
        let f = fit_lentivirus(&vols, &ys, cells).unwrap();
        assert!(rel(f.titer_tu_per_ul, titer) < 1e-6 && rel(f.max_fraction, a) < 1e-6, "{f:?}");
        let mut rng = seeded(4);
        let noisy: [f64; 8] = core::array::from_fn(|i| (ys[i] + normal(&mut rng, 0.0, 0.01)).max(0.0));
        let f = fit_lentivirus(&vols, &noisy, cells).unwrap();
        assert!(rel(f.titer_tu_per_ul, titer) < 0.2, "{f:?}");
        assert!((0.5..=1.0).contains(&f.max_fraction));
        assert_eq!(fit_lentivirus(&vols, &ys, 0.0).unwrap_err(), FitError::NonFinite);
    }
}
