//! Compositions of protocol crates, wired here because protocol crates never depend
//! on each other (docs/ARCHITECTURE.md).
//!
//! **`twopc-nb`** — two-phase commit whose coordinator cannot block it: the
//! coordinator runs on the replicas of a Raft group, and its decision records are
//! commands of [`Decisions`], a state machine Raft replicates. Raft's caught-up
//! leader coordinates (its term is the epoch of the transaction ids it gives);
//! a commit decision is sent only once Raft applied it, i.e. once it is durable on a
//! majority of the replicas. When the leader crashes, another replica is elected
//! within an election timeout and answers every in-doubt participant from the
//! replicated state: a transaction with no commit record from an earlier term is
//! aborted (presumed abort; every commit an earlier leader could still get committed
//! is in the state machine once the new leader applied its term's first entry —
//! Raft's Leader Completeness, §5.4). So 2PC blocks only while a majority of the
//! coordinator's replicas is down, never for one crash — Gray & Lamport's point in
//! "Consensus on Transaction Commit" (2006), reached by replicating the
//! coordinator's log rather than by Paxos Commit's per-participant instances
//! (docs/protocols/twopc.md says why).
//!
//! The coordinator and the participants are `synod-twopc`'s, unchanged; Raft is
//! `synod-raft`, unchanged. [`NbNode`] is one member: a coordinator replica (Raft
//! node + coordinator) or a shard's participant.

use synod_core::{
    ClientId, ClientReply, ClientRequest, Effects, Envelope, Node, NodeId, Outcome, Recovered,
    Time, TimerOp,
};
use synod_raft::{RaftConfig, RaftNode, RaftTimer, Request, Response};
use synod_twopc::{
    Coordinator, DecisionCmd, DecisionLog, DecisionOutput, Decisions, Fx, Topology, TwoPcConfig,
    TwoPcNode, Txn, TxnId, TxnOutcome,
};

/// A `twopc-nb` message: 2PC's, or the coordinator replicas' Raft.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NbMessage {
    /// Between the coordinator and the participants, or among participants.
    Commit(synod_twopc::Message),
    /// Among the coordinator's replicas.
    Raft(synod_raft::Message<Decisions>),
}

/// A `twopc-nb` timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NbTimer {
    /// 2PC's tick.
    Commit(synod_twopc::Timer),
    /// Raft's.
    Raft(RaftTimer),
}

type NbFx = Effects<NbMessage, NbTimer, TxnOutcome>;
type RaftFx = Effects<synod_raft::Message<Decisions>, RaftTimer, Response<Decisions>>;

/// How many of the members are the coordinator's replicas.
pub const REPLICAS: usize = 3;

/// The topology of a `twopc-nb` cluster of `members`: the first [`REPLICAS`] replicate
/// the coordinator, each other one owns a shard.
pub fn nb_topology(members: &[NodeId]) -> Topology {
    Topology::replicated(members, REPLICAS)
}

/// A coordinator replica.
struct Replica {
    raft: RaftNode<Decisions>,
    coordinator: Coordinator,
    /// The Raft session this replica proposes in, and the last sequence number it
    /// used: `term << 32 | n`, so numbers grow across terms and restarts.
    session: ClientId,
    last_seq: u64,
    raft_fx: RaftFx,
    fx: Fx,
}

enum Member {
    Replica(Box<Replica>),
    Participant(Box<TwoPcNode>),
}

/// One member of a `twopc-nb` cluster.
pub struct NbNode {
    id: NodeId,
    member: Member,
}

impl NbNode {
    /// Member `id` of `topology` (from [`nb_topology`]), with Raft's LAN timing seeded
    /// by `seed` and 2PC's LAN timing.
    pub fn new(id: NodeId, topology: Topology, seed: u64) -> NbNode {
        let raft = RaftConfig::lan(id, topology.coordinators.iter().copied(), seed);
        let twopc = TwoPcConfig::lan(id, topology.clone());
        NbNode::with(id, topology, raft, twopc)
    }

    /// Member `id` of `topology` with the given Raft configuration (for replicas) and
    /// 2PC timing (`twopc.id` and `twopc.topology` are replaced).
    pub fn with(id: NodeId, topology: Topology, raft: RaftConfig, twopc: TwoPcConfig) -> NbNode {
        let member = if topology.is_coordinator(id) {
            Member::Replica(Box::new(Replica {
                raft: RaftNode::new(raft),
                coordinator: Coordinator::new(topology, twopc.coordinator),
                // Apart from every workload client's id.
                session: ClientId(u64::MAX - id.0),
                last_seq: 0,
                raft_fx: Effects::new(),
                fx: Effects::new(),
            }))
        } else {
            let cfg = TwoPcConfig {
                id,
                topology,
                ..twopc
            };
            Member::Participant(Box::new(TwoPcNode::new(cfg)))
        };
        NbNode { id, member }
    }

