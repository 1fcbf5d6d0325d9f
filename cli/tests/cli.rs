//! The `baler` binary end to end: compress, decompress, info, and its errors.

use baler::data::{self, Dataset};
use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::{DType, HostModel};
use std::path::{Path, PathBuf};

mod common;
use common::{baler, ok, round_trip, s, temp_dir};

/// A random 10-column model and 1000 rows of data it was calibrated on, as files.
fn setup(dir: &Path, seed: u64) -> (PathBuf, PathBuf, Vec<f32>) {
    let acts = [FloatActivation::LeakyRelu(0.01)];
    let (float, values) = FloatModel::random(seed, &[10, 16, 4], 12, &acts, 1000);
    let model = dir.join(format!("model{seed}.blob"));
    std::fs::write(&model, float.quantize().unwrap()).unwrap();
    let input = dir.join("data.csv");
    let dataset = Dataset {
        values: values.clone(),
        shape: vec![1000, 10],
        dtype: DType::F64,
        names: (0..10).map(|i| format!("feature_{i}")).collect(),
    };
    data::write(&input, &dataset).unwrap();
    (model, input, values)
}

#[test]
fn compress_decompress_round_trip_matches_the_codec() {
    let dir = temp_dir("roundtrip");
    let (model, input, values) = setup(&dir, 1);
    let (stream, output) = round_trip(&model, &input, &dir, "npz");
    let back = data::read(&output).unwrap();
    assert_eq!(back.shape, vec![1000, 10]);
    assert_eq!(back.dtype, DType::F64);
    assert_eq!(back.names[3], "feature_3");
    // Bit for bit what the codec gives frame by frame (CSV text holds f32 exactly).
    let blob = std::fs::read(&model).unwrap();
    let codec = HostModel::from_bytes(&blob).unwrap();
    let (mut codes, mut out) = (vec![0i16; 4], vec![0f32; 10]);
    for (frame, got) in values.chunks_exact(10).zip(back.values.chunks_exact(10)) {
        codec.encode_frame(frame, &mut codes).unwrap();
        codec.decode_frame(&codes, &mut out).unwrap();
        assert_eq!(out, got);
    }
    let info = baler(&["info", s(&stream), "--model", s(&model), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["frames"], 1000);
    assert_eq!(json["original_bytes"], 80000);
    assert!(json["ratio_with_model"].as_f64().unwrap() < json["ratio"].as_f64().unwrap());
    let info = baler(&["info", s(&model), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["latent"], 4);
    assert_eq!(json["code_bits"], 12);
}

#[test]
fn bad_inputs_fail_with_one_line_and_leave_no_output() {
    let dir = temp_dir("errors");
    let (model, input, _) = setup(&dir, 2);
    let (other, _, _) = setup(&dir, 3);
    let stream = dir.join("data.baler");
    assert!(baler(&[
        "compress",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&stream)
    ])
    .status
    .success());
    let mut corrupted = std::fs::read(&stream).unwrap();
    let last = corrupted.len() - 10;
    corrupted[last] ^= 0x20;
    let bad_stream = dir.join("bad.baler");
    std::fs::write(&bad_stream, corrupted).unwrap();
    let missing = dir.join("missing.npz");
    // A NaN in row 2 of column 'feature_5', and a table one column short for the model.
    let nan_csv = dir.join("nan.csv");
    let mut with_nan = data::read(&input).unwrap();
    with_nan.values[2 * 10 + 5] = f32::NAN;
    data::write(&nan_csv, &with_nan).unwrap();
    let narrow_csv = dir.join("narrow.csv");
    let narrow = Dataset {
        values: with_nan.values[..90].to_vec(),
        shape: vec![10, 9],
        dtype: DType::F64,
        names: Vec::new(),
    };
    data::write(&narrow_csv, &narrow).unwrap();
    let out = dir.join("out.npz");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "decompress",
                "--model",
                s(&other),
                "--input",
                s(&stream),
                "--output",
                s(&out),
            ],
            "not by this model",
        ),
        (
            vec![
                "decompress",
                "--model",
                s(&model),
                "--input",
                s(&bad_stream),
                "--output",
                s(&out),
            ],
            "CRC mismatch",
        ),
        (
            vec![
                "compress",
                "--model",
                s(&model),
                "--input",
                s(&missing),
                "--output",
                s(&out),
            ],
            "No such file",
        ),
        (
            vec![
                "compress",
                "--model",
                s(&input),
                "--input",
                s(&input),
                "--output",
                s(&out),
            ],
            "not a baler model",
        ),
        (
            vec![
                "decompress",
                "--model",
                s(&model),
                "--input",
                s(&input),
                "--output",
                s(&out),
            ],
            "not a baler model or stream",
        ),
    ];
    for (args, expected) in cases {
        let run = baler(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} left an output file");
    }
    // No temporary files are left behind either.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn golden_stream_decodes_through_the_cli_bit_for_bit() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden");
    let dir = temp_dir("golden");
    let out = dir.join("decoded.npy");
    let run = baler(&[
        "decompress",
        "--model",
        s(&golden.join("edge_model.blob")),
        "--input",
        s(&golden.join("stream.baler")),
        "--output",
        s(&out),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let back = data::read(&out).unwrap();
    assert_eq!(back.shape, vec![16, 48]);
    assert_eq!(back.dtype, DType::F32);
    let expected: Vec<u8> = back.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(expected, std::fs::read(golden.join("decoded.f32")).unwrap());
}

#[test]
fn evaluate_reports_known_errors() {
    let dir = temp_dir("evaluate");
    let a = Dataset {
        values: vec![0.0, 10.0, 1.0, 20.0, 2.0, 30.0],
        shape: vec![3, 2],
        dtype: DType::F64,
        names: vec!["x".into(), "y".into()],
    };
    let mut b = a.clone();
    b.values[3] += 5.0; // column y, row 1: error 5 of a range of 20
    let (pa, pb) = (dir.join("a.npz"), dir.join("b.npy"));
    data::write(&pa, &a).unwrap();
    data::write(&pb, &b).unwrap();
    let run = baler(&[
        "evaluate",
        "--original",
        s(&pa),
        "--reconstructed",
        s(&pb),
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let y = &json["columns"][1];
    assert_eq!(y["name"], "y");
    assert_eq!(y["max_abs"], 5.0);
    assert_eq!(y["max_relative_to_range"], 0.25);
    assert_eq!(json["columns"][0]["max_abs"], 0.0);
    let text = baler(&["evaluate", "--original", s(&pa), "--reconstructed", s(&pb)]);
    let first = String::from_utf8_lossy(&text.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(first.contains("25.000% of the range of y"), "{first}");
}

#[test]
fn evaluate_compares_azimuths_around_the_circle() {
    let dir = temp_dir("evaluate-phi");
    // An azimuth spanning [-pi, pi] and a plain column; the reconstruction puts 3.125 at
    // -3.125 (0.033 away around the circle) and is off by 0.1 elsewhere.
    let phi = [-3.1, -1.0, 0.5, 3.125];
    let a = Dataset {
        values: phi.iter().flat_map(|&p| [p, 1.0 + p]).collect(),
        shape: vec![4, 2],
        dtype: DType::F64,
        names: vec!["mu_phi".into(), "x".into()],
    };
    let mut b = a.clone();
    b.values[6] = -3.125;
    b.values[0] += 0.1;
    let (pa, pb) = (dir.join("a.npz"), dir.join("b.npz"));
    data::write(&pa, &a).unwrap();
    data::write(&pb, &b).unwrap();
    let run = |periodic: &str| -> serde_json::Value {
        let out = ok(baler(&[
            "evaluate",
            "--original",
            s(&pa),
            "--reconstructed",
            s(&pb),
            "--json",
            "--periodic",
            periodic,
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let circle = run("auto")["columns"][0]["max_abs"].as_f64().unwrap();
    assert!((circle - 0.1).abs() < 1e-5, "around the circle: {circle}");
    let line = run("none")["columns"][0]["max_abs"].as_f64().unwrap();
    assert!((line - 6.25).abs() < 1e-5, "as a line: {line}");
    let text = ok(baler(&[
        "evaluate",
        "--original",
        s(&pa),
        "--reconstructed",
        s(&pb),
    ]));
    assert!(
        text.starts_with("periodic, compared around the circle"),
        "{text}"
    );
}

#[test]
fn inputs_larger_than_one_chunk_stream_through_bit_exact() {
    // 40,000 rows of 10: three read chunks and 40 blocks, written as they come.
    let dir = temp_dir("chunks");
    let acts = [FloatActivation::Relu];
    let (float, values) = FloatModel::random(9, &[10, 6, 3], 10, &acts, 40_000);
    let model = dir.join("model.blob");
    std::fs::write(&model, float.quantize().unwrap()).unwrap();
    let input = dir.join("big.csv");
    let dataset = Dataset {
        values: values.clone(),
        shape: vec![40_000, 10],
        dtype: DType::F32,
        names: Vec::new(),
    };
    data::write(&input, &dataset).unwrap();
    let (stream, out) = round_trip(&model, &input, &dir, "npy");
    let header = baler_codec::StreamHeader::read(&std::fs::read(&stream).unwrap()).unwrap();
    assert_eq!(header.frame_count, 40_000);
    assert_eq!(header.shape(), &[40_000, 10]);
    let back = data::read(&out).unwrap();
    assert_eq!(back.shape, vec![40_000, 10]);
    let blob = std::fs::read(&model).unwrap();
    let codec = HostModel::from_bytes(&blob).unwrap();
    let (mut codes, mut frame) = (vec![0i16; 3], vec![0f32; 10]);
    for (row, got) in values.chunks_exact(10).zip(back.values.chunks_exact(10)) {
        codec.encode_frame(row, &mut codes).unwrap();
        codec.decode_frame(&codes, &mut frame).unwrap();
        assert_eq!(frame, got);
    }
}

#[test]
fn export_writes_the_blob_as_rust_and_c_source() {
    let dir = temp_dir("export");
    let blob_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/edge_model.blob");
    let blob = std::fs::read(&blob_path).unwrap();
    for (format, file) in [("rust", "model.rs"), ("c", "model.h")] {
        let out = dir.join(file);
        let run = baler(&[
            "export",
            "--model",
            s(&blob_path),
            "--format",
            format,
            "--output",
            s(&out),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let source = std::fs::read_to_string(&out).unwrap();
        let array = &source[source
            .find("] = ")
            .or_else(|| source.find("] = {"))
            .unwrap()..];
        let bytes: Vec<u8> = array
            .split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == '{')
            .filter_map(|t| t.strip_prefix("0x"))
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(bytes, blob, "{format}");
        assert!(source.contains("c2ed14f13e623689"), "{format}: model id");
        assert!(source.contains(&blob.len().to_string()), "{format}: length");
    }
    let bad = baler(&[
        "export",
        "--model",
        s(&blob_path),
        "--format",
        "go",
        "--output",
        s(&dir.join("x")),
    ]);
    assert!(!bad.status.success());
}
