//! Liquid handling: one interface over both instruments, a deck model, a safety envelope, a journal.
//!
//! [`LiquidHandler`] is what an instrument does, in deck coordinates (0.1 mm): initialise, pick up tips,
//! aspirate, dispense, drop tips, move a plate, and say which channels hold tips if it can. The STAR and
//! EVO handlers implement it over their drivers.
//!
//! [`Workcell`] is what the rest of cellos uses. It takes operations by name ([`Op`]: `PLATE_1:B3`,
//! `MEDIUM`, `TIPS_1:A1`), checks each against the **safety envelope** before anything is sent, and
//! keeps the deck model up to date after it succeeds. The envelope is a mirror of the deck (the core's
//! `cellos_core::deck::Deck`, loaded from the same TOML file as the twin's): tips present, tip contents
//! and capacity, well and trough volumes and capacity, positions. It checks with the core's pipetting
//! rules ([`cellos_core::deck::Rules`]), the ones the twins apply too, with a smallest volume of
//! [`MIN_VOLUME_UL`]. A refused operation returns [`GatewayError::Refused`] naming the rule, and sends
//! nothing.
//!
//! **No blind retries.** A liquid operation that times out or fails stops the run: the workcell asks the
//! instrument which channels hold tips (a query, which may be retried) and returns
//! [`GatewayError::OperationFailed`] saying what is known and what is not. A [`Journal`] records every
//! operation before it is sent and its outcome after.

use std::future::Future;

use cellos_core::deck::{CHANNEL_PITCH_01MM, Deck, Effect, Location, Operation, Rules, Tip, check_spacing};

use crate::error::{GatewayError, Rule};

/// The deck model: up to 4 plates of up to 384 wells (the twin's host deck).
pub type DeckModel = Deck<4, 384>;

/// The smallest volume a channel pipettes accurately, µL.
pub const MIN_VOLUME_UL: f64 = 0.5;

/// Parses a deck file (TOML of the core's [`cellos_core::deck::file::DeckFile`], the twin's format);
/// `path` names it in errors.
pub fn parse_deck(text: &str, path: &std::path::Path) -> Result<DeckModel, GatewayError> {
    let bad = |message: String| GatewayError::Config { path: path.into(), message };
    let file: cellos_core::deck::file::DeckFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    file.build().map_err(|e| bad(e.to_string()))
}

/// The envelope's rules.
pub const RULES: Rules = Rules { min_volume_ul: MIN_VOLUME_UL };

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

/// The safety envelope: the deck model and the channels' tips.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The deck as the model knows it.
    pub deck: DeckModel,
    /// Tip per channel.
    pub tips: Vec<Option<Tip>>,
}

/// The tips of a workcell as its model knows them: which channels hold one, how many are left in the
/// racks.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Tips {
    /// Channels holding a tip (from 0).
    pub on_channels: Vec<usize>,
    /// Tips left in the racks.
    pub left: usize,
}

impl Envelope {
    /// The tips now.
    pub fn tips_now(&self) -> Tips {
        Tips {
            on_channels: self.tips.iter().enumerate().filter(|(_, t)| t.is_some()).map(|(c, _)| c).collect(),
            left: self
                .deck
                .tip_racks
                .iter()
                .map(|r| (0..usize::from(r.format.wells())).filter(|&i| r.has_tip(i)).count())
                .sum(),
        }
    }
}

