//! The Hamilton STAR firmware text protocol.
//!
//! A message is a module (`C0` master, `P1`…`PG` channels, `H0`, `R0`, …), a two-letter command code, an
//! optional `id####`, and parameters: two lower-case letters and a raw value, with no separator. A reply
//! echoes module, code and id, may put a blank before its `er` field, and a master reply may carry slave
//! error fields (` P106/70`). [`StarMessage::parse`] splits a message into [`Token`]s without
//! interpreting values, so `emit(parse(s)) == s` for every message it accepts; typed accessors and the
//! [`StarWriter`] builders give values their widths and meanings (`PROTOCOLS.md`).
//!
//! Framing on a byte stream (ASSUMPTION, ours: USB carries one message per transfer): a command ends with
//! CR, a reply with CR LF, and a receiver accepts CR, LF or CR LF ([`super::frame::Framing::Lines`]).

use core::fmt::{self, Write};

use super::BufferFull;

/// Most tokens (parameters and slave fields) one message may hold.
pub const MAX_TOKENS: usize = 64;
/// Longest message [`StarWriter`] builds: a `C0AS` of all 8 channels with every field of
/// [`cmd::ASPIRATE_FIELDS`] is 1,496 bytes.
pub const MAX_MESSAGE: usize = 2048;
/// Channels of the STAR the twin and the drivers assume unless told otherwise.
pub const DEFAULT_CHANNELS: usize = 8;

/// Why a STAR message was refused. Offsets are byte positions in the message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StarError {
    /// Shorter than module and command code.
    Truncated,
    /// The module is not an upper-case letter followed by an upper-case letter or digit.
    BadModule,
    /// The command code is not two upper-case letters.
    BadCode,
    /// `id` is not followed by four digits.
    BadId,
    /// A parameter name (two lower-case letters) was expected here.
    BadParameterName(usize),
    /// A byte that no message may contain (control or non-ASCII).
    BadByte(usize),
    /// A barcode field (`bb/NN…`) is shorter than its length prefix.
    BadBarcode(usize),
    /// More than [`MAX_TOKENS`] parameters.
    TooManyTokens,
}

impl fmt::Display for StarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StarError::Truncated => f.write_str("message shorter than module and command"),
            StarError::BadModule => f.write_str("module must be like C0, P1 or H0"),
            StarError::BadCode => f.write_str("command code must be two upper-case letters"),
            StarError::BadId => f.write_str("`id` must be followed by four digits"),
            StarError::BadParameterName(at) => {
                write!(f, "parameter name (two lower-case letters) expected at byte {at}")
            }
            StarError::BadByte(at) => write!(f, "byte {at} is not printable ASCII"),
            StarError::BadBarcode(at) => write!(f, "barcode at byte {at} is shorter than its length"),
            StarError::TooManyTokens => write!(f, "more than {MAX_TOKENS} parameters"),
        }
    }
}

impl core::error::Error for StarError {}

/// One parameter or slave error field of a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A parameter: name and raw value.
    Param {
        /// A blank came before the name (as in `C0QMid1111 er00/00`).
        spaced: bool,
        /// Two lower-case letters.
        name: [u8; 2],
        /// The raw value, exactly as sent.
        value: &'a str,
    },
    /// A slave error field of a master reply, ` P106/70`.
    Slave {
        /// The slave module.
        module: [u8; 2],
        /// Its main error code.
        code: u8,
        /// Its trace code.
        trace: u8,
    },
}

/// A parsed STAR command or reply, borrowing its values from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StarMessage<'a> {
    /// Module, e.g. `C0`.
    pub module: [u8; 2],
    /// Command code, e.g. `TP`.
    pub code: [u8; 2],
    /// Sequence id, when present.
    pub id: Option<u16>,
    /// Parameters and slave fields, in order.
    pub tokens: heapless::Vec<Token<'a>, MAX_TOKENS>,
}

fn is_module(m: &[u8]) -> bool {
    m.len() == 2 && m[0].is_ascii_uppercase() && (m[1].is_ascii_uppercase() || m[1].is_ascii_digit())
}

fn two_digits(b: &[u8]) -> Option<u8> {
    if b.len() >= 2 && b[0].is_ascii_digit() && b[1].is_ascii_digit() {
        Some((b[0] - b'0') * 10 + (b[1] - b'0'))
    } else {
        None
    }
}

/// A slave field ` XXnn/nn` at the start of `b`.
fn slave_at(b: &[u8]) -> Option<Token<'static>> {
    if b.len() < 8 || b[0] != b' ' || !is_module(&b[1..3]) || b[5] != b'/' {
        return None;
    }
    Some(Token::Slave { module: [b[1], b[2]], code: two_digits(&b[3..5])?, trace: two_digits(&b[6..8])? })
}

fn lower_pair(b: &[u8], i: usize) -> bool {
    i + 1 < b.len() && b[i].is_ascii_lowercase() && b[i + 1].is_ascii_lowercase()
}

