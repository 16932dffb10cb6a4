//! A KV client of a real cluster of any registered protocol: the runtime's
//! [`Client`](synod_runtime::client::Client), which speaks the protocol's own request
//! and response types, with the KV operations translated by the protocol's adapter.

use crate::protocol::SimProtocol;
use crate::registry::{self, BoxFuture};
use std::net::SocketAddr;
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult};
use synod_runtime::client::{ClientError, ClientOf};

/// One client session talking KV to a cluster (one request at a time, following
/// redirects and retrying with the same `(client, seq)`; see
/// [`Client`](synod_runtime::client::Client)).
pub struct KvClient {
    inner: Box<dyn KvCall>,
}

impl std::fmt::Debug for KvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvClient").finish_non_exhaustive()
    }
}

impl KvClient {
    /// A session `id` with a cluster of `protocol` whose client addresses are `nodes`.
    pub fn new(protocol: &str, id: ClientId, nodes: Vec<SocketAddr>) -> Result<KvClient, String> {
        let real = registry::get(protocol)?
            .real
            .ok_or_else(|| format!("`{protocol}` runs only in the simulator"))?;
        Ok((real.kv_client)(id, nodes))
    }

    /// Runs `op` to completion, or fails after `timeout` (then it may or may not
    /// have taken effect).
    pub async fn call(&mut self, op: KvOp, timeout: Duration) -> Result<KvResult, ClientError> {
        self.inner.call(op, timeout).await
    }

    /// The node that answered the last request with a result.
    pub fn last_served_by(&self) -> Option<SocketAddr> {
        self.inner.last_served_by()
    }
}

/// The registry's constructor of [`KvClient`]s for `P`.
pub(crate) fn kv_client<P: SimProtocol>(id: ClientId, nodes: Vec<SocketAddr>) -> KvClient
where
    P::Node: Send + 'static,
{
    KvClient {
        inner: Box::new(Typed::<P> {
            client: ClientOf::<P::Node>::new(id, nodes),
            session: P::Session::default(),
        }),
    }
}

trait KvCall: Send {
    fn call(&mut self, op: KvOp, timeout: Duration)
        -> BoxFuture<'_, Result<KvResult, ClientError>>;
    fn last_served_by(&self) -> Option<SocketAddr>;
}

struct Typed<P: SimProtocol> {
    client: ClientOf<P::Node>,
    /// What the client remembers between requests (`SimProtocol::Session`).
    session: P::Session,
}

impl<P: SimProtocol> KvCall for Typed<P>
where
    P::Node: Send + 'static,
{
    fn call(
        &mut self,
        op: KvOp,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<KvResult, ClientError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let request = P::request_in(&mut self.session, op.clone());
                let response = self.client.call(request, left).await?;
                P::observe(&mut self.session, &response);
                if !P::refused(&response) {
                    return Ok(P::result(&response));
                }
                // It took no effect (a 2PC abort): try again, as a new request.
                if tokio::time::Instant::now() >= deadline {
                    return Err(ClientError::Timeout { seq: 0, timeout });
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }

    fn last_served_by(&self) -> Option<SocketAddr> {
        self.client.last_served_by
    }
}
