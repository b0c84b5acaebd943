//! The pipetting rules, written once: whether a channel's operation may happen on a deck, and what it
//! changes when it does.
//!
//! [`Rules::check`] takes an [`Operation`] by deck [`Location`] and the channels' tips, and answers the
//! [`Effect`] the operation would have or the [`Rule`] it would break; nothing changes. [`apply`] carries
//! an effect out. The gateway's safety envelope checks before it sends anything; the STAR and EVO twins
//! check every channel of a command before they change anything, and each maps a [`Rule`] to its
//! instrument's error code in one table. A command of several channels is checked channel by channel,
//! each against what the earlier channels of the same command will already have drawn or added
//! (`earlier`), so two channels cannot both take the last 100 µL of a well.
//!
//! The checks come in one order, the first broken rule is the answer: the channel exists, the volume is
//! valid, the channel holds a tip (or, to pick one up, does not), the location is one the operation can
//! act on, then the amounts (the tip's capacity before the liquid available, the tip's content before the
//! room left).

use super::{Deck, Liquid, Location, TroughContent};

/// Volumes agree to this much, µL (rounding of 0.1 µL steps).
const EPS_UL: f64 = 1e-9;

/// A tip on a channel, and what it holds.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Tip {
    /// Capacity, µL.
    pub capacity_ul: f64,
    /// What it holds.
    pub liquid: Liquid,
    /// The trough content it last aspirated from (which line or compound its liquid carries).
    pub source: Option<TroughContent>,
}

/// One channel's pipetting operation, by deck location.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Operation {
    /// Pick up the tip at a rack spot.
    PickUp {
        /// Channel (0-based).
        channel: usize,
        /// The rack spot.
        at: Location,
        /// The tip is taken as holding at most this much (the STAR's tip type), µL; `f64::INFINITY`
        /// for the rack's capacity.
        max_capacity_ul: f64,
    },
    /// Aspirate from a well or trough.
    Aspirate {
        /// Channel.
        channel: usize,
        /// Source.
        from: Location,
        /// µL.
        volume_ul: f64,
    },
    /// Dispense into a well or trough.
    Dispense {
        /// Channel.
        channel: usize,
        /// Target.
        to: Location,
        /// µL.
        volume_ul: f64,
    },
    /// Drop the tip into the waste, or back at an empty rack spot.
    Drop {
        /// Channel.
        channel: usize,
        /// The waste or a rack spot.
        to: Location,
    },
}

impl Operation {
    /// The channel it uses.
    pub fn channel(&self) -> usize {
        match *self {
            Operation::PickUp { channel, .. }
            | Operation::Aspirate { channel, .. }
            | Operation::Dispense { channel, .. }
            | Operation::Drop { channel, .. } => channel,
        }
    }
}

/// A rule an operation would break. Nothing has changed when a check answers one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The volume exceeds the tip's capacity.
    TipCapacity,
    /// The volume would overfill the well or trough.
    WellCapacity,
    /// Not a place this operation can act on (no labware there, a tip spot to aspirate from, a well to
    /// pick a tip up from or drop one into).
    OffDeck,
    /// The channel has no tip.
    NoTip,
    /// The channel already has a tip.
    TipAlreadyFitted,
    /// The source does not hold that much liquid.
    NotEnoughLiquid,
    /// The tip does not hold that much liquid.
    TipEmpty,
    /// No tip at that spot of the rack.
    NoTipAtSpot,
    /// The volume is not finite, or below the smallest the rules allow.
    BadVolume,
    /// No such channel.
    NoChannel,
    /// The channels of one command are out of order or closer than the arm allows (a channel listed
    /// twice, or less than [`CHANNEL_PITCH_01MM`] per channel between two of them in y).
    ChannelSpacing,
}

/// The smallest distance between neighbouring channels of one arm, 0.1 mm (the STAR's and the EVO
/// LiHa's 9 mm, the pitch of a 96-well plate).
pub const CHANNEL_PITCH_01MM: i32 = 90;

