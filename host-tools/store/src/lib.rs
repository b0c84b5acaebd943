//! # cellos-store: the lab's databases
//!
//! - [`db`]: the four SQLite databases of a data directory — opened, created whole, migrated (the SQL
//!   under `migrations/`) and configured (WAL, foreign keys, busy time-out); read-only opening.
//! - [`time`]: the time stamps every record carries.
//! - Typed records for what more than one crate reads or writes: [`campaign`] (campaigns with a typed
//!   status, iterations, experiments, campaign measurements), [`journal`] (the liquid-handling journal,
//!   generic over the operation type, with a typed state), [`outputs`] (stage outputs, one typed key per
//!   output), [`instruments`] (who each instrument of a campaign is), [`inventory`] (vials) and
//!   [`access`] (the gateway service's tokens and its hash-chained audit trail), [`service`] (the
//!   service's runs and their events), [`prompts`] (what a campaign asks its operator, and the
//!   answers), [`sync`] (a campaign's records as one document, merged by
//!   natural key into another store).
//!
//! Every function takes the connection of the database it touches, so a caller decides the
//! transaction: a [`rusqlite::Transaction`] derefs to a connection.
#![deny(missing_docs)]

pub mod access;
pub mod campaign;
pub mod db;
pub mod error;
pub mod instruments;
pub mod inventory;
pub mod journal;
pub mod outputs;
pub mod prompts;
pub mod service;
pub mod sync;
pub mod time;

pub use db::{Db, Store};
pub use error::{Result, StoreError};
