//! Charts as inline SVG, drawn with `plotters` (its SVG backend escapes every text it writes).
//!
//! Each function returns the SVG document as a string, or the drawing error as text for the page to show
//! in the chart's place.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::pages::num;
use cellos_core::readout;
use cellos_core::titer::Transduction;

const SIZE: (u32, u32) = (760, 460);
/// The height of the legend strip under each chart: legends sit outside the data.
const LEGEND_H: u32 = 80;
const CAPACITY: RGBColor = RGBColor(213, 94, 0);

/// The Okabe–Ito palette (readable with every common colour-vision deficiency; no yellow on white).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 0, 0),       // black
];

/// The colour of series `i`.
fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    /// A filled dot.
    Dot(RGBColor),
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A dotted line.
    Dotted(RGBColor),
    /// A shaded band.
    Band(RGBColor, f64),
    /// A cross.
    Cross(RGBColor),
    /// A triangle.
    Triangle(RGBColor),
}

/// A legend entry.
pub struct Key {
    /// What it says.
    pub label: String,
    /// How it looks.
    pub mark: Mark,
}

fn key(label: impl Into<String>, mark: Mark) -> Key {
    Key { label: label.into(), mark }
}

/// The legend, in the strip under the chart: three entries to a row.
fn draw_keys(area: &DrawingArea<SVGBackend, Shift>, keys: &[Key]) -> Result<(), String> {
    let col_w = (SIZE.0 as i32 - 40) / 3;
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (20 + (i as i32 % 3) * col_w, 12 + (i as i32 / 3) * 18);
        let (a, b) = ((x, y), (x + 22, y));
        match k.mark {
            Mark::Dot(c) => area.draw(&Circle::new((x + 11, y), 4, c.filled())),
            Mark::Line(c) => area.draw(&PathElement::new([a, b], c.stroke_width(2))),
            Mark::Dashed(c) => {
                area.draw(&PathElement::new([a, (x + 8, y)], c.stroke_width(2))).map_err(err)?;
                area.draw(&PathElement::new([(x + 14, y), b], c.stroke_width(2)))
            }
            Mark::Dotted(c) => {
                for d in 0..6 {
                    area.draw(&Circle::new((x + 2 + d * 4, y), 1, c.filled())).map_err(err)?;
                }
                Ok(())
            }
            Mark::Band(c, alpha) => area.draw(&Rectangle::new([(x, y - 5), (x + 22, y + 5)], c.mix(alpha).filled())),
            Mark::Cross(c) => area.draw(&Cross::new((x + 11, y), 4, c.stroke_width(1))),
            Mark::Triangle(c) => area.draw(&TriangleMarker::new((x + 11, y), 5, c.filled())),
        }
        .map_err(err)?;
        area.draw(&Text::new(k.label.clone(), (x + 28, y - 6), ("sans-serif", 12))).map_err(err)?;
    }
    Ok(())
}

/// A chart with its legend under it: `draw` draws the chart and returns the legend's entries.
fn render_keyed(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<Vec<Key>, String>) -> Chart {
    render(|root| {
        let (top, bottom) = root.split_vertically(SIZE.1 - LEGEND_H);
        let keys = draw(&top)?;
        draw_keys(&bottom, &keys)
    })
}

/// A drawn chart, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Chart {
    /// The SVG document.
    Svg(String),
    /// Nothing to draw yet (no measurements, say).
    Empty(&'static str),
    /// Drawing failed.
    Failed(String),
}

fn render(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>) -> Chart {
    let mut svg = String::new();
    let drawn = (|| {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())
    })();
    match drawn {
        Ok(()) => Chart::Svg(svg),
        Err(e) => Chart::Failed(e),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every chart's frame: caption, margin, axis label areas.
fn frame<'a, 'b>(root: &'a DrawingArea<SVGBackend<'b>, Shift>, title: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 18)).margin(10).x_label_area_size(36).y_label_area_size(60);
    b
}

/// `lo..hi` padded by 5 % (or ±1 around a single value).
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    lo - pad..hi + pad
}

