//! Field-by-field comparison of a source with the database.
//!
//! Both sides are JSON values of one shape (see [`crate::kinds`]). Each is flattened to `path → leaf`
//! (`cell_lines.HEK293T.doubling_time_h`, `[527].viability_norm`); every path is compared, not a sample
//! and not counts. Numbers compare as numbers (`24` equals `24.0`); a `null` leaf counts as absent.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::Result;
use crate::kinds::{Kind, results};
use crate::store::Store;

/// One field that differs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Difference {
    /// Where.
    pub path: String,
    /// The source's value (`None`: not in the source).
    pub source: Option<Value>,
    /// The database's value (`None`: not in the database).
    pub database: Option<Value>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_string(), Value::to_string);
        write!(f, "{}: source {}, database {}", self.path, show(&self.source), show(&self.database))
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// Fields compared.
    pub fields: usize,
    /// Those that differ.
    pub differences: Vec<Difference>,
}

/// Flattens a value to leaves (nulls left out).
pub fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}[{i}]"), out);
                }
            }
            Value::Null => {}
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Compares two values field by field.
pub fn compare(source: &Value, database: &Value) -> Report {
    let mut c = Comparison::default();
    c.record(&flatten(source), &flatten(database));
    c.report()
}

/// A comparison made a record at a time, for sources too large to hold whole: the records' leaves go
/// in and only the differences are kept. Its report is [`compare`]'s of the whole values (the same
/// fields, the same differences in the same order) when the records' paths do not overlap.
#[derive(Default)]
pub struct Comparison {
    source_fields: usize,
    database_fields: usize,
    /// Paths the source has whose database value differs or is absent.
    differing: Vec<Difference>,
    /// Paths only the database has.
    database_only: Vec<Difference>,
}

impl Comparison {
    /// One record's leaves on each side (empty where the record is not on that side).
    pub fn record(&mut self, source: &BTreeMap<String, Value>, database: &BTreeMap<String, Value>) {
        for (k, v) in source {
            self.field(|| k.clone(), Some(v), database.get(k));
        }
        for (k, w) in database.iter().filter(|(k, _)| !source.contains_key(*k)) {
            self.field(|| k.clone(), None, Some(w));
        }
    }

    /// One field: its values on each side (`None`: absent, as a `null` is); `path` is asked for only
    /// when they differ.
    pub fn field(&mut self, path: impl FnOnce() -> String, source: Option<&Value>, database: Option<&Value>) {
        let (source, database) = (source.filter(|v| !v.is_null()), database.filter(|v| !v.is_null()));
        self.source_fields += usize::from(source.is_some());
        self.database_fields += usize::from(database.is_some());
        let kept = match (source, database) {
            (Some(v), Some(w)) if same(v, w) => return,
            (None, None) => return,
            (Some(_), _) => &mut self.differing,
            (None, Some(_)) => &mut self.database_only,
        };
        kept.push(Difference { path: path(), source: source.cloned(), database: database.cloned() });
    }

    /// The report: the source's paths that differ, then the database's own, each in path order.
    pub fn report(mut self) -> Report {
        self.differing.sort_by(|a, b| a.path.cmp(&b.path));
        self.database_only.sort_by(|a, b| a.path.cmp(&b.path));
        self.differing.append(&mut self.database_only);
        Report { fields: self.source_fields.max(self.database_fields), differences: self.differing }
    }
}

/// The path as the results importer records it.
pub fn source_name(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// Verifies a source against the database.
pub fn verify(store: &Store, kind: Kind, path: &Path) -> Result<Report> {
    if kind == Kind::Results {
        // Measurements stream, a row of each side at a time: memory holds the differences only.
        return results::verify(store, path);
    }
    Ok(compare(&kind.source_value(path)?, &kind.export_value(store)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_compared() {
        let a = json!({"x": {"a": 1, "b": [1.5, "t"]}, "n": null});
        let b = json!({"x": {"a": 1.0, "b": [1.5, "u"], "c": true}});
        let r = compare(&a, &b);
        assert_eq!(r.fields, 4);
        assert_eq!(r.differences.len(), 2);
        assert_eq!(r.differences[0].to_string(), "x.b[1]: source \"t\", database \"u\"");
        assert_eq!(r.differences[1].to_string(), "x.c: source (absent), database true");
    }
}
