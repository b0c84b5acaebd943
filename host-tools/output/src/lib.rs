//! How the cellos tools print.
//!
//! - People get tables and sentences ([`render`]), programs get JSON (`--json`); the same value feeds
//!   both, so the two never disagree.
//! - Numbers are rounded for display ([`num`]): `0.04863`, not `0.04862780510106822`; `2.3`, not
//!   `2.3000000000000003`. JSON keeps every digit.
//! - Both binaries end with the same exit codes ([`Exit`], documented by [`EXIT_CODES`] in `--help`).
//! - Standard output that its reader closed (`cellos results query | head`) ends the program quietly
//!   ([`print`], [`outln!`]), instead of a panic or an error message about a broken pipe.
//! - An error and its causes are printed once each ([`error_text`]): a cause whose text the message
//!   already holds is not repeated.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::Value;

/// How a command ended: the process's exit status.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done as asked.
    Done = 0,
    /// The operation failed (an instrument, a database, a full disk, a refused step), or `verify`
    /// found differences.
    Failed = 1,
    /// Bad usage or bad input: arguments, a missing or malformed file, settings, a name that does not
    /// exist.
    Usage = 2,
}

impl Exit {
    /// The status of an I/O error on a file the user named: a file that is not there, not readable or
    /// not valid is bad input; anything else (a full disk, a device error) is a failure.
    pub fn of_io(e: &std::io::Error) -> Exit {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound
            | K::PermissionDenied
            | K::InvalidData
            | K::InvalidInput
            | K::IsADirectory
            | K::NotADirectory
            | K::AlreadyExists => Exit::Usage,
            _ => Exit::Failed,
        }
    }

    /// The process exit code.
    pub fn code(self) -> std::process::ExitCode {
        std::process::ExitCode::from(self as u8)
    }
}

/// The exit codes, for the end of `--help`.
pub const EXIT_CODES: &str = "Exit status:
  0  done
  1  the operation failed (an instrument, a database, a full disk, a refused step) or verify found differences
  2  bad usage or bad input (arguments, a missing or malformed file, settings, a name that does not exist)";

/// Writes `text` to standard output. When the reader has gone away (a closed pipe), the program ends
/// quietly with status 0: what was asked for was cut short by the reader, not by a fault.
pub fn print(text: &str) -> std::io::Result<()> {
    print_bytes(text.as_bytes())
}

/// [`print`] for bytes that need not be text (an EVO trace re-emitted as raw frames).
pub fn print_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r,
    }
}

/// `println!` through [`print`]: ends quietly on a closed pipe, and an error to write otherwise ends
/// the program with status 1.
#[macro_export]
macro_rules! outln {
    () => { $crate::print_or_exit("\n") };
    ($($arg:tt)*) => { $crate::print_or_exit(&format!("{}\n", format_args!($($arg)*))) };
}

/// [`print`]; an error other than a closed pipe is reported and ends the program with status 1.
pub fn print_or_exit(text: &str) {
    if let Err(e) = print(text) {
        eprintln!("error: standard output: {e}");
        std::process::exit(Exit::Failed as i32);
    }
}

/// An error with its causes, each once: `cannot open /dev/x: No such file or directory`, not the same
/// operating-system text again after it.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text += ": ";
            text += &t;
        }
        cause = c.source();
    }
    text
}

/// A number for people: four significant digits, trailing zeros dropped, no exponent for lab-sized
/// values (`45.26`, `0.04863`, `2.3`, `12346`, `0`).
pub fn num(x: f64) -> String {
    let s = sig4(x);
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" { "0".into() } else { s }
}

/// A number with four significant digits, trailing zeros kept (`-0.5000`, `45.53`), no exponent for
/// lab-sized values: the fixed width a table column of like values wants.
pub fn sig4(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// A field name for people: `dose_uM` → `dose µM`, `duration_seconds` → `duration seconds`,
/// `p90_err_pct` → `p90 err %`.
pub fn label(key: &str) -> String {
    key.split('_')
        .map(|w| match w {
            "uM" | "um" => "µM",
            "uL" | "ul" => "µL",
            "mL" | "ml" => "mL",
            "pct" => "%",
            "id" => "id",
            w => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as a table cell or after `key:` — one line.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => num(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(scalar) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Array(items) => count(items.len(), "entry", "entries"),
        Value::Object(m) if m.values().all(scalar) => {
            m.iter().map(|(k, v)| format!("{} {}", label(k), cell(v))).collect::<Vec<_>>().join(", ")
        }
        Value::Object(m) => count(m.len(), "field", "fields"),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The widest a table cell is printed; longer text ends in `…`.
pub const CELL_WIDTH: usize = 40;

/// Rows of cells as an aligned table with a header and a rule; numbers are right-aligned.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let clip = |s: &str| -> String {
        if s.chars().count() > CELL_WIDTH {
            s.chars().take(CELL_WIDTH - 1).collect::<String>() + "…"
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| clip(c)).collect()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(header[i].chars().count())
        })
        .collect();
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            rows.iter().any(|r| !r[i].is_empty()) && rows.iter().all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok())
        })
        .collect();
    let line = |fields: &[String], out: &mut String| {
        let mut l = String::new();
        for (i, f) in fields.iter().enumerate() {
            let w = widths[i];
            let pad = w - f.chars().count();
            if i > 0 {
                l += "  ";
            }
            if numeric[i] {
                l += &" ".repeat(pad);
                l += f;
            } else {
                l += f;
                l += &" ".repeat(pad);
            }
        }
        *out += l.trim_end();
        out.push('\n');
    };
    let mut out = String::new();
    line(header, &mut out);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(), &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    out
}

