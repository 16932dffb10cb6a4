//! The load itself, the same for every backend: which key and value each operation
//! writes ([`KeyGen`]), the closed-loop client ([`run`]), and what a run reports
//! ([`Summary`]).

#[cfg(feature = "etcd")]
use crate::etcd;
use crate::{synod, zookeeper};
use hdrhistogram::Histogram;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Bytes of every value written (the `write` workload of `synod bench`).
pub const VALUE_LEN: usize = 16;
/// Hex digits of the client in a value; the other digits count its operations.
const CLIENT_DIGITS: usize = 4;
/// Most clients whose values stay distinct: the client's part of a value has
/// [`CLIENT_DIGITS`] hex digits.
pub const CLIENTS_MAX: u32 = 1 << (4 * CLIENT_DIGITS);
const _: () = assert!(CLIENT_DIGITS < VALUE_LEN && CLIENTS_MAX.is_power_of_two());
/// Most operations one client writes before its values would repeat.
const OPS_PER_CLIENT_MAX: u64 = 1 << (4 * (VALUE_LEN - CLIENT_DIGITS));

/// How long one put may take before it counts as an error (it may still apply).
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening one session (connecting and one warm-up round trip) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The keys and values of one client: keys uniform over `0..keys` from a xorshift64*
/// generator seeded by the client (so a run is repeatable), values never written
/// before by anyone — the client and its operation count in [`VALUE_LEN`] hex digits.
#[derive(Debug)]
pub struct KeyGen {
    /// The xorshift state; never 0 (xorshift stays at 0 once there).
    x: u64,
    keys: u32,
    client: u32,
    /// Values made so far; below [`OPS_PER_CLIENT_MAX`].
    made: u64,
}

impl KeyGen {
    pub fn new(client: u32, keys: u32) -> KeyGen {
        assert!(keys > 0, "a load needs at least one key");
        assert!(client < CLIENTS_MAX, "client {client} ≥ {CLIENTS_MAX}");
        let x = 0x9E37_79B9_7F4A_7C15u64 ^ (u64::from(client) + 1);
        assert_ne!(x, 0);
        KeyGen {
            x,
            keys,
            client,
            made: 0,
        }
    }

    /// The next key, in `0..keys`.
    pub fn key(&mut self) -> u32 {
        self.x ^= self.x >> 12;
        self.x ^= self.x << 25;
        self.x ^= self.x >> 27;
        (self.x.wrapping_mul(0x2545_F491_4F6C_DD1D) % u64::from(self.keys)) as u32
    }

    /// The next value: [`VALUE_LEN`] bytes, distinct from every other client's and
    /// from this client's earlier ones.
    pub fn value(&mut self) -> String {
        assert!(
            self.made < OPS_PER_CLIENT_MAX,
            "client {} ran out of values",
            self.client
        );
        let value = format!(
            "{:0cw$x}{:0nw$x}",
            self.client,
            self.made,
            cw = CLIENT_DIGITS,
            nw = VALUE_LEN - CLIENT_DIGITS
        );
        self.made += 1;
        debug_assert_eq!(value.len(), VALUE_LEN);
        value
    }
}

/// One client's session with the system under load.
pub enum Session {
    Synod(synod::Session),
    #[cfg(feature = "etcd")]
    Etcd(etcd::Session),
    Zookeeper(zookeeper::Session),
}

impl Session {
    /// Puts `value` on key number `key`, bounded by [`OP_TIMEOUT`].
    async fn put(&mut self, key: u32, value: String) -> Result<(), String> {
        let put = async {
            match self {
                Session::Synod(s) => s.put(key, value).await,
                #[cfg(feature = "etcd")]
                Session::Etcd(s) => s.put(key, value).await,
                Session::Zookeeper(s) => s.put(key, value).await,
            }
        };
        match tokio::time::timeout(OP_TIMEOUT, put).await {
            Ok(done) => done,
            Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
        }
    }
}

/// Opens `clients` sessions one after the other with `open`, each bounded by
/// [`OPEN_TIMEOUT`]; the first failure ends the run.
pub async fn open_all<F, O>(clients: u32, mut open: F) -> Result<Vec<Session>, String>
where
    F: FnMut(u32) -> O,
    O: Future<Output = Result<Session, String>>,
{
    let mut sessions = Vec::with_capacity(clients as usize);
    for client in 0..clients {
        match tokio::time::timeout(OPEN_TIMEOUT, open(client)).await {
            Ok(Ok(session)) => sessions.push(session),
            Ok(Err(e)) => return Err(format!("client {client}: {e}")),
            Err(_) => return Err(format!("client {client}: not open within {OPEN_TIMEOUT:?}")),
        }
    }
    Ok(sessions)
}

/// What the clients of a run did together.
#[derive(Debug)]
pub struct Measured {
    pub ok: u64,
    pub errors: u64,
    /// From the start of the timed phase until the last client's last put ended.
    pub elapsed: Duration,
    /// Latency of the puts that succeeded, microseconds.
    pub latency_us: Histogram<u64>,
    /// The first error any client saw.
    pub first_error: Option<String>,
}

