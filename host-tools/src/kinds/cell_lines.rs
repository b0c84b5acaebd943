//! Cell lines: `cell_lines.yaml` ↔ `cell_lines.db`.
//!
//! A line's `profile` gives the columns `cell_type`, `coating_required`, `coating_reagent`, `cost_tier`
//! and, for every other field, a characteristic (10 per line in the legacy file). Sections whose value
//! maps vessels to settings (`passage`, `thaw`, `feed`, …) give one protocol per vessel, their
//! `reference_vessel` marked (the legacy schema dropped it). The `coating` block and any other field are
//! kept as JSON, so the export rebuilds the file's shape without loss.

use std::path::Path;

use rusqlite::params;
use serde_json::{Map, Value, json};

use super::{Kind, Summary, begin, read_text, sha256};
use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::yaml;

const COLUMNS: [&str; 4] = ["display_name", "growth_media", "wash_buffer", "detach_reagent"];
const PROFILE_COLUMNS: [&str; 4] = ["cell_type", "coating_required", "coating_reagent", "cost_tier"];

/// One line, checked and split into rows.
struct Line {
    id: String,
    columns: [Option<String>; 4],
    cell_type: String,
    coating_required: Option<bool>,
    coating_reagent: Option<String>,
    cost_tier: Option<String>,
    coating: Option<String>,
    extra: Option<String>,
    characteristics: Vec<(String, String, &'static str)>,
    protocols: Vec<(String, String, String, bool)>,
}

fn err(file: &str, text: &str, path: &[&str], message: impl Into<String>) -> StoreError {
    let location = yaml::locate(text, path).map_or_else(|| "start".to_string(), |l| format!("line {l}"));
    StoreError::input(file, location, format!("{}: {}", path.join("."), message.into()))
}

fn parse(file: &str, text: &str, v: &Value) -> Result<Vec<Line>> {
    let top = v.as_object().ok_or_else(|| err(file, text, &[], "expected a mapping with `cell_lines`"))?;
    if let Some(k) = top.keys().find(|k| *k != "cell_lines") {
        return Err(err(file, text, &[k], "unknown section (cell_lines)"));
    }
    let lines = top
        .get("cell_lines")
        .and_then(Value::as_object)
        .ok_or_else(|| err(file, text, &["cell_lines"], "expected a mapping of cell lines"))?;
    let mut out = Vec::new();
    for (id, entry) in lines {
        let e = |path: &[&str], m: &str| {
            let mut p = vec!["cell_lines", id.as_str()];
            p.extend_from_slice(path);
            err(file, text, &p, m)
        };
        let m = entry.as_object().ok_or_else(|| e(&[], "expected a mapping"))?;
        let text_field = |k: &str, required: bool| -> Result<Option<String>> {
            match m.get(k) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None if !required => Ok(None),
                None => Err(e(&[], &format!("missing `{k}`"))),
                Some(other) => Err(e(&[k], &format!("expected text, found {other}"))),
            }
        };
        let columns = [
            text_field("display_name", true)?,
            text_field("growth_media", true)?,
            text_field("wash_buffer", false)?,
            text_field("detach_reagent", false)?,
        ];
        let profile = m.get("profile").and_then(Value::as_object).ok_or_else(|| e(&[], "missing `profile` mapping"))?;
        let cell_type = profile
            .get("cell_type")
            .and_then(Value::as_str)
            .ok_or_else(|| e(&["profile"], "missing `cell_type` text"))?
            .to_string();
        let coating_required = match profile.get("coating_required") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(e(&["profile", "coating_required"], &format!("expected true or false, found {other}")));
            }
        };
        let opt_text = |k: &str| -> Result<Option<String>> {
            match profile.get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(e(&["profile", k], &format!("expected text, found {other}"))),
            }
        };
        let (coating_reagent, cost_tier) = (opt_text("coating_reagent")?, opt_text("cost_tier")?);
        let characteristics = profile
            .iter()
            .filter(|(k, _)| !PROFILE_COLUMNS.contains(&k.as_str()))
            .map(|(k, v)| match v {
                Value::String(s) => (k.clone(), s.clone(), "text"),
                other => (k.clone(), other.to_string(), "json"),
            })
            .collect();
        let mut protocols = Vec::new();
        let mut extra = Map::new();
        for (k, v) in m {
            if COLUMNS.contains(&k.as_str()) || k == "profile" || k == "coating" {
                continue;
            }
            match v.as_object() {
                Some(section) if section.values().any(Value::is_object) => {
                    let reference = section.get("reference_vessel").and_then(Value::as_str);
                    for (vessel, settings) in section {
                        if vessel == "reference_vessel" {
                            continue;
                        }
                        if !settings.is_object() {
                            return Err(e(&[k, vessel], "expected the vessel's settings as a mapping"));
                        }
                        protocols.push((
                            k.clone(),
                            vessel.clone(),
                            settings.to_string(),
                            reference == Some(vessel.as_str()),
                        ));
                    }
                    if let Some(r) = reference
                        && !section.contains_key(r)
                    {
                        return Err(e(&[k, "reference_vessel"], &format!("reference vessel `{r}` has no settings")));
                    }
                }
                _ => {
                    extra.insert(k.clone(), v.clone());
                }
            }
        }
        out.push(Line {
            id: id.clone(),
            columns,
            cell_type,
            coating_required,
            coating_reagent,
            cost_tier,
            coating: m.get("coating").map(Value::to_string),
            extra: (!extra.is_empty()).then(|| Value::Object(extra).to_string()),
            characteristics,
            protocols,
        });
    }
    Ok(out)
}

