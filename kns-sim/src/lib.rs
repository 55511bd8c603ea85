//! kns-sim
