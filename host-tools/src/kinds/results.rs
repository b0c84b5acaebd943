//! Measurements: `phase0_all_plates.csv` ↔ `experimental_results.db`.
//!
//! The 12 legacy columns, each row stored with its provenance: its import (whose record names the source
//! file, by its canonical path, and the time) and its row number in the file. Rows are checked as they stream in (required fields, well names, numbers, non-negative doses,
//! a (plate, well, time) measured once per file); an error names its row and field, and the
//! transaction leaves the database as it was. A (plate, well, time) is also measured once in the store
//! (a unique index over imported rows): a row already there from another source with the same values
//! adds nothing and is counted as already present; with another value it is refused.

use std::collections::HashMap;
use std::path::Path;

use cellos_core::plate::PlateFormat;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value, json};

use super::{Kind, Summary, begin, read};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// The legacy columns, in order.
pub const COLUMNS: [&str; 12] = [
    "plate_id",
    "well_id",
    "cell_line",
    "compound",
    "dose_uM",
    "time_h",
    "raw_signal",
    "is_control",
    "date",
    "incubator_id",
    "liquid_handler_id",
    "viability_norm",
];

/// Where `well_id`, `dose_uM` and `is_control` are in [`COLUMNS`].
const WELL: usize = 1;
const DOSE: usize = 4;
const IS_CONTROL: usize = 7;

const NUMERIC: [bool; 12] = [false, false, false, false, true, true, true, false, false, false, false, true];
const REQUIRED: [bool; 12] = [true, true, true, false, false, false, false, false, false, false, false, false];

/// One checked field: text borrowed from the record, or a number, as it will be stored.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Real(f64),
    Int(i64),
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Cell::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(x)),
            Cell::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
        })
    }
}

/// `s` without the white space around it ([`str::trim`]), looking at no character when the first and
/// the last are ASCII and not white space (a character that is not ASCII starts with a byte that is
/// not).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Checks one record; also returns its well (for the duplicate check).
fn check_row<'a>(
    file: &str,
    row: usize,
    rec: &'a csv::StringRecord,
    order: &[usize; 12],
) -> Result<([Cell<'a>; 12], u16)> {
    let at = |field: &str| format!("row {row} (line {}), field {field}", row + 1);
    let mut out: [Cell<'a>; 12] = [Cell::Null; 12];
    let mut well = 0;
    for (i, name) in COLUMNS.iter().enumerate() {
        let raw = trim(rec.get(order[i]).unwrap_or(""));
        if raw.is_empty() {
            if REQUIRED[i] {
                return Err(StoreError::input(file, at(name), "required, but empty"));
            }
            continue;
        }
        out[i] = if NUMERIC[i] {
            let x: f64 =
                raw.parse().map_err(|_| StoreError::input(file, at(name), format!("`{raw}` is not a number")))?;
            if !x.is_finite() {
                return Err(StoreError::input(file, at(name), format!("`{raw}` is not a finite number")));
            }
            if i == DOSE && x < 0.0 {
                return Err(StoreError::input(file, at(name), format!("a dose cannot be negative ({raw})")));
            }
            Cell::Real(x)
        } else if i == IS_CONTROL {
            match raw {
                "0" | "false" | "False" => Cell::Int(0),
                "1" | "true" | "True" => Cell::Int(1),
                _ => return Err(StoreError::input(file, at(name), format!("`{raw}` is not 0 or 1"))),
            }
        } else {
            if i == WELL {
                let w = PlateFormat::W1536
                    .parse_well(raw)
                    .map_err(|e| StoreError::input(file, at(name), format!("`{raw}`: {e}")))?;
                well = PlateFormat::W1536.row_major(w);
            }
            Cell::Text(raw)
        };
    }
    Ok((out, well))
}

fn header_order(file: &str, header: &csv::StringRecord) -> Result<[usize; 12]> {
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if let Some(extra) = names.iter().find(|n| !COLUMNS.contains(n)) {
        return Err(StoreError::input(
            file,
            "line 1",
            format!("unknown column `{extra}` (expected {})", COLUMNS.join(", ")),
        ));
    }
    let mut order = [0usize; 12];
    for (i, c) in COLUMNS.iter().enumerate() {
        order[i] = names
            .iter()
            .position(|n| n == c)
            .ok_or_else(|| StoreError::input(file, "line 1", format!("missing column `{c}`")))?;
    }
    Ok(order)
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(true).from_reader(bytes)
}

/// Imports a measurements CSV. `progress(done, total_bytes)` as it goes.
///
/// The file streams through: it is read once, in pieces (its SHA-256, for idempotence, computed on
/// another core from the same pieces), so memory does not grow with it. Whether the source was imported
/// before is decided at the end, and such an import is rolled back.
///
/// A file that holds more rows than the store (`Load::pick`) is loaded in bulk: without the natural
/// key's index, which is built once at the end by sorting (rows inserted one by one into it cost the
/// load half its time). When that index cannot be built, a (plate, well, time) is there twice, and
/// which row is wrong, or whether it is a row already present, is for the row-by-row load to say: the
/// bulk load is rolled back and the file is loaded again, row by row, with that load's errors and
/// counts. Either way, the result is the row-by-row load's. A bulk load that has the database to
/// itself writes with a rollback journal (see the `journal` module); a reader that opens the database during such a
/// load waits for it (the store's busy timeout, then a clear "database is locked").
pub fn import(store: &mut Store, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary> {
    let total = std::fs::metadata(path).map_err(|source| StoreError::Io { path: path.into(), source })?.len();
    // A load keeps 64 MiB of page cache while it runs, and checks no foreign key: its rows reference
    // the import it records in the same transaction, by construction. (The check costs a row a lookup,
    // and it would make each many-row INSERT of a bulk load copy every page it touches into a
    // statement journal, as would a NOT NULL or CHECK that aborts the statement rather than fails it.)
    // Both are put back whatever happens: the pragma takes effect outside a transaction only.
    store.results.execute_batch("PRAGMA cache_size = -65536; PRAGMA foreign_keys = OFF")?;
    let mut rollback_journal = false;
    let imported = (|| {
        if Load::pick(store, total)? == Load::Bulk {
            rollback_journal = journal::rollback_if_alone(&store.results);
            if let Some(summary) = import_as(store, path, total, Load::Bulk, progress)? {
                return Ok(summary);
            }
        }
        import_as(store, path, total, Load::ByRow, progress)?
            .ok_or_else(|| StoreError::Invalid("the row-by-row load asked to be run again".into()))
    })();
    if rollback_journal {
        journal::back_to_wal(&store.results);
    }
    let file = store.dir.join(crate::store::Db::ExperimentalResults.file_name());
    store
        .results
        .execute_batch("PRAGMA foreign_keys = ON; PRAGMA ignore_check_constraints = OFF; PRAGMA cache_size = -2000")?;
    let summary = imported.map_err(|e| e.writing(&file))?;
    // A large import in WAL leaves a large write-ahead log: fold it into the database now. (A load with
    // the rollback journal wrote into the database: its log is new and empty.)
    if !rollback_journal {
        store
            .results
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| StoreError::from(e).writing(&file))?;
    }
    Ok(summary)
}

/// The journal of a bulk load.
///
/// In WAL mode every page a load writes is written twice: into the log at the commit, and from the log
/// into the database at the checkpoint. With a rollback journal a page that is new to the file (every
/// page of a bulk load's rows and of the index built at its end) is written once, into the database,
/// and is not journaled at all: a load killed before its commit leaves a journal of the few pages it
/// changed that existed before, and whoever opens the database next rolls them back (and truncates the
/// new pages away). The switch needs the database to itself (no other connection may hold it, as
/// WAL requires), so a bulk load takes it only then and otherwise stays in WAL; the load puts WAL back
/// at its end, and every opening of the store sets it too ([`crate::store`]), so a load killed in
/// between leaves nothing to undo but its journal.
mod journal {
    use std::time::Duration;

    use rusqlite::Connection;

    /// Switches `conn` (outside a transaction) to a rollback journal if no other connection holds its
    /// database (in WAL, one that has read it does); true if it did. Asks once, without waiting for
    /// another connection to go.
    ///
    /// With a rollback journal the load syncs in full (the journal before the file, at every step):
    /// `NORMAL` is as safe as that in WAL only, and may leave a database in rollback mode corrupt
    /// after a power cut.
    pub(super) fn rollback_if_alone(conn: &Connection) -> bool {
        let switched = set(conn, "DELETE", Duration::ZERO).is_some_and(|mode| mode.eq_ignore_ascii_case("delete"));
        if switched && conn.pragma_update(None, "synchronous", "FULL").is_err() {
            // The load may not run with less.
            back_to_wal(conn);
            return false;
        }
        switched
    }

    /// Puts WAL back, and with it `NORMAL` syncing. If another connection is reading meanwhile (one can
    /// open it, read-only), the switch waits for it a while, and if it has not finished, the database
    /// stays in rollback mode, still syncing in full, until the store's next opening sets WAL: as
    /// correct, and only slower for readers.
    pub(super) fn back_to_wal(conn: &Connection) {
        if set(conn, "WAL", Duration::from_secs(2)).is_some_and(|mode| mode.eq_ignore_ascii_case("wal")) {
            let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        }
    }

    /// Asks for journal mode `mode`, waiting at most `wait` for another connection's lock; the mode the
    /// database is then in, or `None` if the question failed (another connection holds the database).
    fn set(conn: &Connection, mode: &str, wait: Duration) -> Option<String> {
        conn.busy_timeout(wait).ok()?;
        let now = conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get::<_, String>(0)).ok();
        conn.busy_timeout(crate::store::BUSY_TIMEOUT).ok()?;
        now
    }
}

/// How a load keeps the natural key unique.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Load {
    /// Each row checked against the index as it is inserted.
    ByRow,
    /// The index dropped for the load and built again at its end.
    Bulk,
}

