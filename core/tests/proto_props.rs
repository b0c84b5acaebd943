//! Property tests of the protocol codecs: parse∘emit is the identity for generated messages, and
//! arbitrary bytes give errors, never panics.

use cellos_core::proto::evo::{EvoCommand, EvoReply, MAX_PARAMS};
use cellos_core::proto::frame::{Accumulator, Feed, Framing};
use cellos_core::proto::star::{StarMessage, Token};
use cellos_core::proto::wire::{self, Faults, Readout, Request, Response};
use proptest::prelude::*;

fn module() -> impl Strategy<Value = [u8; 2]> {
    (prop::sample::select(b"CPHRIXWT".to_vec()), prop::sample::select(b"0123456789ABCDEFG".to_vec()))
        .prop_map(|(a, b)| [a, b])
}

fn upper2() -> impl Strategy<Value = [u8; 2]> {
    (b'A'..=b'Z', b'A'..=b'Z').prop_map(|(a, b)| [a, b])
}

fn name() -> impl Strategy<Value = [u8; 2]> {
    (b'a'..=b'z', b'a'..=b'z')
        .prop_map(|(a, b)| [a, b])
        .prop_filter("bb is the barcode field, id the sequence id", |n| n != b"bb" && n != b"id")
}

/// A value as instruments send them: digits, upper-case hex, signs, lists with blanks and `&`.
fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{0,6}", "[+-][0-9]{4,5}", "[0-9A-F]{1,14}", "([0-9]{2,5} ){0,7}[0-9]{2,5}&?", "[0-9]{2}/[0-9]{2}",]
}

#[derive(Debug, Clone)]
enum Tok {
    Param(bool, [u8; 2], String),
    Slave([u8; 2], u8, u8),
}

fn tokens() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<bool>(), name(), value()).prop_map(|(s, n, v)| Tok::Param(s, n, v)),
            1 => (module(), 0u8..100, 0u8..100).prop_map(|(m, c, t)| Tok::Slave(m, c, t)),
        ],
        0..40,
    )
}

