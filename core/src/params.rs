//! Parameters: what describes a cell line, a compound's potency on it, and the tBHP readout sets.
//!
//! The types are plain numbers (`Copy`, no names inside), so a host can load them from a database and a
//! microcontroller can keep them in flash. The [`builtin`] table holds the legacy platform's values
//! (`simulation_parameters.yaml`, tabulated in `MODEL.md` §1), looked up by name, ignoring ASCII case.
//!
//! A lookup that finds nothing is an error value. The legacy code quietly used IC50 = 1 µM for any
//! (compound, line) pair it did not know; here a caller who wants that must say so, with
//! [`Defaults::sensitivity`].

use core::fmt;

/// Growth and noise parameters of one cell line.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CellLineParams {
    /// Doubling time in exponential growth, hours.
    pub doubling_time_h: f64,
    /// Confluence (cells / capacity) at which growth stops.
    pub max_confluence: f64,
    /// Passage number past which the line is retired.
    pub max_passage: u32,
    /// Senescence rate per passage (kept for the record; the growth law does not use it).
    pub senescence_rate: f64,
    /// Fraction of cells that attach when seeded.
    pub seeding_efficiency: f64,
    /// Fraction of viability lost at each passage.
    pub passage_stress: f64,
    /// Coefficient of variation of a cell count.
    pub cell_count_cv: f64,
    /// Coefficient of variation of a viability reading.
    pub viability_cv: f64,
    /// Coefficient of variation of biological responses (treatment, CellROX).
    pub biological_cv: f64,
    /// Whether vessels need a coating before seeding (iPSC).
    pub coating_required: bool,
}

/// The potency of a compound on one cell line: viability falls as `1 / (1 + (D / IC50)^hill)`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CompoundSensitivity {
    /// Dose at which viability is halved, µM.
    pub ic50_um: f64,
    /// Hill slope of the dose-response curve.
    pub hill: f64,
}

/// CellROX (oxidative stress) readout parameters for tBHP on one line.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CellRoxParams {
    /// Dose giving half the maximal increase, µM.
    pub ec50_um: f64,
    /// Signal at saturating dose, as a multiple of the baseline.
    pub max_fold: f64,
    /// Signal of untreated cells, arbitrary units.
    pub baseline_au: f64,
    /// Hill slope of the rise.
    pub hill: f64,
}

/// Segmentation-quality readout parameters for tBHP on one line.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SegmentationParams {
    /// Dose at which quality has fallen half way to its minimum, µM.
    pub degradation_ic50_um: f64,
    /// Quality at saturating dose.
    pub min_quality: f64,
    /// Hill slope of the fall.
    pub hill: f64,
}

/// Values used where a caller explicitly asks for a default, and the growth-law constants.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Cell-line parameters for a line with none of its own.
    pub cell_line: CellLineParams,
    /// IC50 used when a caller explicitly accepts a default, µM.
    pub ic50_um: f64,
    /// Hill slope used with [`Defaults::ic50_um`].
    pub hill: f64,
    /// Duration of the lag ramp after seeding or passage, hours.
    pub lag_duration_h: f64,
    /// Fraction of growth lost by a well on the plate's outer ring.
    pub edge_penalty: f64,
}

/// Which parameter lookup failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParamError {
    /// No cell line of that name.
    UnknownCellLine,
    /// No compound of that name.
    UnknownCompound,
    /// The compound is known, but has no IC50 for that line.
    NoSensitivity,
    /// No CellROX parameter set for that line.
    NoCellRox,
    /// No segmentation parameter set for that line.
    NoSegmentation,
    /// A value is out of its valid range (named by the field).
    Invalid(&'static str),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::UnknownCellLine => f.write_str("unknown cell line"),
            ParamError::UnknownCompound => f.write_str("unknown compound"),
            ParamError::NoSensitivity => {
                f.write_str("no IC50 for this compound on this cell line (ask for the default explicitly)")
            }
            ParamError::NoCellRox => f.write_str("no CellROX parameter set for this cell line"),
            ParamError::NoSegmentation => f.write_str("no segmentation parameter set for this cell line"),
            ParamError::Invalid(field) => write!(f, "parameter `{field}` is out of range"),
        }
    }
}

