//! Lab time: how long the work of a campaign takes on a real bench, by one profile that the plan, the
//! runner and the instrument twin all use, so that what a plan predicts, what a run measures and what
//! the twin tracks are the same numbers.
//!
//! A liquid-handling command moves all its channels together, so a command of eight channels takes the
//! time of one: a fixed part (the arm's move to the labware and the z moves, liquid-level detection for
//! an aspiration) plus, for an aspiration or a dispense, the largest channel volume at the flow rate.
//!
//! The figures of [`Profile::STAR`] and where each comes from:
//!
//! | step | figure | source |
//! |---|---|---|
//! | tip pick-up (`C0TP`) | 6 s | the arm's travel to the rack plus the z stroke; Hamilton quotes ~5–8 s per pick-up in its method timing examples; ASSUMPTION: 6 s, the middle |
//! | tip drop (`C0TR`) | 5 s | travel to the waste chute and ejection; ASSUMPTION, same basis |
//! | aspirate (`C0AS`), fixed part | 4 s | travel, capacitive liquid-level detection, submerge and retract; ASSUMPTION |
//! | dispense (`C0DS`), fixed part | 3 s | travel and jet dispense above the liquid; ASSUMPTION |
//! | flow rate | 100 µL/s | the rate the gateway sets (`handlers::FLOW_01UL_S`), the STAR's standard-volume liquid class default |
//! | plate read, per well and readout | 0.5 s | a filter plate reader reads a 96-well plate in ~45 s per readout; ASSUMPTION |
//! | plate in or out of the incubator | 60 s | an operator's or a plate mover's transfer; ASSUMPTION |
//!
//! No vendor publishes per-command durations, so the fixed parts are stated assumptions: they set the
//! scale of the robot time, and the comparison between a single-channel and an eight-channel plan (the
//! number of commands) holds whatever their exact values.

/// Durations of a bench's steps, ms (volumes at a flow rate).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Profile {
    /// Picking tips up.
    pub pick_up_ms: u32,
    /// Dropping tips.
    pub drop_ms: u32,
    /// Fixed part of an aspiration.
    pub aspirate_ms: u32,
    /// Fixed part of a dispense.
    pub dispense_ms: u32,
    /// Flow rate, µL/s.
    pub flow_ul_per_s: f64,
    /// Reading one readout of one well.
    pub read_ms: u32,
    /// Moving a plate into or out of the incubator.
    pub plate_move_ms: u32,
}

/// What a liquid-handling command does, for its duration.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Command {
    /// Tips picked up (any number of channels).
    PickUp,
    /// Tips dropped.
    Drop,
    /// An aspiration; the largest channel volume, µL.
    Aspirate(f64),
    /// A dispense; the largest channel volume, µL.
    Dispense(f64),
}

impl Profile {
    /// The STAR on a cell-culture bench (the table above).
    pub const STAR: Profile = Profile {
        pick_up_ms: 6_000,
        drop_ms: 5_000,
        aspirate_ms: 4_000,
        dispense_ms: 3_000,
        flow_ul_per_s: 100.0,
        read_ms: 500,
        plate_move_ms: 60_000,
    };

    /// How long a command takes, ms.
    pub fn command_ms(&self, command: Command) -> u32 {
        let flow = |v: f64| {
            if self.flow_ul_per_s > 0.0 && v.is_finite() && v > 0.0 {
                libm::ceil(v / self.flow_ul_per_s * 1000.0) as u32
            } else {
                0
            }
        };
        match command {
            Command::PickUp => self.pick_up_ms,
            Command::Drop => self.drop_ms,
            Command::Aspirate(v) => self.aspirate_ms.saturating_add(flow(v)),
            Command::Dispense(v) => self.dispense_ms.saturating_add(flow(v)),
        }
    }

    /// Reading `readouts` readouts of `wells` wells, ms.
    pub fn read_ms(&self, wells: u32, readouts: u32) -> u64 {
        u64::from(self.read_ms) * u64::from(wells) * u64::from(readouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_takes_its_fixed_part_and_its_largest_volume_at_the_flow_rate() {
        let p = Profile::STAR;
        assert_eq!(p.command_ms(Command::PickUp), 6_000);
        assert_eq!(p.command_ms(Command::Drop), 5_000);
        // 100 µL at 100 µL/s is a second; 0.1 µL rounds up to a millisecond.
        assert_eq!(p.command_ms(Command::Aspirate(100.0)), 5_000);
        assert_eq!(p.command_ms(Command::Dispense(250.0)), 5_500);
        assert_eq!(p.command_ms(Command::Dispense(0.1)), 3_001);
        assert_eq!(p.command_ms(Command::Aspirate(f64::NAN)), 4_000);
        assert_eq!(p.read_ms(21, 3), 31_500);
    }
}
