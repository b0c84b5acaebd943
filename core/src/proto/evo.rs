//! The Tecan EVO firmware protocol.
//!
//! Host to device: `0x02`, a module address (two ASCII characters: `C5` LiHa, `C1` RoMa, `W1` MCA), a
//! three-letter command, up to 12 comma-separated decimal parameters (an empty one leaves that value
//! unchanged), `0x00`. Device to host: `0x02`, the module, a status byte with bit 7 set (error code =
//! status XOR 0x80), comma-separated data, `0x00`. No checksum, no sequence number: one command is
//! outstanding at a time. Replies are bytes, not text: nothing here decodes them as UTF-8.

use core::fmt;

use super::Cursor;
use super::frame::{NUL, STX};

/// Most parameters of one command.
pub const MAX_PARAMS: usize = 12;
/// Most data fields of one reply the twin sends.
pub const MAX_DATA: usize = 16;

/// Why an EVO frame was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EvoError {
    /// The frame does not start with `0x02` and end with `0x00`, or is too short.
    BadFrame,
    /// The module address is not two printable ASCII characters.
    BadModule,
    /// The command is not three upper-case letters.
    BadCommand,
    /// A parameter is not a decimal integer (or empty).
    BadParameter(usize),
    /// More than [`MAX_PARAMS`] parameters.
    TooManyParameters,
    /// The reply's status byte does not have bit 7 set.
    BadStatus,
    /// The output buffer is too small.
    BufferFull,
}

impl fmt::Display for EvoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EvoError::BadFrame => f.write_str("not an EVO frame (0x02 … 0x00)"),
            EvoError::BadModule => f.write_str("module address must be two characters like C5"),
            EvoError::BadCommand => f.write_str("command must be three upper-case letters"),
            EvoError::BadParameter(i) => write!(f, "parameter {} is not a decimal integer", i + 1),
            EvoError::TooManyParameters => write!(f, "more than {MAX_PARAMS} parameters"),
            EvoError::BadStatus => f.write_str("reply status byte lacks bit 7"),
            EvoError::BufferFull => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for EvoError {}

fn body(frame: &[u8]) -> Result<&[u8], EvoError> {
    match frame {
        [STX, body @ .., NUL] if body.len() >= 2 && !body.contains(&NUL) && !body.contains(&STX) => Ok(body),
        _ => Err(EvoError::BadFrame),
    }
}

fn parse_i32(b: &[u8]) -> Option<i32> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().try_fold(0i64, |a, d| a.checked_mul(10)?.checked_add(i64::from(d - b'0')))?;
    i32::try_from(if neg { -v } else { v }).ok()
}

/// A host-to-device command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvoCommand {
    /// Module address, e.g. `C5`.
    pub module: [u8; 2],
    /// Command, e.g. `PAA`.
    pub command: [u8; 3],
    /// Parameters; `None` is an empty field (leave unchanged).
    pub params: heapless::Vec<Option<i32>, MAX_PARAMS>,
}

impl EvoCommand {
    /// A command with the given parameters.
    pub fn new(module: &[u8; 2], command: &[u8; 3], params: &[Option<i32>]) -> Result<EvoCommand, EvoError> {
        Ok(EvoCommand {
            module: *module,
            command: *command,
            params: heapless::Vec::from_slice(params).map_err(|_| EvoError::TooManyParameters)?,
        })
    }

    /// Parses a whole frame, `0x02` to `0x00`.
    pub fn parse(frame: &[u8]) -> Result<EvoCommand, EvoError> {
        let b = body(frame)?;
        if b.len() < 5 {
            return Err(if b.len() < 2 { EvoError::BadFrame } else { EvoError::BadCommand });
        }
        if !b[..2].iter().all(u8::is_ascii_alphanumeric) {
            return Err(EvoError::BadModule);
        }
        if !b[2..5].iter().all(u8::is_ascii_uppercase) {
            return Err(EvoError::BadCommand);
        }
        let mut params = heapless::Vec::new();
        let rest = &b[5..];
        if !rest.is_empty() {
            for (i, field) in rest.split(|&c| c == b',').enumerate() {
                let v = if field.is_empty() { None } else { Some(parse_i32(field).ok_or(EvoError::BadParameter(i))?) };
                params.push(v).map_err(|_| EvoError::TooManyParameters)?;
            }
        }
        Ok(EvoCommand { module: [b[0], b[1]], command: [b[2], b[3], b[4]], params })
    }

    /// Writes the frame into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EvoError> {
        use core::fmt::Write;
        let mut c = Cursor::new(buf);
        let full = |_| EvoError::BufferFull;
        c.byte(STX).map_err(full)?;
        c.put(&self.module).map_err(full)?;
        c.put(&self.command).map_err(full)?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                c.byte(b',').map_err(full)?;
            }
            if let Some(v) = p {
                write!(c, "{v}").map_err(|_| EvoError::BufferFull)?;
            }
        }
        c.byte(NUL).map_err(full)?;
        Ok(c.len())
    }

    /// The parameter at `i`, if present and not empty.
    pub fn param(&self, i: usize) -> Option<i32> {
        self.params.get(i).copied().flatten()
    }
}

