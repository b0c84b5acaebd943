//! Tecan worklists (`.gwl`): parse, validate, emit.
//!
//! One record per line, CRLF line ends, no trailing newline, Latin-1. Fields are separated by `;`; a
//! label, ID or type may not contain `;` and is at most 32 characters. Positions are 1-based and counted
//! column-major (A1 = 1, B1 = 2, …). `S;` (set DiTi type) may stand only first or right after `B;`.
//! A parsed volume keeps its text, so a file emits back byte for byte; a volume built from a number is
//! printed with two decimals, as EVOware expects.

use super::WorklistError;
use crate::GatewayError;

/// Longest label, ID or type.
pub const MAX_LABEL: usize = 32;

/// A volume: its value and the text it is printed as.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// µL.
    pub value_ul: f64,
    /// As written.
    pub text: String,
}

impl Volume {
    /// A volume printed with two decimals.
    pub fn ul(value_ul: f64) -> Volume {
        Volume { value_ul, text: format!("{value_ul:.2}") }
    }
}

/// An aspirate or dispense record.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipetting {
    /// Rack label (the deck's labware name).
    pub rack_label: String,
    /// Rack barcode.
    pub rack_id: String,
    /// Rack type.
    pub rack_type: String,
    /// 1-based, column-major.
    pub position: u32,
    /// Tube barcode.
    pub tube_id: String,
    /// Volume.
    pub volume: Volume,
    /// Liquid class.
    pub liquid_class: String,
    /// Tip type (field kept, not interpreted).
    pub tip_type: String,
    /// Tips allowed: bit sum (tip 1 = 1 … tip 8 = 128); `None` = any tip.
    pub tip_mask: Option<u8>,
    /// Forced rack type.
    pub forced_rack_type: String,
}

/// A reagent distribution (`R;`).
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Source rack label, ID, type.
    pub src: (String, String, String),
    /// Source positions, first and last.
    pub src_range: (u32, u32),
    /// Destination rack label, ID, type.
    pub dst: (String, String, String),
    /// Destination positions, first and last.
    pub dst_range: (u32, u32),
    /// Volume per destination well, printed as given.
    pub volume: Volume,
    /// Liquid class.
    pub liquid_class: String,
    /// Times a DiTi is reused.
    pub diti_reuses: u32,
    /// Dispenses per aspiration.
    pub multi_dispense: u32,
    /// 0 left to right, 1 right to left.
    pub direction: u8,
    /// Destination wells left out, ascending.
    pub excluded: Vec<u32>,
}

/// One worklist record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// `A;…` aspirate.
    Aspirate(Pipetting),
    /// `D;…` dispense.
    Dispense(Pipetting),
    /// `W;` replace the disposable tip.
    ReplaceTip,
    /// `W1;` … `W4;` wash scheme.
    Wash(u8),
    /// `WD;` decontamination wash.
    Decontaminate,
    /// `F;` flush.
    Flush,
    /// `B;` break: execute everything before it first.
    Break,
    /// `S;<index>` set DiTi type.
    SetDiTi(u32),
    /// `C;<text>` comment.
    Comment(String),
    /// `R;…` reagent distribution.
    Reagent(Distribution),
}

fn fail(file: &str, line: usize, message: impl Into<String>) -> GatewayError {
    GatewayError::Worklist { file: file.to_string(), line, message: message.into() }
}

fn label(file: &str, line: usize, what: &str, s: &str) -> Result<String, GatewayError> {
    if let Some(at) = s.find('\0') {
        return Err(fail(file, line, format!("{what} has a NUL byte at character {}", s[..at].chars().count() + 1)));
    }
    if s.chars().count() > MAX_LABEL {
        return Err(fail(file, line, format!("{what} `{s}` is longer than {MAX_LABEL} characters")));
    }
    Ok(s.to_string())
}

fn number<T: std::str::FromStr>(file: &str, line: usize, what: &str, s: &str) -> Result<T, GatewayError> {
    s.trim().parse::<T>().map_err(|_| fail(file, line, format!("{what} `{s}` is not a whole number")))
}

