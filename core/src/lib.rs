//! # cellos-core: the science of a cell-biology bench, without an operating system
//!
//! This crate is `#![no_std]` and never allocates. It holds what every other part of cellos agrees on:
//! how plates are addressed, what the parameters of a cell line are, how cells grow and die, and what an
//! assay reads. Time, randomness and buffers always come in as arguments, so the same inputs give
//! bit-identical outputs on a lab computer and on a microcontroller.
//!
//! The layers, from the ground up:
//!
//! - [`plate`]: plate formats (6 to 1536 wells), well addresses (`A1`, `A01`, row- and column-major
//!   indices), and the edge ring of each format.
//! - [`params`]: the numbers that describe a cell line, a compound's potency on it, and the tBHP readout
//!   sets, with the built-in table of the legacy platform. A missing pair is an error, never a default.
//! - [`rng`]: the seeded generator type and the normal sampler every random draw goes through.
//! - [`model`]: the growth law integrated in closed form (one 24 h call equals 24 one-hour calls), passage,
//!   treatment, and [`model::Plate`], which advances every well of a plate at once.
//! - [`readout`]: what the instruments read (cell count, viability, CellROX, segmentation quality) and the
//!   pure Hill and four-parameter logistic functions behind them, with their inverses.
//! - [`fit`]: bounded Levenberg–Marquardt least squares over fixed-size arrays, with standard errors:
//!   the four-parameter logistic and the lentivirus transduction model.
//! - [`search`]: the dose search as a state machine without I/O, with the legacy `grid` strategy and our
//!   `adaptive` one, and the tBHP assay as the model predicts it.
//! - [`deck`]: the deck (tip racks, plates, troughs and the liquid in them), its file description, and
//!   the pipetting rules every liquid handler and twin applies: one `check`, one `apply`.
//! - [`labtime`]: the durations of a bench's steps (one profile for plans, runs and the twin).
//! - [`banking`]: master and working cell bank expansion, day by day, with the daily work it causes.
//! - [`titer`]: lentivirus titration (simulate, fit, recommend a volume) and screen sizing.
//!
//! Logging goes through one shim: enable the `log` feature on a host, `defmt` on a target, or neither.
//! Enabling both is a compile error.
#![no_std]
#![deny(missing_docs)]

#[macro_use]
mod fmt;

pub mod banking;
pub mod deck;
pub mod fit;
pub mod labtime;
pub mod model;
pub mod params;
pub mod plate;
pub mod proto;
pub mod readout;
pub mod rng;
pub mod search;
pub mod titer;
