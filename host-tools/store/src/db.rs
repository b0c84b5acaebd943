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

static SIMULATION_PARAMS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/simulation_params");
static CELL_LINES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/cell_lines");
static CAMPAIGNS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/campaigns");
static EXPERIMENTAL_RESULTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations/experimental_results");

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

    /// The migrations of this database, oldest first.
    pub fn migrations(self) -> &'static Migrations<'static> {
        &MIGRATIONS[self as usize]
    }
}

/// The data directory: `dir`, or `CELLOS_DATA_DIR`, or `./cellos-data`.
pub fn data_dir(dir: Option<&Path>) -> PathBuf {
    dir.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CELLOS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// What an SQLite error means for the person at the bench (disk full, not a database, …).
pub fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => format!("{e}: the disk is full; free space and run the command again"),
        Some(C::NotADatabase) => format!("{e}: the file is damaged or is not a SQLite database"),
        Some(C::DatabaseCorrupt) => format!("{e}: the file is damaged; restore it from a backup"),
        Some(C::ReadOnly) => format!("{e}: the file or its folder is read-only"),
        Some(C::CannotOpen) => format!("{e}: check that the folder exists and can be written"),
        _ => e.to_string(),
    }
}

fn migrate_error(e: rusqlite_migration::Error) -> String {
    match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => describe(&err),
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => "it was written by a newer cellos (its schema version is ahead of this one's)".into(),
        other => other.to_string(),
    }
}

/// The newest schema version of a database (one per migration folder).
pub fn latest_version(db: Db) -> i64 {
    match db {
        Db::SimulationParams => SIMULATION_PARAMS.dirs().count() as i64,
        Db::CellLines => CELL_LINES.dirs().count() as i64,
        Db::Campaigns => CAMPAIGNS.dirs().count() as i64,
        Db::ExperimentalResults => EXPERIMENTAL_RESULTS.dirs().count() as i64,
    }
}

/// Refuses a database file of 0 bytes: SQLite would silently make it a new, empty database, hiding
/// that the data are gone.
fn refuse_empty(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => Err(StoreError::Migrate {
            path: path.into(),
            message: "the file is empty (0 bytes), not a database: its data are gone. Restore it from a backup, \
                      or move it away to start afresh"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Opens (creating if needed) a lock file; lock it with `File::lock` or `File::try_lock`. The kernel
/// releases the lock when the process ends, however it ends.
pub fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)
}

/// The lock file of campaign `id` in data directory `dir`: held by the one process running the
/// campaign, released by the kernel when that process ends, however it ends.
pub fn campaign_lock_path(dir: &Path, id: &str) -> std::path::PathBuf {
    let safe: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir.join(format!(".campaign-{safe}.lock"))
}

/// Whether the process that ran campaign `id` is gone: its lock file is there and nobody holds it.
/// `false` when no process ever took the lock (an imported campaign) or one holds it now.
pub fn campaign_process_gone(dir: &Path, id: &str) -> bool {
    let Ok(file) = std::fs::File::open(campaign_lock_path(dir, id)) else { return false };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            true
        }
        Err(_) => false,
    }
}

/// The lock that serialises creating and migrating the databases of a data directory.
fn migration_lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".cellos-migrate.lock");
    let lock = lock_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
    lock.lock().map_err(|source| StoreError::Io { path, source })?;
    Ok(lock)
}

/// Opens (creating and migrating if needed) one database in `dir`.
///
/// A new database is built under a temporary name and renamed into place once migrated, so a database
/// file is either absent or whole: a process killed while creating one leaves nothing behind, and a
/// 0-byte file under a database's name was not made by cellos (it is refused). Creating and migrating
/// hold a lock file in the directory, so two processes opening a fresh data directory at once do it one
/// after the other, not over each other.
pub fn open(dir: &Path, db: Db) -> Result<Connection> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.into(), source })?;
    let path = dir.join(db.file_name());
    if !path.exists() {
        let _lock = migration_lock(dir)?;
        if !path.exists() {
            create(dir, db, &path)?;
        }
    }
    refuse_empty(&path)?;
    let open = |source| StoreError::Open { path: path.clone(), source };
    let mut conn = Connection::open(&path).map_err(open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    if version(&conn).map_err(open)? != latest_version(db) {
        let _lock = migration_lock(dir)?;
        db.migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migrate { path: path.clone(), message: migrate_error(e) })?;
    }
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open)?;
    Ok(conn)
}

