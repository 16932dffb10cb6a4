//! The leader's side of discovery, synchronisation and broadcast (DSN 2011 §IV;
//! ZooKeeper's `Leader` and `LearnerHandler`), one server driven by hand: n1 of
//! {n1, n2, n3}, elected by n2's vote, fed exactly the messages, durability
//! confirmations (`on_persisted`) and timer firings of one pattern.

mod by_hand;
use by_hand::*;
use std::time::Duration;
use synod_core::{
    ClientId, ClientRequest, KvOp, KvResult, Node, Outcome, Recovered, SessionCommand, Time,
};
use synod_testkit::{ms, n};
use synod_zab::{
    Epoch, HistorySummary, Message, Notification, PeerState, Request, Response, TxnLog, Vote,
    ZabConfig, ZabNode, ZabTimer, Zxid,
};

fn empty_history() -> HistorySummary {
    TxnLog::<()>::default().summary()
}

fn answers(fx: &Fx) -> Vec<(ClientId, Outcome<Response>)> {
    (fx.replies.iter().chain(&fx.early_replies))
        .map(|r| (r.client, r.outcome.clone()))
        .collect()
}

fn put(key: &str) -> Request {
    Request::Command(KvOp::Put {
        key: key.into(),
        value: "v".into(),
    })
}

/// n1, leading.
struct Lone {
    x: ZabNode,
    now: Time,
    /// Persist notifications of batches not yet confirmed durable.
    writing: Vec<u64>,
    next_client: u64,
}

impl Lone {
    /// Started; n2 votes for it in round 1 and the finalize wait passes: it leads,
    /// with no FOLLOWERINFO yet. Returns the effects of deciding.
    fn elected() -> (Lone, Fx) {
        Lone::elected_of(3)
    }

    /// [`Lone::elected`] in an ensemble of `size` voters (n2 ..= n(size/2 + 1) vote
    /// for n1).
    fn elected_of(size: u64) -> (Lone, Fx) {
        let mut x = ZabNode::new(ZabConfig::lan(n(1), (1..=size).map(n), 1));
        let now = Time::ZERO + ms(1000);
        x.on_start(now, Recovered::default(), &mut Fx::new());
        for from in 2..=size / 2 + 1 {
            let note = round_one(1, PeerState::Looking);
            x.on_message(now, n(from), note, &mut Fx::new());
        }
        let mut fx = Fx::new();
        x.on_timer(now, ZabTimer::Finalize, &mut fx);
        assert!(x.is_leader(), "n1 leads");
        let l = Lone {
            x,
            now,
            writing: Vec::new(),
            next_client: 1,
        };
        (l, fx)
    }

    fn record(&mut self, fx: &Fx) {
        self.writing.extend(fx.persist_notify);
    }

    fn msg(&mut self, from: u64, m: Message) -> Fx {
        let mut fx = Fx::new();
        self.x.on_message(self.now, n(from), m, &mut fx);
        self.record(&fx);
        fx
    }

    /// Every batch written so far is durable (not those this makes it write).
    fn durable(&mut self) -> Fx {
        let mut fx = Fx::new();
        for tag in std::mem::take(&mut self.writing) {
            self.x.on_persisted(self.now, tag, &mut fx);
        }
        self.record(&fx);
        fx
    }

    fn follower_info(&mut self, from: u64, session: u64, accepted_epoch: Epoch) -> Fx {
        let m = Message::FollowerInfo {
            session,
            accepted_epoch,
            history: empty_history(),
            observer: false,
        };
        self.msg(from, m)
    }

    fn ack_epoch(&mut self, from: u64, session: u64) -> Fx {
        let m = Message::AckEpoch {
            session,
            epoch: E,
            promised: true,
            current_epoch: Epoch(0),
            history: empty_history(),
        };
        self.msg(from, m)
    }

    fn ack_new_leader(&mut self, from: u64, session: u64) -> Fx {
        self.msg(from, Message::AckNewLeader { session, epoch: E })
    }

