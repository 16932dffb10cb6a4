//! The two chart kinds every figure of the report is made of — bars grouped by
//! protocol, and lines over a linear or logarithmic axis — drawn as inline SVG.
//!
//! Every chart has a title (also its accessible `<title>`), a legend, tick labels
//! and axis labels; each bar and line carries a tooltip with its figures.

use super::write::{short, Svg, Text};

/// Lightening of a protocol's color per layer of a bar (p50, p99, p999; p50, max).
const LAYER_TINTS: [f64; 3] = [0.0, 0.45, 0.75];
/// The color of legend entries that are not a protocol (the layers' shades).
const NEUTRAL: &str = "#555555";
/// The shaded split window.
pub(super) const BAND: &str = "#e6e6e6";
const GRID: &str = "#ececec";
const AXIS: &str = "#888888";
/// Where the plot starts: room for the tick labels and the rotated y label.
const LEFT: f64 = 64.0;
const RIGHT_MARGIN: f64 = 16.0;
/// Height of a legend row.
const LEGEND_ROW: f64 = 18.0;
/// Under the plot: tick labels and the x axis label.
const X_LABELS: f64 = 40.0;
/// Under a bar chart's plot when bars carry their own (slanted) labels.
const BAR_LABELS: f64 = 56.0;
/// Widest slot of one bar, so that a chart of few bars keeps slim bars.
const BAR_SLOT_MAX: f64 = 60.0;
/// Narrowest slot whose bar label fits slanted (else it stands upright).
const BAR_SLOT_SLANTED_MIN: f64 = 18.0;
/// Space between two protocols' bars.
const GROUP_GAP: f64 = 18.0;

/// One bar, of one or more layers drawn from the same baseline, largest first;
/// layer `i` is drawn in the group's color lightened by `LAYER_TINTS[i]` (p50 in
/// full color, p99 lighter, p999 lightest).
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) layers: Vec<f64>,
    pub(super) tip: String,
}

/// One protocol's bars.
pub(super) struct Group {
    pub(super) label: String,
    pub(super) color: &'static str,
    pub(super) bars: Vec<Bar>,
}

/// A chart of bars grouped by protocol.
pub(super) struct BarChart<'a> {
    pub(super) title: String,
    pub(super) y_label: &'a str,
    pub(super) size: (f64, f64),
    pub(super) log: bool,
    /// Names of the layers, for the legend (none when bars have one layer).
    pub(super) layer_names: &'a [&'a str],
    pub(super) groups: Vec<Group>,
}

/// Draws `c`: groups side by side, each bar labeled under it when a group has
/// more than one, the group's name under its bars.
pub(super) fn bar_chart(c: &BarChart) -> String {
    let layers = c.layer_names.iter().zip(LAYER_TINTS);
    let mut legend: Vec<LegendItem> = layers
        .map(|(name, t)| LegendItem::swatch(name, &tint(NEUTRAL, t)))
        .collect();
    legend.extend(
        c.groups
            .iter()
            .map(|g| LegendItem::swatch(&g.label, g.color)),
    );
    let labeled = c.groups.iter().any(|g| g.bars.len() > 1);
    let below = X_LABELS + if labeled { BAR_LABELS } else { 0.0 };
    let mut svg = Svg::new(c.size.0, c.size.1, &c.title);
    let frame = Frame::new(&mut svg, c.size, &c.title, &legend, below);
    let bars = c.groups.iter().flat_map(|g| &g.bars);
    let values = bars.flat_map(|b| b.layers.iter().copied());
    // A log axis has no zero: start a decade under the smallest bar, so it shows.
    let y = match c.log {
        true => Axis::log(values).decade_lower(),
        false => Axis::linear(values.fold(0.0, f64::max)),
    };
    frame.y_axis(&mut svg, &y, c.y_label);
    let count: usize = c.groups.iter().map(|g| g.bars.len()).sum();
    let gaps = GROUP_GAP * c.groups.len().saturating_sub(1) as f64;
    let slot = ((frame.width() - gaps) / count.max(1) as f64).min(BAR_SLOT_MAX);
    let mut x = frame.left + (frame.width() - slot * count as f64 - gaps) / 2.0;
    for g in &c.groups {
        let start = x;
        for b in &g.bars {
            let (bx, bw) = (x + slot * 0.12, slot * 0.76);
            let mut order: Vec<(usize, f64)> = b.layers.iter().copied().enumerate().collect();
            // Largest first; of equal layers the lighter first, so the darker shows.
            order.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
            for (layer, value) in order {
                let top = y.at(value, frame.bottom, frame.top);
                let fill = tint(g.color, LAYER_TINTS[layer.min(LAYER_TINTS.len() - 1)]);
                svg.rect([bx, top, bw, frame.bottom - top], &fill, Some(&b.tip));
            }
            if labeled {
                let at = (bx + bw / 2.0, frame.bottom + 12.0);
                let narrow = slot < BAR_SLOT_SLANTED_MIN;
                let style = if narrow {
                    Text::TICK_UPRIGHT
                } else {
                    Text::TICK_SLANTED
                };
                svg.text(at, &b.label, style);
            }
            x += slot;
        }
        let under = frame.bottom + below - 22.0;
        svg.text(((start + x) / 2.0, under), &g.label, Text::GROUP);
        x += GROUP_GAP;
    }
    frame.finish(&mut svg);
    let x_label = match labeled {
        true => "protocol · fault profile",
        false => "protocol",
    };
    svg.text(frame.x_label_at(c.size.1), x_label, Text::LABEL);
    svg.finish()
}

