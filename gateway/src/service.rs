//! `cellos-gateway serve`: the gateway as a service. An HTTP/JSON API under `/api/v1` (axum), with its
//! OpenAPI 3.1 document generated from the code (utoipa) at `/api/v1/openapi.json`.
//!
//! Runs are campaigns submitted as JSON. One runs at a time; the others wait in order. A run is driven
//! exactly as `campaign run` drives it (the same checks, journal, identities and twin), on a worker thread
//! of its own, and is followed through its events: each has an id, and `GET /runs/{id}/events` (Server-Sent
//! Events) replays from `Last-Event-ID`. Pause and stop take effect at the campaign's next safe point.
//!
//! Every route but `/health` needs a token (`Authorization: Bearer …`, made with `cellos-gateway token
//! create`): 401 without one or with an unknown one; reading needs `read`, changing anything `operate`
//! (403 below that). Every request that changes something is written to the hash-chained audit trail.
//!
//! Runs and their events are kept in `campaigns.db` (an event is written before anyone can see it). A
//! restarted service resumes every run that was running (reconciling with the instruments as `campaign
//! resume` does), keeps a paused one paused, and queues the queued ones again. SIGTERM stops the running
//! campaign at its next safe point and exits; the run resumes at the next start.
//!
//! Loopback by default; another address needs `--allow-remote` and TLS (a certificate and key, or a
//! self-signed certificate made once, whose SHA-256 fingerprint is printed).
//!
//! Runs are campaigns, or worklists (`.gwl` or Hamilton CSV, on the STAR or the EVO, on the built-in
//! deck, through the safety envelope).
//!
//! `GET /campaigns` and `/campaigns/{id}/records` give the store's campaigns by natural key, for
//! `cellos sync` on the host.
//!
//! A campaign on a bench with a manual incubator or reader waits in `awaiting-operator` on a prompt
//! (`confirm`, or `upload` for a plate-reader export), answered with `POST /runs/{id}/prompts/{prompt_id}`
//! (see [`crate::campaign::operator`]).
//!
//! A worklist pauses and stops where no tip holds liquid (after a transfer, or after a `.gwl` record
//! that leaves its tip empty). The dashboard runs on the same HTTP stack (axum) as its own server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cellos_store::access::{self, Change, Scope, Token};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use utoipa::{OpenApi, ToSchema};

use crate::GatewayError;
use crate::campaign::{CampaignConfig, Control, Event};

use crate::cli::{Hooks, Ports, Start};

/// Where a run stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Waiting for the runs before it.
    Queued,
    /// Being carried out.
    Running,
    /// Waiting at a safe point, as asked.
    Paused,
    /// Waiting for the operator to answer a prompt (in `prompt`).
    AwaitingOperator,
    /// Asked to stop; ends at the next safe point.
    Stopping,
    /// Stopped as asked (the campaign resumes with `campaign resume`).
    Stopped,
    /// Ended by an error (in `error`).
    Failed,
    /// Finished with its outputs.
    Succeeded,
}

impl RunState {
    fn finished(self) -> bool {
        matches!(self, RunState::Stopped | RunState::Failed | RunState::Succeeded)
    }

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::AwaitingOperator => "awaiting-operator",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Succeeded => "succeeded",
        }
    }

    /// The word stored: a run awaiting its operator is stored as running (a restart resumes it, and the
    /// campaign asks its open prompt again).
    fn stored(self) -> &'static str {
        match self {
            RunState::AwaitingOperator => RunState::Running.as_str(),
            other => other.as_str(),
        }
    }

    fn parse(s: &str) -> Option<RunState> {
        [
            RunState::Queued,
            RunState::Running,
            RunState::Paused,
            RunState::Stopping,
            RunState::Stopped,
            RunState::Failed,
            RunState::Succeeded,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A run as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    /// The run's id (the campaign id).
    pub run_id: String,
    /// `campaign`.
    pub kind: String,
    /// Where it stands.
    pub state: RunState,
    /// The iterations committed so far.
    pub iterations: i64,
    /// Events so far (the last event id).
    pub events: u64,
    /// Steps done in the current iteration (campaigns) or in the worklist, since the service started it.
    pub steps_done: u64,
    /// Steps the current iteration (or the worklist) takes.
    pub steps_planned: u64,
    /// Each line's result, once succeeded.
    #[schema(value_type = Object)]
    pub outputs: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// What the operator is asked, while the run is awaiting the operator.
    pub prompt: Option<PromptView>,
}

/// A prompt to the operator.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PromptView {
    /// Its id: answer with `POST /runs/{id}/prompts/{prompt_id}`.
    pub prompt_id: String,
    /// `confirm` or `upload` (a plate-reader export).
    pub kind: String,
    /// What to do.
    pub text: String,
    /// What an answer must hold (an upload's plate, wells and readouts).
    #[schema(value_type = Object)]
    pub spec: Value,
}

/// `POST /runs/{id}/prompts/{prompt_id}`: nothing for a confirmation; the export's text for an upload
/// (or send the file itself as the body, `Content-Type: text/csv`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct PromptAnswer {
    /// The reader export's text.
    pub content: Option<String>,
}

/// `POST /runs/{id}/prompts/{prompt_id}` answered.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Answered {
    /// The prompt.
    pub prompt_id: String,
    /// What was stored: `{"confirmed": true}`, or the values read from the export.
    #[schema(value_type = Object)]
    pub answer: Value,
}

/// `POST /runs`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewRun {
    /// `campaign` or `worklist`.
    pub kind: String,
    /// A campaign's settings, as in a campaign TOML file.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    /// A worklist's format: `gwl` or `hamilton`.
    pub format: Option<String>,
    /// A worklist's text.
    pub content: Option<String>,
    /// The instrument a worklist runs on: `star` or `evo`.
    pub instrument: Option<String>,
}

/// A worklist run's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorklistSpec {
    /// `gwl` or `hamilton`.
    pub format: String,
    /// The worklist's text.
    pub content: String,
    /// `star` or `evo`.
    pub instrument: String,
}

/// What a run carries out.
#[derive(Clone, Debug)]
enum Spec {
    Campaign(CampaignConfig),
    Worklist(WorklistSpec),
}

impl Spec {
    fn kind(&self) -> &'static str {
        match self {
            Spec::Campaign(_) => "campaign",
            Spec::Worklist(_) => "worklist",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Spec::Campaign(c) => serde_json::to_value(c).unwrap_or(Value::Null),
            Spec::Worklist(w) => serde_json::to_value(w).unwrap_or(Value::Null),
        }
    }
}

