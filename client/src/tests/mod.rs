//! The crate's own tests of its state machine, natively and in milliseconds, kept apart so
//! that `src/` reads as the library (quinn-proto keeps its `src/tests/` the same way):
//!
//! - `sim.rs`: the simulated world: a connection the test drives (the transport `link.rs`
//!   picks in this build), a clock and a small executor, and `sim::serve`, the echo server;
//! - `model.rs`: model-based tests, random sequences of calls, transport events, time and
//!   network changes checked against the socket's invariants (proptest), and with the
//!   `fuzzing` feature the same sequences read from a fuzzer's bytes (`model/fuzz.rs`);
//! - `differential.rs`: the thin driver (`thin.rs`) held to the full one: the model's random
//!   sequences, without what needs the builder, run on each must give the same trace;
//! - `scenarios/`: the browser suites' state-machine scenarios and the issues' regressions,
//!   by name, on the simulated world.

// Built for the fuzz target too (feature `fuzzing`), which uses only the model's runner.
#![cfg_attr(not(test), allow(dead_code))]

#[cfg(test)]
mod differential;
pub(crate) mod model;
#[cfg(test)]
mod scenarios;
pub(crate) mod sim;
