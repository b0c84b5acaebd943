//! The client of our `wire` link: the plate reader, the incubator and the twin's control port.
//!
//! `wire` requests are readings and settings, never liquid operations, so a request whose response is
//! lost or damaged may safely be sent again: [`WireClient::ask`] does so, up to three times.

use std::time::Duration;

use cellos_core::proto::wire::{self, Refusal, Request, Response};

use crate::error::GatewayError;
use crate::transport::{LinkRx, LinkTx};

/// Time limit of one request.
pub const WIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per request.
pub const WIRE_ATTEMPTS: usize = 3;

/// A `wire` client.
pub struct WireClient<Tx: LinkTx, Rx: LinkRx> {
    link: tokio::sync::Mutex<(Tx, Rx)>,
    timeout: Duration,
}

impl<Tx: LinkTx, Rx: LinkRx> WireClient<Tx, Rx> {
    /// A client over a link.
    pub fn new(tx: Tx, rx: Rx, timeout: Duration) -> Self {
        WireClient { link: tokio::sync::Mutex::new((tx, rx)), timeout }
    }

    /// Sends a request and returns its response (retrying lost or damaged exchanges).
    pub async fn ask(&self, req: &Request) -> Result<Response, GatewayError> {
        let mut link = self.link.lock().await;
        let mut buf = [0u8; wire::MAX_FRAME];
        let n = wire::encode(req, &mut buf)
            .map_err(|e| GatewayError::Malformed { command: format!("{req:?}"), detail: e.to_string() })?;
        let mut last = GatewayError::Closed;
        for _ in 0..WIRE_ATTEMPTS {
            link.0.send(&buf[..n]).await?;
            match tokio::time::timeout(self.timeout, link.1.recv()).await {
                Ok(Ok(Some(mut frame))) => match wire::decode::<Response>(&mut frame) {
                    Ok(Response::Refused(Refusal::BadFrame)) => {
                        last = GatewayError::Link("the instrument received a damaged frame".into())
                    }
                    Ok(r) => return Ok(r),
                    Err(e) => last = GatewayError::Malformed { command: format!("{req:?}"), detail: e.to_string() },
                },
                Ok(Ok(None)) => return Err(GatewayError::Closed),
                Ok(Err(e)) => return Err(e),
                Err(_) => last = GatewayError::Timeout { command: format!("{req:?}"), after: self.timeout },
            }
        }
        Err(last)
    }
}
