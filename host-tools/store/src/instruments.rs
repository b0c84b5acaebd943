//! Who each instrument of a campaign is (`campaigns.db`, `campaign_instruments`): what it answered
//! when the campaign first reached it, so a resumed campaign can refuse another one.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::time::now;

/// Who an instrument is: what it answered, field by field (STAR: `serial`, `firmware`; reader:
/// `instance`, `seed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentId {
    /// The answers.
    pub fields: BTreeMap<String, String>,
}

impl InstrumentId {
    /// An identity from `(field, value)` pairs.
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> InstrumentId {
        InstrumentId { fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }
}

impl std::fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// The identity a campaign last recorded for an instrument role (`star`, `reader`).
pub fn recorded(db: &Connection, campaign: &str, role: &str) -> Result<Option<InstrumentId>> {
    let v: Option<String> = db
        .query_row(
            "SELECT identity FROM campaign_instruments WHERE campaign_id = ?1 AND role = ?2 ORDER BY entry_id DESC LIMIT 1",
            params![campaign, role],
            |r| r.get(0),
        )
        .optional()?;
    v.map(|v| {
        serde_json::from_str(&v)
            .map_err(|e| StoreError::Invalid(format!("the {role} identity recorded for campaign `{campaign}`: {e}")))
    })
    .transpose()
}

/// Records an instrument's identity for a role, on `port`, now; `note` says why it replaces an earlier
/// one, if it does.
pub fn record(
    db: &Connection,
    campaign: &str,
    role: &str,
    identity: &InstrumentId,
    port: &str,
    note: Option<&str>,
) -> Result<()> {
    let text = serde_json::to_string(identity).map_err(|e| StoreError::Invalid(format!("identity: {e}")))?;
    db.execute(
        "INSERT INTO campaign_instruments (campaign_id, role, identity, port, recorded_at, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![campaign, role, text, port, now(), note],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};

    #[test]
    fn the_last_recorded_identity_is_the_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::Campaigns).unwrap();
        db.execute("INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES ('c1', 'x', 'running')", [])
            .unwrap();
        assert_eq!(recorded(&db, "c1", "star").unwrap(), None);
        let a = InstrumentId::new([("serial", "0000AB12".to_string()), ("firmware", "1.0".to_string())]);
        let b = InstrumentId::new([("serial", "0000CD34".to_string())]);
        record(&db, "c1", "star", &a, "/dev/ttyUSB0", None).unwrap();
        record(&db, "c1", "star", &b, "/dev/ttyUSB1", Some("a new twin")).unwrap();
        assert_eq!(recorded(&db, "c1", "star").unwrap(), Some(b));
        assert_eq!(recorded(&db, "c1", "reader").unwrap(), None);
        assert_eq!(a.to_string(), "firmware 1.0, serial 0000AB12");
    }
}
