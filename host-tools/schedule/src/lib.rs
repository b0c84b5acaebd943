//! Constraint-based scheduling of lab tasks on shared resources.
//!
//! A [`Problem`] is tasks (integer minutes, predecessors, resource demands, release and due times) and
//! resources (a capacity: 1 means no overlap, more means cumulative; optional availability windows).
//! [`solve`] minimises the makespan, or the weighted tardiness ([`Objective`]), with the `pumpkin-solver`
//! constraint solver, which stays behind this
//! module's types: callers see [`Problem`] and [`Schedule`] only. [`check`] verifies any schedule
//! independently (precedence, windows, capacity minute by minute, units), and [`solve`] runs it on its own
//! result before returning it.
//!
//! Model: a start variable per task in `[release, horizon − duration]`; `start_j ≥ start_i + d_i` per
//! precedence; a cumulative constraint per resource, its unavailable time as fixed blocks of full
//! capacity; due times as `start ≤ due − duration` (hard) for the makespan objective, or as
//! `late ≥ start + duration − due`, `late ≥ 0`, minimising Σ weight · late, for weighted tardiness;
//! makespan = max of the ends. Under a time budget two searches run on two threads, the model with the
//! redundant order disjunctions and the one without (each wins on some instances), and the first to prove
//! its result stops the other; [`solve_within`] with a step budget ([`Budget`]) runs one search, so the
//! result depends on the input alone and not on the machine's load. After solving,
//! concrete units (`incubator_1` …) are assigned greedily in start order, which never fails: a task's
//! start sees at most `capacity − demand` units in use, because the cumulative constraint holds there.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pumpkin_solver::Solver;
use pumpkin_solver::conflict_resolvers::resolvers::ResolutionResolver;
use pumpkin_solver::core::DefaultBrancher;
use pumpkin_solver::core::constraints::NegatableConstraint;
use pumpkin_solver::core::optimisation::OptimisationDirection;
use pumpkin_solver::core::optimisation::linear_sat_unsat::LinearSatUnsat;
use pumpkin_solver::core::results::{OptimisationResult, ProblemSolution, SolutionReference};
use pumpkin_solver::core::termination::{TerminationCondition, TimeBudget};
use pumpkin_solver::core::variables::TransformableVariable;
use serde::{Deserialize, Serialize};

/// A resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Id.
    pub id: String,
    /// Units that can work at once.
    pub capacity: u32,
    /// When it can be used, `[start, end)` minutes; always when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<[u32; 2]>,
}

/// A task's need of a resource: a plain id (demand 1) or `{"id", "demand"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Need {
    /// One unit.
    One(String),
    /// Several units.
    Units {
        /// Resource id.
        id: String,
        /// Units needed at once.
        demand: u32,
    },
}

impl Need {
    fn id(&self) -> &str {
        match self {
            Need::One(id) | Need::Units { id, .. } => id,
        }
    }
    fn demand(&self) -> u32 {
        match self {
            Need::One(_) => 1,
            Need::Units { demand, .. } => *demand,
        }
    }
}

/// A task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Id.
    pub id: String,
    /// Minutes.
    pub duration_min: u32,
    /// Resources held for the whole task.
    #[serde(default)]
    pub resources: Vec<Need>,
    /// Tasks that must end before this one starts.
    #[serde(default)]
    pub predecessors: Vec<String>,
    /// Earliest start.
    #[serde(default)]
    pub release_min: u32,
    /// Latest end: a hard limit when minimising the makespan, the target whose overrun is penalised
    /// when minimising weighted tardiness.
    #[serde(default)]
    pub due_min: Option<u32>,
    /// Weight of each minute late (weighted tardiness only).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

fn is_one(w: &u32) -> bool {
    *w == 1
}

/// What the solver minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The latest end; due times are hard.
    #[default]
    Makespan,
    /// Σ weight × minutes past the due time; due times are soft.
    WeightedTardiness,
}

/// A scheduling problem (the JSON input of `cellos schedule solve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Resources.
    pub resources: Vec<Resource>,
    /// Tasks.
    pub tasks: Vec<Task>,
    /// Nothing ends after this, minutes (default one week).
    #[serde(default = "week")]
    pub horizon_min: u32,
    /// What to minimise (default `makespan`).
    #[serde(default)]
    pub objective: Objective,
}

fn week() -> u32 {
    7 * 24 * 60
}

