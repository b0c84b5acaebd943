//! The STAR parser on arbitrary bytes: never panics, and whatever it accepts emits back unchanged.
#![no_main]

use cellos_core::proto::star::StarMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    if let Ok(m) = StarMessage::parse(text) {
        assert_eq!(m.to_string(), text);
        for e in m.errors() {
            let _ = (e.code_meaning(), e.trace_meaning(), e.channel());
        }
        for name in ["er", "xp", "av", "bb", "rt"] {
            if let Some(v) = m.param(name) {
                let _ = (v.uint(), v.int(), v.hex(), v.flag(), v.barcode(), v.list().count(), v.uints().count());
            }
        }
    }
});
