//! `VvNode`: one replica of a vvsync cluster behind synod-core's `Node` trait.
//!
//! Every replica of a key takes reads and writes for it (there is no leader). A write
//! is applied by its coordinator ([`Causality::write`]), made durable, sent to the
//! key's other replicas and answered once `W` of them (the coordinator included) hold
//! it durably; a read merges the states of `R` replicas and repairs those that were
//! behind. Anti-entropy brings every replica up to date in the background: rounds of
//! [`Body::Digest`] (one hash per key bucket) → [`Body::Leaves`] (the hashes of the
//! differing buckets' leaves, a Merkle tree of two levels) → [`Body::Keys`] (the key
//! hashes of the leaves that differ) → [`Body::States`] (only the keys that differ,
//! both ways), so an idle, converged cluster sends one small digest per round.
//!
//! **Tombstones.** A delete is a write of a tombstone, so it replaces what its context
//! covered like any write and spreads the same way. A replica collects a tombstone
//! (forgets the key) once every other replica of the key has shown it holds the
//! same state — its digest had the bucket's hash, or its key list the key's — and
//! from then on refuses every message those replicas sent before they showed it
//! (`accept_from`, durable): an older message may carry the value the delete replaced,
//! and would bring it back. Events it numbers for the key afterwards start above the
//! highest counter it dropped (`floor`, durable), so a lingering copy of the tombstone
//! elsewhere never mistakes a new write for one it already replaced.

use crate::causality::Causality;
use crate::message::{Body, Message, Request, Response, Stamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use synod_core::{
    codec, ClientId, ClientRequest, Effects, Journal, Node, NodeId, Outcome, Prng, Recovered, Time,
};

/// vvsync's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Start an anti-entropy round with the next peer.
    AntiEntropy,
    /// A coordinated request's deadline.
    Expire(u64),
}

/// The effects of a vvsync node's inputs.
pub type Fx<C> = Effects<Message<C>, Timer, Response<<C as Causality>::Context>>;

/// A replica's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VvConfig {
    /// This replica.
    pub id: NodeId,
    /// Every member of the cluster.
    pub members: Vec<NodeId>,
    /// Replicas per key (`N`).
    pub n: usize,
    /// Replicas a read merges before it answers (`R`, the coordinator included).
    pub r: usize,
    /// Replicas that hold a write durably before it is acknowledged (`W`, likewise).
    pub w: usize,
    /// A coordinated request not answered by then fails (`Unavailable` for a read,
    /// `Unknown` for a write, which may still spread).
    pub request_timeout: Duration,
    /// Mean time between anti-entropy rounds started by this replica (each is drawn
    /// from ±25 % of it).
    pub anti_entropy_every: Duration,
    /// Key buckets: the unit of anti-entropy's digest and of placement (a bucket's
    /// keys share their `N` replicas).
    pub buckets: u16,
    /// Leaves per bucket: anti-entropy's second level; the keys of a differing leaf
    /// are compared one by one.
    pub leaves: u16,
    /// Journal records between snapshots of the store.
    pub snapshot_every: u64,
    /// This replica's randomness.
    pub seed: u64,
}

impl VvConfig {
    /// A LAN configuration: `N` = min(3, members) and `R` = `W` = 1 — Dynamo's
    /// always-writeable setting, where every replica answers on its own, even cut off
    /// from the others — requests answered within 200 ms, anti-entropy every 50 ms
    /// over 64 buckets. `R` + `W` > `N` (e.g. 2 and 2) makes a read see every write
    /// acknowledged before it, while a majority of the key's replicas is reachable.
    pub fn lan(id: NodeId, members: &[NodeId], seed: u64) -> VvConfig {
        let n = members.len().min(3);
        let (r, w) = (1, 1);
        VvConfig {
            id,
            members: members.to_vec(),
            n,
            r,
            w,
            request_timeout: Duration::from_millis(200),
            anti_entropy_every: Duration::from_millis(50),
            buckets: 64,
            leaves: 64,
            snapshot_every: 4096,
            seed,
        }
    }

    /// The leaf of `key` (FNV-1a of its bytes), in `0..buckets × leaves`.
    pub fn leaf_of(&self, key: &str) -> u32 {
        let leaves = u64::from(self.buckets) * u64::from(self.leaves);
        (fnv1a(key.as_bytes(), FNV_OFFSET) % leaves) as u32
    }

    /// The bucket of `key`: the one its leaf is in.
    pub fn bucket_of(&self, key: &str) -> u16 {
        self.bucket_of_leaf(self.leaf_of(key))
    }

    fn bucket_of_leaf(&self, leaf: u32) -> u16 {
        (leaf / u32::from(self.leaves)) as u16
    }

    fn leaves_of(&self, bucket: u16) -> std::ops::Range<u32> {
        let per = u32::from(self.leaves);
        u32::from(bucket) * per..(u32::from(bucket) + 1) * per
    }

