//! Puts `memory.x` on the linker path and picks the model and test frames as the ARM
//! firmware does: `BALER_MODEL` and `BALER_FRAMES` override the defaults in
//! `firmware-example/model/`.
use std::path::PathBuf;

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(here.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    let defaults = here.join("../firmware-example/model");
    let inputs = [
        ("BALER_MODEL", "hzz_edge.blob", "FIRMWARE_MODEL_PATH"),
        ("BALER_FRAMES", "hzz_frames.f32", "FIRMWARE_FRAMES_PATH"),
    ];
    for (var, default, internal) in inputs {
        let path = std::env::var(var)
            .map(PathBuf::from)
            .unwrap_or_else(|_| defaults.join(default));
        let path = path
            .canonicalize()
            .unwrap_or_else(|e| panic!("{var} {}: {e}", path.display()));
        println!("cargo:rustc-env={internal}={}", path.display());
        println!("cargo:rerun-if-env-changed={var}");
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
