//! The `check-history` command, without an argument parser: the caller
//! fills [`CheckHistoryArgs`] (e.g. from clap) and gets an exit code.
//!
//! Exit codes: 0 linearizable, 1 not-linearizable, 2 bad input (unreadable
//! file, malformed line, history not fitting the model), 3 unknown.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::history::{History, HistoryError};
use super::model::Model;
use super::report::CheckResult;
use super::svg::write_svg;
use super::{check, Options};

/// Exit code for bad input.
const EXIT_BAD_INPUT: i32 = 2;

/// Arguments of `check-history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckHistoryArgs {
    /// The JSON-lines history.
    pub file: PathBuf,
    /// The model to check against.
    pub model: Model,
    /// Print one JSON document instead of text.
    pub json: bool,
    /// Give up after this long (verdict `unknown`, exit 3).
    pub timeout: Option<Duration>,
    /// Where to draw the failing window as SVG, if not linearizable.
    pub svg: Option<PathBuf>,
}

/// Runs the check and prints the verdict; returns the exit code.
pub fn run_cli(args: &CheckHistoryArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let result = load(args).and_then(|h| {
        let opts = Options {
            timeout: args.timeout,
            threads: None,
        };
        check(&h, args.model, opts).map_err(InputError::Bad)
    });
    let result = match result {
        Ok(r) => r,
        Err(e) => return report_input_error(args, &e, stdout, stderr),
    };
    // Write errors on stdout/stderr (e.g. a closed pipe) cannot be reported
    // anywhere better; the exit code still carries the verdict.
    if args.json {
        let _ = writeln!(stdout, "{}", result.to_json());
    } else {
        let _ = write!(stdout, "{}", result.explain());
    }
    draw(args, &result, stdout, stderr);
    result.verdict.exit_code()
}

enum InputError {
    Open(std::io::Error),
    Bad(HistoryError),
}

fn load(args: &CheckHistoryArgs) -> Result<History, InputError> {
    let file = File::open(&args.file).map_err(InputError::Open)?;
    History::parse_jsonl(BufReader::with_capacity(1 << 16, file)).map_err(InputError::Bad)
}

fn report_input_error(
    args: &CheckHistoryArgs,
    e: &InputError,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let file = args.file.display();
    let (line, msg) = match e {
        InputError::Open(e) => (None, format!("cannot open {file}: {e}")),
        InputError::Bad(e) => (Some(e.line), format!("{file}:{}: {}", e.line, e.kind)),
    };
    let _ = writeln!(stderr, "error: {msg}");
    if args.json {
        // Keep the promise of exactly one JSON document on stdout.
        let doc = json!({ "verdict": "error", "model": args.model, "line": line, "error": msg });
        let _ = writeln!(stdout, "{doc}");
    }
    EXIT_BAD_INPUT
}