/// Checks the positions `(channel, x, y)` of one command's channels, in the order given: channels
/// strictly increasing, and each channel at least [`CHANNEL_PITCH_01MM`] per channel in between in front
/// of (lower y than) the one before it: channel 1 is the rearmost. The x positions are free (the STAR's
/// channels move in x with the arm, one after another when their x differ).
pub fn check_spacing(positions: impl IntoIterator<Item = (usize, i32, i32)>) -> Result<(), Rule> {
    let mut last: Option<(usize, i32)> = None;
    for (channel, _, y) in positions {
        if let Some((c, ly)) = last
            && (channel <= c || i64::from(ly) - i64::from(y) < i64::from(CHANNEL_PITCH_01MM) * (channel - c) as i64)
        {
            return Err(Rule::ChannelSpacing);
        }
        last = Some((channel, y));
    }
    Ok(())
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 11] = [
        Rule::TipCapacity,
        Rule::WellCapacity,
        Rule::OffDeck,
        Rule::NoTip,
        Rule::TipAlreadyFitted,
        Rule::NotEnoughLiquid,
        Rule::TipEmpty,
        Rule::NoTipAtSpot,
        Rule::BadVolume,
        Rule::NoChannel,
        Rule::ChannelSpacing,
    ];

    /// What the rule protects, as an error message says it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TipCapacity => "tip capacity",
            Rule::WellCapacity => "well capacity",
            Rule::OffDeck => "position on the deck",
            Rule::NoTip => "tip present",
            Rule::TipAlreadyFitted => "no tip fitted",
            Rule::NotEnoughLiquid => "liquid available",
            Rule::TipEmpty => "liquid in the tip",
            Rule::NoTipAtSpot => "tip at the pick-up spot",
            Rule::BadVolume => "valid volume",
            Rule::NoChannel => "channel exists",
            Rule::ChannelSpacing => "channel spacing",
        }
    }
}

/// What a checked operation will change.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Effect {
    /// A tip leaves rack spot `(rack, index)` for the channel.
    PickUp {
        /// Channel.
        channel: usize,
        /// Rack.
        rack: usize,
        /// Spot (row-major).
        index: usize,
        /// The tip's capacity, µL.
        capacity_ul: f64,
    },
    /// Liquid moves from a well or trough into the channel's tip.
    Aspirate {
        /// Channel.
        channel: usize,
        /// Source.
        from: Location,
        /// µL.
        volume_ul: f64,
    },
    /// Liquid moves from the channel's tip into a well or trough.
    Dispense {
        /// Channel.
        channel: usize,
        /// Target.
        to: Location,
        /// µL.
        volume_ul: f64,
    },
    /// The channel's tip goes to the waste (`None`) or back to a rack spot.
    Drop {
        /// Channel.
        channel: usize,
        /// `(rack, index)` of the spot, or `None` for the waste.
        spot: Option<(usize, usize)>,
    },
}

impl Effect {
    /// The liquid the effect adds to (positive) or takes from (negative) a location, µL.
    pub fn net_at(&self, at: Location) -> f64 {
        match *self {
            Effect::Aspirate { from, volume_ul, .. } if from == at => -volume_ul,
            Effect::Dispense { to, volume_ul, .. } if to == at => volume_ul,
            _ => 0.0,
        }
    }
}

/// The liquid at a well or trough once `earlier` effects (not applied yet) have happened, µL; `None` for
/// a location that holds no liquid.
pub fn held_after<const P: usize, const W: usize>(deck: &Deck<P, W>, at: Location, earlier: &[Effect]) -> Option<f64> {
    Some(deck.liquid(at)?.volume_ul + earlier.iter().map(|e| e.net_at(at)).sum::<f64>())
}

/// The rules' settings: what differs between the gateway's envelope and an instrument.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Rules {
    /// The smallest volume accepted, µL.
    pub min_volume_ul: f64,
}

impl Rules {
    /// The instrument twins: any volume an instrument command can express.
    pub const INSTRUMENT: Rules = Rules { min_volume_ul: 0.0 };