    /// [`Lone::elected`], then n2's handshake (session 10) with every write of n1
    /// durable: epoch 1 is established.
    fn established() -> Lone {
        let (mut l, _) = Lone::elected();
        l.follower_info(2, 10, Epoch(0));
        l.durable();
        l.ack_epoch(2, 10);
        l.durable();
        l.ack_new_leader(2, 10);
        assert_eq!(l.x.established_epoch(), Some(E));
        l
    }

    fn request(&mut self, op: Request) -> (Fx, ClientId) {
        let client = ClientId(self.next_client);
        self.next_client += 1;
        let mut fx = Fx::new();
        let req = ClientRequest { client, seq: 1, op };
        self.x.on_client_request(self.now, req, &mut fx);
        self.record(&fx);
        (fx, client)
    }

    fn tick_after(&mut self, d: Duration) -> Fx {
        self.now += d;
        let mut fx = Fx::new();
        self.x.on_timer(self.now, ZabTimer::Tick, &mut fx);
        self.record(&fx);
        fx
    }
}

/// DSN §IV-A: the prospective leader proposes a new epoch only once it
/// has FOLLOWERINFO from a quorum (itself included), and the epoch is above every
/// `acceptedEpoch` they report. Fixing one from its own state alone could pick an
/// epoch a follower already accepted (or passed): that follower must refuse it, and
/// the leader's discovery never completes.
#[test]
fn zab_4_1_the_new_epoch_waits_for_a_quorum_and_exceeds_its_accepted_epochs() {
    let (mut l, fx) = Lone::elected();
    assert!(
        fx.sends
            .iter()
            .all(|e| !matches!(e.msg, Message::LeaderInfo { .. })),
        "no epoch from n1 alone"
    );
    assert_eq!(l.x.accepted_epoch(), Epoch(0));
    // n2 accepted epoch 5 from some earlier leader.
    let fx = l.follower_info(2, 10, Epoch(5));
    let info = Message::LeaderInfo {
        session: 10,
        epoch: Epoch(6),
    };
    assert_eq!(sends_to(&fx, 2), vec![&info]);
    assert_eq!(l.x.accepted_epoch(), Epoch(6), "accepted by n1 itself");
}

/// DSN §IV-A: the leader is one of the quorum that accepted the new epoch only once
/// its own `acceptedEpoch` is durable; a follower's ACKEPOCH before that is not yet
/// a quorum with it, and synchronisation (persisting `currentEpoch`, NEWLEADER)
/// waits. Counting itself early would let a leader that crashes before its write
/// lands restart without the promise it counted.
#[test]
fn zab_4_1_the_leader_counts_its_own_epoch_promise_once_durable() {
    let (mut l, _) = Lone::elected();
    l.follower_info(2, 10, Epoch(0));
    let fx = l.ack_epoch(2, 10);
    assert!(sends_to(&fx, 2).is_empty(), "no NEWLEADER yet");
    assert_eq!(l.x.current_epoch(), Epoch(0));
    assert_eq!(l.x.syncing_epoch(), None);
    let fx = l.durable();
    assert!(matches!(
        sends_to(&fx, 2)[..],
        [Message::NewLeader {
            session: 10,
            epoch: E,
            ..
        }]
    ));
    assert_eq!(l.x.current_epoch(), E);
    assert_eq!(l.x.syncing_epoch(), Some(E), "its initial history is fixed");
    assert_eq!(l.x.established_epoch(), None);
}

