//! The runner: a thin loop that carries the plan out on the instruments, one journaled step at a time,
//! reconciling what a stopped gateway left pending, and reports progress as [`Event`]s.

use std::time::Instant;

use cellos_core::deck::Location;
use cellos_core::proto::wire::{Readout, Request, Response};
use cellos_core::search::{Observation, Step, TbhpAssay};
use cellos_store::campaign::{self as records, Experiment, Iteration, Measurement};
use cellos_store::journal::{self as entries, JournalState};
use cellos_store::outputs::{self, StageKey};
use cellos_store::{Store, inventory, prompts};
use serde_json::{Value, json};

use super::config::Equipment;
use super::journal::StoredObs;
use super::labtime::LabFigures;
use super::operator::{self, PromptKind};
use super::plan::{self, Transfer};
use super::{
    CELLS_PER_UL, CampaignConfig, Event, JournalOp, LineResult, SEED_UL, TARGET_BFP, TITRATION_ITERATION, TITRATION_UL,
};
use crate::GatewayError;
use crate::liquid::{LiquidHandler, Place, Workcell};
use crate::transport::{SerialRx, SerialTx};
use crate::wire::WireClient;

/// A campaign in progress.
pub struct Runner<H: LiquidHandler> {
    /// The instrument behind the safety envelope.
    pub workcell: Workcell<H>,
    reader: WireClient<SerialTx, SerialRx>,
    store: Store,
    /// The campaign.
    pub id: String,
    config: CampaignConfig,
    /// Plate clocks the model expects (hours), by deck plate index.
    clocks: Vec<f64>,
    /// Journal entries of the campaign: (iteration, seq) → (state, op).
    journal: std::collections::HashMap<(i64, i64), (JournalState, JournalOp)>,
    /// When each journal entry was written.
    sent_at: std::collections::HashMap<(i64, i64), String>,
    /// The operations the journal holds as done, in the order they were done.
    done_in_order: Vec<JournalOp>,
    /// Replay `done_in_order` on a fresh twin before going on.
    replay: bool,
    iteration: i64,
    seq: i64,
    /// Channels the campaign pipettes with at once.
    channels: usize,
    /// The deck's tips, µL.
    capacity_ul: f64,
    /// Each iteration's batches so far (committed ones included).
    batches_run: Vec<Vec<plan::LineWells>>,
    /// Where progress goes, if anywhere.
    events: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    /// What the operator asks (run, pause, stop), if anyone can.
    control: Option<tokio::sync::watch::Receiver<Control>>,
}

/// What the operator asks of a running campaign. Pause and stop take effect at the next safe point:
/// before a run of transfers picks up its tip (no tip on a channel, no liquid in a tip), before an
/// incubation, before a well is read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Run,
    /// Wait at the next safe point until asked to run or stop.
    Pause,
    /// End at the next safe point (the journal then holds nothing pending).
    Stop,
}

impl<H: LiquidHandler> Runner<H> {
    /// A runner for campaign `id` (claimed with [`claim`](super::claim) before, or being resumed) over a workcell and a
    /// reader: the journal is loaded and the deck model rebuilt from what certainly happened.
    pub fn new(
        workcell: Workcell<H>,
        reader: WireClient<SerialTx, SerialRx>,
        store: Store,
        id: String,
        config: CampaignConfig,
    ) -> Result<Self, GatewayError> {
        config.check()?;
        let plates = workcell.envelope.deck.plates.len();
        let has = workcell.envelope.tips.len().clamp(1, 8);
        let channels = config.channels.unwrap_or(has).min(has);
        let capacity_ul =
            workcell.envelope.deck.tip_racks.iter().map(|r| f64::from(r.tip_volume_01ul) / 10.0).fold(0.0, f64::max);
        let mut r = Runner {
            workcell,
            reader,
            store,
            id,
            config,
            clocks: vec![0.0; plates],
            journal: Default::default(),
            sent_at: Default::default(),
            done_in_order: Vec::new(),
            replay: false,
            iteration: 0,
            seq: 0,
            channels,
            capacity_ul,
            batches_run: Vec::new(),
            events: None,
            control: None,
        };
        r.load_journal()?;
        Ok(r)
    }

    /// The instrument is a fresh twin standing in for one that is gone: before the campaign goes on, every
    /// operation the journal holds as done is carried out on it again, in order, so that it holds what
    /// the old one held (the reader's noise depends only on seed, plate, well, readout and time, so it
    /// then reads what the old one would have).
    pub fn replay_on_fresh_twin(&mut self) {
        self.replay = true;
    }

    /// Sends the campaign's progress to `events` as it happens.
    pub fn report_to(&mut self, events: tokio::sync::mpsc::UnboundedSender<Event>) {
        self.events = Some(events);
    }

    /// Takes pause and stop requests from `control`.
    pub fn controlled_by(&mut self, control: tokio::sync::watch::Receiver<Control>) {
        self.control = Some(control);
    }

    /// A safe point: waits while paused; a stop ends the run here.
    async fn safe_point(&mut self) -> Result<(), GatewayError> {
        let Some(mut rx) = self.control.take() else { return Ok(()) };
        let outcome = self.wait_while_paused(&mut rx).await;
        self.control = Some(rx);
        outcome
    }

