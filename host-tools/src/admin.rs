//! Queries and administration behind `cellos`. Each returns a JSON value (an array for lists, an object
//! for show and summary commands) that the command line prints as JSON or as a table.

use std::path::Path;

use cellos_core::fit::{FitError, FitOptions, FourPl, FourPlFit, Replicates, fit_four_pl_replicates, four_pl_start};
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value, json};

use crate::error::{Result, StoreError};
use crate::kinds::params::{LINE_FIELDS, LineParams, put_line};
use crate::store::{Db, Store, count};

pub(crate) fn rows_json(conn: &rusqlite::Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Value>> {
    let mut st = conn.prepare(sql)?;
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let rows = st.query_map(args, |r| {
        let mut m = Map::new();
        for (i, n) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(x) => json!(x),
                rusqlite::types::ValueRef::Real(x) => json!(x),
                rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Blob(b) => json!(format!("{} bytes", b.len())),
            };
            m.insert(n.clone(), v);
        }
        Ok(Value::Object(m))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) const PARAM_COLUMNS: &str = "cell_line_id, version, doubling_time_h, max_confluence, max_passage, senescence_rate, seeding_efficiency, \
    passage_stress, cell_count_cv, viability_cv, biological_cv, coating_required, valid_from, valid_to, notes";

/// A line's parameters: the current version, or version `version`.
pub fn params_show(store: &Store, line: &str, version: Option<i64>) -> Result<Value> {
    let rows = rows_json(
        &store.params,
        &format!(
            "SELECT {PARAM_COLUMNS} FROM cell_line_params WHERE cell_line_id = ?1 AND (?2 IS NULL AND valid_to IS NULL OR version = ?2)"
        ),
        &[&line, &version],
    )?;
    rows.into_iter().next().ok_or_else(|| {
        StoreError::NotFound(match version {
            Some(v) => format!("no version {v} of cell line `{line}` (see `cellos params history {line}`)"),
            None => format!("no parameters for cell line `{line}` (import them with `cellos import params FILE`)"),
        })
    })
}

/// Every version of a line's parameters, oldest first.
pub fn params_history(store: &Store, line: &str) -> Result<Value> {
    let rows = rows_json(
        &store.params,
        &format!("SELECT {PARAM_COLUMNS} FROM cell_line_params WHERE cell_line_id = ?1 ORDER BY version"),
        &[&line],
    )?;
    if rows.is_empty() {
        return Err(StoreError::NotFound(format!("no parameters for cell line `{line}`")));
    }
    Ok(Value::Array(rows))
}

/// Sets fields of a line's parameters: closes the current version and opens the next. Returns it.
pub fn params_set(
    store: &mut Store,
    line: &str,
    assignments: &[(String, String)],
    note: Option<&str>,
) -> Result<Value> {
    let current = params_show(store, line, None)?;
    let mut values = [0.0; 9];
    for (i, f) in LINE_FIELDS.iter().enumerate() {
        values[i] = current[f].as_f64().unwrap_or(0.0);
    }
    let mut coating = current["coating_required"].as_i64().map(|x| x != 0);
    for (field, raw) in assignments {
        if field == "coating_required" {
            coating = Some(match raw.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(StoreError::Invalid(format!("coating_required={raw}: expected true or false"))),
            });
            continue;
        }
        let i = LINE_FIELDS.iter().position(|f| f == field).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown field `{field}` (one of {}, coating_required)",
                LINE_FIELDS.join(", ")
            ))
        })?;
        let x: f64 = raw.parse().map_err(|_| StoreError::Invalid(format!("{field}={raw}: not a number")))?;
        if !x.is_finite() || x < 0.0 || (field == "max_passage" && x.fract() != 0.0) || (i < 2 && x <= 0.0) {
            return Err(StoreError::Invalid(format!("{field}={raw}: out of range")));
        }
        values[i] = x;
    }
    let core = cellos_core::params::CellLineParams {
        doubling_time_h: values[0],
        max_confluence: values[1],
        max_passage: values[2] as u32,
        senescence_rate: values[3],
        seeding_efficiency: values[4],
        passage_stress: values[5],
        cell_count_cv: values[6],
        viability_cv: values[7],
        biological_cv: values[8],
        coating_required: coating.unwrap_or(false),
    };
    core.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
    let tx = store.params.transaction()?;
    let changed = put_line(
        &tx,
        line,
        &LineParams { values, coating_required: coating },
        note.unwrap_or("set by cellos params set"),
        None,
    )?;
    tx.commit()?;
    if !changed {
        return Err(StoreError::Invalid("nothing changed: the values are those of the current version".into()));
    }
    params_show(store, line, None)
}

