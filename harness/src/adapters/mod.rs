//! [`SimProtocol`](crate::protocol::SimProtocol) adapters for the protocol crates,
//! with each protocol's online invariants.

pub mod paxos;
pub mod raft;
pub mod twopc;
pub mod vvsync;
pub mod zab;

use synod_core::Prng;

/// Mixed into a node's seed to draw its knobs in `SimProtocol::build_varied`, so the
/// draw does not repeat the protocol's own first random numbers.
const TUNING_STREAM: u64 = 0x7475_6e69_6e67_0001;

/// One of `choices`, uniformly.
fn pick(knobs: &mut Prng, choices: &[usize]) -> usize {
    choices[knobs.below(choices.len() as u64) as usize]
}

#[cfg(test)]
mod testing;
