//! Instrument protocols: the text and byte formats cellos speaks, as parse/emit pairs.
//!
//! - [`frame`]: one stream accumulator for every protocol (NUL-delimited, STX…NUL, or text lines): feed
//!   bytes in, get whole frames out, resynchronise after garbage, never allocate.
//! - [`star`]: the Hamilton STAR firmware text protocol (commands, replies, error codes, typed builders).
//! - [`star_command`]: every STAR master command cellos sends or the twin answers, one type with `emit`
//!   and `parse` side by side (the gateway writes through it, the twin reads through it).
//! - [`evo`]: the Tecan EVO firmware protocol (STX/NUL frames, status-byte errors).
//! - [`wire`]: our own link for instruments that are ours (plate reader, incubator, twin control):
//!   postcard messages with a version byte and CRC-16, COBS-framed. Its format is in `docs/wire.md`.
//!
//! Every `parse` validates once and borrows from its input; `emit` writes into a caller's buffer.
//! For every well-formed input, `emit(parse(s)) == s`.

pub mod evo;
pub mod frame;
pub mod star;
pub mod star_command;
pub mod wire;

/// Writing into a byte buffer ran out of room.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferFull;

impl core::fmt::Display for BufferFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for BufferFull {}

/// A cursor writing into a caller's byte buffer.
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BufferFull)?;
        self.buf.get_mut(self.len..end).ok_or(BufferFull)?.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends one byte.
    pub fn byte(&mut self, b: u8) -> Result<(), BufferFull> {
        self.put(&[b])
    }

    /// The written bytes.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.put(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}
