//! The campaign's plan, pure: the deck, which wells an iteration takes, how its wells are treated
//! (medium, the stock or fresh intermediates, the compound volumes) and the titration's transfers. No
//! I/O: the runner carries the plan out; the tests here check it on its own.

use std::path::{Path, PathBuf};

use super::{FINAL_UL, LOWEST_UM, MIN_UL, PRECISE_UL, SEED_UL, STOCK_UM, TITRATION_UL};
use crate::GatewayError;
use crate::liquid::DeckModel;

/// One transfer: source, target, µL.
pub type Transfer = (String, String, f64);

pub use cellos_core::deck::campaign::TIP_UL;

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

/// The deck of a campaign, as a TOML deck file (given to the twin, and parsed for the model): the core's
/// campaign deck ([`cellos_core::deck::campaign`]), which the Cortex-M3 twin builds from the same lines.
pub fn deck_toml(lines: &[String]) -> Result<String, GatewayError> {
    let bad = |message: String| GatewayError::Config { path: "campaign deck".into(), message };
    let file = cellos_core::deck::campaign::deck_file(lines).map_err(|e| bad(format!("lines {lines:?}: {e}")))?;
    toml::to_string(&file).map_err(|e| bad(e.to_string()))
}

/// The deck model of a campaign.
pub fn deck_model(lines: &[String]) -> Result<DeckModel, GatewayError> {
    crate::liquid::parse_deck(&deck_toml(lines)?, Path::new("campaign deck"))
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

/// The inner wells of a 96-well plate (rows B–G × columns 2–11), column by column: a column's six
/// wells sit under six neighbouring channels of the arm, so they take one command.
pub fn inner_wells() -> Vec<String> {
    (2..12u8).flat_map(|c| (1..7u8).map(move |r| format!("{}{}", (b'A' + r) as char, c))).collect()
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

/// The treatment of `wells` (a control, then a well per dose of `doses`) of `plate`, its intermediates
/// from dilution-plate slot `slot` on (three at most). Every well is brought to [`FINAL_UL`]: medium,
/// then compound from the 1 mM stock, or from a 100, 10 or 1 µM intermediate made fresh on the dilution
/// plate when the direct volume would fall under [`PRECISE_UL`]. Volumes are rounded to 0.1 µL. The
/// slots are fixed by iteration and line ([`intermediate_slot`]), so a resumed iteration plans the same
/// wells.
pub fn treatment(plate: &str, wells: &[String], doses: &[f64], slot: usize) -> Result<Treatment, PlanError> {
    if let Some(&d) = doses.iter().find(|&&d| d > 0.0 && d * FINAL_UL / LOWEST_UM < MIN_UL) {
        return Err(PlanError::DoseTooLow(d));
    }
    let mut sources: Vec<(String, f64)> = vec![("STOCK".into(), STOCK_UM)];
    let mut intermediates = Vec::new();
    let needs = |c: f64| doses.iter().any(|&d| d > 0.0 && d * FINAL_UL / c < PRECISE_UL);
    let mut level = STOCK_UM;
    while needs(level) && level > LOWEST_UM {
        let well = format!("DILUTION:{}", dilution_well(slot + sources.len() - 1)?);
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

/// The first dilution-plate slot of line `li`'s intermediates in iteration `iteration` (from 1) of a
/// campaign of `lines` lines: three per line and iteration.
pub fn intermediate_slot(iteration: i64, li: usize, lines: usize) -> usize {
    ((iteration.max(1) as usize - 1) * lines + li) * 3
}

/// A line's part of an iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct LineWells {
    /// The line (from 0).
    pub li: usize,
    /// Its wells: a control, then a well per dose.
    pub wells: Vec<String>,
    /// The doses, µM.
    pub doses: Vec<f64>,
    /// The wells seeded in this iteration for the next one (empty when the search may end).
    pub next_wells: Vec<String>,
}

/// Which wells each line's iterations take: the first iteration seeds its own wells; each iteration
/// seeds the next one's (as many as the search may ask for, [`DoseSearch::upcoming`]), a day ahead.
///
/// [`DoseSearch::upcoming`]: cellos_core::search::DoseSearch::upcoming
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    seeded: Vec<Vec<String>>,
    used: Vec<usize>,
}

impl Rounds {
    /// No wells taken yet on any of `lines` plates.
    pub fn new(lines: usize) -> Rounds {
        Rounds { seeded: vec![Vec::new(); lines], used: vec![0; lines] }
    }

    /// Line `li`'s part of this iteration, for `doses`, with `next` wells seeded for the next one.
    pub fn line_wells(&mut self, li: usize, doses: &[f64], next: usize) -> Result<LineWells, PlanError> {
        let plate = assay_plate(li);
        let k = doses.len();
        if self.seeded[li].is_empty() {
            self.seeded[li] = iteration_wells(&plate, self.used[li], k)?;
            self.used[li] += k + 1;
        }
        if self.seeded[li].len() < k + 1 {
            return Err(PlanError::NoWellsLeft { plate, used: self.seeded[li].len(), wanted: k + 1 });
        }
        let wells = self.seeded[li][..k + 1].to_vec();
        let next_wells = if next > 0 {
            let w = iteration_wells(&plate, self.used[li], next)?;
            self.used[li] += next + 1;
            w
        } else {
            Vec::new()
        };
        Ok(LineWells { li, wells, doses: doses.to_vec(), next_wells })
    }

    /// The iteration of `b` is over: its next wells are the line's seeded ones.
    pub fn advance(&mut self, b: &LineWells) {
        self.seeded[b.li] = b.next_wells.clone();
    }
}

/// An iteration's runs of transfers, in the order they go.
#[derive(Clone, Debug, PartialEq)]
pub struct IterationPlan {
    /// Seeding the iteration's own wells (the first iteration only), a run per line in the batches'
    /// order; each plate then incubates 24 h.
    pub seed_now: Vec<Vec<Transfer>>,
    /// The treatment ([`round_treatment`]).
    pub treatment: Vec<Vec<Transfer>>,
    /// Seeding the next iteration's wells, a run per line in the batches' order (empty where the search
    /// may end); each plate then incubates 24 h, and is read.
    pub seed_next: Vec<Vec<Transfer>>,
}

impl IterationPlan {
    /// The plan of iteration `iteration` (from 1) of a campaign of `lines` lines.
    pub fn new(iteration: i64, batches: &[LineWells], lines: usize) -> Result<IterationPlan, PlanError> {
        let seed = |b: &LineWells, wells: &[String]| seeding(&cell_trough(b.li), &assay_plate(b.li), wells);
        Ok(IterationPlan {
            seed_now: if iteration == 1 { batches.iter().map(|b| seed(b, &b.wells)).collect() } else { Vec::new() },
            treatment: round_treatment(batches, iteration, lines)?,
            seed_next: batches.iter().map(|b| seed(b, &b.next_wells)).collect(),
        })
    }

    /// Every run, in order.
    pub fn groups(&self) -> impl Iterator<Item = &Vec<Transfer>> {
        self.seed_now.iter().chain(&self.treatment).chain(&self.seed_next)
    }

    /// Incubations per plate: one after the first seeding, one after the treatment.
    pub fn incubations(&self) -> usize {
        1 + usize::from(!self.seed_now.is_empty())
    }
}

/// The treatment of an iteration's wells, every line at once, as runs of transfers on a tip (set) each,
/// in the order they go. Medium and the stock are dispensed above the liquid, so their tips touch
/// nothing but their trough and serve every well of every plate: medium first, for every intermediate
/// and every plate (one run); then the stock for each line's first intermediate and for every plate's
/// wells that take it (one run); then each further intermediate from the one before it, a tip each; then
/// each line's doses from its intermediates. Every well gets what [`treatment`] plans, in the same
/// order per well (medium, then compound).
pub fn round_treatment(batches: &[LineWells], iteration: i64, lines: usize) -> Result<Vec<Vec<Transfer>>, PlanError> {
    let mut treatments = Vec::with_capacity(batches.len());
    for b in batches {
        let slot = intermediate_slot(iteration, b.li, lines);
        treatments.push(treatment(&assay_plate(b.li), &b.wells, &b.doses, slot)?);
    }
    // An intermediate's preparation is its medium, then its source: split into the two kinds of run.
    let mut medium: Vec<Transfer> = treatments.iter().flat_map(|t| part(t, 0)).collect();
    medium.extend(treatments.iter().flat_map(|t| t.medium.clone()));
    let mut stock: Vec<Transfer> = treatments.iter().flat_map(|t| part(t, 1).take(1)).collect();
    stock.extend(treatments.iter().flat_map(|t| t.compound.first().cloned().unwrap_or_default()));
    let mut groups = vec![medium, stock];
    for t in &treatments {
        groups.extend(part(t, 1).skip(1).map(|m| vec![m]));
    }
    for t in &treatments {
        groups.extend(t.compound.iter().skip(1).cloned());
    }
    groups.retain(|g| !g.is_empty());
    Ok(groups)
}

/// The `k`-th transfer of each of a treatment's intermediates (0: its medium, 1: its source).
fn part(t: &Treatment, k: usize) -> impl Iterator<Item = Transfer> + '_ {
    t.intermediates.iter().filter_map(move |i| i.get(k).cloned())
}

/// One channel's part of a command: `(channel, place, µL)`.
pub type ChannelMove = (usize, String, f64);

/// One instrument command of a plan, by channel; the runner picks the tip spots.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Tips onto these channels (each from its own row of one rack column, so they sit 9 mm apart).
    PickUp(Vec<usize>),
    /// `(channel, source, µL)` per channel.
    Aspirate(Vec<ChannelMove>),
    /// `(channel, target, µL)` per channel.
    Dispense(Vec<ChannelMove>),
    /// The channels' tips into the waste.
    Drop(Vec<usize>),
}

