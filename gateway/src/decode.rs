//! The trace and worklist inspector behind `cellos-gateway decode`: each message decoded to a JSON
//! object with named fields and explained errors, or re-emitted (`--roundtrip`) to prove the codecs
//! reproduce the input byte for byte.

use cellos_core::proto::evo::{EvoCommand, EvoReply};
use cellos_core::proto::frame::{NUL, STX};
use cellos_core::proto::star::{StarMessage, Token};
use serde_json::{Value, json};

use crate::GatewayError;
use crate::worklist::gwl::{self, Record};

fn fail(location: String, message: impl Into<String>) -> GatewayError {
    GatewayError::Decode { location, message: message.into() }
}

fn star_json(line: usize, m: &StarMessage<'_>) -> Value {
    let tokens: Vec<Value> = m
        .tokens
        .iter()
        .map(|t| match *t {
            Token::Param { name, value, .. } => json!({"name": String::from_utf8_lossy(&name), "value": value}),
            Token::Slave { module, code, trace } => {
                json!({"slave": String::from_utf8_lossy(&module), "code": code, "trace": trace})
            }
        })
        .collect();
    let errors: Vec<Value> = m
        .errors()
        .map(|e| {
            json!({"module": String::from_utf8_lossy(&e.module), "code": e.code, "trace": e.trace,
                   "meaning": format!("{} ({})", e.code_meaning(), e.trace_meaning())})
        })
        .collect();
    json!({"line": line, "module": String::from_utf8_lossy(&m.module), "code": String::from_utf8_lossy(&m.code),
           "id": m.id, "params": tokens, "errors": errors})
}

/// STAR: one message per line (CR, LF or CR LF tolerated; blank lines skipped).
pub fn star(input: &str, roundtrip: bool) -> Result<Vec<String>, GatewayError> {
    let mut out = Vec::new();
    for (i, raw) in input.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let m = StarMessage::parse(line).map_err(|e| fail(format!("line {}", i + 1), e.to_string()))?;
        out.push(if roundtrip { m.to_string() } else { star_json(i + 1, &m).to_string() });
    }
    Ok(out)
}

/// EVO: raw frames as sent on the wire, back to back. Returns one JSON text per frame, or (roundtrip)
/// the re-emitted frames concatenated.
pub fn evo(input: &[u8], roundtrip: bool) -> Result<(Vec<String>, Vec<u8>), GatewayError> {
    let mut json_out = Vec::new();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] != STX {
            return Err(fail(
                format!("byte {i}"),
                format!("0x{:02x} outside a frame (frames start with 0x02)", input[i]),
            ));
        }
        let end = input[i..]
            .iter()
            .position(|&b| b == NUL)
            .ok_or_else(|| fail(format!("byte {i}"), "frame without its closing 0x00"))?;
        let frame = &input[i..=i + end];
        let is_reply = frame.get(3).is_some_and(|b| b & 0x80 != 0);
        let mut buf = [0u8; 256];
        if is_reply {
            let r = EvoReply::parse(frame).map_err(|e| fail(format!("byte {i}"), e.to_string()))?;
            let n = r.emit(&mut buf).map_err(|e| fail(format!("byte {i}"), e.to_string()))?;
            bytes.extend_from_slice(&buf[..n]);
            json_out.push(
                json!({"offset": i, "kind": "reply", "module": String::from_utf8_lossy(&r.module), "error": r.error_code(),
                       "meaning": r.error_meaning(), "data": r.fields().collect::<Vec<_>>()})
                .to_string(),
            );
        } else {
            let c = EvoCommand::parse(frame).map_err(|e| fail(format!("byte {i}"), e.to_string()))?;
            let n = c.emit(&mut buf).map_err(|e| fail(format!("byte {i}"), e.to_string()))?;
            bytes.extend_from_slice(&buf[..n]);
            json_out.push(
                json!({"offset": i, "kind": "command", "module": String::from_utf8_lossy(&c.module),
                       "command": String::from_utf8_lossy(&c.command), "params": c.params.to_vec()})
                .to_string(),
            );
        }
        i += end + 1;
    }
    Ok(if roundtrip { (Vec::new(), bytes) } else { (json_out, Vec::new()) })
}

fn record_json(line: usize, r: &Record) -> Value {
    let pip = |k: &str, p: &gwl::Pipetting| {
        json!({"line": line, "record": k, "rack_label": p.rack_label, "rack_id": p.rack_id, "rack_type": p.rack_type,
               "position": p.position, "tube_id": p.tube_id, "volume_ul": p.volume.value_ul, "liquid_class": p.liquid_class,
               "tip_type": p.tip_type, "tip_mask": p.tip_mask, "forced_rack_type": p.forced_rack_type})
    };
    match r {
        Record::Aspirate(p) => pip("A", p),
        Record::Dispense(p) => pip("D", p),
        Record::ReplaceTip => json!({"line": line, "record": "W"}),
        Record::Wash(n) => json!({"line": line, "record": format!("W{n}")}),
        Record::Decontaminate => json!({"line": line, "record": "WD"}),
        Record::Flush => json!({"line": line, "record": "F"}),
        Record::Break => json!({"line": line, "record": "B"}),
        Record::SetDiTi(i) => json!({"line": line, "record": "S", "diti_index": i}),
        Record::Comment(t) => json!({"line": line, "record": "C", "text": t}),
        Record::Reagent(d) => {
            json!({"line": line, "record": "R", "source": d.src.0, "source_range": [d.src_range.0, d.src_range.1],
                                     "destination": d.dst.0, "destination_range": [d.dst_range.0, d.dst_range.1],
                                     "volume_ul": d.volume.value_ul, "liquid_class": d.liquid_class, "diti_reuses": d.diti_reuses,
                                     "multi_dispense": d.multi_dispense, "direction": d.direction, "excluded": d.excluded})
        }
    }
}

