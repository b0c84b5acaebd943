//! The SiLA 2 front end from the outside: `serve --sila` as a separate process, reached with gRPC
//! clients over TLS (trusting the authority the service made) and without. SiLAService's properties,
//! definitions, errors and metadata rule; the name kept across a restart; DoseFinding's validation
//! errors naming their parameter; a campaign run through the same queue as the HTTP API (it shows in
//! `GET /api/v1/runs`), paused and resumed, followed through its intermediate responses, ending with the
//! command line's doses. With `CELLOS_SILA_PYTHON` (a Python with the `sila2` package, as `.ci/run`
//! makes), the same through the consortium's Python client.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cellos_sila::dose_finding::{self as df, dose_finding_client::DoseFindingClient};
use cellos_sila::framework::{self, framework_error::ErrorType, si_la_error::Error};
use cellos_sila::silaservice::{self as ss, si_la_service_client::SiLaServiceClient};
use cellos_sila::string;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

mod common;

use common::BIN;

struct Server {
    child: Child,
    http: String,
    sila: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(dir: &Path, insecure: bool, sila: u16) -> Server {
    let http = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--twin", "--bind", &format!("127.0.0.1:{http}"), "--sila", &format!("127.0.0.1:{sila}")]);
    if insecure {
        cmd.arg("--sila-insecure");
    }
    let child = cmd.arg("--data-dir").arg(dir).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let s = Server { child, http: format!("http://127.0.0.1:{http}/api/v1"), sila };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("{}/health", s.http)).call().is_err() {
        assert!(Instant::now() < deadline, "the service did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

async fn channel(dir: &Path, port: u16, tls: bool) -> Channel {
    let scheme = if tls { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://127.0.0.1:{port}")).unwrap();
    if tls {
        let ca = std::fs::read(dir.join("sila-ca.pem")).unwrap();
        endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match endpoint.connect().await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no SiLA server: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn sila_error(s: &tonic::Status) -> Error {
    cellos_sila::error::decode(s).unwrap_or_else(|| panic!("not a SiLA error: {s:?}"))
}

fn validation_parameter(s: &tonic::Status) -> String {
    match sila_error(s) {
        Error::ValidationError(v) => v.parameter,
        other => panic!("{other:?}"),
    }
}

fn defined_error(s: &tonic::Status) -> String {
    match sila_error(s) {
        Error::DefinedExecutionError(d) => d.error_identifier,
        other => panic!("{other:?}"),
    }
}

fn framework_error(s: &tonic::Status) -> i32 {
    match sila_error(s) {
        Error::FrameworkError(f) => f.error_type,
        other => panic!("{other:?}"),
    }
}

fn token(dir: &Path) -> String {
    let o = Command::new(BIN)
        .args(["token", "create", "--name", "viewer", "--scope", "read", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The command line's doses for `lines` on the twin with `seed`.
fn cli_doses(lines: &str, seed: u64, budget: u16) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = lines.split(',').map(|l| format!("\"{l}\"")).collect();
    let settings = format!("lines = [{}]\nbudget_wells = {budget}\nseed = {seed}\n", lines.join(", "));
    common::cli_campaign(dir.path(), &settings, &["--twin"]);
    common::doses(dir.path(), "ref")
}

const PREFIX: &str = "io.cellos/lab/DoseFinding/v1";

fn run_params(lines: &[&str], seed: Option<i64>, budget: Option<i64>) -> df::RunCampaignParameters {
    df::RunCampaignParameters {
        cell_lines: lines.iter().map(|l| string(*l)).collect(),
        seed: seed.map(|value| framework::Integer { value }),
        budget_wells: budget.map(|value| framework::Integer { value }),
    }
}

#[test]
fn sila_service_and_dose_finding_over_grpc() {
    let expected = cli_doses("U2OS", 7, 24);
    let dir = tempfile::tempdir().unwrap();
    let viewer = token(dir.path());
    let port = free_port();
    let mut server = start(dir.path(), false, port);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ch = channel(dir.path(), port, true).await;
        let mut svc = SiLaServiceClient::new(ch.clone());
        // SiLAService.
        let features: Vec<String> = svc
            .get_implemented_features(ss::GetImplementedFeaturesParameters {})
            .await
            .unwrap()
            .into_inner()
            .implemented_features
            .into_iter()
            .map(|f| f.value)
            .collect();
        assert_eq!(features, ["org.silastandard/core/SiLAService/v1", PREFIX]);
        let fdl = svc
            .get_feature_definition(ss::GetFeatureDefinitionParameters { feature_identifier: Some(string(PREFIX)) })
            .await
            .unwrap()
            .into_inner()
            .feature_definition
            .unwrap()
            .value;
        assert_eq!(fdl, cellos_sila::features::DOSE_FINDING_FDL);
        let e = svc
            .get_feature_definition(ss::GetFeatureDefinitionParameters {
                feature_identifier: Some(string("io.cellos/lab/Teleport/v1")),
            })
            .await
            .unwrap_err();
        assert_eq!(
            defined_error(&e),
            "org.silastandard/core/SiLAService/v1/DefinedExecutionError/UnimplementedFeature"
        );
        let mut with_metadata = tonic::Request::new(ss::GetServerNameParameters {});
        with_metadata.metadata_mut().insert_bin(
            "sila-org.silastandard-test-metadataprovider-v1-metadata-stringmetadata-bin",
            tonic::metadata::MetadataValue::from_bytes(b"\x0a\x02\x0a\x00"),
        );
        let e = svc.get_server_name(with_metadata).await.unwrap_err();
        assert_eq!(framework_error(&e), ErrorType::NoMetadataAllowed as i32);
        svc.set_server_name(ss::SetServerNameParameters { server_name: Some(string("Bench 3 gateway")) })
            .await
            .unwrap();
        let uuid =
            svc.get_server_uuid(ss::GetServerUuidParameters {}).await.unwrap().into_inner().server_uuid.unwrap().value;
        assert_eq!(uuid.len(), 36);
        // The certificate carries the UUID.
        let cert = std::fs::read_to_string(dir.path().join("sila-cert.pem")).unwrap();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert.lines().filter(|l| !l.starts_with("-----")).collect::<String>())
            .unwrap();
        assert!(der.windows(36).any(|w| w == uuid.as_bytes()), "the server UUID is in its certificate");

        // DoseFinding: every parameter checked, the error naming it.
        let mut dose = DoseFindingClient::new(ch.clone());
        for (params, parameter) in [
            (run_params(&[], Some(1), Some(24)), "CellLines"),
            (run_params(&["U2OS", "HepG2", "A549", "U2OS"], Some(1), Some(24)), "CellLines"),
            (run_params(&["HAL9000"], Some(1), Some(24)), "CellLines"),
            (run_params(&["U2OS"], None, Some(24)), "Seed"),
            (run_params(&["U2OS"], Some(-1), Some(24)), "Seed"),
            (run_params(&["U2OS"], Some(1), None), "BudgetWells"),
            (run_params(&["U2OS"], Some(1), Some(0)), "BudgetWells"),
            (run_params(&["U2OS"], Some(1), Some(60)), "BudgetWells"),
        ] {
            let e = dose.run_campaign(params).await.unwrap_err();
            assert_eq!(validation_parameter(&e), format!("{PREFIX}/Command/RunCampaign/Parameter/{parameter}"));
        }
        let mut states =
            dose.subscribe_workcell_state(df::SubscribeWorkcellStateParameters {}).await.unwrap().into_inner();
        assert_eq!(states.message().await.unwrap().unwrap().workcell_state.unwrap().value, "idle");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let collector = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok(Some(m)) = states.message().await {
                    seen.lock().unwrap().push(m.workcell_state.unwrap().value);
                }
            })
        };

        let confirmation = dose.run_campaign(run_params(&["U2OS"], Some(7), Some(24))).await.unwrap().into_inner();
        let execution = confirmation.command_execution_uuid.unwrap();
        let run_id = format!("sila-{}", execution.value);
        // The same queue: the run is there for the HTTP API.
        let (_, runs) = http_get(&server, &viewer, "/runs");
        assert!(runs.as_array().unwrap().iter().any(|r| r["run_id"] == run_id && r["kind"] == "campaign"), "{runs}");
        let e = dose.run_campaign_result(execution.clone()).await.unwrap_err();
        assert_eq!(framework_error(&e), ErrorType::CommandExecutionNotFinished as i32);
        let mut intermediate = dose.run_campaign_intermediate(execution.clone()).await.unwrap().into_inner();
        // Paused after its first iteration, resumed.
        let first = intermediate.message().await.unwrap().unwrap().progress.unwrap().iteration_progress.unwrap();
        assert_eq!((first.cell_line.unwrap().value, first.iteration.unwrap().value), ("U2OS".to_string(), 1));
        let pause = df::PauseCampaignParameters { command_execution_uuid: Some(string(&execution.value)) };
        dose.pause_campaign(pause.clone()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&server, &viewer, &format!("/runs/{run_id}")).1["state"] != "paused" {
            assert!(Instant::now() < deadline, "not paused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = dose.pause_campaign(pause).await.unwrap_err();
        assert_eq!(defined_error(&e), format!("{PREFIX}/DefinedExecutionError/ActionNotApplicable"));
        dose.resume_campaign(df::ResumeCampaignParameters { command_execution_uuid: Some(string(&execution.value)) })
            .await
            .unwrap();
        let mut iterations = vec![1];
        while let Some(m) = intermediate.message().await.unwrap() {
            iterations.push(m.progress.unwrap().iteration_progress.unwrap().iteration.unwrap().value);
        }
        assert_eq!(iterations, (1..=iterations.len() as i64).collect::<Vec<_>>(), "every iteration, in order");
        let mut info = dose.run_campaign_info(execution.clone()).await.unwrap().into_inner();
        let mut last = None;
        while let Some(i) = info.message().await.unwrap() {
            last = Some(i);
        }
        let last = last.unwrap();
        assert_eq!(last.command_status, framework::execution_info::CommandStatus::FinishedSuccessfully as i32);
        assert_eq!(last.progress_info.unwrap().value, 1.0);
        let result = dose.run_campaign_result(execution.clone()).await.unwrap().into_inner();
        let doses: Vec<f64> =
            result.chosen_doses.iter().map(|d| d.chosen_dose.as_ref().unwrap().dose.as_ref().unwrap().value).collect();
        assert_eq!(doses, expected, "the command line's dose");
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().last().map(String::as_str) != Some("idle") {
            assert!(Instant::now() < deadline, "the workcell did not become idle: {:?}", seen.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = seen.lock().unwrap().clone();
        assert!(seen.contains(&"running".to_string()) && seen.contains(&"paused".to_string()), "{seen:?}");
        collector.abort();
        // Unknown executions.
        let nobody = framework::CommandExecutionUuid { value: "00000000-0000-4000-8000-000000000000".into() };
        let e = dose.run_campaign_result(nobody.clone()).await.unwrap_err();
        assert_eq!(framework_error(&e), ErrorType::InvalidCommandExecutionUuid as i32);
        let e = dose
            .stop_campaign(df::StopCampaignParameters { command_execution_uuid: Some(string(&nobody.value)) })
            .await
            .unwrap_err();
        assert_eq!(defined_error(&e), format!("{PREFIX}/DefinedExecutionError/UnknownCampaign"));
    });
    // Restarted: the same UUID and name, the same certificate authority.
    let ca = std::fs::read(dir.path().join("sila-ca.pem")).unwrap();
    drop(server);
    server = start(dir.path(), false, port);
    rt.block_on(async {
        let mut svc = SiLaServiceClient::new(channel(dir.path(), port, true).await);
        let name =
            svc.get_server_name(ss::GetServerNameParameters {}).await.unwrap().into_inner().server_name.unwrap().value;
        assert_eq!(name, "Bench 3 gateway");
    });
    assert_eq!(std::fs::read(dir.path().join("sila-ca.pem")).unwrap(), ca);
    // Every change through SiLA is in the intact audit trail.
    let o = Command::new(BIN).args(["audit", "verify", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    python_client(dir.path(), &server, &expected);
}

fn http_get(s: &Server, token: &str, path: &str) -> (u16, serde_json::Value) {
    let mut r =
        ureq::get(&format!("{}{path}", s.http)).header("Authorization", &format!("Bearer {token}")).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_json().unwrap())
}

/// The consortium's Python client, when `.ci/run` made one: the same campaign, the same dose.
fn python_client(dir: &Path, s: &Server, expected: &[f64]) {
    let Ok(python) = std::env::var("CELLOS_SILA_PYTHON") else {
        eprintln!("SKIPPED: the Python sila2 client (set CELLOS_SILA_PYTHON to a Python with sila2; .ci/run does)");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sila/interop/run_campaign.py");
    let o = Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &s.sila.to_string()])
        .arg(dir.join("sila-ca.pem"))
        .args(["U2OS", "7", "24"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["validation"], format!("{PREFIX}/Command/RunCampaign/Parameter/CellLines"), "{v}");
    assert_eq!(v["status"], "CommandExecutionStatus.finishedSuccessfully", "{v}");
    let doses: Vec<f64> = v["doses"].as_array().unwrap().iter().map(|d| d["dose_um"].as_f64().unwrap()).collect();
    assert_eq!(doses, expected, "{v}");
    let iterations: Vec<i64> =
        v["progress"].as_array().unwrap().iter().map(|p| p["iteration"].as_i64().unwrap()).collect();
    assert_eq!(iterations, (1..=iterations.len() as i64).collect::<Vec<_>>(), "{v}");
    assert!(!iterations.is_empty());
    assert!(v["states"].as_array().unwrap().iter().any(|s| s == "running"), "{v}");
}

/// Plain gRPC serves on loopback only; another address needs TLS and --allow-remote.
#[test]
fn sila_without_tls_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--sila", "0.0.0.0:0", "--sila-insecure", "--allow-remote"], vec!["--sila", "0.0.0.0:0"]] {
        let o = Command::new(BIN)
            .args(["serve", "--twin", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("reachable from other machines"), "{args:?}: {err}");
    }
    let port = free_port();
    let _s = start(dir.path(), true, port);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut svc = SiLaServiceClient::new(channel(dir.path(), port, false).await);
        let t =
            svc.get_server_type(ss::GetServerTypeParameters {}).await.unwrap().into_inner().server_type.unwrap().value;
        assert_eq!(t, "CellosGateway");
    });
}
