//! The instrument twin on a Cortex-M3: UART0 of an LM3S6965 (QEMU `lm3s6965evb`) carries the STAR text
//! protocol, UART1 the reader and incubator (`wire`); logs go out through defmt over semihosting.
//!
//! The image starts with an empty deck and seed 0. The gateway sets it up over the reader line
//! (`Request::Setup`: seed, instance number and the campaign deck of its lines, built in place), then runs
//! the campaign as on the host twin: the growth model and the readouts run here, on the chip.
//! `Request::Shutdown` ends QEMU (semihosting exit).
//!
//! Build and run (see README.md): `cargo build -p cellos-twin-qemu --features target --target
//! thumbv7m-none-eabi --release`, then `qemu-system-arm -machine lm3s6965evb -display none -monitor none
//! -semihosting-config enable=on,target=native -serial pty -serial pty -kernel <elf>`.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cellos_firmware::star::Timing;
use cellos_firmware::{StarPort, Twin, WirePort};
use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use embedded_hal_02::serial::Read as _;
use panic_halt as _;
use pl011_qemu::{PL011, UART1, UART2};

/// The twin as this chip serves it: the campaign deck's four plates of 96 wells.
type ChipTwin = Twin<{ cellos_firmware::deck::campaign::MAX_PLATES }, 96>;

/// A UART of the LM3S6965 as an `embedded-io` byte sink.
struct Uart<T>(PL011<T>);

impl<T> embedded_io::ErrorType for Uart<T> {
    type Error = core::convert::Infallible;
}

impl<T> embedded_io::Write for Uart<T>
where
    PL011<T>: embedded_hal_02::serial::Write<u8>,
{
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            let _ = nb::block!(embedded_hal_02::serial::Write::write(&mut self.0, b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One received byte, if one is waiting.
fn byte<T>(uart: &mut Uart<T>) -> Option<u8>
where
    PL011<T>: embedded_hal_02::serial::Read<u8>,
{
    match uart.0.read() {
        Ok(b) => Some(b),
        Err(nb::Error::WouldBlock) => None,
        Err(nb::Error::Other(_)) => {
            defmt::warn!("UART receive error");
            None
        }
    }
}

/// The twin and its two ports.
struct State {
    twin: ChipTwin,
    star: StarPort,
    reader: WirePort,
}

/// The whole state, in a static built at compile time, so that its RAM shows in the image (`size`,
/// README.md) and it never passes through the stack.
static STATE: critical_section::Mutex<RefCell<State>> = critical_section::Mutex::new(RefCell::new(State {
    twin: Twin::empty(0, Timing::INSTANT),
    star: StarPort::new(),
    reader: WirePort::new(),
}));

/// The state must leave room for the stack within the 64 KiB of RAM: at most 48 KiB.
const _: () = assert!(core::mem::size_of::<State>() <= 48 * 1024);

#[entry]
fn main() -> ! {
    let (Some(uart0), Some(uart1)) = (UART1::take(), UART2::take()) else {
        defmt::error!("a UART is already taken");
        loop {
            core::hint::spin_loop();
        }
    };
    let (mut star_line, mut reader_line) = (Uart(PL011::new(uart0)), Uart(PL011::new(uart1)));
    defmt::info!("cellos twin ready: STAR on UART0, reader on UART1");
    // No clock on this board model: every reply is due at once (`Timing::INSTANT`), and incubations
    // are instant.
    loop {
        let (s, r) = (byte(&mut star_line), byte(&mut reader_line));
        let stop = critical_section::with(|cs| {
            let mut state = STATE.borrow_ref_mut(cs);
            let State { twin, star, reader } = &mut *state;
            if let Some(b) = s {
                star.receive(twin, &[b], 0);
            }
            let _ = star.transmit(twin, &mut star_line, 0);
            if let Some(b) = r {
                reader.receive(twin, &[b], 0);
            }
            let _ = reader.transmit(twin, &mut reader_line, 0);
            twin.shutdown && !reader.holding()
        });
        if stop {
            defmt::info!("shutdown requested");
            semihosting::process::exit(0);
        }
    }
}
