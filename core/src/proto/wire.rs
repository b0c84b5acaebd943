//! `wire`: the link to instruments that are ours (plate reader, incubator, twin control).
//!
//! A frame is `COBS(version ‖ postcard(message) ‖ CRC-16/IBM-SDLC(version ‖ payload), little-endian)`
//! followed by one `0x00`. COBS removes every `0x00` from the body, so the delimiter resynchronises a
//! receiver after any garbage; the CRC rejects corrupted frames; the version byte rejects a peer that
//! speaks another revision of the messages. A frame is at most [`MAX_FRAME`] bytes with its delimiter.
//! `docs/wire.md` has the format with worked bytes.
//!
//! The messages are [`Request`] (host to instrument) and [`Response`] (instrument to host). One request
//! is answered by exactly one response, in order.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Protocol revision carried in every frame.
pub const VERSION: u8 = 1;
/// Largest frame on the wire, delimiter included.
pub const MAX_FRAME: usize = 256;
/// Largest body before COBS: what fits in [`MAX_FRAME`] after COBS overhead and the delimiter.
pub const MAX_BODY: usize = MAX_FRAME - 1 - MAX_FRAME.div_ceil(254);

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC);

/// Why a frame could not be built or read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The message does not fit in a frame (or the output buffer).
    TooLong,
    /// The frame is not valid COBS, or too short to hold version and CRC.
    BadFraming,
    /// The CRC does not match: the frame was corrupted.
    BadCrc,
    /// The frame is of another protocol revision.
    BadVersion(u8),
    /// The payload is not a message of the expected type.
    BadMessage,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::TooLong => write!(f, "message longer than a {MAX_FRAME}-byte frame"),
            WireError::BadFraming => f.write_str("frame is not valid COBS or too short"),
            WireError::BadCrc => f.write_str("frame CRC mismatch (corrupted in transit)"),
            WireError::BadVersion(v) => write!(f, "peer speaks wire version {v}, this side {VERSION}"),
            WireError::BadMessage => f.write_str("frame does not hold a message of the expected kind"),
        }
    }
}

impl core::error::Error for WireError {}

/// Encodes `message` as one frame (delimiter included) into `out`; returns the frame length.
pub fn encode<T: Serialize>(message: &T, out: &mut [u8]) -> Result<usize, WireError> {
    let mut body = [0u8; MAX_BODY];
    body[0] = VERSION;
    let payload = postcard::to_slice(message, &mut body[1..MAX_BODY - 2]).map_err(|_| WireError::TooLong)?.len();
    let crc = CRC.checksum(&body[..1 + payload]);
    body[1 + payload..3 + payload].copy_from_slice(&crc.to_le_bytes());
    let n = cobs::try_encode(&body[..3 + payload], out).map_err(|_| WireError::TooLong)?;
    *out.get_mut(n).ok_or(WireError::TooLong)? = 0;
    Ok(n + 1)
}

/// Decodes one frame (without its delimiter, as the accumulator returns it) in place.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, WireError> {
    let n = cobs::decode_in_place(frame).map_err(|_| WireError::BadFraming)?;
    if n < 3 {
        return Err(WireError::BadFraming);
    }
    let body = &frame[..n];
    let (data, crc) = body.split_at(n - 2);
    if CRC.checksum(data).to_le_bytes() != [crc[0], crc[1]] {
        return Err(WireError::BadCrc);
    }
    if data[0] != VERSION {
        return Err(WireError::BadVersion(data[0]));
    }
    match postcard::take_from_bytes(&data[1..]) {
        Ok((message, [])) => Ok(message),
        _ => Err(WireError::BadMessage),
    }
}

/// What a reader measures in a well.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Readout {
    /// Fraction of live cells, 0–1.
    Viability,
    /// CellROX oxidative-stress signal, AU.
    CellRox,
    /// Segmentation quality, 0–1.
    Segmentation,
    /// Cells in the well.
    CellCount,
    /// Fraction of BFP-positive (transduced) cells, 0–1.
    BfpFraction,
}

/// Fault injection settings of the instrument twin. All off by default.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Faults {
    /// Drop the next N replies.
    pub drop_next: u16,
    /// Corrupt one byte of each of the next N replies.
    pub corrupt_next: u16,
    /// Send each of the next N replies twice.
    pub duplicate_next: u16,
    /// Delay every reply by this many milliseconds.
    pub delay_ms: u32,
    /// After the next command, answer nothing for this many milliseconds.
    pub stall_ms: u32,
    /// Apply the counted faults only to replies of this command code (e.g. `AS`), if set.
    pub only_code: Option<[u8; 2]>,
}

impl Faults {
    /// No faults (the default), usable in constant contexts.
    pub const NONE: Faults =
        Faults { drop_next: 0, corrupt_next: 0, duplicate_next: 0, delay_ms: 0, stall_ms: 0, only_code: None };
}

/// Counts the twin keeps of what it executed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Commands received on all instrument links.
    pub commands: u32,
    /// Aspirations executed (per channel or tip).
    pub aspirates: u32,
    /// Dispenses executed (per channel or tip).
    pub dispenses: u32,
    /// Tips picked up.
    pub tip_pickups: u32,
    /// Tips discarded.
    pub tip_drops: u32,
    /// Error replies sent.
    pub errors: u32,
    /// Replies dropped, corrupted or duplicated by fault injection.
    pub faults_applied: u32,
}

impl Counters {
    /// All zero (the default), usable in constant contexts.
    pub const ZERO: Counters = Counters {
        commands: 0,
        aspirates: 0,
        dispenses: 0,
        tip_pickups: 0,
        tip_drops: 0,
        errors: 0,
        faults_applied: 0,
    };
}

