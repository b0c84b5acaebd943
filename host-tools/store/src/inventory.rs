//! The vial inventory (`cell_lines.db`) as campaigns write it: banks freeze vials, the next stage thaws
//! one. Each call is idempotent (a repeat after a crash adds nothing), so a stage can be redone.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::error::Result;
use crate::time::now;

/// Makes sure a cell line has a row (a minimal one, when the line was never imported).
pub fn ensure_line(db: &Connection, line: &str) -> Result<()> {
    db.execute(
        "INSERT OR IGNORE INTO cell_lines (cell_line_id, display_name, cell_type, growth_media, position, created_at, updated_at) \
         VALUES (?1, ?1, 'unspecified', 'unspecified', (SELECT coalesce(max(position), 0) + 1 FROM cell_lines), ?2, ?2)",
        params![line, now()],
    )?;
    Ok(())
}

/// Puts a frozen vial in the inventory (available, in `location`), unless it is there already.
pub fn freeze(db: &Connection, line: &str, vial: &str, passage: i64, location: &str, notes: &Value) -> Result<()> {
    db.execute(
        "INSERT OR IGNORE INTO cell_line_inventory (cell_line_id, vial_id, passage_number, freeze_date, location, status, notes, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'available', ?6, ?4)",
        params![line, vial, passage, now(), location, notes.to_string()],
    )?;
    Ok(())
}

/// Marks a vial used (by `execution`, for `purpose`), recording the use once.
pub fn use_vial(db: &Connection, line: &str, vial: &str, execution: Option<&str>, purpose: Option<&str>) -> Result<()> {
    db.execute("UPDATE cell_line_inventory SET status = 'used' WHERE vial_id = ?1", [vial])?;
    db.execute(
        "INSERT INTO cell_line_usage (cell_line_id, vial_id, execution_id, usage_date, purpose) \
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM cell_line_usage WHERE vial_id = ?2)",
        params![line, vial, execution, now(), purpose],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};
    use serde_json::json;

    #[test]
    fn banking_writes_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::CellLines).unwrap();
        for _ in 0..2 {
            ensure_line(&db, "U2OS").unwrap();
            freeze(&db, "U2OS", "c1_U2OS_MCB_01", 1, "LN2", &json!({ "stage": "mcb" })).unwrap();
            use_vial(&db, "U2OS", "c1_U2OS_MCB_01", Some("c1"), Some("thawed for the working cell bank")).unwrap();
        }
        let n = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(n("SELECT count(*) FROM cell_lines"), 1);
        assert_eq!(n("SELECT count(*) FROM cell_line_inventory WHERE status = 'used'"), 1);
        assert_eq!(n("SELECT count(*) FROM cell_line_usage"), 1);
    }
}
