//! TCP peer transport (being written).