/// A scheduled task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    /// Task id.
    pub id: String,
    /// Start, minutes.
    pub start_min: u32,
    /// End, minutes.
    pub end_min: u32,
    /// Units held, by resource.
    pub units: BTreeMap<String, Vec<String>>,
}

/// A solved schedule (the JSON output).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Latest end.
    pub makespan_min: u32,
    /// Proven optimal.
    pub optimal: bool,
    /// A proven lower bound of the makespan.
    pub bound_min: u32,
    /// What was minimised.
    pub objective: Objective,
    /// Σ weight × minutes past the due time of this schedule.
    pub weighted_tardiness: u64,
    /// A proven lower bound of the objective (equal to its value when optimal).
    pub objective_bound: u64,
    /// Solver time.
    pub solve_ms: u64,
    /// Tasks in input order.
    pub tasks: Vec<Placed>,
}

/// Why there is no schedule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The input contradicts itself or the resources.
    #[error("infeasible ({constraint}): {detail}")]
    Infeasible {
        /// Which constraint set.
        constraint: &'static str,
        /// What exactly.
        detail: String,
    },
    /// No schedule was found within the budget.
    #[error("no schedule found within {0}")]
    TimedOut(Budget),
    /// A schedule breaks a rule (from [`check`]).
    #[error("schedule invalid: {0}")]
    Invalid(String),
}

fn infeasible(constraint: &'static str, detail: String) -> ScheduleError {
    ScheduleError::Infeasible { constraint, detail }
}

/// A problem in indices, checked: each task's predecessors, its needs `(resource, demand)`, and its
/// earliest start from releases and precedence.
struct Indexed {
    preds: Vec<Vec<usize>>,
    needs: Vec<Vec<(usize, u32)>>,
    heads: Vec<u64>,
}

/// Checks the input and indexes it.
fn validate(p: &Problem) -> Result<Indexed, ScheduleError> {
    let mut res = HashMap::new();
    for (i, r) in p.resources.iter().enumerate() {
        if res.insert(r.id.as_str(), i).is_some() {
            return Err(infeasible("resources", format!("resource `{}` is declared twice", r.id)));
        }
        for w in &r.windows {
            if w[0] >= w[1] {
                return Err(infeasible("windows", format!("resource `{}` has an empty window {w:?}", r.id)));
            }
        }
    }
    let mut ids = HashMap::new();
    for (i, t) in p.tasks.iter().enumerate() {
        if ids.insert(t.id.as_str(), i).is_some() {
            return Err(infeasible("tasks", format!("task `{}` is declared twice", t.id)));
        }
    }
    let mut preds = Vec::new();
    let mut needs = Vec::new();
    for t in &p.tasks {
        let mut pr = Vec::new();
        for q in &t.predecessors {
            pr.push(
                *ids.get(q.as_str()).ok_or_else(|| {
                    infeasible("predecessors", format!("task `{}` waits for unknown task `{q}`", t.id))
                })?,
            );
        }
        preds.push(pr);
        let mut ns = Vec::new();
        for n in &t.resources {
            let r = *res.get(n.id()).ok_or_else(|| {
                infeasible("resources", format!("task `{}` needs unknown resource `{}`", t.id, n.id()))
            })?;
            let cap = p.resources[r].capacity;
            if n.demand() > cap {
                return Err(infeasible(
                    "capacity",
                    format!("task `{}` needs {} of `{}`, which has {cap}", t.id, n.demand(), n.id()),
                ));
            }
            ns.push((r, n.demand()));
        }
        needs.push(ns);
        let earliest_end = u64::from(t.release_min) + u64::from(t.duration_min);
        if earliest_end > u64::from(p.horizon_min) {
            return Err(infeasible(
                "horizon",
                format!("task `{}` cannot end before the horizon {}", t.id, p.horizon_min),
            ));
        }
        if let Some(due) = t.due_min
            && p.objective == Objective::Makespan
            && earliest_end > u64::from(due)
        {
            return Err(infeasible(
                "due",
                format!("task `{}` released at {} cannot end by {due}", t.id, t.release_min),
            ));
        }
    }
    if p.objective == Objective::WeightedTardiness {
        let weights: u64 = p.tasks.iter().filter(|t| t.due_min.is_some()).map(|t| u64::from(t.weight)).sum();
        if weights * u64::from(p.horizon_min) > i32::MAX as u64 {
            return Err(infeasible(
                "objective",
                format!("weights ({weights} in all) × horizon ({}) exceed the solver's integer range", p.horizon_min),
            ));
        }
    }
    // Cycles (and the critical path) by Kahn's algorithm.
    let heads = earliest_starts(p, &preds)
        .ok_or_else(|| infeasible("predecessors", "the predecessors form a cycle".to_string()))?;
    for (i, t) in p.tasks.iter().enumerate() {
        let end = heads[i] + u64::from(t.duration_min);
        if end > u64::from(p.horizon_min) || hard_due(p, t).is_some_and(|d| end > u64::from(d)) {
            return Err(infeasible(
                "predecessors",
                format!("task `{}` cannot end before {end} after its predecessors", t.id),
            ));
        }
    }
    Ok(Indexed { preds, needs, heads })
}