fn position(file: &str, line: usize, what: &str, s: &str) -> Result<u32, GatewayError> {
    let p: u32 = number(file, line, what, s)?;
    if p == 0 {
        return Err(fail(file, line, format!("{what} is 0: positions count from 1 (column-major: A1 = 1, B1 = 2)")));
    }
    Ok(p)
}

fn volume(file: &str, line: usize, s: &str) -> Result<Volume, GatewayError> {
    let v: f64 = s.trim().parse().map_err(|_| fail(file, line, format!("volume `{s}` is not a number")))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(fail(file, line, format!("volume `{s}` must be a non-negative number of µL")));
    }
    Ok(Volume { value_ul: v, text: s.to_string() })
}

fn pipetting(file: &str, line: usize, f: &[&str]) -> Result<Pipetting, GatewayError> {
    if f.len() != 11 {
        return Err(fail(
            file,
            line,
            format!("{} record needs 11 fields (10 after the letter), found {}", f[0], f.len()),
        ));
    }
    let tip_mask = if f[9].is_empty() {
        None
    } else {
        let m: u32 = number(file, line, "tip mask", f[9])?;
        Some(
            u8::try_from(m)
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| fail(file, line, format!("tip mask {m} is not a sum of tips 1 … 8 (1 … 255)")))?,
        )
    };
    Ok(Pipetting {
        rack_label: label(file, line, "rack label", f[1])?,
        rack_id: label(file, line, "rack ID", f[2])?,
        rack_type: label(file, line, "rack type", f[3])?,
        position: position(file, line, "position", f[4])?,
        tube_id: label(file, line, "tube ID", f[5])?,
        volume: volume(file, line, f[6])?,
        liquid_class: label(file, line, "liquid class", f[7])?,
        tip_type: label(file, line, "tip type", f[8])?,
        tip_mask,
        forced_rack_type: label(file, line, "forced rack type", f[10])?,
    })
}

fn distribution(file: &str, line: usize, f: &[&str]) -> Result<Distribution, GatewayError> {
    if f.len() < 16 {
        return Err(fail(file, line, format!("R record needs at least 16 fields, found {}", f.len())));
    }
    let src_range = (position(file, line, "source start", f[4])?, position(file, line, "source end", f[5])?);
    let dst_range = (position(file, line, "destination start", f[9])?, position(file, line, "destination end", f[10])?);
    if src_range.1 < src_range.0 || dst_range.1 < dst_range.0 {
        return Err(fail(file, line, "a range ends before it starts"));
    }
    let direction: u8 = number(file, line, "direction", f[15])?;
    if direction > 1 {
        return Err(fail(file, line, "direction is 0 (left to right) or 1 (right to left)"));
    }
    let excluded = f[16..].iter().map(|s| position(file, line, "excluded well", s)).collect::<Result<Vec<_>, _>>()?;
    if excluded.windows(2).any(|w| w[0] >= w[1]) {
        return Err(fail(file, line, "excluded wells must be listed in ascending order"));
    }
    Ok(Distribution {
        src: (
            label(file, line, "source label", f[1])?,
            label(file, line, "source ID", f[2])?,
            label(file, line, "source type", f[3])?,
        ),
        src_range,
        dst: (
            label(file, line, "destination label", f[6])?,
            label(file, line, "destination ID", f[7])?,
            label(file, line, "destination type", f[8])?,
        ),
        dst_range,
        volume: volume(file, line, f[11])?,
        liquid_class: label(file, line, "liquid class", f[12])?,
        diti_reuses: number(file, line, "DiTi reuses", f[13])?,
        multi_dispense: number(file, line, "multi-dispense count", f[14])?,
        direction,
        excluded,
    })
}

