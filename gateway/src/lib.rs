//! # cellos-gateway: the lab gateway
//!
//! Drives the liquid handlers over serial (STAR and EVO drivers behind one transport trait), checks every
//! operation against a safety envelope, reads and runs worklists, and runs autonomous campaigns whose
//! progress is committed to the campaign database step by step.
