//! `cellos dashboard`: a read-only local web application over the data directory.
//!
//! Pages are rendered on the server ([`pages`], maud templates) with charts drawn by `plotters` as inline
//! SVG ([`charts`]); the one script (a running campaign's page reloading itself when an iteration is
//! committed) and the style sheet are served from the binary. Nothing is fetched from elsewhere, and a
//! Content-Security-Policy says so to the browser.
//!
//! [`route`] maps a request path to a [`Response`] without any network, so the pages are testable as
//! functions; [`Dashboard`] serves them over HTTP on worker threads, each with its own connections.
//! The server binds to loopback unless told `--allow-remote` ([`check_bind`]).

pub mod charts;
pub mod data;
pub mod pages;
pub mod plates;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use cellos_core::titer::Transduction;
use serde_json::{Value, json};

use crate::error::StoreError;
use crate::store::Store;
use charts::Chart;
use data::Campaign;

/// Worker threads serving requests.
pub const WORKERS: usize = 4;

/// What `cellos dashboard` can refuse.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The bind address does not parse or resolve.
    #[error("--bind {0}: give HOST:PORT, e.g. 127.0.0.1:8080")]
    BadAddress(String),
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "--bind {0} is reachable from other machines; the dashboard shows lab data without any login, so it \
         binds to loopback (127.0.0.1 or ::1) unless you add --allow-remote"
    )]
    Remote(String),
    /// The data directory does not exist.
    #[error("no data directory {0} (run a campaign or an import first, or give --data-dir)")]
    NoData(PathBuf),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// Address.
        addr: String,
        /// Why.
        message: String,
    },
}

/// Resolves `bind` and refuses a non-loopback address unless `allow_remote`. Returns the addresses and
/// whether any is remote (the caller warns).
pub fn check_bind(bind: &str, allow_remote: bool) -> Result<(Vec<SocketAddr>, bool), DashboardError> {
    let addrs: Vec<SocketAddr> = bind.to_socket_addrs().map_err(|_| DashboardError::BadAddress(bind.into()))?.collect();
    if addrs.is_empty() {
        return Err(DashboardError::BadAddress(bind.into()));
    }
    let remote = addrs.iter().any(|a| !a.ip().is_loopback());
    if remote && !allow_remote {
        return Err(DashboardError::Remote(bind.into()));
    }
    Ok((addrs, remote))
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// For downloads: the file name offered.
    pub download: Option<String>,
}

impl Response {
    fn html(status: u16, body: String) -> Response {
        Response { status, content_type: "text/html; charset=utf-8", body: body.into_bytes(), download: None }
    }

    fn error(e: &StoreError) -> Response {
        let status = match e {
            StoreError::NotFound(_) => 404,
            StoreError::Invalid(_) | StoreError::Input { .. } => 400,
            _ => 500,
        };
        Response::html(status, pages::error(status, &e.to_string()))
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

/// Percent-encodes a path segment or query value (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Decodes `%XX` (and `+` as a space when `plus`); `None` for a malformed escape or invalid UTF-8.
pub fn decode(s: &str, plus: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string (`a=1&b=2`), decoded; empty values count as absent.
fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| decode(k, true).as_deref() == Some(key))
        .and_then(|(_, v)| decode(v, true))
        .filter(|v| !v.is_empty())
}

/// Answers one GET request for `target` (path and query, as sent).
pub fn route(store: &Store, target: &str) -> Response {
    route_with(store, || None::<&mut Store>, target)
}

/// [`route`], where a page that reads a campaign's wells asks `lend` for a second store, and reads half
/// of them on its results connection, on a second thread ([`data::campaign_with`]); no other page asks.
pub fn route_with<S: std::ops::DerefMut<Target = Store>>(
    store: &Store,
    lend: impl FnOnce() -> Option<S>,
    target: &str,
) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Option<Vec<String>> = path.split('/').filter(|s| !s.is_empty()).map(|s| decode(s, false)).collect();
    let Some(segments) = segments else {
        return Response::html(400, pages::error(400, "malformed percent-escape in the path"));
    };
    let q = |k: &str| query_value(query, k);
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match seg.as_slice() {
        [] => campaigns_page(store, q("status").as_deref(), q("type").as_deref()),
        ["campaigns", id] => campaign_html_with(store, spare(&mut lend()), id).map(|h| Response::html(200, h)),
        ["campaigns", id, "state"] => data::campaign_state(store, id).map(|(iterations, status)| Response {
            status: 200,
            content_type: "application/json",
            body: json!({ "iterations": iterations, "status": status }).to_string().into_bytes(),
            download: None,
        }),
        ["campaigns", id, "measurements.csv"] => campaign_csv(store, spare(&mut lend()), id),
        ["campaigns", id, "plates"] => data::campaign_with(store, spare(&mut lend()), id).map(|c| {
            let maps = campaign_plates(&c);
            Response::html(200, pages::all_plates(&c.row.id, &maps))
        }),
        ["results"] => data::result_pairs(store).map(|p| Response::html(200, pages::results(&p))),
        ["results", "fit"] => match (q("line"), q("compound")) {
            (Some(line), Some(compound)) => result_fit_page(store, &line, &compound),
            _ => Err(StoreError::Invalid("give ?line=…&compound=…".into())),
        },
        ["facility"] => facility_page(store, None),
        ["facility", id] => match id.parse::<i64>() {
            Ok(id) => facility_page(store, Some(id)),
            Err(_) => Err(StoreError::NotFound(format!("no saved facility plan `{id}`"))),
        },
        ["lines"] => lines_page(store),
        ["lines", id] => line_page(store, id),
        ["params"] => params_page(store, q("line").as_deref()),
        _ => Err(StoreError::NotFound(format!("no page {path}"))),
    };
    result.unwrap_or_else(|e| Response::error(&e))
}