/// The points of a scatter of dots of radius `r` px that land in distinct cells of `2r` × `2r` pixels,
/// in their order: every cell that holds a point still holds a dot, so the area the dots cover stays
/// the same to within a dot, but a series of 100,000 wells draws at most one dot per cell it touches
/// (the SVG grows with the picture, not with the data; a chart of a few hundred wells loses nothing).
fn distinct_pixels(points: &[(f64, f64)], r: i32, pixel: impl Fn(&(f64, f64)) -> (i32, i32)) -> Vec<(f64, f64)> {
    let side = 2 * r.max(1);
    let (w, h) = (SIZE.0 as i32 / side + 1, SIZE.1 as i32 / side + 1);
    let mut seen = vec![false; (w * h) as usize];
    points
        .iter()
        .copied()
        .filter(|p| {
            let (x, y) = pixel(p);
            let (cx, cy) = (x.div_euclid(side), y.div_euclid(side));
            // A point off the picture is kept as it is (plotters clips it).
            if !(0..w).contains(&cx) || !(0..h).contains(&cy) {
                return true;
            }
            !std::mem::replace(&mut seen[(cy * w + cx) as usize], true)
        })
        .collect()
}

/// The most tick labels an axis asks for (the whole iterations of a long campaign: a label every few).
const MAX_TICKS: usize = 25;

/// One line's series of the trajectory: `(iteration, value)` points and the best value so far.
pub struct Trajectory<'a> {
    /// Legend name.
    pub name: &'a str,
    /// Every measurement.
    pub points: Vec<(f64, f64)>,
    /// Best so far, one point per iteration.
    pub best: Vec<(f64, f64)>,
}

/// The optimisation trajectory: measurements per iteration and best-so-far lines (a step: the best
/// holds until an iteration beats it), on whole iterations.
pub fn trajectory(series: &[Trajectory], y_label: &str) -> Chart {
    if series.iter().all(|s| s.points.is_empty()) {
        return Chart::Empty("no measurements yet");
    }
    render_keyed(|root| {
        let its = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let (first, last) = its.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let xs = (first - 0.5)..(last + 0.5);
        let ys = padded(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let mut chart = frame(root, "Optimisation trajectory").build_cartesian_2d(xs, ys).map_err(err)?;
        let whole = |x: &f64| if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { String::new() };
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(y_label)
            .x_labels((((last - first) as usize + 1) * 2 + 1).min(MAX_TICKS))
            .x_label_formatter(&whole)
            .draw()
            .map_err(err)?;
        let mut keys = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            let shown = distinct_pixels(&s.points, 2, |p| chart.backend_coord(p));
            chart.draw_series(shown.into_iter().map(|p| Circle::new(p, 2, c.mix(0.5).filled()))).map_err(err)?;
            let mut step = Vec::new();
            for (k, &(x, y)) in s.best.iter().enumerate() {
                if k > 0 {
                    step.push((x, s.best[k - 1].1));
                }
                step.push((x, y));
            }
            chart.draw_series(LineSeries::new(step, c.stroke_width(2))).map_err(err)?;
            keys.push(key(format!("{} measurements", s.name), Mark::Dot(c)));
            keys.push(key(format!("{} best so far", s.name), Mark::Line(c)));
        }
        Ok(keys)
    })
}

/// One series of a dose-response chart.
pub struct DoseSeries<'a> {
    /// Legend name.
    pub name: &'a str,
    /// `(dose µM, response)`, doses > 0.
    pub points: Vec<(f64, f64)>,
    /// `(dose µM, low, high)`: a spread drawn as a vertical bar at the dose (none: empty).
    pub spread: Vec<(f64, f64, f64)>,
    /// The fitted curve, if any.
    pub curve: Option<Fit>,
}

/// A fitted curve of a chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fit {
    /// A falling 4PL (dose-response).
    FourPl(readout::FourPl),
    /// Lentivirus transduction: `A · (1 − exp(−V · T / N))` (MODEL.md §5).
    Lentivirus(Transduction),
}

impl Fit {
    /// The curve's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        match *self {
            Fit::FourPl(c) => c.eval(x),
            Fit::Lentivirus(t) => t.fraction(x),
        }
    }

    fn label(&self) -> String {
        match *self {
            Fit::FourPl(c) => format!("IC50 {} µM, Hill {}", num(c.ic50), num(c.hill)),
            Fit::Lentivirus(t) => format!("titer {} TU/µL, plateau {}", num(t.titer_tu_per_ul), num(t.max_fraction)),
        }
    }
}

