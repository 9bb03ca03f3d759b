//! PNG charts with plotters: bitmap backend, text through ab_glyph with DejaVu Sans embedded in
//! the binary (the `dejavu` crate), so no system font is needed.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use serde_json::{Map, Value};

use crate::util::{err, Result};

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn e<E: std::fmt::Display>(x: E) -> crate::util::Error {
    err(x.to_string())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'c, 'a, X, Y> = ChartContext<'c, BitMapBackend<'a>, Cartesian2d<X, Y>>;

/// A white canvas of `size` pixels, written to `path` by `present()`.
fn canvas(path: &Path, size: (u32, u32)) -> Result<Area<'_>> {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    Ok(root)
}

/// The chart on `root`: `caption`, axes `x` and `y` with their descriptions, the mesh drawn.
fn frame<'c, 'a, X, Y>(
    root: &'c Area<'a>,
    caption: &str,
    y_label_area: u32,
    (x, x_desc): (X, &str),
    (y, y_desc): (Y, &str),
) -> Result<Chart<'c, 'a, X::CoordDescType, Y::CoordDescType>>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<X::Value>,
    Y::CoordDescType: ValueFormatter<Y::Value>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(e)?;
    Ok(chart)
}

/// A thin grey line from `from` to `to`, in the legend as `label`.
fn target_line<X, Y>(
    chart: &mut Chart<'_, '_, X, Y>,
    from: (f64, f64),
    to: (f64, f64),
    label: &str,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(
            vec![from, to],
            BLACK.mix(0.5).stroke_width(1),
        ))
        .map_err(e)?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 25, y)], BLACK.mix(0.5)));
    Ok(())
}

/// The legend mark of a series drawn in `c`.
fn mark(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 25, y)], c.stroke_width(3))
}

