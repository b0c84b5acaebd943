//! USB bulk links, as a Hamilton STAR (vendor 0x08AF, product 0x8000) and a current Tecan EVO (0x0C47,
//! 0x4000) are driven: one message is one bulk transfer each way.
//!
//! **Framing** ([`out_packets`], [`InAssembler`]), pure: a message goes out as packets of the endpoint's
//! maximum packet size, the last one short; when the message is an exact multiple of the packet size a
//! zero-length packet ends it. A reply comes in as packets until a short one (a zero-length one after
//! full packets). ASSUMPTION, from PyLabRobot's drivers: no line terminator travels over USB (the
//! STAR's CR is a serial matter); a reply's trailing CR/LF, if an instrument sends one, is dropped.
//!
//! **Time limits**: each packet written must be taken within the packet limit; once a reply has begun,
//! the rest of it (its short packet) must come within the message limit, or the read fails naming what
//! arrived. A reply that never begins is the driver's time limit, as on serial.
//!
//! The links run over packet-level endpoints ([`BulkOut`], [`BulkIn`]): a device's through `nusb`
//! ([`open_device`]), or a simulation's ([`super::sim`]) in the tests.

use std::future::Future;
use std::time::Duration;

use super::{LinkRx, LinkTx, Protocol};
use crate::error::GatewayError;

/// The STAR's USB vendor and product ids.
pub const STAR_IDS: (u16, u16) = (0x08af, 0x8000);
/// The EVO's USB vendor and product ids.
pub const EVO_IDS: (u16, u16) = (0x0c47, 0x4000);

/// The packets a message goes out as: `mps`-byte packets, the last one short, and a zero-length
/// packet after an exact multiple (an empty message is one zero-length packet).
pub fn out_packets(message: &[u8], mps: usize) -> Vec<&[u8]> {
    let mps = mps.max(1);
    let mut packets: Vec<&[u8]> = message.chunks(mps).collect();
    if message.len().is_multiple_of(mps) {
        packets.push(&[]);
    }
    packets
}

/// Why a reply cannot be assembled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// A packet longer than the endpoint's maximum.
    #[error("a packet of {len} bytes on an endpoint of {mps}-byte packets")]
    TooLong {
        /// Its length.
        len: usize,
        /// The endpoint's maximum.
        mps: usize,
    },
    /// A reply longer than any instrument sends.
    #[error("a reply of over {0} bytes without its short packet")]
    Runaway(usize),
}

/// The longest reply assembled (a STAR reply is under 1 KiB).
pub const MAX_REPLY: usize = 64 * 1024;

/// Assembles replies from IN packets: a reply ends at a short packet.
#[derive(Clone, Debug)]
pub struct InAssembler {
    mps: usize,
    buf: Vec<u8>,
    started: bool,
}

impl InAssembler {
    /// An assembler for an endpoint of `mps`-byte packets.
    pub fn new(mps: usize) -> InAssembler {
        InAssembler { mps: mps.max(1), buf: Vec::new(), started: false }
    }

    /// Takes one packet; returns the reply it completes.
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, PacketError> {
        if packet.len() > self.mps {
            return Err(PacketError::TooLong { len: packet.len(), mps: self.mps });
        }
        self.buf.extend_from_slice(packet);
        self.started = true;
        if self.buf.len() > MAX_REPLY {
            self.reset();
            return Err(PacketError::Runaway(MAX_REPLY));
        }
        if packet.len() < self.mps {
            self.started = false;
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        Ok(None)
    }

    /// Whether a reply has begun and not ended.
    pub fn partial(&self) -> bool {
        self.started
    }

    /// The bytes of the reply begun so far.
    pub fn so_far(&self) -> &[u8] {
        &self.buf
    }

    /// Drops a reply begun.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.started = false;
    }
}

/// A bulk OUT endpoint, a packet at a time.
pub trait BulkOut: Send + 'static {
    /// Its maximum packet size.
    fn max_packet_size(&self) -> usize;
    /// Sends one packet (at most the maximum; empty: a zero-length packet).
    fn write_packet(&mut self, packet: &[u8]) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

/// A bulk IN endpoint, a packet at a time.
pub trait BulkIn: Send + 'static {
    /// Its maximum packet size.
    fn max_packet_size(&self) -> usize;
    /// The next packet, waiting as long as it takes; `Ok(None)` when the device is gone.
    fn read_packet(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, GatewayError>> + Send;
}

/// Time limits of a USB link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UsbTimeouts {
    /// For the device to take one OUT packet.
    pub packet: Duration,
    /// For a reply, once begun, to end.
    pub message: Duration,
}

impl Default for UsbTimeouts {
    fn default() -> Self {
        UsbTimeouts { packet: Duration::from_secs(2), message: Duration::from_secs(2) }
    }
}

/// The sending half of a USB link.
pub struct UsbTx<O: BulkOut> {
    out: O,
    timeouts: UsbTimeouts,
    protocol: Protocol,
    name: String,
}

/// The receiving half of a USB link.
pub struct UsbRx<I: BulkIn> {
    inp: I,
    assembler: InAssembler,
    timeouts: UsbTimeouts,
    protocol: Protocol,
    name: String,
}