/// `POST /runs/{id}/actions`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct Action {
    /// `pause`, `resume` or `stop`.
    pub action: String,
}

/// An error, as every failing route answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What is wrong.
    pub error: String,
    /// The field at fault, for a 422.
    pub field: Option<String>,
    #[serde(skip)]
    status: u16,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError { error: error.into(), field: None, status: status.as_u16() }
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> u16 {
        self.status
    }

    fn invalid(field: &str, error: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.to_string()), ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

impl From<cellos_store::StoreError> for ApiError {
    fn from(e: cellos_store::StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// `GET /health`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// The gateway's version.
    pub version: String,
    /// Instruments: the twin the service starts for each run, or the serial lines it was given.
    pub instruments: Vec<Instrument>,
    /// Runs waiting.
    pub queued: usize,
    /// The run being carried out.
    pub running: Option<String>,
}

/// An instrument of the workcell.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Instrument {
    /// `star`, `evo` or `reader`.
    pub kind: String,
    /// Its line, or `twin` when the service starts a twin for each run.
    pub port: String,
    /// `idle`, `busy`, or `disconnected` (its line was lost; the run waits for it to come back).
    pub state: String,
    /// A liquid handler's tips as last seen by a run (channels holding one, tips left in the racks);
    /// absent before any run since the service started.
    pub tips: Option<crate::liquid::Tips>,
    /// The last error a run met on this instrument since the service started.
    pub last_error: Option<LastError>,
}

/// An error a run met on an instrument.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LastError {
    /// The run.
    pub run_id: String,
    /// When (UTC).
    pub at: String,
    /// What happened.
    pub error: String,
}

/// What runs have seen of the instruments, by kind.
#[derive(Default)]
struct Seen {
    tips: std::collections::HashMap<&'static str, crate::liquid::Tips>,
    errors: std::collections::HashMap<&'static str, LastError>,
    /// Instruments whose line was lost and has not carried a step since.
    disconnected: std::collections::HashSet<&'static str>,
}

/// The instrument an error came from, when it can be told: `liquid_handler` (`star` or `evo`, the
/// run's) or the reader (whose time-outs and damaged replies name `the reader` as their command).
fn blamed(e: &GatewayError, liquid_handler: &'static str) -> Option<&'static str> {
    match e {
        GatewayError::Timeout { command, .. } | GatewayError::Malformed { command, .. }
            if command.starts_with(crate::wire::READER) =>
        {
            Some("reader")
        }
        GatewayError::Link(_) | GatewayError::Unexpected { .. } => Some("reader"),
        GatewayError::WrongInstrument { role, .. } if role == "reader" => Some("reader"),
        GatewayError::Instrument(_)
        | GatewayError::Timeout { .. }
        | GatewayError::Malformed { .. }
        | GatewayError::OperationFailed { .. }
        | GatewayError::Refused { .. }
        | GatewayError::WrongInstrument { .. }
        | GatewayError::Closed
        | GatewayError::Worklist { .. } => Some(liquid_handler),
        GatewayError::AtStep { cause, .. } => blamed(cause, liquid_handler),
        _ => None,
    }
}

/// The workcell a service drives.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Data directory and the STAR and reader lines.
    pub ports: Ports,
    /// Run each run on a twin the service starts.
    pub twin: bool,
    /// The EVO's line, for worklists (a twin's when `twin`).
    pub evo: Option<String>,
    /// Lab time runs this many times real time, for campaigns that do not say (and the twins started
    /// for them); `None`: as on a real bench (and instant twins).
    pub time_scale: Option<f64>,
}

struct Run {
    /// The run as shown, but for its `events`, which is the log's length (see [`Run::snapshot`]).
    view: RunView,
    spec: Spec,
    log: Vec<Value>,
    control: watch::Sender<Control>,
}

impl Run {
    /// The run as the API shows it.
    fn snapshot(&self) -> RunView {
        RunView { events: self.log.len() as u64, ..self.view.clone() }
    }
}

struct Inner {
    data_dir: PathBuf,
    setup: Setup,
    runs: Mutex<Vec<Run>>,
    /// Bumped on every event of any run: what the event streams wait on.
    changed: watch::Sender<u64>,
    queue: mpsc::UnboundedSender<(String, Start)>,
    /// `campaigns.db`: tokens, the audit trail, the runs and their events.
    access: Mutex<rusqlite::Connection>,
    /// SIGTERM came: a run stopped now is interrupted, to be resumed at the next start.
    shutting_down: AtomicBool,
    /// What runs have seen of the instruments.
    seen: Mutex<Seen>,
}

/// The service's shared state.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "cellos gateway", description = "Runs, actions and events of a cellos gateway."),
    paths(
        health,
        openapi,
        instruments,
        create_run,
        list_runs,
        get_run,
        act,
        events,
        answer_prompt,
        campaigns,
        records
    ),
    components(schemas(
        RunState,
        RunView,
        PromptView,
        PromptAnswer,
        Answered,
        NewRun,
        Action,
        ApiError,
        Health,
        Instrument
    ))
)]
pub struct ApiDoc;

