//! What the tests that drive one `ZabNode` by hand (follower.rs, leader.rs,
//! looking.rs, recovery.rs) share: the effects type, the epoch n1 leads, and the
//! messages an input sent to one server, the notifications of a fresh ensemble.

#![allow(dead_code)] // each test binary uses a different subset

use synod_core::Effects;
use synod_testkit::n;
use synod_zab::{Epoch, Message, Notification, PeerState, Response, Vote, ZabTimer, Zxid};

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

/// A round-1 notification in `state` with a vote for `leader` over an empty history:
/// what every server of a fresh ensemble sends.
pub fn round_one(leader: u64, state: PeerState) -> Message {
    let vote = Vote {
        leader: n(leader),
        zxid: Zxid::ZERO,
        peer_epoch: Epoch(0),
    };
    Message::Notification(Notification {
        vote,
        election_epoch: 1,
        state,
    })
}