impl Action {
    /// The command's lab time on `profile`, ms (all channels move together).
    pub fn lab_ms(&self, profile: &cellos_core::labtime::Profile) -> u32 {
        use cellos_core::labtime::Command;
        let most = |v: &[ChannelMove]| v.iter().map(|x| x.2).fold(0.0, f64::max);
        profile.command_ms(match self {
            Action::PickUp(_) => Command::PickUp,
            Action::Drop(_) => Command::Drop,
            Action::Aspirate(v) => Command::Aspirate(most(v)),
            Action::Dispense(v) => Command::Dispense(most(v)),
        })
    }

    /// Tips the command picks up.
    pub fn tips(&self) -> usize {
        match self {
            Action::PickUp(c) => c.len(),
            _ => 0,
        }
    }
}

/// The channel of a 96-well plate target: its row (A on channel 1, the rearmost), when the arm has it.
fn row_channel(target: &str, channels: usize) -> Option<(String, usize, usize)> {
    let (plate, well) = target.split_once(':')?;
    let format = cellos_core::plate::PlateFormat::W96;
    let w = format.parse_well(well).ok()?;
    let index = usize::from(format.row_major(w)) - 1;
    let (row, col) = (index / 12, index % 12);
    (row < channels).then(|| (plate.to_string(), col, row))
}