/// The results connection of a lent store.
fn spare<S: std::ops::DerefMut<Target = Store>>(lent: &mut Option<S>) -> Option<&mut rusqlite::Connection> {
    lent.as_mut().map(|s| &mut s.results)
}

fn campaigns_page(store: &Store, status: Option<&str>, kind: Option<&str>) -> crate::Result<Response> {
    let rows = data::campaigns(store, status, kind)?;
    let facets = data::campaign_facets(store)?;
    Ok(Response::html(200, pages::campaigns(&rows, &facets, status, kind)))
}

fn four_pl(points: &[(f64, f64)], floor_zero: bool) -> Option<charts::Fit> {
    data::fit(points, floor_zero).map(|f| charts::Fit::FourPl(f.curve))
}

/// The lentivirus titration chart of a line, from its stage outputs: the measured BFP fractions, the
/// fitted transduction curve, the target fraction and the chosen volume.
fn titration_chart(c: &Campaign, line: &str) -> Option<Chart> {
    let find = |key: &str| c.outputs.iter().find(|o| o.line == line && o.key == key).map(|o| &o.value);
    let titer = find("lv_estimated_titer")?;
    let volume = find("lv_optimal_volume_ul");
    let points: Vec<(f64, f64)> = titer["series"]
        .as_array()?
        .iter()
        .filter_map(|p| Some((p["volume_ul"].as_f64().filter(|v| *v > 0.0)?, p["bfp_fraction"].as_f64()?)))
        .collect();
    let cells = volume.and_then(|v| v["cells"].as_f64());
    let fit = match (titer["value"].as_f64(), titer["max_fraction"].as_f64(), cells) {
        (Some(titer_tu_per_ul), Some(max_fraction), Some(cells)) => {
            Some(charts::Fit::Lentivirus(Transduction { titer_tu_per_ul, max_fraction, cells }))
        }
        _ => None,
    };
    let target = volume.and_then(|v| v["target_bfp"].as_f64());
    Some(charts::dose_response(&charts::DoseChart {
        title: &format!("{line} · lentivirus titration"),
        x: ("virus", "µL"),
        y_label: "BFP-positive fraction",
        series: vec![charts::DoseSeries { spread: Vec::new(), name: "BFP fraction", points, curve: fit }],
        thresholds: target
            .map(|t| charts::Threshold { label: format!("target {:.0} % BFP", t * 100.0), value: t, series: None })
            .into_iter()
            .collect(),
        objective: None,
        chosen: volume.and_then(|v| v["value"].as_f64()).map(|at| charts::Chosen {
            at,
            lo: None,
            hi: None,
            label: format!("chosen volume {at:.2} µL"),
        }),
    }))
}

