//! The `cellos` command line: argument types and dispatch. `main` only parses and prints errors.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::admin;
use crate::error::{Result, StoreError};
use crate::kinds::Kind;
use crate::store::{Store, data_dir};

/// cellos: administer the lab's databases — import the legacy platform's data without loss, export and
/// verify it field by field, query parameters, cell lines, inventory, campaigns and results.
#[derive(Parser, Debug)]
#[command(name = "cellos", version, after_help = cellos_output::EXIT_CODES)]
pub struct Cli {
    /// Data directory holding the four databases (created if missing).
    #[arg(long, global = true, env = "CELLOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON (an array for lists, an object for show and summary commands) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import a source (one transaction: all or nothing; importing it again adds nothing).
    Import {
        /// What the source holds.
        kind: Kind,
        /// The file (or folder, for campaigns and legacy).
        source: PathBuf,
    },
    /// Write the database's content back in the source format.
    Export {
        /// What to export (not legacy).
        kind: Kind,
        /// The file (or folder, for campaigns) to write.
        target: PathBuf,
    },
    /// Compare every field of a source with the database; exit 1 and list the differences if any.
    Verify {
        /// What the source holds.
        kind: Kind,
        /// The file or folder.
        source: PathBuf,
    },
    /// Simulation parameters of cell lines.
    #[command(subcommand)]
    Params(ParamsCommand),
    /// Cell lines.
    #[command(subcommand)]
    Lines(LinesCommand),
    /// Vial inventory.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Campaigns.
    #[command(subcommand)]
    Campaigns(CampaignsCommand),
    /// Measurements.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// The databases themselves.
    #[command(subcommand)]
    Db(DbCommand),
    /// Pull a gateway's campaigns (rows, iterations, stage outputs, journal, instrument identities,
    /// measurements) into this data directory over its API, by natural key: a second sync adds
    /// nothing, an interrupted one goes on where it stopped (each campaign is merged whole or not at all).
    Sync {
        /// The gateway's API, e.g. `http://127.0.0.1:8470`, or `https://lab-gw:8470` for a gateway
        /// served with TLS.
        #[arg(long)]
        from: String,
        /// A token of the gateway (scope read).
        #[arg(long, env = "CELLOS_GATEWAY_TOKEN")]
        token: String,
        /// For HTTPS: the certificate (PEM) to trust, such as the gateway's self-signed
        /// `tls/cert.pem`; without it, only the certificate's own authority would be trusted, and there
        /// is none built in, so it is required.
        #[arg(long)]
        cacert: Option<PathBuf>,
    },
    /// Constraint scheduling of lab tasks on shared resources.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Facility capacity planning of banking campaigns.
    #[command(subcommand)]
    Facility(FacilityCommand),
    /// Serve a read-only web dashboard of the data directory: campaigns (trajectory, dose-response with
    /// fits, thresholds and chosen doses, distributions, raw data with CSV download, configuration; a
    /// running campaign's page follows its iterations), phase-0 fits, saved facility plans, cell lines,
    /// inventory and parameter versions. Runs until interrupted (Ctrl-C).
    Dashboard {
        /// Address to listen on. Only loopback addresses unless --allow-remote.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Allow an address reachable from other machines (the dashboard has no login: anyone who can
        /// reach it reads the lab's data).
        #[arg(long)]
        allow_remote: bool,
    },
}

impl Command {
    /// The command reads the data directory and writes nothing to it (so it works on a read-only one).
    pub fn only_reads(&self) -> bool {
        match self {
            Command::Import { .. } | Command::Schedule(_) | Command::Facility(_) => false,
            Command::Params(c) => !matches!(c, ParamsCommand::Set { .. }),
            Command::Inventory(c) => matches!(c, InventoryCommand::List { .. } | InventoryCommand::History { .. }),
            Command::Export { .. }
            | Command::Verify { .. }
            | Command::Lines(_)
            | Command::Campaigns(_)
            | Command::Results(_)
            | Command::Db(_)
            | Command::Dashboard { .. } => true,
            Command::Sync { .. } => false,
        }
    }
}

