//! Worklists: Tecan `.gwl` ([`gwl`]), Hamilton CSV in two layouts ([`hamilton`]), conversion between
//! them through a transfer list, and execution through the liquid-handling layer.
//!
//! Execution goes through [`Workcell`], so every step passes the safety envelope first; it stops at the
//! first refused or failed step and says which one (by line for a `.gwl`, by row for a CSV). Tips: a
//! channel without a tip gets the next full spot of the deck's racks; a `.gwl` `W;` drops the tips in use,
//! and a transfer list uses a fresh tip per transfer.

pub mod gwl;
pub mod hamilton;

use cellos_core::plate::PlateFormat;

use crate::GatewayError;
use crate::liquid::{DeckModel, LiquidHandler, Op, Place, Workcell};
use gwl::{Pipetting, Record, Volume};
use hamilton::Transfer;

/// Why a worklist cannot be converted or written. The outer variants say where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WorklistError {
    /// No labware of that name on the deck.
    #[error("no labware `{0}` on the deck")]
    NoLabware(String),
    /// A `.gwl` position that is not on its labware.
    #[error("position {position} on {labware}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Position {
        /// The labware.
        labware: String,
        /// The position.
        position: u32,
        /// Why.
        message: String,
    },
    /// A well that is not on its labware.
    #[error("{labware}:{well}: {message}")]
    Well {
        /// The labware.
        labware: String,
        /// The well.
        well: String,
        /// Why.
        message: String,
    },
    /// Two aspirates without a dispense between them.
    #[error("two aspirates in a row; cellos converts one aspirate per dispense")]
    TwoAspirates,
    /// A dispense with no aspirate before it.
    #[error("dispense without an aspirate")]
    DispenseWithoutAspirate,
    /// The last aspirate has no dispense.
    #[error("the worklist ends with an aspirate and no dispense")]
    EndsWithAspirate,
    /// A label with a `;` in it.
    #[error("{what} `{value}` contains `;`")]
    Semicolon {
        /// Which field.
        what: &'static str,
        /// Its text.
        value: String,
    },
    /// A label longer than the format allows.
    #[error("{what} `{value}` is longer than {} characters", gwl::MAX_LABEL)]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its text.
        value: String,
    },
    /// Position 0.
    #[error("positions count from 1")]
    ZeroPosition,
    /// A wash scheme outside 1 … 4.
    #[error("wash scheme {0} is not 1 … 4")]
    WashScheme(u8),
    /// A comment with a line break.
    #[error("a comment is one line")]
    MultiLineComment,
    /// Excluded wells out of order.
    #[error("excluded wells must be ascending")]
    ExcludedOrder,
    /// `S` neither first nor right after `B`.
    #[error("S may only come first or right after B")]
    SetDiTiPlacement,
    /// A character Latin-1 cannot hold.
    #[error("`{0}` cannot be written in Latin-1")]
    NotLatin1(char),
    /// At a record of a `.gwl` (from 1).
    #[error("record {record}: {cause}")]
    AtRecord {
        /// The record.
        record: usize,
        /// What is wrong there.
        cause: Box<WorklistError>,
    },
    /// At a transfer of a list (from 1).
    #[error("transfer {transfer}: {cause}")]
    AtTransfer {
        /// The transfer.
        transfer: usize,
        /// What is wrong there.
        cause: Box<WorklistError>,
    },
}

/// The layout of a labware, by name: its format, or `None` for a trough.
fn labware_format(deck: &DeckModel, name: &str) -> Result<Option<PlateFormat>, WorklistError> {
    if let Some(p) = deck.plates.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
        return Ok(Some(p.format));
    }
    if let Some(r) = deck.tip_racks.iter().find(|r| r.name.eq_ignore_ascii_case(name)) {
        return Ok(Some(r.format));
    }
    if deck.troughs.iter().any(|t| t.name.eq_ignore_ascii_case(name)) {
        return Ok(None);
    }
    Err(WorklistError::NoLabware(name.to_string()))
}

