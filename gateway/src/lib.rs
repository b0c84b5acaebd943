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
//! - [`campaign`]: autonomous campaigns; [`service`]: the gateway as an HTTP service; [`sila`]: its SiLA 2
//!   front end.
//! - [`reader_export`]: plate-reader exports (plate grid or long CSV), uploaded for a manual reader.
//!
//! `anyhow` appears only in the binary; the library returns [`error::GatewayError`].
#![deny(missing_docs)]

/// A line on standard error that may fail: a gateway whose standard error went away (a service's closed
/// pipe, a terminal gone) goes on with its work.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod campaign;
pub mod cli;
pub mod crash;
pub mod decode;
pub mod error;
pub mod evo;
pub mod handlers;
pub mod liquid;
pub mod reader_export;
pub mod service;
pub mod sila;
pub mod star;
pub mod transport;
pub mod twin;
pub mod wire;
pub mod worklist;

pub use error::GatewayError;