/// DSN §IV-B: the epoch is established once a quorum acknowledged
/// NEWLEADER — the leader among them only once its own `currentEpoch` is durable —
/// and UPTODATE then goes to the followers that acknowledged it, and to no
/// follower still in an earlier step of its handshake (it could not take it; the
/// synced ones would wait for a PING to learn the epoch is established). Before
/// that, the leader proposes nothing: client commands are refused as unavailable
/// (broadcast starts only in an established epoch, DSN §IV-C).
#[test]
fn zab_4_2_a_quorum_of_durable_newleader_acks_establishes_and_uptodate_goes_to_the_synced() {
    let (mut l, _) = Lone::elected();
    l.follower_info(2, 10, Epoch(0));
    l.follower_info(3, 30, Epoch(0)); // n3 never gets further
    l.durable();
    l.ack_epoch(2, 10);
    let fx = l.ack_new_leader(2, 10);
    assert_eq!(
        l.x.established_epoch(),
        None,
        "n1's currentEpoch is not durable"
    );
    assert!(sends_to(&fx, 2).is_empty());
    let (fx, client) = l.request(put("early"));
    let refused: Vec<_> = answers(&fx);
    assert_eq!(
        refused,
        vec![(client, Outcome::Unavailable)],
        "not broadcasting yet"
    );
    assert_eq!(l.x.log().last_zxid(), Zxid::ZERO);
    let fx = l.durable();
    assert_eq!(l.x.established_epoch(), Some(E));
    let uptodate = Message::UpToDate {
        epoch: E,
        commit: Zxid::ZERO,
    };
    assert_eq!(sends_to(&fx, 2), vec![&uptodate]);
    assert!(
        sends_to(&fx, 3)
            .iter()
            .all(|m| !matches!(m, Message::UpToDate { .. })),
        "n3 has not synced"
    );
}

/// FOLLOWERINFO, ACKEPOCH and the NEWLEADER acknowledgement name the follower's
/// handshake (its session), and the leader ignores those of an earlier one: a late
/// copy of an earlier FOLLOWERINFO must not restart the current handshake, and a
/// late acknowledgement of an earlier NEWLEADER vouches only for what *that*
/// NEWLEADER carried — taking it for the current one would count the follower as
/// holding a history it may not hold, toward establishing the epoch.
#[test]
fn zab_4_2_the_leader_ignores_the_answers_of_an_earlier_handshake() {
    let (mut l, _) = Lone::elected();
    l.follower_info(2, 10, Epoch(0));
    l.durable();
    l.ack_epoch(2, 10);
    l.durable(); // NEWLEADER of session 10 is out, n1's currentEpoch durable
                 // n2 starts over (session 20).
    let fx = l.follower_info(2, 20, Epoch(1));
    let info = Message::LeaderInfo {
        session: 20,
        epoch: E,
    };
    assert_eq!(sends_to(&fx, 2), vec![&info]);
    let fx = l.follower_info(2, 10, Epoch(0));
    assert!(fx.sends.is_empty(), "a late FOLLOWERINFO is not answered");
    let fx = l.ack_epoch(2, 20);
    assert!(matches!(
        sends_to(&fx, 2)[..],
        [Message::NewLeader { session: 20, .. }]
    ));
    l.ack_new_leader(2, 10);
    assert_eq!(l.x.established_epoch(), None, "session 10's ack");
    l.ack_new_leader(2, 20);
    assert_eq!(l.x.established_epoch(), Some(E));
}

/// A leader that loses its quorum (DSN §IV-C: it stops leading when it no longer
/// hears from a quorum) cannot tell whether its uncommitted transactions will
/// commit, nor confirm its pending reads: it answers those clients `Unknown` and
/// `NotLeader` as it steps down, instead of leaving them waiting forever.
#[test]
fn zookeeper_a_deposed_leader_answers_its_pending_clients() {
    let mut l = Lone::established();
    let (_, writer) = l.request(put("k"));
    let (fx, reader) = l.request(Request::Query("k".into()));
    assert!(
        answers(&fx).is_empty(),
        "the read awaits a quorum's PINGACK"
    );
    // n2 silent for `sync_timeout` (250 ms): as on the follower's side, that much
    // silence is too much.
    let fx = l.tick_after(ms(250));
    assert!(l.x.is_looking(), "lost the quorum");
    let mut got = answers(&fx);
    got.sort_by_key(|(c, _)| c.0);
    assert_eq!(
        got,
        vec![
            (writer, Outcome::Unknown),
            (reader, Outcome::NotLeader { leader: None }),
        ]
    );
}