/// Re-emitted lines, ended as the input's lines end: CR LF when its first line ends so, LF otherwise,
/// and the last line with a terminator only when the input's has one.
pub fn with_input_endings(input: &[u8], lines: &[String]) -> String {
    let crlf = input.iter().position(|&b| b == b'\n').is_some_and(|i| i > 0 && input[i - 1] == b'\r');
    let sep = if crlf { "\r\n" } else { "\n" };
    let mut out = lines.join(sep);
    if input.ends_with(b"\n") && !lines.is_empty() {
        out += sep;
    }
    out
}

/// GWL: a worklist file. Returns one JSON text per record, or (roundtrip) the worklist re-emitted.
pub fn gwl(name: &str, input: &[u8], roundtrip: bool) -> Result<Vec<String>, GatewayError> {
    let text = gwl::latin1(input);
    let records = gwl::parse(name, &text)?;
    if roundtrip {
        let mut emitted = gwl::emit(&records).map_err(|m| fail("worklist".into(), m.to_string()))?;
        // The emitter ends every record with CR LF; an input whose last line had no terminator keeps none.
        if !input.ends_with(b"\n") && emitted.ends_with("\r\n") {
            emitted.truncate(emitted.len() - 2);
        }
        return Ok(vec![emitted]);
    }
    Ok(records.iter().enumerate().map(|(i, r)| record_json(i + 1, r).to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_keep_the_final_line_ending() {
        let lines = vec!["C0RFid0001".to_string(), "C0QWid0002".to_string()];
        assert_eq!(with_input_endings(b"a\r\nb\r\n", &lines), "C0RFid0001\r\nC0QWid0002\r\n");
        assert_eq!(with_input_endings(b"a\nb", &lines), "C0RFid0001\nC0QWid0002");
        assert_eq!(with_input_endings(b"a\nb\n", &lines), "C0RFid0001\nC0QWid0002\n");
        let gwl_in = b"A;S;;;1;;10;;;;\r\nD;T;;;1;;10;;;;";
        let out = gwl("w.gwl", gwl_in, true).unwrap();
        assert_eq!(out[0].as_bytes(), &gwl_in[..], "no terminator added");
    }

    #[test]
    fn star_lines() {
        let input = "C0QMid1111 er01/30\r\nP1VWid0001vw1 1 1 1\n\nC0TPid0002xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0\n";
        let out = star(input, false).unwrap();
        assert_eq!(out.len(), 3);
        let v: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(v["errors"][0]["meaning"], "syntax error (unknown command)");
        assert_eq!(v["id"], 1111);
        let back = star(input, true).unwrap();
        assert_eq!(back[2], "C0TPid0002xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0");
        let e = star("C0QMid1111\nC0QMid11\n", false).unwrap_err().to_string();
        assert_eq!(e, "line 2: `id` must be followed by four digits");
    }

    #[test]
    fn evo_frames() {
        let input = b"\x02C5PIA\x00\x02C5\x80\x00\x02C5RNT1\x00\x02C5\x808\x00\x02W1\x85\x00";
        let (json, _) = evo(input, false).unwrap();
        assert_eq!(json.len(), 5);
        let v: Value = serde_json::from_str(&json[4]).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["error"].as_u64(), v["meaning"].as_str()),
            (Some("reply"), Some(5), Some("device not implemented"))
        );
        let (_, bytes) = evo(input, true).unwrap();
        assert_eq!(bytes, input);
        assert_eq!(
            evo(b"\x02C5PIA\x00x", false).unwrap_err().to_string(),
            "byte 7: 0x78 outside a frame (frames start with 0x02)"
        );
        assert_eq!(
            evo(b"\x02C5PIA\x00\x02C5P", false).unwrap_err().to_string(),
            "byte 7: frame without its closing 0x00"
        );
        assert_eq!(
            evo(b"\x02C5PAA1,x\x00", false).unwrap_err().to_string(),
            "byte 0: parameter 2 is not a decimal integer"
        );
    }

    #[test]
    fn gwl_records() {
        let input = b"A;WaterTrough;;;1;;200.00;;;;\r\nD;A;;;1;;10.00;;;73;\r\nC;caf\xe9";
        let out = gwl("w.gwl", input, false).unwrap();
        let v: Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(v["tip_mask"], 73);
        let v: Value = serde_json::from_str(&out[2]).unwrap();
        assert_eq!(v["text"], "café");
        let back = gwl("w.gwl", input, true).unwrap();
        assert_eq!(gwl::to_latin1(&back[0]).unwrap(), input);
    }
}
