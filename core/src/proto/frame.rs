//! Stream framing: one accumulator for every protocol cellos reads from a byte stream.
//!
//! Bytes arrive in arbitrary pieces; [`Accumulator::feed`] takes a piece and returns at most one whole
//! frame together with the unread rest of the piece, so a caller loops until the piece is used up. The
//! frame is a borrow of the accumulator's own buffer, valid until the next `feed`.
//!
//! | framing | a frame is | bytes outside a frame |
//! |---|---|---|
//! | [`Framing::Nul`] (our `wire` link, COBS) | everything up to a `0x00` | — |
//! | [`Framing::StxNul`] (Tecan EVO) | `0x02` … `0x00`, both kept in the frame | skipped, counted as garbage |
//! | [`Framing::Lines`] (Hamilton STAR text) | everything up to CR or LF, terminator dropped | empty lines skipped |
//!
//! A frame longer than the buffer is dropped whole (reported as [`Feed::Overflow`]) and the accumulator
//! resynchronises at the next delimiter. It never allocates and never panics.

/// How frames are delimited.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// Frames end with `0x00` (COBS-encoded payloads).
    Nul,
    /// Frames start with `0x02` and end with `0x00`.
    StxNul,
    /// Text lines ending in CR, LF or CR LF.
    Lines,
}

/// Start of an EVO frame.
pub const STX: u8 = 0x02;
/// End of an EVO or wire frame.
pub const NUL: u8 = 0x00;

/// The outcome of one [`Accumulator::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'buf, 'input> {
    /// All input was consumed; no frame is complete yet.
    Consumed,
    /// A frame is complete. `remaining` is the input not yet read.
    Frame {
        /// The frame (for `StxNul` with its STX and NUL; for `Lines` without the terminator; for
        /// `Nul` without the delimiter).
        frame: &'buf [u8],
        /// Unread input.
        remaining: &'input [u8],
    },
    /// A frame exceeded the buffer and was dropped. `remaining` is the input not yet read.
    Overflow {
        /// Unread input.
        remaining: &'input [u8],
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Between frames (only meaningful for `StxNul`: waiting for STX).
    Idle,
    /// Inside a frame.
    Filling,
    /// Dropping an over-long frame until its delimiter.
    Discarding,
}

/// Accumulates stream bytes into frames, with a buffer of `N` bytes.
#[derive(Clone, Debug)]
pub struct Accumulator<const N: usize> {
    framing: Framing,
    buf: [u8; N],
    len: usize,
    state: State,
    garbage: u32,
    overflows: u32,
}

