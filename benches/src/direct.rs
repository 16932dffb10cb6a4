//! A single-threaded cluster of sans-IO nodes wired directly: messages go through a
//! FIFO queue, every batch is applied to a `MemStorage` before the messages and
//! replies of the same input are released (persist before send), persist
//! notifications are delivered, and proposals are kept at a fixed number in flight:
//! whenever commits free room, the proposals due go to the leader together, as one
//! input (`Node::on_client_requests`, like a server reading several requests from
//! its sockets at once). Timers are not fired: the benches measure steady-state
//! replication.

use std::collections::VecDeque;
use synod_core::{
    ClientId, ClientRequest, Effects, KvOp, MemStorage, Node, NodeEffects, NodeId, Outcome, Time,
};

/// A directly wired cluster of `N` nodes with ids 1..=n; node 1 proposes unless
/// [`DirectCluster::proposing_at`] says otherwise.
pub struct DirectCluster<N: Node> {
    nodes: Vec<N>,
    disks: Vec<MemStorage>,
    wire: VecDeque<(NodeId, NodeId, N::Message)>,
    fx: NodeEffects<N>,
    committed: u64,
    next_seq: u64,
    value: String,
    request: fn(KvOp) -> N::Request,
    /// Like `request`, from what the proposing node holds (a client that read the
    /// key there just before: vvsync's context).
    request_at: Option<fn(&N, KvOp) -> N::Request>,
    /// Keys written in turn (`k` alone when 1).
    keys: u64,
    /// Proposals of the next input (kept for its allocation).
    proposals: Vec<ClientRequest<N::Request>>,
    /// Index of the node that proposes (the leader).
    proposer: usize,
}

const NOW: Time = Time::from_secs(1);

/// The body of the `*_profile` examples: `[entries] [in_flight]` from the command
/// line (defaults 200,000 and 1024), a 20,000-entry warm-up (buffers and the state
/// machine reach steady size), then `measured` — the example's own
/// `#[inline(never)]` function, the one callgrind's `--toggle-collect` counts —
/// timed, and the rate printed.
pub fn profile<N: Node>(mut c: DirectCluster<N>, measured: fn(&mut DirectCluster<N>, u64, u64)) {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args.next().map_or(200_000, |a| a.parse().expect("entries"));
    let in_flight: u64 = args.next().map_or(1024, |a| a.parse().expect("in flight"));
    c.run(20_000, in_flight);
    let start = std::time::Instant::now();
    measured(&mut c, entries, in_flight);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{entries} entries, {in_flight} in flight: {:.0} entries/s",
        entries as f64 / secs
    );
}