fn render(m: &[u8; 2], c: &[u8; 2], id: Option<u16>, toks: &[Tok]) -> String {
    let mut s = format!("{}{}", String::from_utf8_lossy(m), String::from_utf8_lossy(c));
    if let Some(id) = id {
        s += &format!("id{id:04}");
    }
    for t in toks {
        match t {
            Tok::Param(sp, n, v) => {
                s += &format!("{}{}{}", if *sp { " " } else { "" }, String::from_utf8_lossy(n), v);
            }
            Tok::Slave(m, c, t) => s += &format!(" {}{c:02}/{t:02}", String::from_utf8_lossy(m)),
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn star_parse_emit_identity(m in module(), c in upper2(), id in prop::option::of(0u16..10000), toks in tokens()) {
        let text = render(&m, &c, id, &toks);
        let parsed = StarMessage::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed.module, m);
        prop_assert_eq!(parsed.code, c);
        prop_assert_eq!(parsed.id, id);
        prop_assert_eq!(parsed.tokens.len(), toks.len());
        for (got, want) in parsed.tokens.iter().zip(&toks) {
            match (got, want) {
                (Token::Param { spaced, name, value }, Tok::Param(s, n, v)) => {
                    prop_assert_eq!(spaced, s);
                    prop_assert_eq!(name, n);
                    prop_assert_eq!(*value, v.as_str());
                }
                (Token::Slave { module, code, trace }, Tok::Slave(m, c, t)) => {
                    prop_assert_eq!((module, code, trace), (m, c, t));
                }
                _ => prop_assert!(false, "token kind differs in {}", text),
            }
        }
        prop_assert_eq!(parsed.to_string(), text.clone());
    }

    #[test]
    fn star_arbitrary_text_never_panics(s in "\\PC{0,80}") {
        if let Ok(m) = StarMessage::parse(&s) {
            prop_assert_eq!(m.to_string(), s.clone());
        }
    }

    #[test]
    fn evo_command_identity(
        m in (b'A'..=b'Z', b'0'..=b'9').prop_map(|(a, b)| [a, b]),
        c in (b'A'..=b'Z', b'A'..=b'Z', b'A'..=b'Z').prop_map(|(a, b, c)| [a, b, c]),
        p in prop::collection::vec(prop::option::of(any::<i32>()), 0..=MAX_PARAMS),
    ) {
        // A single empty field is indistinguishable from none: the wire has no way to say it.
        prop_assume!(!(p.len() == 1 && p[0].is_none()));
        let cmd = EvoCommand::new(&m, &c, &p).unwrap();
        let mut buf = [0u8; 160];
        let n = cmd.emit(&mut buf).unwrap();
        let back = EvoCommand::parse(&buf[..n]).unwrap();
        prop_assert_eq!(&back, &cmd);
        let mut again = [0u8; 160];
        prop_assert_eq!(back.emit(&mut again).unwrap(), n);
        prop_assert_eq!(&again[..n], &buf[..n]);
    }

    #[test]
    fn evo_reply_identity(err in 0u8..0x80, fields in prop::collection::vec(any::<i32>(), 0..12)) {
        let mut buf = [0u8; 160];
        let n = EvoReply::emit_fields(b"C5", err, &fields, &mut buf).unwrap();
        let r = EvoReply::parse(&buf[..n]).unwrap();
        prop_assert_eq!(r.error_code(), err);
        let back: Vec<i32> = r.fields().map(|f| f.unwrap()).collect();
        prop_assert_eq!(back, fields);
        let mut again = [0u8; 160];
        let m = r.emit(&mut again).unwrap();
        prop_assert_eq!(&again[..m], &buf[..n]);
    }

    #[test]
    fn evo_arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = EvoCommand::parse(&b);
        let _ = EvoReply::parse(&b);
    }

    #[test]
    fn wire_identity(plate in any::<u8>(), well in any::<u16>(), hours in any::<f64>(), drop in any::<u16>(), v in any::<f64>()) {
        let mut buf = [0u8; wire::MAX_FRAME];
        let msgs = [
            Request::Read { plate, well, readout: Readout::Segmentation },
            Request::Incubate { plate, hours },
            Request::SetFaults(Faults { drop_next: drop, ..Faults::default() }),
        ];
        for m in msgs {
            let n = wire::encode(&m, &mut buf).unwrap();
            let back: Request = wire::decode(&mut buf[..n - 1]).unwrap();
            // NaN is not equal to itself: compare the bits.
            prop_assert_eq!(format!("{back:?}"), format!("{m:?}"));
        }
        let n = wire::encode(&Response::Value(v), &mut buf).unwrap();
        let back: Response = wire::decode(&mut buf[..n - 1]).unwrap();
        match back {
            Response::Value(x) => prop_assert_eq!(x.to_bits(), v.to_bits()),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn wire_stream_resynchronises(garbage in prop::collection::vec(1u8..=255, 0..40), well in any::<u16>()) {
        // Garbage without a delimiter glues onto the first frame (which fails its CRC); the frame after
        // the next delimiter decodes.
        let msg = Request::Read { plate: 3, well, readout: Readout::CellCount };
        let mut frame = [0u8; wire::MAX_FRAME];
        let n = wire::encode(&msg, &mut frame).unwrap();
        let mut stream = garbage.clone();
        stream.extend_from_slice(&frame[..n]);
        stream.extend_from_slice(&frame[..n]);
        let mut acc = Accumulator::<{ wire::MAX_FRAME }>::new(Framing::Nul);
        let mut decoded = Vec::new();
        let mut input = &stream[..];
        loop {
            match acc.feed(input) {
                Feed::Consumed => break,
                Feed::Frame { frame, remaining } => {
                    let mut f = frame.to_vec();
                    decoded.push(wire::decode::<Request>(&mut f).ok());
                    input = remaining;
                }
                Feed::Overflow { remaining } => input = remaining,
            }
        }
        prop_assert_eq!(decoded.last().copied().flatten(), Some(msg));
        if garbage.is_empty() {
            prop_assert_eq!(decoded, vec![Some(msg), Some(msg)]);
        }
    }

    #[test]
    fn wire_arbitrary_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = wire::decode::<Request>(&mut b);
    }
}
