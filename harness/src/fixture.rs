//! **Test fixture, not a protocol to use**: a fixed-primary, primary-backup KV.
//!
//! It exists so the simulator, workloads, checkers and CLI are exercised by something
//! simple and obviously correct before (and beside) the real protocols. Node 1 is
//! the primary forever; it orders every command in its log, replicates it to the
//! backups and applies it once a majority (itself included) has it durably. Safety is
//! trivial — only the primary ever decides — so any checker complaint about this
//! fixture is a harness bug. Availability is not: while the primary is down or cut
//! off, nothing commits.
//!
//! What it still does properly, because the harness relies on it:
//! * persists each entry before replicating it, and acks only durable entries;
//! * retransmits to lagging backups on a timer (bounded batches);
//! * compacts its log behind a snapshot of the KV state once every backup has the
//!   entries, so memory stays flat in long runs;
//! * recovers from its durable log and snapshot after a crash.

use crate::protocol::{Invariant, SimProtocol};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use synod_core::{
    codec, ClientId, ClientRequest, KvCommand, KvOp, KvResult, KvStateMachine, Node, NodeEffects,
    NodeId, Outcome, Recovered, Snapshot, Time,
};

/// Entries per replication message, at most.
const BATCH_ENTRIES_MAX: usize = 64;
/// Compact when this many entries are behind every backup.
const COMPACT_EVERY: u64 = 256;
/// Retransmission period.
const RETRANSMIT: Duration = Duration::from_millis(20);

/// Fixture messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub enum PbMessage {
    /// Entries `first..first+len` of the primary's log; backups may drop everything up
    /// to `compact_to`.
    Replicate {
        /// Index of `entries[0]`.
        first: u64,
        /// The entries.
        entries: Vec<Arc<KvCommand>>,
        /// Every backup has everything up to here.
        compact_to: u64,
    },
    /// "I durably hold every entry up to `last`."
    Ack {
        /// Highest contiguous durable index.
        last: u64,
    },
    /// "Your entries starting at `first` left a gap after my `last`": resend from `last + 1`.
    Gap {
        /// Highest index held.
        last: u64,
    },
}

/// Fixture timers.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum PbTimer {
    /// Primary: resend to lagging backups.
    Retransmit,
}

/// A primary-backup node (test fixture).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryBackup {
    id: NodeId,
    primary: NodeId,
    backups: Vec<NodeId>,
    /// Entries after `base` (index `base + 1 + i`).
    log: VecDeque<Arc<KvCommand>>,
    /// Entries up to `base` are compacted (in the snapshot on the primary).
    base: u64,
    /// KV state at `base` (primary only): the next snapshot is built from it.
    base_kv: KvStateMachine,
    kv: KvStateMachine,
    commit: u64,
    acked: BTreeMap<NodeId, u64>,
    waiting: BTreeMap<u64, (ClientId, u64)>,
    /// Ignore storage on restart (the deliberately broken `fixture-amnesia`).
    amnesia: bool,
}

impl PrimaryBackup {
    /// Node `id` of `members`; the smallest id is the primary.
    pub fn new(id: NodeId, members: &[NodeId]) -> PrimaryBackup {
        let primary = *members.iter().min().expect("non-empty membership");
        PrimaryBackup {
            id,
            primary,
            backups: members.iter().copied().filter(|&m| m != primary).collect(),
            log: VecDeque::new(),
            base: 0,
            base_kv: KvStateMachine::new(),
            kv: KvStateMachine::new(),
            commit: 0,
            acked: BTreeMap::new(),
            waiting: BTreeMap::new(),
            amnesia: false,
        }
    }

    fn is_primary(&self) -> bool {
        self.id == self.primary
    }