/// A device-to-host reply, borrowing its data bytes from the frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EvoReply<'a> {
    /// Module address.
    pub module: [u8; 2],
    /// Status byte (bit 7 set).
    pub status: u8,
    /// The raw data bytes (comma-separated decimal fields).
    pub data: &'a [u8],
}

impl<'a> EvoReply<'a> {
    /// Parses a whole frame.
    pub fn parse(frame: &'a [u8]) -> Result<EvoReply<'a>, EvoError> {
        let b = body(frame)?;
        if b.len() < 3 {
            return Err(EvoError::BadFrame);
        }
        if !b[..2].iter().all(u8::is_ascii_alphanumeric) {
            return Err(EvoError::BadModule);
        }
        if b[2] & 0x80 == 0 {
            return Err(EvoError::BadStatus);
        }
        Ok(EvoReply { module: [b[0], b[1]], status: b[2], data: &b[3..] })
    }

    /// Writes a reply frame with the given data fields; returns its length.
    pub fn emit_fields(module: &[u8; 2], error: u8, fields: &[i32], buf: &mut [u8]) -> Result<usize, EvoError> {
        use core::fmt::Write;
        let mut c = Cursor::new(buf);
        let full = |_| EvoError::BufferFull;
        c.byte(STX).map_err(full)?;
        c.put(module).map_err(full)?;
        c.byte(0x80 | (error & 0x7f)).map_err(full)?;
        for (i, v) in fields.iter().enumerate() {
            if i > 0 {
                c.byte(b',').map_err(full)?;
            }
            write!(c, "{v}").map_err(|_| EvoError::BufferFull)?;
        }
        c.byte(NUL).map_err(full)?;
        Ok(c.len())
    }

    /// Writes this reply back as a frame; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EvoError> {
        let mut c = Cursor::new(buf);
        let full = |_| EvoError::BufferFull;
        c.byte(STX).map_err(full)?;
        c.put(&self.module).map_err(full)?;
        c.byte(self.status).map_err(full)?;
        c.put(self.data).map_err(full)?;
        c.byte(NUL).map_err(full)?;
        Ok(c.len())
    }

    /// The error code (status XOR 0x80); 0 is OK.
    pub fn error_code(&self) -> u8 {
        self.status ^ 0x80
    }

    /// The data fields as integers (`None` for an empty or non-numeric field).
    pub fn fields(&self) -> impl Iterator<Item = Option<i32>> + 'a {
        let data = self.data;
        let empty = data.is_empty();
        data.split(|&c| c == b',').filter(move |_| !empty).map(parse_i32)
    }

    /// What the error code means for this module.
    pub fn error_meaning(&self) -> &'static str {
        error_meaning(self.module, self.error_code())
    }
}

