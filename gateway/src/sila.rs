//! The SiLA 2 front end of the service (`serve --sila ADDR`): the `SiLAService` feature and
//! `io.cellos/lab/DoseFinding/v1`, a second door onto the same runs as the HTTP API.
//!
//! `RunCampaign` checks its parameters (a SiLA validation error names the one at fault) and submits a
//! campaign run through the service's queue; its command execution UUID is part of the run's id
//! (`sila-<uuid>`), so the run shows in `GET /api/v1/runs` and a client can follow it across a restart
//! of the service. `RunCampaign_Info` streams the run's state as the SiLA command status,
//! `RunCampaign_Intermediate` one response per committed iteration, `RunCampaign_Result` the chosen
//! doses (or the defined error `CampaignFailed` / `CampaignStopped`). `PauseCampaign`, `ResumeCampaign`
//! and `StopCampaign` are the run actions. The observable property `WorkcellState` streams the
//! workcell's state. Changes are written to the audit trail as made by `sila`.
//!
//! TLS by default, from a certificate authority made once in the data directory ([`cellos_sila::tls`]);
//! `--sila-insecure` serves plain gRPC, on loopback only.

use std::net::SocketAddr;
use std::pin::Pin;

use cellos_sila::dose_finding as df;
use cellos_sila::framework::{self, execution_info::CommandStatus, framework_error::ErrorType};
use cellos_sila::{error, metadata, string};
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::GatewayError;
use crate::campaign::CampaignConfig;
use crate::service::{NewRun, RunState, Service};

/// Where and how the SiLA server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// `IP:PORT`.
    pub bind: String,
    /// Plain gRPC (loopback only) instead of TLS.
    pub insecure: bool,
    /// Announce the server by mDNS (`_sila._tcp`, the certificate authority in the TXT record).
    pub announce: bool,
}

/// The TXT record of a SiLA server's mDNS announcement (SiLA 2 Part B, discovery): `version`,
/// `server_name`, `description` (each `key=value` at most 255 bytes, cut on a character boundary) and,
/// over TLS, the authority's PEM a line per key (`ca0`, `ca1`, …).
pub fn txt_record(version: &str, name: &str, description: &str, ca_pem: Option<&str>) -> Vec<(String, String)> {
    let cut = |key: &str, v: &str| {
        let room = 255 - key.len() - 1;
        let mut end = v.len().min(room);
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        (key.to_string(), v[..end].to_string())
    };
    let mut txt = vec![cut("version", version), cut("server_name", name), cut("description", description)];
    if let Some(ca) = ca_pem {
        txt.extend(ca.lines().enumerate().map(|(i, l)| (format!("ca{i}"), l.to_string())));
    }
    txt
}

const FEATURE: &str = cellos_sila::features::DOSE_FINDING;

fn parameter(command: &str, name: &str) -> String {
    format!("{FEATURE}/Command/{command}/Parameter/{name}")
}

fn defined(name: &str, message: impl Into<String>) -> Status {
    error::defined(&format!("{FEATURE}/DefinedExecutionError/{name}"), message)
}

fn run_id(uuid: &str) -> String {
    format!("sila-{uuid}")
}

/// The DoseFinding feature over the service's runs.
#[derive(Clone)]
pub struct DoseFinding {
    svc: Service,
}

type Stream<T> = Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

impl DoseFinding {
    fn execution(&self, uuid: &framework::CommandExecutionUuid) -> Result<String, Status> {
        let id = run_id(&uuid.value);
        if uuid.value.is_empty() || self.svc.view(&id).is_none() {
            return Err(error::framework(
                ErrorType::InvalidCommandExecutionUuid,
                format!("no Run Campaign execution `{}`", uuid.value),
            ));
        }
        Ok(id)
    }

