//! Puts `memory.x` on the linker path and picks the model and test frames: `BALER_MODEL` and
//! `BALER_FRAMES` (paths) override the defaults in `model/` (a model trained by `baler train`
//! on the collider events, and their first 32 rows as f32); `BALER_FRAME_LEN` is the error-
//! bounded build's frame length (31, the default model's).
use std::path::PathBuf;

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(here.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    let defaults = here.join("model");
    // The source reads differently named variables than the ones the user sets.
    let inputs = [
        ("BALER_MODEL", "hzz_edge.blob", "FIRMWARE_MODEL_PATH"),
        ("BALER_FRAMES", "hzz_frames.f32", "FIRMWARE_FRAMES_PATH"),
    ];
    // The error-bounded build has no model to take the frame length from.
    let frame_len = std::env::var("BALER_FRAME_LEN").unwrap_or_else(|_| "31".to_string());
    println!("cargo:rustc-env=FIRMWARE_FRAME_LEN={frame_len}");
    println!("cargo:rerun-if-env-changed=BALER_FRAME_LEN");
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