    /// The outcomes this node holds, commit = `true`: a replica's applied commit
    /// records (applied = committed by Raft), or a participant's outcome records.
    pub fn known_outcomes(&self) -> Vec<(TxnId, bool)> {
        match &self.member {
            Member::Replica(r) => (r.raft.state_machine().app().commits())
                .map(|t| (t, true))
                .collect(),
            Member::Participant(p) => p.known_outcomes(),
        }
    }

    /// The Raft node of a coordinator replica.
    pub fn raft(&self) -> Option<&RaftNode<Decisions>> {
        match &self.member {
            Member::Replica(r) => Some(&r.raft),
            Member::Participant(_) => None,
        }
    }

    /// The coordinator of a replica.
    pub fn coordinator(&self) -> Option<&Coordinator> {
        match &self.member {
            Member::Replica(r) => Some(&r.coordinator),
            Member::Participant(_) => None,
        }
    }

    /// The node of a participant.
    pub fn participant(&self) -> Option<&TwoPcNode> {
        match &self.member {
            Member::Participant(p) => Some(p),
            Member::Replica(_) => None,
        }
    }
}

/// The coordinator's records, proposed to Raft: applied (and answered through
/// [`Coordinator::on_decided`]) once committed.
struct RaftLog<'a> {
    raft: &'a mut RaftNode<Decisions>,
    raft_fx: &'a mut RaftFx,
    session: ClientId,
    last_seq: &'a mut u64,
    now: Time,
}

impl DecisionLog for RaftLog<'_> {
    fn decisions(&self) -> &Decisions {
        self.raft.state_machine().app()
    }

    fn propose(&mut self, cmd: DecisionCmd, _out: &mut Fx) -> Option<DecisionOutput> {
        let term = self.raft.term().0;
        *self.last_seq = (*self.last_seq + 1).max(term << 32 | 1);
        let req = ClientRequest {
            client: self.session,
            seq: *self.last_seq,
            op: Request::Command(cmd),
        };
        self.raft.on_client_request(self.now, req, self.raft_fx);
        None
    }
}

impl Replica {
    /// Runs `f` on the coordinator with Raft as its log.
    fn with_log(&mut self, now: Time, f: impl FnOnce(&mut Coordinator, &mut RaftLog, &mut Fx)) {
        let mut log = RaftLog {
            raft: &mut self.raft,
            raft_fx: &mut self.raft_fx,
            session: self.session,
            last_seq: &mut self.last_seq,
            now,
        };
        f(&mut self.coordinator, &mut log, &mut self.fx);
    }

    /// After every input: hand Raft's answers to the coordinator, follow Raft's
    /// leadership, and move both parts' effects into `out`.
    fn settle(&mut self, now: Time, out: &mut NbFx) {
        // `on_decided` never proposes, so it adds no Raft answers: one pass drains
        // them.
        let replies: Vec<ClientReply<Response<Decisions>>> = (self.raft_fx.replies.drain(..))
            .chain(self.raft_fx.early_replies.drain(..))
            .collect();
        for reply in replies {
            if reply.client != self.session {
                continue;
            }
            if let Outcome::Done(Response::Output(output)) = reply.outcome {
                (self.coordinator).on_decided(now, output, &mut self.fx);
            }
        }
        let ready = self.raft.leader_ready();
        let term = self.raft.term().0;
        match self.coordinator.epoch() {
            Some(epoch) if ready && epoch == term => {}
            epoch => {
                if epoch.is_some() {
                    tracing::debug!(?epoch, "coordinator steps down");
                    self.coordinator.step_down(&mut self.fx);
                }
                if ready {
                    tracing::debug!(term, "coordinating");
                    let decisions = self.raft.state_machine().app();
                    self.coordinator.lead(now, term, decisions, &mut self.fx);
                }
            }
        }
        lift(
            &mut self.raft_fx,
            out,
            NbMessage::Raft,
            NbTimer::Raft,
            |_| None,
        );
        lift(&mut self.fx, out, NbMessage::Commit, NbTimer::Commit, Some);
    }
}

/// Moves `from`'s effects into `out`, wrapping messages and timers; replies go
/// through `reply` (`None`: not a client's).
fn lift<M, T, R>(
    from: &mut Effects<M, T, R>,
    out: &mut NbFx,
    msg: impl Fn(M) -> NbMessage,
    timer: impl Fn(T) -> NbTimer,
    reply: impl Fn(Outcome<R>) -> Option<Outcome<TxnOutcome>>,
) {
    out.persist.append(&mut from.persist);
    let wrap = |e: Envelope<M>| Envelope {
        to: e.to,
        msg: msg(e.msg),
    };
    out.sends.extend(from.sends.drain(..).map(wrap));
    out.early_sends.extend(from.early_sends.drain(..).map(wrap));
    for r in from.replies.drain(..) {
        if let Some(outcome) = reply(r.outcome) {
            out.reply(r.client, r.seq, outcome);
        }
    }
    for r in from.early_replies.drain(..) {
        if let Some(outcome) = reply(r.outcome) {
            out.reply_early(r.client, r.seq, outcome);
        }
    }
    out.timers.extend(from.timers.drain(..).map(|op| match op {
        TimerOp::Set { timer: t, at } => TimerOp::Set {
            timer: timer(t),
            at,
        },
        TimerOp::Cancel(t) => TimerOp::Cancel(timer(t)),
    }));
    if let Some(tag) = from.persist_notify.take() {
        assert!(
            out.persist_notify.replace(tag).is_none(),
            "one part of a composed node asks for persist notifications"
        );
    }
}

