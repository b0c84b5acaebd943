//! The kinds of data cellos imports, exports and verifies.
//!
//! Each kind has three views of the same shape, a JSON value mirroring the source format: the source's
//! ([`Kind::source_value`]), the database's (what the exporter writes), and the rows the importer writes.
//! Because export and source have one shape, [`crate::verify`] compares them field by field with one
//! mechanism for every kind.
//!
//! Every import is one transaction per database, all or nothing, and idempotent: the source's SHA-256
//! is recorded, and the same source again adds nothing. Rows also have natural keys (a measurement's
//! plate, well and time; a parameter's line and version; a campaign's id), so a second source of the
//! same data (the legacy databases after the YAML and CSV, the CSV with another line ending) adds
//! nothing either: its rows are counted in [`Summary::already_present`], values the store lacked are
//! filled in, and a row that disagrees with the stored one stops the import, naming both values.

pub mod campaigns;
pub mod cell_lines;
pub mod legacy;
pub mod params;
pub mod results;

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::store::Store;

/// A kind of data.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Simulation parameters (`simulation_parameters.yaml`).
    Params,
    /// Cell lines (`cell_lines.yaml`).
    CellLines,
    /// Measurements (`phase0_all_plates.csv`).
    Results,
    /// Campaigns (a folder with `campaigns.json` and `campaign_iterations.json`).
    Campaigns,
    /// The legacy platform's four databases (a folder).
    Legacy,
}

impl Kind {
    /// The name recorded in `imports`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Params => "params",
            Kind::CellLines => "cell-lines",
            Kind::Results => "results",
            Kind::Campaigns => "campaigns",
            Kind::Legacy => "legacy",
        }
    }

    /// Imports a source.
    pub fn import(self, store: &mut Store, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary> {
        match self {
            Kind::Params => params::import(store, path),
            Kind::CellLines => cell_lines::import(store, path),
            Kind::Results => results::import(store, path, progress),
            Kind::Campaigns => campaigns::import(store, path),
            Kind::Legacy => legacy::import(store, path, progress),
        }
    }

    /// The source, as a JSON value of the export's shape.
    pub fn source_value(self, path: &Path) -> Result<Value> {
        match self {
            Kind::Params => params::source_value(path),
            Kind::CellLines => cell_lines::source_value(path),
            Kind::Results => results::source_value(path),
            Kind::Campaigns => campaigns::source_value(path),
            Kind::Legacy => legacy::source_value(path),
        }
    }

    /// The database's content of this kind, in the source's shape.
    pub fn export_value(self, store: &Store) -> Result<Value> {
        match self {
            Kind::Params => params::export_value(store),
            Kind::CellLines => cell_lines::export_value(store),
            Kind::Results => results::export_value(store),
            Kind::Campaigns => campaigns::export_value(store),
            Kind::Legacy => legacy::export_value(store),
        }
    }

    /// Writes the database's content in the source format, to `path` (a file, or a folder for
    /// campaigns). Written beside the target and renamed, so a failure leaves nothing half-written.
    pub fn export(self, store: &Store, path: &Path) -> Result<()> {
        match self {
            Kind::Params | Kind::CellLines => write_atomic(path, &to_yaml(&self.export_value(store)?)?),
            // Streamed from the database to the file: memory does not grow with the rows.
            Kind::Results => results::export_csv(store, path),
            Kind::Campaigns => campaigns::write(path, &self.export_value(store)?),
            Kind::Legacy => {
                Err(StoreError::Invalid("the legacy databases are not written back; export the other kinds".into()))
            }
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The kind.
    pub kind: String,
    /// The source.
    pub source: String,
    /// The source had been imported before: nothing was added.
    pub already_imported: bool,
    /// Rows added, per table.
    pub rows: Vec<(String, u64)>,
    /// Rows of the source that were already in the store (from another source of the same data),
    /// per table: they added nothing.
    pub already_present: Vec<(String, u64)>,
    /// Things worth knowing that did not stop the import.
    pub warnings: Vec<String>,
}

impl Summary {
    fn new(kind: Kind, path: &Path) -> Summary {
        Summary { kind: kind.name().into(), source: path.display().to_string(), ..Summary::default() }
    }

    fn add(&mut self, table: &str, n: u64) {
        Summary::count(&mut self.rows, table, n);
    }

    fn present(&mut self, table: &str, n: u64) {
        Summary::count(&mut self.already_present, table, n);
    }

    fn count(list: &mut Vec<(String, u64)>, table: &str, n: u64) {
        match list.iter_mut().find(|(t, _)| t == table) {
            Some((_, c)) => *c += n,
            None => list.push((table.to_string(), n)),
        }
    }
}

/// Reads a file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| StoreError::Io { path: path.into(), source })
}

/// Reads a text file (UTF-8); a bad byte is an error at its line and column.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let b = e.as_bytes();
        let line = b[..at].iter().filter(|&&c| c == b'\n').count() + 1;
        let column = at - b[..at].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1) + 1;
        StoreError::input(&path.display().to_string(), format!("line {line}, column {column}"), "not valid UTF-8 text")
    })
}