/// A task's due time if it is a hard limit (makespan objective).
fn hard_due(p: &Problem, t: &Task) -> Option<u32> {
    t.due_min.filter(|_| p.objective == Objective::Makespan)
}

/// The latest end, for tasks starting at `start`.
fn makespan(p: &Problem, start: &[u32]) -> u32 {
    start.iter().zip(&p.tasks).map(|(s, t)| s + t.duration_min).max().unwrap_or(0)
}

/// The value of the problem's objective for tasks starting at `start`.
fn objective_value(p: &Problem, start: &[u32]) -> u64 {
    match p.objective {
        Objective::Makespan => u64::from(makespan(p, start)),
        Objective::WeightedTardiness => weighted_tardiness(p, start),
    }
}

/// Σ weight × minutes past the due time, for tasks starting at `start`.
pub fn weighted_tardiness(p: &Problem, start: &[u32]) -> u64 {
    p.tasks
        .iter()
        .zip(start)
        .filter_map(|(t, s)| t.due_min.map(|d| u64::from(t.weight) * u64::from((s + t.duration_min).saturating_sub(d))))
        .sum()
}

/// Earliest starts from releases and precedence; `None` on a cycle.
fn earliest_starts(p: &Problem, preds: &[Vec<usize>]) -> Option<Vec<u64>> {
    let n = p.tasks.len();
    let mut indegree: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succ = vec![Vec::new(); n];
    for (j, pr) in preds.iter().enumerate() {
        for &i in pr {
            succ[i].push(j);
        }
    }
    let mut start: Vec<u64> = p.tasks.iter().map(|t| u64::from(t.release_min)).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = ready.pop() {
        seen += 1;
        let end = start[i] + u64::from(p.tasks[i].duration_min);
        for &j in &succ[i] {
            start[j] = start[j].max(end);
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(j);
            }
        }
    }
    (seen == n).then_some(start)
}

/// Unavailable intervals of a resource within the horizon.
fn blocked(r: &Resource, horizon: u32) -> Vec<(u32, u32)> {
    if r.windows.is_empty() {
        return Vec::new();
    }
    let mut w: Vec<[u32; 2]> = r.windows.clone();
    w.sort();
    let mut out = Vec::new();
    let mut t = 0;
    for [a, b] in w {
        if a > t {
            out.push((t, a.min(horizon)));
        }
        t = t.max(b);
    }
    if t < horizon {
        out.push((t, horizon));
    }
    out.retain(|(a, b)| a < b);
    out
}

/// A lower bound of the makespan: the critical path, and each resource's work over its capacity.
fn lower_bound(p: &Problem, ix: &Indexed) -> u32 {
    let path = p.tasks.iter().zip(&ix.heads).map(|(t, s)| s + u64::from(t.duration_min)).max().unwrap_or(0);
    let mut energy = vec![0u64; p.resources.len()];
    for (t, ns) in p.tasks.iter().zip(&ix.needs) {
        for &(r, d) in ns {
            energy[r] += u64::from(d) * u64::from(t.duration_min);
        }
    }
    let work =
        energy.iter().zip(&p.resources).map(|(e, r)| e.div_ceil(u64::from(r.capacity.max(1)))).max().unwrap_or(0);
    u32::try_from(path.max(work)).unwrap_or(u32::MAX)
}

