//! The STAR twin on a Cortex-M3: UART0 of an LM3S6965 (QEMU `lm3s6965evb`) carries the STAR text
//! protocol; logs go out through defmt over semihosting.
//!
//! Build and run (see README.md): `cargo build -p cellos-twin-qemu --features target --target
//! thumbv7m-none-eabi --release`, then `qemu-system-arm -machine lm3s6965evb -display none -monitor none
//! -semihosting-config enable=on,target=native -serial pty -kernel <elf>`.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cellos_firmware::deck::default_deck;
use cellos_firmware::star::Timing;
use cellos_firmware::{SmallTwin, StarPort};
use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use embedded_hal_02::serial::Read as _;
use panic_halt as _;
use pl011_qemu::{PL011, UART1};

/// UART0 of the LM3S6965 (`UART1` in the driver's numbering) as an `embedded-io` byte sink.
struct Uart(PL011<UART1>);

impl embedded_io::ErrorType for Uart {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            self.0.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The twin's whole state, in a static built at compile time, so that its RAM shows in the image (`size`,
/// README.md) and it never passes through the stack.
static STATE: critical_section::Mutex<RefCell<(SmallTwin, StarPort)>> =
    critical_section::Mutex::new(RefCell::new((SmallTwin::empty(1, Timing::INSTANT), StarPort::new())));

/// The state must leave room for the stack within the 64 KiB of RAM: at most 48 KiB.
const _: () = assert!(core::mem::size_of::<(SmallTwin, StarPort)>() <= 48 * 1024);

#[entry]
fn main() -> ! {
    let Some(uart) = UART1::take() else {
        defmt::error!("UART0 already taken");
        loop {
            core::hint::spin_loop();
        }
    };
    let mut uart = Uart(PL011::new(uart));
    // The deck is filled in place (the only part built at run time). No clock on this board model: every
    // reply is due at once (`Timing::INSTANT` above).
    critical_section::with(|cs| STATE.borrow_ref_mut(cs).0.deck = default_deck());
    defmt::info!("cellos STAR twin ready on UART0");
    loop {
        let byte = match uart.0.read() {
            Ok(byte) => Some(byte),
            Err(nb::Error::WouldBlock) => None,
            Err(nb::Error::Other(_)) => {
                defmt::warn!("UART receive error");
                None
            }
        };
        critical_section::with(|cs| {
            let mut state = STATE.borrow_ref_mut(cs);
            let (twin, port) = &mut *state;
            if let Some(b) = byte {
                port.receive(twin, &[b], 0);
            }
            let _ = port.transmit(twin, &mut uart, 0);
        });
    }
}
