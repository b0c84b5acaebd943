//! Campaigns (`campaigns.db`): the campaign row with its typed status, its iterations and experiments,
//! and the measurements a campaign writes (`experimental_results.db`).

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::Result;
use crate::time::now;

/// Where a campaign stands. Campaigns imported from the legacy platform may carry other words, kept as
/// they are in [`CampaignStatus::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CampaignStatus {
    /// Started and not finished (a process may be running it, or it was interrupted).
    Running,
    /// Finished with its results.
    Completed,
    /// Stopped by an error after it started; `failure` says why. Resumable.
    Failed,
    /// Given up by the operator (`campaign abandon`).
    Abandoned,
    /// Another word, from imported data.
    Other(String),
}

impl CampaignStatus {
    /// The word stored.
    pub fn as_str(&self) -> &str {
        match self {
            CampaignStatus::Running => "running",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Failed => "failed",
            CampaignStatus::Abandoned => "abandoned",
            CampaignStatus::Other(s) => s,
        }
    }

    /// The status of a stored word.
    pub fn parse(s: &str) -> CampaignStatus {
        match s {
            "running" => CampaignStatus::Running,
            "completed" => CampaignStatus::Completed,
            "failed" => CampaignStatus::Failed,
            "abandoned" => CampaignStatus::Abandoned,
            other => CampaignStatus::Other(other.to_string()),
        }
    }

    /// A campaign in this state may be resumed.
    pub fn resumable(&self) -> bool {
        matches!(self, CampaignStatus::Running | CampaignStatus::Failed)
    }

    /// A campaign in this state is over for good.
    pub fn finished(&self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Abandoned)
    }
}

impl std::fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for CampaignStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
    }
}

impl FromSql for CampaignStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(CampaignStatus::parse)
    }
}

/// A campaign's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    /// The id.
    pub id: String,
    /// `dose_finding`, or what the legacy data says.
    pub kind: String,
    /// The status.
    pub status: CampaignStatus,
    /// The settings as stored (JSON), if any.
    pub config: Option<Value>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// The results (JSON), once completed.
    pub results_summary: Option<Value>,
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// The campaign of id `id`, if there is one.
pub fn get(db: &Connection, id: &str) -> Result<Option<Campaign>> {
    let row = db
        .query_row(
            "SELECT campaign_type, status, config, failure, results_summary FROM campaigns WHERE campaign_id = ?1",
            [id],
            |r| {
                Ok(Campaign {
                    id: id.to_string(),
                    kind: r.get(0)?,
                    status: r.get(1)?,
                    config: json_column(r.get(2)?),
                    failure: r.get(3)?,
                    results_summary: json_column(r.get(4)?),
                })
            },
        )
        .optional()?;
    Ok(row)
}

/// Writes the row of a new campaign (`running`, started now, with its settings). `false`, writing
/// nothing, when a campaign of that id exists.
pub fn claim(db: &Connection, id: &str, kind: &str, goal: &str, config: &Value) -> Result<bool> {
    let inserted = db.execute(
        "INSERT INTO campaigns (campaign_id, campaign_type, goal, start_date, status, config, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?4) ON CONFLICT (campaign_id) DO NOTHING",
        params![id, kind, goal, now(), config.to_string()],
    )?;
    Ok(inserted == 1)
}

/// Sets one field of a campaign's stored settings (`$.field`) to `value`.
pub fn set_config_field(db: &Connection, id: &str, field: &str, value: &Value) -> Result<()> {
    db.execute(
        "UPDATE campaigns SET config = json_set(config, '$.' || ?2, json(?3)) WHERE campaign_id = ?1",
        params![id, field, value.to_string()],
    )?;
    Ok(())
}

/// Sets a campaign's status, with the reason when it failed; a status other than `running` ends it now.
pub fn set_status(db: &Connection, id: &str, status: &CampaignStatus, failure: Option<&str>) -> Result<()> {
    db.execute(
        "UPDATE campaigns SET status = ?2, failure = ?3, end_date = CASE WHEN ?2 = 'running' THEN NULL ELSE ?4 END WHERE campaign_id = ?1",
        params![id, status, failure, now()],
    )?;
    Ok(())
}

/// Marks a campaign completed with its results.
pub fn complete(db: &Connection, id: &str, summary: &Value) -> Result<()> {
    db.execute(
        "UPDATE campaigns SET status = 'completed', failure = NULL, end_date = ?2, results_summary = ?3 WHERE campaign_id = ?1",
        params![id, now(), summary.to_string()],
    )?;
    Ok(())
}

