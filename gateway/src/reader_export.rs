//! Plate-reader exports, as an operator uploads them for a manual reader. Two layouts are read:
//!
//! - **Plate grid**, as plate readers write it: one block per readout, each a label line naming the
//!   readout, a header row `1 … 12`, and rows `A … H` of values (an empty cell is a well not read):
//!
//!   ```text
//!   Viability
//!   ,1,2,3,4,5,6,7,8,9,10,11,12
//!   A,,,,,,,,,,,,
//!   B,,0.98,0.97,,,,,,,,,
//!   …
//!   ```
//! - **Long**: a header `well,readout,value`, then a row per value (`B2,viability,0.98`).
//!
//! Cells are separated by commas, semicolons or tabs (a reader set to a European locale writes
//! semicolons). A byte-order mark and CR LF line ends are accepted. Every error names its line (and
//! column), so an operator can fix the file; nothing of a refused file is used.

use std::collections::BTreeMap;

use cellos_core::proto::wire::Readout;

/// Rows of a 96-well plate.
const ROWS: &[u8; 8] = b"ABCDEFGH";
/// Columns of a 96-well plate.
const COLUMNS: u8 = 12;

/// Why an export is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ExportError {
    /// The line at fault (from 1), when one is.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn at(line: usize, message: impl Into<String>) -> ExportError {
    ExportError { line: Some(line), message: message.into() }
}

/// The values of an export, by well (`B2`) and readout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReaderExport {
    values: BTreeMap<(String, Readout), f64>,
}

/// A readout's name as a label or a long row gives it: `Viability`, `CellROX`, `Segmentation`,
/// `Cell count`, `BFP fraction` (case, spaces, dashes and underscores do not matter; a `Label:` prefix is
/// dropped).
pub fn readout_named(name: &str) -> Option<Readout> {
    let key: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let key = key.strip_prefix("label").unwrap_or(&key);
    Some(match key {
        "viability" => Readout::Viability,
        "cellrox" => Readout::CellRox,
        "segmentation" | "segmentationquality" => Readout::Segmentation,
        "cellcount" | "count" => Readout::CellCount,
        "bfp" | "bfpfraction" => Readout::BfpFraction,
        _ => return None,
    })
}

/// A readout's name in an export and in prompts.
pub fn readout_name(r: Readout) -> &'static str {
    match r {
        Readout::Viability => "viability",
        Readout::CellRox => "CellROX",
        Readout::Segmentation => "segmentation",
        Readout::CellCount => "cell count",
        Readout::BfpFraction => "BFP fraction",
    }
}

const READOUTS: &str = "viability, CellROX, segmentation, cell count or BFP fraction";

/// `B2`, `b02` → `B2`; `None` when not a well of a 96-well plate.
fn well_named(name: &str) -> Option<String> {
    let name = name.trim();
    let mut chars = name.chars();
    let row = chars.next()?.to_ascii_uppercase();
    let column: u8 = chars.as_str().parse().ok()?;
    (ROWS.contains(&(row as u8)) && (1..=COLUMNS).contains(&column)).then(|| format!("{row}{column}"))
}

fn cells(line: &str) -> Vec<&str> {
    let sep = if line.contains('\t') {
        '\t'
    } else if line.contains(';') && !line.contains(',') {
        ';'
    } else {
        ','
    };
    line.split(sep).map(|c| c.trim().trim_matches('"').trim()).collect()
}

fn number(line: usize, column: usize, text: &str) -> Result<f64, ExportError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(at(line, format!("column {column}: `{text}` is not a number"))),
    }
}