impl Measured {
    fn empty() -> Measured {
        Measured {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new(3).expect("3 significant figures"),
            first_error: None,
        }
    }

    fn add(&mut self, other: Measured) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency_us.add(&other.latency_us).expect("same bounds");
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs every session closed-loop for `duration`: a client starts a put only when
/// its previous one ended, and starts none after `duration`.
pub async fn run(sessions: Vec<Session>, keys: u32, duration: Duration) -> Measured {
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(client, session)| {
            let keygen = KeyGen::new(client as u32, keys);
            tokio::spawn(run_client(session, keygen, end))
        })
        .collect();
    let mut total = Measured::empty();
    for task in tasks {
        total.add(task.await.expect("a client task panicked"));
    }
    total.elapsed = start.elapsed();
    total
}

async fn run_client(mut session: Session, mut keygen: KeyGen, end: Instant) -> Measured {
    let mut tally = Measured::empty();
    while Instant::now() < end {
        let (key, value) = (keygen.key(), keygen.value());
        let sent = Instant::now();
        match session.put(key, value).await {
            Ok(()) => {
                tally.ok += 1;
                let us = sent.elapsed().as_micros() as u64;
                tally.latency_us.record(us.max(1)).expect("in range");
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    tally
}

/// What `anchor-load` prints about a run.
#[derive(Debug)]
pub struct Summary {
    system: String,
    clients: u32,
    seconds: f64,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    /// p50, p99 and p999 latency of the successful puts, microseconds.
    latency_us: [u64; 3],
}

impl Summary {
    pub fn new(system: String, clients: u32, measured: &Measured) -> Summary {
        let q = |p: f64| measured.latency_us.value_at_quantile(p);
        Summary {
            system,
            clients,
            seconds: measured.elapsed.as_secs_f64().max(1e-9),
            ok: measured.ok,
            errors: measured.errors,
            first_error: measured.first_error.clone(),
            latency_us: [q(0.5), q(0.99), q(0.999)],
        }
    }

    fn ok_per_sec(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// The fields of `synod bench --json`; every put that succeeded was applied, so
    /// `ops_per_sec` (answered operations) equals `ok_per_sec`.
    pub fn to_json(&self) -> serde_json::Value {
        let [p50, p99, p999] = self.latency_us;
        serde_json::json!({
            "system": self.system,
            "workload": "write",
            "clients": self.clients,
            "seconds": self.seconds,
            "ok": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "ops_per_sec": self.ok_per_sec(),
            "ok_per_sec": self.ok_per_sec(),
            "latency_us": { "p50": p50, "p99": p99, "p999": p999 },
        })
    }

    /// One line for a person.
    pub fn to_line(&self) -> String {
        let [p50, p99, p999] = self.latency_us;
        format!(
            "{}: {} clients, {:.0} writes/s ({} errors), p50 {p50} µs, p99 {p99} µs, p999 {p999} µs",
            self.system,
            self.clients,
            self.ok_per_sec(),
            self.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_stay_in_range_and_cover_every_key_about_evenly() {
        let keys = 1000;
        let mut counts = vec![0u32; keys as usize];
        let mut keygen = KeyGen::new(7, keys);
        for _ in 0..200_000 {
            counts[keygen.key() as usize] += 1;
        }
        // 200 draws expected per key: a uniform generator stays well inside 100..300.
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 100 && *max < 300, "min {min}, max {max}");
    }

    #[test]
    fn clients_draw_different_key_sequences_and_a_client_repeats_its_own() {
        let draw = |client| {
            let mut keygen = KeyGen::new(client, 1000);
            (0..20).map(|_| keygen.key()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn values_are_sixteen_bytes_and_fresh_across_clients() {
        let mut seen = HashSet::new();
        for client in [0, 1, 255, CLIENTS_MAX - 1] {
            let mut keygen = KeyGen::new(client, 1);
            for _ in 0..1000 {
                let value = keygen.value();
                assert_eq!(value.len(), VALUE_LEN, "{value}");
                assert!(seen.insert(value));
            }
        }
    }

    #[test]
    fn the_summary_has_the_fields_of_synod_bench_json() {
        let mut measured = Measured::empty();
        for us in 1..=1000 {
            measured.latency_us.record(us).unwrap();
        }
        measured.ok = 1000;
        measured.errors = 2;
        measured.elapsed = Duration::from_secs(2);
        let doc = Summary::new("etcd".into(), 16, &measured).to_json();
        assert_eq!(doc["clients"], 16);
        assert_eq!(doc["ok_per_sec"], 500.0);
        assert_eq!(doc["ops_per_sec"], 500.0);
        assert_eq!(doc["errors"], 2);
        assert_eq!(doc["latency_us"]["p50"], 500);
        assert_eq!(doc["latency_us"]["p99"], 990);
        assert_eq!(doc["latency_us"]["p999"], 999);
    }
}