    async fn wait_while_paused(&self, rx: &mut tokio::sync::watch::Receiver<Control>) -> Result<(), GatewayError> {
        let stopped = || GatewayError::Stopped { campaign: self.id.clone() };
        let mut paused = false;
        loop {
            let asked = *rx.borrow_and_update();
            match asked {
                Control::Run => break,
                Control::Stop => {
                    self.emit(Event::Stopped { iteration: self.iteration });
                    return Err(stopped());
                }
                Control::Pause => {
                    if !paused {
                        paused = true;
                        self.emit(Event::Paused { iteration: self.iteration });
                    }
                    // The sender gone: nobody can resume, so the pause ends the run as a stop would.
                    if rx.changed().await.is_err() {
                        return Err(stopped());
                    }
                }
            }
        }
        if paused {
            self.emit(Event::Resumed { iteration: self.iteration });
        }
        Ok(())
    }

    /// A plate's incubation begins, after a safe point. Automated: it is sent on the reader link (the
    /// plate's clock then runs on its own). Manual: the operator is asked to put the plate in the
    /// incubator first. Either way the real-time end is journaled with the step, so a restart waits for
    /// the same moment. The runner goes on with other work until [`Runner::await_incubations`].
    async fn start_incubation(&mut self, plate: u8, hours: f64) -> Result<Incubation, GatewayError> {
        self.safe_point().await?;
        let name = self.plate_name(plate);
        let seq = self.seq + 1;
        if self.config.incubator == Equipment::Manual {
            self.confirm_plate(
                &format!("s{seq}-in"),
                &name,
                format!("Put {name} in the incubator for {hours} h, then confirm"),
            )
            .await?;
        }
        self.step(JournalOp::Incubate { plate, hours }).await?;
        // It ends this long after its entry was first written (a restart waits for the same moment).
        let micros = (hours * self.config.seconds_per_hour() * 1e6) as i64;
        let written = self.sent_at.get(&(self.iteration, self.seq)).and_then(|t| cellos_store::time::parse_micros(t));
        let end = written.unwrap_or_else(now_micros) + micros;
        let until = cellos_store::time::format_micros(end);
        self.emit(Event::Incubating { iteration: self.iteration, plate: name.clone(), hours, until });
        Ok(Incubation { iteration: self.iteration, plate, name, seq, end, hours })
    }

    /// Waits for incubations begun with [`Runner::start_incubation`], in the order they began.
    /// Automated: each plate's clock is watched until its hours are done (at once on an instant twin).
    /// Manual: the gateway keeps the time and then asks for each plate back.
    async fn await_incubations(&mut self, started: Vec<Incubation>) -> Result<(), GatewayError> {
        if self.config.incubator == Equipment::Manual {
            let at = self.iteration;
            for s in started {
                self.wait_until(s.end).await?;
                let text = format!(
                    "Take {} out of the incubator and put it back in its place on the deck, then confirm",
                    s.name
                );
                // The prompt belongs to the iteration the plate went in with.
                self.iteration = s.iteration;
                let asked = self.confirm_plate(&format!("s{}-out", s.seq), &s.name, text).await;
                self.iteration = at;
                asked?;
            }
            return Ok(());
        }
        for s in started {
            // The incubator may take a little longer than planned: a tenth of the time, a minute at least.
            let micros = (s.hours * self.config.seconds_per_hour() * 1e6) as i64;
            let grace = (micros / 10).max(60_000_000);
            // The model's clock after this incubation is what the plate's must reach.
            let target = self.clocks[usize::from(s.plate)];
            loop {
                if self.reader.incubation_done(s.plate, target).await? {
                    break;
                }
                let now = now_micros();
                if now > s.end + grace {
                    return Err(GatewayError::Link(format!(
                        "{} has not finished its {} h incubation by {} (and {} s more): the plate clock reads {} h, {target} h expected",
                        s.name,
                        s.hours,
                        cellos_store::time::format_micros(s.end),
                        grace / 1_000_000,
                        self.reader.plate_clock(s.plate).await?
                    )));
                }
                self.stop_requested()?;
                let wait = ((s.end - now) / 2).clamp(20_000, 1_000_000);
                tokio::time::sleep(std::time::Duration::from_micros(wait as u64)).await;
            }
        }
        Ok(())
    }

    /// Asks the operator to confirm something done to plate `name`; the prompt's id is the iteration's
    /// and `what` (`s21-in`).
    async fn confirm_plate(&mut self, what: &str, name: &str, text: String) -> Result<(), GatewayError> {
        let id = format!("i{}-{what}", self.iteration);
        self.ask_operator(&id, PromptKind::Confirm, text, json!({ "plate": name })).await.map(drop)
    }

    /// Waits until `end` (µs since the epoch); a stop ends the wait (it is a safe point).
    async fn wait_until(&mut self, end: i64) -> Result<(), GatewayError> {
        loop {
            let left = end - now_micros();
            if left <= 0 {
                return Ok(());
            }
            self.stop_requested()?;
            tokio::time::sleep(std::time::Duration::from_micros(left.min(250_000) as u64)).await;
        }
    }

    /// Err(Stopped) when a stop was asked (for waits, which are safe points).
    fn stop_requested(&self) -> Result<(), GatewayError> {
        if self.control.as_ref().is_some_and(|rx| *rx.borrow() == Control::Stop) {
            self.emit(Event::Stopped { iteration: self.iteration });
            return Err(GatewayError::Stopped { campaign: self.id.clone() });
        }
        Ok(())
    }

