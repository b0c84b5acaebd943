//! The store's one error type (the host tool's too). Messages say where (file, line and column, or row and field) and
//! what to do.

use std::path::PathBuf;

/// Everything that can go wrong in the store and its tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A database could not be opened or configured.
    #[error("cannot open {path}: {}", crate::db::describe(source))]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A database could not be brought to the current schema.
    #[error("cannot migrate {path}: {message}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An SQL statement failed.
    #[error("database: {}", crate::db::describe(.0))]
    Sql(#[from] rusqlite::Error),
    /// Writing a database failed (a full disk, a failing one, a file made read-only).
    #[error("cannot write {path}: {}", crate::db::describe(source))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// An input file is invalid; nothing was written.
    #[error("{file}: {location}: {message} (nothing was imported)")]
    Input {
        /// The file.
        file: String,
        /// `line 3, column 5` or `row 12, field dose_uM`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An operation is not allowed in the current state (using a vial that is not available, say).
    #[error("{0}")]
    Invalid(String),
    /// Another program the command talks to (a gateway's API) failed or did not answer.
    #[error("{0}")]
    Remote(String),
}

impl StoreError {
    /// How a command that met this error ends: bad input (a file, an argument, a name that does not
    /// exist, an operation the state does not allow) is [`Exit::Usage`]; a database, a disk or a peer
    /// that failed is [`Exit::Failed`].
    pub fn exit(&self) -> cellos_output::Exit {
        use cellos_output::Exit;
        match self {
            StoreError::Input { .. } | StoreError::NotFound(_) | StoreError::Invalid(_) => Exit::Usage,
            StoreError::Io { source, .. } => Exit::of_io(source),
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sql(_)
            | StoreError::Write { .. }
            | StoreError::Remote(_) => Exit::Failed,
        }
    }

    /// This error, naming `path` if it is a database that could not be written (its disk full or
    /// failing, or the file read-only).
    pub fn writing(self, path: &std::path::Path) -> StoreError {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Sql(source)
                if matches!(source.sqlite_error_code(), Some(C::DiskFull | C::SystemIoFailure | C::ReadOnly)) =>
            {
                StoreError::Write { path: path.to_path_buf(), source }
            }
            other => other,
        }
    }

    /// An input error at a place in a file.
    pub fn input(file: &str, location: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Input { file: file.to_string(), location: location.into(), message: message.into() }
    }
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, StoreError>;