    /// The `N` replicas of `bucket`: consecutive members from the bucket's position.
    pub fn replicas_of_bucket(&self, bucket: u16) -> impl Iterator<Item = NodeId> + '_ {
        let len = self.members.len();
        (0..self.n).map(move |i| self.members[(usize::from(bucket) + i) % len])
    }

    /// The `N` replicas of `key`.
    pub fn replicas_of(&self, key: &str) -> impl Iterator<Item = NodeId> + '_ {
        self.replicas_of_bucket(self.bucket_of(key))
    }

    fn check(&self) {
        assert!(
            self.members.contains(&self.id),
            "{} is not a member",
            self.id
        );
        assert!(
            (1..=self.members.len()).contains(&self.n),
            "N = {} with {} members",
            self.n,
            self.members.len()
        );
        assert!((1..=self.n).contains(&self.r) && (1..=self.n).contains(&self.w));
        assert!(self.buckets > 0 && self.leaves > 0);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One key as this replica holds it.
#[derive(Clone, Debug)]
struct Slot<C> {
    state: C,
    bucket: u16,
    leaf: u32,
    /// Hash of the key and its state: what anti-entropy compares.
    hash: u64,
}

/// [`Record::Put`] borrowed, for encoding (the same bytes).
#[derive(Serialize)]
#[serde(bound = "")]
enum RecordRef<'a, C: Causality> {
    Put { key: &'a str, state: &'a C },
}

/// A journal record.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum Record<C: Causality> {
    /// A key's whole state after a change.
    Put { key: String, state: C },
    /// A tombstone collected: the key is gone.
    Forget { key: String },
}

/// What the peers showed of one tombstone (as hashed).
#[derive(Clone, Debug, Default)]
struct Shown {
    hash: u64,
    /// Peers that held it, and the stamp of the message that showed it.
    held: BTreeMap<NodeId, Stamp>,
    /// Peers ready to collect it (every replica had shown it to them), or that have.
    ready: BTreeSet<NodeId>,
}

enum Pending<C: Causality> {
    Read {
        client: ClientId,
        seq: u64,
        key: String,
        replies: Vec<(NodeId, Option<C>)>,
        /// Cleared when the key's tombstone is collected while the read waits: its
        /// replies may predate the delete, and a repair made of them would bring the
        /// deleted value back to replicas that forgot the tombstone.
        repair: bool,
    },
    Write {
        client: ClientId,
        seq: u64,
        acks: BTreeSet<NodeId>,
        answer: Response<C::Context>,
    },
}

/// What tombstone collection did (this incarnation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Tombstones collected.
    pub collected: u64,
    /// Messages refused as sent before their sender showed a collected tombstone.
    pub refused: u64,
}

/// What this replica's anti-entropy sent, for the bytes-per-synced-key measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Rounds started.
    pub rounds: u64,
    /// Key states sent by anti-entropy.
    pub keys_sent: u64,
    /// Encoded bytes of every anti-entropy message sent (digests, key lists, states).
    pub bytes_sent: u64,
}

/// One vvsync replica in mode `C` ([`Dvv`](crate::Dvv), [`Vv`](crate::Vv),
/// [`Lww`](crate::Lww)).
pub struct VvNode<C: Causality> {
    cfg: VvConfig,
    store: BTreeMap<String, Slot<C>>,
    /// Per bucket, the wrapping sum of its keys' hashes.
    hashes: Vec<u64>,
    /// Per leaf, likewise.
    leaf_hashes: Vec<u64>,
    journal: Journal,
    incarnation: u64,
    next_op: u64,
    pending: BTreeMap<u64, Pending<C>>,
    /// Peers that share a bucket with this replica, and whose turn is next.
    peers: Vec<NodeId>,
    turn: usize,
    rng: Prng,
    sync: SyncStats,
    /// The clock at the input being handled.
    clock: Time,
    /// Messages sent this incarnation (their stamps).
    sends: u64,
    /// Keys whose state is a tombstone.
    tombstones: BTreeSet<String>,
    /// What the peers showed of each tombstone.
    shown: BTreeMap<String, Shown>,
    /// Per peer, messages stamped before this are refused (durable).
    accept_from: BTreeMap<NodeId, Stamp>,
    /// This replica's events of a key it holds nothing of are numbered above this
    /// (durable).
    floor: u64,
    gc: GcStats,
    halted: Option<String>,
}

