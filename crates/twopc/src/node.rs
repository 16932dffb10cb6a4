//! `TwoPcNode`: one member of a 2PC cluster — the coordinator or a shard's
//! participant, as the [`Topology`] says — behind synod-core's `Node` trait.

use crate::coordinator::{Coordinator, CoordinatorTiming, DecisionLog, LocalLog};
use crate::message::Message;
use crate::participant::{Participant, ParticipantTiming};
use crate::types::{Topology, Txn, TxnId, TxnOutcome};
use std::time::Duration;
use synod_core::{ClientRequest, Effects, Node, NodeId, Outcome, Recovered, Time};

/// 2PC's one timer: every timeout is checked on its tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Check timeouts, resend what is unacknowledged, ask about what is in doubt.
    Tick,
}

/// The effects of a 2PC node's inputs.
pub type Fx = Effects<Message, Timer, TxnOutcome>;

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoPcConfig {
    /// This node.
    pub id: NodeId,
    /// Who coordinates, who owns which shard.
    pub topology: Topology,
    /// The coordinator's timing.
    pub coordinator: CoordinatorTiming,
    /// The participants' timing.
    pub participant: ParticipantTiming,
}

impl TwoPcConfig {
    /// Timeouts for a LAN (round trips well under a millisecond): votes within
    /// 200 ms, COMMITs resent every 50 ms, locks awaited 100 ms, an in-doubt
    /// participant asks after 150 ms (the peers after 300 ms).
    pub fn lan(id: NodeId, topology: Topology) -> TwoPcConfig {
        TwoPcConfig {
            id,
            topology,
            coordinator: CoordinatorTiming {
                vote_timeout: Duration::from_millis(200),
                resend_every: Duration::from_millis(50),
                snapshot_every: 4096,
            },
            participant: ParticipantTiming {
                lock_wait_max: Duration::from_millis(100),
                inquire_after: Duration::from_millis(150),
                snapshot_every: 4096,
            },
        }
    }
}

/// What a node does.
pub enum Role {
    /// The transaction manager, with its journal.
    Coordinator(Coordinator, LocalLog),
    /// A shard's resource manager.
    Participant(Participant),
}

/// One 2PC node.
pub struct TwoPcNode {
    id: NodeId,
    role: Role,
    halted: Option<String>,
}

impl TwoPcNode {
    /// The member `cfg.id` of `cfg.topology`.
    ///
    /// # Panics
    /// If `cfg.id` is neither the coordinator nor a shard's owner.
    pub fn new(cfg: TwoPcConfig) -> TwoPcNode {
        let role = if cfg.topology.is_coordinator(cfg.id) {
            assert_eq!(
                cfg.topology.coordinators.len(),
                1,
                "classic 2PC has one coordinator (a replicated one runs on Raft's replicas)"
            );
            let log = LocalLog::new(cfg.coordinator.snapshot_every);
            Role::Coordinator(Coordinator::new(cfg.topology, cfg.coordinator), log)
        } else {
            assert!(
                cfg.topology.shard_owned_by(cfg.id).is_some(),
                "{} is not a member of the topology",
                cfg.id
            );
            Role::Participant(Participant::new(cfg.id, cfg.topology, cfg.participant))
        };
        TwoPcNode {
            id: cfg.id,
            role,
            halted: None,
        }
    }

    /// What this node does (its state, for tests and checkers).
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The outcomes this node holds, commit = `true`: the coordinator's durable
    /// commit decisions, or a participant's outcome records — what an atomicity
    /// check compares across nodes.
    pub fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        match &self.role {
            Role::Coordinator(_, log) => log.durable_decisions().map(|t| (t, true)).collect(),
            Role::Participant(p) => p.outcomes().collect(),
        }
    }
}

impl Node for TwoPcNode {
    type Message = Message;
    type Timer = Timer;
    type Request = Txn;
    type Response = TxnOutcome;

    fn id(&self) -> NodeId {
        self.id
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut Fx) {
        let result = match &mut self.role {
            Role::Coordinator(c, log) => log
                .recover(&recovered, out)
                .map(|incarnation| c.lead(now, incarnation, log.decisions(), out)),
            Role::Participant(p) => p.recover(now, recovered).map(|()| p.on_tick(now, out)),
        };
        if let Err(reason) = result {
            tracing::error!(%reason, "halting: storage holds what this node cannot read");
            out.persist.clear();
            out.sends.clear();
            self.halted = Some(reason);
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Fx) {
        if self.halted.is_some() {
            return;
        }
        match (&mut self.role, msg) {
            (
                Role::Participant(p),
                Message::Prepare {
                    txn,
                    age,
                    ops,
                    participants,
                    active_from,
                },
            ) => p.on_prepare(now, from, (txn, age), ops, participants, active_from, out),
            (Role::Participant(p), Message::Decide { txn, commit }) => {
                p.on_decide(now, from, txn, commit, out)
            }
            (Role::Participant(p), Message::Inquire { txn }) => p.on_inquire(now, from, txn, out),
            (Role::Participant(p), Message::Known { txn, outcome }) => {
                p.on_known(now, txn, outcome, out)
            }
            (Role::Coordinator(c, log), Message::Vote { txn, vote }) => {
                c.on_vote(now, from, txn, vote, log, out)
            }
            (Role::Coordinator(c, log), Message::Ack { txn }) => c.on_ack(from, txn, log, out),
            (Role::Coordinator(c, log), Message::Inquire { txn }) => {
                c.on_inquire(from, txn, log.decisions(), out)
            }
            (_, msg) => tracing::debug!(?msg, "not for this role"),
        }
    }

    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Fx) {
        if self.halted.is_some() {
            return;
        }
        let Timer::Tick = timer;
        match &mut self.role {
            Role::Coordinator(c, _) => c.on_tick(now, out),
            Role::Participant(p) => p.on_tick(now, out),
        }
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<Txn>, out: &mut Fx) {
        if self.halted.is_some() {
            return;
        }
        match &mut self.role {
            Role::Coordinator(c, log) => {
                c.on_client_request(now, req.client, req.seq, req.op.ops, log.decisions(), out)
            }
            Role::Participant(p) => {
                let leader = p.coordinator_hint(now);
                out.reply(req.client, req.seq, Outcome::NotLeader { leader });
            }
        }
    }

    fn on_persisted(&mut self, _now: Time, tag: u64, _out: &mut Fx) {
        if let Role::Coordinator(_, log) = &mut self.role {
            log.on_persisted(tag);
        }
    }
}
