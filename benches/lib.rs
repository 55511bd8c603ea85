//! Shared helpers for the kns criterion benches.
