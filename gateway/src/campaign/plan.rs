//! The campaign's plan, pure: the deck, which wells an iteration takes, how its wells are treated
//! (medium, the stock or fresh intermediates, the compound volumes) and the titration's transfers. No
//! I/O: the runner carries the plan out; the tests here check it on its own.

use std::path::{Path, PathBuf};

use super::{
    CELLS_PER_UL, FINAL_UL, LOWEST_UM, MIN_UL, PRECISE_UL, SEED_UL, STOCK_UM, TITRATION_UL, VIRUS_TITER_TU_PER_UL,
};
use crate::GatewayError;
use crate::liquid::DeckModel;

/// One transfer: source, target, µL.
pub type Transfer = (String, String, f64);

/// Why a plan cannot be made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The line's plate has no inner wells left for the batch.
    #[error("{plate} has no inner wells left ({used} used, {wanted} more wanted)")]
    NoWellsLeft {
        /// The plate.
        plate: String,
        /// Wells used by earlier iterations.
        used: usize,
        /// Wells the batch needs.
        wanted: usize,
    },
    /// The dilution plate has no well left for an intermediate.
    #[error("the dilution plate is full (slot {0})")]
    DilutionPlateFull(usize),
    /// A dose even the most dilute intermediate cannot make.
    #[error("{0} µM would need under {MIN_UL} µL of the {LOWEST_UM} µM intermediate: raise the dose range")]
    DoseTooLow(f64),
    /// A well name that is not on a 96-well plate.
    #[error("well {well}: {message}")]
    BadWell {
        /// The name.
        well: String,
        /// Why.
        message: String,
    },
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

/// The deck model of a campaign.
pub fn deck_model(lines: &[String]) -> Result<DeckModel, GatewayError> {
    crate::liquid::parse_deck(&deck_toml(lines), Path::new("campaign deck"))
}

/// Where a campaign keeps its deck file for the twin.
pub fn deck_path(data_dir: &Path) -> PathBuf {
    data_dir.join("campaign-deck.toml")
}

/// The name of a line's assay plate (`li` from 0).
pub fn assay_plate(li: usize) -> String {
    format!("ASSAY_{}", li + 1)
}

/// The name of a line's cell trough (`li` from 0).
pub fn cell_trough(li: usize) -> String {
    format!("CELLS_{}", li + 1)
}

/// The inner wells of a 96-well plate (rows B–G × columns 2–11), row by row.
pub fn inner_wells() -> Vec<String> {
    (1..7u8).flat_map(|r| (2..12u8).map(move |c| format!("{}{}", (b'A' + r) as char, c))).collect()
}

/// The wells of an iteration: the next `batch + 1` inner wells after the `used` ones (a control, then a
/// well per dose).
pub fn iteration_wells(plate: &str, used: usize, batch: usize) -> Result<Vec<String>, PlanError> {
    inner_wells().get(used..used + batch + 1).map(<[String]>::to_vec).ok_or_else(|| PlanError::NoWellsLeft {
        plate: plate.to_string(),
        used,
        wanted: batch + 1,
    })
}

/// Seeding: the line's cell suspension into each well.
pub fn seeding(trough: &str, plate: &str, wells: &[String]) -> Vec<Transfer> {
    wells.iter().map(|w| (trough.to_string(), format!("{plate}:{w}"), SEED_UL)).collect()
}

/// How an iteration's wells are treated, each group on a tip of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Treatment {
    /// Each intermediate's preparation (medium, then the previous source), most concentrated first.
    pub intermediates: Vec<Vec<Transfer>>,
    /// Medium for every well that needs at least the smallest volume, in well order.
    pub medium: Vec<Transfer>,
    /// Compound, per source (the stock, then each intermediate), in well order.
    pub compound: Vec<Vec<Transfer>>,
}