/// What an error code means for a module (LiHa `C5`, RoMa `C1`; others use the LiHa table).
pub fn error_meaning(module: [u8; 2], code: u8) -> &'static str {
    match (module, code) {
        (_, 0) => "OK",
        (_, 1) => "initialisation failed",
        (_, 2) => "invalid command",
        (_, 3) => "invalid operand",
        (_, 4) => "CAN acknowledge problem",
        (_, 5) => "device not implemented",
        (_, 6) => "CAN answer time-out",
        (_, 7) => "device not initialised",
        (_, 8) => "command overflow of subdevice",
        ([b'C', b'1'], 9) => "plate not fetched",
        ([b'C', b'1'], 10) => "drive no load",
        (_, 9) => "no liquid detected",
        (_, 10) => "drive no load",
        (_, 11) | (_, 12) => "not enough liquid",
        (_, 15) => "sub-device overflow",
        (_, 18) => "clot limit passed",
        (_, 25) => "tip not fetched",
        (_, 26) => "tip not mounted",
        (_, 27) => "tip mounted",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit_cmd(c: &EvoCommand) -> heapless::Vec<u8, 128> {
        let mut buf = [0u8; 128];
        let n = c.emit(&mut buf).unwrap();
        heapless::Vec::from_slice(&buf[..n]).unwrap()
    }

    #[test]
    fn test_parse_commands() {
        let c = EvoCommand::parse(b"\x02C5PIA\x00").unwrap();
        assert_eq!((c.module, c.command, c.params.len()), (*b"C5", *b"PIA", 0));
        let c = EvoCommand::parse(b"\x02C5RNT1\x00").unwrap();
        assert_eq!(&c.params[..], &[Some(1)]);
        let c = EvoCommand::parse(b"\x02C5PVL0,,,,,,,\x00").unwrap();
        assert_eq!(c.params.len(), 8);
        assert_eq!(c.param(0), Some(0));
        assert_eq!(c.param(1), None);
        let c = EvoCommand::parse(b"\x02C5PPR-100\x00").unwrap();
        assert_eq!(c.param(0), Some(-100));
    }

    #[test]
    fn test_emit_commands() {
        let c = EvoCommand::new(b"C5", b"SHZ", &[Some(2100); 8]).unwrap();
        assert_eq!(&emit_cmd(&c)[..], b"\x02C5SHZ2100,2100,2100,2100,2100,2100,2100,2100\x00");
        let mut p = [Some(1200); 11];
        p[0] = Some(45);
        p[1] = Some(1031);
        p[2] = Some(90);
        let c = EvoCommand::new(b"C5", b"PAA", &p).unwrap();
        assert_eq!(&emit_cmd(&c)[..], b"\x02C5PAA45,1031,90,1200,1200,1200,1200,1200,1200,1200,1200\x00");
        for frame in [&b"\x02C5PIA\x00"[..], b"\x02C5RNT1\x00", b"\x02C5PVL0,,,,,,,\x00", b"\x02W1PIB\x00"] {
            assert_eq!(&emit_cmd(&EvoCommand::parse(frame).unwrap())[..], frame);
        }
        assert_eq!(EvoCommand::new(b"C5", b"PAA", &[Some(0); 13]), Err(EvoError::TooManyParameters));
    }

    #[test]
    fn test_parse_replies() {
        let r = EvoReply::parse(b"\x02C5\x80\x00").unwrap();
        assert_eq!((r.error_code(), r.fields().count()), (0, 0));
        let r = EvoReply::parse(b"\x02C5\x808\x00").unwrap();
        assert_eq!(r.error_code(), 0);
        assert_eq!(r.fields().next(), Some(Some(8)));
        let r = EvoReply::parse(b"\x02W1\x85\x00").unwrap();
        assert_eq!(r.error_code(), 5);
        assert_eq!(r.error_meaning(), "device not implemented");
        let r = EvoReply::parse(b"\x02C5\x89\x00").unwrap();
        assert_eq!(r.error_code(), 9);
        assert_eq!(r.error_meaning(), "no liquid detected");
        assert_eq!(error_meaning(*b"C1", 9), "plate not fetched");
        let r = EvoReply::parse(b"\x02C5\x80-5,120,\x00").unwrap();
        let f: heapless::Vec<Option<i32>, 4> = r.fields().collect();
        assert_eq!(&f[..], &[Some(-5), Some(120), None]);
    }

    #[test]
    fn test_emit_replies() {
        let mut buf = [0u8; 32];
        let n = EvoReply::emit_fields(b"C5", 0, &[8], &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x02C5\x808\x00");
        let n = EvoReply::emit_fields(b"W1", 5, &[], &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x02W1\x85\x00");
        for frame in [&b"\x02C5\x80\x00"[..], b"\x02C5\x808\x00", b"\x02C5\x89\x00", b"\x02C5\x801,\xff\x00"] {
            let r = EvoReply::parse(frame).unwrap();
            let n = r.emit(&mut buf).unwrap();
            assert_eq!(&buf[..n], frame);
        }
        assert_eq!(EvoReply::emit_fields(b"C5", 0, &[123456], &mut buf[..6]), Err(EvoError::BufferFull));
    }

    #[test]
    fn test_truncated_and_garbage() {
        assert_eq!(EvoCommand::parse(b""), Err(EvoError::BadFrame));
        assert_eq!(EvoCommand::parse(b"\x02C5PIA"), Err(EvoError::BadFrame));
        assert_eq!(EvoCommand::parse(b"C5PIA\x00"), Err(EvoError::BadFrame));
        assert_eq!(EvoCommand::parse(b"\x02C\x00"), Err(EvoError::BadFrame));
        assert_eq!(EvoCommand::parse(b"\x02C5PI\x00"), Err(EvoError::BadCommand));
        assert_eq!(EvoCommand::parse(b"\x02C5pia\x00"), Err(EvoError::BadCommand));
        assert_eq!(EvoCommand::parse(b"\x02C5PAA1,x\x00"), Err(EvoError::BadParameter(1)));
        assert_eq!(EvoCommand::parse(b"\x02C5PAA99999999999\x00"), Err(EvoError::BadParameter(0)));
        assert_eq!(EvoCommand::parse(b"\x02C5PAA1,2,3,4,5,6,7,8,9,10,11,12,13\x00"), Err(EvoError::TooManyParameters));
        assert_eq!(EvoReply::parse(b"\x02C5\x00"), Err(EvoError::BadFrame));
        assert_eq!(EvoReply::parse(b"\x02C5A\x00"), Err(EvoError::BadStatus));
        assert_eq!(EvoReply::parse(b"\x02C5\x80\x00\x00"), Err(EvoError::BadFrame));
    }
}
