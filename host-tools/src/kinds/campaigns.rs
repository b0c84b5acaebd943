//! Campaigns: a folder with `campaigns.json` and `campaign_iterations.json` (the legacy export) ↔
//! `campaigns.db`. JSON fields (`config`, `results_summary`, `proposals`, `results`, `model_state`,
//! `metrics`) are kept as JSON text and come back as they went in.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::params;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Kind, Summary, begin, read_text, sha256, write_atomic};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// A campaign as the export writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignJson {
    campaign_id: String,
    campaign_type: String,
    goal: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    status: String,
    config: Option<Value>,
    results_summary: Option<Value>,
    created_at: Option<String>,
}

/// An iteration as the export writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IterationJson {
    iteration_id: Option<i64>,
    campaign_id: String,
    iteration_number: i64,
    timestamp: Option<String>,
    proposals: Option<Value>,
    results: Option<Value>,
    model_state: Option<Value>,
    metrics: Option<Value>,
}

fn json_error(file: &str, e: &serde_json::Error) -> StoreError {
    StoreError::input(
        file,
        format!("line {}, column {}", e.line(), e.column()),
        e.to_string().split(" at line ").next().unwrap_or("").to_string(),
    )
}

fn opt_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

struct Loaded {
    campaigns: Vec<CampaignJson>,
    iterations: Vec<IterationJson>,
    raw: (String, String),
}

fn load(dir: &Path) -> Result<Loaded> {
    let (cp, ip) = (dir.join("campaigns.json"), dir.join("campaign_iterations.json"));
    let (ct, it) = (read_text(&cp)?, read_text(&ip)?);
    let (cf, inf) = (cp.display().to_string(), ip.display().to_string());
    let campaigns: Vec<CampaignJson> = serde_json::from_str(&ct).map_err(|e| json_error(&cf, &e))?;
    let iterations: Vec<IterationJson> = serde_json::from_str(&it).map_err(|e| json_error(&inf, &e))?;
    let mut ids = HashSet::new();
    for (i, c) in campaigns.iter().enumerate() {
        if !ids.insert(c.campaign_id.as_str()) {
            return Err(StoreError::input(
                &cf,
                format!("record {}", i + 1),
                format!("duplicate campaign_id `{}`", c.campaign_id),
            ));
        }
        if c.campaign_id.trim().is_empty() {
            return Err(StoreError::input(&cf, format!("record {}", i + 1), "empty campaign_id"));
        }
    }
    let mut seen = HashSet::new();
    for (i, it) in iterations.iter().enumerate() {
        if !ids.contains(it.campaign_id.as_str()) {
            return Err(StoreError::input(
                &inf,
                format!("record {}", i + 1),
                format!("iteration of unknown campaign `{}`", it.campaign_id),
            ));
        }
        if !seen.insert((it.campaign_id.as_str(), it.iteration_number)) {
            return Err(StoreError::input(
                &inf,
                format!("record {}", i + 1),
                format!("duplicate iteration {} of `{}`", it.iteration_number, it.campaign_id),
            ));
        }
    }
    Ok(Loaded { campaigns, iterations, raw: (ct, it) })
}

/// Imports a campaigns folder.
pub fn import(store: &mut Store, dir: &Path) -> Result<Summary> {
    let l = load(dir)?;
    let mut summary = Summary::new(Kind::Campaigns, dir);
    let tx = store.campaigns.transaction()?;
    let sha = sha256(format!("{}\u{0}{}", l.raw.0, l.raw.1).as_bytes());
    if begin(&tx, Kind::Campaigns, &summary.source, &sha)?.is_none() {
        summary.already_imported = true;
        return Ok(summary);
    }
    let base: i64 = tx.query_row("SELECT coalesce(max(position) + 1, 0) FROM campaigns", [], |r| r.get(0))?;
    for (i, c) in l.campaigns.iter().enumerate() {
        tx.execute(
            "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, end_date, status, config, results_summary, created_at, position) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![c.campaign_id, c.campaign_type, c.goal, c.start_date, c.end_date, c.status, opt_text(&c.config), opt_text(&c.results_summary), c.created_at, base + i as i64],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::input(&dir.join("campaigns.json").display().to_string(), format!("record {}", i + 1), format!("campaign `{}` is already in the database", c.campaign_id))
            }
            other => other.into(),
        })?;
        summary.add("campaigns", 1);
    }
    for it in &l.iterations {
        tx.execute(
            "INSERT INTO campaign_iterations (iteration_id, campaign_id, iteration_number, timestamp, proposals, results, model_state, metrics) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![it.iteration_id, it.campaign_id, it.iteration_number, it.timestamp, opt_text(&it.proposals), opt_text(&it.results), opt_text(&it.model_state), opt_text(&it.metrics)],
        )?;
        summary.add("campaign_iterations", 1);
    }
    tx.commit()?;
    Ok(summary)
}

/// The source as `{campaigns: [...], iterations: [...]}` (checked).
pub fn source_value(dir: &Path) -> Result<Value> {
    let l = load(dir)?;
    let c: Value = serde_json::from_str(&l.raw.0).map_err(|e| json_error("campaigns.json", &e))?;
    let i: Value = serde_json::from_str(&l.raw.1).map_err(|e| json_error("campaign_iterations.json", &e))?;
    Ok(json!({ "campaigns": c, "iterations": i }))
}

fn parse(s: Option<String>) -> Value {
    s.map_or(Value::Null, |s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

/// The database's campaigns and iterations in the export's shape.
pub fn export_value(store: &Store) -> Result<Value> {
    let c = &store.campaigns;
    let mut st = c.prepare(
        "SELECT campaign_id, campaign_type, goal, start_date, end_date, status, config, results_summary, created_at FROM campaigns ORDER BY position, campaign_id",
    )?;
    let campaigns: Vec<Value> = st
        .query_map([], |r| {
            Ok(json!({
                "campaign_id": r.get::<_, String>(0)?, "campaign_type": r.get::<_, String>(1)?, "goal": r.get::<_, Option<String>>(2)?,
                "start_date": r.get::<_, Option<String>>(3)?, "end_date": r.get::<_, Option<String>>(4)?, "status": r.get::<_, String>(5)?,
                "config": parse(r.get(6)?), "results_summary": parse(r.get(7)?), "created_at": r.get::<_, Option<String>>(8)?,
            }))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = c.prepare(
        "SELECT iteration_id, campaign_id, iteration_number, timestamp, proposals, results, model_state, metrics FROM campaign_iterations ORDER BY iteration_id",
    )?;
    let iterations: Vec<Value> = st
        .query_map([], |r| {
            Ok(json!({
                "iteration_id": r.get::<_, i64>(0)?, "campaign_id": r.get::<_, String>(1)?, "iteration_number": r.get::<_, i64>(2)?,
                "timestamp": r.get::<_, Option<String>>(3)?, "proposals": parse(r.get(4)?), "results": parse(r.get(5)?),
                "model_state": parse(r.get(6)?), "metrics": parse(r.get(7)?),
            }))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(json!({ "campaigns": campaigns, "iterations": iterations }))
}

/// Writes an export folder.
pub fn write(dir: &Path, v: &Value) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.into(), source })?;
    let pretty = |x: &Value| serde_json::to_vec_pretty(x).map_err(|e| StoreError::Invalid(e.to_string()));
    write_atomic(&dir.join("campaigns.json"), &pretty(&v["campaigns"])?)?;
    write_atomic(&dir.join("campaign_iterations.json"), &pretty(&v["iterations"])?)
}