/// A value for people:
/// - a list of records is a table (columns in the order the fields first appear);
/// - a record is `key: value` lines, then each of its nested lists and records under its own heading;
/// - numbers are rounded by [`num`], booleans are yes/no, and a list of plain values is comma-separated.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    render_into(v, 0, &mut out);
    out
}

fn render_into(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(rows) if rows.is_empty() => {
            let _ = writeln!(out, "{pad}(none)");
        }
        Value::Array(rows) if rows.iter().all(Value::is_object) => {
            let mut cols: Vec<&String> = Vec::new();
            for r in rows {
                for k in r.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !cols.contains(&k) {
                        cols.push(k);
                    }
                }
            }
            let header: Vec<String> = cols.iter().map(|c| label(c)).collect();
            let cells: Vec<Vec<String>> =
                rows.iter().map(|r| cols.iter().map(|c| cell(&r[c.as_str()])).collect()).collect();
            for l in table(&header, &cells).lines() {
                let _ = writeln!(out, "{pad}{l}");
            }
        }
        Value::Object(m) => {
            let flat: Vec<(&String, &Value)> = m.iter().filter(|(_, v)| inline(v)).collect();
            let w = flat.iter().map(|(k, _)| label(k).chars().count()).max().unwrap_or(0);
            for (k, v) in &flat {
                let k = label(k);
                let _ = writeln!(out, "{pad}{k:<w$}  {}", cell(v), w = w);
            }
            for (k, v) in m.iter().filter(|(_, v)| !inline(v)) {
                let _ = writeln!(out, "\n{pad}{}:", label(k));
                render_into(v, indent + 2, out);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", cell(other));
        }
    }
}

/// `v` with every record's fields in name order, so that its text does not depend on how the JSON
/// library that built it keeps fields (insertion order or sorted, a build-wide feature).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Whether a field of a record is printed on its `key: value` line (a plain value or a list of plain
/// values) rather than under its own heading.
fn inline(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().all(scalar),
        Value::Object(m) => m.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_for_people() {
        assert_eq!(num(0.048_627_805_101_068_22), "0.04863");
        assert_eq!(num(2.300_000_000_000_000_3), "2.3");
        assert_eq!(num(45.2634), "45.26");
        assert_eq!(num(12_345.6), "12346");
        assert_eq!(num(24.0), "24");
        assert_eq!(num(-0.5), "-0.5");
        assert_eq!(num(-0.000_000_01), "0");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(cell(&json!(9632.366486756968)), "9632");
        assert_eq!(cell(&json!(528)), "528");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(cell(&json!(["U2OS", "HepG2"])), "U2OS, HepG2");
        assert_eq!(cell(&json!({"lo_uM": 1.25, "n": 3})), "lo µM 1.25, n 3");
    }

    #[test]
    fn labels() {
        assert_eq!(label("dose_uM"), "dose µM");
        assert_eq!(label("p90_err_pct"), "p90 err %");
        assert_eq!(label("campaign_id"), "campaign id");
    }

    #[test]
    fn a_record_with_a_nested_list_prints_as_lines_then_a_table() {
        let v = json!({
            "lines": ["HepG2", "U2OS"],
            "measurements": 528,
            "by_line": [
                {"cell_line": "HepG2", "max_dose_uM": 3000.0, "mean": 0.951_220_144},
                {"cell_line": "U2OS", "max_dose_uM": 12.5, "mean": null},
            ],
        });
        assert_eq!(
            render(&v),
            "lines         HepG2, U2OS\nmeasurements  528\n\nby line:\n  cell line  max dose µM    mean\n  \
             ---------  -----------  ------\n  HepG2             3000  0.9512\n  U2OS              12.5\n"
        );
    }

    #[test]
    fn long_cells_are_clipped_and_empty_lists_say_so() {
        let long = "x".repeat(60);
        let t = render(&json!([{ "note": long }]));
        let row = t.lines().nth(2).unwrap();
        assert_eq!(row.chars().count(), CELL_WIDTH);
        assert!(row.ends_with('…'));
        assert_eq!(render(&json!([])), "(none)\n");
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot open /dev/x: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_told_is_not_repeated() {
        let e = Outer(std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"));
        assert_eq!(error_text(&e), "cannot open /dev/x: No such file or directory");
        assert_eq!(Exit::of_io(&e.0), Exit::Usage);
        assert_eq!(Exit::of_io(&std::io::Error::from(std::io::ErrorKind::StorageFull)), Exit::Failed);
    }
}