/// The place a `.gwl` position addresses (column-major) on a labware.
pub fn place_of(deck: &DeckModel, label: &str, position: u32) -> Result<Place, WorklistError> {
    let bad = |message: String| WorklistError::Position { labware: label.to_string(), position, message };
    match labware_format(deck, label)? {
        None => Ok(Place::named(label)),
        Some(f) => {
            let index = u16::try_from(position).map_err(|_| bad(String::new()))?;
            let well = f.from_col_major(index).map_err(|e| bad(e.to_string()))?;
            Ok(Place::well(label, &well.to_string()))
        }
    }
}

/// The `.gwl` position (column-major) of a well on a labware (1 for a trough).
pub fn position_of(deck: &DeckModel, label: &str, well: &str) -> Result<u32, WorklistError> {
    match labware_format(deck, label)? {
        None => Ok(1),
        Some(f) => {
            let w = f.parse_well(well).map_err(|e| WorklistError::Well {
                labware: label.to_string(),
                well: well.to_string(),
                message: e.to_string(),
            })?;
            Ok(u32::from(f.col_major(w)))
        }
    }
}

fn pipetting(label: &str, position: u32, volume_ul: f64, tip_mask: Option<u8>) -> Pipetting {
    Pipetting {
        rack_label: label.to_string(),
        rack_id: String::new(),
        rack_type: String::new(),
        position,
        tube_id: String::new(),
        volume: Volume::ul(volume_ul),
        liquid_class: String::new(),
        tip_type: String::new(),
        tip_mask,
        forced_rack_type: String::new(),
    }
}

/// A `.gwl` for transfers: `A`, `D`, then `W;` (a fresh tip per transfer), tip 1.
pub fn transfers_to_gwl(deck: &DeckModel, transfers: &[Transfer]) -> Result<Vec<Record>, WorklistError> {
    let mut out = Vec::with_capacity(transfers.len() * 3);
    for (i, t) in transfers.iter().enumerate() {
        let at = |e: WorklistError| WorklistError::AtTransfer { transfer: i + 1, cause: Box::new(e) };
        let src = position_of(deck, &t.source, &t.source_well).map_err(at)?;
        let dst = position_of(deck, &t.target, &t.target_well).map_err(at)?;
        out.push(Record::Aspirate(pipetting(&t.source, src, t.volume_ul, Some(1))));
        out.push(Record::Dispense(pipetting(&t.target, dst, t.volume_ul, Some(1))));
        out.push(Record::ReplaceTip);
    }
    Ok(out)
}

fn well_text(p: &Place) -> String {
    p.well.clone().unwrap_or_default()
}

/// The transfers of a `.gwl`: each `A` paired with the next `D`, and `R` expanded; other records carry
/// no transfer.
pub fn gwl_to_transfers(deck: &DeckModel, records: &[Record]) -> Result<Vec<Transfer>, WorklistError> {
    let mut out = Vec::new();
    let mut pending: Option<(Place, f64)> = None;
    for (i, r) in records.iter().enumerate() {
        let at = |e: WorklistError| WorklistError::AtRecord { record: i + 1, cause: Box::new(e) };
        match r {
            Record::Aspirate(p) => {
                if pending.is_some() {
                    return Err(at(WorklistError::TwoAspirates));
                }
                pending = Some((place_of(deck, &p.rack_label, p.position).map_err(at)?, p.volume.value_ul));
            }
            Record::Dispense(p) => {
                let (src, v) = pending.take().ok_or_else(|| at(WorklistError::DispenseWithoutAspirate))?;
                let dst = place_of(deck, &p.rack_label, p.position).map_err(at)?;
                out.push(Transfer {
                    source: src.labware.clone(),
                    source_well: well_text(&src),
                    target: dst.labware.clone(),
                    target_well: well_text(&dst),
                    volume_ul: v,
                });
            }
            Record::Reagent(d) => {
                let sources: Vec<u32> = (d.src_range.0..=d.src_range.1).collect();
                for (k, w) in gwl::distribution_targets(d).into_iter().enumerate() {
                    let src = place_of(deck, &d.src.0, sources[k % sources.len()]).map_err(at)?;
                    let dst = place_of(deck, &d.dst.0, w).map_err(at)?;
                    out.push(Transfer {
                        source: src.labware.clone(),
                        source_well: well_text(&src),
                        target: dst.labware.clone(),
                        target_well: well_text(&dst),
                        volume_ul: d.volume.value_ul,
                    });
                }
            }
            _ => {}
        }
    }
    if pending.is_some() {
        return Err(WorklistError::EndsWithAspirate);
    }
    Ok(out)
}

