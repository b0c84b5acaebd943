//! Lentivirus titration: how much virus gives a target fraction of transduced (BFP-positive) cells.
//!
//! `MODEL.md` §5: after `V` µL of virus of titer `T` (TU/µL) on `N` cells, the BFP-positive fraction is
//! `A · (1 − exp(−V · T / N))`, `A` the largest transducible fraction. [`simulate_series`] makes noisy
//! readings for a volume series, [`titrate`] fits `T` and `A` and recommends the volume for a target
//! fraction, and [`ScreenSize`] sizes a pooled screen (guides × coverage / BFP fraction cells).

use core::fmt;

use rand_core::RngCore;

use crate::fit::{self, FitError, LentivirusFit};
use crate::rng::normal;

/// A virus and cells, as the simulation knows them.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Transduction {
    /// Titer, TU/µL.
    pub titer_tu_per_ul: f64,
    /// Largest transducible fraction.
    pub max_fraction: f64,
    /// Cells transduced.
    pub cells: f64,
}

impl Transduction {
    /// The expected BFP-positive fraction after `volume_ul` of virus.
    pub fn fraction(&self, volume_ul: f64) -> f64 {
        if volume_ul <= 0.0 {
            return 0.0;
        }
        self.max_fraction * (1.0 - libm::exp(-volume_ul * self.titer_tu_per_ul / self.cells))
    }
}

/// The legacy titration series, µL.
pub const DEFAULT_VOLUMES_UL: [f64; 8] = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// Absolute standard deviation of a measured BFP fraction (flow cytometry).
pub const DEFAULT_READ_SD: f64 = 0.02;

/// Writes one noisy BFP reading per volume into `out` (clamped to [0, 1]); one normal draw each.
pub fn simulate_series<R: RngCore + ?Sized>(
    truth: &Transduction,
    volumes_ul: &[f64],
    read_sd: f64,
    rng: &mut R,
    out: &mut [f64],
) {
    for (v, o) in volumes_ul.iter().zip(out.iter_mut()) {
        *o = (truth.fraction(*v) + normal(rng, 0.0, read_sd)).clamp(0.0, 1.0);
    }
}

/// Why a titration gave no recommendation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TiterError {
    /// The fit failed.
    Fit(FitError),
    /// The target fraction is not below the fitted maximum `A` (or not positive).
    Unreachable,
}

impl fmt::Display for TiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TiterError::Fit(e) => write!(f, "titer fit failed: {e}"),
            TiterError::Unreachable => f.write_str("target fraction is at or above the largest transducible fraction"),
        }
    }
}

impl core::error::Error for TiterError {}

/// The result of a titration.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Titration {
    /// The fit of `T` and `A`.
    pub fit: LentivirusFit,
    /// Target BFP fraction.
    pub target_fraction: f64,
    /// Volume for the target on the titration's cell number, µL: `−ln(1 − f / A) · N / T`.
    pub volume_ul: f64,
    /// Cells the titration used.
    pub cells: f64,
}

impl Titration {
    /// Virus volume for the target fraction on `cells` cells (the volume scales with cells), µL.
    pub fn volume_for_cells_ul(&self, cells: f64) -> f64 {
        self.volume_ul * cells / self.cells
    }
}

/// The volume giving `target_fraction` for a fitted virus on `cells` cells.
pub fn volume_for_fraction(fit: &LentivirusFit, cells: f64, target_fraction: f64) -> Result<f64, TiterError> {
    if !(target_fraction > 0.0 && target_fraction < fit.max_fraction) {
        return Err(TiterError::Unreachable);
    }
    Ok(-libm::log(1.0 - target_fraction / fit.max_fraction) * cells / fit.titer_tu_per_ul)
}

