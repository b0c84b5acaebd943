//! The fit recovers the generating IC50s of the legacy phase-0 plates (`MODEL.md` §6) from
//! `phase0_all_plates.csv`, a verbatim copy of the legacy file.

use cellos_core::fit::{FitOptions, FourPl, fit_four_pl};

const CSV: &str = include_str!("fixtures/phase0_all_plates.csv");

struct Row<'a> {
    cell_line: &'a str,
    compound: &'a str,
    dose_um: f64,
    viability_norm: f64,
}

fn rows() -> Vec<Row<'static>> {
    let mut lines = CSV.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 12);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (line, compound, dose, viab) = (col("cell_line"), col("compound"), col("dose_uM"), col("viability_norm"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 12, "{l}");
            Row {
                cell_line: f[line],
                compound: f[compound],
                dose_um: f[dose].parse().unwrap(),
                viability_norm: f[viab].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn file_shape() {
    let rows = rows();
    assert_eq!(rows.len(), 528);
    assert_eq!(rows.iter().filter(|r| r.compound == "DMSO").count(), 6 * 16);
}

#[test]
fn recovers_generating_ic50s_within_30_percent() {
    let rows = rows();
    // MODEL.md §6: HepG2 / U2OS IC50s and the shared Hill slopes.
    let truth = [
        ("HepG2", "staurosporine", 0.05),
        ("HepG2", "tunicamycin", 0.80),
        ("HepG2", "H2O2", 150.0),
        ("U2OS", "staurosporine", 0.20),
        ("U2OS", "tunicamycin", 0.30),
        ("U2OS", "H2O2", 250.0),
    ];
    for (line, compound, ic50) in truth {
        let (xs, ys): (Vec<f64>, Vec<f64>) = rows
            .iter()
            .filter(|r| r.cell_line == line && r.compound == compound)
            .map(|r| (r.dose_um, r.viability_norm))
            .unzip();
        assert_eq!(xs.len(), 72, "{line} {compound}");
        // Normalised viability runs from 1 (untreated) towards 0: fit slope, IC50 and the top, with the
        // bottom held at 0.
        let options = FitOptions { fixed: [true, false, false, false], ..FitOptions::default() };
        let mut start = cellos_core::fit::four_pl_start(&xs, &ys);
        start[FourPl::BOTTOM] = 0.0;
        let f = fit_four_pl(&xs, &ys, None, Some(start), &options).unwrap();
        let err = (f.curve.ic50 - ic50).abs() / ic50;
        assert!(err < 0.30, "{line} {compound}: IC50 {} vs {ic50} ({:.0} %)", f.curve.ic50, err * 100.0);
        println!("{line} {compound}: IC50 {:.4} (truth {ic50}), hill {:.2}", f.curve.ic50, f.curve.hill);
    }
}
