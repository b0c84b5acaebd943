//! Simulation parameters: `simulation_parameters.yaml` ↔ `simulation_params.db`.
//!
//! Shape: `cell_lines: {LINE: {doubling_time_h, …, coating_required?}}`, `compound_sensitivity: {COMPOUND:
//! {description?, LINE: ic50, …, hill_slope, cellrox_params?: {LINE: {…}}, segmentation_params?: {LINE:
//! {…}}}}`, `defaults: {NAME: value}`. Cell-line parameters are versioned: an import or `params set` that
//! changes a line closes its current version (`valid_to`) and opens the next; history is kept.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Map, Value, json};

use super::{Kind, Summary, begin, read_text, sha256};
use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::yaml;

/// The numeric fields of a cell line, in the legacy order.
pub const LINE_FIELDS: [&str; 9] = [
    "doubling_time_h",
    "max_confluence",
    "max_passage",
    "senescence_rate",
    "seeding_efficiency",
    "passage_stress",
    "cell_count_cv",
    "viability_cv",
    "biological_cv",
];

/// The fields of a CellROX set.
pub const CELLROX_FIELDS: [&str; 4] = ["ec50_uM", "max_fold", "baseline", "hill_slope"];
/// The fields of a segmentation set.
pub const SEGMENTATION_FIELDS: [&str; 3] = ["degradation_ic50_uM", "min_quality", "hill_slope"];

/// One cell line's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct LineParams {
    /// The nine numbers of [`LINE_FIELDS`].
    pub values: [f64; 9],
    /// `coating_required`, when the source says.
    pub coating_required: Option<bool>,
}

/// One compound.
#[derive(Clone, Debug, PartialEq)]
pub struct Compound {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Hill slope.
    pub hill_slope: f64,
    /// (line, IC50 µM), in source order.
    pub ic50: Vec<(String, f64)>,
    /// (line, [EC50, max fold, baseline, hill]).
    pub cellrox: Vec<(String, [f64; 4])>,
    /// (line, [IC50, min quality, hill]).
    pub segmentation: Vec<(String, [f64; 3])>,
}

