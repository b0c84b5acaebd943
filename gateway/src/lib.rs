//! # cellos-gateway: the lab gateway
//!
//! Drives the liquid handlers over serial and runs what they do:
//!
//! - [`transport`]: message links (a serial implementation with per-protocol framing; room for USB).
//! - [`star`], [`evo`]: the STAR driver (many commands in flight, replies matched by id, per-command time
//!   limits, typed errors) and the EVO driver (one command outstanding, explicit set-command cache).
//! - [`wire`]: the client of our own link (plate reader, incubator, twin control).
//! - [`liquid`]: one interface over both instruments, the deck model and the safety envelope that checks
//!   every operation before it is sent, and the journal hook; [`handlers`] implements it for each.
//! - [`worklist`]: Tecan `.gwl` and Hamilton CSV worklists: parse, validate, emit, convert, execute.
//!
//! `anyhow` appears only in the binary; the library returns [`error::GatewayError`].
#![deny(missing_docs)]

pub mod campaign;
pub mod cli;
pub mod crash;
pub mod decode;
pub mod error;
pub mod evo;
pub mod handlers;
pub mod liquid;
pub mod service;
pub mod star;
pub mod transport;
pub mod twin;
pub mod wire;
pub mod worklist;

pub use error::GatewayError;