    fn action(&self, command: &str, uuid: Option<framework::String>, action: &str) -> Result<(), Status> {
        let uuid = uuid
            .ok_or_else(|| {
                error::validation(
                    &parameter(command, "CommandExecutionUUID"),
                    "the CommandExecutionUUID parameter is missing",
                )
            })?
            .value;
        let id = run_id(&uuid);
        if self.svc.view(&id).is_none() {
            return Err(defined("UnknownCampaign", format!("no Run Campaign execution `{uuid}`")));
        }
        self.svc.act(&id, action, "sila").map(drop).map_err(|e| match e.status() {
            409 => defined("ActionNotApplicable", e.error),
            _ => error::undefined(e.error),
        })
    }

    /// Follows a run: `f` turns its view and events so far into messages; the stream ends after the run
    /// has finished (and `f` has seen it so).
    fn follow<T: Send + 'static>(
        &self,
        id: String,
        mut f: impl FnMut(&crate::service::RunView, &[Value]) -> Vec<T> + Send + 'static,
    ) -> Stream<T> {
        let svc = self.svc.clone();
        let mut changes = svc.changes();
        Box::pin(async_stream(move |tx| async move {
            let mut seen = 0usize;
            loop {
                let Some(view) = svc.view(&id) else { return };
                let events = svc.events_from(&id, seen);
                seen += events.len();
                for m in f(&view, &events) {
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                }
                if finished(view.state) || changes.changed().await.is_err() {
                    return;
                }
            }
        }))
    }
}

fn finished(s: RunState) -> bool {
    matches!(s, RunState::Stopped | RunState::Failed | RunState::Succeeded)
}

/// A stream fed by a task through a channel.
fn async_stream<T: Send + 'static, F: std::future::Future<Output = ()> + Send + 'static>(
    body: impl FnOnce(tokio::sync::mpsc::Sender<T>) -> F,
) -> impl futures_util::Stream<Item = T> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

