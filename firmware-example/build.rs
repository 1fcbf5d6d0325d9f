//! Puts `memory.x` on the linker path and picks the model and test frames: `BALER_MODEL` and
//! `BALER_FRAMES` (paths) override the defaults in `model/` (a model trained by `baler train`
//! on the collider events, and their first 32 rows as f32); `BALER_FRAME_LEN` is the error-
//! bounded build's frame length (31, the default model's).
use std::path::PathBuf;

include!("build_inputs.rs");

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    link_memory_and_pick_inputs(&here, &here.join("model"));
    println!("cargo:rerun-if-changed=build_inputs.rs");
    // The error-bounded build has no model to take the frame length from.
    let frame_len = std::env::var("BALER_FRAME_LEN").unwrap_or_else(|_| "31".to_string());
    println!("cargo:rustc-env=FIRMWARE_FRAME_LEN={frame_len}");
    println!("cargo:rerun-if-env-changed=BALER_FRAME_LEN");
}
