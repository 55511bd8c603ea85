//! kns-scenarios
