//! The self-contained HTML report of `synod compare --out DIR` (`DIR/index.html`).
//!
//! [`render`] turns the comparison's JSON document ([`Report::json`](super::Report::json))
//! into one HTML5 page: a header with the plan, then per workload the throughput,
//! latency (percentile bars and CDFs), availability through the scripted split, cost
//! per operation, recovery time and the promises with their verdicts, then the
//! space-time diagrams the caller passes in.
//!
//! Nothing on the page is fetched: the CSS is inline, every chart is inline SVG drawn
//! here, and a Content-Security-Policy ([`CONTENT_SECURITY_POLICY`]) forbids every load,
//! so an archived report looks the same years later. There is no script. The same
//! document renders to the same bytes: numbers are printed with fixed precision and
//! nothing reads the clock. The page is also well-formed XML (polyglot HTML), which is
//! how the tests check it.
//!
//! # Layout
//! - this file: [`render`], the sections of the page and the figures in them
//! - `chart`: the two chart kinds (bars grouped by protocol, lines) and their axes
//! - `write`: HTML and SVG writers that escape every text and attribute, number formats

mod chart;
mod write;

use chart::{bar_chart, line_chart, Axis, Bar, BarChart, Group, LegendItem, LineChart, Series};
use serde_json::Value;
use write::{fixed, short, Html, Td};

/// The protocols' colors, in plan order (Tableau 10): a protocol keeps its color in
/// every chart and table of the page.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The page's policy: inline styles only, no script, no fetch of any kind.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Content width in px: at 1280 px the page keeps a 40 px margin on each side.
const PAGE_WIDTH: f64 = 1200.0;
/// Space between the charts of a grid (as `.grid` in [`STYLE`]).
const GAP: f64 = 20.0;
/// Two charts to a row, and three; whole pixels, so that rounding never wraps a row.
const HALF: f64 = 590.0;
const THIRD: f64 = 386.0;
const _: () = assert!(2.0 * HALF + GAP <= PAGE_WIDTH && 3.0 * THIRD + 2.0 * GAP <= PAGE_WIDTH);

/// A 0–1 axis (quantiles, served fractions) with headroom, so that a line at 1
/// stays clear of the plot's top edge.
const FRACTION: Axis = Axis::fixed(0.0, 1.04, 0.25);