/// Bytes of a CSV row, at least, for guessing how many rows a file holds (the legacy files' rows are
/// about 100 bytes): a guess that is low only makes a bulk load rarer.
const ROW_BYTES_AT_LEAST: u64 = 128;

impl Load {
    /// Bulk when the file holds more rows than the store: building the index again from all the rows
    /// then costs less than inserting the new ones into it.
    fn pick(store: &Store, file_bytes: u64) -> Result<Load> {
        let stored: i64 = store.results.query_row("SELECT ifnull(sum(rows), 0) FROM plate_stats", [], |r| r.get(0))?;
        Ok(if (stored.max(0) as u64) < file_bytes / ROW_BYTES_AT_LEAST { Load::Bulk } else { Load::ByRow })
    }
}

/// One attempt at an import; `None` when a bulk load found the natural key twice (rolled back).
fn import_as(
    store: &mut Store,
    path: &Path,
    total: u64,
    load: Load,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Summary>> {
    let file = path.display().to_string();
    let provenance = crate::verify::source_name(path);
    let mut summary = Summary::new(Kind::Results, path);
    let (loaded, sha) = super::read_hashed(path, |reader| {
        load_rows(store, &file, &provenance, reader, total, load, progress, &mut summary)
    })?;
    let tx = match loaded {
        Some(tx) => tx,
        None => return Ok(None),
    };
    let seen: Option<i64> = tx
        .query_row(
            "SELECT import_id FROM imports WHERE kind = ?1 AND sha256 = ?2",
            params![Kind::Results.name(), sha],
            |r| r.get(0),
        )
        .optional()?;
    if seen.is_some() {
        summary.already_imported = true;
        summary.rows.clear();
        return Ok(Some(summary));
    }
    tx.execute("UPDATE imports SET sha256 = ?1 WHERE import_id = (SELECT max(import_id) FROM imports)", [&sha])?;
    tx.commit()?;
    progress(total, total);
    Ok(Some(summary))
}

/// A CSV reading error at its place: a byte that is not UTF-8 is named so.
fn csv_error(file: &str, e: &csv::Error, line_before: usize) -> StoreError {
    let line = e.position().map_or(line_before, |p| p.line() as usize);
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => {
            let line = pos.as_ref().map_or(line, |p| p.line() as usize);
            StoreError::input(file, format!("line {line}"), "not valid UTF-8 text")
        }
        _ => StoreError::input(file, format!("line {line}"), e.to_string()),
    }
}

