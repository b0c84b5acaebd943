//! A simulated USB device for the tests: bulk endpoints over in-memory packet queues, and a device
//! that passes each OUT transfer to an instrument on a serial line (the twin's) and sends its replies
//! back as IN transfers, packet by packet. Faults: the next reply's short packet lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{Mutex, mpsc};

use super::usb::{BulkIn, BulkOut, InAssembler, out_packets};
use super::{LinkRx, LinkTx, Protocol, SerialConfig, open_line};
use crate::error::GatewayError;

/// The host's OUT endpoint of a simulated device.
pub struct SimOut {
    tx: mpsc::Sender<Vec<u8>>,
    mps: usize,
}

/// The host's IN endpoint of a simulated device.
pub struct SimIn {
    rx: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>,
    mps: usize,
}

/// Faults the simulated device applies.
#[derive(Debug, Default)]
pub struct SimFaults {
    /// Replies whose last (short) packet is lost.
    pub lose_short_packet: AtomicU32,
}

/// The device's side of the endpoints.
pub struct SimDevice {
    from_host: mpsc::Receiver<Vec<u8>>,
    to_host: mpsc::Sender<Vec<u8>>,
    mps: usize,
    /// Its faults.
    pub faults: Arc<SimFaults>,
}

/// A simulated device with `mps`-byte packets: the host's endpoints and the device's side.
pub fn endpoints(mps: usize) -> (SimOut, SimIn, SimDevice) {
    let (out_tx, out_rx) = mpsc::channel(256);
    let (in_tx, in_rx) = mpsc::channel(256);
    (
        SimOut { tx: out_tx, mps },
        SimIn { rx: Arc::new(Mutex::new(in_rx)), mps },
        SimDevice { from_host: out_rx, to_host: in_tx, mps, faults: Arc::new(SimFaults::default()) },
    )
}

impl BulkOut for SimOut {
    fn max_packet_size(&self) -> usize {
        self.mps
    }

    async fn write_packet(&mut self, packet: &[u8]) -> Result<(), GatewayError> {
        assert!(packet.len() <= self.mps, "the link never writes a packet over the maximum");
        self.tx.send(packet.to_vec()).await.map_err(|_| GatewayError::Closed)
    }
}

impl BulkIn for SimIn {
    fn max_packet_size(&self) -> usize {
        self.mps
    }

    async fn read_packet(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        Ok(self.rx.lock().await.recv().await)
    }
}

impl SimDevice {
    /// Runs the device in front of the instrument on serial line `path` until either side goes away:
    /// each OUT transfer is one message to the instrument, each reply one IN transfer.
    pub async fn bridge(self, path: &str, protocol: Protocol) -> Result<(), GatewayError> {
        let (mut tx, mut rx, _) = open_line(&SerialConfig::new(path), protocol).await?;
        let SimDevice { mut from_host, to_host, mps, faults } = self;
        let down = async move {
            let mut transfer = InAssembler::new(mps);
            while let Some(packet) = from_host.recv().await {
                match transfer.push(&packet) {
                    Ok(Some(message)) if !message.is_empty() => tx.send(&message).await?,
                    Ok(_) => {}
                    Err(e) => return Err(GatewayError::Link(format!("simulated device: {e}"))),
                }
            }
            Ok::<(), GatewayError>(())
        };
        let up = async move {
            while let Some(reply) = rx.recv().await? {
                let packets = out_packets(&reply, mps);
                let lose = faults
                    .lose_short_packet
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let keep = if lose { packets.len() - 1 } else { packets.len() };
                for p in &packets[..keep] {
                    if to_host.send(p.to_vec()).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok::<(), GatewayError>(())
        };
        tokio::select! {
            r = down => r,
            r = up => r,
        }
    }
}
