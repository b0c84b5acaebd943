//! `wire`: the link to instruments that are ours (plate reader, incubator, twin control).
//!
//! A frame is `COBS(version ‖ [id] ‖ postcard(message) ‖ CRC-16/IBM-SDLC(everything before), little-endian)`
//! followed by one `0x00`. COBS removes every `0x00` from the body, so the delimiter resynchronises a
//! receiver after any garbage; the CRC rejects corrupted frames; the version byte rejects a peer that
//! speaks another revision of the messages. A frame is at most [`MAX_FRAME`] bytes with its delimiter.
//! `docs/wire.md` has the format with worked bytes.
//!
//! Version 2 frames carry a request id (`u16`, little-endian) after the version byte, and a response
//! carries the id of its request, so a host matches replies to requests and drops a late one instead of
//! taking it for the answer to the next request. Version 1 frames (no id) are still read and answered in
//! version 1: the bump is compatible.
//!
//! The messages are [`Request`] (host to instrument) and [`Response`] (instrument to host). One request
//! is answered by exactly one response. Whether a request may be sent again when its response is lost is
//! part of the protocol: [`Request::repeatable`].

use core::fmt;

use serde::{Deserialize, Serialize};

/// The newest protocol revision: frames with a request id.
pub const VERSION: u8 = 2;
/// The first revision: frames without an id, still read and answered.
pub const VERSION_1: u8 = 1;
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
            WireError::BadVersion(v) => write!(f, "peer speaks wire version {v}, this side {VERSION_1} and {VERSION}"),
            WireError::BadMessage => f.write_str("frame does not hold a message of the expected kind"),
        }
    }
}

impl core::error::Error for WireError {}

/// How a frame is tagged: a version-1 frame has no id, a version-2 frame carries one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Tag {
    /// Version 1: no request id.
    Untagged,
    /// Version 2 with this request id.
    Id(u16),
}

/// Encodes `message` as one version-1 frame (no id, delimiter included) into `out`; returns its length.
pub fn encode<T: Serialize>(message: &T, out: &mut [u8]) -> Result<usize, WireError> {
    encode_tagged(Tag::Untagged, message, out)
}

/// Encodes `message` as one frame tagged `tag` (delimiter included) into `out`; returns its length.
pub fn encode_tagged<T: Serialize>(tag: Tag, message: &T, out: &mut [u8]) -> Result<usize, WireError> {
    let mut body = [0u8; MAX_BODY];
    let head = match tag {
        Tag::Untagged => {
            body[0] = VERSION_1;
            1
        }
        Tag::Id(id) => {
            body[0] = VERSION;
            body[1..3].copy_from_slice(&id.to_le_bytes());
            3
        }
    };
    let payload = postcard::to_slice(message, &mut body[head..MAX_BODY - 2]).map_err(|_| WireError::TooLong)?.len();
    let end = head + payload;
    let crc = CRC.checksum(&body[..end]);
    body[end..end + 2].copy_from_slice(&crc.to_le_bytes());
    let n = cobs::try_encode(&body[..end + 2], out).map_err(|_| WireError::TooLong)?;
    *out.get_mut(n).ok_or(WireError::TooLong)? = 0;
    Ok(n + 1)
}

/// Decodes one frame of either version (without its delimiter, as the accumulator returns it) in place,
/// dropping its tag.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, WireError> {
    decode_tagged(frame).map(|(_, m)| m)
}

/// Decodes one frame of either version in place: its tag and its message.
pub fn decode_tagged<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<(Tag, T), WireError> {
    let n = cobs::decode_in_place(frame).map_err(|_| WireError::BadFraming)?;
    if n < 3 {
        return Err(WireError::BadFraming);
    }
    let body = &frame[..n];
    let (data, crc) = body.split_at(n - 2);
    if CRC.checksum(data).to_le_bytes() != [crc[0], crc[1]] {
        return Err(WireError::BadCrc);
    }
    let (tag, payload) = match data[0] {
        VERSION_1 => (Tag::Untagged, &data[1..]),
        VERSION if data.len() >= 3 => (Tag::Id(u16::from_le_bytes([data[1], data[2]])), &data[3..]),
        VERSION => return Err(WireError::BadFraming),
        v => return Err(WireError::BadVersion(v)),
    };
    match postcard::take_from_bytes(payload) {
        Ok((message, [])) => Ok((tag, message)),
        _ => Err(WireError::BadMessage),
    }
}