/// Cell lines, filtered.
pub fn lines_list(store: &Store, cell_type: Option<&str>, coating: Option<bool>, tier: Option<&str>) -> Result<Value> {
    Ok(Value::Array(rows_json(
        &store.lines,
        "SELECT cell_line_id, display_name, cell_type, growth_media, coating_required, coating_reagent, cost_tier FROM cell_lines \
         WHERE (?1 IS NULL OR cell_type = ?1) AND (?2 IS NULL OR coalesce(coating_required, 0) = ?2) AND (?3 IS NULL OR cost_tier = ?3) ORDER BY position",
        &[&cell_type, &coating, &tier],
    )?))
}

/// One cell line with its characteristics and protocols.
pub fn lines_show(store: &Store, id: &str) -> Result<Value> {
    let mut line = rows_json(&store.lines, "SELECT * FROM cell_lines WHERE cell_line_id = ?1", &[&id])?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(format!("no cell line `{id}` (see `cellos lines list`)")))?;
    let chars = rows_json(
        &store.lines,
        "SELECT characteristic, value, notes FROM cell_line_characteristics WHERE cell_line_id = ?1 ORDER BY position",
        &[&id],
    )?;
    let mut protocols = rows_json(
        &store.lines,
        "SELECT protocol_type, vessel_type, is_reference, parameters FROM cell_line_protocols WHERE cell_line_id = ?1 ORDER BY position",
        &[&id],
    )?;
    for p in &mut protocols {
        if let Some(s) = p["parameters"].as_str() {
            p["parameters"] = serde_json::from_str(s).unwrap_or(Value::Null);
        }
    }
    line["characteristics"] = Value::Array(chars);
    line["protocols"] = Value::Array(protocols);
    Ok(line)
}

/// A new vial in the inventory.
pub fn inventory_add(
    store: &Store,
    line: &str,
    vial: &str,
    passage: Option<i64>,
    location: Option<&str>,
    notes: Option<&str>,
) -> Result<Value> {
    let known: i64 =
        store.lines.query_row("SELECT count(*) FROM cell_lines WHERE cell_line_id = ?1", [line], |r| r.get(0))?;
    if known == 0 {
        return Err(StoreError::NotFound(format!(
            "no cell line `{line}`: vials belong to a known line (see `cellos lines list`)"
        )));
    }
    let now = crate::time::now();
    store
        .lines
        .execute(
            "INSERT INTO cell_line_inventory (cell_line_id, vial_id, passage_number, freeze_date, location, notes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4)",
            params![line, vial, passage, now, location, notes],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => StoreError::Invalid(format!("vial `{vial}` already exists")),
            other => other.into(),
        })?;
    inventory_list(store, None, None)
        .map(|v| v.as_array().and_then(|a| a.iter().find(|x| x["vial_id"] == vial).cloned()).unwrap_or(Value::Null))
}

/// Vials, filtered by line and status.
pub fn inventory_list(store: &Store, line: Option<&str>, status: Option<&str>) -> Result<Value> {
    Ok(Value::Array(rows_json(
        &store.lines,
        "SELECT vial_id, cell_line_id, passage_number, freeze_date, location, status, notes FROM cell_line_inventory \
         WHERE (?1 IS NULL OR cell_line_id = ?1) AND (?2 IS NULL OR status = ?2) ORDER BY inventory_id",
        &[&line, &status],
    )?))
}

