//! A campaign's records as one JSON document, and their merge into another store: how the host pulls
//! what a gateway wrote (`cellos sync`).
//!
//! Each table is copied by its natural key (a campaign by id, an iteration by campaign and number, a
//! journal entry by campaign, iteration and step, a stage output by campaign, line and key, a measurement
//! by campaign, iteration, plate and well), never by the gateway's row ids, so the merge is idempotent: a
//! row already the same changes nothing, a row that moved on (a journal step now done, a campaign now
//! completed) is updated, a new row is added. Each campaign merges in one transaction per database, so an
//! interrupted sync leaves every campaign either as it was or whole, and the next sync goes on.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value, json};

use crate::db::Store;
use crate::error::{Result, StoreError};

/// A table of a campaign's records: its natural key, and the columns the copy leaves out (row ids).
struct Table {
    name: &'static str,
    key: &'static [&'static str],
    skip: &'static [&'static str],
    results: bool,
}

const TABLES: &[Table] = &[
    Table { name: "campaigns", key: &["campaign_id"], skip: &["position"], results: false },
    Table {
        name: "campaign_iterations",
        key: &["campaign_id", "iteration_number"],
        skip: &["iteration_id"],
        results: false,
    },
    Table { name: "experiments", key: &["experiment_id"], skip: &[], results: false },
    Table { name: "campaign_experiments", key: &["campaign_id", "experiment_id"], skip: &[], results: false },
    Table { name: "stage_outputs", key: &["campaign_id", "cell_line_id", "key"], skip: &["output_id"], results: false },
    Table { name: "journal", key: &["campaign_id", "iteration", "seq"], skip: &["entry_id"], results: false },
    Table {
        name: "campaign_instruments",
        key: &["campaign_id", "role", "recorded_at"],
        skip: &["entry_id"],
        results: false,
    },
    Table {
        name: "measurements",
        key: &["campaign_id", "iteration", "plate_id", "well_id"],
        skip: &["id", "import_id", "source_row"],
        results: true,
    },
];

fn columns(db: &Connection, table: &str) -> Result<Vec<String>> {
    let mut st = db.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let cols = st.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(cols)
}

