//! The Hamilton STAR driver: many commands in flight, replies matched by id in any order.
//!
//! Ids run 0001…9999, then 0000, skipping any still in flight. One task reads the line and hands each
//! reply to the request waiting for its id; a reply nobody waits for (late, duplicated, or corrupted
//! past recognition) is counted and dropped. Every command has a time limit from one table ([`Timeouts`]):
//! the legacy defaults, overridable per command code. A reply saying the master is busy (trace 40–53)
//! means the command was refused, so the driver polls by sending it again until it is accepted or its
//! time runs out; every other error reply is returned as a typed [`GatewayError::Instrument`]. Nothing
//! else is ever sent twice: whether to retry is the caller's decision, and the liquid-handling layer
//! never retries a liquid operation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cellos_core::proto::star::{BuildError, MAX_MESSAGE, StarMessage};
use cellos_core::proto::star_command::{Answer, Command, CommandError};
use tokio::sync::oneshot;

use crate::error::{GatewayError, InstrumentError};
use crate::transport::{LinkRx, LinkTx};

/// Time limit of a command without its own entry in [`TIMEOUTS`] (legacy: 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The legacy time limits per command code (PyLabRobot): pre-initialise 300 s, initialise 120 s, tips
/// 120 s, aspirate and dispense 300 s.
pub const TIMEOUTS: [(&str, Duration); 6] = [
    ("VI", Duration::from_secs(300)),
    ("DI", Duration::from_secs(120)),
    ("TP", Duration::from_secs(120)),
    ("TR", Duration::from_secs(120)),
    ("AS", Duration::from_secs(300)),
    ("DS", Duration::from_secs(300)),
];

/// How long to wait between polls while the master reports busy.
pub const BUSY_POLL: Duration = Duration::from_millis(100);

/// Per-command time limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    default: Duration,
    per_code: HashMap<String, Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { default: DEFAULT_TIMEOUT, per_code: TIMEOUTS.iter().map(|(c, d)| ((*c).to_string(), *d)).collect() }
    }
}

impl Timeouts {
    /// The limit for a command code (`"AS"`).
    pub fn for_code(&self, code: &str) -> Duration {
        self.per_code.get(code).copied().unwrap_or(self.default)
    }

    /// The limit of commands without an entry of their own.
    pub fn default_limit(&self) -> Duration {
        self.default
    }

    /// Overrides one command code's limit.
    pub fn with(mut self, code: &str, limit: Duration) -> Self {
        self.per_code.insert(code.to_string(), limit);
        self
    }

    /// Overrides the default limit.
    pub fn with_default(mut self, limit: Duration) -> Self {
        self.default = limit;
        self
    }

    /// Every limit (default and per code) set to `limit`: for tests against a twin that answers quickly.
    pub fn uniform(limit: Duration) -> Self {
        Timeouts { default: limit, per_code: HashMap::new() }
    }

    /// Parses `CODE=SECONDS` overrides (`AS=600,DI=60`); `default=SECONDS` sets the default.
    pub fn parse_overrides(mut self, spec: &str) -> Result<Self, TimeoutSpecError> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |problem| TimeoutSpecError { item: item.to_string(), problem };
            let (code, secs) = item.split_once('=').ok_or_else(|| bad(TimeoutProblem::Syntax))?;
            let secs: f64 = secs.parse().map_err(|_| bad(TimeoutProblem::NotSeconds))?;
            if !(secs.is_finite() && secs > 0.0) {
                return Err(bad(TimeoutProblem::NotPositive));
            }
            let d = Duration::from_secs_f64(secs);
            if code == "default" {
                self.default = d;
            } else if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
                self.per_code.insert(code.to_string(), d);
            } else {
                return Err(bad(TimeoutProblem::BadCode));
            }
        }
        Ok(self)
    }
}

/// A `CODE=SECONDS` item that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timeout `{item}`: {problem}")]
pub struct TimeoutSpecError {
    /// The item.
    pub item: String,
    /// What is wrong with it.
    pub problem: TimeoutProblem,
}

/// What is wrong with a time-out item.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutProblem {
    /// Not `CODE=SECONDS`.
    #[error("expected CODE=SECONDS")]
    Syntax,
    /// The value is not a number.
    #[error("the value is not a number of seconds")]
    NotSeconds,
    /// Zero, negative or not finite.
    #[error("must be positive")]
    NotPositive,
    /// The code is not two upper-case letters (nor `default`).
    #[error("a command code is two upper-case letters, like AS")]
    BadCode,
}

/// A reply to a STAR command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StarReply {
    /// The reply text.
    pub text: String,
    /// How long the round trip took.
    pub elapsed: Duration,
}

