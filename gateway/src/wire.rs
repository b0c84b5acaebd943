//! The client of our `wire` link: the plate reader, the incubator and the twin's control port.
//!
//! Every request carries an id (wire version 2) and only the response with that id answers it: a late
//! response to an earlier request, or a duplicate, is dropped and counted ([`WireClient::stale`]), never
//! taken for the answer to the request in flight. Ids start where the clock says, so a response left on
//! the line by an earlier session matches nothing either.
//!
//! A request whose response is lost or damaged is sent again only if the protocol marks it repeatable
//! ([`Request::repeatable`]): readings and settings. `Incubate` moves a plate's clock, so
//! [`WireClient::incubate`] never re-sends it blindly: it reads the clock back and sends again only if
//! the incubation certainly did not happen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cellos_core::proto::wire::{self, Identity, Refusal, Request, Response, Tag};

use crate::error::GatewayError;
use crate::transport::{LinkRx, LinkTx};

/// Time limit of one request.
pub const WIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How errors of this link name their command (`the reader Read { … }`), so that they tell which
/// instrument they come from.
pub const READER: &str = "the reader";
/// Attempts per request.
pub const WIRE_ATTEMPTS: usize = 3;

/// A `wire` client.
pub struct WireClient<Tx: LinkTx, Rx: LinkRx> {
    link: tokio::sync::Mutex<Link<Tx, Rx>>,
    timeout: Duration,
    stale: AtomicU64,
}

struct Link<Tx, Rx> {
    tx: Tx,
    rx: Rx,
    next_id: u16,
}

/// How one exchange ended.
enum Exchange {
    /// The response to this request.
    Answer(Response),
    /// The instrument received a damaged request (it did nothing).
    Damaged,
    /// No response in time, or only a damaged one: the request may or may not have been executed.
    Unknown(GatewayError),
}