/// Fits a measured series and recommends the volume for `target_fraction`.
pub fn titrate(
    volumes_ul: &[f64],
    fractions: &[f64],
    cells: f64,
    target_fraction: f64,
) -> Result<Titration, TiterError> {
    let fit = fit::fit_lentivirus(volumes_ul, fractions, cells).map_err(TiterError::Fit)?;
    let volume_ul = volume_for_fraction(&fit, cells, target_fraction)?;
    Ok(Titration { fit, target_fraction, volume_ul, cells })
}

/// A pooled screen's size.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ScreenSize {
    /// Guides in the library.
    pub guides: u32,
    /// Cells per guide among the transduced cells.
    pub coverage: f64,
    /// Fraction of cells transduced (kept low for single integrations).
    pub bfp_fraction: f64,
}

impl ScreenSize {
    /// The legacy screen: 4,000 guides at 1,000× coverage and 30 % BFP.
    pub const LEGACY: ScreenSize = ScreenSize { guides: 4000, coverage: 1000.0, bfp_fraction: 0.30 };

    /// Cells to transduce: guides × coverage / BFP fraction.
    pub fn cells_to_transduce(&self) -> f64 {
        f64::from(self.guides) * self.coverage / self.bfp_fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    const U2OS: Transduction = Transduction { titer_tu_per_ul: 1e5, max_fraction: 0.9, cells: 1e5 };

    #[test]
    fn model_values() {
        assert_eq!(U2OS.fraction(0.0), 0.0);
        assert!((U2OS.fraction(1.0) - 0.9 * (1.0 - (-1.0f64).exp())).abs() < 1e-15);
        assert!(U2OS.fraction(100.0) > 0.8999);
    }

    #[test]
    fn recovers_titer_within_20_percent() {
        // The legacy test: titer 1e5 TU/µL on 100,000 cells.
        let mut worst: f64 = 0.0;
        for seed in 0..50 {
            let mut rng = seeded(seed);
            let mut bfp = [0.0; 8];
            simulate_series(&U2OS, &DEFAULT_VOLUMES_UL, DEFAULT_READ_SD, &mut rng, &mut bfp);
            let t = titrate(&DEFAULT_VOLUMES_UL, &bfp, U2OS.cells, 0.30).unwrap();
            let err = (t.fit.titer_tu_per_ul - 1e5).abs() / 1e5;
            worst = worst.max(err);
            assert!(err < 0.20, "seed {seed}: {}", t.fit.titer_tu_per_ul);
            assert!((0.5..=1.0).contains(&t.fit.max_fraction));
        }
        assert!(worst > 0.0);
    }

    #[test]
    fn recommended_volume() {
        // Noise-free: the volume for 30 % is −ln(1 − 0.3/0.9) · N / T = 0.405 µL.
        let bfp: [f64; 8] = core::array::from_fn(|i| U2OS.fraction(DEFAULT_VOLUMES_UL[i]));
        let t = titrate(&DEFAULT_VOLUMES_UL, &bfp, U2OS.cells, 0.30).unwrap();
        let expect = -(1.0f64 - 0.3 / 0.9).ln();
        assert!((t.volume_ul - expect).abs() < 1e-6, "{}", t.volume_ul);
        assert!((U2OS.fraction(t.volume_ul) - 0.30).abs() < 1e-9);
        assert!((t.volume_for_cells_ul(1e7) - 100.0 * t.volume_ul).abs() < 1e-9);
        assert_eq!(titrate(&DEFAULT_VOLUMES_UL, &bfp, U2OS.cells, 0.95).unwrap_err(), TiterError::Unreachable);
        assert_eq!(
            titrate(&DEFAULT_VOLUMES_UL, &[0.0; 8], U2OS.cells, 0.3).unwrap_err(),
            TiterError::Fit(FitError::AllEqual)
        );
    }

    #[test]
    fn screen_size() {
        let cells = ScreenSize::LEGACY.cells_to_transduce();
        assert!((cells - 4000.0 * 1000.0 / 0.3).abs() < 1e-3);
        assert!((cells - 13_333_333.33).abs() < 1.0);
    }
}
