//! The drivers against the instrument twin over real ptys, and against a scripted peer for the cases the
//! twin does not produce (busy).

use std::time::Duration;

use cellos_core::proto::evo::EvoCommand;
use cellos_core::proto::star::cmd::{self, Pipette};
use cellos_core::proto::star_command::Command;
use cellos_core::proto::wire::{Faults, Request, Response};
use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::GatewayError;
use cellos_gateway::evo::EvoDriver;
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{LinkRx, LinkTx, Protocol, SerialConfig, open_serial};
use cellos_gateway::wire::WireClient;

struct Bench {
    twin: TwinServer,
}

impl Bench {
    fn new(timing: Timing) -> Bench {
        Bench { twin: TwinServer::start(HostTwin::new(3, timing), None, None, None).unwrap() }
    }

    fn star(&self, timeouts: Timeouts) -> StarDriver<impl LinkTx> {
        let (tx, rx) = open_serial(&SerialConfig::new(&self.twin.star), Protocol::Star).unwrap();
        StarDriver::new(tx, rx, timeouts, 8)
    }

    fn evo(&self, timeout: Duration) -> EvoDriver<impl LinkTx, impl LinkRx> {
        let (tx, rx) = open_serial(&SerialConfig::new(&self.twin.evo), Protocol::Evo).unwrap();
        EvoDriver::new(tx, rx, timeout)
    }

    fn control(&self) -> WireClient<impl LinkTx, impl LinkRx> {
        let (tx, rx) = open_serial(&SerialConfig::new(&self.twin.reader), Protocol::Wire).unwrap();
        WireClient::new(tx, rx, Duration::from_secs(2))
    }

    fn commands(&self) -> u32 {
        self.twin.twin.lock().unwrap().counters.commands
    }
}

