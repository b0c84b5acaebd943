//! Plate maps: a plate's wells as a grid coloured by one readout, the way a plate reader's software
//! shows a plate first.
//!
//! Each map is a small SVG written directly (no chart library: a campaign of a hundred plates and four
//! readouts is four hundred maps). The colour scale is viridis — ordered, readable by colour-blind
//! readers and in grey — with the readout's unit, and the same range on every plate of a page, so that
//! plates compare. Controls carry a ring, wells left empty on the edge ring are hatched, and every well's
//! values are in its tooltip (`<title>`), as text.

use std::fmt::Write as _;

use super::pages::num;

/// A readout of a plate map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readout {
    /// Name (`viability`).
    pub name: &'static str,
    /// Unit (`fraction`, `AU`).
    pub unit: &'static str,
}

/// A measured well of a plate.
#[derive(Clone, Debug, PartialEq)]
pub struct Well {
    /// Row (0 = A).
    pub row: usize,
    /// Column (0 = 1).
    pub col: usize,
    /// A dose-0 control.
    pub control: bool,
    /// What the tooltip says first: the well, the line, the dose.
    pub label: String,
    /// One value per readout of the plate.
    pub values: Vec<Option<f64>>,
}

/// A plate and its wells.
#[derive(Clone, Debug, PartialEq)]
pub struct Plate {
    /// The plate's id.
    pub id: String,
    /// Its wells.
    pub wells: Vec<Well>,
}

/// `B3`, `A09`, `P24` → (row, column), 0-based.
pub fn parse_well(well: &str) -> Option<(usize, usize)> {
    let letters = well.bytes().take_while(u8::is_ascii_uppercase).count();
    if letters != 1 {
        return None;
    }
    let row = usize::from(well.as_bytes()[0] - b'A');
    let col: usize = well[1..].parse().ok()?;
    col.checked_sub(1).map(|c| (row, c))
}

/// The plate's format: 96 wells (8 × 12) unless a well lies beyond, then 384 (16 × 24).
pub fn format(p: &Plate) -> (usize, usize) {
    if p.wells.iter().all(|w| w.row < 8 && w.col < 12) { (8, 12) } else { (16, 24) }
}

