//! Proof that `cellos-core` needs no `std`: a `#![no_std]`, `#![no_main]` Linux binary that links
//! against the core alone (plus the C library for `write` and `exit`), runs the growth model and the
//! readouts on a 96-well plate and an adaptive dose search, checks the numbers, and prints them.
//!
//! If any dependency of the core pulled in `std`, this would not link: `std` brings its own panic
//! handler and entry point, which clash with the ones defined here.
//!
//! Build and run it alone, so that no other package's features are unified into the core's:
//! `cargo run -p cellos-core-link-check --features link-check --profile nostd`.
#![no_std]
#![no_main]

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use cellos_core::model::{CompoundId, GrowthConstants, Plate};
use cellos_core::params::builtin;
use cellos_core::plate::PlateFormat;
use cellos_core::readout;
use cellos_core::rng;
use cellos_core::search::{Criteria, DoseSearch, SearchConfig, Step, Strategy, TbhpAssay};

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("the link check has an entry point for x86_64 Linux only");

#[allow(unsafe_code)]
unsafe extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn exit(code: i32) -> !;
}

struct Stdout;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            // SAFETY: the pointer and length describe a live byte slice.
            #[allow(unsafe_code)]
            let n = unsafe { write(1, rest.as_ptr(), rest.len()) };
            if n <= 0 {
                return Err(fmt::Error);
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

fn quit(code: i32) -> ! {
    // SAFETY: `exit` takes any status and does not return.
    #[allow(unsafe_code)]
    unsafe {
        exit(code)
    }
}

/// The process entry point: no C runtime runs before it, so it aligns the stack itself.
#[allow(unsafe_code)]
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn _start() -> ! {
    core::arch::naked_asm!("xor ebp, ebp", "and rsp, -16", "call {entry}", "ud2", entry = sym entry)
}

/// The core is built with unwinding tables; nothing here unwinds (panic = "abort").
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let _ = writeln!(Stdout, "link-check panicked: {info}");
    quit(101)
}

extern "C" fn entry() -> ! {
    let out = &mut Stdout;
    match run(out) {
        Ok(()) => {
            let _ = writeln!(out, "link-check: ok");
            quit(0)
        }
        Err(what) => {
            let _ = writeln!(out, "link-check: FAILED: {what}");
            quit(1)
        }
    }
}

fn run(out: &mut Stdout) -> Result<(), &'static str> {
    let line = builtin::cell_line("U2OS").map_err(|_| "no U2OS")?;
    let tbhp = builtin::sensitivity("tbhp", "U2OS").map_err(|_| "no tBHP IC50")?;
    let cellrox = builtin::cellrox("U2OS").map_err(|_| "no CellROX set")?;
    let seg = builtin::segmentation("U2OS").map_err(|_| "no segmentation set")?;
    let format = PlateFormat::W96;
    let mut plate = Plate::<96>::new(format, line, GrowthConstants::LEGACY).map_err(|_| "plate")?;
    let mut rng = rng::seeded(2024);
    for well in format.wells_iter() {
        plate.seed(well, 1e4, 1e6).map_err(|_| "seed")?;
    }
    plate.advance(24.0).map_err(|_| "advance")?;
    for well in format.wells_iter() {
        let dose = 10.0 * f64::from(well.col());
        plate.treat(well, CompoundId(6), dose, &tbhp, &mut rng).map_err(|_| "treat")?;
    }
    plate.advance(24.0).map_err(|_| "advance")?;
    let _ = writeln!(out, "column  dose_uM  cells     cellrox_AU  segmentation");
    let mut previous_signal = 0.0;
    for col in 0..format.cols() {
        let well = format.well(3, col).map_err(|_| "well")?;
        let c = plate.culture(well).ok_or("empty well")?;
        let dose = c.dose_um(CompoundId(6));
        let signal = readout::cellrox_mean(&cellrox, dose);
        let quality = readout::read_segmentation(&seg, dose, c.viability(), &mut rng);
        let _ = writeln!(out, "{:>6}  {:>7.1}  {:>8.0}  {:>10.1}  {:>12.3}", col + 1, dose, c.cells(), signal, quality);
        if signal < previous_signal {
            return Err("CellROX is not monotone in dose");
        }
        previous_signal = signal;
    }
    // The adaptive dose search, noise-free, must land on the optimum.
    let assay = TbhpAssay::builtin("U2OS").map_err(|_| "no tBHP assay")?;
    let optimum = assay.optimum(&Criteria::default(), 0.0, 500.0);
    let mut search = DoseSearch::new(Strategy::Adaptive, SearchConfig::adaptive()).map_err(|_| "search")?;
    let mut doses = [0.0; 16];
    let mut readouts = [assay.mean(0.0); 16];
    let result = loop {
        match search.next(&mut doses).map_err(|_| "search step")? {
            Step::Done(r) => break r,
            Step::Batch(n) => {
                for i in 0..n {
                    readouts[i] = assay.mean(doses[i]);
                }
                search.observe(&readouts[..n]).map_err(|_| "observe")?;
            }
        }
    };
    let _ = writeln!(
        out,
        "adaptive search: {:.2} µM in {} wells (optimum {:.2} µM)",
        result.dose_um, result.wells, optimum
    );
    if ((result.dose_um - optimum) / optimum).abs() > 0.01 {
        return Err("adaptive search missed the noise-free optimum by more than 1 %");
    }
    let untreated = plate.culture(format.well(3, 0).map_err(|_| "well")?).ok_or("empty well")?;
    if !(untreated.cells() > 1.2e4 && untreated.cells() < 4e4) {
        return Err("untreated well grew outside 1.2e4..4e4 cells in 48 h");
    }
    Ok(())
}