impl core::error::Error for ParamError {}

fn positive(x: f64, field: &'static str) -> Result<(), ParamError> {
    if x.is_finite() && x > 0.0 { Ok(()) } else { Err(ParamError::Invalid(field)) }
}

fn fraction(x: f64, field: &'static str) -> Result<(), ParamError> {
    if (0.0..=1.0).contains(&x) { Ok(()) } else { Err(ParamError::Invalid(field)) }
}

fn cv(x: f64, field: &'static str) -> Result<(), ParamError> {
    if x.is_finite() && x >= 0.0 { Ok(()) } else { Err(ParamError::Invalid(field)) }
}

impl CellLineParams {
    /// Checks that every value is in range: positive times and confluence, fractions in [0, 1],
    /// coefficients of variation finite and non-negative.
    pub fn validate(&self) -> Result<(), ParamError> {
        positive(self.doubling_time_h, "doubling_time_h")?;
        positive(self.max_confluence, "max_confluence")?;
        fraction(self.senescence_rate, "senescence_rate")?;
        fraction(self.seeding_efficiency, "seeding_efficiency")?;
        fraction(self.passage_stress, "passage_stress")?;
        cv(self.cell_count_cv, "cell_count_cv")?;
        cv(self.viability_cv, "viability_cv")?;
        cv(self.biological_cv, "biological_cv")
    }

    /// Growth rate `r = ln 2 / T_d`, per hour.
    pub fn growth_rate_per_h(&self) -> f64 {
        core::f64::consts::LN_2 / self.doubling_time_h
    }
}

impl CompoundSensitivity {
    /// Checks that the IC50 and slope are positive and finite.
    pub fn validate(&self) -> Result<(), ParamError> {
        positive(self.ic50_um, "ic50_um")?;
        positive(self.hill, "hill")
    }
}

impl CellRoxParams {
    /// The legacy fallback for a line without a CellROX set. Use it only on purpose.
    pub const LEGACY_FALLBACK: CellRoxParams =
        CellRoxParams { ec50_um: 50.0, max_fold: 5.0, baseline_au: 100.0, hill: 1.8 };

    /// Checks that every value is positive and finite.
    pub fn validate(&self) -> Result<(), ParamError> {
        positive(self.ec50_um, "ec50_um")?;
        positive(self.max_fold, "max_fold")?;
        positive(self.baseline_au, "baseline_au")?;
        positive(self.hill, "hill")
    }
}

impl SegmentationParams {
    /// The legacy fallback for a line without a segmentation set. Use it only on purpose.
    pub const LEGACY_FALLBACK: SegmentationParams =
        SegmentationParams { degradation_ic50_um: 200.0, min_quality: 0.3, hill: 2.5 };

    /// Checks the IC50 and slope are positive and the minimum quality is a fraction.
    pub fn validate(&self) -> Result<(), ParamError> {
        positive(self.degradation_ic50_um, "degradation_ic50_um")?;
        fraction(self.min_quality, "min_quality")?;
        positive(self.hill, "hill")
    }
}

impl Defaults {
    /// The default sensitivity, for a caller that has decided a missing pair may use it.
    pub fn sensitivity(&self) -> CompoundSensitivity {
        CompoundSensitivity { ic50_um: self.ic50_um, hill: self.hill }
    }
}

/// The built-in parameter table of the legacy platform.
pub mod builtin {
    use super::*;

    // One argument per column of the table in MODEL.md §1, in its order, so each row reads like the table.
    #[allow(clippy::too_many_arguments)]
    const fn line(
        doubling_time_h: f64,
        max_confluence: f64,
        max_passage: u32,
        senescence_rate: f64,
        seeding_efficiency: f64,
        passage_stress: f64,
        cell_count_cv: f64,
        viability_cv: f64,
        biological_cv: f64,
    ) -> CellLineParams {
        CellLineParams {
            doubling_time_h,
            max_confluence,
            max_passage,
            senescence_rate,
            seeding_efficiency,
            passage_stress,
            cell_count_cv,
            viability_cv,
            biological_cv,
            coating_required: false,
        }
    }

