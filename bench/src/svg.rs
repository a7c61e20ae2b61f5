//! A hand-written SVG plot of a run: throughput over time on top, latency percentiles
//! (p50, p99, p99.9; log scale) below.

use std::fmt::Write;

/// One point per interval.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub time_s: f64,
    pub op_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
}

const W: f64 = 900.0;
const PANEL_H: f64 = 220.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const GAP: f64 = 70.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step for a linear axis up to `max` with about `n` ticks.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

pub fn render(title: &str, subtitle: &str, points: &[Point]) -> String {
    let h = TOP + 2.0 * PANEL_H + GAP + 60.0;
    let pw = W - LEFT - RIGHT;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="24" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="42" fill="#666">{}</text>"##,
        esc(subtitle)
    );
    let tmax = points
        .iter()
        .map(|p| p.time_s)
        .fold(1.0f64, f64::max)
        .ceil();
    let x = |t: f64| LEFT + t / tmax * pw;

    // Panel 1: throughput.
    let y0 = TOP;
    let rmax = points.iter().map(|p| p.op_rate).fold(1.0f64, f64::max) * 1.1;
    let step = nice_step(rmax, 5.0);
    let rtop = (rmax / step).ceil() * step;
    let y1 = |v: f64| y0 + PANEL_H - v / rtop * PANEL_H;
    axes(&mut s, y0, "throughput (op/s)");
    let mut v = 0.0;
    while v <= rtop + 1e-9 {
        grid_y(&mut s, y1(v), &fmt_num(v));
        v += step;
    }
    time_ticks(&mut s, y0 + PANEL_H, tmax, &x);
    polyline(
        &mut s,
        points.iter().map(|p| (x(p.time_s), y1(p.op_rate))),
        "#1f77b4",
        2.5,
    );
    // Error markers: intervals with errors get a red tick on the throughput panel.
    for p in points.iter().filter(|p| p.errors > 0) {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#d62728" stroke-width="3"><title>{} errors at {:.0}s</title></line>"##,
            x(p.time_s),
            y0 + PANEL_H,
            x(p.time_s),
            y0 + PANEL_H - 10.0,
            p.errors,
            p.time_s
        );
    }
    if points.iter().any(|p| p.errors > 0) {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#d62728" text-anchor="end">red ticks: intervals with errors</text>"##,
            W - RIGHT,
            y0 - 6.0
        );
    }

    // Panel 2: latency percentiles, log10 scale in ms.
    let y0 = TOP + PANEL_H + GAP;
    let lat = |p: &Point| [p.p50_ms, p.p99_ms, p.p999_ms];
    let lmin = points
        .iter()
        .flat_map(lat)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min)
        .min(1.0);
    let lmax = points.iter().flat_map(lat).fold(1.0f64, f64::max);
    let dlo = lmin.log10().floor();
    let dhi = lmax.log10().ceil().max(dlo + 1.0);
    let y2 = |v: f64| {
        let l = v.max(10f64.powf(dlo)).log10();
        y0 + PANEL_H - (l - dlo) / (dhi - dlo) * PANEL_H
    };
    axes(&mut s, y0, "latency (ms, log scale)");
    let mut d = dlo;
    while d <= dhi + 1e-9 {
        let v = 10f64.powf(d);
        grid_y(&mut s, y2(v), &fmt_num(v));
        d += 1.0;
    }
    time_ticks(&mut s, y0 + PANEL_H, tmax, &x);
    let series: [(&str, &str, fn(&Point) -> f64); 3] = [
        ("p50", "#2ca02c", |p| p.p50_ms),
        ("p99", "#ff7f0e", |p| p.p99_ms),
        ("p99.9", "#d62728", |p| p.p999_ms),
    ];
    for (i, (name, color, f)) in series.iter().enumerate() {
        polyline(
            &mut s,
            points.iter().map(|p| (x(p.time_s), y2(f(p)))),
            color,
            2.0,
        );
        let lx = LEFT + 10.0 + i as f64 * 80.0;
        let _ = writeln!(
            s,
            r##"<line x1="{lx}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" fill="#333">{name}</text>"##,
            y0 - 10.0,
            lx + 20.0,
            y0 - 10.0,
            lx + 25.0,
            y0 - 6.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">time (s)</text>"##,
        LEFT + pw / 2.0,
        y0 + PANEL_H + 40.0
    );
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, y0: f64, label: &str) {
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{y0}" width="{:.1}" height="{PANEL_H}" fill="#fafafa" stroke="#999"/>"##,
        W - LEFT - RIGHT
    );
    let cy = y0 + PANEL_H / 2.0;
    let _ = writeln!(
        s,
        r##"<text x="18" y="{cy:.1}" transform="rotate(-90 18 {cy:.1})" text-anchor="middle" fill="#333">{}</text>"##,
        esc(label)
    );
}

fn grid_y(s: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{label}</text>"##,
        W - RIGHT,
        LEFT - 6.0,
        y + 4.0
    );
}

fn time_ticks(s: &mut String, y: f64, tmax: f64, x: &dyn Fn(f64) -> f64) {
    let step = nice_step(tmax, 10.0).max(1.0);
    let mut t = 0.0;
    while t <= tmax + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x(t),
            x(t),
            y + 5.0,
            x(t),
            y + 18.0,
            fmt_num(t)
        );
        t += step;
    }
}

fn polyline(s: &mut String, pts: impl Iterator<Item = (f64, f64)>, color: &str, width: f64) {
    let pts: Vec<String> = pts.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round" points="{}"/>"#,
        pts.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_wellformed_svg() {
        let pts: Vec<Point> = (1..=10)
            .map(|i| Point {
                time_s: i as f64,
                op_rate: 1000.0 * i as f64,
                p50_ms: 0.3,
                p99_ms: 2.0,
                p999_ms: 9.0,
                errors: if i == 5 { 3 } else { 0 },
            })
            .collect();
        let svg = render("write <n=10>", "sub", &pts);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("write &lt;n=10&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
