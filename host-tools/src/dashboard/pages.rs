//! The pages, as `maud` templates: every value goes through maud's escaping; the only markup not built by
//! maud is the charts' SVG, which `plotters` escapes itself.

use cellos_core::fit::FourPlFit;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::charts::{self, Chart};
use super::data::{Campaign, CampaignRow, Measurement};
use super::encode;
use crate::facility::SavedPlan;

/// At most this many measurements are listed in a page's table; the CSV download has them all.
pub const TABLE_ROWS: usize = 1000;

/// Where the style sheet is served.
pub const STYLE_PATH: &str = "/style.css";

/// The style sheet.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1d3b53;padding:.6em 1em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}\
nav a.on{font-weight:bold;text-decoration:underline}main{padding:1em 1.5em;max-width:1200px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}\
th{background:#eef2f5}td.n{text-align:right;font-variant-numeric:tabular-nums}.chart{margin:.5em 0 1.5em}\
.running{color:#b36b00;font-weight:bold}.completed{color:#2a7a2a}.failed{color:#b00020}.note{color:#666}\
.bad{color:#b00020}form{margin:.5em 0 1em}pre{background:#f6f8fa;padding:.8em;overflow:auto}\
.interrupted{color:#b00020;font-weight:bold}.plates{display:flex;flex-wrap:wrap;gap:14px;margin:.3em 0 1em}\
td{overflow-wrap:anywhere}td.n,td.t{white-space:nowrap}ul.kv{margin:0;padding:0;list-style:none}table{max-width:100%}.chart svg{max-width:100%;height:auto}";

/// Where the watch script is served.
pub const WATCH_PATH: &str = "/watch.js";

/// A running campaign's page: follows the gateway service's event stream when the service runs it
/// (each event added to the page's list as it comes; the page reloads on a committed iteration or the
/// run's end), and reloads when its committed iterations or its status change (every campaign, the
/// service's or not).
pub const WATCH: &str = "(function(){var b=document.body,u=b.dataset.stateUrl,n=b.dataset.iterations,\
e=b.dataset.eventsUrl,l=document.getElementById('events');\
if(e&&window.EventSource){var s=new EventSource(e+'?after='+b.dataset.eventsAfter);\
s.onmessage=function(m){add(m)};['iteration','state','titrated','banked','lab_time','step','planned'].forEach(function(k){\
s.addEventListener(k,function(m){add(m);if(k==='iteration'||k==='state'){s.close();location.reload()}})});\
s.onerror=function(){if(s.readyState===2){s.close()}}}\
function add(m){if(!l)return;var li=document.createElement('li');li.textContent=m.lastEventId+' '+m.type+' '+m.data;\
l.insertBefore(li,l.firstChild);while(l.children.length>20){l.removeChild(l.lastChild)}}\
setInterval(function(){fetch(u).then(function(r){return r.json()}).then(function(s){\
if(String(s.iterations)!==n||s.status!=='running'){location.reload()}}).catch(function(){})},2000)})();";

/// How a running campaign's page follows it.
pub struct Watch<'a> {
    /// Its state as JSON (iterations and status), polled.
    pub state_url: &'a str,
    /// Committed iterations shown.
    pub iterations: i64,
    /// The gateway service's event stream of it, and the last event the page shows, when the service
    /// runs it.
    pub events: Option<(String, i64)>,
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Campaigns.
    Campaigns,
    /// Results.
    Results,
    /// Facility.
    Facility,
    /// Cell lines.
    Lines,
    /// Parameters.
    Params,
}

/// A page: navigation, title, body; `watch` = `(state url, iterations)` for a running campaign.
pub fn layout(section: Section, title: &str, watch: Option<Watch<'_>>, body: Markup) -> String {
    let nav = [
        (Section::Campaigns, "/", "Campaigns"),
        (Section::Results, "/results", "Results"),
        (Section::Facility, "/facility", "Facility"),
        (Section::Lines, "/lines", "Cell lines"),
        (Section::Params, "/params", "Parameters"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · cellos" }
                link rel="stylesheet" href=(STYLE_PATH);
                @if watch.is_some() {
                    noscript { meta http-equiv="refresh" content="5"; }
                }
            }
            body data-state-url=[watch.as_ref().map(|w| w.state_url)] data-iterations=[watch.as_ref().map(|w| w.iterations)]
                data-events-url=[watch.as_ref().and_then(|w| w.events.as_ref()).map(|e| e.0.as_str())]
                data-events-after=[watch.as_ref().and_then(|w| w.events.as_ref()).map(|e| e.1)] {
                nav {
                    @for (s, href, name) in nav {
                        a href=(href) class=[(s == section).then_some("on")] { (name) }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                @if watch.is_some() {
                    script src=(WATCH_PATH) {}
                }
            }
        }
    }
    .into_string()
}

/// A number with four significant digits (no exponent for lab-sized values).
pub fn num(x: f64) -> String {
    cellos_output::sig4(x)
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// Seconds as `1.61 s`, `3 min 20 s`, `2 h 05 min`, `3 d 04 h`.
pub fn duration(s: f64) -> String {
    match s {
        s if s < 60.0 => format!("{s:.2} s"),
        s if s < 3600.0 => format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64),
        s if s < 86_400.0 => format!("{} h {:02} min", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64),
        s => format!("{} d {:02} h", (s / 86_400.0) as u64, (s % 86_400.0 / 3600.0) as u64),
    }
}

fn chart(c: Chart) -> Markup {
    match c {
        Chart::Svg(svg) => html! { div.chart { (PreEscaped(svg)) } },
        Chart::Empty(why) => html! { p.note { (why) } },
        Chart::Failed(e) => html! { p.bad { "chart could not be drawn: " (e) } },
    }
}

/// A table cell's class: numbers right-aligned, dates and times kept on one line.
fn cell_class(v: &Value) -> Option<&'static str> {
    match v {
        Value::Number(_) => Some("n"),
        Value::String(s) if is_date(s) => Some("t"),
        _ => None,
    }
}

/// `2025-11-01`, `2025-11-01T08:00:00`, `2025-11-01 08:00:00.123`: a date, with or without its time.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && (b.len() == 10 || matches!(b[10], b'T' | b' '))
}

/// A value in a table cell: an object (or a string holding one, as the legacy notes do) as a list of
/// `name: value` lines, a list as its items, anything else as text.
fn value_markup(v: &Value) -> Markup {
    let parsed = match v {
        Value::String(s) if s.trim_start().starts_with('{') || s.trim_start().starts_with('[') => {
            serde_json::from_str::<Value>(s).ok()
        }
        _ => None,
    };
    match parsed.as_ref().unwrap_or(v) {
        Value::Object(m) if !m.is_empty() => html! {
            ul.kv { @for (k, x) in m { li { b { (cellos_output::label(k)) ": " } (value_markup(x)) } } }
        },
        Value::Array(a) if !a.is_empty() && a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            html! { (a.iter().map(text_of).collect::<Vec<_>>().join(", ")) }
        }
        Value::Array(a) if !a.is_empty() => html! { ul.kv { @for x in a { li { (value_markup(x)) } } } },
        other => html! { (text_of(other)) },
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().filter(|_| n.is_f64()).map_or_else(|| n.to_string(), num),
        other => other.to_string(),
    }
}

/// A stage output in words, with units: what the stage found, not its stored fields.
pub fn output_text(key: &str, v: &Value) -> String {
    let n = |k: &str| v[k].as_f64();
    match key {
        "optimal_tbhp_dose_uM" => {
            let mut t = n("value").map_or_else(String::new, |d| format!("{d:.2} µM"));
            if let (Some(lo), Some(hi)) = (n("lo"), n("hi")) {
                t += &format!(" (90 % interval {lo:.2}–{hi:.2} µM)");
            }
            if let Some(w) = v["wells"].as_i64() {
                t += &format!(", {w} wells");
            }
            if let Some(s) = v["status"].as_str() {
                t += &format!(", {s}");
            }
            t
        }
        "lv_optimal_volume_ul" => format!(
            "{} µL of virus per {} cells for {} % BFP-positive cells",
            n("value").map(num).unwrap_or_default(),
            n("cells").map(num).unwrap_or_default(),
            n("target_bfp").map(|t| num(t * 100.0)).unwrap_or_default()
        ),
        "lv_estimated_titer" => {
            let se: Vec<String> =
                v["std_err"].as_array().into_iter().flatten().filter_map(Value::as_f64).map(num).collect();
            let mut t = format!(
                "{} TU/µL; plateau {} % BFP-positive",
                n("value").map(num).unwrap_or_default(),
                n("max_fraction").map(|m| num(m * 100.0)).unwrap_or_default()
            );
            if let Some(points) = v["series"].as_array() {
                t += &format!("; fitted to {} volumes", points.len());
            }
            if !se.is_empty() {
                t += &format!(" (standard errors of the fit's parameters: {})", se.join(", "));
            }
            t
        }
        k if k.ends_with("vial_count") => match v.as_i64() {
            Some(1) => "1 vial".into(),
            Some(c) => format!("{c} vials"),
            None => cellos_output::cell(v),
        },
        _ => match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!("{} {}", cellos_output::label(k), cellos_output::cell(v)))
                .collect::<Vec<_>>()
                .join(", "),
            v => cellos_output::cell(v),
        },
    }
}