impl<'a> StarMessage<'a> {
    /// Parses one message (no line terminator).
    pub fn parse(text: &'a str) -> Result<StarMessage<'a>, StarError> {
        let b = text.as_bytes();
        if let Some(at) = b.iter().position(|&c| !(0x20..0x7f).contains(&c)) {
            return Err(StarError::BadByte(at));
        }
        if b.len() < 4 {
            return Err(StarError::Truncated);
        }
        if !is_module(&b[..2]) {
            return Err(StarError::BadModule);
        }
        if !(b[2].is_ascii_uppercase() && b[3].is_ascii_uppercase()) {
            return Err(StarError::BadCode);
        }
        let mut i = 4;
        let mut id = None;
        if b.len() >= 6 && &b[4..6] == b"id" {
            let digits = b.get(6..10).ok_or(StarError::BadId)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(StarError::BadId);
            }
            id = Some(digits.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0')));
            i = 10;
        }
        let mut tokens = heapless::Vec::new();
        while i < b.len() {
            if let Some(slave) = slave_at(&b[i..]) {
                tokens.push(slave).map_err(|_| StarError::TooManyTokens)?;
                i += 8;
                continue;
            }
            let spaced = b[i] == b' ';
            let start = if spaced { i + 1 } else { i };
            if !lower_pair(b, start) {
                return Err(StarError::BadParameterName(start));
            }
            let name = [b[start], b[start + 1]];
            let v0 = start + 2;
            let end = if name == *b"bb" && b.get(v0) == Some(&b'/') {
                // Barcode: `bb/NN` and NN characters of any kind.
                let n = two_digits(b.get(v0 + 1..).unwrap_or(&[])).ok_or(StarError::BadBarcode(v0))?;
                let end = v0 + 3 + usize::from(n);
                if end > b.len() {
                    return Err(StarError::BadBarcode(v0));
                }
                end
            } else {
                let mut j = v0;
                while j < b.len()
                    && !lower_pair(b, j)
                    && !(b[j] == b' ' && lower_pair(b, j + 1))
                    && slave_at(&b[j..]).is_none()
                {
                    j += 1;
                }
                j
            };
            tokens.push(Token::Param { spaced, name, value: &text[v0..end] }).map_err(|_| StarError::TooManyTokens)?;
            i = end;
        }
        Ok(StarMessage { module: [b[0], b[1]], code: [b[2], b[3]], id, tokens })
    }

    /// Writes the message (no terminator).
    pub fn emit<W: Write>(&self, w: &mut W) -> fmt::Result {
        w.write_char(char::from(self.module[0]))?;
        w.write_char(char::from(self.module[1]))?;
        w.write_char(char::from(self.code[0]))?;
        w.write_char(char::from(self.code[1]))?;
        if let Some(id) = self.id {
            write!(w, "id{id:04}")?;
        }
        for t in &self.tokens {
            match *t {
                Token::Param { spaced, name, value } => {
                    if spaced {
                        w.write_char(' ')?;
                    }
                    w.write_char(char::from(name[0]))?;
                    w.write_char(char::from(name[1]))?;
                    w.write_str(value)?;
                }
                Token::Slave { module, code, trace } => {
                    write!(w, " {}{}{code:02}/{trace:02}", char::from(module[0]), char::from(module[1]))?;
                }
            }
        }
        Ok(())
    }

    /// Whether this is the `module` + `code` command (e.g. `b"C0"`, `b"TP"`).
    pub fn is(&self, module: &[u8; 2], code: &[u8; 2]) -> bool {
        self.module == *module && self.code == *code
    }

    /// The first parameter of this name.
    pub fn param(&self, name: &str) -> Option<Value<'a>> {
        let n = name.as_bytes();
        self.tokens.iter().find_map(|t| match *t {
            Token::Param { name: pn, value, .. } if pn == n => Some(Value(value)),
            _ => None,
        })
    }

    /// The errors a reply reports, master first, then slave fields with non-zero codes.
    ///
    /// A master reply's `erMM/TT` reports `MM` and trace `TT`; code 99 means "see the slave fields",
    /// so it is not itself listed. A slave reply's `erTT` reports trace `TT`.
    pub fn errors(&self) -> impl Iterator<Item = ModuleError> + '_ {
        let own = self.param("er").and_then(|v| {
            let b = v.0.as_bytes();
            if self.module == *b"C0" {
                let (code, trace) = (two_digits(b)?, two_digits(b.get(3..)?)?);
                (code != 0 && code != 99).then_some(ModuleError { module: self.module, code, trace })
            } else {
                let trace = two_digits(b)?;
                (trace != 0).then_some(ModuleError { module: self.module, code: 0, trace })
            }
        });
        let slaves = self.tokens.iter().filter_map(|t| match *t {
            Token::Slave { module, code, trace } if code != 0 || trace != 0 => {
                Some(ModuleError { module, code, trace })
            }
            _ => None,
        });
        own.into_iter().chain(slaves)
    }
}

impl fmt::Display for StarMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.emit(f)
    }
}

/// A raw parameter value with typed readers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Value<'a>(pub &'a str);

