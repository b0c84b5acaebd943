//! Charts as inline SVG, drawn with `plotters` (its SVG backend escapes every text it writes).
//!
//! Each function returns the SVG document as a string, or the drawing error as text for the page to show
//! in the chart's place.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::pages::num;
use cellos_core::readout;
use cellos_core::titer::Transduction;

const SIZE: (u32, u32) = (760, 380);
const CAPACITY: RGBColor = RGBColor(200, 30, 30);

/// The colour of series `i`.
fn color(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::COLORS[i % Palette99::COLORS.len()];
    RGBColor(r, g, b)
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

/// Every chart's legend: a framed, lightly filled box at `position`.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
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

/// One line's series of the trajectory: `(iteration, value)` points and the best value so far.
pub struct Trajectory<'a> {
    /// Legend name.
    pub name: &'a str,
    /// Every measurement.
    pub points: Vec<(f64, f64)>,
    /// Best so far, one point per iteration.
    pub best: Vec<(f64, f64)>,
}

/// The optimisation trajectory: measurements per iteration and best-so-far lines.
pub fn trajectory(series: &[Trajectory], y_label: &str) -> Chart {
    if series.iter().all(|s| s.points.is_empty()) {
        return Chart::Empty("no measurements yet");
    }
    render(|root| {
        let xs = padded(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let ys = padded(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let mut chart = frame(root, "Optimisation trajectory").build_cartesian_2d(xs, ys).map_err(err)?;
        chart.configure_mesh().x_desc("iteration").y_desc(y_label).draw().map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, c.mix(0.5).filled())))
                .map_err(err)?
                .label(format!("{} measurements", s.name))
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
            chart
                .draw_series(LineSeries::new(s.best.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} best so far", s.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// One series of a dose-response chart.
pub struct DoseSeries<'a> {
    /// Legend name.
    pub name: &'a str,
    /// `(dose µM, response)`, doses > 0.
    pub points: Vec<(f64, f64)>,
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
    /// Horizontal thresholds `(label, value)`.
    pub thresholds: Vec<(String, f64)>,
    /// The chosen dose and its interval.
    pub chosen: Option<Chosen>,
}

/// Draws a dose-response chart.
pub fn dose_response(c: &DoseChart) -> Chart {
    if c.series.iter().all(|s| s.points.is_empty()) {
        return Chart::Empty("no dosed measurements yet");
    }
    render(|root| {
        let doses = c
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(c.chosen.iter().flat_map(|ch| [Some(ch.at), ch.lo, ch.hi]).flatten())
            .filter(|d| *d > 0.0);
        let (lo, hi) = doses.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), d| (a.min(d), b.max(d)));
        let (lo, hi) = if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (0.1, 100.0) };
        let ys = padded(
            c.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .chain(c.thresholds.iter().map(|t| t.1))
                .chain([0.0]),
        );
        let mut chart = frame(root, c.title).build_cartesian_2d((lo..hi).log_scale(), ys.clone()).map_err(err)?;
        let (what, unit) = c.x;
        chart.configure_mesh().x_desc(format!("{what} ({unit}, log scale)")).y_desc(c.y_label).draw().map_err(err)?;
        if let Some(ch) = &c.chosen {
            let d = ch.at;
            if let (Some(l), Some(h)) = (ch.lo, ch.hi) {
                chart
                    .draw_series([Rectangle::new(
                        [(l, ys.start), (h, ys.end)],
                        RGBColor(60, 160, 60).mix(0.15).filled(),
                    )])
                    .map_err(err)?
                    .label(format!("90 % interval {l:.2}–{h:.2} {unit}"))
                    .legend(|(x, y)| {
                        Rectangle::new([(x, y - 4), (x + 20, y + 4)], RGBColor(60, 160, 60).mix(0.3).filled())
                    });
            }
            chart
                .draw_series(LineSeries::new([(d, ys.start), (d, ys.end)], RGBColor(30, 120, 30).stroke_width(2)))
                .map_err(err)?
                .label(ch.label.clone())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RGBColor(30, 120, 30).stroke_width(2)));
        }
        for (label, v) in &c.thresholds {
            let v = *v;
            chart
                .draw_series(DashedLineSeries::new([(lo, v), (hi, v)], 6, 4, CAPACITY.stroke_width(1)))
                .map_err(err)?
                .label(label.clone())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], CAPACITY));
        }
        for (i, s) in c.series.iter().enumerate() {
            let col = color(i);
            let name = if s.curve.is_none() { format!("{} (no credible fit)", s.name) } else { s.name.to_string() };
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, col.mix(0.6).filled())))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, col.filled()));
            if let Some(curve) = s.curve {
                let n = 120;
                let line = (0..=n).map(|k| {
                    let d = lo * (hi / lo).powf(f64::from(k) / f64::from(n));
                    (d, curve.at(d))
                });
                chart
                    .draw_series(LineSeries::new(line, col.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("{} fit: {}", s.name, curve.label()))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], col.stroke_width(2)));
            }
        }
        // The legend goes where the curves are not: low left under falling curves, high left over rising.
        let mut pts: Vec<(f64, f64)> = c.series.iter().flat_map(|s| s.points.iter().copied()).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let half = pts.len() / 2;
        let mean = |p: &[(f64, f64)]| p.iter().map(|x| x.1).sum::<f64>() / p.len().max(1) as f64;
        let rising = half > 0 && mean(&pts[half..]) > mean(&pts[..half]);
        legend(&mut chart, if rising { SeriesLabelPosition::UpperLeft } else { SeriesLabelPosition::LowerLeft })
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
        chart.configure_mesh().y_desc(y_label).x_labels(names.len().max(1)).draw().map_err(err)?;
        chart
            .draw_series(groups.iter().enumerate().map(|(i, g)| {
                Boxplot::new_vertical(SegmentValue::CenterOf(&names[i]), &Quartiles::new(&g.1))
                    .width(30)
                    .style(color(i))
            }))
            .map_err(err)?;
        Ok(())
    })
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
    render(|root| {
        let days = before.loads.iter().chain(&after.loads).map(|p| f64::from(p.0));
        let xs = padded(days);
        let ys = padded(before.loads.iter().chain(&after.loads).map(|p| p.1).chain([0.0, capacity]));
        let mut chart = frame(root, title).build_cartesian_2d(xs.clone(), ys).map_err(err)?;
        chart.configure_mesh().x_desc("day").y_desc(unit).draw().map_err(err)?;
        let line = |pts: &[(u32, f64)]| pts.iter().map(|&(d, v)| (f64::from(d), v)).collect::<Vec<_>>();
        let (b, a) = (color(1), color(0));
        chart
            .draw_series(LineSeries::new(line(&before.loads), b.mix(0.7).stroke_width(1)))
            .map_err(err)?
            .label("as requested")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], b));
        chart
            .draw_series(LineSeries::new(line(&after.loads), a.stroke_width(2)))
            .map_err(err)?
            .label("after scheduling")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], a.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(
                [(xs.start, capacity), (xs.end, capacity)],
                6,
                4,
                CAPACITY.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("capacity {capacity:.2}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], CAPACITY));
        chart
            .draw_series(line(&before.over).into_iter().map(|p| Cross::new(p, 4, CAPACITY.stroke_width(1))))
            .map_err(err)?
            .label("over capacity, as requested")
            .legend(|(x, y)| Cross::new((x + 10, y), 4, CAPACITY));
        chart
            .draw_series(line(&after.over).into_iter().map(|p| TriangleMarker::new(p, 5, CAPACITY.filled())))
            .map_err(err)?
            .label("over capacity, after scheduling")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, CAPACITY.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