/// The larger of two optional values (either when only one is given).
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Draws a campaign's charts.
pub fn campaign_charts(c: &Campaign) -> pages::CampaignCharts {
    use std::collections::BTreeMap;
    let lines = c.lines();
    // The dosed wells (not the controls, not a titration's wells).
    let measured = || c.measurements.iter().filter(|m| !m.control && m.virus_ul.is_none());
    // The dosed wells by (line, compound), in the order each pair first comes: one pass, whatever the
    // number of wells.
    let mut pair_at: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    let mut by_pair: Vec<((&str, &str), Vec<&data::Measurement>)> = Vec::new();
    let mut last: Option<((&str, &str), usize)> = None;
    for m in measured() {
        let key = (&*m.cell_line, &*m.compound);
        let k = match last {
            Some((l, k)) if l == key => k,
            _ => *pair_at.entry(key).or_insert_with(|| {
                by_pair.push((key, Vec::new()));
                by_pair.len() - 1
            }),
        };
        last = Some((key, k));
        by_pair[k].1.push(m);
    }
    // The trajectory, the by-line boxplots and the plates on a second thread, while this one draws the
    // dose-response charts (on a two-core box the page takes the time of the larger half).
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let trajectories: Vec<charts::Trajectory> = lines
                .iter()
                .map(|&line| {
                    let mine: Vec<&data::Measurement> =
                        by_pair.iter().filter(|(k, _)| k.0 == line).flat_map(|(_, ms)| ms.iter().copied()).collect();
                    let points = mine.iter().filter_map(|m| Some((m.iteration as f64, m.value?))).collect();
                    let mut per_iteration: BTreeMap<i64, Option<f64>> = BTreeMap::new();
                    for m in &mine {
                        let e = per_iteration.entry(m.iteration).or_insert(None);
                        if data::meets(m, c.thresholds) {
                            *e = larger(*e, m.value);
                        }
                    }
                    let mut best = Vec::new();
                    let mut so_far: Option<f64> = None;
                    for (it, v) in per_iteration {
                        so_far = larger(so_far, v);
                        if let Some(b) = so_far {
                            best.push((it as f64, b));
                        }
                    }
                    charts::Trajectory { name: line, points, best }
                })
                .collect();
            let y = if c.thresholds.is_some() {
                format!("{} (best: wells meeting the thresholds)", c.value_name)
            } else {
                c.value_name.to_string()
            };
            let trajectory = charts::trajectory(&trajectories, &y);
            (trajectory, by_line_chart(c, &by_pair), plates_chart(c))
        });
        // Dose-response per (line, compound).
        let mut dose_response = by_pair
            .iter()
            .map(|&((line, compound), ref mine)| {
                let pts = |f: fn(&data::Measurement) -> Option<f64>| -> Vec<(f64, f64)> {
                    mine.iter().filter_map(|m| Some((m.dose_um.filter(|d| *d > 0.0)?, f(m)?))).collect()
                };
                let title = format!("{line} · {compound}");
                let chart = match c.thresholds {
                    Some((v, s)) => {
                        let (via, seg) = (pts(|m| m.viability), pts(|m| m.segmentation));
                        charts::dose_response(&charts::DoseChart {
                            title: &title,
                            x: ("dose", "µM"),
                            y_label: "fraction",
                            series: vec![
                                charts::DoseSeries {
                                    spread: Vec::new(),
                                    name: "viability",
                                    curve: four_pl(&via, true),
                                    points: via,
                                },
                                charts::DoseSeries {
                                    spread: Vec::new(),
                                    name: "segmentation",
                                    curve: four_pl(&seg, false),
                                    points: seg,
                                },
                            ],
                            thresholds: vec![
                                charts::Threshold { label: format!("viability ≥ {v:.2}"), value: v, series: Some(0) },
                                charts::Threshold {
                                    label: format!("segmentation ≥ {s:.2}"),
                                    value: s,
                                    series: Some(1),
                                },
                            ],
                            objective: Some((
                                charts::DoseSeries {
                                    spread: Vec::new(),
                                    name: "CellROX, mean per dose bin",
                                    points: binned_means(&pts(|m| m.value), 40),
                                    curve: None,
                                },
                                c.value_name,
                            )),
                            chosen: c.chosen_dose(line).map(|(at, lo, hi)| charts::Chosen {
                                at,
                                lo,
                                hi,
                                label: format!("chosen dose {at:.2} µM"),
                            }),
                        })
                    }
                    None => {
                        let p = pts(|m| m.value);
                        charts::dose_response(&charts::DoseChart {
                            title: &title,
                            x: ("dose", "µM"),
                            y_label: c.value_name,
                            series: vec![charts::DoseSeries {
                                spread: Vec::new(),
                                name: c.value_name,
                                curve: four_pl(&p, true),
                                points: p,
                            }],
                            thresholds: Vec::new(),
                            chosen: None,
                            objective: None,
                        })
                    }
                };
                (title, chart)
            })
            .collect::<Vec<_>>();
        for line in c.outputs.iter().map(|o| o.line.as_str()).collect::<std::collections::BTreeSet<_>>() {
            if let Some(chart) = titration_chart(c, line) {
                dose_response.push((format!("{line} · lentivirus titration"), chart));
            }
        }
        let by_compound = charts::boxplots(&format!("{} by dose band", c.value_name), c.value_name, &dose_bands(c));
        let (trajectory, by_line, plates) = other.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        pages::CampaignCharts { trajectory, dose_response, by_compound, by_line, plates }
    })
}

/// The boxplots of each line's values.
fn by_line_chart(c: &Campaign, by_pair: &[((&str, &str), Vec<&data::Measurement>)]) -> Chart {
    let mut by_line: Vec<(String, Vec<f64>)> = Vec::new();
    for ((line, _), ms) in by_pair {
        let values = ms.iter().filter_map(|m| m.value);
        match by_line.iter_mut().find(|(k, _)| k == line) {
            Some((_, vs)) => vs.extend(values),
            None => by_line.push((line.to_string(), values.collect())),
        }
    }
    charts::boxplots(&format!("{} by cell line", c.value_name), c.value_name, &by_line)
}

/// The maps of the campaign's latest plates, and how many plates it has.
fn plates_chart(c: &Campaign) -> (Vec<(String, Vec<String>)>, usize) {
    let (latest, n) = plates_of(c, |n| n.saturating_sub(PLATES_SHOWN));
    (plate_maps_on(&latest, &plate_scales(c), &PLATE_READOUTS), n)
}

/// `(dose, value)` points as the mean dose and mean value of each of `bins` equal bins of log dose (the
/// objective's trend, at a cost that does not grow with the wells).
fn binned_means(points: &[(f64, f64)], bins: usize) -> Vec<(f64, f64)> {
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    if !lo.is_finite() || lo <= 0.0 {
        return Vec::new();
    }
    let span = (hi / lo).ln().max(1e-12);
    let mut sums = vec![(0.0, 0.0, 0usize); bins];
    for &(d, v) in points {
        let k = (((d / lo).ln() / span) * bins as f64).floor().clamp(0.0, (bins - 1) as f64) as usize;
        sums[k] = (sums[k].0 + d, sums[k].1 + v, sums[k].2 + 1);
    }
    sums.into_iter().filter(|s| s.2 > 0).map(|(d, v, n)| (d / n as f64, v / n as f64)).collect()
}

/// Plates a campaign's page shows (its latest); `/campaigns/ID/plates` shows them all.
pub const PLATES_SHOWN: usize = 6;

/// The dosed measurements' values in bands of doubling dose from the least dose given (`25–50 µM`),
/// controls as their own band.
fn dose_bands(c: &Campaign) -> Vec<(String, Vec<f64>)> {
    let least = c.measurements.iter().filter_map(|m| m.dose_um).filter(|d| *d > 0.0).fold(f64::INFINITY, f64::min);
    let mut bands: std::collections::BTreeMap<i64, Vec<f64>> = std::collections::BTreeMap::new();
    for m in &c.measurements {
        let (Some(v), Some(d)) = (m.value, m.dose_um) else { continue };
        let band = if d > 0.0 && least.is_finite() { (d / least).log2().floor() as i64 } else { -1 };
        bands.entry(band).or_default().push(v);
    }
    bands
        .into_iter()
        .map(|(k, vs)| {
            let name = if k < 0 {
                "controls".to_string()
            } else {
                let lo = least * 2f64.powi(k as i32);
                format!("{}–{} µM", cellos_output::num(lo), cellos_output::num(lo * 2.0))
            };
            (name, vs)
        })
        .collect()
}