/// DSN §IV-C: transactions commit and are delivered in zxid order, and each client
/// is answered when its own transaction is applied — also when an earlier
/// transaction of the batch is one no client of ours waits for (a write a follower
/// forwarded, which that follower answers). Passing over the earlier one must not
/// drop the later client.
#[test]
fn zab_4_3_a_client_is_answered_when_its_transaction_applies_after_a_forwarded_one() {
    let mut l = Lone::established();
    let forwarded = SessionCommand {
        client: ClientId(77),
        seq: 1,
        op: KvOp::Put {
            key: "f".into(),
            value: "v".into(),
        },
    };
    l.msg(
        2,
        Message::Forward {
            cmds: vec![forwarded],
        },
    );
    let (_, client) = l.request(put("k"));
    l.durable();
    let fx = l.msg(
        2,
        Message::Ack {
            epoch: E,
            zxid: Zxid::new(E, 2),
        },
    );
    assert_eq!(l.x.commit(), Zxid::new(E, 2));
    let written = Response::Output {
        output: KvResult::Written,
        zxid: Zxid::new(E, 2),
    };
    assert_eq!(answers(&fx), vec![(client, Outcome::Done(written))]);
}

/// The leader's relaxation of persist-before-send (DSN §IV-C: the leader's own copy
/// is one of the quorum's acknowledgements, not a precondition of proposing): a
/// PROPOSAL to a synced follower leaves at once, while the leader writes its copy
/// in parallel and counts itself only once that write is confirmed. To a follower
/// still syncing it is an ordinary send, queued behind that follower's NEWLEADER,
/// which it must not overtake. Losing the early path costs a disk write's latency
/// on every commit.
#[test]
fn zab_4_3_proposals_to_synced_followers_leave_before_the_leaders_own_write() {
    let (mut l, _) = Lone::elected();
    l.follower_info(2, 10, Epoch(0));
    l.follower_info(3, 30, Epoch(0));
    l.durable();
    l.ack_epoch(2, 10);
    l.ack_epoch(3, 30);
    l.durable();
    l.ack_new_leader(2, 10); // n3's NEWLEADER is still unacknowledged
    assert_eq!(l.x.established_epoch(), Some(E));
    let (fx, _) = l.request(put("k"));
    let is_propose = |e: &&synod_core::Envelope<Message>, to: u64| {
        e.to == n(to) && matches!(e.msg, Message::Propose { .. })
    };
    assert_eq!(
        fx.early_sends.iter().filter(|e| is_propose(e, 2)).count(),
        1
    );
    assert_eq!(fx.sends.iter().filter(|e| is_propose(e, 2)).count(), 0);
    assert_eq!(
        fx.early_sends.iter().filter(|e| is_propose(e, 3)).count(),
        0
    );
    assert_eq!(fx.sends.iter().filter(|e| is_propose(e, 3)).count(), 1);
    assert!(
        fx.persist_notify.is_some(),
        "the leader's own write is tracked"
    );
    assert_eq!(
        l.x.commit(),
        Zxid::ZERO,
        "not committed before it is durable"
    );
}