/// An iteration of a campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct Iteration {
    /// Its number.
    pub number: i64,
    /// What was proposed (JSON).
    pub proposals: Value,
    /// What was observed (JSON).
    pub results: Value,
    /// The search's or the runner's state after it (JSON).
    pub model_state: Value,
    /// Wells, seconds and such (JSON).
    pub metrics: Value,
}

/// A campaign's iterations, in order.
pub fn iterations(db: &Connection, id: &str) -> Result<Vec<Iteration>> {
    let mut st = db.prepare(
        "SELECT iteration_number, proposals, results, model_state, metrics FROM campaign_iterations WHERE campaign_id = ?1 ORDER BY iteration_number",
    )?;
    let rows = st
        .query_map([id], |r| {
            let j = |i: usize| -> rusqlite::Result<Value> { Ok(json_column(r.get(i)?).unwrap_or(Value::Null)) };
            Ok(Iteration { number: r.get(0)?, proposals: j(1)?, results: j(2)?, model_state: j(3)?, metrics: j(4)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The number of iterations a campaign has committed.
pub fn iteration_count(db: &Connection, id: &str) -> Result<i64> {
    Ok(db.query_row("SELECT count(*) FROM campaign_iterations WHERE campaign_id = ?1", [id], |r| r.get(0))?)
}

/// An experiment (a plate run) of a campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    /// Its id.
    pub id: String,
    /// `tbhp_dose_response`, …
    pub kind: String,
    /// The cell line.
    pub cell_line: String,
    /// Plate, wells and such (JSON).
    pub metadata: Value,
}

/// Commits an iteration with its experiments (one per plate run in it, done now), linked to the
/// campaign: one transaction.
pub fn record_iteration(db: &mut Connection, id: &str, it: &Iteration, experiments: &[Experiment]) -> Result<()> {
    let at = now();
    let tx = db.transaction()?;
    tx.execute(
        "INSERT INTO campaign_iterations (campaign_id, iteration_number, timestamp, proposals, results, model_state, metrics) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            it.number,
            at,
            it.proposals.to_string(),
            it.results.to_string(),
            it.model_state.to_string(),
            it.metrics.to_string()
        ],
    )?;
    for experiment in experiments {
        tx.execute(
            "INSERT INTO experiments (experiment_id, campaign_id, experiment_type, cell_line_id, start_date, end_date, status, metadata, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'completed', ?6, ?5)",
            params![experiment.id, id, experiment.kind, experiment.cell_line, at, experiment.metadata.to_string()],
        )?;
        tx.execute(
            "INSERT INTO campaign_experiments (campaign_id, experiment_id, iteration_number, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, experiment.id, it.number, at],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// A well a campaign measured (`experimental_results.db`).
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Plate id (unique across campaigns).
    pub plate_id: String,
    /// Well (`B2`).
    pub well_id: String,
    /// Cell line.
    pub cell_line: String,
    /// Compound.
    pub compound: String,
    /// Dose in the well, µM.
    pub dose_um: f64,
    /// Hours after treatment.
    pub time_h: f64,
    /// The raw signal (for tBHP campaigns: CellROX, a.u.).
    pub raw_signal: f64,
    /// A control well (no compound).
    pub is_control: bool,
    /// Viability, normalised.
    pub viability: f64,
    /// Segmentation quality.
    pub segmentation: f64,
    /// The incubator.
    pub incubator_id: String,
    /// The liquid handler.
    pub liquid_handler_id: String,
}

/// A well of a lentivirus titration a campaign read.
#[derive(Clone, Debug, PartialEq)]
pub struct TitrationWell {
    /// Plate id.
    pub plate_id: String,
    /// Well (`H1`).
    pub well_id: String,
    /// Cell line.
    pub cell_line: String,
    /// Virus stock the well received, µL.
    pub virus_ul: f64,
    /// Hours from the virus to the reading.
    pub time_h: f64,
    /// The BFP-positive fraction read.
    pub bfp_fraction: f64,
}

/// Writes the wells of a campaign's titration (its own iteration number), replacing any it had: one
/// transaction.
pub fn replace_titration_wells(db: &mut Connection, id: &str, iteration: i64, wells: &[TitrationWell]) -> Result<()> {
    let at = now();
    let tx = db.transaction()?;
    tx.execute("DELETE FROM measurements WHERE campaign_id = ?1 AND iteration = ?2", params![id, iteration])?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO measurements (plate_id, well_id, cell_line, compound, time_h, is_control, date, virus_ul, bfp_fraction, \
             campaign_id, iteration, created_at) VALUES (?1, ?2, ?3, 'lentivirus', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6)",
        )?;
        for w in wells {
            insert.execute(params![
                w.plate_id,
                w.well_id,
                w.cell_line,
                w.time_h,
                i64::from(w.virus_ul == 0.0),
                at,
                w.virus_ul,
                w.bfp_fraction,
                id,
                iteration
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Writes the measurements of a campaign's iteration, replacing any it had (so repeating an iteration
/// after a crash replaces rather than duplicates): one transaction.
pub fn replace_measurements(db: &mut Connection, id: &str, iteration: i64, wells: &[Measurement]) -> Result<()> {
    let at = now();
    let tx = db.transaction()?;
    tx.execute("DELETE FROM measurements WHERE campaign_id = ?1 AND iteration = ?2", params![id, iteration])?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, incubator_id, liquid_handler_id, \
             viability_norm, segmentation, campaign_id, iteration, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?9)",
        )?;
        for m in wells {
            insert.execute(params![
                m.plate_id,
                m.well_id,
                m.cell_line,
                m.compound,
                m.dose_um,
                m.time_h,
                m.raw_signal,
                i64::from(m.is_control),
                at,
                m.incubator_id,
                m.liquid_handler_id,
                m.viability,
                m.segmentation,
                id,
                iteration
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};
    use serde_json::json;

    #[test]
    fn a_campaign_is_claimed_once_and_goes_through_its_states() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::Campaigns).unwrap();
        assert!(claim(&db, "c1", "dose_finding", "optimal_tbhp_dose", &json!({ "config": { "seed": 3 } })).unwrap());
        assert!(!claim(&db, "c1", "dose_finding", "x", &json!({})).unwrap(), "an id is claimed once");
        let c = get(&db, "c1").unwrap().unwrap();
        assert_eq!(
            (c.status.clone(), c.config.clone()),
            (CampaignStatus::Running, Some(json!({ "config": { "seed": 3 } })))
        );
        set_config_field(&db, "c1", "twin", &json!({ "instance": 7 })).unwrap();
        set_status(&db, "c1", &CampaignStatus::Failed, Some("disk full")).unwrap();
        let c = get(&db, "c1").unwrap().unwrap();
        assert_eq!(c.config.unwrap()["twin"]["instance"], 7);
        assert_eq!((c.status, c.failure.as_deref()), (CampaignStatus::Failed, Some("disk full")));
        complete(&db, "c1", &json!([{ "line": "U2OS" }])).unwrap();
        let c = get(&db, "c1").unwrap().unwrap();
        assert!(c.status.finished() && !c.status.resumable() && c.failure.is_none());
        assert_eq!(c.results_summary, Some(json!([{ "line": "U2OS" }])));
        assert_eq!(CampaignStatus::parse("planned"), CampaignStatus::Other("planned".into()));
        assert!(get(&db, "nope").unwrap().is_none());
    }

    #[test]
    fn iterations_and_measurements_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), Db::Campaigns).unwrap();
        claim(&db, "c1", "dose_finding", "g", &json!({})).unwrap();
        let it = Iteration {
            number: 1,
            proposals: json!({ "doses_um": [1.5] }),
            results: json!({ "observations": [] }),
            model_state: json!({ "journal_seq": 9 }),
            metrics: json!({ "wells": 2 }),
        };
        let ex = Experiment {
            id: "c1_it001".into(),
            kind: "tbhp_dose_response".into(),
            cell_line: "U2OS".into(),
            metadata: json!({}),
        };
        record_iteration(&mut db, "c1", &it, std::slice::from_ref(&ex)).unwrap();
        assert_eq!(iterations(&db, "c1").unwrap(), vec![it.clone()]);
        assert_eq!(iteration_count(&db, "c1").unwrap(), 1);
        assert!(
            record_iteration(&mut db, "c1", &it, std::slice::from_ref(&ex)).is_err(),
            "an iteration is committed once"
        );
        assert_eq!(iteration_count(&db, "c1").unwrap(), 1, "nothing half-written");

        let mut results = open(dir.path(), Db::ExperimentalResults).unwrap();
        let well = |w: &str, v: f64| Measurement {
            plate_id: "c1_ASSAY_1".into(),
            well_id: w.into(),
            cell_line: "U2OS".into(),
            compound: "tbhp".into(),
            dose_um: 1.5,
            time_h: 24.0,
            raw_signal: 10.0,
            is_control: false,
            viability: v,
            segmentation: 0.9,
            incubator_id: "twin".into(),
            liquid_handler_id: "star".into(),
        };
        replace_measurements(&mut results, "c1", 1, &[well("B2", 0.5), well("B3", 0.6)]).unwrap();
        replace_measurements(&mut results, "c1", 1, &[well("B2", 0.7)]).unwrap();
        let rows: Vec<(String, f64)> = results
            .prepare("SELECT well_id, viability_norm FROM measurements WHERE campaign_id = 'c1'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, vec![("B2".to_string(), 0.7)]);
    }
}