impl Service {
    /// A service over the data directory and the instruments of `ports` (or a twin per run), with the
    /// worker that carries the runs out.
    pub fn start(setup: Setup) -> Result<Service, GatewayError> {
        let data_dir = cellos_store::db::data_dir(setup.ports.data_dir.as_deref());
        let access = cellos_store::db::open(&data_dir, cellos_store::Db::Campaigns)?;
        let (queue, queued) = mpsc::unbounded_channel();
        let (changed, _) = watch::channel(0);
        // The runs of earlier starts: the unfinished ones go on.
        let mut runs = Vec::new();
        for stored in cellos_store::service::runs(&access)? {
            let bad = |e: serde_json::Error| GatewayError::Stored {
                what: format!("the settings of run `{}`", stored.run_id),
                message: e.to_string(),
            };
            let spec = if stored.kind == "worklist" {
                Spec::Worklist(serde_json::from_value(stored.config.clone()).map_err(bad)?)
            } else {
                Spec::Campaign(serde_json::from_value(stored.config.clone()).map_err(bad)?)
            };
            let mut state = RunState::parse(&stored.state).unwrap_or(RunState::Failed);
            let mut error = stored.error;
            let (start, control) = match (&spec, state) {
                (_, RunState::Queued) => (Some(Start::New), Control::Run),
                (Spec::Campaign(_), RunState::Running) => (Some(Start::Resume), Control::Run),
                (Spec::Campaign(_), RunState::Paused) => (Some(Start::Resume), Control::Pause),
                (Spec::Worklist(_), RunState::Running | RunState::Paused | RunState::Stopping) => {
                    // A worklist has no journal to reconcile with: it is never run again blindly.
                    state = RunState::Failed;
                    let why = "interrupted by a restart of the service: a worklist is not resumed; its event log says how far it went";
                    error = Some(why.into());
                    cellos_store::service::finish_run(&access, &stored.run_id, state.as_str(), Some(why), None)?;
                    (None, Control::Run)
                }
                _ => (None, Control::Run),
            };
            if state == RunState::Stopping {
                // Asked to stop when the service went down: stopped (the campaign resumes by hand).
                state = RunState::Stopped;
                cellos_store::service::set_state(&access, &stored.run_id, state.as_str())?;
            }
            if let Some(start) = start {
                let _ = queue.send((stored.run_id.clone(), start));
            }
            let iterations = stored.events.iter().filter_map(|e| e["iteration"].as_i64()).max().unwrap_or(0);
            let view = RunView {
                run_id: stored.run_id.clone(),
                kind: stored.kind,
                state,
                iterations,
                events: stored.events.len() as u64,
                steps_done: 0,
                steps_planned: 0,
                outputs: stored.outputs,
                error,
                prompt: None,
            };
            runs.push(Run { view, spec, log: stored.events, control: watch::channel(control).0 });
        }
        let svc = Service {
            inner: Arc::new(Inner {
                data_dir,
                setup,
                runs: Mutex::new(runs),
                changed,
                queue,
                access: Mutex::new(access),
                shutting_down: AtomicBool::new(false),
                seen: Mutex::new(Seen::default()),
            }),
        };
        let worker = svc.clone();
        // The runner keeps the deck model (about 125 KB) on its stack: a thread of its own, with room.
        std::thread::Builder::new()
            .name("runs".into())
            .stack_size(64 << 20)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                match rt {
                    Ok(rt) => rt.block_on(worker.work(queued)),
                    Err(e) => say!("error: the run worker cannot start: {e}"),
                }
            })
            .map_err(|e| GatewayError::Io { path: "runs worker".into(), source: e })?;
        Ok(svc)
    }

    /// The API's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/health", get(health))
            .route("/api/v1/openapi.json", get(openapi))
            .route("/api/v1/instruments", get(instruments))
            .route("/api/v1/runs", post(create_run).get(list_runs))
            .route("/api/v1/runs/{id}", get(get_run))
            .route("/api/v1/runs/{id}/actions", post(act))
            .route("/api/v1/runs/{id}/events", get(events))
            .route("/api/v1/runs/{id}/prompts/{prompt_id}", post(answer_prompt))
            .route("/api/v1/campaigns", get(campaigns))
            .route("/api/v1/campaigns/{id}/records", get(records))
            .with_state(self.clone())
    }

    /// The token a request carries, if it may do what `needed` allows.
    fn authorize(&self, headers: &HeaderMap, needed: Scope) -> Result<Token, ApiError> {
        let unauthorized =
            || ApiError::new(StatusCode::UNAUTHORIZED, "a token is needed: Authorization: Bearer <token>");
        let secret = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let db = self.inner.access.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        let token = access::authenticate(&db, secret.trim())?.ok_or_else(unauthorized)?;
        if !token.scope.allows(needed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("token `{}` has scope {}; this needs {}", token.name, token.scope.as_str(), needed.as_str()),
            ));
        }
        Ok(token)
    }

    fn audit(&self, token: &Token, action: &str, target: &str, result: &str) -> Result<(), ApiError> {
        self.audit_as(&token.name, action, target, result)
    }

    /// A request's JSON body, or a 422 naming it that is written to the audit trail as `action` on
    /// `target`.
    fn body<T>(
        &self,
        token: &Token,
        body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
        action: &str,
        target: &str,
    ) -> Result<T, ApiError> {
        body.map(|Json(b)| b).or_else(|e| {
            let e = ApiError::invalid("body", e.body_text());
            self.audit(token, action, target, &e.error)?;
            Err(e)
        })
    }

    /// Appends a change made by `by` (a token's name, or `sila` for the SiLA front end) to the audit trail.
    fn audit_as(&self, by: &str, action: &str, target: &str, result: &str) -> Result<(), ApiError> {
        let mut db = self.inner.access.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        access::record(&mut db, &Change { token: by, action, target, result })?;
        Ok(())
    }

    /// Submits a run (what `POST /runs` does, for every front end): checked whole, recorded, audited as
    /// done by `by`, and queued.
    pub fn submit(&self, new: NewRun, by: &str) -> Result<RunView, ApiError> {
        let outcome = new_run(self, new);
        let (target, result) = match &outcome {
            Ok(v) => (v.run_id.clone(), "ok".to_string()),
            Err(e) => (String::new(), e.error.clone()),
        };
        self.audit_as(by, "create run", &target, &result)?;
        let view = outcome?;
        self.inner
            .queue
            .send((view.run_id.clone(), Start::New))
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the run worker has stopped"))?;
        Ok(view)
    }

    /// Pauses, resumes or stops a run (what `POST /runs/{id}/actions` does), audited as done by `by`.
    pub fn act(&self, id: &str, action: &str, by: &str) -> Result<RunView, ApiError> {
        let outcome = apply_action(self, id, Action { action: action.to_string() });
        let result = outcome.as_ref().map_or_else(|e| e.error.clone(), |_| "ok".into());
        self.audit_as(by, action, id, &result)?;
        let (_, view) = outcome?;
        self.inner.changed.send_modify(|v| *v += 1);
        Ok(view)
    }

    /// A run as the API shows it.
    pub fn view(&self, id: &str) -> Option<RunView> {
        self.with_run(id, |r| r.snapshot())
    }

    /// A run's events from the `from`-th (from 0).
    pub fn events_from(&self, id: &str, from: usize) -> Vec<Value> {
        self.with_run(id, |r| r.log.get(from..).map(<[Value]>::to_vec).unwrap_or_default()).unwrap_or_default()
    }

    /// Changes whenever any run has a new event or state.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// The workcell's state: the active run's (`running`, `paused`, `awaiting-operator`, `stopping`),
    /// `queued` when runs only wait, or `idle`.
    pub fn workcell_state(&self) -> String {
        let Ok(runs) = self.inner.runs.lock() else { return "idle".into() };
        if let Some(r) = runs.iter().find(|x| !x.view.state.finished() && x.view.state != RunState::Queued) {
            return r.view.state.as_str().into();
        }
        if runs.iter().any(|x| x.view.state == RunState::Queued) { "queued".into() } else { "idle".into() }
    }

    /// A campaign run's settings.
    pub fn config_of(&self, id: &str) -> Option<CampaignConfig> {
        self.with_run(id, |r| match &r.spec {
            Spec::Campaign(c) => Some(c.clone()),
            Spec::Worklist(_) => None,
        })
        .flatten()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    fn with_run<T>(&self, id: &str, f: impl FnOnce(&mut Run) -> T) -> Option<T> {
        let mut runs = self.inner.runs.lock().ok()?;
        runs.iter_mut().find(|r| r.view.run_id == id).map(f)
    }

    /// Appends an event to a run's log (its id is its place, from 1), written to the database before
    /// anyone can see it, and wakes the followers.
    fn log(&self, id: &str, event: Value, state: Option<RunState>) {
        let Ok(mut runs) = self.inner.runs.lock() else { return };
        let Some(r) = runs.iter_mut().find(|r| r.view.run_id == id) else { return };
        let next = r.log.len() as u64 + 1;
        let written = self.inner.access.lock().map_err(|_| ()).and_then(|mut db| {
            cellos_store::service::append_event(&mut db, id, next, &event, state.map(RunState::stored))
                .map_err(|e| say!("warning: run `{id}`: event {next} not recorded: {e}"))
        });
        if written.is_err() {
            return;
        }
        if let Some(s) = state {
            r.view.state = s;
        }
        r.log.push(event);
        drop(runs);
        self.inner.changed.send_modify(|v| *v += 1);
    }

    fn state_event(state: RunState) -> Value {
        json!({ "event": "state", "state": state })
    }

    /// Carries the queued runs out, one at a time.
    async fn work(self, mut queued: mpsc::UnboundedReceiver<(String, Start)>) {
        while let Some((id, start)) = queued.recv().await {
            let ready = self.with_run(&id, |r| {
                let ready = match start {
                    Start::New => r.view.state == RunState::Queued,
                    Start::Resume => matches!(r.view.state, RunState::Running | RunState::Paused),
                };
                ready.then(|| (r.spec.clone(), r.control.subscribe(), r.view.state))
            });
            let Some((spec, control, state)) = ready.flatten() else { continue };
            if state != RunState::Paused {
                self.log(&id, Self::state_event(RunState::Running), Some(RunState::Running));
            }
            let config = match spec {
                Spec::Campaign(c) => CampaignConfig { time_scale: c.time_scale.or(self.inner.setup.time_scale), ..c },
                Spec::Worklist(w) => {
                    let outcome = self.run_worklist(&id, &w).await;
                    let handler = if w.instrument == "evo" { "evo" } else { "star" };
                    let (state, outputs, error) = match outcome {
                        Ok(steps) => (RunState::Succeeded, Some(json!({ "steps": steps })), None),
                        Err(GatewayError::Stopped { .. }) => (RunState::Stopped, None, None),
                        Err(e) => {
                            self.saw_error(&id, blamed(&e, handler), &e);
                            (RunState::Failed, None, Some(e.to_string()))
                        }
                    };
                    self.end(&id, state, outputs, error);
                    continue;
                }
            };
            let (events, mut incoming) = mpsc::unbounded_channel::<Event>();
            let follower = {
                let svc = self.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    while let Some(e) = incoming.recv().await {
                        let state = match e {
                            Event::Paused { .. } => Some(RunState::Paused),
                            Event::Resumed { .. } | Event::Answered { .. } => Some(RunState::Running),
                            Event::Prompt { .. } => Some(RunState::AwaitingOperator),
                            _ => None,
                        };
                        match &e {
                            Event::Iteration { iteration, .. } => {
                                svc.with_run(&id, |r| r.view.iterations = r.view.iterations.max(*iteration));
                            }
                            Event::Planned { steps, .. } => {
                                svc.with_run(&id, |r| {
                                    r.view.steps_planned = *steps as u64;
                                    r.view.steps_done = 0;
                                });
                            }
                            Event::Step { tips, .. } => {
                                svc.with_run(&id, |r| r.view.steps_done += 1);
                                svc.saw_tips("star", tips.clone());
                            }
                            Event::Disconnected { error } => {
                                if let Ok(mut seen) = svc.inner.seen.lock() {
                                    seen.disconnected.insert("star");
                                    let at = cellos_store::time::now();
                                    seen.errors
                                        .insert("star", LastError { run_id: id.clone(), at, error: error.clone() });
                                }
                            }
                            Event::Prompt { prompt_id, kind, text, spec } => {
                                let p = PromptView {
                                    prompt_id: prompt_id.clone(),
                                    kind: kind.clone(),
                                    text: text.clone(),
                                    spec: spec.clone(),
                                };
                                svc.with_run(&id, |r| r.view.prompt = Some(p));
                            }
                            _ => {}
                        }
                        svc.log(&id, serde_json::to_value(&e).unwrap_or(Value::Null), state);
                        // After the state has left awaiting-operator: a run awaiting the operator always
                        // shows its prompt.
                        if let Event::Answered { .. } = e {
                            svc.with_run(&id, |r| r.view.prompt = None);
                        }
                    }
                })
            };
            let hooks = Hooks { events: Some(events), control: Some(control) };
            let outcome = crate::cli::drive(
                start,
                config,
                &self.inner.data_dir,
                &self.inner.setup.ports,
                self.inner.setup.twin,
                hooks,
            )
            .await;
            let _ = follower.await;
            if matches!(outcome, Err(GatewayError::Stopped { .. })) && self.inner.shutting_down.load(Ordering::SeqCst) {
                // Interrupted by SIGTERM: it stays running in the database, and resumes at the next start.
                self.with_run(&id, |r| r.view.state = RunState::Stopped);
                self.inner.changed.send_modify(|v| *v += 1);
                continue;
            }
            let (state, outputs, error) = match outcome {
                Ok((_, results)) => (RunState::Succeeded, serde_json::to_value(results).ok(), None),
                Err(GatewayError::Stopped { .. }) => (RunState::Stopped, None, None),
                Err(e) => {
                    self.saw_error(&id, blamed(&e, "star"), &e);
                    (RunState::Failed, None, Some(e.to_string()))
                }
            };
            self.end(&id, state, outputs, error);
        }
    }

    fn saw_tips(&self, kind: &'static str, tips: crate::liquid::Tips) {
        if let Ok(mut seen) = self.inner.seen.lock() {
            seen.tips.insert(kind, tips);
            seen.disconnected.remove(kind);
        }
    }

    fn saw_error(&self, run_id: &str, kind: Option<&'static str>, e: &GatewayError) {
        let Some(kind) = kind else { return };
        if let Ok(mut seen) = self.inner.seen.lock() {
            let last = LastError { run_id: run_id.into(), at: cellos_store::time::now(), error: e.to_string() };
            seen.errors.insert(kind, last);
        }
    }

    /// Records how a run ended and tells its followers.
    fn end(&self, id: &str, state: RunState, outputs: Option<Value>, error: Option<String>) {
        if let Ok(db) = self.inner.access.lock()
            && let Err(e) =
                cellos_store::service::finish_run(&db, id, state.stored(), error.as_deref(), outputs.as_ref())
        {
            say!("warning: run `{id}`: its end not recorded: {e}");
        }
        self.with_run(id, |r| {
            r.view.outputs = outputs;
            r.view.error = error;
        });
        self.log(id, Self::state_event(state), Some(state));
    }

    /// Carries a worklist out on its instrument (a twin started for it with `--twin`), through the
    /// safety envelope on the built-in deck, a `step` event per record or transfer; returns the steps.
    async fn run_worklist(&self, id: &str, w: &WorklistSpec) -> Result<usize, GatewayError> {
        use crate::handlers::{EvoHandler, StarHandler};
        use crate::liquid::Workcell;
        use crate::transport::Protocol;
        let loaded = crate::cli::parse_worklist(id, w.format == "gwl", w.content.as_bytes())?;
        let twin = if self.inner.setup.twin {
            let exe = std::env::current_exe()
                .map_err(|source| GatewayError::Io { path: "the gateway binary".into(), source })?;
            Some(crate::twin::TwinProcess::spawn(&exe, &crate::twin::TwinOptions { seed: 1, ..Default::default() })?)
        } else {
            None
        };
        let line = |t: Option<&String>, own: &Option<String>| t.cloned().or_else(|| own.clone());
        let deck = cellos_core::deck::default_deck();
        let total = loaded.steps();
        let control = self
            .with_run(id, |r| r.control.subscribe())
            .ok_or_else(|| GatewayError::Config { path: "serve".into(), message: format!("no run `{id}`") })?;
        let kind = if w.instrument == "evo" { "evo" } else { "star" };
        let progress = WorklistProgress { svc: self, id, control, kind };
        let timeouts = crate::star::Timeouts::default();
        match w.instrument.as_str() {
            "evo" => {
                let path = line(twin.as_ref().map(|t| &t.evo), &self.inner.setup.evo)
                    .ok_or_else(|| GatewayError::Config { path: "serve".into(), message: "no EVO line".into() })?;
                let (tx, rx) = crate::transport::open(&path, Protocol::Evo, 115_200).await?;
                let handler = EvoHandler::new(crate::evo::EvoDriver::new(tx, rx, std::time::Duration::from_secs(30)));
                run_loaded(Workcell::new(handler, deck), id, &loaded, progress).await?;
            }
            _ => {
                let path = line(twin.as_ref().map(|t| &t.star), &self.inner.setup.ports.star)
                    .ok_or_else(|| GatewayError::Config { path: "serve".into(), message: "no STAR line".into() })?;
                let (tx, rx) = crate::transport::open(&path, Protocol::Star, 115_200).await?;
                let handler = StarHandler::new(crate::star::StarDriver::new(tx, rx, timeouts, 8));
                run_loaded(Workcell::new(handler, deck), id, &loaded, progress).await?;
            }
        }
        Ok(total)
    }
}

