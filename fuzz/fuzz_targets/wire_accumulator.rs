//! `wire` frames from an arbitrary byte stream, fed in pieces: never panics, and a decoded message
//! encodes and decodes back to itself.
#![no_main]

use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use cellos_core::proto::wire::{self, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut acc = Accumulator::<{ wire::MAX_FRAME }>::new(Framing::Nul);
    // The first byte chooses the piece size, so that frames straddle feeds.
    let Some((&piece, rest)) = data.split_first() else { return };
    for chunk in rest.chunks(usize::from(piece).max(1)) {
        let mut input = chunk;
        loop {
            match acc.feed(input) {
                Feed::Consumed => break,
                Feed::Overflow { remaining } => input = remaining,
                Feed::Frame { frame, remaining } => {
                    let mut a = frame.to_vec();
                    let mut b = frame.to_vec();
                    if let Ok(req) = wire::decode::<Request>(&mut a) {
                        let mut out = [0u8; wire::MAX_FRAME];
                        let n = wire::encode(&req, &mut out).expect("a decoded request fits");
                        let back: Request = wire::decode(&mut out[..n - 1]).expect("round trip");
                        assert_eq!(format!("{back:?}"), format!("{req:?}"));
                    }
                    let _ = wire::decode::<Response>(&mut b);
                    input = remaining;
                }
            }
        }
    }
});
