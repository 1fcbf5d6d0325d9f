//! Puts `memory.x` on the linker path and picks the model and test frames as the ARM
//! firmware does (its `build_inputs.rs`): `BALER_MODEL` and `BALER_FRAMES` override the
//! defaults in `firmware-example/model/`.
use std::path::PathBuf;

include!("../firmware-example/build_inputs.rs");

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    link_memory_and_pick_inputs(&here, &here.join("../firmware-example/model"));
    println!("cargo:rerun-if-changed=../firmware-example/build_inputs.rs");
}
