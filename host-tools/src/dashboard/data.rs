//! What the pages show, read from the store: campaigns with their measurements in one shape, whichever
//! platform wrote them, and dose-response fits.
//!
//! A campaign's measurements come from two places, read by one loader: rows of `measurements` that carry
//! the campaign's id (cellos campaigns write every well there, with its iteration), and the legacy
//! platform's iterations, whose `results` are arrays of `{cell_line, compound, dose, measurement, …}`.

use cellos_core::fit::{FitStatus, FourPlFit};
use cellos_core::search::Criteria;
use rusqlite::{Connection, params};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::store::Store;

/// A campaign in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignRow {
    /// Id.
    pub id: String,
    /// Type (`dose_finding`, `autonomous`, …).
    pub kind: String,
    /// Status (`running`, `completed`, …).
    pub status: String,
    /// Start time as stored.
    pub start: Option<String>,
    /// Duration in seconds (to now for a running campaign), when known.
    pub duration_s: Option<f64>,
    /// Committed iterations.
    pub iterations: i64,
    /// Wells (measurements) recorded.
    pub wells: i64,
    /// Cell lines, from the settings.
    pub lines: Vec<String>,
    /// The result per line, in words (`U2OS 45.30 µM`), where there is one.
    pub results: Vec<String>,
}

/// The cell lines a campaign's settings name: a cellos campaign's `config.lines`, a legacy one's
/// `cell_lines`.
pub fn config_lines(config: &Value) -> Vec<String> {
    let list = config["config"]["lines"].as_array().or_else(|| config["cell_lines"].as_array());
    list.into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}

/// A stored `running` status is `interrupted` when the process that ran the campaign is gone (its lock
/// is free): it will not go on by itself (`campaign resume` continues it).
fn shown_status(store: &Store, id: &str, status: String) -> String {
    if status == "running" && cellos_store::db::campaign_process_gone(&store.dir, id) {
        "interrupted".into()
    } else {
        status
    }
}

/// The chosen dose of each line of each campaign, in words.
fn results_per_line(store: &Store) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut st = store.campaigns.prepare_cached(
        "SELECT campaign_id, cell_line_id, value FROM stage_outputs WHERE key = 'optimal_tbhp_dose_uM' ORDER BY output_id",
    )?;
    let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (id, line, value) = row?;
        let v: Value = serde_json::from_str(&value).unwrap_or(Value::Null);
        if let Some(dose) = v["value"].as_f64() {
            out.entry(id).or_default().push(format!("{line} {dose:.2} µM"));
        }
    }
    Ok(out)
}

/// One measured well (or legacy result) of a campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Iteration that produced it.
    pub iteration: i64,
    /// Cell line.
    pub cell_line: Text,
    /// Compound.
    pub compound: Text,
    /// Dose in µM.
    pub dose_um: Option<f64>,
    /// The campaign's objective reading: CellROX (AU) for dose finding, `measurement` for legacy results.
    pub value: Option<f64>,
    /// Normalised viability.
    pub viability: Option<f64>,
    /// Segmentation quality.
    pub segmentation: Option<f64>,
    /// Plate (empty for legacy results).
    pub plate: Text,
    /// Well, or the legacy proposal id.
    pub well: Text,
    /// A dose-0 control well.
    pub control: bool,
    /// A titration well: the virus it received, µL.
    pub virus_ul: Option<f64>,
    /// A titration well: its BFP-positive fraction.
    pub bfp: Option<f64>,
}

/// A measurement's text field, shared between the wells that hold the same text (a campaign's 100,000
/// wells name a few lines, plates and wells: each text is allocated once, [`Interner`]).
pub type Text = std::sync::Arc<str>;

/// One [`Text`] per distinct string.
#[derive(Default)]
pub struct Interner(std::collections::HashSet<Text>);

impl Interner {
    /// The shared text of `s`.
    pub fn get(&mut self, s: &str) -> Text {
        if let Some(t) = self.0.get(s) {
            return t.clone();
        }
        let t: Text = s.into();
        self.0.insert(t.clone());
        t
    }

