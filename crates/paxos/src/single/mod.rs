//! Single-decree Paxos — the Synod protocol exactly as "Paxos Made Simple" (Lamport,
//! 2001) §2 states it, one role per module so it reads beside the paper:
//!
//! * [`Acceptor`] — P1/P1a, Phase 1(b) and Phase 2(b) (§2.2);
//! * [`Proposer`] — Phase 1(a) and Phase 2(a) with P2c's choice of value (§2.2);
//! * [`Learner`] — a value is chosen once a majority accepted it in one ballot (§2.3);
//! * [`SynodNode`] — the three roles in one process (§2.4), persisting promise and
//!   acceptance before answering, with randomised back-off for dueling proposers.
//!
//! Multi-Paxos ([`crate::multi`]) runs one such instance per slot, with the
//! optimisations of §3; this module is the reference it can be checked against.

mod acceptor;
mod learner;
mod node;
mod proposer;

pub use acceptor::Acceptor;
pub use learner::Learner;
pub use node::{
    SynodConfig, SynodFx, SynodMessage, SynodNode, SynodTimer, SynodValue, META_ACCEPTED,
    META_CHOSEN, META_PROMISED, META_ROUND,
};
pub use proposer::{highest_accepted, Phase, Proposer};