    /// Index of the last entry held.
    pub fn last_index(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// Highest index known committed (primary only; 0 on backups).
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// Entries up to here are compacted away.
    pub fn compacted_to(&self) -> u64 {
        self.base
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: u64) -> Option<&Arc<KvCommand>> {
        let offset = index.checked_sub(self.base + 1)?;
        self.log.get(usize::try_from(offset).ok()?)
    }

    fn append(&mut self, cmd: Arc<KvCommand>, out: &mut NodeEffects<Self>) -> u64 {
        let index = self.last_index() + 1;
        out.persist.put_entry(index, codec::encode(&*cmd));
        self.log.push_back(cmd);
        index
    }

    fn replicate_to(&self, to: NodeId, out: &mut NodeEffects<Self>) {
        let from = self.acked.get(&to).copied().unwrap_or(0).max(self.base) + 1;
        if from > self.last_index() {
            return;
        }
        let entries: Vec<Arc<KvCommand>> = (from..=self.last_index())
            .take(BATCH_ENTRIES_MAX)
            .filter_map(|i| self.entry(i).cloned())
            .collect();
        out.send(
            to,
            PbMessage::Replicate {
                first: from,
                entries,
                compact_to: self.base,
            },
        );
    }

    /// Commit = the highest index a majority (primary included) holds durably. The
    /// primary counts its whole log: anything this input sends or replies leaves only
    /// after its batch is durable.
    fn advance_commit(&mut self, out: &mut NodeEffects<Self>) {
        let mut have: Vec<u64> = self
            .backups
            .iter()
            .map(|b| self.acked.get(b).copied().unwrap_or(0))
            .collect();
        have.push(self.last_index());
        have.sort_unstable_by(|a, b| b.cmp(a));
        let majority = have.len() / 2;
        let new_commit = have[majority].max(self.commit);
        while self.commit < new_commit {
            self.commit += 1;
            let cmd = self
                .entry(self.commit)
                .expect("committed entries are held")
                .clone();
            let applied = self.kv.apply(&cmd);
            if let Some((client, seq)) = self.waiting.remove(&self.commit) {
                if let Some(result) = applied.result() {
                    out.reply(client, seq, Outcome::Done(result.clone()));
                }
            }
        }
        self.maybe_compact(out);
    }

    fn maybe_compact(&mut self, out: &mut NodeEffects<Self>) {
        let everyone = self
            .backups
            .iter()
            .map(|b| self.acked.get(b).copied().unwrap_or(0))
            .min()
            .unwrap_or(self.commit)
            .min(self.commit);
        if everyone < self.base + COMPACT_EVERY {
            return;
        }
        for i in self.base + 1..=everyone {
            let cmd = self.entry(i).expect("held").clone();
            self.base_kv.apply(&cmd);
        }
        let drop = (everyone - self.base) as usize;
        self.log.drain(..drop);
        self.base = everyone;
        tracing::debug!(base = self.base, "compacted log behind a snapshot");
        out.persist.save_snapshot(Snapshot {
            meta: codec::encode(&self.base),
            data: self.base_kv.snapshot(),
        });
        out.persist.compact_to(self.base);
    }

    fn on_replicate(
        &mut self,
        first: u64,
        entries: Vec<Arc<KvCommand>>,
        compact_to: u64,
        out: &mut NodeEffects<Self>,
    ) {
        let last = self.last_index();
        if first > last + 1 {
            // Reordered or lost messages: ask for the missing entries now rather
            // than waiting for the retransmission timer.
            tracing::trace!(first, last, "gap in replicated entries");
            out.send(self.primary, PbMessage::Gap { last });
            return;
        }
        let skip = (last + 1 - first) as usize;
        for cmd in entries.into_iter().skip(skip) {
            self.append(cmd, out);
        }
        let compact_to = compact_to.min(self.last_index());
        if compact_to > self.base {
            let drop = (compact_to - self.base) as usize;
            self.log.drain(..drop);
            self.base = compact_to;
            out.persist.set_meta("base", codec::encode(&self.base));
            out.persist.compact_to(self.base);
        }
        out.send(
            self.primary,
            PbMessage::Ack {
                last: self.last_index(),
            },
        );
    }
}

impl Node for PrimaryBackup {
    type Message = PbMessage;
    type Timer = PbTimer;
    type Request = KvOp;
    type Response = KvResult;

