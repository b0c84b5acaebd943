//! Readouts: what an assay measures of a culture, and the dose-response functions behind them.
//!
//! The pure functions ([`hill_inhibition`], [`hill_activation`], [`FourPl`]) have inverses, which the
//! dose search and the fits use. The `read_*` functions add the measurement noise of `MODEL.md` §3, each
//! taking exactly one normal draw from the caller's generator.

use rand_core::RngCore;

use crate::model::Culture;
use crate::params::{CellLineParams, CellRoxParams, SegmentationParams};
use crate::rng::noise_factor;

/// Coefficient of variation of the segmentation-quality reading.
pub const SEGMENTATION_CV: f64 = 0.05;

/// Surviving fraction `1 / (1 + (D / IC50)^h)`; 1 for `D ≤ 0`.
pub fn hill_inhibition(dose_um: f64, ic50_um: f64, hill: f64) -> f64 {
    if dose_um <= 0.0 {
        return 1.0;
    }
    1.0 / (1.0 + libm::pow(dose_um / ic50_um, hill))
}

/// The dose at which [`hill_inhibition`] equals `fraction`, for `fraction` in (0, 1].
pub fn hill_inhibition_inverse(fraction: f64, ic50_um: f64, hill: f64) -> Option<f64> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return None;
    }
    Some(ic50_um * libm::pow(1.0 / fraction - 1.0, 1.0 / hill))
}

/// Fractional activation `D^h / (EC50^h + D^h)`; 0 for `D ≤ 0`.
pub fn hill_activation(dose_um: f64, ec50_um: f64, hill: f64) -> f64 {
    if dose_um <= 0.0 {
        return 0.0;
    }
    // r / (1 + r) rather than 1 − inhibition: keeps full precision for small activations.
    let r = libm::pow(dose_um / ec50_um, hill);
    r / (1.0 + r)
}

/// The dose at which [`hill_activation`] equals `fraction`, for `fraction` in [0, 1).
pub fn hill_activation_inverse(fraction: f64, ec50_um: f64, hill: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&fraction) {
        return None;
    }
    Some(ec50_um * libm::pow(fraction / (1.0 - fraction), 1.0 / hill))
}

/// The four-parameter logistic `bottom + (top − bottom) / (1 + (x / ic50)^hill)`.
///
/// With `hill > 0` the curve falls from `top` at `x = 0` to `bottom` at large `x`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FourPl {
    /// Response at infinite dose.
    pub bottom: f64,
    /// Response at zero dose.
    pub top: f64,
    /// Dose of the half-way response.
    pub ic50: f64,
    /// Hill slope.
    pub hill: f64,
}

impl FourPl {
    /// The response at dose `x` (`top` for `x ≤ 0`).
    pub fn eval(&self, x: f64) -> f64 {
        self.bottom + (self.top - self.bottom) * hill_inhibition(x, self.ic50, self.hill)
    }

    /// The dose giving response `y`, when `y` lies strictly between bottom and top (or equals top).
    pub fn inverse(&self, y: f64) -> Option<f64> {
        let span = self.top - self.bottom;
        if span == 0.0 {
            return None;
        }
        hill_inhibition_inverse((y - self.bottom) / span, self.ic50, self.hill)
    }
}

/// Mean CellROX signal (AU) at a tBHP dose: `B` for `D ≤ 0`, else `B · (1 + (F − 1) · act(D))`.
pub fn cellrox_mean(p: &CellRoxParams, dose_um: f64) -> f64 {
    p.baseline_au * (1.0 + (p.max_fold - 1.0) * hill_activation(dose_um, p.ec50_um, p.hill))
}

/// Mean segmentation quality at a tBHP dose, before viability: 1 for `D ≤ 0`, else
/// `q_min + (1 − q_min) · IC^h / (IC^h + D^h)`.
pub fn segmentation_mean(p: &SegmentationParams, dose_um: f64) -> f64 {
    p.min_quality + (1.0 - p.min_quality) * hill_inhibition(dose_um, p.degradation_ic50_um, p.hill)
}

/// A cell count: `max(0, N · ε)`, `ε ~ Normal(1, count CV)`.
pub fn read_cell_count<R: RngCore + ?Sized>(culture: &Culture, line: &CellLineParams, rng: &mut R) -> f64 {
    (culture.cells() * noise_factor(rng, line.cell_count_cv)).max(0.0)
}

/// A viability reading: `clamp(V · ε, 0, 1)`, `ε ~ Normal(1, viability CV)`.
pub fn read_viability<R: RngCore + ?Sized>(culture: &Culture, line: &CellLineParams, rng: &mut R) -> f64 {
    (culture.viability() * noise_factor(rng, line.viability_cv)).clamp(0.0, 1.0)
}

/// A CellROX reading: `max(0, S · ε)`, `ε ~ Normal(1, biological CV)`.
pub fn read_cellrox<R: RngCore + ?Sized>(p: &CellRoxParams, line: &CellLineParams, dose_um: f64, rng: &mut R) -> f64 {
    (cellrox_mean(p, dose_um) * noise_factor(rng, line.biological_cv)).max(0.0)
}