impl<'a> Value<'a> {
    /// The raw text.
    pub fn raw(&self) -> &'a str {
        self.0
    }

    /// An unsigned decimal value (`01179` → 1179).
    pub fn uint(&self) -> Option<u32> {
        parse_uint(self.0)
    }

    /// A signed decimal value (`+1530`, `-03232`, or unsigned).
    pub fn int(&self) -> Option<i32> {
        parse_int(self.0)
    }

    /// An upper-case hexadecimal value.
    pub fn hex(&self) -> Option<u64> {
        let s = self.0;
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)) {
            return None;
        }
        u64::from_str_radix(s, 16).ok()
    }

    /// A boolean (`0` or `1`).
    pub fn flag(&self) -> Option<bool> {
        match self.0 {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        }
    }

    /// Whether this is a list shorter than the instrument's channel count (ends with `&`).
    pub fn is_partial_list(&self) -> bool {
        self.0.ends_with('&')
    }

    /// The entries of a space-separated list (a trailing `&` removed).
    pub fn list(&self) -> impl Iterator<Item = &'a str> {
        self.0.strip_suffix('&').unwrap_or(self.0).split(' ').filter(|s| !s.is_empty())
    }

    /// The entries of a list of unsigned values; `None` for an entry that is not one.
    pub fn uints(&self) -> impl Iterator<Item = Option<u32>> + 'a {
        self.0.strip_suffix('&').unwrap_or(self.0).split(' ').filter(|s| !s.is_empty()).map(parse_uint)
    }

    /// The barcode of a `bb/NN…` field (`None` for `bb/00` or another form).
    pub fn barcode(&self) -> Option<&'a str> {
        let rest = self.0.strip_prefix('/')?;
        let n = usize::from(two_digits(rest.as_bytes())?);
        (n > 0).then(|| rest.get(2..2 + n)).flatten()
    }
}

fn parse_uint(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
}

fn parse_int(s: &str) -> Option<i32> {
    match s.as_bytes().first()? {
        b'+' => parse_uint(&s[1..]).and_then(|v| i32::try_from(v).ok()),
        b'-' => parse_uint(&s[1..]).and_then(|v| i32::try_from(v).ok()).map(|v| -v),
        _ => parse_uint(s).and_then(|v| i32::try_from(v).ok()),
    }
}

/// An error a reply reports for one module.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ModuleError {
    /// The module reporting (`C0`, `P1`, …).
    pub module: [u8; 2],
    /// Main error code (0 for a slave reply's own `er`, which has a trace only).
    pub code: u8,
    /// Trace code.
    pub trace: u8,
}

impl ModuleError {
    /// Whether the module is a pipetting channel (`P1`…`P9`, `PA`…`PG`).
    pub fn is_channel(&self) -> bool {
        self.module[0] == b'P' && (self.module[1].is_ascii_digit() || (b'A'..=b'G').contains(&self.module[1]))
    }

    /// The channel number 1…16 of a channel module.
    pub fn channel(&self) -> Option<u8> {
        if !self.is_channel() {
            return None;
        }
        let c = self.module[1];
        Some(if c.is_ascii_digit() { c - b'0' } else { c - b'A' + 10 })
    }

    /// What the main code means.
    pub fn code_meaning(&self) -> &'static str {
        main_code_meaning(self.code)
    }

    /// What the trace means, for this kind of module.
    pub fn trace_meaning(&self) -> &'static str {
        if self.is_channel() { channel_trace_meaning(self.trace) } else { master_trace_meaning(self.trace) }
    }
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}: error {:02} ({}), trace {:02} ({})",
            char::from(self.module[0]),
            char::from(self.module[1]),
            self.code,
            self.code_meaning(),
            self.trace,
            self.trace_meaning()
        )
    }
}

/// The meaning of a main error code.
pub fn main_code_meaning(code: u8) -> &'static str {
    match code {
        0 => "no error",
        1 => "syntax error",
        2 => "hardware error",
        3 => "command not completed",
        4 => "clot detected",
        5 => "barcode unreadable",
        6 => "too little liquid",
        7 => "tip already fitted",
        8 => "no tip",
        9 => "no carrier",
        10 => "execution aborted",
        11 => "dispense with pressure LLD not permitted",
        15 => "parameter combination not allowed",
        19 => "temperature error",
        21 => "no element",
        22 => "element still holding",
        23 => "element lost",
        24 => "illegal target plate position",
        25 => "illegal user access (cover open)",
        27 => "position not reachable",
        99 => "slave error",
        _ => "unknown error code",
    }
}

/// The meaning of a master (C0) trace code.
pub fn master_trace_meaning(trace: u8) -> &'static str {
    match trace {
        0 => "no error",
        30 => "unknown command",
        31 => "unknown parameter",
        32 => "parameter out of range",
        33 => "parameter does not belong to command",
        35 => "id error",
        40..=53 => "subsystem busy",
        _ => "unknown trace",
    }
}

/// The meaning of a pipetting-channel trace code.
pub fn channel_trace_meaning(trace: u8) -> &'static str {
    match trace {
        0 => "no error",
        30 => "unknown command",
        31 => "unknown parameter",
        32 => "parameter out of range",
        53 => "maximum volume in tip reached",
        54 => "position outside permitted area",
        70 => "no liquid level found",
        71 => "not enough liquid present",
        75 => "no tip picked up",
        76 => "tip already picked up",
        77 => "tip not dropped",
        78 => "wrong tip picked up",
        80 => "liquid not correctly aspirated",
        81 => "clot detected",
        _ => "unknown trace",
    }
}

/// A value does not fit its parameter's fixed width.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BuildError {
    /// A value has more digits than its parameter's width.
    TooWide {
        /// The parameter.
        name: [u8; 2],
    },
    /// More list entries than channels.
    TooManyChannels,
    /// The message outgrew [`MAX_MESSAGE`].
    Full,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TooWide { name } => {
                write!(f, "value too wide for parameter {}{}", char::from(name[0]), char::from(name[1]))
            }
            BuildError::TooManyChannels => f.write_str("more list entries than channels"),
            BuildError::Full => f.write_str("message too long"),
        }
    }
}

impl core::error::Error for BuildError {}

impl From<BufferFull> for BuildError {
    fn from(_: BufferFull) -> Self {
        BuildError::Full
    }
}