/// `sync`: every campaign of the gateway at `from`, merged by natural key; over HTTPS, the server must
/// present a certificate that `cacert` vouches for.
fn sync(store: &mut Store, from: &str, token: &str, cacert: Option<&Path>) -> Result<Value> {
    let agent = agent(from, cacert)?;
    let base = format!("{}/api/v1", from.trim_end_matches('/'));
    let get = |path: &str| -> Result<Value> {
        let url = format!("{base}{path}");
        let mut r = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .map_err(|e| StoreError::Remote(format!("{url}: {e}")))?;
        r.body_mut().read_json::<Value>().map_err(|e| StoreError::Remote(format!("{url}: {e}")))
    };
    let ids: Vec<String> =
        serde_json::from_value(get("/campaigns")?).map_err(|e| StoreError::Remote(format!("{base}/campaigns: {e}")))?;
    let (mut added, mut updated) = (0, 0);
    for id in &ids {
        let records = get(&format!("/campaigns/{}/records", crate::dashboard::encode(id)))?;
        let m = cellos_store::sync::merge(store, &records)?;
        added += m.added;
        updated += m.updated;
    }
    Ok(serde_json::json!({ "from": from, "campaigns": ids.len(), "rows_added": added, "rows_updated": updated }))
}

/// The HTTP client for `from`: plain for `http://`; for `https://`, rustls trusting only `cacert`.
fn agent(from: &str, cacert: Option<&Path>) -> Result<ureq::Agent> {
    if !from.starts_with("https://") {
        if !from.starts_with("http://") {
            return Err(StoreError::Invalid(format!("{from}: give http://HOST:PORT or https://HOST:PORT")));
        }
        return Ok(ureq::Agent::new_with_defaults());
    }
    let path = cacert.ok_or_else(|| {
        StoreError::Invalid(format!("{from}: HTTPS needs --cacert FILE, the gateway's certificate (PEM) to trust"))
    })?;
    let pem = std::fs::read(path).map_err(|source| StoreError::Io { path: path.into(), source })?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(StoreError::Invalid(format!("{}: no certificate in the file", path.display())));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
        .build();
    Ok(ureq::Agent::config_builder().tls_config(tls).build().into())
}

/// `facility` commands.
#[derive(Subcommand, Debug)]
pub enum FacilityCommand {
    /// Stack MCB/WCB requests day by day (banking model) against incubator flasks, BSC hours and staff
    /// hours; report peaks and violations; shift start days within each request's `max_shift_days` to
    /// remove them; schedule each day's operations onto BSC and staff time. TOML: `days`, `seed`,
    /// `[facility]` (`incubator_flasks`, `bsc_hours_per_day`, `staff_fte`, `staff_hours_per_day`),
    /// `[[request]]` (`kind` MCB|WCB, `line`, `start_day`, `max_shift_days`).
    Plan {
        /// Plan file (TOML).
        file: PathBuf,
        /// Also write the per-day CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Save the input and the plan in the data directory (`campaigns.db`), where `cellos dashboard`
        /// shows it.
        #[arg(long)]
        save: bool,
        /// Name of the saved plan (default: the file's stem).
        #[arg(long, requires = "save")]
        name: Option<String>,
    },
}

/// `schedule` commands.
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Optimal schedule of a JSON problem: `{"resources":[{"id","capacity","windows"?}],
    /// "tasks":[{"id","duration_min","resources":["id" | {"id","demand"}],"predecessors","release_min",
    /// "due_min","weight"?}],"horizon_min","objective"?}`. The objective is `makespan` (default; due times
    /// are hard) or `weighted_tardiness` (Σ weight × minutes late; due times are targets). Prints a table,
    /// or with --json `{"makespan_min","optimal","bound_min","objective","weighted_tardiness",
    /// "objective_bound","solve_ms","tasks":[{"id","start_min","end_min","units"}]}`. Infeasible input:
    /// exit 2 and why.
    Solve {
        /// Problem file (JSON).
        file: PathBuf,
        /// Seconds the whole solve may use (two searches run on two threads until one proves its result);
        /// when time runs out, the best schedule found so far is returned, marked not proven optimal.
        #[arg(long, default_value_t = 30.0)]
        time_limit: f64,
    },
}