/// A checked field of a record: the text as where it lies in the record's buffer (trimmed; the record
/// travels with it), or the number as it will be stored.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Parsed {
    Null,
    Text(usize, usize),
    Real(f64),
    Int(i64),
}

impl Parsed {
    /// `cell`, a field of `rec` as [`check_row`] gave it.
    fn new(cell: Cell<'_>, rec: &csv::StringRecord) -> Parsed {
        match cell {
            Cell::Null => Parsed::Null,
            Cell::Text(t) => {
                // A slice of the record's buffer: where it starts there.
                let start = t.as_ptr() as usize - rec.as_slice().as_ptr() as usize;
                Parsed::Text(start, start + t.len())
            }
            Cell::Real(x) => Parsed::Real(x),
            Cell::Int(n) => Parsed::Int(n),
        }
    }

    /// The field, from `buf`, its record's buffer ([`csv::StringRecord::as_slice`]).
    fn cell(self, buf: &str) -> Cell<'_> {
        match self {
            Parsed::Null => Cell::Null,
            // The range was taken from this same buffer ([`Parsed::new`]): it is there.
            Parsed::Text(start, end) => Cell::Text(&buf[start..end]),
            Parsed::Real(x) => Cell::Real(x),
            Parsed::Int(n) => Cell::Int(n),
        }
    }
}

/// Checked records, in file order, and how far into the file the last one ends (bytes).
struct Batch {
    rows: Vec<(csv::StringRecord, [Parsed; 12])>,
    byte: u64,
}

/// Records in a batch.
const BATCH: usize = 1024;

/// Reads and checks the records of `source` (its header first) and sends them in batches, reusing the
/// batches (and their records' buffers) that come back on `free`; the first error ends it, sent after
/// every row before it. Stops when the receiver is gone. Returns the sums of every row it sent
/// ([`Stats`]).
fn parse(
    file: &str,
    source: impl std::io::Read,
    send: &std::sync::mpsc::SyncSender<Result<Batch>>,
    free: &std::sync::mpsc::Receiver<Batch>,
) -> Stats {
    let mut stats = Stats::default();
    let fail = |e: StoreError| {
        let _ = send.send(Err(e));
        Stats::default()
    };
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(source);
    let order = match r.headers().map_err(|e| csv_error(file, &e, 1)).and_then(|h| header_order(file, h)) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let mut row = 0usize;
    let mut batch = Batch { rows: Vec::with_capacity(BATCH), byte: 0 };
    // Records to fill, from the batches given back.
    let mut spare: Vec<csv::StringRecord> = Vec::new();
    loop {
        if spare.is_empty()
            && let Ok(back) = free.try_recv()
        {
            spare.extend(back.rows.into_iter().map(|(rec, _)| rec));
        }
        let mut rec = spare.pop().unwrap_or_default();
        let more = match r.read_record(&mut rec) {
            Ok(more) => more,
            Err(e) => {
                let _ = send.send(Ok(std::mem::replace(&mut batch, Batch { rows: Vec::new(), byte: 0 })));
                return fail(csv_error(file, &e, row + 2));
            }
        };
        if !more {
            batch.byte = r.position().byte();
            let _ = send.send(Ok(batch));
            return stats;
        }
        row += 1;
        let checked = if rec.len() != 12 {
            Err(StoreError::input(
                file,
                format!("row {row} (line {})", row + 1),
                format!("{} fields, expected 12", rec.len()),
            ))
        } else {
            check_row(file, row, &rec, &order).map(|(cells, _)| {
                stats.add(&cells);
                cells.map(|c| Parsed::new(c, &rec))
            })
        };
        match checked {
            Ok(parsed) => {
                batch.rows.push((rec, parsed));
            }
            Err(e) => {
                let _ = send.send(Ok(std::mem::replace(&mut batch, Batch { rows: Vec::new(), byte: 0 })));
                return fail(e);
            }
        }
        if batch.rows.len() == BATCH {
            batch.byte = r.position().byte();
            let full = std::mem::replace(&mut batch, Batch { rows: Vec::with_capacity(BATCH), byte: 0 });
            if send.send(Ok(full)).is_err() {
                return stats;
            }
        }
    }
}