/// The commands of a run of transfers on `channels` channels with tips of `capacity_ul`.
///
/// From one trough into plate wells, on several channels: each well goes to the channel of its row, the
/// wells of one plate column are dispensed by one command, and each channel aspirates at once what its
/// next wells take, as long as its tip holds it (multi-dispense: one tip per channel for the whole run).
/// Otherwise (one channel, a source that is a well, mixed sources) one channel takes the transfers in
/// order, aspirating once for each stretch of wells from the same source that its tip holds.
pub fn commands(moves: &[Transfer], channels: usize, capacity_ul: f64) -> Vec<Action> {
    let Some(first) = moves.first() else { return Vec::new() };
    let one_source = moves.iter().all(|m| m.0 == first.0) && !first.0.contains(':');
    let placed: Option<Vec<(String, usize, usize)>> =
        if channels > 1 && one_source { moves.iter().map(|m| row_channel(&m.1, channels)).collect() } else { None };
    let mut out = Vec::new();
    match placed {
        Some(placed) => {
            let mut used: Vec<usize> = placed.iter().map(|p| p.2).collect();
            used.sort_unstable();
            used.dedup();
            // Columns in the order their first well comes.
            let mut columns: Vec<((String, usize), Vec<ChannelMove>)> = Vec::new();
            for (m, (plate, col, ch)) in moves.iter().zip(placed) {
                let key = (plate, col);
                match columns.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push((ch, m.1.clone(), m.2)),
                    None => columns.push((key, vec![(ch, m.1.clone(), m.2)])),
                }
            }
            out.push(Action::PickUp(used.clone()));
            let mut cycle: Vec<Vec<ChannelMove>> = Vec::new();
            let mut load = vec![0.0; channels];
            let flush = |cycle: &mut Vec<Vec<ChannelMove>>, load: &mut Vec<f64>, out: &mut Vec<Action>| {
                if cycle.is_empty() {
                    return;
                }
                let asp: Vec<ChannelMove> = (0..channels)
                    .filter(|&c| load[c] > 0.0)
                    .map(|c| (c, first.0.clone(), (load[c] * 10.0).round() / 10.0))
                    .collect();
                out.push(Action::Aspirate(asp));
                for mut col in cycle.drain(..) {
                    col.sort_by_key(|x| x.0);
                    out.push(Action::Dispense(col));
                }
                load.iter_mut().for_each(|l| *l = 0.0);
            };
            for (_, mut col) in columns {
                // Two wells of one column on one channel cannot happen (a row each); keep the order.
                col.sort_by_key(|x| x.0);
                if col.iter().any(|(c, _, v)| load[*c] + v > capacity_ul + 1e-9) {
                    flush(&mut cycle, &mut load, &mut out);
                }
                for (c, _, v) in &col {
                    load[*c] += v;
                }
                cycle.push(col);
            }
            flush(&mut cycle, &mut load, &mut out);
            out.push(Action::Drop(used));
        }
        None => {
            out.push(Action::PickUp(vec![0]));
            let mut k = 0;
            while k < moves.len() {
                let source = &moves[k].0;
                let mut end = k;
                let mut load = 0.0;
                while end < moves.len() && moves[end].0 == *source && load + moves[end].2 <= capacity_ul + 1e-9 {
                    load += moves[end].2;
                    end += 1;
                }
                // A transfer larger than the tip still goes, alone (the envelope refuses it).
                if end == k {
                    load = moves[k].2;
                    end = k + 1;
                }
                out.push(Action::Aspirate(vec![(0, source.clone(), (load * 10.0).round() / 10.0)]));
                for m in &moves[k..end] {
                    out.push(Action::Dispense(vec![(0, m.1.clone(), m.2)]));
                }
                k = end;
            }
            out.push(Action::Drop(vec![0]));
        }
    }
    out
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