/// A worklist run's progress: a `step` event per step; at a safe point (no liquid in a tip) it waits
/// while the run is paused, and a stop ends it there.
struct WorklistProgress<'a> {
    svc: &'a Service,
    id: &'a str,
    control: watch::Receiver<Control>,
    /// The instrument it runs on.
    kind: &'static str,
}

impl crate::worklist::Progress for WorklistProgress<'_> {
    async fn step(
        &mut self,
        done: usize,
        of: usize,
        safe: bool,
        tips: crate::liquid::Tips,
    ) -> Result<(), GatewayError> {
        let (svc, id) = (self.svc, self.id);
        svc.saw_tips(self.kind, tips);
        svc.with_run(id, |r| {
            r.view.steps_done = done as u64;
            r.view.steps_planned = of as u64;
        });
        svc.log(id, json!({ "event": "step", "done": done, "of": of }), None);
        if !safe {
            return Ok(());
        }
        let stopped = || GatewayError::Stopped { campaign: id.to_string() };
        let mut paused = false;
        loop {
            let asked = *self.control.borrow_and_update();
            match asked {
                Control::Run => break,
                Control::Stop => return Err(stopped()),
                Control::Pause => {
                    if !paused {
                        paused = true;
                        svc.log(id, Service::state_event(RunState::Paused), Some(RunState::Paused));
                    }
                    if self.control.changed().await.is_err() {
                        return Err(stopped());
                    }
                }
            }
        }
        if paused {
            svc.log(id, Service::state_event(RunState::Running), Some(RunState::Running));
        }
        Ok(())
    }

    fn failed(&mut self, tips: crate::liquid::Tips) {
        self.svc.saw_tips(self.kind, tips);
    }
}