/// A feasible schedule by serial list scheduling (tasks in precedence order, earliest first; each at
/// the earliest start where every resource has room for its whole duration): the solver's first upper
/// bound, and the answer if the solver finds nothing better in time. `None` if a task does not fit
/// before the horizon or its due time.
fn greedy(p: &Problem, ix: &Indexed) -> Option<Vec<u32>> {
    let n = p.tasks.len();
    let Indexed { preds, needs, heads } = ix;
    // Usage intervals per resource: (start, end, demand); unavailable time holds full capacity.
    let mut usage: Vec<Vec<(u32, u32, u32)>> = p
        .resources
        .iter()
        .map(|r| blocked(r, p.horizon_min).into_iter().map(|(a, b)| (a, b, r.capacity)).collect())
        .collect();
    let mut start = vec![u32::MAX; n];
    let mut done = vec![false; n];
    for _ in 0..n {
        let i = (0..n).filter(|&i| !done[i] && preds[i].iter().all(|&q| done[q])).min_by_key(|&i| (heads[i], i))?;
        let t = &p.tasks[i];
        let ready = preds[i].iter().map(|&q| start[q] + p.tasks[q].duration_min).max().unwrap_or(0).max(t.release_min);
        let fits = |s: u32| {
            needs[i].iter().all(|&(r, d)| {
                let e = s + t.duration_min;
                // The load only rises at interval starts: check s and every start inside [s, e).
                let mut points: Vec<u32> = usage[r].iter().map(|u| u.0).filter(|&a| a > s && a < e).collect();
                points.push(s);
                points.iter().all(|&x| {
                    usage[r].iter().filter(|u| u.0 <= x && x < u.1).map(|u| u.2).sum::<u32>() + d
                        <= p.resources[r].capacity
                })
            })
        };
        let mut candidates: Vec<u32> =
            needs[i].iter().flat_map(|&(r, _)| usage[r].iter().map(|u| u.1)).filter(|&e| e > ready).collect();
        candidates.push(ready);
        candidates.sort_unstable();
        let s = candidates.into_iter().find(|&c| t.duration_min == 0 || fits(c))?;
        let end = s + t.duration_min;
        if end > p.horizon_min || hard_due(p, t).is_some_and(|d| end > d) {
            return None;
        }
        for &(r, d) in &needs[i] {
            if t.duration_min > 0 {
                usage[r].push((s, end, d));
            }
        }
        start[i] = s;
        done[i] = true;
    }
    Some(start)
}

/// How much search the solver may do: wall-clock time and, optionally, search steps (decisions and
/// conflicts). A step budget makes the result a function of the input alone, whatever the machine's
/// speed or load; the time still caps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock limit.
    pub time: Duration,
    /// Search-step limit.
    pub steps: Option<u64>,
}

impl Budget {
    /// A time limit alone.
    pub fn time(limit: Duration) -> Budget {
        Budget { time: limit, steps: None }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.steps {
            Some(n) => write!(f, "{n} search steps or {:?}", self.time),
            None => write!(f, "{:?}", self.time),
        }
    }
}

/// The solver's termination: the time left or the steps, whichever ends first, or a peer search of the
/// portfolio that has proven its result.
struct Stop<'a> {
    time: TimeBudget,
    steps_left: Option<u64>,
    peer: Option<&'a AtomicBool>,
}

impl TerminationCondition for Stop<'_> {
    fn should_stop(&mut self) -> bool {
        if self.peer.is_some_and(|done| done.load(Ordering::Relaxed)) {
            return true;
        }
        if let Some(n) = &mut self.steps_left {
            if *n == 0 {
                return true;
            }
            *n -= 1;
        }
        self.time.should_stop()
    }
}

/// Solves for the least makespan within `limit`.
pub fn solve(p: &Problem, limit: Duration) -> Result<Schedule, ScheduleError> {
    solve_within(p, Budget::time(limit))
}

