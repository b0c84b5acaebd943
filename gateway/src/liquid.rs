//! Liquid handling: one interface over both instruments, a deck model, a safety envelope, a journal.
//!
//! [`LiquidHandler`] is what an instrument does, in deck coordinates (0.1 mm): initialise, pick up tips,
//! aspirate, dispense, drop tips, move a plate, and say which channels hold tips if it can. The STAR and
//! EVO handlers implement it over their drivers.
//!
//! [`Workcell`] is what the rest of cellos uses. It takes operations by name ([`Op`]: `PLATE_1:B3`,
//! `MEDIUM`, `TIPS_1:A1`), checks each against the **safety envelope** before anything is sent, and
//! keeps the deck model up to date after it succeeds. The envelope is a mirror of the deck (the same
//! `cellos_firmware::deck::Deck` type the twin uses, loaded from the same TOML file): tips present, tip
//! contents and capacity, well and trough volumes and capacity, positions. A refused operation returns
//! [`GatewayError::Refused`] naming the rule, and sends nothing.
//!
//! **No blind retries.** A liquid operation that times out or fails stops the run: the workcell asks the
//! instrument which channels hold tips (a query, which may be retried) and returns
//! [`GatewayError::OperationFailed`] saying what is known and what is not. A [`Journal`] records every
//! operation before it is sent and its outcome after.

use std::future::Future;

use cellos_firmware::deck::{Deck, Liquid, Location, TroughContent};

use crate::error::{GatewayError, Rule};

/// The deck model: up to 4 plates of up to 384 wells (the twin's host deck).
pub type DeckModel = Deck<4, 384>;

/// The smallest volume a channel pipettes accurately, µL.
pub const MIN_VOLUME_UL: f64 = 0.5;

/// A channel at a deck position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChannelAt {
    /// Channel index (0-based).
    pub channel: usize,
    /// x, 0.1 mm.
    pub x_01mm: i32,
    /// y, 0.1 mm.
    pub y_01mm: i32,
}

/// A channel moving a volume at a deck position.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ChannelVolume {
    /// Where.
    pub at: ChannelAt,
    /// How much, µL.
    pub volume_ul: f64,
}

/// What an instrument does, in deck coordinates. Implementations check nothing: the [`Workcell`]
/// checks before it calls them.
pub trait LiquidHandler: Send {
    /// Pipetting channels (or tips).
    fn channels(&self) -> usize;
    /// Initialises the instrument; `tip_capacities_ul` are the tip types on the deck.
    fn initialise(&mut self, tip_capacities_ul: &[f64]) -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Picks up tips of the given capacity.
    fn pick_up_tips(
        &mut self,
        tips: &[ChannelAt],
        capacity_ul: f64,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Aspirates.
    fn aspirate(&mut self, ops: &[ChannelVolume]) -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Dispenses.
    fn dispense(&mut self, ops: &[ChannelVolume]) -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Drops tips (into the waste, or back into a rack).
    fn drop_tips(&mut self, tips: &[ChannelAt]) -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Moves a plate between two positions (its A1 centre, 0.1 mm).
    fn move_plate(&mut self, from: (i32, i32), to: (i32, i32))
    -> impl Future<Output = Result<(), GatewayError>> + Send;
    /// Which channels hold tips, if the instrument can tell.
    fn tip_presence(&mut self) -> impl Future<Output = Result<Option<Vec<bool>>, GatewayError>> + Send;
}

/// A deck place by name: a well (`PLATE_1:B3`), a tip spot (`TIPS_1:A1`), a trough (`MEDIUM`), or `WASTE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Labware name (or `WASTE`).
    pub labware: String,
    /// Well or tip spot, `None` for a trough or the waste.
    pub well: Option<String>,
}

