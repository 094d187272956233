//! Device models (being written).