    /// Checks `op` on `deck` with the channels' `tips`, after the `earlier` effects of the same command
    /// (not applied yet). Answers what the operation will change, or the first rule it breaks.
    pub fn check<const P: usize, const W: usize>(
        &self,
        deck: &Deck<P, W>,
        tips: &[Option<Tip>],
        op: &Operation,
        earlier: &[Effect],
    ) -> Result<Effect, Rule> {
        let channel = op.channel();
        let tip = *tips.get(channel).ok_or(Rule::NoChannel)?;
        let volume = |v: f64| if v.is_finite() && v >= self.min_volume_ul { Ok(()) } else { Err(Rule::BadVolume) };
        let net = |at: Location| earlier.iter().map(|e| e.net_at(at)).sum::<f64>();
        match *op {
            Operation::PickUp { at, max_capacity_ul, .. } => {
                if tip.is_some() {
                    return Err(Rule::TipAlreadyFitted);
                }
                let Location::Tip { rack, index } = at else { return Err(Rule::OffDeck) };
                let r = deck.tip_racks.get(rack).ok_or(Rule::OffDeck)?;
                let taken = earlier
                    .iter()
                    .any(|e| matches!(*e, Effect::PickUp { rack: a, index: b, .. } if (a, b) == (rack, index)));
                if !r.has_tip(index) || taken {
                    return Err(Rule::NoTipAtSpot);
                }
                let capacity_ul = (f64::from(r.tip_volume_01ul) / 10.0).min(max_capacity_ul);
                Ok(Effect::PickUp { channel, rack, index, capacity_ul })
            }
            Operation::Aspirate { from, volume_ul, .. } => {
                volume(volume_ul)?;
                let tip = tip.ok_or(Rule::NoTip)?;
                let held = held_after(deck, from, earlier).ok_or(Rule::OffDeck)?;
                if tip.liquid.volume_ul + volume_ul > tip.capacity_ul + EPS_UL {
                    return Err(Rule::TipCapacity);
                }
                if volume_ul > held + EPS_UL {
                    return Err(Rule::NotEnoughLiquid);
                }
                Ok(Effect::Aspirate { channel, from, volume_ul })
            }
            Operation::Dispense { to, volume_ul, .. } => {
                volume(volume_ul)?;
                let tip = tip.ok_or(Rule::NoTip)?;
                let room = deck.room_ul(to).ok_or(Rule::OffDeck)? - net(to);
                if volume_ul > tip.liquid.volume_ul + EPS_UL {
                    return Err(Rule::TipEmpty);
                }
                if volume_ul > room + EPS_UL {
                    return Err(Rule::WellCapacity);
                }
                Ok(Effect::Dispense { channel, to, volume_ul })
            }
            Operation::Drop { to, .. } => {
                if tip.is_none() {
                    return Err(Rule::NoTip);
                }
                match to {
                    Location::Waste => Ok(Effect::Drop { channel, spot: None }),
                    Location::Tip { rack, index }
                        if deck.tip_racks.get(rack).is_some_and(|r| !r.has_tip(index))
                            && !earlier
                                .iter()
                                .any(|e| matches!(*e, Effect::Drop { spot: Some(s), .. } if s == (rack, index))) =>
                    {
                        Ok(Effect::Drop { channel, spot: Some((rack, index)) })
                    }
                    _ => Err(Rule::OffDeck),
                }
            }
        }
    }
}

