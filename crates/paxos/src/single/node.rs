//! A single-decree Synod node: one process playing the three roles of "Paxos Made
//! Simple" §2 at once (§2.4: "each process plays the role of proposer, acceptor and
//! learner"), as a sans-IO [`Node`].

use super::acceptor::Acceptor;
use super::learner::Learner;
use super::proposer::{Phase, Proposer};
use crate::types::Ballot;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;
use synod_core::{
    codec, ClientId, ClientRequest, Node, NodeEffects, NodeId, Outcome, Prng, Recovered, Time,
};

/// Meta key of the acceptor's promised ballot.
pub const META_PROMISED: &str = "synod.promised";
/// Meta key of the acceptor's accepted `(ballot, value)`.
pub const META_ACCEPTED: &str = "synod.accepted";
/// Meta key of the proposer's highest round issued.
pub const META_ROUND: &str = "synod.round";
/// Meta key of the learned (chosen) value.
pub const META_CHOSEN: &str = "synod.chosen";

/// What a single-decree instance can decide: any cloneable, comparable, serialisable
/// value.
pub trait SynodValue:
    Clone + Eq + Hash + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<T: Clone + Eq + Hash + Debug + Serialize + DeserializeOwned + Send + Sync + 'static> SynodValue
    for T
{
}

/// Configuration of a [`SynodNode`]. No `Default`: the seed and the timing are the
/// caller's decision.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SynodConfig {
    /// This node.
    pub id: NodeId,
    /// Every process (each is proposer, acceptor and learner).
    pub members: BTreeSet<NodeId>,
    /// An attempt that is neither chosen nor refused by then is retried with a higher
    /// ballot (messages may be lost).
    pub retry_timeout: Duration,
    /// Shortest back-off after a refused attempt.
    pub backoff_min: Duration,
    /// Longest back-off; the window doubles from `backoff_min` up to this.
    pub backoff_max: Duration,
    /// Seed of the back-off PRNG.
    pub seed: u64,
}

impl SynodConfig {
    /// Checks the parameters; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.members.contains(&self.id) {
            return Err(format!("{} is not among the members", self.id));
        }
        if self.backoff_min > self.backoff_max || self.backoff_min.is_zero() {
            return Err("need 0 < backoff_min <= backoff_max".into());
        }
        if self.retry_timeout.is_zero() {
            return Err("retry_timeout must be positive".into());
        }
        Ok(())
    }

    /// LAN-like timing: retry after 100 ms, back off 2–100 ms.
    pub fn lan(id: NodeId, members: impl IntoIterator<Item = NodeId>, seed: u64) -> SynodConfig {
        SynodConfig {
            id,
            members: members.into_iter().collect(),
            retry_timeout: Duration::from_millis(100),
            backoff_min: Duration::from_millis(2),
            backoff_max: Duration::from_millis(100),
            seed,
        }
    }
}

/// The Synod messages (§2.2 phases 1 and 2, §2.3 learning).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum SynodMessage<V> {
    /// Phase 1(a) prepare request.
    Prepare {
        /// Proposal number.
        ballot: Ballot,
    },
    /// Phase 1(b) promise, with the highest-numbered proposal accepted, if any.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// What the acceptor had accepted.
        accepted: Option<(Ballot, V)>,
    },
    /// A prepare or accept request refused because of a higher promise (§2.3's
    /// optional "inform the proposer").
    Refuse {
        /// The ballot refused.
        ballot: Ballot,
        /// The promise that stood in the way.
        promised: Ballot,
    },
    /// Phase 2(a) accept request.
    Accept {
        /// Proposal number.
        ballot: Ballot,
        /// Proposed value.
        value: V,
    },
    /// §2.3: "have each acceptor, whenever it accepts a proposal, respond to all
    /// learners, sending them the proposal".
    Accepted {
        /// Proposal number.
        ballot: Ballot,
        /// Accepted value.
        value: V,
    },
}

/// The single timer: retry an attempt, after a timeout or a randomised back-off.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum SynodTimer {
    /// Start a new attempt with a higher ballot.
    Retry,
}

/// Effects of a [`SynodNode`].
pub type SynodFx<V> = NodeEffects<SynodNode<V>>;

/// One process of a single-decree Paxos instance. Clients ask it to propose a value
/// (`Request = V`); it answers with the chosen value (`Response = V`), which may be
/// another client's.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SynodNode<V> {
    cfg: SynodConfig,
    rng: Prng,
    acceptor: Acceptor<V>,
    proposer: Proposer<V>,
    learner: Learner<V>,
    /// The value this node proposes when it makes an attempt (the first client's).
    want: Option<V>,
    waiters: BTreeSet<(ClientId, u64)>,
    /// The highest round seen in a refusal (so the next ballot tops it).
    seen_round: u64,
    /// Consecutive failed attempts (widens the back-off window).
    failures: u32,
    retry_at: Option<Time>,
    /// Messages to ourselves, handled before the input returns.
    loopback: VecDeque<SynodMessage<V>>,
    now: Time,
}