/// Builds database `db` at a temporary name in `dir` and renames it to `path` (under the lock).
fn create(dir: &Path, db: Db, path: &Path) -> Result<()> {
    let tmp = dir.join(format!(".{}.creating", db.file_name()));
    for leftover in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{leftover}", tmp.display()));
    }
    let open = |source| StoreError::Open { path: path.into(), source };
    let mut conn = Connection::open(&tmp).map_err(open)?;
    // The measurements database holds millions of rows: 16 KiB pages make its B-trees shallower and
    // its bulk loads a fifth faster than the default 4 KiB (set before the first page is written).
    if db == Db::ExperimentalResults {
        conn.pragma_update(None, "page_size", 16384).map_err(open)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
    db.migrations()
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migrate { path: path.into(), message: migrate_error(e) })?;
    // Closing checkpoints the WAL into the file, which then holds everything.
    conn.close().map_err(|(_, source)| open(source))?;
    std::fs::rename(&tmp, path).map_err(|source| StoreError::Io { path: path.into(), source })
}

/// Opens one database of `dir` for reading only: nothing is created or migrated, so it works on a
/// read-only data directory and on a copy. A missing file, an empty one, or one whose schema is not
/// this cellos's is an error naming the file.
pub fn open_read_only(dir: &Path, db: Db) -> Result<Connection> {
    let path = dir.join(db.file_name());
    if !path.exists() {
        return Err(StoreError::Migrate {
            path: path.clone(),
            message: "no such database (nothing has been written to this data directory yet)".into(),
        });
    }
    refuse_empty(&path)?;
    let open = |source| StoreError::Open { path: path.clone(), source };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    let conn = Connection::open_with_flags(&path, flags).map_err(open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
    let (conn, v) = match version(&conn) {
        Ok(v) => (conn, v),
        // A WAL database in a folder that cannot be written (no `-shm` file can be made there): nobody can
        // be writing it either, so it is read as immutable.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
            let uri = format!("file:{}?immutable=1", path.display());
            let c = Connection::open_with_flags(&uri, flags | rusqlite::OpenFlags::SQLITE_OPEN_URI).map_err(open)?;
            let v = version(&c).map_err(open)?;
            (c, v)
        }
        Err(e) => return Err(open(e)),
    };
    let latest = latest_version(db);
    if v != latest {
        return Err(StoreError::Migrate {
            path: path.clone(),
            message: if v > latest {
                format!("schema version {v} was written by a newer cellos (this one knows {latest})")
            } else {
                format!(
                    "schema version {v} is older than this cellos's {latest}: run a writing command once to migrate it"
                )
            },
        });
    }
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

    /// Opens every database of `dir` for a command that only reads. When all four exist at this
    /// cellos's schema they are opened read-only: nothing is created or migrated, so a read-only data
    /// directory (or a copy of one) works. Otherwise they are opened as by [`Store::open`] (a fresh
    /// directory gets its empty databases, an older schema is migrated); when that cannot be done either,
    /// the reason reading alone was not enough is the error.
    pub fn open_for_reading(dir: &Path) -> Result<Store> {
        let read_only = || -> Result<Store> {
            Ok(Store {
                dir: dir.to_path_buf(),
                params: open_read_only(dir, Db::SimulationParams)?,
                lines: open_read_only(dir, Db::CellLines)?,
                campaigns: open_read_only(dir, Db::Campaigns)?,
                results: open_read_only(dir, Db::ExperimentalResults)?,
            })
        };
        read_only().or_else(|e| Store::open(dir).map_err(|_| e))
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
        // One version per migration folder: params 1, cell lines 1, campaigns 7, results 6.
        for (db, expect) in Db::ALL.into_iter().zip([1, 1, 7, 6]) {
            assert_eq!(latest_version(db), expect);
            let c = store.conn(db);
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(v, expect, "{db:?}");
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
            let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
            assert_eq!(fk, 1);
            let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
            assert_eq!(page, if db == Db::ExperimentalResults { 16384 } else { 4096 }, "{db:?}");
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