impl Place {
    /// Parses `NAME` or `NAME:WELL`.
    pub fn parse(s: &str) -> Place {
        match s.split_once(':') {
            Some((l, w)) => Place { labware: l.trim().to_string(), well: Some(w.trim().to_string()) },
            None => Place { labware: s.trim().to_string(), well: None },
        }
    }

    /// A well of a labware.
    pub fn well(labware: &str, well: &str) -> Place {
        Place { labware: labware.into(), well: Some(well.into()) }
    }

    /// A trough or the waste.
    pub fn named(labware: &str) -> Place {
        Place { labware: labware.into(), well: None }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.well {
            Some(w) => write!(f, "{}:{w}", self.labware),
            None => f.write_str(&self.labware),
        }
    }
}

/// One liquid-handling operation, by deck names.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Pick up the tip at a rack spot with a channel.
    PickUpTip {
        /// Channel index.
        channel: usize,
        /// Rack spot.
        at: Place,
    },
    /// Aspirate from a well or trough.
    Aspirate {
        /// Channel index.
        channel: usize,
        /// Source.
        from: Place,
        /// µL.
        volume_ul: f64,
    },
    /// Dispense into a well or trough.
    Dispense {
        /// Channel index.
        channel: usize,
        /// Target.
        to: Place,
        /// µL.
        volume_ul: f64,
    },
    /// Drop a channel's tip into the waste (or back at an empty rack spot).
    DropTip {
        /// Channel index.
        channel: usize,
        /// `WASTE` or a rack spot.
        to: Place,
    },
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::PickUpTip { channel, at } => write!(f, "pick up tip {at} with channel {}", channel + 1),
            Op::Aspirate { channel, from, volume_ul } => {
                write!(f, "aspirate {volume_ul} µL from {from} with channel {}", channel + 1)
            }
            Op::Dispense { channel, to, volume_ul } => {
                write!(f, "dispense {volume_ul} µL into {to} with channel {}", channel + 1)
            }
            Op::DropTip { channel, to } => write!(f, "drop tip of channel {} into {to}", channel + 1),
        }
    }
}

impl Op {
    /// The channel the operation uses.
    pub fn channel(&self) -> usize {
        match self {
            Op::PickUpTip { channel, .. }
            | Op::Aspirate { channel, .. }
            | Op::Dispense { channel, .. }
            | Op::DropTip { channel, .. } => *channel,
        }
    }
}

/// What became of a journalled operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    /// The instrument confirmed it.
    Done,
    /// The instrument refused it with an error: it did not happen.
    Failed(String),
    /// No confirmation either way (time-out, lost link): it may have happened.
    Unknown(String),
}

/// Records operations before they are sent and their outcome after (the campaign runner writes these to
/// its database, in the same transaction discipline as everything else).
pub trait Journal: Send {
    /// Called before `op` is sent; returns an entry id.
    fn before(&mut self, op: &Op) -> Result<u64, GatewayError>;
    /// Called with the outcome of entry `entry`.
    fn after(&mut self, entry: u64, outcome: &OpOutcome) -> Result<(), GatewayError>;
}

/// A tip on a channel, as the model knows it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TipModel {
    /// Capacity, µL.
    pub capacity_ul: f64,
    /// What it holds.
    pub liquid: Liquid,
    /// The trough content it last aspirated from.
    pub source: Option<TroughContent>,
}

/// The safety envelope: the deck model and the channels' tips.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The deck as the model knows it.
    pub deck: DeckModel,
    /// Tip per channel.
    pub tips: Vec<Option<TipModel>>,
}

fn refuse(rule: Rule, detail: String) -> GatewayError {
    GatewayError::Refused { rule, detail }
}

impl Envelope {
    /// A model of `deck` with `channels` empty channels.
    pub fn new(deck: DeckModel, channels: usize) -> Envelope {
        Envelope { deck, tips: vec![None; channels] }
    }