/// The next full tip spot of the deck model.
fn next_tip(deck: &DeckModel) -> Option<Place> {
    for r in &deck.tip_racks {
        for i in 0..usize::from(r.format.wells()) {
            if r.has_tip(i) {
                let w = r.format.from_row_major(i as u16 + 1).ok()?;
                return Some(Place::well(&r.name, &w.to_string()));
            }
        }
    }
    None
}

async fn ensure_tip<H: LiquidHandler>(w: &mut Workcell<H>, channel: usize) -> Result<(), GatewayError> {
    if w.envelope.tips.get(channel).is_some_and(Option::is_some) {
        return Ok(());
    }
    let at = next_tip(&w.envelope.deck).ok_or(GatewayError::Refused {
        rule: crate::error::Rule::NoTipAtSpot,
        detail: "no full tip spot left on the deck".into(),
    })?;
    w.run(&Op::PickUpTip { channel, at }).await
}

async fn drop_all<H: LiquidHandler>(w: &mut Workcell<H>) -> Result<(), GatewayError> {
    for c in 0..w.envelope.tips.len() {
        if w.envelope.tips[c].is_some() {
            w.run(&Op::DropTip { channel: c, to: Place::named("WASTE") }).await?;
        }
    }
    Ok(())
}

/// Where a worklist's progress goes, and where it may wait: [`Progress::step`] after each step, told
/// whether it is a safe point (no tip holds liquid), where a pause or a stop may take effect. A closure
/// `FnMut(done, total)` only counts.
pub trait Progress {
    /// Step `done` of `total` is done, leaving `tips`; `safe` when no tip holds liquid. An error ends
    /// the worklist there (a stop).
    fn step(
        &mut self,
        done: usize,
        total: usize,
        safe: bool,
        tips: crate::liquid::Tips,
    ) -> impl Future<Output = Result<(), GatewayError>>;

    /// The worklist failed in a step, leaving `tips`.
    fn failed(&mut self, tips: crate::liquid::Tips) {
        let _ = tips;
    }
}

impl<F: FnMut(usize, usize)> Progress for F {
    fn step(
        &mut self,
        done: usize,
        total: usize,
        _safe: bool,
        _tips: crate::liquid::Tips,
    ) -> impl Future<Output = Result<(), GatewayError>> {
        self(done, total);
        std::future::ready(Ok(()))
    }
}

/// No tip holds liquid.
fn safe<H: LiquidHandler>(w: &Workcell<H>) -> bool {
    w.envelope.tips.iter().all(|t| t.as_ref().is_none_or(|t| t.liquid.volume_ul <= 1e-9))
}

fn at_step(file: &str, line: usize, e: GatewayError) -> GatewayError {
    match e {
        e @ (GatewayError::Worklist { .. } | GatewayError::AtStep { .. }) => e,
        other => GatewayError::AtStep { file: file.to_string(), line, cause: Box::new(other) },
    }
}