    /// Asks the operator (or finds the answer given before a restart) and waits for the answer, which
    /// whoever answers has checked ([`operator::check_answer`]). A stop ends the wait.
    async fn ask_operator(
        &mut self,
        prompt_id: &str,
        kind: PromptKind,
        text: String,
        spec: Value,
    ) -> Result<Value, GatewayError> {
        let asked = prompts::ask(&self.store.campaigns, &self.id, prompt_id, kind.as_str(), &text, &spec)?;
        if let Some(a) = asked.answer {
            return Ok(a);
        }
        self.emit(Event::Prompt { prompt_id: prompt_id.into(), kind: kind.as_str().into(), text, spec });
        loop {
            if let Some(a) = prompts::get(&self.store.campaigns, &self.id, prompt_id)?.and_then(|p| p.answer) {
                self.emit(Event::Answered { prompt_id: prompt_id.into() });
                return Ok(a);
            }
            self.stop_requested()?;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The readouts of a plate's wells (well by well, readouts in the order given): from the reader
    /// link, with a safe point before each well, or from the export an operator uploads.
    async fn read_plate(
        &mut self,
        plate: u8,
        wells: &[String],
        readouts: &[Readout],
    ) -> Result<Vec<Vec<f64>>, GatewayError> {
        if self.config.reader == Equipment::Manual {
            self.safe_point().await?;
            let name = self.plate_name(plate);
            let names: Vec<&str> = readouts.iter().map(|r| crate::reader_export::readout_name(*r)).collect();
            let text = format!(
                "Read {name} on the plate reader ({}) and upload its export; the wells: {}",
                names.join(", "),
                wells.join(" ")
            );
            let spec = operator::upload_spec(&name, wells, readouts);
            let answer =
                self.ask_operator(&format!("i{}-read", self.iteration), PromptKind::Upload, text, spec).await?;
            let values: Vec<Vec<f64>> =
                serde_json::from_value(answer["values"].clone()).map_err(|e| GatewayError::Stored {
                    what: format!("the reader export answered in iteration {}", self.iteration),
                    message: e.to_string(),
                })?;
            if values.len() != wells.len() || values.iter().any(|v| v.len() != readouts.len()) {
                return Err(GatewayError::Stored {
                    what: format!("the reader export answered in iteration {}", self.iteration),
                    message: format!("{} wells of values for {} wells", values.len(), wells.len()),
                });
            }
            return Ok(values);
        }
        let mut out = Vec::new();
        for w in wells {
            self.safe_point().await?;
            let mut row = Vec::new();
            for &r in readouts {
                row.push(self.read(plate, w, r).await?);
            }
            crate::crash::point("reading");
            out.push(row);
        }
        Ok(out)
    }

    fn plate_name(&self, plate: u8) -> String {
        self.workcell
            .envelope
            .deck
            .plates
            .get(usize::from(plate))
            .map_or_else(|| format!("plate {plate}"), |p| p.name.to_string())
    }

    fn emit(&self, event: Event) {
        if let Some(tx) = &self.events {
            // A listener that went away does not stop the campaign.
            let _ = tx.send(event);
        }
    }

    fn load_journal(&mut self) -> Result<(), GatewayError> {
        for e in entries::entries::<JournalOp>(&self.store.campaigns, &self.id)? {
            // Rebuild the model from what certainly happened.
            if e.state.happened() {
                self.apply(&e.op);
                self.done_in_order.push(e.op.clone());
            }
            self.sent_at.insert((e.iteration, e.seq), e.sent_at);
            self.journal.insert((e.iteration, e.seq), (e.state, e.op));
        }
        Ok(())
    }

    /// Carries out the journal's done operations on a fresh twin (see [`Runner::replay_on_fresh_twin`]).
    async fn replay(&mut self) -> Result<(), GatewayError> {
        let ops = std::mem::take(&mut self.done_in_order);
        let deck = plan::deck_model(&self.config.lines)?;
        self.workcell.envelope = crate::liquid::Envelope::new(deck, self.workcell.envelope.tips.len());
        self.clocks = vec![0.0; self.clocks.len()];
        for op in &ops {
            match op {
                JournalOp::Incubate { plate, hours, .. } => {
                    self.reader.incubate(*plate, *hours, self.clocks[usize::from(*plate)]).await?;
                    self.apply(op);
                    // A twin with a time scale incubates in real time: the next operation waits for it.
                    while !self.reader.incubation_done(*plate, self.clocks[usize::from(*plate)]).await? {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                other => {
                    let ops = other.liquid_ops();
                    if ops.is_empty() {
                        continue;
                    }
                    self.workcell
                        .run_all(&ops)
                        .await
                        .map_err(|e| GatewayError::Replay { op: other.describe(), cause: Box::new(e) })?;
                }
            }
        }
        self.emit(Event::Replayed { operations: ops.len() });
        self.done_in_order = ops;
        Ok(())
    }

    fn apply(&mut self, op: &JournalOp) {
        match op {
            JournalOp::Incubate { plate, hours, .. } => {
                if let Some(c) = self.clocks.get_mut(usize::from(*plate)) {
                    *c += hours;
                }
            }
            other => {
                if let Ok((effects, _)) = self.workcell.envelope.check_all(&other.liquid_ops()) {
                    for effect in &effects {
                        self.workcell.envelope.apply(effect);
                    }
                }
            }
        }
    }

    /// The reader link.
    pub fn reader(&self) -> &WireClient<SerialTx, SerialRx> {
        &self.reader
    }

    /// Runs (or finishes) the campaign; returns each line's result.
    pub async fn run(&mut self) -> Result<Vec<LineResult>, GatewayError> {
        self.workcell.initialise().await?;
        if std::mem::take(&mut self.replay) {
            self.replay().await?;
        }
        if self.config.posh {
            for (li, line) in self.config.lines.clone().iter().enumerate() {
                self.bank(li, line)?;
            }
        }
        let lines = self.config.lines.clone();
        let results = self.search_lines(&lines).await?;
        let mut out = Vec::new();
        for (line, result) in lines.iter().zip(results) {
            let assay = TbhpAssay::builtin(line).map_err(|e| GatewayError::Search(format!("{line}: {e}")))?;
            let optimum = assay.optimum(
                &cellos_core::search::Criteria::default(),
                self.config.dose_range_um[0],
                self.config.dose_range_um[1],
            );
            let value = json!({ "value": result.dose_um, "lo": result.lo_um, "hi": result.hi_um, "wells": result.wells, "status": result.status.as_str() });
            outputs::set(&self.store.campaigns, &self.id, line, StageKey::OptimalTbhpDose, &value)?;
            let done = LineResult {
                line: line.clone(),
                dose_um: result.dose_um,
                lo_um: result.lo_um,
                hi_um: result.hi_um,
                wells: result.wells,
                status: result.status.as_str().into(),
                optimum_um: optimum,
            };
            self.emit(Event::LineDone(done.clone()));
            out.push(done);
        }
        if self.config.posh {
            let mut todo = Vec::new();
            for (li, line) in lines.iter().enumerate() {
                if outputs::get(&self.store.campaigns, &self.id, line, StageKey::LvEstimatedTiter)?.is_none() {
                    todo.push((li, line.clone()));
                }
            }
            self.titrate(&todo).await?;
        }
        let summary = serde_json::to_value(&out).unwrap_or(Value::Null);
        records::complete(&self.store.campaigns, &self.id, &summary)?;
        let measured = self.lab_time()?;
        let single = super::labtime::of_iterations(&self.config, &self.batches_run, 1)?;
        self.emit(Event::LabTime { measured, single_channel_robot_hours: single.robot_hours });
        Ok(out)
    }

    /// The lab time the campaign took, from its journal (every step that happened) and the wells it
    /// read: what `campaign plan` forecasts, measured.
    pub fn lab_time(&self) -> Result<LabFigures, GatewayError> {
        super::labtime::measured(&self.store.campaigns, &self.id, &self.config)
    }

    /// The dose searches of every line, side by side: an iteration runs each line still searching on its
    /// own plate, all at once (seeding, incubation, treatment, incubation, reading), so the campaign's
    /// calendar is set by its rounds, not by rounds × lines. The wells of the next iteration are seeded
    /// during this one's treatment, so they have grown their 24 h when its reading is done.
    async fn search_lines(&mut self, lines: &[String]) -> Result<Vec<cellos_core::search::SearchResult>, GatewayError> {
        let committed = records::iterations(&self.store.campaigns, &self.id)?;
        let n = lines.len();
        let mut searches = Vec::with_capacity(n);
        for _ in 0..n {
            searches.push(self.config.search()?);
        }
        let mut results: Vec<Option<cellos_core::search::SearchResult>> = vec![None; n];
        let mut rounds = plan::Rounds::new(n);
        let mut doses = [0.0; super::config::MAX_BATCH];
        self.iteration = 0;
        loop {
            self.iteration += 1;
            let mut batches = Vec::new();
            for li in 0..n {
                if results[li].is_some() {
                    continue;
                }
                match searches[li].next(&mut doses).map_err(|e| GatewayError::Search(e.to_string()))? {
                    Step::Done(r) => results[li] = Some(r),
                    Step::Batch(k) => {
                        // What the next iteration may ask for is seeded in this one.
                        let next = searches[li].upcoming(doses.len());
                        batches.push(rounds.line_wells(li, &doses[..k], next)?);
                    }
                }
            }
            if batches.is_empty() {
                break;
            }
            let observations = match committed.iter().find(|c| c.number == self.iteration) {
                Some(c) => batches
                    .iter()
                    .map(|b| {
                        let line = &lines[b.li];
                        let stored = c.results["lines"]
                            .as_array()
                            .and_then(|all| all.iter().find(|x| x["line"] == json!(line)))
                            .map(|x| x["observations"].clone())
                            .unwrap_or(Value::Null);
                        serde_json::from_value::<Vec<StoredObs>>(stored)
                            .map(|v| v.into_iter().map(StoredObs::into_obs).collect::<Vec<_>>())
                            .map_err(|e| GatewayError::Stored {
                                what: format!("{line} in iteration {} of campaign `{}`", c.number, self.id),
                                message: e.to_string(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                None => self.run_iteration(lines, &batches).await?,
            };
            for (b, obs) in batches.iter().zip(observations) {
                searches[b.li].observe(&obs).map_err(|e| GatewayError::Search(e.to_string()))?;
                rounds.advance(b);
            }
            self.batches_run.push(batches);
        }
        // The loop ends when no line asks for wells: every search is done.
        results
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GatewayError::Search("a line's search did not finish".into()))
    }

    /// One step of an iteration: skipped if the journal says it happened, reconciled if it was left
    /// pending, sent otherwise.
    /// Returns the step as journaled (a restarted step keeps what was first written, its tip spot and
    /// its incubation's end).
    async fn step(&mut self, planned: JournalOp) -> Result<JournalOp, GatewayError> {
        self.seq += 1;
        let key = (self.iteration, self.seq);
        let recorded = self.journal.get(&key).cloned();
        // A step the journal holds is the one that was (maybe) sent: its tip spot is the one then free.
        let op = match &recorded {
            Some((_, op)) if std::mem::discriminant(op) == std::mem::discriminant(&planned) => op.clone(),
            Some((_, op)) => {
                return Err(GatewayError::JournalMismatch {
                    iteration: key.0,
                    seq: key.1,
                    journal: format!("{op:?}"),
                    plan: format!("{planned:?}"),
                });
            }
            None => planned,
        };
        match recorded.map(|(s, _)| s) {
            Some(s) if s.happened() => return Ok(op),
            Some(_) => {
                if self.happened(&op).await? {
                    self.apply(&op);
                    self.mark(key, JournalState::Reconciled, Some("found done on the instrument after a restart"))?;
                    return Ok(op);
                }
                self.mark(key, JournalState::Pending, Some("not done on the instrument: sent again after a restart"))?;
            }
            None => {
                let at = entries::write(&self.store.campaigns, &self.id, key.0, key.1, &op)?;
                self.sent_at.insert(key, at);
            }
        }
        crate::crash::point("journal written, before sending");
        let result = match &op {
            // The operator put the plate in (confirmed before the step was written).
            JournalOp::Incubate { .. } if self.config.incubator == Equipment::Manual => Ok(()),
            // Never re-sent blindly: a lost reply is settled by reading the plate clock back.
            JournalOp::Incubate { plate, hours, .. } => {
                self.reader.incubate(*plate, *hours, self.clocks[usize::from(*plate)]).await
            }
            other => {
                let ops = other.liquid_ops();
                if ops.is_empty() { Ok(()) } else { self.workcell.run_all(&ops).await }
            }
        };
        crate::crash::point("reply received, before recording it");
        match result {
            Ok(()) => {
                if let JournalOp::Incubate { .. } = op {
                    self.apply(&op);
                }
                self.mark(key, JournalState::Done, None)?;
                let tips = self.workcell.envelope.tips_now();
                self.emit(Event::Step { iteration: key.0, seq: key.1, op: op.describe(), tips });
                self.journal.insert(key, (JournalState::Done, op.clone()));
                Ok(op)
            }
            Err(e) => {
                let state = if matches!(e, GatewayError::Refused { .. }) {
                    JournalState::Failed
                } else {
                    JournalState::Unknown
                };
                self.mark(key, state, Some(&e.to_string()))?;
                Err(e)
            }
        }
    }

    fn mark(&self, key: (i64, i64), state: JournalState, detail: Option<&str>) -> Result<(), GatewayError> {
        Ok(entries::mark(&self.store.campaigns, &self.id, key.0, key.1, state, detail)?)
    }

    /// Whether a step left pending happened: asks the instrument and the twin's control link, comparing
    /// with what the model expects before the step. A command of several channels happened on all of
    /// them or on none (the instrument checks every channel before it moves any); anything in between
    /// is an error that names what was found.
    async fn happened(&mut self, op: &JournalOp) -> Result<bool, GatewayError> {
        let volume = |r: Response| match r {
            Response::Well(w) => Ok(w.volume_ul),
            other => Err(GatewayError::Unexpected {
                asked: "the state of a well or trough".into(),
                answer: format!("{other:?}"),
            }),
        };
        let parts = op.parts();
        match op {
            // Written only once the operator had confirmed it.
            JournalOp::Incubate { .. } if self.config.incubator == Equipment::Manual => return Ok(true),
            JournalOp::Incubate { plate, .. } => {
                return Ok(self.reader.plate_clock(*plate).await? > self.clocks[usize::from(*plate)] + 1e-9);
            }
            _ => {}
        }
        let mut done = Vec::new();
        if parts.iter().any(|p| matches!(p, JournalOp::PickUp { .. } | JournalOp::Drop { .. })) {
            let tips = self
                .workcell
                .handler()
                .tip_presence()
                .await?
                .ok_or_else(|| GatewayError::Unsupported("reconciling tips".into()))?;
            for p in parts {
                let (JournalOp::PickUp { channel, .. } | JournalOp::Drop { channel }) = p else { continue };
                let has = tips.get(*channel).copied().unwrap_or(false);
                done.push((
                    format!("channel {}", channel + 1),
                    if matches!(p, JournalOp::PickUp { .. }) { has } else { !has },
                ));
            }
        } else {
            // The net change each well or trough should show, over all the channels.
            let mut net: Vec<(String, Location, f64)> = Vec::new();
            for p in parts {
                let (JournalOp::Aspirate { from: at, volume_ul, .. } | JournalOp::Dispense { to: at, volume_ul, .. }) =
                    p
                else {
                    continue;
                };
                let sign = if matches!(p, JournalOp::Aspirate { .. }) { -1.0 } else { 1.0 };
                let (loc, _, _) = self.workcell.envelope.locate(&Place::parse(at))?;
                match net.iter_mut().find(|n| n.1 == loc) {
                    Some(n) => n.2 += sign * volume_ul,
                    None => net.push((at.clone(), loc, sign * volume_ul)),
                }
            }
            for (name, loc, change) in net {
                let expected = self.workcell.envelope.deck.liquid(loc).map_or(0.0, |l| l.volume_ul);
                let actual = match loc {
                    Location::Well { plate, index } => volume(
                        self.reader.ask(&Request::WellState { plate: plate as u8, well: index as u16 + 1 }).await?,
                    )?,
                    Location::Trough { trough } => {
                        volume(self.reader.ask(&Request::TroughState { trough: trough as u8 }).await?)?
                    }
                    _ => expected + change,
                };
                done.push((name, (actual - (expected + change)).abs() < 1e-6));
            }
        }
        match (done.iter().all(|d| d.1), done.iter().any(|d| d.1)) {
            (true, _) => Ok(true),
            (false, false) => Ok(false),
            (false, true) => Err(GatewayError::Stored {
                what: format!("the step `{}` left pending", op.describe()),
                message: format!(
                    "the instrument shows it done at {} and not at {}: the command cannot have been split",
                    done.iter().filter(|d| d.1).map(|d| d.0.as_str()).collect::<Vec<_>>().join(", "),
                    done.iter().filter(|d| !d.1).map(|d| d.0.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// The banking stages of a line (the core's banking model, day by day): a master bank from a vendor
    /// vial, then a working bank from one master vial; frozen vials go into the inventory. Stages with a
    /// stored output are skipped; vial ids are fixed by campaign, line and stage, so a repeat adds nothing.
    fn bank(&mut self, li: usize, line: &str) -> Result<(), GatewayError> {
        use cellos_core::banking::{BankingConfig, BankingRun};
        let stages = [
            (StageKey::McbVialCount, BankingConfig::mcb(), "MCB", 1),
            (StageKey::WcbVialCount, BankingConfig::wcb(), "WCB", 2),
        ];
        for (k, (key, config, tag, passage)) in stages.into_iter().enumerate() {
            if outputs::get(&self.store.campaigns, &self.id, line, key)?.is_some() {
                continue;
            }
            let science = |e: String| GatewayError::Science { stage: format!("{line} {tag}"), message: e };
            let params = cellos_core::params::builtin::cell_line(line).map_err(|e| science(e.to_string()))?;
            // A run that loses every flask (contamination) is repeated from a fresh vial, three times at most.
            let mut attempts = 0u16;
            let out = loop {
                attempts += 1;
                let mut run = BankingRun::new(params, config, cellos_core::model::GrowthConstants::LEGACY)
                    .map_err(|e| science(format!("{e:?}")))?;
                let seed = self
                    .config
                    .seed
                    .wrapping_mul(1000)
                    .wrapping_add(li as u64 * 100 + k as u64 * 10 + u64::from(attempts));
                let mut rng = cellos_core::rng::seeded(seed);
                while run.step_day(&mut rng).map_err(|e| science(format!("{e:?}")))?.is_some() {}
                let out = run.outcome().ok_or_else(|| science("the run did not finish".into()))?;
                self.emit(Event::Banked {
                    line: line.to_string(),
                    bank: tag.to_string(),
                    vials: out.vials,
                    days: out.days,
                    reason: format!("{:?}", out.reason),
                });
                if out.vials > 0 || attempts == 3 {
                    break out;
                }
            };
            let tx = self.store.lines.transaction().map_err(cellos_store::StoreError::from)?;
            inventory::ensure_line(&tx, line)?;
            let vial = |tag: &str, i: u16| format!("{}_{line}_{tag}_{i:02}", self.id);
            if tag == "WCB" {
                for a in 1..=attempts {
                    inventory::use_vial(
                        &tx,
                        line,
                        &vial("MCB", a),
                        Some(&self.id),
                        Some("thawed for the working cell bank"),
                    )?;
                }
            }
            let notes = json!({ "campaign_id": self.id, "stage": key.stage() });
            for i in 1..=out.vials {
                inventory::freeze(&tx, line, &vial(tag, i), passage, "LN2", &notes)?;
            }
            tx.commit().map_err(cellos_store::StoreError::from)?;
            outputs::set(&self.store.campaigns, &self.id, line, key, &json!(out.vials))?;
        }
        Ok(())
    }

    /// Lentivirus titration of each line on the bottom edge row of its plate (H1–H8; the BFP fraction of
    /// seeded cells does not depend on edge growth), the lines side by side: per line 100 µL of cells, the
    /// legacy volume series of virus (volumes under 2 µL from a 1:10 dilution made in H12), and its plate
    /// into the incubator; 48 h; then per line the BFP fractions read, the titer and the largest fraction
    /// fitted, and the volume for 30 % BFP on the well's cells. Each line's steps are a journal iteration
    /// of their own, so a resumed campaign finds them whatever lines were finished.
    async fn titrate(&mut self, lines: &[(usize, String)]) -> Result<(), GatewayError> {
        let mut incubating = Vec::new();
        for (li, _) in lines {
            self.iteration = TITRATION_ITERATION + *li as i64 + 1;
            self.seq = 0;
            let p = plan::titration(*li);
            let pi = self.plate_index(&plan::assay_plate(*li));
            self.transfers(p.seeding).await?;
            self.transfers(p.dilution).await?;
            for group in p.virus {
                self.transfers(group).await?;
            }
            incubating.push(self.start_incubation(pi, 48.0).await?);
        }
        self.await_incubations(incubating).await?;
        for (li, line) in lines {
            self.iteration = TITRATION_ITERATION + *li as i64 + 1;
            let p = plan::titration(*li);
            let pi = self.plate_index(&plan::assay_plate(*li));
            let fractions: Vec<f64> =
                self.read_plate(pi, &p.wells, &[Readout::BfpFraction]).await?.into_iter().map(|v| v[0]).collect();
            // The wells themselves, as measurements (the dashboard's BFP plate maps, the CSV).
            let plate_id = format!("{}_{}", self.id, plan::assay_plate(*li));
            let wells: Vec<records::TitrationWell> = p
                .wells
                .iter()
                .zip(TITRATION_UL.iter().zip(&fractions))
                .map(|(w, (&virus_ul, &bfp_fraction))| records::TitrationWell {
                    plate_id: plate_id.clone(),
                    well_id: w.clone(),
                    cell_line: line.clone(),
                    virus_ul,
                    time_h: 48.0,
                    bfp_fraction,
                })
                .collect();
            records::replace_titration_wells(&mut self.store.results, &self.id, self.iteration, &wells)?;
            let cells = CELLS_PER_UL * SEED_UL;
            let t = cellos_core::titer::titrate(&TITRATION_UL, &fractions, cells, TARGET_BFP)
                .map_err(|e| GatewayError::Science { stage: format!("{line} titration"), message: e.to_string() })?;
            let series: Vec<Value> = TITRATION_UL
                .iter()
                .zip(&fractions)
                .map(|(v, f)| json!({ "volume_ul": v, "bfp_fraction": f }))
                .collect();
            let db = &self.store.campaigns;
            let volume = json!({ "value": t.volume_ul, "target_bfp": TARGET_BFP, "cells": cells });
            outputs::set(db, &self.id, line, StageKey::LvOptimalVolume, &volume)?;
            let titer = json!({ "value": t.fit.titer_tu_per_ul, "max_fraction": t.fit.max_fraction, "std_err": t.fit.std_err, "series": series });
            outputs::set(db, &self.id, line, StageKey::LvEstimatedTiter, &titer)?;
            self.emit(Event::Titrated {
                line: line.to_string(),
                titer_tu_per_ul: t.fit.titer_tu_per_ul,
                max_fraction: t.fit.max_fraction,
                volume_ul: t.volume_ul,
            });
        }
        Ok(())
    }

    fn plate_index(&self, name: &str) -> u8 {
        self.workcell.envelope.deck.plates.iter().position(|p| p.name == name).unwrap_or(0) as u8
    }

    /// Runs one iteration of every line in `batches` and commits it; returns each line's observations
    /// (dosed wells, in batch order).
    async fn run_iteration(
        &mut self,
        lines: &[String],
        batches: &[plan::LineWells],
    ) -> Result<Vec<Vec<Observation>>, GatewayError> {
        let started = Instant::now();
        self.seq = 0;
        let plates: Vec<u8> = batches.iter().map(|b| self.plate_index(&plan::assay_plate(b.li))).collect();
        // The whole iteration is planned (and a dose even the most dilute intermediate cannot make
        // refused) before anything is touched.
        let p = plan::IterationPlan::new(self.iteration, batches, lines.len())?;
        let steps: usize = p.groups().map(|g| plan::commands(g, self.channels, self.capacity_ul).len()).sum::<usize>()
            + plates.len() * p.incubations();
        self.emit(Event::Planned { iteration: self.iteration, steps });
        // Each plate goes into the incubator as soon as its own last transfer is done, and the plates
        // come out in the order they went in ([`labtime`] accounts the same order).
        if !p.seed_now.is_empty() {
            let mut incubating = Vec::new();
            for (g, &pi) in p.seed_now.into_iter().zip(&plates) {
                self.transfers(g).await?;
                incubating.push(self.start_incubation(pi, 24.0).await?);
            }
            self.await_incubations(incubating).await?;
        }
        // Intermediates, medium for every plate, the stock for every plate, then the intermediates'
        // doses; then each plate's wells for the next iteration, so that they have grown their 24 h when
        // this one is read.
        for g in p.treatment {
            self.transfers(g).await?;
        }
        let mut incubating = Vec::new();
        for (g, &pi) in p.seed_next.into_iter().zip(&plates) {
            self.transfers(g).await?;
            incubating.push(self.start_incubation(pi, 24.0).await?);
        }
        self.await_incubations(incubating).await?;
        // Reading.
        let readouts = [Readout::Viability, Readout::CellRox, Readout::Segmentation];
        let mut all = Vec::new();
        for (b, &pi) in batches.iter().zip(&plates) {
            let values = self.read_plate(pi, &b.wells, &readouts).await?;
            let mut rows = Vec::new();
            for (k, (w, v)) in b.wells.iter().zip(values).enumerate() {
                let index = plan::well_index(w)?;
                let loc = Location::Well { plate: usize::from(pi), index: usize::from(index) - 1 };
                let dose = self.workcell.envelope.deck.liquid(loc).map_or(0.0, |l| l.concentration_um());
                let o = Observation { dose_um: dose, viability: v[0], cellrox_au: v[1], segmentation: v[2] };
                rows.push((w.clone(), k == 0, o));
            }
            all.push(rows);
        }
        self.commit(lines, batches, &all, started.elapsed().as_secs_f64())?;
        Ok(all.iter().map(|rows| rows.iter().filter(|(_, control, _)| !control).map(|(.., o)| *o).collect()).collect())
    }

    /// A run of transfers `(source, target, µL)` as the plan's commands on the campaign's channels
    /// ([`plan::commands`]), each a journaled step; nothing if empty. A safe point comes first (no tip
    /// on a channel, no liquid in a tip).
    async fn transfers(&mut self, moves: impl IntoIterator<Item = Transfer>) -> Result<(), GatewayError> {
        let moves: Vec<Transfer> = moves.into_iter().collect();
        if moves.is_empty() {
            return Ok(());
        }
        self.safe_point().await?;
        for action in plan::commands(&moves, self.channels, self.capacity_ul) {
            let ops: Vec<JournalOp> = match action {
                plan::Action::PickUp(channels) => {
                    let spots = self.next_tips(&channels)?;
                    channels.into_iter().zip(spots).map(|(channel, at)| JournalOp::PickUp { channel, at }).collect()
                }
                plan::Action::Aspirate(v) => v
                    .into_iter()
                    .map(|(channel, from, volume_ul)| JournalOp::Aspirate { channel, from, volume_ul })
                    .collect(),
                plan::Action::Dispense(v) => v
                    .into_iter()
                    .map(|(channel, to, volume_ul)| JournalOp::Dispense { channel, to, volume_ul })
                    .collect(),
                plan::Action::Drop(channels) => {
                    channels.into_iter().map(|channel| JournalOp::Drop { channel }).collect()
                }
            };
            let op = if ops.len() == 1 {
                ops.into_iter().next().unwrap_or(JournalOp::Channels { ops: Vec::new() })
            } else {
                JournalOp::Channels { ops }
            };
            self.step(op).await?;
        }
        Ok(())
    }

    /// One reading of a well of deck plate `plate`.
    async fn read(&self, plate: u8, well: &str, readout: Readout) -> Result<f64, GatewayError> {
        match self.reader.ask(&Request::Read { plate, well: plan::well_index(well)?, readout }).await? {
            Response::Value(v) => Ok(v),
            other => {
                Err(GatewayError::Unexpected { asked: format!("{readout:?} of {well}"), answer: format!("{other:?}") })
            }
        }
    }

    /// Tip spots for `channels`: one channel alone takes the first tip left; several take their rows of
    /// the first rack column that has a tip in each of those rows, so the tips sit under the channels.
    fn next_tips(&self, channels: &[usize]) -> Result<Vec<String>, GatewayError> {
        let spot = |r: &cellos_core::deck::TipRack, i: usize| -> Result<String, GatewayError> {
            let w = r.format.from_row_major(i as u16 + 1).map_err(|e| plan::PlanError::BadWell {
                well: format!("{}:{}", r.name, i + 1),
                message: e.to_string(),
            })?;
            Ok(format!("{}:{w}", r.name))
        };
        for r in &self.workcell.envelope.deck.tip_racks {
            let (rows, cols) = (usize::from(r.format.rows()), usize::from(r.format.cols()));
            if let [_] = channels {
                if let Some(i) = (0..rows * cols).find(|&i| r.has_tip(i)) {
                    return Ok(vec![spot(r, i)?]);
                }
                continue;
            }
            for col in 0..cols {
                if channels.iter().all(|&c| c < rows && r.has_tip(c * cols + col)) {
                    return channels.iter().map(|&c| spot(r, c * cols + col)).collect();
                }
            }
        }
        Err(GatewayError::Refused {
            rule: crate::error::Rule::NoTipAtSpot,
            detail: format!("no rack column has tips for channels {channels:?}"),
        })
    }

    fn commit(
        &mut self,
        lines: &[String],
        batches: &[plan::LineWells],
        rows: &[Vec<(String, bool, Observation)>],
        seconds: f64,
    ) -> Result<(), GatewayError> {
        let it = self.iteration;
        let mut wells = Vec::new();
        for (b, rows) in batches.iter().zip(rows) {
            let plate_id = format!("{}_{}", self.id, plan::assay_plate(b.li));
            wells.extend(rows.iter().map(|(w, control, o)| Measurement {
                plate_id: plate_id.clone(),
                well_id: w.clone(),
                cell_line: lines[b.li].clone(),
                compound: "tbhp".into(),
                dose_um: o.dose_um,
                time_h: 24.0,
                raw_signal: o.cellrox_au,
                is_control: *control,
                viability: o.viability,
                segmentation: o.segmentation,
                incubator_id: "twin".into(),
                liquid_handler_id: "star".into(),
            }));
        }
        records::replace_measurements(&mut self.store.results, &self.id, it, &wells)?;
        crate::crash::point("measurements committed, before the iteration");
        let proposals: Vec<Value> =
            batches.iter().map(|b| json!({ "line": lines[b.li], "doses_um": b.doses })).collect();
        let results: Vec<Value> = batches
            .iter()
            .zip(rows)
            .map(|(b, rows)| {
                let observations: Vec<StoredObs> =
                    rows.iter().filter(|(_, c, _)| !c).map(|(.., o)| StoredObs::from(*o)).collect();
                json!({ "line": lines[b.li], "observations": observations })
            })
            .collect();
        let iteration = Iteration {
            number: it,
            proposals: json!({ "lines": proposals }),
            results: json!({ "lines": results }),
            model_state: json!({ "journal_seq": self.seq }),
            metrics: json!({ "wells": wells.len(), "seconds": seconds }),
        };
        // Each line's plate run as an experiment, linked to the campaign.
        let experiments: Vec<Experiment> = batches
            .iter()
            .zip(rows)
            .map(|(b, rows)| {
                let plate_id = format!("{}_{}", self.id, plan::assay_plate(b.li));
                Experiment {
                    id: format!("{}_it{it:03}_{}", self.id, lines[b.li]),
                    kind: "tbhp_dose_response".into(),
                    cell_line: lines[b.li].clone(),
                    metadata: json!({ "plate_id": plate_id, "iteration": it, "wells": rows.len() }),
                }
            })
            .collect();
        records::record_iteration(&mut self.store.campaigns, &self.id, &iteration, &experiments)?;
        for (b, rows) in batches.iter().zip(rows) {
            self.emit(Event::Iteration {
                line: lines[b.li].clone(),
                iteration: it,
                wells: rows.len(),
                seconds,
                doses_um: b.doses.clone(),
            });
        }
        Ok(())
    }
}

/// An incubation begun: its iteration, the plate, its name, its journal step, and when it ends in real
/// time (µs).
struct Incubation {
    iteration: i64,
    plate: u8,
    name: String,
    seq: i64,
    end: i64,
    hours: f64,
}

/// Now, µs since the epoch (the clock the store's time stamps are read on).
fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}
