//! # cellos-tests: tests that cross crate boundaries
//!
//! Gateway against the twin over ptys, campaigns end to end, import → query → export. The tests live in
//! `tests/`; this library holds what they share: minimal serial clients for each instrument link (the
//! gateway has the real drivers; these stay small so that a test checks the twin, not the driver).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use cellos_core::proto::wire::{self, Request, Response};

/// A serial line opened as a client, with a framing accumulator.
pub struct Line {
    port: Box<dyn serialport::SerialPort>,
    acc: Accumulator<2048>,
    frames: std::collections::VecDeque<Vec<u8>>,
}

impl Line {
    /// Opens `path` (a pty or serial device) with the framing of its protocol.
    pub fn open(path: &str, framing: Framing) -> Line {
        let port = serialport::new(path, 115_200)
            .timeout(Duration::from_millis(5))
            .open()
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        Line { port, acc: Accumulator::new(framing), frames: Default::default() }
    }

    /// Writes bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).expect("serial write");
        self.port.flush().expect("serial flush");
    }

    /// The next frame, or `None` after `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Some(f);
            }
            if Instant::now() >= end {
                return None;
            }
            let mut buf = [0u8; 256];
            let n = match self.port.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
                Err(e) => panic!("serial read: {e}"),
            };
            let mut input = &buf[..n];
            loop {
                match self.acc.feed(input) {
                    Feed::Consumed => break,
                    Feed::Frame { frame, remaining } => {
                        self.frames.push_back(frame.to_vec());
                        input = remaining;
                    }
                    Feed::Overflow { remaining } => input = remaining,
                }
            }
        }
    }
}

/// A STAR client: one command per line, replies as text.
pub struct StarLine(pub Line);

impl StarLine {
    /// Opens the STAR line.
    pub fn open(path: &str) -> StarLine {
        StarLine(Line::open(path, Framing::Lines))
    }

    /// Sends a command (CR-terminated).
    pub fn send(&mut self, command: &str) {
        self.0.send(format!("{command}\r").as_bytes());
    }

    /// The next reply line, if one comes within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<String> {
        self.0.recv(timeout).map(|f| String::from_utf8_lossy(&f).into_owned())
    }

    /// Sends a command and returns the next reply (panics after 2 s).
    pub fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.recv(Duration::from_secs(2)).unwrap_or_else(|| panic!("no reply to {command}"))
    }
}

/// An EVO client: STX…NUL frames.
pub struct EvoLine(pub Line);

impl EvoLine {
    /// Opens the EVO line.
    pub fn open(path: &str) -> EvoLine {
        EvoLine(Line::open(path, Framing::StxNul))
    }

    /// Sends a frame and returns the reply frame (panics after 2 s).
    pub fn ask(&mut self, frame: &[u8]) -> Vec<u8> {
        self.0.send(frame);
        self.0.recv(Duration::from_secs(2)).unwrap_or_else(|| panic!("no reply to {frame:?}"))
    }
}

/// A `wire` client for the reader and twin control.
pub struct WireLine(pub Line);

impl WireLine {
    /// Opens the reader line.
    pub fn open(path: &str) -> WireLine {
        WireLine(Line::open(path, Framing::Nul))
    }

    /// Sends a request and returns the response (panics after 2 s or on a bad frame).
    pub fn ask(&mut self, req: &Request) -> Response {
        let mut buf = [0u8; wire::MAX_FRAME];
        let n = wire::encode(req, &mut buf).expect("encode");
        self.0.send(&buf[..n]);
        let mut frame = self.0.recv(Duration::from_secs(2)).unwrap_or_else(|| panic!("no response to {req:?}"));
        wire::decode(&mut frame).expect("response frame")
    }
}