/// Builds a STAR message with fixed-width values, into its own buffer.
#[derive(Clone, Debug)]
pub struct StarWriter {
    text: heapless::String<MAX_MESSAGE>,
    channels: usize,
}

fn push_str(s: &mut heapless::String<MAX_MESSAGE>, t: &str) -> Result<(), BuildError> {
    s.push_str(t).map_err(|_| BuildError::Full)
}

fn digits(v: u64) -> usize {
    let mut n = 1;
    let mut v = v / 10;
    while v > 0 {
        n += 1;
        v /= 10;
    }
    n
}

impl StarWriter {
    /// Starts `module code id####` for an instrument with `channels` pipetting channels.
    pub fn new(module: &str, code: &str, id: Option<u16>, channels: usize) -> Result<StarWriter, BuildError> {
        let mut text = heapless::String::new();
        push_str(&mut text, module)?;
        push_str(&mut text, code)?;
        if let Some(id) = id {
            write!(text, "id{:04}", id % 10_000).map_err(|_| BuildError::Full)?;
        }
        Ok(StarWriter { text, channels })
    }

    fn name(&mut self, name: &str) -> Result<(), BuildError> {
        push_str(&mut self.text, name)
    }

    fn padded(&mut self, name: &str, width: usize, v: u64) -> Result<(), BuildError> {
        if digits(v) > width {
            let b = name.as_bytes();
            return Err(BuildError::TooWide { name: [b[0], b[1]] });
        }
        write!(self.text, "{v:0width$}").map_err(|_| BuildError::Full)
    }

    /// A zero-padded unsigned value.
    pub fn uint(mut self, name: &str, width: usize, v: u32) -> Result<Self, BuildError> {
        self.name(name)?;
        self.padded(name, width, v.into())?;
        Ok(self)
    }

    /// A signed value with an explicit sign (`+1530`, `-03232`).
    pub fn int(mut self, name: &str, width: usize, v: i32) -> Result<Self, BuildError> {
        self.name(name)?;
        push_str(&mut self.text, if v < 0 { "-" } else { "+" })?;
        self.padded(name, width, u64::from(v.unsigned_abs()))?;
        Ok(self)
    }

    /// A boolean as `0`/`1`.
    pub fn flag(self, name: &str, v: bool) -> Result<Self, BuildError> {
        self.uint(name, 1, u32::from(v))
    }

    /// An upper-case hexadecimal value of exactly `width` digits.
    pub fn hex(mut self, name: &str, width: usize, v: u64) -> Result<Self, BuildError> {
        self.name(name)?;
        if v != 0 && (64 - v.leading_zeros() as usize).div_ceil(4) > width {
            let b = name.as_bytes();
            return Err(BuildError::TooWide { name: [b[0], b[1]] });
        }
        write!(self.text, "{v:0width$X}").map_err(|_| BuildError::Full)?;
        Ok(self)
    }

    /// A raw value, as given.
    pub fn raw(mut self, name: &str, value: &str) -> Result<Self, BuildError> {
        self.name(name)?;
        push_str(&mut self.text, value)?;
        Ok(self)
    }

    /// A per-channel list: entries joined by blanks, `&` after a list shorter than the channel count.
    pub fn list(mut self, name: &str, width: usize, values: &[u32]) -> Result<Self, BuildError> {
        if values.len() > self.channels {
            return Err(BuildError::TooManyChannels);
        }
        self.name(name)?;
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                push_str(&mut self.text, " ")?;
            }
            self.padded(name, width, u64::from(*v))?;
        }
        if values.len() < self.channels {
            push_str(&mut self.text, "&")?;
        }
        Ok(self)
    }

    /// The message text.
    pub fn finish(self) -> heapless::String<MAX_MESSAGE> {
        self.text
    }
}

/// Per-channel values laid out the way the STAR expects: one entry per channel up to the last one used,
/// then, if fewer than all channels, one more unused (zero) entry.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ChannelLayout {
    len: usize,
}

impl ChannelLayout {
    /// The layout for the channels in `mask` (bit 0 = channel 1) on an instrument with `channels`.
    pub fn new(mask: u16, channels: usize) -> ChannelLayout {
        let last = 16 - mask.leading_zeros() as usize;
        ChannelLayout { len: if last < channels { last + 1 } else { channels } }
    }

    /// Number of list entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entries (no channel used).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `f(channel index)` for used channels and 0 elsewhere, as a list of `len` entries.
    pub fn fill(&self, mask: u16, mut f: impl FnMut(usize) -> u32) -> heapless::Vec<u32, 16> {
        (0..self.len).map(|i| if mask & (1 << i) != 0 { f(i) } else { 0 }).collect()
    }
}

/// Typed builders for the common commands. Units: 0.1 mm, 0.1 µL, 0.1 µL/s, as the firmware's.
pub mod cmd {
    use super::*;