/// Uses a vial: it must be available; it becomes used and the use is recorded.
pub fn inventory_use(store: &mut Store, vial: &str, purpose: Option<&str>, execution: Option<&str>) -> Result<Value> {
    let tx = store.lines.transaction()?;
    let row: Option<(String, String)> = tx
        .query_row("SELECT cell_line_id, status FROM cell_line_inventory WHERE vial_id = ?1", [vial], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (line, status) =
        row.ok_or_else(|| StoreError::NotFound(format!("no vial `{vial}` (see `cellos inventory list`)")))?;
    if status != "available" {
        return Err(StoreError::Invalid(format!("vial `{vial}` is {status}, not available")));
    }
    cellos_store::inventory::use_vial(&tx, &line, vial, execution, purpose)?;
    tx.commit()?;
    Ok(json!({ "vial_id": vial, "cell_line_id": line, "status": "used" }))
}

/// Usage history (of a vial, a line, or everything).
pub fn inventory_history(store: &Store, vial: Option<&str>, line: Option<&str>) -> Result<Value> {
    Ok(Value::Array(rows_json(
        &store.lines,
        "SELECT usage_date, vial_id, cell_line_id, execution_id, purpose, notes FROM cell_line_usage \
         WHERE (?1 IS NULL OR vial_id = ?1) AND (?2 IS NULL OR cell_line_id = ?2) ORDER BY usage_id",
        &[&vial, &line],
    )?))
}

/// Campaigns, filtered.
pub fn campaigns_list(store: &Store, status: Option<&str>, kind: Option<&str>) -> Result<Value> {
    Ok(Value::Array(rows_json(
        &store.campaigns,
        "SELECT c.campaign_id, c.campaign_type, c.goal, c.status, c.start_date, c.end_date, \
         (SELECT count(*) FROM campaign_iterations i WHERE i.campaign_id = c.campaign_id) AS iterations \
         FROM campaigns c WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR c.campaign_type = ?2) ORDER BY c.position, c.campaign_id",
        &[&status, &kind],
    )?))
}

/// One campaign: summary, iterations, experiments, duration, best result, stage outputs.
pub fn campaigns_show(store: &Store, id: &str) -> Result<Value> {
    let mut c = rows_json(&store.campaigns, "SELECT * FROM campaigns WHERE campaign_id = ?1", &[&id])?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(format!("no campaign `{id}` (see `cellos campaigns list`)")))?;
    for k in ["config", "results_summary"] {
        if let Some(s) = c[k].as_str() {
            c[k] = serde_json::from_str(s).unwrap_or(Value::Null);
        }
    }
    let mut iterations = rows_json(
        &store.campaigns,
        "SELECT iteration_number, timestamp, proposals, results, metrics FROM campaign_iterations WHERE campaign_id = ?1 ORDER BY iteration_number",
        &[&id],
    )?;
    let mut best: Option<Value> = None;
    for it in &mut iterations {
        for k in ["proposals", "results", "metrics"] {
            if let Some(s) = it[k].as_str() {
                it[k] = serde_json::from_str(s).unwrap_or(Value::Null);
            }
        }
        for r in it["results"].as_array().into_iter().flatten() {
            let m = r["measurement"].as_f64();
            if m.is_some() && best.as_ref().is_none_or(|b| b["measurement"].as_f64() < m) {
                best = Some(r.clone());
            }
        }
    }
    let experiments = rows_json(
        &store.campaigns,
        "SELECT experiment_id, experiment_type, cell_line_id, status, start_date, end_date FROM experiments WHERE campaign_id = ?1",
        &[&id],
    )?;
    let mut outputs = rows_json(
        &store.campaigns,
        "SELECT cell_line_id, stage, key, value, created_at FROM stage_outputs WHERE campaign_id = ?1 ORDER BY output_id",
        &[&id],
    )?;
    for o in &mut outputs {
        if let Some(s) = o["value"].as_str() {
            o["value"] = serde_json::from_str(s).unwrap_or(Value::Null);
        }
    }
    let duration = c["results_summary"]["duration_seconds"].clone();
    c["iterations"] = Value::Array(iterations);
    c["experiments"] = Value::Array(experiments);
    c["stage_outputs"] = Value::Array(outputs);
    c["duration_seconds"] = duration;
    c["best_result"] = best.unwrap_or(Value::Null);
    Ok(c)
}

/// Measurements, filtered.
pub fn results_query(store: &Store, line: Option<&str>, compound: Option<&str>, plate: Option<&str>) -> Result<Value> {
    Ok(Value::Array(rows_json(
        &store.results,
        "SELECT m.plate_id, m.well_id, m.cell_line, m.compound, m.dose_uM, m.time_h, m.raw_signal, m.is_control, m.viability_norm, \
         coalesce(i.source, m.campaign_id) AS source, m.source_row FROM measurements m LEFT JOIN imports i ON i.import_id = m.import_id \
         WHERE (?1 IS NULL OR m.cell_line = ?1) AND (?2 IS NULL OR m.compound = ?2) AND (?3 IS NULL OR m.plate_id = ?3) ORDER BY m.id",
        &[&line, &compound, &plate],
    )?))
}