/// A line of a line chart, `points` as (x, y) in data units.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) color: &'static str,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, f64)>,
}

/// A chart of lines over shaded x ranges.
pub(super) struct LineChart<'a> {
    pub(super) title: String,
    pub(super) x_label: &'a str,
    pub(super) y_label: &'a str,
    pub(super) size: (f64, f64),
    pub(super) x: Axis,
    pub(super) y: Axis,
    /// Shaded x ranges with a label: (from, to, label).
    pub(super) bands: Vec<(f64, f64, String)>,
    pub(super) legend: Vec<LegendItem>,
    pub(super) series: Vec<Series>,
}

/// Draws `c`: bands, then gridlines and ticks, then the lines in order.
pub(super) fn line_chart(c: &LineChart) -> String {
    let mut svg = Svg::new(c.size.0, c.size.1, &c.title);
    let frame = Frame::new(&mut svg, c.size, &c.title, &c.legend, X_LABELS);
    let x_at = |x: f64| c.x.at(x, frame.left, frame.right);
    for (from, to, label) in &c.bands {
        let (x0, x1) = (x_at(*from), x_at(*to));
        let area = [x0, frame.top, x1 - x0, frame.bottom - frame.top];
        svg.rect(area, BAND, Some(label));
        svg.text(((x0 + x1) / 2.0, frame.top + 13.0), label, Text::BAND);
    }
    frame.y_axis(&mut svg, &c.y, c.y_label);
    for t in c.x.ticks() {
        let x = x_at(t);
        svg.line((x, frame.top), (x, frame.bottom), GRID);
        svg.text((x, frame.bottom + 15.0), &short(t), Text::TICK_X);
    }
    for s in &c.series {
        let points: Vec<(f64, f64)> = (s.points.iter())
            .map(|&(x, y)| (x_at(x), c.y.at(y, frame.bottom, frame.top)))
            .collect();
        svg.polyline(&points, s.color, s.dashed, &s.name);
    }
    frame.finish(&mut svg);
    svg.text(frame.x_label_at(c.size.1), c.x_label, Text::LABEL);
    svg.finish()
}

/// The plot area of a chart, in px, below its title and legend.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// Draws the title and the legend, and returns the area left for the plot,
    /// keeping `below` px under it for labels.
    fn new(
        svg: &mut Svg,
        (w, h): (f64, f64),
        title: &str,
        legend: &[LegendItem],
        below: f64,
    ) -> Frame {
        svg.text((8.0, 20.0), title, Text::TITLE);
        let (left, right) = (LEFT, w - RIGHT_MARGIN);
        let rows = draw_legend(svg, legend, (left, 38.0), right - left);
        let top = 38.0 + LEGEND_ROW * rows as f64;
        let bottom = h - below;
        Frame {
            left,
            right,
            top,
            bottom,
        }
    }

    fn width(&self) -> f64 {
        self.right - self.left
    }

    /// Gridlines, tick labels and the rotated label of the y axis.
    fn y_axis(&self, svg: &mut Svg, y: &Axis, label: &str) {
        for t in y.ticks() {
            let py = y.at(t, self.bottom, self.top);
            svg.line((self.left, py), (self.right, py), GRID);
            svg.text((self.left - 6.0, py + 4.0), &short(t), Text::TICK_Y);
        }
        let mid = (self.top + self.bottom) / 2.0;
        svg.text((16.0, mid), label, Text::LABEL_Y);
    }

    /// Where the x axis label goes in a chart `height` px high.
    fn x_label_at(&self, height: f64) -> (f64, f64) {
        ((self.left + self.right) / 2.0, height - 6.0)
    }

    /// The axis lines, over the data.
    fn finish(&self, svg: &mut Svg) {
        svg.line((self.left, self.bottom), (self.right, self.bottom), AXIS);
        svg.line((self.left, self.top), (self.left, self.bottom), AXIS);
    }
}

/// How a legend entry is marked.
enum Mark {
    Swatch,
    Line { dashed: bool },
}

/// One entry of a chart's legend.
pub(super) struct LegendItem {
    label: String,
    color: String,
    mark: Mark,
}

impl LegendItem {
    /// A filled square, for bars and areas.
    pub(super) fn swatch(label: &str, color: &str) -> LegendItem {
        LegendItem::new(label, color, Mark::Swatch)
    }