/// Loads and checks every row inside a transaction it returns uncommitted; `None` when a bulk load
/// finds a natural key twice (rolled back: the row-by-row load says which row and why).
#[allow(clippy::too_many_arguments)]
fn load_rows<'s>(
    store: &'s mut Store,
    file: &str,
    provenance: &str,
    source: impl std::io::Read + Send,
    total: u64,
    load: Load,
    progress: &mut dyn FnMut(u64, u64),
    summary: &mut Summary,
) -> Result<Option<rusqlite::Transaction<'s>>> {
    let tx = store.results.transaction()?;
    // The per-row triggers that keep `dose_stats` and `plate_stats` are lifted for the load (they cost
    // it more than half its time) and put back before it returns; the loaded rows' sums are added once
    // at the end instead. All of it inside the transaction: another connection sees the triggers or the
    // rows with their sums, never one without the other.
    // A bulk load also lifts the natural key's index, and builds it again at the end.
    let lifted = Lifted::lift(&tx, load)?;

    // The sums of the rows added: those the parser read, less those already in the store.
    let (mut stats, mut absent) = (Stats::default(), Stats::default());
    let pending = format!("pending-{}", crate::time::now());
    let import_id = begin(&tx, Kind::Results, provenance, &pending)?
        .ok_or_else(|| StoreError::Invalid("an import is already under way".into()))?;
    // The statements that insert the rows check no CHECK constraint of the table: each row has been
    // checked for exactly those already ([`check_row`]: a dose is not negative, a control is 0 or 1; the
    // import is given, the titration columns are not), and each costs a row more than all the rest of
    // its checks. Every other statement checks them: the flag is cleared when the rows are in (setting
    // it makes every statement compile again, so it holds for the whole load), and [`import`] clears it
    // again whatever happens.
    tx.execute_batch("PRAGMA ignore_check_constraints = ON")?;
    let mut insert = tx.prepare(&insert_sql(Load::ByRow, 1))?;
    // A bulk load, which no row can conflict in, inserts `CHUNK` rows a statement.
    let mut insert_chunk = if load == Load::Bulk { Some(tx.prepare(&insert_sql(Load::Bulk, CHUNK))?) } else { None };
    // What each statement's parameters hold: a value that a statement holds already is not bound again
    // (a reset keeps the bindings), and binding text copies it. Long stretches of a file share their
    // date, line, compound, instruments and import.
    let (mut bound_one, mut bound_chunk) = (Bound::new(1), Bound::new(CHUNK));
    // A row whose (plate, well, time) is already in the store (the unique index says so): from this
    // file, it is measured twice and refused; from another source, the same measurement (every value
    // agrees) adds nothing, and a different one is refused.
    let mut existing = tx.prepare(
        "SELECT m.plate_id, m.well_id, m.cell_line, m.compound, m.dose_uM, m.time_h, m.raw_signal, m.is_control, m.date, \
         m.incubator_id, m.liquid_handler_id, m.viability_norm, i.kind || ' import of ' || i.source, m.import_id, m.source_row \
         FROM measurements m LEFT JOIN imports i ON i.import_id = m.import_id \
         WHERE m.plate_id = ?1 AND m.well_id = ?2 AND coalesce(m.time_h, -1.0) = coalesce(?3, -1.0) AND m.campaign_id IS NULL",
    )?;
    let mut present = 0u64;
    // Rows of this file found already present, by key → row: a second one is measured twice here. Kept
    // in a temporary table (SQLite's temporary store, which spills to disk), not in memory: a second
    // source of ten million rows already imported finds every one present.
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS import_present (plate_id TEXT NOT NULL, well_id TEXT NOT NULL, time_h REAL NOT NULL, \
         source_row INTEGER NOT NULL, PRIMARY KEY (plate_id, well_id, time_h)) WITHOUT ROWID; DELETE FROM temp.import_present;",
    )?;
    let mut remember =
        tx.prepare("INSERT INTO temp.import_present VALUES (?1, ?2, coalesce(?3, -1.0), ?4) ON CONFLICT DO NOTHING")?;
    let mut first_present = tx.prepare(
        "SELECT source_row FROM temp.import_present WHERE plate_id = ?1 AND well_id = ?2 AND time_h = coalesce(?3, -1.0)",
    )?;
    let mut row = 0usize;
    let mut duplicates_left = false;
    // The rows are read and checked on another core ([`parse`]) while this one stores them; they come
    // in order, and a reading error comes after every row before it, so the first error in the file is
    // the one reported.
    let loaded = std::thread::scope(|scope| -> Result<()> {
        let (send, batches) = std::sync::mpsc::sync_channel::<Result<Batch>>(8);
        let (give_back, free) = std::sync::mpsc::channel::<Batch>();
        let parser = scope.spawn(move || parse(file, source, &send, &free));
        for batch in batches {
            let batch = batch?;
            let mut one_by_one = &batch.rows[..];
            if let Some(chunk) = insert_chunk.as_mut() {
                let whole = batch.rows.len() / CHUNK * CHUNK;
                for group in batch.rows[..whole].chunks_exact(CHUNK) {
                    bound_chunk.bind_shared(chunk, import_id, row + 1)?;
                    for (k, (rec, parsed)) in group.iter().enumerate() {
                        let buf = rec.as_slice();
                        bound_chunk.bind_row(chunk, k, parsed.iter().map(|p| p.cell(buf)))?;
                    }
                    row += CHUNK;
                    chunk.raw_execute()?;
                }
                one_by_one = &batch.rows[whole..];
            }
            for (rec, parsed) in one_by_one {
                row += 1;
                let buf = rec.as_slice();
                let cells: [Cell<'_>; 12] = parsed.map(|p| p.cell(buf));
                let v = &cells;
                bound_one.bind_shared(&mut insert, import_id, row)?;
                bound_one.bind_row(&mut insert, 0, v.iter().copied())?;
                let added = insert.raw_execute()?;
                if added == 1 {
                    continue;
                }
                // Counted by the parser, but adds nothing.
                absent.add(v);
                let text = |c: Cell<'_>| if let Cell::Text(t) = c { t.to_string() } else { String::new() };
                let (plate_name, well_name) = (text(v[0]), text(v[1]));
                let at = || format!("row {row} (line {})", row + 1);
                let twice = |first: usize| {
                    StoreError::input(
                        file,
                        at(),
                        format!("plate {plate_name} well {well_name} at this time was already measured at row {first}"),
                    )
                };
                let (stored, from, first) = existing.query_row(params![v[0], v[1], v[5]], |r| {
                    let values = (0..12).map(|i| r.get::<_, SqlValue>(i)).collect::<rusqlite::Result<Vec<_>>>()?;
                    let first = (r.get::<_, Option<i64>>(13)? == Some(import_id))
                        .then(|| r.get::<_, i64>(14).map(|n| n as usize))
                        .transpose()?;
                    Ok((values, r.get::<_, Option<String>>(12)?, first))
                })?;
                if let Some(first) = first {
                    return Err(twice(first));
                }
                if let Some(c) = (0..12).find(|&c| !super::same_value(&stored[c], &sql_value(v[c]))) {
                    return Err(StoreError::input(
                        file,
                        at(),
                        format!(
                            "plate {plate_name} well {well_name} at this time is already in the store (from the {}) with {} = {}, this file has {}",
                            from.as_deref().unwrap_or("an earlier import"),
                            COLUMNS[c],
                            shown(&stored[c]),
                            shown(&sql_value(v[c]))
                        ),
                    ));
                }
                if remember.execute(params![v[0], v[1], v[5], row as i64])? == 0 {
                    let first: i64 = first_present.query_row(params![v[0], v[1], v[5]], |r| r.get(0))?;
                    return Err(twice(first as usize));
                }
                present += 1;
            }
            progress(batch.byte, total);
            // Its records' buffers serve again (the parser may have ended: then they are dropped).
            let _ = give_back.send(batch);
        }
        drop(give_back);
        let parsed = parser.join().map_err(|_| StoreError::Invalid("reading the source failed".into()))?;
        stats = parsed.less(&absent);
        Ok(())
    });
    drop((insert, insert_chunk, existing, remember, first_present));
    tx.execute_batch("PRAGMA ignore_check_constraints = OFF")?;
    if load == Load::Bulk {
        // A row before an error may repeat a key: then the row-by-row load finds which comes first.
        match lifted.restore_index(&tx) {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => duplicates_left = true,
            Err(e) if loaded.is_ok() => return Err(e),
            // The load's own error is the one to report.
            Err(_) => {}
        }
    }
    if duplicates_left {
        return Ok(None);
    }
    loaded?;
    tx.execute_batch("DROP TABLE temp.import_present")?;
    summary.add("measurements", row as u64 - present);
    if present > 0 {
        summary.present("measurements", present);
    }
    stats.write(&tx)?;
    lifted.restore_triggers(&tx)?;
    Ok(Some(tx))
}

