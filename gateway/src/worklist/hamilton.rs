//! Hamilton worklists (CSV): VENUS has no standard one, so cellos reads and writes the two layouts labs
//! use, and both convert to and from a plain transfer list.
//!
//! - The **transfer list**: `Source Plate Name,Source Well,Destination Plate Name,Destination Well,Transfer Volume`.
//! - The **legacy cell_OS** layout: `Action,Volume,Location,LiquidClass,Repetitions,Source,Target,GripMode,Duration,Temperature`,
//!   one row per step; a transfer is an `Aspirate` row (`Location` = the source, `Source`/`Target` =
//!   plate/well) followed by a `Dispense` row. Rows of other actions (`Incubate`, `Move`, …) are kept but
//!   carry no transfer.

use crate::GatewayError;

/// The transfer-list header.
pub const TRANSFER_HEADER: [&str; 5] =
    ["Source Plate Name", "Source Well", "Destination Plate Name", "Destination Well", "Transfer Volume"];
/// The legacy cell_OS header.
pub const LEGACY_HEADER: [&str; 10] = [
    "Action",
    "Volume",
    "Location",
    "LiquidClass",
    "Repetitions",
    "Source",
    "Target",
    "GripMode",
    "Duration",
    "Temperature",
];

/// One transfer: from a place to a place, a volume.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// Source labware.
    pub source: String,
    /// Source well (empty for a trough).
    pub source_well: String,
    /// Destination labware.
    pub target: String,
    /// Destination well.
    pub target_well: String,
    /// µL.
    pub volume_ul: f64,
}

/// A row of the legacy layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyRow {
    /// The ten fields, as written.
    pub fields: [String; 10],
}

fn fail(file: &str, line: usize, message: impl Into<String>) -> GatewayError {
    GatewayError::Worklist { file: file.to_string(), line, message: message.into() }
}

/// Which layout a CSV header is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The transfer list.
    Transfer,
    /// The legacy cell_OS layout.
    Legacy,
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes())
}

/// Detects the layout from the header line.
pub fn layout(file: &str, text: &str) -> Result<Layout, GatewayError> {
    let mut r = reader(text);
    let Some(Ok(h)) = r.records().next() else { return Err(fail(file, 1, "empty file: expected a header line")) };
    let h: Vec<&str> = h.iter().map(str::trim).collect();
    if h == TRANSFER_HEADER {
        Ok(Layout::Transfer)
    } else if h == LEGACY_HEADER {
        Ok(Layout::Legacy)
    } else {
        Err(fail(
            file,
            1,
            format!("header is neither `{}` nor `{}`", TRANSFER_HEADER.join(","), LEGACY_HEADER.join(",")),
        ))
    }
}

fn volume(file: &str, line: usize, s: &str) -> Result<f64, GatewayError> {
    let v: f64 = s.trim().parse().map_err(|_| fail(file, line, format!("volume `{s}` is not a number")))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(fail(file, line, format!("volume `{s}` must be a positive number of µL")));
    }
    Ok(v)
}

/// Reads a transfer list.
pub fn parse_transfers(file: &str, text: &str) -> Result<Vec<Transfer>, GatewayError> {
    if layout(file, text)? != Layout::Transfer {
        return Err(fail(file, 1, "not a transfer list"));
    }
    let mut out = Vec::new();
    for (i, rec) in reader(text).records().enumerate().skip(1) {
        let line = i + 1;
        let rec = rec.map_err(|e| fail(file, line, e.to_string()))?;
        if rec.len() != 5 {
            return Err(fail(file, line, format!("expected 5 fields, found {}", rec.len())));
        }
        let f = |k: usize| rec[k].trim().to_string();
        if f(0).is_empty() || f(2).is_empty() {
            return Err(fail(file, line, "source and destination plate names are required"));
        }
        out.push(Transfer {
            source: f(0),
            source_well: f(1),
            target: f(2),
            target_well: f(3),
            volume_ul: volume(file, line, &rec[4])?,
        });
    }
    Ok(out)
}

/// Reads the legacy layout, rows as written.
pub fn parse_legacy(file: &str, text: &str) -> Result<Vec<LegacyRow>, GatewayError> {
    if layout(file, text)? != Layout::Legacy {
        return Err(fail(file, 1, "not a legacy cell_OS worklist"));
    }
    let mut out = Vec::new();
    for (i, rec) in reader(text).records().enumerate().skip(1) {
        let line = i + 1;
        let rec = rec.map_err(|e| fail(file, line, e.to_string()))?;
        if rec.len() != 10 {
            return Err(fail(file, line, format!("expected 10 fields, found {}", rec.len())));
        }
        let fields: [String; 10] = std::array::from_fn(|k| rec[k].to_string());
        let action = fields[0].trim();
        if matches!(action, "Aspirate" | "Dispense") {
            volume(file, line, &fields[1])?;
        }
        out.push(LegacyRow { fields });
    }
    Ok(out)
}

