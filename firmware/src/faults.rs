//! Fault injection on the twin's instrument replies (STAR and EVO), set by the host. Off by default.
//!
//! Counted faults (`drop_next`, `corrupt_next`, `duplicate_next`) apply to the next replies, optionally
//! only to those of one command code; `delay_ms` delays every reply; `stall_ms` silences the instrument
//! for that long after the next command. A corrupted reply has one byte changed so that a receiver can
//! tell: a STAR reply gets its id's last digit replaced by `#` (it no longer parses), an EVO reply its
//! status byte's bit 7 cleared (not a valid status).

use cellos_core::proto::wire::Faults;

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
    stall_until_ms: u64,
    stall_armed: bool,
}

impl Injector {
    /// No faults.
    pub const fn new() -> Injector {
        Injector { faults: Faults::NONE, stall_until_ms: 0, stall_armed: false }
    }

    /// Replaces the settings.
    pub fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.stall_armed = faults.stall_ms > 0;
        self.stall_until_ms = 0;
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
    }
}