/// Rows a statement of a bulk load inserts (12 parameters each, and two they share: [`insert_sql`]).
const CHUNK: usize = 32;

/// The parameters the rows of an insert statement share: the import, and the first row's number.
const SHARED: usize = 2;

/// The values bound to a statement's parameters, by index from 0, as far as they are known.
struct Bound {
    values: Vec<Option<BoundValue>>,
}

/// A bound value, owned (a text's buffer is reused from value to value).
#[derive(Debug, PartialEq)]
enum BoundValue {
    Null,
    Text(String),
    /// A real's bits: the same value bound again is the same bits (so `-0.0` is not `0.0`).
    Real(u64),
    Int(i64),
}

impl Bound {
    /// The parameters of a statement of `rows` rows ([`insert_sql`]), none bound yet.
    fn new(rows: usize) -> Bound {
        Bound { values: (0..SHARED + rows * 12).map(|_| None).collect() }
    }

    /// Binds what the rows of `stmt` share: the import, and the number in the source of its first row.
    fn bind_shared(&mut self, stmt: &mut rusqlite::Statement<'_>, import_id: i64, first_row: usize) -> Result<()> {
        self.bind_at(stmt, 0, [Cell::Int(import_id), Cell::Int(first_row as i64)].into_iter())
    }

    /// Binds row `k` of `stmt` (its 12 columns).
    fn bind_row<'c>(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        k: usize,
        cells: impl Iterator<Item = Cell<'c>>,
    ) -> Result<()> {
        self.bind_at(stmt, SHARED + k * 12, cells.take(12))
    }

    /// Binds `cells` to the parameters from index `at` (from 0) on, each only if its value changed.
    fn bind_at<'c>(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        at: usize,
        cells: impl Iterator<Item = Cell<'c>>,
    ) -> Result<()> {
        for (i, (slot, cell)) in self.values[at..].iter_mut().zip(cells).enumerate() {
            if changed(slot, cell) {
                stmt.raw_bind_parameter(at + i + 1, cell)?;
            }
        }
        Ok(())
    }
}

/// Records `cell` as the value of the parameter `slot` holds; true when it differs from the value it
/// held (so it must be bound).
fn changed(slot: &mut Option<BoundValue>, cell: Cell<'_>) -> bool {
    let same = match (&*slot, cell) {
        (Some(BoundValue::Null), Cell::Null) => true,
        (Some(BoundValue::Text(t)), Cell::Text(s)) => t == s,
        (Some(BoundValue::Real(b)), Cell::Real(x)) => *b == x.to_bits(),
        (Some(BoundValue::Int(a)), Cell::Int(n)) => *a == n,
        _ => false,
    };
    if same {
        return false;
    }
    match (slot, cell) {
        (Some(BoundValue::Text(t)), Cell::Text(s)) => {
            t.clear();
            t.push_str(s);
        }
        (slot, cell) => {
            *slot = Some(match cell {
                Cell::Null => BoundValue::Null,
                Cell::Text(s) => BoundValue::Text(s.to_string()),
                Cell::Real(x) => BoundValue::Real(x.to_bits()),
                Cell::Int(n) => BoundValue::Int(n),
            })
        }
    }
    true
}

