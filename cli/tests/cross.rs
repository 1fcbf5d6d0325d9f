//! The `baler` command on the CPUs next to an FPGA: cross-built for `aarch64-unknown-linux-gnu`
//! (Zynq UltraScale+ and most lab boards) and `armv7-unknown-linux-gnueabihf` (Zynq-7000),
//! run under qemu-user. It must decode the golden fixed-rate stream and streams written on
//! x86 to the same bytes as the x86 build, and compress the shipped events to the same stream.
//!
//! Needs the rustup targets, Debian's cross linkers (`gcc-aarch64-linux-gnu`,
//! `gcc-arm-linux-gnueabihf`) and `qemu-user`; `.ci/run` installs them and sets
//! `BALER_REQUIRE_CROSS=1` so that the test fails rather than skips there.

mod common;

use common::{baler, ok, s, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Linux target, its cross linker, and the qemu-user runner with its sysroot.
struct Cross {
    target: &'static str,
    linker: &'static str,
    qemu: &'static str,
    sysroot: &'static str,
}

const TARGETS: [Cross; 2] = [
    Cross {
        target: "aarch64-unknown-linux-gnu",
        linker: "aarch64-linux-gnu-gcc",
        qemu: "qemu-aarch64",
        sysroot: "/usr/aarch64-linux-gnu",
    },
    Cross {
        target: "armv7-unknown-linux-gnueabihf",
        linker: "arm-linux-gnueabihf-gcc",
        qemu: "qemu-arm",
        sysroot: "/usr/arm-linux-gnueabihf",
    },
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn missing(cross: &Cross) -> Option<String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(cross.target))
        .unwrap_or(false);
    if !installed {
        return Some(format!("rustup target {} is not installed", cross.target));
    }
    for tool in [cross.linker, cross.qemu] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!(
                "{tool} is not installed (Debian: gcc-*-linux-gnu*, qemu-user)"
            ));
        }
    }
    None
}

/// Builds `baler` for every target in `crosses` in one cargo call (in its own target folder:
/// the outer build holds the main one) and returns each binary. One call, not one a target:
/// the two builds then share the host's build scripts and proc-macros and overlap on the
/// cores, which took CI's slowest test from about 250 s to 145 s on 2 cores.
fn build(crosses: &[&Cross]) -> Vec<PathBuf> {
    let dir = root().join("target/cross");
    let mut command = Command::new(env!("CARGO"));
    command.args(["build", "-p", "baler-cli"]);
    for cross in crosses {
        let linker_var = format!(
            "CARGO_TARGET_{}_LINKER",
            cross.target.to_uppercase().replace('-', "_")
        );
        command
            .args(["--target", cross.target])
            .env(linker_var, cross.linker);
    }
    let status = command
        .env("CARGO_TARGET_DIR", &dir)
        // No debug info: the test compares bytes, never a backtrace.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .env_remove("RUSTFLAGS")
        .current_dir(root())
        .status()
        .unwrap();
    assert!(status.success(), "cross build failed");
    crosses
        .iter()
        .map(|cross| dir.join(cross.target).join("debug/baler"))
        .collect()
}

/// Runs the cross-built `baler` under qemu-user.
fn run(cross: &Cross, binary: &Path, args: &[&str]) -> String {
    let out = Command::new(cross.qemu)
        .arg("-L")
        .arg(cross.sysroot)
        .arg(binary)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        cross.target,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_command_on_arm_linux_writes_and_reads_the_same_bytes_as_x86() {
    let required = std::env::var_os("BALER_REQUIRE_CROSS").is_some();
    let streams = root().join("tests/streams");
    let golden = root().join("tests/golden");
    let hzz = root().join("examples/data/hzz.npz");
    let mut available = Vec::new();
    for cross in &TARGETS {
        match missing(cross) {
            Some(why) => {
                assert!(!required, "{why}");
                eprintln!("SKIPPED {}: {why}", cross.target);
            }
            None => available.push(cross),
        }
    }
    if available.is_empty() {
        return;
    }
    let binaries = build(&available);
    for (cross, binary) in available.into_iter().zip(binaries) {
        let dir = temp_dir(&format!("cross-{}", cross.target));
        // Decoding: the golden fixed-rate stream and error-bounded streams written on x86.
        let cases: [(PathBuf, Option<PathBuf>); 3] = [
            (
                golden.join("stream.baler"),
                Some(golden.join("edge_model.blob")),
            ),
            (streams.join("hzz_1e-3.baler"), None),
            (streams.join("cfd_1e-3.baler"), None),
        ];
        for (i, (stream, model)) in cases.iter().enumerate() {
            let mut args = vec!["decompress", "--input", s(stream)];
            if let Some(model) = model {
                args.extend(["--model", s(model)]);
            }
            let arm = dir.join(format!("arm-{i}.npy"));
            let x86 = dir.join(format!("x86-{i}.npy"));
            run(
                cross,
                &binary,
                &[&args[..], &["--output", s(&arm)]].concat(),
            );
            ok(baler(&[&args[..], &["--output", s(&x86)]].concat()));
            assert!(
                std::fs::read(&arm).unwrap() == std::fs::read(&x86).unwrap(),
                "{}: {} decodes differently",
                cross.target,
                stream.display()
            );
        }
        // Encoding: the shipped events, error-bounded, give the stream written on x86 (since
        // the copy relation, `copy/hzz_1e-3.baler`).
        let arm = dir.join("hzz.baler");
        run(
            cross,
            &binary,
            &[
                "compress",
                "--input",
                s(&hzz),
                "--output",
                s(&arm),
                "--rel-error-bound",
                "1e-3",
            ],
        );
        assert!(
            std::fs::read(&arm).unwrap()
                == std::fs::read(streams.join("copy/hzz_1e-3.baler")).unwrap(),
            "{}: the compressed events differ from x86's",
            cross.target
        );
        eprintln!(
            "{}: decodes 3 streams and compresses hzz bit for bit as x86",
            cross.target
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