impl<Tx: LinkTx, Rx: LinkRx> WireClient<Tx, Rx> {
    /// A client over a link.
    pub fn new(tx: Tx, rx: Rx, timeout: Duration) -> Self {
        let next_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| (d.subsec_micros() % 60_000) as u16);
        WireClient { link: tokio::sync::Mutex::new(Link { tx, rx, next_id }), timeout, stale: AtomicU64::new(0) }
    }

    /// Responses dropped so far because they answered no request in flight (late or repeated).
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }

    /// The time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a request and returns its response. A repeatable request is sent again (up to
    /// [`WIRE_ATTEMPTS`] times) when its response is lost or damaged; one that is not repeatable is sent
    /// again only when the instrument said it received it damaged, and otherwise fails with the time-out
    /// or the damaged reply, its effect unknown.
    pub async fn ask(&self, req: &Request) -> Result<Response, GatewayError> {
        let mut last = GatewayError::Closed;
        for _ in 0..WIRE_ATTEMPTS {
            match self.exchange(req).await? {
                Exchange::Answer(r) => return Ok(r),
                Exchange::Damaged => last = GatewayError::Link("the instrument received a damaged frame".into()),
                Exchange::Unknown(e) if req.repeatable() => last = e,
                Exchange::Unknown(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// One request, one response (or none).
    async fn exchange(&self, req: &Request) -> Result<Exchange, GatewayError> {
        let mut link = self.link.lock().await;
        link.next_id = link.next_id.wrapping_add(1);
        let id = link.next_id;
        let mut buf = [0u8; wire::MAX_FRAME];
        let n = wire::encode_tagged(Tag::Id(id), req, &mut buf)
            .map_err(|e| GatewayError::Malformed { command: format!("{READER} {req:?}"), detail: e.to_string() })?;
        link.tx.send(&buf[..n]).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let mut frame = match tokio::time::timeout_at(deadline, link.rx.recv()).await {
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => return Err(GatewayError::Closed),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(Exchange::Unknown(GatewayError::Timeout {
                        command: format!("{READER} {req:?}"),
                        after: self.timeout,
                    }));
                }
            };
            match wire::decode_tagged::<Response>(&mut frame) {
                Ok((Tag::Id(got), response)) if got == id => {
                    return Ok(match response {
                        Response::Refused(Refusal::BadFrame) => Exchange::Damaged,
                        r => Exchange::Answer(r),
                    });
                }
                // A damaged request is answered untagged (its id cannot be trusted). It is this request's
                // only if nothing else is in flight, which one client cannot know for a late reply: the
                // effect stays unknown.
                Ok((Tag::Untagged, Response::Refused(Refusal::BadFrame))) => {
                    return Ok(Exchange::Unknown(GatewayError::Link(
                        "the instrument received a damaged frame (which request's is not known)".into(),
                    )));
                }
                Ok(_) => {
                    self.stale.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(request = ?req, "wire response to no request in flight; dropped");
                }
                Err(e) => {
                    return Ok(Exchange::Unknown(GatewayError::Malformed {
                        command: format!("{READER} {req:?}"),
                        detail: e.to_string(),
                    }));
                }
            }
        }
    }

    /// A plate's clock, hours incubated (from well 1's state, which carries it).
    pub async fn plate_clock(&self, plate: u8) -> Result<f64, GatewayError> {
        match self.ask(&Request::WellState { plate, well: 1 }).await? {
            Response::Well(w) => Ok(w.incubated_h),
            other => Err(GatewayError::Link(format!("plate {plate} state: {other:?}"))),
        }
    }

    /// Incubates a plate whose clock stands at `clock_before_h`: the incubation has begun when this
    /// returns (an instant one has ended; a real-time one goes on, see [`WireClient::incubation_done`]).
    /// When the response is lost or damaged, the clock is read back: moved on (up to `clock_before_h +
    /// hours`), the incubation began; at `clock_before_h` it did not and is sent again (a plate found in
    /// the incubator then is the first request's doing); anything else is an error naming both.
    pub async fn incubate(&self, plate: u8, hours: f64, clock_before_h: f64) -> Result<(), GatewayError> {
        let req = Request::Incubate { plate, hours };
        let after = clock_before_h + hours;
        let mut last = GatewayError::Closed;
        for attempt in 0..WIRE_ATTEMPTS {
            match self.ask(&req).await {
                Ok(Response::Done) => return Ok(()),
                Ok(Response::Refused(Refusal::InIncubator)) if attempt > 0 => {
                    tracing::info!(plate, "incubation reply lost; the plate is in the incubator");
                    return Ok(());
                }
                Ok(other) => {
                    return Err(GatewayError::Link(format!("incubation of plate {plate} refused: {other:?}")));
                }
                Err(e @ (GatewayError::Timeout { .. } | GatewayError::Malformed { .. } | GatewayError::Link(_))) => {
                    let clock = self.plate_clock(plate).await?;
                    if clock > clock_before_h + 1e-9 && clock < after + 1e-9 {
                        tracing::info!(plate, "incubation reply lost; the plate clock shows it began");
                        return Ok(());
                    }
                    if (clock - clock_before_h).abs() >= 1e-9 {
                        return Err(GatewayError::Link(format!(
                            "plate {plate} clock reads {clock} h after an unanswered incubation: expected {clock_before_h} h (not begun) or up to {after} h (begun)"
                        )));
                    }
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Whether an incubation that brings plate `plate` to `until_h` is over (the plate's clock reads it).
    pub async fn incubation_done(&self, plate: u8, until_h: f64) -> Result<bool, GatewayError> {
        Ok(self.plate_clock(plate).await? >= until_h - 1e-9)
    }

    /// Who the instrument is (the twin's instance and seed).
    pub async fn identify(&self) -> Result<Identity, GatewayError> {
        match self.ask(&Request::Identify).await? {
            Response::Identity(i) => Ok(i),
            other => Err(GatewayError::Link(format!("identify: {other:?}"))),
        }
    }
}