/// Initialises the instrument and carries a parsed worklist out.
async fn run_loaded<H: crate::liquid::LiquidHandler>(
    mut w: crate::liquid::Workcell<H>,
    name: &str,
    loaded: &crate::cli::Loaded,
    progress: impl crate::worklist::Progress,
) -> Result<(), GatewayError> {
    w.initialise().await?;
    match loaded {
        crate::cli::Loaded::Gwl(records) => crate::worklist::run_gwl(&mut w, name, records, progress).await,
        crate::cli::Loaded::Transfers(t) => crate::worklist::run_transfers(&mut w, name, t, progress).await,
    }
}

/// The ids of the campaigns in the gateway's store (for `cellos sync`).
#[utoipa::path(get, path = "/api/v1/campaigns", responses((status = 200, body = [String])))]
async fn campaigns(State(svc): State<Service>, headers: HeaderMap) -> Result<Json<Vec<String>>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    let store = cellos_store::Store::open_for_reading(&svc.inner.data_dir)?;
    Ok(Json(cellos_store::sync::campaign_ids(&store.campaigns)?))
}

/// A campaign's records: campaign row, iterations, experiments, stage outputs, journal, instrument
/// identities and measurements, by natural key (for `cellos sync`).
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/records", params(("id" = String, Path, description = "campaign id")), responses((status = 200, description = "the records, table by table"), (status = 404, body = ApiError)))]
async fn records(
    State(svc): State<Service>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    let store = cellos_store::Store::open_for_reading(&svc.inner.data_dir)?;
    if cellos_store::campaign::get(&store.campaigns, &id)?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no campaign `{id}`")));
    }
    Ok(Json(cellos_store::sync::export(&store, &id)?))
}