impl<const N: usize> Accumulator<N> {
    /// An empty accumulator.
    pub const fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::StxNul => State::Idle,
            _ => State::Filling,
        };
        Accumulator { framing, buf: [0; N], len: 0, state, garbage: 0, overflows: 0 }
    }

    /// Bytes skipped outside frames so far (`StxNul` only).
    pub fn garbage_bytes(&self) -> u32 {
        self.garbage
    }

    /// Frames dropped for exceeding the buffer so far.
    pub fn overflows(&self) -> u32 {
        self.overflows
    }

    /// Forgets a partial frame (after a reset of the peer, say).
    pub fn clear(&mut self) {
        self.len = 0;
        self.state = if self.framing == Framing::StxNul { State::Idle } else { State::Filling };
    }

    fn is_end(&self, b: u8) -> bool {
        match self.framing {
            Framing::Nul | Framing::StxNul => b == NUL,
            Framing::Lines => b == b'\r' || b == b'\n',
        }
    }

    /// Reads `input` until a frame completes or the input ends.
    pub fn feed<'s, 'i>(&'s mut self, input: &'i [u8]) -> Feed<'s, 'i> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            match self.state {
                State::Idle => {
                    if b == STX {
                        self.buf[0] = STX;
                        self.len = 1;
                        self.state = State::Filling;
                    } else {
                        self.garbage = self.garbage.saturating_add(1);
                    }
                }
                State::Discarding => {
                    if self.is_end(b) {
                        self.clear();
                        self.overflows = self.overflows.saturating_add(1);
                        return Feed::Overflow { remaining: &input[i..] };
                    }
                }
                State::Filling => {
                    if self.framing == Framing::StxNul && b == STX {
                        // A new frame starts before the old one ended: the old one was garbage.
                        self.garbage = self.garbage.saturating_add(self.len as u32);
                        self.len = 1;
                        continue;
                    }
                    if self.is_end(b) {
                        let len = self.len;
                        self.clear();
                        match self.framing {
                            Framing::Lines if len == 0 => continue,
                            Framing::StxNul => {
                                if len >= N {
                                    self.overflows = self.overflows.saturating_add(1);
                                    return Feed::Overflow { remaining: &input[i..] };
                                }
                                self.buf[len] = NUL;
                                return Feed::Frame { frame: &self.buf[..len + 1], remaining: &input[i..] };
                            }
                            _ => return Feed::Frame { frame: &self.buf[..len], remaining: &input[i..] },
                        }
                    }
                    if self.len >= N {
                        self.state = State::Discarding;
                        continue;
                    }
                    self.buf[self.len] = b;
                    self.len += 1;
                }
            }
        }
        Feed::Consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames<const N: usize>(acc: &mut Accumulator<N>, mut input: &[u8]) -> heapless::Vec<heapless::Vec<u8, 64>, 8> {
        let mut out = heapless::Vec::new();
        loop {
            match acc.feed(input) {
                Feed::Consumed => return out,
                Feed::Frame { frame, remaining } => {
                    out.push(heapless::Vec::from_slice(frame).unwrap()).unwrap();
                    input = remaining;
                }
                Feed::Overflow { remaining } => {
                    out.push(heapless::Vec::from_slice(b"<overflow>").unwrap()).unwrap();
                    input = remaining;
                }
            }
        }
    }

    #[test]
    fn lines_accept_cr_lf_crlf() {
        let mut acc = Accumulator::<32>::new(Framing::Lines);
        let got = frames(&mut acc, b"C0RFid0001\rC0QWid0002\nC0RTid0003\r\n\r\nC0VI");
        assert_eq!(got.len(), 3);
        assert_eq!(&got[0][..], b"C0RFid0001");
        assert_eq!(&got[1][..], b"C0QWid0002");
        assert_eq!(&got[2][..], b"C0RTid0003");
        // The partial "C0VI" completes with the next piece.
        let got = frames(&mut acc, b"id0004\r");
        assert_eq!(&got[0][..], b"C0VIid0004");
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let input = b"\x02C5PIA\x00\x02C5RNT1\x00";
        let mut acc = Accumulator::<32>::new(Framing::StxNul);
        let whole = frames(&mut acc, input);
        let mut acc = Accumulator::<32>::new(Framing::StxNul);
        let mut pieces: heapless::Vec<heapless::Vec<u8, 64>, 8> = heapless::Vec::new();
        for b in input {
            for f in frames(&mut acc, core::slice::from_ref(b)) {
                pieces.push(f).unwrap();
            }
        }
        assert_eq!(whole, pieces);
        assert_eq!(&whole[0][..], b"\x02C5PIA\x00");
        assert_eq!(&whole[1][..], b"\x02C5RNT1\x00");
    }

    #[test]
    fn stx_nul_resynchronises_after_garbage() {
        let mut acc = Accumulator::<32>::new(Framing::StxNul);
        // Noise, a frame cut off by a new STX, then a good frame.
        let got = frames(&mut acc, b"zz\x00\x02C5PI\x02C5PIA\x00");
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0][..], b"\x02C5PIA\x00");
        // "zz\0" and the five bytes of the cut-off frame.
        assert_eq!(acc.garbage_bytes(), 3 + 5);
    }

    #[test]
    fn overflow_drops_the_frame_and_recovers() {
        let mut acc = Accumulator::<8>::new(Framing::Nul);
        let got = frames(&mut acc, b"0123456789ABCDEF\x00abc\x00");
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..], b"<overflow>");
        assert_eq!(&got[1][..], b"abc");
        assert_eq!(acc.overflows(), 1);
        let mut acc = Accumulator::<4>::new(Framing::StxNul);
        let got = frames(&mut acc, b"\x02C5PIA\x00\x02C5\x00");
        assert_eq!(&got[0][..], b"<overflow>");
        assert_eq!(&got[1][..], b"\x02C5\x00");
    }
}
