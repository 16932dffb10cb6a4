//! A bank ledger replicated by Raft: your own application over `synod-raft`, three
//! nodes talking TCP on loopback, each with its own file WAL.
//!
//! The ledger is an ordinary Rust type implementing [`StateMachine`]: its commands
//! (open an account, transfer between accounts), what they return, and a read
//! (an account's balance). Raft replicates the commands through its log, applies each
//! exactly once per `(client, seq)` (a retried transfer is not paid twice), and
//! serves balance reads by ReadIndex, linearizably, without writing to the log.
//!
//! Run it with `cargo run -p synod-raft --example bank`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use synod_core::{ClientId, NodeId, StateMachine};
use synod_raft::{RaftConfig, RaftNode, Request, Response};
use synod_runtime::client::ClientOf;
use synod_runtime::node::{self, Member, NodeConfig, StorageChoice};
use synod_runtime::wal::SyncMode;

/// The application: balances by account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    balances: BTreeMap<String, u64>,
}

/// A command of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Opens `account` with `deposit` in it.
    Open { account: String, deposit: u64 },
    /// Moves `amount` from `from` to `to`, if `from` holds it.
    Transfer {
        from: String,
        to: String,
        amount: u64,
    },
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Receipt {
    Done,
    Refused(String),
}

impl StateMachine for Ledger {
    type Command = Op;
    type Output = Receipt;
    /// An account.
    type Query = String;
    /// Its balance, if it exists.
    type QueryOutput = Option<u64>;

    fn apply(&mut self, op: &Op) -> Receipt {
        match op {
            Op::Open { account, .. } if self.balances.contains_key(account) => {
                Receipt::Refused(format!("{account} exists"))
            }
            Op::Open { account, deposit } => {
                self.balances.insert(account.clone(), *deposit);
                Receipt::Done
            }
            Op::Transfer { from, to, amount } => {
                let (Some(&have), true) = (self.balances.get(from), self.balances.contains_key(to))
                else {
                    return Receipt::Refused("no such account".into());
                };
                if have < *amount {
                    return Receipt::Refused(format!("{from} holds only {have}"));
                }
                *self.balances.get_mut(from).expect("checked") -= amount;
                *self.balances.get_mut(to).expect("checked") += amount;
                Receipt::Done
            }
        }
    }

    fn query(&self, account: &String) -> Option<u64> {
        self.balances.get(account).copied()
    }
}

/// Starts three Raft nodes replicating a [`Ledger`], runs transfers through them and
/// returns every account's final balance, read back from the cluster.
pub async fn run(
    dir: &std::path::Path,
) -> Result<BTreeMap<String, u64>, Box<dyn std::error::Error>> {
    let free = || TcpListener::bind("127.0.0.1:0")?.local_addr();
    let mut members = Vec::new();
    for id in 1..=3 {
        members.push(Member {
            id: NodeId(id),
            peer: free()?,
            client: free()?,
        });
    }
    let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
    let mut nodes = Vec::new();
    for m in &members {
        // The node: Raft replicating our Ledger, LAN timeouts, seeded jitter.
        let raft = RaftNode::<Ledger>::new(RaftConfig::lan(m.id, ids.iter().copied(), m.id.0));
        let config = NodeConfig {
            protocol: "raft".into(),
            id: m.id,
            members: members.clone(),
            cluster_id: "bank".into(),
            storage: StorageChoice::File {
                dir: dir.join(format!("node-{}", m.id.0)),
                sync: SyncMode::Fsync,
            },
            tls: None,
        };
        nodes.push(node::start(raft, config).await?);
    }

    // A client speaks the node's own request and response types.
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.client_addr).collect();
    let mut client = ClientOf::<RaftNode<Ledger>>::new(ClientId(1), addrs);
    let timeout = Duration::from_secs(10);
    let accounts = ["alice", "bob", "carol"];
    for account in accounts {
        let open = Op::Open {
            account: account.into(),
            deposit: 100,
        };
        client.call(Request::Command(open), timeout).await?;
    }
    let transfers = [("alice", "bob", 10); 3]
        .into_iter()
        .chain([("bob", "carol", 4); 5]);
    for (from, to, amount) in transfers {
        let transfer = Op::Transfer {
            from: from.into(),
            to: to.into(),
            amount,
        };
        let receipt = client.call(Request::Command(transfer), timeout).await?;
        assert_eq!(receipt, Response::Output(Receipt::Done));
    }
    let overdraft = Op::Transfer {
        from: "bob".into(),
        to: "alice".into(),
        amount: 1_000,
    };
    let refused = client.call(Request::Command(overdraft), timeout).await?;
    assert!(
        matches!(refused, Response::Output(Receipt::Refused(_))),
        "{refused:?}"
    );

    let mut balances = BTreeMap::new();
    for account in accounts {
        match client.call(Request::Query(account.into()), timeout).await? {
            Response::QueryOutput(Some(balance)) => balances.insert(account.to_string(), balance),
            other => return Err(format!("{account}: unexpected answer {other:?}").into()),
        };
    }
    for n in &nodes {
        n.stop();
    }
    for n in nodes {
        n.wait().await?;
    }
    Ok(balances)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("synod-bank-{}", std::process::id()));
    let balances = run(&dir).await?;
    std::fs::remove_dir_all(&dir)?;
    println!("final balances: {balances:?}");
    println!("total: {} (300 deposited)", balances.values().sum::<u64>());
    Ok(())
}
