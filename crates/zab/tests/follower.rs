//! The follower's side of synchronisation and broadcast (DSN 2011 §IV-B, §IV-C;
//! ZooKeeper's `Learner`), one server driven by hand: n3 of {n1, n2, n3} follows
//! n1 in epoch 1, and each test feeds it exactly the messages and timer firings of
//! one pattern. No PING stands in for a lost message unless the test sends it, so
//! each rule is checked on its own.

mod by_hand;
use by_hand::*;
use std::time::Duration;
use synod_core::{ClientId, ClientRequest, KvOp, Node, Outcome, Recovered, SessionCommand, Time};
use synod_testkit::{ms, n};
use synod_zab::message::Sync;
use synod_zab::{
    Epoch, Message, PeerState, Pos, Request, Response, Txn, ZabConfig, ZabNode, ZabTimer, Zxid,
};

fn z(counter: u32) -> Zxid {
    Zxid::new(E, counter)
}

/// Transaction `(1, counter)`: `k<counter> = v`.
fn txn(counter: u32) -> Txn {
    let op = KvOp::Put {
        key: format!("k{counter}"),
        value: "v".into(),
    };
    let cmd = SessionCommand {
        client: ClientId(100),
        seq: counter.into(),
        op,
    };
    Txn::new(z(counter), cmd)
}

/// The session of a FOLLOWERINFO to n1 in `fx`, if any.
fn follower_info(fx: &Fx) -> Option<u64> {
    fx.sends.iter().find_map(|e| match e.msg {
        Message::FollowerInfo { session, .. } if e.to == n(1) => Some(session),
        _ => None,
    })
}

/// n3, following n1.
struct Lone {
    x: ZabNode,
    now: Time,
    /// The session of its latest FOLLOWERINFO.
    session: u64,
    next_client: u64,
}

impl Lone {
    /// Started, and taken by n1's leadership of election round 1 (n1 `Leading`, n2
    /// `Following`): it sent FOLLOWERINFO (the handshake's first attempt, at `now`).
    fn joined() -> Lone {
        Lone::joined_with(|_| {})
    }

    /// [`Lone::joined`] with `tweak` applied to its configuration.
    fn joined_with(tweak: impl FnOnce(&mut ZabConfig)) -> Lone {
        let mut cfg = ZabConfig::lan(n(3), (1..=3).map(n), 3);
        tweak(&mut cfg);
        let mut x = ZabNode::new(cfg);
        let now = Time::ZERO + ms(1000);
        x.on_start(now, Recovered::default(), &mut Fx::new());
        let mut fx = Fx::new();
        for (from, state) in [(1, PeerState::Leading), (2, PeerState::Following)] {
            x.on_message(now, n(from), round_one(1, state), &mut fx);
        }
        assert_eq!(x.leader(), Some(n(1)), "n3 follows n1");
        let session = follower_info(&fx).expect("a FOLLOWERINFO");
        Lone {
            x,
            now,
            session,
            next_client: 1,
        }
    }

    /// [`Lone::joined`], then LEADERINFO of epoch 1: n3 acknowledged it and waits
    /// for NEWLEADER.
    fn syncing() -> Lone {
        let mut l = Lone::joined();
        let fx = l.leader_info();
        assert!(matches!(sends_to(&fx, 1)[..], [Message::AckEpoch { .. }]));
        l
    }

    /// [`Lone::syncing`], then NEWLEADER with transactions `(1, 1..=last)`: n3
    /// acknowledged it.
    fn synced(last: u32) -> Lone {
        let mut l = Lone::syncing();
        let fx = l.new_leader(l.session, last);
        assert!(matches!(
            sends_to(&fx, 1)[..],
            [Message::AckNewLeader { .. }]
        ));
        assert!(l.x.is_synced_follower());
        l
    }

    /// [`Lone::synced`], then UPTODATE with `commit`.
    fn up_to_date(last: u32, commit: Zxid) -> Lone {
        let mut l = Lone::synced(last);
        l.msg(1, Message::UpToDate { epoch: E, commit });
        l
    }

    fn msg(&mut self, from: u64, m: Message) -> Fx {
        let mut fx = Fx::new();
        self.x.on_message(self.now, n(from), m, &mut fx);
        if let Some(s) = follower_info(&fx) {
            self.session = s;
        }
        fx
    }

    fn leader_info(&mut self) -> Fx {
        let session = self.session;
        self.msg(1, Message::LeaderInfo { session, epoch: E })
    }

