//! Stage outputs (`campaigns.db`): what each stage of a campaign found for each line, one typed key per
//! output. The key strings exist here only.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::Result;
use crate::time::now;

/// An output of a campaign stage.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StageKey {
    /// Vials of the master cell bank (a count).
    McbVialCount,
    /// Vials of the working cell bank (a count).
    WcbVialCount,
    /// The chosen tBHP dose, µM, with its interval: `{value, lo, hi, wells, status}`.
    OptimalTbhpDose,
    /// The lentivirus volume for the target BFP fraction, µL: `{value, target_bfp, cells}`.
    LvOptimalVolume,
    /// The fitted lentivirus titer, TU/µL: `{value, max_fraction, std_err, series}`.
    LvEstimatedTiter,
}

impl StageKey {
    /// Every key.
    pub const ALL: [StageKey; 5] = [
        StageKey::McbVialCount,
        StageKey::WcbVialCount,
        StageKey::OptimalTbhpDose,
        StageKey::LvOptimalVolume,
        StageKey::LvEstimatedTiter,
    ];

    /// The key stored.
    pub fn key(self) -> &'static str {
        match self {
            StageKey::McbVialCount => "mcb_vial_count",
            StageKey::WcbVialCount => "wcb_vial_count",
            StageKey::OptimalTbhpDose => "optimal_tbhp_dose_uM",
            StageKey::LvOptimalVolume => "lv_optimal_volume_ul",
            StageKey::LvEstimatedTiter => "lv_estimated_titer",
        }
    }

    /// The stage that writes it.
    pub fn stage(self) -> &'static str {
        match self {
            StageKey::McbVialCount => "mcb",
            StageKey::WcbVialCount => "wcb",
            StageKey::OptimalTbhpDose => "tbhp_dose_finding",
            StageKey::LvOptimalVolume | StageKey::LvEstimatedTiter => "lv_titration",
        }
    }

    /// The unit of its value.
    pub fn unit(self) -> &'static str {
        match self {
            StageKey::McbVialCount | StageKey::WcbVialCount => "vials",
            StageKey::OptimalTbhpDose => "µM",
            StageKey::LvOptimalVolume => "µL",
            StageKey::LvEstimatedTiter => "TU/µL",
        }
    }

    /// The key of a stored string, if it is one of these.
    pub fn parse(key: &str) -> Option<StageKey> {
        StageKey::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// A stage output of a line, if stored.
pub fn get(db: &Connection, campaign: &str, line: &str, key: StageKey) -> Result<Option<Value>> {
    let v: Option<String> = db
        .query_row(
            "SELECT value FROM stage_outputs WHERE campaign_id = ?1 AND cell_line_id = ?2 AND key = ?3",
            params![campaign, line, key.key()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Stores (or replaces) a stage output of a line.
pub fn set(db: &Connection, campaign: &str, line: &str, key: StageKey, value: &Value) -> Result<()> {
    db.execute(
        "INSERT INTO stage_outputs (campaign_id, cell_line_id, stage, key, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (campaign_id, cell_line_id, key) DO UPDATE SET value = excluded.value",
        params![campaign, line, key.stage(), key.key(), value.to_string(), now()],
    )?;
    Ok(())
}

/// A stored output as listed: the key as stored (imported campaigns may have others).
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The line.
    pub line: String,
    /// The stage.
    pub stage: String,
    /// The key as stored.
    pub key: String,
    /// The value (JSON; `null` if the text is not JSON).
    pub value: Value,
}

impl Output {
    /// The typed key, when it is one cellos writes.
    pub fn typed(&self) -> Option<StageKey> {
        StageKey::parse(&self.key)
    }
}

/// A campaign's outputs, in the order they were first written.
pub fn list(db: &Connection, campaign: &str) -> Result<Vec<Output>> {
    let mut st = db.prepare(
        "SELECT cell_line_id, stage, key, value FROM stage_outputs WHERE campaign_id = ?1 ORDER BY output_id",
    )?;
    let rows = st
        .query_map([campaign], |r| {
            let v: Option<String> = r.get(3)?;
            Ok(Output {
                line: r.get(0)?,
                stage: r.get(1)?,
                key: r.get(2)?,
                value: v.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or(Value::Null),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};
    use serde_json::json;

    #[test]
    fn outputs_are_stored_by_typed_key_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::Campaigns).unwrap();
        db.execute("INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES ('c1', 'posh', 'running')", [])
            .unwrap();
        assert_eq!(get(&db, "c1", "U2OS", StageKey::McbVialCount).unwrap(), None);
        set(&db, "c1", "U2OS", StageKey::McbVialCount, &json!(12)).unwrap();
        set(&db, "c1", "U2OS", StageKey::OptimalTbhpDose, &json!({ "value": 45.5 })).unwrap();
        set(&db, "c1", "U2OS", StageKey::McbVialCount, &json!(13)).unwrap();
        assert_eq!(get(&db, "c1", "U2OS", StageKey::McbVialCount).unwrap(), Some(json!(13)));
        let all = list(&db, "c1").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].stage.as_str(), all[0].typed()), ("mcb", Some(StageKey::McbVialCount)));
        assert_eq!(all[1].value["value"], 45.5);
        // Every key is one string, and reads back as itself.
        let keys: std::collections::HashSet<&str> = StageKey::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(keys.len(), StageKey::ALL.len());
        assert!(StageKey::ALL.iter().all(|k| StageKey::parse(k.key()) == Some(*k)));
    }
}