/// Carries out a checked effect on the deck and the channels' tips.
pub fn apply<const P: usize, const W: usize>(deck: &mut Deck<P, W>, tips: &mut [Option<Tip>], effect: &Effect) {
    match *effect {
        Effect::PickUp { channel, rack, index, capacity_ul } => {
            if let Some(r) = deck.tip_racks.get_mut(rack) {
                r.set_tip(index, false);
            }
            if let Some(t) = tips.get_mut(channel) {
                *t = Some(Tip { capacity_ul, liquid: Liquid::default(), source: None });
            }
        }
        Effect::Aspirate { channel, from, volume_ul } => {
            let part = deck.take(from, volume_ul);
            let content = deck.trough_content(from);
            if let Some(Some(t)) = tips.get_mut(channel) {
                t.liquid.add(part);
                if content.is_some() {
                    t.source = content;
                }
            }
        }
        Effect::Dispense { channel, to, volume_ul } => {
            if let Some(Some(t)) = tips.get_mut(channel) {
                let part = t.liquid.take(volume_ul);
                deck.put(to, part, t.source);
            }
        }
        Effect::Drop { channel, spot } => {
            if let Some((rack, index)) = spot
                && let Some(r) = deck.tip_racks.get_mut(rack)
            {
                r.set_tip(index, true);
            }
            if let Some(t) = tips.get_mut(channel) {
                *t = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deck::default_deck;

    const MEDIUM: Location = Location::Trough { trough: 1 };
    const A1: Location = Location::Well { plate: 0, index: 0 };

    fn pick(channel: usize, index: usize) -> Operation {
        Operation::PickUp { channel, at: Location::Tip { rack: 0, index }, max_capacity_ul: f64::INFINITY }
    }

    /// Every rule, from the state that breaks it; nothing changes on a refusal.
    #[test]
    fn each_rule_is_answered_by_the_state_that_breaks_it() {
        let mut deck: Deck<2, 96> = default_deck();
        let mut tips = [None; 2];
        let rules = Rules { min_volume_ul: 0.5 };
        let asp = |channel, from, volume_ul| Operation::Aspirate { channel, from, volume_ul };
        let disp = |channel, to, volume_ul| Operation::Dispense { channel, to, volume_ul };
        let before = deck.clone();
        let cases: [(Operation, Rule); 6] = [
            (pick(2, 0), Rule::NoChannel),
            (asp(0, MEDIUM, 10.0), Rule::NoTip),
            (disp(0, A1, 10.0), Rule::NoTip),
            (Operation::Drop { channel: 0, to: Location::Waste }, Rule::NoTip),
            (Operation::PickUp { channel: 0, at: A1, max_capacity_ul: 300.0 }, Rule::OffDeck),
            (asp(0, MEDIUM, 0.2), Rule::BadVolume),
        ];
        for (op, rule) in cases {
            assert_eq!(rules.check(&deck, &tips, &op, &[]), Err(rule), "{op:?}");
        }
        assert_eq!(deck, before, "checks change nothing");
        let e = rules.check(&deck, &tips, &pick(0, 0), &[]).unwrap();
        assert_eq!(e, Effect::PickUp { channel: 0, rack: 0, index: 0, capacity_ul: 360.0 });
        apply(&mut deck, &mut tips, &e);
        let cases: [(Operation, Rule); 8] = [
            (pick(0, 1), Rule::TipAlreadyFitted),
            (pick(1, 0), Rule::NoTipAtSpot),
            (asp(0, MEDIUM, 400.0), Rule::TipCapacity),
            (asp(0, MEDIUM, f64::NAN), Rule::BadVolume),
            (asp(0, Location::Well { plate: 0, index: 95 }, 10.0), Rule::NotEnoughLiquid),
            (asp(0, Location::Tip { rack: 0, index: 5 }, 10.0), Rule::OffDeck),
            (disp(0, A1, 10.0), Rule::TipEmpty),
            (Operation::Drop { channel: 0, to: MEDIUM }, Rule::OffDeck),
        ];
        for (op, rule) in cases {
            assert_eq!(rules.check(&deck, &tips, &op, &[]), Err(rule), "{op:?}");
        }
        // 300 µL into a 300 µL well, then 10 more: the well is full.
        for _ in 0..2 {
            let e = rules.check(&deck, &tips, &asp(0, MEDIUM, 150.0), &[]).unwrap();
            apply(&mut deck, &mut tips, &e);
            let e = rules.check(&deck, &tips, &disp(0, A1, 150.0), &[]).unwrap();
            apply(&mut deck, &mut tips, &e);
        }
        let e = rules.check(&deck, &tips, &asp(0, MEDIUM, 10.0), &[]).unwrap();
        apply(&mut deck, &mut tips, &e);
        assert_eq!(rules.check(&deck, &tips, &disp(0, A1, 10.0), &[]), Err(Rule::WellCapacity));
        assert_eq!(deck.plates[0].wells[0].liquid.volume_ul, 300.0);
        // Back into the spot it came from.
        let e =
            rules.check(&deck, &tips, &Operation::Drop { channel: 0, to: Location::Tip { rack: 0, index: 0 } }, &[]);
        assert_eq!(e, Ok(Effect::Drop { channel: 0, spot: Some((0, 0)) }));
        apply(&mut deck, &mut tips, &e.unwrap());
        assert!(deck.tip_racks[0].has_tip(0) && tips[0].is_none());
        assert_eq!(Rule::ALL.len(), 11);
    }

    #[test]
    fn channels_of_a_command_keep_their_order_and_pitch() {
        // A column of a 96-well plate on channels 2–7: 9 mm apart, the first at the back.
        assert_eq!(check_spacing((1..7).map(|c| (c, 2983, 1457 - 90 * c as i32))), Ok(()));
        // Channels 1 and 4 need three pitches between them; two are not enough.
        assert_eq!(check_spacing([(0, 0, 1000), (3, 0, 730)]), Ok(()));
        assert_eq!(check_spacing([(0, 0, 1000), (3, 0, 820)]), Err(Rule::ChannelSpacing));
        // Out of order, listed twice, or the second channel behind the first.
        assert_eq!(check_spacing([(2, 0, 1000), (1, 0, 900)]), Err(Rule::ChannelSpacing));
        assert_eq!(check_spacing([(1, 0, 1000), (1, 0, 900)]), Err(Rule::ChannelSpacing));
        assert_eq!(check_spacing([(0, 0, 1000), (1, 0, 1090)]), Err(Rule::ChannelSpacing));
        assert_eq!(check_spacing([(0, 0, 1000), (1, 0, 911)]), Err(Rule::ChannelSpacing));
        assert_eq!(check_spacing([(0, 5, 1000)]), Ok(()));
    }

    /// Channels of one command: the second cannot take what the first will have taken, nor pick up
    /// the tip the first will have picked up.
    #[test]
    fn earlier_channels_of_a_command_count() {
        let mut deck: Deck<1, 96> = default_deck();
        let mut tips = [None; 8];
        let rules = Rules::INSTRUMENT;
        let first = rules.check(&deck, &tips, &pick(0, 0), &[]).unwrap();
        assert_eq!(rules.check(&deck, &tips, &pick(1, 0), &[first]), Err(Rule::NoTipAtSpot));
        let second = rules.check(&deck, &tips, &pick(1, 1), &[first]).unwrap();
        for e in [first, second] {
            apply(&mut deck, &mut tips, &e);
        }
        // A well with 100 µL; two channels each asking 60 µL.
        let cells = Location::Trough { trough: 0 };
        for (op, then) in [
            (Operation::Aspirate { channel: 0, from: cells, volume_ul: 100.0 }, None),
            (Operation::Dispense { channel: 0, to: A1, volume_ul: 100.0 }, None),
            (Operation::Aspirate { channel: 0, from: A1, volume_ul: 60.0 }, Some(())),
        ] {
            let e = rules.check(&deck, &tips, &op, &[]).unwrap();
            if then.is_none() {
                apply(&mut deck, &mut tips, &e);
            } else {
                let second = Operation::Aspirate { channel: 1, from: A1, volume_ul: 60.0 };
                assert_eq!(rules.check(&deck, &tips, &second, &[e]), Err(Rule::NotEnoughLiquid));
                let fits = Operation::Aspirate { channel: 1, from: A1, volume_ul: 40.0 };
                assert!(rules.check(&deck, &tips, &fits, &[e]).is_ok());
            }
        }
        // A tip type smaller than the rack's tips: the smaller capacity.
        let mut deck: Deck<1, 96> = default_deck();
        let op = Operation::PickUp { channel: 0, at: Location::Tip { rack: 0, index: 3 }, max_capacity_ul: 50.0 };
        assert!(matches!(
            Rules::INSTRUMENT.check(&deck, &[None], &op, &[]),
            Ok(Effect::PickUp { capacity_ul: 50.0, .. })
        ));
        let mut one = [None];
        let e = Rules::INSTRUMENT.check(&deck, &[None], &op, &[]).unwrap();
        apply(&mut deck, &mut one, &e);
        assert_eq!(one[0].map(|t| t.capacity_ul), Some(50.0));
    }
}