    /// A bare command with only an id (`C0RFid0001`, `C0QWid0001`, `C0RTid0001`, `C0VIid0001`, …).
    pub fn bare(module: &str, code: &str, id: u16) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        Ok(StarWriter::new(module, code, Some(id), DEFAULT_CHANNELS)?.finish())
    }

    /// A tip type definition.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct TipType {
        /// Tip type index (`tt`, 2 digits).
        pub index: u8,
        /// Has a filter (`tf`).
        pub filter: bool,
        /// Length, 0.1 mm (`tl`, 4 digits).
        pub length_01mm: u32,
        /// Maximum volume, 0.1 µL (`tv`, 5 digits).
        pub max_volume_01ul: u32,
        /// Size code (`tg`, 1 digit).
        pub size: u8,
        /// Pick-up method (`tu`, 1 digit).
        pub pickup_method: u8,
    }

    /// `C0TT`: define a tip type.
    pub fn define_tip(id: u16, t: &TipType) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        Ok(StarWriter::new("C0", "TT", Some(id), DEFAULT_CHANNELS)?
            .uint("tt", 2, t.index.into())?
            .flag("tf", t.filter)?
            .uint("tl", 4, t.length_01mm)?
            .uint("tv", 5, t.max_volume_01ul)?
            .uint("tg", 1, t.size.into())?
            .uint("tu", 1, t.pickup_method.into())?
            .finish())
    }

    /// Tip pick-up or discard at per-channel positions.
    #[derive(Copy, Clone, Debug, PartialEq)]
    pub struct TipMove<'a> {
        /// Channels used, bit 0 = channel 1.
        pub mask: u16,
        /// x per channel index, 0.1 mm.
        pub x_01mm: &'a [u32],
        /// y per channel index, 0.1 mm.
        pub y_01mm: &'a [u32],
        /// Tip type index.
        pub tip_type: u8,
        /// Begin of the z move, 0.1 mm (`tp`).
        pub begin_z_01mm: u32,
        /// End of the z move, 0.1 mm (`tz`).
        pub end_z_01mm: u32,
        /// Minimum traverse height, 0.1 mm (`th`).
        pub traverse_01mm: u32,
        /// Pick-up (`td`) or discard (`ti`) method.
        pub method: u8,
    }

    fn at(v: &[u32], i: usize) -> u32 {
        v.get(i).copied().unwrap_or(0)
    }

    /// `C0TP`: pick up tips.
    pub fn pick_up_tips(
        id: u16,
        channels: usize,
        m: &TipMove<'_>,
    ) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        let layout = ChannelLayout::new(m.mask, channels);
        let tm = layout.fill(m.mask, |_| 1);
        Ok(StarWriter::new("C0", "TP", Some(id), channels)?
            .list("xp", 5, &layout.fill(m.mask, |i| at(m.x_01mm, i)))?
            .list("yp", 4, &layout.fill(m.mask, |i| at(m.y_01mm, i)))?
            .list("tm", 1, &tm)?
            .uint("tt", 2, m.tip_type.into())?
            .uint("tp", 4, m.begin_z_01mm)?
            .uint("tz", 4, m.end_z_01mm)?
            .uint("th", 4, m.traverse_01mm)?
            .uint("td", 1, m.method.into())?
            .finish())
    }

    /// `C0TR`: discard tips (`te` is the end-of-command z, `ti` the discard method).
    pub fn discard_tips(
        id: u16,
        channels: usize,
        m: &TipMove<'_>,
    ) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        let layout = ChannelLayout::new(m.mask, channels);
        let tm = layout.fill(m.mask, |_| 1);
        Ok(StarWriter::new("C0", "TR", Some(id), channels)?
            .list("xp", 5, &layout.fill(m.mask, |i| at(m.x_01mm, i)))?
            .list("yp", 4, &layout.fill(m.mask, |i| at(m.y_01mm, i)))?
            .list("tm", 1, &tm)?
            .uint("tp", 4, m.begin_z_01mm)?
            .uint("tz", 4, m.end_z_01mm)?
            .uint("th", 4, m.traverse_01mm)?
            .uint("te", 4, m.traverse_01mm)?
            .uint("ti", 1, m.method.into())?
            .finish())
    }

    /// One parameter of an aspirate or dispense: name, width, and whether it is per channel.
    #[derive(Copy, Clone, Debug)]
    pub struct Field {
        /// Two-letter name.
        pub name: &'static str,
        /// Digits.
        pub width: usize,
        /// A per-channel list (else one value).
        pub per_channel: bool,
    }

    const fn f(name: &'static str, width: usize) -> Field {
        Field { name, width, per_channel: true }
    }

    const fn one(name: &'static str, width: usize) -> Field {
        Field { name, width, per_channel: false }
    }

    /// The fields of `C0DS` in firmware order, with their widths.
    pub const DISPENSE_FIELDS: [Field; 36] = [
        f("dm", 1),
        f("tm", 1),
        f("xp", 5),
        f("yp", 4),
        f("zx", 4),
        f("lp", 4),
        f("zl", 4),
        f("po", 4),
        f("ip", 4),
        f("it", 1),
        f("fp", 4),
        f("zu", 4),
        f("zr", 5),
        one("th", 4),
        one("te", 4),
        f("dv", 5),
        f("ds", 4),
        f("ss", 4),
        f("rv", 3),
        f("ta", 3),
        f("ba", 4),
        f("lm", 1),
        one("dj", 2),
        f("zo", 3),
        f("ll", 1),
        f("lv", 1),
        f("de", 4),
        f("wt", 2),
        f("mv", 5),
        f("mc", 2),
        f("mp", 3),
        f("ms", 4),
        f("mh", 4),
        f("gi", 3),
        one("gj", 1),
        one("gk", 1),
    ];

    /// The fields of `C0AS` in firmware order, with their widths (as the public PyLabRobot backend
    /// sends them).
    pub const ASPIRATE_FIELDS: [Field; 44] = [
        f("at", 1),
        f("tm", 1),
        f("xp", 5),
        f("yp", 4),
        one("th", 4),
        one("te", 4),
        f("lp", 4),
        f("ch", 3),
        f("zl", 4),
        f("po", 4),
        f("zu", 4),
        f("zr", 5),
        f("zx", 4),
        f("ip", 4),
        f("it", 1),
        f("fp", 4),
        f("av", 5),
        f("as", 4),
        f("ta", 3),
        f("ba", 4),
        f("oa", 3),
        f("lm", 1),
        f("ll", 1),
        f("lv", 1),
        f("zo", 3),
        f("ld", 2),
        f("de", 4),
        f("wt", 2),
        f("mv", 5),
        f("mc", 2),
        f("mp", 3),
        f("ms", 4),
        f("mh", 4),
        f("gi", 3),
        one("gj", 1),
        one("gk", 1),
        f("lk", 1),
        f("ik", 4),
        f("sd", 4),
        f("se", 4),
        f("sz", 4),
        f("io", 4),
        f("il", 5),
        f("in", 4),
    ];

    /// Values for a pipetting command: per-channel values per field (by name), or one value. `tm` is
    /// derived from the mask and never asked for; `xp` and `yp` are asked for used channels only.
    pub trait FieldValues {
        /// The value of `field` for channel index `i` (or the single value, `i` = 0).
        fn value(&self, field: &str, i: usize) -> u32;
    }

    /// A plain aspirate or dispense: positions, volumes and speed per channel, every other parameter at
    /// the defaults of `PROTOCOLS.md`'s dispense vector (liquid-level detection off, no mixing).
    #[derive(Copy, Clone, Debug, PartialEq)]
    pub struct Pipette<'a> {
        /// x per channel index, 0.1 mm.
        pub x_01mm: &'a [u32],
        /// y per channel index, 0.1 mm.
        pub y_01mm: &'a [u32],
        /// Volume per channel index, 0.1 µL.
        pub volume_01ul: &'a [u32],
        /// Minimum traverse height (`th`, `te`), 0.1 mm.
        pub traverse_01mm: u32,
        /// Flow rate (`as`, `ds`), 0.1 µL/s.
        pub flow_01ul_s: u32,
    }

    impl FieldValues for Pipette<'_> {
        fn value(&self, field: &str, i: usize) -> u32 {
            let at = |v: &[u32]| v.get(i).copied().or_else(|| v.last().copied()).unwrap_or(0);
            match field {
                "xp" => at(self.x_01mm),
                "yp" => at(self.y_01mm),
                "av" | "dv" => at(self.volume_01ul),
                "th" | "te" => self.traverse_01mm,
                "as" | "ds" => self.flow_01ul_s,
                "dm" | "ll" | "lv" => 1,
                "zx" | "zl" => 1866,
                "lp" => 2000,
                "po" => 100,
                "zu" => 32,
                "zr" => 6180,
                "ss" | "ta" => 50,
                "ba" => 300,
                "de" | "ms" => 10,
                "sd" | "se" => 500,
                "sz" => 300,
                _ => 0,
            }
        }
    }

    /// `C0AS`: aspirate.
    pub fn aspirate(
        id: u16,
        channels: usize,
        mask: u16,
        p: &Pipette<'_>,
    ) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        pipetting("AS", &ASPIRATE_FIELDS, id, channels, mask, p)
    }

    /// `C0DS`: dispense.
    pub fn dispense(
        id: u16,
        channels: usize,
        mask: u16,
        p: &Pipette<'_>,
    ) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        pipetting("DS", &DISPENSE_FIELDS, id, channels, mask, p)
    }

    /// Builds `C0AS` or `C0DS` from a field table and values, for the channels in `mask`.
    pub fn pipetting(
        code: &str,
        fields: &[Field],
        id: u16,
        channels: usize,
        mask: u16,
        values: &impl FieldValues,
    ) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        let layout = ChannelLayout::new(mask, channels);
        let mut w = StarWriter::new("C0", code, Some(id), channels)?;
        for field in fields {
            w = if field.per_channel {
                // The channel pattern and positions are 0 for unused entries; every other field takes
                // its value on every entry, as the firmware expects (the trailing unused channel carries
                // the same heights and volumes).
                let list: heapless::Vec<u32, 16> = match field.name {
                    "tm" => layout.fill(mask, |_| 1),
                    "xp" | "yp" => layout.fill(mask, |i| values.value(field.name, i)),
                    _ => (0..layout.len()).map(|i| values.value(field.name, i)).collect(),
                };
                w.list(field.name, field.width, &list)?
            } else {
                w.uint(field.name, field.width, values.value(field.name, 0))?
            };
        }
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> StarMessage<'_> {
        let m = StarMessage::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let mut out = heapless::String::<MAX_MESSAGE>::new();
        m.emit(&mut out).unwrap();
        assert_eq!(out, s);
        m
    }

    const DISPENSE: &str = "C0DSid0001dm1 1&tm1 0&xp02983 00000&yp1457 0000&zx1866 1866&lp2000 2000&zl1866 1866&po0100 0100&ip0000 0000&it0 0&fp0000 0000&zu0032 0032&zr06180 06180&th2450te2450dv01072 01072&ds1800 1800&ss0050 0050&rv000 000&ta050 050&ba0300 0300&lm0 0&dj00zo000 000&ll1 1&lv1 1&de0010 0010&wt00 00&mv00000 00000&mc00 00&mp000 000&ms0010 0010&mh0000 0000&gi000 000&gj0gk0";

    #[test]
    fn test_parse_no_error_replies() {
        for s in ["C0QMid1111", "C0QMid1111 er00/00", "C0QMid1111 er00/00 P100/00"] {
            let m = roundtrip(s);
            assert_eq!(m.module, *b"C0");
            assert_eq!(m.code, *b"QM");
            assert_eq!(m.id, Some(1111));
            assert_eq!(m.errors().count(), 0, "{s}");
        }
        let m = roundtrip("C0QMid1111 er00/00 P100/00");
        assert_eq!(m.tokens[0], Token::Param { spaced: true, name: *b"er", value: "00/00" });
        assert_eq!(m.tokens[1], Token::Slave { module: *b"P1", code: 0, trace: 0 });
    }

    #[test]
    fn test_parse_errors() {
        let m = roundtrip("C0QMid1111 er01/30");
        let e: heapless::Vec<ModuleError, 4> = m.errors().collect();
        assert_eq!(&e[..], &[ModuleError { module: *b"C0", code: 1, trace: 30 }]);
        assert_eq!(e[0].code_meaning(), "syntax error");
        assert_eq!(e[0].trace_meaning(), "unknown command");
        let m = roundtrip("P1OQid1111er30");
        let e: heapless::Vec<ModuleError, 4> = m.errors().collect();
        assert_eq!(&e[..], &[ModuleError { module: *b"P1", code: 0, trace: 30 }]);
        assert_eq!(e[0].channel(), Some(1));
        assert_eq!(e[0].trace_meaning(), "unknown command");
        // A slave error reported through the master: 99 is not listed, the slave field is.
        let m = roundtrip("C0ASid0004er99/00 P106/70 P200/00");
        let e: heapless::Vec<ModuleError, 4> = m.errors().collect();
        assert_eq!(&e[..], &[ModuleError { module: *b"P1", code: 6, trace: 70 }]);
        assert_eq!(e[0].trace_meaning(), "no liquid level found");
        let mut s = heapless::String::<128>::new();
        write!(s, "{}", e[0]).unwrap();
        assert_eq!(s, "P1: error 06 (too little liquid), trace 70 (no liquid level found)");
        assert_eq!(ModuleError { module: *b"PG", code: 0, trace: 0 }.channel(), Some(16));
    }

    #[test]
    fn test_barcode() {
        let m = roundtrip("C0ZBid0001er00/00bb/08ABCDEFGH");
        assert_eq!(m.param("bb").unwrap().barcode(), Some("ABCDEFGH"));
        let m = roundtrip("C0ZBid0001er00/00bb/00");
        assert_eq!(m.param("bb").unwrap().barcode(), None);
        // A barcode may hold lower-case letters: the length prefix, not the letters, ends it.
        let m = roundtrip("C0ZBid0002er00/00bb/04abcdxx1");
        assert_eq!(m.param("bb").unwrap().barcode(), Some("abcd"));
        assert_eq!(m.param("xx").unwrap().uint(), Some(1));
        assert_eq!(StarMessage::parse("C0ZBid0001er00/00bb/09ABC"), Err(StarError::BadBarcode(19)));
    }

    #[test]
    fn test_short_lists() {
        let m = roundtrip("P1VWid0001vw1 1 1 1");
        let v: heapless::Vec<Option<u32>, 8> = m.param("vw").unwrap().uints().collect();
        assert_eq!(&v[..], &[Some(1); 4]);
        let m = roundtrip("P1VWid0001vw0 0");
        assert_eq!(m.param("vw").unwrap().list().count(), 2);
        assert!(!m.param("vw").unwrap().is_partial_list());
    }

    #[test]
    fn test_emit_define_tip() {
        let t =
            cmd::TipType { index: 1, filter: true, length_01mm: 519, max_volume_01ul: 3600, size: 2, pickup_method: 0 };
        assert_eq!(cmd::define_tip(1, &t).unwrap(), "C0TTid0001tt01tf1tl0519tv03600tg2tu0");
        roundtrip("C0TTid0001tt01tf1tl0519tv03600tg2tu0");
    }

    #[test]
    fn test_emit_pick_up() {
        let m = cmd::TipMove {
            mask: 0b11,
            x_01mm: &[1179, 1179],
            y_01mm: &[2418, 2328],
            tip_type: 1,
            begin_z_01mm: 2244,
            end_z_01mm: 2164,
            traverse_01mm: 2450,
            method: 0,
        };
        let s = cmd::pick_up_tips(2, 8, &m).unwrap();
        assert_eq!(s, "C0TPid0002xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0");
        let p = roundtrip(&s);
        let xs: heapless::Vec<Option<u32>, 8> = p.param("xp").unwrap().uints().collect();
        assert_eq!(&xs[..], &[Some(1179), Some(1179), Some(0)]);
        assert!(p.param("xp").unwrap().is_partial_list());
    }

    struct DispenseVector;
    impl cmd::FieldValues for DispenseVector {
        fn value(&self, field: &str, i: usize) -> u32 {
            match (field, i) {
                ("dm", _) | ("ll", _) | ("lv", _) => 1,
                ("xp", 0) => 2983,
                ("yp", 0) => 1457,
                ("zx", _) | ("zl", _) => 1866,
                ("lp", _) => 2000,
                ("po", _) => 100,
                ("zu", _) => 32,
                ("zr", _) => 6180,
                ("th", _) | ("te", _) => 2450,
                ("dv", _) => 1072,
                ("ds", _) => 1800,
                ("ss", _) => 50,
                ("ta", _) => 50,
                ("ba", _) => 300,
                ("de", _) => 10,
                ("ms", _) => 10,
                _ => 0,
            }
        }
    }

    #[test]
    fn test_emit_dispense_vector() {
        let s = cmd::pipetting("DS", &cmd::DISPENSE_FIELDS, 1, 8, 0b1, &DispenseVector).unwrap();
        assert_eq!(s, DISPENSE);
        let m = roundtrip(DISPENSE);
        assert_eq!(m.tokens.len(), 36);
        assert_eq!(m.param("dv").unwrap().uints().next(), Some(Some(1072)));
        assert_eq!(m.param("th").unwrap().uint(), Some(2450));
    }

    #[test]
    fn test_emit_dispense_typed() {
        let p = cmd::Pipette {
            x_01mm: &[2983],
            y_01mm: &[1457],
            volume_01ul: &[1072],
            traverse_01mm: 2450,
            flow_01ul_s: 1800,
        };
        assert_eq!(cmd::dispense(1, 8, 0b1, &p).unwrap(), DISPENSE);
        let a = cmd::aspirate(
            7,
            8,
            0b101,
            &cmd::Pipette { x_01mm: &[100, 0, 300], y_01mm: &[2000, 0, 1820], volume_01ul: &[1000, 0, 500], ..p },
        )
        .unwrap();
        let m = roundtrip(&a);
        assert_eq!(m.tokens.len(), 44);
        let tm: heapless::Vec<Option<u32>, 8> = m.param("tm").unwrap().uints().collect();
        assert_eq!(&tm[..], &[Some(1), Some(0), Some(1), Some(0)]);
        let av: heapless::Vec<Option<u32>, 8> = m.param("av").unwrap().uints().collect();
        assert_eq!(&av[..], &[Some(1000), Some(0), Some(500), Some(500)]);
        assert!(
            a.starts_with("C0ASid0007at0 0 0 0&tm1 0 1 0&xp00100 00000 00300 00000&yp2000 0000 1820 0000&th2450te2450")
        );
    }

    #[test]
    fn test_emit_misc() {
        assert_eq!(
            StarWriter::new("C0", "CP", Some(1), 8)
                .unwrap()
                .hex("cl", 14, 0x003F_FFFF_FFFF_FFFF)
                .unwrap()
                .hex("cb", 14, 0)
                .unwrap()
                .finish(),
            "C0CPid0001cl3FFFFFFFFFFFFFcb00000000000000"
        );
        for (code, s) in [("RF", "C0RFid0001"), ("VI", "C0VIid0001"), ("RT", "C0RTid0001"), ("QW", "C0QWid0001")] {
            assert_eq!(cmd::bare("C0", code, 1).unwrap(), s);
            roundtrip(s);
        }
        assert_eq!(cmd::bare("R0", "QW", 1).unwrap(), "R0QWid0001");
        let m = roundtrip("C0CPid0001cl3FFFFFFFFFFFFFcb00000000000000");
        assert_eq!(m.param("cl").unwrap().hex(), Some(0x003F_FFFF_FFFF_FFFF));
        // Ids wrap from 9999 to 0000.
        assert_eq!(cmd::bare("C0", "RF", 10_000).unwrap(), "C0RFid0000");
    }

    #[test]
    fn test_signed_and_widths() {
        let s = StarWriter::new("C0", "XX", Some(3), 8)
            .unwrap()
            .int("zp", 4, 1530)
            .unwrap()
            .int("yq", 5, -3232)
            .unwrap()
            .finish();
        assert_eq!(s, "C0XXid0003zp+1530yq-03232");
        let m = roundtrip(&s);
        assert_eq!(m.param("zp").unwrap().int(), Some(1530));
        assert_eq!(m.param("yq").unwrap().int(), Some(-3232));
        assert_eq!(
            StarWriter::new("C0", "TT", Some(1), 8).unwrap().uint("tl", 4, 12345).unwrap_err(),
            BuildError::TooWide { name: *b"tl" }
        );
        assert_eq!(
            StarWriter::new("C0", "TP", Some(1), 2).unwrap().list("xp", 5, &[1, 2, 3]).unwrap_err(),
            BuildError::TooManyChannels
        );
    }

    #[test]
    fn test_truncated_and_garbage() {
        assert_eq!(StarMessage::parse(""), Err(StarError::Truncated));
        assert_eq!(StarMessage::parse("C0Q"), Err(StarError::Truncated));
        assert_eq!(StarMessage::parse("c0QM"), Err(StarError::BadModule));
        assert_eq!(StarMessage::parse("C0qm"), Err(StarError::BadCode));
        assert_eq!(StarMessage::parse("C0QMid11"), Err(StarError::BadId));
        assert_eq!(StarMessage::parse("C0QMid11x1"), Err(StarError::BadId));
        assert_eq!(StarMessage::parse("C0QMid1111X"), Err(StarError::BadParameterName(10)));
        assert_eq!(StarMessage::parse("C0QMid1111 1"), Err(StarError::BadParameterName(11)));
        assert_eq!(StarMessage::parse("C0QMid1111\ter00/00"), Err(StarError::BadByte(10)));
        assert_eq!(StarMessage::parse("C0QMé"), Err(StarError::BadByte(4)));
        // A message without id is allowed (and stays without one).
        let m = roundtrip("C0QM");
        assert_eq!(m.id, None);
    }
}