/// Decodes Latin-1 bytes.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Parses a worklist (`file` names it in errors). Lines may end in CRLF or LF; a last line without one
/// is allowed, as the format wants.
pub fn parse(file: &str, text: &str) -> Result<Vec<Record>, GatewayError> {
    let mut out = Vec::new();
    let mut prev_break_or_start = true;
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.len() > 1 && lines.last() == Some(&"") {
        lines.pop(); // a final line end
    }
    for (i, raw) in lines.into_iter().enumerate() {
        let line = i + 1;
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.is_empty() {
            return Err(fail(file, line, "empty line"));
        }
        let f: Vec<&str> = l.split(';').collect();
        let rec = match f[0] {
            "A" => Record::Aspirate(pipetting(file, line, &f)?),
            "D" => Record::Dispense(pipetting(file, line, &f)?),
            "C" => Record::Comment(l[2..].to_string()),
            "R" => Record::Reagent(distribution(file, line, &f)?),
            "S" => {
                if !prev_break_or_start {
                    return Err(fail(file, line, "S (set DiTi type) may only come first or right after B"));
                }
                if f.len() != 2 {
                    return Err(fail(file, line, "S record is S;<index>"));
                }
                Record::SetDiTi(number(file, line, "DiTi index", f[1])?)
            }
            kind => {
                if f.len() != 2 || !f[1].is_empty() {
                    return Err(fail(file, line, format!("`{kind}` record takes no fields (`{kind};`)")));
                }
                match kind {
                    "W" => Record::ReplaceTip,
                    "W1" | "W2" | "W3" | "W4" => Record::Wash(kind.as_bytes()[1] - b'0'),
                    "WD" => Record::Decontaminate,
                    "F" => Record::Flush,
                    "B" => Record::Break,
                    other => {
                        return Err(fail(
                            file,
                            line,
                            format!("unknown record type `{other}` (A, D, W, W1–W4, WD, F, B, S, C, R)"),
                        ));
                    }
                }
            }
        };
        prev_break_or_start = matches!(rec, Record::Break);
        out.push(rec);
    }
    Ok(out)
}

fn check_label(s: &str, what: &'static str) -> Result<(), WorklistError> {
    if s.contains(';') {
        return Err(WorklistError::Semicolon { what, value: s.to_string() });
    }
    if s.chars().count() > MAX_LABEL {
        return Err(WorklistError::TooLong { what, value: s.to_string() });
    }
    Ok(())
}

/// One record as its line (no line end). Errors name the rule a field breaks.
pub fn emit_record(r: &Record) -> Result<String, WorklistError> {
    let pip = |k: &str, p: &Pipetting| -> Result<String, WorklistError> {
        for (v, what) in [
            (&p.rack_label, "rack label"),
            (&p.rack_id, "rack ID"),
            (&p.rack_type, "rack type"),
            (&p.tube_id, "tube ID"),
            (&p.liquid_class, "liquid class"),
            (&p.tip_type, "tip type"),
            (&p.forced_rack_type, "forced rack type"),
        ] {
            check_label(v, what)?;
        }
        if p.position == 0 {
            return Err(WorklistError::ZeroPosition);
        }
        let mask = p.tip_mask.map(|m| m.to_string()).unwrap_or_default();
        Ok(format!(
            "{k};{};{};{};{};{};{};{};{};{mask};{}",
            p.rack_label,
            p.rack_id,
            p.rack_type,
            p.position,
            p.tube_id,
            p.volume.text,
            p.liquid_class,
            p.tip_type,
            p.forced_rack_type
        ))
    };
    Ok(match r {
        Record::Aspirate(p) => pip("A", p)?,
        Record::Dispense(p) => pip("D", p)?,
        Record::ReplaceTip => "W;".into(),
        Record::Wash(n) if (1..=4).contains(n) => format!("W{n};"),
        Record::Wash(n) => return Err(WorklistError::WashScheme(*n)),
        Record::Decontaminate => "WD;".into(),
        Record::Flush => "F;".into(),
        Record::Break => "B;".into(),
        Record::SetDiTi(i) => format!("S;{i}"),
        Record::Comment(t) => {
            if t.contains(['\r', '\n']) {
                return Err(WorklistError::MultiLineComment);
            }
            format!("C;{t}")
        }
        Record::Reagent(d) => {
            for (v, what) in [
                (&d.src.0, "source label"),
                (&d.src.1, "source ID"),
                (&d.src.2, "source type"),
                (&d.dst.0, "destination label"),
                (&d.dst.1, "destination ID"),
                (&d.dst.2, "destination type"),
                (&d.liquid_class, "liquid class"),
            ] {
                check_label(v, what)?;
            }
            if d.excluded.windows(2).any(|w| w[0] >= w[1]) {
                return Err(WorklistError::ExcludedOrder);
            }
            let mut s = format!(
                "R;{};{};{};{};{};{};{};{};{};{};{};{};{};{};{}",
                d.src.0,
                d.src.1,
                d.src.2,
                d.src_range.0,
                d.src_range.1,
                d.dst.0,
                d.dst.1,
                d.dst.2,
                d.dst_range.0,
                d.dst_range.1,
                d.volume.text,
                d.liquid_class,
                d.diti_reuses,
                d.multi_dispense,
                d.direction
            );
            for e in &d.excluded {
                s += &format!(";{e}");
            }
            s
        }
    })
}

