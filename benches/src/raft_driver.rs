//! A single-threaded 3-node Synod Raft cluster wired directly: messages go through a
//! FIFO queue, every batch is applied to a `MemStorage` before the messages of the
//! same input are queued (persist before send), and proposals are kept at a fixed
//! number in flight.

use std::collections::VecDeque;
use synod_core::{
    ClientId, ClientRequest, Effects, KvOp, MemStorage, Node, NodeEffects, NodeId, Outcome, Time,
};
use synod_raft::{Message, RaftConfig, RaftNode, RaftTimer, Request};

/// The cluster.
pub struct RaftCluster {
    nodes: Vec<RaftNode>,
    disks: Vec<MemStorage>,
    wire: VecDeque<(NodeId, NodeId, Message)>,
    fx: NodeEffects<RaftNode>,
    committed: u64,
    next_seq: u64,
    keys: Vec<String>,
    value: String,
    /// Encode and decode every message with postcard, as a network would.
    pub serialize: bool,
}

impl RaftCluster {
    /// Three nodes with a leader elected (node 1).
    pub fn new(serialize: bool) -> RaftCluster {
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
        let mut c = RaftCluster {
            nodes,
            disks: ids.iter().map(|_| MemStorage::new()).collect(),
            wire: VecDeque::new(),
            fx: Effects::new(),
            committed: 0,
            next_seq: 0,
            keys: vec!["k".to_string()],
            value: "0123456789abcdef".to_string(), // 16-byte payload
            serialize,
        };
        for i in 0..3 {
            let rec = c.disks[i].recover();
            c.nodes[i].on_start(Time::ZERO, rec, &mut c.fx);
            c.drain(i);
        }
        c.nodes[0].on_timer(Time::from_secs(1), RaftTimer::Election, &mut c.fx);
        c.drain(0);
        c.deliver_all();
        assert!(c.nodes[0].is_leader(), "node 1 must win the first election");
        c.committed = 0;
        c
    }

    fn drain(&mut self, i: usize) {
        self.disks[i].persist(self.fx.persist.take());
        let from = self.nodes[i].node_id();
        for env in self.fx.early_sends.drain(..).chain(self.fx.sends.drain(..)) {
            let msg = if self.serialize {
                synod_core::codec::decode(&synod_core::codec::encode(&env.msg)).expect("roundtrip")
            } else {
                env.msg
            };
            self.wire.push_back((from, env.to, msg));
        }
        for r in self.fx.replies.drain(..) {
            if matches!(r.outcome, Outcome::Done(_)) {
                self.committed += 1;
            }
        }
        self.fx.timers.clear();
    }

    fn deliver_all(&mut self) {
        while let Some((from, to, msg)) = self.wire.pop_front() {
            let i = (to.0 - 1) as usize;
            self.nodes[i].on_message(Time::from_secs(1), from, msg, &mut self.fx);
            self.drain(i);
        }
    }

    fn propose(&mut self) {
        self.next_seq += 1;
        let key = self.keys[(self.next_seq % self.keys.len() as u64) as usize].clone();
        let op = Request::Kv(KvOp::Put {
            key,
            value: self.value.clone(),
        });
        let req = ClientRequest {
            client: ClientId(1),
            seq: self.next_seq,
            op,
        };
        self.nodes[0].on_client_request(Time::from_secs(1), req, &mut self.fx);
        self.drain(0);
    }

    /// Commits `entries` more entries keeping `in_flight` proposals outstanding.
    pub fn run(&mut self, entries: u64, in_flight: u64) {
        let start = self.committed;
        let mut proposed = 0;
        while self.committed - start < entries {
            while proposed < entries && proposed - (self.committed - start) < in_flight {
                self.propose();
                proposed += 1;
            }
            // Deliver one message at a time so new proposals interleave with acks.
            if let Some((from, to, msg)) = self.wire.pop_front() {
                let i = (to.0 - 1) as usize;
                self.nodes[i].on_message(Time::from_secs(1), from, msg, &mut self.fx);
                self.drain(i);
            }
        }
        assert_eq!(self.nodes[0].applied_index(), self.nodes[0].commit_index());
    }
}
