//! The command line: `--backend synod|etcd|zookeeper --addr host:port,… --clients N
//! --duration SECS --keys K --json`.

use crate::load::CLIENTS_MAX;
use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Which system's client the load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A Synod cluster of any protocol (named by the nodes' welcome).
    Synod,
    /// An etcd v3 cluster.
    Etcd,
    /// A ZooKeeper ensemble.
    Zookeeper,
}

#[derive(Parser, Debug)]
#[command(
    name = "anchor-load",
    about = "closed-loop puts of 16-byte values against Synod, etcd or ZooKeeper"
)]
pub struct Args {
    /// The system to load.
    #[arg(long, value_enum)]
    pub backend: Backend,
    /// The cluster's client addresses, `host:port,host:port,…`.
    #[arg(long)]
    pub addr: String,
    /// Concurrent closed-loop clients (one session and connection each).
    #[arg(long, default_value_t = 64)]
    pub clients: u32,
    /// Seconds of timed load.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Distinct keys written, drawn uniformly.
    #[arg(long, default_value_t = 1000)]
    pub keys: u32,
    /// Print the summary as one JSON object (the fields of `synod bench --json`).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Rejects what would make the run meaningless or overflow the value format.
    pub fn check(&self) -> Result<(), String> {
        if self.clients == 0 || self.keys == 0 || self.duration == 0 {
            return Err("--clients, --keys and --duration must be at least 1".into());
        }
        if self.clients > CLIENTS_MAX {
            return Err(format!("--clients is at most {CLIENTS_MAX}"));
        }
        if self.addrs().is_empty() {
            return Err("--addr names no address".into());
        }
        Ok(())
    }

    /// `--addr` split at commas, blanks dropped.
    pub fn addrs(&self) -> Vec<String> {
        self.addr
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, String> {
        let args = Args::try_parse_from(line.split_whitespace()).map_err(|e| e.to_string())?;
        args.check().map(|()| args)
    }

    #[test]
    fn the_documented_command_line_parses_with_its_defaults() {
        let args = parse("anchor-load --backend etcd --addr 127.0.0.1:2379,,127.0.0.1:2479 --json")
            .unwrap();
        assert_eq!(args.backend, Backend::Etcd);
        assert_eq!(args.addrs(), ["127.0.0.1:2379", "127.0.0.1:2479"]);
        assert_eq!((args.clients, args.keys, args.duration), (64, 1000, 5));
        assert!(args.json);
    }

    #[test]
    fn empty_loads_unknown_backends_and_too_many_clients_are_refused() {
        assert!(parse("anchor-load --backend synod --addr a:1 --clients 0").is_err());
        assert!(parse("anchor-load --backend synod --addr a:1 --keys 0").is_err());
        assert!(parse("anchor-load --backend synod --addr , ").is_err());
        assert!(parse("anchor-load --backend consul --addr a:1").is_err());
        let too_many = format!(
            "anchor-load --backend synod --addr a:1 --clients {}",
            CLIENTS_MAX + 1
        );
        assert!(parse(&too_many).is_err());
        let most = format!("anchor-load --backend zookeeper --addr a:1 --clients {CLIENTS_MAX}");
        assert!(parse(&most).is_ok());
    }
}