/// `params` commands.
#[derive(Subcommand, Debug)]
pub enum ParamsCommand {
    /// A line's current parameters (or a given version).
    Show {
        /// Cell line.
        line: String,
        /// Version.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Set fields: closes the current version and opens a new one (`cellos params set U2OS doubling_time_h=25`).
    Set {
        /// Cell line.
        line: String,
        /// FIELD=VALUE pairs.
        #[arg(required = true)]
        assignments: Vec<String>,
        /// Why (kept with the version).
        #[arg(long)]
        note: Option<String>,
    },
    /// Every version of a line's parameters.
    History {
        /// Cell line.
        line: String,
    },
}

/// `lines` commands.
#[derive(Subcommand, Debug)]
pub enum LinesCommand {
    /// List cell lines.
    List {
        /// Only this cell type.
        #[arg(long = "type")]
        cell_type: Option<String>,
        /// Only lines that need (true) or do not need (false) coating.
        #[arg(long)]
        coating: Option<bool>,
        /// Only this cost tier.
        #[arg(long)]
        tier: Option<String>,
    },
    /// One line with its characteristics and protocols.
    Show {
        /// Cell line.
        id: String,
    },
}

/// `inventory` commands.
#[derive(Subcommand, Debug)]
pub enum InventoryCommand {
    /// Register a frozen vial.
    Add {
        /// Cell line.
        line: String,
        /// Vial id (unique).
        vial: String,
        /// Passage number.
        #[arg(long)]
        passage: Option<i64>,
        /// Storage location.
        #[arg(long)]
        location: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
    },
    /// List vials.
    List {
        /// Only this line.
        #[arg(long)]
        line: Option<String>,
        /// Only this status (available, used, discarded).
        #[arg(long)]
        status: Option<String>,
    },
    /// Use a vial (it must be available).
    Use {
        /// Vial id.
        vial: String,
        /// Why.
        #[arg(long)]
        purpose: Option<String>,
        /// Execution or campaign id.
        #[arg(long)]
        execution: Option<String>,
    },
    /// Usage history.
    History {
        /// Only this vial.
        #[arg(long)]
        vial: Option<String>,
        /// Only this line.
        #[arg(long)]
        line: Option<String>,
    },
}

/// `campaigns` commands.
#[derive(Subcommand, Debug)]
pub enum CampaignsCommand {
    /// List campaigns.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this type.
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// One campaign: iterations, experiments, duration, best result, stage outputs.
    Show {
        /// Campaign id.
        id: String,
    },
}

/// `results` commands.
#[derive(Subcommand, Debug)]
pub enum ResultsCommand {
    /// Measurements, filtered.
    Query(ResultsFilter),
    /// Counts per line and compound.
    Summary,
    /// Fit IC50 and Hill slope of normalised viability for one line and compound.
    Fit {
        /// Cell line.
        #[arg(long)]
        line: String,
        /// Compound.
        #[arg(long)]
        compound: String,
    },
}

/// Filters of `results query`.
#[derive(Args, Debug)]
pub struct ResultsFilter {
    /// Cell line.
    #[arg(long)]
    pub line: Option<String>,
    /// Compound.
    #[arg(long)]
    pub compound: Option<String>,
    /// Plate.
    #[arg(long)]
    pub plate: Option<String>,
}

/// `db` commands.
#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Schema versions, row counts, file sizes.
    Status,
    /// Copy every database into DIR (online backup: consistent while others write).
    Backup {
        /// Target folder.
        dir: PathBuf,
    },
}