/// Solves for the least makespan within a [`Budget`].
pub fn solve_within(p: &Problem, budget: Budget) -> Result<Schedule, ScheduleError> {
    let limit = budget.time;
    let started = Instant::now();
    let ix = validate(p)?;
    let needs = &ix.needs;
    let horizon = i32::try_from(p.horizon_min).map_err(|_| infeasible("horizon", "the horizon is too large".into()))?;
    let lower = lower_bound(p, &ix);
    let tardy = p.objective == Objective::WeightedTardiness;
    let value = |start_of: &[u32]| objective_value(p, start_of);
    // A lower bound of the objective: the makespan bound, or for weighted tardiness each task's lateness
    // at its earliest end.
    let earliest: Vec<u32> = ix.heads.iter().map(|&h| h as u32).collect();
    let objective_lower = if tardy { weighted_tardiness(p, &earliest) } else { u64::from(lower) };
    // Every result leaves through here: units assigned, optimality by proof or by meeting the bound,
    // and the independent check.
    let finish = |start_of: Vec<u32>, proven: bool| {
        let span = makespan(p, &start_of);
        let v = value(&start_of);
        let optimal = proven || v <= objective_lower;
        let schedule = Schedule {
            makespan_min: span,
            optimal,
            bound_min: if optimal && !tardy { span } else { lower.min(span) },
            objective: p.objective,
            weighted_tardiness: weighted_tardiness(p, &start_of),
            objective_bound: if optimal { v } else { objective_lower.min(v) },
            solve_ms: started.elapsed().as_millis() as u64,
            tasks: assign_units(p, needs, &start_of),
        };
        check(p, &schedule).map_err(|v| ScheduleError::Invalid(v.0))?;
        Ok(schedule)
    };
    let first = greedy(p, &ix);
    let upper_value = first.as_deref().map(value);
    if let Some(g) = &first
        && upper_value.is_some_and(|u| u <= objective_lower)
    {
        // The list schedule meets the lower bound: optimal without search.
        return finish(g.clone(), true);
    }
    // The list schedule's makespan bounds the search when the makespan is minimised.
    let upper = match (&first, tardy) {
        (Some(_), false) => upper_value.map_or(p.horizon_min, |u| u as u32),
        _ => p.horizon_min,
    };
    let bounds = Bounds { upper, upper_value, objective_lower, horizon };
    // The searches stop a little early (a twentieth of the limit, at most 250 ms): ending the threads,
    // assigning units and checking the result take that, and the caller's limit covers all of it.
    let search_until = limit.saturating_sub((limit / 20).min(Duration::from_millis(250)));
    let stop = |peer| Stop {
        time: TimeBudget::starting_now(search_until.saturating_sub(started.elapsed())),
        steps_left: budget.steps,
        peer,
    };
    let found: Vec<Found> = if budget.steps.is_some() {
        // A step budget asks for a result that depends on the input alone: one search, one thread.
        vec![search(p, &ix, &bounds, true, stop(None))]
    } else {
        // A portfolio of the two models on two threads (the order disjunctions help most instances and
        // slow the proof of some); the first to prove its result stops the other.
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let handles: Vec<_> = [true, false]
                .into_iter()
                .map(|disjunctions| {
                    let (done, stop, ix, bounds) = (&done, &stop, &ix, &bounds);
                    scope.spawn(move || {
                        let f = search(p, ix, bounds, disjunctions, stop(Some(done)));
                        if f.proven() {
                            done.store(true, Ordering::Relaxed);
                        }
                        f
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        })
    };
    let mut best: Option<(Vec<u32>, bool)> = None;
    let mut nothing_better = false;
    for f in found {
        match f {
            Found::Schedule(start_of, proven) => {
                let better = match &best {
                    None => true,
                    Some((b, b_proven)) => !b_proven && (proven || value(&start_of) < value(b)),
                };
                if better {
                    best = Some((start_of, proven));
                }
            }
            Found::NothingBetter => nothing_better = true,
            Found::Unknown => {}
        }
    }
    let (start_of, optimal) = match (best, first) {
        (Some((s, true)), _) => (s, true),
        // The list schedule is feasible, so "no schedule better than its value" proves it optimal.
        (_, Some(g)) if nothing_better => (g, true),
        (_, None) if nothing_better => {
            return Err(infeasible(
                "capacity",
                "no start times satisfy precedence, capacity, windows and due times together".into(),
            ));
        }
        (Some((s, false)), _) => (s, false),
        (None, Some(g)) => (g, false),
        (None, None) => return Err(ScheduleError::TimedOut(budget)),
    };
    finish(start_of, optimal)
}

/// Assigns concrete units in start order: each task takes the lowest-numbered free units.
fn assign_units(p: &Problem, needs: &[Vec<(usize, u32)>], start: &[u32]) -> Vec<Placed> {
    let mut order: Vec<usize> = (0..p.tasks.len()).collect();
    order.sort_by_key(|&i| (start[i], i));
    // busy_until[resource][unit]
    let mut busy: Vec<Vec<u32>> = p.resources.iter().map(|r| vec![0; r.capacity as usize]).collect();
    let mut units: Vec<BTreeMap<String, Vec<String>>> = vec![BTreeMap::new(); p.tasks.len()];
    for i in order {
        let t = &p.tasks[i];
        let end = start[i] + t.duration_min;
        for &(r, d) in &needs[i] {
            let mut got = Vec::new();
            for (u, until) in busy[r].iter_mut().enumerate() {
                if got.len() == d as usize {
                    break;
                }
                if *until <= start[i] || t.duration_min == 0 {
                    if t.duration_min > 0 {
                        *until = end;
                    }
                    got.push(format!("{}_{}", p.resources[r].id, u + 1));
                }
            }
            units[i].entry(p.resources[r].id.clone()).or_default().extend(got);
        }
    }
    p.tasks
        .iter()
        .zip(start)
        .zip(units)
        .map(|((t, &s), u)| Placed { id: t.id.clone(), start_min: s, end_min: s + t.duration_min, units: u })
        .collect()
}

/// Verifies a schedule against its problem, independently of the solver: every task placed once with
/// its duration, releases, due times, the horizon, precedence, windows, capacity minute by minute, and
/// units (the right number, of the right resource, never two tasks on one unit at once).
pub fn check(p: &Problem, s: &Schedule) -> Result<(), Violation> {
    check_text(p, s).map_err(Violation)
}

/// A way a schedule breaks its problem, said in words naming the task and the constraint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

fn check_text(p: &Problem, s: &Schedule) -> Result<(), String> {
    if s.tasks.len() != p.tasks.len() {
        return Err(format!("{} tasks placed, {} given", s.tasks.len(), p.tasks.len()));
    }
    let at: HashMap<&str, &Placed> = s.tasks.iter().map(|x| (x.id.as_str(), x)).collect();
    for t in &p.tasks {
        let x = at.get(t.id.as_str()).ok_or_else(|| format!("task `{}` is not placed", t.id))?;
        if x.end_min != x.start_min + t.duration_min {
            return Err(format!("task `{}` lasts {} min, not {}", t.id, x.end_min - x.start_min, t.duration_min));
        }
        if x.start_min < t.release_min {
            return Err(format!("task `{}` starts at {} before its release {}", t.id, x.start_min, t.release_min));
        }
        if hard_due(p, t).is_some_and(|d| x.end_min > d) || x.end_min > p.horizon_min {
            return Err(format!("task `{}` ends at {}, too late", t.id, x.end_min));
        }
        for q in &t.predecessors {
            let y = at.get(q.as_str()).ok_or_else(|| format!("unknown predecessor `{q}`"))?;
            if y.end_min > x.start_min {
                return Err(format!("task `{}` starts at {} before `{q}` ends at {}", t.id, x.start_min, y.end_min));
            }
        }
        for n in &t.resources {
            let got = x.units.get(n.id()).map_or(0, Vec::len);
            if got != n.demand() as usize {
                return Err(format!("task `{}` holds {got} units of `{}`, needs {}", t.id, n.id(), n.demand()));
            }
        }
    }
    if s.makespan_min != s.tasks.iter().map(|x| x.end_min).max().unwrap_or(0) {
        return Err("the makespan is not the latest end".into());
    }
    let starts: Vec<u32> = p.tasks.iter().map(|t| at[t.id.as_str()].start_min).collect();
    if s.weighted_tardiness != weighted_tardiness(p, &starts) {
        return Err(format!(
            "the weighted tardiness is {}, not {}",
            weighted_tardiness(p, &starts),
            s.weighted_tardiness
        ));
    }
    for r in &p.resources {
        // Events: +demand at start, −demand at end; ends before starts at the same minute.
        let mut events: Vec<(u32, i64)> = Vec::new();
        let mut by_unit: HashMap<&str, Vec<(u32, u32, &str)>> = HashMap::new();
        for t in &p.tasks {
            let x = at[t.id.as_str()];
            for n in t.resources.iter().filter(|n| n.id() == r.id) {
                if t.duration_min == 0 {
                    continue;
                }
                events.push((x.start_min, i64::from(n.demand())));
                events.push((x.end_min, -i64::from(n.demand())));
                let inside = r.windows.is_empty() || r.windows.iter().any(|w| w[0] <= x.start_min && x.end_min <= w[1]);
                if !inside {
                    return Err(format!("task `{}` uses `{}` outside its windows", t.id, r.id));
                }
            }
            for u in x.units.get(&r.id).into_iter().flatten() {
                if t.duration_min > 0 {
                    by_unit.entry(u.as_str()).or_default().push((x.start_min, x.end_min, t.id.as_str()));
                }
            }
        }
        events.sort_by_key(|&(t, d)| (t, d));
        let mut load = 0i64;
        for (t, d) in events {
            load += d;
            if load > i64::from(r.capacity) {
                return Err(format!("`{}` holds {load} > {} at minute {t}", r.id, r.capacity));
            }
        }
        for (unit, mut spans) in by_unit {
            let number: Option<u32> = unit.strip_prefix(&format!("{}_", r.id)).and_then(|n| n.parse().ok());
            if !number.is_some_and(|n| (1..=r.capacity).contains(&n)) {
                return Err(format!("unit `{unit}` is not one of `{}`", r.id));
            }
            spans.sort();
            for w in spans.windows(2) {
                if w[1].0 < w[0].1 {
                    return Err(format!("unit `{unit}` is booked by `{}` and `{}` at once", w[0].2, w[1].2));
                }
            }
        }
    }
    Ok(())
}

/// The schedule as a table with a bar per task, `width` characters for the makespan.
pub fn gantt(s: &Schedule, width: usize) -> String {
    let span = s.makespan_min.max(1) as usize;
    let name = s.tasks.iter().map(|t| t.id.len()).max().unwrap_or(4).max(4);
    let proven = if s.optimal { "optimal" } else { "not proven optimal" };
    let head = match s.objective {
        Objective::Makespan => format!("makespan {} min ({proven}), bound {} min", s.makespan_min, s.bound_min),
        Objective::WeightedTardiness => format!(
            "weighted tardiness {} ({proven}), bound {}; makespan {} min",
            s.weighted_tardiness, s.objective_bound, s.makespan_min
        ),
    };
    let mut out = format!("{head}, {} ms\n{:<name$} {:>6} {:>6}  plan\n", s.solve_ms, "task", "start", "end");
    for t in &s.tasks {
        let a = t.start_min as usize * width / span;
        let b = (t.end_min as usize * width).div_ceil(span).max(a + 1);
        let units: Vec<String> = t.units.values().flatten().cloned().collect();
        out += &format!(
            "{:<name$} {:>6} {:>6}  {}{}{}  {}\n",
            t.id,
            t.start_min,
            t.end_min,
            " ".repeat(a),
            "█".repeat(b - a),
            " ".repeat(width.saturating_sub(b)),
            units.join(" ")
        );
    }
    out
}

/// What one search found.
enum Found {
    /// A schedule; `true` when it is proven optimal (by the search, or by meeting the lower bound).
    Schedule(Vec<u32>, bool),
    /// Proof that no schedule is at or under the list schedule's value (nothing at all without one).
    NothingBetter,
    /// Nothing within the budget.
    Unknown,
}

impl Found {
    fn proven(&self) -> bool {
        matches!(self, Found::Schedule(_, true) | Found::NothingBetter)
    }
}

/// What a search starts from: the list schedule's makespan and objective value, the objective's lower
/// bound, the horizon.
struct Bounds {
    upper: u32,
    upper_value: Option<u64>,
    objective_lower: u64,
    horizon: i32,
}

/// One search: builds the model (with or without the redundant order disjunctions) and optimises.
fn search(p: &Problem, ix: &Indexed, b: &Bounds, disjunctions: bool, mut stop: Stop) -> Found {
    let (preds, needs) = (&ix.preds, &ix.needs);
    let mut solver = Solver::default();
    let tag = solver.new_constraint_tag();
    let starts: Vec<_> = p
        .tasks
        .iter()
        .map(|t| {
            let latest = hard_due(p, t).unwrap_or(p.horizon_min).min(b.upper) - t.duration_min;
            solver.new_bounded_integer(t.release_min as i32, latest as i32)
        })
        .collect();
    // `a` ends before `b` starts.
    let before = |a: usize, b: usize| {
        pumpkin_solver::less_than_or_equals(
            vec![starts[a].scaled(1), starts[b].scaled(-1)],
            -(p.tasks[a].duration_min as i32),
            tag,
        )
    };
    for (j, pr) in preds.iter().enumerate() {
        for &i in pr {
            solver.add_constraint(before(i, j)).post();
        }
    }
    for (r, res) in p.resources.iter().enumerate() {
        let mut vars = Vec::new();
        let mut durations = Vec::new();
        let mut demands = Vec::new();
        for (t, ns) in needs.iter().enumerate() {
            for &(rr, d) in ns {
                if rr == r && p.tasks[t].duration_min > 0 {
                    vars.push(starts[t].scaled(1));
                    durations.push(p.tasks[t].duration_min as i32);
                    demands.push(d as i32);
                }
            }
        }
        for (a, b) in blocked(res, p.horizon_min) {
            let v = solver.new_bounded_integer(a as i32, a as i32);
            vars.push(v.scaled(1));
            durations.push((b - a) as i32);
            demands.push(res.capacity as i32);
        }
        if !vars.is_empty() {
            solver
                .add_constraint(pumpkin_solver::cumulative(vars, durations, demands, res.capacity as i32, tag))
                .post();
        }
    }
    // Redundant disjunctions for pairs that can never overlap (their demands on one resource exceed its
    // capacity): an order literal each way, one of them true. Time-tabling alone propagates these pairs
    // only once their start domains are narrow; the literals let the solver branch and learn on orders.
    if disjunctions {
        for i in 0..p.tasks.len() {
            for j in i + 1..p.tasks.len() {
                let clash = needs[i]
                    .iter()
                    .any(|&(r, d)| needs[j].iter().any(|&(q, e)| q == r && d + e > p.resources[r].capacity));
                if clash && p.tasks[i].duration_min > 0 && p.tasks[j].duration_min > 0 {
                    let (ij, ji) = (solver.new_literal(), solver.new_literal());
                    before(i, j).reify(&mut solver, ij);
                    before(j, i).reify(&mut solver, ji);
                    solver.add_clause([ij.get_true_predicate(), ji.get_true_predicate()], tag);
                }
            }
        }
    }
    let makespan = solver.new_bounded_integer(0, (b.upper as i32).min(b.horizon));
    let ends: Vec<_> = starts.iter().zip(&p.tasks).map(|(s, t)| s.offset(t.duration_min as i32)).collect();
    if !ends.is_empty() {
        solver.add_constraint(pumpkin_solver::maximum(ends, makespan, tag)).post();
    }
    // Weighted tardiness: late_i ≥ end_i − due_i, late_i ≥ 0, total = Σ weight_i · late_i (the range was
    // checked in `validate`).
    let objective = if p.objective == Objective::WeightedTardiness {
        let total = solver.new_bounded_integer(0, b.upper_value.map_or(i32::MAX, |u| u as i32));
        let mut terms = vec![total.scaled(-1)];
        for (t, s) in p.tasks.iter().zip(&starts) {
            if let Some(due) = t.due_min {
                let late = solver.new_bounded_integer(0, b.horizon);
                solver
                    .add_constraint(pumpkin_solver::less_than_or_equals(
                        vec![s.scaled(1), late.scaled(-1)],
                        due as i32 - t.duration_min as i32,
                        tag,
                    ))
                    .post();
                terms.push(late.scaled(t.weight as i32));
            }
        }
        solver.add_constraint(pumpkin_solver::equals(terms, 0, tag)).post();
        total
    } else {
        makespan
    };
    // The solver's default search (activity-based, solution-guided) did better here than set-times
    // branching: 698 vs 761 min on the 50-task benchmark instance (measured before the order
    // disjunctions were added).
    let mut brancher = solver.default_brancher();
    let mut resolver = ResolutionResolver::default();
    let read = |s: SolutionReference| starts.iter().map(|v| s.get_integer_value(*v) as u32).collect::<Vec<u32>>();
    // Stop as soon as a solution meets the lower bound: it is optimal, nothing is left to prove.
    let callback =
        move |_: &Solver, s: SolutionReference, _: &DefaultBrancher, _: &ResolutionResolver| -> ControlFlow<()> {
            if s.get_integer_value(objective) as i64 <= b.objective_lower as i64 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
    let result = solver.optimise(
        &mut brancher,
        &mut stop,
        &mut resolver,
        LinearSatUnsat::new(OptimisationDirection::Minimise, objective, callback),
    );
    match result {
        OptimisationResult::Optimal(s) => Found::Schedule(read(s.as_reference()), true),
        OptimisationResult::Satisfiable(s) | OptimisationResult::Stopped(s, _) => {
            let start_of = read(s.as_reference());
            let at_bound = objective_value(p, &start_of) <= b.objective_lower;
            Found::Schedule(start_of, at_bound)
        }
        OptimisationResult::Unsatisfiable => Found::NothingBetter,
        OptimisationResult::Unknown => Found::Unknown,
    }
}