/// Version and instruments; no token needed.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Health)))]
async fn health(State(svc): State<Service>) -> Json<Health> {
    let runs =
        svc.inner.runs.lock().map(|r| (r.iter().filter(|x| x.view.state == RunState::Queued).count(), active(&r)));
    let (queued, running) = runs.unwrap_or((0, None));
    Json(Health {
        version: env!("CARGO_PKG_VERSION").into(),
        instruments: instrument_list(&svc, running.is_some()),
        queued,
        running,
    })
}

/// The run being carried out (running, paused or stopping), if any.
fn active(runs: &[Run]) -> Option<String> {
    runs.iter().find(|x| !x.view.state.finished() && x.view.state != RunState::Queued).map(|x| x.view.run_id.clone())
}

fn instrument_list(svc: &Service, busy: bool) -> Vec<Instrument> {
    let state = if busy { "busy" } else { "idle" }.to_string();
    let setup = &svc.inner.setup;
    let port = |p: &Option<String>| if setup.twin { "twin".to_string() } else { p.clone().unwrap_or_default() };
    let mut kinds = vec![("star", port(&setup.ports.star)), ("reader", port(&setup.ports.reader))];
    if setup.twin || setup.evo.is_some() {
        kinds.push(("evo", port(&setup.evo)));
    }
    let seen = svc.inner.seen.lock();
    kinds
        .into_iter()
        .map(|(kind, port)| Instrument {
            kind: kind.into(),
            port,
            state: if seen.as_ref().is_ok_and(|s| s.disconnected.contains(kind)) {
                "disconnected".into()
            } else {
                state.clone()
            },
            tips: seen.as_ref().ok().and_then(|s| s.tips.get(kind).cloned()),
            last_error: seen.as_ref().ok().and_then(|s| s.errors.get(kind).cloned()),
        })
        .collect()
}

/// The API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1")))]
async fn openapi(State(svc): State<Service>, headers: HeaderMap) -> Result<Response, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    Ok(([("content-type", "application/json")], ApiDoc::openapi().to_json().unwrap_or_default()).into_response())
}

/// The workcell's instruments.
#[utoipa::path(get, path = "/api/v1/instruments", responses((status = 200, body = [Instrument])))]
async fn instruments(State(svc): State<Service>, headers: HeaderMap) -> Result<Json<Vec<Instrument>>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    let busy = svc.inner.runs.lock().map(|r| active(&r).is_some()).unwrap_or(false);
    Ok(Json(instrument_list(&svc, busy)))
}

/// Submits a campaign; it is checked whole before anything is written (422 naming the field).
#[utoipa::path(post, path = "/api/v1/runs", request_body = NewRun, responses((status = 201, body = RunView), (status = 422, body = ApiError), (status = 409, body = ApiError)))]
async fn create_run(
    State(svc): State<Service>,
    headers: HeaderMap,
    body: Result<Json<NewRun>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let token = svc.authorize(&headers, Scope::Operate)?;
    let new = svc.body(&token, body, "create run", "")?;
    Ok((StatusCode::CREATED, Json(svc.submit(new, &token.name)?)))
}

fn new_run(svc: &Service, new: NewRun) -> Result<RunView, ApiError> {
    let stamp = || cellos_store::time::now().replace([':', '-', '.'], "");
    let (id, spec) = match new.kind.as_str() {
        "campaign" => {
            let config: CampaignConfig = serde_json::from_value(new.config.unwrap_or(Value::Null))
                .map_err(|e| ApiError::invalid("config", format!("config: {e}")))?;
            config.check().map_err(|e| {
                let text = e.to_string();
                let field = [
                    "lines",
                    "compound",
                    "strategy",
                    "dose_range_um",
                    "budget_wells",
                    "seed",
                    "campaign_id",
                    "time_scale",
                ]
                .into_iter()
                .find(|f| text.contains(f))
                .unwrap_or("config");
                ApiError::invalid(field, text)
            })?;
            let id = config.campaign_id.clone().unwrap_or_else(|| format!("run_{}", stamp()));
            (id.clone(), Spec::Campaign(CampaignConfig { campaign_id: Some(id), ..config }))
        }
        "worklist" => {
            let w = WorklistSpec {
                format: new.format.unwrap_or_default(),
                content: new.content.unwrap_or_default(),
                instrument: new.instrument.unwrap_or_default(),
            };
            if !matches!(w.format.as_str(), "gwl" | "hamilton") {
                return Err(ApiError::invalid("format", format!("format `{}`: gwl or hamilton", w.format)));
            }
            match w.instrument.as_str() {
                "star" => {}
                "evo" if svc.inner.setup.twin || svc.inner.setup.evo.is_some() => {}
                "evo" => return Err(ApiError::invalid("instrument", "no EVO line is configured (serve --evo PATH)")),
                other => return Err(ApiError::invalid("instrument", format!("instrument `{other}`: star or evo"))),
            }
            let id = format!("worklist_{}", stamp());
            let loaded = crate::cli::parse_worklist(&id, w.format == "gwl", w.content.as_bytes())
                .map_err(|e| ApiError::invalid("content", e.to_string()))?;
            if loaded.steps() == 0 {
                return Err(ApiError::invalid("content", "the worklist has no steps"));
            }
            (id, Spec::Worklist(w))
        }
        other => return Err(ApiError::invalid("kind", format!("kind `{other}`: campaign or worklist"))),
    };
    let mut runs = svc.inner.runs.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
    let exists = runs.iter().any(|r| r.view.run_id == id)
        || svc.inner.access.lock().ok().and_then(|db| cellos_store::campaign::get(&db, &id).ok().flatten()).is_some();
    if exists {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("campaign `{id}` exists: give another campaign_id")));
    }
    let view = RunView {
        run_id: id,
        kind: spec.kind().into(),
        state: RunState::Queued,
        iterations: 0,
        events: 1,
        steps_done: 0,
        steps_planned: 0,
        outputs: None,
        error: None,
        prompt: None,
    };
    let (control, _) = watch::channel(Control::Run);
    let first = Service::state_event(RunState::Queued);
    {
        let mut db = svc.inner.access.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        cellos_store::service::insert_run(&mut db, &view.run_id, spec.kind(), &spec.to_json(), &first)?;
    }
    runs.push(Run { view: view.clone(), spec, log: vec![first], control });
    Ok(view)
}

/// Every run, oldest first.
#[utoipa::path(get, path = "/api/v1/runs", responses((status = 200, body = [RunView])))]
async fn list_runs(State(svc): State<Service>, headers: HeaderMap) -> Result<Json<Vec<RunView>>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    let runs = svc.inner.runs.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
    Ok(Json(runs.iter().map(|r| r.snapshot()).collect()))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = String, Path, description = "run id")), responses((status = 200, body = RunView), (status = 404, body = ApiError)))]
