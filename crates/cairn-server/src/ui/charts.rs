//! Charts drawn on the server as SVG (lines, bars, stacked bars) or HTML
//! (funnel steps, the retention grid). Each comes with its numbers in a
//! table, which is also what screen readers read. A number may link to the
//! actors behind it (its drill-down): a point, bar, step count or cell is
//! then a link, in the chart and in its table.

use maud::{html, Markup};

use super::html::linked;

const PALETTE: [&str; 8] = [
    "#2f5bd3", "#e8793a", "#2a9d5b", "#c2417c", "#7c5cd6", "#b59a1c", "#1f8fa8", "#8a6048",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A compact number: 1234 → "1,234", 1.5 → "1.5".
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let digits = format!("{}", value.abs() as i64);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if value < 0.0 {
            out.insert(0, '-');
        }
        out
    } else {
        format!("{value:.2}")
    }
}

/// A rounded-up axis maximum: 1, 2, 5 × 10ⁿ.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|m| *m >= max)
        .unwrap_or(10.0 * magnitude)
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// One named series of values, one per label, each with the address of
/// its actors (or no links at all).
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub links: Vec<String>,
}

impl Series {
    pub fn link(&self, i: usize) -> Option<&str> {
        self.links.get(i).map(String::as_str)
    }
}

/// A coordinate with one decimal, as SVG attributes take it.
fn at(value: f64) -> String {
    format!("{value:.1}")
}

fn frame(title: &str, labels: &[String], low: f64, high: f64, plot: Markup) -> Markup {
    let inner = HEIGHT - TOP - BOTTOM;
    let step = (labels.len() / 10).max(1);
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    html! {
        svg.chart viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(title) {
            @for step in 0..=4 {
                @let value = low + (high - low) * step as f64 / 4.0;
                @let y = TOP + inner * (1.0 - step as f64 / 4.0);
                line x1=(LEFT) x2=(WIDTH) y1=(at(y)) y2=(at(y)) class="grid" {}
                text x=(at(LEFT - 6.0)) y=(at(y + 4.0)) class="axis" text-anchor="end" { (number(value)) }
            }
            @for (i, label) in labels.iter().enumerate().step_by(step) {
                // Labels near the right edge end there instead of running off it.
                @let x = LEFT + slot * (i as f64 + 0.5);
                @let (x, anchor) = if x + 45.0 > WIDTH { (WIDTH - 2.0, "end") } else { (x, "middle") };
                text x=(at(x)) y=(at(HEIGHT - 8.0)) class="axis" text-anchor=(anchor) {
                    // A week's "18-Oct-2026 – 24-Oct-2026" is named by its first day.
                    (label.split(" – ").next().unwrap_or(label))
                }
            }
            (plot)
        }
    }
}

/// Lines (or grouped bars) over shared labels.
pub fn series_chart(title: &str, labels: &[String], series: &[Series], bars: bool) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let high = nice_max(max);
    let inner = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    let y = |v: f64| TOP + inner * (1.0 - v / high);
    let plot = html! {
        @for (n, s) in series.iter().enumerate() {
            @if bars {
                @let width = (slot * 0.8) / series.len() as f64;
                @for (i, v) in s.values.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + slot * 0.1 + width * n as f64;
                    (linked(s.link(i), html! {
                        rect x=(at(x)) y=(at(y(*v))) width=(at(width)) height=(at((TOP + inner - y(*v)).max(0.0))) fill=(color(n)) {
                            title { (labels[i]) ": " (number(*v)) }
                        }
                    }))
                }
            } @else {
                @let points: Vec<(f64, f64)> = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (LEFT + slot * (i as f64 + 0.5), y(*v)))
                    .collect();
                @let line: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                polyline points=(line.join(" ")) fill="none" stroke=(color(n)) stroke-width="2.5" {}
                // A line is one element: its points get dots to click.
                @for (i, (x, y)) in points.iter().enumerate() {
                    @if let Some(href) = s.link(i) {
                        a href=(href) {
                            circle.point cx=(at(*x)) cy=(at(*y)) r="4" fill=(color(n)) {
                                title { (labels[i]) ": " (number(s.values[i])) }
                            }
                        }
                    }
                }
            }
        }
    };
    html! {
        (frame(title, labels, 0.0, high, plot))
        (legend(series.iter().map(|s| s.name.as_str())))
    }
}

