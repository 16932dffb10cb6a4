//! Draws a failure's window as an SVG timeline: one row per process, each
//! op a bar from invoke to return, ops that could not be placed in red.
//!
//! The x axis is the *order* of events, not their line numbers: lines are
//! replaced by their rank among the window's event lines, so a window far
//! into a long file is as readable as one at its start.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::report::{Failure, OpStatus, Role, WindowOp};

const ROW: f64 = 34.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 80.0;
const STEP: f64 = 90.0;

/// Renders the failure's window as a standalone SVG document.
pub fn render_svg(f: &Failure) -> String {
    let times = event_times(&f.window, f.last_line);
    let x_of = |line: u64| LEFT + STEP * times.partition_point(|&t| t < line) as f64;
    let right = LEFT + STEP * (times.len() as f64 + 0.5);
    let mut procs: Vec<u64> = f.window.iter().map(|w| w.op.process).collect();
    procs.sort_unstable();
    procs.dedup();
    // Wide enough for the two header lines (about 6.6 px per character).
    let width = (right + 40.0).max(560.0);
    let height = TOP + ROW * procs.len() as f64 + 50.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    header(&mut s, f);
    for (row, p) in procs.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let _ = writeln!(s, r#"<text x="8" y="{}">p{p}</text>"#, y + 18.0);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{0}" x2="{right}" y2="{0}" stroke="#eee"/>"##,
            y + ROW - 2.0
        );
    }
    for w in &f.window {
        let row = procs.partition_point(|&p| p < w.op.process);
        bar(&mut s, w, TOP + ROW * row as f64, &x_of, right);
    }
    deadline_marker(&mut s, x_of(f.last_line), f.last_line, height);
    s.push_str("</svg>\n");
    s
}

/// Writes [`render_svg`] to `path`.
pub fn write_svg(f: &Failure, path: &Path) -> io::Result<()> {
    std::fs::write(path, render_svg(f))
}

/// Sorted distinct lines at which window events happen.
fn event_times(window: &[WindowOp], last: u64) -> Vec<u64> {
    let mut t: Vec<u64> = window
        .iter()
        .flat_map(|w| [Some(w.op.invoke_line), w.op.return_line])
        .flatten()
        .chain([last])
        .collect();
    t.sort_unstable();
    t.dedup();
    t
}

fn header(s: &mut String, f: &Failure) {
    let key = f
        .key
        .as_ref()
        .map_or("the unkeyed register".to_string(), |k| format!("key {k}"));
    let lines = [
        format!(
            "not linearizable: {key}, lines {}-{}",
            f.first_line, f.last_line
        ),
        format!(
            "longest linearisable prefix: {} of {} ops; state after it: {}",
            f.linearized, f.key_ops, f.state
        ),
    ];
    for (i, text) in lines.iter().enumerate() {
        let y = 18.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="8" y="{y}" font-size="12">{}</text>"#,
            esc(text)
        );
    }
    let legend = [
        ("#9ecae1", "linearised"),
        ("#e6550d", "could not be placed"),
        ("#dddddd", "info, not placed"),
    ];
    for (i, (color, label)) in legend.iter().enumerate() {
        let x = 8.0 + 190.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="46" width="14" height="10" fill="{color}"/>"#
        );
        let _ = writeln!(s, r#"<text x="{}" y="55">{label}</text>"#, x + 18.0);
    }
}

fn bar(s: &mut String, w: &WindowOp, y: f64, x_of: &impl Fn(u64) -> f64, right: f64) {
    let x0 = x_of(w.op.invoke_line);
    // Info and pending ops never return: their bar runs off the right edge.
    let open = is_info(w);
    let x1 = if open {
        right
    } else {
        w.op.return_line.map_or(right, x_of)
    };
    let (fill, stroke) = match w.role {
        Role::Linearized => ("#9ecae1", "#3182bd"),
        Role::Unplaced => ("#e6550d", "#a63603"),
        Role::Concurrent => ("#dddddd", "#888888"),
    };
    let dash = if open {
        r#" stroke-dasharray="4 3""#
    } else {
        ""
    };
    let _ = writeln!(
        s,
        r#"<rect x="{x0}" y="{}" width="{}" height="20" rx="3" fill="{fill}" stroke="{stroke}"{dash}><title>{}</title></rect>"#,
        y + 4.0,
        (x1 - x0).max(6.0),
        esc(&w.op.to_string())
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}">{}</text>"#,
        x0 + 4.0,
        y + 18.0,
        esc(&clip(&w.op.label(), x1 - x0))
    );
}

fn is_info(w: &WindowOp) -> bool {
    matches!(w.op.status, OpStatus::Info | OpStatus::Pending)
}

/// Shortens a label to roughly fit `width` pixels (6.6 px per character).
fn clip(label: &str, width: f64) -> String {
    let fit = ((width - 6.0) / 6.6).max(3.0) as usize;
    if label.chars().count() <= fit {
        label.to_string()
    } else {
        let mut t: String = label.chars().take(fit.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn deadline_marker(s: &mut String, x: f64, line: u64, height: f64) {
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#a63603" stroke-dasharray="2 2"/>"##,
        TOP - 6.0,
        height - 30.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#a63603">line {line}</text>"##,
        x - 20.0,
        height - 16.0
    );
}

/// Escapes text for XML content and attributes (every SVG and HTML the harness
/// writes goes through this one).
pub(crate) fn esc(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}
