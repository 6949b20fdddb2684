//! Charts drawn on the server as SVG (lines, bars, stacked bars) or HTML
//! (funnel steps, the retention grid). Each comes with its numbers in a
//! table, which is also what screen readers read.

use std::fmt::Write;

use super::html::esc;

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

/// One named series of values, one per label.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

fn frame(title: &str, labels: &[String], low: f64, high: f64, plot: &str) -> String {
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let inner = HEIGHT - TOP - BOTTOM;
    for step in 0..=4 {
        let value = low + (high - low) * step as f64 / 4.0;
        let y = TOP + inner * (1.0 - step as f64 / 4.0);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            number(value)
        );
    }
    let step = (labels.len() / 10).max(1);
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate().step_by(step) {
        // Labels near the right edge end there instead of running off it.
        let x = LEFT + slot * (i as f64 + 0.5);
        let (x, anchor) = if x + 45.0 > WIDTH {
            (WIDTH - 2.0, "end")
        } else {
            (x, "middle")
        };
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"{anchor}\">{}</text>",
            HEIGHT - 8.0,
            // A week's "18-Oct-2026 – 24-Oct-2026" is named by its first day.
            esc(label.split(" – ").next().unwrap_or(label))
        );
    }
    svg.push_str(plot);
    svg.push_str("</svg>");
    svg
}

/// Lines (or grouped bars) over shared labels.
pub fn series_chart(title: &str, labels: &[String], series: &[Series], bars: bool) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let high = nice_max(max);
    let inner = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / labels.len().max(1) as f64;
    let y = |v: f64| TOP + inner * (1.0 - v / high);
    let mut plot = String::new();
    for (n, s) in series.iter().enumerate() {
        if bars {
            let width = (slot * 0.8) / series.len() as f64;
            for (i, v) in s.values.iter().enumerate() {
                let x = LEFT + slot * i as f64 + slot * 0.1 + width * n as f64;
                let _ = write!(
                    plot,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                    y(*v),
                    (TOP + inner - y(*v)).max(0.0),
                    color(n),
                    esc(&labels[i]),
                    number(*v)
                );
            }
        } else {
            let points: Vec<String> = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y(*v)))
                .collect();
            let _ = write!(
                plot,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\"/>",
                points.join(" "),
                color(n)
            );
        }
    }
    frame(title, labels, 0.0, high, &plot) + &legend(series.iter().map(|s| s.name.as_str()))
}

/// Stacked bars; negative series go below the axis (lifecycle's dormant).
pub fn stacked_chart(title: &str, labels: &[String], series: &[Series]) -> String {
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
    let mut plot = String::new();
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
            let _ = write!(
                plot,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                LEFT + slot * i as f64 + slot * 0.15,
                y(from.max(to)),
                slot * 0.7,
                (y(from.min(to)) - y(from.max(to))).max(0.0),
                color(n),
                esc(&labels[i]),
                esc(&s.name),
                number(v)
            );
        }
    }
    frame(title, labels, low, high, &plot) + &legend(series.iter().map(|s| s.name.as_str()))
}

fn legend<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let items: String = names
        .enumerate()
        .map(|(i, name)| {
            format!(
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                color(i),
                esc(name)
            )
        })
        .collect();
    format!("<ul class=\"legend\">{items}</ul>")
}

/// Funnel steps as bars: each step's share of the first, and the drop-off.
pub fn funnel(steps: &[(String, f64, Option<f64>)]) -> String {
    let first = steps.first().map_or(0.0, |s| s.1).max(1.0);
    let mut out = String::from("<ol class=\"funnel\">");
    for (i, (name, count, seconds)) in steps.iter().enumerate() {
        let share = count / first * 100.0;
        let previous = if i == 0 { *count } else { steps[i - 1].1 };
        let dropped = previous - count;
        let time = seconds
            .map(|s| {
                format!(
                    "<p class=\"muted\">Average time to convert: {}</p>",
                    duration(s)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li><div class=\"step\"><strong>{}. {}</strong><span>{} ({share:.1}%){}</span></div>\
             <div class=\"bar\"><div style=\"width:{share:.1}%\"></div></div>{}</li>",
            i + 1,
            esc(name),
            number(*count),
            if i > 0 && dropped > 0.0 {
                format!(" · {} dropped off", number(dropped))
            } else {
                String::new()
            },
            time,
        );
    }
    out.push_str("</ol>");
    out
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// The retention grid: one row per cohort, cells shaded by the share of
/// the cohort that came back.
pub fn retention(rows: &[(String, Vec<f64>)], period: &str) -> String {
    let columns = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut head = String::from("<th scope=\"col\">Cohort</th><th scope=\"col\">Size</th>");
    for c in 0..columns {
        let _ = write!(head, "<th scope=\"col\">{period} {c}</th>");
    }
    let mut body = String::new();
    for (label, values) in rows {
        let size = values.first().copied().unwrap_or(0.0);
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td>",
            esc(label),
            number(size)
        );
        for v in values {
            let share = if size > 0.0 { v / size * 100.0 } else { 0.0 };
            let alpha = (share / 100.0 * 0.85 + 0.05).min(0.9);
            let ink = if alpha > 0.5 { "#fff" } else { "inherit" };
            let _ = write!(
                body,
                "<td class=\"cell\" style=\"background:rgba(47,91,211,{alpha:.2});color:{ink}\" title=\"{}\">{share:.1}%</td>",
                number(*v)
            );
        }
        body.push_str("</tr>");
    }
    format!(
        "<table class=\"retention\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
}
