//! # cellos-tests: tests that cross crate boundaries
//!
//! Gateway against the twin over ptys, campaigns end to end, import → query → export. The tests live in
//! `tests/`; this library holds what they share.