pub use cellos_output::render;

/// Prints `v`: JSON with `--json`, else `text` (a table or sentences).
fn emit_as(json: bool, v: &Value, text: impl FnOnce(&Value) -> String) -> Result<()> {
    let out = if json { format!("{v}\n") } else { text(v) };
    cellos_output::print(&out).map_err(|source| StoreError::Io { path: "standard output".into(), source })
}

fn emit(json: bool, v: &Value) -> Result<()> {
    emit_as(json, v, render)
}

/// `import`'s summary in words: what was added, per table, and what was there already.
pub fn import_text(v: &Value) -> String {
    let counts = |key: &str| -> String {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{} {}", cellos_output::cell(&p[1]), p[0].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let source = v["source"].as_str().unwrap_or("?");
    let mut t = if v["already_imported"] == Value::Bool(true) {
        format!("{source} was imported before: nothing added\n")
    } else {
        let added = counts("rows");
        format!("imported {source}: {}\n", if added.is_empty() { "no rows".into() } else { added })
    };
    let present = counts("already_present");
    if !present.is_empty() && v["already_imported"] != Value::Bool(true) {
        t += &format!("already in the store from another source (not added again): {present}\n");
    }
    t
}

/// `campaigns show` in words and tables: the campaign, its settings, its result per line, its
/// iterations, stage outputs and experiments.
pub fn campaign_text(c: &Value) -> String {
    use cellos_output::{cell, label, table};
    let mut t = String::new();
    let field = |t: &mut String, k: &str, v: &Value| {
        if !v.is_null() && v != "" {
            *t += &format!("{:<14}  {}\n", k, cell(v));
        }
    };
    field(&mut t, "campaign", &c["campaign_id"]);
    let kind = if c["config"]["posh"] == Value::Bool(true) { json_str("POSH") } else { c["campaign_type"].clone() };
    field(&mut t, "type", &kind);
    field(&mut t, "goal", &c["goal"]);
    field(&mut t, "status", &c["status"]);
    field(&mut t, "started", &c["start_date"]);
    field(&mut t, "ended", &c["end_date"]);
    if let Some(s) = c["duration_seconds"].as_f64() {
        field(&mut t, "duration", &json_str(&crate::dashboard::pages::duration(s)));
    }
    field(&mut t, "failure", &c["failure"]);
    if let Some(cfg) = c["config"].as_object().filter(|m| !m.is_empty()) {
        t += "\nsettings:\n";
        let w = cfg.keys().map(|k| label(k).chars().count()).max().unwrap_or(0);
        for (k, v) in cfg {
            t += &format!("  {:<w$}  {}\n", label(k), cell(v));
        }
    }
    if let Some(best) = c["best_result"].as_object() {
        t += "\nbest result:\n";
        let w = best.keys().map(|k| label(k).chars().count()).max().unwrap_or(0);
        for (k, v) in best.iter().filter(|(_, v)| !v.is_null()) {
            t += &format!("  {:<w$}  {}\n", label(k), cell(v));
        }
    }
    let iterations = c["iterations"].as_array().cloned().unwrap_or_default();
    if !iterations.is_empty() {
        t += "\niterations:\n";
        let rows: Vec<Vec<String>> = iterations
            .iter()
            .map(|it| {
                let results = &it["results"];
                let (lines, wells) = match results.get("lines").and_then(Value::as_array) {
                    Some(lines) => (
                        lines.iter().filter_map(|l| l["line"].as_str()).collect::<Vec<_>>().join(", "),
                        lines.iter().map(|l| l["wells"].as_array().map_or(0, Vec::len)).sum::<usize>(),
                    ),
                    None => {
                        let rs = results.as_array().cloned().unwrap_or_default();
                        let mut lines: Vec<String> =
                            rs.iter().filter_map(|r| r["cell_line"].as_str().map(String::from)).collect();
                        let mut seen = std::collections::BTreeSet::new();
                        lines.retain(|l| seen.insert(l.clone()));
                        (lines.join(", "), rs.len())
                    }
                };
                vec![cell(&it["iteration_number"]), cell(&it["timestamp"]), lines, wells.to_string()]
            })
            .collect();
        for l in table(&["iteration".into(), "time".into(), "lines".into(), "results".into()], &rows).lines() {
            t += &format!("  {l}\n");
        }
    }
    for (key, title) in [("stage_outputs", "stage outputs"), ("experiments", "experiments")] {
        let v = &c[key];
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            t += &format!("\n{title}:\n");
            for l in render(v).lines() {
                t += &format!("  {l}\n");
            }
        }
    }
    t
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_string())
}

