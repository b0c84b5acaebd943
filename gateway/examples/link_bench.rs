//! Benchmark of the STAR link: status queries (`C0RF`) to the instrument twin over a pty, with several
//! commands in flight, matched by id.
//!
//! Prints `star_roundtrips_per_s=<n> p99_latency_us=<n>` for 4 concurrent requesters (and the figures
//! for 1, 2 and 8 on the lines before, for context).
//!
//! Run: `cargo run --release -p cellos-gateway --example link_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{Protocol, SerialConfig, open_serial};

async fn measure(
    star: &Arc<StarDriver<cellos_gateway::transport::SerialTx>>,
    in_flight: usize,
    total: usize,
) -> (f64, f64) {
    let per_task = total / in_flight;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let star = Arc::clone(star);
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let r =
                    star.query(&cellos_core::proto::star_command::Command::FirmwareVersion, 1).await.expect("reply");
                lat.push(r.elapsed);
            }
            lat
        });
    }
    let mut all: Vec<Duration> = Vec::with_capacity(total);
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("task"));
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    (all.len() as f64 / secs, p99.as_secs_f64() * 1e6)
}

fn main() {
    let twin = TwinServer::start(HostTwin::new(1, Timing::DEFAULT), None, None, None).expect("twin");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (tx, rx) = open_serial(&SerialConfig::new(&twin.star), Protocol::Star).expect("pty");
        let star = Arc::new(StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(5)), 8));
        // Warm up.
        measure(&star, 2, 2000).await;
        let mut last = (0.0, 0.0);
        for in_flight in [1, 2, 8, 4] {
            let (rate, p99) = measure(&star, in_flight, 20_000).await;
            if in_flight != 4 {
                println!("# in_flight={in_flight} star_roundtrips_per_s={rate:.0} p99_latency_us={p99:.0}");
            }
            last = (rate, p99);
        }
        println!("star_roundtrips_per_s={:.0} p99_latency_us={:.0}", last.0, last.1);
    });
}
