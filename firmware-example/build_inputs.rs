// Shared by the build scripts of firmware-example/ and firmware-riscv/ (`include!`d): puts
// `memory.x` on the linker path and picks the model and test frames, `BALER_MODEL` and
// `BALER_FRAMES` (paths) overriding the defaults in `firmware-example/model/`.

/// Copies `here/memory.x` where the linker finds it, and passes the model and frame paths to
/// the source (as `FIRMWARE_MODEL_PATH`, `FIRMWARE_FRAMES_PATH`), with `models` the folder of
/// the defaults.
fn link_memory_and_pick_inputs(here: &std::path::Path, models: &std::path::Path) {
    use std::path::PathBuf;
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(here.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // The source reads differently named variables than the ones the user sets.
    let inputs = [
        ("BALER_MODEL", "hzz_edge.blob", "FIRMWARE_MODEL_PATH"),
        ("BALER_FRAMES", "hzz_frames.f32", "FIRMWARE_FRAMES_PATH"),
    ];
    for (var, default, internal) in inputs {
        let path = std::env::var(var)
            .map(PathBuf::from)
            .unwrap_or_else(|_| models.join(default));
        let path = path
            .canonicalize()
            .unwrap_or_else(|e| panic!("{var} {}: {e}", path.display()));
        println!("cargo:rustc-env={internal}={}", path.display());
        println!("cargo:rerun-if-env-changed={var}");
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