/// Stacked bars; negative series go below the axis (lifecycle's dormant).
pub fn stacked_chart(title: &str, labels: &[String], series: &[Series]) -> Markup {
    let (mut top, mut bottom) = (0.0f64, 0.0f64);
    for i in 0..labels.len() {
        let up: f64 = series.iter().map(|s| s.values[i].max(0.0)).sum();
        let down: f64 = series.iter().map(|s| s.values[i].min(0.0)).sum();
        top = top.max(up);
        bottom = bottom.min(down);
    }
    let high = nice_max(top);
    let low = if bottom < 0.0 {
        -nice_max(-bottom)
    } else {
        0.0
    };
    let inner = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    let y = |v: f64| TOP + inner * (high - v) / (high - low);
    let mut bars = Vec::new();
    for i in 0..labels.len() {
        let (mut up, mut down) = (0.0, 0.0);
        for (n, s) in series.iter().enumerate() {
            let v = s.values[i];
            let (from, to) = if v >= 0.0 {
                up += v;
                (up - v, up)
            } else {
                down += v;
                (down - v, down)
            };
            bars.push((i, n, v, y(from.max(to)), y(from.min(to))));
        }
    }
    let plot = html! {
        @for (i, n, v, upper, lower) in bars {
            (linked(series[n].link(i), html! {
                rect x=(at(LEFT + slot * i as f64 + slot * 0.15)) y=(at(upper)) width=(at(slot * 0.7)) height=(at((lower - upper).max(0.0))) fill=(color(n)) {
                    title { (labels[i]) " " (series[n].name) ": " (number(v)) }
                }
            }))
        }
    };
    html! {
        (frame(title, labels, low, high, plot))
        (legend(series.iter().map(|s| s.name.as_str())))
    }
}

fn legend<'a>(names: impl Iterator<Item = &'a str>) -> Markup {
    // The swatch is a tiny SVG so its colour is an attribute, which the
    // Content-Security-Policy allows (a `style` attribute it would block).
    html! {
        ul.legend {
            @for (i, name) in names.enumerate() {
                li {
                    svg.swatch viewBox="0 0 1 1" aria-hidden="true" { rect width="1" height="1" rx="0.15" fill=(color(i)) {} }
                    (name)
                }
            }
        }
    }
}

/// One step of a funnel: its name, how many reached it, and the average
/// time they took from the first step.
pub struct Step {
    pub name: String,
    pub count: f64,
    pub seconds: Option<f64>,
}

/// Funnel steps as bars: each step's share of the first, and the drop-off.
/// `link(n)` is the address of who reached step n (1-based), `link(-n)` of
/// who dropped off before it.
pub fn funnel(steps: &[Step], link: impl Fn(i64) -> String) -> Markup {
    let first = steps.first().map_or(0.0, |s| s.count).max(1.0);
    html! {
        ol.funnel {
            @for (i, step) in steps.iter().enumerate() {
                @let n = i as i64 + 1;
                @let share = step.count / first * 100.0;
                @let previous = if i == 0 { step.count } else { steps[i - 1].count };
                @let dropped = previous - step.count;
                li {
                    div.step {
                        strong { (n) ". " (step.name) }
                        span {
                            a href=(link(n)) { (number(step.count)) } " (" (format!("{share:.1}")) "%)"
                            @if i > 0 && dropped > 0.0 {
                                " · " a href=(link(-n)) { (number(dropped)) " dropped off" }
                            }
                        }
                    }
                    // A bar as an SVG whose width is an attribute: the CSP blocks `style`.
                    svg.bar viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true" {
                        rect width=(format!("{:.1}", share.clamp(0.0, 100.0))) height="1" {}
                    }
                    @if let Some(seconds) = step.seconds {
                        p.muted { "Average time to convert: " (duration(seconds)) }
                    }
                }
            }
        }
    }
}

/// A time span in the largest unit that keeps it readable.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// How dark a retention cell is: a class of style.css (`heat-1` …
/// `heat-18`, 5 % more ink each), since the CSP allows no `style`
/// attribute. Empty cells stay light; a full cohort is darkest.
pub fn heat_level(share: f64) -> u32 {
    let alpha = (share / 100.0 * 0.85 + 0.05).clamp(0.05, 0.9);
    (alpha * 20.0).round() as u32
}

/// The retention grid: one row per cohort, cells shaded by the share of
/// the cohort that came back. `link(row, None)` is the address of a
/// cohort's actors, `link(row, Some(column))` of those who came back then.
pub fn retention(
    rows: &[(String, Vec<f64>)],
    period: &str,
    link: impl Fn(usize, Option<usize>) -> String,
) -> Markup {
    let columns = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    html! {
        table.retention {
            thead {
                tr {
                    th scope="col" { "Cohort" }
                    th scope="col" { "Size" }
                    @for c in 0..columns { th scope="col" { (period) " " (c) } }
                }
            }
            tbody {
                @for (r, (label, values)) in rows.iter().enumerate() {
                    @let size = values.first().copied().unwrap_or(0.0);
                    tr {
                        th scope="row" { (label) }
                        td { a href=(link(r, None)) { (number(size)) } }
                        @for (c, v) in values.iter().enumerate() {
                            @let share = if size > 0.0 { v / size * 100.0 } else { 0.0 };
                            td class={"cell heat-" (heat_level(share))} title=(number(*v)) {
                                a href=(link(r, Some(c))) { (format!("{share:.1}")) "%" }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::heat_level;

    #[test]
    fn heat_levels_span_the_stylesheet_classes() {
        assert_eq!(heat_level(0.0), 1);
        assert_eq!(heat_level(100.0), 18);
        assert_eq!(heat_level(60.0), 11);
    }
}