/// A request from the host.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Who are you? Answered by [`Response::Hello`].
    Hello,
    /// Incubate a deck plate (by index) for a number of hours of simulated time.
    Incubate {
        /// Deck plate index.
        plate: u8,
        /// Hours.
        hours: f64,
    },
    /// Read one well (1-based row-major index) of a deck plate.
    Read {
        /// Deck plate index.
        plate: u8,
        /// Well, 1-based row-major.
        well: u16,
        /// What to read.
        readout: Readout,
    },
    /// The liquid in one well, as the twin tracks it.
    WellState {
        /// Deck plate index.
        plate: u8,
        /// Well, 1-based row-major.
        well: u16,
    },
    /// Set the twin's fault injection.
    SetFaults(Faults),
    /// The twin's execution counters.
    Counters,
    /// Forget commands in flight, as after a power cycle (deck contents are kept).
    Reboot,
    /// The liquid in a trough (by deck index).
    TroughState {
        /// Trough index.
        trough: u8,
    },
}

/// The liquid in one well.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WellContents {
    /// Volume, µL.
    pub volume_ul: f64,
    /// Compound concentration, µM.
    pub compound_um: f64,
    /// Cells.
    pub cells: f64,
    /// Simulated hours the plate has been incubated.
    pub incubated_h: f64,
}

/// Why the instrument refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// No such plate on the deck.
    NoSuchPlate,
    /// No such well on that plate.
    NoSuchWell,
    /// The well holds no cells to read.
    EmptyWell,
    /// A value is out of range (negative hours, say).
    BadValue,
    /// The request's frame was damaged; send it again.
    BadFrame,
}

/// A response from the instrument.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Identification.
    Hello {
        /// Wire version.
        version: u8,
        /// Plates on the deck.
        plates: u8,
    },
    /// Done, nothing to report.
    Done,
    /// A reading.
    Value(f64),
    /// A well's contents.
    Well(WellContents),
    /// Execution counters.
    Counters(Counters),
    /// The request was refused.
    Refused(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + fmt::Debug>(m: &T) -> usize {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(m, &mut buf).unwrap();
        assert_eq!(buf[n - 1], 0);
        assert!(!buf[..n - 1].contains(&0));
        let back: T = decode(&mut buf[..n - 1]).unwrap();
        assert_eq!(&back, m);
        n
    }

    #[test]
    fn test_emit_hello_bytes() {
        // Request::Hello is variant 0: body = [01, 00, crc_lo, crc_hi], COBS-encoded, then 00.
        let mut buf = [0u8; 16];
        let n = encode(&Request::Hello, &mut buf).unwrap();
        // CRC-16/IBM-SDLC: check value 0x906E for "123456789"; 0x169F for [01, 00] (computed apart).
        assert_eq!(CRC.checksum(b"123456789"), 0x906e);
        assert_eq!(&buf[..n], &[0x02, 0x01, 0x03, 0x9f, 0x16, 0x00]);
        // docs/wire.md, second example.
        let n = encode(&Request::Read { plate: 0, well: 5, readout: Readout::Viability }, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x03, 0x01, 0x02, 0x02, 0x05, 0x03, 0xfd, 0x83, 0x00]);
    }

    #[test]
    fn test_roundtrips() {
        roundtrip(&Request::Hello);
        roundtrip(&Request::Incubate { plate: 2, hours: 24.0 });
        roundtrip(&Request::Read { plate: 0, well: 96, readout: Readout::CellRox });
        roundtrip(&Request::SetFaults(Faults { drop_next: 1, only_code: Some(*b"AS"), ..Faults::default() }));
        roundtrip(&Response::Value(264.4));
        roundtrip(&Response::Well(WellContents { volume_ul: 150.0, compound_um: 41.6, cells: 1e4, incubated_h: 48.0 }));
        roundtrip(&Response::Counters(Counters { aspirates: u32::MAX, ..Counters::default() }));
        roundtrip(&Response::Refused(Refusal::NoSuchWell));
    }

    #[test]
    fn test_corruption_is_detected() {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&Request::Read { plate: 1, well: 5, readout: Readout::Viability }, &mut buf).unwrap();
        for i in 0..n - 1 {
            for bit in 0..8 {
                let mut copy = buf;
                copy[i] ^= 1 << bit;
                if copy[i] == 0 {
                    continue; // a new delimiter: the accumulator would split there
                }
                assert!(decode::<Request>(&mut copy[..n - 1]).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn test_truncated_and_foreign() {
        assert_eq!(decode::<Request>(&mut []), Err(WireError::BadFraming));
        assert_eq!(decode::<Request>(&mut [0x02, 0x01]), Err(WireError::BadFraming));
        // A frame of another version, with a correct CRC.
        let body = [2u8, 0];
        let crc = CRC.checksum(&body).to_le_bytes();
        let mut frame = [0u8; 8];
        let n = cobs::try_encode(&[body[0], body[1], crc[0], crc[1]], &mut frame).unwrap();
        assert_eq!(decode::<Request>(&mut frame[..n]), Err(WireError::BadVersion(2)));
        // A valid frame whose payload is no request: an unknown variant, and a known one with bytes left.
        for payload in [&[9u8][..], &[5, 1]] {
            let mut body = heapless::Vec::<u8, 8>::new();
            body.push(VERSION).unwrap();
            body.extend_from_slice(payload).unwrap();
            let crc = CRC.checksum(&body).to_le_bytes();
            body.extend_from_slice(&crc).unwrap();
            let mut frame = [0u8; 16];
            let n = cobs::try_encode(&body, &mut frame).unwrap();
            assert_eq!(decode::<Request>(&mut frame[..n]), Err(WireError::BadMessage), "{payload:?}");
        }
        assert_eq!(encode(&Request::Hello, &mut [0u8; 3]), Err(WireError::TooLong));
    }
}
