//! Facility capacity planning: banking campaigns stacked day by day against incubator, biosafety-cabinet
//! (BSC) and staff capacity, start days shifted where allowed to remove overloads, and each day's
//! operations scheduled onto BSC and staff time with [`crate::schedule`].
//!
//! Each request runs the core's banking model (MODEL.md §5), seeded, so its daily work (thaw, passages,
//! feeds, freeze) and loads are the model's. Shifting is greedy in request order: each request takes the
//! smallest allowed shift that keeps every day within capacity given the requests placed before it; when
//! none does, the shift with the least overload, and the plan says which days stay over and why.

use std::time::Duration;

use cellos_core::banking::{BankingConfig, BankingRun, DayReport};
use cellos_core::model::GrowthConstants;
use cellos_core::params::builtin;
use serde::{Deserialize, Serialize};

use crate::schedule::{self, Need, Problem, Resource, Task};

/// The facility.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    /// Flasks the incubators hold.
    pub incubator_flasks: u32,
    /// BSC hours per day.
    pub bsc_hours_per_day: f64,
    /// Staff, full-time equivalents.
    #[serde(default = "one")]
    pub staff_fte: f64,
    /// Working hours per FTE per day.
    #[serde(default = "eight")]
    pub staff_hours_per_day: f64,
}

fn one() -> f64 {
    1.0
}
fn eight() -> f64 {
    8.0
}

/// A banking campaign to fit in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `MCB` or `WCB`.
    pub kind: String,
    /// Cell line.
    pub line: String,
    /// First day (0-based).
    pub start_day: u32,
    /// How many days later it may start.
    #[serde(default)]
    pub max_shift_days: u32,
}

impl PlanInput {
    /// How messages name request `i`: its line and stage (`U2OS MCB`), with its number in the file when
    /// another request has the same line and stage (`U2OS MCB (request 3)`).
    pub fn name(&self, i: usize) -> String {
        let r = &self.requests[i];
        let same = self.requests.iter().filter(|o| o.line == r.line && o.kind == r.kind).count();
        if same > 1 { format!("{} {} (request {})", r.line, r.kind, i + 1) } else { format!("{} {}", r.line, r.kind) }
    }
}

/// A plan file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// Days planned.
    pub days: u32,
    /// Seed of the banking model.
    #[serde(default = "seed")]
    pub seed: u64,
    /// The facility.
    pub facility: Facility,
    /// The requests.
    #[serde(rename = "request")]
    pub requests: Vec<Request>,
}

fn seed() -> u64 {
    1
}

/// One day's load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayLoad {
    /// Day (0-based).
    pub day: u32,
    /// Flasks in the incubators.
    pub flasks: u32,
    /// BSC hours.
    pub bsc_h: f64,
    /// Staff hours.
    pub staff_h: f64,
    /// Passages, feeds, thaws and freezes that day.
    pub operations: u32,
    /// Minutes the day's operations take on the BSC and staff, as scheduled (0 without operations).
    pub scheduled_min: u32,
}

/// A capacity broken on a day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Day.
    pub day: u32,
    /// `incubator`, `bsc` or `staff`.
    pub resource: String,
    /// Load.
    pub load: f64,
    /// Capacity.
    pub capacity: f64,
}

/// The plan before and after shifting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Per day, as requested.
    pub before: Vec<DayLoad>,
    /// Violations as requested.
    pub violations_before: Vec<Violation>,
    /// Start day of each request after shifting.
    pub start_days: Vec<u32>,
    /// Per day, after shifting, with scheduled minutes.
    pub after: Vec<DayLoad>,
    /// Violations that remain.
    pub violations_after: Vec<Violation>,
    /// Why each remaining violation could not be removed.
    pub remaining: Vec<String>,
    /// Peaks `[flasks, bsc_h, staff_h]` before and after.
    pub peaks_before: [f64; 3],
    /// Peaks after.
    pub peaks_after: [f64; 3],
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A request the model cannot run.
    #[error("{line} {kind} (request {}): {message}", index + 1)]
    Request {
        /// Index.
        index: usize,
        /// Kind.
        kind: String,
        /// Line.
        line: String,
        /// Why.
        message: String,
    },
}