/// A participant's effects, wrapped.
fn lift_participant(fx: &mut Fx, out: &mut NbFx) {
    lift(fx, out, NbMessage::Commit, NbTimer::Commit, Some);
}

impl Node for NbNode {
    type Message = NbMessage;
    type Timer = NbTimer;
    type Request = Txn;
    type Response = TxnOutcome;

    fn id(&self) -> NodeId {
        self.id
    }

    fn halted(&self) -> Option<&str> {
        match &self.member {
            Member::Replica(r) => r.raft.halted(),
            Member::Participant(p) => p.halted(),
        }
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut NbFx) {
        match &mut self.member {
            Member::Replica(r) => {
                r.raft.on_start(now, recovered, &mut r.raft_fx);
                r.settle(now, out);
            }
            Member::Participant(p) => {
                let mut fx = Effects::new();
                p.on_start(now, recovered, &mut fx);
                lift_participant(&mut fx, out);
            }
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: NbMessage, out: &mut NbFx) {
        match (&mut self.member, msg) {
            (Member::Replica(r), NbMessage::Raft(m)) => {
                r.raft.on_message(now, from, m, &mut r.raft_fx);
                r.settle(now, out);
            }
            (Member::Replica(r), NbMessage::Commit(m)) => {
                use synod_twopc::Message as M;
                match m {
                    M::Vote { txn, vote } => r.with_log(now, |c, log, fx| {
                        c.on_vote(now, from, txn, vote, log, fx);
                    }),
                    M::Ack { txn } => r.with_log(now, |c, log, fx| c.on_ack(from, txn, log, fx)),
                    M::Inquire { txn } => {
                        let decisions = r.raft.state_machine().app();
                        r.coordinator.on_inquire(from, txn, decisions, &mut r.fx)
                    }
                    other => tracing::debug!(?other, "not for a coordinator"),
                }
                r.settle(now, out);
            }
            (Member::Participant(p), NbMessage::Commit(m)) => {
                let mut fx = Effects::new();
                p.on_message(now, from, m, &mut fx);
                lift_participant(&mut fx, out);
            }
            (Member::Participant(_), NbMessage::Raft(_)) => {}
        }
    }

    fn on_timer(&mut self, now: Time, timer: NbTimer, out: &mut NbFx) {
        match (&mut self.member, timer) {
            (Member::Replica(r), NbTimer::Raft(t)) => {
                r.raft.on_timer(now, t, &mut r.raft_fx);
                r.settle(now, out);
            }
            (Member::Replica(r), NbTimer::Commit(_)) => {
                r.coordinator.on_tick(now, &mut r.fx);
                r.settle(now, out);
            }
            (Member::Participant(p), NbTimer::Commit(t)) => {
                let mut fx = Effects::new();
                p.on_timer(now, t, &mut fx);
                lift_participant(&mut fx, out);
            }
            (Member::Participant(_), NbTimer::Raft(_)) => {}
        }
    }

    fn on_client_request(&mut self, now: Time, req: ClientRequest<Txn>, out: &mut NbFx) {
        match &mut self.member {
            Member::Replica(r) => {
                if r.coordinator.epoch().is_some() {
                    let decisions = r.raft.state_machine().app();
                    let (client, seq, ops) = (req.client, req.seq, req.op.ops);
                    (r.coordinator).on_client_request(now, client, seq, ops, decisions, &mut r.fx);
                } else {
                    let leader = r.raft.leader().filter(|&l| l != self.id);
                    r.fx.reply(req.client, req.seq, Outcome::NotLeader { leader });
                }
                r.settle(now, out);
            }
            Member::Participant(p) => {
                let mut fx = Effects::new();
                p.on_client_request(now, req, &mut fx);
                lift_participant(&mut fx, out);
            }
        }
    }

    fn on_persisted(&mut self, now: Time, tag: u64, out: &mut NbFx) {
        match &mut self.member {
            Member::Replica(r) => {
                r.raft.on_persisted(now, tag, &mut r.raft_fx);
                r.settle(now, out);
            }
            Member::Participant(p) => {
                let mut fx = Effects::new();
                p.on_persisted(now, tag, &mut fx);
                lift_participant(&mut fx, out);
            }
        }
    }
}
