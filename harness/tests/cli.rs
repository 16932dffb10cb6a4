//! End-to-end tests of the `synod` binary: exit codes, error messages, replayability.

use std::process::{Command, Output};

fn synod(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(args)
        .output()
        .expect("the synod binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn unknown_protocol_is_a_clear_error_with_exit_2() {
    let o = synod(&["sim", "--protocol", "zookeeper", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("zookeeper") && e.contains("raft, paxos"), "{e}");
    assert!(!e.contains("fixture"), "fixtures are not offered: {e}");
}

/// The registry's test fixtures run by name but are offered in no list: not in any
/// subcommand's `--help`, not among the choices of an error.
#[test]
fn help_lists_the_protocols_and_no_fixture() {
    for cmd in ["sim", "check", "compare", "node", "cluster up"] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let o = synod(&args);
        assert_eq!(o.status.code(), Some(0), "{cmd} --help");
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(
            help.contains("raft") && help.contains("paxos") && help.contains("zab"),
            "{cmd}: {help}"
        );
        assert!(
            !help.contains("fixture"),
            "{cmd} --help offers a fixture: {help}"
        );
    }
}

#[test]
fn bad_fault_spec_names_the_bad_part() {
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "1",
        "--faults",
        "crash,meteor",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("meteor") && e.contains("--faults"), "{e}");
}

#[test]
fn zero_and_negative_counts_are_rejected() {
    for args in [
        &["check", "--protocol", "fixture", "--seeds", "0"][..],
        &["check", "--protocol", "fixture", "--seeds", "-3"][..],
        &["sim", "--protocol", "fixture", "--seed", "1", "--ops", "0"][..],
        &["sim", "--protocol", "fixture", "--seed", "-1"][..],
        &["compare", "--seeds", "0"][..],
        &[
            "sim",
            "--protocol",
            "fixture",
            "--seed",
            "1",
            "--clients",
            "0",
        ][..],
    ] {
        let o = synod(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?} must explain itself");
    }
}

#[test]
fn bad_workload_is_rejected() {
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "1",
        "--workload",
        "tpcc",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tpcc"));
}

#[test]
fn sim_is_replayable_from_its_seed() {
    let args = [
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "42",
        "--faults",
        "all",
        "--ops",
        "300",
    ];
    let a = synod(&args);
    let b = synod(&args);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let digest = last_line(&a);
    assert!(
        digest.starts_with("digest: ") && digest.len() == "digest: ".len() + 16,
        "{digest}"
    );
    assert_eq!(digest, last_line(&b));
    let mut other = args;
    other[4] = "43";
    assert_ne!(digest, last_line(&synod(&other)));
}

#[test]
fn json_output_is_one_document() {
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "3",
        "--ops",
        "50",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["seed"], 3);
    assert!(v["digest"].as_str().is_some_and(|d| d.len() == 16));
    let o = synod(&[
        "check",
        "--protocol",
        "fixture",
        "--seeds",
        "4",
        "--ops",
        "50",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["violations"], 0);
}

#[test]
fn history_file_follows_the_design_format() {
    let dir = std::env::temp_dir().join(format!("synod-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.jsonl");
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "5",
        "--ops",
        "40",
        "--history",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut invokes = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["process"].is_u64());
        assert!(["invoke", "ok", "fail", "info"].contains(&v["type"].as_str().unwrap()));
        assert!(["get", "put", "append", "cas", "delete"].contains(&v["f"].as_str().unwrap()));
        invokes += usize::from(v["type"] == "invoke");
    }
    assert!(invokes >= 40, "every op and liveness op is recorded");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unwritable_history_path_is_a_clear_error() {
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "5",
        "--ops",
        "10",
        "--history",
        "/nonexistent-dir/h.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent-dir/h.jsonl"));
}

