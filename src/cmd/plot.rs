//! SVG plots of merged sweeps: a figure against a swept field (mean ± standard deviation over
//! trials), a heat map over two fields, and the Pareto scatter of two objectives with its front.

use std::path::Path;

use nacsim_scheduler::sweep::{Merged, MergedRow, SweepValue};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::CliResult;

/// A tick label: `x` rounded to 10 significant digits, trailing zeros dropped (so a tick at
/// 0.15000000000000002 reads `0.15`); scientific from 1e6 and below 1e-4 (`4e11`).
pub fn tick(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{}", if x == 0.0 { 0.0 } else { x });
    }
    let e = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&e) {
        let s = format!("{x:.9e}");
        let (m, ex) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{ex}");
    }
    let s = format!("{:.*}", (9 - e).max(0) as usize, x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A heat-map cell's label: 4 significant digits.
fn cell(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return tick(v);
    }
    let e = v.abs().log10().floor() as i32;
    if (-3..4).contains(&e) {
        tick(
            format!("{:.*}", (3 - e).max(0) as usize, v)
                .parse()
                .unwrap_or(v),
        )
    } else {
        let s = format!("{v:.3e}");
        let (m, ex) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{ex}", m.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The unit of a report figure, from its key (docs/report-format.md naming: `_s` seconds, `_pj`
/// picojoules, …); empty for plain counts.
pub fn unit(metric: &str) -> &'static str {
    let m = metric;
    match m {
        "accuracy" | "float_accuracy" | "utilization" => "fraction",
        "tops_per_watt" => "TOPS/W",
        "gops" | "peak_gops" => "GOPS",
        "cycles" | "stall_cycles" => "cycles",
        "edp_j_s" => "J·s",
        "tops_per_mm2" | "peak_tops_per_mm2" => "TOPS/mm²",
        "images_per_s" => "1/s",
        "write_pulses" | "max_pulses_per_device" | "mean_pulses_per_device" => "pulses",
        _ if m.ends_with("_pj") => "pJ",
        _ if m.ends_with("_s") => "s",
        _ if m.ends_with("_hz") => "Hz",
        _ if m.ends_with("_bytes") => "bytes",
        _ if m.ends_with("_bits") => "bits",
        _ if m.ends_with("_mm2") => "mm²",
        _ if m.ends_with("_w") => "W",
        _ if m.ends_with("_j") => "J",
        _ => "",
    }
}

/// An axis label for a figure: its key and unit, e.g. `time_s (s)`.
pub fn label(metric: &str) -> String {
    match unit(metric) {
        "" => metric.to_string(),
        u => format!("{metric} ({u})"),
    }
}

/// The index of swept field `name` in `m`: its dotted path, or a unique end of it after a `.`.
///
/// # Errors
/// No field or several fields match; the message lists the sweep's fields.
pub fn field(m: &Merged, name: &str) -> CliResult<usize> {
    let fields = m.fields();
    if let Some(i) = fields.iter().position(|f| f == name) {
        return Ok(i);
    }
    let hits: Vec<usize> = (0..fields.len())
        .filter(|&i| fields[i].ends_with(&format!(".{name}")))
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        _ => Err(format!(
            "{name:?} is {} of the swept fields of sweep {:?}; give one of: {}",
            if hits.is_empty() {
                "none"
            } else {
                "more than one"
            },
            m.record.name,
            fields.join(", ")
        )
        .into()),
    }
}

/// `metric` if the rows carry it (a trailing `_mean` is dropped).
///
/// # Errors
/// An unknown figure; the message lists the sweep's figures.
pub fn metric(m: &Merged, name: &str) -> CliResult<String> {
    let k = name.strip_suffix("_mean").unwrap_or(name);
    let names = m.metric_names();
    if names.iter().any(|n| n == k) {
        Ok(k.to_string())
    } else {
        Err(format!(
            "unknown figure {name:?}: the points of sweep {:?} carry {}",
            m.record.name,
            names.join(", ")
        )
        .into())
    }
}

/// Where each value of a field goes on an axis: numbers at themselves, names at 0, 1, 2, … in
/// order of first appearance; with the names.
fn positions(values: &[&SweepValue]) -> (Vec<f64>, Option<Vec<String>>) {
    if values.iter().all(|v| v.as_f64().is_some()) {
        (
            values.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect(),
            None,
        )
    } else {
        let mut names: Vec<String> = Vec::new();
        let xs = values
            .iter()
            .map(|v| {
                let s = v.to_string();
                let i = names.iter().position(|n| *n == s).unwrap_or_else(|| {
                    names.push(s);
                    names.len() - 1
                });
                i as f64
            })
            .collect();
        (xs, Some(names))
    }
}

