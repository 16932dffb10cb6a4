//! `synod check-history FILE --model list-append [--json]`, without an argument
//! parser. Exit codes: 0 serializable, 1 not-serializable, 2 bad input (unreadable
//! file or a malformed line, named by number).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use serde_json::json;

use super::check;
use super::history::TxnHistory;

/// Exit code for bad input.
const EXIT_BAD_INPUT: i32 = 2;

/// Arguments of `check-history --model list-append`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnCliArgs {
    /// The JSON-lines history.
    pub file: PathBuf,
    /// Print one JSON document instead of text.
    pub json: bool,
}

/// Runs the check and prints the verdict; returns the exit code.
pub fn run_cli(args: &TxnCliArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let file = args.file.display();
    let parsed = File::open(&args.file)
        .map_err(|e| (None, format!("cannot open {file}: {e}")))
        .and_then(|f| {
            TxnHistory::parse_jsonl(BufReader::with_capacity(1 << 16, f))
                .map_err(|e| (Some(e.line), format!("{file}:{}: {}", e.line, e.kind)))
        });
    let history = match parsed {
        Ok(h) => h,
        Err((line, msg)) => {
            let _ = writeln!(stderr, "error: {msg}");
            if args.json {
                // Keep the promise of exactly one JSON document on stdout.
                let doc = json!({ "verdict": "error", "model": "list-append", "line": line, "error": msg });
                let _ = writeln!(stdout, "{doc}");
            }
            return EXIT_BAD_INPUT;
        }
    };
    let report = check(&history);
    // A closed pipe cannot be reported anywhere better; the exit code carries the verdict.
    if args.json {
        let _ = writeln!(stdout, "{}", report.to_json());
    } else {
        let _ = write!(stdout, "{}", report.explain());
    }
    report.verdict.exit_code()
}
