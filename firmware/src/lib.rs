//! # cellos-firmware: the instrument twin
//!
//! A `#![no_std]`, heap-free impersonation of the lab's instruments, generic over `embedded-io` byte
//! streams, so the same code serves a pty on a host and a UART on a microcontroller:
//!
//! - [`deck`]: the deck and its pipetting rules, `cellos-core`'s (re-exported): the twins check each
//!   channel of a command with the rules the gateway's envelope uses, and map a broken rule to their
//!   instrument's error code in one table each.
//! - [`star`]: the Hamilton STAR master with 8 channels (tips, aspirate, dispense, initialisation and
//!   status queries), replies carrying the request id, completing out of order where the instrument would.
//! - [`evo`]: the Tecan EVO LiHa (8 tips) and RoMa basics.
//! - [`reader`]: the plate reader and incubator, simulating wells with `cellos-core` from what was
//!   actually dispensed, with noise that is a pure function of (seed, plate, well, readout, time).
//! - [`faults`]: drop, delay, corrupt or duplicate replies; stall; reboot.
//! - [`twin`]: the shared state and the ports that serve it from byte streams.
//!
//! `docs/twin.md` describes the deck, the timing and the error replies.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

pub use cellos_core::deck;
pub mod evo;
pub mod faults;
pub mod reader;
pub mod star;
pub mod twin;

#[cfg(feature = "host")]
pub mod host;

pub use twin::{EvoPort, StarPort, Twin, WirePort};

/// The twin as the host serves it: up to 4 plates of up to 384 wells.
pub type HostTwin = Twin<4, 384>;
/// The twin as a microcontroller serves it: one 96-well plate.
pub type SmallTwin = Twin<1, 96>;