    /// NEWLEADER of `session`: a DIFF from the empty history to `(1, 1..=last)`.
    fn new_leader(&mut self, session: u64, last: u32) -> Fx {
        let txns = (1..=last).map(txn).collect();
        let sync = Sync::Diff {
            keep: Zxid::ZERO,
            txns,
        };
        let m = Message::NewLeader {
            session,
            epoch: E,
            sync,
        };
        self.msg(1, m)
    }

    fn ping(&mut self, from: u64, commit: Zxid, sent: Zxid) -> Fx {
        let m = Message::Ping {
            epoch: E,
            commit,
            read_ctx: 1,
            sent,
            established: true,
        };
        self.msg(from, m)
    }

    /// The clock moves `d` on and the Tick timer fires.
    fn tick_after(&mut self, d: Duration) -> Fx {
        self.now += d;
        let mut fx = Fx::new();
        self.x.on_timer(self.now, ZabTimer::Tick, &mut fx);
        if let Some(s) = follower_info(&fx) {
            self.session = s;
        }
        fx
    }

    /// A client request to n3; returns the effects and the client.
    fn request(&mut self, op: Request) -> (Fx, ClientId) {
        let client = ClientId(self.next_client);
        self.next_client += 1;
        let mut fx = Fx::new();
        let req = ClientRequest { client, seq: 1, op };
        self.x.on_client_request(self.now, req, &mut fx);
        (fx, client)
    }

    /// The answer to a local read of `k1`.
    fn local_read(&mut self) -> Outcome<Response> {
        let op = Request::LocalQuery {
            query: "k1".into(),
            after: Zxid::ZERO,
        };
        let (fx, _) = self.request(op);
        let [reply] = &fx.replies[..] else {
            panic!("one answer: {:?}", fx.replies);
        };
        reply.outcome.clone()
    }
}

/// DSN §IV-B and ZooKeeper's `Learner.syncWithLeader`: a follower
/// serves clients only once UPTODATE says the epoch is established; UPTODATE raises
/// its commit point and it applies. Before it (acknowledged NEWLEADER, nothing
/// more) local reads are refused as "retry" and writes are not forwarded to a
/// leader that may never establish; without UPTODATE's commit point a follower
/// would serve nothing until the next PING.
#[test]
fn zab_4_2_a_follower_serves_clients_only_after_uptodate_and_applies_its_commit() {
    let mut l = Lone::synced(2);
    assert_eq!(
        l.local_read(),
        Outcome::Unavailable,
        "synced, not up to date"
    );
    let put = KvOp::Put {
        key: "w".into(),
        value: "1".into(),
    };
    let (fx, client) = l.request(Request::Command(put));
    assert!(sends_to(&fx, 1).is_empty(), "no write forwarded");
    assert_eq!(fx.replies.len(), 1);
    assert_eq!(fx.replies[0].client, client);
    assert_eq!(
        fx.replies[0].outcome,
        Outcome::NotLeader { leader: Some(n(1)) }
    );

    l.msg(
        1,
        Message::UpToDate {
            epoch: E,
            commit: z(1),
        },
    );
    assert_eq!((l.x.commit(), l.x.applied()), (z(1), Pos(1)));
    let read = Response::QueryOutput {
        output: Some("v".into()),
        zxid: z(1),
    };
    assert_eq!(l.local_read(), Outcome::Done(read));
}

/// UPTODATE is the last message of *this* handshake: it is taken only after our
/// NEWLEADER acknowledgement (phase `Synced`) and only for the epoch we synced
/// with. One taken earlier would make a follower whose history is not yet the
/// leader's serve reads and raise its commit point over its own, unsynced, tail;
/// one of another epoch vouches for a history we never synced with.
#[test]
fn zab_4_2_uptodate_is_taken_only_after_newleader_and_for_our_epoch() {
    let mut l = Lone::syncing();
    let early = Message::UpToDate {
        epoch: E,
        commit: z(2),
    };
    l.msg(1, early);
    assert_eq!(l.local_read(), Outcome::Unavailable, "before NEWLEADER");
    let fx = l.new_leader(l.session, 2);
    assert!(matches!(
        sends_to(&fx, 1)[..],
        [Message::AckNewLeader { .. }]
    ));
    let other = Message::UpToDate {
        epoch: Epoch(2),
        commit: Zxid::new(Epoch(2), 1),
    };
    l.msg(1, other);
    assert_eq!(l.local_read(), Outcome::Unavailable, "another epoch's");
    assert_eq!(l.x.commit(), Zxid::ZERO);
}

