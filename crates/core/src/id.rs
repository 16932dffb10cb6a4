//! Identifiers shared by every protocol and driver.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A cluster member. Ids are small dense integers chosen by whoever configures the
/// cluster; protocols use them to break ties (e.g. Paxos ballots `(round, node)`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A client session. Together with a per-client sequence number it names one logical
/// request, so that a retried request is recognised and never applied twice.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}
