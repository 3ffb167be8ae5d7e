//! model tests