impl StarReply {
    /// The parsed reply (it parsed once already, when it was matched).
    pub fn message(&self) -> StarMessage<'_> {
        StarMessage::parse(&self.text).unwrap_or(StarMessage {
            module: *b"??",
            code: *b"??",
            id: None,
            tokens: Default::default(),
        })
    }
}

type Pending = Arc<Mutex<HashMap<u16, oneshot::Sender<String>>>>;

/// Counters of a driver's link.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Replies no request was waiting for (late, duplicated, corrupted).
    pub unmatched: AtomicU64,
    /// Commands sent.
    pub sent: AtomicU64,
    /// The line closed (its reader ended): nothing sent now can be answered.
    pub closed: std::sync::atomic::AtomicBool,
}

/// The STAR driver.
pub struct StarDriver<Tx: LinkTx> {
    tx: tokio::sync::Mutex<Tx>,
    pending: Pending,
    sequence: Mutex<u32>,
    timeouts: Timeouts,
    channels: usize,
    stats: Arc<LinkStats>,
    reader: tokio::task::JoinHandle<()>,
}

impl<Tx: LinkTx> Drop for StarDriver<Tx> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn instrument_error(command: &str, m: &StarMessage<'_>) -> Option<InstrumentError> {
    let e = m.errors().next()?;
    Some(InstrumentError {
        command: command.to_string(),
        module: String::from_utf8_lossy(&e.module).into_owned(),
        code: e.code,
        trace: e.trace,
        meaning: if e.code != 0 {
            format!("{} ({})", e.code_meaning(), e.trace_meaning())
        } else {
            e.trace_meaning().to_string()
        },
    })
}