/// Writes the SVG timeline when asked and there is a failure to draw.
fn draw(
    args: &CheckHistoryArgs,
    result: &CheckResult,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) {
    let Some(path) = &args.svg else { return };
    let Some(failure) = &result.failure else {
        let _ = writeln!(
            stderr,
            "note: no violation to draw; {} not written",
            path.display()
        );
        return;
    };
    match write_svg(failure, path) {
        Ok(()) if !args.json => {
            let _ = writeln!(stdout, "timeline written to {}", path.display());
        }
        Ok(()) => {}
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot write {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: &str = r#"{"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "a"}
{"process": 0, "type": "ok", "f": "put", "key": "k", "value": "a"}
{"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "b"}
{"process": 0, "type": "ok", "f": "put", "key": "k", "value": "b"}
{"process": 1, "type": "invoke", "f": "get", "key": "k", "value": null}
{"process": 1, "type": "ok", "f": "get", "key": "k", "value": "a"}
"#;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("checker-cli-{}-{name}", std::process::id()))
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let p = temp_path(name);
        std::fs::write(&p, text).expect("temp dir is writable");
        p
    }

    fn args(file: PathBuf) -> CheckHistoryArgs {
        CheckHistoryArgs {
            file,
            model: Model::Kv,
            json: false,
            timeout: None,
            svg: None,
        }
    }

    fn run(a: &CheckHistoryArgs) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_cli(a, &mut out, &mut err);
        let s = |v: Vec<u8>| String::from_utf8(v).expect("utf-8 output");
        (code, s(out), s(err))
    }

    #[test]
    fn linearizable_exits_0() {
        let ok: String = STALE.lines().take(4).collect::<Vec<_>>().join("\n");
        let (code, out, _) = run(&args(temp("ok.jsonl", &ok)));
        assert_eq!(code, 0);
        assert!(out.starts_with("linearizable\n"), "{out}");
    }

    #[test]
    fn violation_exits_1_explains_and_draws() {
        let mut a = args(temp("stale.jsonl", STALE));
        let svg = temp_path("stale.svg");
        a.svg = Some(svg.clone());
        let (code, out, _) = run(&a);
        assert_eq!(code, 1);
        assert!(out.starts_with("not-linearizable\n"), "{out}");
        assert!(out.contains("key \"k\""), "{out}");
        assert!(out.contains("could not be placed"), "{out}");
        assert!(out.contains("get -> \"a\""), "{out}");
        assert!(out.contains("timeline written to"), "{out}");
        let drawing = std::fs::read_to_string(&svg).expect("svg written");
        assert!(
            drawing.starts_with("<svg") && drawing.contains("#e6550d"),
            "{drawing}"
        );
    }

    #[test]
    fn json_prints_one_document() {
        let mut a = args(temp("stale-json.jsonl", STALE));
        a.json = true;
        let svg = temp_path("json.svg");
        a.svg = Some(svg.clone());
        let (code, out, _) = run(&a);
        assert_eq!(code, 1);
        assert!(svg.exists(), "the timeline is drawn in JSON mode too");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("exactly one JSON document");
        assert_eq!(doc["verdict"], "not-linearizable");
        assert_eq!(doc["model"], "kv");
        assert_eq!(doc["ops"], 3);
        assert_eq!(doc["partitions"], 1);
        assert!(doc["elapsed_ms"].is_number());
        assert_eq!(doc["failure"]["key"], "k");
        assert_eq!(doc["failure"]["state"], "b");
        assert_eq!(doc["failure"]["unplaced"][0]["output"], "a");
        assert_eq!(doc["failure"]["window"][0]["role"], "linearized");
    }

    #[test]
    fn malformed_input_exits_2_with_line() {
        let bad = STALE.replacen("\"get\"", "\"gte\"", 1);
        let mut a = args(temp("bad.jsonl", &bad));
        let (code, out, err) = run(&a);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains(":5: unknown f \"gte\""), "{err}");
        a.json = true;
        let (code, out, _) = run(&a);
        assert_eq!(code, 2);
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(
            (doc["verdict"].as_str(), doc["line"].as_u64()),
            (Some("error"), Some(5))
        );
    }

    #[test]
    fn wrong_model_and_missing_file_exit_2() {
        let mut a = args(temp("stale-reg.jsonl", STALE));
        a.model = Model::Register;
        let (code, _, err) = run(&a);
        assert_eq!(code, 2);
        assert!(
            err.contains(":1: f \"put\" is not an operation of model register"),
            "{err}"
        );
        let (code, _, err) = run(&args(PathBuf::from("/nonexistent/history.jsonl")));
        assert_eq!(code, 2);
        assert!(err.contains("cannot open"), "{err}");
    }

    #[test]
    fn timeout_exits_3() {
        let mut a = args(temp("stale-timeout.jsonl", STALE));
        a.timeout = Some(Duration::ZERO);
        let (code, out, _) = run(&a);
        assert_eq!(code, 3);
        assert!(
            out.starts_with("unknown\n") && out.contains("timed out"),
            "{out}"
        );
    }
}
