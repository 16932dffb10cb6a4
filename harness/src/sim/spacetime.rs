//! The space-time diagram of a run's first moments, after Lamport ("Time, Clocks,
//! and the Ordering of Events in a Distributed System", CACM 1978, Figure 1): one
//! vertical line per node and one for the clients, time flowing down, every message
//! an arrow from its send to its arrival (a dropped one ends in a cross), disk writes
//! as bars on their node's line, crashes, restarts, leaders and faults marked.
//!
//! The simulator records a window of [`SimConfig::trace_until`]'s length, placed
//! [`LEAD_IN`] before the first answer a client gets — so that what it took to get
//! there (an election, a leader's synchronisation) is in it — or from the start if
//! no answer comes within [`REPLY_WAIT`] ([`RunOutcome::space_time`]);
//! [`SpaceTime::svg`] draws it. `synod sim --trace
//! FILE.svg` writes one; `synod compare --out DIR` puts one per protocol in its
//! report.
//!
//! [`SimConfig::trace_until`]: super::config::SimConfig::trace_until
//! [`RunOutcome::space_time`]: super::RunOutcome::space_time

use super::Simulator;
use crate::checker::xml_escape as escape;
use crate::protocol::SimProtocol;
use std::fmt::Write as _;
use std::time::Duration;
use synod_core::Time;

/// The lane of the clients; node `i` is lane `i + 1`.
pub const CLIENTS: usize = 0;

/// The label of a node's answer to a client (a refusal is `refusal`).
pub const REPLY: &str = "reply";

/// How much before the first answer to a client the window starts.
pub const LEAD_IN: Duration = Duration::from_millis(20);

/// How long the recording waits for a first answer.
pub const REPLY_WAIT: Duration = Duration::from_secs(1);

/// One message: a peer message, a client's request or a node's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// Sending lane.
    pub from: usize,
    /// Receiving lane.
    pub to: usize,
    /// Sent at, nanoseconds.
    pub sent_ns: u64,
    /// Arrives at, nanoseconds; `None` if dropped or held back (partition, loss).
    pub arrives_ns: Option<u64>,
    /// The message's kind (its variant name; `request`, `reply`).
    pub label: String,
}

/// Something that happened on one lane at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The lane.
    pub lane: usize,
    /// When, nanoseconds.
    pub at_ns: u64,
    /// What.
    pub what: MarkKind,
}

/// What a [`Mark`] marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// The node crashed (its unsynced writes are lost).
    Crash,
    /// The node started again from its durable state.
    Restart,
    /// The node began to believe it leads.
    Leader,
}

/// The recorded diagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpaceTime {
    /// Lane names: `clients`, then the nodes' ids.
    pub lanes: Vec<String>,
    /// The window starts here, nanoseconds.
    pub from_ns: u64,
    /// The window ends here, nanoseconds.
    pub until_ns: u64,
    /// The window's length, nanoseconds.
    window_ns: u64,
    /// Every message sent before the end.
    pub arrows: Vec<Arrow>,
    /// Disk writes: lane, start and end, nanoseconds.
    pub writes: Vec<(usize, u64, u64)>,
    /// Crashes, restarts, leaders.
    pub marks: Vec<Mark>,
    /// Faults begun before the end: when, and what (the nemesis's words).
    pub faults: Vec<(u64, String)>,
    /// Per node: whether it believed it led at its last step (for [`MarkKind::Leader`]).
    leading: Vec<bool>,
    /// The first answer to a client has placed the window.
    placed: bool,
}

impl SpaceTime {
    /// An empty recording for `nodes`, of a window `window` long.
    pub fn new(nodes: &[String], window: Duration) -> SpaceTime {
        let window_ns = window.as_nanos() as u64;
        SpaceTime {
            lanes: std::iter::once("clients".to_owned())
                .chain(nodes.iter().cloned())
                .collect(),
            from_ns: 0,
            until_ns: window_ns.max(REPLY_WAIT.as_nanos() as u64),
            window_ns,
            leading: vec![false; nodes.len()],
            ..SpaceTime::default()
        }
    }

    /// A node answered a client at `at_ns`: the first answer places the window.
    fn on_answer(&mut self, at_ns: u64) {
        if !self.placed {
            self.placed = true;
            self.from_ns = at_ns.saturating_sub(LEAD_IN.as_nanos() as u64);
            self.until_ns = self.from_ns + self.window_ns;
        }
    }