/// The stylesheet. No `<` or `&` in it, so that the page stays well-formed XML.
const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:1200px;margin:0 auto;padding:24px 40px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:21px;border-bottom:2px solid #ddd;padding-bottom:4px;margin:44px 0 8px}
h3{font-size:16px;margin:26px 0 8px}
p.plan,p.note{color:#555;margin:4px 0}
nav{margin:10px 0}
nav a{margin-right:16px}
summary{font-weight:600;margin:20px 0 8px;cursor:pointer}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.grid{display:flex;flex-wrap:wrap;gap:20px}
.broken{color:#b00020;font-weight:600}
.kept{color:#2e7d32}
.diagram{overflow-x:auto;border:1px solid #eee;padding:8px}
svg{max-width:100%;height:auto;display:block}
svg text{font-family:inherit}
svg .title{font-size:14px;font-weight:600;fill:#222}
svg .tick{font-size:11px;fill:#555}
svg .label{font-size:12px;fill:#333}
svg .group{font-size:12px;font-weight:600;fill:#222}
svg .legend{font-size:12px;fill:#333}
svg .band{font-size:11px;fill:#555}
";

/// Renders the comparison document `report` as one self-contained HTML5 page.
/// `diagrams` are (protocol, complete `<svg>…</svg>`) pairs shown under
/// "Space-time diagrams"; the section is left out when there are none.
pub fn render(report: &Value, diagrams: &[(String, String)]) -> String {
    let view = View::new(report);
    let mut h = Html::default();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n");
    h.void("meta", &[("charset", "utf-8")]);
    let csp = [
        ("http-equiv", "Content-Security-Policy"),
        ("content", CONTENT_SECURITY_POLICY),
    ];
    h.void("meta", &csp);
    h.void(
        "meta",
        &[("name", "viewport"), ("content", "width=device-width")],
    );
    h.el(
        "title",
        &[],
        &format!("synod compare — {}", view.workloads.join(", ")),
    );
    h.el("style", &[], STYLE);
    h.raw("</head>\n<body>\n<main>\n");
    header(&mut h, &view);
    for &workload in &view.workloads {
        workload_section(&mut h, &view, workload);
    }
    if let Some(chart) = fan_out_chart(&view) {
        h.open("section", &[("id", "fan-out")]);
        h.el("h2", &[], "Fan-out: a transaction over more shards");
        h.el(
            "p",
            &[("class", "note")],
            "The write workload as transactions of n puts on n shards, no faults, seed 0. \
             Classic 2PC sends PREPARE, a vote, COMMIT and an ACK per participant (4n); \
             twopc-nb adds the Raft rounds replicating its coordinator's records; a \
             consensus protocol replicates the whole transaction as one command.",
        );
        h.raw(&chart);
        h.close("section");
    }
    if !diagrams.is_empty() {
        diagrams_section(&mut h, diagrams);
    }
    h.raw("</main>\n</body>\n</html>\n");
    h.0
}

/// The parts of the JSON document the page is drawn from, in report order.
struct View<'a> {
    doc: &'a Value,
    workloads: Vec<&'a str>,
    profiles: Vec<&'a str>,
    /// The plan's protocols, then any that only a cell names: the index is the
    /// protocol's color.
    protocols: Vec<&'a str>,
}

impl<'a> View<'a> {
    fn new(doc: &'a Value) -> View<'a> {
        let names = |key: &str, field: Option<&str>| -> Vec<&'a str> {
            let item = |v: &'a Value| match field {
                Some(f) => v.get(f).and_then(Value::as_str),
                None => v.as_str(),
            };
            list(doc, key).iter().filter_map(item).collect()
        };
        let mut protocols = names("protocols", Some("name"));
        for c in list(doc, "cells") {
            if !protocols.contains(&str_at(c, "protocol")) {
                protocols.push(str_at(c, "protocol"));
            }
        }
        View {
            doc,
            workloads: names("workloads", None),
            profiles: names("profiles", Some("name")),
            protocols,
        }
    }

    fn cell(&self, workload: &str, protocol: &str, profile: &str) -> Option<&'a Value> {
        list(self.doc, "cells").iter().find(|c| {
            str_at(c, "workload") == workload
                && str_at(c, "protocol") == protocol
                && str_at(c, "profile") == profile
        })
    }

    /// The cells of `workload` and `protocol` with their profiles, in profile order.
    fn row(&self, workload: &str, protocol: &str) -> Vec<(&'a str, &'a Value)> {
        let cell = |&f: &&'a str| Some((f, self.cell(workload, protocol, f)?));
        self.profiles.iter().filter_map(cell).collect()
    }

    /// The protocols that ran `workload`, in plan order.
    fn ran(&self, workload: &str) -> Vec<&'a str> {
        let ran = |p: &&str| !self.row(workload, p).is_empty();
        self.protocols.iter().copied().filter(ran).collect()
    }

    fn color(&self, protocol: &str) -> &'static str {
        let i = self.protocols.iter().position(|&p| p == protocol);
        PALETTE[i.unwrap_or(0) % PALETTE.len()]
    }

    /// A number of the plan, 0 when missing.
    fn plan(&self, key: &str) -> f64 {
        num_at(self.doc, &[key]).unwrap_or(0.0)
    }

    /// The split window `[start, end]`, in seconds.
    fn split_s(&self) -> (f64, f64) {
        let at = |i: usize| list(self.doc, "split_ms").get(i).and_then(Value::as_f64);
        (at(0).unwrap_or(0.0) / 1e3, at(1).unwrap_or(0.0) / 1e3)
    }
}

/// The array at `key`, empty when missing.
fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The number at `path` (object keys), if there is one.
fn num_at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// The string at `key`, "" when missing.
fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Sections

fn header(h: &mut Html, v: &View) {
    h.el("h1", &[], "synod compare");
    let (from, to) = v.split_s();
    let plan = format!(
        "{} seeds per cell · {} s runs ({} s for the partition profile, split {from}–{to} s) · {} clients · {} nodes · all times virtual",
        v.plan("seeds"),
        v.plan("run_ms") / 1e3,
        v.plan("partition_run_ms") / 1e3,
        v.plan("clients"),
        v.plan("nodes"),
    );
    h.el("p", &[("class", "plan")], &plan);
    h.open("nav", &[]);
    for w in &v.workloads {
        h.el(
            "a",
            &[("href", &format!("#workload-{w}"))],
            &format!("workload {w}"),
        );
    }
    h.close("nav");
    h.el("h3", &[], "Fault profiles");
    let text = |p: &Value, k: &str| Td::Text(str_at(p, k).to_string());
    let rows = list(v.doc, "profiles").iter();
    let rows = rows.map(|p| vec![text(p, "name"), text(p, "faults"), text(p, "description")]);
    h.table(&["profile", "faults", "what happens"], rows.collect());
    h.el("h3", &[], "Protocols");
    let rows = list(v.doc, "protocols").iter().map(|p| {
        let name = str_at(p, "name");
        let swatch = Td::Protocol(name.to_string(), v.color(name));
        vec![swatch, text(p, "promise"), text(p, "description")]
    });
    h.table(&["protocol", "promises", "design"], rows.collect());
}

fn workload_section(h: &mut Html, v: &View, workload: &str) {
    h.open("section", &[("id", &format!("workload-{workload}"))]);
    h.el("h2", &[], &format!("Workload {workload}"));
    if v.ran(workload).is_empty() {
        h.el("p", &[("class", "note")], "No protocol ran this workload.");
    } else {
        h.el("h3", &[], "Throughput");
        h.raw(&throughput_chart(v, workload));
        h.el("h3", &[], "Latency");
        h.raw(&latency_chart(v, workload));
        h.open("div", &[("class", "grid")]);
        for profile in &v.profiles {
            h.raw(&cdf_chart(v, workload, profile));
        }
        h.close("div");
        availability(h, v, workload);
        h.el("h3", &[], "Cost per operation");
        h.open("div", &[("class", "grid")]);
        h.raw(&per_op_chart(
            v,
            workload,
            "messages",
            "Peer messages per ok op",
        ));
        h.raw(&per_op_chart(v, workload, "bytes", "Bytes sent per ok op"));
        h.close("div");
        if let Some(chart) = recovery_chart(v, workload) {
            h.el("h3", &[], "Recovery after losing the leader");
            h.raw(&chart);
        }
    }
    promises(h, v, workload);
    not_run(h, v, workload);
    figures(h, v, workload);
    h.close("section");
}

/// Small multiples of the partition profile's timelines, one per protocol.
fn availability(h: &mut Html, v: &View, workload: &str) {
    let timeline = |p: &'_ str| {
        let a = v.cell(workload, p, "partition")?.get("availability")?;
        a.is_object().then(|| availability_chart(v, p, a))
    };
    let charts: Vec<String> = v.ran(workload).into_iter().filter_map(timeline).collect();
    if charts.is_empty() {
        return;
    }
    h.el("h3", &[], "Availability through the partition");
    let (from, to) = v.split_s();
    let note = format!(
        "Fraction of requests served, per bucket, for the clients cut off with the old leader (minority) and the others (majority); the split lasts from {from} s to {to} s."
    );
    h.el("p", &[("class", "note")], &note);
    h.open("div", &[("class", "grid")]);
    for chart in charts {
        h.raw(&chart);
    }
    h.close("div");
}

/// The protocol metrics the verdict table shows, and how they add up over cells.
const METRICS: [(&str, &str); 4] = [
    ("lost_updates", "lost updates"),
    ("siblings_max", "siblings at most"),
    ("blocked_over_1s", "blocked > 1 s"),
    ("in_doubt_at_end", "in doubt at end"),
];

fn promises(h: &mut Html, v: &View, workload: &str) {
    h.el("h3", &[], "Promises and verdicts");
    let mut rows = Vec::new();
    let mut violations = Vec::new();
    for p in v.ran(workload) {
        let row = v.row(workload, p);
        let runs: f64 = row.iter().filter_map(|(_, c)| num_at(c, &["runs"])).sum();
        let broken: Vec<String> = (row.iter())
            .flat_map(|(profile, c)| list(c, "violations").iter().map(move |b| (profile, b)))
            .map(|(profile, b)| format!("{p} · {profile}: {}", b.as_str().unwrap_or("")))
            .collect();
        let first = row[0].1;
        let mut tr = vec![
            Td::Protocol(p.to_string(), v.color(p)),
            Td::Text(str_at(first, "promise").to_string()),
            Td::Num(fixed(runs, 0)),
            match broken.len() {
                0 => Td::Class("kept".into(), "kept"),
                n => Td::Class(format!("BROKEN in {n} runs"), "broken"),
            },
        ];
        for (key, _) in METRICS {
            let values = row
                .iter()
                .filter_map(|(_, c)| c.get("metrics")?.get(key)?.as_u64());
            let total = match key.ends_with("_max") {
                true => values.max(),
                false => values.reduce(|a, b| a + b),
            };
            tr.push(Td::Num(total.map_or("–".into(), |t| t.to_string())));
        }
        tr.push(Td::Text(str_at(first, "serves").to_string()));
        rows.push(tr);
        violations.extend(broken);
    }
    let mut head = vec!["protocol", "promises", "runs", "verdict"];
    head.extend(METRICS.map(|(_, label)| label));
    head.push("serves only");
    h.table(&head, rows);
    let note = "Metrics add up over the workload's profiles and seeds (siblings: the most seen); – where the protocol does not measure one.";
    h.el("p", &[("class", "note")], note);
    if !violations.is_empty() {
        h.open("ul", &[("class", "broken")]);
        for line in violations {
            h.el("li", &[], &line);
        }
        h.close("ul");
    }
}

fn not_run(h: &mut Html, v: &View, workload: &str) {
    let here = |n: &&Value| str_at(n, "workload") == workload;
    let not_run: Vec<&Value> = list(v.doc, "not_run").iter().filter(here).collect();
    if not_run.is_empty() {
        return;
    }
    h.el("p", &[], "Not run:");
    h.open("ul", &[]);
    for n in not_run {
        let line = format!("{} — {}", str_at(n, "protocol"), str_at(n, "reason"));
        h.el("li", &[], &line);
    }
    h.close("ul");
}

/// Every figure of every cell, as the terminal table prints them.
fn figures(h: &mut Html, v: &View, workload: &str) {
    h.open("details", &[]);
    h.el("summary", &[], "All figures, per protocol and profile");
    let head = [
        "protocol",
        "profile",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "max ms",
        "msg/op",
        "bytes/op",
        "writes/op",
        "syncs/op",
        "recovery p50 / max ms",
        "ok / fail / info",
    ];
    let mut rows = Vec::new();
    for p in v.ran(workload) {
        for (profile, c) in v.row(workload, p) {
            let n = |path: &[&str], d: usize| fixed(num_at(c, path).unwrap_or(0.0), d);
            let recovery = match num_at(c, &["recovery_ms", "p50"]) {
                Some(p50) => format!("{} / {}", fixed(p50, 0), n(&["recovery_ms", "max"], 0)),
                None => "–".into(),
            };
            let ops = ["ok", "fail", "info"].map(|k| n(&["ops", k], 0));
            let figures = [
                n(&["throughput_ops_per_virtual_sec"], 0),
                n(&["latency_ms", "p50"], 2),
                n(&["latency_ms", "p99"], 1),
                n(&["latency_ms", "p999"], 0),
                n(&["latency_ms", "max"], 0),
                n(&["per_op", "messages"], 1),
                n(&["per_op", "bytes"], 0),
                n(&["per_op", "durable_writes"], 2),
                n(&["per_op", "syncs"], 2),
                recovery,
                ops.join(" / "),
            ];
            let mut tr = vec![
                Td::Protocol(p.to_string(), v.color(p)),
                Td::Text(profile.to_string()),
            ];
            tr.extend(figures.map(Td::Num));
            rows.push(tr);
        }
    }
    h.table(&head, rows);
    h.close("details");
}

fn diagrams_section(h: &mut Html, diagrams: &[(String, String)]) {
    h.open("section", &[("id", "diagrams")]);
    h.el("h2", &[], "Space-time diagrams");
    for (protocol, svg) in diagrams {
        h.el("h3", &[], protocol);
        h.open("div", &[("class", "diagram")]);
        h.raw(strip_prolog(svg));
        h.close("div");
    }
    h.close("section");
}

/// `svg` without a leading `<?xml …?>` declaration, which may not appear inside HTML.
fn strip_prolog(svg: &str) -> &str {
    let s = svg.trim_start();
    match s
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
    {
        Some((_, body)) => body.trim_start(),
        None => s,
    }
}

// ---------------------------------------------------------------------------
// Figures

/// Bars of the numbers at `layers` (paths into a cell) per protocol × profile,
/// grouped by protocol; `unit` ends their tooltips.
fn cell_bars(v: &View, workload: &str, layers: &[&[&str]], unit: &str) -> Vec<Group> {
    let bar = |p: &str, profile: &str, c: &Value| {
        let values: Vec<f64> = layers
            .iter()
            .map(|path| num_at(c, path).unwrap_or(0.0))
            .collect();
        let shown: Vec<String> = values.iter().map(|&x| short(x)).collect();
        Bar {
            label: profile.to_string(),
            tip: format!("{p} · {profile}: {} {unit}", shown.join(" / ")),
            layers: values,
        }
    };
    let group = |p: &str| Group {
        label: p.to_string(),
        color: v.color(p),
        bars: v
            .row(workload, p)
            .into_iter()
            .map(|(f, c)| bar(p, f, c))
            .collect(),
    };
    v.ran(workload).into_iter().map(group).collect()
}

fn throughput_chart(v: &View, workload: &str) -> String {
    let layers: [&[&str]; 1] = [&["throughput_ops_per_virtual_sec"]];
    bar_chart(&BarChart {
        title: format!("Throughput · workload {workload}"),
        y_label: "ops per virtual second",
        size: (PAGE_WIDTH, 340.0),
        log: false,
        layer_names: &[],
        groups: cell_bars(v, workload, &layers, "ops/s"),
    })
}

fn latency_chart(v: &View, workload: &str) -> String {
    let layers: [&[&str]; 3] = [
        &["latency_ms", "p50"],
        &["latency_ms", "p99"],
        &["latency_ms", "p999"],
    ];
    bar_chart(&BarChart {
        title: format!("Latency percentiles · workload {workload}"),
        y_label: "latency, ms (log scale)",
        size: (PAGE_WIDTH, 380.0),
        log: true,
        layer_names: &["p50", "p99", "p999"],
        groups: cell_bars(v, workload, &layers, "ms (p50 / p99 / p999)"),
    })
}

/// One of the per-op costs, `key` under the cells' `per_op`.
fn per_op_chart(v: &View, workload: &str, key: &str, title: &str) -> String {
    let unit = format!("{key} / op");
    bar_chart(&BarChart {
        title: format!("{title} · workload {workload}"),
        y_label: &unit,
        size: (PAGE_WIDTH, 300.0),
        log: false,
        layer_names: &[],
        groups: cell_bars(v, workload, &[&["per_op", key]], &unit),
    })
}

/// Recovery p50 and max per protocol × profile, of the cells that lost a leader.
fn recovery_chart(v: &View, workload: &str) -> Option<String> {
    let layers: [&[&str]; 2] = [&["recovery_ms", "p50"], &["recovery_ms", "max"]];
    let mut groups = cell_bars(v, workload, &layers, "ms (p50 / max)");
    for g in &mut groups {
        let lost = |b: &Bar| {
            let cell = v.cell(workload, &g.label, &b.label);
            cell.and_then(|c| num_at(c, &["recovery_ms", "p50"]))
                .is_some()
        };
        g.bars = std::mem::take(&mut g.bars)
            .into_iter()
            .filter(lost)
            .collect();
    }
    groups.retain(|g| !g.bars.is_empty());
    let chart = BarChart {
        title: format!("From losing the leader to serving again · workload {workload}"),
        y_label: "recovery, ms",
        size: (PAGE_WIDTH, 320.0),
        log: false,
        layer_names: &["p50", "max"],
        groups,
    };
    (!chart.groups.is_empty()).then(|| bar_chart(&chart))
}

/// Peer messages per transaction by participants, one group per protocol.
fn fan_out_chart(v: &View) -> Option<String> {
    let runs = list(v.doc, "fan_out");
    let group = |p: &str| {
        let bars: Vec<Bar> = (runs.iter())
            .filter(|f| str_at(f, "protocol") == p)
            .map(|f| {
                let n = num_at(f, &["participants"]).unwrap_or(0.0);
                let m = num_at(f, &["messages_per_txn"]).unwrap_or(0.0);
                Bar {
                    label: format!("n={n}"),
                    tip: format!("{p} · {n} shard(s): {} messages per transaction", short(m)),
                    layers: vec![m],
                }
            })
            .collect();
        (!bars.is_empty()).then(|| Group {
            label: p.to_string(),
            color: v.color(p),
            bars,
        })
    };
    let groups: Vec<Group> = v.protocols.iter().filter_map(|p| group(p)).collect();
    (!groups.is_empty()).then(|| {
        bar_chart(&BarChart {
            title: "Peer messages per transaction by shards per transaction".into(),
            y_label: "messages / transaction",
            size: (PAGE_WIDTH, 320.0),
            log: false,
            layer_names: &[],
            groups,
        })
    })
}

/// Each protocol's latency CDF under `profile`.
fn cdf_chart(v: &View, workload: &str, profile: &str) -> String {
    let series = |p: &str| {
        let cdf = v.cell(workload, p, profile)?.get("latency_ms")?;
        let point = |pt: &Value| Some((pt.get(1)?.as_f64()?, pt.get(0)?.as_f64()?));
        Some(Series {
            name: p.to_string(),
            color: v.color(p),
            dashed: false,
            points: list(cdf, "cdf").iter().filter_map(point).collect(),
        })
    };
    let series: Vec<Series> = v.ran(workload).into_iter().filter_map(series).collect();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let legend = series
        .iter()
        .map(|s| LegendItem::line(&s.name, s.color, false));
    line_chart(&LineChart {
        title: format!("Latency CDF · {workload} · profile {profile}"),
        x_label: "latency, ms (log scale)",
        y_label: "quantile",
        size: (HALF, 300.0),
        x: Axis::log(xs),
        y: FRACTION,
        bands: Vec::new(),
        legend: legend.collect(),
        series,
    })
}

/// One protocol's served fraction per bucket on both sides over the main phase
/// (the heal after it is left out), the split shaded.
fn availability_chart(v: &View, protocol: &str, a: &Value) -> String {
    let bucket_s = num_at(a, &["bucket_ms"]).unwrap_or(100.0).max(1.0) / 1e3;
    let served = |side: &str| a.get(side).map_or(&[][..], |s| list(s, "served"));
    let buckets = served("majority").len().max(served("minority").len());
    let end = match v.plan("partition_run_ms") / 1e3 {
        run if run > 0.0 => run,
        _ => buckets as f64 * bucket_s,
    };
    let in_run = ((end / bucket_s) + 1e-9).floor() as usize;
    let color = v.color(protocol);
    let side = |name: &str, dashed: bool| {
        let fractions = served(name).iter().filter_map(Value::as_f64).take(in_run);
        let step = |(b, f): (usize, f64)| {
            let t = b as f64 * bucket_s;
            [(t, f), (t + bucket_s, f)]
        };
        Series {
            name: format!("{protocol} · {name} side"),
            color,
            dashed,
            points: fractions.enumerate().flat_map(step).collect(),
        }
    };
    let (from, to) = v.split_s();
    line_chart(&LineChart {
        title: format!("{protocol} · served through the split"),
        x_label: "virtual time, s",
        y_label: "served fraction",
        size: (THIRD, 250.0),
        x: Axis::linear(end),
        y: FRACTION,
        bands: vec![(from, to, format!("split {from}–{to} s"))],
        legend: vec![
            LegendItem::line("majority", color, false),
            LegendItem::line("minority", color, true),
            LegendItem::swatch("split", chart::BAND),
        ],
        series: vec![side("majority", false), side("minority", true)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small comparison document of the shape `Report::json` writes: two
    /// protocols, two profiles (one the split), one workload, one not run.
    fn sample(first: &str) -> Value {
        let cdf = |scale: f64| {
            let qs = [0.0, 0.5, 0.9, 0.99, 0.999, 1.0];
            qs.iter()
                .map(|&q| json!([q, scale * (1.0 + 40.0 * q * q)]))
                .collect::<Vec<_>>()
        };
        let side = |down: usize| {
            let served: Vec<f64> = (0..31)
                .map(|b| if (10..down).contains(&b) { 0.0 } else { 1.0 })
                .collect();
            json!({ "ok": [], "unserved": [], "served": served })
        };
        let cell = |protocol: &str, profile: &str, scale: f64| {
            let split = profile == "partition";
            json!({
                "protocol": protocol, "workload": "kv", "profile": profile,
                "promise": "linearizable", "nodes": 3, "runs": 2,
                "ops": { "ok": 2004, "fail": 3, "info": 0 },
                "throughput_ops_per_virtual_sec": 2157.5 / scale,
                "latency_ms": { "p50": 1.7 * scale, "p99": 3.3 * scale, "p999": 62.7 * scale,
                                "max": 63.4 * scale, "cdf": cdf(scale) },
                "per_op": { "messages": 4.4 * scale, "bytes": 49.75, "durable_writes": 2.0, "syncs": 1.5 },
                "recovery_ms": match split {
                    true => json!({ "count": 2, "p50": 523.07, "max": 610.5 }),
                    false => json!({ "count": 0, "p50": null, "max": null }),
                },
                "availability": match split {
                    true => json!({ "bucket_ms": 100, "minority": side(22), "majority": side(15) }),
                    false => Value::Null,
                },
                "metrics": match protocol {
                    "vvsync-lww" => json!({ "lost_updates": 1681, "siblings_max": 1 }),
                    _ => json!({}),
                },
                "verdict": "kept", "violations": [], "serves": null,
            })
        };
        json!({
            "seeds": 2, "run_ms": 500, "partition_run_ms": 3000, "split_ms": [1000, 2000],
            "clients": 6, "nodes": 3, "workloads": ["kv"],
            "profiles": [
                { "name": "none", "faults": "none", "description": "no faults" },
                { "name": "partition", "faults": "split", "description": "split at 1 s, healed at 2 s" },
            ],
            "protocols": [
                { "name": first, "description": "Raft & co", "promise": "linearizable" },
                { "name": "vvsync-lww", "description": "last writer wins", "promise": "convergent" },
            ],
            "cells": [
                cell(first, "none", 1.0), cell(first, "partition", 1.2),
                cell("vvsync-lww", "none", 0.6), cell("vvsync-lww", "partition", 0.7),
            ],
            "not_run": [{ "protocol": "twopc", "workload": "kv", "reason": "not <this> one" }],
        })
    }

    /// Every `<svg>…</svg>` of `page`.
    fn svgs(page: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut rest = page;
        while let Some(start) = rest.find("<svg") {
            let len = rest[start..].find("</svg>").expect("every <svg> is closed") + "</svg>".len();
            found.push(&rest[start..start + len]);
            rest = &rest[start + len..];
        }
        found
    }

    #[test]
    fn every_svg_is_well_formed_xml_with_a_title() {
        let page = render(&sample("raft"), &[]);
        let charts = svgs(&page);
        // Throughput, latency, 2 CDFs, 2 availability, messages, bytes, recovery.
        assert_eq!(charts.len(), 9, "{page}");
        for svg in charts {
            let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
            let root = doc.root_element();
            assert_eq!(
                root.tag_name().namespace(),
                Some("http://www.w3.org/2000/svg")
            );
            let title = root.first_element_child().expect("a first child");
            assert_eq!(title.tag_name().name(), "title", "{svg}");
            assert!(!title.text().unwrap_or("").is_empty(), "{svg}");
        }
    }

    #[test]
    fn the_whole_page_is_well_formed_xml() {
        // A diagram as a file would hold it, with its XML declaration.
        let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>";
        let page = render(&sample("raft"), &[("raft".to_string(), svg.to_string())]);
        let html5_doctype = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(&page, html5_doctype)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(page.contains("Space-time diagrams") && !page.contains("<?xml"));
        assert!(!render(&sample("raft"), &[]).contains("Space-time diagrams"));
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let page = render(&sample("r<&\"'x"), &[]);
        assert!(
            page.contains("r&lt;&amp;&quot;&apos;x"),
            "the name is shown, escaped"
        );
        assert!(!page.contains("r<&"), "never raw");
        assert!(page.contains("Raft &amp; co") && page.contains("not &lt;this&gt; one"));
        for svg in svgs(&page) {
            roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        }
    }

    #[test]
    fn the_page_fetches_nothing() {
        let page = render(&sample("raft"), &[]);
        let xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
        let rest = page.replace(xmlns, "");
        assert!(
            !rest.contains("http://") && !rest.contains("https://"),
            "{rest}"
        );
        assert!(!rest.contains("<script") && !rest.contains("<link") && !rest.contains("<img"));
        assert!(!rest.contains("url("), "no CSS fetches");
        assert!(page.contains(&write::esc(CONTENT_SECURITY_POLICY)));
    }

    #[test]
    fn the_same_document_renders_the_same_bytes() {
        let a = render(&sample("raft"), &[]);
        let b = render(&sample("raft"), &[]);
        assert_eq!(a, b);
        let parsed: Value =
            serde_json::from_str(&serde_json::to_string(&sample("raft")).unwrap()).unwrap();
        assert_eq!(a, render(&parsed, &[]), "after a JSON round trip too");
    }

    #[test]
    fn each_protocol_keeps_its_color() {
        let page = render(&sample("raft"), &[]);
        let raft = format!("fill=\"{}\"", PALETTE[0]);
        let lww = format!("stroke=\"{}\"", PALETTE[1]);
        for svg in svgs(&page)
            .iter()
            .filter(|s| s.contains("Throughput") || s.contains("Latency percentiles"))
        {
            assert!(svg.contains(&raft), "{svg}");
        }
        assert!(svgs(&page)
            .iter()
            .filter(|s| s.contains("CDF"))
            .all(|s| s.contains(&lww)));
    }

    #[test]
    fn axes_have_round_ticks() {
        assert_eq!(
            Axis::linear(2157.0).ticks(),
            [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0]
        );
        assert_eq!(
            Axis::linear(0.3)
                .ticks()
                .iter()
                .map(|&t| short(t))
                .collect::<Vec<_>>(),
            ["0", "0.1", "0.2", "0.3"]
        );
        let log = Axis::log([0.5, 62.7].into_iter());
        assert_eq!((log.lo, log.hi), (0.1, 100.0));
        assert_eq!(log.ticks().len(), 4, "decades only past two");
        assert_eq!(short(25000.0), "25k");
        assert_eq!(short(1.715), "1.72");
        assert_eq!(fixed(-0.0001, 2), "0.00");
    }
}