impl<C: Causality> VvNode<C> {
    /// Replica `cfg.id`.
    ///
    /// # Panics
    /// If the configuration is inconsistent (`N`, `R`, `W` out of range, `id` not a
    /// member).
    pub fn new(cfg: VvConfig) -> VvNode<C> {
        cfg.check();
        let mut peers = BTreeSet::new();
        for b in 0..cfg.buckets {
            if cfg.replicas_of_bucket(b).any(|r| r == cfg.id) {
                peers.extend(cfg.replicas_of_bucket(b).filter(|&r| r != cfg.id));
            }
        }
        VvNode {
            hashes: vec![0; usize::from(cfg.buckets)],
            leaf_hashes: vec![0; usize::from(cfg.buckets) * usize::from(cfg.leaves)],
            journal: Journal::new(cfg.snapshot_every),
            rng: Prng::new(cfg.seed),
            peers: peers.into_iter().collect(),
            cfg,
            store: BTreeMap::new(),
            incarnation: 0,
            next_op: 0,
            pending: BTreeMap::new(),
            turn: 0,
            sync: SyncStats::default(),
            clock: Time::ZERO,
            sends: 0,
            tombstones: BTreeSet::new(),
            shown: BTreeMap::new(),
            accept_from: BTreeMap::new(),
            floor: 0,
            gc: GcStats::default(),
            halted: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VvConfig {
        &self.cfg
    }

    /// This replica's state of `key`.
    pub fn state(&self, key: &str) -> Option<&C> {
        self.store.get(key).map(|s| &s.state)
    }

    /// Every key and its state, in key order.
    pub fn states(&self) -> impl Iterator<Item = (&str, &C)> {
        self.store.iter().map(|(k, s)| (k.as_str(), &s.state))
    }

    /// Every key, its state and the hash anti-entropy compares (it changes exactly
    /// when the state does), in key order.
    pub fn hashed_states(&self) -> impl Iterator<Item = (&str, &C, u64)> {
        self.store
            .iter()
            .map(|(k, s)| (k.as_str(), &s.state, s.hash))
    }

    /// What anti-entropy has sent so far (this incarnation).
    pub fn sync_stats(&self) -> SyncStats {
        self.sync
    }

    /// What tombstone collection did so far (this incarnation).
    pub fn gc_stats(&self) -> GcStats {
        self.gc
    }

    /// Keys held as tombstones (deleted, not yet collected).
    pub fn tombstones(&self) -> usize {
        self.tombstones.len()
    }

    /// Requests being coordinated.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn holds(&self, bucket: u16) -> bool {
        self.cfg
            .replicas_of_bucket(bucket)
            .any(|r| r == self.cfg.id)
    }

    fn shared_with(&self, bucket: u16, peer: NodeId) -> bool {
        let mut rs = self.cfg.replicas_of_bucket(bucket);
        let (mut me, mut them) = (false, false);
        for r in &mut rs {
            me |= r == self.cfg.id;
            them |= r == peer;
        }
        me && them
    }

    /// The journal record of `key` holding `state`, and its hash (what anti-entropy
    /// compares): one encoding serves both.
    fn encode_put(key: &str, state: &C) -> (Vec<u8>, u64) {
        let bytes = codec::encode(&RecordRef::Put { key, state });
        let hash = fnv1a(&bytes, FNV_OFFSET);
        (bytes, hash)
    }

    /// Stores `state` as `key`'s, durably (a journal record in this input's batch).
    fn store_state(&mut self, key: &str, state: C, out: &mut Fx<C>) {
        let (record, hash) = Self::encode_put(key, &state);
        self.journal.append_encoded(record, &mut out.persist);
        self.install_hashed(key.to_owned(), state, hash);
        self.snapshot_if_due(out);
    }

    fn snapshot_if_due(&mut self, out: &mut Fx<C>) {
        if self.journal.snapshot_due() {
            let image: BTreeMap<&String, &C> =
                self.store.iter().map(|(k, s)| (k, &s.state)).collect();
            self.journal.snapshot(&image, &mut out.persist);
        }
    }

    /// Removes `key` from the store (and its hash from its bucket's).
    fn forget(&mut self, key: &str) {
        if let Some(old) = self.store.remove(key) {
            let (b, l) = (usize::from(old.bucket), old.leaf as usize);
            self.hashes[b] = self.hashes[b].wrapping_sub(old.hash);
            self.leaf_hashes[l] = self.leaf_hashes[l].wrapping_sub(old.hash);
        }
        self.tombstones.remove(key);
        self.shown.remove(key);
    }

    /// What the peers showed of `key`'s tombstone as this replica holds it now.
    fn shown_mut(&mut self, key: &str) -> Option<&mut Shown> {
        let hash = self.store.get(key).filter(|s| s.state.is_deleted())?.hash;
        let shown = self.shown.entry(key.to_owned()).or_default();
        if shown.hash != hash {
            *shown = Shown {
                hash,
                ..Shown::default()
            };
        }
        Some(shown)
    }

    /// `peer` showed, in a message stamped `sent`, that it holds `key`'s tombstone as
    /// this replica does.
    fn holds_too(&mut self, key: &str, peer: NodeId, sent: Stamp, out: &mut Fx<C>) {
        if let Some(shown) = self.shown_mut(key) {
            shown.held.entry(peer).or_insert(sent);
            self.collect_if_done(key, out);
        }
    }

    /// `peer` said it is ready to collect `key`'s tombstone (hashed `hash`).
    fn ready_there(&mut self, key: &str, hash: u64, peer: NodeId, sent: Stamp, out: &mut Fx<C>) {
        if let Some(shown) = self.shown_mut(key).filter(|s| s.hash == hash) {
            shown.held.entry(peer).or_insert(sent);
            shown.ready.insert(peer);
            self.collect_if_done(key, out);
        }
    }

    /// `peer`, which had shown `key`'s tombstone, no longer holds the key: it has
    /// collected it. `true` if so (and then nothing is to be sent to it for the key).
    fn collected_there(&mut self, key: &str, peer: NodeId, sent: Stamp, out: &mut Fx<C>) -> bool {
        let Some(shown) = self.shown_mut(key) else {
            return false;
        };
        // Only a message sent after the peer showed the tombstone says it is gone
        // there (an older one may be from before it ever held the key).
        if shown.held.get(&peer).is_none_or(|&showed| sent <= showed) {
            return false;
        }
        shown.ready.insert(peer);
        self.collect_if_done(key, out);
        true
    }

    /// Tombstones every other replica has shown: this replica is ready to collect
    /// them, and says so in its digests.
    fn is_ready(&self, key: &str) -> bool {
        let Some(shown) = self.shown.get(key) else {
            return false;
        };
        let current = self.store.get(key).is_some_and(|s| s.hash == shown.hash);
        current && self.others(key).iter().all(|p| shown.held.contains_key(p))
    }

    /// Collects `key`'s tombstone once every other replica is ready too (or has
    /// collected it): then each of them has seen every replica hold it, so none will
    /// send it back to a replica that forgot it.
    fn collect_if_done(&mut self, key: &str, out: &mut Fx<C>) {
        let others = self.others(key);
        if !self.store.get(key).is_some_and(|s| s.state.is_deleted()) {
            return;
        }
        if others.is_empty() {
            return self.collect(key, &BTreeMap::new(), out);
        }
        if !self.is_ready(key) {
            return;
        }
        let shown = &self.shown[key];
        if others.iter().all(|p| shown.ready.contains(p)) {
            let held = shown.held.clone();
            self.collect(key, &held, out);
        }
    }

    fn collect(&mut self, key: &str, acked: &BTreeMap<NodeId, Stamp>, out: &mut Fx<C>) {
        let counter = self.store[key].state.counter_of(self.cfg.id);
        self.floor = self.floor.max(counter);
        for (&peer, &sent) in acked {
            let floor = self.accept_from.entry(peer).or_default();
            *floor = (*floor).max(sent);
        }
        out.persist.set_meta(FLOOR, codec::encode(&self.floor));
        out.persist
            .set_meta(ACCEPT_FROM, codec::encode(&self.accept_from));
        let record: Record<C> = Record::Forget {
            key: key.to_owned(),
        };
        self.journal.append(&record, &mut out.persist);
        self.forget(key);
        for pending in self.pending.values_mut() {
            if let Pending::Read { key: k, repair, .. } = pending {
                if k == key {
                    *repair = false;
                }
            }
        }
        self.gc.collected += 1;
        self.snapshot_if_due(out);
    }

    /// Puts `state` in the store and keeps the bucket hash in step.
    fn install(&mut self, key: String, state: C) {
        let (_, hash) = Self::encode_put(&key, &state);
        self.install_hashed(key, state, hash);
    }

    fn install_hashed(&mut self, key: String, state: C, hash: u64) {
        let leaf = self.cfg.leaf_of(&key);
        let bucket = self.cfg.bucket_of_leaf(leaf);
        let (b, l) = (usize::from(bucket), leaf as usize);
        if let Some(old) = self.store.get(&key) {
            self.hashes[b] = self.hashes[b].wrapping_sub(old.hash);
            self.leaf_hashes[l] = self.leaf_hashes[l].wrapping_sub(old.hash);
        }
        self.hashes[b] = self.hashes[b].wrapping_add(hash);
        self.leaf_hashes[l] = self.leaf_hashes[l].wrapping_add(hash);
        if state.is_deleted() {
            self.tombstones.insert(key.clone());
        } else if !self.tombstones.is_empty() {
            self.tombstones.remove(&key);
        }
        self.store.insert(
            key,
            Slot {
                state,
                bucket,
                leaf,
                hash,
            },
        );
    }

    /// Merges `state` into `key`'s; stores it if anything changed.
    fn merge_in(&mut self, key: &str, state: &C, out: &mut Fx<C>) {
        if !self.holds(self.cfg.bucket_of(key)) {
            tracing::debug!(key, "state for a key this replica does not hold; ignored");
            return;
        }
        let mut merged = match self.state(key) {
            Some(mine) if mine.descends(state) => return,
            Some(mine) => mine.clone(),
            None => C::default(),
        };
        merged.merge(state);
        self.store_state(key, merged, out);
    }

    fn new_op(&mut self) -> u64 {
        self.next_op += 1;
        // Unique across incarnations, so a late answer to an earlier one's request
        // matches nothing.
        (self.incarnation << 32) | self.next_op
    }

    fn others(&self, key: &str) -> Vec<NodeId> {
        let me = self.cfg.id;
        self.cfg.replicas_of(key).filter(|&r| r != me).collect()
    }

    fn arm_anti_entropy(&mut self, now: Time, out: &mut Fx<C>) {
        let mean = self.cfg.anti_entropy_every;
        let at = now + self.rng.duration_between(mean * 3 / 4, mean * 5 / 4);
        out.set_timer(Timer::AntiEntropy, at);
    }

    /// The next send's stamp: every message of an incarnation gets a greater one.
    fn stamp(&mut self) -> Stamp {
        self.sends += 1;
        Stamp {
            incarnation: self.incarnation,
            seq: self.sends,
        }
    }

    fn send(&mut self, to: NodeId, body: Body<C>, out: &mut Fx<C>) {
        let sent = self.stamp();
        out.send(to, Message { sent, body });
    }

    fn send_sync(&mut self, to: NodeId, body: Body<C>, out: &mut Fx<C>) {
        let msg = Message {
            sent: self.stamp(),
            body,
        };
        self.sync.bytes_sent += codec::encode(&msg).len() as u64;
        if let Body::States { states, .. } = &msg.body {
            self.sync.keys_sent += states.len() as u64;
        }
        out.send(to, msg);
    }

    fn on_get(&mut self, now: Time, client: ClientId, seq: u64, key: String, out: &mut Fx<C>) {
        let op = self.new_op();
        for to in self.others(&key) {
            self.send(
                to,
                Body::Read {
                    op,
                    key: key.clone(),
                },
                out,
            );
        }
        let mine = self.state(&key).cloned();
        self.pending.insert(
            op,
            Pending::Read {
                client,
                seq,
                key,
                replies: vec![(self.cfg.id, mine)],
                repair: true,
            },
        );
        out.set_timer(Timer::Expire(op), now + self.cfg.request_timeout);
        self.try_finish_read(op, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_write(
        &mut self,
        now: Time,
        client: ClientId,
        seq: u64,
        key: String,
        value: Option<String>,
        context: &C::Context,
        out: &mut Fx<C>,
    ) {
        let op = self.new_op();
        let mut state = self.state(&key).cloned().unwrap_or_default();
        state.write_above(context, value, self.cfg.id, now, self.floor);
        let answer = Response::Written {
            key: key.clone(),
            siblings: state.siblings(),
            context: state.context(),
        };
        for to in self.others(&key) {
            let body = Body::Replicate {
                op,
                key: key.clone(),
                state: state.clone(),
            };
            self.send(to, body, out);
        }
        self.store_state(&key, state, out);
        self.collect_if_done(&key, out);
        let acks = BTreeSet::from([self.cfg.id]);
        if acks.len() >= self.cfg.w {
            // Persist before send: the answer leaves once the write is durable here.
            out.reply(client, seq, Outcome::Done(answer));
            return;
        }
        self.pending.insert(
            op,
            Pending::Write {
                client,
                seq,
                acks,
                answer,
            },
        );
        out.set_timer(Timer::Expire(op), now + self.cfg.request_timeout);
    }

    fn try_finish_read(&mut self, op: u64, out: &mut Fx<C>) {
        let Some(Pending::Read { replies, .. }) = self.pending.get(&op) else {
            return;
        };
        if replies.len() < self.cfg.r {
            return;
        }
        let Some(Pending::Read {
            client,
            seq,
            key,
            replies,
            repair,
        }) = self.pending.remove(&op)
        else {
            unreachable!("checked above");
        };
        out.cancel_timer(Timer::Expire(op));
        let mut merged = C::default();
        for state in replies.iter().filter_map(|(_, s)| s.as_ref()) {
            merged.merge(state);
        }
        // What this replica holds now (a delete may have arrived while it waited).
        if let Some(mine) = self.state(&key) {
            merged.merge(mine);
        }
        // Read repair: every replica asked that answered with less gets the merge —
        // but not a tombstone to one that holds nothing (it may have collected it).
        for (from, state) in replies.iter().filter(|_| repair) {
            if state.as_ref() == Some(&merged) || (state.is_none() && merged.is_deleted()) {
                continue;
            }
            if *from == self.cfg.id {
                self.merge_in(&key, &merged.clone(), out);
            } else {
                let body = Body::Repair {
                    key: key.clone(),
                    state: merged.clone(),
                };
                self.send(*from, body, out);
            }
        }
        let answer = Response::Values {
            key,
            siblings: merged.siblings(),
            context: merged.context(),
        };
        out.reply(client, seq, Outcome::Done(answer));
    }

    fn on_anti_entropy(&mut self, now: Time, out: &mut Fx<C>) {
        self.arm_anti_entropy(now, out);
        if self.peers.is_empty() {
            return;
        }
        let peer = self.peers[self.turn % self.peers.len()];
        self.turn += 1;
        let buckets = (0..self.cfg.buckets)
            .filter(|&b| self.hashes[usize::from(b)] != 0 && self.shared_with(b, peer))
            .map(|b| (b, self.hashes[usize::from(b)]))
            .collect();
        let ready = (self.tombstones.iter())
            .filter(|k| self.shared_with(self.cfg.bucket_of(k), peer) && self.is_ready(k))
            .map(|k| (k.clone(), self.store[k].hash))
            .collect();
        self.sync.rounds += 1;
        self.send_sync(peer, Body::Digest { buckets, ready }, out);
    }

    fn on_digest(
        &mut self,
        from: NodeId,
        sent: Stamp,
        theirs: Vec<(u16, u64)>,
        ready: Vec<(String, u64)>,
        out: &mut Fx<C>,
    ) {
        for (key, hash) in ready {
            self.ready_there(&key, hash, from, sent, out);
        }
        let theirs: BTreeMap<u16, u64> = theirs.into_iter().collect();
        let (same, differing): (Vec<u16>, Vec<u16>) = (0..self.cfg.buckets)
            .filter(|&b| self.shared_with(b, from))
            .partition(|b| theirs.get(b).copied().unwrap_or(0) == self.hashes[usize::from(*b)]);
        // A bucket hashed alike holds the same states there, tombstones included.
        let same_tombstones: Vec<String> = (self.tombstones.iter())
            .filter(|k| same.contains(&self.cfg.bucket_of(k)))
            .cloned()
            .collect();
        for key in same_tombstones {
            self.holds_too(&key, from, sent, out);
        }
        if differing.is_empty() {
            return;
        }
        let leaves = (differing.iter())
            .flat_map(|&b| self.cfg.leaves_of(b))
            .filter(|&l| self.leaf_hashes[l as usize] != 0)
            .map(|l| (l, self.leaf_hashes[l as usize]))
            .collect();
        self.send_sync(
            from,
            Body::Leaves {
                buckets: differing,
                leaves,
            },
            out,
        );
    }

    fn on_leaves(
        &mut self,
        from: NodeId,
        sent: Stamp,
        buckets: Vec<u16>,
        leaves: Vec<(u32, u64)>,
        out: &mut Fx<C>,
    ) {
        let theirs: BTreeMap<u32, u64> = leaves.into_iter().collect();
        let (same, differing): (Vec<u32>, Vec<u32>) = (buckets.into_iter())
            .filter(|&b| b < self.cfg.buckets && self.shared_with(b, from))
            .flat_map(|b| self.cfg.leaves_of(b))
            .partition(|l| theirs.get(l).copied().unwrap_or(0) == self.leaf_hashes[*l as usize]);
        let mut same = same;
        same.sort_unstable();
        // A leaf hashed alike holds the same states, tombstones included (in a busy
        // bucket the bucket hash may never agree).
        let same_tombstones: Vec<String> = (self.tombstones.iter())
            .filter(|k| same.binary_search(&self.cfg.leaf_of(k)).is_ok())
            .cloned()
            .collect();
        for key in same_tombstones {
            self.holds_too(&key, from, sent, out);
        }
        if differing.is_empty() {
            return;
        }
        let keys = self
            .keys_in(&differing)
            .map(|(k, s)| (k.clone(), s.hash))
            .collect();
        self.send_sync(
            from,
            Body::Keys {
                leaves: differing,
                keys,
            },
            out,
        );
    }

    /// The keys in `leaves` (sorted).
    fn keys_in<'a>(
        &'a self,
        leaves: &'a [u32],
    ) -> impl Iterator<Item = (&'a String, &'a Slot<C>)> + 'a {
        self.store
            .iter()
            .filter(move |(_, s)| leaves.binary_search(&s.leaf).is_ok())
    }

    fn on_keys(
        &mut self,
        from: NodeId,
        sent: Stamp,
        leaves: Vec<u32>,
        keys: Vec<(String, u64)>,
        out: &mut Fx<C>,
    ) {
        let mut leaves: Vec<u32> = (leaves.into_iter())
            .filter(|&l| (l as usize) < self.leaf_hashes.len())
            .filter(|&l| self.shared_with(self.cfg.bucket_of_leaf(l), from))
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        let theirs: BTreeMap<String, u64> = keys.into_iter().collect();
        let same: Vec<String> = (self.tombstones.iter())
            .filter(|k| theirs.get(*k) == self.store.get(*k).map(|s| &s.hash))
            .cloned()
            .collect();
        for key in same {
            self.holds_too(&key, from, sent, out);
        }
        // A tombstone the peer had shown and no longer holds, it has collected.
        let missing: Vec<String> = (self.tombstones.iter())
            .filter(|k| {
                leaves.binary_search(&self.cfg.leaf_of(k)).is_ok() && !theirs.contains_key(*k)
            })
            .cloned()
            .collect();
        let mut gone = BTreeSet::new();
        for key in missing {
            if self.collected_there(&key, from, sent, out) {
                gone.insert(key);
            }
        }
        let states: Vec<(String, C)> = self
            .keys_in(&leaves)
            .filter(|(k, s)| theirs.get(*k) != Some(&s.hash) && !gone.contains(*k))
            .map(|(k, s)| (k.clone(), s.state.clone()))
            .collect();
        let want: Vec<String> = theirs
            .into_iter()
            .filter(|(k, h)| {
                leaves.binary_search(&self.cfg.leaf_of(k)).is_ok()
                    && self.store.get(k).map(|s| s.hash) != Some(*h)
            })
            .map(|(k, _)| k)
            .collect();
        if states.is_empty() && want.is_empty() {
            return;
        }
        self.send_sync(from, Body::States { states, want }, out);
    }

    fn on_states(
        &mut self,
        from: NodeId,
        sent: Stamp,
        states: Vec<(String, C)>,
        want: Vec<String>,
        out: &mut Fx<C>,
    ) {
        for (key, state) in &states {
            if self.shared_with(self.cfg.bucket_of(key), from) {
                self.merge_in(key, state, out);
            }
        }
        let mut asked = Vec::new();
        for key in want {
            // Asking for a tombstone it had shown: it has collected it.
            if self.tombstones.contains(&key) && self.collected_there(&key, from, sent, out) {
                continue;
            }
            asked.push(key);
        }
        let back: Vec<(String, C)> = asked
            .into_iter()
            .filter(|k| self.shared_with(self.cfg.bucket_of(k), from))
            .filter_map(|k| self.state(&k).cloned().map(|s| (k, s)))
            .collect();
        if !back.is_empty() {
            self.send_sync(
                from,
                Body::States {
                    states: back,
                    want: Vec::new(),
                },
                out,
            );
        }
    }

    fn recover(&mut self, recovered: &Recovered, out: &mut Fx<C>) -> Result<(), String> {
        let (image, records) = self
            .journal
            .recover::<BTreeMap<String, C>, Record<C>>("vvsync replica", recovered)?;
        for (key, state) in image.into_iter().flatten() {
            self.install(key, state);
        }
        for r in records {
            match r {
                Record::Put { key, state } => self.install(key, state),
                Record::Forget { key } => self.forget(&key),
            }
        }
        if let Some(bytes) = recovered.meta.get(FLOOR) {
            self.floor =
                codec::decode(bytes).map_err(|e| format!("corrupt vvsync meta {FLOOR}: {e}"))?;
        }
        if let Some(bytes) = recovered.meta.get(ACCEPT_FROM) {
            self.accept_from = codec::decode(bytes)
                .map_err(|e| format!("corrupt vvsync meta {ACCEPT_FROM}: {e}"))?;
        }
        let incarnation = match recovered.meta.get(INCARNATION) {
            None => 0,
            Some(bytes) => codec::decode::<u64>(bytes)
                .map_err(|e| format!("corrupt vvsync meta {INCARNATION}: {e}"))?,
        };
        self.incarnation = incarnation + 1;
        out.persist
            .set_meta(INCARNATION, codec::encode(&self.incarnation));
        Ok(())
    }
}

const INCARNATION: &str = "incarnation";
const FLOOR: &str = "floor";
const ACCEPT_FROM: &str = "accept_from";

impl<C: Causality> Node for VvNode<C> {
    type Message = Message<C>;
    type Timer = Timer;
    type Request = Request<C::Context>;
    type Response = Response<C::Context>;

    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn on_start(&mut self, now: Time, recovered: Recovered, out: &mut Fx<C>) {
        self.clock = now;
        if let Err(reason) = self.recover(&recovered, out) {
            tracing::error!(%reason, "halting: storage holds what this node cannot read");
            out.clear();
            self.halted = Some(reason);
            return;
        }
        self.arm_anti_entropy(now, out);
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message<C>, out: &mut Fx<C>) {
        if self.halted.is_some() {
            return;
        }
        self.clock = now;
        let Message { sent, body } = msg;
        if self
            .accept_from
            .get(&from)
            .is_some_and(|&floor| sent < floor)
        {
            // Sent before `from` showed a tombstone collected here: it may carry what
            // the delete replaced.
            self.gc.refused += 1;
            return;
        }
        match body {
            Body::Replicate { op, key, state } => {
                if self.holds(self.cfg.bucket_of(&key)) {
                    self.merge_in(&key, &state, out);
                    self.send(from, Body::Replicated { op }, out);
                }
            }
            Body::Replicated { op } => {
                let Some(Pending::Write { acks, .. }) = self.pending.get_mut(&op) else {
                    return;
                };
                acks.insert(from);
                if acks.len() >= self.cfg.w {
                    let Some(Pending::Write {
                        client,
                        seq,
                        answer,
                        ..
                    }) = self.pending.remove(&op)
                    else {
                        unreachable!("matched above");
                    };
                    out.cancel_timer(Timer::Expire(op));
                    out.reply(client, seq, Outcome::Done(answer));
                }
            }
            Body::Read { op, key } => {
                let state = self.state(&key).cloned();
                self.send(from, Body::ReadReply { op, state }, out);
            }
            Body::ReadReply { op, state } => {
                if let Some(Pending::Read { replies, .. }) = self.pending.get_mut(&op) {
                    if replies.iter().all(|(n, _)| *n != from) {
                        replies.push((from, state));
                    }
                    self.try_finish_read(op, out);
                }
            }
            Body::Repair { key, state } => self.merge_in(&key, &state, out),
            Body::Digest { buckets, ready } => self.on_digest(from, sent, buckets, ready, out),
            Body::Leaves { buckets, leaves } => self.on_leaves(from, sent, buckets, leaves, out),
            Body::Keys { leaves, keys } => self.on_keys(from, sent, leaves, keys, out),
            Body::States { states, want } => self.on_states(from, sent, states, want, out),
        }
    }

    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Fx<C>) {
        if self.halted.is_some() {
            return;
        }
        self.clock = now;
        match timer {
            Timer::AntiEntropy => self.on_anti_entropy(now, out),
            Timer::Expire(op) => match self.pending.remove(&op) {
                Some(Pending::Read { client, seq, .. }) => {
                    out.reply(client, seq, Outcome::Unavailable)
                }
                // It is durable here and may still spread: its fate is unknown.
                Some(Pending::Write { client, seq, .. }) => {
                    out.reply(client, seq, Outcome::Unknown)
                }
                None => {}
            },
        }
    }