/// A link over a pair of bulk endpoints; `name` says which device in errors.
pub fn link<O: BulkOut, I: BulkIn>(
    out: O,
    inp: I,
    protocol: Protocol,
    timeouts: UsbTimeouts,
    name: &str,
) -> (UsbTx<O>, UsbRx<I>) {
    let assembler = InAssembler::new(inp.max_packet_size());
    (
        UsbTx { out, timeouts, protocol, name: name.to_string() },
        UsbRx { inp, assembler, timeouts, protocol, name: name.to_string() },
    )
}

impl<O: BulkOut> LinkTx for UsbTx<O> {
    async fn send(&mut self, message: &[u8]) -> Result<(), GatewayError> {
        super::capture::record(self.protocol, true, message);
        let mps = self.out.max_packet_size();
        for packet in out_packets(message, mps) {
            match tokio::time::timeout(self.timeouts.packet, self.out.write_packet(packet)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(GatewayError::Link(format!(
                        "{}: the device took no OUT packet within {:?}",
                        self.name, self.timeouts.packet
                    )));
                }
            }
        }
        Ok(())
    }
}

impl<I: BulkIn> LinkRx for UsbRx<I> {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        loop {
            let packet = if self.assembler.partial() {
                match tokio::time::timeout(self.timeouts.message, self.inp.read_packet()).await {
                    Ok(p) => p?,
                    Err(_) => {
                        let so_far = String::from_utf8_lossy(self.assembler.so_far()).into_owned();
                        self.assembler.reset();
                        return Err(GatewayError::Link(format!(
                            "{}: a reply began ({so_far:?}) but its short packet did not come within {:?}",
                            self.name, self.timeouts.message
                        )));
                    }
                }
            } else {
                self.inp.read_packet().await?
            };
            let Some(packet) = packet else { return Ok(None) };
            match self.assembler.push(&packet) {
                Ok(Some(mut reply)) => {
                    if self.protocol == Protocol::Star {
                        while reply.last().is_some_and(|b| *b == b'\r' || *b == b'\n') {
                            reply.pop();
                        }
                    }
                    // A zero-length packet alone is no reply.
                    if !reply.is_empty() {
                        super::capture::record(self.protocol, false, &reply);
                        return Ok(Some(reply));
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(GatewayError::Link(format!("{}: {e}", self.name))),
            }
        }
    }
}

/// Which USB device: the instrument's ids and, when several are attached, its serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbSelector {
    /// Vendor and product.
    pub ids: (u16, u16),
    /// Serial number, when given.
    pub serial: Option<String>,
}

/// A USB device seen on the bus.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    /// `star` or `evo`.
    pub instrument: &'static str,
    /// Vendor id.
    pub vendor_id: u16,
    /// Product id.
    pub product_id: u16,
    /// Serial number, if it reports one.
    pub serial: Option<String>,
    /// Bus and port path (`1-4.2`).
    pub bus_path: String,
}

/// The attached devices with a STAR's or an EVO's ids.
pub async fn candidates() -> Result<Vec<Candidate>, GatewayError> {
    let devices = nusb::list_devices().await.map_err(|e| GatewayError::Link(format!("listing USB devices: {e}")))?;
    Ok(devices
        .filter_map(|d| {
            let ids = (d.vendor_id(), d.product_id());
            let instrument = if ids == STAR_IDS {
                "star"
            } else if ids == EVO_IDS {
                "evo"
            } else {
                return None;
            };
            let chain: Vec<String> = d.port_chain().iter().map(u8::to_string).collect();
            Some(Candidate {
                instrument,
                vendor_id: ids.0,
                product_id: ids.1,
                serial: d.serial_number().map(str::to_string),
                bus_path: format!("{}-{}", d.bus_id(), chain.join(".")),
            })
        })
        .collect())
}

/// A device's bulk OUT endpoint through `nusb`.
pub struct NusbOut(nusb::Endpoint<nusb::transfer::Bulk, nusb::transfer::Out>);
/// A device's bulk IN endpoint through `nusb`.
pub struct NusbIn(nusb::Endpoint<nusb::transfer::Bulk, nusb::transfer::In>);

impl BulkOut for NusbOut {
    fn max_packet_size(&self) -> usize {
        self.0.max_packet_size()
    }

    async fn write_packet(&mut self, packet: &[u8]) -> Result<(), GatewayError> {
        self.0.submit(packet.to_vec().into());
        let done = self.0.next_complete().await;
        done.status.map_err(|e| GatewayError::Link(format!("USB OUT: {e}")))
    }
}

impl BulkIn for NusbIn {
    fn max_packet_size(&self) -> usize {
        self.0.max_packet_size()
    }

    async fn read_packet(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        if self.0.pending() == 0 {
            let mps = self.0.max_packet_size();
            self.0.submit(self.0.allocate(mps));
        }
        let done = self.0.next_complete().await;
        match done.status {
            Ok(()) => {
                let mut v = done.buffer.into_vec();
                v.truncate(done.actual_len);
                Ok(Some(v))
            }
            Err(nusb::transfer::TransferError::Disconnected) => Ok(None),
            Err(e) => Err(GatewayError::Link(format!("USB IN: {e}"))),
        }
    }
}