fn span(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (a, b) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if a.is_finite() { (a, b) } else { (0.0, 1.0) }
}

fn padded((a, b): (f64, f64)) -> std::ops::Range<f64> {
    let pad = ((b - a) * 0.05).max(a.abs() * 0.05).max(1e-12);
    (a - pad)..(b + pad)
}

fn io_err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// The one-field accuracy plot (mean, min–max bars) against the swept value; named values
/// (e.g. device presets) are placed at 0, 1, 2, … and labelled by name.
///
/// # Errors
/// The file cannot be written.
pub fn accuracy(rows: &[MergedRow], path: &Path, title: &str, xlabel: &str) -> CliResult<()> {
    let numeric = rows.iter().all(|r| r.value.as_f64().is_some());
    let xs: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if numeric {
                r.value.as_f64().unwrap_or(0.0)
            } else {
                i as f64
            }
        })
        .collect();
    let labelled = |x: &f64| -> String {
        if numeric {
            tick(*x)
        } else if x.fract() == 0.0 && *x >= 0.0 && (*x as usize) < rows.len() {
            rows[*x as usize].value.to_string()
        } else {
            String::new()
        }
    };
    let (x0, x1) = span(xs.iter().copied());
    let pad = ((x1 - x0) * 0.05).max(1e-9);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    let err = io_err(path);
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..1f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .x_labels(if numeric { 10 } else { rows.len().max(2) })
        .x_label_formatter(&labelled)
        .y_desc("top-1 accuracy")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().zip(&xs).map(|(r, &x)| (x, r.accuracy_mean)),
            &BLUE,
        ))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(rows.iter().zip(&xs).map(|(r, &x)| {
            ErrorBar::new_vertical(
                x,
                r.accuracy_min,
                r.accuracy_mean,
                r.accuracy_max,
                BLUE.filled(),
                8,
            )
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A figure's mean ± standard deviation against one swept field, one line per combination of
/// the other fields.
pub struct Line {
    metric: String,
    field: String,
    name: String,
    xs: Vec<f64>,
    names: Option<Vec<String>>,
    /// One line per combination of the other fields.
    series: Vec<Series>,
}

/// A line: its legend and its points `(x, mean, std)`.
type Series = (String, Vec<(f64, f64, f64)>);

/// At most this many lines carry a legend entry (more are drawn without one).
const LEGEND_MAX: usize = 12;

impl Line {
    /// The plot of `metric` against field `x` (default: the first field) of `m`.
    ///
    /// # Errors
    /// An unknown figure or field (listing the known ones).
    pub fn new(m: &Merged, metric_name: &str, x: Option<&str>) -> CliResult<Self> {
        let k = metric(m, metric_name)?;
        let xi = match x {
            Some(x) => field(m, x)?,
            None => 0,
        };
        let rows: Vec<&MergedRow> = m
            .rows
            .iter()
            .filter(|r| r.metrics.contains_key(&k))
            .collect();
        let vals: Vec<&SweepValue> = rows.iter().map(|r| &r.values[xi]).collect();
        let (xs, names) = positions(&vals);
        let mut series: Vec<Series> = Vec::new();
        // Fields that take one value in the sweep say nothing in a legend.
        let varies: Vec<bool> = (0..m.fields().len())
            .map(|i| rows.iter().any(|r| r.values[i] != rows[0].values[i]))
            .collect();
        for (r, &xv) in rows.iter().zip(&xs) {
            let legend = m
                .fields()
                .iter()
                .zip(&r.values)
                .enumerate()
                .filter(|(i, _)| *i != xi && varies[*i])
                .map(|(_, (f, v))| format!("{}={v}", f.rsplit('.').next().unwrap_or(f)))
                .collect::<Vec<_>>()
                .join(", ");
            let s = r.metrics[&k];
            match series.iter_mut().find(|(l, _)| *l == legend) {
                Some((_, pts)) => pts.push((xv, s.mean, s.std)),
                None => series.push((legend, vec![(xv, s.mean, s.std)])),
            }
        }
        for (_, pts) in &mut series {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Ok(Line {
            metric: k,
            field: m.fields()[xi].clone(),
            name: m.record.name.clone(),
            xs,
            names,
            series,
        })
    }

    /// Draw the plot to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn draw(&self, path: &Path, title: Option<&str>, xlabel: Option<&str>) -> CliResult<()> {
        let err = io_err(path);
        let title = title.map_or_else(
            || format!("{}: {} vs {}", self.name, self.metric, self.field),
            String::from,
        );
        let (y0, y1) = span(
            self.series
                .iter()
                .flat_map(|(_, p)| p.iter().flat_map(|&(_, m, s)| [m - s, m + s])),
        );
        let xr = padded(span(self.xs.iter().copied()));
        let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, padded((y0, y1)))
            .map_err(|e| err(&e))?;
        let names = self.names.clone();
        let xfmt = move |x: &f64| match &names {
            None => tick(*x),
            Some(n) if x.fract() == 0.0 && *x >= 0.0 && (*x as usize) < n.len() => {
                n[*x as usize].clone()
            }
            Some(_) => String::new(),
        };
        let yfmt = |y: &f64| tick(*y);
        chart
            .configure_mesh()
            .x_desc(xlabel.unwrap_or(&self.field))
            .y_desc(label(&self.metric))
            .x_labels(self.names.as_ref().map_or(10, |n| n.len().max(2)))
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .draw()
            .map_err(|e| err(&e))?;
        let legend = self.series.len() > 1 && self.series.len() <= LEGEND_MAX;
        for (i, (name, pts)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let drawn = chart
                .draw_series(LineSeries::new(pts.iter().map(|&(x, m, _)| (x, m)), color))
                .map_err(|e| err(&e))?;
            if legend {
                drawn
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            chart
                .draw_series(pts.iter().map(|&(x, m, s)| {
                    ErrorBar::new_vertical(x, m - s, m, m + s, color.filled(), 6)
                }))
                .map_err(|e| err(&e))?;
        }
        if legend {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// A heat map of a figure over two swept fields (other fields averaged over).
pub struct Heat {
    metric: String,
    fields: (String, String),
    name: String,
    xs: Vec<String>,
    ys: Vec<String>,
    /// Mean of the figure per (x, y) cell, `None` where no design lies.
    cells: Vec<Vec<Option<f64>>>,
}

impl Heat {
    /// The heat map of `metric` over fields `x` and `y` (default: the first two) of `m`.
    ///
    /// # Errors
    /// An unknown figure or field, or a sweep with fewer than two fields.
    pub fn new(m: &Merged, metric_name: &str, x: Option<&str>, y: Option<&str>) -> CliResult<Self> {
        let k = metric(m, metric_name)?;
        if m.fields().len() < 2 {
            return Err(format!(
                "sweep {:?} sweeps one field ({}); a heat map needs two",
                m.record.name,
                m.fields().join(", ")
            )
            .into());
        }
        let xi = x.map_or(Ok(0), |x| field(m, x))?;
        let yi = y.map_or(Ok(if xi == 1 { 0 } else { 1 }), |y| field(m, y))?;
        if xi == yi {
            return Err(format!("--x and --y name the same field {}", m.fields()[xi]).into());
        }
        let mut xs: Vec<String> = Vec::new();
        let mut ys: Vec<String> = Vec::new();
        let mut sums: Vec<(usize, usize, f64, usize)> = Vec::new();
        let idx = |list: &mut Vec<String>, s: String| {
            list.iter().position(|v| *v == s).unwrap_or_else(|| {
                list.push(s);
                list.len() - 1
            })
        };
        for r in m.rows.iter().filter(|r| r.metrics.contains_key(&k)) {
            let a = idx(&mut xs, r.values[xi].to_string());
            let b = idx(&mut ys, r.values[yi].to_string());
            let v = r.metrics[&k].mean;
            match sums.iter_mut().find(|c| c.0 == a && c.1 == b) {
                Some(c) => {
                    c.2 += v;
                    c.3 += 1;
                }
                None => sums.push((a, b, v, 1)),
            }
        }
        let mut cells = vec![vec![None; ys.len()]; xs.len()];
        for (a, b, s, n) in sums {
            cells[a][b] = Some(s / n as f64);
        }
        Ok(Heat {
            metric: k,
            fields: (m.fields()[xi].clone(), m.fields()[yi].clone()),
            name: m.record.name.clone(),
            xs,
            ys,
            cells,
        })
    }

    /// Draw the heat map to `path`: one cell per pair of values, coloured from dark blue (lowest)
    /// to yellow (highest), each labelled with its value.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn draw(&self, path: &Path, title: Option<&str>) -> CliResult<()> {
        let err = io_err(path);
        let title = title.map_or_else(
            || {
                format!(
                    "{}: {} over {} × {}",
                    self.name,
                    label(&self.metric),
                    self.fields.0,
                    self.fields.1
                )
            },
            String::from,
        );
        let (lo, hi) = span(self.cells.iter().flatten().flatten().copied());
        let (nx, ny) = (self.xs.len(), self.ys.len());
        let root = SVGBackend::new(path, (760, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(|e| err(&e))?;
        let xn = self.xs.clone();
        let yn = self.ys.clone();
        let name_at = |names: &[String], v: f64| -> String {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        };
        let xf = |v: &f64| name_at(&xn, *v);
        let yf = |v: &f64| name_at(&yn, *v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.fields.0)
            .y_desc(&self.fields.1)
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .draw()
            .map_err(|e| err(&e))?;
        let color = |v: f64| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            // Dark blue (0.17, 0.11, 0.45) to yellow (0.99, 0.91, 0.15), linear in RGB.
            let mix = |a: f64, b: f64| ((a + t * (b - a)) * 255.0).round() as u8;
            RGBColor(mix(0.17, 0.99), mix(0.11, 0.91), mix(0.45, 0.15))
        };
        for (a, col) in self.cells.iter().enumerate() {
            for (b, c) in col.iter().enumerate() {
                let Some(v) = *c else { continue };
                let (x, y) = (a as f64, b as f64);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        color(v).filled(),
                    )))
                    .map_err(|e| err(&e))?;
                let ink = if hi > lo && (v - lo) / (hi - lo) > 0.6 {
                    BLACK
                } else {
                    WHITE
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        cell(v),
                        (x + 0.5, y + 0.5),
                        ("sans-serif", 12)
                            .into_font()
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )))
                    .map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// The Pareto scatter of two objectives: every design as a grey dot, the non-dominated ones
/// (`front`) in red joined by a step line in order of the x objective.
///
/// # Errors
/// The file cannot be written.
pub fn pareto(
    points: &[(f64, f64)],
    front: &[bool],
    labels: (&str, &str),
    title: &str,
    path: &Path,
) -> CliResult<()> {
    let err = io_err(path);
    let root = SVGBackend::new(path, (720, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let xr = padded(span(points.iter().map(|p| p.0)));
    let yr = padded(span(points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xr, yr)
        .map_err(|e| err(&e))?;
    let f = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .x_desc(labels.0)
        .y_desc(labels.1)
        .x_label_formatter(&f)
        .y_label_formatter(&f)
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            points
                .iter()
                .zip(front)
                .filter(|(_, f)| !**f)
                .map(|(&p, _)| Circle::new(p, 3, RGBColor(150, 150, 150).filled())),
        )
        .map_err(|e| err(&e))?;
    let mut on: Vec<(f64, f64)> = points
        .iter()
        .zip(front)
        .filter(|(_, f)| **f)
        .map(|(&p, _)| p)
        .collect();
    on.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    chart
        .draw_series(LineSeries::new(on.iter().copied(), RED))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(on.iter().map(|&p| Circle::new(p, 4, RED.filled())))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_rounded() {
        assert_eq!(tick(0.15000000000000002), "0.15");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-0.30000000000000004), "-0.3");
        assert_eq!(tick(123456.0), "123456");
        assert_eq!(tick(1234567.0), "1.234567e6");
        assert_eq!(tick(4e11), "4e11");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(3.2e-7), "3.2e-7");
        assert_eq!(tick(1.5e12), "1.5e12");
    }

    #[test]
    fn cells_have_four_digits() {
        assert_eq!(cell(7.603620186), "7.604");
        assert_eq!(cell(0.8035), "0.8035");
        assert_eq!(cell(3.998603e11), "3.999e11");
        assert_eq!(cell(0.157), "0.157");
    }

    #[test]
    fn units_follow_the_key() {
        assert_eq!(label("time_s"), "time_s (s)");
        assert_eq!(label("energy_pj"), "energy_pj (pJ)");
        assert_eq!(label("edp_j_s"), "edp_j_s (J·s)");
        assert_eq!(label("area_mm2"), "area_mm2 (mm²)");
        assert_eq!(label("ops"), "ops");
    }
}