    fn on_client_request(
        &mut self,
        now: Time,
        req: ClientRequest<Request<C::Context>>,
        out: &mut Fx<C>,
    ) {
        if self.halted.is_some() {
            return;
        }
        self.clock = now;
        let key = req.op.key();
        if !self.holds(self.cfg.bucket_of(key)) {
            let leader = self.cfg.replicas_of(key).next();
            out.reply(req.client, req.seq, Outcome::NotLeader { leader });
            return;
        }
        match req.op {
            Request::Get { key } => self.on_get(now, req.client, req.seq, key, out),
            Request::Put {
                key,
                value,
                context,
            } => self.on_write(now, req.client, req.seq, key, Some(value), &context, out),
            Request::Delete { key, context } => {
                self.on_write(now, req.client, req.seq, key, None, &context, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::Dvv;

    fn members() -> Vec<NodeId> {
        (1..=5).map(NodeId).collect()
    }

    fn keys() -> impl Iterator<Item = String> {
        (0..2000).map(|i| format!("key{i}"))
    }

    /// Placement: a key's leaf is in `0..buckets × leaves` and in the leaf range of
    /// its bucket; the buckets' leaf ranges tile that space; FNV-1a spreads keys over
    /// (nearly) every bucket and most leaves — anti-entropy's digest compares leaves,
    /// so a placement that crowds keys into a few makes every round send most keys.
    #[test]
    fn placement_every_key_has_one_leaf_inside_its_bucket_and_keys_spread() {
        let cfg = VvConfig::lan(NodeId(1), &members(), 1);
        let total = u32::from(cfg.buckets) * u32::from(cfg.leaves);
        let (mut buckets, mut leaves) = (BTreeSet::new(), BTreeSet::new());
        for key in keys() {
            let (leaf, bucket) = (cfg.leaf_of(&key), cfg.bucket_of(&key));
            assert!(leaf < total, "{key}: leaf {leaf}");
            assert!(cfg.leaves_of(bucket).contains(&leaf), "{key}");
            buckets.insert(bucket);
            leaves.insert(leaf);
        }
        assert_eq!(buckets.len(), usize::from(cfg.buckets), "every bucket used");
        assert!(
            leaves.len() > 1200,
            "2,000 keys over {} leaves",
            leaves.len()
        );
        let mut next = 0;
        for b in 0..cfg.buckets {
            let range = cfg.leaves_of(b);
            assert_eq!(range.start, next, "bucket {b}");
            assert_eq!(range.len(), usize::from(cfg.leaves));
            next = range.end;
        }
        assert_eq!(next, total);
    }

    /// A replica serves a key only if it is one of the key's `N` replicas; anyone
    /// else sends the client to the key's first replica.
    #[test]
    fn dynamo_4_3_a_request_is_served_only_by_one_of_the_keys_n_replicas() {
        let (mut served, mut redirected) = (0, 0);
        for id in members() {
            let cfg = VvConfig::lan(id, &members(), id.0);
            let mut node: VvNode<Dvv> = VvNode::new(cfg.clone());
            node.on_start(Time::ZERO, Recovered::default(), &mut Fx::<Dvv>::new());
            for (i, key) in keys().take(64).enumerate() {
                let replicas: Vec<NodeId> = cfg.replicas_of(&key).collect();
                assert_eq!(replicas.len(), 3);
                let req = ClientRequest {
                    client: synod_core::ClientId(1),
                    seq: i as u64 + 1,
                    op: Request::Get { key: key.clone() },
                };
                let mut out = Fx::<Dvv>::new();
                node.on_client_request(Time::ZERO, req, &mut out);
                let redirect = Outcome::NotLeader {
                    leader: Some(replicas[0]),
                };
                let answered: Vec<_> = out.replies.iter().map(|r| &r.outcome).collect();
                if replicas.contains(&id) {
                    assert!(!answered.contains(&&redirect), "{id} holds {key}");
                    served += 1;
                } else {
                    assert_eq!(answered, [&redirect], "{id} does not hold {key}");
                    redirected += 1;
                }
            }
        }
        assert!(served > 0 && redirected > 0);
    }

    /// A configuration that cannot work is refused when the node is built, naming
    /// what is wrong.
    #[test]
    #[should_panic(expected = "N = 0 with 5 members")]
    fn a_configuration_with_no_replicas_per_key_is_refused() {
        let mut cfg = VvConfig::lan(NodeId(1), &members(), 1);
        cfg.n = 0;
        let _ = VvNode::<Dvv>::new(cfg);
    }

    #[test]
    #[should_panic(expected = "is not a member")]
    fn a_node_outside_its_membership_is_refused() {
        let cfg = VvConfig::lan(NodeId(9), &members(), 1);
        let _ = VvNode::<Dvv>::new(cfg);
    }
}