    /// The deck location and coordinates of a place.
    pub fn locate(&self, place: &Place) -> Result<(Location, i32, i32), GatewayError> {
        let off = |why: &str| refuse(Rule::OffDeck, format!("{place}: {why}"));
        if place.labware.eq_ignore_ascii_case("WASTE") {
            let (x, y, w, d) = self.deck.waste;
            if w <= 0 || d <= 0 {
                return Err(off("this deck has no waste"));
            }
            return Ok((Location::Waste, x + w / 2, y + d / 2));
        }
        if let Some((i, r)) =
            self.deck.tip_racks.iter().enumerate().find(|(_, r)| r.name.eq_ignore_ascii_case(&place.labware))
        {
            let w = place.well.as_deref().ok_or_else(|| off("a tip rack needs a spot, like TIPS_1:A1"))?;
            let well = r.format.parse_well(w).map_err(|e| off(&e.to_string()))?;
            let index = usize::from(r.format.row_major(well)) - 1;
            let (x, y) = self.deck.tip_position(i, index).ok_or_else(|| off("no such spot"))?;
            return Ok((Location::Tip { rack: i, index }, x, y));
        }
        if let Some((i, p)) =
            self.deck.plates.iter().enumerate().find(|(_, p)| p.name.eq_ignore_ascii_case(&place.labware))
        {
            let w = place.well.as_deref().ok_or_else(|| off("a plate needs a well, like PLATE_1:A1"))?;
            let well = p.format.parse_well(w).map_err(|e| off(&e.to_string()))?;
            let index = usize::from(p.format.row_major(well)) - 1;
            let (x, y) = p.well_position(index);
            return Ok((Location::Well { plate: i, index }, x, y));
        }
        if let Some((i, t)) =
            self.deck.troughs.iter().enumerate().find(|(_, t)| t.name.eq_ignore_ascii_case(&place.labware))
        {
            return Ok((Location::Trough { trough: i }, t.x_01mm + t.width_01mm / 2, t.y_01mm + t.depth_01mm / 2));
        }
        Err(off("no labware of that name on the deck"))
    }

    fn channel(&self, op: &Op) -> Result<Option<&TipModel>, GatewayError> {
        let c = op.channel();
        self.tips
            .get(c)
            .map(Option::as_ref)
            .ok_or_else(|| refuse(Rule::NoChannel, format!("{op}: the instrument has {} channels", self.tips.len())))
    }

    fn volume(op: &Op, v: f64) -> Result<(), GatewayError> {
        if !(v.is_finite() && v >= MIN_VOLUME_UL) {
            return Err(refuse(Rule::BadVolume, format!("{op}: volumes start at {MIN_VOLUME_UL} µL")));
        }
        Ok(())
    }

