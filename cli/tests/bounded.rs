//! `baler compress --error-bound`: every value within the bound through the CLI, hostile
//! values round-trip, damage is refused, and a model that does not pay is left out.

mod common;

use baler::data::RowSource;
use common::{baler, ok, s, temp_dir};
use std::path::{Path, PathBuf};

/// All values of a data file at full precision.
fn values(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let mut source = RowSource::open(path, 1 << 16).unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = source.next_chunk_f64().unwrap() {
        all.extend(chunk);
    }
    (source.header.shape.clone(), all)
}

fn hzz() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/hzz.npz")
}

fn decompress(stream: &Path, output: &Path) -> String {
    ok(baler(&[
        "decompress",
        "--input",
        s(stream),
        "--output",
        s(output),
    ]))
}

fn compress(input: &Path, stream: &Path, bound: &[&str]) -> String {
    let mut args = vec!["compress", "--input", s(input), "--output", s(stream)];
    args.extend_from_slice(bound);
    ok(baler(&args))
}

#[test]
fn every_value_is_within_r_times_its_column_range() {
    let dir = temp_dir("bounded-hzz");
    let (stream, out) = (dir.join("hzz.baler"), dir.join("hzz.npz"));
    let (_, original) = values(&hzz());
    let columns = 31;
    for r in [1e-2, 1e-4] {
        let report = compress(&hzz(), &stream, &["--rel-error-bound", &r.to_string()]);
        assert!(report.contains("model-free"), "{report}");
        decompress(&stream, &out);
        let (shape, decoded) = values(&out);
        assert_eq!(shape, vec![2421, 31]);
        for c in 0..columns {
            let column = original.iter().skip(c).step_by(columns);
            let (lo, hi) = column.fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let bound = r * (hi - lo);
            for (i, (x, y)) in original
                .iter()
                .zip(&decoded)
                .enumerate()
                .skip(c)
                .step_by(columns)
            {
                assert!(
                    (x - y).abs() <= bound,
                    "row {} column {c}: {x} -> {y}, bound {bound}",
                    i / columns
                );
            }
        }
        // Tighter bounds cost more bytes, but far fewer than the raw 600 KB.
        let size = std::fs::metadata(&stream).unwrap().len();
        assert!(size < 600_408 / 8, "{size} bytes at {r}");
    }
    let csv = dir.join("hzz.csv");
    decompress(&stream, &csv);
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(
        header.starts_with("MET_px,MET_py,EventWeight"),
        "names lost"
    );
}

#[test]
fn hostile_values_round_trip_within_an_absolute_bound() {
    let dir = temp_dir("bounded-hostile");
    let input = dir.join("odd.csv");
    let mut text = String::from("tiny,huge,const,count,wild\n");
    for i in 0..50 {
        let wild = match i % 7 {
            0 => "NaN".to_string(),
            1 => "inf".to_string(),
            2 => "-inf".to_string(),
            3 => "1e300".to_string(),
            4 => "4.9e-324".to_string(),
            _ => format!("{}", (i as f64 * 0.37).sin() * 1e3),
        };
        text += &format!(
            "{},{},3.25,{},{wild}\n",
            i as f64 * 1e-9,
            1e12 + i as f64 * 0.1,
            i % 4
        );
    }
    std::fs::write(&input, text).unwrap();
    let (stream, out) = (dir.join("odd.baler"), dir.join("odd.csv.out.csv"));
    compress(&input, &stream, &["--error-bound", "0.01"]);
    decompress(&stream, &out);
    let (_, original) = values(&input);
    let (_, decoded) = values(&out);
    assert_eq!(original.len(), decoded.len());
    for (i, (x, y)) in original.iter().zip(&decoded).enumerate() {
        if x.is_nan() {
            assert!(y.is_nan(), "value {i}");
        } else if x.is_infinite() {
            assert_eq!(x, y, "value {i}");
        } else {
            assert!((x - y).abs() <= 0.01, "value {i}: {x} -> {y}");
        }
    }
    // Integer and constant columns come back exactly.
    for (x, y) in original.iter().zip(&decoded).skip(2).step_by(5) {
        assert_eq!(x, y);
    }
    for (x, y) in original.iter().zip(&decoded).skip(3).step_by(5) {
        assert_eq!(x, y);
    }
}