    /// Ends the recording: the window placed (from the start if no client got an
    /// answer), what lies outside it dropped, and the faults of `log` (`"<secs>s:
    /// <fault>"`, as `SimStats::faults` words them) within it added.
    pub fn finish(&mut self, log: &[String]) {
        if !self.placed {
            self.from_ns = 0;
            self.until_ns = self.window_ns;
        }
        let (from, until) = (self.from_ns, self.until_ns);
        self.arrows.retain(|a| (from..until).contains(&a.sent_ns));
        self.writes.retain(|&(_, s, e)| s < until && e >= from);
        self.marks.retain(|m| (from..until).contains(&m.at_ns));
        self.add_faults(log);
    }

    /// The faults of `log` that began within the window.
    fn add_faults(&mut self, log: &[String]) {
        for entry in log {
            let Some((secs, what)) = entry.split_once("s: ") else {
                continue;
            };
            let Ok(secs) = secs.parse::<f64>() else {
                continue;
            };
            let at_ns = (secs * 1e9).round() as u64;
            if (self.from_ns..self.until_ns).contains(&at_ns) {
                self.faults.push((at_ns, what.to_owned()));
            }
        }
    }

    /// The diagram as a standalone SVG document, titled `title`.
    pub fn svg(&self, title: &str) -> String {
        Drawing::new(self).render(title)
    }
}

/// A message's kind: the first word of its `Debug` form (`AppendEntries`, `Vote`…).
pub fn label_of(msg: &impl std::fmt::Debug) -> String {
    let text = format!("{msg:?}");
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    match end {
        0 => "message".to_owned(),
        n => text[..n].to_owned(),
    }
}

impl<P: SimProtocol> Simulator<P> {
    /// The recording, if one is on and its window is still open.
    pub(super) fn tracing(&mut self) -> Option<&mut SpaceTime> {
        let now = self.now.as_nanos();
        self.trace.as_mut().filter(|t| now < t.until_ns)
    }

    /// Records a message from lane `from` to lane `to`, sent now.
    pub(super) fn trace_arrow(
        &mut self,
        from: usize,
        to: usize,
        arrives: Option<Time>,
        label: impl FnOnce() -> String,
    ) {
        let sent_ns = self.now.as_nanos();
        if let Some(t) = self.tracing() {
            let label = label();
            if to == CLIENTS && label == REPLY {
                t.on_answer(sent_ns);
            }
            t.arrows.push(Arrow {
                from,
                to,
                sent_ns,
                arrives_ns: arrives.map(Time::as_nanos),
                label,
            });
        }
    }

    /// Records a mark on node `index`'s lane, now.
    pub(super) fn trace_mark(&mut self, index: usize, what: MarkKind) {
        let at_ns = self.now.as_nanos();
        if let Some(t) = self.tracing() {
            t.marks.push(Mark {
                lane: index + 1,
                at_ns,
                what,
            });
        }
    }

    /// After node `index` stepped: marks it if it has just come to lead.
    pub(super) fn trace_leadership(&mut self, index: usize) {
        let leads = self.slots[index].node.as_ref().is_some_and(P::is_leader);
        let at_ns = self.now.as_nanos();
        if let Some(t) = self.tracing() {
            if leads && !t.leading[index] {
                t.marks.push(Mark {
                    lane: index + 1,
                    at_ns,
                    what: MarkKind::Leader,
                });
            }
            t.leading[index] = leads;
        }
    }

    /// Records a disk write on node `index` from now until `done`.
    pub(super) fn trace_write(&mut self, index: usize, done: Time) {
        let start = self.now.as_nanos();
        if let Some(t) = self.tracing() {
            t.writes.push((index + 1, start, done.as_nanos()));
        }
    }
}

// ---- drawing ----

const LANE_GAP: f64 = 170.0;
const LEFT: f64 = 90.0;
const PX_PER_MS: f64 = 22.0;
const TICK_MS: u64 = 5;
/// The clients' arrows: requests, answers, refusals.
const CLIENT_COLORS: [(&str, &str); 3] = [
    ("request", "#9a9a9a"),
    (REPLY, "#2ca02c"),
    ("refusal", "#d62728"),
];
/// Peer messages' colors by label, in order of first appearance (then grey).
const PALETTE: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#393b79",
    "#e7969c", "#637939", "#7b4173", "#3182bd",
];
const OTHER: &str = "#555555";
const LEGEND_ROW: f64 = 18.0;

