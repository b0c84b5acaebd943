//! # cellos-firmware: the instrument twin
//!
//! A `#![no_std]`, heap-free impersonation of the lab's instruments (Hamilton STAR, Tecan EVO, the plate
//! reader), generic over `embedded-io` byte streams, so the same code serves a pty on a host and a UART
//! on a microcontroller. Its plate reader simulates wells with `cellos-core`.
#![no_std]