/// The readouts of a dose-finding campaign's plate maps, in the order of [`plates::Well::values`].
const PLATE_READOUTS: [plates::Readout; 4] = [
    plates::Readout { name: "viability", unit: "fraction" },
    plates::Readout { name: "segmentation", unit: "quality" },
    plates::Readout { name: "CellROX", unit: "AU" },
    plates::Readout { name: "BFP-positive", unit: "fraction" },
];

/// A campaign's plates, each as one map per readout.
pub fn campaign_plates(c: &Campaign) -> Vec<(String, Vec<String>)> {
    plate_maps(&plates_of(c, |_| 0).0, &PLATE_READOUTS)
}

/// A campaign's plates: its measurements that name a plate and a well, by plate in the order each
/// first comes, the plates from `from(number of plates)` on (a page draws the latest; the others only
/// count), and the number of plates.
fn plates_of(c: &Campaign, from: impl FnOnce(usize) -> usize) -> (Vec<plates::Plate>, usize) {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // Per plate, its wells with their (row, column).
    type Placed<'a> = Vec<(&'a data::Measurement, (usize, usize))>;
    let mut grouped: Vec<(&str, Placed)> = Vec::new();
    for m in &c.measurements {
        let Some(at) = (!m.plate.is_empty()).then(|| plates::parse_well(&m.well)).flatten() else { continue };
        let k = match grouped.last() {
            Some((p, _)) if *p == &*m.plate => grouped.len() - 1,
            _ => *index.entry(&*m.plate).or_insert_with(|| {
                grouped.push((&*m.plate, Vec::new()));
                grouped.len() - 1
            }),
        };
        grouped[k].1.push((m, at));
    }
    let n = grouped.len();
    let from = from(n).min(n);
    let plates = grouped
        .drain(from..)
        .map(|(id, wells)| plates::Plate {
            id: id.to_string(),
            wells: wells
                .into_iter()
                .map(|(m, (row, col))| plates::Well {
                    row,
                    col,
                    control: m.control,
                    label: well_label(m),
                    values: vec![m.viability, m.segmentation, m.value, m.bfp],
                })
                .collect(),
        })
        .collect();
    (plates, n)
}

/// The colour scale of each of [`PLATE_READOUTS`] across every plated well of a campaign.
fn plate_scales(c: &Campaign) -> Vec<Option<(f64, f64)>> {
    let plated = || c.measurements.iter().filter(|m| !m.plate.is_empty() && plates::parse_well(&m.well).is_some());
    let readouts: [fn(&data::Measurement) -> Option<f64>; 4] =
        [|m| m.viability, |m| m.segmentation, |m| m.value, |m| m.bfp];
    readouts.iter().map(|f| plates::range_of(plated().filter_map(f))).collect()
}

/// A well's tooltip: its name, line and treatment.
fn well_label(m: &data::Measurement) -> String {
    if let Some(v) = m.virus_ul {
        return format!("{} · {} · {} µL virus", m.well, m.cell_line, pages::num(v));
    }
    match (m.control, m.dose_um) {
        (true, _) => format!("{} · {} · control", m.well, m.cell_line),
        (false, Some(d)) => format!("{} · {} · {} µM {}", m.well, m.cell_line, pages::num(d), m.compound),
        (false, None) => format!("{} · {}", m.well, m.cell_line),
    }
}

/// Maps of `plates` for every readout that has values, each readout on one scale across the plates.
pub fn plate_maps(plates: &[plates::Plate], readouts: &[plates::Readout]) -> Vec<(String, Vec<String>)> {
    let scales: Vec<Option<(f64, f64)>> = (0..readouts.len()).map(|k| plates::range(plates, k)).collect();
    plate_maps_on(plates, &scales, readouts)
}

/// Maps of `plates` on the colour scales `scales` (one per readout, `None` for a readout without values).
fn plate_maps_on(
    plates: &[plates::Plate],
    scales: &[Option<(f64, f64)>],
    readouts: &[plates::Readout],
) -> Vec<(String, Vec<String>)> {
    plates
        .iter()
        .map(|p| {
            let maps = scales
                .iter()
                .enumerate()
                .filter_map(|(k, scale)| scale.map(|s| plates::map(p, readouts, k, s)))
                .collect();
            (p.id.clone(), maps)
        })
        .collect()
}

/// A campaign's page, as a string.
pub fn campaign_html(store: &Store, id: &str) -> crate::Result<String> {
    campaign_html_with(store, None, id)
}

fn campaign_html_with(store: &Store, spare: Option<&mut rusqlite::Connection>, id: &str) -> crate::Result<String> {
    let c = data::campaign_with(store, spare, id)?;
    Ok(pages::campaign(&c, &campaign_charts(&c)))
}