#[test]
fn damaged_bounded_streams_are_refused_and_leave_no_output() {
    let dir = temp_dir("bounded-damage");
    let stream = dir.join("hzz.baler");
    compress(&hzz(), &stream, &["--rel-error-bound", "1e-2"]);
    let good = std::fs::read(&stream).unwrap();
    let bad = dir.join("bad.baler");
    let out = dir.join("out.npz");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut refused = 0;
    let trials = 60;
    for t in 0..trials {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = good.clone();
        if t % 3 == 0 {
            bytes.truncate((state as usize) % good.len());
        } else {
            let bit = (state as usize) % (good.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        std::fs::write(&bad, &bytes).unwrap();
        let result = baler(&["decompress", "--input", s(&bad), "--output", s(&out)]);
        if !result.status.success() {
            refused += 1;
            assert!(!out.exists(), "partial output after damage {t}");
        }
    }
    assert_eq!(refused, trials, "every damaged stream must be refused");
}

#[test]
fn nonsense_bounds_are_refused() {
    let dir = temp_dir("bounded-args");
    for bound in ["0", "-1", "nan"] {
        let out = baler(&[
            "compress",
            "--input",
            s(&hzz()),
            "--output",
            s(&dir.join("x.baler")),
            "--error-bound",
            bound,
        ]);
        assert!(!out.status.success(), "bound {bound} accepted");
        assert!(!dir.join("x.baler").exists());
    }
}

#[test]
fn a_header_whose_shape_overflows_is_refused() {
    let dir = temp_dir("bounded-huge");
    let input = dir.join("huge.npy");
    let mut header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 4611686018427387904, 8), }"
            .to_string();
    while header.len() < 117 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&input, bytes).unwrap();
    let output = dir.join("huge.baler");
    let out = baler(&[
        "compress",
        "--input",
        s(&input),
        "--output",
        s(&output),
        "--error-bound",
        "0.1",
    ]);
    assert!(!out.status.success());
    assert!(!output.exists());
    // Refused by our own header check, not by npyz panicking in the reader thread.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than 2^64 elements"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Compresses `input` at relative bound `r` with the default (auto) choice and with
/// `--use-model never`; checks every decoded value; returns (report, auto bytes, never bytes).
fn learned_against_model_free(input: &Path, dir: &Path, r: f64) -> (String, u64, u64) {
    let (auto, never, out) = (
        dir.join("auto.baler"),
        dir.join("never.baler"),
        dir.join("out.npy"),
    );
    let bound = r.to_string();
    let report = compress(input, &auto, &["--rel-error-bound", &bound]);
    compress(
        input,
        &never,
        &["--rel-error-bound", &bound, "--use-model", "never"],
    );
    decompress(&auto, &out);
    let ((shape, original), (decoded_shape, decoded)) = (values(input), values(&out));
    assert_eq!(shape, decoded_shape);
    let (lo, hi) = original
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let worst = original
        .iter()
        .zip(&decoded)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= r * (hi - lo), "max error {worst} over the bound");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    (report, size(&auto), size(&never))
}