/// The place an operation acts on.
fn op_place(op: &Op) -> &Place {
    match op {
        Op::PickUpTip { at, .. } => at,
        Op::Aspirate { from, .. } => from,
        Op::Dispense { to, .. } => to,
        Op::DropTip { to, .. } => to,
    }
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

    /// Checks the operations of one command (one per channel, all of one kind, in channel order) against
    /// the model: every channel with the core's rules, each after the earlier channels of the command,
    /// and their positions with the arm's spacing. Returns what they will change and where each channel
    /// goes; the first channel that breaks a rule is the answer, and nothing is sent. In a command of
    /// several channels, channel `k` takes a trough (or the waste) at `(centre, centre_y + (3.5 − k) · 9 mm)`
    /// for eight channels, so that the channels dip in side by side.
    pub fn check_all(&self, ops: &[Op]) -> Result<(Vec<Effect>, Vec<ChannelAt>), GatewayError> {
        let Some(first) = ops.first() else { return Ok((Vec::new(), Vec::new())) };
        let kind = std::mem::discriminant(first);
        if let Some(odd) = ops.iter().find(|o| std::mem::discriminant(*o) != kind) {
            return Err(refuse(Rule::ChannelSpacing, format!("{odd}: one command moves its channels alike ({first})")));
        }
        let mut effects = Vec::with_capacity(ops.len());
        let mut at = Vec::with_capacity(ops.len());
        for op in ops {
            let (effect, mut pos) = self.check_after(op, &effects)?;
            if ops.len() > 1
                && let Ok((loc @ (Location::Trough { .. } | Location::Waste), _, y)) = self.locate(op_place(op))
            {
                let half = (self.tips.len().max(1) as i32 - 1) * CHANNEL_PITCH_01MM / 2;
                pos.y_01mm = y + half - op.channel() as i32 * CHANNEL_PITCH_01MM;
                if self.deck.locate(pos.x_01mm, pos.y_01mm) != Some(loc) {
                    return Err(refuse(
                        Rule::OffDeck,
                        format!("{op}: {} is too narrow for {} channels side by side", op_place(op), self.tips.len()),
                    ));
                }
            }
            effects.push(effect);
            at.push(pos);
        }
        if check_spacing(at.iter().map(|a| (a.channel, a.x_01mm, a.y_01mm))).is_err() {
            let list: Vec<String> = ops.iter().map(|o| (o.channel() + 1).to_string()).collect();
            return Err(refuse(
                Rule::ChannelSpacing,
                format!(
                    "{first} and the other channels of the command ({}): channels must be listed once each, in order, each at least 9 mm in front of the one before",
                    list.join(", ")
                ),
            ));
        }
        Ok((effects, at))
    }

    /// Checks an operation against the model with the core's rules; returns what it will change and
    /// where the channel goes.
    pub fn check(&self, op: &Op) -> Result<(Effect, ChannelAt), GatewayError> {
        self.check_after(op, &[])
    }

    /// Checks an operation after the `earlier` effects of its command. The first rule broken is the
    /// answer, in the rules' order; a place that names nothing on the deck counts where the rules would
    /// look at the location.
    fn check_after(&self, op: &Op, earlier: &[Effect]) -> Result<(Effect, ChannelAt), GatewayError> {
        let channel = op.channel();
        let found = self.locate(op_place(op));
        let (loc, x, y) = match &found {
            Ok(f) => *f,
            Err(_) => (Location::Nothing, 0, 0),
        };
        let operation = match op {
            Op::PickUpTip { .. } => Operation::PickUp { channel, at: loc, max_capacity_ul: f64::INFINITY },
            Op::Aspirate { volume_ul, .. } => Operation::Aspirate { channel, from: loc, volume_ul: *volume_ul },
            Op::Dispense { volume_ul, .. } => Operation::Dispense { channel, to: loc, volume_ul: *volume_ul },
            Op::DropTip { .. } => Operation::Drop { channel, to: loc },
        };
        match RULES.check(&self.deck, &self.tips, &operation, earlier) {
            Ok(effect) => Ok((effect, ChannelAt { channel, x_01mm: x, y_01mm: y })),
            Err(Rule::OffDeck) if found.is_err() => Err(found.err().unwrap_or(GatewayError::Closed)),
            Err(rule) => Err(refuse(rule, format!("{op}: {}", self.explain(rule, op, loc)))),
        }
    }

    /// Why `op` breaks `rule`, in the model's numbers.
    fn explain(&self, rule: Rule, op: &Op, loc: Location) -> String {
        let c = op.channel();
        let tip = self.tips.get(c).copied().flatten();
        let (held, capacity) = tip.map_or((0.0, 0.0), |t| (t.liquid.volume_ul, t.capacity_ul));
        match (rule, op) {
            (Rule::NoChannel, _) => format!("the instrument has {} channels", self.tips.len()),
            (Rule::TipAlreadyFitted, _) => format!("channel {} already holds a tip", c + 1),
            (Rule::NoTipAtSpot, _) => "that spot is empty".into(),
            (Rule::BadVolume, _) => format!("volumes start at {MIN_VOLUME_UL} µL"),
            (Rule::NoTip, _) => format!("channel {} has no tip", c + 1),
            (Rule::TipCapacity, _) => format!("the tip holds {held} µL of {capacity} µL"),
            (Rule::TipEmpty, _) => format!("the tip holds {held} µL"),
            (Rule::NotEnoughLiquid, Op::Aspirate { from, .. }) => {
                format!("{from} holds {} µL", self.deck.liquid(loc).map_or(0.0, |l| l.volume_ul))
            }
            (Rule::WellCapacity, Op::Dispense { to, .. }) => {
                format!("{to} has room for {} µL", self.deck.room_ul(loc).unwrap_or(0.0))
            }
            (Rule::OffDeck, Op::PickUpTip { at, .. }) => format!("{at} is not a tip rack spot"),
            (Rule::OffDeck, Op::Aspirate { from, .. }) => format!("{from} holds no liquid"),
            (Rule::OffDeck, Op::Dispense { to, .. }) => format!("{to} takes no liquid"),
            (Rule::OffDeck, Op::DropTip { .. }) => "tips go into the waste or an empty rack spot".into(),
            (rule, _) => rule.name().into(),
        }
    }

    /// Updates the model after the instrument confirmed an operation.
    pub fn apply(&mut self, effect: &Effect) {
        cellos_core::deck::apply(&mut self.deck, &mut self.tips, effect);
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
        self.run_all(std::slice::from_ref(op)).await
    }

    /// Checks, journals, sends and accounts one command of several channels (one operation per channel,
    /// all of one kind, in channel order: [`Envelope::check_all`]). Every channel is checked before
    /// anything is sent; the instrument gets one command.
    pub async fn run_all(&mut self, ops: &[Op]) -> Result<(), GatewayError> {
        let (effects, at) = self.envelope.check_all(ops)?;
        let Some(first) = ops.first() else { return Ok(()) };
        let mut entries = Vec::new();
        if let Some(j) = self.journal.as_mut() {
            for op in ops {
                entries.push(j.before(op)?);
            }
        }
        self.sent += 1;
        let volumes = |at: &[ChannelAt]| -> Vec<ChannelVolume> {
            at.iter()
                .zip(ops)
                .map(|(a, o)| ChannelVolume {
                    at: *a,
                    volume_ul: match o {
                        Op::Aspirate { volume_ul, .. } | Op::Dispense { volume_ul, .. } => *volume_ul,
                        _ => 0.0,
                    },
                })
                .collect()
        };
        let result = match first {
            Op::PickUpTip { .. } => {
                let capacity = match effects.first() {
                    Some(Effect::PickUp { capacity_ul, .. }) => *capacity_ul,
                    _ => 0.0,
                };
                self.handler.pick_up_tips(&at, capacity).await
            }
            Op::Aspirate { .. } => self.handler.aspirate(&volumes(&at)).await,
            Op::Dispense { .. } => self.handler.dispense(&volumes(&at)).await,
            Op::DropTip { .. } => self.handler.drop_tips(&at).await,
        };
        match result {
            Ok(()) => {
                for effect in &effects {
                    self.envelope.apply(effect);
                }
                if let Some(j) = self.journal.as_mut() {
                    for e in &entries {
                        j.after(*e, &OpOutcome::Done)?;
                    }
                }
                Ok(())
            }
            Err(cause) => {
                let outcome = match &cause {
                    GatewayError::Instrument(e) => OpOutcome::Failed(e.to_string()),
                    other => OpOutcome::Unknown(other.to_string()),
                };
                if let Some(j) = self.journal.as_mut() {
                    for e in &entries {
                        j.after(*e, &outcome)?;
                    }
                }
                Err(self.failed(first, ops.len(), cause).await)
            }
        }
    }

    async fn failed(&mut self, op: &Op, channels: usize, cause: GatewayError) -> GatewayError {
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
        let op = if channels > 1 { format!("{op} (and {} more channels)", channels - 1) } else { op.to_string() };
        GatewayError::OperationFailed { op, cause: Box::new(cause), known, unknown }
    }
}