#[test]
fn log_flag_prints_node_and_virtual_time() {
    let o = synod(&[
        "sim",
        "--protocol",
        "fixture",
        "--seed",
        "1",
        "--ops",
        "3",
        "--log",
        "debug",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let e = stderr(&o);
    // Lines carry the span with node id and virtual time, like a real cluster's log.
    assert!(e.contains("node{id=n1 t="), "{}", &e[..e.len().min(2000)]);
}

#[test]
fn compare_prints_a_table_and_writes_json() {
    let dir = std::env::temp_dir().join(format!("synod-cmp-{}", std::process::id()));
    let o = synod(&[
        "compare",
        "--seeds",
        "1",
        "--duration",
        "0.3",
        "--workloads",
        "kv,bank",
        "--profiles",
        "none,crash",
        "--protocols",
        "raft,zab,vvsync",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("workload kv") && out.contains("msg"), "{out}");
    assert!(
        out.contains("vvsync: transfers as two ledger writes"),
        "how vvsync serves the bank is said, {out}"
    );
    assert!(
        out.contains("money: raft, zab, vvsync conserved in every run"),
        "{out}"
    );
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "the table fits 100 columns ({widest})");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        3 * 2 + 3 * 2,
        "kv and bank: 3 protocols × 2 profiles"
    );
    assert_eq!(cells[0]["protocol"], "raft");
    for c in cells {
        assert_eq!(c["violations"].as_array().map(Vec::len), Some(0), "{c}");
        assert!(c["per_op"]["messages"].as_f64().unwrap() > 1.0, "{c}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_finds_the_broken_fixture_and_its_replay_reproduces_the_violation() {
    let o = synod(&[
        "check",
        "--protocol",
        "fixture-amnesia",
        "--seeds",
        "12",
        "--faults",
        "crash",
        "--ops",
        "500",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let replay = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: synod "))
        .unwrap_or_else(|| panic!("a failing check prints a replay command:\n{out}"));
    assert!(out.contains("Linearizability"), "{out}");
    let args: Vec<&str> = replay.split_whitespace().collect();
    let r = synod(&args);
    assert_eq!(r.status.code(), Some(1), "the replay fails the same way");
    assert!(String::from_utf8_lossy(&r.stdout).contains("VIOLATION Linearizability"));
}

/// `--fail-fast` starts no seed after the first violation, and every seed below the
/// smallest failing one still ran: the failing seed it reports is the smallest.
#[test]
fn check_fail_fast_stops_after_the_first_violation_and_reports_the_smallest() {
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "check",
            "--protocol",
            "fixture-amnesia",
            "--seeds",
            "40",
            "--faults",
            "crash",
            "--ops",
            "500",
            "--jobs",
            "1",
        ];
        a.extend_from_slice(extra);
        a
    };
    let seeds_failing = |out: &str| -> Vec<u64> {
        out.lines()
            .filter_map(|l| {
                l.strip_prefix("fixture-amnesia seed ")?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let full = synod(&args(&[]));
    let all = seeds_failing(&String::from_utf8_lossy(&full.stdout));
    assert!(
        all.len() >= 2,
        "the broken fixture fails several seeds: {all:?}"
    );
    let fast = synod(&args(&["--fail-fast"]));
    assert_eq!(fast.status.code(), Some(1));
    let out = String::from_utf8_lossy(&fast.stdout);
    assert_eq!(seeds_failing(&out), vec![all[0]], "{out}");
    assert!(
        out.contains(&format!(
            "(ran {}: stopped at the first violation)",
            all[0] + 1
        )),
        "{out}"
    );
}

#[test]
fn check_history_verdicts_and_exit_codes() {
    let dir = std::env::temp_dir().join(format!("synod-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let good = write(
        "good.jsonl",
        concat!(
            r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
            "\n",
            r#"{"process":0,"type":"ok","f":"write","value":1}"#,
            "\n",
            r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
            "\n",
            r#"{"process":1,"type":"ok","f":"read","value":1}"#,
            "\n",
        ),
    );
    let stale = write(
        "stale.jsonl",
        concat!(
            r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
            "\n",
            r#"{"process":0,"type":"ok","f":"write","value":1}"#,
            "\n",
            r#"{"process":1,"type":"invoke","f":"read","value":null}"#,
            "\n",
            r#"{"process":1,"type":"ok","f":"read","value":null}"#,
            "\n",
        ),
    );
    let broken = write(
        "broken.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n{oops\n",
    );
    let o = synod(&["check-history", &good, "--model", "register"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().next(),
        Some("linearizable")
    );
    let o = synod(&["check-history", &stale, "--model", "register"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().next(),
        Some("not-linearizable")
    );
    let o = synod(&["check-history", &broken, "--model", "register"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("broken.jsonl:2:"),
        "names file and line: {}",
        stderr(&o)
    );
    let o = synod(&["check-history", &good, "--model", "queue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("queue"));
    let o = synod(&["check-history", &stale, "--model", "register", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["verdict"], "not-linearizable");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_history_list_append_verdicts_and_exit_codes() {
    let dir = std::env::temp_dir().join(format!("synod-txn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, lines: &[&str]| {
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p.to_string_lossy().into_owned()
    };
    let t0 =
        r#"{"process":0,"type":"invoke","f":"txn","value":[["append","x",1],["append","y",10]]}"#;
    let t0_ok =
        r#"{"process":0,"type":"ok","f":"txn","value":[["append","x",1],["append","y",10]]}"#;
    let t1 = r#"{"process":1,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}"#;
    let good = write(
        "good.jsonl",
        &[
            t0,
            t0_ok,
            t1,
            r#"{"process":1,"type":"ok","f":"txn","value":[["r","x",[1]],["r","y",[10]]]}"#,
        ],
    );
    // T1 sees T0's y but not its x: read skew.
    let skew = write(
        "skew.jsonl",
        &[
            t0,
            t0_ok,
            t1,
            r#"{"process":1,"type":"ok","f":"txn","value":[["r","x",[]],["r","y",[10]]]}"#,
            r#"{"process":2,"type":"invoke","f":"txn","value":[["r","x",null]]}"#,
            r#"{"process":2,"type":"ok","f":"txn","value":[["r","x",[1]]]}"#,
        ],
    );
    let broken = write(
        "broken.jsonl",
        &[
            t0,
            t0_ok,
            t1,
            r#"{"process":1,"type":"ok","f":"txn","value":[["r","x",7],["r","y",[10]]]}"#,
        ],
    );
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = synod(&["check-history", &good, "--model", "list-append"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().next(), Some("serializable"));
    let o = synod(&["check-history", &skew, "--model", "list-append"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("not-serializable"));
    assert_eq!(lines.next(), Some("G-single: T0 -wr(y)-> T1 -rw(x)-> T0"));
    let o = synod(&["check-history", &skew, "--model", "list-append", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["verdict"], "not-serializable");
    assert_eq!(v["strongest"], "G-single");
    let o = synod(&["check-history", &broken, "--model", "list-append"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("broken.jsonl:4:") && stderr(&o).contains("must be a list"),
        "names file and line: {}",
        stderr(&o)
    );
    let o = synod(&["check-history", &broken, "--model", "list-append", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(
        (v["verdict"].as_str(), v["line"].as_u64()),
        (Some("error"), Some(4))
    );
    // A linearizability model on a transaction history is bad input, not a crash.
    let o = synod(&["check-history", &good, "--model", "kv"]);
    assert_eq!(o.status.code(), Some(2));
    let o = synod(&[
        "check-history",
        &good,
        "--model",
        "list-append",
        "--svg",
        "x.svg",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--svg"), "{}", stderr(&o));
    let o = synod(&["check-history", &good, "--model", "queue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("list-append"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn recorded_sim_history_passes_check_history() {
    let dir = std::env::temp_dir().join(format!("synod-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("raft.jsonl");
    let p = path.to_str().unwrap();
    let o = synod(&[
        "sim",
        "--protocol",
        "raft",
        "--seed",
        "9",
        "--faults",
        "all",
        "--ops",
        "300",
        "--history",
        p,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = synod(&["check-history", p, "--model", "kv"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A list-append history recorded by `synod sim` on 2PC (multi-shard
/// transactions) is one `check-history --model list-append` accepts as
/// serializable; a bank history is refused by that model, not judged.
#[test]
fn recorded_transaction_histories_read_as_list_append() {
    let dir = std::env::temp_dir().join(format!("synod-txn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (workload, code) in [("list-append", 0), ("bank", 2)] {
        let path = dir.join(format!("{workload}.jsonl"));
        let p = path.to_str().unwrap();
        let o = synod(&[
            "sim",
            "--protocol",
            "twopc",
            "--seed",
            "4",
            "--faults",
            "all",
            "--ops",
            "300",
            "--workload",
            workload,
            "--history",
            p,
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let o = synod(&["check-history", p, "--model", "list-append"]);
        assert_eq!(o.status.code(), Some(code), "{workload}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `--shards-per-txn` shapes the write workload only; elsewhere it is refused.
#[test]
fn shards_per_txn_applies_to_the_write_workload_only() {
    let o = synod(&[
        "sim",
        "--protocol",
        "twopc",
        "--seed",
        "1",
        "--workload",
        "kv",
        "--shards-per-txn",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--shards-per-txn 2 applies to --workload write"),
        "{}",
        stderr(&o)
    );
    let o = synod(&[
        "sim",
        "--protocol",
        "twopc",
        "--nodes",
        "4",
        "--seed",
        "1",
        "--ops",
        "200",
        "--workload",
        "write",
        "--shards-per-txn",
        "3",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Every transaction prepared at three shards: about three settled per commit.
    let settled = doc["metrics"]["in_doubt_settled"].as_u64().unwrap();
    let ok = doc["ops"]["ok"].as_u64().unwrap();
    assert!(
        settled >= 3 * ok - 3 && settled <= 3 * ok + 30,
        "{settled} for {ok}"
    );
}

/// Real-cluster commands refuse bad input with exit 2 and a message naming what is
/// wrong, before binding any port or touching any file.
#[test]
fn real_cluster_commands_name_bad_input() {
    let twice = "1=127.0.0.1:7001/127.0.0.1:7101,1=127.0.0.1:7002/127.0.0.1:7102";
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "node",
                "--protocol",
                "raft",
                "--id",
                "1",
                "--peers",
                twice,
                "--data-dir",
                "/nonexistent",
            ],
            "node n1 is listed twice",
        ),
        (
            &[
                "node",
                "--protocol",
                "raft",
                "--id",
                "4",
                "--peers",
                "1=127.0.0.1:7001/127.0.0.1:7101",
                "--data-dir",
                "/nonexistent",
            ],
            "node n4 is not in the member list",
        ),
        (
            &[
                "node",
                "--protocol",
                "raft",
                "--id",
                "1",
                "--peers",
                "1=127.0.0.1:7001",
                "--data-dir",
                "/nonexistent",
            ],
            "expected PEER_ADDR/CLIENT_ADDR",
        ),
        (
            &["bench", "--addr", "nope"],
            "`nope` is not a socket address",
        ),
        (
            &["bench", "--addr", "127.0.0.1:1", "--duration", "0"],
            "between 0 and 86400 seconds",
        ),
        (
            &["bench", "--addr", "127.0.0.1:1", "--threads", "0"],
            "--threads",
        ),
    ];
    for (args, expected) in cases {
        let o = synod(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

/// A WAL damaged before its tail stops the node at start with the file and offset,
/// instead of serving from a log that lost acknowledged writes.
#[test]
fn a_corrupt_wal_refuses_to_start_with_file_and_offset() {
    let dir = std::env::temp_dir().join(format!("synod-cli-badwal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let segment = dir.join("wal-00000000000000000001.log");
    std::fs::write(&segment, b"garbage!").unwrap();
    // Storage is opened before any port is bound, so these ports are never used.
    let peers = "1=127.0.0.1:1/127.0.0.1:2";
    let o = synod(&[
        "node",
        "--protocol",
        "raft",
        "--id",
        "1",
        "--peers",
        peers,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("wal-00000000000000000001.log") && e.contains("byte offset 0"),
        "{e}"
    );
}

/// `--duration` bounds the main phase in virtual time (the split needs it to last
/// past 2 s); the same seed replays the same split bit for bit.
#[test]
fn sim_duration_runs_the_scripted_split_and_replays_it() {
    let args = [
        "sim",
        "--protocol",
        "raft",
        "--seed",
        "3",
        "--faults",
        "split",
        "--duration",
        "2.5",
    ];
    let a = synod(&args);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let out = String::from_utf8_lossy(&a.stdout);
    assert!(out.contains("split {n"), "{out}");
    assert!(
        out.contains("virtual time: 2.") || out.contains("virtual time: 3."),
        "{out}"
    );
    assert_eq!(a.stdout, synod(&args).stdout, "same seed, same run");
    let bad = synod(&[
        "sim",
        "--protocol",
        "raft",
        "--seed",
        "3",
        "--duration",
        "0",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("positive number of seconds"),
        "{}",
        stderr(&bad)
    );
}