impl ReaderExport {
    /// Reads an export in either layout.
    pub fn parse(text: &str) -> Result<ReaderExport, ExportError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<(usize, Vec<&str>)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, cells(l)))
            .filter(|(_, c)| c.iter().any(|x| !x.is_empty()))
            .collect();
        let Some((_, first)) = lines.first() else {
            return Err(ExportError { line: None, message: "the file is empty".into() });
        };
        let header: Vec<String> = first.iter().map(|c| c.to_ascii_lowercase()).collect();
        let export =
            if header == ["well", "readout", "value"] { Self::long(&lines[1..])? } else { Self::grid(&lines)? };
        if export.values.is_empty() {
            return Err(ExportError { line: None, message: "the file holds no values".into() });
        }
        Ok(export)
    }

    fn long(rows: &[(usize, Vec<&str>)]) -> Result<ReaderExport, ExportError> {
        let mut e = ReaderExport::default();
        for (n, c) in rows {
            let [well, readout, value] = c.as_slice() else {
                return Err(at(*n, format!("{} cells: a row is well, readout, value", c.len())));
            };
            let w = well_named(well).ok_or_else(|| at(*n, format!("`{well}` is not a well of a 96-well plate")))?;
            let r = readout_named(readout).ok_or_else(|| at(*n, format!("`{readout}` is not {READOUTS}")))?;
            let v = number(*n, 3, value)?;
            if e.values.insert((w.clone(), r), v).is_some() {
                return Err(at(*n, format!("a second {} value for {w}", readout_name(r))));
            }
        }
        Ok(e)
    }

    fn grid(lines: &[(usize, Vec<&str>)]) -> Result<ReaderExport, ExportError> {
        let mut e = ReaderExport::default();
        let mut k = 0;
        while k < lines.len() {
            // A label line: one cell naming a readout.
            let (n, c) = &lines[k];
            let label = c.iter().find(|x| !x.is_empty()).copied().unwrap_or_default();
            if c.iter().filter(|x| !x.is_empty()).count() != 1 {
                return Err(at(
                    *n,
                    format!("expected a label line naming a readout ({READOUTS}), found `{}`", c.join(",")),
                ));
            }
            let readout = readout_named(label).ok_or_else(|| at(*n, format!("`{label}` is not {READOUTS}")))?;
            if e.values.keys().any(|(_, r)| *r == readout) {
                return Err(at(*n, format!("a second {} block", readout_name(readout))));
            }
            // The header: 1 … 12 after a first cell.
            k += 1;
            let Some((hn, h)) = lines.get(k) else {
                return Err(at(*n, format!("the {} block has no header row 1 … 12", readout_name(readout))));
            };
            let columns: Vec<&str> = h.iter().skip(1).copied().collect::<Vec<_>>();
            let trimmed: Vec<&str> = columns.iter().rev().skip_while(|x| x.is_empty()).copied().collect();
            let expected: Vec<String> = (1..=COLUMNS).rev().map(|c| c.to_string()).collect();
            if trimmed != expected {
                return Err(at(*hn, format!("expected the header row ,1,2,…,12, found `{}`", h.join(","))));
            }
            // Rows A … H, in order; a block may stop early.
            k += 1;
            let mut next_row = 0;
            while let Some((rn, r)) = lines.get(k) {
                let Some(letter) = r.first().filter(|x| x.len() == 1 && x.as_bytes()[0].is_ascii_alphabetic()) else {
                    break;
                };
                let upper = letter.as_bytes()[0].to_ascii_uppercase();
                // A one-letter cell alone on its line is a label, not a row.
                if r.iter().skip(1).all(|x| x.is_empty()) && readout_named(letter).is_some() {
                    break;
                }
                if ROWS.get(next_row) != Some(&upper) {
                    let want = ROWS.get(next_row).map_or("no more rows".to_string(), |c| format!("row {}", *c as char));
                    return Err(at(*rn, format!("row `{letter}` out of place: expected {want}")));
                }
                if r.len() > 1 + usize::from(COLUMNS) && r[1 + usize::from(COLUMNS)..].iter().any(|x| !x.is_empty()) {
                    return Err(at(*rn, format!("{} values: a row has 12", r.len() - 1)));
                }
                for (col, text) in r.iter().enumerate().skip(1).take(usize::from(COLUMNS)) {
                    if text.is_empty() {
                        continue;
                    }
                    let v = number(*rn, col + 1, text)?;
                    e.values.insert((format!("{}{col}", upper as char), readout), v);
                }
                next_row += 1;
                k += 1;
            }
            if next_row == 0 {
                return Err(at(*hn, format!("the {} block has no rows A … H", readout_name(readout))));
            }
        }
        Ok(e)
    }

    /// The value of a well's readout, if the export has one.
    pub fn get(&self, well: &str, readout: Readout) -> Option<f64> {
        self.values.get(&(well_named(well)?, readout)).copied()
    }

    /// The values of `wells` × `readouts` (well by well, readouts in the order given), or an error naming
    /// the first one missing.
    pub fn require(&self, wells: &[String], readouts: &[Readout]) -> Result<Vec<Vec<f64>>, ExportError> {
        wells
            .iter()
            .map(|w| {
                readouts
                    .iter()
                    .map(|&r| {
                        self.get(w, r).ok_or_else(|| ExportError {
                            line: None,
                            message: format!("the export has no {} value for well {w}", readout_name(r)),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Writes values as a plate grid, a block per readout (what a test's operator uploads). Values are
    /// written in Rust's shortest form that reads back to the same number.
    pub fn grid_text(values: &[(String, Readout, f64)]) -> String {
        let mut out = String::new();
        let mut readouts: Vec<Readout> = Vec::new();
        for (_, r, _) in values {
            if !readouts.contains(r) {
                readouts.push(*r);
            }
        }
        for r in readouts {
            out += readout_name(r);
            out += "\n";
            for c in 1..=COLUMNS {
                out += &format!(",{c}");
            }
            out += "\n";
            for row in ROWS {
                out.push(*row as char);
                for c in 1..=COLUMNS {
                    let well = format!("{}{c}", *row as char);
                    out.push(',');
                    if let Some((.., v)) = values.iter().find(|(w, x, _)| *w == well && *x == r) {
                        out += &v.to_string();
                    }
                }
                out += "\n";
            }
            out += "\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(label: &str, rows: &[(&str, &[(usize, &str)])]) -> String {
        let mut s = format!("{label}\n,1,2,3,4,5,6,7,8,9,10,11,12\n");
        for (row, values) in rows {
            let mut cells = vec![String::new(); 12];
            for (c, v) in *values {
                cells[c - 1] = v.to_string();
            }
            s += &format!("{row},{}\n", cells.join(","));
        }
        s
    }

    #[test]
    fn a_plate_grid_with_a_block_per_readout() {
        let text = format!(
            "{}\n{}",
            grid("Viability", &[("A", &[]), ("B", &[(2, "0.98"), (3, "0.5")])]),
            grid("Label: CellROX", &[("A", &[(12, "1e3")])])
        );
        let e = ReaderExport::parse(&text).unwrap();
        assert_eq!(e.get("B2", Readout::Viability), Some(0.98));
        assert_eq!(e.get("b03", Readout::Viability), Some(0.5));
        assert_eq!(e.get("A12", Readout::CellRox), Some(1000.0));
        assert_eq!(e.get("B2", Readout::CellRox), None);
        let wells = vec!["B2".to_string(), "B3".to_string()];
        assert_eq!(e.require(&wells, &[Readout::Viability]).unwrap(), vec![vec![0.98], vec![0.5]]);
        assert_eq!(
            e.require(&wells, &[Readout::Viability, Readout::CellRox]).unwrap_err().to_string(),
            "the export has no CellROX value for well B2"
        );
        // Semicolons, CR LF and a byte-order mark, as a reader in a European locale writes.
        let eu = format!("\u{feff}{}", text.replace(',', ";").replace('\n', "\r\n"));
        assert_eq!(ReaderExport::parse(&eu).unwrap(), e);
    }

    #[test]
    fn the_long_layout_and_the_grid_writer_read_back_exactly() {
        let values = vec![
            ("B2".to_string(), Readout::Viability, 0.123_456_789_012_345_68),
            ("H12".to_string(), Readout::Segmentation, -1.5e-7),
            ("B2".to_string(), Readout::CellRox, 2345.678),
        ];
        let e = ReaderExport::parse(&ReaderExport::grid_text(&values)).unwrap();
        for (w, r, v) in &values {
            assert_eq!(e.get(w, *r).map(f64::to_bits), Some(v.to_bits()), "{w} {r:?}");
        }
        let long = ReaderExport::parse(
            "Well,Readout,Value\nB2,viability,0.123456789012345678\nH12,Segmentation,-1.5e-7\nB2,cellrox,2345.678\n",
        )
        .unwrap();
        assert_eq!(long, e);
    }

    #[test]
    fn every_fault_is_named_with_its_line() {
        let base = grid("Viability", &[("A", &[]), ("B", &[(2, "0.9")])]);
        for (text, message) in [
            (String::new(), "the file is empty".to_string()),
            ("Absorbance 600\n,1,2\n".into(), format!("line 1: `Absorbance 600` is not {READOUTS}")),
            (base.replace("0.9", "OVRFLW"), "line 4: column 3: `OVRFLW` is not a number".into()),
            (
                base.replace(",11,12", ",11"),
                "line 2: expected the header row ,1,2,…,12, found `,1,2,3,4,5,6,7,8,9,10,11`".into(),
            ),
            (base.replace("\nB,", "\nC,"), "line 4: row `C` out of place: expected row B".into()),
            (format!("{base}{base}"), "line 5: a second viability block".into()),
            ("Viability\n".into(), "line 1: the viability block has no header row 1 … 12".into()),
            (grid("Viability", &[("A", &[])]), "the file holds no values".into()),
            ("well,readout,value\nB2,viability\n".into(), "line 2: 2 cells: a row is well, readout, value".into()),
            ("well,readout,value\nB13,viability,1\n".into(), "line 2: `B13` is not a well of a 96-well plate".into()),
            ("well,readout,value\nB2,od600,1\n".into(), format!("line 2: `od600` is not {READOUTS}")),
            (
                "well,readout,value\nB2,viability,1\nB2,Viability,2\n".into(),
                "line 3: a second viability value for B2".into(),
            ),
            ("well,readout,value\nB2,viability,NaN\n".into(), "line 2: column 3: `NaN` is not a number".into()),
        ] {
            assert_eq!(ReaderExport::parse(&text).unwrap_err().to_string(), message, "{text}");
        }
    }
}
