//! The STAR twin on a Cortex-M3 under QEMU (`lm3s6965evb`), UART0 on a pty. Needs `qemu-system-arm` and
//! the image (`cargo build -p cellos-twin-qemu --features target --target thumbv7m-none-eabi --profile firmware`),
//! named by `CELLOS_QEMU_ELF`; `.ci/run` runs it with `--ignored` when both are there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cellos_core::proto::star::StarMessage;
use cellos_tests::StarLine;

struct Qemu(std::process::Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs qemu-system-arm and CELLOS_QEMU_ELF (run by .ci/run when both exist)"]
fn star_twin_boots_in_qemu() {
    let elf = std::env::var("CELLOS_QEMU_ELF").expect("CELLOS_QEMU_ELF names the twin image");
    let mut qemu = Qemu(
        Command::new("qemu-system-arm")
            .args(["-machine", "lm3s6965evb", "-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native", "-serial", "pty", "-kernel", &elf])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-arm"),
    );
    // QEMU names the pty first ("char device redirected to /dev/pts/N (label serial0)"); defmt's binary
    // frames may follow on the same stream.
    let mut out = BufReader::new(qemu.0.stdout.take().unwrap());
    let mut line = Vec::new();
    out.read_until(b'\n', &mut line).unwrap();
    let line = String::from_utf8_lossy(&line);
    let pty = line.split_whitespace().find(|w| w.starts_with("/dev/")).unwrap_or_else(|| panic!("no pty in {line:?}"));
    // Keep draining QEMU's output so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let mut star = StarLine::open(pty);
    star.send("C0RFid0001");
    let reply = star.recv(Duration::from_secs(10)).expect("a reply from the Cortex-M3 twin");
    let m = StarMessage::parse(&reply).expect("a well-formed STAR reply");
    assert_eq!((m.module, m.code, m.id), (*b"C0", *b"RF", Some(1)));
    assert_eq!(m.errors().count(), 0);
    assert_eq!(m.param("rf").unwrap().raw(), "1.0.0 CELLOS TWIN");
    assert_eq!(star.ask("C0XXid0002"), "C0XXid0002er01/30");
    assert_eq!(star.ask("C0RTid0003"), "C0RTid0003er00/00rt0 0 0 0 0 0 0 0");
}
