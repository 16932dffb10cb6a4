//! Generates a large multi-key kv history and checks it, to measure time and
//! memory (run under `/usr/bin/time -v` for max RSS).
//!
//! ```text
//! cargo run --release -p synod-harness --example checker_big -- [--ops N] [--keys K] [--clients C]
//!     [--seed S] [--info PER_MILLE] [--model M] [--jsonl PATH] [--from PATH]
//! ```
//! `--from PATH` skips generation and checks an existing JSON-lines file
//! through `run_cli` (memory of the CLI path alone).
//! With `--jsonl PATH` the history is written to PATH as JSON lines and
//! checked through `run_cli`, i.e. the parser path of `check-history`;
//! otherwise it is built in memory, as the simulator does.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use synod_harness::checker::synth::{generate, SynthConfig};
use synod_harness::checker::{check, run_cli, CheckHistoryArgs, Event, History, Model, Options};

struct Args {
    ops: usize,
    keys: usize,
    clients: usize,
    seed: u64,
    info: u32,
    model: Model,
    jsonl: Option<PathBuf>,
    from: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ops: 1_000_000,
        keys: 1000,
        clients: 100,
        seed: 1,
        info: 0,
        model: Model::Kv,
        jsonl: None,
        from: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || val.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--ops" => a.ops = num()? as usize,
            "--keys" => a.keys = num()? as usize,
            "--clients" => a.clients = num()? as usize,
            "--seed" => a.seed = num()?,
            "--info" => a.info = num()? as u32,
            "--jsonl" => a.jsonl = Some(PathBuf::from(&val)),
            "--from" => a.from = Some(PathBuf::from(&val)),
            "--model" => a.model = val.parse().map_err(|e| format!("{e}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.from {
        return ExitCode::from(cli(path, args.model) as u8);
    }
    let mut cfg = SynthConfig::new(args.model, args.keys, args.clients, args.ops, args.seed);
    cfg.info_per_mille = args.info;
    let t = Instant::now();
    let events = generate(&cfg);
    println!(
        "generated {} ops ({} events) in {:.2?}",
        args.ops,
        events.len(),
        t.elapsed()
    );
    let code = match &args.jsonl {
        Some(path) => via_cli(events, path, args.model),
        None => in_memory(events, args.model),
    };
    ExitCode::from(code as u8)
}

fn in_memory(events: Vec<Event>, model: Model) -> i32 {
    let t = Instant::now();
    let history = match History::from_events(events) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    println!("built history in {:.2?}", t.elapsed());
    match check(&history, model, Options::default()) {
        Ok(r) => {
            print!("{}", r.explain());
            r.verdict.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn via_cli(events: Vec<Event>, path: &Path, model: Model) -> i32 {
    if let Err(e) = write_jsonl(&events, path) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return 2;
    }
    drop(events);
    cli(path, model)
}

fn cli(path: &Path, model: Model) -> i32 {
    let args = CheckHistoryArgs {
        file: path.to_path_buf(),
        model,
        json: false,
        timeout: None,
        svg: None,
    };
    let t = Instant::now();
    let code = run_cli(&args, &mut std::io::stdout(), &mut std::io::stderr());
    println!("run_cli (parse + check) took {:.2?}", t.elapsed());
    code
}

fn write_jsonl(events: &[Event], path: &Path) -> std::io::Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for e in events {
        writeln!(w, "{}", e.to_json())?;
    }
    w.flush()
}