/// A whole worklist: CRLF between records, no trailing line end. Checks the S-after-B rule too.
pub fn emit(records: &[Record]) -> Result<String, WorklistError> {
    let mut lines = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let at = |e| WorklistError::AtRecord { record: i + 1, cause: Box::new(e) };
        if matches!(r, Record::SetDiTi(_)) && i > 0 && !matches!(records[i - 1], Record::Break) {
            return Err(at(WorklistError::SetDiTiPlacement));
        }
        lines.push(emit_record(r).map_err(at)?);
    }
    Ok(lines.join("\r\n"))
}

/// Encodes text as Latin-1; a character outside Latin-1 is an error.
pub fn to_latin1(text: &str) -> Result<Vec<u8>, WorklistError> {
    text.chars().map(|c| u8::try_from(u32::from(c)).map_err(|_| WorklistError::NotLatin1(c))).collect()
}

/// The wells a reagent distribution dispenses into, in order: the destination range less the excluded
/// wells, left to right or right to left.
pub fn distribution_targets(d: &Distribution) -> Vec<u32> {
    let mut v: Vec<u32> = (d.dst_range.0..=d.dst_range.1).filter(|w| !d.excluded.contains(w)).collect();
    if d.direction == 1 {
        v.reverse();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_in_labels_are_refused() {
        let e = parse("w.gwl", "A;Sou\0rce;;;1;;10;;;;\r\n").unwrap_err().to_string();
        assert_eq!(e, "w.gwl:1: rack label has a NUL byte at character 4");
    }

    /// The PROTOCOLS.md vectors; `S;1` / `B;` / `S;2` is one sequence (S only first or right after B).
    const VECTORS: [&str; 7] = [
        "A;WaterTrough;;;1;;200.00;;;;",
        "A;WaterTrough;12345;my_rack_id;1;my_tube_id;200.00;;;;",
        "D;A;;;1;;10.00;;;73;",
        "C;This is a simple comment",
        "R;S1;;;1;20;D1;;;2;21;50;;1;1;0",
        "W;",
        "F;",
    ];
    const DITI: [&str; 3] = ["S;1", "B;", "S;2"];

    #[test]
    fn test_vectors_roundtrip_byte_for_byte() {
        for v in VECTORS {
            assert_eq!(emit(&parse("t.gwl", v).unwrap()).unwrap(), v);
        }
        let text = VECTORS.join("\r\n");
        let records = parse("t.gwl", &text).unwrap();
        assert_eq!(records.len(), 7);
        assert_eq!(emit(&records).unwrap(), text);
        let diti = DITI.join("\r\n");
        let records_diti = parse("t.gwl", &diti).unwrap();
        assert_eq!(records_diti, vec![Record::SetDiTi(1), Record::Break, Record::SetDiTi(2)]);
        assert_eq!(emit(&records_diti).unwrap(), diti);
        let Record::Dispense(d) = &records[2] else { panic!() };
        assert_eq!(d.tip_mask, Some(73)); // tips 1, 4, 7
        assert_eq!(d.volume.value_ul, 10.0);
        let Record::Reagent(r) = &records[4] else { panic!() };
        assert_eq!((r.src_range, r.dst_range, r.volume.text.as_str()), ((1, 20), (2, 21), "50"));
        assert_eq!(distribution_targets(r).len(), 20);
        for k in ["W1;", "W2;", "W3;", "W4;", "WD;"] {
            assert_eq!(emit(&parse("t", k).unwrap()).unwrap(), k);
        }
        // A final line end is accepted; the emitted file has none.
        assert_eq!(emit(&parse("t", "W;\r\nF;\r\n").unwrap()).unwrap(), "W;\r\nF;");
    }

    #[test]
    fn test_emit_built_records() {
        let p = Pipetting {
            rack_label: "WaterTrough".into(),
            rack_id: String::new(),
            rack_type: String::new(),
            position: 1,
            tube_id: String::new(),
            volume: Volume::ul(200.0),
            liquid_class: String::new(),
            tip_type: String::new(),
            tip_mask: None,
            forced_rack_type: String::new(),
        };
        assert_eq!(emit_record(&Record::Aspirate(p.clone())).unwrap(), "A;WaterTrough;;;1;;200.00;;;;");
        let bad = Pipetting { rack_label: "a;b".into(), ..p.clone() };
        let e = emit_record(&Record::Aspirate(bad)).unwrap_err();
        assert_eq!(e, WorklistError::Semicolon { what: "rack label", value: "a;b".into() });
        assert_eq!(e.to_string(), "rack label `a;b` contains `;`");
        let long = Pipetting { rack_label: "X".repeat(33), ..p.clone() };
        let e = emit_record(&Record::Dispense(long)).unwrap_err();
        assert!(
            matches!(e, WorklistError::TooLong { what: "rack label", .. }) && e.to_string().contains("longer than 32")
        );
        let e = emit(&[Record::Comment("x".into()), Record::SetDiTi(1)]).unwrap_err();
        assert_eq!(e, WorklistError::AtRecord { record: 2, cause: Box::new(WorklistError::SetDiTiPlacement) });
        assert_eq!(e.to_string(), "record 2: S may only come first or right after B");
        let zero = Pipetting { position: 0, ..p };
        assert_eq!(emit_record(&Record::Aspirate(zero)), Err(WorklistError::ZeroPosition));
        assert_eq!(emit_record(&Record::Wash(5)), Err(WorklistError::WashScheme(5)));
        assert_eq!(emit_record(&Record::Comment("a\nb".into())), Err(WorklistError::MultiLineComment));
        assert_eq!(to_latin1("Gefäß").unwrap(), b"Gef\xe4\xdf");
        assert_eq!(to_latin1("µL ✓"), Err(WorklistError::NotLatin1('✓')));
    }

    #[test]
    fn test_errors_name_their_line() {
        let cases = [
            ("A;T;;;1;;200.00;;;;\r\nX;", 2, "unknown record type `X`"),
            ("A;T;;;1;;200.00;;;", 1, "needs 11 fields"),
            ("A;T;;;0;;200.00;;;;", 1, "positions count from 1"),
            ("A;T;;;B1;;200.00;;;;", 1, "position `B1` is not a whole number"),
            ("A;T;;;1;;-5;;;;", 1, "non-negative"),
            ("A;T;;;1;;abc;;;;", 1, "volume `abc` is not a number"),
            ("D;T;;;1;;10.00;;;256;", 1, "tip mask 256"),
            ("D;T;;;1;;10.00;;;0;", 1, "tip mask 0"),
            ("A;XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX;;;1;;1.00;;;;", 1, "longer than 32"),
            ("C;hello\r\nS;1", 2, "S (set DiTi type) may only come first"),
            ("W;x", 1, "takes no fields"),
            ("R;S1;;;1;20;D1;;;2;21;50;;1;1;2", 1, "direction"),
            ("R;S1;;;1;20;D1;;;2;21;50;;1;1;0;7;5", 1, "ascending"),
            ("R;S1;;;20;1;D1;;;2;21;50;;1;1;0", 1, "ends before it starts"),
            ("W;\r\n\r\nF;", 2, "empty line"),
        ];
        for (text, line, msg) in cases {
            let e = parse("bad.gwl", text).unwrap_err();
            let GatewayError::Worklist { line: l, message, file } = &e else { panic!() };
            assert_eq!((*l, file.as_str()), (line, "bad.gwl"), "{text}: {e}");
            assert!(message.contains(msg), "{text}: {message}");
        }
    }
}