    /// The shared text of `s`, `last` when it is the same (a column repeats its value from row to
    /// row: the lookup is then a comparison).
    pub fn next(&mut self, last: &mut Option<Text>, s: &str) -> Text {
        match last {
            Some(t) if **t == *s => t.clone(),
            _ => last.insert(self.get(s)).clone(),
        }
    }
}

/// An event the gateway service recorded: its id and the event.
pub type ServiceEvent = (i64, Value);

/// The events the gateway service recorded for run `id` (a campaign run by the service has its
/// campaign id) after event `after`, at most `limit`, and the run's state; `None` when no service ran
/// it.
pub fn service_events(store: &Store, id: &str, after: i64, limit: i64) -> Result<Option<(Vec<ServiceEvent>, String)>> {
    use rusqlite::OptionalExtension;
    let state: Option<String> =
        store.campaigns.query_row("SELECT state FROM service_runs WHERE run_id = ?1", [id], |r| r.get(0)).optional()?;
    let Some(state) = state else { return Ok(None) };
    let mut st = store.campaigns.prepare_cached(
        "SELECT event_id, event FROM service_events WHERE run_id = ?1 AND event_id > ?2 ORDER BY event_id LIMIT ?3",
    )?;
    let events = st
        .query_map(rusqlite::params![id, after, limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .map(|e| e.map(|(n, text)| (n, serde_json::from_str(&text).unwrap_or(Value::String(text)))))
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some((events, state)))
}

/// The last event id the service recorded for run `id` (0 for none).
pub fn last_service_event(store: &Store, id: &str) -> Result<i64> {
    Ok(store.campaigns.query_row(
        "SELECT ifnull(max(event_id), 0) FROM service_events WHERE run_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// A stage output of a campaign (the store's record).
pub use cellos_store::outputs::Output;

/// Everything the campaign page shows.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The list row.
    pub row: CampaignRow,
    /// Goal.
    pub goal: Option<String>,
    /// End time.
    pub end: Option<String>,
    /// Experiments linked to the campaign.
    pub experiments: i64,
    /// The configuration (JSON).
    pub config: Value,
    /// The stored result summary (JSON).
    pub summary: Value,
    /// Stage outputs.
    pub outputs: Vec<Output>,
    /// Measurements, in iteration order.
    pub measurements: Vec<Measurement>,
    /// Name of [`Measurement::value`].
    pub value_name: &'static str,
    /// Viability and segmentation thresholds, for dose-finding campaigns.
    pub thresholds: Option<(f64, f64)>,
    /// When the gateway service runs it: its last event id and its latest events (newest first).
    pub service: Option<(i64, Vec<ServiceEvent>)>,
}

impl Campaign {
    /// The chosen dose of a line and its interval, `(dose, lo, hi)`, from the stage outputs.
    pub fn chosen_dose(&self, line: &str) -> Option<(f64, Option<f64>, Option<f64>)> {
        let o = self.outputs.iter().find(|o| o.line == line && o.key == "optimal_tbhp_dose_uM")?;
        Some((o.value["value"].as_f64()?, o.value["lo"].as_f64(), o.value["hi"].as_f64()))
    }

    /// The best measurement: for dose finding, the highest CellROX of a well meeting both thresholds;
    /// otherwise the highest value.
    pub fn best(&self) -> Option<&Measurement> {
        self.measurements
            .iter()
            .filter(|m| !m.control && m.value.is_some())
            .filter(|m| meets(m, self.thresholds))
            .max_by(|a, b| a.value.partial_cmp(&b.value).unwrap_or(std::cmp::Ordering::Equal))
    }

    /// Cell lines, in order of first appearance.
    pub fn lines(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.measurements {
            if !out.contains(&&*m.cell_line) {
                out.push(&m.cell_line);
            }
        }
        out
    }
}

/// Whether a well meets the thresholds (always, without thresholds).
pub fn meets(m: &Measurement, thresholds: Option<(f64, f64)>) -> bool {
    match thresholds {
        None => true,
        Some((v, s)) => m.viability.is_some_and(|x| x >= v) && m.segmentation.is_some_and(|x| x >= s),
    }
}

fn duration(start: Option<&str>, end: Option<&str>, summary: &Value, running: bool) -> Option<f64> {
    if let Some(d) = summary.get("duration_seconds").and_then(Value::as_f64) {
        return Some(d);
    }
    let start = crate::time::parse_micros(start?)?;
    let end = match end {
        Some(e) => crate::time::parse_micros(e)?,
        None if running => crate::time::parse_micros(&crate::time::now())?,
        None => return None,
    };
    Some((end - start) as f64 / 1e6)
}

fn json_column(text: Option<String>) -> Value {
    text.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

/// Wells recorded per campaign in `measurements`.
fn measured_wells(store: &Store) -> Result<std::collections::HashMap<String, i64>> {
    let mut st = store.results.prepare_cached(
        "SELECT campaign_id, count(*) FROM measurements WHERE campaign_id IS NOT NULL GROUP BY campaign_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The campaigns, filtered by status and type (exact matches), in the store's order.
pub fn campaigns(store: &Store, status: Option<&str>, kind: Option<&str>) -> Result<Vec<CampaignRow>> {
    let wells = measured_wells(store)?;
    let results = results_per_line(store)?;
    let mut st = store.campaigns.prepare_cached(
        "SELECT c.campaign_id, c.campaign_type, c.status, c.start_date, c.end_date, c.results_summary, c.config, \
         (SELECT count(*) FROM campaign_iterations i WHERE i.campaign_id = c.campaign_id), \
         (SELECT coalesce(sum(CASE WHEN json_valid(i.results) AND json_type(i.results) = 'array' \
                                   THEN json_array_length(i.results) ELSE 0 END), 0) \
            FROM campaign_iterations i WHERE i.campaign_id = c.campaign_id) \
         FROM campaigns c WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR c.campaign_type = ?2) \
         ORDER BY coalesce(c.start_date, c.created_at) DESC, c.campaign_id",
    )?;
    let rows = st.query_map(params![status, kind], |r| {
        let id: String = r.get(0)?;
        let status: String = r.get(2)?;
        let start: Option<String> = r.get(3)?;
        let end: Option<String> = r.get(4)?;
        let summary = json_column(r.get(5)?);
        let config = json_column(r.get(6)?);
        let legacy_wells: i64 = r.get(8)?;
        Ok(CampaignRow {
            duration_s: duration(start.as_deref(), end.as_deref(), &summary, status == "running"),
            wells: legacy_wells + wells.get(&id).copied().unwrap_or(0),
            kind: r.get(1)?,
            iterations: r.get(7)?,
            lines: config_lines(&config),
            results: results.get(&id).cloned().unwrap_or_default(),
            id,
            status,
            start,
        })
    })?;
    let mut rows: Vec<CampaignRow> = rows.collect::<rusqlite::Result<_>>()?;
    for r in &mut rows {
        r.status = shown_status(store, &r.id, std::mem::take(&mut r.status));
    }
    Ok(rows)
}

/// The distinct statuses and types, for the list's filters.
pub fn campaign_facets(store: &Store) -> Result<(Vec<String>, Vec<String>)> {
    let col = |sql: &str| -> Result<Vec<String>> {
        let mut st = store.campaigns.prepare_cached(sql)?;
        let v = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(v)
    };
    Ok((
        col("SELECT DISTINCT status FROM campaigns ORDER BY status")?,
        col("SELECT DISTINCT campaign_type FROM campaigns ORDER BY campaign_type")?,
    ))
}

/// Committed iterations and status of a campaign: what a running campaign's page watches.
pub fn campaign_state(store: &Store, id: &str) -> Result<(i64, String)> {
    store
        .campaigns
        .query_row(
            "SELECT (SELECT count(*) FROM campaign_iterations i WHERE i.campaign_id = c.campaign_id), c.status \
             FROM campaigns c WHERE c.campaign_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(|(n, status)| (n, shown_status(store, id, status)))
        .map_err(|e| not_found(e, id))
}

fn not_found(e: rusqlite::Error, id: &str) -> StoreError {
    match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound(format!("no campaign `{id}`")),
        e => e.into(),
    }
}

/// A campaign's wells (`wells!` adds the rest of the query): in iteration order, and within an
/// iteration as written, they come off the index `measurements_campaign_order` in that order, with no
/// sort of every row at each request.
macro_rules! wells {
    ($tail:literal) => {
        concat!(
            "SELECT coalesce(iteration, 0), cell_line, coalesce(compound, ''), dose_uM, raw_signal, viability_norm, \
             segmentation, plate_id, well_id, coalesce(is_control, 0), virus_ul, bfp_fraction FROM measurements \
             WHERE campaign_id = ?1",
            $tail
        )
    };
}
const ALL_WELLS: &str = wells!(" ORDER BY iteration, id");
/// The wells of no iteration: they sort first.
const WELLS_WITHOUT_ITERATION: &str = wells!(" AND iteration IS NULL ORDER BY id");
const WELLS_BEFORE: &str = wells!(" AND iteration < ?2 ORDER BY iteration, id");
const WELLS_FROM: &str = wells!(" AND iteration >= ?2 ORDER BY iteration, id");
/// The iterations a campaign's wells span, and the newest row of the table (what tells two read
/// transactions' snapshots apart: the store only ever appends measurements).
const WELLS_SPAN: &str = "SELECT (SELECT min(iteration) FROM measurements WHERE campaign_id = ?1), \
     (SELECT max(iteration) FROM measurements WHERE campaign_id = ?1), (SELECT max(rowid) FROM measurements)";
const NEWEST_ROW: &str = "SELECT max(rowid) FROM measurements";

/// Appends the wells `sql` selects (one of the `wells!` queries) to `out`.
fn read_wells(conn: &Connection, sql: &str, args: impl rusqlite::Params, out: &mut Vec<Measurement>) -> Result<()> {
    let mut st = conn.prepare_cached(sql)?;
    let mut texts = Interner::default();
    let mut last: [Option<Text>; 10] = Default::default();
    let mut text = |r: &rusqlite::Row, k: usize| -> rusqlite::Result<Text> {
        Ok(texts.next(&mut last[k], r.get_ref(k)?.as_str_or_null()?.unwrap_or_default()))
    };
    let rows = st.query_map(args, |r| {
        Ok(Measurement {
            iteration: r.get(0)?,
            cell_line: text(r, 1)?,
            compound: text(r, 2)?,
            dose_um: r.get(3)?,
            value: r.get(4)?,
            viability: r.get(5)?,
            segmentation: r.get(6)?,
            plate: text(r, 7)?,
            well: text(r, 8)?,
            control: r.get::<_, i64>(9)? == 1,
            virus_ul: r.get(10)?,
            bfp: r.get(11)?,
        })
    })?;
    for m in rows {
        out.push(m?);
    }
    Ok(())
}

/// A campaign's wells, read on `conn`; with a `spare` connection to the same results, the later half
/// of its iterations is read on a second thread while this one reads the first half (on a two-core box
/// the read takes about half the time). The halves come from one snapshot: each connection reads in a
/// read transaction, and when another process committed between the two transactions' first reads
/// (the table's newest row differs), the later half is read again on `conn`, in its snapshot.
/// `between` runs after `conn`'s snapshot is taken and before `spare`'s (a test commits there).
fn campaign_wells(
    conn: &Connection,
    spare: Option<&mut Connection>,
    id: &str,
    between: impl FnOnce(),
) -> Result<Vec<Measurement>> {
    let mut wells = Vec::new();
    let Some(spare) = spare else {
        read_wells(conn, ALL_WELLS, [id], &mut wells)?;
        return Ok(wells);
    };
    let snapshot = conn.unchecked_transaction()?;
    let (lo, hi, newest): (Option<i64>, Option<i64>, Option<i64>) =
        conn.query_row(WELLS_SPAN, [id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    between();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        read_wells(conn, ALL_WELLS, [id], &mut wells)?;
        return Ok(wells);
    };
    // Iterations from `mid` on go to the spare connection: at least one, since `mid <= hi`.
    let mid = lo + (hi - lo + 1) / 2;
    let (first, later) = std::thread::scope(|scope| {
        let later = scope.spawn(move || -> Result<(Vec<Measurement>, Option<i64>)> {
            let _snapshot = spare.unchecked_transaction()?;
            let newest: Option<i64> = spare.query_row(NEWEST_ROW, [], |r| r.get(0))?;
            let mut later = Vec::new();
            read_wells(spare, WELLS_FROM, params![id, mid], &mut later)?;
            Ok((later, newest))
        });
        let first = read_wells(conn, WELLS_WITHOUT_ITERATION, [id], &mut wells)
            .and_then(|()| read_wells(conn, WELLS_BEFORE, params![id, mid], &mut wells));
        (first, later.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    first?;
    match later {
        Ok((mut later, seen)) if seen == newest => wells.append(&mut later),
        // Another snapshot (or the spare connection failed): the later half again, on `conn`.
        _ => read_wells(conn, WELLS_FROM, params![id, mid], &mut wells)?,
    }
    drop(snapshot);
    Ok(wells)
}

/// One campaign with its measurements.
pub fn campaign(store: &Store, id: &str) -> Result<Campaign> {
    campaign_with(store, None, id)
}

/// One campaign with its measurements; with a `spare` connection to the store's results (the server
/// lends one from an idle worker), a large campaign's wells are read on two threads
/// ([`campaign_wells`]).
pub fn campaign_with(store: &Store, spare: Option<&mut Connection>, id: &str) -> Result<Campaign> {
    campaign_reading(store, spare, id, || {})
}

fn campaign_reading(
    store: &Store,
    spare: Option<&mut Connection>,
    id: &str,
    between: impl FnOnce(),
) -> Result<Campaign> {
    type Texts = [Option<String>; 7];
    let [kind, goal, status, start, end, config, summary]: Texts = store
        .campaigns
        .query_row(
            "SELECT campaign_type, goal, status, start_date, end_date, config, results_summary FROM campaigns WHERE campaign_id = ?1",
            [id],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?]),
        )
        .map_err(|e| not_found(e, id))?;
    let (kind, status) = (kind.unwrap_or_default(), status.unwrap_or_default());
    let (config, summary) = (json_column(config), json_column(summary));
    // cellos campaigns: every well in `measurements`.
    let mut measurements = campaign_wells(&store.results, spare, id, between)?;
    let mut texts = Interner::default();
    let from_table = !measurements.is_empty();
    // Legacy campaigns: results arrays in the iterations.
    let mut st = store.campaigns.prepare_cached(
        "SELECT iteration_number, results FROM campaign_iterations WHERE campaign_id = ?1 ORDER BY iteration_number",
    )?;
    let iterations: Vec<(i64, Option<String>)> =
        st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    for (it, results) in &iterations {
        if let Value::Array(items) = json_column(results.clone()) {
            for (k, r) in items.iter().enumerate() {
                let text = |key: &str| r[key].as_str().unwrap_or_default().to_string();
                let dose = r["dose"].as_f64().or_else(|| r["dose_uM"].as_f64());
                measurements.push(Measurement {
                    iteration: *it,
                    cell_line: texts.get(&text("cell_line")),
                    compound: texts.get(&text("compound")),
                    dose_um: dose,
                    value: r["measurement"].as_f64(),
                    viability: r["viability"].as_f64(),
                    segmentation: r["segmentation"].as_f64(),
                    plate: texts.get(""),
                    well: texts
                        .get(&r["proposal_id"].as_str().map_or_else(|| format!("result {}", k + 1), str::to_string)),
                    control: dose == Some(0.0),
                    virus_ul: None,
                    bfp: None,
                });
            }
        }
    }
    let experiments: i64 =
        store.campaigns.query_row("SELECT count(*) FROM experiments WHERE campaign_id = ?1", [id], |r| r.get(0))?;
    let outputs = cellos_store::outputs::list(&store.campaigns, id)?;
    let dose_finding = kind == "dose_finding" || kind == "posh";
    let criteria = Criteria::default();
    let wells = measurements.len() as i64;
    Ok(Campaign {
        row: CampaignRow {
            id: id.to_string(),
            duration_s: duration(start.as_deref(), end.as_deref(), &summary, status == "running"),
            kind,
            status: shown_status(store, id, status),
            start,
            iterations: iterations.len() as i64,
            wells,
            lines: config_lines(&config),
            results: Vec::new(),
        },
        goal,
        end,
        experiments,
        config,
        summary,
        outputs,
        measurements,
        value_name: if from_table && dose_finding { "CellROX (AU)" } else { "measurement" },
        thresholds: dose_finding.then_some((criteria.min_viability, criteria.min_segmentation)),
        service: {
            let last = last_service_event(store, id)?;
            service_events(store, id, (last - LATEST_EVENTS).max(0), LATEST_EVENTS)?.map(|(mut events, _)| {
                events.reverse();
                (last, events)
            })
        },
    })
}

/// Events a campaign's page lists.
pub const LATEST_EVENTS: i64 = 10;

/// Fits a falling 4PL to `(dose, response)` with the same function and the same points as
/// `cellos results fit` (the untreated wells, at dose 0, pin the top); `floor_zero` fixes the bottom at
/// 0 (viability). `None` when there are fewer than 5 dosed points, the fit fails, or the curve is not
/// credible (IC50 more than 10× outside the doses, Hill slope outside 0.2–10).
pub fn fit(points: &[(f64, f64)], floor_zero: bool) -> Option<FourPlFit> {
    fit_by_dose(
        &crate::admin::ByDose::of(points.iter().filter(|(x, y)| *x >= 0.0 && y.is_finite()).copied()),
        floor_zero,
    )
}

/// [`fit`] of measurements already summarised by dose.
pub fn fit_by_dose(data: &crate::admin::ByDose, floor_zero: bool) -> Option<FourPlFit> {
    let dosed: Vec<f64> = data.doses.iter().copied().filter(|&x| x > 0.0).collect();
    let wells: f64 = data.doses.iter().zip(&data.counts).filter(|(x, _)| **x > 0.0).map(|(_, n)| n).sum();
    if wells < 5.0 {
        return None;
    }
    let f = crate::admin::fit_4pl(data, floor_zero).ok()?;
    // A curve is shown only if it describes the data: converged, its IC50 near the doses given, a
    // plausible slope. Scattered points with no dose trend fit to degenerate curves otherwise.
    let (lo, hi) = dosed.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let credible = f.fit.status == FitStatus::Converged
        && (lo / 10.0..=hi * 10.0).contains(&f.curve.ic50)
        && (0.2..=10.0).contains(&f.curve.hill);
    credible.then_some(f)
}

/// A `(line, compound)` of the measurements database with its count.
pub fn result_pairs(store: &Store) -> Result<Vec<(String, String, i64)>> {
    let mut st = store.results.prepare_cached(
        "SELECT cell_line, compound, sum(rows) FROM dose_stats WHERE compound != '' AND dose_uM >= 0 \
         GROUP BY cell_line, compound ORDER BY cell_line, compound",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaigns_wells_come_off_an_index_in_order_without_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Every query of the wells, whole or in halves, walks the index and sorts nothing.
        for sql in [ALL_WELLS, WELLS_WITHOUT_ITERATION, WELLS_BEFORE, WELLS_FROM, WELLS_SPAN] {
            let plan: Vec<String> = store
                .results
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(["c", "3"].iter().take(sql.matches("?2").count() + 1)), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(plan.iter().any(|p| p.contains("measurements_campaign_order")), "{sql}: {plan:?}");
            assert!(
                !plan.iter().any(|p| p.contains("TEMP B-TREE") || (p.starts_with("SCAN") && p != "SCAN CONSTANT ROW")),
                "{sql}: {plan:?}"
            );
        }
        // And the order is iteration, then as written, whatever the wells are called.
        for (id, it, well) in [(1, 2, "A1"), (2, 1, "B1"), (3, 2, "A0"), (4, 1, "A1")] {
            store
                .results
                .execute(
                    "INSERT INTO measurements (id, plate_id, well_id, cell_line, campaign_id, iteration) VALUES (?1, 'P', ?2, 'L', 'c', ?3)",
                    rusqlite::params![id, format!("{well}-{it}"), it],
                )
                .unwrap();
        }
        let wells: Vec<String> = store
            .results
            .prepare(ALL_WELLS)
            .unwrap()
            .query_map(["c"], |r| r.get(8))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(wells, ["B1-1", "A1-1", "A1-2", "A0-2"]);
    }

    /// A campaign `c` whose wells span iterations none, 1, 2 and 5, written out of order and between
    /// another campaign's; each well is named after its iteration and order of writing.
    fn spread_campaign() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, status, created_at) VALUES ('c', 'dose_finding', 'running', '2026-01-01')",
                [],
            )
            .unwrap();
        let wells: [(&str, Option<i64>); 12] = [
            ("c", Some(5)),
            ("c", None),
            ("other", Some(1)),
            ("c", Some(1)),
            ("c", Some(2)),
            ("c", Some(1)),
            ("other", None),
            ("c", None),
            ("c", Some(5)),
            ("c", Some(1)),
            ("c", Some(5)),
            ("c", Some(5)),
        ];
        for (k, (campaign, it)) in wells.into_iter().enumerate() {
            store
                .results
                .execute(
                    "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, campaign_id, iteration) \
                     VALUES ('P', ?1, 'L', 'tbhp', ?2, ?3, ?4)",
                    rusqlite::params![format!("{}-{k}", it.unwrap_or(0)), k as f64, campaign, it],
                )
                .unwrap();
        }
        (dir, store)
    }

    fn spare(dir: &std::path::Path) -> Connection {
        cellos_store::db::open_read_only(dir, cellos_store::db::Db::ExperimentalResults).unwrap()
    }

    fn well_names(c: &Campaign) -> Vec<&str> {
        c.measurements.iter().map(|m| &*m.well).collect()
    }

    #[test]
    fn wells_read_in_two_halves_are_the_wells_read_whole() {
        let (dir, store) = spread_campaign();
        let mut spare = spare(dir.path());
        let whole = campaign(&store, "c").unwrap();
        assert_eq!(well_names(&whole), ["0-1", "0-7", "1-3", "1-5", "1-9", "2-4", "5-0", "5-8", "5-10", "5-11"]);
        let halves = campaign_with(&store, Some(&mut spare), "c").unwrap();
        assert_eq!(halves.measurements, whole.measurements);
        // One iteration only (all of it in the later half), none, and no campaign at all.
        store.results.execute("UPDATE measurements SET iteration = 3 WHERE iteration IS NOT NULL", []).unwrap();
        let whole = campaign(&store, "c").unwrap();
        assert_eq!(campaign_with(&store, Some(&mut spare), "c").unwrap().measurements, whole.measurements);
        store.results.execute("UPDATE measurements SET iteration = NULL", []).unwrap();
        let whole = campaign(&store, "c").unwrap();
        assert_eq!(well_names(&whole).len(), 10);
        assert_eq!(campaign_with(&store, Some(&mut spare), "c").unwrap().measurements, whole.measurements);
        assert!(matches!(campaign_with(&store, Some(&mut spare), "nope"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn halves_of_two_snapshots_are_never_joined() {
        let (dir, store) = spread_campaign();
        let mut spare = spare(dir.path());
        let before = campaign(&store, "c").unwrap();
        // Another process commits wells to both halves between the two read transactions' first reads:
        // the page shows the first snapshot whole, without a well of the second.
        let writer = Store::open(dir.path()).unwrap();
        let read = campaign_reading(&store, Some(&mut spare), "c", || {
            writer
                .results
                .execute_batch(
                    "INSERT INTO measurements (plate_id, well_id, cell_line, campaign_id, iteration) VALUES \
                     ('P', 'late-1', 'L', 'c', 1), ('P', 'late-5', 'L', 'c', 5)",
                )
                .unwrap();
        })
        .unwrap();
        assert_eq!(read.measurements, before.measurements);
        // The next read sees the new wells, each in its iteration.
        let after = campaign_with(&store, Some(&mut spare), "c").unwrap();
        assert_eq!(after.measurements.len(), before.measurements.len() + 2);
        assert_eq!(well_names(&after)[5], "late-1");
        assert_eq!(well_names(&after).last(), Some(&"late-5"));
        assert_eq!(after.measurements, campaign(&store, "c").unwrap().measurements);
    }
}