/// A campaign type for people: `POSH`, `dose finding`, `autonomous`.
pub fn kind_text(kind: &str) -> String {
    match kind {
        "posh" => "POSH".into(),
        k => k.replace('_', " "),
    }
}

/// A campaign's settings as a table of names and values, without what only the runner needs (the twin's
/// process id and pty paths, unset ports).
pub fn settings(config: &Value) -> Markup {
    let settings = if config["config"].is_object() { &config["config"] } else { config };
    let rows: Vec<(String, String)> = settings
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !v.is_null() && k.as_str() != "twin")
        .map(|(k, v)| (cellos_output::label(k), cellos_output::cell(v)))
        .collect();
    html! {
        @if rows.is_empty() { p.note { "none recorded" } } @else {
            table id="config" {
                @for (k, v) in &rows { tr { th { (k) } td { (v) } } }
            }
        }
    }
}

/// A table of a JSON array of objects (columns from the first row); `link` makes a column's cells links.
pub fn json_table(rows: &Value, link: Option<(&str, &str)>) -> Markup {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let cols: Vec<&String> = rows.first().and_then(Value::as_object).map(|m| m.keys().collect()).unwrap_or_default();
    html! {
        @if rows.is_empty() {
            p.note { "none" }
        } @else {
            table {
                tr { @for c in &cols { th { (cellos_output::label(c)) } } }
                @for r in rows {
                    tr {
                        @for c in &cols {
                            @let v = &r[c.as_str()];
                            @match link {
                                Some((col, prefix)) if col == c.as_str() => {
                                    @let t = text_of(v);
                                    td { a href={ (prefix) (encode(&t)) } { (t) } }
                                }
                                _ => @match v.as_str().filter(|t| is_date(t) && t.len() > 16) {
                                    // A time stamp to the minute, in full on hover.
                                    Some(t) => td.t title=(t) { (t[..10]) " " (t[11..16]) },
                                    None => td class=[cell_class(v)] { (value_markup(v)) },
                                },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The campaign list with its filters.
pub fn campaigns(
    rows: &[CampaignRow],
    facets: &(Vec<String>, Vec<String>),
    status: Option<&str>,
    kind: Option<&str>,
) -> String {
    let body = html! {
        form method="get" action="/" {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in &facets.0 { option value=(s) selected[status == Some(s.as_str())] { (s) } }
            } }
            " "
            label { "Type " select name="type" {
                option value="" { "any" }
                @for t in &facets.1 { option value=(t) selected[kind == Some(t.as_str())] { (t) } }
            } }
            " " button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.note { "No campaigns" @if status.is_some() || kind.is_some() { " match these filters" } "." }
        } @else {
            table id="campaigns" {
                tr { th { "Campaign" } th { "Status" } th { "Type" } th { "Lines" } th { "Result per line" } th { "Start" } th { "Duration" } th { "Iterations" } th { "Wells" } }
                @for r in rows {
                    tr {
                        td { a href={ "/campaigns/" (encode(&r.id)) } { (r.id) } }
                        td class=(r.status) { (r.status) }
                        td { (kind_text(&r.kind)) }
                        td { (r.lines.join(", ")) }
                        td { @for (i, res) in r.results.iter().enumerate() { @if i > 0 { br; } (res) } }
                        td.t { (r.start.as_deref().unwrap_or("")) }
                        td.n { (r.duration_s.map(duration).unwrap_or_default()) }
                        td.n { (r.iterations) }
                        td.n { (r.wells) }
                    }
                }
            }
        }
    };
    layout(Section::Campaigns, "Campaigns", None, body)
}

fn measurement_row(m: &Measurement, titration: bool) -> Markup {
    html! {
        tr {
            td.n { (m.iteration) } td { (m.cell_line) } td { (m.compound) } td.n { (opt(m.dose_um)) }
            td.n { (opt(m.value)) } td.n { (opt(m.viability)) } td.n { (opt(m.segmentation)) }
            @if titration { td.n { (opt(m.virus_ul)) } td.n { (opt(m.bfp)) } }
            td { (m.plate) } td { (m.well) } td { @if m.control { "control" } }
        }
    }
}

/// The charts of a campaign, in page order.
pub struct CampaignCharts {
    /// Trajectory.
    pub trajectory: Chart,
    /// One dose-response chart per `(line, compound)`.
    pub dose_response: Vec<(String, Chart)>,
    /// Box plots by compound.
    pub by_compound: Chart,
    /// Box plots by cell line.
    pub by_line: Chart,
    /// Plate maps of the latest plates (per plate, one map per readout), and how many plates there are.
    pub plates: (Vec<(String, Vec<String>)>, usize),
}

/// Every plate of a campaign.
pub fn all_plates(id: &str, plates: &[(String, Vec<String>)]) -> String {
    let body = html! {
        p { a href={ "/campaigns/" (encode(id)) } { "back to the campaign" } }
        (plate_section(plates, "Each plate per readout, on one colour scale per readout across the campaign; hover a well for its values."))
        @if plates.is_empty() { p.note { "No plates recorded." } }
    };
    layout(Section::Campaigns, &format!("Plates of campaign {id}"), None, body)
}

/// A section of plate maps (nothing without plates).
fn plate_section(plates: &[(String, Vec<String>)], note: &str) -> Markup {
    html! {
        @if !plates.is_empty() {
            h2 { "Plates" }
            p.note { (note) }
            @for (plate, maps) in plates {
                h3 { (plate) }
                div.plates { @for m in maps { (PreEscaped(m)) } }
            }
        }
    }
}

/// A stage's name for people.
fn stage_text(stage: &str) -> String {
    match stage {
        "mcb" => "master cell bank".into(),
        "wcb" => "working cell bank".into(),
        "tbhp_dose_finding" => "tBHP dose finding".into(),
        "lv_titration" => "lentivirus titration".into(),
        s => s.replace('_', " "),
    }
}

/// A stage output's key for people.
fn key_text(key: &str) -> String {
    match key {
        "optimal_tbhp_dose_uM" => "chosen tBHP dose".into(),
        "lv_optimal_volume_ul" => "virus volume".into(),
        "lv_estimated_titer" => "titer".into(),
        "mcb_vial_count" | "wcb_vial_count" => "vials frozen".into(),
        k => cellos_output::label(k),
    }
}

/// A campaign's page.
pub fn campaign(c: &Campaign, charts: &CampaignCharts) -> String {
    let id = &c.row.id;
    let best = c.best();
    let shown = c.measurements.len().min(TABLE_ROWS);
    // A titration's columns, when the campaign has its wells.
    let titration = c.measurements.iter().any(|m| m.virus_ul.is_some());
    let body = html! {
        h2 { "Summary" }
        table id="summary" {
            tr { th { "Status" } td class=(c.row.status) { (c.row.status) } }
            tr { th { "Type" } td { (kind_text(&c.row.kind)) } }
            tr { th { "Lines" } td { (c.row.lines.join(", ")) } }
            tr { th { "Goal" } td { (c.goal.as_deref().unwrap_or("")) } }
            tr { th { "Start" } td.t { (c.row.start.as_deref().unwrap_or("")) } }
            tr { th { "End" } td.t { (c.end.as_deref().unwrap_or("")) } }
            tr { th { "Duration" } td { (c.row.duration_s.map(duration).unwrap_or_default()) } }
            tr { th { "Iterations" } td.n { (c.row.iterations) } }
            tr { th { "Experiments" } td.n { (c.experiments) } }
            tr { th { "Wells" } td.n { (c.row.wells) } }
            tr {
                th { "Best result" }
                td {
                    @if let Some(b) = best {
                        (c.value_name) " " (opt(b.value)) " — " (b.cell_line) ", " (b.compound) " at " (opt(b.dose_um)) " µM (iteration " (b.iteration) ", " (b.well) ")"
                    } @else { "none yet" }
                }
            }
        }
        @if let Some((_, events)) = c.service.as_ref().filter(|_| c.row.status == "running") {
            h2 { "Live" }
            p.note { "The gateway service's events as they come (newest first)." }
            ol id="events" reversed {
                @for (n, e) in events { li { (n) " " (e["event"].as_str().unwrap_or("event")) " " (e.to_string()) } }
            }
        }
        @if !c.outputs.is_empty() {
            h2 { "Stage outputs" }
            table id="outputs" {
                tr { th { "Cell line" } th { "Stage" } th { "Result" } th { "Value" } }
                @for o in &c.outputs {
                    tr { td { (o.line) } td { (stage_text(&o.stage)) } td { (key_text(&o.key)) } td { (output_text(&o.key, &o.value)) } }
                }
            }
        }
        (plate_section(&charts.plates.0, "Each plate per readout, on one colour scale per readout across the campaign; hover a well for its values."))
        @if charts.plates.1 > charts.plates.0.len() {
            p { "The latest " (charts.plates.0.len()) " of " (charts.plates.1) " plates; "
                a id="all-plates" href={ "/campaigns/" (encode(id)) "/plates" } { "all plates" } "." }
        }
        h2 { "Optimisation trajectory" }
        (chart(charts.trajectory.clone()))
        h2 { "Dose-response and titration" }
        @for (name, svg) in &charts.dose_response {
            h3 { (name) }
            (chart(svg.clone()))
        }
        h2 { "Distributions" }
        (chart(charts.by_compound.clone()))
        (chart(charts.by_line.clone()))
        h2 { "Measurements" }
        p {
            @if shown < c.measurements.len() { "The first " (shown) " of " (c.measurements.len()) " measurements; " }
            @else { (c.measurements.len()) " measurements; " }
            a id="csv" href={ "/campaigns/" (encode(id)) "/measurements.csv" } { "download all as CSV" } "."
        }
        table id="measurements" {
            tr {
                th { "Iteration" } th { "Cell line" } th { "Compound" } th { "Dose (µM)" } th { (c.value_name) }
                th { "Viability" } th { "Segmentation" }
                @if titration { th { "Virus (µL)" } th { "BFP-positive" } }
                th { "Plate" } th { "Well" } th { "" }
            }
            @for m in &c.measurements[..shown] { (measurement_row(m, titration)) }
        }
        h2 { "Settings" }
        (settings(&c.config))
    };
    let state = format!("/campaigns/{}/state", encode(id));
    let watch = (c.row.status == "running").then(|| Watch {
        state_url: state.as_str(),
        iterations: c.row.iterations,
        events: c.service.as_ref().map(|(last, _)| (format!("/campaigns/{}/events", encode(id)), *last)),
    });
    layout(Section::Campaigns, &format!("Campaign {id}"), watch, body)
}

/// The results page: every `(line, compound)` with a link to its fit.
pub fn results(pairs: &[(String, String, i64)]) -> String {
    let body = html! {
        p { "Dose-response fits (4PL, bottom fixed at 0) of normalised viability in the measurements database." }
        @if pairs.is_empty() { p.note { "No measurements (import them with `cellos import results FILE`)." } }
        @else {
            table id="pairs" {
                tr { th { "Cell line" } th { "Compound" } th { "Measurements" } th { "" } }
                @for (line, compound, n) in pairs {
                    tr {
                        td { (line) } td { (compound) } td.n { (n) }
                        td { a href={ "/results/fit?line=" (encode(line)) "&compound=" (encode(compound)) } { "fit" } }
                    }
                }
            }
        }
    };
    layout(Section::Results, "Results", None, body)
}

/// One fit.
pub fn result_fit(
    line: &str,
    compound: &str,
    n: usize,
    curve: Option<FourPlFit>,
    svg: Chart,
    plates: &[(String, Vec<String>)],
) -> String {
    let body = html! {
        table id="fit" {
            tr { th { "Cell line" } td { (line) } }
            tr { th { "Compound" } td { (compound) } }
            tr { th { "Measurements" } td.n { (n) } }
            @if let Some(c) = curve {
                tr { th { "IC50 (µM)" } td.n { (num(c.curve.ic50)) " ± " (num(c.curve.ic50 * c.ic50_rel_err())) } }
                tr { th { "Hill slope" } td.n { (num(c.curve.hill)) } }
                tr { th { "Top" } td.n { (num(c.curve.top)) } }
            } @else {
                tr { th { "Fit" } td.bad { "no fit (fewer than 5 dosed points, or it did not converge)" } }
            }
        }
        p.note { "Each dot is a dose's mean, its bar one standard deviation either side; the curve is fitted to every well." }
        (chart(svg))
        (plate_section(plates, "The first plates that hold these measurements (at most 6), each readout on one colour scale across them; hover a well for its values."))
    };
    layout(Section::Results, &format!("{compound} on {line}"), None, body)
}

/// The facility page: saved plans, and the selected one's daily loads.
pub fn facility(list: &[(i64, String, String)], plan: Option<(&SavedPlan, [Chart; 3])>) -> String {
    let body = html! {
        @if list.is_empty() {
            p.note { "No saved plans. Save one with " code { "cellos facility plan FILE.toml --save" } "." }
        } @else {
            table id="plans" {
                tr { th { "Plan" } th { "Name" } th { "Saved" } }
                @for (id, name, at) in list {
                    tr { td { a href={ "/facility/" (id) } { (id) } } td { (name) } td { (at) } }
                }
            }
        }
        @if let Some((p, charts)) = plan {
            h2 { "Plan " (p.plan_id) ": " (p.name) }
            table id="facility" {
                tr { th { "" } th { "Incubator (flasks)" } th { "BSC (h/day)" } th { "Staff (h/day)" } th { "Violations" } }
                tr { th { "Capacity" } td.n { (p.input.facility.incubator_flasks) } td.n { (num(p.input.facility.bsc_hours_per_day)) }
                     td.n { (num(p.input.facility.staff_fte * p.input.facility.staff_hours_per_day)) } td {} }
                tr { th { "Peak as requested" } @for x in p.plan.peaks_before { td.n { (num(x)) } } td.n { (p.plan.violations_before.len()) } }
                tr { th { "Peak after scheduling" } @for x in p.plan.peaks_after { td.n { (num(x)) } } td.n { (p.plan.violations_after.len()) } }
            }
            p { "Start days after shifting: " (format!("{:?}", p.plan.start_days)) }
            @for svg in charts { (chart(svg)) }
            @if p.plan.remaining.is_empty() {
                p { "No violation remains." }
            } @else {
                h3 { "Remaining violations" }
                ul { @for r in &p.plan.remaining { li { (r) } } }
            }
        }
    };
    layout(Section::Facility, "Facility", None, body)
}

/// Cell lines and their vial counts.
pub fn lines(lines: &Value, vials: &Value) -> String {
    let body = html! {
        (json_table(lines, Some(("cell_line_id", "/lines/"))))
        h2 { "Vials" }
        (json_table(vials, Some(("cell_line_id", "/lines/"))))
    };
    layout(Section::Lines, "Cell lines", None, body)
}

/// One line: its record, characteristics, protocols, inventory, usage and parameter history.
pub fn line(id: &str, line: &Value, inventory: &Value, usage: &Value, params: &Value) -> String {
    let fields: Vec<(&String, &Value)> = line
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| !matches!(k.as_str(), "characteristics" | "protocols")).collect())
        .unwrap_or_default();
    let body = html! {
        table id="line" { @for (k, v) in fields { tr { th { (k) } td { (text_of(v)) } } } }
        h2 { "Characteristics" } (json_table(&line["characteristics"], None))
        h2 { "Protocols" } (json_table(&line["protocols"], None))
        h2 { "Inventory" } (json_table(inventory, None))
        h2 { "Usage" } (json_table(usage, None))
        h2 { "Simulation parameters, every version" } (json_table(params, None))
    };
    layout(Section::Lines, &format!("Cell line {id}"), None, body)
}

/// Current parameters of every line, and the version history of one.
pub fn params(current: &Value, history: Option<(&str, &Value)>) -> String {
    let body = html! {
        p { "Current versions; a line's history lists every version with its validity." }
        (json_table(current, Some(("cell_line_id", "/params?line="))))
        @if let Some((line, h)) = history {
            h2 { "History of " (line) }
            (json_table(h, None))
        }
    };
    layout(Section::Params, "Parameters", None, body)
}

/// An error page.
pub fn error(status: u16, message: &str) -> String {
    let title = match status {
        404 => "Not found",
        400 => "Bad request",
        _ => "Error",
    };
    layout(Section::Campaigns, title, None, html! { p.bad { (message) } })
}

/// The chart of a facility plan's resource: `(title, unit, before, after, capacity)`.
pub fn facility_charts(p: &SavedPlan) -> [Chart; 3] {
    use crate::facility::{DayLoad, Violation, loads};
    let f = &p.input.facility;
    let titles = [("Incubator", "flasks"), ("Biosafety cabinet", "hours per day"), ("Staff", "hours per day")];
    std::array::from_fn(|k| {
        let (resource, _, capacity) = loads(f, &DayLoad::default())[k];
        let series = |days: &[DayLoad]| days.iter().map(|d| (d.day, loads(f, d)[k].1)).collect::<Vec<_>>();
        // The days marked over capacity are the plan's violations, as reported.
        let over = |vs: &[Violation]| vs.iter().filter(|v| v.resource == resource).map(|v| (v.day, v.load)).collect();
        let (title, unit) = titles[k];
        charts::daily_load(
            title,
            unit,
            capacity,
            &charts::Daily { loads: series(&p.plan.before), over: over(&p.plan.violations_before) },
            &charts::Daily { loads: series(&p.plan.after), over: over(&p.plan.violations_after) },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_cells_show_objects_and_json_notes_as_name_value_lines_and_keep_dates_on_one_line() {
        let notes = json!("{\"passage\": 4, \"medium_lot\": \"L-17\"}");
        let html = value_markup(&notes).into_string();
        // In the note's own order.
        assert_eq!(html, "<ul class=\"kv\"><li><b>passage: </b>4</li><li><b>medium lot: </b>L-17</li></ul>");
        assert_eq!(value_markup(&json!([1.23456, 2])).into_string(), "1.235, 2");
        assert_eq!(value_markup(&json!("{not json")).into_string(), "{not json");
        assert_eq!(value_markup(&json!({})).into_string(), "{}");
        for d in ["2025-11-01", "2025-11-01T08:00:00", "2025-11-01 08:00:00.5"] {
            assert_eq!(cell_class(&json!(d)), Some("t"), "{d}");
        }
        for s in ["2025-11", "20251101", "2025-11-01x", "HepG2_P1"] {
            assert_eq!(cell_class(&json!(s)), None, "{s}");
        }
        assert_eq!(cell_class(&json!(3.5)), Some("n"));
        let t = json_table(&json!([{ "cell_line_id": "U2OS", "dose_uM": 0.048627805 }]), None).into_string();
        assert!(t.contains("<th>cell line id</th><th>dose µM</th>"), "{t}");
        assert!(t.contains("<td class=\"n\">0.04863</td>"), "{t}");
        let t = json_table(&json!([{ "valid_from": "2026-12-02T07:05:09.123Z", "date": "2025-11-01" }]), None)
            .into_string();
        assert!(t.contains("<td class=\"t\" title=\"2026-12-02T07:05:09.123Z\">2026-12-02 07:05</td>"), "{t}");
        assert!(t.contains("<td class=\"t\">2025-11-01</td>"), "{t}");
    }
}