    /// Checks an operation against the model; returns the deck location and coordinates it acts on.
    pub fn check(&self, op: &Op) -> Result<(Location, ChannelAt), GatewayError> {
        let tip = self.channel(op)?;
        let channel = op.channel();
        let at = |(loc, x, y): (Location, i32, i32)| (loc, ChannelAt { channel, x_01mm: x, y_01mm: y });
        match op {
            Op::PickUpTip { at: place, .. } => {
                if tip.is_some() {
                    return Err(refuse(
                        Rule::TipAlreadyFitted,
                        format!("{op}: channel {} already holds a tip", channel + 1),
                    ));
                }
                let found = self.locate(place)?;
                match found.0 {
                    Location::Tip { rack, index } if self.deck.tip_racks[rack].has_tip(index) => Ok(at(found)),
                    Location::Tip { .. } => Err(refuse(Rule::NoTipAtSpot, format!("{op}: that spot is empty"))),
                    _ => Err(refuse(Rule::OffDeck, format!("{op}: {place} is not a tip rack spot"))),
                }
            }
            Op::Aspirate { from, volume_ul, .. } => {
                Self::volume(op, *volume_ul)?;
                let tip =
                    tip.ok_or_else(|| refuse(Rule::NoTip, format!("{op}: channel {} has no tip", channel + 1)))?;
                let found = self.locate(from)?;
                let held = self
                    .deck
                    .liquid(found.0)
                    .map(|l| l.volume_ul)
                    .ok_or_else(|| refuse(Rule::OffDeck, format!("{op}: {from} holds no liquid")))?;
                if tip.liquid.volume_ul + volume_ul > tip.capacity_ul + 1e-9 {
                    return Err(refuse(
                        Rule::TipCapacity,
                        format!("{op}: the tip holds {} µL of {} µL", tip.liquid.volume_ul, tip.capacity_ul),
                    ));
                }
                if *volume_ul > held + 1e-9 {
                    return Err(refuse(Rule::NotEnoughLiquid, format!("{op}: {from} holds {held} µL")));
                }
                Ok(at(found))
            }
            Op::Dispense { to, volume_ul, .. } => {
                Self::volume(op, *volume_ul)?;
                let tip =
                    tip.ok_or_else(|| refuse(Rule::NoTip, format!("{op}: channel {} has no tip", channel + 1)))?;
                let found = self.locate(to)?;
                let room = self
                    .deck
                    .room_ul(found.0)
                    .ok_or_else(|| refuse(Rule::OffDeck, format!("{op}: {to} takes no liquid")))?;
                if *volume_ul > tip.liquid.volume_ul + 1e-9 {
                    return Err(refuse(Rule::TipEmpty, format!("{op}: the tip holds {} µL", tip.liquid.volume_ul)));
                }
                if *volume_ul > room + 1e-9 {
                    return Err(refuse(Rule::WellCapacity, format!("{op}: {to} has room for {room} µL")));
                }
                Ok(at(found))
            }
            Op::DropTip { to, .. } => {
                if tip.is_none() {
                    return Err(refuse(Rule::NoTip, format!("{op}: channel {} has no tip", channel + 1)));
                }
                let found = self.locate(to)?;
                match found.0 {
                    Location::Waste => Ok(at(found)),
                    Location::Tip { rack, index } if !self.deck.tip_racks[rack].has_tip(index) => Ok(at(found)),
                    _ => Err(refuse(Rule::OffDeck, format!("{op}: tips go into the waste or an empty rack spot"))),
                }
            }
        }
    }

    /// Updates the model after the instrument confirmed `op` at `loc`.
    pub fn apply(&mut self, op: &Op, loc: Location) {
        let c = op.channel();
        match op {
            Op::PickUpTip { .. } => {
                if let Location::Tip { rack, index } = loc {
                    self.deck.tip_racks[rack].set_tip(index, false);
                    let capacity_ul = f64::from(self.deck.tip_racks[rack].tip_volume_01ul) / 10.0;
                    self.tips[c] = Some(TipModel { capacity_ul, liquid: Liquid::default(), source: None });
                }
            }
            Op::Aspirate { volume_ul, .. } => {
                let part = self.deck.take(loc, *volume_ul);
                let content = self.deck.trough_content(loc);
                if let Some(t) = self.tips[c].as_mut() {
                    t.liquid.add(part);
                    if content.is_some() {
                        t.source = content;
                    }
                }
            }
            Op::Dispense { volume_ul, .. } => {
                if let Some(t) = self.tips[c].as_mut() {
                    let part = t.liquid.take(*volume_ul);
                    self.deck.put(loc, part, t.source);
                }
            }
            Op::DropTip { .. } => {
                if let Location::Tip { rack, index } = loc {
                    self.deck.tip_racks[rack].set_tip(index, true);
                }
                self.tips[c] = None;
            }
        }
    }
}

/// An instrument behind the safety envelope, with an optional journal.
pub struct Workcell<H: LiquidHandler> {
    handler: H,
    /// The model the envelope checks against.
    pub envelope: Envelope,
    journal: Option<Box<dyn Journal>>,
    sent: u64,
}