/// A segmentation-quality reading: `clamp(Q · V · ε, 0, 1)`, `ε ~ Normal(1, 0.05)`, with `V` the well's
/// current viability.
pub fn read_segmentation<R: RngCore + ?Sized>(
    p: &SegmentationParams,
    dose_um: f64,
    viability: f64,
    rng: &mut R,
) -> f64 {
    (segmentation_mean(p, dose_um) * viability * noise_factor(rng, SEGMENTATION_CV)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::builtin;
    use crate::rng::seeded;

    #[test]
    fn hill_values() {
        assert_eq!(hill_inhibition(0.0, 1.0, 1.0), 1.0);
        assert_eq!(hill_inhibition(-3.0, 1.0, 1.0), 1.0);
        assert_eq!(hill_inhibition(2.0, 2.0, 1.7), 0.5);
        assert!((hill_inhibition(20.0, 10.0, 2.0) - 0.2).abs() < 1e-15);
        assert!((hill_activation(20.0, 10.0, 2.0) - 0.8).abs() < 1e-15);
        assert_eq!(hill_activation(0.0, 10.0, 2.0), 0.0);
    }

    #[test]
    fn inverses() {
        // Doses from 1/100 to 100 × IC50: closer to 0, f is within 1e-10 of 1 and no inverse of f can
        // recover the dose better than f itself is represented.
        for &(ic50, h) in &[(0.05, 1.2), (100.0, 2.0), (7.0, 0.7)] {
            for &d in &[0.01 * ic50, 0.3 * ic50, ic50, 3.0 * ic50, 100.0 * ic50] {
                let f = hill_inhibition(d, ic50, h);
                let back = hill_inhibition_inverse(f, ic50, h).unwrap();
                assert!(((back - d) / d).abs() < 1e-9, "{d} {back}");
                let a = hill_activation(d, ic50, h);
                let back = hill_activation_inverse(a, ic50, h).unwrap();
                assert!(((back - d) / d).abs() < 1e-9, "{d} {back}");
            }
        }
        assert_eq!(hill_inhibition_inverse(0.0, 1.0, 1.0), None);
        assert_eq!(hill_inhibition_inverse(1.5, 1.0, 1.0), None);
        assert_eq!(hill_activation_inverse(1.0, 1.0, 1.0), None);
        let c = FourPl { bottom: 0.1, top: 1.2, ic50: 3.0, hill: 1.5 };
        assert_eq!(c.eval(0.0), 1.2);
        assert!((c.eval(3.0) - 0.65).abs() < 1e-15);
        assert!((c.inverse(c.eval(9.0)).unwrap() - 9.0).abs() < 1e-9);
        assert_eq!(c.inverse(0.05), None);
        assert_eq!(FourPl { top: 0.1, ..c }.inverse(0.1), None);
    }

    #[test]
    fn cellrox_u2os() {
        let u2os = builtin::cellrox("U2OS").unwrap();
        let a549 = builtin::cellrox("A549").unwrap();
        assert_eq!(cellrox_mean(&u2os, 0.0), 100.0);
        // At EC50 the signal is half way: 100 · (1 + 4 · 0.5) = 300.
        assert!((cellrox_mean(&u2os, 50.0) - 300.0).abs() < 1e-9);
        assert!(cellrox_mean(&a549, 50.0) > cellrox_mean(&u2os, 50.0));
        let mut prev = 0.0;
        for d in 0..=500 {
            let s = cellrox_mean(&u2os, f64::from(d));
            assert!(s >= prev);
            prev = s;
        }
        assert!(prev < 500.0);
        // Noisy readings around 100 AU at 0 µM.
        let line = builtin::cell_line("U2OS").unwrap();
        let mut rng = seeded(5);
        let n = 4000;
        let mean = (0..n).map(|_| read_cellrox(&u2os, &line, 0.0, &mut rng)).sum::<f64>() / f64::from(n);
        assert!((mean - 100.0).abs() < 1.0, "{mean}");
    }

    #[test]
    fn segmentation_u2os() {
        let p = builtin::segmentation("U2OS").unwrap();
        assert_eq!(segmentation_mean(&p, 0.0), 1.0);
        assert!((segmentation_mean(&p, 200.0) - 0.65).abs() < 1e-12);
        assert!(segmentation_mean(&p, 400.0) < 0.5);
        let mut prev = 1.0;
        for d in 0..=1000 {
            let q = segmentation_mean(&p, f64::from(d));
            assert!(q <= prev && q >= p.min_quality);
            prev = q;
        }
        // The reading includes viability and stays in [0, 1].
        let mut rng = seeded(9);
        for _ in 0..1000 {
            let r = read_segmentation(&p, 0.0, 0.98, &mut rng);
            assert!((0.0..=1.0).contains(&r));
        }
    }

    #[test]
    fn noise_free_optimum_u2os_is_segmentation_bound() {
        // MODEL.md §4: the U2OS optimum 45.24 µM is where mean segmentation (Q · V) falls to 0.80.
        let seg = builtin::segmentation("U2OS").unwrap();
        let tox = builtin::sensitivity("tbhp", "U2OS").unwrap();
        let at = |d: f64| segmentation_mean(&seg, d) * 0.98 * hill_inhibition(d, tox.ic50_um, tox.hill);
        assert!(at(45.20) > 0.80 && at(45.28) < 0.80);
    }

    #[test]
    fn counts_and_viability() {
        let line = builtin::cell_line("HEK293T").unwrap();
        let c = Culture::seed(1e6, 1e7, false).unwrap();
        let mut rng = seeded(21);
        let n = 2000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = read_cell_count(&c, &line, &mut rng);
            assert!(x >= 0.0);
            sum += x;
            let v = read_viability(&c, &line, &mut rng);
            assert!((0.0..=1.0).contains(&v));
        }
        let mean = sum / f64::from(n);
        // Seed and count agree within the noise: CV 0.10, so the mean of 2000 is within 1 %.
        assert!((mean / 1e6 - 1.0).abs() < 0.01, "{mean}");
    }
}