async fn get_run(
    State(svc): State<Service>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<RunView>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    svc.with_run(&id, |r| r.snapshot())
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no run `{id}`")))
}

/// Pause, resume or stop a run, at its next safe point; 409 when the action does not apply.
#[utoipa::path(post, path = "/api/v1/runs/{id}/actions", params(("id" = String, Path, description = "run id")), request_body = Action, responses((status = 202, body = RunView), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn act(
    State(svc): State<Service>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Result<Json<Action>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let token = svc.authorize(&headers, Scope::Operate)?;
    let a = svc.body(&token, body, "action", &id)?;
    Ok((StatusCode::ACCEPTED, Json(svc.act(&id, &a.action, &token.name)?)))
}

fn apply_action(svc: &Service, id: &str, a: Action) -> Result<(String, RunView), ApiError> {
    let conflict = |state: RunState| {
        ApiError::new(StatusCode::CONFLICT, format!("run `{id}` is {}: `{}` does not apply", state.as_str(), a.action))
    };
    let outcome = svc.with_run(id, |r| {
        let state = r.view.state;
        match (a.action.as_str(), state) {
            ("pause", RunState::Running) => {
                r.control.send_replace(Control::Pause);
                Ok(None)
            }
            ("resume", RunState::Paused) => {
                r.control.send_replace(Control::Run);
                Ok(None)
            }
            ("stop", RunState::Queued) => Ok(Some(RunState::Stopped)),
            ("stop", RunState::Running | RunState::Paused | RunState::AwaitingOperator) => {
                r.control.send_replace(Control::Stop);
                Ok(Some(RunState::Stopping))
            }
            ("pause" | "resume" | "stop", _) => Err(conflict(state)),
            (other, _) => Err(ApiError::invalid("action", format!("action `{other}`: pause, resume or stop"))),
        }
    });
    match outcome {
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no run `{id}`"))),
        Some(Err(e)) => Err(e),
        Some(Ok(new_state)) => {
            if let Some(state) = new_state {
                svc.log(id, Service::state_event(state), Some(state));
            }
            let view = svc
                .with_run(id, |r| r.snapshot())
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no run `{id}`")))?;
            Ok((a.action.clone(), view))
        }
    }
}

/// Answers the prompt a run waits on: a confirmation, or a plate-reader export (JSON `{"content": …}`, or
/// the file itself as a `text/*` body). A bad export gets 422 with its line, and the run keeps waiting;
/// a prompt answered already gets 409.
#[utoipa::path(post, path = "/api/v1/runs/{id}/prompts/{prompt_id}", params(("id" = String, Path, description = "run id"), ("prompt_id" = String, Path, description = "the prompt")), request_body = PromptAnswer, responses((status = 200, body = Answered), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
async fn answer_prompt(
    State(svc): State<Service>,
    headers: HeaderMap,
    UrlPath((id, prompt_id)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Answered>, ApiError> {
    let token = svc.authorize(&headers, Scope::Operate)?;
    let outcome = check_prompt_answer(&svc, &id, &prompt_id, &headers, &body, &token.name);
    let result = outcome.as_ref().map_or_else(|e| e.error.clone(), |_| "ok".into());
    svc.audit(&token, "answer prompt", &format!("{id}/{prompt_id}"), &result)?;
    let answer = outcome?;
    Ok(Json(Answered { prompt_id, answer }))
}

fn check_prompt_answer(
    svc: &Service,
    id: &str,
    prompt_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    by: &str,
) -> Result<Value, ApiError> {
    if svc.with_run(id, |_| ()).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no run `{id}`")));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::invalid("content", "the body is not UTF-8 text"))?;
    let plain = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/"));
    let content = if plain {
        Some(text.to_string())
    } else if text.trim().is_empty() {
        None
    } else {
        let a: PromptAnswer =
            serde_json::from_str(text).map_err(|e| ApiError::invalid("body", format!("the body: {e}")))?;
        a.content
    };
    let db = svc.inner.access.lock().map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
    let prompt = cellos_store::prompts::get(&db, id, prompt_id)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("run `{id}` has no prompt `{prompt_id}`")))?;
    if prompt.answer.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("prompt `{prompt_id}` is answered already")));
    }
    let answer = crate::campaign::operator::check_answer(&prompt, content.as_deref())
        .map_err(|e| ApiError::invalid("content", e.to_string()))?;
    if !cellos_store::prompts::answer(&db, id, prompt_id, &answer, by)? {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("prompt `{prompt_id}` is answered already")));
    }
    // The stored file is not sent back: the values are what the campaign uses.
    let mut shown = answer;
    if let Some(o) = shown.as_object_mut() {
        o.remove("content");
    }
    Ok(shown)
}

/// The run's events as Server-Sent Events, each with its id; `Last-Event-ID` replays what came after it.
/// The stream ends after the run's last event.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", params(("id" = String, Path, description = "run id")), responses((status = 200, description = "text/event-stream")))]
async fn events(
    State(svc): State<Service>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    svc.authorize(&headers, Scope::Read)?;
    if svc.with_run(&id, |_| ()).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no run `{id}`")));
    }
    let after: u64 =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let changed = svc.inner.changed.subscribe();
    let stream = futures_util::stream::unfold((svc, id, after, changed), |(svc, id, next, mut changed)| async move {
        loop {
            // The next event, or whether the run is over.
            let step = svc.with_run(&id, |r| (r.log.get(next as usize).cloned(), r.view.state.finished()))?;
            match step {
                (Some(e), _) => {
                    let kind = e["event"].as_str().unwrap_or("event").to_string();
                    let sse = SseEvent::default().id((next + 1).to_string()).event(kind).data(e.to_string());
                    return Some((Ok(sse), (svc, id, next + 1, changed)));
                }
                (None, true) => return None,
                (None, false) => {
                    if changed.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How the service is reached.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Serve on an address other machines can reach (needs TLS).
    pub allow_remote: bool,
    /// TLS, if any.
    pub tls: Tls,
}

/// The service's TLS.
#[derive(Clone, Debug, Default)]
pub enum Tls {
    /// Plain HTTP (loopback only).
    #[default]
    None,
    /// A certificate and its key, PEM files.
    Files {
        /// The certificate (chain).
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// A self-signed certificate made once and kept in the data directory (`service-cert.pem`,
    /// `service-key.pem`); its SHA-256 fingerprint is printed at start, for clients to pin.
    SelfSigned,
}

/// The SHA-256 fingerprint of a certificate (DER), as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The self-signed certificate of a data directory, made on first use for `localhost`, `127.0.0.1` and
/// `ip`: (certificate PEM path, key PEM path, fingerprint).
fn self_signed(dir: &std::path::Path, ip: std::net::IpAddr) -> Result<(PathBuf, PathBuf, String), GatewayError> {
    let (cert, key) = (dir.join("service-cert.pem"), dir.join("service-key.pem"));
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| GatewayError::Io { path, source }
    };
    if !cert.exists() || !key.exists() {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), ip.to_string()];
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| GatewayError::Config { path: cert.clone(), message: format!("making a certificate: {e}") })?;
        // The key first, readable by its owner only; the certificate last, so a certificate on disk
        // always has its key.
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&key)
                .map_err(io(&key))?;
            f.write_all(made.key_pair.serialize_pem().as_bytes()).map_err(io(&key))?;
        }
        std::fs::write(&cert, made.cert.pem()).map_err(io(&cert))?;
    }
    let pem = std::fs::read_to_string(&cert).map_err(io(&cert))?;
    let der = pem_der(&pem)
        .ok_or_else(|| GatewayError::Config { path: cert.clone(), message: "not a PEM certificate".into() })?;
    Ok((cert, key, fingerprint(&der)))
}