/// The layout of one diagram.
struct Drawing<'a> {
    st: &'a SpaceTime,
    /// Peer message labels in order of first appearance (their colors).
    labels: Vec<&'a str>,
    /// The legend, row by row: label and color.
    legend: Vec<Vec<(&'a str, &'static str)>>,
    /// Where the lanes begin.
    top: f64,
    width: f64,
    height: f64,
}

impl<'a> Drawing<'a> {
    fn new(st: &'a SpaceTime) -> Drawing<'a> {
        let mut labels: Vec<&str> = Vec::new();
        for a in &st.arrows {
            let client = CLIENT_COLORS.iter().any(|(l, _)| *l == a.label);
            if !client && !labels.contains(&a.label.as_str()) {
                labels.push(&a.label);
            }
        }
        let width = LEFT + LANE_GAP * st.lanes.len() as f64;
        let mut drawing = Drawing {
            st,
            labels,
            legend: Vec::new(),
            top: 0.0,
            width,
            height: 0.0,
        };
        let items: Vec<(&str, &'static str)> = (CLIENT_COLORS.iter().map(|&(l, c)| (l, c)))
            .chain(drawing.labels.iter().map(|&l| (l, drawing.color(l))))
            .collect();
        let mut row: Vec<(&str, &'static str)> = Vec::new();
        let mut x = LEFT;
        for (label, color) in items {
            let w = legend_width(label);
            if x + w > width && !row.is_empty() {
                drawing.legend.push(std::mem::take(&mut row));
                x = LEFT;
            }
            row.push((label, color));
            x += w;
        }
        drawing.legend.push(row);
        drawing.top = 76.0 + LEGEND_ROW * drawing.legend.len() as f64;
        drawing.height = drawing.top + ms(st.until_ns - st.from_ns) * PX_PER_MS + 40.0;
        drawing
    }

    fn x(&self, lane: usize) -> f64 {
        LEFT + LANE_GAP * (lane as f64 + 0.5)
    }

    fn y(&self, ns: u64) -> f64 {
        let ns = ns.clamp(self.st.from_ns, self.st.until_ns);
        self.top + ms(ns - self.st.from_ns) * PX_PER_MS
    }

    fn color(&self, label: &str) -> &'static str {
        if let Some(&(_, c)) = CLIENT_COLORS.iter().find(|(l, _)| *l == label) {
            return c;
        }
        match self.labels.iter().position(|l| *l == label) {
            Some(i) if i < PALETTE.len() => PALETTE[i],
            _ => OTHER,
        }
    }

    fn render(&self, title: &str) -> String {
        let mut s = String::new();
        let (w, h) = (self.width, self.height);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(s, "<title>{}</title>", escape(title));
        s += r#"<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>"#;
        let _ = write!(s, r#"<rect width="{w:.0}" height="{h:.0}" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
            escape(title)
        );
        self.legend(&mut s);
        self.axis(&mut s);
        self.lanes(&mut s);
        self.faults(&mut s);
        self.writes(&mut s);
        self.arrows(&mut s);
        self.marks(&mut s);
        s += "</svg>";
        s
    }

    fn legend(&self, s: &mut String) {
        let mut y = 40.0;
        for row in &self.legend {
            let mut x = LEFT;
            for &(label, c) in row {
                let _ = write!(
                    s,
                    r#"<line x1="{x:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{c}" stroke-width="2"/><text x="{:.0}" y="{:.0}">{}</text>"#,
                    x + 18.0,
                    x + 22.0,
                    y + 4.0,
                    escape(label)
                );
                x += legend_width(label);
            }
            y += LEGEND_ROW;
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{:.0}" width="8" height="10" fill="#bbb"/><text x="{:.0}" y="{:.0}" fill="#555">disk write · time flows down · arrows from send to arrival · a cross: dropped or held back</text>"##,
            y - 5.0,
            LEFT + 14.0,
            y + 4.0
        );
    }

    fn axis(&self, s: &mut String) {
        let (from_ms, until_ms) = (ms(self.st.from_ns), ms(self.st.until_ns));
        let mut t = (from_ms / TICK_MS as f64).ceil() as u64 * TICK_MS;
        while (t as f64) <= until_ms {
            let y = self.top + (t as f64 - from_ms) * PX_PER_MS;
            let _ = write!(
                s,
                r##"<line x1="{:.0}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#eee"/><text x="{:.0}" y="{:.1}" text-anchor="end" fill="#555">{t} ms</text>"##,
                LEFT,
                self.width - 10.0,
                LEFT - 8.0,
                y + 4.0
            );
            t += TICK_MS;
        }
    }

    fn lanes(&self, s: &mut String) {
        for (i, name) in self.st.lanes.iter().enumerate() {
            let x = self.x(i);
            let dash = if i == CLIENTS {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333" stroke-width="1.5"{dash}/><text x="{x:.1}" y="{:.0}" text-anchor="middle" font-weight="bold">{}</text>"##,
                self.top,
                self.y(self.st.until_ns),
                self.top - 8.0,
                escape(name)
            );
        }
    }

    fn faults(&self, s: &mut String) {
        for (at, what) in &self.st.faults {
            let y = self.y(*at);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="6 4"/><text x="{:.0}" y="{:.1}" fill="#d62728">{}</text>"##,
                self.width - 10.0,
                LEFT + 4.0,
                y - 3.0,
                escape(what)
            );
        }
    }

    fn writes(&self, s: &mut String) {
        for &(lane, start, end) in &self.st.writes {
            let (y0, y1) = (self.y(start), self.y(end));
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{y0:.1}" width="8" height="{:.1}" fill="#bbb"><title>write {:.3}–{:.3} ms</title></rect>"##,
                self.x(lane) - 4.0,
                (y1 - y0).max(1.0),
                ms(start),
                ms(end)
            );
        }
    }