/// The statement that inserts `rows` rows (their 12 columns, import and source row). Row by row, a row
/// whose natural key is there is skipped (and then judged); in bulk no row can conflict, and a failing
/// row fails the statement without undoing its earlier rows (`OR FAIL`: the whole load is rolled back
/// then), so that SQLite keeps no statement journal of every page the statement touches.
fn insert_sql(load: Load, rows: usize) -> String {
    // ?1 is the import and ?2 the first row's number in the source, shared by every row of the
    // statement: a row binds its 12 fields alone.
    let values = (0..rows)
        .map(|r| {
            let fields = (0..12).map(|i| format!("?{}", SHARED + r * 12 + i + 1)).collect::<Vec<_>>().join(", ");
            format!("({fields}, ?1, ?2 + {r})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (or, on_conflict) = match load {
        Load::ByRow => ("", " ON CONFLICT DO NOTHING"),
        Load::Bulk => (" OR FAIL", ""),
    };
    format!(
        "INSERT{or} INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, \
         incubator_id, liquid_handler_id, viability_norm, import_id, source_row) VALUES {values}{on_conflict}"
    )
}

/// The index that keeps a measurement's (plate, well, time) unique.
const NATURAL_INDEX: &str = "measurements_natural";

/// A unique index refused the rows.
fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// What a load lifts from `measurements` and puts back, from their own SQL (the migrations stay the one
/// place they are written): the triggers (per row they cost a load more than half its time; the load
/// adds its sums once instead), and for a bulk load the natural key's index.
struct Lifted {
    triggers: Vec<String>,
    index: Option<String>,
}

impl Lifted {
    fn lift(tx: &rusqlite::Transaction<'_>, load: Load) -> Result<Lifted> {
        let mut st = tx.prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'measurements' \
             AND (type = 'trigger' OR (?1 AND type = 'index' AND name = ?2))",
        )?;
        let found: Vec<(String, String, String)> = st
            .query_map(params![load == Load::Bulk, NATURAL_INDEX], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut lifted = Lifted { triggers: Vec::new(), index: None };
        for (kind, name, sql) in found {
            let quoted = name.replace('"', "\"\"");
            if kind == "index" {
                tx.execute_batch(&format!("DROP INDEX \"{quoted}\""))?;
                lifted.index = Some(sql);
            } else {
                tx.execute_batch(&format!("DROP TRIGGER \"{quoted}\""))?;
                lifted.triggers.push(sql);
            }
        }
        Ok(lifted)
    }

    /// Builds the natural key's index again, if it was lifted: a unique violation if a key is there twice.
    fn restore_index(&self, tx: &rusqlite::Transaction<'_>) -> Result<()> {
        if let Some(sql) = &self.index {
            tx.execute_batch(sql)?;
        }
        Ok(())
    }

    fn restore_triggers(self, tx: &rusqlite::Transaction<'_>) -> Result<()> {
        for sql in self.triggers {
            tx.execute_batch(&sql)?;
        }
        Ok(())
    }
}

/// The sums the triggers keep, for the rows of one load: per (line, compound, dose) and per plate, so
/// memory grows with those, not with the rows.
#[derive(Default)]
struct Stats {
    /// By [`dose_key`].
    doses: HashMap<Vec<u8>, (i64, i64, f64, f64)>,
    plates: HashMap<String, i64>,
    /// The key being looked up (no allocation per row).
    key: Vec<u8>,
}

/// Writes the key of a (line, compound, dose) into `key`: the line's length (4 bytes), the line, the
/// compound, and the dose's bits (8 bytes; `-0.0` as `0.0`), so that any texts part again as they were.
fn dose_key(key: &mut Vec<u8>, line: &str, compound: &str, dose: f64) {
    key.clear();
    key.extend_from_slice(&(line.len() as u32).to_le_bytes());
    key.extend_from_slice(line.as_bytes());
    key.extend_from_slice(compound.as_bytes());
    key.extend_from_slice(&(dose + 0.0).to_bits().to_le_bytes());
}

/// The (line, compound, dose) of a [`dose_key`].
fn dose_key_parts(key: &[u8]) -> (&str, &str, f64) {
    let (len, rest) = key.split_at(4);
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (line, rest) = rest.split_at(len);
    let (compound, dose) = rest.split_at(rest.len() - 8);
    let text = |b| std::str::from_utf8(b).unwrap_or_default();
    let bits = u64::from_le_bytes(dose.try_into().unwrap_or_default());
    (text(line), text(compound), f64::from_bits(bits))
}

impl Stats {
    fn add<'a>(&mut self, v: &[Cell<'a>; 12]) {
        let text = |c: Cell<'a>| -> &'a str {
            match c {
                Cell::Text(t) => t,
                _ => "",
            }
        };
        let dose = match v[4] {
            Cell::Real(d) => d,
            _ => -1.0,
        };
        dose_key(&mut self.key, text(v[2]), text(v[3]), dose);
        let e = match self.doses.get_mut(self.key.as_slice()) {
            Some(e) => e,
            None => self.doses.entry(self.key.clone()).or_default(),
        };
        e.0 += 1;
        if let Cell::Real(x) = v[11] {
            e.1 += 1;
            e.2 += x;
            e.3 += x * x;
        }
        if let Cell::Text(p) = v[0] {
            match self.plates.get_mut(p) {
                Some(n) => *n += 1,
                None => {
                    self.plates.insert(p.to_string(), 1);
                }
            }
        }
    }

    /// These sums without `other`'s (rows counted here that were not added).
    fn less(mut self, other: &Stats) -> Stats {
        for (k, (rows, n, sum, sumsq)) in &other.doses {
            if let Some(e) = self.doses.get_mut(k) {
                *e = (e.0 - rows, e.1 - n, e.2 - sum, e.3 - sumsq);
            }
        }
        self.doses.retain(|_, e| e.0 > 0);
        for (p, rows) in &other.plates {
            if let Some(n) = self.plates.get_mut(p) {
                *n -= rows;
            }
        }
        self.plates.retain(|_, n| *n > 0);
        self
    }

    fn write(&self, tx: &rusqlite::Transaction<'_>) -> Result<()> {
        let mut dose = tx.prepare(
            "INSERT INTO dose_stats VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO UPDATE SET rows = rows + excluded.rows, \
             viability_n = viability_n + excluded.viability_n, viability_sum = viability_sum + excluded.viability_sum, \
             viability_sumsq = viability_sumsq + excluded.viability_sumsq",
        )?;
        for (key, (rows, n, sum, sumsq)) in &self.doses {
            let (line, compound, d) = dose_key_parts(key);
            dose.execute(params![line, compound, d, rows, n, sum, sumsq])?;
        }
        let mut plate = tx
            .prepare("INSERT INTO plate_stats VALUES (?1, ?2) ON CONFLICT DO UPDATE SET rows = rows + excluded.rows")?;
        for (p, rows) in &self.plates {
            plate.execute(params![p, rows])?;
        }
        Ok(())
    }
}