/// The daily reports of one request (banking model, seeded).
fn simulate(r: &Request, index: usize, seed: u64) -> Result<Vec<DayReport>, PlanError> {
    let bad = |m: String| PlanError::Request { index, kind: r.kind.clone(), line: r.line.clone(), message: m };
    let config = match r.kind.to_ascii_uppercase().as_str() {
        "MCB" => BankingConfig::mcb(),
        "WCB" => BankingConfig::wcb(),
        other => return Err(bad(format!("kind `{other}` is MCB or WCB"))),
    };
    let line = builtin::cell_line(&r.line).map_err(|e| bad(e.to_string()))?;
    let mut run = BankingRun::new(line, config, GrowthConstants::LEGACY).map_err(|e| bad(format!("{e:?}")))?;
    let mut rng = cellos_core::rng::seeded(seed.wrapping_mul(7919).wrapping_add(index as u64));
    let mut days = Vec::new();
    while let Some(d) = run.step_day(&mut rng).map_err(|e| bad(format!("{e:?}")))? {
        days.push(d);
    }
    Ok(days)
}

fn stack(input: &PlanInput, runs: &[Vec<DayReport>], starts: &[u32]) -> Vec<DayLoad> {
    let mut days: Vec<DayLoad> = (0..input.days).map(|day| DayLoad { day, ..DayLoad::default() }).collect();
    for (run, &start) in runs.iter().zip(starts) {
        for d in run {
            let Some(load) = days.get_mut((start + u32::from(d.day) - 1) as usize) else { continue };
            load.flasks += u32::from(d.flasks);
            load.bsc_h += d.bsc_h;
            load.staff_h += d.staff_h;
            load.operations += operations(d).len() as u32;
        }
    }
    days
}