/// Viridis at `t` in 0..=1 (nine anchors, linear between).
pub fn viridis(t: f64) -> (u8, u8, u8) {
    const A: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (A[i], A[i + 1]);
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The range of readout `k` over plates, for one colour scale across them.
pub fn range(plates: &[Plate], k: usize) -> Option<(f64, f64)> {
    range_of(plates.iter().flat_map(|p| &p.wells).filter_map(|w| w.values.get(k).copied().flatten()))
}

/// The colour scale of `values` (the finite ones), as [`range`].
pub fn range_of(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    lo.is_finite().then_some(if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const CELL: usize = 22;
const LEFT: usize = 18;
const TOP: usize = 30;

/// One plate's map for readout `k` of `readouts`, on the colour scale `scale`.
pub fn map(p: &Plate, readouts: &[Readout], k: usize, scale: (f64, f64)) -> String {
    let (rows, cols) = format(p);
    let cell = if cols > 12 { CELL / 2 + 1 } else { CELL };
    let (w, h) = (LEFT + cols * cell + 4, TOP + rows * cell + 44);
    let r = readouts[k];
    let mut s = String::with_capacity(200 * rows * cols);
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="platemap" data-plate="{id}" data-readout="{name}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="10"><defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="4" stroke="#b0b0b0" stroke-width="1.5"/></pattern></defs><text x="{LEFT}" y="12" font-size="12" font-weight="bold">{title}</text>"##,
        id = escape(&p.id),
        name = r.name,
        title = escape(&format!("{} ({})", r.name, r.unit)),
    );
    for c in 0..cols {
        if cols <= 12 || c % 2 == 0 {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                LEFT + c * cell + cell / 2,
                TOP - 4,
                c + 1
            );
        }
    }
    for row in 0..rows {
        let _ =
            write!(s, r#"<text x="2" y="{}">{}</text>"#, TOP + row * cell + cell / 2 + 4, char::from(b'A' + row as u8));
    }
    let mut grid: Vec<Option<&Well>> = vec![None; rows * cols];
    for well in &p.wells {
        if well.row < rows && well.col < cols {
            grid[well.row * cols + well.col] = Some(well);
        }
    }
    let (lo, hi) = scale;
    for row in 0..rows {
        for col in 0..cols {
            let (x, y) = (LEFT + col * cell, TOP + row * cell);
            let edge = row == 0 || col == 0 || row == rows - 1 || col == cols - 1;
            let name = format!("{}{}", char::from(b'A' + row as u8), col + 1);
            match grid[row * cols + col] {
                None => {
                    let (fill, kind, what) =
                        if edge { ("url(#hatch)", "edge", "empty (edge ring)") } else { ("#ffffff", "empty", "empty") };
                    let _ = write!(
                        s,
                        r##"<rect class="well {kind}" x="{x}" y="{y}" width="{c}" height="{c}" fill="{fill}" stroke="#d0d0d0"><title>{name}: {what}</title></rect>"##,
                        c = cell - 2
                    );
                }
                Some(well) => {
                    let v = well.values.get(k).copied().flatten();
                    let fill = match v {
                        Some(v) => {
                            let (r, g, b) = viridis((v - lo) / (hi - lo));
                            format!("#{r:02x}{g:02x}{b:02x}")
                        }
                        None => "#ffffff".into(),
                    };
                    let mut tip = escape(&well.label);
                    for (i, r) in readouts.iter().enumerate() {
                        if let Some(x) = well.values.get(i).copied().flatten() {
                            let _ = write!(tip, " · {} {} {}", r.name, num(x), r.unit);
                        }
                    }
                    let kind = if well.control { "well control" } else { "well dosed" };
                    let stroke =
                        if well.control { r##" stroke="#000000" stroke-width="2""## } else { r##" stroke="#ffffff""## };
                    let _ = write!(
                        s,
                        r#"<rect class="{kind}" x="{x}" y="{y}" width="{c}" height="{c}" fill="{fill}"{stroke}><title>{tip}</title></rect>"#,
                        c = cell - 2
                    );
                }
            }
        }
    }
    // The colour scale with its unit, under the grid.
    let y = TOP + rows * cell + 8;
    let bar = cols * cell - 4;
    let steps = 24;
    for i in 0..steps {
        let (r, g, b) = viridis(i as f64 / (steps - 1) as f64);
        let _ = write!(
            s,
            "<rect class=\"scale\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"10\" fill=\"#{r:02x}{g:02x}{b:02x}\"/>",
            LEFT + i * bar / steps,
            bar / steps + 1
        );
    }
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{} {}</text><text x="{}" y="{}" text-anchor="middle">control: ringed · hatched: empty edge</text></svg>"#,
        y + 22,
        num(lo),
        LEFT + bar,
        y + 22,
        num(hi),
        escape(r.unit),
        LEFT + bar / 2,
        y + 34,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wells_and_formats() {
        assert_eq!(parse_well("B3"), Some((1, 2)));
        assert_eq!(parse_well("A09"), Some((0, 8)));
        assert_eq!(parse_well("P24"), Some((15, 23)));
        assert_eq!(parse_well("prop_1_0"), None);
        assert_eq!(parse_well("A0"), None);
        let w = |row, col| Well { row, col, control: false, label: String::new(), values: vec![Some(1.0)] };
        assert_eq!(format(&Plate { id: "p".into(), wells: vec![w(7, 11)] }), (8, 12));
        assert_eq!(format(&Plate { id: "p".into(), wells: vec![w(8, 3)] }), (16, 24));
        assert_eq!(viridis(0.0), (68, 1, 84));
        assert_eq!(viridis(1.0), (253, 231, 37));
    }

    #[test]
    fn a_map_shows_every_well_with_its_kind_and_values() {
        let readouts = [Readout { name: "viability", unit: "fraction" }, Readout { name: "CellROX", unit: "AU" }];
        let p = Plate {
            id: "P<1>".into(),
            wells: vec![
                Well {
                    row: 1,
                    col: 1,
                    control: true,
                    label: "B2 · U2OS · control".into(),
                    values: vec![Some(0.98), Some(96.8)],
                },
                Well {
                    row: 1,
                    col: 2,
                    control: false,
                    label: "B3 · U2OS · 25 µM".into(),
                    values: vec![Some(0.5), None],
                },
            ],
        };
        let svg = map(&p, &readouts, 0, (0.5, 0.98));
        assert_eq!(svg.matches("<rect class=\"well").count(), 96);
        assert_eq!(svg.matches("class=\"well edge\"").count(), 36, "the edge ring of a 96-well plate");
        assert_eq!(svg.matches("class=\"well empty\"").count(), 58);
        assert!(
            svg.contains("<title>B2 · U2OS · control · viability 0.9800 fraction · CellROX 96.80 AU</title>"),
            "{svg}"
        );
        // The lowest value is the scale's first colour, the highest its last.
        assert!(svg.contains(r##"fill="#440154" stroke="#ffffff"><title>B3"##), "{svg}");
        assert!(svg.contains(r##"fill="#fde725" stroke="#000000""##), "{svg}");
        assert!(svg.contains("data-plate=\"P&lt;1&gt;\""));
        assert!(svg.contains(">viability (fraction)</text>") && svg.contains(">0.9800 fraction</text>"));
    }
}
