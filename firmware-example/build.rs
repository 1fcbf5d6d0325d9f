//! Puts `memory.x` on the linker path and picks the model and test frames:
//! `BALER_MODEL` and `BALER_FRAMES` (paths) override the defaults in `model/` (a model trained
//! by `baler train` on the collider events, and their first 32 rows as f32).
use std::path::PathBuf;

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(here.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    let golden = here.join("../tests/golden");
    for (var, default) in [
        ("BALER_MODEL", "edge_model.blob"),
        ("BALER_FRAMES", "frames.f32"),
    ] {
        let path = std::env::var(var)
            .map(PathBuf::from)
            .unwrap_or_else(|_| golden.join(default));
        let path = path
            .canonicalize()
            .unwrap_or_else(|e| panic!("{var} {}: {e}", path.display()));
        println!("cargo:rustc-env={var}={}", path.display());
        println!("cargo:rerun-if-env-changed={var}");
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