/// A parameters file, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamsSource {
    /// Lines in source order.
    pub lines: Vec<(String, LineParams)>,
    /// Compounds in source order.
    pub compounds: Vec<Compound>,
    /// Defaults in source order.
    pub defaults: Vec<(String, f64)>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &[&str], message: impl Into<String>) -> StoreError {
        let location = yaml::locate(self.text, path).map_or_else(|| "start".to_string(), |l| format!("line {l}"));
        StoreError::input(self.file, location, format!("{}: {}", path.join("."), message.into()))
    }

    fn map<'v>(&self, v: &'v Value, path: &[&str]) -> Result<&'v Map<String, Value>> {
        v.as_object().ok_or_else(|| self.err(path, format!("expected a mapping, found {}", kind_of(v))))
    }

    fn num(&self, v: Option<&Value>, path: &[&str]) -> Result<f64> {
        let v = v.ok_or_else(|| self.err(&path[..path.len() - 1], format!("missing `{}`", path[path.len() - 1])))?;
        let x = v.as_f64().ok_or_else(|| self.err(path, format!("expected a number, found {}", kind_of(v))))?;
        if !x.is_finite() {
            return Err(self.err(path, "not a finite number"));
        }
        Ok(x)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses and checks a parameters file's value (`text` locates errors).
pub fn parse(file: &str, text: &str, v: &Value) -> Result<ParamsSource> {
    let c = Ctx { file, text };
    let top = c.map(v, &[])?;
    for k in top.keys() {
        if !matches!(k.as_str(), "cell_lines" | "compound_sensitivity" | "defaults") {
            return Err(c.err(&[k], "unknown section (cell_lines, compound_sensitivity, defaults)"));
        }
    }
    let mut lines = Vec::new();
    if let Some(cl) = top.get("cell_lines") {
        for (name, entry) in c.map(cl, &["cell_lines"])? {
            let m = c.map(entry, &["cell_lines", name])?;
            let mut values = [0.0; 9];
            for (i, f) in LINE_FIELDS.iter().enumerate() {
                let path = ["cell_lines", name.as_str(), f];
                values[i] = c.num(m.get(*f), &path)?;
                if *f == "max_passage" && (values[i].fract() != 0.0 || values[i] < 0.0) {
                    return Err(c.err(&path, "expected a whole number of passages"));
                }
                if matches!(*f, "doubling_time_h" | "max_confluence") && values[i] <= 0.0 {
                    return Err(c.err(&path, "must be positive"));
                }
                if values[i] < 0.0 {
                    return Err(c.err(&path, "must not be negative"));
                }
            }
            let coating_required = match m.get("coating_required") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    return Err(c.err(
                        &["cell_lines", name, "coating_required"],
                        format!("expected true or false, found {}", kind_of(other)),
                    ));
                }
            };
            for k in m.keys() {
                if !LINE_FIELDS.contains(&k.as_str()) && k != "coating_required" {
                    return Err(c.err(&["cell_lines", name, k], "unknown field"));
                }
            }
            lines.push((name.clone(), LineParams { values, coating_required }));
        }
    }
    let mut compounds = Vec::new();
    if let Some(cs) = top.get("compound_sensitivity") {
        for (name, entry) in c.map(cs, &["compound_sensitivity"])? {
            let m = c.map(entry, &["compound_sensitivity", name])?;
            let mut comp = Compound {
                name: name.clone(),
                description: None,
                hill_slope: c.num(m.get("hill_slope"), &["compound_sensitivity", name, "hill_slope"])?,
                ic50: Vec::new(),
                cellrox: Vec::new(),
                segmentation: Vec::new(),
            };
            if comp.hill_slope <= 0.0 {
                return Err(c.err(&["compound_sensitivity", name, "hill_slope"], "must be positive"));
            }
            for (k, val) in m {
                let path = ["compound_sensitivity", name.as_str(), k.as_str()];
                match k.as_str() {
                    "hill_slope" => {}
                    "description" => {
                        comp.description = Some(val.as_str().ok_or_else(|| c.err(&path, "expected text"))?.to_string());
                    }
                    "cellrox_params" => {
                        for (line, set) in c.map(val, &path)? {
                            let s = c.map(set, &[path[0], path[1], path[2], line])?;
                            let mut a = [0.0; 4];
                            for (i, f) in CELLROX_FIELDS.iter().enumerate() {
                                a[i] = c.num(s.get(*f), &[path[0], path[1], path[2], line, f])?;
                            }
                            comp.cellrox.push((line.clone(), a));
                        }
                    }
                    "segmentation_params" => {
                        for (line, set) in c.map(val, &path)? {
                            let s = c.map(set, &[path[0], path[1], path[2], line])?;
                            let mut a = [0.0; 3];
                            for (i, f) in SEGMENTATION_FIELDS.iter().enumerate() {
                                a[i] = c.num(s.get(*f), &[path[0], path[1], path[2], line, f])?;
                            }
                            comp.segmentation.push((line.clone(), a));
                        }
                    }
                    line => {
                        let ic50 = c.num(Some(val), &path)?;
                        if ic50 <= 0.0 {
                            return Err(c.err(&path, "an IC50 must be positive"));
                        }
                        comp.ic50.push((line.to_string(), ic50));
                    }
                }
            }
            compounds.push(comp);
        }
    }
    let mut defaults = Vec::new();
    if let Some(d) = top.get("defaults") {
        for (name, val) in c.map(d, &["defaults"])? {
            defaults.push((name.clone(), c.num(Some(val), &["defaults", name])?));
        }
    }
    Ok(ParamsSource { lines, compounds, defaults })
}

fn load(path: &Path) -> Result<(String, ParamsSource, Vec<String>)> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let (value, warnings) = yaml::load(&file, &text)?;
    let parsed = parse(&file, &text, &value)?;
    Ok((text, parsed, warnings))
}

/// The source's value (after checking it).
pub fn source_value(path: &Path) -> Result<Value> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let (value, _) = yaml::load(&file, &text)?;
    parse(&file, &text, &value)?;
    Ok(value)
}

/// The current parameters of a line in `tx` (id, version, values, coating).
fn current(tx: &rusqlite::Connection, line: &str) -> Result<Option<(i64, i64, LineParams)>> {
    Ok(tx
        .query_row(
            "SELECT param_id, version, doubling_time_h, max_confluence, max_passage, senescence_rate, seeding_efficiency, \
             passage_stress, cell_count_cv, viability_cv, biological_cv, coating_required \
             FROM cell_line_params WHERE cell_line_id = ?1 AND valid_to IS NULL",
            [line],
            |r| {
                let mut values = [0.0; 9];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = r.get::<_, f64>(2 + i)?;
                }
                Ok((r.get(0)?, r.get(1)?, LineParams { values, coating_required: r.get::<_, Option<bool>>(11)? }))
            },
        )
        .optional()?)
}

