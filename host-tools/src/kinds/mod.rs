//! The kinds of data cellos imports, exports and verifies.
//!
//! Each kind has three views of the same shape, a JSON value mirroring the source format: the source's
//! ([`Kind::source_value`]), the database's (what the exporter writes), and the rows the importer writes.
//! Because export and source have one shape, [`crate::verify`] compares them field by field with one
//! mechanism for every kind.
//!
//! Every import is one transaction per database, all or nothing, and idempotent: the source's SHA-256
//! is recorded, and the same source again adds nothing.

pub mod campaigns;
pub mod cell_lines;
pub mod legacy;
pub mod params;
pub mod results;

use std::path::Path;

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
        let value = self.export_value(store)?;
        match self {
            Kind::Params | Kind::CellLines => write_atomic(path, &to_yaml(&value)?),
            Kind::Results => write_atomic(path, results::to_csv(&value)?.as_bytes()),
            Kind::Campaigns => campaigns::write(path, &value),
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
    /// Things worth knowing that did not stop the import.
    pub warnings: Vec<String>,
}

impl Summary {
    fn new(kind: Kind, path: &Path) -> Summary {
        Summary { kind: kind.name().into(), source: path.display().to_string(), ..Summary::default() }
    }

    fn add(&mut self, table: &str, n: u64) {
        match self.rows.iter_mut().find(|(t, _)| t == table) {
            Some((_, c)) => *c += n,
            None => self.rows.push((table.to_string(), n)),
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
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| StoreError::Io { path: path.into(), source })
}

fn to_yaml(v: &Value) -> Result<Vec<u8>> {
    serde_norway::to_string(v).map(String::into_bytes).map_err(|e| StoreError::Invalid(format!("writing YAML: {e}")))
}
