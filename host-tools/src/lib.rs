//! # cellos-host: the host side of cellos
//!
//! The SQLite store (four databases and their migrations), importers and exporters for the legacy
//! platform's data with field-by-field verification, the scheduler and the facility planner. The
//! `cellos` administration tool is built on it, and the gateway keeps its records through it.