fn campaign_csv(store: &Store, spare: Option<&mut rusqlite::Connection>, id: &str) -> crate::Result<Response> {
    let c = data::campaign_with(store, spare, id)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| StoreError::Invalid(format!("CSV: {e}"));
    let value_col = if c.value_name == "measurement" { "measurement" } else { "cellrox_au" };
    w.write_record([
        "iteration",
        "cell_line",
        "compound",
        "dose_uM",
        value_col,
        "viability",
        "segmentation",
        "plate_id",
        "well_id",
        "is_control",
        "virus_uL",
        "bfp_fraction",
    ])
    .map_err(io)?;
    // Shortest round-trip text of every number: the CSV holds exactly what the database holds.
    let f = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    for m in &c.measurements {
        w.write_record([
            m.iteration.to_string(),
            m.cell_line.to_string(),
            m.compound.to_string(),
            f(m.dose_um),
            f(m.value),
            f(m.viability),
            f(m.segmentation),
            m.plate.to_string(),
            m.well.to_string(),
            u8::from(m.control).to_string(),
            f(m.virus_ul),
            f(m.bfp),
        ])
        .map_err(io)?;
    }
    let body = w.into_inner().map_err(|e| StoreError::Invalid(format!("CSV: {e}")))?;
    let safe: String =
        id.chars().map(|ch| if ch.is_ascii_alphanumeric() || "-_.".contains(ch) { ch } else { '_' }).collect();
    Ok(Response {
        status: 200,
        content_type: "text/csv; charset=utf-8",
        body,
        download: Some(format!("{safe}-measurements.csv")),
    })
}

fn result_fit_page(store: &Store, line: &str, compound: &str) -> crate::Result<Response> {
    // From the store's running sums: the fit and the chart cost the same at 500 wells as at 10 million.
    let data = crate::admin::viability_by_dose(store, line, compound)?;
    if data.doses.is_empty() {
        return Err(StoreError::NotFound(format!("no measurements of {compound} on {line}")));
    }
    let curve = data::fit_by_dose(&data, true);
    let dosed: Vec<usize> = (0..data.doses.len()).filter(|&i| data.doses[i] > 0.0).collect();
    let svg = charts::dose_response(&charts::DoseChart {
        title: &format!("{compound} on {line}"),
        x: ("dose", "µM"),
        y_label: "normalised viability",
        series: vec![charts::DoseSeries {
            name: "viability",
            points: dosed.iter().map(|&i| (data.doses[i], data.means[i])).collect(),
            spread: dosed
                .iter()
                .map(|&i| (data.doses[i], data.means[i] - data.sd(i), data.means[i] + data.sd(i)))
                .collect(),
            curve: curve.map(|f| charts::Fit::FourPl(f.curve)),
        }],
        thresholds: Vec::new(),
        chosen: None,
        objective: None,
    });
    let maps = imported_plates(store, Some((line, compound)))?;
    Ok(Response::html(200, pages::result_fit(line, compound, data.observations(), curve, svg, &maps)))
}

/// The readouts of imported (phase-0) plates.
const IMPORTED_READOUTS: [plates::Readout; 2] =
    [plates::Readout { name: "viability", unit: "normalised" }, plates::Readout { name: "raw signal", unit: "RFU" }];

/// Maps of the imported plates (not a campaign's): the first [`PLATES_SHOWN`] found that hold
/// `(line, compound)`, or all. Their wells are read by the plate (the natural-key index); finding the
/// plates stops at the first few.
pub fn imported_plates(store: &Store, only: Option<(&str, &str)>) -> crate::Result<Vec<(String, Vec<String>)>> {
    let (line, compound) = only.unzip();
    let limit = if only.is_some() { PLATES_SHOWN as i64 } else { -1 };
    let mut st = store.results.prepare_cached(
        "SELECT plate_id, well_id, cell_line, coalesce(compound, ''), dose_uM, coalesce(is_control, 0), viability_norm, raw_signal \
         FROM measurements WHERE campaign_id IS NULL AND plate_id IN \
           (SELECT DISTINCT plate_id FROM measurements WHERE campaign_id IS NULL \
              AND (?1 IS NULL OR cell_line = ?1) AND (?2 IS NULL OR compound = ?2) LIMIT ?3) \
         ORDER BY plate_id, id",
    )?;
    let rows = st.query_map(rusqlite::params![line, compound, limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<f64>>(4)?,
            r.get::<_, i64>(5)? == 1,
            r.get::<_, Option<f64>>(6)?,
            r.get::<_, Option<f64>>(7)?,
        ))
    })?;
    let mut out: Vec<plates::Plate> = Vec::new();
    for row in rows {
        let (plate, well, line, compound, dose, control, viability, raw) = row?;
        let Some((r, c)) = plates::parse_well(&well) else { continue };
        let label = match dose {
            Some(d) => format!("{well} · {line} · {compound} {} µM", pages::num(d)),
            None => format!("{well} · {line} · {compound}"),
        };
        let w = plates::Well { row: r, col: c, control, label, values: vec![viability, raw] };
        match out.last_mut() {
            Some(p) if p.id == plate => p.wells.push(w),
            _ => out.push(plates::Plate { id: plate, wells: vec![w] }),
        }
    }
    Ok(plate_maps(&out, &IMPORTED_READOUTS))
}

fn facility_page(store: &Store, id: Option<i64>) -> crate::Result<Response> {
    let list = crate::facility::saved_list(store)?;
    let id = id.or_else(|| list.first().map(|p| p.0));
    let plan = id.map(|id| crate::facility::saved(store, id)).transpose()?;
    let charts = plan.as_ref().map(pages::facility_charts);
    let body = pages::facility(&list, plan.as_ref().zip(charts));
    Ok(Response::html(200, body))
}

fn lines_page(store: &Store) -> crate::Result<Response> {
    let lines = crate::admin::lines_list(store, None, None, None)?;
    let vials = Value::Array(crate::admin::rows_json(
        &store.lines,
        "SELECT cell_line_id, sum(status = 'available') AS available, sum(status = 'used') AS used, \
         sum(status = 'discarded') AS discarded FROM cell_line_inventory GROUP BY cell_line_id ORDER BY cell_line_id",
        &[],
    )?);
    Ok(Response::html(200, pages::lines(&lines, &vials)))
}

