//! Writers of HTML and SVG text that escape everything they are given, and the
//! report's number formats (fixed precision, so the same input gives the same bytes).

use std::fmt::Write as _;

/// `x` with `decimals` places (no negative zero).
pub(super) fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    let zero = s
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.');
    match zero {
        true => s.trim_start_matches('-').to_string(),
        false => s,
    }
}

/// A compact number for ticks and tooltips: about three significant places,
/// trailing zeros dropped, `k` and `M` from ten thousand up.
pub(super) fn short(x: f64) -> String {
    let (x, suffix) = match x.abs() {
        a if a >= 1e7 => (x / 1e6, "M"),
        a if a >= 1e4 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let decimals = match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    trim_zeros(fixed(x, decimals)) + suffix
}

/// A coordinate: one decimal is enough at screen resolution.
fn px(x: f64) -> String {
    trim_zeros(fixed(x, 1))
}

fn trim_zeros(s: String) -> String {
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// Text escaped for XML text and attribute values.
pub(super) use crate::checker::xml_escape as esc;

/// `<name k="v"…` (not closed), values escaped.
fn start_tag(out: &mut String, name: &str, attrs: &[(&str, &str)]) {
    out.push('<');
    out.push_str(name);
    for (k, v) in attrs {
        let _ = write!(out, " {k}=\"{}\"", esc(v));
    }
}

/// The HTML being written. Void elements are self-closed so that the page stays
/// well-formed XML, which is how the tests check it.
#[derive(Default)]
pub(super) struct Html(pub(super) String);

impl Html {
    /// Markup written by our own code (or an SVG passed in whole).
    pub(super) fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    pub(super) fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        start_tag(&mut self.0, name, attrs);
        self.0.push_str(">\n");
    }

    pub(super) fn close(&mut self, name: &str) {
        let _ = writeln!(self.0, "</{name}>");
    }

    /// `<name …/>`, e.g. `<meta>`.
    pub(super) fn void(&mut self, name: &str, attrs: &[(&str, &str)]) {
        start_tag(&mut self.0, name, attrs);
        self.0.push_str("/>\n");
    }

    /// `<name attrs>text</name>`.
    pub(super) fn el(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        start_tag(&mut self.0, name, attrs);
        let _ = writeln!(self.0, ">{}</{name}>", esc(text));
    }

    /// A table of `rows` under `head`.
    pub(super) fn table(&mut self, head: &[&str], rows: Vec<Vec<Td>>) {
        self.open("table", &[]);
        self.open("tr", &[]);
        for th in head {
            self.el("th", &[], th);
        }
        self.close("tr");
        for row in rows {
            self.open("tr", &[]);
            for td in row {
                self.td(td);
            }
            self.close("tr");
        }
        self.close("table");
    }

    fn td(&mut self, td: Td) {
        match td {
            Td::Text(s) => self.el("td", &[], &s),
            Td::Num(s) => self.el("td", &[("class", "n")], &s),
            Td::Class(s, class) => self.el("td", &[("class", class)], &s),
            Td::Protocol(name, color) => {
                self.raw("<td>");
                let swatch = format!("background:{color}");
                start_tag(&mut self.0, "span", &[("class", "sw"), ("style", &swatch)]);
                self.raw("></span>");
                let _ = writeln!(self.0, "{}</td>", esc(&name));
            }
        }
    }
}

/// A table cell.
pub(super) enum Td {
    Text(String),
    /// Right-aligned figures.
    Num(String),
    /// A protocol's name after its color swatch.
    Protocol(String, &'static str),
    /// Text with a CSS class (`kept`, `broken`).
    Class(String, &'static str),
}

/// How a piece of chart text looks: its CSS class (the page's stylesheet sizes
/// it), where it is anchored and how far it is turned.
#[derive(Clone, Copy)]
pub(super) struct Text {
    class: &'static str,
    anchor: &'static str,
    degrees: i32,
}

impl Text {
    pub(super) const TITLE: Text = Text::new("title", "start", 0);
    pub(super) const LEGEND: Text = Text::new("legend", "start", 0);
    /// An axis label under the plot.
    pub(super) const LABEL: Text = Text::new("label", "middle", 0);
    /// The y axis label, read bottom to top.
    pub(super) const LABEL_Y: Text = Text::new("label", "middle", -90);
    pub(super) const TICK_X: Text = Text::new("tick", "middle", 0);
    pub(super) const TICK_Y: Text = Text::new("tick", "end", 0);
    /// A bar's own label, slanted to fit under a narrow bar.
    pub(super) const TICK_SLANTED: Text = Text::new("tick", "end", -40);
    /// A bar's own label under a bar too narrow for slanted text.
    pub(super) const TICK_UPRIGHT: Text = Text::new("tick", "end", -90);
    /// A group of bars (a protocol).
    pub(super) const GROUP: Text = Text::new("group", "middle", 0);
    pub(super) const BAND: Text = Text::new("band", "middle", 0);

    const fn new(class: &'static str, anchor: &'static str, degrees: i32) -> Text {
        Text {
            class,
            anchor,
            degrees,
        }
    }
}

/// One SVG document being written; every text and attribute value is escaped.
pub(super) struct Svg(String);

impl Svg {
    /// Opens an `<svg>` of `width` × `height` px whose accessible name is `title`.
    pub(super) fn new(width: f64, height: f64, title: &str) -> Svg {
        let (w, h) = (px(width), px(height));
        let view_box = format!("0 0 {w} {h}");
        let mut s = String::new();
        start_tag(
            &mut s,
            "svg",
            &[
                ("xmlns", "http://www.w3.org/2000/svg"),
                ("width", &w),
                ("height", &h),
                ("viewBox", &view_box),
                ("role", "img"),
                ("aria-label", title),
                ("font-family", "sans-serif"),
                ("font-size", "12"),
            ],
        );
        let _ = writeln!(s, ">\n<title>{}</title>", esc(title));
        Svg(s)
    }

    /// `<name attrs/>`, or with a tooltip `<title>` child.
    fn el(&mut self, name: &str, attrs: &[(&str, &str)], tip: Option<&str>) {
        start_tag(&mut self.0, name, attrs);
        let _ = match tip {
            Some(t) => writeln!(self.0, "><title>{}</title></{name}>", esc(t)),
            None => writeln!(self.0, "/>"),
        };
    }

    /// A rectangle `[x, y, width, height]` (crisp edges: its fill shows exactly).
    pub(super) fn rect(&mut self, [x, y, w, h]: [f64; 4], fill: &str, tip: Option<&str>) {
        let [x, y, w, h] = [x, y, w.max(0.0), h.max(0.0)].map(px);
        let attrs = [("x", &*x), ("y", &*y), ("width", &*w), ("height", &*h)];
        let paint = [("fill", fill), ("shape-rendering", "crispEdges")];
        self.el("rect", &[&attrs[..], &paint].concat(), tip);
    }

    /// A 1 px line from `a` to `b`.
    pub(super) fn line(&mut self, a: (f64, f64), b: (f64, f64), stroke: &str) {
        let [x1, y1, x2, y2] = [a.0, a.1, b.0, b.1].map(px);
        let ends = [("x1", &*x1), ("y1", &*y1), ("x2", &*x2), ("y2", &*y2)];
        self.el("line", &[&ends[..], &[("stroke", stroke)]].concat(), None);
    }

    /// A 2 px line through `points`, solid or dashed, named by `tip`.
    pub(super) fn polyline(
        &mut self,
        points: &[(f64, f64)],
        stroke: &str,
        dashed: bool,
        tip: &str,
    ) {
        let points: Vec<String> = (points.iter())
            .map(|&(x, y)| format!("{},{}", px(x), px(y)))
            .collect();
        let points = points.join(" ");
        let mut attrs = vec![
            ("points", points.as_str()),
            ("fill", "none"),
            ("stroke", stroke),
            ("stroke-width", "2"),
            ("stroke-linejoin", "round"),
        ];
        if dashed {
            attrs.push(("stroke-dasharray", "5 3"));
        }
        self.el("polyline", &attrs, Some(tip));
    }

    /// `text` at `(x, y)` in `style`.
    pub(super) fn text(&mut self, (x, y): (f64, f64), text: &str, style: Text) {
        let (x, y) = (px(x), px(y));
        let turn = format!("rotate({} {x} {y})", style.degrees);
        let mut attrs = vec![
            ("x", x.as_str()),
            ("y", y.as_str()),
            ("class", style.class),
            ("text-anchor", style.anchor),
        ];
        if style.degrees != 0 {
            attrs.push(("transform", &turn));
        }
        start_tag(&mut self.0, "text", &attrs);
        let _ = writeln!(self.0, ">{}</text>", esc(text));
    }

    /// Closes the document.
    pub(super) fn finish(mut self) -> String {
        self.0.push_str("</svg>\n");
        self.0
    }
}