#[test]
fn a_learned_predictor_is_fitted_and_chosen_for_moving_fields() {
    // Rough values drifting one column right per frame: Lorenzo cannot predict them, a
    // predictor fitted to the data can ("the previous frame, one to the left").
    let dir = temp_dir("bounded-learned");
    let (frames, h, w) = (12, 20, 30);
    let values: Vec<f32> = (0..frames * h * w)
        .map(|i| {
            let (t, r, c) = (i / (h * w), (i / w) % h, i % w);
            let x = (c + 1000 - t) as u64;
            ((x * 7919 + r as u64 * 104_729) % 1000) as f32 * 0.01
        })
        .collect();
    let input = dir.join("moving.npy");
    let data = baler::data::Dataset {
        values,
        shape: vec![frames, h, w],
        dtype: baler_codec::DType::F32,
        names: Vec::new(),
    };
    baler::data::write(&input, &data).unwrap();
    let (report, learned, model_free) = learned_against_model_free(&input, &dir, 1e-3);
    assert!(report.contains("learned field predictor"), "{report}");
    assert!(
        learned * 2 < model_free,
        "learned {learned} bytes, model-free {model_free}"
    );
    // `baler info` tells what the stream holds.
    let info = ok(baler(&["info", "--json", s(&dir.join("auto.baler"))]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let params = &info["error_bounded"];
    assert_eq!(params["predictor"], "learned predictor", "{info}");
    assert_eq!(params["layout"], "field of 20 x 30", "{info}");
    let bound = params["bounds"][0].as_f64().unwrap();
    // 1e-3 of the range, which is just under 10.
    assert!(bound > 0.0099 && bound <= 0.00999, "{info}");
}

#[test]
fn the_learned_predictor_earns_its_place_on_the_cfd_frames() {
    let Some(cfd) = common::shared("CFD_animation.npz") else {
        return;
    };
    let dir = temp_dir("bounded-learned-cfd");
    // Measured: 72.8 against 50.5 (1.44x) at 1e-2; the issue asks for 1.2x.
    let (report, learned, model_free) = learned_against_model_free(&cfd, &dir, 1e-2);
    assert!(report.contains("learned field predictor"), "{report}");
    assert!(
        learned as f64 * 1.2 <= model_free as f64,
        "learned {learned} bytes, model-free {model_free}"
    );
}

/// Events whose later columns follow from earlier ones (pt, E, phi and eta from px, py, pz),
/// as CSV.
fn derived_events(path: &Path, rows: usize) {
    let mut text = String::from("px,py,pz,n,pt,E,phi,eta\n");
    let mut s = 11u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..rows {
        let (pt, phi, eta) = (5.0 + 50.0 * next(), 6.0 * next() - 3.0, 4.0 * next() - 2.0);
        let (px, py, pz) = (pt * phi.cos(), pt * phi.sin(), pt * eta.sinh());
        let e = (px * px + py * py + pz * pz + 0.01).sqrt();
        let n = (next() * 5.0).floor();
        text += &format!(
            "{px},{py},{pz},{n},{},{e},{},{}\n",
            px.hypot(py),
            py.atan2(px),
            (pz / px.hypot(py)).asinh()
        );
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn derived_columns_are_predicted_from_earlier_ones_within_the_bound() {
    let dir = temp_dir("bounded-relations");
    let input = dir.join("events.csv");
    derived_events(&input, 3000);
    let (_, original) = values(&input);
    let columns = 8;
    let r = 1e-3;
    let (stream, free, out) = (
        dir.join("events.baler"),
        dir.join("free.baler"),
        dir.join("back.csv"),
    );
    let report = compress(&input, &stream, &["--rel-error-bound", "0.001"]);
    assert!(
        report.contains("4 columns predicted from earlier columns"),
        "{report}"
    );
    compress(
        &input,
        &free,
        &["--rel-error-bound", "0.001", "--use-model", "never"],
    );
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
    // pt, E, phi and eta cost a few bits each instead of about twelve.
    assert!(
        size(&free) > 1.5 * size(&stream),
        "relations {} bytes, model-free {}",
        size(&stream),
        size(&free)
    );
    decompress(&stream, &out);
    let (_, decoded) = values(&out);
    for c in 0..columns {
        let column = original.iter().skip(c).step_by(columns);
        let (lo, hi) = column.fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let bound = r * (hi - lo);
        for (x, y) in original.iter().zip(&decoded).skip(c).step_by(columns) {
            assert!(
                (x - y).abs() <= bound,
                "column {c}: {x} -> {y}, bound {bound}"
            );
        }
    }
}

#[test]
fn series_rank_five_and_images_round_trip_through_the_command() {
    let dir = temp_dir("ranks");
    let write = |name: &str, shape: Vec<usize>| {
        let count: usize = shape.iter().product();
        let set = baler::data::Dataset {
            values: (0..count)
                .map(|i| ((i as f32) * 0.05).sin() * 20.0)
                .collect(),
            shape,
            dtype: baler_codec::DType::F32,
            names: vec![],
        };
        let path = dir.join(name);
        baler::data::write(&path, &set).unwrap();
        path
    };
    let cases = [
        (
            write("series.npy", vec![5000]),
            vec!["--error-bound", "0.01"],
        ),
        (
            write("rank5.npy", vec![3, 2, 4, 5, 6]),
            vec!["--error-bound", "0.01"],
        ),
        (
            write("image.npy", vec![40, 50]),
            vec!["--error-bound", "0.01", "--field"],
        ),
    ];
    for (input, bound) in cases {
        let stream = dir.join("x.baler");
        let output = dir.join("x.npy");
        compress(&input, &stream, &bound);
        decompress(&stream, &output);
        let ((shape, original), (back_shape, back)) = (values(&input), values(&output));
        assert_eq!(shape, back_shape, "{}", input.display());
        for (a, b) in original.iter().zip(&back) {
            assert!((a - b).abs() <= 0.01, "{}: {a} -> {b}", input.display());
        }
        let info = ok(baler(&["info", s(&stream), "--json"]));
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        let want: Vec<serde_json::Value> = shape.iter().map(|&d| d.into()).collect();
        assert_eq!(info["shape"], serde_json::Value::Array(want), "{info}");
    }
    // --field is for error-bounded compression.
    let out = baler(&[
        "compress",
        "--input",
        s(&dir.join("image.npy")),
        "--output",
        s(&dir.join("y.baler")),
        "--model",
        s(&dir.join("image.npy")),
        "--field",
    ]);
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pointwise_bounds_and_column_bounds_from_the_command_line() {
    let dir = temp_dir("pointwise-cli");
    let (stream, out) = (dir.join("p.baler"), dir.join("p.npz"));
    let report = compress(&hzz(), &stream, &["--mantissa-bits", "10"]);
    assert!(report.contains("max error"), "{report}");
    decompress(&stream, &out);
    let (shape, original) = values(&hzz());
    let (_, decoded) = values(&out);
    let r = 2f64.powi(-11);
    for (x, y) in original.iter().zip(&decoded) {
        assert!(
            if *x == 0.0 {
                *y == 0.0
            } else {
                (x - y).abs() <= r * x.abs()
            },
            "{x} -> {y}"
        );
    }
    let info = ok(baler(&["info", s(&stream)]));
    assert!(info.contains("NJet: exact"), "{info}");
    assert!(
        info.contains("Muon1_Px: |error| <= 4.8828125e-4 |x| (10 mantissa bits)"),
        "{info}"
    );
    // A bound per column from a file; the flag is the default of the others.
    let spec = dir.join("bounds.json");
    std::fs::write(
        &spec,
        r#"{"columns": {"Muon1_E": {"pointwise": 1e-6}, "MET_px": {"absolute": 0.25}, "3": "lossless"}}"#,
    )
    .unwrap();
    let report = compress(
        &hzz(),
        &stream,
        &["--pointwise-rel-bound", "1e-3", "--column-bounds", s(&spec)],
    );
    assert!(report.contains("ratio"), "{report}");
    decompress(&stream, &dir.join("q.npz"));
    let (_, decoded) = values(&dir.join("q.npz"));
    let n = shape[1];
    for (i, (x, y)) in original.iter().zip(&decoded).enumerate() {
        let allowed = match i % n {
            0 => 0.25,
            3 => 0.0,
            11 => 1e-6 * x.abs(), // Muon1_E
            _ => 1e-3 * x.abs(),
        };
        assert!((x - y).abs() <= allowed, "column {}: {x} -> {y}", i % n);
    }
    let info = ok(baler(&["info", s(&stream)]));
    assert!(info.contains("MET_px: |error| <= 2.5e-1"), "{info}");
    assert!(info.contains("Muon1_E: |error| <= 1e-6 |x|"), "{info}");
    // Two bounds, or a bad specification, are one-line errors.
    let input = hzz();
    for (args, expected) in [
        (
            vec!["--mantissa-bits", "10", "--error-bound", "1"],
            "cannot be used with",
        ),
        (
            vec!["--mantissa-bits", "0"],
            "mantissa bits must be 1 to 30",
        ),
        (vec!["--pointwise-rel-bound", "1.5"], "pointwise bound"),
        (vec!["--column-bounds", s(&spec)], "need a default"),
    ] {
        let mut all = vec!["compress", "--input", s(&input), "--output", s(&stream)];
        all.extend(args);
        let out = baler(&all);
        assert!(!out.status.success());
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(expected), "{message}");
    }
    std::fs::write(&spec, r#"{"columns": {"nope": "lossless"}}"#).unwrap();
    let out = baler(&[
        "compress",
        "--input",
        s(&hzz()),
        "--output",
        s(&stream),
        "--mantissa-bits",
        "10",
        "--column-bounds",
        s(&spec),
    ]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("no column is named \"nope\""), "{message}");
}

#[test]
fn a_smooth_series_is_interpolated_and_info_shows_the_plan() {
    let dir = temp_dir("interpolated");
    let count = 20_000;
    let set = baler::data::Dataset {
        values: (0..count)
            .map(|i| (i as f32 * 0.002).sin() + 0.3 * (i as f32 * 0.0137).sin())
            .collect(),
        shape: vec![count],
        dtype: baler_codec::DType::F32,
        names: vec![],
    };
    let input = dir.join("series.npy");
    baler::data::write(&input, &set).unwrap();
    let (stream, output) = (dir.join("s.baler"), dir.join("s.npy"));
    let report = compress(&input, &stream, &["--rel-error-bound", "1e-3"]);
    assert!(report.contains("multilevel interpolation"), "{report}");
    decompress(&stream, &output);
    let ((_, original), (_, back)) = (values(&input), values(&output));
    let (lo, hi) = original
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    for (a, b) in original.iter().zip(&back) {
        assert!((a - b).abs() <= 1e-3 * (hi - lo), "{a} -> {b}");
    }
    let info = ok(baler(&["info", s(&stream)]));
    assert!(
        info.contains("interpolation: one line of all values"),
        "{info}"
    );
    assert!(info.contains("stride 1: "), "{info}");
    let json = ok(baler(&["info", s(&stream), "--json"]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let plan = &json["error_bounded"]["interpolation"];
    assert_eq!(plan["volume"], "one line of all values", "{json}");
    assert_eq!(
        json["error_bounded"]["predictor"], "interpolation",
        "{json}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
