//! The ZooKeeper backend: `setData` on znodes `/synod-bench/k<n>`, created before the
//! clock starts, one session (one TCP connection, to a server the client library
//! picks from `--addr`) per client.

use crate::load::OP_TIMEOUT;
use zookeeper_client as zk;

const ROOT: &str = "/synod-bench";

fn path(key: u32) -> String {
    format!("{ROOT}/k{key}")
}

/// An ensemble whose znodes exist.
pub struct Ensemble {
    /// `host:port,host:port,…`, as the client library takes it.
    addr: String,
}

impl Ensemble {
    /// Creates the root and the `keys` znodes the load writes, unless they exist.
    pub async fn prepare(addr: &str, keys: u32) -> Result<Ensemble, String> {
        let setup = tokio::time::timeout(OP_TIMEOUT, zk::Client::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr}: no session within {OP_TIMEOUT:?}"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        ensure(&setup, ROOT).await?;
        for key in 0..keys {
            ensure(&setup, &path(key)).await?;
        }
        Ok(Ensemble { addr: addr.into() })
    }

    /// A new session: connecting establishes it, a round trip with the ensemble.
    pub async fn open(&self, _client: u32) -> Result<Session, String> {
        let client = zk::Client::connect(&self.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        Ok(Session { client })
    }
}

/// Creates `path` unless it exists.
async fn ensure(client: &zk::Client, path: &str) -> Result<(), String> {
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let create = client.create(path, b"0000000000000000", &options);
    match tokio::time::timeout(OP_TIMEOUT, create).await {
        Ok(Ok(_) | Err(zk::Error::NodeExists)) => Ok(()),
        Ok(Err(e)) => Err(format!("create {path}: {e}")),
        Err(_) => Err(format!("create {path}: no answer within {OP_TIMEOUT:?}")),
    }
}

/// One client's ZooKeeper session.
pub struct Session {
    client: zk::Client,
}

impl Session {
    pub async fn put(&mut self, key: u32, value: String) -> Result<(), String> {
        match self
            .client
            .set_data(&path(key), value.as_bytes(), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("setData {}: {e}", path(key))),
        }
    }
}