fn line_page(store: &Store, id: &str) -> crate::Result<Response> {
    let line = crate::admin::lines_show(store, id)?;
    let inventory = crate::admin::inventory_list(store, Some(id), None)?;
    let usage = crate::admin::inventory_history(store, None, Some(id))?;
    let params = crate::admin::params_history(store, id).unwrap_or(Value::Array(Vec::new()));
    Ok(Response::html(200, pages::line(id, &line, &inventory, &usage, &params)))
}

fn params_page(store: &Store, line: Option<&str>) -> crate::Result<Response> {
    let current = Value::Array(crate::admin::rows_json(
        &store.params,
        &format!(
            "SELECT {} FROM cell_line_params WHERE valid_to IS NULL ORDER BY cell_line_id",
            crate::admin::PARAM_COLUMNS
        ),
        &[],
    )?);
    let history = line.map(|l| crate::admin::params_history(store, l)).transpose()?;
    Ok(Response::html(200, pages::params(&current, line.zip(history.as_ref()))))
}

/// The security headers of every response: nothing from elsewhere, scripts only from this server.
const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A running dashboard.
pub struct Dashboard {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Page cache of each of a server's connections to the results, KiB. A campaign page of 100,000 wells
/// reads some 20 MiB of pages; with SQLite's default 2 MiB each request would read them all from the
/// operating system again. The cache fills only as far as the pages read.
pub const SERVING_CACHE_KIB: i64 = 32 * 1024;

/// A store opened as the dashboard serves from it: [`Store::open_for_reading`], with a page cache of
/// [`SERVING_CACHE_KIB`] on the results (kept between requests while the database does not change).
pub fn serving_store(dir: &Path) -> crate::Result<Store> {
    let store = Store::open_for_reading(dir)?;
    store.results.pragma_update(None, "cache_size", -SERVING_CACHE_KIB)?;
    Ok(store)
}

/// The connections the dashboard answers with, one store per worker: a request takes an idle one (the
/// next in turn when all are busy), and a campaign's page borrows a second idle one's results, if
/// there is one, to read half of its wells on a second thread.
pub struct Pool {
    stores: Vec<std::sync::Mutex<Store>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Pool {
    /// `n` stores on the data directory `dir`, each opened as [`serving_store`].
    pub fn open(dir: &Path, n: usize) -> crate::Result<Pool> {
        let stores =
            (0..n.max(1)).map(|_| serving_store(dir).map(std::sync::Mutex::new)).collect::<crate::Result<_>>()?;
        Ok(Pool { stores, next: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// An idle store other than `but`, if there is one.
    fn idle(&self, from: usize, but: Option<usize>) -> Option<(usize, std::sync::MutexGuard<'_, Store>)> {
        let n = self.stores.len();
        (0..n).map(|k| (from + k) % n).filter(|&i| Some(i) != but).find_map(|i| match self.stores[i].try_lock() {
            Ok(g) => Some((i, g)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some((i, p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        })
    }

    /// A store to answer with: an idle one, or (all busy) the next in turn once it is free.
    fn take(&self) -> (usize, std::sync::MutexGuard<'_, Store>) {
        let from = self.next.fetch_add(1, Ordering::Relaxed) % self.stores.len();
        self.idle(from, None)
            .unwrap_or_else(|| (from, self.stores[from].lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }

    /// Answers one GET request for `target`, as the server does (without the HTTP): a bug in a page
    /// becomes `None` instead of taking the server down.
    pub fn answer(&self, target: &str) -> Option<Response> {
        let (i, store) = self.take();
        let lend = || self.idle(i + 1, Some(i)).map(|(_, spare)| spare);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route_with(&store, lend, target))).ok()
    }
}

impl Dashboard {
    /// Opens the data directory and starts serving on `bind` (port 0 picks a free port), on the
    /// project's one HTTP stack (axum).
    pub fn start(dir: &Path, bind: &str, allow_remote: bool) -> Result<Dashboard, DashboardError> {
        let (addrs, _) = check_bind(bind, allow_remote)?;
        if !dir.is_dir() {
            return Err(DashboardError::NoData(dir.to_path_buf()));
        }
        // Every worker has its own connections; opening them here reports a bad store before listening.
        let pool = Pool::open(dir, WORKERS)?;
        let listen = |message: String| DashboardError::Listen { addr: bind.into(), message };
        let listener = std::net::TcpListener::bind(&addrs[..]).map_err(|e| listen(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| listen(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| listen(e.to_string()))?;
        let pool = Arc::new(pool);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .enable_all()
            .build()
            .map_err(|e| listen(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let app = axum::Router::new()
                    .route("/campaigns/{id}/events", axum::routing::get(events))
                    .fallback(answer)
                    .with_state(pool);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Dashboard { addr, stop: Some(stop), server: Some(server) })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How often a campaign's event stream looks for the gateway's new events (another process writes them).
pub const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(300);

/// A campaign's events as the gateway service records them, as Server-Sent Events with the service's
/// own ids: those after `Last-Event-ID` (or `?after=N`), then each new one as it is written, until the
/// run is over. 404 when no service runs the campaign.
async fn events(
    axum::extract::State(pool): axum::extract::State<Arc<Pool>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let from_header = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let after: i64 = from_header
        .or_else(|| query_value(uri.query().unwrap_or(""), "after").and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    // The next events (at most 100) and whether the run is over; `None` when there is no such run.
    let read = move |pool: Arc<Pool>, id: String, after: i64| async move {
        tokio::task::spawn_blocking(move || {
            let (_, store) = pool.take();
            data::service_events(&store, &id, after, 100)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .map(|(events, state)| (events, matches!(state.as_str(), "stopped" | "failed" | "succeeded")))
    };
    if read(pool.clone(), id.clone(), after).await.is_none() {
        let e = StoreError::NotFound(format!("no run of the gateway service for campaign `{id}`"));
        return answer_of(Response::error(&e));
    }
    let stream = futures_util::stream::unfold(
        (pool, id, after, std::collections::VecDeque::<(i64, Value)>::new()),
        move |(pool, id, mut after, mut queue)| async move {
            loop {
                if let Some((n, e)) = queue.pop_front() {
                    let kind = e["event"].as_str().unwrap_or("event").to_string();
                    let sse = SseEvent::default().id(n.to_string()).event(kind).data(e.to_string());
                    return Some((Ok::<_, std::convert::Infallible>(sse), (pool, id, after, queue)));
                }
                let (events, over) = read(pool.clone(), id.clone(), after).await?;
                if events.is_empty() {
                    if over {
                        return None;
                    }
                    tokio::time::sleep(EVENT_POLL).await;
                    continue;
                }
                after = events.last().map_or(after, |e| e.0);
                queue.extend(events);
            }
        },
    );
    let mut r = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    for (k, v) in
        [("content-security-policy", CSP), ("x-content-type-options", "nosniff"), ("cache-control", "no-store")]
    {
        r.headers_mut().insert(k, axum::http::HeaderValue::from_static(v));
    }
    r
}

async fn answer(
    axum::extract::State(pool): axum::extract::State<Arc<Pool>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::http::Method;
    let url = uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
    let response = match method {
        Method::GET | Method::HEAD => match url.as_str() {
            pages::STYLE_PATH => {
                Response { status: 200, content_type: "text/css", body: pages::STYLE.into(), download: None }
            }
            pages::WATCH_PATH => {
                Response { status: 200, content_type: "text/javascript", body: pages::WATCH.into(), download: None }
            }
            _ => {
                // The pages are built from the databases synchronously, off the async workers.
                // A bug in a page must not take the server down: it becomes a 500 page.
                let rendered = tokio::task::spawn_blocking(move || pool.answer(&url)).await;
                rendered.ok().flatten().unwrap_or_else(|| {
                    Response::html(500, pages::error(500, "this page failed to render (a bug); the server goes on"))
                })
            }
        },
        _ => Response::html(405, pages::error(405, "this dashboard is read-only: GET only")),
    };
    answer_of(response)
}

/// A page as the HTTP response, with the security headers of every response.
fn answer_of(response: Response) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(response.body));
    *r.status_mut() =
        axum::http::StatusCode::from_u16(response.status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = vec![
        ("content-type", response.content_type.to_string()),
        ("content-security-policy", CSP.to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("cache-control", "no-store".to_string()),
        ("referrer-policy", "no-referrer".to_string()),
    ];
    if let Some(name) = &response.download {
        headers.push(("content-disposition", format!("attachment; filename=\"{name}\"")));
    }
    for (k, v) in headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_of_path_segments_and_queries() {
        assert_eq!(encode("tbhp_2026-11-24T11:41:03Z"), "tbhp_2026-11-24T11%3A41%3A03Z");
        assert_eq!(encode("<a/b c>"), "%3Ca%2Fb%20c%3E");
        assert_eq!(encode("µ"), "%C2%B5");
        assert_eq!(decode("a%2Fb+c", false).as_deref(), Some("a/b+c"));
        assert_eq!(decode("a%2Fb+c", true).as_deref(), Some("a/b c"));
        for bad in ["%", "%4", "%ZZ", "%FF"] {
            assert_eq!(decode(bad, false), None, "{bad}");
        }
        assert_eq!(query_value("status=running&type=dose_finding", "type").as_deref(), Some("dose_finding"));
        assert_eq!(query_value("status=&type=x", "status"), None);
        assert_eq!(query_value("line=Primary+Neurons&compound=H2O2", "line").as_deref(), Some("Primary Neurons"));
        assert_eq!(query_value("flag", "flag"), None);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(s in "\\PC*") {
            prop_assert_eq!(decode(&encode(&s), false), Some(s.clone()));
            prop_assert_eq!(decode(&encode(&s), true), Some(s));
        }
    }

    #[test]
    fn loopback_rule() {
        assert!(!check_bind("127.0.0.1:8080", false).unwrap().1);
        assert!(!check_bind("[::1]:8080", false).unwrap().1);
        assert!(!check_bind("localhost:0", false).unwrap().1);
        assert!(matches!(check_bind("0.0.0.0:8080", false), Err(DashboardError::Remote(_))));
        assert!(matches!(check_bind("192.168.1.20:8080", false), Err(DashboardError::Remote(_))));
        assert!(check_bind("0.0.0.0:8080", true).unwrap().1);
        assert!(matches!(check_bind("8080", false), Err(DashboardError::BadAddress(_))));
    }

    #[test]
    fn numbers_and_durations_as_shown() {
        assert_eq!(pages::num(45.5344), "45.53");
        assert_eq!(pages::num(0.048_63), "0.04863");
        assert_eq!(pages::num(257.1), "257.1");
        assert_eq!(pages::num(12_345.6), "12346");
        assert_eq!(pages::num(-0.5), "-0.5000");
        assert_eq!(pages::num(0.0), "0");
        assert_eq!(pages::duration(1.610926), "1.61 s");
        assert_eq!(pages::duration(200.0), "3 min 20 s");
        assert_eq!(pages::duration(7500.0), "2 h 05 min");
        assert_eq!(pages::duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 04 h");
    }

    /// The pool's pages are the pages of one connection, with a spare connection lent or not.
    #[test]
    fn pool_answers_as_one_connection_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, goal, status, config, created_at) VALUES \
                 ('c', 'dose_finding', 'optimal_tbhp_dose', 'completed', '{\"lines\": [\"U2OS\", \"A549\"]}', '2026-01-01')",
                [],
            )
            .unwrap();
        for k in 0..120i64 {
            let (line, it) = (["U2OS", "A549"][(k % 2) as usize], 1 + k / 13);
            store
                .results
                .execute(
                    "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, raw_signal, viability_norm, \
                     segmentation, is_control, campaign_id, iteration) VALUES (?1, ?2, ?3, 'tbhp', ?4, ?5, ?6, 0.9, ?7, 'c', ?8)",
                    rusqlite::params![
                        format!("P{it}"),
                        format!("{}{}", ["A", "B", "C"][(k % 13 / 5) as usize], 1 + k % 13),
                        line,
                        if k % 10 == 0 { 0.0 } else { 5.0 * (k % 40) as f64 },
                        100.0 + k as f64,
                        1.0 - (k % 40) as f64 / 50.0,
                        i64::from(k % 10 == 0),
                        it
                    ],
                )
                .unwrap();
        }
        let one = serving_store(dir.path()).unwrap();
        let pool = Pool::open(dir.path(), 3).unwrap();
        for target in ["/campaigns/c", "/campaigns/c/measurements.csv", "/campaigns/c/plates", "/"] {
            let alone = route(&one, target);
            assert_eq!(alone.status, 200, "{target}");
            assert_eq!(pool.answer(target).as_ref(), Some(&alone), "{target}");
            // With every other store busy there is no spare: the same page, on one connection.
            let busy: Vec<_> = pool.stores[1..].iter().map(|s| s.lock().unwrap()).collect();
            assert_eq!(pool.answer(target).as_ref(), Some(&alone), "{target}");
            drop(busy);
        }
        assert_eq!(pool.answer("/campaigns/nope").map(|r| r.status), Some(404));
        // Only the pages that read the wells ask for a second store.
        let mut lent = serving_store(dir.path()).unwrap();
        for (target, asks) in [
            ("/campaigns/c", true),
            ("/campaigns/c/measurements.csv", true),
            ("/campaigns/c/plates?x=1", true),
            ("/campaigns/c/state", false),
            ("/", false),
            ("/results", false),
            ("/lines", false),
        ] {
            let mut asked = false;
            let page = route_with(
                &one,
                || {
                    asked = true;
                    Some(&mut lent)
                },
                target,
            );
            assert_eq!(page.status, 200, "{target}");
            assert_eq!(asked, asks, "{target}");
        }
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    /// Every page of an empty store, and a campaign that has just started (no iteration, no wells).
    #[test]
    fn empty_store_and_a_campaign_without_results_render() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for path in ["/", "/results", "/facility", "/lines", "/params"] {
            let r = route(&store, path);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
        }
        assert!(route(&store, "/").text().contains("No campaigns."));
        assert!(route(&store, "/facility").text().contains("No saved plans."));
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, status, start_date) VALUES ('fresh', 'dose_finding', 'running', '2026-11-24T08:00:00Z')",
                [],
            )
            .unwrap();
        let r = route(&store, "/campaigns/fresh");
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.text();
        assert!(page.contains("none yet") && page.contains("0 measurements;"));
        assert_eq!(page.matches("<p class=\"note\">no measurements yet</p>").count(), 3, "trajectory and box plots");
        assert!(!page.contains("chart could not be drawn"), "{page}");
        assert_eq!(route(&store, "/campaigns/fresh/state").text(), r#"{"iterations":0,"status":"running"}"#);
        let csv = route(&store, "/campaigns/fresh/measurements.csv");
        assert_eq!(csv.text().lines().count(), 1, "the header alone");
    }
}

#[cfg(test)]
mod facility_chart_tests {
    use super::charts::Chart;
    use crate::facility::{PlanInput, SavedPlan, plan};

    fn triangles(c: &Chart) -> usize {
        let Chart::Svg(svg) = c else { panic!("{c:?}") };
        svg.matches("<polygon").count()
    }

    /// The days marked over capacity after scheduling (triangles; one more in the legend) are the plan's
    /// reported violations of that resource, not a second judgement of the loads.
    #[test]
    fn over_capacity_marks_are_the_plans_violations() {
        let mut input: PlanInput = toml::from_str(include_str!("../../tests/fixtures/facility_stress.toml")).unwrap();
        input.facility.incubator_flasks = 6;
        for r in &mut input.requests {
            r.max_shift_days = 0;
        }
        let p = plan(&input).unwrap();
        let mut saved = SavedPlan { plan_id: 1, name: "tight".into(), created_at: String::new(), input, plan: p };
        let count = |s: &SavedPlan, r: &str| s.plan.violations_after.iter().filter(|v| v.resource == r).count();
        assert!(count(&saved, "incubator") > 0);
        let charts = super::pages::facility_charts(&saved);
        for (chart, r) in charts.iter().zip(["incubator", "bsc", "staff"]) {
            assert_eq!(triangles(chart), count(&saved, r) + 1, "{r}");
        }
        saved.plan.violations_after.clear();
        for chart in &super::pages::facility_charts(&saved) {
            assert_eq!(triangles(chart), 1);
        }
    }
}