/// The treatment of `wells` (a control, then a well per dose of `doses`) of `plate` in iteration
/// `iteration` (from 1). Every well is brought to [`FINAL_UL`]: medium, then compound from the 1 mM
/// stock, or from a 100, 10 or 1 µM intermediate made fresh on the dilution plate when the direct
/// volume would fall under [`PRECISE_UL`]. Volumes are rounded to 0.1 µL. An intermediate's well is
/// fixed by iteration and level, so a resumed iteration plans the same wells.
pub fn treatment(plate: &str, wells: &[String], doses: &[f64], iteration: i64) -> Result<Treatment, PlanError> {
    if let Some(&d) = doses.iter().find(|&&d| d > 0.0 && d * FINAL_UL / LOWEST_UM < MIN_UL) {
        return Err(PlanError::DoseTooLow(d));
    }
    let mut sources: Vec<(String, f64)> = vec![("STOCK".into(), STOCK_UM)];
    let mut intermediates = Vec::new();
    let needs = |c: f64| doses.iter().any(|&d| d > 0.0 && d * FINAL_UL / c < PRECISE_UL);
    let mut level = STOCK_UM;
    while needs(level) && level > LOWEST_UM {
        let slot = (iteration.max(1) as usize - 1) * 3 + sources.len() - 1;
        let well = format!("DILUTION:{}", dilution_well(slot)?);
        let from = sources.last().map(|s| s.0.clone()).unwrap_or_default();
        intermediates.push(vec![("MEDIUM".into(), well.clone(), 180.0), (from, well.clone(), 20.0)]);
        level /= 10.0;
        sources.push((well, level));
    }
    let per_well: Vec<(Option<(String, f64)>, f64)> = std::iter::once((None, FINAL_UL - SEED_UL))
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
    let medium = wells
        .iter()
        .zip(&per_well)
        .filter(|(_, (_, m))| *m >= MIN_UL)
        .map(|(w, (_, m))| ("MEDIUM".to_string(), format!("{plate}:{w}"), *m))
        .collect();
    let compound = sources
        .iter()
        .map(|(src, _)| {
            wells
                .iter()
                .zip(&per_well)
                .filter_map(|(w, (s, _))| {
                    s.as_ref().filter(|(n, _)| n == src).map(|(_, v)| (src.clone(), format!("{plate}:{w}"), *v))
                })
                .collect()
        })
        .collect();
    Ok(Treatment { intermediates, medium, compound })
}

/// The journal steps an iteration takes: each run of transfers picks a tip up, aspirates and dispenses
/// each transfer, and drops the tip; the two incubations are one step each.
pub fn steps(seeding: &[Transfer], t: &Treatment) -> usize {
    let group = |g: &[Transfer]| if g.is_empty() { 0 } else { 2 + 2 * g.len() };
    group(seeding)
        + t.intermediates.iter().map(|g| group(g)).sum::<usize>()
        + group(&t.medium)
        + t.compound.iter().map(|g| group(g)).sum::<usize>()
        + 2
}

/// A lentivirus titration on the bottom edge row of a line's plate.
#[derive(Clone, Debug, PartialEq)]
pub struct Titration {
    /// The titration wells (H1–H8), one per volume of [`TITRATION_UL`].
    pub wells: Vec<String>,
    /// Cells into each well.
    pub seeding: Vec<Transfer>,
    /// The 1:10 virus dilution made in H12.
    pub dilution: Vec<Transfer>,
    /// Virus, from the dilution (volumes under [`PRECISE_UL`]), then neat.
    pub virus: [Vec<Transfer>; 2],
}

/// The titration of line `li` (from 0).
pub fn titration(li: usize) -> Titration {
    let plate = assay_plate(li);
    let wells: Vec<String> = (1..=TITRATION_UL.len()).map(|c| format!("H{c}")).collect();
    let diluted = format!("{plate}:H12");
    let seeding = seeding(&cell_trough(li), &plate, &wells);
    let dilution = vec![("MEDIUM".into(), diluted.clone(), 180.0), ("VIRUS".into(), diluted.clone(), 20.0)];
    let virus = [(diluted.as_str(), 10.0), ("VIRUS", 1.0)].map(|(source, factor)| {
        wells
            .iter()
            .zip(TITRATION_UL)
            .filter(|(_, v)| *v > 0.0 && ((*v < PRECISE_UL) == (factor > 1.0)))
            .map(|(w, v)| (source.to_string(), format!("{plate}:{w}"), v * factor))
            .collect()
    });
    Titration { wells, seeding, dilution, virus }
}

/// A 96-well plate's well, 1-based row-major (the reader's numbering).
pub fn well_index(well: &str) -> Result<u16, PlanError> {
    let format = cellos_core::plate::PlateFormat::W96;
    format
        .parse_well(well)
        .map(|w| format.row_major(w))
        .map_err(|e| PlanError::BadWell { well: well.to_string(), message: e.to_string() })
}

