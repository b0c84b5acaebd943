//! The journal (`campaigns.db`): every liquid operation and incubation of a campaign, written before it
//! is sent and marked after, so a restarted gateway knows what certainly happened, what certainly did
//! not, and what it must ask the instrument about.
//!
//! The store does not know the operations: an entry holds any serde type, stored as JSON (the gateway's
//! is its journal operation enum).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};
use crate::time::now;

/// Where a journal entry stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JournalState {
    /// Written before sending; the outcome is not known yet (or the gateway stopped before it was).
    Pending,
    /// The instrument confirmed it.
    Done,
    /// Left pending by a stopped gateway, found done on the instrument afterwards.
    Reconciled,
    /// The instrument or the safety envelope refused it: it did not happen.
    Failed,
    /// The link failed mid-way: whether it happened must be asked of the instrument.
    Unknown,
}

impl JournalState {
    /// Every state.
    pub const ALL: [JournalState; 5] = [
        JournalState::Pending,
        JournalState::Done,
        JournalState::Reconciled,
        JournalState::Failed,
        JournalState::Unknown,
    ];

    /// The word stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Pending => "pending",
            JournalState::Done => "done",
            JournalState::Reconciled => "reconciled",
            JournalState::Failed => "failed",
            JournalState::Unknown => "unknown",
        }
    }

    /// The state of a stored word.
    pub fn parse(s: &str) -> Option<JournalState> {
        JournalState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The operation certainly happened (done, or reconciled).
    pub fn happened(self) -> bool {
        matches!(self, JournalState::Done | JournalState::Reconciled)
    }
}

impl ToSql for JournalState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
    }
}

impl FromSql for JournalState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        JournalState::parse(s).ok_or_else(|| FromSqlError::Other(format!("journal state `{s}`").into()))
    }
}

/// One entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<O> {
    /// The iteration it belongs to.
    pub iteration: i64,
    /// Its place in the iteration, from 1.
    pub seq: i64,
    /// Where it stands.
    pub state: JournalState,
    /// The operation.
    pub op: O,
    /// When it was written (just before it was first sent).
    pub sent_at: String,
}

/// A campaign's entries, in the order they were written. An operation that does not read as `O` is
/// an error naming the entry.
pub fn entries<O: DeserializeOwned>(db: &Connection, campaign: &str) -> Result<Vec<Entry<O>>> {
    let mut st =
        db.prepare("SELECT iteration, seq, state, op, sent_at FROM journal WHERE campaign_id = ?1 ORDER BY entry_id")?;
    let rows: Vec<(i64, i64, JournalState, String, String)> = st
        .query_map([campaign], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(iteration, seq, state, op, sent_at)| {
            let op = serde_json::from_str(&op).map_err(|e| {
                StoreError::Invalid(format!("journal entry {iteration}/{seq} of campaign `{campaign}`: {e}"))
            })?;
            Ok(Entry { iteration, seq, state, op, sent_at })
        })
        .collect()
}

/// Writes a new entry, pending, sent now; returns the time written.
pub fn write<O: Serialize>(db: &Connection, campaign: &str, iteration: i64, seq: i64, op: &O) -> Result<String> {
    let op = serde_json::to_string(op).map_err(|e| StoreError::Invalid(format!("journal operation: {e}")))?;
    let at = now();
    db.execute(
        "INSERT INTO journal (campaign_id, iteration, seq, op, state, sent_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
        params![campaign, iteration, seq, op, at],
    )?;
    Ok(at)
}

/// Sets an entry's state (and its detail, when given), now.
pub fn mark(
    db: &Connection,
    campaign: &str,
    iteration: i64,
    seq: i64,
    state: JournalState,
    detail: Option<&str>,
) -> Result<()> {
    db.execute(
        "UPDATE journal SET state = ?4, detail = coalesce(?5, detail), done_at = ?6 WHERE campaign_id = ?1 AND iteration = ?2 AND seq = ?3",
        params![campaign, iteration, seq, state, detail, now()],
    )?;
    Ok(())
}

/// How many entries a campaign has, and how many of them did not certainly happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Entries.
    pub entries: i64,
    /// Entries not done nor reconciled.
    pub not_done: i64,
}

/// The counts of a campaign's journal.
pub fn counts(db: &Connection, campaign: &str) -> Result<Counts> {
    Ok(db.query_row(
        "SELECT count(*), count(*) FILTER (WHERE state NOT IN ('done', 'reconciled')) FROM journal WHERE campaign_id = ?1",
        [campaign],
        |r| Ok(Counts { entries: r.get(0)?, not_done: r.get(1)? }),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Op {
        Move { to: String },
        Wait(f64),
    }

    #[test]
    fn entries_are_written_marked_and_read_back_typed() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::Campaigns).unwrap();
        db.execute("INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES ('c1', 'x', 'running')", [])
            .unwrap();
        let first = write(&db, "c1", 1, 1, &Op::Move { to: "A1".into() }).unwrap();
        let second = write(&db, "c1", 1, 2, &Op::Wait(24.0)).unwrap();
        assert!(crate::time::parse_micros(&first) <= crate::time::parse_micros(&second));
        assert!(write(&db, "c1", 1, 2, &Op::Wait(1.0)).is_err(), "one entry per (iteration, seq)");
        mark(&db, "c1", 1, 1, JournalState::Done, None).unwrap();
        mark(&db, "c1", 1, 2, JournalState::Unknown, Some("time-out")).unwrap();
        let e: Vec<Entry<Op>> = entries(&db, "c1").unwrap();
        assert_eq!(
            e,
            vec![
                Entry {
                    iteration: 1,
                    seq: 1,
                    state: JournalState::Done,
                    op: Op::Move { to: "A1".into() },
                    sent_at: first
                },
                Entry { iteration: 1, seq: 2, state: JournalState::Unknown, op: Op::Wait(24.0), sent_at: second },
            ]
        );
        assert_eq!(counts(&db, "c1").unwrap(), Counts { entries: 2, not_done: 1 });
        let detail: String = db.query_row("SELECT detail FROM journal WHERE seq = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(detail, "time-out");
        // An operation of another shape is an error naming the entry.
        let e = entries::<u32>(&db, "c1").unwrap_err().to_string();
        assert!(e.contains("journal entry 1/1 of campaign `c1`"), "{e}");
        // The schema holds the same five words as the type.
        assert!(db.execute("UPDATE journal SET state = 'maybe' WHERE seq = 1", []).is_err());
        for s in JournalState::ALL {
            db.execute("UPDATE journal SET state = ?1 WHERE seq = 1", [s]).unwrap();
            assert_eq!(entries::<Op>(&db, "c1").unwrap()[0].state, s);
        }
        assert!(JournalState::ALL.iter().all(|s| JournalState::parse(s.as_str()) == Some(*s)));
        assert_eq!(JournalState::ALL.iter().filter(|s| s.happened()).count(), 2);
    }
}