/// The DER bytes of the first certificate of a PEM text.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `serve`: binds, serves until SIGTERM or Ctrl-C, then stops the running campaign at its next safe
/// point, waits for it, and exits. An address other machines can reach needs `allow_remote` and TLS.
pub async fn serve(
    bind: &str,
    setup: Setup,
    access: Access,
    sila: Option<crate::sila::Listen>,
) -> Result<(), GatewayError> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|e| GatewayError::Config { path: "--bind".into(), message: format!("`{bind}`: {e}; give IP:PORT") })?;
    if !addr.ip().is_loopback() && !access.allow_remote {
        return Err(GatewayError::Config {
            path: "--bind".into(),
            message: format!("{addr} is reachable from other machines: give --allow-remote (with TLS) to serve there"),
        });
    }
    if !addr.ip().is_loopback() && matches!(access.tls, Tls::None) {
        return Err(GatewayError::Config {
            path: "--bind".into(),
            message: format!(
                "{addr} is reachable from other machines: serve it with TLS (--tls-cert and --tls-key, or --self-signed)"
            ),
        });
    }
    if let Some(n) = setup.time_scale
        && !(n.is_finite() && n > 0.0)
    {
        return Err(GatewayError::Config {
            path: "--time-scale".into(),
            message: format!("{n}: give a positive number"),
        });
    }
    if !setup.twin && (setup.ports.star.is_none() || setup.ports.reader.is_none()) {
        return Err(GatewayError::Config {
            path: "serve".into(),
            message: "give --twin, or --star and --reader".into(),
        });
    }
    let svc = Service::start(setup)?;
    let tls = match &access.tls {
        Tls::None => None,
        Tls::Files { cert, key } => Some((cert.clone(), key.clone(), None)),
        Tls::SelfSigned => {
            let (cert, key, print) = self_signed(&svc.inner.data_dir, addr.ip())?;
            Some((cert, key, Some(print)))
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The SiLA front end stops with the HTTP one.
    let (sila_stop, sila_stopped) = watch::channel(false);
    let sila_task = match sila {
        Some(listen) => {
            let mut rx = sila_stopped.clone();
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(crate::sila::prepare(svc.clone(), listen, access.allow_remote, stop).await?))
        }
        None => None,
    };
    let stopper = svc.clone();
    let shutdown = async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        // Stop what runs at its next safe point and wait for it to end; it resumes at the next start.
        stopper.inner.shutting_down.store(true, Ordering::SeqCst);
        let running: Vec<String> = stopper
            .inner
            .runs
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|x| !x.view.state.finished())
                    .map(|x| {
                        x.control.send_replace(Control::Stop);
                        x.view.run_id.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut changed = stopper.inner.changed.subscribe();
        loop {
            let busy = running.iter().any(|id| {
                stopper.with_run(id, |r| !r.view.state.finished() && r.view.state != RunState::Queued).unwrap_or(false)
            });
            if !busy || changed.changed().await.is_err() {
                break;
            }
        }
        let _ = sila_stop.send(true);
    };
    let http = serve_http(svc, addr, bind, tls, shutdown, scheme).await;
    drop(sila_stopped);
    if let Some(t) = sila_task
        && let Ok(Err(e)) = t.await
    {
        say!("warning: SiLA 2 ended with: {e}");
    }
    http
}

async fn serve_http(
    svc: Service,
    addr: SocketAddr,
    bind: &str,
    tls: Option<(PathBuf, PathBuf, Option<String>)>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    scheme: &str,
) -> Result<(), GatewayError> {
    let io = |source| GatewayError::Io { path: bind.into(), source };
    match tls {
        None => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
            say!("cellos gateway: {scheme}://{addr}/api/v1/ (data: {})", svc.inner.data_dir.display());
            axum::serve(listener, svc.router()).with_graceful_shutdown(shutdown).await.map_err(io)
        }
        Some((cert, key, print)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await.map_err(|e| {
                GatewayError::Config {
                    path: cert.clone(),
                    message: format!("TLS certificate and key ({}): {e}", key.display()),
                }
            })?;
            if let Some(p) = print {
                say!("TLS certificate {} SHA-256 fingerprint {p}", cert.display());
            }
            say!("cellos gateway: {scheme}://{addr}/api/v1/ (data: {})", svc.inner.data_dir.display());
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopping.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
            });
            axum_server::bind_rustls(addr, config)
                .handle(handle)
                .serve(svc.router().into_make_service())
                .await
                .map_err(io)
        }
    }
}

#[cfg(test)]
mod blame_tests {
    use super::*;

    #[test]
    fn errors_are_blamed_on_the_instrument_they_name() {
        let after = std::time::Duration::from_secs(5);
        let reader = GatewayError::Timeout { command: format!("{} Read {{ plate: 0 }}", crate::wire::READER), after };
        assert_eq!(blamed(&reader, "star"), Some("reader"));
        let star = GatewayError::Timeout { command: "C0ASid0001".into(), after };
        assert_eq!(blamed(&star, "star"), Some("star"));
        assert_eq!(blamed(&star, "evo"), Some("evo"));
        assert_eq!(blamed(&GatewayError::Closed, "evo"), Some("evo"));
        assert_eq!(blamed(&GatewayError::Link("x".into()), "star"), Some("reader"));
        assert_eq!(blamed(&GatewayError::Search("no dose".into()), "star"), None);
    }
}