/// What a reader measures in a well.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Lab time the liquid-handling commands executed would take on the bench, ms
    /// ([`crate::labtime::Profile::STAR`]).
    pub lab_ms: u64,
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
        lab_ms: 0,
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
    /// Which instrument is this? Answered by [`Response::Identity`].
    Identify,
    /// Set the fault injection of one link of the twin (the reader's own included).
    SetLinkFaults {
        /// The link.
        link: Link,
        /// Its faults.
        faults: LinkFaults,
    },
    /// Stop the twin (answered `Done`, then the twin's process ends).
    Shutdown,
    /// Set up a twin started without a command line (the Cortex-M3 image): the seed of its noise, its
    /// instance number, and its deck, the campaign deck of `lines`
    /// ([`crate::deck::campaign`]). Answered `Done`; refused with [`Refusal::Started`] once the twin has
    /// executed a command or moved a plate's clock, so the twin of a running campaign is never reset.
    Setup {
        /// Seed of all the twin's noise.
        seed: u64,
        /// Instance number (see [`Identity`]).
        instance: u64,
        /// The campaign's cell lines.
        lines: crate::deck::campaign::Lines,
    },
}

impl Request {
    /// Whether the request may be sent again when its response is lost or damaged: everything but
    /// `Incubate` (which moves a plate's clock) and `Shutdown` reads or sets absolute values. A request that
    /// is not repeatable is never re-sent blindly: the host reads the state back first.
    pub const fn repeatable(&self) -> bool {
        !matches!(self, Request::Incubate { .. } | Request::Shutdown)
    }

    /// Whether this is a control request of the twin (faults, counters, reboot, shutdown), which fault
    /// injection never touches.
    pub const fn is_control(&self) -> bool {
        matches!(
            self,
            Request::SetFaults(_)
                | Request::Counters
                | Request::Reboot
                | Request::SetLinkFaults { .. }
                | Request::Shutdown
                | Request::Setup { .. }
        )
    }

    /// A two-letter code naming the request, for fault filters (`only=RD`) and logs.
    pub const fn code(&self) -> [u8; 2] {
        *match self {
            Request::Hello => b"HE",
            Request::Incubate { .. } => b"IN",
            Request::Read { .. } => b"RD",
            Request::WellState { .. } => b"WS",
            Request::SetFaults(_) => b"SF",
            Request::Counters => b"CT",
            Request::Reboot => b"RB",
            Request::TroughState { .. } => b"TS",
            Request::Identify => b"ID",
            Request::SetLinkFaults { .. } => b"LF",
            Request::Shutdown => b"SD",
            Request::Setup { .. } => b"SU",
        }
    }
}

/// A link of the twin.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Link {
    /// The STAR's serial line.
    Star,
    /// The EVO's serial line.
    Evo,
    /// The reader's `wire` line (faults apply to reader requests, never to control requests).
    Reader,
}

/// The faults of one link: [`Faults`] and late replies.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkFaults {
    /// Counted faults, delay, stall and the code filter.
    pub faults: Faults,
    /// When non-zero, only the next N replies (of `only_code`, if set) are delayed by `delay_ms`,
    /// instead of every reply.
    pub late_next: u16,
}

impl From<Faults> for LinkFaults {
    fn from(faults: Faults) -> Self {
        LinkFaults { faults, late_next: 0 }
    }
}