/// The dilution plate's `slot`-th well, column by column over all 96.
fn dilution_well(slot: usize) -> Result<String, PlanError> {
    // Column by column (A1, B1, …, H1, A2, …): an iteration's intermediates sit in a column or two,
    // each row under its own channel, so their medium and stock go in a command per column.
    let format = cellos_core::plate::PlateFormat::W96;
    let (rows, columns) = (usize::from(format.rows()), usize::from(format.cols()));
    (slot < rows * columns)
        .then(|| format.from_row_major(((slot % rows) * columns + slot / rows + 1) as u16).ok())
        .flatten()
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
    fn the_deck_file_is_the_deck_the_cortex_m_twin_builds() {
        use cellos_core::deck::Deck;
        use cellos_core::deck::campaign::{Lines, MAX_PLATES};
        let lines: Vec<String> = ["U2OS", "HepG2", "A549"].map(String::from).into();
        let text = deck_toml(&lines).unwrap();
        assert!(text.contains("name = \"DILUTION\"") && text.contains("line = \"HepG2\""), "{text}");
        // What the host twin loads from the file ...
        let host: Deck<MAX_PLATES, 96> =
            toml::from_str::<cellos_core::deck::file::DeckFile>(&text).unwrap().build().unwrap();
        // ... is what the image builds in place from the lines' indices.
        let mut image: Deck<MAX_PLATES, 96> = Deck::empty();
        Lines::by_name(&lines).unwrap().deck_file().unwrap().build_into(&mut image).unwrap();
        assert_eq!(host, image);
        let model = deck_model(&lines).unwrap();
        assert_eq!(model.plates.len(), 4);
        assert!(deck_toml(&vec!["U2OS".to_string(); 4]).unwrap_err().to_string().contains("1 to 3 lines, not 4"));
    }

    #[test]
    fn iterations_take_the_inner_wells_in_order_and_run_out() {
        assert_eq!(inner_wells().len(), super::super::INNER_WELLS);
        // Column by column: a column's six wells sit under six neighbouring channels.
        assert_eq!(iteration_wells("ASSAY_1", 0, 2).unwrap(), ["B2", "C2", "D2"]);
        assert_eq!(iteration_wells("ASSAY_1", 5, 1).unwrap(), ["G2", "B3"]);
        assert_eq!(inner_wells().last().map(String::as_str), Some("G11"));
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
        // intermediates, from dilution slot 3, column by column: D01, E01, F01).
        assert_eq!(intermediate_slot(2, 0, 1), 3);
        assert_eq!(intermediate_slot(2, 1, 3), 12);
        let p = treatment("ASSAY_1", &wells, &[100.0, 5.0, 0.05], 3).unwrap();
        assert_eq!(
            p.intermediates,
            vec![
                vec![t("MEDIUM", "DILUTION:D01", 180.0), t("STOCK", "DILUTION:D01", 20.0)],
                vec![t("MEDIUM", "DILUTION:E01", 180.0), t("DILUTION:D01", "DILUTION:E01", 20.0)],
                vec![t("MEDIUM", "DILUTION:F01", 180.0), t("DILUTION:E01", "DILUTION:F01", 20.0)],
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
                vec![t("DILUTION:D01", "ASSAY_1:B4", 10.0)],
                vec![],
                vec![t("DILUTION:F01", "ASSAY_1:B5", 10.0)],
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
        assert_eq!(treatment("ASSAY_1", &wells, &[0.001], 0), Err(PlanError::DoseTooLow(0.001)));
        // Only the stock when every dose is large.
        let p = treatment("ASSAY_1", &wells[..2], &[300.0], 0).unwrap();
        assert!(p.intermediates.is_empty() && p.compound == vec![vec![t("STOCK", "ASSAY_1:B3", 60.0)]]);
    }

    #[test]
    fn a_trough_run_goes_column_by_column_on_the_rows_channels_and_multi_dispenses() {
        // 9 wells of cells, 100 µL each: column 2 (B–G) and column 3 (B–D).
        let wells = iteration_wells("ASSAY_1", 0, 8).unwrap();
        let seed = seeding("CELLS_1", "ASSAY_1", &wells);
        let a = commands(&seed, 8, TIP_UL);
        let channels: Vec<usize> = (1..7).collect();
        assert_eq!(a[0], Action::PickUp(channels.clone()));
        // Channels 2–4 take two wells' worth (200 µL), 5–7 one; one aspiration for both columns.
        let asp: Vec<(usize, String, f64)> =
            (1..7).map(|c| (c, "CELLS_1".to_string(), if c <= 3 { 200.0 } else { 100.0 })).collect();
        assert_eq!(a[1], Action::Aspirate(asp));
        let col2: Vec<(usize, String, f64)> =
            (1..7).map(|c| (c, format!("ASSAY_1:{}2", (b'A' + c as u8) as char), 100.0)).collect();
        assert_eq!(a[2], Action::Dispense(col2));
        assert_eq!(
            a[3],
            Action::Dispense(vec![
                (1, "ASSAY_1:B3".into(), 100.0),
                (2, "ASSAY_1:C3".into(), 100.0),
                (3, "ASSAY_1:D3".into(), 100.0)
            ])
        );
        assert_eq!(a[4], Action::Drop(channels));
        assert_eq!(a.len(), 5);
        // Four columns of 100 µL do not fit a 360 µL tip: a second aspiration for the fourth.
        let wells = iteration_wells("ASSAY_1", 0, 23).unwrap();
        let a = commands(&seeding("CELLS_1", "ASSAY_1", &wells), 8, TIP_UL);
        let kinds: Vec<&str> = a
            .iter()
            .map(|x| match x {
                Action::PickUp(_) => "P",
                Action::Aspirate(_) => "A",
                Action::Dispense(_) => "D",
                Action::Drop(_) => "X",
            })
            .collect();
        assert_eq!(kinds.concat(), "PADDDADX");
        // Every well gets exactly its volume, and each aspiration is what its dispenses take.
        let mut held = [0.0; 8];
        let mut got = std::collections::BTreeMap::new();
        for x in &a {
            match x {
                Action::Aspirate(v) => v.iter().for_each(|(c, _, ul)| held[*c] += ul),
                Action::Dispense(v) => v.iter().for_each(|(c, w, ul)| {
                    held[*c] -= ul;
                    *got.entry(w.clone()).or_insert(0.0) += ul;
                }),
                _ => {}
            }
            assert!(held.iter().all(|h| *h >= -1e-9 && *h <= TIP_UL + 1e-9));
        }
        assert!(held.iter().all(|h| h.abs() < 1e-9));
        assert_eq!(got.len(), 24);
        assert!(got.values().all(|v| (*v - SEED_UL).abs() < 1e-9));
        // One channel: the same transfers in order, an aspiration per three wells.
        let one = commands(&seeding("CELLS_1", "ASSAY_1", &wells[..4]), 1, TIP_UL);
        assert_eq!(one[0], Action::PickUp(vec![0]));
        assert_eq!(one[1], Action::Aspirate(vec![(0, "CELLS_1".into(), 300.0)]));
        assert_eq!(one[2], Action::Dispense(vec![(0, "ASSAY_1:B2".into(), 100.0)]));
        assert_eq!(one[5], Action::Aspirate(vec![(0, "CELLS_1".into(), 100.0)]));
        assert_eq!(one.len(), 8);
        // A well as the source (an intermediate): one channel, whatever the arm has.
        let from_well = vec![t("DILUTION:A01", "ASSAY_1:B2", 10.0), t("DILUTION:A01", "ASSAY_1:C2", 10.0)];
        assert_eq!(commands(&from_well, 8, TIP_UL)[1], Action::Aspirate(vec![(0, "DILUTION:A01".into(), 20.0)]));
        // The lab time of a command is that of its largest channel.
        let profile = cellos_core::labtime::Profile::STAR;
        assert_eq!(a[1].lab_ms(&profile), profile.command_ms(cellos_core::labtime::Command::Aspirate(300.0)));
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
        assert_eq!(
            ["A01", "H01", "A02", "H12"].map(String::from).to_vec(),
            [0, 7, 8, 95].map(|s| dilution_well(s).unwrap())
        );
    }

    #[test]
    fn a_round_shares_the_medium_and_stock_tips_and_gives_every_well_what_its_line_plans() {
        let b = |li: usize, doses: &[f64]| LineWells {
            li,
            wells: iteration_wells(&assay_plate(li), 0, doses.len()).unwrap(),
            doses: doses.to_vec(),
            next_wells: Vec::new(),
        };
        // Line 1 needs three intermediates (slots 0–2: A01–C01), line 2 one (slots 3–5: D01).
        let batches = [b(0, &[100.0, 5.0, 0.05]), b(1, &[50.0, 3.0])];
        let groups = round_treatment(&batches, 1, 2).unwrap();
        let medium = |w: &str| t("MEDIUM", w, 180.0);
        assert_eq!(
            groups[0][..4],
            [medium("DILUTION:A01"), medium("DILUTION:B01"), medium("DILUTION:C01"), medium("DILUTION:D01")]
        );
        assert!(groups[0][4..].iter().all(|m| m.0 == "MEDIUM" && m.1.starts_with("ASSAY_")), "{:?}", groups[0]);
        assert_eq!(groups[1][..2], [t("STOCK", "DILUTION:A01", 20.0), t("STOCK", "DILUTION:D01", 20.0)]);
        assert!(groups[1][2..].iter().all(|m| m.0 == "STOCK" && m.1.starts_with("ASSAY_")));
        // Then the chain, a tip per step, before any dose is taken from it.
        assert_eq!(groups[2], [t("DILUTION:A01", "DILUTION:B01", 20.0)]);
        assert_eq!(groups[3], [t("DILUTION:B01", "DILUTION:C01", 20.0)]);
        assert!(groups[4..].iter().flatten().all(|m| m.0.starts_with("DILUTION:") && m.1.starts_with("ASSAY_")));
        // On eight channels the medium run is one pick-up for both plates and the dilution column, whose
        // four wells take one dispense.
        let cmds = commands(&groups[0], 8, TIP_UL);
        assert_eq!(cmds.iter().filter(|c| matches!(c, Action::PickUp(_))).count(), 1);
        assert!(
            cmds.contains(&Action::Dispense(
                (0..4)
                    .map(|c| (
                        c,
                        ["DILUTION:A01", "DILUTION:B01", "DILUTION:C01", "DILUTION:D01"][c].to_string(),
                        180.0
                    ))
                    .collect()
            ))
        );
        // The same transfers as each line's own treatment, no more, no fewer.
        let mut planned: Vec<String> = groups.iter().flatten().map(|m| format!("{m:?}")).collect();
        let mut own: Vec<String> = batches
            .iter()
            .map(|x| treatment(&assay_plate(x.li), &x.wells, &x.doses, intermediate_slot(1, x.li, 2)).unwrap())
            .flat_map(|p| p.intermediates.into_iter().flatten().chain(p.medium).chain(p.compound.into_iter().flatten()))
            .map(|m| format!("{m:?}"))
            .collect();
        planned.sort();
        own.sort();
        assert_eq!(planned, own);
    }
}