fn sql_value(c: Cell<'_>) -> SqlValue {
    match c {
        Cell::Null => SqlValue::Null,
        Cell::Text(s) => SqlValue::Text(s.to_string()),
        Cell::Real(x) => SqlValue::Real(x),
        Cell::Int(i) => SqlValue::Integer(i),
    }
}

fn shown(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "nothing".into(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(x) => x.to_string(),
        SqlValue::Text(s) => format!("`{s}`"),
        SqlValue::Blob(b) => format!("{} bytes", b.len()),
    }
}

fn cell_json(c: Cell<'_>) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Text(s) => json!(s),
        Cell::Real(x) => json!(x),
        Cell::Int(i) => json!(i),
    }
}

/// The source's rows as JSON objects (checked).
pub fn source_value(path: &Path) -> Result<Value> {
    let file = path.display().to_string();
    let bytes = read(path)?;
    let mut r = reader(&bytes);
    let header = r.headers().map_err(|e| StoreError::input(&file, "line 1", e.to_string()))?.clone();
    let order = header_order(&file, &header)?;
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| StoreError::input(&file, format!("line {}", i + 2), e.to_string()))?;
        let (cells, _) = check_row(&file, i + 1, &rec, &order)?;
        rows.push(Value::Object(COLUMNS.iter().zip(cells).map(|(k, c)| ((*k).to_string(), cell_json(c))).collect()));
    }
    Ok(Value::Array(rows))
}

/// The measurements of the database (all, or those imported from source `?1`), in their order.
const ROWS_SQL: &str = "SELECT plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, incubator_id, \
     liquid_handler_id, viability_norm FROM measurements \
     WHERE ?1 IS NULL OR import_id IN (SELECT import_id FROM imports WHERE source = ?1) ORDER BY id";

/// A stored value as JSON.
fn db_json(v: rusqlite::types::ValueRef<'_>) -> Value {
    match v {
        rusqlite::types::ValueRef::Null | rusqlite::types::ValueRef::Blob(_) => Value::Null,
        rusqlite::types::ValueRef::Integer(n) => json!(n),
        rusqlite::types::ValueRef::Real(x) => json!(x),
        rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
    }
}

/// The database's measurements (all, or those imported from `source`) as JSON objects.
pub fn export_rows(store: &Store, source: Option<&str>) -> Result<Value> {
    let mut st = store.results.prepare(ROWS_SQL)?;
    let rows = st.query_map([source], |r| {
        let mut m = Map::new();
        for (i, k) in COLUMNS.iter().enumerate() {
            m.insert((*k).to_string(), db_json(r.get_ref(i)?));
        }
        Ok(Value::Object(m))
    })?;
    Ok(Value::Array(rows.collect::<rusqlite::Result<_>>()?))
}

/// Verifies a measurements CSV against the rows imported from it, streamed: the file's rows (checked
/// as [`source_value`] checks them) and the database's, in order, side by side, so that memory holds
/// the differences and not the rows. The report is [`crate::verify::compare`]'s of the whole values.
pub fn verify(store: &Store, path: &Path) -> Result<crate::verify::Report> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| StoreError::Io { path: path.into(), source })?;
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(std::io::BufReader::with_capacity(1 << 20, f));
    let header = r.headers().map_err(|e| StoreError::input(&file, "line 1", e.to_string()))?.clone();
    let order = header_order(&file, &header)?;
    let mut st = store.results.prepare(ROWS_SQL)?;
    let mut stored = st.query([crate::verify::source_name(path)])?;
    let mut comparison = crate::verify::Comparison::default();
    let mut rec = csv::StringRecord::new();
    let (mut source, mut database) = (Vec::with_capacity(12), Vec::with_capacity(12));
    for i in 0.. {
        source.clear();
        database.clear();
        let more =
            r.read_record(&mut rec).map_err(|e| StoreError::input(&file, format!("line {}", i + 2), e.to_string()))?;
        if more {
            let (cells, _) = check_row(&file, i + 1, &rec, &order)?;
            source.extend(cells.into_iter().map(cell_json));
        }
        match stored.next()? {
            Some(row) => {
                for c in 0..12 {
                    database.push(db_json(row.get_ref(c)?));
                }
            }
            None if !more => break,
            None => {}
        }
        // Field by field, `[i].column` as `flatten` names it (a null is absent).
        for (c, name) in COLUMNS.iter().enumerate() {
            comparison.field(|| format!("[{i}].{name}"), source.get(c), database.get(c));
        }
    }
    Ok(comparison.report())
}

/// Every measurement as the legacy CSV (numbers as [`py_float`] prints them), streamed from
/// the database into `path` (written beside it and renamed: a failure leaves `path` as it was).
pub fn export_csv(store: &Store, path: &Path) -> Result<()> {
    super::write_atomic_with(path, |out| {
        let io = |e: csv::Error| StoreError::Invalid(format!("writing {}: {e}", path.display()));
        let mut w = csv::WriterBuilder::new().from_writer(out);
        w.write_record(COLUMNS).map_err(io)?;
        let mut st = store.results.prepare(
            "SELECT plate_id, well_id, cell_line, compound, dose_uM, time_h, raw_signal, is_control, date, incubator_id, \
             liquid_handler_id, viability_norm FROM measurements ORDER BY id",
        )?;
        let mut rows = st.query([])?;
        let mut fields: [String; 12] = Default::default();
        while let Some(r) = rows.next()? {
            for (i, f) in fields.iter_mut().enumerate() {
                f.clear();
                match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null | rusqlite::types::ValueRef::Blob(_) => {}
                    rusqlite::types::ValueRef::Integer(n) => *f = n.to_string(),
                    rusqlite::types::ValueRef::Real(x) => *f = py_float(x),
                    rusqlite::types::ValueRef::Text(t) => f.push_str(&String::from_utf8_lossy(t)),
                }
            }
            w.write_record(&fields).map_err(io)?;
        }
        w.flush().map_err(|source| StoreError::Io { path: path.into(), source })
    })
}

