//! # cellos-hil: hardware-in-the-loop scenarios
//!
//! Runs scenario files (TOML: liquid operations and their expected outcomes) against the instrument twin
//! or a real instrument on the bench.
