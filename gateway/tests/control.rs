//! Pause, resume and stop of a running campaign, at safe points: while paused nothing is sent; a pause
//! or a stop never leaves liquid in a tip or a journal entry pending; a paused-and-resumed campaign, and
//! a stopped-then-resumed one, end with exactly the uninterrupted campaign's results and readings.

mod common;

use common::on_big_stack;
use std::path::Path;
use std::time::Duration;

use cellos_core::proto::wire::Counters;
use cellos_firmware::HostTwin;
use cellos_firmware::host::TwinServer;
use cellos_firmware::star::Timing;
use cellos_gateway::GatewayError;
use cellos_gateway::campaign::{self, CampaignConfig, Control, Event, LineResult, Runner};
use cellos_gateway::handlers::StarHandler;
use cellos_gateway::liquid::Workcell;
use cellos_gateway::star::{StarDriver, Timeouts};
use cellos_gateway::transport::{Protocol, SerialConfig, SerialTx, open_line};
use cellos_gateway::wire::WireClient;
use cellos_store::{Db, Store};
use tokio::sync::{mpsc, watch};

fn config(id: &str) -> CampaignConfig {
    let mut c: CampaignConfig = toml::from_str("lines = [\"U2OS\"]\nbudget_wells = 48\nseed = 7").unwrap();
    c.campaign_id = Some(id.to_string());
    c
}

fn twin(c: &CampaignConfig) -> TwinServer {
    let deck = campaign::deck_model(&c.lines).unwrap();
    TwinServer::start(HostTwin::with_deck(deck, c.seed, Timing::INSTANT), None, None, None).unwrap()
}

async fn runner(t: &TwinServer, dir: &Path, c: &CampaignConfig, new: bool) -> Runner<StarHandler<SerialTx>> {
    let (tx, rx, _) = open_line(&SerialConfig::new(t.star.as_str()), Protocol::Star).await.unwrap();
    let (wtx, wrx, _) = open_line(&SerialConfig::new(t.reader.as_str()), Protocol::Wire).await.unwrap();
    let driver = StarDriver::new(tx, rx, Timeouts::uniform(Duration::from_secs(5)), 8);
    let reader = WireClient::new(wtx, wrx, Duration::from_secs(5));
    let store = Store::open(dir).unwrap();
    let id = c.campaign_id.clone().unwrap();
    if new {
        campaign::claim(&store.campaigns, &id, c).unwrap();
    }
    let workcell = Workcell::new(StarHandler::new(driver), campaign::deck_model(&c.lines).unwrap());
    Runner::new(workcell, reader, store, id, c.clone()).unwrap()
}

