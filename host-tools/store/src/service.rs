//! The gateway service's runs and their event logs (`campaigns.db`), so that a restarted service
//! picks up where it was. States are the service's words (`queued`, `running`, `paused`, `stopping`,
//! `stopped`, `failed`, `succeeded`; the schema checks them); events are JSON.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::time::now;

/// A run as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRun {
    /// Its id.
    pub run_id: String,
    /// `campaign`.
    pub kind: String,
    /// Its settings.
    pub config: Value,
    /// Its state.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Its outputs, once succeeded.
    pub outputs: Option<Value>,
    /// Its events, in order (event `k` is at `k − 1`).
    pub events: Vec<Value>,
}

/// Records a new run, `queued`, with its first event.
pub fn insert_run(db: &mut Connection, run_id: &str, kind: &str, config: &Value, first: &Value) -> Result<()> {
    let at = now();
    let tx = db.transaction()?;
    tx.execute(
        "INSERT INTO service_runs (run_id, kind, config, state, created_at, updated_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
        params![run_id, kind, config.to_string(), at],
    )?;
    tx.execute(
        "INSERT INTO service_events (run_id, event_id, event) VALUES (?1, 1, ?2)",
        params![run_id, first.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Appends event `event_id` of a run, and sets its state when given: one transaction.
pub fn append_event(
    db: &mut Connection,
    run_id: &str,
    event_id: u64,
    event: &Value,
    state: Option<&str>,
) -> Result<()> {
    let tx = db.transaction()?;
    tx.execute(
        "INSERT INTO service_events (run_id, event_id, event) VALUES (?1, ?2, ?3)",
        params![run_id, event_id as i64, event.to_string()],
    )?;
    if let Some(s) = state {
        tx.execute("UPDATE service_runs SET state = ?2, updated_at = ?3 WHERE run_id = ?1", params![run_id, s, now()])?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets a run's state, error and outputs.
pub fn finish_run(
    db: &Connection,
    run_id: &str,
    state: &str,
    error: Option<&str>,
    outputs: Option<&Value>,
) -> Result<()> {
    db.execute(
        "UPDATE service_runs SET state = ?2, error = ?3, outputs = ?4, updated_at = ?5 WHERE run_id = ?1",
        params![run_id, state, error, outputs.map(Value::to_string), now()],
    )?;
    Ok(())
}

/// Sets a run's state alone.
pub fn set_state(db: &Connection, run_id: &str, state: &str) -> Result<()> {
    db.execute("UPDATE service_runs SET state = ?2, updated_at = ?3 WHERE run_id = ?1", params![run_id, state, now()])?;
    Ok(())
}

/// A run row as read: id, kind, settings, state, error, outputs.
type RunRow = (String, String, String, String, Option<String>, Option<String>);

/// Every run with its events, oldest first.
pub fn runs(db: &Connection) -> Result<Vec<StoredRun>> {
    let json = |t: String, what: &str| {
        serde_json::from_str::<Value>(&t).map_err(|e| StoreError::Invalid(format!("stored {what}: {e}")))
    };
    let mut st =
        db.prepare("SELECT run_id, kind, config, state, error, outputs FROM service_runs ORDER BY created_at, rowid")?;
    let rows: Vec<RunRow> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut ev = db.prepare("SELECT event FROM service_events WHERE run_id = ?1 ORDER BY event_id")?;
    rows.into_iter()
        .map(|(run_id, kind, config, state, error, outputs)| {
            let events = ev
                .query_map([&run_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|t| json(t, "event"))
                .collect::<Result<Vec<_>>>()?;
            Ok(StoredRun {
                config: json(config, "run settings")?,
                outputs: outputs.map(|o| json(o, "run outputs")).transpose()?,
                run_id,
                kind,
                state,
                error,
                events,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};
    use serde_json::json;

    #[test]
    fn runs_and_their_events_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), Db::Campaigns).unwrap();
        insert_run(&mut db, "r1", "campaign", &json!({ "seed": 7 }), &json!({ "event": "state", "state": "queued" }))
            .unwrap();
        append_event(&mut db, "r1", 2, &json!({ "event": "state", "state": "running" }), Some("running")).unwrap();
        append_event(&mut db, "r1", 3, &json!({ "event": "iteration", "iteration": 1 }), None).unwrap();
        assert!(append_event(&mut db, "r1", 3, &json!({}), None).is_err(), "an event id is used once");
        assert!(set_state(&db, "r1", "sleeping").is_err(), "the schema knows the states");
        let r = &runs(&db).unwrap()[0];
        assert_eq!((r.state.as_str(), r.events.len(), r.events[2]["iteration"].as_i64()), ("running", 3, Some(1)));
        finish_run(&db, "r1", "succeeded", None, Some(&json!([{ "dose_um": 45.5 }]))).unwrap();
        let r = &runs(&db).unwrap()[0];
        assert_eq!((r.state.as_str(), r.outputs.clone()), ("succeeded", Some(json!([{ "dose_um": 45.5 }]))));
    }
}