fn split_place(s: &str) -> (String, String) {
    match s.split_once(':') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// The transfers of legacy rows: each `Aspirate` row paired with the next `Dispense` row.
pub fn legacy_transfers(file: &str, rows: &[LegacyRow]) -> Result<Vec<Transfer>, GatewayError> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String, String, f64)> = None;
    for (i, r) in rows.iter().enumerate() {
        let line = i + 2;
        let place = if r.fields[2].trim().is_empty() { r.fields[5].trim() } else { r.fields[2].trim() };
        match r.fields[0].trim() {
            "Aspirate" => {
                if let Some((l, ..)) = pending {
                    return Err(fail(
                        file,
                        line,
                        format!("aspirate after the aspirate of line {l} without a dispense"),
                    ));
                }
                let (p, w) = split_place(place);
                pending = Some((line, p, w, volume(file, line, &r.fields[1])?));
            }
            "Dispense" => {
                let Some((_, source, source_well, v)) = pending.take() else {
                    return Err(fail(file, line, "dispense without an aspirate before it"));
                };
                let dst = if r.fields[2].trim().is_empty() { r.fields[6].trim() } else { r.fields[2].trim() };
                let (target, target_well) = split_place(dst);
                let d = volume(file, line, &r.fields[1])?;
                if (d - v).abs() > 1e-9 {
                    return Err(fail(file, line, format!("dispense of {d} µL after an aspirate of {v} µL")));
                }
                out.push(Transfer { source, source_well, target, target_well, volume_ul: v });
            }
            _ => {}
        }
    }
    if let Some((l, ..)) = pending {
        return Err(fail(file, l, "aspirate without a dispense after it"));
    }
    Ok(out)
}

fn write_rows<I: IntoIterator<Item = Vec<String>>>(header: &[&str], rows: I) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(&r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn place(p: &str, w: &str) -> String {
    if w.is_empty() { p.to_string() } else { format!("{p}:{w}") }
}

/// Writes a transfer list.
pub fn emit_transfers(transfers: &[Transfer]) -> String {
    write_rows(
        &TRANSFER_HEADER,
        transfers.iter().map(|t| {
            vec![
                t.source.clone(),
                t.source_well.clone(),
                t.target.clone(),
                t.target_well.clone(),
                format!("{}", t.volume_ul),
            ]
        }),
    )
}

/// Writes transfers in the legacy layout: an `Aspirate` and a `Dispense` row per transfer.
pub fn emit_legacy(transfers: &[Transfer]) -> String {
    let rows = transfers.iter().flat_map(|t| {
        let v = format!("{}", t.volume_ul);
        let (src, dst) = (place(&t.source, &t.source_well), place(&t.target, &t.target_well));
        [
            vec![
                "Aspirate".into(),
                v.clone(),
                src.clone(),
                String::new(),
                "1".into(),
                src.clone(),
                dst.clone(),
                String::new(),
                String::new(),
                String::new(),
            ],
            vec![
                "Dispense".into(),
                v,
                dst.clone(),
                String::new(),
                "1".into(),
                src,
                dst,
                String::new(),
                String::new(),
                String::new(),
            ],
        ]
    });
    write_rows(&LEGACY_HEADER, rows)
}

/// Writes legacy rows back as read.
pub fn emit_legacy_rows(rows: &[LegacyRow]) -> String {
    write_rows(&LEGACY_HEADER, rows.iter().map(|r| r.fields.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "Source Plate Name,Source Well,Destination Plate Name,Destination Well,Transfer Volume\r\nMEDIUM,,PLATE_1,A1,50\r\nPLATE_1,A1,PLATE_1,B2,12.5\r\n";

    #[test]
    fn transfer_list_roundtrip() {
        let t = parse_transfers("t.csv", LIST).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1],
            Transfer {
                source: "PLATE_1".into(),
                source_well: "A1".into(),
                target: "PLATE_1".into(),
                target_well: "B2".into(),
                volume_ul: 12.5
            }
        );
        assert_eq!(emit_transfers(&t), LIST);
    }

    #[test]
    fn legacy_layout_roundtrip_and_pairs() {
        let t = parse_transfers("t.csv", LIST).unwrap();
        let legacy = emit_legacy(&t);
        assert!(legacy.starts_with("Action,Volume,Location,LiquidClass,Repetitions,Source,Target,GripMode,Duration,Temperature\r\nAspirate,50,MEDIUM,,1,MEDIUM,PLATE_1:A1,,,\r\n"));
        let rows = parse_legacy("l.csv", &legacy).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(emit_legacy_rows(&rows), legacy);
        assert_eq!(legacy_transfers("l.csv", &rows).unwrap(), t);
    }

    #[test]
    fn errors_name_their_line() {
        let e = parse_transfers("x.csv", "a,b\r\n").unwrap_err().to_string();
        assert!(e.starts_with("x.csv:1: header is neither"), "{e}");
        let e = parse_transfers("x.csv", "Source Plate Name,Source Well,Destination Plate Name,Destination Well,Transfer Volume\nM,,P,A1,50\nM,,P,A2,-1\n").unwrap_err().to_string();
        assert_eq!(e, "x.csv:3: volume `-1` must be a positive number of µL");
        let e = parse_transfers(
            "x.csv",
            "Source Plate Name,Source Well,Destination Plate Name,Destination Well,Transfer Volume\nM,,P,A1\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.csv:2: expected 5 fields, found 4");
        let rows = "Action,Volume,Location,LiquidClass,Repetitions,Source,Target,GripMode,Duration,Temperature\nDispense,5,P:A1,,1,,,,,\n";
        let e = legacy_transfers("l.csv", &parse_legacy("l.csv", rows).unwrap()).unwrap_err().to_string();
        assert_eq!(e, "l.csv:2: dispense without an aspirate before it");
        let rows = "Action,Volume,Location,LiquidClass,Repetitions,Source,Target,GripMode,Duration,Temperature\nIncubate,,,,,,,,3600,37\nAspirate,5,M,,1,,,,,\n";
        let e = legacy_transfers("l.csv", &parse_legacy("l.csv", rows).unwrap()).unwrap_err().to_string();
        assert_eq!(e, "l.csv:3: aspirate without a dispense after it");
    }
}
