//! # cellos-host: the host side of cellos
//!
//! - [`store`], [`error`], [`time`]: the four SQLite databases and their records, from `cellos-store`
//!   (re-exported under the names this crate has always used).
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
pub mod facility;
pub mod kinds;
pub use cellos_schedule as schedule;
pub mod verify;
pub mod yaml;

pub use cellos_store::db as store;
pub use cellos_store::{error, time};
pub use error::{Result, StoreError};