    fn arrows(&self, s: &mut String) {
        for a in &self.st.arrows {
            let c = self.color(&a.label);
            let (x0, y0) = (self.x(a.from), self.y(a.sent_ns));
            let tip = |x1: f64, y1: f64, end: &str| {
                format!(
                    r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="{c}" stroke-width="1.2"{end}><title>{} {} → {} at {:.3} ms</title></line>"#,
                    escape(&a.label),
                    escape(&self.st.lanes[a.from]),
                    escape(&self.st.lanes[a.to]),
                    ms(a.sent_ns)
                )
            };
            match a.arrives_ns {
                Some(at) if at <= self.st.until_ns => {
                    *s += &tip(self.x(a.to), self.y(at), r#" marker-end="url(#head)""#);
                }
                // Still on the wire at the end: drawn to the edge, no head.
                Some(at) => {
                    let (x1, y1) = (self.x(a.to), self.y(at));
                    let f = (self.y(self.st.until_ns) - y0) / (y1 - y0).max(1e-9);
                    *s += &tip(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, "");
                }
                None => {
                    let (x1, y1) = ((x0 + self.x(a.to)) / 2.0, y0 + 0.4 * PX_PER_MS);
                    *s += &tip(x1, y1, "");
                    let _ = write!(
                        s,
                        r#"<path d="M{:.1},{:.1} l6,6 m0,-6 l-6,6" stroke="{c}" stroke-width="1.5"/>"#,
                        x1 - 3.0,
                        y1 - 3.0
                    );
                }
            }
        }
    }

    fn marks(&self, s: &mut String) {
        for m in &self.st.marks {
            let (x, y) = (self.x(m.lane), self.y(m.at_ns));
            let (color, text) = match m.what {
                MarkKind::Crash => ("#d62728", "✗ crash"),
                MarkKind::Restart => ("#2ca02c", "↻ restart"),
                MarkKind::Leader => ("#b8860b", "★ leader"),
            };
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{color}"/><text x="{:.1}" y="{:.1}" fill="{color}" font-weight="bold">{text}</text>"#,
                x + 8.0,
                y + 4.0
            );
        }
    }
}

/// The room a legend item takes: its stroke, its text (about 7 px a character).
fn legend_width(label: &str) -> f64 {
    30.0 + 7.0 * label.chars().count() as f64
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_is_the_variant_name() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum M {
            AppendEntries { term: u64 },
            Vote(u64),
        }
        assert_eq!(label_of(&M::AppendEntries { term: 3 }), "AppendEntries");
        assert_eq!(label_of(&M::Vote(1)), "Vote");
        assert_eq!(label_of(&"x"), "message");
    }

    #[test]
    fn faults_are_read_from_the_log_up_to_the_end() {
        let mut st = SpaceTime::new(&["n1".into()], Duration::from_millis(50));
        st.finish(&[
            "0.012000s: partition {n1} | {n2}".into(),
            "0.051000s: crash n1".into(),
        ]);
        assert_eq!(
            st.faults,
            vec![(12_000_000, "partition {n1} | {n2}".into())]
        );
        assert!(st.svg("a <b> & c").contains("a &lt;b&gt; &amp; c"));
    }
}
