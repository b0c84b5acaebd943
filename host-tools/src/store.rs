//! The store: four SQLite databases in one data directory, created or migrated on open.
//!
//! Files keep the legacy names. Every connection runs in WAL mode with foreign keys enforced and a busy
//! time-out, so two processes can write one database at once (the second waits). Migrations are the SQL
//! files under `migrations/<db>/NN-name/up.sql`, embedded at build time; the schema version lives in
//! `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use include_dir::{Dir, include_dir};
use rusqlite::Connection;
use rusqlite_migration::Migrations;

use crate::error::{Result, StoreError};

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "cellos-data";

/// One of the four databases.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Db {
    /// `simulation_params.db`.
    SimulationParams,
    /// `cell_lines.db`.
    CellLines,
    /// `campaigns.db`.
    Campaigns,
    /// `experimental_results.db`.
    ExperimentalResults,
}

static SIMULATION_PARAMS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations/simulation_params");
static CELL_LINES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations/cell_lines");
static CAMPAIGNS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations/campaigns");
static EXPERIMENTAL_RESULTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations/experimental_results");

fn migrations(dir: &'static Dir<'static>) -> Migrations<'static> {
    // The folders are part of the build: a malformed one is a build error, caught by the tests.
    Migrations::from_directory(dir).unwrap_or_else(|e| panic!("embedded migrations are invalid: {e}"))
}

static MIGRATIONS: LazyLock<[Migrations<'static>; 4]> = LazyLock::new(|| {
    [migrations(&SIMULATION_PARAMS), migrations(&CELL_LINES), migrations(&CAMPAIGNS), migrations(&EXPERIMENTAL_RESULTS)]
});

impl Db {
    /// All four.
    pub const ALL: [Db; 4] = [Db::SimulationParams, Db::CellLines, Db::Campaigns, Db::ExperimentalResults];

    /// The file name (the legacy one).
    pub fn file_name(self) -> &'static str {
        match self {
            Db::SimulationParams => "simulation_params.db",
            Db::CellLines => "cell_lines.db",
            Db::Campaigns => "campaigns.db",
            Db::ExperimentalResults => "experimental_results.db",
        }
    }

    fn migrations(self) -> &'static Migrations<'static> {
        &MIGRATIONS[self as usize]
    }
}

/// The data directory: `dir`, or `CELLOS_DATA_DIR`, or `./cellos-data`.
pub fn data_dir(dir: Option<&Path>) -> PathBuf {
    dir.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CELLOS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Opens (creating and migrating if needed) one database in `dir`.
pub fn open(dir: &Path, db: Db) -> Result<Connection> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.into(), source })?;
    let path = dir.join(db.file_name());
    let open = |source| StoreError::Open { path: path.clone(), source };
    let mut conn = Connection::open(&path).map_err(open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open)?;
    db.migrations()
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migrate { path: path.clone(), message: e.to_string() })?;
    Ok(conn)
}

/// The four databases of a data directory.
pub struct Store {
    /// The data directory.
    pub dir: PathBuf,
    /// `simulation_params.db`.
    pub params: Connection,
    /// `cell_lines.db`.
    pub lines: Connection,
    /// `campaigns.db`.
    pub campaigns: Connection,
    /// `experimental_results.db`.
    pub results: Connection,
}

impl Store {
    /// Opens every database of `dir`, creating and migrating as needed.
    pub fn open(dir: &Path) -> Result<Store> {
        Ok(Store {
            dir: dir.to_path_buf(),
            params: open(dir, Db::SimulationParams)?,
            lines: open(dir, Db::CellLines)?,
            campaigns: open(dir, Db::Campaigns)?,
            results: open(dir, Db::ExperimentalResults)?,
        })
    }

    /// The connection of a database.
    pub fn conn(&self, db: Db) -> &Connection {
        match db {
            Db::SimulationParams => &self.params,
            Db::CellLines => &self.lines,
            Db::Campaigns => &self.campaigns,
            Db::ExperimentalResults => &self.results,
        }
    }

    /// The connection of a database, mutable (for transactions).
    pub fn conn_mut(&mut self, db: Db) -> &mut Connection {
        match db {
            Db::SimulationParams => &mut self.params,
            Db::CellLines => &mut self.lines,
            Db::Campaigns => &mut self.campaigns,
            Db::ExperimentalResults => &mut self.results,
        }
    }
}

/// Counts the rows of a table.
pub fn count(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        for db in Db::ALL {
            db.migrations().validate().unwrap_or_else(|e| panic!("{db:?}: {e}"));
        }
    }

    #[test]
    fn open_creates_migrates_and_configures() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // One version per migration folder: params 1, cell lines 1, campaigns 3, results 2.
        for (db, expect) in Db::ALL.into_iter().zip([1, 1, 3, 2]) {
            let c = store.conn(db);
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(v, expect, "{db:?}");
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
            let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
            assert_eq!(fk, 1);
            assert!(dir.path().join(db.file_name()).exists());
        }
        // Foreign keys are enforced, and tables are STRICT.
        let e = store.lines.execute("INSERT INTO cell_line_characteristics (cell_line_id, characteristic, value, position) VALUES ('nope', 'x', 'y', 0)", []);
        assert!(e.is_err());
        let e = store.results.execute("INSERT INTO measurements (plate_id, well_id, cell_line, dose_uM, created_at) VALUES ('P', 'A1', 'L', 'abc', 'now')", []);
        assert!(e.unwrap_err().to_string().contains("cannot store TEXT value in REAL column"));
        drop(store);
        // Opening again is a no-op migration.
        Store::open(dir.path()).unwrap();
    }
}