/// `db status`: one row per database, then the rows of each table.
pub fn db_status_text(v: &Value) -> String {
    use cellos_output::{cell, table};
    let dbs = v.as_array().cloned().unwrap_or_default();
    let header = ["database".to_string(), "schema".into(), "size".into()];
    let rows: Vec<Vec<String>> = dbs
        .iter()
        .map(|d| {
            let kib = d["bytes"].as_f64().unwrap_or(0.0) / 1024.0;
            vec![cell(&d["database"]), cell(&d["schema_version"]), format!("{} KiB", cellos_output::num(kib))]
        })
        .collect();
    let mut t = table(&header, &rows);
    let rows: Vec<Vec<String>> = dbs
        .iter()
        .flat_map(|d| {
            let db = cell(&d["database"]);
            d["rows"]
                .as_object()
                .into_iter()
                .flatten()
                .map(move |(k, n)| vec![db.clone(), k.clone(), cell(n)])
                .collect::<Vec<_>>()
        })
        .collect();
    t += "\n";
    t += &table(&["database".into(), "table".into(), "rows".into()], &rows);
    t
}

fn bar(total: u64) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {percent}% {elapsed_precise}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// Whether `cellos verify` found differences (the exit status).
pub enum Outcome {
    /// All went as asked.
    Done,
    /// `verify` found differences.
    Differences,
}