fn instrument(e: GatewayError) -> (String, u8, u8) {
    match e {
        GatewayError::Instrument(i) => (i.module, i.code, i.trace),
        other => panic!("expected an instrument error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_star_commands_matched_out_of_order() {
    let b = Bench::new(Timing::DEFAULT);
    let star = b.star(Timeouts::uniform(Duration::from_secs(5)));
    // The initialisation takes 200 ms on the twin; the queries sent after it answer at once.
    let (init, rf, qw, rt) = tokio::join!(
        star.request(|id| cmd::bare("C0", "DI", id)),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            star.query(&Command::FirmwareVersion, 1).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            star.query(&Command::QueryInitialised, 1).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            star.tip_presence().await
        },
    );
    let (init, rf, qw) = (init.unwrap(), rf.unwrap(), qw.unwrap());
    assert!(rf.elapsed < init.elapsed && qw.elapsed < init.elapsed, "{rf:?} {qw:?} {init:?}");
    assert_eq!(rf.message().param("rf").unwrap().raw(), "1.0.0 CELLOS TWIN");
    assert_eq!(rt.unwrap(), vec![false; 8]);
    assert!(init.text.starts_with("C0DIid") && init.text.ends_with("er00/00"));
    // Many at once: every reply reaches its own request.
    let star = std::sync::Arc::new(star);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let star = std::sync::Arc::clone(&star);
        set.spawn(async move { star.query(&Command::FirmwareVersion, 1).await });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        assert!(r.unwrap().unwrap().text.contains("rf1.0.0"));
        ok += 1;
    }
    assert_eq!(ok, 64);
    assert_eq!(star.stats().unmatched.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(star.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_errors_are_typed() {
    let b = Bench::new(Timing::INSTANT);
    let star = b.star(Timeouts::uniform(Duration::from_secs(2)));
    let e = star.request(|id| cmd::bare("C0", "ZZ", id)).await.unwrap_err();
    assert_eq!(instrument(e), ("C0".into(), 1, 30));
    star.request(|id| cmd::bare("C0", "DI", id)).await.unwrap();
    let p = Pipette { x_01mm: &[4900], y_01mm: &[1000], volume_01ul: &[100], traverse_01mm: 2450, flow_01ul_s: 1000 };
    let e = star.request(|id| cmd::aspirate(id, 8, 1, &p)).await.unwrap_err();
    let msg = e.to_string();
    assert_eq!(instrument(e), ("P1".into(), 8, 75));
    assert!(msg.contains("no tip picked up"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_reply_times_out_without_resending() {
    let b = Bench::new(Timing::INSTANT);
    let star = b.star(Timeouts::uniform(Duration::from_millis(300)));
    let control = b.control();
    star.request(|id| cmd::bare("C0", "DI", id)).await.unwrap();
    let faults = Faults { drop_next: 1, only_code: Some(*b"DS"), ..Faults::default() };
    assert_eq!(control.ask(&Request::SetFaults(faults)).await.unwrap(), Response::Done);
    let before = b.commands();
    let p = Pipette { x_01mm: &[2983], y_01mm: &[1457], volume_01ul: &[100], traverse_01mm: 2450, flow_01ul_s: 1000 };
    let e = star.request(|id| cmd::dispense(id, 8, 1, &p)).await.unwrap_err();
    assert!(matches!(e, GatewayError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("may or may not have been executed"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.commands() - before, 1, "the dispense was sent exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evo_errors_and_corruption() {
    let b = Bench::new(Timing::INSTANT);
    let evo = b.evo(Duration::from_millis(500));
    let control = b.control();
    let cmd = |m: &[u8; 2], c: &[u8; 3], p: &[Option<i32>]| EvoCommand::new(m, c, p).unwrap();
    let e = evo.command(&cmd(b"C5", b"PPR", &[Some(100)])).await.unwrap_err();
    assert_eq!(instrument(e), ("C5".into(), 7, 0));
    evo.command(&cmd(b"C5", b"PIA", &[])).await.unwrap();
    assert_eq!(evo.command(&cmd(b"C5", b"RNT", &[Some(1)])).await.unwrap().fields, vec![Some(8)]);
    let e = evo.command(&cmd(b"W1", b"PIB", &[])).await.unwrap_err();
    assert_eq!(instrument(e).1, 5);
    // A corrupted frame is detected, not taken for an answer.
    control.ask(&Request::SetFaults(Faults { corrupt_next: 1, ..Faults::default() })).await.unwrap();
    let e = evo.command(&cmd(b"C5", b"RNT", &[Some(1)])).await.unwrap_err();
    assert!(matches!(&e, GatewayError::Malformed { detail, .. } if detail.contains("corrupted frame")), "{e}");
    // A dropped reply times out; the next command is not confused by anything late.
    control.ask(&Request::SetFaults(Faults { delay_ms: 700, ..Faults::default() })).await.unwrap();
    let e = evo.command(&cmd(b"C5", b"RPX", &[Some(0)])).await.unwrap_err();
    assert!(matches!(e, GatewayError::Timeout { .. }));
    control.ask(&Request::SetFaults(Faults::default())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(evo.command(&cmd(b"C5", b"RNT", &[Some(1)])).await.unwrap().fields, vec![Some(8)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evo_set_cache_is_explicit() {
    let b = Bench::new(Timing::INSTANT);
    let evo = b.evo(Duration::from_millis(500));
    let shz = EvoCommand::new(b"C5", b"SHZ", &[Some(2100); 8]).unwrap();
    evo.command(&EvoCommand::new(b"C5", b"PIA", &[]).unwrap()).await.unwrap();
    let before = b.commands();
    assert!(evo.set_cached(&shz).await.unwrap());
    assert!(evo.set_cached(&shz).await.unwrap(), "cache off: sent again");
    evo.enable_set_cache(true).await;
    assert!(evo.set_cached(&shz).await.unwrap());
    assert!(!evo.set_cached(&shz).await.unwrap(), "cache on: the repeat is skipped");
    let other = EvoCommand::new(b"C5", b"SHZ", &[Some(2000); 8]).unwrap();
    assert!(evo.set_cached(&other).await.unwrap());
    assert_eq!(b.commands() - before, 4);
}

/// A scripted peer over in-memory channels.
struct ChanTx(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);
struct ChanRx(tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>);

impl LinkTx for ChanTx {
    async fn send(&mut self, m: &[u8]) -> Result<(), GatewayError> {
        self.0.send(m.to_vec()).map_err(|_| GatewayError::Closed)
    }
}

impl LinkRx for ChanRx {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        Ok(self.0.recv().await)
    }
}

#[tokio::test]
async fn busy_master_is_polled_until_accepted() {
    let (to_peer, mut peer_in) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (peer_out, from_peer) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    // The peer answers "busy" (trace 41) twice, then accepts.
    let peer = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(m) = peer_in.recv().await {
            let text = String::from_utf8(m).unwrap();
            let head = &text[..10];
            let reply = if seen.len() < 2 { format!("{head}er01/41") } else { format!("{head}er00/00") };
            seen.push(text);
            peer_out.send(reply.into_bytes()).unwrap();
        }
        seen
    });
    let star = StarDriver::new(ChanTx(to_peer), ChanRx(from_peer), Timeouts::uniform(Duration::from_secs(2)), 8);
    let r = star.request(|id| cmd::bare("C0", "DI", id)).await.unwrap();
    assert!(r.text.ends_with("er00/00"));
    drop(star);
    let seen = peer.await.unwrap();
    assert_eq!(seen.len(), 3);
    // Each attempt had its own id.
    let ids: std::collections::HashSet<&str> = seen.iter().map(|s| &s[6..10]).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn timeout_table() {
    let t = Timeouts::default();
    assert_eq!(t.for_code("AS"), Duration::from_secs(300));
    assert_eq!(t.for_code("DI"), Duration::from_secs(120));
    assert_eq!(t.for_code("RF"), Duration::from_secs(30));
    let t = t.parse_overrides("AS=600, default=10").unwrap();
    assert_eq!((t.for_code("AS"), t.for_code("RF")), (Duration::from_secs(600), Duration::from_secs(10)));
    let e = Timeouts::default().parse_overrides("as=1").unwrap_err();
    assert_eq!(e.problem, cellos_gateway::star::TimeoutProblem::BadCode);
    assert!(e.to_string().contains("two upper-case letters"), "{e}");
    let e = Timeouts::default().parse_overrides("AS=-1").unwrap_err();
    assert_eq!((e.item.as_str(), e.problem), ("AS=-1", cellos_gateway::star::TimeoutProblem::NotPositive));
    assert!(e.to_string().contains("positive"));
    let e = Timeouts::default().parse_overrides("AS=soon").unwrap_err();
    assert_eq!(e.problem, cellos_gateway::star::TimeoutProblem::NotSeconds);
    assert_eq!(
        Timeouts::default().parse_overrides("AS").unwrap_err().problem,
        cellos_gateway::star::TimeoutProblem::Syntax
    );
}