/// Opens the device `selector` picks: the only one with its ids, or the one with its serial number;
/// claims interface 0 and takes its first bulk OUT and IN endpoints.
pub async fn open_device(selector: &UsbSelector) -> Result<(NusbOut, NusbIn), GatewayError> {
    let (vid, pid) = selector.ids;
    let name = format!("USB {vid:04x}:{pid:04x}");
    // A machine without a USB bus (no /sys/bus/usb) has no such device either.
    let mut found: Vec<nusb::DeviceInfo> = match nusb::list_devices().await {
        Ok(devices) => devices
            .filter(|d| (d.vendor_id(), d.product_id()) == selector.ids)
            .filter(|d| selector.serial.as_deref().is_none_or(|s| d.serial_number() == Some(s)))
            .collect(),
        Err(e) => {
            tracing::info!("listing USB devices: {e}");
            Vec::new()
        }
    };
    let info = match (found.len(), &selector.serial) {
        (0, _) => {
            // Not there to open, like a serial device that is gone: a run waiting for its line retries.
            let detail = "no such device attached (cellos-gateway probe --usb lists them; see gateway/dist/60-cellos.rules for access)";
            return Err(GatewayError::Open {
                path: format!(
                    "{name}{}",
                    selector.serial.as_deref().map(|s| format!(" serial {s}")).unwrap_or_default()
                ),
                source: tokio_serial::Error::new(tokio_serial::ErrorKind::NoDevice, detail),
            });
        }
        (1, _) => found.remove(0),
        (n, _) => {
            return Err(GatewayError::Link(format!(
                "{name}: {n} devices attached: say which with usb:SERIAL (cellos-gateway probe --usb)"
            )));
        }
    };
    let device = info.open().await.map_err(|e| GatewayError::Link(format!("{name}: open: {e}")))?;
    let interface =
        device.detach_and_claim_interface(0).await.map_err(|e| GatewayError::Link(format!("{name}: claim: {e}")))?;
    let (mut out, mut inp) = (None, None);
    if let Some(d) = interface.descriptor() {
        for ep in d.endpoints() {
            if ep.transfer_type() != nusb::descriptors::TransferType::Bulk {
                continue;
            }
            match ep.direction() {
                nusb::transfer::Direction::Out if out.is_none() => out = Some(ep.address()),
                nusb::transfer::Direction::In if inp.is_none() => inp = Some(ep.address()),
                _ => {}
            }
        }
    }
    let (Some(o), Some(i)) = (out, inp) else {
        return Err(GatewayError::Link(format!("{name}: interface 0 has no bulk OUT and IN endpoints")));
    };
    let out = interface.endpoint(o).map_err(|e| GatewayError::Link(format!("{name}: endpoint {o:#04x}: {e}")))?;
    let inp = interface.endpoint(i).map_err(|e| GatewayError::Link(format!("{name}: endpoint {i:#04x}: {e}")))?;
    Ok((NusbOut(out), NusbIn(inp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_packets_end_short_or_with_a_zero_length_packet() {
        for mps in [64usize, 512] {
            for len in [0usize, 1, mps - 1, mps, mps + 1, 2 * mps, 2 * mps + 3] {
                let m: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let p = out_packets(&m, mps);
                assert_eq!(p.concat(), m, "{mps}/{len}");
                assert!(p.iter().all(|x| x.len() <= mps));
                assert!(p[..p.len() - 1].iter().all(|x| x.len() == mps), "only the last is short");
                assert!(p.last().unwrap().len() < mps, "the last is short (a ZLP after an exact multiple)");
                assert_eq!(p.len(), len / mps + 1, "{mps}/{len}");
            }
        }
        assert_eq!(out_packets(b"C0RFid0001", 64), vec![&b"C0RFid0001"[..]]);
    }

    #[test]
    fn replies_end_at_a_short_packet() {
        let mut a = InAssembler::new(4);
        assert_eq!(a.push(b"C0RF").unwrap(), None);
        assert!(a.partial());
        assert_eq!(a.push(b"id00").unwrap(), None);
        assert_eq!(a.push(b"01").unwrap(), Some(b"C0RFid0001".to_vec()));
        assert!(!a.partial());
        // An exact multiple ends with a zero-length packet.
        assert_eq!(a.push(b"abcd").unwrap(), None);
        assert_eq!(a.push(b"").unwrap(), Some(b"abcd".to_vec()));
        // A zero-length packet alone is an empty reply (the link skips it).
        assert_eq!(a.push(b"").unwrap(), Some(Vec::new()));
        assert_eq!(a.push(b"abcde").unwrap_err(), PacketError::TooLong { len: 5, mps: 4 });
        let mut a = InAssembler::new(64);
        let full = [b'x'; 64];
        let mut err = None;
        for _ in 0..=MAX_REPLY / 64 {
            if let Err(e) = a.push(&full) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(PacketError::Runaway(MAX_REPLY)));
        assert!(!a.partial(), "a runaway reply is dropped");
    }
}
