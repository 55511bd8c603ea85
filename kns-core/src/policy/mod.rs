//! NetworkPolicy semantics (in progress).