impl<N: Node> DirectCluster<N> {
    /// Starts `nodes`, fires `elect` on node 1 and delivers until quiet; `request`
    /// wraps a KV operation in the protocol's request type.
    pub fn new(
        nodes: Vec<N>,
        elect: impl FnOnce(&mut N, Time, &mut NodeEffects<N>),
        request: fn(KvOp) -> N::Request,
    ) -> DirectCluster<N> {
        let mut c = DirectCluster {
            disks: nodes.iter().map(|_| MemStorage::new()).collect(),
            nodes,
            wire: VecDeque::new(),
            fx: Effects::new(),
            committed: 0,
            next_seq: 0,
            value: "0123456789abcdef".to_string(), // 16-byte payload
            request,
            request_at: None,
            keys: 1,
            proposals: Vec::new(),
            proposer: 0,
        };
        for i in 0..c.nodes.len() {
            let rec = c.disks[i].recover();
            c.nodes[i].on_start(Time::ZERO, rec, &mut c.fx);
            c.drain(i);
        }
        elect(&mut c.nodes[0], NOW, &mut c.fx);
        c.drain(0);
        while let Some((from, to, msg)) = c.wire.pop_front() {
            c.deliver(from, to, msg);
        }
        c.committed = 0;
        c
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &N {
        &self.nodes[i]
    }

    /// Hands every node the input `f` (e.g. a timer), then delivers until quiet.
    pub fn input_all(&mut self, f: impl Fn(&mut N, Time, &mut NodeEffects<N>)) {
        for i in 0..self.nodes.len() {
            f(&mut self.nodes[i], NOW, &mut self.fx);
            self.drain(i);
        }
        while let Some((from, to, msg)) = self.wire.pop_front() {
            self.deliver(from, to, msg);
        }
        self.committed = 0;
    }

    /// Proposals write `keys` keys in turn, each request made from what the
    /// proposing node holds by `request_at`.
    pub fn writing(mut self, keys: u64, request_at: fn(&N, KvOp) -> N::Request) -> Self {
        self.keys = keys.max(1);
        self.request_at = Some(request_at);
        self
    }

    /// Proposals go to node `i` (0-based) from now on.
    pub fn proposing_at(mut self, i: usize) -> Self {
        self.proposer = i;
        self
    }

    fn drain(&mut self, i: usize) {
        // Persist from the batch in place: like a real driver writing it to its log,
        // this keeps the batch's allocation for the next input.
        self.disks[i].persist_from(&mut self.fx.persist);
        let from = self.nodes[i].id();
        for sends in [&mut self.fx.early_sends, &mut self.fx.sends] {
            if !sends.is_empty() {
                let sent = sends.drain(..).map(|env| (from, env.to, env.msg));
                self.wire.extend(sent);
            }
        }
        for replies in [&mut self.fx.early_replies, &mut self.fx.replies] {
            let done = replies
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Done(_)));
            self.committed += done.count() as u64;
            replies.clear();
        }
        self.fx.timers.clear();
        if let Some(tag) = self.fx.persist_notify.take() {
            self.nodes[i].on_persisted(NOW, tag, &mut self.fx);
            self.drain(i);
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: N::Message) {
        let i = (to.0 - 1) as usize;
        self.nodes[i].on_message(NOW, from, msg, &mut self.fx);
        self.drain(i);
    }

    /// Hands `n` new proposals to the leader as one input.
    fn propose(&mut self, n: u64) {
        let leader = self.proposer;
        for _ in 0..n {
            self.next_seq += 1;
            let key = match self.keys {
                1 => "k".to_string(),
                keys => format!("k{}", self.next_seq % keys),
            };
            let put = KvOp::Put {
                key,
                value: self.value.clone(),
            };
            let op = match self.request_at {
                Some(at) => at(&self.nodes[leader], put),
                None => (self.request)(put),
            };
            self.proposals.push(ClientRequest {
                client: ClientId(1),
                seq: self.next_seq,
                op,
            });
        }
        let proposals = self.proposals.drain(..);
        self.nodes[leader].on_client_requests(NOW, proposals, &mut self.fx);
        self.drain(leader);
    }

    /// Commits `entries` more commands keeping `in_flight` proposals outstanding.
    ///
    /// # Panics
    /// If the cluster stops making progress (nothing in flight on the wire).
    pub fn run(&mut self, entries: u64, in_flight: u64) {
        let start = self.committed;
        let mut proposed = 0;
        while self.committed - start < entries {
            let outstanding = proposed - (self.committed - start);
            let due = crate::proposals_due(outstanding, in_flight, entries - proposed);
            if due > 0 {
                self.propose(due);
                proposed += due;
            }
            // One message at a time, so new proposals interleave with acks.
            let (from, to, msg) = self
                .wire
                .pop_front()
                .expect("proposals in flight but nothing on the wire");
            self.deliver(from, to, msg);
        }
    }
}

/// The Synod Raft cluster of the `raft` bench (and its profiling example): three
/// nodes, node 1 elected; pipelining window 64, up to 1024 entries per
/// AppendEntries, snapshots every 10,000 entries keeping 1,000.
pub fn raft_cluster() -> DirectCluster<synod_raft::RaftNode> {
    use synod_raft::{RaftConfig, RaftNode, RaftTimer, Request};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes = ids
        .iter()
        .map(|&id| {
            let mut cfg = RaftConfig::lan(id, ids, id.0);
            cfg.inflight_max = 64;
            cfg.batch_entries_max = 1024;
            cfg.snapshot_threshold = 10_000;
            cfg.snapshot_trailing = 1_000;
            RaftNode::new(cfg)
        })
        .collect();
    let c = DirectCluster::new(
        nodes,
        |n, now, fx| n.on_timer(now, RaftTimer::Election, fx),
        Request::Command,
    );
    assert!(c.node(0).is_leader(), "node 1 must win the first election");
    c
}

