//! EVO frames from an arbitrary byte stream: the accumulator and both decoders never panic, and a
//! decoded command or reply emits back to the same frame.
#![no_main]

use cellos_core::proto::evo::{EvoCommand, EvoReply};
use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut acc = Accumulator::<128>::new(Framing::StxNul);
    let mut input = data;
    loop {
        match acc.feed(input) {
            Feed::Consumed => break,
            Feed::Overflow { remaining } => input = remaining,
            Feed::Frame { frame, remaining } => {
                let mut out = [0u8; 256];
                if let Ok(c) = EvoCommand::parse(frame) {
                    let n = c.emit(&mut out).expect("a parsed command fits");
                    assert_eq!(EvoCommand::parse(&out[..n]), Ok(c));
                }
                if let Ok(r) = EvoReply::parse(frame) {
                    let n = r.emit(&mut out).expect("a parsed reply fits");
                    assert_eq!(&out[..n], frame);
                    let _ = (r.fields().count(), r.error_meaning());
                }
                input = remaining;
            }
        }
    }
});
