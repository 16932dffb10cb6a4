//! Segmented, checksummed, fsync'd file WAL (being written).
