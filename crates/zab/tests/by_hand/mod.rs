//! What the tests that drive one `ZabNode` by hand (follower.rs, leader.rs,
//! looking.rs, recovery.rs) share: the effects type, the epoch n1 leads, and the
//! messages an input sent to one server.

#![allow(dead_code)] // each test binary uses a different subset

use synod_core::Effects;
use synod_testkit::n;
use synod_zab::{Epoch, Message, Response, ZabTimer};

/// A Zab node's effects.
pub type Fx = Effects<Message, ZabTimer, Response>;

/// The epoch n1 leads.
pub const E: Epoch = Epoch(1);

/// The messages `fx` sends to `to`, early or not.
pub fn sends_to(fx: &Fx, to: u64) -> Vec<&Message> {
    (fx.sends.iter().chain(&fx.early_sends))
        .filter(|e| e.to == n(to))
        .map(|e| &e.msg)
        .collect()
}