/// Linearizable reads (Raft's ReadIndex, thesis §6.4, over Zab's PINGs): the leader
/// notes its commit point, and answers only once a quorum — itself and a majority
/// of the voters with it — acknowledged a PING of a round started *after* the read
/// arrived, and that point is applied. A PINGACK of an earlier round, or too few of
/// them, proves nothing: a deposed leader that answered would return a stale state
/// while a newer leader commits writes.
#[test]
fn zab_reads_a_read_is_answered_only_once_a_quorum_confirmed_a_later_ping_round() {
    let ping_ack = |read_ctx| Message::PingAck {
        epoch: E,
        read_ctx,
        synced: Some(10),
        last: Zxid::ZERO,
    };
    let nothing = Response::QueryOutput {
        output: None,
        zxid: Zxid::ZERO,
    };
    let mut l = Lone::established();
    let (fx, reader) = l.request(Request::Query("k".into()));
    assert!(answers(&fx).is_empty(), "not confirmed yet");
    let round = match sends_to(&fx, 2)[..] {
        [Message::Ping { read_ctx, .. }] => *read_ctx,
        ref other => panic!("one PING to n2: {other:?}"),
    };
    assert!(round > 0, "a new round for the read");
    let fx = l.msg(2, ping_ack(round - 1));
    assert!(answers(&fx).is_empty(), "an earlier round's PINGACK");
    let fx = l.msg(2, ping_ack(round));
    assert_eq!(answers(&fx), vec![(reader, Outcome::Done(nothing.clone()))]);

    // Five voters: n1 with n2 is not a quorum, n1 with n2 and n3 is.
    let (mut l, _) = Lone::elected_of(5);
    for (from, session) in [(2, 10), (3, 30)] {
        l.follower_info(from, session, Epoch(0));
    }
    l.durable();
    l.ack_epoch(2, 10);
    l.ack_epoch(3, 30);
    l.durable();
    l.ack_new_leader(2, 10);
    l.ack_new_leader(3, 30);
    assert_eq!(l.x.established_epoch(), Some(E));
    let (_, reader) = l.request(Request::Query("k".into()));
    let fx = l.msg(2, ping_ack(1));
    assert!(answers(&fx).is_empty(), "two of five");
    let ack3 = Message::PingAck {
        epoch: E,
        read_ctx: 1,
        synced: Some(30),
        last: Zxid::ZERO,
    };
    let fx = l.msg(3, ack3);
    assert_eq!(answers(&fx), vec![(reader, Outcome::Done(nothing))]);
}

/// A read is answered from a state at or after the commit point noted when it
/// arrived (ReadIndex): transactions committed and applied while its confirmation
/// is under way make the answer only fresher, and must not hold the read back.
#[test]
fn zab_reads_a_read_is_answered_once_its_commit_point_is_applied_even_if_more_was() {
    let mut l = Lone::established();
    let (_, reader) = l.request(Request::Query("k".into()));
    let (_, writer) = l.request(put("k"));
    l.durable();
    let ack = Message::Ack {
        epoch: E,
        zxid: Zxid::new(E, 1),
    };
    let fx = l.msg(2, ack);
    assert_eq!(answers(&fx).len(), 1, "the write");
    assert_eq!(answers(&fx)[0].0, writer);
    let ping_ack = Message::PingAck {
        epoch: E,
        read_ctx: 1,
        synced: Some(10),
        last: Zxid::new(E, 1),
    };
    let fx = l.msg(2, ping_ack);
    let read = Response::QueryOutput {
        output: Some("v".into()),
        zxid: Zxid::new(E, 1),
    };
    assert_eq!(answers(&fx), vec![(reader, Outcome::Done(read))]);
}