impl<V: SynodValue> SynodNode<V> {
    /// A node with configuration `cfg`; call [`Node::on_start`] first.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`SynodConfig::validate`]).
    pub fn new(cfg: SynodConfig) -> SynodNode<V> {
        if let Err(e) = cfg.validate() {
            panic!("invalid Synod configuration: {e}");
        }
        let n = cfg.members.len();
        let quorum = n / 2 + 1;
        SynodNode {
            rng: Prng::new(cfg.seed),
            acceptor: Acceptor::new(),
            proposer: Proposer::new(cfg.id, n, quorum, 0),
            learner: Learner::new(quorum, None),
            cfg,
            want: None,
            waiters: BTreeSet::new(),
            seen_round: 0,
            failures: 0,
            retry_at: None,
            loopback: VecDeque::new(),
            now: Time::ZERO,
        }
    }

    /// The acceptor's promise.
    pub fn promised(&self) -> Ballot {
        self.acceptor.promised()
    }
    /// The acceptor's accepted proposal.
    pub fn accepted(&self) -> Option<&(Ballot, V)> {
        self.acceptor.accepted()
    }
    /// The value this node has learned, if any.
    pub fn chosen(&self) -> Option<&V> {
        self.learner.chosen()
    }
    /// The proposer's current attempt.
    pub fn proposer_phase(&self) -> &Phase<V> {
        self.proposer.phase()
    }
    /// The highest round this node's proposer ever issued.
    pub fn round(&self) -> u64 {
        self.proposer.round()
    }

    /// Sends `msg` to `to`; a message to ourselves is handled in this same input.
    fn send(&mut self, to: NodeId, msg: SynodMessage<V>, out: &mut SynodFx<V>) {
        if to == self.cfg.id {
            self.loopback.push_back(msg);
        } else {
            out.send(to, msg);
        }
    }

    fn broadcast(&mut self, msg: SynodMessage<V>, out: &mut SynodFx<V>) {
        let members: Vec<NodeId> = self.cfg.members.iter().copied().collect();
        for to in members {
            self.send(to, msg.clone(), out);
        }
    }

    fn persist_acceptor(&self, out: &mut SynodFx<V>) {
        out.persist
            .set_meta(META_PROMISED, codec::encode(&self.acceptor.promised()));
        out.persist
            .set_meta(META_ACCEPTED, codec::encode(&self.acceptor.accepted()));
    }

    /// Phase 1(a), with a ballot above anything this node issued or saw refused.
    /// The round is persisted in this input's batch, so the prepare leaves only once
    /// it is durable (§2.5).
    fn start_attempt(&mut self, out: &mut SynodFx<V>) {
        let Some(own) = self.want.clone() else {
            return;
        };
        let seen = self.seen_round.max(self.acceptor.promised().round);
        let ballot = self.proposer.prepare(own, seen);
        out.persist
            .set_meta(META_ROUND, codec::encode(&self.proposer.round()));
        tracing::debug!(%ballot, "prepare");
        self.broadcast(SynodMessage::Prepare { ballot }, out);
        self.arm_retry(self.cfg.retry_timeout, out);
    }

    fn arm_retry(&mut self, after: Duration, out: &mut SynodFx<V>) {
        let at = self.now + after;
        self.retry_at = Some(at);
        out.set_timer(SynodTimer::Retry, at);
    }

    /// Dueling proposers (§2.4 "it's easy to construct a scenario in which two
    /// proposers each keep issuing a sequence of proposals with increasing numbers,
    /// none of which are ever chosen"): a refused proposer waits a random time, from a
    /// window that doubles with each failure, so one of them gets through.
    fn back_off(&mut self, out: &mut SynodFx<V>) {
        self.failures = self.failures.saturating_add(1);
        let min = self.cfg.backoff_min;
        let window = min
            .saturating_mul(1 << self.failures.min(16))
            .min(self.cfg.backoff_max);
        let delay = self.rng.duration_between(min, window);
        self.arm_retry(delay, out);
    }

