//! The legacy platform's four databases, read directly (read-only) and copied into the store.
//!
//! One table map ([`TABLES`]) says which legacy table goes where and how its columns are named on both
//! sides; the import copy, the legacy-side value and the database-side value that `verify` compares all
//! come from it. Legacy ids are kept where the store has the same key, so references (a simulation run's
//! parameter version) stay valid. The legacy schema had no CellROX or segmentation tables: those stay
//! empty after a legacy import (import the YAML for them).

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use std::collections::HashMap;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params_from_iter};
use serde_json::{Map, Value, json};

use super::{Kind, Summary, begin, sha256};
use crate::error::{Result, StoreError};
use crate::store::{Db, Store};

/// One legacy table and its place in the store.
pub struct Table {
    /// Legacy file.
    pub file: &'static str,
    /// Legacy table.
    pub legacy: &'static str,
    /// Store database.
    pub db: Db,
    /// Store table.
    pub table: &'static str,
    /// (legacy column, store column) pairs; the legacy names are the compared shape.
    pub columns: &'static [(&'static str, &'static str)],
    /// Store columns filled by the copy: position (the row's index), or a fixed value.
    pub fill: &'static [(&'static str, Fill)],
    /// Legacy ordering.
    pub order: &'static str,
    /// The natural key (store columns): a legacy row whose key is already in the store (from another
    /// source of the same data, such as the YAML or the CSV) is merged, not added twice.
    pub key: &'static [&'static str],
    /// The store's integer id column when it is not the key: kept from the legacy row unless another
    /// row already has it, in which case the row gets a new id (and references to it follow).
    pub id: Option<&'static str>,
    /// Store columns that describe where a row came from (notes, dates of entry): not compared when
    /// merging, the store's value is kept.
    pub meta: &'static [&'static str],
    /// Columns referring to the id of another table of the map (its index in [`TABLES`]).
    pub refs: &'static [(&'static str, usize)],
}