fn to_json(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(x) => json!(x),
        SqlValue::Text(s) => json!(s),
        SqlValue::Blob(b) => json!(b),
    }
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => {
            n.as_i64().map_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)), SqlValue::Integer)
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// The ids of every campaign in `campaigns`.
pub fn campaign_ids(campaigns: &Connection) -> Result<Vec<String>> {
    let mut st = campaigns.prepare("SELECT campaign_id FROM campaigns ORDER BY position, campaign_id")?;
    let ids = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// A campaign's records, table by table (`{"campaigns": [...], "journal": [...], ...}`), rows as
/// column → value objects without the row ids.
pub fn export(store: &Store, campaign: &str) -> Result<Value> {
    let mut out = Map::new();
    for t in TABLES {
        let db = if t.results { &store.results } else { &store.campaigns };
        let cols: Vec<String> = columns(db, t.name)?.into_iter().filter(|c| !t.skip.contains(&c.as_str())).collect();
        let mut st = db.prepare(&format!("SELECT {} FROM {} WHERE campaign_id = ?1", cols.join(", "), t.name))?;
        let rows: Vec<Value> = st
            .query_map([campaign], |r| {
                let mut row = Map::new();
                for (i, c) in cols.iter().enumerate() {
                    row.insert(c.clone(), to_json(r.get::<_, SqlValue>(i)?));
                }
                Ok(Value::Object(row))
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.insert(t.name.to_string(), Value::Array(rows));
    }
    Ok(Value::Object(out))
}

/// What a merge did: rows added, and rows that had moved on and were updated.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Rows that were not there.
    pub added: u64,
    /// Rows that were there with other values.
    pub updated: u64,
}

/// Merges a campaign's records (as [`export`] gives them) into `store`: one transaction per database,
/// the campaigns database first.
pub fn merge(store: &mut Store, records: &Value) -> Result<Merged> {
    let mut merged = Merged::default();
    for results in [false, true] {
        let db = if results { &mut store.results } else { &mut store.campaigns };
        let tx = db.transaction()?;
        for t in TABLES.iter().filter(|t| t.results == results) {
            let known = columns(&tx, t.name)?;
            let Some(rows) = records.get(t.name).and_then(Value::as_array) else { continue };
            for row in rows {
                let row = row
                    .as_object()
                    .ok_or_else(|| StoreError::Invalid(format!("{}: a row is not an object", t.name)))?;
                // Only this store's columns, never a row id.
                let cols: Vec<&String> =
                    row.keys().filter(|c| known.contains(c) && !t.skip.contains(&c.as_str())).collect();
                if t.key.iter().any(|k| !cols.iter().any(|c| c == k)) {
                    return Err(StoreError::Invalid(format!("{}: a row without its key {:?}", t.name, t.key)));
                }
                let exists_sql = format!(
                    "SELECT count(*) FROM {} WHERE {}",
                    t.name,
                    t.key
                        .iter()
                        .enumerate()
                        .map(|(i, k)| format!("{k} IS ?{}", i + 1))
                        .collect::<Vec<_>>()
                        .join(" AND ")
                );
                let key_values: Vec<SqlValue> = t.key.iter().map(|k| to_sql(&row[*k])).collect();
                // The statements repeat from row to row: prepared once each, from the cache.
                let exists: i64 =
                    tx.prepare_cached(&exists_sql)?.query_row(params_from_iter(key_values.iter()), |r| r.get(0))?;
                let names: Vec<&str> = cols.iter().map(|c| c.as_str()).collect();
                if exists == 0 {
                    let values: Vec<SqlValue> = cols.iter().map(|c| to_sql(&row[c.as_str()])).collect();
                    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                    let sql = format!("INSERT INTO {} ({}) VALUES ({})", t.name, names.join(", "), marks.join(", "));
                    merged.added += tx.prepare_cached(&sql)?.execute(params_from_iter(values.iter()))? as u64;
                    continue;
                }
                // There already: the columns that moved on are updated, nothing else is touched.
                let rest: Vec<&str> = names.iter().copied().filter(|c| !t.key.contains(c)).collect();
                if rest.is_empty() {
                    continue;
                }
                let n = rest.len();
                let sql = format!(
                    "UPDATE {} SET {} WHERE {} AND ({})",
                    t.name,
                    rest.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect::<Vec<_>>().join(", "),
                    t.key
                        .iter()
                        .enumerate()
                        .map(|(i, k)| format!("{k} IS ?{}", n + i + 1))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                    rest.iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c} IS NOT ?{}", i + 1))
                        .collect::<Vec<_>>()
                        .join(" OR ")
                );
                let mut values: Vec<SqlValue> = rest.iter().map(|c| to_sql(&row[*c])).collect();
                values.extend(key_values);
                merged.updated += tx.prepare_cached(&sql)?.execute(params_from_iter(values.iter()))? as u64;
            }
        }
        tx.commit()?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn a_campaign_merges_once_and_follows_its_changes() {
        let (_a, mut gw) = store();
        crate::campaign::claim(&gw.campaigns, "c1", "dose_finding", "g", &json!({ "seed": 7 })).unwrap();
        crate::journal::write(&gw.campaigns, "c1", 1, 1, &json!({ "kind": "pick_up" })).unwrap();
        crate::outputs::set(
            &gw.campaigns,
            "c1",
            "U2OS",
            crate::outputs::StageKey::OptimalTbhpDose,
            &json!({ "value": 45.5 }),
        )
        .unwrap();
        let well = crate::campaign::Measurement {
            plate_id: "c1_ASSAY_1".into(),
            well_id: "B2".into(),
            cell_line: "U2OS".into(),
            compound: "tbhp".into(),
            dose_um: 10.0,
            time_h: 24.0,
            raw_signal: 1.5,
            is_control: false,
            viability: 0.8,
            segmentation: 0.9,
            incubator_id: "twin".into(),
            liquid_handler_id: "star".into(),
        };
        crate::campaign::replace_measurements(&mut gw.results, "c1", 1, &[well]).unwrap();
        let (_b, mut host) = store();
        let first = merge(&mut host, &export(&gw, "c1").unwrap()).unwrap();
        assert_eq!(first, Merged { added: 4, updated: 0 });
        assert_eq!(
            merge(&mut host, &export(&gw, "c1").unwrap()).unwrap(),
            Merged::default(),
            "a second merge adds nothing"
        );
        // The journal step is done now, and the campaign completed.
        crate::journal::mark(&gw.campaigns, "c1", 1, 1, crate::journal::JournalState::Done, None).unwrap();
        crate::campaign::complete(&gw.campaigns, "c1", &json!([{ "line": "U2OS" }])).unwrap();
        assert_eq!(merge(&mut host, &export(&gw, "c1").unwrap()).unwrap(), Merged { added: 0, updated: 2 });
        let c = crate::campaign::get(&host.campaigns, "c1").unwrap().unwrap();
        assert_eq!(c.status, crate::campaign::CampaignStatus::Completed);
        let e: Vec<crate::journal::Entry<Value>> = crate::journal::entries(&host.campaigns, "c1").unwrap();
        assert_eq!(e[0].state, crate::journal::JournalState::Done);
        assert_eq!(campaign_ids(&host.campaigns).unwrap(), ["c1"]);
        // A document that is not records is refused, changing nothing.
        assert!(merge(&mut host, &json!({ "journal": [1] })).is_err());
        assert!(merge(&mut host, &json!({ "journal": [{ "campaign_id": "c1" }] })).is_err());
    }
}