/// A day's load of each capacity, `(resource, load, capacity)`: incubator flasks, BSC hours, staff hours.
pub fn loads(f: &Facility, d: &DayLoad) -> [(&'static str, f64, f64); 3] {
    [
        ("incubator", f64::from(d.flasks), f64::from(f.incubator_flasks)),
        ("bsc", d.bsc_h, f.bsc_hours_per_day),
        ("staff", d.staff_h, f.staff_fte * f.staff_hours_per_day),
    ]
}

fn violations(f: &Facility, days: &[DayLoad]) -> Vec<Violation> {
    let mut out = Vec::new();
    for d in days {
        for (resource, load, capacity) in loads(f, d) {
            if load > capacity + 1e-9 {
                out.push(Violation { day: d.day, resource: resource.into(), load, capacity });
            }
        }
    }
    out
}

fn overload(f: &Facility, days: &[DayLoad]) -> f64 {
    violations(f, days).iter().map(|v| (v.load - v.capacity) / v.capacity.max(1e-9)).sum()
}

fn peaks(days: &[DayLoad]) -> [f64; 3] {
    days.iter().fold([0.0; 3], |p, d| [p[0].max(f64::from(d.flasks)), p[1].max(d.bsc_h), p[2].max(d.staff_h)])
}

/// A day's operations of one request: (name, BSC minutes, staff minutes), MODEL.md §5's loads.
fn operations(d: &DayReport) -> Vec<(&'static str, u32, u32)> {
    let mut ops = Vec::new();
    if d.day == 1 {
        ops.push(("thaw", 60, 60));
    }
    ops.extend(std::iter::repeat_n(("passage", 30, 45), usize::from(d.passages)));
    ops.extend(std::iter::repeat_n(("feed", 6, 9), usize::from(d.feeds)));
    if d.vials_frozen > 0 {
        ops.push(("freeze", 0, 30));
    }
    ops
}

/// The search allowed for one day's schedule.
pub const DAY_BUDGET: schedule::Budget = schedule::Budget { time: Duration::from_secs(10), steps: Some(50_000) };

/// Schedules one day's operations: each holds the BSC (one cabinet, open `bsc_hours_per_day`) and one
/// staff member for its cabinet time, then the staff member alone for the rest. Returns the minutes.
fn schedule_day(f: &Facility, ops: &[(usize, &'static str, u32, u32)]) -> Result<u32, String> {
    let staff = f.staff_fte.floor().max(1.0) as u32;
    let day = (f.staff_hours_per_day * 60.0).round() as u32;
    let bsc = (f.bsc_hours_per_day * 60.0).round() as u32;
    let mut tasks = Vec::new();
    for (k, (req, name, bsc_min, staff_min)) in ops.iter().enumerate() {
        let id = format!("r{req}-{name}-{k}");
        if *bsc_min > 0 {
            tasks.push(Task {
                id: id.clone(),
                duration_min: *bsc_min,
                resources: vec![Need::One("bsc".into()), Need::One("staff".into())],
                predecessors: vec![],
                release_min: 0,
                due_min: None,
                weight: 1,
            });
        }
        let rest = staff_min.saturating_sub(*bsc_min);
        if rest > 0 {
            tasks.push(Task {
                id: format!("{id}-bench"),
                duration_min: rest,
                resources: vec![Need::One("staff".into())],
                predecessors: if *bsc_min > 0 { vec![id] } else { vec![] },
                release_min: 0,
                due_min: None,
                weight: 1,
            });
        }
    }
    if tasks.is_empty() {
        return Ok(0);
    }
    let p = Problem {
        resources: vec![
            Resource { id: "bsc".into(), capacity: 1, windows: vec![[0, bsc.max(1)]] },
            Resource { id: "staff".into(), capacity: staff, windows: vec![] },
        ],
        tasks,
        horizon_min: day,
        objective: schedule::Objective::Makespan,
    };
    // A budget of search steps, not of time, so that a plan depends on its input alone and not on how
    // busy the machine is (the stress fixture's days need under 10,000; the time is only a cap).
    schedule::solve_within(&p, DAY_BUDGET).map(|s| s.makespan_min).map_err(|e| e.to_string())
}

/// Plans the requests.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let runs: Vec<Vec<DayReport>> =
        input.requests.iter().enumerate().map(|(i, r)| simulate(r, i, input.seed)).collect::<Result<_, _>>()?;
    let requested: Vec<u32> = input.requests.iter().map(|r| r.start_day).collect();
    let before = stack(input, &runs, &requested);
    let violations_before = violations(&input.facility, &before);
    // Greedy shifting in request order (earliest first).
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| (requested[i], i));
    let mut starts = requested.clone();
    let mut placed = vec![false; runs.len()];
    for &i in &order {
        placed[i] = true;
        let mut best = (f64::INFINITY, requested[i]);
        for shift in 0..=input.requests[i].max_shift_days {
            starts[i] = requested[i] + shift;
            let only: Vec<Vec<DayReport>> =
                runs.iter().enumerate().map(|(k, r)| if placed[k] { r.clone() } else { Vec::new() }).collect();
            let o = overload(&input.facility, &stack(input, &only, &starts));
            if o < best.0 - 1e-12 {
                best = (o, starts[i]);
            }
            if o == 0.0 {
                break;
            }
        }
        starts[i] = best.1;
    }
    let mut after = stack(input, &runs, &starts);
    let violations_after = violations(&input.facility, &after);
    // Each day's operations onto BSC and staff time.
    let mut remaining = Vec::new();
    for d in &mut after {
        let mut ops = Vec::new();
        for (i, (run, &start)) in runs.iter().zip(&starts).enumerate() {
            if let Some(r) = d.day.checked_sub(start).and_then(|k| run.get(k as usize)) {
                ops.extend(operations(r).into_iter().map(|(n, b, s)| (i, n, b, s)));
            }
        }
        match schedule_day(&input.facility, &ops) {
            Ok(m) => d.scheduled_min = m,
            Err(e) => {
                let names: Vec<String> = runs
                    .iter()
                    .zip(&starts)
                    .enumerate()
                    .filter(|(_, (run, start))| d.day.checked_sub(**start).is_some_and(|k| (k as usize) < run.len()))
                    .map(|(i, _)| input.name(i))
                    .collect();
                remaining.push(format!(
                    "day {}: the operations of {} do not fit `bsc` and `staff` time ({e})",
                    d.day,
                    names.join(", ")
                ))
            }
        }
    }
    for v in &violations_after {
        let unit = match v.resource.as_str() {
            "incubator" => "flasks",
            "bsc" => "BSC h",
            _ => "staff h",
        };
        let mut overlapping = Vec::new();
        let alone = runs.iter().zip(&starts).enumerate().find_map(|(i, (run, &start))| {
            let r = v.day.checked_sub(start).and_then(|k| run.get(k as usize))?;
            let own = match v.resource.as_str() {
                "incubator" => f64::from(r.flasks),
                "bsc" => r.bsc_h,
                _ => r.staff_h,
            };
            if own > 0.0 {
                overlapping.push(input.name(i));
            }
            (own > v.capacity + 1e-9)
                .then(|| format!("{} alone needs {own:.2} {unit} on its day {}", input.name(i), r.day))
        });
        remaining.push(format!(
            "day {}: {} {:.2} {unit} > {:.2}: {}",
            v.day,
            v.resource,
            v.load,
            v.capacity,
            alone.unwrap_or_else(|| format!(
                "no allowed shift of the requests on that day ({}) clears it",
                overlapping.join(", ")
            ))
        ));
    }
    Ok(Plan {
        peaks_before: peaks(&before),
        peaks_after: peaks(&after),
        before,
        violations_before,
        start_days: starts,
        after,
        violations_after,
        remaining,
    })
}

/// The plan as CSV, a row per day: loads before and after, capacity flags.
pub fn csv(plan: &Plan) -> String {
    let mut out = String::from(
        "day,flasks_before,bsc_h_before,staff_h_before,flasks_after,bsc_h_after,staff_h_after,operations_after,scheduled_min,over_after\n",
    );
    for (b, a) in plan.before.iter().zip(&plan.after) {
        let over: Vec<&str> =
            plan.violations_after.iter().filter(|v| v.day == a.day).map(|v| v.resource.as_str()).collect();
        out += &format!(
            "{},{},{:.2},{:.2},{},{:.2},{:.2},{},{},{}\n",
            a.day,
            b.flasks,
            b.bsc_h,
            b.staff_h,
            a.flasks,
            a.bsc_h,
            a.staff_h,
            a.operations,
            a.scheduled_min,
            over.join("+")
        );
    }
    out
}

/// A plan saved in `campaigns.db`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Row id.
    pub plan_id: i64,
    /// Name given when saving (the file's stem by default).
    pub name: String,
    /// When it was saved.
    pub created_at: String,
    /// The input.
    pub input: PlanInput,
    /// The plan.
    pub plan: Plan,
}