    fn id(&self) -> NodeId {
        self.id
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut NodeEffects<Self>) {
        // The broken variant ignores its disk (see `AmnesiaFixture`).
        let recovered = if self.amnesia {
            Recovered::default()
        } else {
            recovered
        };
        if let Some(snap) = &recovered.snapshot {
            self.base = codec::decode(&snap.meta).expect("fixture snapshot meta is ours");
            self.base_kv = KvStateMachine::restore(&snap.data).expect("fixture snapshot is ours");
            self.kv = self.base_kv.clone();
        }
        if let Some(b) = recovered.meta.get("base") {
            self.base = self
                .base
                .max(codec::decode(b).expect("fixture meta is ours"));
        }
        self.commit = self.base;
        for (index, bytes) in recovered.log.range(self.base + 1..) {
            assert_eq!(
                *index,
                self.last_index() + 1,
                "fixture log has a hole at {index}"
            );
            self.log
                .push_back(codec::decode(bytes).expect("fixture entry is ours"));
        }
        tracing::debug!(
            base = self.base,
            last = self.last_index(),
            primary = self.is_primary(),
            "recovered"
        );
        if self.is_primary() {
            out.set_timer(PbTimer::Retransmit, now + RETRANSMIT);
        }
    }

    fn on_message(
        &mut self,
        _now: Time,
        from: NodeId,
        msg: PbMessage,
        out: &mut NodeEffects<Self>,
    ) {
        match msg {
            PbMessage::Replicate {
                first,
                entries,
                compact_to,
            } if !self.is_primary() => self.on_replicate(first, entries, compact_to, out),
            PbMessage::Ack { last } if self.is_primary() => {
                let acked = self.acked.entry(from).or_insert(0);
                *acked = (*acked).max(last);
                self.advance_commit(out);
            }
            PbMessage::Gap { last } if self.is_primary() => {
                let acked = self.acked.entry(from).or_insert(0);
                *acked = (*acked).max(last);
                self.replicate_to(from, out);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Time, timer: PbTimer, out: &mut NodeEffects<Self>) {
        match timer {
            PbTimer::Retransmit if self.is_primary() => {
                for &b in &self.backups {
                    self.replicate_to(b, out);
                }
                out.set_timer(PbTimer::Retransmit, now + RETRANSMIT);
            }
            PbTimer::Retransmit => {}
        }
    }

    fn on_client_request(
        &mut self,
        _now: Time,
        req: ClientRequest<KvOp>,
        out: &mut NodeEffects<Self>,
    ) {
        if !self.is_primary() {
            out.reply(
                req.client,
                req.seq,
                Outcome::NotLeader {
                    leader: Some(self.primary),
                },
            );
            return;
        }
        let cmd = Arc::new(KvCommand {
            client: req.client,
            seq: req.seq,
            op: req.op,
        });
        let index = self.append(cmd, out);
        self.waiting.insert(index, (req.client, req.seq));
        // Send the new entry right away; a backup that has a gap ignores it and the
        // retransmission timer fills the gap.
        let cmd = self.entry(index).expect("just appended").clone();
        for &b in &self.backups {
            out.send(
                b,
                PbMessage::Replicate {
                    first: index,
                    entries: vec![cmd.clone()],
                    compact_to: self.base,
                },
            );
        }
        self.advance_commit(out);
    }
}

/// The fixture (a test fixture entry of the registry).
pub struct Fixture;

impl SimProtocol for Fixture {
    type Node = PrimaryBackup;
    type Session = ();
    /// The primary is fixed: it is back at the heal and answers at once.
    const RECOVERY: Duration = Duration::from_secs(1);

    fn build(id: NodeId, members: &[NodeId], _seed: u64) -> PrimaryBackup {
        PrimaryBackup::new(id, members)
    }

    fn request(op: KvOp) -> KvOp {
        op
    }

    fn result(response: &KvResult) -> KvResult {
        response.clone()
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<PrimaryBackup>>> {
        vec![Box::new(CommittedNeverLost::default())]
    }
}

/// **A deliberately broken fixture** (`fixture-amnesia`): its nodes forget everything
/// on restart, as if they had never written to disk. A crashed primary comes back
/// empty and serves reads of keys it had acknowledged writes to as missing. It exists
/// to prove the harness catches such bugs: `synod check --protocol fixture-amnesia
/// --faults crash` must report linearizability violations. It registers no invariant,
/// so only the history checker can catch it.
pub struct AmnesiaFixture;

impl SimProtocol for AmnesiaFixture {
    type Node = PrimaryBackup;
    type Session = ();
    const RECOVERY: Duration = Fixture::RECOVERY;

    fn build(id: NodeId, members: &[NodeId], _seed: u64) -> PrimaryBackup {
        let mut node = PrimaryBackup::new(id, members);
        node.amnesia = true;
        node
    }

    fn request(op: KvOp) -> KvOp {
        op
    }

    fn result(response: &KvResult) -> KvResult {
        response.clone()
    }

    fn invariants(_members: &[NodeId]) -> Vec<Box<dyn Invariant<PrimaryBackup>>> {
        Vec::new()
    }
}

/// Every entry the primary ever reported committed stays at its index on every node
/// that holds that index — across crashes and restarts.
#[derive(Debug, Default)]
pub struct CommittedNeverLost {
    /// Hashes of committed commands at indices `pruned + 1 ..`; pruned behind the
    /// primary's snapshot so memory stays flat.
    committed: VecDeque<u64>,
    pruned: u64,
    /// Per node, the highest index already compared.
    checked: BTreeMap<NodeId, u64>,
}

fn cmd_hash(cmd: &KvCommand) -> u64 {
    let mut h = crate::sim::digest::TraceDigest::default();
    cmd.hash(&mut h);
    h.finish()
}

impl CommittedNeverLost {
    fn committed_to(&self) -> u64 {
        self.pruned + self.committed.len() as u64
    }

    fn committed_at(&self, index: u64) -> Option<u64> {
        let offset = index.checked_sub(self.pruned + 1)?;
        self.committed.get(usize::try_from(offset).ok()?).copied()
    }
}

impl Invariant<PrimaryBackup> for CommittedNeverLost {
    fn name(&self) -> &'static str {
        "committed-never-lost"
    }

    fn after_step(&mut self, _now: Time, id: NodeId, node: &PrimaryBackup) -> Result<(), String> {
        if node.is_primary() {
            // Entries the primary compacted (possibly in this very step, right after
            // committing them) live on only in its snapshot: stop tracking them.
            while self.pruned < node.base && !self.committed.is_empty() {
                self.committed.pop_front();
                self.pruned += 1;
            }
            if self.committed.is_empty() {
                self.pruned = self.pruned.max(node.base);
            }
            for i in self.committed_to() + 1..=node.commit {
                let cmd = node
                    .entry(i)
                    .ok_or_else(|| format!("committed {i} not held"))?;
                self.committed.push_back(cmd_hash(cmd));
            }
        }
        let checked = self.checked.get(&id).copied().unwrap_or(node.base);
        let start = checked.max(node.base) + 1;
        let end = node.last_index().min(self.committed_to());
        for i in start..=end {
            if let (Some(want), Some(cmd)) = (self.committed_at(i), node.entry(i)) {
                if cmd_hash(cmd) != want {
                    return Err(format!(
                        "{id} holds a different command at committed index {i}"
                    ));
                }
            }
        }
        self.checked.insert(id, checked.max(end));
        Ok(())
    }

    fn on_crash(&mut self, id: NodeId) {
        self.checked.remove(&id);
    }
}
