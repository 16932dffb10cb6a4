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

    // ----- driven input by input --------------------------------------------------

    use crate::clock::VersionVector;
    use synod_core::TimerOp;

    fn three() -> Vec<NodeId> {
        (1..=3).map(NodeId).collect()
    }

    /// Replica `id` of `members`, started on empty storage, `tune` applied first.
    fn started(id: u64, members: &[NodeId], tune: impl FnOnce(&mut VvConfig)) -> VvNode<Dvv> {
        let mut cfg = VvConfig::lan(NodeId(id), members, id);
        tune(&mut cfg);
        let mut node = VvNode::new(cfg);
        node.on_start(Time::ZERO, Recovered::default(), &mut Fx::<Dvv>::new());
        node
    }

    /// A peer's message stamped `seq` of its first incarnation, handed to `node`.
    fn deliver(node: &mut VvNode<Dvv>, from: u64, seq: u64, body: Body<Dvv>) -> Fx<Dvv> {
        let sent = Stamp {
            incarnation: 1,
            seq,
        };
        let mut out = Fx::<Dvv>::new();
        node.on_message(Time::ZERO, NodeId(from), Message { sent, body }, &mut out);
        out
    }

    fn request(node: &mut VvNode<Dvv>, client: u64, op: Request<VersionVector>) -> Fx<Dvv> {
        let req = ClientRequest {
            client: ClientId(client),
            seq: 1,
            op,
        };
        let mut out = Fx::<Dvv>::new();
        node.on_client_request(Time::ZERO, req, &mut out);
        out
    }

    /// Puts `value` (`None`: deletes) over `context`; the answer's context.
    fn write(
        node: &mut VvNode<Dvv>,
        key: &str,
        value: Option<&str>,
        context: VersionVector,
    ) -> VersionVector {
        let key = key.to_owned();
        let op = match value {
            Some(v) => Request::Put {
                key,
                value: v.to_owned(),
                context,
            },
            None => Request::Delete { key, context },
        };
        let out = request(node, 1, op);
        match out.replies.as_slice() {
            [r] => match &r.outcome {
                Outcome::Done(Response::Written { context, .. }) => context.clone(),
                other => panic!("write answered {other:?}"),
            },
            other => panic!("write answered {} times", other.len()),
        }
    }

    /// Writes `key` and deletes it with the write's context: a tombstone.
    fn tombstone(node: &mut VvNode<Dvv>, key: &str) {
        let context = write(node, key, Some("v"), VersionVector::new());
        write(node, key, None, context);
        assert!(node.state(key).is_some_and(|s| s.is_deleted()));
    }

    fn hash_of(node: &VvNode<Dvv>, key: &str) -> u64 {
        let found = node.hashed_states().find(|(k, _, _)| *k == key);
        found.expect("held").2
    }

    /// What a digest of `node`'s keys that pass `keep` holds, worked out from
    /// `hashed_states`: per bucket the wrapping sum of its keys' hashes, nonzero only,
    /// by bucket.
    fn buckets_of(node: &VvNode<Dvv>, keep: impl Fn(&str) -> bool) -> Vec<(u16, u64)> {
        let mut sums = BTreeMap::<u16, u64>::new();
        for (k, _, h) in node.hashed_states().filter(|(k, _, _)| keep(k)) {
            let sum = sums.entry(node.config().bucket_of(k)).or_default();
            *sum = sum.wrapping_add(h);
        }
        sums.into_iter().filter(|&(_, h)| h != 0).collect()
    }

    /// A digest from a peer holding exactly what `node` holds, ready to collect `ready`.
    fn same_digest(node: &VvNode<Dvv>, ready: &[&str]) -> Body<Dvv> {
        Body::Digest {
            buckets: buckets_of(node, |_| true),
            ready: (ready.iter())
                .map(|k| (k.to_string(), hash_of(node, k)))
                .collect(),
        }
    }

    fn sends(out: &Fx<Dvv>) -> Vec<(NodeId, &Body<Dvv>)> {
        out.sends.iter().map(|e| (e.to, &e.msg.body)).collect()
    }

    /// A digest sent: to whom, its buckets and its ready tombstones.
    type Sent = (NodeId, Vec<(u16, u64)>, Vec<(String, u64)>);

    /// Fires the anti-entropy timer; the digest it sent and to whom.
    fn round(node: &mut VvNode<Dvv>) -> Sent {
        let mut out = Fx::<Dvv>::new();
        node.on_timer(Time::ZERO, Timer::AntiEntropy, &mut out);
        match sends(&out).as_slice() {
            [(to, Body::Digest { buckets, ready })] => (*to, buckets.clone(), ready.clone()),
            other => panic!("a round sent {other:?}"),
        }
    }

    /// The first keys named `key{i}` that pass `pick`.
    fn keys_where(count: usize, pick: impl Fn(&str) -> bool) -> Vec<String> {
        let found: Vec<String> = keys().filter(|k| pick(k)).take(count).collect();
        assert_eq!(found.len(), count);
        found
    }

    /// Rounds are armed at 3/4 to 5/4 of `anti_entropy_every` after the input that
    /// arms them (on start and at each round), and each round counts one in
    /// `SyncStats::rounds` and its digest's encoded size in `bytes_sent`.
    #[test]
    fn dynamo_4_7_rounds_are_armed_within_a_quarter_of_the_mean_and_counted() {
        let mut node: VvNode<Dvv> = VvNode::new(VvConfig::lan(NodeId(1), &three(), 3));
        let mean = node.config().anti_entropy_every;
        let (low, high) = (mean * 3 / 4, mean * 5 / 4);
        let armed = |out: &Fx<Dvv>| match out.timers.as_slice() {
            [TimerOp::Set {
                timer: Timer::AntiEntropy,
                at,
            }] => *at,
            other => panic!("armed {other:?}"),
        };
        let mut out = Fx::<Dvv>::new();
        let mut now = Time::from_millis(1000);
        node.on_start(now, Recovered::default(), &mut out);
        let mut at = armed(&out);
        write(&mut node, "k", Some("v"), VersionVector::new());
        let mut bytes = 0;
        let mut earliest = high;
        for rounds in 1..=200 {
            assert!(at >= now + low && at <= now + high, "{now} armed {at}");
            earliest = earliest.min(at - now);
            now = at;
            let mut out = Fx::<Dvv>::new();
            node.on_timer(now, Timer::AntiEntropy, &mut out);
            let [digest] = out.sends.as_slice() else {
                panic!("one digest per round: {:?}", out.sends);
            };
            bytes += codec::encode(&digest.msg).len() as u64;
            let stats = node.sync_stats();
            assert_eq!((stats.rounds, stats.bytes_sent), (rounds, bytes));
            at = armed(&out);
        }
        assert!(bytes > 0);
        assert!(earliest < mean, "draws spread over the range: {earliest:?}");
    }

    /// Each request a replica coordinates has its own op id: two reads waiting at once
    /// are both pending, and each is finished by the replies to its own op.
    #[test]
    fn concurrent_reads_are_pending_apart_and_each_is_finished_by_its_own_replies() {
        let mut node = started(1, &three(), |cfg| cfg.r = 2);
        let read = |node: &mut VvNode<Dvv>, client: u64, key: &str| {
            let out = request(node, client, Request::Get { key: key.into() });
            let ops: BTreeSet<u64> = (out.sends.iter())
                .map(|e| match e.msg.body {
                    Body::Read { op, .. } => op,
                    ref other => panic!("{other:?}"),
                })
                .collect();
            assert!(out.replies.is_empty(), "R = 2 waits for a peer");
            assert_eq!(ops.len(), 1, "one op, asked of both peers");
            ops.into_iter().next().unwrap()
        };
        assert_eq!(node.pending(), 0);
        let op_a = read(&mut node, 1, "a");
        let op_b = read(&mut node, 2, "b");
        assert_ne!(op_a, op_b);
        assert_eq!(node.pending(), 2);
        let mut b = Dvv::default();
        b.write(
            &VersionVector::new(),
            Some("vb".into()),
            NodeId(2),
            Time::ZERO,
        );
        let out = deliver(
            &mut node,
            2,
            1,
            Body::ReadReply {
                op: op_b,
                state: Some(b),
            },
        );
        let answered: Vec<_> = out.replies.iter().map(|r| (r.client, &r.outcome)).collect();
        let values_b = Response::Values {
            key: "b".into(),
            siblings: vec!["vb".into()],
            context: VersionVector::from_pairs([(NodeId(2), 1)]),
        };
        assert_eq!(answered, [(ClientId(2), &Outcome::Done(values_b))]);
        assert_eq!(node.pending(), 1);
        let out = deliver(
            &mut node,
            3,
            1,
            Body::ReadReply {
                op: op_a,
                state: None,
            },
        );
        assert_eq!(out.replies.len(), 1);
        assert_eq!(out.replies[0].client, ClientId(1));
        assert_eq!(
            out.replies[0].outcome.clone(),
            Outcome::Done(Response::Values {
                key: "a".into(),
                siblings: vec![],
                context: VersionVector::new(),
            })
        );
        assert_eq!(node.pending(), 0);
    }

    /// Op ids and message stamps are unique across incarnations: the incarnation is
    /// counted up at every start, an op id is `(incarnation << 32) | n` for the
    /// incarnation's `n`-th request, and a late reply to the previous incarnation's
    /// read does not count towards the new one's.
    #[test]
    fn a_restarted_replica_numbers_ops_and_stamps_above_its_last_incarnation() {
        let cfg = {
            let mut cfg = VvConfig::lan(NodeId(1), &three(), 1);
            cfg.r = 3;
            cfg
        };
        let mut disk = Recovered::default();
        // One incarnation: start, one read; its Read messages (op, stamp).
        let incarnation = |disk: &mut Recovered| {
            let mut node: VvNode<Dvv> = VvNode::new(cfg.clone());
            let mut out = Fx::<Dvv>::new();
            node.on_start(Time::ZERO, disk.clone(), &mut out);
            disk.apply(&out.persist);
            let out = request(&mut node, 1, Request::Get { key: "k".into() });
            disk.apply(&out.persist);
            let reads: Vec<(u64, Stamp)> = (out.sends.iter())
                .map(|e| match e.msg.body {
                    Body::Read { op, .. } => (op, e.msg.sent),
                    ref other => panic!("{other:?}"),
                })
                .collect();
            (node, reads)
        };
        let (_, first) = incarnation(&mut disk);
        let (mut node, second) = incarnation(&mut disk);
        let stamps = |reads: &[(u64, Stamp)]| reads.iter().map(|r| r.1).collect::<Vec<_>>();
        let inc = |incarnation, seq| Stamp { incarnation, seq };
        assert_eq!(stamps(&first), [inc(1, 1), inc(1, 2)]);
        assert_eq!(stamps(&second), [inc(2, 1), inc(2, 2)]);
        let (old_op, op) = (first[0].0, second[0].0);
        assert_eq!((old_op, op), ((1 << 32) | 1, (2 << 32) | 1));
        // The first incarnation's read is answered late: it matches nothing.
        let late = Body::ReadReply {
            op: old_op,
            state: None,
        };
        assert!(deliver(&mut node, 2, 9, late).replies.is_empty());
        let out = deliver(&mut node, 3, 9, Body::ReadReply { op, state: None });
        assert!(
            out.replies.is_empty(),
            "R = 3: n2 has not answered this read"
        );
        let out = deliver(&mut node, 2, 10, Body::ReadReply { op, state: None });
        assert_eq!(out.replies.len(), 1);
    }

    /// `tombstones()` counts the keys whose state is a tombstone: a delete adds its
    /// key, a later write of a live value over the delete's context removes it.
    #[test]
    fn tombstones_counts_keys_deleted_and_not_written_again() {
        let mut node = started(1, &three(), |_| {});
        assert_eq!(node.tombstones(), 0);
        let mut contexts = BTreeMap::new();
        for key in ["a", "b"] {
            contexts.insert(key, write(&mut node, key, Some("v"), VersionVector::new()));
        }
        assert_eq!(node.tombstones(), 0);
        for (count, key) in [(1, "a"), (2, "b")] {
            let context = contexts[key].clone();
            contexts.insert(key, write(&mut node, key, None, context));
            assert_eq!(node.tombstones(), count);
        }
        for (count, key) in [(1, "a"), (0, "b")] {
            write(&mut node, key, Some("again"), contexts[key].clone());
            assert_eq!(node.state(key).unwrap().siblings(), ["again"]);
            assert_eq!(node.tombstones(), count, "{key} written again");
        }
    }

    /// `hashed_states` lists every key with its state and the hash anti-entropy
    /// compares, which changes exactly when the key's state does.
    #[test]
    fn hashed_states_lists_every_key_with_a_hash_that_changes_with_its_state() {
        let mut node = started(1, &three(), |_| {});
        let context = write(&mut node, "a", Some("1"), VersionVector::new());
        write(&mut node, "b", Some("1"), VersionVector::new());
        let listed = |node: &VvNode<Dvv>| -> Vec<(String, Dvv, u64)> {
            (node.hashed_states())
                .map(|(k, s, h)| (k.to_owned(), s.clone(), h))
                .collect()
        };
        let before = listed(&node);
        let keys: Vec<&str> = before.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        for ((k, s, _), (k2, s2)) in before.iter().zip(node.states()) {
            assert_eq!((k.as_str(), s), (k2, s2));
        }
        // A state the replica already holds changes nothing.
        let a = node.state("a").unwrap().clone();
        deliver(
            &mut node,
            2,
            1,
            Body::Repair {
                key: "a".into(),
                state: a,
            },
        );
        assert_eq!(listed(&node), before);
        write(&mut node, "a", Some("2"), context);
        let after = listed(&node);
        assert_ne!(after[0].2, before[0].2, "a changed");
        assert_eq!(after[1], before[1], "b did not");
    }

    /// Each change of a key's state is one journal record; a replicated or repaired
    /// state the replica's own already descends changes nothing and writes nothing
    /// (the replication is still acknowledged).
    #[test]
    fn journal_a_merge_that_changes_nothing_writes_no_record() {
        let mut node = started(2, &three(), |_| {});
        let mut state = Dvv::default();
        state.write(
            &VersionVector::new(),
            Some("v".into()),
            NodeId(1),
            Time::ZERO,
        );
        let replicate = |op| Body::Replicate {
            op,
            key: "k".into(),
            state: state.clone(),
        };
        let acked = |out: &Fx<Dvv>, op| matches!(sends(out).as_slice(), [(NodeId(1), Body::Replicated { op: o })] if *o == op);
        let out = deliver(&mut node, 1, 1, replicate(7));
        assert!(!out.persist.is_empty(), "new: journaled");
        assert!(acked(&out, 7));
        let out = deliver(&mut node, 1, 2, replicate(7));
        assert!(out.persist.is_empty(), "a duplicate changes nothing");
        assert!(acked(&out, 7));
        let out = deliver(
            &mut node,
            3,
            1,
            Body::Repair {
                key: "k".into(),
                state: Dvv::default(),
            },
        );
        assert!(
            out.persist.is_empty() && out.sends.is_empty(),
            "an older state"
        );
        assert_eq!(node.state("k"), Some(&state));
    }

    /// Dynamo §4.7 over a placement: a round goes to the next peer in turn, and its
    /// digest holds the hash of exactly the nonempty buckets this replica shares with
    /// that peer.
    #[test]
    fn dynamo_4_7_a_digest_holds_the_nonempty_buckets_shared_with_its_peer_in_turn() {
        let mut node = started(1, &members(), |_| {});
        let cfg = node.config().clone();
        for key in keys_where(40, |k| cfg.replicas_of(k).any(|r| r == NodeId(1))) {
            write(&mut node, &key, Some("v"), VersionVector::new());
        }
        let mut peers = Vec::new();
        for _ in 0..5 {
            let (to, buckets, ready) = round(&mut node);
            let shared = |k: &str| cfg.replicas_of(k).any(|r| r == to);
            let expected = buckets_of(&node, shared);
            assert!(!expected.is_empty() && expected.len() < 40, "{to}");
            assert_eq!(buckets, expected, "digest to {to}");
            assert!(ready.is_empty());
            peers.push(to.0);
        }
        assert_eq!(
            peers,
            [2, 3, 4, 5, 2],
            "every peer sharing a bucket, in turn"
        );
    }

    /// Dynamo §4.7: a digest is compared on the buckets both replicas hold — a hash
    /// for a bucket this replica does not hold, or none for one the peer does not
    /// hold, is no difference — and the differing buckets are answered with this
    /// replica's nonzero leaf hashes in them.
    #[test]
    fn dynamo_4_7_a_digest_is_compared_on_shared_buckets_and_answered_with_their_leaves() {
        let mut node = started(1, &members(), |_| {});
        let cfg = node.config().clone();
        let holds = |k: &str, id: u64| cfg.replicas_of(k).any(|r| r == NodeId(id));
        let with_4 = keys_where(6, |k| holds(k, 1) && holds(k, 4));
        let without_4 = keys_where(6, |k| holds(k, 1) && !holds(k, 4));
        for key in with_4.iter().chain(&without_4) {
            write(&mut node, key, Some("v"), VersionVector::new());
        }
        let shared = buckets_of(&node, |k| holds(k, 4));
        let not_held = (0..cfg.buckets)
            .find(|&b| !cfg.replicas_of_bucket(b).any(|r| r == NodeId(1)))
            .unwrap();
        let mut theirs = shared.clone();
        theirs.push((not_held, 12345));
        theirs.sort_unstable();
        let digest = |buckets| Body::Digest {
            buckets,
            ready: Vec::new(),
        };
        let out = deliver(&mut node, 4, 1, digest(theirs.clone()));
        assert!(
            out.sends.is_empty(),
            "no shared bucket differs: {:?}",
            out.sends
        );
        // One shared bucket differs: its leaves are sent.
        let (b, h) = shared[0];
        let mut changed = shared.clone();
        changed[0] = (b, h ^ 1);
        let out = deliver(&mut node, 4, 2, digest(changed));
        let mut leaves = BTreeMap::<u32, u64>::new();
        for (k, _, h) in node
            .hashed_states()
            .filter(|(k, _, _)| cfg.bucket_of(k) == b)
        {
            let sum = leaves.entry(cfg.leaf_of(k)).or_default();
            *sum = sum.wrapping_add(h);
        }
        let expected = Body::Leaves {
            buckets: vec![b],
            leaves: leaves.into_iter().collect(),
        };
        assert_eq!(sends(&out), [(NodeId(4), &expected)]);
    }

    /// A `Leaves` naming a bucket outside `0..buckets` (a peer configured otherwise)
    /// is ignored; a differing bucket is answered with the keys of its differing
    /// leaves.
    #[test]
    fn dynamo_4_7_leaves_of_buckets_out_of_range_are_ignored() {
        let mut node = started(1, &three(), |_| {});
        write(&mut node, "k", Some("v"), VersionVector::new());
        let cfg = node.config().clone();
        let leaves = |buckets| Body::Leaves {
            buckets,
            leaves: Vec::new(),
        };
        let out = deliver(&mut node, 2, 1, leaves(vec![cfg.buckets, cfg.buckets + 1]));
        assert!(out.sends.is_empty());
        let out = deliver(&mut node, 2, 2, leaves(vec![cfg.bucket_of("k")]));
        let expected = Body::Keys {
            leaves: vec![cfg.leaf_of("k")],
            keys: vec![("k".into(), hash_of(&node, "k"))],
        };
        assert_eq!(sends(&out), [(NodeId(2), &expected)]);
    }

    /// Dynamo §4.7, last step: given the initiator's key hashes for some leaves, a
    /// replica sends the states in those leaves that the initiator lacks or holds
    /// otherwise, asks for the listed keys it lacks or holds otherwise — nothing
    /// outside the leaves, nothing held alike — and sends nothing when nothing
    /// differs.
    #[test]
    fn dynamo_4_7_keys_are_answered_with_only_the_states_that_differ() {
        let mut node = started(2, &three(), |_| {});
        let cfg = node.config().clone();
        let names = ["w", "x", "y", "z", "q"];
        let leaf: BTreeMap<&str, u32> = names.iter().map(|&k| (k, cfg.leaf_of(k))).collect();
        assert_eq!(leaf.values().collect::<BTreeSet<_>>().len(), names.len());
        for key in ["x", "y", "z"] {
            write(&mut node, key, Some(key), VersionVector::new());
        }
        let keys = |leaves: &[&str], keys: Vec<(&str, u64)>| Body::Keys {
            leaves: leaves.iter().map(|k| leaf[k]).collect(),
            keys: keys.into_iter().map(|(k, h)| (k.to_owned(), h)).collect(),
        };
        let (x, y) = (hash_of(&node, "x"), hash_of(&node, "y"));
        let listed = vec![("q", 9), ("w", 42), ("x", x), ("y", y ^ 1)];
        let state = |k: &str| (k.to_owned(), node.state(k).unwrap().clone());
        let (y_state, z_state) = (state("y"), state("z"));
        let out = deliver(&mut node, 1, 1, keys(&["w", "x", "y", "z"], listed));
        let expected = Body::States {
            states: vec![y_state, z_state.clone()],
            want: vec!["w".into(), "y".into()],
        };
        assert_eq!(sends(&out), [(NodeId(1), &expected)]);
        // Only states to send, nothing to ask for.
        let out = deliver(&mut node, 1, 2, keys(&["z"], Vec::new()));
        let expected = Body::States {
            states: vec![z_state],
            want: Vec::new(),
        };
        assert_eq!(sends(&out), [(NodeId(1), &expected)]);
        let out = deliver(&mut node, 1, 3, keys(&["x"], vec![("x", x)]));
        assert!(out.sends.is_empty(), "nothing differs");
        assert_eq!(node.sync_stats().keys_sent, 3);
    }

    /// Tombstone collection, rule 1: a peer shows it holds a tombstone by listing the
    /// key with the tombstone's hash — a key list with another hash shows nothing — and
    /// once every other replica has shown it, this replica says it is ready.
    #[test]
    fn tombstone_collection_a_key_list_shows_a_tombstone_only_with_its_hash() {
        let mut node = started(1, &three(), |_| {});
        tombstone(&mut node, "k");
        let (leaf, hash) = (node.config().leaf_of("k"), hash_of(&node, "k"));
        let keys = |hash| Body::Keys {
            leaves: vec![leaf],
            keys: vec![("k".to_owned(), hash)],
        };
        deliver(&mut node, 2, 1, keys(hash ^ 1));
        let digest = same_digest(&node, &[]);
        deliver(&mut node, 3, 1, digest);
        assert!(
            round(&mut node).2.is_empty(),
            "n2 has not shown the tombstone"
        );
        deliver(&mut node, 2, 2, keys(hash));
        assert_eq!(round(&mut node).2, [("k".to_owned(), hash)]);
        assert_eq!(node.gc_stats().collected, 0, "nobody else is ready yet");
    }

    /// Tombstone collection, rule 2 and the refusal after it: a peer that showed the
    /// tombstone counts as having collected it only if a later key list of the
    /// tombstone's leaf lacks the key (not a list of some other leaf); the tombstone
    /// is collected once every other replica is ready; then messages the peers sent
    /// before they showed it are refused, and the showing message itself (as
    /// duplicated) is not.
    #[test]
    fn tombstone_collection_waits_for_every_peer_and_refuses_only_older_messages() {
        let mut node = started(1, &three(), |_| {});
        tombstone(&mut node, "k");
        let cfg = node.config().clone();
        let other_leaf = (0..cfg.buckets as u32 * cfg.leaves as u32)
            .find(|&l| l != cfg.leaf_of("k"))
            .unwrap();
        let showing = same_digest(&node, &[]);
        deliver(&mut node, 2, 5, showing.clone());
        let digest = same_digest(&node, &[]);
        deliver(&mut node, 3, 5, digest);
        // n2 lists another leaf, without k: that says nothing about k.
        let other = Body::Keys {
            leaves: vec![other_leaf],
            keys: Vec::new(),
        };
        deliver(&mut node, 2, 6, other);
        let digest = same_digest(&node, &["k"]);
        deliver(&mut node, 3, 6, digest);
        assert!(node.state("k").is_some(), "n2 is not ready");
        assert_eq!(node.gc_stats().collected, 0);
        let digest = same_digest(&node, &["k"]);
        deliver(&mut node, 2, 7, digest);
        assert!(node.state("k").is_none(), "collected");
        assert_eq!(node.gc_stats().collected, 1);
        // n2 showed it in its message 5: that one, duplicated, is accepted.
        let out = deliver(&mut node, 2, 5, showing);
        assert_eq!(node.gc_stats().refused, 0);
        let differs = Body::Leaves {
            buckets: vec![cfg.bucket_of("k")],
            leaves: Vec::new(),
        };
        assert_eq!(
            sends(&out),
            [(NodeId(2), &differs)],
            "k's bucket is empty here now"
        );
        let out = deliver(
            &mut node,
            2,
            4,
            Body::Read {
                op: 1,
                key: "k".into(),
            },
        );
        assert_eq!(node.gc_stats().refused, 1);
        assert!(out.sends.is_empty());
        let out = deliver(
            &mut node,
            2,
            8,
            Body::Read {
                op: 2,
                key: "k".into(),
            },
        );
        assert!(matches!(
            sends(&out).as_slice(),
            [(_, Body::ReadReply { state: None, .. })]
        ));
    }

    /// Anti-entropy's last step carries deletes too: a peer that asks for a key this
    /// replica holds as a tombstone gets the tombstone — unless it had shown the
    /// tombstone before, in which case asking means it collected it.
    #[test]
    fn tombstone_collection_a_wanted_tombstone_is_sent_unless_the_peer_had_shown_it() {
        let mut node = started(1, &three(), |_| {});
        tombstone(&mut node, "k");
        let want = || Body::States {
            states: Vec::new(),
            want: vec!["k".into()],
        };
        let out = deliver(&mut node, 2, 1, want());
        let expected = Body::States {
            states: vec![("k".into(), node.state("k").unwrap().clone())],
            want: Vec::new(),
        };
        assert_eq!(sends(&out), [(NodeId(2), &expected)]);
        let digest = same_digest(&node, &[]);
        deliver(&mut node, 2, 2, digest);
        let out = deliver(&mut node, 2, 3, want());
        assert!(out.sends.is_empty(), "n2 had shown it: collected there");
    }

    /// A read waiting while its key's tombstone is collected repairs nothing (its
    /// replies may predate the delete, and a repair would bring the deleted value
    /// back); a read of another key waiting at the same time still repairs.
    #[test]
    fn tombstone_collection_stops_the_repair_of_reads_of_that_key_only() {
        let mut node = started(1, &three(), |cfg| cfg.r = 3);
        write(&mut node, "a", Some("x"), VersionVector::new());
        let context = write(&mut node, "k", Some("v"), VersionVector::new());
        let v = node.state("k").unwrap().clone();
        let op_of = |out: &Fx<Dvv>| match out.sends[0].msg.body {
            Body::Read { op, .. } => op,
            ref other => panic!("{other:?}"),
        };
        let op_a = op_of(&request(&mut node, 3, Request::Get { key: "a".into() }));
        let op_k = op_of(&request(&mut node, 4, Request::Get { key: "k".into() }));
        // n2 answers the read of k before the delete reaches it.
        let reply = |op, state| Body::ReadReply { op, state };
        deliver(&mut node, 2, 1, reply(op_k, Some(v)));
        write(&mut node, "k", None, context);
        let digest = same_digest(&node, &["k"]);
        deliver(&mut node, 2, 2, digest);
        let digest = same_digest(&node, &["k"]);
        deliver(&mut node, 3, 1, digest);
        assert_eq!(node.gc_stats().collected, 1);
        // n3, which collected it too, answers nothing: no repair brings v back.
        let out = deliver(&mut node, 3, 2, reply(op_k, None));
        assert_eq!(out.replies.len(), 1, "the read is answered");
        assert!(out.sends.is_empty(), "repaired: {:?}", out.sends);
        // The read of a: n2 and n3 hold nothing, both are repaired.
        deliver(&mut node, 2, 3, reply(op_a, None));
        let out = deliver(&mut node, 3, 3, reply(op_a, None));
        let repaired: Vec<NodeId> = (sends(&out).into_iter())
            .filter(|(_, b)| matches!(b, Body::Repair { key, .. } if key == "a"))
            .map(|(to, _)| to)
            .collect();
        assert_eq!(repaired, [NodeId(2), NodeId(3)]);
    }
}