    /// The eight cell lines, in the order of the legacy file.
    pub const CELL_LINES: [(&str, CellLineParams); 8] = [
        ("HEK293T", line(24.0, 0.90, 30, 0.010, 0.85, 0.020, 0.10, 0.02, 0.05)),
        ("HeLa", line(20.0, 0.85, 25, 0.015, 0.90, 0.015, 0.10, 0.02, 0.05)),
        ("Jurkat", line(18.0, 1.00, 40, 0.005, 0.95, 0.010, 0.08, 0.02, 0.04)),
        ("U2OS", line(26.0, 0.88, 28, 0.012, 0.82, 0.025, 0.12, 0.02, 0.06)),
        ("CHO", line(22.0, 0.92, 35, 0.008, 0.88, 0.018, 0.10, 0.02, 0.05)),
        (
            "iPSC",
            CellLineParams { coating_required: true, ..line(40.0, 0.80, 50, 0.020, 0.50, 0.100, 0.15, 0.05, 0.10) },
        ),
        ("HepG2", line(48.0, 0.85, 25, 0.015, 0.80, 0.030, 0.12, 0.03, 0.07)),
        ("A549", line(22.0, 0.88, 30, 0.010, 0.85, 0.020, 0.11, 0.02, 0.06)),
    ];

    /// One compound: its name, Hill slope, and IC50 (µM) per line (lines without one are absent).
    #[derive(Copy, Clone, Debug)]
    pub struct CompoundEntry {
        /// Compound name as the legacy file spells it.
        pub name: &'static str,
        /// Hill slope shared by every line.
        pub hill: f64,
        /// (cell line, IC50 µM) pairs.
        pub ic50_um: &'static [(&'static str, f64)],
    }

    /// The seven compounds and their 35 IC50s.
    pub const COMPOUNDS: [CompoundEntry; 7] = [
        CompoundEntry {
            name: "staurosporine",
            hill: 1.2,
            ic50_um: &[("HEK293T", 0.05), ("HeLa", 0.08), ("Jurkat", 0.03), ("U2OS", 0.20), ("CHO", 0.12)],
        },
        CompoundEntry {
            name: "tunicamycin",
            hill: 1.0,
            ic50_um: &[("HEK293T", 0.80), ("HeLa", 0.60), ("Jurkat", 0.40), ("U2OS", 0.30), ("CHO", 0.70)],
        },
        CompoundEntry {
            name: "doxorubicin",
            hill: 1.3,
            ic50_um: &[("HEK293T", 0.25), ("HeLa", 0.15), ("Jurkat", 0.10), ("U2OS", 0.35), ("CHO", 0.30)],
        },
        CompoundEntry {
            name: "cisplatin",
            hill: 1.1,
            ic50_um: &[("HEK293T", 5.0), ("HeLa", 3.0), ("Jurkat", 2.0), ("U2OS", 8.0), ("CHO", 6.0)],
        },
        CompoundEntry {
            name: "paclitaxel",
            hill: 1.4,
            ic50_um: &[("HEK293T", 0.01), ("HeLa", 0.008), ("Jurkat", 0.005), ("U2OS", 0.015), ("CHO", 0.012)],
        },
        CompoundEntry {
            name: "H2O2",
            hill: 1.5,
            ic50_um: &[("HEK293T", 150.0), ("HeLa", 120.0), ("Jurkat", 80.0), ("U2OS", 250.0), ("CHO", 180.0)],
        },
        CompoundEntry {
            name: "tbhp",
            hill: 2.0,
            ic50_um: &[("U2OS", 100.0), ("HepG2", 150.0), ("A549", 80.0), ("HEK293T", 120.0), ("HeLa", 90.0)],
        },
    ];

    /// tBHP CellROX sets per line.
    pub const CELLROX: [(&str, CellRoxParams); 3] = [
        ("U2OS", CellRoxParams { ec50_um: 50.0, max_fold: 5.0, baseline_au: 100.0, hill: 1.8 }),
        ("HepG2", CellRoxParams { ec50_um: 75.0, max_fold: 4.0, baseline_au: 120.0, hill: 1.6 }),
        ("A549", CellRoxParams { ec50_um: 40.0, max_fold: 6.0, baseline_au: 90.0, hill: 2.0 }),
    ];

    /// tBHP segmentation sets per line.
    pub const SEGMENTATION: [(&str, SegmentationParams); 3] = [
        ("U2OS", SegmentationParams { degradation_ic50_um: 200.0, min_quality: 0.30, hill: 2.5 }),
        ("HepG2", SegmentationParams { degradation_ic50_um: 250.0, min_quality: 0.40, hill: 2.2 }),
        ("A549", SegmentationParams { degradation_ic50_um: 150.0, min_quality: 0.25, hill: 2.8 }),
    ];

    /// The legacy defaults: 9 cell-line values, default IC50 and Hill, lag duration, edge penalty.
    pub const DEFAULTS: Defaults = Defaults {
        cell_line: line(24.0, 0.9, 30, 0.01, 0.85, 0.02, 0.10, 0.02, 0.05),
        ic50_um: 1.0,
        hill: 1.0,
        lag_duration_h: 12.0,
        edge_penalty: 0.15,
    };

    fn find<'a, T>(table: &'a [(&str, T)], name: &str) -> Option<&'a T> {
        table.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Parameters of a cell line, by name.
    pub fn cell_line(name: &str) -> Result<CellLineParams, ParamError> {
        find(&CELL_LINES, name).copied().ok_or(ParamError::UnknownCellLine)
    }

    /// The table entry of a compound, by name.
    pub fn compound(name: &str) -> Result<&'static CompoundEntry, ParamError> {
        COMPOUNDS.iter().find(|c| c.name.eq_ignore_ascii_case(name)).ok_or(ParamError::UnknownCompound)
    }

    /// The IC50 and Hill slope of a compound on a line. A pair the table lacks is
    /// [`ParamError::NoSensitivity`], even when both names exist.
    pub fn sensitivity(compound_name: &str, line_name: &str) -> Result<CompoundSensitivity, ParamError> {
        let entry = compound(compound_name)?;
        match find(entry.ic50_um, line_name) {
            Some(&ic50_um) => Ok(CompoundSensitivity { ic50_um, hill: entry.hill }),
            None if find(&CELL_LINES, line_name).is_none() => Err(ParamError::UnknownCellLine),
            None => Err(ParamError::NoSensitivity),
        }
    }

    /// The tBHP CellROX set of a line.
    pub fn cellrox(line_name: &str) -> Result<CellRoxParams, ParamError> {
        find(&CELLROX, line_name).copied().ok_or(ParamError::NoCellRox)
    }

    /// The tBHP segmentation set of a line.
    pub fn segmentation(line_name: &str) -> Result<SegmentationParams, ParamError> {
        find(&SEGMENTATION, line_name).copied().ok_or(ParamError::NoSegmentation)
    }
}

