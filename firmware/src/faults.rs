//! Fault injection on the twin's replies (STAR, EVO and the reader link), set by the host. Off by
//! default.
//!
//! Counted faults (`drop_next`, `corrupt_next`, `duplicate_next`, `late_next`) apply to the next replies,
//! optionally only to those of one command code; `delay_ms` delays every reply (or, with `late_next`,
//! only the next N); `stall_ms` silences the instrument for that long after the next command. A corrupted
//! reply has one byte changed so that a receiver can tell: a STAR reply gets its id's last digit replaced
//! by `#` (it no longer parses), an EVO reply its status byte's bit 7 cleared (not a valid status), a
//! `wire` frame one byte of its body flipped (its CRC fails).

use cellos_core::proto::wire::{Faults, LinkFaults};

/// What to do with one reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send it once, unchanged.
    Send,
    /// Do not send it.
    Drop,
    /// Send it with one byte changed.
    Corrupt,
    /// Send it twice.
    Duplicate,
}

/// The fault state of one instrument link.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Injector {
    /// The settings, with counts going down as faults are applied.
    pub faults: Faults,
    /// Replies still to be delayed, when only some are (see [`LinkFaults::late_next`]).
    pub late_next: u16,
    late_only: bool,
    stall_until_ms: u64,
    stall_armed: bool,
}

impl Injector {
    /// No faults.
    pub const fn new() -> Injector {
        Injector { faults: Faults::NONE, late_next: 0, late_only: false, stall_until_ms: 0, stall_armed: false }
    }

    /// Replaces the settings.
    pub fn set(&mut self, faults: impl Into<LinkFaults>) {
        let LinkFaults { faults, late_next } = faults.into();
        self.faults = faults;
        self.late_next = late_next;
        self.late_only = late_next > 0;
        self.stall_armed = faults.stall_ms > 0;
        self.stall_until_ms = 0;
    }

    /// The delay of the reply to a command `code` arriving now, and whether it is a counted (late) fault.
    /// Every reply gets `delay_ms`, unless `late_next` was set: then only that many replies (of the
    /// filtered code) do.
    pub fn reply_delay(&mut self, code: [u8; 2]) -> (u64, bool) {
        if !self.late_only {
            return (self.delay_ms(), false);
        }
        if self.late_next == 0 || self.faults.only_code.is_some_and(|c| c != code) {
            return (0, false);
        }
        self.late_next -= 1;
        (self.delay_ms(), true)
    }

    /// A command arrived at `now_ms` (arms a pending stall).
    pub fn on_command(&mut self, now_ms: u64) {
        if self.stall_armed {
            self.stall_armed = false;
            self.stall_until_ms = now_ms + u64::from(self.faults.stall_ms);
        }
    }

    /// Extra delay for every reply, ms.
    pub fn delay_ms(&self) -> u64 {
        u64::from(self.faults.delay_ms)
    }

    /// Whether replies are held back at `now_ms`.
    pub fn stalled(&self, now_ms: u64) -> bool {
        now_ms < self.stall_until_ms
    }

    /// Decides the fate of a reply to command `code`.
    pub fn action(&mut self, code: [u8; 2]) -> Action {
        if self.faults.only_code.is_some_and(|c| c != code) {
            return Action::Send;
        }
        let f = &mut self.faults;
        if f.drop_next > 0 {
            f.drop_next -= 1;
            Action::Drop
        } else if f.corrupt_next > 0 {
            f.corrupt_next -= 1;
            Action::Corrupt
        } else if f.duplicate_next > 0 {
            f.duplicate_next -= 1;
            Action::Duplicate
        } else {
            Action::Send
        }
    }
}

/// Corrupts a STAR reply in place: the last digit of its id becomes `#`.
pub fn corrupt_star(text: &mut [u8]) {
    if text.len() >= 10 {
        text[9] = b'#';
    }
}

/// Corrupts a `wire` frame in place (delimiter excluded): one byte in the middle of its body changes,
/// never into a delimiter, so the frame still arrives whole and fails its CRC or framing.
pub fn corrupt_wire(frame: &mut [u8]) {
    if let Some(b) = frame.get_mut(frame.len() / 2) {
        *b = if *b ^ 0x20 == 0 { *b ^ 0x40 } else { *b ^ 0x20 };
    }
}

/// Corrupts an EVO reply frame in place: its status byte loses bit 7.
pub fn corrupt_evo(frame: &mut [u8]) {
    if frame.len() > 3 {
        frame[3] &= 0x7f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_and_filtered() {
        let mut i = Injector::default();
        assert_eq!(i.action(*b"AS"), Action::Send);
        i.set(Faults { drop_next: 1, duplicate_next: 1, only_code: Some(*b"DS"), ..Faults::default() });
        assert_eq!(i.action(*b"AS"), Action::Send);
        assert_eq!(i.action(*b"DS"), Action::Drop);
        assert_eq!(i.action(*b"DS"), Action::Duplicate);
        assert_eq!(i.action(*b"DS"), Action::Send);
    }

    #[test]
    fn late_replies_are_counted_and_filtered() {
        let mut i = Injector::default();
        i.set(Faults { delay_ms: 40, ..Faults::default() });
        assert_eq!(i.reply_delay(*b"RD"), (40, false), "without late_next every reply waits");
        i.set(LinkFaults {
            faults: Faults { delay_ms: 6000, only_code: Some(*b"RD"), ..Faults::default() },
            late_next: 2,
        });
        assert_eq!(i.reply_delay(*b"IN"), (0, false));
        assert_eq!(i.reply_delay(*b"RD"), (6000, true));
        assert_eq!(i.reply_delay(*b"RD"), (6000, true));
        assert_eq!(i.reply_delay(*b"RD"), (0, false), "two late replies, then none");
    }

    #[test]
    fn stall_starts_at_the_next_command() {
        let mut i = Injector::default();
        i.set(Faults { stall_ms: 100, ..Faults::default() });
        assert!(!i.stalled(5));
        i.on_command(10);
        assert!(i.stalled(50));
        assert!(!i.stalled(110));
        i.on_command(200);
        assert!(!i.stalled(210));
    }

    #[test]
    fn corruption_is_detectable() {
        let mut s = *b"C0RFid0001er00/00";
        corrupt_star(&mut s);
        assert!(cellos_core::proto::star::StarMessage::parse(core::str::from_utf8(&s).unwrap()).is_err());
        let mut f = *b"\x02C5\x80\x00";
        corrupt_evo(&mut f);
        assert!(cellos_core::proto::evo::EvoReply::parse(&f).is_err());
        use cellos_core::proto::wire::{self, Response};
        for v in [0.0, 0.5, 1e9] {
            let mut buf = [0u8; wire::MAX_FRAME];
            let n = wire::encode_tagged(wire::Tag::Id(7), &Response::Value(v), &mut buf).unwrap();
            corrupt_wire(&mut buf[..n - 1]);
            assert!(!buf[..n - 1].contains(&0));
            assert!(wire::decode::<Response>(&mut buf[..n - 1]).is_err(), "{v}");
        }
    }
}