fn status_of(s: RunState) -> CommandStatus {
    match s {
        RunState::Queued => CommandStatus::Waiting,
        RunState::Succeeded => CommandStatus::FinishedSuccessfully,
        RunState::Failed | RunState::Stopped => CommandStatus::FinishedWithError,
        _ => CommandStatus::Running,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl df::dose_finding_server::DoseFinding for DoseFinding {
    async fn run_campaign(&self, request: Request<df::RunCampaignParameters>) -> Reply<framework::CommandConfirmation> {
        metadata::refuse_any(&request)?;
        let p = request.into_inner();
        let bad = |name: &str, m: String| error::validation(&parameter("RunCampaign", name), m);
        let lines: Vec<String> = p.cell_lines.into_iter().map(|l| l.value).collect();
        if lines.is_empty() || lines.len() > 3 {
            return Err(bad("CellLines", format!("give 1 to 3 cell lines, not {}", lines.len())));
        }
        let seed = p.seed.ok_or_else(|| bad("Seed", "the Seed parameter is missing".into()))?.value;
        let seed = u64::try_from(seed).map_err(|_| bad("Seed", format!("Seed = {seed}: a seed is at least 0")))?;
        let budget =
            p.budget_wells.ok_or_else(|| bad("BudgetWells", "the BudgetWells parameter is missing".into()))?.value;
        let budget = u16::try_from(budget)
            .ok()
            .filter(|b| (1..=60).contains(b))
            .ok_or_else(|| bad("BudgetWells", format!("BudgetWells = {budget}: from 1 to 60")))?;
        let uuid = cellos_sila::server::new_uuid().map_err(|e| error::undefined(format!("no execution UUID: {e}")))?;
        let mut config = CampaignConfig { lines, seed, budget_wells: budget, ..CampaignConfig::demo() };
        config.campaign_id = Some(run_id(&uuid));
        config.check().map_err(|e| {
            let text = e.to_string();
            let name = if text.contains("budget_wells") {
                "BudgetWells"
            } else if text.contains("seed") {
                "Seed"
            } else {
                "CellLines"
            };
            bad(name, text)
        })?;
        let new = NewRun {
            kind: "campaign".into(),
            config: serde_json::to_value(&config).ok(),
            format: None,
            content: None,
            instrument: None,
        };
        self.svc.submit(new, "sila").map_err(|e| match e.status() {
            409 => error::framework(ErrorType::CommandExecutionNotAccepted, e.error),
            422 => bad("CellLines", e.error),
            _ => error::undefined(e.error),
        })?;
        Ok(Response::new(framework::CommandConfirmation {
            command_execution_uuid: Some(framework::CommandExecutionUuid { value: uuid }),
            lifetime_of_execution: None,
        }))
    }

    type RunCampaign_InfoStream = Stream<framework::ExecutionInfo>;

    async fn run_campaign_info(
        &self,
        request: Request<framework::CommandExecutionUuid>,
    ) -> Reply<Self::RunCampaign_InfoStream> {
        metadata::refuse_any(&request)?;
        let id = self.execution(request.get_ref())?;
        let Some(CampaignConfig { lines, budget_wells, .. }) = self.svc.config_of(&id) else {
            return Err(error::undefined("the run's settings are unreadable"));
        };
        // Progress: search wells committed of the most the lines may take.
        let most = (lines.len() * usize::from(budget_wells)).max(1) as f64;
        let mut last: Option<(CommandStatus, u64)> = None;
        let mut wells = 0usize;
        Ok(Response::new(self.follow(id, move |view, events| {
            wells += events
                .iter()
                .filter(|e| e["event"] == "iteration")
                .filter_map(|e| e["wells"].as_u64())
                .map(|w| w.saturating_sub(1) as usize)
                .sum::<usize>();
            let status = status_of(view.state);
            let progress =
                if status == CommandStatus::FinishedSuccessfully { 1.0 } else { (wells as f64 / most).min(0.99) };
            let key = (status, (progress * 1000.0) as u64);
            if last == Some(key) {
                return Vec::new();
            }
            last = Some(key);
            vec![framework::ExecutionInfo {
                command_status: status as i32,
                progress_info: Some(framework::Real { value: progress }),
                estimated_remaining_time: None,
                updated_lifetime_of_execution: None,
            }]
        })))
    }

    type RunCampaign_IntermediateStream = Stream<df::RunCampaignIntermediateResponses>;

    async fn run_campaign_intermediate(
        &self,
        request: Request<framework::CommandExecutionUuid>,
    ) -> Reply<Self::RunCampaign_IntermediateStream> {
        metadata::refuse_any(&request)?;
        let id = self.execution(request.get_ref())?;
        Ok(Response::new(self.follow(id, |_, events| {
            events
                .iter()
                .filter(|e| e["event"] == "iteration")
                .map(|e| df::RunCampaignIntermediateResponses {
                    progress: Some(df::DataTypeIterationProgress {
                        iteration_progress: Some(df::data_type_iteration_progress::IterationProgressStruct {
                            cell_line: Some(string(e["line"].as_str().unwrap_or_default())),
                            iteration: Some(framework::Integer { value: e["iteration"].as_i64().unwrap_or_default() }),
                            wells: Some(framework::Integer { value: e["wells"].as_i64().unwrap_or_default() }),
                        }),
                    }),
                })
                .collect()
        })))
    }

    async fn run_campaign_result(
        &self,
        request: Request<framework::CommandExecutionUuid>,
    ) -> Reply<df::RunCampaignResponses> {
        metadata::refuse_any(&request)?;
        let id = self.execution(request.get_ref())?;
        let view = self.svc.view(&id).ok_or_else(|| error::undefined("the run is gone"))?;
        match view.state {
            RunState::Succeeded => {}
            RunState::Failed => {
                return Err(defined("CampaignFailed", view.error.unwrap_or_else(|| "the campaign failed".into())));
            }
            RunState::Stopped => return Err(defined("CampaignStopped", "the campaign was stopped before it finished")),
            other => {
                return Err(error::framework(
                    ErrorType::CommandExecutionNotFinished,
                    format!("the campaign is {}", other.as_str()),
                ));
            }
        }
        let chosen_doses = view
            .outputs
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|l| df::DataTypeChosenDose {
                chosen_dose: Some(df::data_type_chosen_dose::ChosenDoseStruct {
                    cell_line: Some(string(l["line"].as_str().unwrap_or_default())),
                    dose: Some(framework::Real { value: l["dose_um"].as_f64().unwrap_or(f64::NAN) }),
                    lower: Some(framework::Real { value: l["lo_um"].as_f64().unwrap_or(f64::NAN) }),
                    upper: Some(framework::Real { value: l["hi_um"].as_f64().unwrap_or(f64::NAN) }),
                    wells: Some(framework::Integer { value: l["wells"].as_i64().unwrap_or_default() }),
                }),
            })
            .collect();
        Ok(Response::new(df::RunCampaignResponses { chosen_doses }))
    }

    async fn pause_campaign(&self, request: Request<df::PauseCampaignParameters>) -> Reply<df::PauseCampaignResponses> {
        metadata::refuse_any(&request)?;
        self.action("PauseCampaign", request.into_inner().command_execution_uuid, "pause")?;
        Ok(Response::new(df::PauseCampaignResponses {}))
    }

    async fn resume_campaign(
        &self,
        request: Request<df::ResumeCampaignParameters>,
    ) -> Reply<df::ResumeCampaignResponses> {
        metadata::refuse_any(&request)?;
        self.action("ResumeCampaign", request.into_inner().command_execution_uuid, "resume")?;
        Ok(Response::new(df::ResumeCampaignResponses {}))
    }

    async fn stop_campaign(&self, request: Request<df::StopCampaignParameters>) -> Reply<df::StopCampaignResponses> {
        metadata::refuse_any(&request)?;
        self.action("StopCampaign", request.into_inner().command_execution_uuid, "stop")?;
        Ok(Response::new(df::StopCampaignResponses {}))
    }

    type Subscribe_WorkcellStateStream = Stream<df::SubscribeWorkcellStateResponses>;

    async fn subscribe_workcell_state(
        &self,
        request: Request<df::SubscribeWorkcellStateParameters>,
    ) -> Reply<Self::Subscribe_WorkcellStateStream> {
        metadata::refuse_any(&request)?;
        let svc = self.svc.clone();
        let mut changes = svc.changes();
        Ok(Response::new(Box::pin(async_stream(move |tx| async move {
            let mut last = String::new();
            loop {
                let state = svc.workcell_state();
                if state != last {
                    let m = df::SubscribeWorkcellStateResponses { workcell_state: Some(string(&state)) };
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                    last = state;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        }))))
    }
}

fn info_description() -> String {
    "The cellos lab gateway: autonomous dose-finding campaigns on a Hamilton STAR or Tecan EVO workcell with a plate reader".into()
}

/// Announces the server `uuid` by mDNS as `<uuid>._sila._tcp.local.` on `addr` (every address of the
/// machine when it is unspecified or loopback-only is not what other machines can reach: then the
/// machine's addresses are announced).
fn mdns(
    uuid: &str,
    addr: SocketAddr,
    port: u16,
    txt: &[(String, String)],
) -> Result<mdns_sd::ServiceDaemon, GatewayError> {
    let bad = |e: mdns_sd::Error| GatewayError::Config { path: "--announce".into(), message: format!("mDNS: {e}") };
    let daemon = mdns_sd::ServiceDaemon::new().map_err(bad)?;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "cellos-gateway".into());
    let properties: Vec<(&str, &str)> = txt.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ip = if addr.ip().is_unspecified() { String::new() } else { addr.ip().to_string() };
    let mut info = mdns_sd::ServiceInfo::new(
        "_sila._tcp.local.",
        uuid,
        &format!("{host}.local."),
        ip.as_str(),
        port,
        &properties[..],
    )
    .map_err(bad)?;
    if addr.ip().is_unspecified() {
        info = info.enable_addr_auto();
    }
    daemon.register(info).map_err(bad)?;
    say!("SiLA 2: announced by mDNS as {uuid}._sila._tcp.local.");
    Ok(daemon)
}

/// Makes the SiLA 2 server for `svc` on `listen` ready: checks the address (loopback unless
/// `allow_remote`, and never plain gRPC off loopback), keeps the server identity, makes the TLS files
/// the first time, binds. Returns the server, to run until `stop` resolves.
pub async fn prepare(
    svc: Service,
    listen: Listen,
    allow_remote: bool,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<impl std::future::Future<Output = Result<(), GatewayError>> + Send + 'static, GatewayError> {
    let addr: SocketAddr = listen.bind.parse().map_err(|e| GatewayError::Config {
        path: "--sila".into(),
        message: format!("`{}`: {e}; give IP:PORT", listen.bind),
    })?;
    if !addr.ip().is_loopback() && (listen.insecure || !allow_remote) {
        return Err(GatewayError::Config {
            path: "--sila".into(),
            message: format!(
                "{addr} is reachable from other machines: it needs --allow-remote and TLS (no --sila-insecure)"
            ),
        });
    }
    let dir = svc.data_dir().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|source| GatewayError::Io { path: dir.clone(), source })?;
    let info = cellos_sila::server::ServerInfo {
        server_type: "CellosGateway".into(),
        description: info_description(),
        version: env!("CARGO_PKG_VERSION").into(),
        vendor_url: "https://github.com/cellos-lab/cellos".into(),
        default_name: "cellos gateway".into(),
    };
    let sila_service = cellos_sila::server::SilaService::open(&dir, info)
        .map_err(|e| GatewayError::Config { path: dir.join("sila-server.json"), message: e.to_string() })?;
    let mut builder = tonic::transport::Server::builder();
    let uuid = sila_service.uuid();
    let announce = if listen.insecure {
        format!("SiLA 2: grpc://{addr}, without TLS (server {uuid})")
    } else {
        let files = cellos_sila::tls::ensure(&dir, &uuid, &[addr.ip()])
            .map_err(|e| GatewayError::Config { path: dir.clone(), message: e.to_string() })?;
        let read =
            |p: &std::path::Path| std::fs::read(p).map_err(|source| GatewayError::Io { path: p.to_path_buf(), source });
        let identity = tonic::transport::Identity::from_pem(read(&files.cert)?, read(&files.key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| GatewayError::Config { path: files.cert.clone(), message: e.to_string() })?;
        format!("SiLA 2: grpcs://{addr} (server {uuid}; clients trust {})", files.ca.display())
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Io { path: listen.bind.clone().into(), source })?;
    say!("{announce}");
    let daemon = if listen.announce {
        let ca = if listen.insecure { None } else { std::fs::read_to_string(dir.join("sila-ca.pem")).ok() };
        let txt = txt_record(env!("CARGO_PKG_VERSION"), &sila_service.name(), &info_description(), ca.as_deref());
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(addr.port());
        Some(mdns(&uuid, addr, port, &txt)?)
    } else {
        None
    };
    let router = builder
        .add_service(cellos_sila::silaservice::si_la_service_server::SiLaServiceServer::new(sila_service))
        .add_service(df::dose_finding_server::DoseFindingServer::new(DoseFinding { svc }));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    Ok(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, stop)
            .await
            .map_err(|e| GatewayError::Io { path: listen.bind.clone().into(), source: std::io::Error::other(e) });
        if let Some(d) = daemon {
            let _ = d.shutdown();
        }
        served
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_txt_record_follows_the_standard() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let txt = txt_record("0.1.0", "Bench 3", "A gateway", Some(ca));
        let keys: Vec<&str> = txt.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["version", "server_name", "description", "ca0", "ca1", "ca2"]);
        assert_eq!(txt[4].1, "MIIB");
        assert_eq!(txt_record("1.0", "n", "d", None).len(), 3, "no authority without TLS");
        // Each key=value fits 255 bytes, cut between characters.
        let long = "µ".repeat(200);
        let t = txt_record("1.0", &long, "d", None);
        assert_eq!(t[1].0.len() + 1 + t[1].1.len(), 254, "the last two-byte µ that fits");
        assert!(t[1].1.chars().all(|c| c == 'µ'));
    }
}