/// Who an instrument is: the twin's answer to [`Request::Identify`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity {
    /// A number drawn when the twin started: two twins (or one restarted) differ.
    pub instance: u64,
    /// The seed of the twin's noise.
    pub seed: u64,
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
    /// The plate is in the incubator (a real-time incubation is under way): it cannot be read or
    /// incubated again until the incubation ends.
    InIncubator,
    /// The twin has executed commands: it cannot be set up again ([`Request::Setup`]).
    Started,
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
    /// Identification of the instrument.
    Identity(Identity),
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
        // docs/wire.md, version 2: the same request with id 0x0102 (CRC 0xFF17, computed apart).
        let n =
            encode_tagged(Tag::Id(0x0102), &Request::Read { plate: 0, well: 5, readout: Readout::Viability }, &mut buf)
                .unwrap();
        let crc = CRC.checksum(&[0x02, 0x02, 0x01, 0x02, 0x00, 0x05, 0x00]).to_le_bytes();
        assert_eq!(crc, [0x17, 0xff]);
        assert_eq!(&buf[..n], &[0x05, 0x02, 0x02, 0x01, 0x02, 0x02, 0x05, 0x03, 0x17, 0xff, 0x00]);
        // Id 0 puts zero bytes in the body; COBS removes them.
        let n = encode_tagged(Tag::Id(0), &Request::Hello, &mut buf).unwrap();
        assert!(!buf[..n - 1].contains(&0));
        assert_eq!(decode_tagged::<Request>(&mut buf[..n - 1]), Ok((Tag::Id(0), Request::Hello)));
    }

    #[test]
    fn test_tags_and_versions() {
        let mut buf = [0u8; MAX_FRAME];
        for tag in [Tag::Untagged, Tag::Id(1), Tag::Id(0xffff)] {
            let n = encode_tagged(tag, &Response::Value(0.5), &mut buf).unwrap();
            assert_eq!(decode_tagged::<Response>(&mut buf[..n - 1]), Ok((tag, Response::Value(0.5))));
        }
        // A version-2 frame too short to hold its id.
        let body = [VERSION];
        let crc = CRC.checksum(&body).to_le_bytes();
        let mut frame = [0u8; 8];
        let n = cobs::try_encode(&[body[0], crc[0], crc[1]], &mut frame).unwrap();
        assert_eq!(decode_tagged::<Request>(&mut frame[..n]), Err(WireError::BadFraming));
        // Only Incubate and Shutdown may not be repeated; control requests are what faults never touch.
        assert!(!Request::Incubate { plate: 0, hours: 1.0 }.repeatable());
        assert!(Request::Read { plate: 0, well: 1, readout: Readout::CellRox }.repeatable());
        assert!(Request::Counters.is_control() && !Request::Identify.is_control());
        assert_eq!(&Request::Read { plate: 0, well: 1, readout: Readout::CellRox }.code(), b"RD");
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
        roundtrip(&Response::Identity(Identity { instance: u64::MAX, seed: 7 }));
        roundtrip(&Request::SetLinkFaults {
            link: Link::Reader,
            faults: LinkFaults { faults: Faults { delay_ms: 6000, ..Faults::NONE }, late_next: 2 },
        });
        roundtrip(&Request::Identify);
        roundtrip(&Request::Shutdown);
        let lines = crate::deck::campaign::Lines::by_name(&["U2OS", "HepG2", "A549"]).unwrap();
        roundtrip(&Request::Setup { seed: 1, instance: u64::MAX, lines });
        roundtrip(&Response::Refused(Refusal::Started));
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
        assert_eq!(decode::<Request>(&mut frame[..n]), Err(WireError::BadFraming), "version 2 without an id");
        let body = [3u8, 0];
        let crc = CRC.checksum(&body).to_le_bytes();
        let n = cobs::try_encode(&[body[0], body[1], crc[0], crc[1]], &mut frame).unwrap();
        assert_eq!(decode::<Request>(&mut frame[..n]), Err(WireError::BadVersion(3)));
        // A valid frame whose payload is no request: an unknown variant, and a known one with bytes left.
        for payload in [&[11u8][..], &[5, 1]] {
            let mut body = heapless::Vec::<u8, 8>::new();
            body.push(VERSION_1).unwrap();
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