/// The SHA-256 of some bytes, hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file read once, in pieces, each piece also handed to a hashing thread: the source's SHA-256 costs
/// no second pass and no copy of the file in memory (the pieces in flight are bounded).
pub struct Hashed<R> {
    inner: R,
    to_hasher: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl<R: std::io::Read> std::io::Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0
            && let Some(tx) = &self.to_hasher
        {
            // The hasher ends only when this side does: a send cannot fail while it runs.
            let _ = tx.send(buf[..n].to_vec());
        }
        Ok(n)
    }
}

/// Reads `path` through `read` (a buffered reader that also feeds a SHA-256 on another core) and returns
/// what `read` returns with the hash of every byte it read (the whole file, when `read` reads to the
/// end).
pub fn read_hashed<T>(
    path: &Path,
    read: impl FnOnce(&mut std::io::BufReader<Hashed<std::fs::File>>) -> Result<T>,
) -> Result<(T, String)> {
    let file = std::fs::File::open(path).map_err(|source| StoreError::Io { path: path.into(), source })?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut h = Sha256::new();
            for piece in rx {
                h.update(&piece);
            }
            hex(&h.finalize())
        });
        let mut reader = std::io::BufReader::with_capacity(1 << 20, Hashed { inner: file, to_hasher: Some(tx) });
        let out = read(&mut reader);
        // Closing the channel ends the hasher.
        reader.get_mut().to_hasher = None;
        let sha = hasher.join().map_err(|_| StoreError::Invalid("hashing the source failed".into()))?;
        Ok((out?, sha))
    })
}

/// Starts recording an import in `tx`; `None` when this source was imported before.
pub fn begin(tx: &Transaction<'_>, kind: Kind, source: &str, sha: &str) -> Result<Option<i64>> {
    let seen: Option<i64> = tx
        .query_row("SELECT import_id FROM imports WHERE kind = ?1 AND sha256 = ?2", params![kind.name(), sha], |r| {
            r.get(0)
        })
        .optional()?;
    if seen.is_some() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO imports (kind, source, sha256, imported_at) VALUES (?1, ?2, ?3, ?4)",
        params![kind.name(), source, sha, crate::time::now()],
    )?;
    Ok(Some(tx.last_insert_rowid()))
}

/// Two stored values are the same: an integer and a real of equal value are, so are two JSON texts of
/// equal value (the legacy platform wrote `{"a": 1}`, the YAML import writes `{"a":1}`), and so are two
/// reals that differ only in their last binary digits. The legacy platform filled its database through
/// pandas' CSV parser, which is not correctly rounded: against `phase0_all_plates.csv` its
/// `raw_signal`s differ by up to 1 ulp and its `viability_norm`s (normalised, ≤ 1) by up to 2.2e-16,
/// one ulp of 1.0. Reals within 4 ε of the larger of their magnitudes and 1 are taken as the same.
pub fn same_value(a: &SqlValue, b: &SqlValue) -> bool {
    match (a, b) {
        (SqlValue::Real(x), SqlValue::Real(y)) => (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()).max(1.0),
        (SqlValue::Integer(x), SqlValue::Real(y)) | (SqlValue::Real(y), SqlValue::Integer(x)) => *x as f64 == *y,
        (SqlValue::Text(x), SqlValue::Text(y)) if x != y && x.starts_with(['{', '[']) => {
            matches!((serde_json::from_str::<Value>(x), serde_json::from_str::<Value>(y)), (Ok(p), Ok(q)) if p == q)
        }
        _ => a == b,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| {
        use std::io::Write;
        w.write_all(bytes).map_err(|source| StoreError::Io { path: path.into(), source })
    })
}

/// Writes `path` through `write` beside it (`path.part`), flushed to the disk, then renamed over it: a
/// failure (a full disk, say) leaves `path` as it was and removes the part.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("part");
    let io = |source| StoreError::Io { path: path.into(), source };
    let done = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn to_yaml(v: &Value) -> Result<Vec<u8>> {
    serde_norway::to_string(v).map(String::into_bytes).map_err(|e| StoreError::Invalid(format!("writing YAML: {e}")))
}