/// The legend box at `pos` with labels of `font_size`, then the file written.
fn finish<'c, 'a: 'c, X: Ranged, Y: Ranged>(
    root: &Area<'a>,
    mut chart: Chart<'c, 'a, X, Y>,
    pos: SeriesLabelPosition,
    font_size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(("sans-serif", font_size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Draws every chart whose data is in `json`; returns the files written.
pub fn draw_all(json: &Map<String, Value>, out: &Path) -> Result<Vec<PathBuf>> {
    register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| err("cannot load the embedded DejaVu Sans font"))?;
    let mut files = Vec::new();
    if let Some(l) = json.get("latency") {
        let p = out.join("latency.png");
        latency(l, &p)?;
        files.push(p);
    }
    if let Some(u) = json.get("upload") {
        let p = out.join("upload.png");
        upload(u, &p)?;
        files.push(p);
    }
    if let Some(f) = json.get("fanout") {
        let p = out.join("fanout.png");
        fanout(f, &p)?;
        files.push(p);
    }
    Ok(files)
}

fn samples(v: &Value) -> Vec<f64> {
    let mut s: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

/// Latency distributions (CDF) of status and start, direct vs through the gateway.
fn latency(l: &Value, path: &Path) -> Result<()> {
    let series = [
        (
            "status, direct on the link",
            samples(&l["direct_status_samples"]),
        ),
        (
            "status via gateway",
            samples(&l["gateway_status"]["e2e_samples"]),
        ),
        (
            "start --wait-result, direct",
            samples(&l["direct_start_samples"]),
        ),
        (
            "start --wait-result via gateway",
            samples(&l["gateway_start"]["e2e_samples"]),
        ),
    ];
    // Cut the x axis at the 99.5th percentile of all samples so the body of the curves is visible.
    let mut all: Vec<f64> = series.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    if all.is_empty() {
        return Ok(());
    }
    let xmax = all[((all.len() as f64 * 0.995) as usize).min(all.len() - 1)] * 1.1;
    let root = canvas(path, (1000, 600))?;
    let mut chart = frame(
        &root,
        "Round-trip latency, instant simulated board on TCP loopback (CDF)",
        70,
        (0f64..xmax, "latency (ms), host-measured"),
        (0f64..100f64, "percent of requests at or below"),
    )?;
    for (i, (name, s)) in series.iter().enumerate() {
        let c = COLORS[i];
        let n = s.len() as f64;
        let pts: Vec<(f64, f64)> = s
            .iter()
            .enumerate()
            .map(|(k, v)| (v.min(xmax), (k + 1) as f64 / n * 100.0))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(e)?
            .label(format!("{name} (n={})", s.len()))
            .legend(mark(c));
    }
    finish(&root, chart, SeriesLabelPosition::LowerRight, 16)
}

/// Upload efficiency (percent of line rate) vs module size, per baud, LOAD mode and path.
fn upload(u: &Value, path: &Path) -> Result<()> {
    let pts = u["points"].as_array().cloned().unwrap_or_default();
    let mut keys: Vec<(u64, String, String)> = pts
        .iter()
        .map(|p| {
            (
                p["baud"].as_u64().unwrap_or(0),
                p["mode"].as_str().unwrap_or("").to_string(),
                p["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let root = canvas(path, (1000, 620))?;
    let mut chart = frame(
        &root,
        "Upload efficiency vs module size (payload bytes / line rate)",
        70,
        ((0.8f64..320f64).log_scale(), "module size (KiB, log scale)"),
        (0f64..105f64, "percent of line rate (baud/10 B/s)"),
    )?;
    target_line(&mut chart, (0.8, 97.0), (320.0, 97.0), "target: 97 %")?;
    for (i, (baud, mode, via)) in keys.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let sel: Vec<&Value> = pts
            .iter()
            .filter(|p| {
                p["baud"] == *baud && p["mode"] == mode.as_str() && p["path"] == via.as_str()
            })
            .collect();
        let good: Vec<(f64, f64)> = sel
            .iter()
            .filter(|p| p["ok"] == true)
            .map(|p| {
                (
                    p["kib"].as_f64().unwrap_or(0.0),
                    p["efficiency"].as_f64().unwrap_or(0.0) * 100.0,
                )
            })
            .collect();
        let failed: Vec<f64> = sel
            .iter()
            .filter(|p| p["ok"] != true)
            .map(|p| p["kib"].as_f64().unwrap_or(0.0))
            .collect();
        let mode_txt = if mode == "raw" {
            "raw v1 LOAD"
        } else {
            "chunked LOAD"
        };
        let label = format!("{baud} baud, {mode_txt}, {via}");
        chart
            .draw_series(LineSeries::new(good.clone(), c.stroke_width(2)))
            .map_err(e)?
            .label(if failed.is_empty() {
                label
            } else {
                format!("{label} (X = failed)")
            })
            .legend(mark(c));
        chart
            .draw_series(
                good.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, c.filled())),
            )
            .map_err(e)?;
        chart
            .draw_series(
                failed
                    .iter()
                    .map(|&x| Cross::new((x, 2.0), 8, c.stroke_width(3))),
            )
            .map_err(e)?;
    }
    finish(&root, chart, SeriesLabelPosition::LowerRight, 15)
}

/// Fan-out: time to get the status of all boards and to deploy to all, vs boards.
fn fanout(f: &Value, path: &Path) -> Result<()> {
    let pts = f["points"].as_array().cloned().unwrap_or_default();
    if pts.is_empty() {
        return Ok(());
    }
    let get = |k: &str, q: &str| -> Vec<(f64, f64)> {
        pts.iter()
            .map(|p| {
                (
                    p["boards"].as_f64().unwrap_or(1.0),
                    p[k][q].as_f64().unwrap_or(0.0),
                )
            })
            .collect()
    };
    let series = [
        ("status of all: p50", get("status_all_ms", "p50")),
        ("status of all: p99", get("status_all_ms", "p99")),
        ("deploy to all: p50", get("deploy_all_ms", "p50")),
    ];
    let ymax = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        .max(1000.0)
        * 1.5;
    let root = canvas(path, (1000, 600))?;
    let mut chart = frame(
        &root,
        "Fan-out: one gateway, N simulated boards (one request per board)",
        80,
        ((8f64..1300f64).log_scale(), "boards (log scale)"),
        (
            (0.5f64..ymax).log_scale(),
            "time until the last reply (ms, log scale)",
        ),
    )?;
    target_line(
        &mut chart,
        (8.0, 1000.0),
        (1300.0, 1000.0),
        "target for 1000 boards' status: p99 < 1 s",
    )?;
    for (i, (name, s)) in series.iter().enumerate() {
        let c = COLORS[i];
        chart
            .draw_series(LineSeries::new(s.clone(), c.stroke_width(2)))
            .map_err(e)?
            .label(*name)
            .legend(mark(c));
        chart
            .draw_series(s.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e)?;
    }
    finish(&root, chart, SeriesLabelPosition::UpperLeft, 16)
}
