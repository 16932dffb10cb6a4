//! The etcd backend: v3 `Put` of key `k<n>` through the `etcd-client` crate (gRPC).
//!
//! **One connection per client, each to one member** (client `i` to the `i mod n`-th
//! address of `--addr`), not one shared connection. The other two backends give every
//! client its own session on its own TCP connection (a ZooKeeper session; Synod's
//! `KvClient`), so etcd gets the same: a shared HTTP/2 connection would let etcd's
//! server batch many clients' requests per read and per write syscall, an advantage
//! the others are not given here. Each client's channel names a single member because
//! `etcd-client` otherwise balances one client's requests over every member (three
//! connections per client); pinning spreads the clients evenly instead, and a member
//! that is not the leader forwards the put to it, as a ZooKeeper follower does.

/// A cluster's client endpoints.
pub struct Cluster {
    /// `host:port` (plain HTTP) or full URLs; never empty (`Args::check`).
    endpoints: Vec<String>,
}

impl Cluster {
    pub fn new(endpoints: Vec<String>) -> Cluster {
        assert!(!endpoints.is_empty(), "an etcd cluster needs an endpoint");
        Cluster { endpoints }
    }

    /// Connects client `client` to its member and warms the connection with one
    /// range request (tonic connects lazily).
    pub async fn open(&self, client: u32) -> Result<Session, String> {
        let endpoint = &self.endpoints[client as usize % self.endpoints.len()];
        let mut etcd = etcd_client::Client::connect([endpoint], None)
            .await
            .map_err(|e| format!("connect to {endpoint}: {e}"))?;
        etcd.get("k0", None)
            .await
            .map_err(|e| format!("{endpoint}: first request: {e}"))?;
        Ok(Session {
            etcd: Box::new(etcd),
        })
    }
}

/// One client's connection.
pub struct Session {
    /// The whole client, not just its KV part: it owns the channel's endpoint set.
    /// Boxed: it is some 3.5 KB, and every client's [`Session`](crate::load::Session)
    /// would be that big.
    etcd: Box<etcd_client::Client>,
}

impl Session {
    pub async fn put(&mut self, key: u32, value: String) -> Result<(), String> {
        match self.etcd.put(format!("k{key}"), value, None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("put k{key}: {e}")),
        }
    }
}