/// Zab's channels are between a follower and *its* leader (DSN §II, §IV): the
/// follower takes COMMIT, PING and the rest only from the leader it follows, and
/// only that leader's messages keep it following. Taking another server's — a
/// deposed leader, or a rival of the same epoch that never established — would let
/// it commit what its leader never committed, and keep a follower whose leader is
/// gone from ever looking again.
#[test]
fn zab_4_a_follower_hears_its_epoch_only_from_its_leader() {
    let mut l = Lone::synced(2);
    let fx = l.msg(
        2,
        Message::Commit {
            epoch: E,
            zxid: z(2),
        },
    );
    assert_eq!(l.x.commit(), Zxid::ZERO, "n2's COMMIT is not n1's");
    assert!(fx.sends.is_empty());
    l.now += ms(100);
    let fx = l.ping(2, z(2), z(2));
    assert!(sends_to(&fx, 2).is_empty(), "no PINGACK to n2");
    assert_eq!(l.x.commit(), Zxid::ZERO, "nor its commit point");
    // Nothing from n1 for `sync_timeout` (250 ms): n3 looks, whatever n2 says.
    l.tick_after(ms(160));
    assert!(l.x.is_looking(), "n1 went silent");
}

/// ZooKeeper's `initLimit`: the whole handshake, retries included, has
/// `init_timeout` (1 s) from its first attempt. While NEWLEADER is awaited, a tick
/// does not retry before `init_timeout / 2` (a NEWLEADER carrying a snapshot may be
/// slow: retrying sooner discards it), then retries once with a new session; and
/// the retry does not restart the deadline — else a leader that answers LEADERINFO
/// but never sends NEWLEADER would hold the follower forever.
#[test]
fn zab_4_2_a_handshake_retries_at_half_the_init_timeout_and_ends_at_it() {
    let mut l = Lone::syncing();
    let first = l.session;
    let fx = l.tick_after(ms(50));
    assert_eq!(follower_info(&fx), None, "no retry before init_timeout / 2");
    let fx = l.tick_after(ms(450));
    let retry = follower_info(&fx).expect("a retry at init_timeout / 2");
    assert!(retry > first, "a new session");
    let fx = l.leader_info();
    assert!(matches!(sends_to(&fx, 1)[..], [Message::AckEpoch { .. }]));
    let fx = l.tick_after(ms(450));
    assert_eq!(follower_info(&fx), None);
    assert!(!l.x.is_looking(), "950 ms into the handshake");
    l.tick_after(ms(50));
    assert!(
        l.x.is_looking(),
        "init_timeout after the first attempt, not the retry"
    );
}

/// A new handshake — a synced follower that missed a proposal and asks to be
/// synced again, as ZooKeeper's follower reconnects — gets its own `init_timeout`:
/// the deadline runs from *its* first attempt, not from when the follower first
/// joined this leader. Otherwise a follower that has followed for longer than
/// `init_timeout` would give up on a healthy leader at the first tick after any
/// lost proposal.
#[test]
fn zab_4_3_a_resync_after_a_lost_proposal_has_its_own_init_timeout() {
    let mut l = Lone::up_to_date(2, z(2));
    for _ in 0..15 {
        l.now += ms(100);
        let fx = l.ping(1, z(2), z(2));
        assert!(matches!(sends_to(&fx, 1)[..], [Message::PingAck { .. }]));
    }
    let before = l.session;
    // (1, 3..=5) were lost: (1, 6) names (1, 5) as its predecessor.
    let gap = Message::Propose {
        epoch: E,
        prev: z(5),
        txns: vec![txn(6)],
        commit: z(2),
    };
    let fx = l.msg(1, gap);
    assert!(
        follower_info(&fx).is_some_and(|s| s > before),
        "a new handshake"
    );
    l.tick_after(ms(50));
    assert!(!l.x.is_looking(), "the new handshake is 50 ms old");
    assert_eq!(l.x.leader(), Some(n(1)));
}

/// NEWLEADER names its handshake's session (as LEADERINFO does): a NEWLEADER
/// of an earlier handshake of the same epoch was planned from the history the
/// follower had then. Applying it could truncate what the follower received and
/// committed since, and its acknowledgement would vouch for a history the leader
/// no longer planned.
#[test]
fn zab_4_2_a_newleader_of_an_earlier_handshake_is_ignored() {
    let mut l = Lone::syncing();
    let first = l.session;
    l.tick_after(ms(500)); // the retry
    assert!(l.session > first);
    l.leader_info();
    let fx = l.new_leader(first, 1);
    assert!(sends_to(&fx, 1).is_empty(), "no acknowledgement");
    assert!(fx.persist.is_empty(), "nothing written");
    assert!(!l.x.is_synced_follower());
    let fx = l.new_leader(l.session, 2);
    assert!(matches!(
        sends_to(&fx, 1)[..],
        [Message::AckNewLeader { session, .. }] if *session == l.session
    ));
    assert_eq!(l.x.log().last_zxid(), z(2));
}

