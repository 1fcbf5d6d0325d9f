//! The firmware example on an emulated Cortex-M4F (QEMU mps2-an386): its stream must equal
//! the host codec's golden stream byte for byte, and its decoded values must have the golden
//! checksum. Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target; `.ci/run` installs
//! both and sets `BALER_REQUIRE_QEMU=1` so that the test fails rather than skips there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn available(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("BALER_REQUIRE_QEMU").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Runs a command with a timeout, returning its stdout.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let out = tempfile_path("qemu-out");
    let file = std::fs::File::create(&out).unwrap();
    let mut child = cmd
        .stdout(file)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    (status.is_some_and(|s| s.success()), text)
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("baler-{name}-{}", std::process::id()))
}

fn build_firmware(dir: &Path) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release"])
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "firmware build failed");
    dir.join("target/thumbv7em-none-eabihf/release/baler-firmware-example")
}

#[test]
fn firmware_stream_is_bit_exact_with_the_host() {
    if !available("qemu-system-arm", "--version") {
        return skip_or_fail("qemu-system-arm is not installed (Debian: qemu-system-arm)");
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if !targets.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf"))
    {
        return skip_or_fail("rustup target thumbv7em-none-eabihf is not installed");
    }
    let elf = build_firmware(&root().join("firmware-example"));
    let (ok, out) = run_with_timeout(
        Command::new("qemu-system-arm")
            .args([
                "-machine",
                "mps2-an386",
                "-cpu",
                "cortex-m4",
                "-nographic",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
            ])
            .arg(&elf),
        Duration::from_secs(120),
    );
    assert!(ok, "firmware failed or timed out:\n{out}");
    let line = |tag: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("no {tag} line in:\n{out}"))
            .trim()
            .to_string()
    };
    let golden = root().join("tests/golden");
    let stream = std::fs::read(golden.join("stream.baler")).unwrap();
    let hex: String = stream.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        line("STREAM "),
        hex,
        "the firmware's stream differs from the host's"
    );
    let decoded = std::fs::read(golden.join("decoded.f32")).unwrap();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&decoded);
    assert_eq!(line("DECODED "), format!("16 frames CRC32 {crc:08x}"));
    let id = std::fs::read_to_string(golden.join("model_id.txt")).unwrap();
    assert!(line("MODEL ").starts_with(id.trim()));
}