/// Every measurement.
pub fn export_value(store: &Store) -> Result<Value> {
    export_rows(store, None)
}

/// A number as the legacy files print it: `24.0` for a whole number, else the shortest exact form.
pub fn py_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 { format!("{x:.1}") } else { format!("{x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_more_rows_than_the_store_is_loaded_in_bulk() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        // An empty store: any file of a row or more is a bulk load; an empty one is not.
        assert_eq!(Load::pick(&store, 128).unwrap(), Load::Bulk);
        assert_eq!(Load::pick(&store, 127).unwrap(), Load::ByRow);
        let phase0 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phase0_all_plates.csv");
        import(&mut store, &phase0, &mut |_, _| {}).unwrap();
        // 528 rows stored: a file guessed at 529 rows or more goes in bulk, the same file again row by row.
        assert_eq!(Load::pick(&store, 529 * ROW_BYTES_AT_LEAST).unwrap(), Load::Bulk);
        assert_eq!(Load::pick(&store, 528 * ROW_BYTES_AT_LEAST).unwrap(), Load::ByRow);
        assert_eq!(Load::pick(&store, std::fs::metadata(&phase0).unwrap().len()).unwrap(), Load::ByRow);
    }

    #[test]
    fn the_rollback_journal_is_taken_alone_only_and_given_back_with_full_syncing_until_wal_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let open = || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(crate::store::BUSY_TIMEOUT).unwrap();
            c
        };
        // The journal mode and the syncing (1 NORMAL, 2 FULL).
        let mode = |c: &rusqlite::Connection| -> (String, i64) {
            let m: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            let s: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
            (m, s)
        };
        let a = open();
        a.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (x)").unwrap();
        // Another connection that has read the database (in WAL it then holds it): no switch.
        let b = open();
        b.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
        assert!(!journal::rollback_if_alone(&a));
        assert_eq!(mode(&a), ("wal".into(), 1));
        drop(b);
        // Alone: the rollback journal, syncing in full (2).
        assert!(journal::rollback_if_alone(&a));
        assert_eq!(mode(&a), ("delete".into(), 2));
        // A reader in the middle of a read: WAL cannot come back, and the syncing stays full.
        let b = open();
        let mut reading = b.prepare("SELECT x FROM t UNION ALL SELECT 1").unwrap();
        let mut rows = reading.query([]).unwrap();
        assert!(rows.next().unwrap().is_some());
        journal::back_to_wal(&a);
        assert_eq!(mode(&a), ("delete".into(), 2));
        drop(rows);
        drop(reading);
        // The reader done: WAL and NORMAL again.
        journal::back_to_wal(&a);
        assert_eq!(mode(&a), ("wal".into(), 1));
    }

    #[test]
    fn trimming_looks_at_the_ends_only_when_they_may_be_white_space() {
        for s in ["", " ", "a", " a", "a ", "\ta\r", "\u{a0}a", "a\u{3000}", "é", " é ", "a b", "\u{85}", "~x!"] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn a_dose_key_parts_again_into_what_it_was_made_of() {
        let mut key = Vec::new();
        for (line, compound, dose) in
            [("HepG2", "C1", 0.5), ("", "", -1.0), ("a\u{1f}b", "\u{1f}", 1e300), ("ab", "c", -0.0)]
        {
            dose_key(&mut key, line, compound, dose);
            assert_eq!(dose_key_parts(&key), (line, compound, dose + 0.0));
        }
        // The split between line and compound is kept: ("ab", "c") is not ("a", "bc").
        let mut other = Vec::new();
        dose_key(&mut key, "ab", "c", 1.0);
        dose_key(&mut other, "a", "bc", 1.0);
        assert_ne!(key, other);
    }

    #[test]
    fn where_the_checks_find_their_columns() {
        assert_eq!((COLUMNS[WELL], COLUMNS[DOSE], COLUMNS[IS_CONTROL]), ("well_id", "dose_uM", "is_control"));
    }

    #[test]
    fn a_parameter_is_bound_again_only_when_its_value_changes() {
        let mut b = Bound::new(1);
        // Nothing is known at first: everything is bound.
        assert!(changed(&mut b.values[0], Cell::Text("P1")));
        assert!(changed(&mut b.values[1], Cell::Null));
        assert!(changed(&mut b.values[2], Cell::Real(0.0)));
        assert!(!changed(&mut b.values[0], Cell::Text("P1")));
        assert!(!changed(&mut b.values[1], Cell::Null));
        assert!(!changed(&mut b.values[2], Cell::Real(0.0)));
        // Another text, another type, another sign of zero, the same number as another type.
        assert!(changed(&mut b.values[0], Cell::Text("P10")));
        assert!(!changed(&mut b.values[0], Cell::Text("P10")));
        assert!(changed(&mut b.values[0], Cell::Text("P1")));
        assert!(changed(&mut b.values[1], Cell::Text("")));
        assert!(changed(&mut b.values[1], Cell::Null));
        assert!(changed(&mut b.values[2], Cell::Real(-0.0)));
        assert!(changed(&mut b.values[2], Cell::Int(0)));
        assert!(changed(&mut b.values[2], Cell::Real(0.0)));
        assert_eq!(b.values[0], Some(BoundValue::Text("P1".into())));
    }

    #[test]
    fn the_bulk_statement_fails_without_undoing_its_rows_and_the_row_statement_skips_conflicts() {
        assert!(insert_sql(Load::Bulk, 2).starts_with("INSERT OR FAIL INTO measurements ("));
        // Each row its 12 fields, the import (?1) and its number (the first row's, ?2, and the rows before).
        assert!(insert_sql(Load::Bulk, 2).ends_with(
            "VALUES (?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?1, ?2 + 0), \
             (?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?1, ?2 + 1)"
        ));
        assert!(insert_sql(Load::ByRow, 1).starts_with("INSERT INTO measurements ("));
        assert!(insert_sql(Load::ByRow, 1).ends_with("?14, ?1, ?2 + 0) ON CONFLICT DO NOTHING"));
    }
}