/// Runs a command.
pub fn run(cli: &Cli) -> Result<Outcome> {
    // Commands that need no database come first, so that they create none.
    if let Command::Schedule(ScheduleCommand::Solve { file, time_limit }) = &cli.command {
        let text = std::fs::read_to_string(file).map_err(|source| StoreError::Io { path: file.clone(), source })?;
        let problem: crate::schedule::Problem =
            serde_json::from_str(&text).map_err(|e| StoreError::Invalid(format!("{}: {e}", file.display())))?;
        let limit = std::time::Duration::try_from_secs_f64(*time_limit)
            .map_err(|_| StoreError::Invalid(format!("--time-limit {time_limit}: give seconds, ≥ 0")))?;
        let s = crate::schedule::solve(&problem, limit).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let text = if cli.json {
            format!("{}\n", serde_json::to_value(&s).unwrap_or(Value::Null))
        } else {
            crate::schedule::gantt(&s, 60)
        };
        cellos_output::print(&text).map_err(|source| StoreError::Io { path: "standard output".into(), source })?;
        return Ok(Outcome::Done);
    }
    if let Command::Facility(FacilityCommand::Plan { file, csv, save, name }) = &cli.command {
        let text = std::fs::read_to_string(file).map_err(|source| StoreError::Io { path: file.clone(), source })?;
        let input: crate::facility::PlanInput =
            toml::from_str(&text).map_err(|e| StoreError::Invalid(format!("{}: {e}", file.display())))?;
        let plan = crate::facility::plan(&input).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(out) = csv {
            std::fs::write(out, crate::facility::csv(&plan))
                .map_err(|source| StoreError::Io { path: out.clone(), source })?;
        }
        let saved = if *save {
            let store = Store::open(&data_dir(cli.data_dir.as_deref()))?;
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
            let name = name.clone().unwrap_or(stem);
            Some((crate::facility::save(&store, &name, &input, &plan)?, name))
        } else {
            None
        };
        let text = if cli.json {
            format!("{}\n", serde_json::to_value(&plan).unwrap_or(Value::Null))
        } else {
            let p = |x: [f64; 3]| format!("{:.0} flasks, {:.2} BSC h, {:.2} staff h", x[0], x[1], x[2]);
            let mut t = format!(
                "peaks as requested: {}; {} violations\npeaks after shifting: {}; {} violations\n\n",
                p(plan.peaks_before),
                plan.violations_before.len(),
                p(plan.peaks_after),
                plan.violations_after.len(),
            );
            let rows: Vec<Vec<String>> = input
                .requests
                .iter()
                .zip(&plan.start_days)
                .enumerate()
                .map(|(i, (r, day))| {
                    let shift = day - r.start_day;
                    vec![
                        input.name(i),
                        r.start_day.to_string(),
                        day.to_string(),
                        match shift {
                            0 => "as requested".into(),
                            1 => "1 day later".into(),
                            n => format!("{n} days later"),
                        },
                    ]
                })
                .collect();
            t += &cellos_output::table(
                &["request".into(), "asked for day".into(), "starts day".into(), "shift".into()],
                &rows,
            );
            for r in &plan.remaining {
                t += &format!("remains: {r}\n");
            }
            if let Some((id, name)) = &saved {
                t += &format!("saved as plan {id} `{name}` (see `cellos dashboard`, page Facility)\n");
            }
            t
        };
        cellos_output::print(&text).map_err(|source| StoreError::Io { path: "standard output".into(), source })?;
        return Ok(Outcome::Done);
    }
    let dir = data_dir(cli.data_dir.as_deref());
    if let Command::Dashboard { bind, allow_remote } = &cli.command {
        if cli.json {
            return Err(StoreError::Invalid(
                "--json: the dashboard prints nothing to read; it serves web pages".into(),
            ));
        }
        let d = crate::dashboard::Dashboard::start(&dir, bind, *allow_remote).map_err(|e| match e {
            crate::dashboard::DashboardError::Store(e) => e,
            e => StoreError::Invalid(e.to_string()),
        })?;
        if !d.addr().ip().is_loopback() {
            eprintln!("warning: serving on {}, reachable from other machines, without any login", d.addr());
        }
        eprintln!("cellos dashboard: http://{}/ (data: {}); Ctrl-C stops", d.addr(), dir.display());
        d.wait();
        return Ok(Outcome::Done);
    }
    let mut store = if cli.command.only_reads() { Store::open_for_reading(&dir)? } else { Store::open(&dir)? };
    let j = cli.json;
    match &cli.command {
        Command::Import { kind, source } => {
            let big = std::fs::metadata(source).map(|m| m.len() > 4 << 20).unwrap_or(false);
            let b = big.then(|| bar(100));
            let summary = kind.import(&mut store, source, &mut |done, total| {
                if let Some(b) = &b {
                    b.set_position(done * 100 / total.max(1));
                }
            })?;
            if let Some(b) = b {
                b.finish_and_clear();
            }
            for w in &summary.warnings {
                eprintln!("warning: {w}");
            }
            emit_as(j, &serde_json::to_value(&summary).unwrap_or(Value::Null), import_text)?;
        }
        Command::Export { kind, target } => {
            kind.export(&store, target)?;
            let v = serde_json::json!({ "kind": kind.name(), "written": target.display().to_string() });
            emit_as(j, &v, |_| format!("{} written to {}\n", kind.name(), target.display()))?;
        }
        Command::Verify { kind, source } => {
            let report = crate::verify::verify(&store, *kind, source)?;
            if j {
                emit(true, &serde_json::to_value(&report).unwrap_or(Value::Null))?;
            } else {
                let mut t: String = report.differences.iter().map(|d| format!("{d}\n")).collect();
                t += &format!("{} fields compared, {} differ\n", report.fields, report.differences.len());
                cellos_output::print(&t).map_err(|source| StoreError::Io { path: "standard output".into(), source })?;
            }
            if !report.differences.is_empty() {
                return Ok(Outcome::Differences);
            }
        }
        Command::Params(ParamsCommand::Show { line, version }) => {
            emit(j, &admin::params_show(&store, line, *version)?)?
        }
        Command::Params(ParamsCommand::History { line }) => emit(j, &admin::params_history(&store, line)?)?,
        Command::Params(ParamsCommand::Set { line, assignments, note }) => {
            let pairs = assignments
                .iter()
                .map(|a| {
                    a.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| StoreError::Invalid(format!("`{a}`: expected FIELD=VALUE")))
                })
                .collect::<Result<Vec<_>>>()?;
            emit(j, &admin::params_set(&mut store, line, &pairs, note.as_deref())?)?;
        }
        Command::Lines(LinesCommand::List { cell_type, coating, tier }) => {
            emit(j, &admin::lines_list(&store, cell_type.as_deref(), *coating, tier.as_deref())?)?
        }
        Command::Lines(LinesCommand::Show { id }) => emit(j, &admin::lines_show(&store, id)?)?,
        Command::Inventory(InventoryCommand::Add { line, vial, passage, location, notes }) => {
            emit(j, &admin::inventory_add(&store, line, vial, *passage, location.as_deref(), notes.as_deref())?)?;
        }
        Command::Inventory(InventoryCommand::List { line, status }) => {
            emit(j, &admin::inventory_list(&store, line.as_deref(), status.as_deref())?)?
        }
        Command::Inventory(InventoryCommand::Use { vial, purpose, execution }) => {
            emit(j, &admin::inventory_use(&mut store, vial, purpose.as_deref(), execution.as_deref())?)?;
        }
        Command::Inventory(InventoryCommand::History { vial, line }) => {
            emit(j, &admin::inventory_history(&store, vial.as_deref(), line.as_deref())?)?
        }
        Command::Campaigns(CampaignsCommand::List { status, kind }) => {
            emit(j, &admin::campaigns_list(&store, status.as_deref(), kind.as_deref())?)?
        }
        Command::Campaigns(CampaignsCommand::Show { id }) => {
            emit_as(j, &admin::campaigns_show(&store, id)?, campaign_text)?
        }
        Command::Results(ResultsCommand::Query(f)) => {
            emit(j, &admin::results_query(&store, f.line.as_deref(), f.compound.as_deref(), f.plate.as_deref())?)?
        }
        Command::Results(ResultsCommand::Summary) => emit(j, &admin::results_summary(&store)?)?,
        Command::Results(ResultsCommand::Fit { line, compound }) => {
            emit(j, &admin::results_fit(&store, line, compound)?)?
        }
        Command::Db(DbCommand::Status) => emit_as(j, &admin::db_status(&store)?, db_status_text)?,
        Command::Sync { from, token, cacert } => emit_as(j, &sync(&mut store, from, token, cacert.as_deref())?, |v| {
            format!(
                "synced {} campaigns from {}: {} rows added, {} updated\n",
                cellos_output::cell(&v["campaigns"]),
                cellos_output::cell(&v["from"]),
                cellos_output::cell(&v["rows_added"]),
                cellos_output::cell(&v["rows_updated"])
            )
        })?,
        Command::Db(DbCommand::Backup { dir: to }) => {
            let b = bar(100);
            let out = admin::db_backup(&store, Path::new(to), &mut |_, done, total| {
                b.set_position((done.max(0) as u64 * 100) / total.max(1) as u64)
            })?;
            b.finish_and_clear();
            emit(j, &out)?;
        }
        Command::Schedule(_) | Command::Facility(_) | Command::Dashboard { .. } => {
            unreachable!("handled before the store is opened")
        }
    }
    Ok(Outcome::Done)
}
