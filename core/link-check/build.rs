//! The link check has no C runtime start files: its own `_start` is the entry point, and the C library
//! is linked only for `write` and `exit`.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-nostartfiles");
        println!("cargo:rustc-link-arg-bins=-lc");
    }
}
