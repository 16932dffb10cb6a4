//! [`SimProtocol`](crate::protocol::SimProtocol) adapters for the protocol crates,
//! with each protocol's online invariants.

pub mod paxos;
pub mod raft;

#[cfg(test)]
mod testing;