/// Saves a plan with its input in `campaigns.db`; returns its id.
pub fn save(store: &crate::store::Store, name: &str, input: &PlanInput, plan: &Plan) -> crate::Result<i64> {
    let text = |r: serde_json::Result<String>| r.map_err(|e| crate::StoreError::Invalid(format!("plan `{name}`: {e}")));
    store.campaigns.execute(
        "INSERT INTO facility_plans (name, input, plan, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            name,
            text(serde_json::to_string(input))?,
            text(serde_json::to_string(plan))?,
            crate::time::now()
        ],
    )?;
    Ok(store.campaigns.last_insert_rowid())
}

/// Saved plans, newest first, without their content: `(id, name, created_at)`.
pub fn saved_list(store: &crate::store::Store) -> crate::Result<Vec<(i64, String, String)>> {
    let mut st =
        store.campaigns.prepare("SELECT plan_id, name, created_at FROM facility_plans ORDER BY plan_id DESC")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One saved plan.
pub fn saved(store: &crate::store::Store, id: i64) -> crate::Result<SavedPlan> {
    let (name, created_at, input, plan): (String, String, String, String) = store
        .campaigns
        .query_row("SELECT name, created_at, input, plan FROM facility_plans WHERE plan_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => crate::StoreError::NotFound(format!("no saved facility plan {id}")),
            e => e.into(),
        })?;
    let bad = |e: serde_json::Error| crate::StoreError::Invalid(format!("saved facility plan {id}: {e}"));
    Ok(SavedPlan {
        plan_id: id,
        name,
        created_at,
        input: serde_json::from_str(&input).map_err(bad)?,
        plan: serde_json::from_str(&plan).map_err(bad)?,
    })
}