/// FIFO channels (DSN §II) are not assumed: a PROPOSAL batch that overlaps what the
/// follower holds (a duplicate delivered after a later one, or a resend) appends
/// exactly the transactions after its last, and is acknowledged cumulatively; a
/// batch it holds entirely appends nothing and is acknowledged again. Appending
/// from the wrong place would put a transaction twice in the history (the log's
/// order assert) or skip one.
#[test]
fn zab_4_3_an_overlapping_proposal_appends_only_what_is_new() {
    let mut l = Lone::up_to_date(2, z(2));
    let overlap = Message::Propose {
        epoch: E,
        prev: z(1),
        txns: vec![txn(2), txn(3)],
        commit: z(2),
    };
    let fx = l.msg(1, overlap);
    let zxids: Vec<Zxid> = (1..=3)
        .map(|p| l.x.log().zxid_at(Pos(p)).expect("held"))
        .collect();
    assert_eq!(zxids, vec![z(1), z(2), z(3)]);
    assert_eq!(l.x.log().last_pos(), Pos(3));
    let ack = Message::Ack {
        epoch: E,
        zxid: z(3),
    };
    assert_eq!(sends_to(&fx, 1), vec![&ack]);
    let dup = Message::Propose {
        epoch: E,
        prev: z(1),
        txns: vec![txn(2)],
        commit: z(2),
    };
    let fx = l.msg(1, dup);
    assert_eq!(l.x.log().last_pos(), Pos(3));
    assert!(fx.persist.is_empty());
    assert_eq!(sends_to(&fx, 1), vec![&ack], "acknowledged again");
}

/// Proposals that reach a follower before its NEWLEADER (an overtaken or late
/// one) are not appended nor acknowledged: they will be in the sync, and before
/// NEWLEADER the follower's history is not yet known to be a prefix of the
/// leader's, so its acknowledgement would vouch for nothing the leader planned.
#[test]
fn zab_4_2_a_proposal_before_newleader_is_not_taken() {
    let mut l = Lone::syncing();
    let early = Message::Propose {
        epoch: E,
        prev: Zxid::ZERO,
        txns: vec![txn(1)],
        commit: Zxid::ZERO,
    };
    let fx = l.msg(1, early);
    assert!(sends_to(&fx, 1).is_empty(), "no ACK");
    assert!(fx.persist.is_empty(), "nothing written");
    assert_eq!(l.x.log().last_zxid(), Zxid::ZERO);
}

/// DSN §IV-C: COMMIT of a transaction of our epoch, from our leader, once synced,
/// commits it (and everything before it) and the follower applies, in order. A
/// COMMIT of another epoch — our leader re-elected into a later one, while we are
/// still synced with the earlier — is ignored: our history need not be a prefix of
/// the later epoch's, and committing up to it would commit our own tail, which the
/// new epoch may have truncated.
#[test]
fn zab_4_3_commit_commits_only_within_our_synced_epoch() {
    let mut l = Lone::synced(2);
    l.msg(
        1,
        Message::Commit {
            epoch: Epoch(2),
            zxid: Zxid::new(Epoch(2), 5),
        },
    );
    assert_eq!(l.x.commit(), Zxid::ZERO, "another epoch's COMMIT");
    l.msg(
        1,
        Message::Commit {
            epoch: E,
            zxid: z(1),
        },
    );
    assert_eq!((l.x.commit(), l.x.applied()), (z(1), Pos(1)));
    l.msg(
        1,
        Message::Commit {
            epoch: E,
            zxid: z(2),
        },
    );
    assert_eq!((l.x.commit(), l.x.applied()), (z(2), Pos(2)));
}

/// A PING says how far the leader's proposals to us reached (`sent`): a synced
/// follower holding less lost a proposal, which nothing would resend, so it starts
/// a new handshake (ZooKeeper's reconnect) instead of answering; one holding all of
/// it answers PINGACK. Without this a follower whose last proposal was lost never
/// acknowledges it, and stops counting toward commits.
#[test]
fn zab_4_3_a_ping_showing_a_lost_proposal_starts_a_new_handshake() {
    let mut l = Lone::up_to_date(2, z(2));
    let fx = l.ping(1, z(2), z(2));
    assert!(matches!(sends_to(&fx, 1)[..], [Message::PingAck { .. }]));
    let before = l.session;
    let fx = l.ping(1, z(2), z(3));
    assert!(matches!(
        sends_to(&fx, 1)[..],
        [Message::FollowerInfo { session, .. }] if *session > before
    ));
}