/// A chosen point on the x axis, with an optional interval.
pub struct Chosen {
    /// Where.
    pub at: f64,
    /// Interval low end.
    pub lo: Option<f64>,
    /// Interval high end.
    pub hi: Option<f64>,
    /// Legend text.
    pub label: String,
}

/// A dose-response chart on a log dose axis (or any response over a log-scaled amount).
pub struct DoseChart<'a> {
    /// Caption.
    pub title: &'a str,
    /// What the x axis holds and its unit: `("dose", "µM")`.
    pub x: (&'a str, &'a str),
    /// Response axis label.
    pub y_label: &'a str,
    /// Series.
    pub series: Vec<DoseSeries<'a>>,
    /// Horizontal thresholds.
    pub thresholds: Vec<Threshold>,
    /// The chosen dose and its interval.
    pub chosen: Option<Chosen>,
    /// The objective, on its own axis at the right, with that axis's label (CellROX for dose finding).
    pub objective: Option<(DoseSeries<'a>, &'a str)>,
}

/// A horizontal threshold: the first is dashed, the second dotted, each in its series' colour.
pub struct Threshold {
    /// Legend text.
    pub label: String,
    /// Where.
    pub value: f64,
    /// The series it constrains (index into [`DoseChart::series`]); its fit must stay above it.
    pub series: Option<usize>,
}

/// The doses, from the chart's lowest, where every fitted series stays at or above its threshold.
fn feasible(c: &DoseChart, lo: f64, hi: f64) -> Option<(f64, f64)> {
    let bound: Vec<(Fit, f64)> =
        c.thresholds.iter().filter_map(|t| Some((c.series.get(t.series?)?.curve?, t.value))).collect();
    if bound.is_empty() {
        return None;
    }
    let n = 400;
    let dose = |k: u32| lo * (hi / lo).powf(f64::from(k) / f64::from(n));
    let ok = |d: f64| bound.iter().all(|(f, t)| f.at(d) >= *t);
    if !ok(dose(0)) {
        return None;
    }
    let last = (0..=n).take_while(|&k| ok(dose(k))).last()?;
    Some((lo, dose(last)))
}