/// The dilution plate's `slot`-th well, row-major over all 96.
fn dilution_well(slot: usize) -> Result<String, PlanError> {
    let format = cellos_core::plate::PlateFormat::W96;
    u16::try_from(slot + 1)
        .ok()
        .filter(|&i| i <= format.wells())
        .and_then(|i| format.from_row_major(i).ok())
        .map(|w| w.to_string())
        .ok_or(PlanError::DilutionPlateFull(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(from: &str, to: &str, ul: f64) -> Transfer {
        (from.to_string(), to.to_string(), ul)
    }

    #[test]
    fn iterations_take_the_inner_wells_in_order_and_run_out() {
        assert_eq!(inner_wells().len(), super::super::INNER_WELLS);
        assert_eq!(iteration_wells("ASSAY_1", 0, 2).unwrap(), ["B2", "B3", "B4"]);
        assert_eq!(iteration_wells("ASSAY_1", 9, 1).unwrap(), ["B11", "C2"]);
        assert_eq!(
            iteration_wells("ASSAY_1", 58, 2),
            Err(PlanError::NoWellsLeft { plate: "ASSAY_1".into(), used: 58, wanted: 3 })
        );
        assert_eq!(seeding("CELLS_1", "ASSAY_1", &["B2".into()]), [t("CELLS_1", "ASSAY_1:B2", 100.0)]);
    }

    #[test]
    fn large_doses_come_from_the_stock_small_ones_from_fresh_intermediates() {
        let wells: Vec<String> = ["B2", "B3", "B4", "B5"].map(String::from).to_vec();
        // 100 µM: 20 µL of stock; 5 µM: 1 µL of stock is under 2 µL, so 10 µL of the 100 µM
        // intermediate; 0.05 µM: 1 µL of the 10 µM one is under 2 µL, so 10 µL of the 1 µM one (three
        // intermediates, iteration 2 → dilution slots 3, 4, 5).
        let p = treatment("ASSAY_1", &wells, &[100.0, 5.0, 0.05], 2).unwrap();
        assert_eq!(
            p.intermediates,
            vec![
                vec![t("MEDIUM", "DILUTION:A04", 180.0), t("STOCK", "DILUTION:A04", 20.0)],
                vec![t("MEDIUM", "DILUTION:A05", 180.0), t("DILUTION:A04", "DILUTION:A05", 20.0)],
                vec![t("MEDIUM", "DILUTION:A06", 180.0), t("DILUTION:A05", "DILUTION:A06", 20.0)],
            ]
        );
        assert_eq!(
            p.medium,
            [
                t("MEDIUM", "ASSAY_1:B2", 100.0),
                t("MEDIUM", "ASSAY_1:B3", 80.0),
                t("MEDIUM", "ASSAY_1:B4", 90.0),
                t("MEDIUM", "ASSAY_1:B5", 90.0)
            ]
        );
        assert_eq!(
            p.compound,
            vec![
                vec![t("STOCK", "ASSAY_1:B3", 20.0)],
                vec![t("DILUTION:A04", "ASSAY_1:B4", 10.0)],
                vec![],
                vec![t("DILUTION:A06", "ASSAY_1:B5", 10.0)],
            ]
        );
        // Every well ends at 200 µL with its dose.
        for (k, dose) in [(1, 100.0), (2, 5.0), (3, 0.05)] {
            let target = format!("ASSAY_1:{}", wells[k]);
            let m: f64 = p.medium.iter().filter(|x| x.1 == target).map(|x| x.2).sum();
            let (src, c): (String, f64) =
                p.compound.iter().flatten().find(|x| x.1 == target).map(|x| (x.0.clone(), x.2)).unwrap();
            assert!((SEED_UL + m + c - FINAL_UL).abs() < 1e-9);
            let conc = if src == "STOCK" {
                STOCK_UM
            } else {
                1000.0 / 10f64.powi(p.intermediates.iter().position(|i| i[0].1 == src).unwrap() as i32 + 1)
            };
            assert!((conc * c / FINAL_UL - dose).abs() / dose < 0.025, "{dose} from {src}");
        }
        assert_eq!(treatment("ASSAY_1", &wells, &[0.001], 1), Err(PlanError::DoseTooLow(0.001)));
        // 4 wells seeded (10 steps), 3 intermediates (6 each), medium for 4 wells (10), compound from 3
        // sources (4 each), 2 incubations.
        let seeded = seeding("CELLS_1", "ASSAY_1", &wells);
        assert_eq!(steps(&seeded, &p), 10 + 18 + 10 + 12 + 2);
        // Only the stock when every dose is large.
        let p = treatment("ASSAY_1", &wells[..2], &[300.0], 1).unwrap();
        assert!(p.intermediates.is_empty() && p.compound == vec![vec![t("STOCK", "ASSAY_1:B3", 60.0)]]);
    }

    #[test]
    fn the_titration_uses_the_bottom_row_and_a_dilution_for_small_volumes() {
        let p = titration(1);
        assert_eq!(p.wells, ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8"]);
        assert_eq!(p.seeding[0], t("CELLS_2", "ASSAY_2:H1", SEED_UL));
        assert_eq!(p.dilution[1], t("VIRUS", "ASSAY_2:H12", 20.0));
        let all: Vec<&Transfer> = p.virus.iter().flatten().collect();
        for (w, v) in p.wells.iter().zip(TITRATION_UL).filter(|(_, v)| *v > 0.0) {
            let x = all.iter().find(|x| x.1 == format!("ASSAY_2:{w}")).unwrap();
            let neat = if x.0 == "VIRUS" { x.2 } else { x.2 / 10.0 };
            assert!((neat - v).abs() < 1e-12, "{w}");
            assert_eq!(x.0 == "VIRUS", v >= PRECISE_UL);
        }
        assert_eq!(well_index("H12").unwrap(), 96);
        assert!(matches!(well_index("Q1"), Err(PlanError::BadWell { .. })));
        assert_eq!(dilution_well(96), Err(PlanError::DilutionPlateFull(96)));
    }
}