/// ZooKeeper's followers forward writes to the leader and answer them once
/// applied. A follower that stops following (its leader went silent) cannot know
/// whether those writes will commit: it answers each forwarded client `Unknown`
/// (the client retries with the same seq, which the session table makes safe)
/// rather than leaving it waiting for an answer that will never come.
#[test]
fn zookeeper_a_follower_leaving_its_leader_answers_forwarded_writes_unknown() {
    let mut l = Lone::up_to_date(2, z(2));
    let put = KvOp::Put {
        key: "w".into(),
        value: "1".into(),
    };
    let (fx, client) = l.request(Request::Command(put));
    assert!(matches!(sends_to(&fx, 1)[..], [Message::Forward { .. }]));
    assert!(fx.replies.is_empty(), "answered once applied");
    let fx = l.tick_after(ms(260));
    assert!(l.x.is_looking(), "n1 went silent");
    let answers: Vec<_> = (fx.replies.iter().chain(&fx.early_replies))
        .map(|r| (r.client, r.seq, r.outcome.clone()))
        .collect();
    assert_eq!(answers, vec![(client, 1, Outcome::Unknown)]);
}

/// ZooKeeper's followers forward a client's write to the leader (REQUEST) and
/// answer the client themselves once they apply its transaction — in commit order,
/// with the transaction's zxid, which the client keeps as its `lastZxid`. Without
/// that answer a client that stays on its follower waits until it times out, and
/// retries a write that had committed.
#[test]
fn zookeeper_a_follower_answers_a_forwarded_write_once_it_applies_it() {
    let mut l = Lone::up_to_date(2, z(2));
    let put = KvOp::Put {
        key: "w".into(),
        value: "1".into(),
    };
    let (fx, client) = l.request(Request::Command(put.clone()));
    assert!(matches!(sends_to(&fx, 1)[..], [Message::Forward { .. }]));
    let cmd = SessionCommand {
        client,
        seq: 1,
        op: put,
    };
    let proposal = Message::Propose {
        epoch: E,
        prev: z(2),
        txns: vec![Txn::new(z(3), cmd)],
        commit: z(2),
    };
    let fx = l.msg(1, proposal);
    assert!(
        fx.replies.is_empty() && fx.early_replies.is_empty(),
        "not committed"
    );
    let fx = l.msg(
        1,
        Message::Commit {
            epoch: E,
            zxid: z(3),
        },
    );
    let written = Response::Output {
        output: synod_core::KvResult::Written,
        zxid: z(3),
    };
    let answers: Vec<_> = (fx.replies.iter().chain(&fx.early_replies))
        .map(|r| (r.client, r.seq, r.outcome.clone()))
        .collect();
    assert_eq!(answers, vec![(client, 1, Outcome::Done(written))]);
}

/// ZooKeeper's `snapCount`: a server snapshots its state every
/// `snapshot_threshold` applied transactions — not before, not at every one — and
/// compacts its log behind the snapshot, keeping the last `snapshot_trailing`
/// transactions so that a follower just behind still gets a DIFF rather than a
/// SNAP. Never snapshotting grows the log (and recovery) without bound;
/// snapshotting at every transaction writes the whole state each time.
#[test]
fn zookeeper_snap_count_a_server_snapshots_every_threshold_applied_transactions() {
    let mut l = Lone::joined_with(|c| {
        c.snapshot_threshold = 4;
        c.snapshot_trailing = 1;
    });
    l.leader_info();
    l.new_leader(l.session, 8);
    let commit = |l: &mut Lone, c| {
        let m = Message::Commit {
            epoch: E,
            zxid: z(c),
        };
        l.msg(1, m);
        (l.x.applied(), l.x.log().base())
    };
    assert_eq!(commit(&mut l, 3), (Pos(3), (Pos(0), Zxid::ZERO)), "3 of 4");
    assert_eq!(
        commit(&mut l, 4),
        (Pos(4), (Pos(3), z(3))),
        "a snapshot at 4, one transaction kept"
    );
    assert_eq!(commit(&mut l, 7), (Pos(7), (Pos(3), z(3))), "3 since");
    assert_eq!(commit(&mut l, 8), (Pos(8), (Pos(7), z(7))), "the next at 8");
}
