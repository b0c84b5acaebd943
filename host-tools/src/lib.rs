//! # cellos-host: the host side of cellos
//!
//! - [`store`]: the four SQLite databases (WAL, foreign keys, `STRICT` tables, embedded migrations).
//! - [`kinds`]: each kind of data the legacy platform kept — parameters, cell lines, results, campaigns,
//!   and the legacy databases themselves — with its importer (one transaction, all or nothing,
//!   idempotent), its exporter, and the source-side view that [`verify`] compares field by field.
//! - [`admin`]: queries and administration behind the `cellos` tool; [`cli`] is the tool itself.
//! - [`schedule`], [`facility`]: constraint scheduling and facility capacity planning.
//! - [`dashboard`]: the read-only local web application (`cellos dashboard`).
#![deny(missing_docs)]

pub mod admin;
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod facility;
pub mod kinds;
pub mod schedule;
pub mod store;
pub mod time;
pub mod verify;
pub mod yaml;

pub use error::{Result, StoreError};