/// Counts per (line, compound) and per plate.
pub fn results_summary(store: &Store) -> Result<Value> {
    // From the running sums the triggers keep (`dose_stats`, `plate_stats`): the same figures as
    // grouping the rows, in time that does not grow with them.
    let per_pair = rows_json(
        &store.results,
        "SELECT cell_line, nullif(compound, '') AS compound, sum(rows) AS measurements, count(nullif(dose_uM, -1.0)) AS doses, \
         min(nullif(dose_uM, -1.0)) AS min_dose_uM, max(nullif(dose_uM, -1.0)) AS max_dose_uM \
         FROM dose_stats GROUP BY cell_line, compound ORDER BY cell_line, compound",
        &[],
    )?;
    let plates: i64 = store.results.query_row("SELECT count(*) FROM plate_stats", [], |r| r.get(0))?;
    let measurements: i64 = store.results.query_row("SELECT ifnull(sum(rows), 0) FROM dose_stats", [], |r| r.get(0))?;
    Ok(json!({ "measurements": measurements, "plates": plates, "by_line_and_compound": per_pair }))
}

/// The `(dose, normalised viability)` points of a line and compound in the measurements database.
pub fn viability_points(store: &Store, line: &str, compound: &str) -> Result<Vec<(f64, f64)>> {
    let mut st = store.results.prepare_cached(
        "SELECT dose_uM, viability_norm FROM measurements WHERE cell_line = ?1 AND compound = ?2 AND dose_uM IS NOT NULL AND viability_norm IS NOT NULL",
    )?;
    let rows = st.query_map([line, compound], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A hasher for 64-bit keys (a dose's bits): one multiply and a shift, where the
/// standard hasher's SipHash (built against adversarial keys, which these are not) costs more than the
/// work around it on a page of 100,000 wells.
#[derive(Default)]
pub struct Mix64(u64);

impl std::hash::Hasher for Mix64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let h = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

/// A map keyed by 64-bit values, hashed by [`Mix64`].
pub type U64Map<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<Mix64>>;

/// Observations summarised by distinct dose, for [`Replicates`]: the fit's cost then grows with the
/// doses, not the wells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ByDose {
    /// Distinct doses, in the order each first comes.
    pub doses: Vec<f64>,
    /// Mean observation at each.
    pub means: Vec<f64>,
    /// Observations at each.
    pub counts: Vec<f64>,
    /// Squared deviations from the dose's mean, per dose.
    pub ss: Vec<f64>,
    /// Squared deviations from the dose's mean, summed over every observation.
    pub within_ss: f64,
}

impl ByDose {
    /// `(dose, value)` points by dose (Welford's running mean and spread per dose).
    pub fn of(points: impl IntoIterator<Item = (f64, f64)>) -> ByDose {
        let mut at: U64Map<usize> = U64Map::default();
        let (mut out, mut m2) = (ByDose::default(), Vec::new());
        for (x, y) in points {
            let k = *at.entry((x + 0.0).to_bits()).or_insert_with(|| {
                out.doses.push(x);
                out.means.push(0.0);
                out.counts.push(0.0);
                m2.push(0.0);
                out.doses.len() - 1
            });
            out.counts[k] += 1.0;
            let delta = y - out.means[k];
            out.means[k] += delta / out.counts[k];
            m2[k] += delta * (y - out.means[k]);
        }
        out.within_ss = m2.iter().sum();
        out.ss = m2;
        out
    }

    /// Observations summarised.
    pub fn observations(&self) -> usize {
        self.counts.iter().sum::<f64>() as usize
    }

    /// Each dose's sample standard deviation (0 for a dose with one observation).
    pub fn sd(&self, i: usize) -> f64 {
        let n = self.counts.get(i).copied().unwrap_or(0.0);
        if n > 1.0 { (self.ss[i] / (n - 1.0)).sqrt() } else { 0.0 }
    }
}

/// The core's four-parameter logistic from data-derived starting values (the means'), on the
/// observations by dose (the same fit as on every point); `floor_zero` holds the bottom at 0
/// (normalised viability).
pub(crate) fn fit_4pl(data: &ByDose, floor_zero: bool) -> std::result::Result<FourPlFit, FitError> {
    let options = FitOptions { fixed: [floor_zero, false, false, false], ..FitOptions::default() };
    let mut start = four_pl_start(&data.doses, &data.means);
    if floor_zero {
        start[FourPl::BOTTOM] = 0.0;
    }
    let summary = Replicates { xs: &data.doses, means: &data.means, counts: &data.counts, within_ss: data.within_ss };
    fit_four_pl_replicates(&summary, Some(start), &options)
}

/// The viability of a line and compound by dose, from the store's running sums (`dose_stats`, kept by
/// triggers on every write): what a fit needs, read in time that does not grow with the rows.
pub fn viability_by_dose(store: &Store, line: &str, compound: &str) -> Result<ByDose> {
    let mut st = store.results.prepare_cached(
        "SELECT dose_uM, viability_n, viability_sum, viability_sumsq FROM dose_stats          WHERE cell_line = ?1 AND compound = ?2 AND dose_uM >= 0 AND viability_n > 0 ORDER BY dose_uM",
    )?;
    let mut out = ByDose::default();
    let rows = st.query_map([line, compound], |r| {
        Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?, r.get::<_, f64>(3)?))
    })?;
    for row in rows {
        let (dose, n, sum, sumsq) = row?;
        let (n, mean) = (n as f64, sum / n as f64);
        out.doses.push(dose);
        out.means.push(mean);
        out.counts.push(n);
        // Σ(y − ȳ)² = Σy² − n ȳ²; never below 0 (rounding in the running sums).
        let ss = (sumsq - n * mean * mean).max(0.0);
        out.ss.push(ss);
        out.within_ss += ss;
    }
    Ok(out)
}