/// Writes a new current version of a line (closing the old one) unless it is unchanged. Returns whether
/// a version was written.
pub fn put_line(tx: &Transaction<'_>, line: &str, p: &LineParams, notes: &str, import_id: Option<i64>) -> Result<bool> {
    let now = crate::time::now();
    let version = match current(tx, line)? {
        Some((_, _, old)) if old == *p => return Ok(false),
        Some((id, v, _)) => {
            tx.execute("UPDATE cell_line_params SET valid_to = ?1 WHERE param_id = ?2", params![now, id])?;
            v + 1
        }
        None => 1,
    };
    let v = &p.values;
    tx.execute(
        "INSERT INTO cell_line_params (cell_line_id, version, doubling_time_h, max_confluence, max_passage, senescence_rate, \
         seeding_efficiency, passage_stress, cell_count_cv, viability_cv, biological_cv, coating_required, valid_from, notes, import_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![line, version, v[0], v[1], v[2] as i64, v[3], v[4], v[5], v[6], v[7], v[8], p.coating_required, now, notes, import_id],
    )?;
    Ok(true)
}

/// Writes a new current version of a (compound, line) row of `table` unless its values are unchanged:
/// the current version is closed (`valid_to`) and the next one opened. Returns whether a row was written.
fn put_versioned(
    tx: &Transaction<'_>,
    table: &str,
    key: [&str; 2],
    values: &[(&str, f64)],
    extra: &[(&str, SqlValue)],
    now: &str,
) -> Result<bool> {
    let cols: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
    let old: Option<(i64, i64, Vec<f64>)> = tx
        .query_row(
            &format!("SELECT rowid, version, {} FROM {table} WHERE compound_name = ?1 AND cell_line_id = ?2 AND valid_to IS NULL", cols.join(", ")),
            params![key[0], key[1]],
            |r| Ok((r.get(0)?, r.get(1)?, (0..cols.len()).map(|i| r.get(2 + i)).collect::<rusqlite::Result<Vec<f64>>>()?)),
        )
        .optional()?;
    let version = match old {
        Some((_, _, ref o)) if o.iter().zip(values).all(|(a, (_, b))| a == b) => return Ok(false),
        Some((id, v, _)) => {
            tx.execute(&format!("UPDATE {table} SET valid_to = ?1 WHERE rowid = ?2"), params![now, id])?;
            v + 1
        }
        None => 1,
    };
    let mut names = vec!["compound_name", "cell_line_id", "version", "valid_from"];
    let text = |s: &str| SqlValue::Text(s.to_string());
    let mut args: Vec<SqlValue> = vec![text(key[0]), text(key[1]), version.into(), text(now)];
    for (c, v) in values {
        names.push(c);
        args.push((*v).into());
    }
    for (c, v) in extra {
        names.push(c);
        args.push(v.clone());
    }
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    tx.execute(
        &format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), marks.join(", ")),
        rusqlite::params_from_iter(args),
    )?;
    Ok(true)
}

/// Imports a parameters file.
pub fn import(store: &mut Store, path: &Path) -> Result<Summary> {
    let (text, src, warnings) = load(path)?;
    let mut summary = Summary::new(Kind::Params, path);
    summary.warnings = warnings;
    let tx = store.params.transaction()?;
    let Some(import_id) = begin(&tx, Kind::Params, &summary.source, &sha256(text.as_bytes()))? else {
        summary.already_imported = true;
        return Ok(summary);
    };
    let notes = format!("imported from {}", path.display());
    for (line, p) in &src.lines {
        if put_line(&tx, line, p, &notes, Some(import_id))? {
            summary.add("cell_line_params", 1);
        }
    }
    let now = crate::time::now();
    for (ci, c) in src.compounds.iter().enumerate() {
        tx.execute(
            "INSERT INTO compounds (compound_name, hill_slope, description, position) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (compound_name) DO UPDATE SET hill_slope = excluded.hill_slope, description = excluded.description",
            params![c.name, c.hill_slope, c.description, ci as i64],
        )?;
        for (i, (line, ic50)) in c.ic50.iter().enumerate() {
            let extra: [(&str, SqlValue); 3] = [
                ("source", SqlValue::Text("literature".into())),
                ("notes", SqlValue::Text(notes.clone())),
                ("position", (i as i64).into()),
            ];
            if put_versioned(
                &tx,
                "compound_sensitivity",
                [&c.name, line],
                &[("ic50_um", *ic50), ("hill_slope", c.hill_slope)],
                &extra,
                &now,
            )? {
                summary.add("compound_sensitivity", 1);
            }
        }
        for (i, (line, s)) in c.cellrox.iter().enumerate() {
            let values = [("ec50_um", s[0]), ("max_fold", s[1]), ("baseline_au", s[2]), ("hill_slope", s[3])];
            if put_versioned(&tx, "cellrox_params", [&c.name, line], &values, &[("position", (i as i64).into())], &now)?
            {
                summary.add("cellrox_params", 1);
            }
        }
        for (i, (line, s)) in c.segmentation.iter().enumerate() {
            let values = [("degradation_ic50_um", s[0]), ("min_quality", s[1]), ("hill_slope", s[2])];
            if put_versioned(
                &tx,
                "segmentation_params",
                [&c.name, line],
                &values,
                &[("position", (i as i64).into())],
                &now,
            )? {
                summary.add("segmentation_params", 1);
            }
        }
    }
    for (i, (name, value)) in src.defaults.iter().enumerate() {
        let n = tx.execute(
            "INSERT INTO default_params (param_name, param_value, position) VALUES (?1, ?2, ?3) \
             ON CONFLICT (param_name) DO UPDATE SET param_value = excluded.param_value WHERE param_value <> excluded.param_value",
            params![name, value, i as i64],
        )?;
        summary.add("default_params", n as u64);
    }
    tx.commit()?;
    Ok(summary)
}

