//! Running the `baler` binary from tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `baler` with `args`.
pub fn baler(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baler"))
        .args(args)
        .output()
        .expect("run baler")
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baler-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A path as `&str` for the command line.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `baler compress` then `baler decompress` of `input` with `model` into `dir`; returns the
/// stream and the decompressed file.
pub fn round_trip(model: &Path, input: &Path, dir: &Path, ext: &str) -> (PathBuf, PathBuf) {
    let (stream, out) = (dir.join("data.baler"), dir.join(format!("out.{ext}")));
    ok(baler(&[
        "compress",
        "--model",
        s(model),
        "--input",
        s(input),
        "--output",
        s(&stream),
    ]));
    ok(baler(&[
        "decompress",
        "--model",
        s(model),
        "--input",
        s(&stream),
        "--output",
        s(&out),
    ]));
    (stream, out)
}

/// The shared data file `name`, or `None` (with a note) when the shared data is absent.
pub fn shared(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared data stays outside the repository)",
            path.display()
        );
        None
    }
}