/// How a store column without a legacy counterpart is filled.
#[derive(Copy, Clone, Debug)]
pub enum Fill {
    /// The row's index in legacy order.
    Position,
    /// The time of the import.
    Now,
    /// A fixed text.
    Text(&'static str),
    /// The import id.
    ImportId,
}

const SIM: &str = "simulation_params.db";
const LINES: &str = "cell_lines.db";
const CAMP: &str = "campaigns.db";
const RES: &str = "experimental_results.db";

/// The map of legacy tables.
pub const TABLES: &[Table] = &[
    Table {
        file: SIM,
        legacy: "sim_cell_line_params",
        db: Db::SimulationParams,
        table: "cell_line_params",
        columns: &[
            ("param_id", "param_id"),
            ("cell_line_id", "cell_line_id"),
            ("doubling_time_h", "doubling_time_h"),
            ("max_confluence", "max_confluence"),
            ("max_passage", "max_passage"),
            ("senescence_rate", "senescence_rate"),
            ("seeding_efficiency", "seeding_efficiency"),
            ("passage_stress", "passage_stress"),
            ("cell_count_cv", "cell_count_cv"),
            ("viability_cv", "viability_cv"),
            ("biological_cv", "biological_cv"),
            ("coating_required", "coating_required"),
            ("version", "version"),
            ("valid_from", "valid_from"),
            ("valid_to", "valid_to"),
            ("notes", "notes"),
        ],
        fill: &[("import_id", Fill::ImportId)],
        order: "param_id",
        key: &["cell_line_id", "version"],
        id: Some("param_id"),
        meta: &["valid_from", "notes"],
        refs: &[],
    },
    Table {
        file: SIM,
        legacy: "compound_sensitivity",
        db: Db::SimulationParams,
        table: "compound_sensitivity",
        columns: &[
            ("sensitivity_id", "sensitivity_id"),
            ("compound_name", "compound_name"),
            ("cell_line_id", "cell_line_id"),
            ("ic50_um", "ic50_um"),
            ("hill_slope", "hill_slope"),
            ("confidence_interval_low", "confidence_interval_low"),
            ("confidence_interval_high", "confidence_interval_high"),
            ("source", "source"),
            ("version", "version"),
            ("valid_from", "valid_from"),
            ("notes", "notes"),
        ],
        fill: &[("position", Fill::Position)],
        order: "sensitivity_id",
        key: &["compound_name", "cell_line_id", "version"],
        id: Some("sensitivity_id"),
        meta: &["valid_from", "notes"],
        refs: &[],
    },
    Table {
        file: SIM,
        legacy: "default_params",
        db: Db::SimulationParams,
        table: "default_params",
        columns: &[("param_name", "param_name"), ("param_value", "param_value"), ("description", "description")],
        fill: &[("position", Fill::Position)],
        order: "rowid",
        key: &["param_name"],
        id: None,
        meta: &["description"],
        refs: &[],
    },
    Table {
        file: SIM,
        legacy: "simulation_runs",
        db: Db::SimulationParams,
        table: "simulation_runs",
        columns: &[
            ("run_id", "run_id"),
            ("campaign_id", "campaign_id"),
            ("cell_line_id", "cell_line_id"),
            ("param_version", "param_version"),
            ("run_date", "run_date"),
            ("results_path", "results_path"),
            ("metadata", "metadata"),
        ],
        fill: &[],
        order: "run_id",
        key: &["run_id"],
        id: None,
        meta: &[],
        refs: &[("param_version", 0)],
    },
    Table {
        file: LINES,
        legacy: "cell_lines",
        db: Db::CellLines,
        table: "cell_lines",
        columns: &[
            ("cell_line_id", "cell_line_id"),
            ("display_name", "display_name"),
            ("cell_type", "cell_type"),
            ("growth_media", "growth_media"),
            ("wash_buffer", "wash_buffer"),
            ("detach_reagent", "detach_reagent"),
            ("coating_required", "coating_required"),
            ("coating_reagent", "coating_reagent"),
            ("cost_tier", "cost_tier"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        ],
        fill: &[("position", Fill::Position)],
        order: "rowid",
        key: &["cell_line_id"],
        id: None,
        meta: &["created_at", "updated_at"],
        refs: &[],
    },
    Table {
        file: LINES,
        legacy: "cell_line_characteristics",
        db: Db::CellLines,
        table: "cell_line_characteristics",
        columns: &[
            ("char_id", "char_id"),
            ("cell_line_id", "cell_line_id"),
            ("characteristic", "characteristic"),
            ("value", "value"),
            ("notes", "notes"),
        ],
        fill: &[("position", Fill::Position)],
        order: "char_id",
        key: &["cell_line_id", "characteristic"],
        id: Some("char_id"),
        meta: &["notes"],
        refs: &[],
    },
    Table {
        file: LINES,
        legacy: "cell_line_protocols",
        db: Db::CellLines,
        table: "cell_line_protocols",
        columns: &[
            ("protocol_id", "protocol_id"),
            ("cell_line_id", "cell_line_id"),
            ("protocol_type", "protocol_type"),
            ("vessel_type", "vessel_type"),
            ("parameters", "parameters"),
        ],
        fill: &[("position", Fill::Position)],
        order: "protocol_id",
        key: &["cell_line_id", "protocol_type", "vessel_type"],
        id: Some("protocol_id"),
        meta: &[],
        refs: &[],
    },
    Table {
        file: LINES,
        legacy: "cell_line_inventory",
        db: Db::CellLines,
        table: "cell_line_inventory",
        columns: &[
            ("inventory_id", "inventory_id"),
            ("cell_line_id", "cell_line_id"),
            ("vial_id", "vial_id"),
            ("passage_number", "passage_number"),
            ("freeze_date", "freeze_date"),
            ("location", "location"),
            ("status", "status"),
            ("notes", "notes"),
            ("created_at", "created_at"),
        ],
        fill: &[],
        order: "inventory_id",
        key: &["vial_id"],
        id: Some("inventory_id"),
        meta: &["created_at"],
        refs: &[],
    },
    Table {
        file: LINES,
        legacy: "cell_line_usage",
        db: Db::CellLines,
        table: "cell_line_usage",
        columns: &[
            ("usage_id", "usage_id"),
            ("cell_line_id", "cell_line_id"),
            ("vial_id", "vial_id"),
            ("execution_id", "execution_id"),
            ("usage_date", "usage_date"),
            ("purpose", "purpose"),
            ("notes", "notes"),
        ],
        fill: &[],
        order: "usage_id",
        key: &["vial_id", "usage_date"],
        id: Some("usage_id"),
        meta: &["notes"],
        refs: &[],
    },
    Table {
        file: CAMP,
        legacy: "campaigns",
        db: Db::Campaigns,
        table: "campaigns",
        columns: &[
            ("campaign_id", "campaign_id"),
            ("campaign_type", "campaign_type"),
            ("goal", "goal"),
            ("start_date", "start_date"),
            ("end_date", "end_date"),
            ("status", "status"),
            ("config", "config"),
            ("results_summary", "results_summary"),
            ("created_at", "created_at"),
        ],
        fill: &[("position", Fill::Position)],
        order: "rowid",
        key: &["campaign_id"],
        id: None,
        meta: &["created_at"],
        refs: &[],
    },
    Table {
        file: CAMP,
        legacy: "campaign_iterations",
        db: Db::Campaigns,
        table: "campaign_iterations",
        columns: &[
            ("iteration_id", "iteration_id"),
            ("campaign_id", "campaign_id"),
            ("iteration_number", "iteration_number"),
            ("timestamp", "timestamp"),
            ("proposals", "proposals"),
            ("results", "results"),
            ("model_state", "model_state"),
            ("metrics", "metrics"),
        ],
        fill: &[],
        order: "iteration_id",
        key: &["campaign_id", "iteration_number"],
        id: Some("iteration_id"),
        meta: &[],
        refs: &[],
    },
    Table {
        file: CAMP,
        legacy: "experiments",
        db: Db::Campaigns,
        table: "experiments",
        columns: &[
            ("experiment_id", "experiment_id"),
            ("campaign_id", "campaign_id"),
            ("experiment_type", "experiment_type"),
            ("cell_line_id", "cell_line_id"),
            ("start_date", "start_date"),
            ("end_date", "end_date"),
            ("status", "status"),
            ("metadata", "metadata"),
            ("created_at", "created_at"),
        ],
        fill: &[],
        order: "rowid",
        key: &["experiment_id"],
        id: None,
        meta: &["created_at"],
        refs: &[],
    },
    Table {
        file: CAMP,
        legacy: "campaign_experiments",
        db: Db::Campaigns,
        table: "campaign_experiments",
        columns: &[
            ("campaign_id", "campaign_id"),
            ("experiment_id", "experiment_id"),
            ("iteration_number", "iteration_number"),
            ("added_at", "added_at"),
        ],
        fill: &[],
        order: "rowid",
        key: &["campaign_id", "experiment_id"],
        id: None,
        meta: &["added_at"],
        refs: &[],
    },
    Table {
        file: RES,
        legacy: "measurements",
        db: Db::ExperimentalResults,
        table: "measurements",
        columns: &[
            ("id", "source_row"),
            ("plate_id", "plate_id"),
            ("well_id", "well_id"),
            ("cell_line", "cell_line"),
            ("compound", "compound"),
            ("dose_uM", "dose_uM"),
            ("time_h", "time_h"),
            ("raw_signal", "raw_signal"),
            ("is_control", "is_control"),
            ("date", "date"),
            ("incubator_id", "incubator_id"),
            ("liquid_handler_id", "liquid_handler_id"),
            ("viability_norm", "viability_norm"),
            ("created_at", "created_at"),
        ],
        fill: &[("import_id", Fill::ImportId)],
        order: "id",
        key: &["plate_id", "well_id", "time_h"],
        id: None,
        meta: &["source_row", "created_at"],
        refs: &[],
    },
];

fn open_legacy(dir: &Path, file: &str) -> Result<Connection> {
    let path = dir.join(file);
    if !path.exists() {
        return Err(StoreError::NotFound(format!("{}: no such legacy database", path.display())));
    }
    Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open { path, source })
}

fn rows(conn: &Connection, sql: &str) -> Result<Vec<Vec<SqlValue>>> {
    let mut st = conn.prepare(sql)?;
    let n = st.column_count();
    let out = st
        .query_map([], |r| (0..n).map(|i| r.get::<_, SqlValue>(i)).collect::<rusqlite::Result<Vec<_>>>())?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

fn legacy_rows(dir: &Path, t: &Table) -> Result<Vec<Vec<SqlValue>>> {
    let conn = open_legacy(dir, t.file)?;
    let cols: Vec<&str> = t.columns.iter().map(|(l, _)| *l).collect();
    rows(&conn, &format!("SELECT {} FROM \"{}\" ORDER BY {}", cols.join(", "), t.legacy, t.order)).map_err(
        |e| match e {
            StoreError::Sql(s) => {
                StoreError::input(&dir.join(t.file).display().to_string(), format!("table {}", t.legacy), s.to_string())
            }
            other => other,
        },
    )
}

fn sha_of(dir: &Path) -> Result<String> {
    let mut all = Vec::new();
    for f in [SIM, LINES, CAMP, RES] {
        let p = dir.join(f);
        all.extend(std::fs::read(&p).map_err(|source| StoreError::Io { path: p, source })?);
    }
    Ok(sha256(&all))
}

/// Imports the four legacy databases of `dir`: each store database in one transaction.
pub fn import(store: &mut Store, dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary> {
    let mut summary = Summary::new(Kind::Legacy, dir);
    let sha = sha_of(dir)?;
    // Read everything first: a bad legacy file stops the import before anything is written.
    let data: Vec<Vec<Vec<SqlValue>>> = TABLES.iter().map(|t| legacy_rows(dir, t)).collect::<Result<_>>()?;
    let total: u64 = data.iter().map(|d| d.len() as u64).sum();
    let mut done: u64 = 0;
    let now = crate::time::now();
    let source = dir.display().to_string();
    // All four transactions are prepared before any commits, so a failure in one leaves all unchanged.
    let (params, lines, campaigns, results) =
        (&mut store.params, &mut store.lines, &mut store.campaigns, &mut store.results);
    let txs = [params.transaction()?, lines.transaction()?, campaigns.transaction()?, results.transaction()?];
    let mut ids = [0i64; 4];
    for (i, tx) in txs.iter().enumerate() {
        match begin(tx, Kind::Legacy, &source, &sha)? {
            Some(id) => ids[i] = id,
            None => {
                summary.already_imported = true;
                return Ok(summary);
            }
        }
    }
    // Compounds first: sensitivities refer to them.
    let sens = &data[1];
    let mut compounds: Vec<(String, f64)> = Vec::new();
    for row in sens {
        if let (SqlValue::Text(name), SqlValue::Real(hill)) = (&row[1], &row[4])
            && !compounds.iter().any(|(n, _)| n == name)
        {
            compounds.push((name.clone(), *hill));
        }
    }
    for (i, (name, hill)) in compounds.iter().enumerate() {
        txs[0].execute(
            "INSERT INTO compounds (compound_name, hill_slope, position) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            rusqlite::params![name, hill, i as i64],
        )?;
    }
    // Legacy id → store id, per table, where they differ (a row merged into one already present, or
    // given a new id because its own was taken).
    let mut moved: Vec<HashMap<i64, i64>> = vec![HashMap::new(); TABLES.len()];
    for (ti, (t, rows)) in TABLES.iter().zip(&data).enumerate() {
        let k = Db::ALL.iter().position(|d| *d == t.db).unwrap_or(0);
        let file = dir.join(t.file).display().to_string();
        let mut merge = Merge::prepare(&txs[k], t)?;
        let mut present = 0u64;
        for (i, row) in rows.iter().enumerate() {
            let at = || format!("table {}, row {}", t.legacy, i + 1);
            let mut args = row.clone();
            for (col, target) in t.refs {
                let c = merge.position(col);
                if let SqlValue::Integer(old) = args[c]
                    && let Some(new) = moved[*target].get(&old)
                {
                    args[c] = SqlValue::Integer(*new);
                }
            }
            for (_, f) in t.fill {
                args.push(match f {
                    Fill::Position => SqlValue::Integer(i as i64),
                    Fill::Now => SqlValue::Text(now.clone()),
                    Fill::Text(s) => SqlValue::Text((*s).to_string()),
                    Fill::ImportId => SqlValue::Integer(ids[k]),
                });
            }
            let legacy_id = merge.id.and_then(|c| match args[c] {
                SqlValue::Integer(v) => Some(v),
                _ => None,
            });
            let stored_id = match merge.find(&args)? {
                Some(existing) => {
                    merge.merge_into(&existing, &args).map_err(|m| StoreError::input(&file, at(), m))??;
                    present += 1;
                    existing.id
                }
                None => merge.insert(&mut args).map_err(|e| {
                    StoreError::input(&file, at(), format!("cannot be stored: {}", crate::store::describe(&e)))
                })?,
            };
            if let (Some(old), Some(new)) = (legacy_id, stored_id)
                && old != new
            {
                moved[ti].insert(old, new);
            }
            done += 1;
            if done.is_multiple_of(5000) {
                progress(done, total);
            }
        }
        summary.add(t.table, rows.len() as u64 - present);
        if present > 0 {
            summary.present(t.table, present);
            if !t.meta.is_empty() {
                summary.warnings.push(format!(
                    "{present} rows of {} were already in the store with the same values; the store's {} kept",
                    t.legacy,
                    t.meta.join(", ")
                ));
            }
        }
    }
    for tx in txs {
        tx.commit()?;
    }
    progress(total, total);
    Ok(summary)
}

/// The statements that merge one table's legacy rows into the store.
struct Merge<'t> {
    table: &'static Table,
    /// The store columns of an insert, in argument order.
    cols: Vec<&'static str>,
    /// Position of the integer id column in `cols`.
    id: Option<usize>,
    /// Positions (in `cols`) of the compared columns: neither key, id nor meta, nor filled.
    compared: Vec<usize>,
    find: rusqlite::Statement<'t>,
    insert: rusqlite::Statement<'t>,
    id_taken: Option<rusqlite::Statement<'t>>,
    tx: &'t Transaction<'t>,
}

/// A row already in the store under a legacy row's key.
struct Existing {
    rowid: i64,
    id: Option<i64>,
    values: Vec<SqlValue>,
}

impl<'t> Merge<'t> {
    fn prepare(tx: &'t Transaction<'t>, t: &'static Table) -> Result<Merge<'t>> {
        let mut cols: Vec<&'static str> = t.columns.iter().map(|(_, s)| *s).collect();
        let mapped = cols.len();
        cols.extend(t.fill.iter().map(|(c, _)| *c));
        let pos = |c: &str| cols.iter().position(|x| *x == c);
        let compared: Vec<usize> = (0..mapped)
            .filter(|&i| !t.key.contains(&cols[i]) && !t.meta.contains(&cols[i]) && Some(cols[i]) != t.id)
            .collect();
        let mut wh: Vec<String> = t.key.iter().enumerate().map(|(i, c)| format!("{c} IS ?{}", i + 1)).collect();
        if t.table == "measurements" {
            wh.push("campaign_id IS NULL".into());
        }
        let shown: Vec<&str> = compared.iter().map(|&i| cols[i]).collect();
        let find = tx.prepare(&format!(
            "SELECT rowid, {}, {} FROM {} WHERE {}",
            t.id.unwrap_or("NULL"),
            if shown.is_empty() { "NULL".to_string() } else { shown.join(", ") },
            t.table,
            wh.join(" AND ")
        ))?;
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let insert =
            tx.prepare(&format!("INSERT INTO {} ({}) VALUES ({})", t.table, cols.join(", "), marks.join(", ")))?;
        let id_taken = match t.id {
            Some(c) => Some(tx.prepare(&format!("SELECT 1 FROM {} WHERE {c} = ?1", t.table))?),
            None => None,
        };
        let id = t.id.and_then(pos);
        Ok(Merge { table: t, cols, id, compared, find, insert, id_taken, tx })
    }

    fn position(&self, col: &str) -> usize {
        self.cols.iter().position(|c| *c == col).unwrap_or(0)
    }

    /// The store's row with the key of `args`, if any.
    fn find(&mut self, args: &[SqlValue]) -> Result<Option<Existing>> {
        let key: Vec<&SqlValue> = self.table.key.iter().map(|c| &args[self.position(c)]).collect();
        let n = self.compared.len().max(1);
        let found = self
            .find
            .query_row(params_from_iter(key), |r| {
                Ok(Existing {
                    rowid: r.get(0)?,
                    id: r.get(1)?,
                    values: (0..n).map(|i| r.get::<_, SqlValue>(2 + i)).collect::<rusqlite::Result<_>>()?,
                })
            })
            .optional()?;
        Ok(found)
    }

    /// Merges a legacy row into the store's row of the same key: a value the store lacks (NULL) is
    /// taken from the legacy row; a value both have must agree, or the merge is refused (`Err` naming
    /// the column and both values).
    fn merge_into(&self, existing: &Existing, args: &[SqlValue]) -> std::result::Result<Result<()>, String> {
        let mut fills = Vec::new();
        for (j, &c) in self.compared.iter().enumerate() {
            let (have, new) = (&existing.values[j], &args[c]);
            if super::same_value(have, new) || *new == SqlValue::Null {
                continue;
            }
            if *have == SqlValue::Null {
                fills.push((self.cols[c], new.clone()));
                continue;
            }
            let key: Vec<String> =
                self.table.key.iter().map(|k| format!("{k} {}", to_json(&args[self.position(k)]))).collect();
            return Err(format!(
                "the store already has this row ({}) with {} = {}, the legacy database has {}",
                key.join(", "),
                self.cols[c],
                to_json(have),
                to_json(new)
            ));
        }
        Ok((|| {
            for (col, v) in fills {
                self.tx.execute(
                    &format!("UPDATE {} SET {col} = ?1 WHERE rowid = ?2", self.table.table),
                    rusqlite::params![v, existing.rowid],
                )?;
            }
            Ok(())
        })())
    }

    /// Inserts a new row; its legacy id is kept unless taken. Returns the row's id.
    fn insert(&mut self, args: &mut [SqlValue]) -> rusqlite::Result<Option<i64>> {
        if let (Some(c), Some(taken)) = (self.id, self.id_taken.as_mut())
            && taken.exists([&args[c]])?
        {
            args[c] = SqlValue::Null;
        }
        self.insert.execute(params_from_iter(args.iter()))?;
        Ok(self.id.map(|_| self.tx.last_insert_rowid()))
    }
}

fn to_json(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(x) => json!(x),
        SqlValue::Text(s) => json!(s),
        SqlValue::Blob(b) => json!(format!("{} bytes", b.len())),
    }
}

fn shape(tables: impl Iterator<Item = (&'static Table, Vec<Vec<SqlValue>>)>) -> Value {
    let mut m = Map::new();
    for (t, rows) in tables {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| Value::Object(t.columns.iter().zip(r).map(|((l, _), v)| ((*l).to_string(), to_json(v))).collect()))
            .collect();
        m.insert(format!("{}.{}", t.file, t.legacy), Value::Array(list));
    }
    Value::Object(m)
}

/// The legacy databases' rows, per table.
pub fn source_value(dir: &Path) -> Result<Value> {
    let data = TABLES.iter().map(|t| legacy_rows(dir, t).map(|r| (t, r))).collect::<Result<Vec<_>>>()?;
    Ok(shape(data.into_iter()))
}

/// The store's rows of the legacy tables, in the legacy shape (measurements: those copied from the
/// legacy database).
pub fn export_value(store: &Store) -> Result<Value> {
    let mut data = Vec::new();
    for t in TABLES {
        let cols: Vec<&str> = t.columns.iter().map(|(_, s)| *s).collect();
        let key = if t.fill.iter().any(|(_, f)| matches!(f, Fill::Position)) { "position" } else { t.columns[0].1 };
        let filter = if t.table == "measurements" {
            " WHERE import_id IN (SELECT import_id FROM imports WHERE kind = 'legacy')"
        } else {
            ""
        };
        data.push((
            t,
            rows(store.conn(t.db), &format!("SELECT {} FROM {}{filter} ORDER BY {key}", cols.join(", "), t.table))?,
        ));
    }
    Ok(shape(data.into_iter()))
}