#[cfg(test)]
mod tests {
    use super::builtin::*;
    use super::*;

    #[test]
    fn counts_match_the_legacy_file() {
        assert_eq!(CELL_LINES.len(), 8);
        assert_eq!(COMPOUNDS.len(), 7);
        assert_eq!(COMPOUNDS.iter().map(|c| c.ic50_um.len()).sum::<usize>(), 35);
        assert_eq!(CELLROX.len(), 3);
        assert_eq!(SEGMENTATION.len(), 3);
        // 13 defaults: 9 cell-line values, IC50, Hill, lag, edge penalty.
        let d = DEFAULTS;
        let values = [
            d.cell_line.doubling_time_h,
            d.cell_line.max_confluence,
            f64::from(d.cell_line.max_passage),
            d.cell_line.senescence_rate,
            d.cell_line.seeding_efficiency,
            d.cell_line.passage_stress,
            d.cell_line.cell_count_cv,
            d.cell_line.viability_cv,
            d.cell_line.biological_cv,
            d.ic50_um,
            d.hill,
            d.lag_duration_h,
            d.edge_penalty,
        ];
        assert_eq!(values, [24.0, 0.9, 30.0, 0.01, 0.85, 0.02, 0.10, 0.02, 0.05, 1.0, 1.0, 12.0, 0.15]);
    }