impl<H: LiquidHandler> Workcell<H> {
    /// A workcell over `handler` with `deck` as the model.
    pub fn new(handler: H, deck: DeckModel) -> Self {
        let channels = handler.channels();
        Workcell { handler, envelope: Envelope::new(deck, channels), journal: None, sent: 0 }
    }

    /// Records every operation in `journal` from now on.
    pub fn with_journal(mut self, journal: Box<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The instrument handler.
    pub fn handler(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Operations sent to the instrument so far.
    pub fn operations_sent(&self) -> u64 {
        self.sent
    }

    /// Initialises the instrument, defining the deck's tip types.
    pub async fn initialise(&mut self) -> Result<(), GatewayError> {
        let mut caps: Vec<f64> =
            self.envelope.deck.tip_racks.iter().map(|r| f64::from(r.tip_volume_01ul) / 10.0).collect();
        caps.dedup();
        self.handler.initialise(&caps).await
    }

    /// Checks, journals, sends and accounts one operation. See the module documentation.
    pub async fn run(&mut self, op: &Op) -> Result<(), GatewayError> {
        let (loc, at) = self.envelope.check(op)?;
        let entry = match self.journal.as_mut() {
            Some(j) => Some(j.before(op)?),
            None => None,
        };
        self.sent += 1;
        let result = match op {
            Op::PickUpTip { .. } => {
                let capacity = match loc {
                    Location::Tip { rack, .. } => f64::from(self.envelope.deck.tip_racks[rack].tip_volume_01ul) / 10.0,
                    _ => 0.0,
                };
                self.handler.pick_up_tips(&[at], capacity).await
            }
            Op::Aspirate { volume_ul, .. } => {
                self.handler.aspirate(&[ChannelVolume { at, volume_ul: *volume_ul }]).await
            }
            Op::Dispense { volume_ul, .. } => {
                self.handler.dispense(&[ChannelVolume { at, volume_ul: *volume_ul }]).await
            }
            Op::DropTip { .. } => self.handler.drop_tips(&[at]).await,
        };
        match result {
            Ok(()) => {
                self.envelope.apply(op, loc);
                if let (Some(j), Some(e)) = (self.journal.as_mut(), entry) {
                    j.after(e, &OpOutcome::Done)?;
                }
                Ok(())
            }
            Err(cause) => {
                let outcome = match &cause {
                    GatewayError::Instrument(e) => OpOutcome::Failed(e.to_string()),
                    other => OpOutcome::Unknown(other.to_string()),
                };
                if let (Some(j), Some(e)) = (self.journal.as_mut(), entry) {
                    j.after(e, &outcome)?;
                }
                Err(self.failed(op, cause).await)
            }
        }
    }

    async fn failed(&mut self, op: &Op, cause: GatewayError) -> GatewayError {
        let channel = op.channel();
        let known = match self.handler.tip_presence().await {
            Ok(Some(tips)) => {
                let on =
                    tips.iter().enumerate().filter(|(_, t)| **t).map(|(i, _)| (i + 1).to_string()).collect::<Vec<_>>();
                if on.is_empty() {
                    "no channel holds a tip".to_string()
                } else {
                    format!("tips on channels {}", on.join(", "))
                }
            }
            Ok(None) => "the instrument cannot report its tips".to_string(),
            Err(e) => format!("the instrument did not answer a tip query ({e})"),
        };
        let unknown = match (&cause, op) {
            (GatewayError::Instrument(_), _) => "nothing: the instrument refused the command".to_string(),
            (_, Op::Aspirate { .. } | Op::Dispense { .. }) => {
                format!("whether the liquid moved, and how much (channel {})", channel + 1)
            }
            (_, Op::PickUpTip { .. } | Op::DropTip { .. }) => {
                "whether the tip moved, beyond what the tip query says".to_string()
            }
        };
        GatewayError::OperationFailed { op: op.to_string(), cause: Box::new(cause), known, unknown }
    }
}
