//! raft-rs (tikv `raft` 0.7) driven exactly like `raft_driver`: three `RawNode`s in
//! one thread, `MemStorage`, the standard Ready loop (persist entries and hard state,
//! send messages, apply committed entries into the same `KvStateMachine`, advance),
//! with the configuration the peer-library notes call fair: 1 MiB messages, 256
//! inflight messages, `batch_append`, and the log compacted 10k entries behind.

use raft::eraftpb::{ConfState, Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode};
use std::collections::VecDeque;
use synod_core::{codec, ClientId, KvCommand, KvOp, KvStateMachine};

/// The cluster.
pub struct RaftRsCluster {
    nodes: Vec<RawNode<MemStorage>>,
    stores: Vec<MemStorage>,
    kvs: Vec<KvStateMachine>,
    wire: VecDeque<Message>,
    committed: u64,
    next_seq: u64,
    keys: Vec<String>,
    value: String,
}

impl Default for RaftRsCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl RaftRsCluster {
    /// Three nodes with node 1 elected.
    pub fn new() -> RaftRsCluster {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut nodes = Vec::new();
        let mut stores = Vec::new();
        for id in 1..=3u64 {
            let store = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
            let cfg = Config {
                id,
                election_tick: 10,
                heartbeat_tick: 3,
                max_size_per_msg: 1 << 20,
                max_inflight_msgs: 256,
                batch_append: true,
                ..Default::default()
            };
            nodes.push(RawNode::new(&cfg, store.clone(), &logger).expect("valid raft-rs config"));
            stores.push(store);
        }
        let mut c = RaftRsCluster {
            nodes,
            stores,
            kvs: vec![KvStateMachine::new(); 3],
            wire: VecDeque::new(),
            committed: 0,
            next_seq: 0,
            keys: vec!["k".to_string()],
            value: "0123456789abcdef".to_string(),
        };
        c.nodes[0].campaign().expect("campaign");
        for _ in 0..10 {
            for i in 0..3 {
                c.handle_ready(i);
            }
            c.deliver_all();
        }
        assert_eq!(c.nodes[0].raft.state, raft::StateRole::Leader);
        c.committed = 0;
        c
    }

    fn apply(&mut self, i: usize, entries: Vec<Entry>) {
        for e in entries {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                let cmd: KvCommand = codec::decode(&e.data).expect("our encoding");
                self.kvs[i].apply(&cmd);
                if i == 0 {
                    self.committed += 1;
                }
            }
        }
    }

    fn handle_ready(&mut self, i: usize) {
        if !self.nodes[i].has_ready() {
            return;
        }
        let mut ready = self.nodes[i].ready();
        self.wire.extend(ready.take_messages());
        let committed = ready.take_committed_entries();
        self.apply(i, committed);
        if !ready.entries().is_empty() {
            self.stores[i].wl().append(ready.entries()).expect("append");
        }
        if let Some(hs) = ready.hs() {
            self.stores[i].wl().set_hardstate(hs.clone());
        }
        self.wire.extend(ready.take_persisted_messages());
        let mut light = self.nodes[i].advance(ready);
        if let Some(commit) = light.commit_index() {
            self.stores[i].wl().mut_hard_state().set_commit(commit);
        }
        self.wire.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(i, committed);
        self.nodes[i].advance_apply();
        let applied = self.nodes[i].raft.raft_log.applied;
        if applied > 20_000 && applied.is_multiple_of(10_000) {
            let _ = self.stores[i].wl().compact(applied - 10_000);
        }
    }

    fn deliver_all(&mut self) {
        while let Some(m) = self.wire.pop_front() {
            let i = (m.to - 1) as usize;
            self.nodes[i].step(m).expect("step");
        }
    }

    fn propose(&mut self) {
        self.next_seq += 1;
        let cmd = KvCommand {
            client: ClientId(1),
            seq: self.next_seq,
            op: KvOp::Put {
                key: self.keys[(self.next_seq % self.keys.len() as u64) as usize].clone(),
                value: self.value.clone(),
            },
        };
        self.nodes[0]
            .propose(vec![], codec::encode(&cmd))
            .expect("propose");
    }

    /// Commits `entries` more entries keeping `in_flight` proposals outstanding.
    pub fn run(&mut self, entries: u64, in_flight: u64) {
        let start = self.committed;
        let mut proposed = 0;
        while self.committed - start < entries {
            // The proposals due go in together, then one Ready: like DirectCluster.
            let outstanding = proposed - (self.committed - start);
            let due = crate::proposals_due(outstanding, in_flight, entries - proposed);
            for _ in 0..due {
                self.propose();
            }
            if due > 0 {
                self.handle_ready(0);
                proposed += due;
            }
            if let Some(m) = self.wire.pop_front() {
                let i = (m.to - 1) as usize;
                self.nodes[i].step(m).expect("step");
                self.handle_ready(i);
            } else {
                for i in 0..3 {
                    self.handle_ready(i);
                }
            }
        }
    }
}