/// The Synod Multi-Paxos cluster of the `paxos` bench (and its profiling example):
/// three nodes, node 1 leading; `MultiPaxosConfig::lan` (8 accept messages of up to
/// 64 commands in flight), snapshots every 10,000 slots keeping 1,000.
pub fn paxos_cluster() -> DirectCluster<synod_paxos::MultiPaxosNode> {
    use synod_paxos::{MultiPaxosConfig, MultiPaxosNode, MultiPaxosTimer, Request};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes = ids
        .iter()
        .map(|&id| {
            let mut cfg = MultiPaxosConfig::lan(id, ids, id.0);
            cfg.snapshot_threshold = 10_000;
            cfg.snapshot_trailing = 1_000;
            MultiPaxosNode::new(cfg)
        })
        .collect();
    let c = DirectCluster::new(
        nodes,
        |n, now, fx| n.on_timer(now, MultiPaxosTimer::Election, fx),
        Request::Command,
    );
    assert!(c.node(0).is_leader(), "node 1 must win phase 1");
    c
}

/// The Synod Zab ensemble of the paired bench: three servers, node 3 leading (Fast
/// Leader Election prefers the highest id among equal histories); `ZabConfig::lan`
/// (PROPOSALs of up to 512 transactions), snapshots every 10,000 keeping 1,000.
pub fn zab_cluster() -> DirectCluster<synod_zab::ZabNode> {
    use synod_zab::{Request, ZabConfig, ZabNode, ZabTimer};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes = ids
        .iter()
        .map(|&id| {
            let mut cfg = ZabConfig::lan(id, ids, id.0);
            cfg.snapshot_threshold = 10_000;
            cfg.snapshot_trailing = 1_000;
            ZabNode::new(cfg)
        })
        .collect();
    // Starting delivers every notification; the finalize waits then decide, and
    // delivering the handshakes establishes epoch 1.
    let mut c = DirectCluster::new(nodes, |_, _, _| {}, Request::Command);
    c.input_all(|n, now, fx| n.on_timer(now, ZabTimer::Finalize, fx));
    assert!(
        c.node(2).established_epoch().is_some(),
        "node 3 must establish the first epoch"
    );
    c.proposing_at(2)
}

/// A vvsync cluster (dotted version vectors) for the paired bench: three replicas,
/// every key on all three, a write acknowledged once `w` of them hold it durably;
/// writes go to node 1 over 4,096 keys in turn, each with the context node 1 holds
/// for the key (a client that read it there), so siblings do not pile up. No
/// anti-entropy (timers do not fire here): the write path alone.
pub fn vvsync_cluster(w: usize) -> DirectCluster<synod_vvsync::VvNode<synod_vvsync::Dvv>> {
    use synod_vvsync::{Causality, Dvv, Request, VvConfig, VvNode};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes = ids
        .iter()
        .map(|&id| {
            let mut cfg = VvConfig::lan(id, &ids, id.0);
            cfg.w = w;
            cfg.snapshot_every = 10_000;
            VvNode::<Dvv>::new(cfg)
        })
        .collect();
    let blind = |op| match op {
        KvOp::Put { key, value } => Request::Put {
            key,
            value,
            context: Default::default(),
        },
        op => unreachable!("the bench only writes: {op:?}"),
    };
    let read_there = |node: &VvNode<Dvv>, op| match op {
        KvOp::Put { key, value } => Request::Put {
            context: node.state(&key).map(|s| s.context()).unwrap_or_default(),
            key,
            value,
        },
        op => unreachable!("the bench only writes: {op:?}"),
    };
    DirectCluster::new(nodes, |_, _, _| {}, blind).writing(4096, read_there)
}