    /// A short line, for a series.
    pub(super) fn line(label: &str, color: &str, dashed: bool) -> LegendItem {
        LegendItem::new(label, color, Mark::Line { dashed })
    }

    fn new(label: &str, color: &str, mark: Mark) -> LegendItem {
        let (label, color) = (label.to_string(), color.to_string());
        LegendItem { label, color, mark }
    }
}

/// Draws `items` in rows of at most `width` px from `(x, y)`; returns the rows used.
fn draw_legend(svg: &mut Svg, items: &[LegendItem], (x, y): (f64, f64), width: f64) -> usize {
    let (mut cx, mut row) = (x, 0);
    for item in items {
        let w = 36.0 + text_width(&item.label, 12.0);
        if cx > x && cx + w > x + width {
            (cx, row) = (x, row + 1);
        }
        let cy = y + LEGEND_ROW * row as f64;
        match item.mark {
            Mark::Swatch => svg.rect([cx, cy - 9.0, 14.0, 10.0], &item.color, None),
            Mark::Line { dashed } => {
                let ends = [(cx, cy - 4.0), (cx + 16.0, cy - 4.0)];
                svg.polyline(&ends, &item.color, dashed, &item.label);
            }
        }
        svg.text((cx + 20.0, cy), &item.label, Text::LEGEND);
        cx += w;
    }
    match items.is_empty() {
        true => 0,
        false => row + 1,
    }
}

/// About how wide `s` is in px at `size` px (proportional fonts average ~0.6 em).
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// `hex` (`#rrggbb`) mixed with white: `t` 0 keeps it, 1 is white.
fn tint(hex: &str, t: f64) -> String {
    let channel = |i: usize| {
        let digits = hex.get(1 + 2 * i..3 + 2 * i).unwrap_or("80");
        f64::from(u8::from_str_radix(digits, 16).unwrap_or(128))
    };
    let mix = |i: usize| (channel(i) + (255.0 - channel(i)) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0), mix(1), mix(2))
}

/// A domain `lo..hi` mapped to pixels, linear or logarithmic, with its ticks.
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    log: bool,
    /// Distance between ticks of a linear axis.
    step: f64,
}

impl Axis {
    /// `0..max` rounded up to a whole number of 1-, 2- or 5-steps (about five).
    pub(super) fn linear(max: f64) -> Axis {
        if !(max.is_finite() && max > 0.0) {
            return Axis::fixed(0.0, 1.0, 0.25);
        }
        let step = nice_step(max / 5.0);
        Axis::fixed(0.0, (max / step - 1e-9).ceil() * step, step)
    }

    /// `lo..hi` with a tick every `step`.
    pub(super) const fn fixed(lo: f64, hi: f64, step: f64) -> Axis {
        let log = false;
        Axis { lo, hi, log, step }
    }

    /// The whole decades around the positive `values` (1..10 when there are none).
    pub(super) fn log(values: impl Iterator<Item = f64>) -> Axis {
        let positive = values.filter(|v| v.is_finite() && *v > 0.0);
        let (min, max) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (min, max) = if max > 0.0 { (min, max) } else { (1.0, 10.0) };
        let lo = 10f64.powf(min.log10().floor());
        let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
        let (log, step) = (true, 0.0);
        Axis { lo, hi, log, step }
    }

    /// The same axis, from a decade lower.
    pub(super) fn decade_lower(self) -> Axis {
        let lo = self.lo / 10.0;
        Axis { lo, ..self }
    }

    /// The pixel of `v` when `lo` is at `from` and `hi` at `to` (clamped to the domain).
    pub(super) fn at(&self, v: f64, from: f64, to: f64) -> f64 {
        let t = match self.log {
            true => (v.max(self.lo) / self.lo).log10() / (self.hi / self.lo).log10(),
            false => (v - self.lo) / (self.hi - self.lo),
        };
        from + t.clamp(0.0, 1.0) * (to - from)
    }

    /// Linear: every step up to `hi`. Log: every decade, and 2 and 5 times it over at most two.
    pub(super) fn ticks(&self) -> Vec<f64> {
        if !self.log {
            let n = ((self.hi - self.lo) / self.step + 1e-9).floor() as usize;
            return (0..=n).map(|i| self.lo + i as f64 * self.step).collect();
        }
        let decades = (self.hi / self.lo).log10().round() as i32;
        let within: &[f64] = if decades <= 2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let bases = (0..=decades).map(|d| self.lo * 10f64.powi(d));
        let ticks = bases.flat_map(|base| within.iter().map(move |m| m * base));
        ticks.filter(|&t| t <= self.hi * 1.0001).collect()
    }
}

/// The 1, 2 or 5 times a power of ten at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let base = 10f64.powf(raw.log10().floor());
    let fits = |m: &f64| m * base >= raw * (1.0 - 1e-9);
    [1.0, 2.0, 5.0, 10.0].into_iter().find(fits).unwrap_or(10.0) * base
}
