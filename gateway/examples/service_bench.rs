//! Benchmark of the gateway service while a campaign runs: 100 clients follow the run's event stream
//! and 8 threads poll `GET /api/v1/runs/{id}` for 5 s.
//!
//! Starts an instrument twin and the service in this process (the twin on pty pairs, the service on a
//! free loopback port over a temporary data directory), submits a three-line campaign and measures.
//! Prints `status_req_per_s=<n> status_p99_ms=<n> sse_clients=<n>` (the clients that followed the
//! stream to the run's last event; the run is stopped after the polling). Goal: ≥ 2,000 requests/s, p99 ≤ 10 ms.
//!
//! Run: `cargo run --release -p cellos-gateway --example service_bench`

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::campaign;
use cellos_gateway::cli::Ports;

const SSE_CLIENTS: usize = 100;
const POLLERS: usize = 8;
const POLL_FOR: Duration = Duration::from_secs(5);
/// Lab time runs this many times real time on the twin (24 h in 2 s).
const TIME_SCALE: f64 = 43_200.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("cellos-service-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let lines: Vec<String> = ["U2OS", "HepG2", "A549"].map(String::from).to_vec();
    // The twin answers STAR commands with its default (short) timings, and its incubations run in real
    // time at 43,200× (24 h in 2 s), so the campaign (four incubations) lasts through the polling.
    let deck = campaign::deck_model(&lines)?;
    let mut host_twin = HostTwin::with_deck(deck, 7, Timing::DEFAULT);
    host_twin.time_scale = TIME_SCALE;
    let twin = TwinServer::start(host_twin, None, None, None)?;
    let db = cellos_store::db::open(&dir, cellos_store::Db::Campaigns)?;
    let (_, token) = cellos_store::access::create_token(&db, "bench", cellos_store::access::Scope::Operate)?;
    drop(db);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let bind = format!("127.0.0.1:{port}");
    let ports = Ports::lines(Some(dir.clone()), Some(twin.star.clone()), Some(twin.reader.clone()));
    let setup = cellos_gateway::service::Setup { ports, twin: false, evo: None, time_scale: None };
    let served = bind.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        if let Err(e) = rt.block_on(cellos_gateway::service::serve(&served, setup, Default::default(), None)) {
            eprintln!("serve: {e}");
        }
    });
    let base = format!("http://{bind}/api/v1");
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("{base}/health")).call().is_err() {
        if Instant::now() > deadline {
            return Err("the service did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = serde_json::json!({"kind": "campaign", "config": {"campaign_id": "bench", "lines": lines, "seed": 7, "time_scale": TIME_SCALE}});
    ureq::post(&format!("{base}/runs")).header("Authorization", &auth).send_json(body)?;

    // The event stream's followers.
    let followers: Vec<_> = (0..SSE_CLIENTS)
        .map(|_| {
            let (url, auth) = (format!("{base}/runs/bench/events"), auth.clone());
            std::thread::spawn(move || -> bool {
                let Ok(r) = ureq::get(&url).header("Authorization", &auth).call() else { return false };
                let mut last = String::new();
                for line in BufReader::new(r.into_body().into_reader()).lines().map_while(Result::ok) {
                    if line.starts_with("data: ") {
                        last = line;
                    }
                }
                last.contains("\"succeeded\"") || last.contains("\"stopped\"")
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Status polling while the campaign runs.
    let started = Instant::now();
    let pollers: Vec<_> = (0..POLLERS)
        .map(|_| {
            let (url, auth) = (format!("{base}/runs/bench"), auth.clone());
            std::thread::spawn(move || -> Vec<f64> {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                let mut times = Vec::new();
                while started.elapsed() < POLL_FOR {
                    let t = Instant::now();
                    if let Ok(mut r) = agent.get(&url).header("Authorization", &auth).call() {
                        let _ = r.body_mut().read_to_string();
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                times
            })
        })
        .collect();
    let mut times: Vec<f64> = pollers.into_iter().flat_map(|p| p.join().unwrap_or_default()).collect();
    let secs = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let p99 = times.get(times.len() * 99 / 100).copied().unwrap_or(f64::NAN);
    let state =
        ureq::get(&format!("{base}/runs/bench")).header("Authorization", &auth).call()?.body_mut().read_to_string()?;
    eprintln!("# the run during the polling: {state}");
    // Stop the run at its next safe point so the streams end.
    let _ = ureq::post(&format!("{base}/runs/bench/actions"))
        .header("Authorization", &auth)
        .send_json(serde_json::json!({"action": "stop"}));
    let ended = followers.into_iter().map(|f| f.join().unwrap_or(false)).filter(|&ok| ok).count();
    println!("status_req_per_s={:.0} status_p99_ms={p99:.2} sse_clients={ended}", times.len() as f64 / secs);
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0)
}