    fn handle(&mut self, from: NodeId, msg: SynodMessage<V>, out: &mut SynodFx<V>) {
        match msg {
            SynodMessage::Prepare { ballot } => self.on_prepare(from, ballot, out),
            SynodMessage::Promise { ballot, accepted } => {
                if let Some((ballot, value)) = self.proposer.on_promise(from, ballot, accepted) {
                    tracing::debug!(%ballot, ?value, "accept");
                    self.broadcast(SynodMessage::Accept { ballot, value }, out);
                }
            }
            SynodMessage::Refuse { ballot, promised } => {
                self.seen_round = self.seen_round.max(promised.round);
                if self.proposer.on_refusal(from, ballot) && self.learner.chosen().is_none() {
                    self.back_off(out);
                }
            }
            SynodMessage::Accept { ballot, value } => self.on_accept(from, ballot, value, out),
            SynodMessage::Accepted { ballot, value } => self.on_accepted(from, ballot, value, out),
        }
    }

    /// Acceptor, Phase 1(b). The promise is persisted before it is sent.
    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, out: &mut SynodFx<V>) {
        match self.acceptor.on_prepare(ballot) {
            Ok(accepted) => {
                self.persist_acceptor(out);
                self.send(from, SynodMessage::Promise { ballot, accepted }, out);
            }
            Err(promised) => self.send(from, SynodMessage::Refuse { ballot, promised }, out),
        }
    }

    /// Acceptor, Phase 2(b); the acceptance is persisted before learners hear of it.
    fn on_accept(&mut self, from: NodeId, ballot: Ballot, value: V, out: &mut SynodFx<V>) {
        match self.acceptor.on_accept(ballot, value.clone()) {
            Ok(()) => {
                self.persist_acceptor(out);
                self.broadcast(SynodMessage::Accepted { ballot, value }, out);
            }
            Err(promised) => self.send(from, SynodMessage::Refuse { ballot, promised }, out),
        }
    }

    /// Learner (§2.3). The chosen value is persisted, then every waiting client hears it.
    fn on_accepted(&mut self, from: NodeId, ballot: Ballot, value: V, out: &mut SynodFx<V>) {
        let Some(chosen) = self.learner.on_accepted(from, ballot, value) else {
            return;
        };
        tracing::debug!(%ballot, ?chosen, "learned");
        out.persist
            .set_meta(META_CHOSEN, codec::encode(&Some(chosen.clone())));
        self.proposer.stop();
        self.failures = 0;
        if self.retry_at.take().is_some() {
            out.cancel_timer(SynodTimer::Retry);
        }
        for (client, seq) in std::mem::take(&mut self.waiters) {
            out.reply(client, seq, Outcome::Done(chosen.clone()));
        }
    }

    fn drain_loopback(&mut self, out: &mut SynodFx<V>) {
        while let Some(msg) = self.loopback.pop_front() {
            self.handle(self.cfg.id, msg, out);
        }
    }
}

fn meta<T: DeserializeOwned>(rec: &Recovered, key: &str) -> Option<T> {
    rec.meta
        .get(key)
        .map(|b| codec::decode(b).unwrap_or_else(|e| panic!("corrupt {key}: {e}")))
}

impl<V: SynodValue> Node for SynodNode<V> {
    type Message = SynodMessage<V>;
    type Timer = SynodTimer;
    type Request = V;
    type Response = V;

    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn on_start(&mut self, now: Time, rec: Recovered, _out: &mut SynodFx<V>) {
        self.now = now;
        let promised = meta(&rec, META_PROMISED).unwrap_or(Ballot::ZERO);
        let accepted: Option<(Ballot, V)> = meta(&rec, META_ACCEPTED).flatten();
        self.acceptor = Acceptor::recover(promised, accepted);
        let round = meta(&rec, META_ROUND).unwrap_or(0);
        let n = self.cfg.members.len();
        self.proposer = Proposer::new(self.cfg.id, n, n / 2 + 1, round);
        self.learner = Learner::new(n / 2 + 1, meta(&rec, META_CHOSEN).flatten());
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: SynodMessage<V>, out: &mut SynodFx<V>) {
        self.now = now;
        self.handle(from, msg, out);
        self.drain_loopback(out);
    }

    fn on_timer(&mut self, now: Time, timer: SynodTimer, out: &mut SynodFx<V>) {
        self.now = now;
        let SynodTimer::Retry = timer;
        if self.retry_at.is_none_or(|at| now < at) || self.learner.chosen().is_some() {
            return; // spurious, or nothing left to do
        }
        self.retry_at = None;
        self.start_attempt(out);
        self.drain_loopback(out);
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<V>, out: &mut SynodFx<V>) {
        self.now = now;
        if let Some(chosen) = self.learner.chosen() {
            out.reply(req.client, req.seq, Outcome::Done(chosen.clone()));
            return;
        }
        self.waiters.insert((req.client, req.seq));
        if self.want.is_none() {
            self.want = Some(req.op);
        }
        if matches!(self.proposer.phase(), Phase::Idle) && self.retry_at.is_none() {
            self.start_attempt(out);
            self.drain_loopback(out);
        }
    }
}