impl<Tx: LinkTx> StarDriver<Tx> {
    /// A driver over a link for an instrument with `channels` pipetting channels. Must be called within
    /// a tokio runtime (it spawns the reply reader).
    pub fn new<Rx: LinkRx>(tx: Tx, mut rx: Rx, timeouts: Timeouts, channels: usize) -> Self {
        let pending: Pending = Arc::default();
        let stats = Arc::new(LinkStats::default());
        let (p, s) = (Arc::clone(&pending), Arc::clone(&stats));
        let reader = tokio::spawn(async move {
            while let Ok(Some(frame)) = rx.recv().await {
                let text = String::from_utf8_lossy(&frame).into_owned();
                let id = StarMessage::parse(&text).ok().and_then(|m| m.id);
                let waiting = id.and_then(|id| p.lock().ok().and_then(|mut map| map.remove(&id)));
                match waiting {
                    Some(sender) => {
                        let _ = sender.send(text);
                    }
                    None => {
                        s.unmatched.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(reply = %text, "STAR reply matches no command in flight; dropped");
                    }
                }
            }
            // The line closed: every waiter sees its sender dropped, and nothing is sent any more.
            s.closed.store(true, Ordering::SeqCst);
            if let Ok(mut map) = p.lock() {
                map.clear();
            }
        });
        StarDriver {
            tx: tokio::sync::Mutex::new(tx),
            pending,
            // Ids start where the clock says, not at 1: a reply to an earlier session's command still on
            // the line then matches nothing in flight.
            sequence: Mutex::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_micros() % 10_000),
            ),
            timeouts,
            channels,
            stats,
            reader,
        }
    }

    /// Pipetting channels of the instrument.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The time limits.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The link counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Commands waiting for their reply.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn next_id(&self) -> u16 {
        let mut seq = self.sequence.lock().unwrap_or_else(|e| e.into_inner());
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            *seq = seq.wrapping_add(1);
            let id = (*seq % 10_000) as u16;
            if !pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Sends the command `build(id)` builds and waits for its reply. Busy rejections are polled away; an
    /// error reply becomes [`GatewayError::Instrument`].
    pub async fn request<F>(&self, build: F) -> Result<StarReply, GatewayError>
    where
        F: Fn(u16) -> Result<heapless::String<MAX_MESSAGE>, BuildError>,
    {
        let started = Instant::now();
        loop {
            let id = self.next_id();
            let text =
                build(id).map_err(|e| GatewayError::Malformed { command: "command".into(), detail: e.to_string() })?;
            let (command, limit) = {
                let m = StarMessage::parse(&text)
                    .map_err(|e| GatewayError::Malformed { command: text.to_string(), detail: e.to_string() })?;
                let module = String::from_utf8_lossy(&m.module).into_owned();
                let code = String::from_utf8_lossy(&m.code).into_owned();
                (format!("{module}{code}id{id:04}"), self.timeouts.for_code(&code))
            };
            let reply = self.exchange(id, text.as_bytes(), &command, limit.saturating_sub(started.elapsed())).await?;
            let (error, master) = {
                let m = StarMessage::parse(&reply)
                    .map_err(|e| GatewayError::Malformed { command: command.clone(), detail: e.to_string() })?;
                (instrument_error(&command, &m), m.module == *b"C0")
            };
            match error {
                None => return Ok(StarReply { text: reply, elapsed: started.elapsed() }),
                Some(e) if master && (40..=53).contains(&e.trace) && e.module == "C0" => {
                    if started.elapsed() + BUSY_POLL >= limit {
                        return Err(GatewayError::Timeout { command, after: limit });
                    }
                    tracing::debug!(%command, "master busy; polling");
                    tokio::time::sleep(BUSY_POLL).await;
                }
                Some(e) => return Err(GatewayError::Instrument(e)),
            }
        }
    }

    async fn exchange(&self, id: u16, bytes: &[u8], command: &str, limit: Duration) -> Result<String, GatewayError> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = self.pending.lock().map_err(|_| GatewayError::Closed)?;
            // Checked under the lock the reader clears the waiters under: a command is either refused
            // here or its waiter is dropped by the reader's end.
            if self.stats.closed.load(Ordering::SeqCst) {
                return Err(GatewayError::Closed);
            }
            pending.insert(id, sender);
        }
        let sent = { self.tx.lock().await.send(bytes).await };
        if let Err(e) = sent {
            self.forget(id);
            return Err(e);
        }
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        crate::crash::point("sent, before the reply");
        match tokio::time::timeout(limit, receiver).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(GatewayError::Closed),
            Err(_) => {
                self.forget(id);
                Err(GatewayError::Timeout { command: command.to_string(), after: limit })
            }
        }
    }

    fn forget(&self, id: u16) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(&id);
        }
    }

    /// Sends a command (typed: [`Command`]) and waits for its reply.
    pub async fn send(&self, command: &Command) -> Result<StarReply, GatewayError> {
        self.request(|id| command.emit(id, self.channels)).await
    }

    /// Asks a query (`C0RF`, `C0QW`, `C0RT`, …) up to `attempts` times: queries change nothing, so a
    /// lost reply may be asked for again. A command that is not a query is refused, sending nothing.
    pub async fn query(&self, query: &Command, attempts: usize) -> Result<StarReply, GatewayError> {
        if !query.is_query() {
            return Err(GatewayError::Unsupported(format!("asking C0{} again after a lost reply", query.code())));
        }
        let mut last = None;
        for _ in 0..attempts.max(1) {
            match self.send(query).await {
                Ok(r) => return Ok(r),
                Err(e @ (GatewayError::Timeout { .. } | GatewayError::Malformed { .. })) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(GatewayError::Closed))
    }

    /// Asks a query up to `attempts` times and reads its answer (typed: [`Answer`]).
    pub async fn answer(&self, query: &Command, attempts: usize) -> Result<(Answer, StarReply), GatewayError> {
        let r = self.query(query, attempts).await?;
        let a = Answer::parse(query, &r.message())
            .map_err(|e| GatewayError::Malformed { command: format!("C0{}", query.code()), detail: e.to_string() })?;
        Ok((a, r))
    }

    /// The instrument's serial number (`C0RI`, its `sn` field), asked up to three times; `None` when the
    /// reply has no `sn` field.
    pub async fn serial_number(&self) -> Result<Option<String>, GatewayError> {
        let r = self.query(&Command::Identification, 3).await?;
        match Answer::parse(&Command::Identification, &r.message()) {
            Ok(Answer::Identification { serial, .. }) => Ok(Some(serial.to_string())),
            Err(CommandError::Missing("sn")) => Ok(None),
            other => Err(GatewayError::Malformed { command: "C0RI".into(), detail: format!("{other:?}") }),
        }
    }

    /// The firmware version (`C0RF`), asked up to `attempts` times, with the reply.
    pub async fn firmware(&self, attempts: usize) -> Result<(String, StarReply), GatewayError> {
        match self.answer(&Command::FirmwareVersion, attempts).await? {
            (Answer::Firmware(v), r) => Ok((v.to_string(), r)),
            (other, _) => Err(GatewayError::Malformed { command: "C0RF".into(), detail: format!("{other:?}") }),
        }
    }

    /// Whether the instrument is initialised (`C0QW`), asked up to `attempts` times.
    pub async fn initialised(&self, attempts: usize) -> Result<bool, GatewayError> {
        match self.answer(&Command::QueryInitialised, attempts).await?.0 {
            Answer::Initialised(b) => Ok(b),
            other => Err(GatewayError::Malformed { command: "C0QW".into(), detail: format!("{other:?}") }),
        }
    }

    /// Tip presence per channel (`C0RT`), asked up to three times.
    pub async fn tip_presence(&self) -> Result<Vec<bool>, GatewayError> {
        match self.answer(&Command::TipPresence, 3).await?.0 {
            Answer::TipPresence(tips) => Ok(tips.to_vec()),
            other => Err(GatewayError::Malformed { command: "C0RT".into(), detail: format!("{other:?}") }),
        }
    }
}