fn load(path: &Path) -> Result<(String, Value, Vec<String>)> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let (value, warnings) = yaml::load(&file, &text)?;
    parse(&file, &text, &value)?;
    Ok((text, value, warnings))
}

/// The source's value (after checking it).
pub fn source_value(path: &Path) -> Result<Value> {
    Ok(load(path)?.1)
}

/// Imports a cell-lines file.
pub fn import(store: &mut Store, path: &Path) -> Result<Summary> {
    let file = path.display().to_string();
    let (text, value, warnings) = load(path)?;
    let lines = parse(&file, &text, &value)?;
    let mut summary = Summary::new(Kind::CellLines, path);
    summary.warnings = warnings;
    let tx = store.lines.transaction()?;
    if begin(&tx, Kind::CellLines, &summary.source, &sha256(text.as_bytes()))?.is_none() {
        summary.already_imported = true;
        return Ok(summary);
    }
    let now = crate::time::now();
    let base: i64 = tx.query_row("SELECT coalesce(max(position) + 1, 0) FROM cell_lines", [], |r| r.get(0))?;
    for (i, l) in lines.iter().enumerate() {
        let exists: bool = tx
            .query_row("SELECT count(*) FROM cell_lines WHERE cell_line_id = ?1", [&l.id], |r| r.get::<_, i64>(0))?
            > 0;
        if exists {
            return Err(StoreError::input(
                &file,
                format!("line {}", yaml::locate(&text, &["cell_lines", &l.id]).unwrap_or(0)),
                format!("cell line `{}` is already in the database (from another source)", l.id),
            ));
        }
        tx.execute(
            "INSERT INTO cell_lines (cell_line_id, display_name, cell_type, growth_media, wash_buffer, detach_reagent, coating_required, \
             coating_reagent, cost_tier, coating, extra, position, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
            params![l.id, l.columns[0], l.cell_type, l.columns[1], l.columns[2], l.columns[3], l.coating_required, l.coating_reagent, l.cost_tier, l.coating, l.extra, base + i as i64, now],
        )?;
        summary.add("cell_lines", 1);
        for (j, (k, v, kind)) in l.characteristics.iter().enumerate() {
            tx.execute(
                "INSERT INTO cell_line_characteristics (cell_line_id, characteristic, value, value_kind, position) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![l.id, k, v, kind, j as i64],
            )?;
            summary.add("cell_line_characteristics", 1);
        }
        for (j, (ptype, vessel, settings, reference)) in l.protocols.iter().enumerate() {
            tx.execute(
                "INSERT INTO cell_line_protocols (cell_line_id, protocol_type, vessel_type, parameters, is_reference, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![l.id, ptype, vessel, settings, reference, j as i64],
            )?;
            summary.add("cell_line_protocols", 1);
        }
    }
    tx.commit()?;
    Ok(summary)
}

fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// The database's cell lines in the file's shape.
pub fn export_value(store: &Store) -> Result<Value> {
    let c = &store.lines;
    let mut lines = Map::new();
    let mut st = c.prepare(
        "SELECT cell_line_id, display_name, growth_media, wash_buffer, detach_reagent, cell_type, coating_required, coating_reagent, \
         cost_tier, coating, extra FROM cell_lines ORDER BY position",
    )?;
    type Row = (
        String,
        [Option<String>; 4],
        String,
        Option<bool>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, cols, cell_type, coating_required, coating_reagent, cost_tier, coating, extra) in rows {
        let mut m = Map::new();
        for (k, v) in COLUMNS.iter().zip(cols) {
            if let Some(v) = v {
                m.insert((*k).to_string(), json!(v));
            }
        }
        if let Some(c) = coating {
            m.insert("coating".into(), parse_json(&c));
        }
        let mut profile = Map::new();
        profile.insert("cell_type".into(), json!(cell_type));
        if let Some(b) = coating_required {
            profile.insert("coating_required".into(), json!(b));
        }
        if let Some(s) = coating_reagent {
            profile.insert("coating_reagent".into(), json!(s));
        }
        let mut st = c.prepare("SELECT characteristic, value, value_kind FROM cell_line_characteristics WHERE cell_line_id = ?1 ORDER BY position")?;
        for row in
            st.query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        {
            let (k, v, kind) = row?;
            profile.insert(k, if kind == "json" { parse_json(&v) } else { json!(v) });
        }
        if let Some(s) = cost_tier {
            profile.insert("cost_tier".into(), json!(s));
        }
        m.insert("profile".into(), Value::Object(profile));
        let mut st = c.prepare("SELECT protocol_type, vessel_type, parameters, is_reference FROM cell_line_protocols WHERE cell_line_id = ?1 ORDER BY position")?;
        for row in st.query_map([&id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?))
        })? {
            let (ptype, vessel, settings, reference) = row?;
            let section = m.entry(ptype).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(s) = section {
                if reference {
                    s.insert("reference_vessel".into(), json!(vessel));
                }
                s.insert(vessel, parse_json(&settings));
            }
        }
        if let Some(Value::Object(x)) = extra.as_deref().map(parse_json) {
            m.extend(x);
        }
        lines.insert(id, Value::Object(m));
    }
    Ok(json!({ "cell_lines": lines }))
}
