//! The Tecan EVO driver: one command outstanding at a time.
//!
//! EVO replies carry no id, only the module. So the driver sends one command, waits for a reply from the
//! same module (replies from another module are strays and are dropped), and after a time-out drains the
//! line briefly before the next command, so that a late reply cannot be taken for the next command's.
//! A reply that is not a valid frame (a status byte without bit 7, say) is reported as corrupted.
//!
//! Set commands (`SHZ`, `SEP`, `SPP`, `SSL`, `SDM`, …) only store values; re-sending an identical one does
//! nothing on the instrument. The driver can remember the last value of each and skip the repeat, but
//! only when asked: [`EvoDriver::set_cached`] is explicit, and the cache is off unless enabled.

use std::collections::HashMap;
use std::time::Duration;

use cellos_core::proto::evo::{EvoCommand, EvoReply, error_meaning};

use crate::error::{GatewayError, InstrumentError};
use crate::transport::{LinkRx, LinkTx};

/// Time limit of an EVO command unless configured (legacy: 30 s).
pub const EVO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the line is drained after a time-out.
pub const DRAIN_AFTER_TIMEOUT: Duration = Duration::from_millis(200);

/// A reply, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvoAnswer {
    /// Module that answered.
    pub module: [u8; 2],
    /// Data fields.
    pub fields: Vec<Option<i32>>,
}

/// The EVO driver.
pub struct EvoDriver<Tx: LinkTx, Rx: LinkRx> {
    link: tokio::sync::Mutex<Link<Tx, Rx>>,
    timeout: Duration,
}

struct Link<Tx, Rx> {
    tx: Tx,
    rx: Rx,
    dirty: bool,
    cache: Option<SetCache>,
}

/// The last parameters sent per (module, set command).
type SetCache = HashMap<([u8; 2], [u8; 3]), Vec<Option<i32>>>;

fn label(cmd: &EvoCommand) -> String {
    format!("{}{}", String::from_utf8_lossy(&cmd.module), String::from_utf8_lossy(&cmd.command))
}

impl<Tx: LinkTx, Rx: LinkRx> EvoDriver<Tx, Rx> {
    /// A driver with a time limit per command and the set-command cache off.
    pub fn new(tx: Tx, rx: Rx, timeout: Duration) -> Self {
        EvoDriver { link: tokio::sync::Mutex::new(Link { tx, rx, dirty: false, cache: None }), timeout }
    }

    /// Turns the set-command cache on or off (off clears it).
    pub async fn enable_set_cache(&self, on: bool) {
        self.link.lock().await.cache = on.then(HashMap::new);
    }

    /// Sends a command and returns its reply; an error status becomes [`GatewayError::Instrument`].
    pub async fn command(&self, cmd: &EvoCommand) -> Result<EvoAnswer, GatewayError> {
        let mut link = self.link.lock().await;
        Self::exchange(&mut link, cmd, self.timeout).await
    }

    /// Sends a set command, unless the cache is on and the same values were last sent for it.
    /// Returns whether it was sent.
    pub async fn set_cached(&self, cmd: &EvoCommand) -> Result<bool, GatewayError> {
        let mut link = self.link.lock().await;
        let key = (cmd.module, cmd.command);
        let params: Vec<Option<i32>> = cmd.params.to_vec();
        if link.cache.as_ref().and_then(|c| c.get(&key)) == Some(&params) {
            return Ok(false);
        }
        Self::exchange(&mut link, cmd, self.timeout).await?;
        if let Some(c) = link.cache.as_mut() {
            c.insert(key, params);
        }
        Ok(true)
    }

    async fn exchange(link: &mut Link<Tx, Rx>, cmd: &EvoCommand, limit: Duration) -> Result<EvoAnswer, GatewayError> {
        let name = label(cmd);
        if link.dirty {
            // A late reply to a timed-out command may still come: let it arrive and drop it.
            let _ =
                tokio::time::timeout(DRAIN_AFTER_TIMEOUT, async { while let Ok(Some(_)) = link.rx.recv().await {} })
                    .await;
            link.dirty = false;
        }
        let mut buf = [0u8; 160];
        let n =
            cmd.emit(&mut buf).map_err(|e| GatewayError::Malformed { command: name.clone(), detail: e.to_string() })?;
        link.tx.send(&buf[..n]).await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, link.rx.recv()).await {
                Ok(Ok(Some(f))) => f,
                Ok(Ok(None)) => return Err(GatewayError::Closed),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    link.dirty = true;
                    // The cache no longer says what the instrument holds.
                    if let Some(c) = link.cache.as_mut() {
                        c.clear();
                    }
                    return Err(GatewayError::Timeout { command: name, after: limit });
                }
            };
            let reply = EvoReply::parse(&frame).map_err(|e| GatewayError::Malformed {
                command: name.clone(),
                detail: format!("corrupted frame {frame:02x?}: {e}"),
            })?;
            if reply.module != cmd.module {
                tracing::warn!(command = %name, "EVO reply from another module; dropped");
                continue;
            }
            let code = reply.error_code();
            if code != 0 {
                return Err(GatewayError::Instrument(InstrumentError {
                    command: name,
                    module: String::from_utf8_lossy(&reply.module).into_owned(),
                    code,
                    trace: 0,
                    meaning: error_meaning(reply.module, code).to_string(),
                }));
            }
            return Ok(EvoAnswer { module: reply.module, fields: reply.fields().collect() });
        }
    }
}
