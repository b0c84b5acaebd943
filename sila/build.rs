//! Compiles the SiLA protobuf files (vendored and our features') with protox, a protobuf compiler in
//! Rust: no `protoc` is needed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["vendor/proto/SiLAFramework.proto", "vendor/proto/SiLAService.proto", "features/DoseFinding.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["vendor/proto", "features"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