/// PING carries `sent`, the last transaction the leader sent each synced follower
/// (its NEWLEADER or PROPOSALs): a follower holding less lost a proposal, which no
/// one would otherwise resend, and resyncs (`follower.rs`'s side of the rule).
/// A PING saying less than was sent hides the loss, and that follower never
/// acknowledges again.
#[test]
fn zab_4_3_a_ping_tells_a_synced_follower_how_far_its_proposals_reached() {
    let mut l = Lone::established();
    let (fx, _) = l.request(put("k"));
    assert_eq!(sends_to(&fx, 2).len(), 1, "a PROPOSAL, lost on the way");
    let fx = l.tick_after(ms(50));
    let sent: Vec<Zxid> = (sends_to(&fx, 2).into_iter())
        .filter_map(|m| match m {
            Message::Ping { sent, .. } => Some(*sent),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![Zxid::new(E, 1)]);
}

/// ZooKeeper's `initLimit` on the leader's side: a prospective leader that has not
/// established its epoch within `init_timeout` of being elected gives up and looks
/// again (a quorum may never come: it may not be the leader the others elected),
/// but not sooner — discovery and synchronisation need their round trips and
/// durable writes.
#[test]
fn zab_4_a_leader_gives_up_if_its_epoch_is_not_established_within_init_timeout() {
    let (mut l, _) = Lone::elected();
    l.follower_info(2, 10, Epoch(0)); // and then nothing more
    l.tick_after(ms(50));
    assert!(l.x.is_leader(), "50 ms into the epoch");
    l.tick_after(ms(900));
    assert!(l.x.is_leader(), "950 ms into the epoch");
    l.tick_after(ms(50));
    assert!(l.x.is_looking(), "init_timeout passed unestablished");
}

/// ZooKeeper's `syncedAckSet`: an established leader keeps leading while a quorum
/// is in sync with it — counting followers in a handshake for less than
/// `init_timeout` (a follower that starts over after a lost proposal). Counting
/// only synced ones would let any lost proposal to the follower of a minimal quorum
/// depose a healthy leader; counting handshakes of any age would keep a leader
/// whose quorum can commit nothing.
#[test]
fn zab_4_3_a_follower_restarting_its_handshake_does_not_depose_the_leader() {
    let mut l = Lone::established();
    for _ in 0..3 {
        l.now += ms(100);
        let ping_ack = Message::PingAck {
            epoch: E,
            read_ctx: 0,
            synced: Some(10),
            last: Zxid::ZERO,
        };
        l.msg(2, ping_ack);
        l.tick_after(Duration::ZERO);
        assert!(l.x.is_leader());
    }
    // n2 lost a proposal and starts over.
    let fx = l.follower_info(2, 20, Epoch(1));
    assert!(matches!(
        sends_to(&fx, 2)[..],
        [Message::LeaderInfo { session: 20, .. }]
    ));
    l.tick_after(ms(100));
    assert!(l.x.is_leader(), "n2 is 100 ms into its new handshake");
    assert_eq!(l.x.established_epoch(), Some(E));
    // n2 stays alive but never finishes (it resends FOLLOWERINFO): once its
    // handshake is `init_timeout` old it no longer counts, and n1 alone is no quorum.
    for _ in 0..8 {
        l.now += ms(100);
        l.follower_info(2, 20, Epoch(1));
        l.tick_after(Duration::ZERO);
        assert!(l.x.is_leader(), "within init_timeout");
    }
    l.now += ms(100);
    l.follower_info(2, 20, Epoch(1));
    l.tick_after(Duration::ZERO);
    assert!(l.x.is_looking(), "n2's handshake is init_timeout old");
}

/// The leader's own durability is tracked by persist notifications, one tag per
/// batch, never reused: a notification of a batch written while it led before —
/// arriving late, after it lost its quorum and was elected again — must not pass
/// for the new `acceptedEpoch` write (DSN §IV-A: it counts its own promise only
/// once durable). Reusing a tag would let the leader count a promise a crash could
/// still lose.
#[test]
fn zab_4_1_a_late_notification_of_an_earlier_batch_does_not_confirm_the_new_epoch() {
    let mut l = Lone::established();
    l.request(put("k"));
    let old = l.writing.pop().expect("the write's batch is tracked");
    l.tick_after(ms(250));
    assert!(l.x.is_looking(), "lost the quorum");
    // Elected again, in election round 2, with its history (1, 1) and epoch 1.
    let vote = Vote {
        leader: n(1),
        zxid: Zxid::new(E, 1),
        peer_epoch: E,
    };
    let note = Notification {
        vote,
        election_epoch: 2,
        state: PeerState::Looking,
    };
    l.msg(2, Message::Notification(note));
    let mut fx = Fx::new();
    l.x.on_timer(l.now, ZabTimer::Finalize, &mut fx);
    assert!(l.x.is_leader(), "n1 leads again");
    let fx = l.follower_info(2, 40, E);
    let new = fx.persist_notify.expect("the new acceptedEpoch's batch");
    assert_ne!(new, old, "one tag per batch");
    assert_eq!(l.x.accepted_epoch(), Epoch(2));
    // The old batch's notification arrives now; then n2 promises epoch 2.
    let mut fx = Fx::new();
    l.x.on_persisted(l.now, old, &mut fx);
    let ack = Message::AckEpoch {
        session: 40,
        epoch: Epoch(2),
        promised: true,
        current_epoch: E,
        history: empty_history(),
    };
    let fx = l.msg(2, ack);
    assert!(
        sends_to(&fx, 2).is_empty(),
        "no NEWLEADER: epoch 2 is not durable at n1"
    );
    assert_eq!(l.x.syncing_epoch(), None);
}