/// Runs transfers (a fresh tip each) and drops the last tip. `progress` after each one (each is a safe
/// point: its tip is dropped). Rows count from 2 (the header is line 1) in errors.
pub async fn run_transfers<H: LiquidHandler>(
    w: &mut Workcell<H>,
    file: &str,
    transfers: &[Transfer],
    mut progress: impl Progress,
) -> Result<(), GatewayError> {
    for (i, t) in transfers.iter().enumerate() {
        let line = i + 2;
        let src =
            if t.source_well.is_empty() { Place::named(&t.source) } else { Place::well(&t.source, &t.source_well) };
        let dst =
            if t.target_well.is_empty() { Place::named(&t.target) } else { Place::well(&t.target, &t.target_well) };
        let step = async {
            ensure_tip(w, 0).await?;
            w.run(&Op::Aspirate { channel: 0, from: src, volume_ul: t.volume_ul }).await?;
            w.run(&Op::Dispense { channel: 0, to: dst, volume_ul: t.volume_ul }).await?;
            w.run(&Op::DropTip { channel: 0, to: Place::named("WASTE") }).await
        };
        if let Err(e) = step.await {
            progress.failed(w.envelope.tips_now());
            return Err(at_step(file, line, e));
        }
        let safe = safe(w);
        progress.step(i + 1, transfers.len(), safe, w.envelope.tips_now()).await?;
    }
    Ok(())
}

/// Runs a `.gwl`: `A`/`D` with the channel of the tip mask's lowest tip, `W;` drops the tips in use,
/// `R` is expanded, wash/flush/break/DiTi/comment records change nothing on a disposable-tip deck. Tips
/// left at the end are dropped. `progress` after each record; a safe point where no tip holds liquid.
pub async fn run_gwl<H: LiquidHandler>(
    w: &mut Workcell<H>,
    file: &str,
    records: &[Record],
    mut progress: impl Progress,
) -> Result<(), GatewayError> {
    let channel = |m: Option<u8>| m.map_or(0, |m| m.trailing_zeros() as usize);
    for (i, r) in records.iter().enumerate() {
        let line = i + 1;
        let step = async {
            match r {
                Record::Aspirate(p) | Record::Dispense(p) => {
                    let c = channel(p.tip_mask);
                    let place = place_of(&w.envelope.deck, &p.rack_label, p.position)
                        .map_err(|e| GatewayError::Worklist { file: file.to_string(), line, message: e.to_string() })?;
                    ensure_tip(w, c).await?;
                    let op = if matches!(r, Record::Aspirate(_)) {
                        Op::Aspirate { channel: c, from: place, volume_ul: p.volume.value_ul }
                    } else {
                        Op::Dispense { channel: c, to: place, volume_ul: p.volume.value_ul }
                    };
                    w.run(&op).await
                }
                Record::ReplaceTip => drop_all(w).await,
                Record::Reagent(d) => {
                    let deck = &w.envelope.deck;
                    let expanded = gwl_to_transfers(deck, std::slice::from_ref(r))
                        .map_err(|e| GatewayError::Worklist { file: file.to_string(), line, message: e.to_string() })?;
                    for t in &expanded {
                        let src = if t.source_well.is_empty() {
                            Place::named(&t.source)
                        } else {
                            Place::well(&t.source, &t.source_well)
                        };
                        ensure_tip(w, 0).await?;
                        w.run(&Op::Aspirate { channel: 0, from: src, volume_ul: t.volume_ul }).await?;
                        w.run(&Op::Dispense {
                            channel: 0,
                            to: Place::well(&t.target, &t.target_well),
                            volume_ul: t.volume_ul,
                        })
                        .await?;
                        if d.diti_reuses <= 1 {
                            drop_all(w).await?;
                        }
                    }
                    Ok(())
                }
                Record::Wash(_)
                | Record::Decontaminate
                | Record::Flush
                | Record::Break
                | Record::SetDiTi(_)
                | Record::Comment(_) => Ok(()),
            }
        };
        if let Err(e) = step.await {
            progress.failed(w.envelope.tips_now());
            return Err(at_step(file, line, e));
        }
        let safe = safe(w);
        if let Err(e) = progress.step(i + 1, records.len(), safe, w.envelope.tips_now()).await {
            // Stopped at a safe point: the (empty) tips go to waste, as at the end.
            drop_all(w).await.map_err(|d| at_step(file, line, d))?;
            return Err(e);
        }
    }
    drop_all(w).await.map_err(|e| at_step(file, records.len(), e))
}