/// The database's current parameters in the file's shape.
pub fn export_value(store: &Store) -> Result<Value> {
    let c = &store.params;
    let mut lines = Map::new();
    let mut st = c.prepare(
        "SELECT cell_line_id, doubling_time_h, max_confluence, max_passage, senescence_rate, seeding_efficiency, passage_stress, \
         cell_count_cv, viability_cv, biological_cv, coating_required FROM cell_line_params WHERE valid_to IS NULL ORDER BY param_id",
    )?;
    let rows = st.query_map([], |r| {
        let mut m = Map::new();
        for (i, f) in LINE_FIELDS.iter().enumerate() {
            let v = if *f == "max_passage" { json!(r.get::<_, i64>(1 + i)?) } else { json!(r.get::<_, f64>(1 + i)?) };
            m.insert((*f).to_string(), v);
        }
        if let Some(b) = r.get::<_, Option<bool>>(10)? {
            m.insert("coating_required".into(), json!(b));
        }
        Ok((r.get::<_, String>(0)?, Value::Object(m)))
    })?;
    for row in rows {
        let (k, v) = row?;
        lines.insert(k, v);
    }
    let mut compounds = Map::new();
    let mut st = c.prepare("SELECT compound_name, hill_slope, description FROM compounds ORDER BY position")?;
    let list: Vec<(String, f64, Option<String>)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    for (name, hill, description) in list {
        let mut m = Map::new();
        if let Some(d) = description {
            m.insert("description".into(), json!(d));
        }
        let mut st = c.prepare("SELECT cell_line_id, ic50_um FROM compound_sensitivity WHERE compound_name = ?1 AND valid_to IS NULL ORDER BY position")?;
        for row in st.query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))? {
            let (line, ic50) = row?;
            m.insert(line, json!(ic50));
        }
        m.insert("hill_slope".into(), json!(hill));
        let mut cellrox = Map::new();
        let mut st = c.prepare("SELECT cell_line_id, ec50_um, max_fold, baseline_au, hill_slope FROM cellrox_params WHERE compound_name = ?1 AND valid_to IS NULL ORDER BY position")?;
        for row in st.query_map([&name], |r| {
            Ok((r.get::<_, String>(0)?, [r.get::<_, f64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })? {
            let (line, a) = row?;
            cellrox.insert(
                line,
                Value::Object(CELLROX_FIELDS.iter().zip(a).map(|(f, x)| ((*f).to_string(), json!(x))).collect()),
            );
        }
        if !cellrox.is_empty() {
            m.insert("cellrox_params".into(), Value::Object(cellrox));
        }
        let mut seg = Map::new();
        let mut st = c.prepare("SELECT cell_line_id, degradation_ic50_um, min_quality, hill_slope FROM segmentation_params WHERE compound_name = ?1 AND valid_to IS NULL ORDER BY position")?;
        for row in
            st.query_map([&name], |r| Ok((r.get::<_, String>(0)?, [r.get::<_, f64>(1)?, r.get(2)?, r.get(3)?])))?
        {
            let (line, a) = row?;
            seg.insert(
                line,
                Value::Object(SEGMENTATION_FIELDS.iter().zip(a).map(|(f, x)| ((*f).to_string(), json!(x))).collect()),
            );
        }
        if !seg.is_empty() {
            m.insert("segmentation_params".into(), Value::Object(seg));
        }
        compounds.insert(name, Value::Object(m));
    }
    let mut defaults = Map::new();
    let mut st = c.prepare("SELECT param_name, param_value FROM default_params ORDER BY position")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))? {
        let (k, v) = row?;
        defaults.insert(k, json!(v));
    }
    let mut top = Map::new();
    top.insert("cell_lines".into(), Value::Object(lines));
    top.insert("compound_sensitivity".into(), Value::Object(compounds));
    top.insert("defaults".into(), Value::Object(defaults));
    Ok(Value::Object(top))
}