/// A dose-response fit of normalised viability for (line, compound): IC50, Hill and their standard
/// errors, by the core's four-parameter logistic with the bottom held at 0.
pub fn results_fit(store: &Store, line: &str, compound: &str) -> Result<Value> {
    let data = viability_by_dose(store, line, compound)?;
    if data.doses.is_empty() {
        return Err(StoreError::NotFound(format!(
            "no measurements of {compound} on {line} (see `cellos results summary`)"
        )));
    }
    let f = fit_4pl(&data, true).map_err(|e| StoreError::Invalid(format!("fit of {compound} on {line}: {e}")))?;
    Ok(json!({
        "cell_line": line, "compound": compound, "points": data.observations(),
        "ic50_uM": f.curve.ic50, "ic50_rel_se": f.ic50_rel_err(), "hill": f.curve.hill, "hill_se": f.std_err[FourPl::HILL],
        "top": f.curve.top, "top_se": f.std_err[FourPl::TOP], "converged": f.fit.status == cellos_core::fit::FitStatus::Converged,
    }))
}

/// Schema versions, row counts and file sizes.
pub fn db_status(store: &Store) -> Result<Value> {
    let mut out = Vec::new();
    for db in Db::ALL {
        let c = store.conn(db);
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mut st = c.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let tables: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut rows = Map::new();
        for t in tables {
            rows.insert(t.clone(), json!(count(c, &t)?));
        }
        let path = store.dir.join(db.file_name());
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        out.push(json!({ "database": db.file_name(), "schema_version": version, "bytes": bytes, "rows": rows }));
    }
    Ok(Value::Array(out))
}

/// Copies every database into `to` with SQLite's online backup (consistent while others write).
pub fn db_backup(store: &Store, to: &Path, progress: &mut dyn FnMut(&str, i32, i32)) -> Result<Value> {
    std::fs::create_dir_all(to).map_err(|source| StoreError::Io { path: to.into(), source })?;
    let mut out = Vec::new();
    for db in Db::ALL {
        let target = to.join(db.file_name());
        let mut dst =
            rusqlite::Connection::open(&target).map_err(|source| StoreError::Open { path: target.clone(), source })?;
        let backup = rusqlite::backup::Backup::new(store.conn(db), &mut dst)?;
        loop {
            let step = backup.step(64)?;
            let p = backup.progress();
            progress(db.file_name(), p.pagecount - p.remaining, p.pagecount);
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // Another process holds a lock for a moment: wait and go on.
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        drop(backup);
        out.push(json!({ "database": db.file_name(), "to": target.display().to_string() }));
    }
    Ok(Value::Array(out))
}