/// Draws a dose-response chart: points and fits of each series, the thresholds (dashed, dotted) in
/// their series' colours, the feasible doses shaded, the chosen dose with its interval, and the
/// objective on its own axis at the right; the legend under the chart.
pub fn dose_response(c: &DoseChart) -> Chart {
    if c.series.iter().all(|s| s.points.is_empty()) {
        return Chart::Empty("no dosed measurements yet");
    }
    render_keyed(|root| {
        let doses = c
            .series
            .iter()
            .chain(c.objective.iter().map(|o| &o.0))
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(c.chosen.iter().flat_map(|ch| [Some(ch.at), ch.lo, ch.hi]).flatten())
            .filter(|d| *d > 0.0);
        let (lo, hi) = doses.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), d| (a.min(d), b.max(d)));
        let (lo, hi) = if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (0.1, 100.0) };
        let ys = padded(
            c.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.spread.iter().flat_map(|b| [b.1, b.2])))
                .chain(c.thresholds.iter().map(|t| t.value))
                .chain([0.0]),
        );
        let y2 = padded(c.objective.iter().flat_map(|o| o.0.points.iter().map(|p| p.1)).chain([0.0]));
        let mut b = frame(root, c.title);
        if c.objective.is_some() {
            b.right_y_label_area_size(60);
        }
        let mut chart = b
            .build_cartesian_2d((lo..hi).log_scale(), ys.clone())
            .map_err(err)?
            .set_secondary_coord((lo..hi).log_scale(), y2.clone());
        let (what, unit) = c.x;
        chart.configure_mesh().x_desc(format!("{what} ({unit}, log scale)")).y_desc(c.y_label).draw().map_err(err)?;
        let mut keys = Vec::new();
        let window = RGBColor(0, 114, 178);
        if let Some((a, z)) = feasible(c, lo, hi) {
            chart
                .draw_series([Rectangle::new([(a, ys.start), (z, ys.end)], window.mix(0.08).filled())])
                .map_err(err)?;
            keys.push(key(
                format!("feasible doses (fits above thresholds), up to {z:.1} {unit}"),
                Mark::Band(window, 0.15),
            ));
        }
        let chosen_c = RGBColor(0, 0, 0);
        if let Some(ch) = &c.chosen {
            if let (Some(l), Some(h)) = (ch.lo, ch.hi) {
                chart
                    .draw_series([Rectangle::new([(l, ys.start), (h, ys.end)], chosen_c.mix(0.12).filled())])
                    .map_err(err)?;
                keys.push(key(format!("90 % interval {l:.2}–{h:.2} {unit}"), Mark::Band(chosen_c, 0.25)));
            }
            chart
                .draw_series(LineSeries::new([(ch.at, ys.start), (ch.at, ys.end)], chosen_c.stroke_width(2)))
                .map_err(err)?;
            keys.push(key(ch.label.clone(), Mark::Line(chosen_c)));
        }
        for (k, t) in c.thresholds.iter().enumerate() {
            let col = t.series.map_or(CAPACITY, color);
            let (dash, gap) = if k == 0 { (8, 5) } else { (2, 4) };
            chart
                .draw_series(DashedLineSeries::new([(lo, t.value), (hi, t.value)], dash, gap, col.stroke_width(2)))
                .map_err(err)?;
            keys.push(key(t.label.clone(), if k == 0 { Mark::Dashed(col) } else { Mark::Dotted(col) }));
        }
        let curve_points = |curve: Fit| {
            let n = 120;
            (0..=n).map(move |k| {
                let d = lo * (hi / lo).powf(f64::from(k) / f64::from(n));
                (d, curve.at(d))
            })
        };
        for (i, s) in c.series.iter().enumerate() {
            let col = color(i);
            let shown = distinct_pixels(&s.points, 3, |p| chart.backend_coord(p));
            chart.draw_series(shown.into_iter().map(|p| Circle::new(p, 3, col.mix(0.6).filled()))).map_err(err)?;
            chart
                .draw_series(
                    s.spread.iter().map(|&(d, lo, hi)| PathElement::new([(d, lo), (d, hi)], col.stroke_width(1))),
                )
                .map_err(err)?;
            let name = if s.curve.is_none() { format!("{} (no credible fit)", s.name) } else { s.name.to_string() };
            keys.push(key(name, Mark::Dot(col)));
            if let Some(curve) = s.curve {
                chart.draw_series(LineSeries::new(curve_points(curve), col.stroke_width(2))).map_err(err)?;
                keys.push(key(format!("{} fit: {}", s.name, curve.label()), Mark::Line(col)));
            }
        }
        if let Some((o, axis)) = &c.objective {
            let col = color(2);
            chart.configure_secondary_axes().y_desc(*axis).draw().map_err(err)?;
            chart
                .draw_secondary_series(o.points.iter().map(|&p| TriangleMarker::new(p, 4, col.mix(0.7).filled())))
                .map_err(err)?;
            keys.push(key(format!("{} (right axis)", o.name), Mark::Triangle(col)));
        }
        Ok(keys)
    })
}

