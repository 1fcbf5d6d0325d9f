//! The firmware example on an emulated Cortex-M4F (QEMU mps2-an386): its stream must equal
//! what the host codec writes for the same model and frames, byte for byte, and its decoded
//! values must have the host's checksum. Its error-bounded streams (the frames as i16 ADC
//! counts, lossless and within 2 counts) must equal the host codec's too, and decode within
//! the bound. Run for the default model (trained on the collider
//! events) on a Cortex-M4F and with the Cortex-M0 instruction set, and for the golden vectors. Needs `qemu-system-arm` and the `thumbv7em-none-eabihf`
//! target; `.ci/run` installs both and sets `BALER_REQUIRE_QEMU=1` so that the test fails
//! rather than skips there.

use baler_codec::bounded::{
    write_params, BoundParams, BoundedEncoder, CoderChoice, ColumnGrid, Layout, Predictor,
    ScratchBuf, ScratchSizes,
};
use baler_codec::stream::{write_block, BlockKind, BLOCK_HEADER_LEN, BLOCK_TRAILER_LEN};
use baler_codec::stream::{FLAG_ERROR_BOUNDED, STREAM_HEADER_LEN};
use baler_codec::{DType, Decoder, Encoder, HostModel, StreamHeader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Frames per block in the firmware.
const FRAMES_PER_BLOCK: u32 = 5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prerequisites() -> Result<(), String> {
    needs(
        "qemu-system-arm",
        "qemu-system-arm",
        "thumbv7em-none-eabihf",
    )
}

/// Whether a test can run: what it needs is there. If not, it says why and skips, or with
/// `BALER_REQUIRE_QEMU` set (CI) it fails.
fn ready(needed: Result<(), String>) -> bool {
    match needed {
        Ok(()) => true,
        Err(why) if std::env::var_os("BALER_REQUIRE_QEMU").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

/// Whether `qemu` (Debian package `package`) and the rustup target `target` are installed.
fn needs(qemu: &str, package: &str, target: &str) -> Result<(), String> {
    let found = Command::new(qemu).arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err(format!("{qemu} is not installed (Debian: {package})"));
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if !targets.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(target)) {
        return Err(format!("rustup target {target} is not installed"));
    }
    Ok(())
}

/// Runs `elf` in `qemu` with `args` and semihosting; returns its stdout (a failure or a run
/// past 120 s fails the test).
fn run_qemu(qemu: &str, args: &[&str], elf: &Path) -> String {
    let log = std::env::temp_dir().join(format!("baler-qemu-{qemu}-{}", std::process::id()));
    let mut child = Command::new(qemu)
        .args(args)
        .args([
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(elf)
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{qemu}: the firmware did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the firmware failed:\n{out}");
    out
}

/// A target and the QEMU machine that runs it.
struct Board {
    target: &'static str,
    machine: &'static str,
    cpu: &'static str,
}

/// Cortex-M4F (thumbv7em, hardware f32).
const M4F: Board = Board {
    target: "thumbv7em-none-eabihf",
    machine: "mps2-an386",
    cpu: "cortex-m4",
};

/// The Cortex-M0 instruction set (thumbv6m, soft-float), run on AN385's Cortex-M3 core.
const M0: Board = Board {
    target: "thumbv6m-none-eabi",
    machine: "mps2-an385",
    cpu: "cortex-m3",
};

/// Builds the firmware for `model` and `frames` with the cargo `feature` (none, `bounded` for
/// the error-bounded image, `exact` for models with exact columns) and runs it in QEMU;
/// returns its stdout.
fn run_firmware(board: &Board, model: &Path, frames: &Path, feature: &str) -> String {
    let frame_len = HostModel::from_bytes(&std::fs::read(model).unwrap())
        .unwrap()
        .input_len();
    let dir = root().join("firmware-example");
    let features: &[&str] = if feature.is_empty() {
        &[]
    } else {
        &["--features", feature]
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", board.target])
        .args(features)
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .env("BALER_MODEL", model)
        .env("BALER_FRAMES", frames)
        .env("BALER_FRAME_LEN", frame_len.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "firmware build failed");
    let elf = dir.join(format!(
        "target/{}/release/baler-firmware-example",
        board.target
    ));
    let out = run_qemu(
        "qemu-system-arm",
        &["-machine", board.machine, "-cpu", board.cpu],
        &elf,
    );
    // The budgets are for the default model and its 31-value frames: a larger model takes
    // its own flash, and longer frames take the error-bounded image's buffers (5 frames in,
    // 5 out and the history, 8 bytes a value) past 16 KiB.
    let default_model = model.file_name().is_some_and(|n| n == "hzz_edge.blob");
    if board.target == M4F.target && default_model {
        check_budget(&elf, &out, feature);
    }
    out
}

/// The Cortex-M4F budgets (README, docs/firmware.md; issue 18): flash (.vector_table, .text,
/// .rodata and .data, whose initial values live in flash) and RAM (.data, .bss and the peak
/// stack the firmware measured by painting it), per image.
fn check_budget(elf: &Path, out: &str, feature: &str) {
    use object::{Object, ObjectSection};
    let (flash_budget, ram_budget) = match feature {
        "" => (32 * 1024, 8 * 1024),
        "bounded" => (48 * 1024, 16 * 1024),
        // The image with exact columns is measured, not budgeted (docs/firmware.md).
        _ => return,
    };
    let bytes = std::fs::read(elf).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
    let flash = [".vector_table", ".text", ".rodata", ".data"]
        .iter()
        .map(|s| size(s))
        .sum::<u64>();
    let stack: u64 = line(out, "STACK peak ")
        .trim_end_matches(" bytes")
        .parse()
        .unwrap();
    let ram = size(".data") + size(".bss") + stack;
    eprintln!("firmware image '{feature}' on the Cortex-M4F: flash {flash} B, RAM {ram} B ({stack} B peak stack)");
    assert!(
        flash <= flash_budget && ram <= ram_budget,
        "the '{feature}' image takes {flash} B of flash and {ram} B of RAM, over its {flash_budget} B and {ram_budget} B"
    );
}

/// What the host codec writes and decodes for the same model and frames.
fn host(model: &[u8], frames: &[u8]) -> (String, String, u64) {
    let model = HostModel::from_bytes(model).unwrap();
    let n = model.input_len();
    let values: Vec<f32> = frames
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let count = values.len() / n;
    let header = StreamHeader::new(&model, DType::F32, &[count as u64, n as u64]).unwrap();
    let mut stream = vec![0u8; 1 << 16];
    let mut encoder = Encoder::new(&model, header, FRAMES_PER_BLOCK, &mut stream).unwrap();
    for frame in values.chunks_exact(n) {
        encoder.push_frame(frame).unwrap();
    }
    let len = encoder.finish().unwrap();
    stream.truncate(len);
    let mut decoder = Decoder::new(&model, &stream).unwrap();
    let crc32 = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut crc = crc32.digest();
    let mut out = vec![0f32; n];
    while decoder.next_frame(&mut out).unwrap() {
        out.iter().for_each(|v| crc.update(&v.to_le_bytes()));
    }
    let hex = stream.iter().map(|b| format!("{b:02x}")).collect();
    (
        hex,
        format!("{count} frames CRC32 {:08x}", crc.finalize()),
        model.id(),
    )
}

/// The test frames as the firmware's i16 ADC counts (rounded half away from zero, clamped).
fn counts(frames: &[u8]) -> Vec<f64> {
    frames
        .chunks_exact(4)
        .map(|b| {
            let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            f64::from(x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)))
        })
        .collect()
}

/// The test frames as the firmware's f32 run reads them (widened exactly).
fn floats(frames: &[u8]) -> Vec<f64> {
    frames
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect()
}

/// An error-bounded run of the firmware: ADC counts within `k` counts, or the f32 frames
/// within an absolute bound.
#[derive(Clone, Copy, Debug)]
enum Promise {
    Counts(u16),
    Floats(f64),
}

impl Promise {
    fn values(self, frames: &[u8]) -> Vec<f64> {
        match self {
            Promise::Counts(_) => counts(frames),
            Promise::Floats(_) => floats(frames),
        }
    }

    fn bound(self) -> f64 {
        match self {
            Promise::Counts(k) => f64::from(k),
            Promise::Floats(eps) => eps,
        }
    }
}

/// What the host codec writes for the firmware's error-bounded run: the frames as counts
/// (grid step 2k + 1) or as f32 (step 2 eps), each frame a row of a field of height 1,
/// model-free, the adaptive coder, `FRAMES_PER_BLOCK` frames per block.
fn host_bounded(frames: &[u8], n: usize, promise: Promise) -> Vec<u8> {
    let values = promise.values(frames);
    let rows = values.len() / n;
    let layout = Layout::Field {
        height: 1,
        width: n as u32,
    };
    let (dtype, step) = match promise {
        Promise::Counts(k) => (DType::I16, f64::from(2 * k + 1)),
        Promise::Floats(eps) => (DType::F32, 2.0 * eps),
    };
    let grid = ColumnGrid::linear(0.0, step, promise.bound());
    let mut params = vec![0u8; 256];
    let len = write_params(layout, Predictor::None, dtype, n, &[grid], &[], &mut params).unwrap();
    params.truncate(len);
    let parsed = BoundParams::read(&params).unwrap();
    let block_rows = FRAMES_PER_BLOCK as usize;
    let mut scratch = ScratchBuf::new(ScratchSizes::new(&parsed, 0, block_rows));
    let mut stream = vec![0u8; STREAM_HEADER_LEN];
    let mut block = vec![0u8; BLOCK_HEADER_LEN + len + BLOCK_TRAILER_LEN];
    write_block(BlockKind::BoundParams, 0, &params, &mut block).unwrap();
    stream.extend(block);
    for part in values.chunks(block_rows * n) {
        let mut decoded = vec![0f64; part.len()];
        let mut out = vec![0u8; 1 << 16];
        let mut encoder = BoundedEncoder::<HostModel<'_>>::new(
            &parsed,
            None,
            scratch.scratch(),
            CoderChoice::Adaptive,
        )
        .unwrap();
        let len = encoder.encode_block(part, &mut decoded, &mut out).unwrap();
        stream.extend_from_slice(&out[..len]);
    }
    let header = StreamHeader {
        model_id: 0,
        flags: FLAG_ERROR_BOUNDED,
        frame_count: rows as u64,
        frame_len: n as u32,
        dtype,
        rank: 2,
        shape: [rows as u64, n as u64, 0, 0],
    };
    header.write(&mut stream).unwrap();
    stream
}

/// The firmware's error-bounded streams: byte for byte the host codec's, and decoded by the
/// library within `k` counts of every ADC value.
fn check_bounded(out: &str, frames: &[u8], n: usize) {
    let mut seen = 0;
    let runs = out.lines().filter_map(|l| {
        let (tag, rest) = l.split_once(' ')?;
        let (bound, hex) = rest.trim().split_once(' ')?;
        match tag {
            "BOUNDED" => Some((Promise::Counts(bound.parse().ok()?), hex)),
            "BOUNDED_F32" => Some((Promise::Floats(bound.parse().ok()?), hex)),
            _ => None,
        }
    });
    for (promise, hex) in runs {
        let original = promise.values(frames);
        let k = promise.bound();
        let expected: String = host_bounded(frames, n, promise)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex, expected,
            "the firmware's error-bounded stream ({promise:?}) differs from the host's"
        );
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let array = baler::decompress(&bytes, None).unwrap();
        assert_eq!(array.shape(), &[original.len() / n, n]);
        let decoded = array.values().to_f64();
        let worst = original
            .iter()
            .zip(&decoded)
            .fold(0f64, |w, (a, b)| w.max((a - b).abs()));
        assert!(worst <= k, "{promise:?}: a value came back {worst} off");
        eprintln!(
            "error-bounded on the device, {promise:?}: {} values as {} bytes, worst error {worst}",
            original.len(),
            bytes.len()
        );
        seen += 1;
    }
    assert_eq!(
        seen, 3,
        "the firmware runs lossless, +-2 counts and f32 within 0.05:\n{out}"
    );
}

fn line(out: &str, tag: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no {tag} line in:\n{out}"))
        .trim()
        .to_string()
}

fn check(board: &Board, model: &Path, frames: &Path) -> String {
    let out = run_firmware(board, model, frames, "");
    let (stream, decoded, id) = host(
        &std::fs::read(model).unwrap(),
        &std::fs::read(frames).unwrap(),
    );
    assert_eq!(
        line(&out, "STREAM "),
        stream,
        "the firmware's stream differs from the host's"
    );
    assert_eq!(line(&out, "DECODED "), decoded, "decoded values differ");
    assert!(line(&out, "MODEL ").starts_with(&format!("{id:016x}")));
    assert!(
        !out.contains("BOUNDED "),
        "the fixed-rate build has no error-bounded run"
    );
    // The second build is the error-bounded image alone (no model in it).
    let out = run_firmware(board, model, frames, "bounded");
    assert!(
        !out.contains("STREAM "),
        "the error-bounded build has no fixed-rate run"
    );
    let n = HostModel::from_bytes(&std::fs::read(model).unwrap())
        .unwrap()
        .input_len();
    assert_eq!(
        line(&out, "FRAMES "),
        format!(
            "{} of {n} values",
            std::fs::read(frames).unwrap().len() / 4 / n
        )
    );
    check_bounded(&out, &std::fs::read(frames).unwrap(), n);
    stream
}

/// Runs the image built with `features` on `model` and `frames` on the M4F and checks its
/// stream and decoded values against the host's; returns the model blob and the values the
/// host's decoder reads from the firmware's stream.
fn check_variant(model: &Path, frames: &Path, features: &str) -> (Vec<u8>, Vec<f32>) {
    let out = run_firmware(&M4F, model, frames, features);
    let blob = std::fs::read(model).unwrap();
    let raw = std::fs::read(frames).unwrap();
    let (stream, decoded, _) = host(&blob, &raw);
    assert_eq!(line(&out, "STREAM "), stream, "{features}: streams differ");
    assert_eq!(
        line(&out, "DECODED "),
        decoded,
        "{features}: decoded values differ"
    );
    let bytes: Vec<u8> = (0..stream.len() / 2)
        .map(|i| u8::from_str_radix(&stream[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut values = Vec::new();
    {
        let host_model = HostModel::from_bytes(&blob).unwrap();
        let mut decoder = Decoder::new(&host_model, &bytes).unwrap();
        let mut frame = vec![0f32; host_model.input_len()];
        while decoder.next_frame(&mut frame).unwrap() {
            values.extend_from_slice(&frame);
        }
    }
    (blob, values)
}

#[test]
fn firmware_streams_are_bit_exact_with_the_host() {
    if !ready(prerequisites()) {
        return;
    }
    // The default model, trained by `baler train` on the collider events.
    let fw = root().join("firmware-example/model");
    let (model, frames) = (fw.join("hzz_edge.blob"), fw.join("hzz_frames.f32"));
    let m4f = check(&M4F, &model, &frames);
    // Without an FPU the edge steps run in software float: still the same bits.
    assert_eq!(check(&M0, &model, &frames), m4f);
    // A model with exact columns (the same training with `--exact-columns auto`), in the image
    // built with them: the host's bytes, and the discrete columns of the events come back
    // exactly.
    let raw = std::fs::read(&frames).unwrap();
    let exact = fw.join("hzz_edge_exact.blob");
    let (blob, decoded) = check_variant(&exact, &frames, "exact");
    let host_model = HostModel::from_bytes(&blob).unwrap();
    let columns: Vec<usize> = host_model.exact_columns().map(|(c, _)| c).collect();
    assert_eq!(
        columns,
        [2, 3, 4, 5, 6, 7],
        "EventWeight and the five counts"
    );
    let n = host_model.input_len();
    let originals = raw.chunks_exact(4 * n).map(|frame| {
        frame
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect::<Vec<f32>>()
    });
    for (original, out) in originals.clone().zip(decoded.chunks_exact(n)) {
        for &c in &columns {
            assert_eq!(out[c], original[c], "column {c}");
        }
    }
    // Per-column corrections too (the same training with today's default, 64 bits a row), in
    // the image built with both: the host's bytes, and every corrected column within half a
    // step of the event's value (the test events are training events, inside the residual
    // ranges).
    let corrected = fw.join("hzz_edge_corrected.blob");
    let (blob, decoded) = check_variant(&corrected, &frames, "exact,corrections");
    let host_model = HostModel::from_bytes(&blob).unwrap();
    let corrections: Vec<_> = host_model.corrected_columns().collect();
    assert_eq!(
        corrections
            .iter()
            .map(|c| usize::from(c.bits))
            .sum::<usize>(),
        64
    );
    for (original, out) in originals.zip(decoded.chunks_exact(n)) {
        for &c in &columns {
            assert_eq!(out[c], original[c], "column {c}");
        }
        for c in &corrections {
            let slack = 1e-5 * (original[c.column].abs() + c.low.abs() + c.step);
            let error = (out[c.column] - original[c.column]).abs();
            assert!(
                error <= c.step / 2.0 + slack,
                "column {}: {error} > {} / 2",
                c.column,
                c.step
            );
        }
    }
    // The golden vectors: the same bytes as the checked-in host stream.
    let golden = root().join("tests/golden");
    let stream = check(
        &M4F,
        &golden.join("edge_model.blob"),
        &golden.join("frames.f32"),
    );
    let expected: String = std::fs::read(golden.join("stream.baler"))
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stream, expected);
}

/// The same runs on a RISC-V core (`firmware-riscv/`, rv32imac under QEMU's `virt` machine,
/// soft-float): the fixed-rate stream, its decoded values and the three error-bounded
/// streams, byte for byte the host's.
#[test]
fn risc_v_firmware_is_bit_exact_with_the_host() {
    if !ready(needs(
        "qemu-system-riscv32",
        "qemu-system-misc",
        "riscv32imac-unknown-none-elf",
    )) {
        return;
    }
    let fw = root().join("firmware-example/model");
    let (model, frames) = (fw.join("hzz_edge.blob"), fw.join("hzz_frames.f32"));
    let dir = root().join("firmware-riscv");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release"])
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .env("BALER_MODEL", &model)
        .env("BALER_FRAMES", &frames)
        .status()
        .unwrap();
    assert!(status.success(), "the RISC-V firmware build failed");
    let elf = dir.join("target/riscv32imac-unknown-none-elf/release/baler-firmware-riscv");
    let out = run_qemu(
        "qemu-system-riscv32",
        &["-machine", "virt", "-bios", "none"],
        &elf,
    );
    let (stream, decoded, id) = host(
        &std::fs::read(&model).unwrap(),
        &std::fs::read(&frames).unwrap(),
    );
    assert_eq!(
        line(&out, "STREAM "),
        stream,
        "the RISC-V stream differs from the host's"
    );
    assert_eq!(
        line(&out, "DECODED "),
        decoded,
        "RISC-V decoded values differ"
    );
    assert!(line(&out, "MODEL ").starts_with(&format!("{id:016x}")));
    let n = HostModel::from_bytes(&std::fs::read(&model).unwrap())
        .unwrap()
        .input_len();
    check_bounded(&out, &std::fs::read(&frames).unwrap(), n);
}
