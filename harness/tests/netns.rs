//! A multi-host cluster: one `synod node` per Linux network namespace, the hosts
//! joined by veth links to a bridge. Cutting one host's link partitions it from the
//! others: the minority side must stop serving, the majority must go on, and after
//! the link is restored the cluster heals and the minority node serves the
//! majority's writes.
//!
//! Needs CAP_NET_ADMIN and iproute2 (`ip`); where the kernel or the sandbox forbids
//! network namespaces the test says so and passes without running.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use synod_core::{ClientId, KvOp, KvResult};
use synod_harness::kv_client::KvClient;

const NODES: u8 = 3;

/// Runs `ip ARGS`, returning its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces, links and bridge of one test; removed on drop.
struct Hosts {
    tag: String,
    subnet: u8,
    children: Vec<Option<Child>>,
}

impl Hosts {
    fn ns(&self, i: u8) -> String {
        format!("{}-n{i}", self.tag)
    }

    fn bridge(&self) -> String {
        format!("{}b", self.tag)
    }

    /// The bridge-side end of host `i`'s link.
    fn link(&self, i: u8) -> String {
        format!("{}s{i}", self.tag)
    }

    fn addr(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, i)
    }

    fn create() -> Result<Hosts, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let mut hosts = Hosts {
            tag: format!("sy{}x{k}", pid % 100_000),
            subnet: ((pid + k) % 200) as u8 + 20,
            children: Vec::new(),
        };
        let bridge = hosts.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let gateway = format!("{}/24", hosts.addr(254));
        ip(&["addr", "add", &gateway, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 1..=NODES {
            hosts.create_host(i)?;
        }
        Ok(hosts)
    }

    fn create_host(&mut self, i: u8) -> Result<(), String> {
        let ns = self.ns(i);
        let (outer, inner) = (self.link(i), format!("{}h{i}", self.tag));
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &inner, "netns", &ns])?;
        ip(&["link", "set", &outer, "master", &self.bridge()])?;
        ip(&["link", "set", &outer, "up"])?;
        let cidr = format!("{}/24", self.addr(i));
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", &inner])?;
        ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }

    fn peer_addr(&self, i: u8) -> SocketAddr {
        SocketAddr::from((self.addr(i), 7000 + u16::from(i)))
    }

    fn client_addr(&self, i: u8) -> SocketAddr {
        SocketAddr::from((self.addr(i), 7100 + u16::from(i)))
    }

    fn start_nodes(&mut self, protocol: &str, dir: &std::path::Path) {
        let peers = (1..=NODES)
            .map(|i| format!("{i}={}/{}", self.peer_addr(i), self.client_addr(i)))
            .collect::<Vec<_>>()
            .join(",");
        for i in 1..=NODES {
            let log = std::fs::File::create(dir.join(format!("node-{i}.log"))).expect("log");
            let child = Command::new("ip")
                .args(["netns", "exec", &self.ns(i)])
                .arg(env!("CARGO_BIN_EXE_synod"))
                .arg("node")
                .args(["--protocol", protocol, "--id", &i.to_string()])
                .args(["--peers", &peers])
                .arg("--data-dir")
                .arg(dir.join(format!("node-{i}")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start synod node in its namespace");
            self.children.push(Some(child));
        }
    }

    /// `synod bench` from inside host `i`'s namespace: what a client on that side
    /// of a partition gets. Returns the ok count.
    fn bench_from_inside(&self, i: u8, seconds: u32) -> u64 {
        let addrs = (1..=NODES)
            .map(|n| self.client_addr(n).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(i)])
            .arg(env!("CARGO_BIN_EXE_synod"))
            .args(["bench", "--json", "--clients", "2"])
            .args(["--duration", &seconds.to_string()])
            .args(["--addr", &addrs])
            .output()
            .expect("run synod bench in the namespace");
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("bench prints one JSON document");
        doc["ok"].as_u64().expect("ok count")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for i in 1..=NODES {
            let _ = ip(&["netns", "del", &self.ns(i)]);
            let _ = ip(&["link", "del", &self.link(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

async fn write(client: &mut KvClient, key: &str, value: &str, timeout: Duration) -> bool {
    let op = KvOp::Put {
        key: key.into(),
        value: value.into(),
    };
    client.call(op, timeout).await.is_ok()
}

/// One cluster at a time: they share two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn partition_heals(protocol: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = match Hosts::create() {
        Ok(h) => h,
        Err(why) => {
            eprintln!("SKIPPED: network namespaces are not available here ({why})");
            return;
        }
    };
    let mut hosts = hosts;
    let dir = tempfile::tempdir().expect("temp dir");
    hosts.start_nodes(protocol, dir.path());
    let all: Vec<SocketAddr> = (1..=NODES).map(|i| hosts.client_addr(i)).collect();
    let majority: Vec<SocketAddr> = all[..2].to_vec();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut c = KvClient::new(protocol, ClientId(1), all.clone()).expect("a real protocol");
        assert!(
            write(&mut c, "k", "before", Duration::from_secs(20)).await,
            "the cluster serves before the partition"
        );

        // Cut host 3's link: it is alone, nodes 1 and 2 keep a majority.
        ip(&["link", "set", &hosts.link(3), "down"]).expect("cut the link");
        let minority_ok = hosts.bench_from_inside(3, 3);
        assert_eq!(minority_ok, 0, "the isolated minority node served requests");
        let mut m = KvClient::new(protocol, ClientId(2), majority).expect("a real protocol");
        assert!(
            write(&mut m, "k", "during", Duration::from_secs(20)).await,
            "the majority side serves writes during the partition"
        );

        // Restore the link: node 3 catches up and serves the majority's write.
        ip(&["link", "set", &hosts.link(3), "up"]).expect("restore the link");
        let mut healed = KvClient::new(protocol, ClientId(3), vec![all[2], all[0], all[1]])
            .expect("a real protocol");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let read = healed
                .call(KvOp::Get { key: "k".into() }, Duration::from_secs(5))
                .await;
            if matches!(&read, Ok(KvResult::Value(Some(v))) if v == "during") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not healed within 30 s: last read {read:?}"
            );
        }
        assert!(
            hosts.bench_from_inside(3, 2) > 0,
            "after the heal, clients on node 3's side are served again"
        );
    });
}

#[test]
fn raft_minority_stops_serving_and_the_cluster_heals() {
    partition_heals("raft");
}

#[test]
fn paxos_minority_stops_serving_and_the_cluster_heals() {
    partition_heals("paxos");
}