/// Box plots of values grouped by a key.
pub fn boxplots(title: &str, y_label: &str, groups: &[(String, Vec<f64>)]) -> Chart {
    let groups: Vec<&(String, Vec<f64>)> = groups.iter().filter(|g| !g.1.is_empty()).collect();
    if groups.is_empty() {
        return Chart::Empty("no measurements yet");
    }
    render(|root| {
        let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let ys = padded(groups.iter().flat_map(|g| g.1.iter().copied()));
        let mut chart = frame(root, title)
            .build_cartesian_2d(names[..].into_segmented(), (ys.start as f32)..(ys.end as f32))
            .map_err(err)?;
        let plain = |v: &SegmentValue<&String>| match v {
            SegmentValue::CenterOf(s) | SegmentValue::Exact(s) => (*s).clone(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .y_desc(y_label)
            .x_labels(names.len().max(1))
            .x_label_formatter(&plain)
            .draw()
            .map_err(err)?;
        let quartiles: Vec<Quartiles> = groups.iter().map(|g| quartiles(&g.1)).collect();
        chart
            .draw_series(groups.iter().enumerate().map(|(i, _)| {
                Boxplot::new_vertical(SegmentValue::CenterOf(&names[i]), &quartiles[i]).width(30).style(color(i))
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// The quartiles of `values` (not empty), as plotters' `Quartiles::new` computes them (each the linear
/// interpolation between the two order statistics around its rank), found by selection rather than by
/// sorting every value: a box of 100,000 wells costs a pass or two over them, not a sort.
fn quartiles(values: &[f64]) -> Quartiles {
    let mut s = values.to_vec();
    let n = s.len();
    let mut at = |pct: f64| -> f64 {
        if n == 1 {
            return s[0];
        }
        let rank = pct / 100.0 * (n - 1) as f64;
        let k = rank.floor() as usize;
        let (_, lo, above) = s.select_nth_unstable_by(k, f64::total_cmp);
        let lo = *lo;
        // The next order statistic is the least value above the k-th.
        let hi = above.iter().copied().min_by(f64::total_cmp).unwrap_or(lo);
        lo + (hi - lo) * (rank - k as f64)
    };
    let (lower, median, upper) = (at(25.0), at(50.0), at(75.0));
    // Five values whose 25th, 50th and 75th percentiles are exactly these: plotters derives the fences.
    Quartiles::new(&[lower, lower, median, upper, upper])
}

/// One day-by-day load: `(day, load)` for every day, and the days over capacity.
pub struct Daily {
    /// Every day's load.
    pub loads: Vec<(u32, f64)>,
    /// The days over capacity, with their load.
    pub over: Vec<(u32, f64)>,
}

/// A daily load before and after scheduling against its capacity, with the days over capacity marked.
pub fn daily_load(title: &str, unit: &str, capacity: f64, before: &Daily, after: &Daily) -> Chart {
    render_keyed(|root| {
        let days = before.loads.iter().chain(&after.loads).map(|p| f64::from(p.0));
        let xs = padded(days);
        let ys = padded(before.loads.iter().chain(&after.loads).map(|p| p.1).chain([0.0, capacity]));
        let mut chart = frame(root, title).build_cartesian_2d(xs.clone(), ys).map_err(err)?;
        chart.configure_mesh().x_desc("day").y_desc(unit).draw().map_err(err)?;
        let line = |pts: &[(u32, f64)]| pts.iter().map(|&(d, v)| (f64::from(d), v)).collect::<Vec<_>>();
        let (b, a) = (color(1), color(0));
        chart.draw_series(LineSeries::new(line(&before.loads), b.mix(0.7).stroke_width(1))).map_err(err)?;
        chart.draw_series(LineSeries::new(line(&after.loads), a.stroke_width(2))).map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(xs.start, capacity), (xs.end, capacity)],
                6,
                4,
                CAPACITY.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(line(&before.over).into_iter().map(|p| Cross::new(p, 4, CAPACITY.stroke_width(1))))
            .map_err(err)?;
        chart
            .draw_series(line(&after.over).into_iter().map(|p| TriangleMarker::new(p, 5, CAPACITY.filled())))
            .map_err(err)?;
        Ok(vec![
            key("as requested", Mark::Line(b)),
            key("after scheduling", Mark::Line(a)),
            key(format!("capacity {capacity:.2}"), Mark::Dashed(CAPACITY)),
            key("over capacity, as requested", Mark::Cross(CAPACITY)),
            key("over capacity, after scheduling", Mark::Triangle(CAPACITY)),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_by_selection_are_plotters_quartiles_by_sorting() {
        let mut rng = cellos_core::rng::seeded(11);
        let mut sets: Vec<Vec<f64>> =
            vec![vec![3.5], vec![2.0, -1.0], vec![7.0, 15.0, 36.0, 39.0, 40.0, 41.0], vec![1.0; 9]];
        for n in [3usize, 4, 10, 101, 1000, 4097] {
            // Values with ties (a tenth of them repeated) in a random order.
            let v: Vec<f64> = (0..n)
                .map(|k| {
                    let x = cellos_core::rng::normal(&mut rng, 10.0, 3.0);
                    if k % 10 == 3 { 10.0 } else { x }
                })
                .collect();
            sets.push(v);
        }
        for s in &sets {
            assert_eq!(quartiles(s).values(), Quartiles::new(s).values(), "{} values", s.len());
        }
        assert_eq!(quartiles(&[7.0, 15.0, 36.0, 39.0, 40.0, 41.0]).values(), [-9.0, 20.25, 37.5, 39.75, 69.0]);
    }
}