    #[test]
    fn every_entry_is_valid() {
        for (_, p) in CELL_LINES {
            p.validate().unwrap();
        }
        for c in COMPOUNDS {
            for &(line, ic50_um) in c.ic50_um {
                cell_line(line).unwrap();
                CompoundSensitivity { ic50_um, hill: c.hill }.validate().unwrap();
            }
        }
        for (_, p) in CELLROX {
            p.validate().unwrap();
        }
        for (_, p) in SEGMENTATION {
            p.validate().unwrap();
        }
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(cell_line("u2os").unwrap().doubling_time_h, 26.0);
        assert_eq!(cell_line("HEPG2").unwrap().doubling_time_h, 48.0);
        assert!(cell_line("ipsc").unwrap().coating_required);
        assert!(!cell_line("HeLa").unwrap().coating_required);
        assert_eq!(sensitivity("TBHP", "u2os"), Ok(CompoundSensitivity { ic50_um: 100.0, hill: 2.0 }));
        assert_eq!(sensitivity("h2o2", "Jurkat"), Ok(CompoundSensitivity { ic50_um: 80.0, hill: 1.5 }));
        assert_eq!(sensitivity("Staurosporine", "HEK293T"), Ok(CompoundSensitivity { ic50_um: 0.05, hill: 1.2 }));
        assert_eq!(cellrox("a549").unwrap().max_fold, 6.0);
        assert_eq!(segmentation("hepg2").unwrap().min_quality, 0.40);
    }

    #[test]
    fn missing_is_an_error_not_a_default() {
        assert_eq!(cell_line("Vero"), Err(ParamError::UnknownCellLine));
        assert_eq!(sensitivity("aspirin", "U2OS"), Err(ParamError::UnknownCompound));
        assert_eq!(sensitivity("staurosporine", "HepG2"), Err(ParamError::NoSensitivity));
        assert_eq!(sensitivity("tbhp", "Jurkat"), Err(ParamError::NoSensitivity));
        assert_eq!(sensitivity("tbhp", "Vero"), Err(ParamError::UnknownCellLine));
        assert_eq!(cellrox("HeLa"), Err(ParamError::NoCellRox));
        assert_eq!(segmentation("HeLa"), Err(ParamError::NoSegmentation));
        // The fallback exists, but only by name.
        assert_eq!(DEFAULTS.sensitivity(), CompoundSensitivity { ic50_um: 1.0, hill: 1.0 });
        assert_eq!(CellRoxParams::LEGACY_FALLBACK.ec50_um, 50.0);
        assert_eq!(SegmentationParams::LEGACY_FALLBACK.degradation_ic50_um, 200.0);
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = cell_line("U2OS").unwrap();
        p.doubling_time_h = 0.0;
        assert_eq!(p.validate(), Err(ParamError::Invalid("doubling_time_h")));
        let mut p = cell_line("U2OS").unwrap();
        p.passage_stress = 1.5;
        assert_eq!(p.validate(), Err(ParamError::Invalid("passage_stress")));
        let s = CompoundSensitivity { ic50_um: f64::NAN, hill: 1.0 };
        assert_eq!(s.validate(), Err(ParamError::Invalid("ic50_um")));
        let seg = SegmentationParams { min_quality: -0.1, ..SegmentationParams::LEGACY_FALLBACK };
        assert_eq!(seg.validate(), Err(ParamError::Invalid("min_quality")));
    }
}