/// Every reading the campaign committed: (iteration, well, viability, CellROX, segmentation).
fn readings(dir: &Path, id: &str) -> Vec<(i64, String, f64, f64, f64)> {
    let db = cellos_store::db::open(dir, Db::ExperimentalResults).unwrap();
    let mut st = db
        .prepare("SELECT iteration, well_id, viability_norm, raw_signal, segmentation FROM measurements WHERE campaign_id = ?1 ORDER BY iteration, well_id")
        .unwrap();
    st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn journal(dir: &Path, id: &str) -> cellos_store::journal::Counts {
    let db = cellos_store::db::open(dir, Db::Campaigns).unwrap();
    cellos_store::journal::counts(&db, id).unwrap()
}

fn counters(t: &TwinServer) -> Counters {
    t.twin.lock().unwrap().counters
}

fn tips_on(t: &TwinServer) -> usize {
    t.twin.lock().unwrap().star.channels.iter().filter(|c| c.is_some()).count()
}

/// A new campaign `id` on a twin of its own, under control, reporting its events.
async fn controlled(
    id: &str,
    dir: &Path,
) -> (CampaignConfig, TwinServer, Runner<StarHandler<SerialTx>>, watch::Sender<Control>, mpsc::UnboundedReceiver<Event>)
{
    let c = config(id);
    let t = twin(&c);
    let mut r = runner(&t, dir, &c, true).await;
    let (control, asked) = watch::channel(Control::Run);
    let (events, seen) = mpsc::unbounded_channel();
    r.controlled_by(asked);
    r.report_to(events);
    (c, t, r, control, seen)
}

/// Runs a campaign to its end and lets go of it (its event sender with it, which ends the listener).
async fn run_to_end(mut r: Runner<StarHandler<SerialTx>>) -> Result<Vec<LineResult>, GatewayError> {
    let out = r.run().await;
    drop(r);
    out
}

/// The uninterrupted campaign: its results, readings and twin counters.
async fn reference() -> (Vec<LineResult>, Vec<(i64, String, f64, f64, f64)>, Counters) {
    let dir = tempfile::tempdir().unwrap();
    let c = config("ref");
    let t = twin(&c);
    let mut r = runner(&t, dir.path(), &c, true).await;
    let results = r.run().await.unwrap();
    drop(r);
    (results, readings(dir.path(), "ref"), counters(&t))
}

#[test]
fn a_paused_campaign_sends_nothing_and_resumes_to_the_same_end() {
    on_big_stack(paused);
}

#[test]
fn a_stopped_campaign_ends_at_a_safe_point_and_resumes_to_the_same_end() {
    on_big_stack(stopped);
}

async fn paused() {
    let (expected, expected_readings, expected_counters) = reference().await;
    assert!(expected_readings.len() > 20, "{}", expected_readings.len());
    let dir = tempfile::tempdir().unwrap();
    let (_, t, r, control, mut seen) = controlled("paused", dir.path()).await;
    let operator = async {
        let mut pauses = 0;
        while let Some(e) = seen.recv().await {
            match e {
                // Pause after each of the first two iterations.
                Event::Iteration { .. } if pauses < 2 => {
                    control.send(Control::Pause).unwrap();
                }
                Event::Paused { .. } => {
                    pauses += 1;
                    let (before, journal_before) = (counters(&t), journal(dir.path(), "paused"));
                    assert_eq!(tips_on(&t), 0, "paused with a tip on a channel");
                    assert_eq!(journal_before.not_done, 0, "paused with a step pending");
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    assert_eq!(counters(&t), before, "an instrument command was sent while paused");
                    assert_eq!(journal(dir.path(), "paused"), journal_before, "a step was journaled while paused");
                    control.send(Control::Run).unwrap();
                }
                _ => {}
            }
        }
        pauses
    };
    let run = run_to_end(r);
    let (pauses, results) = tokio::join!(operator, run);
    assert_eq!(pauses, 2);
    assert_eq!(results.unwrap(), expected);
    assert_eq!(readings(dir.path(), "paused"), expected_readings);
    let got = counters(&t);
    assert_eq!(
        (got.aspirates, got.dispenses, got.tip_pickups),
        (expected_counters.aspirates, expected_counters.dispenses, expected_counters.tip_pickups)
    );
}

async fn stopped() {
    let (expected, expected_readings, expected_counters) = reference().await;
    let dir = tempfile::tempdir().unwrap();
    let (c, t, r, control, mut seen) = controlled("stopped", dir.path()).await;
    let operator = async {
        while let Some(e) = seen.recv().await {
            if let Event::Iteration { iteration: 2, .. } = e {
                control.send(Control::Stop).unwrap();
            }
        }
    };
    let run = run_to_end(r);
    let ((), stopped) = tokio::join!(operator, run);
    match stopped {
        Err(GatewayError::Stopped { campaign }) => assert_eq!(campaign, "stopped"),
        other => panic!("expected a stop, got {other:?}"),
    }
    assert_eq!(tips_on(&t), 0, "stopped with a tip on a channel");
    let j = journal(dir.path(), "stopped");
    assert!(j.entries > 0 && j.not_done == 0, "{j:?}");
    let at_stop = counters(&t);
    assert!(at_stop.aspirates < expected_counters.aspirates);
    // Resumed without a controller: the rest of the campaign, nothing twice.
    let mut r = runner(&t, dir.path(), &c, false).await;
    let results = r.run().await.unwrap();
    drop(r);
    assert_eq!(results, expected);
    assert_eq!(readings(dir.path(), "stopped"), expected_readings);
    let got = counters(&t);
    assert_eq!((got.aspirates, got.dispenses), (expected_counters.aspirates, expected_counters.dispenses));
}
