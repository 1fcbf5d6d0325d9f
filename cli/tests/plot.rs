//! `baler evaluate` on constructed data with known errors, and `baler plot` on the shared
//! collider events and CFD frames (skipped when `../shared/data` is absent): every figure
//! exists, decodes at its stated size and is not blank.

use baler::data::{self, Dataset};
use baler_cli::plot::frames::FRAME_FIGURE_SIZE;
use baler_cli::plot::loss::LOSS_FIGURE_SIZE;
use baler_cli::plot::rate::RATE_FIGURE_SIZE;
use baler_cli::plot::table::{overview_size, COLUMN_FIGURE_SIZE};
use baler_codec::DType;
use std::path::{Path, PathBuf};

mod common;
use common::{baler, ok, s, shared, temp_dir};

/// 1000 rows of three columns, each `0..1000`, and a reconstruction with known errors:
/// - `pattern`: errors 0, +0.5, -5, +20 in turn (of the range 999: 0, 5e-4, 5e-3, 2e-2);
/// - `shifted`: every value +2.5 (Wasserstein-1 2.5);
/// - `reversed`: the column upside down (the same distribution: Wasserstein-1 0).
fn known_errors(dir: &Path) -> (PathBuf, PathBuf) {
    let rows = 1000;
    let mut original = Vec::with_capacity(rows * 3);
    let mut reconstructed = Vec::with_capacity(rows * 3);
    for r in 0..rows {
        let x = r as f32;
        original.extend([x, x, x]);
        let pattern = [0.0, 0.5, -5.0, 20.0][r % 4];
        reconstructed.extend([x + pattern, x + 2.5, (rows - 1 - r) as f32]);
    }
    let names = vec!["pattern".into(), "shifted".into(), "reversed".into()];
    let a = Dataset {
        values: original,
        shape: vec![rows, 3],
        dtype: DType::F64,
        names,
    };
    let b = Dataset {
        values: reconstructed,
        ..a.clone()
    };
    let (pa, pb) = (dir.join("original.npz"), dir.join("reconstructed.npz"));
    data::write(&pa, &a).unwrap();
    data::write(&pb, &b).unwrap();
    (pa, pb)
}

fn close(got: &serde_json::Value, want: f64) {
    let got = got.as_f64().unwrap_or(f64::NAN);
    assert!((got - want).abs() <= 1e-9, "got {got}, want {want}");
}

#[test]
fn evaluate_reports_known_errors_exactly() {
    let dir = temp_dir("plot-evaluate");
    let (original, reconstructed) = known_errors(&dir);
    let out = ok(baler(&[
        "evaluate",
        "--original",
        s(&original),
        "--reconstructed",
        s(&reconstructed),
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["shape"], serde_json::json!([1000, 3]));
    assert_eq!(json["bounds"], serde_json::json!([1e-2, 1e-3, 1e-4]));
    let [pattern, shifted, reversed] = [0, 1, 2].map(|c| &json["columns"][c]);

    assert_eq!(pattern["name"], "pattern");
    close(&pattern["max_abs"], 20.0);
    close(&pattern["rmse"], ((0.25 + 25.0 + 400.0) / 4.0f64).sqrt());
    close(&pattern["range"], 999.0);
    close(&pattern["max_relative_to_range"], 20.0 / 999.0);
    close(&pattern["mean_error"], (0.5 - 5.0 + 20.0) / 4.0);
    // Largest |error| / |original|: 20 on the value 3.
    close(&pattern["max_relative"], 20.0 / 3.0);
    // Within 1e-2 x 999: errors 0, 0.5, 5; within 1e-3 x 999: 0, 0.5; within 1e-4: 0.
    assert_eq!(
        pattern["within_bounds"],
        serde_json::json!([0.75, 0.5, 0.25])
    );
    // The sorted reconstruction against the sorted original, computed here independently.
    let mut sorted: Vec<f64> = (0..1000)
        .map(|r| r as f64 + [0.0, 0.5, -5.0, 20.0][r % 4])
        .collect();
    sorted.sort_by(f64::total_cmp);
    let w1 = sorted
        .iter()
        .enumerate()
        .map(|(i, v)| (v - i as f64).abs())
        .sum::<f64>()
        / 1000.0;
    close(&pattern["wasserstein_1"], w1);

    close(&shifted["wasserstein_1"], 2.5);
    close(&shifted["rmse"], 2.5);
    close(&shifted["max_abs"], 2.5);
    assert_eq!(shifted["within_bounds"], serde_json::json!([1.0, 0.0, 0.0]));

    close(&reversed["wasserstein_1"], 0.0);
    close(&reversed["max_abs"], 999.0);
    // |999 - 2r| <= 9.99 for r = 495..=504 only; never <= 0.999 (it is odd).
    assert_eq!(
        reversed["within_bounds"],
        serde_json::json!([0.01, 0.0, 0.0])
    );

    let summary = &json["summary"];
    assert_eq!(summary["values"], 3000);
    assert_eq!(summary["worst"]["name"], "reversed");
    close(&summary["within_bounds"][0], (0.75 + 1.0 + 0.01) / 3.0);
    close(&summary["within_bounds"][1], 0.5 / 3.0);

    // Text: the summary line first, then the table; other bounds on request.
    let text = ok(baler(&[
        "evaluate",
        "--original",
        s(&original),
        "--reconstructed",
        s(&reconstructed),
        "--bounds",
        "0.05",
    ]));
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("3000 values (1000 x 3) in 3 column(s)"),
        "{first}"
    );
    assert!(
        first.contains("100.000% of the range of reversed"),
        "{first}"
    );
    // Within 5e-2 x 999: all of pattern and shifted, 50 rows of reversed.
    assert!(
        first.contains("within 5e-2 of the range: 68.33%"),
        "{first}"
    );
    let heading = lines.next().unwrap();
    assert!(
        heading.contains("W1") && heading.contains("<=5e-2"),
        "{heading}"
    );
    let row = lines.next().unwrap();
    assert!(row.trim_start().starts_with("pattern"), "{row}");
}

/// Writes float64 `values` (`shape`) to `path` as they are, every bit kept.
fn write_f64(path: &Path, shape: &[usize], values: Vec<f64>) {
    let header = data::Header {
        shape: shape.to_vec(),
        dtype: DType::F64,
        names: Vec::new(),
    };
    let mut sink = data::RowSink::create(path, &header).unwrap();
    sink.push_f64(values).unwrap();
    sink.finish().unwrap();
}

#[test]
fn evaluate_judges_float64_data_at_full_precision() {
    // Values near 1e6 with a range of 1: float32 spaces them 0.0625 apart, so an evaluation in
    // float32 would see errors of up to 3% of the range where there are 9e-5.
    let dir = temp_dir("plot-evaluate-f64");
    let rows = 1000;
    let original: Vec<f64> = (0..rows).map(|r| 1e6 + r as f64 * 1e-3).collect();
    let range = (rows - 1) as f64 * 1e-3;
    let reconstructed: Vec<f64> = original
        .iter()
        .enumerate()
        .map(|(r, v)| v + [0.9e-4, -0.9e-4][r % 2] * range)
        .collect();
    let (pa, pb) = (dir.join("original.npy"), dir.join("reconstructed.npy"));
    write_f64(&pa, &[rows, 1], original);
    write_f64(&pb, &[rows, 1], reconstructed);
    let evaluate = |reconstructed: &Path| -> serde_json::Value {
        let out = ok(baler(&[
            "evaluate",
            "--original",
            s(&pa),
            "--reconstructed",
            s(reconstructed),
            "--json",
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let json = evaluate(&pb);
    let column = &json["columns"][0];
    assert!(
        (column["max_abs"].as_f64().unwrap() - 0.9e-4 * range).abs() < 1e-9,
        "{column}"
    );
    close(&column["range"], range);
    assert_eq!(column["within_bounds"], serde_json::json!([1.0, 1.0, 1.0]));

    // The same through the codec: every value of a 1e-4 stream is within 1e-4 of the range.
    let stream = dir.join("original.baler");
    let back = dir.join("back.npy");
    ok(baler(&[
        "compress",
        "--input",
        s(&pa),
        "--output",
        s(&stream),
        "--rel-error-bound",
        "1e-4",
    ]));
    ok(baler(&[
        "decompress",
        "--input",
        s(&stream),
        "--output",
        s(&back),
    ]));
    let json = evaluate(&back);
    assert_eq!(json["columns"][0]["within_bounds"][2], 1.0, "{json}");
}

#[test]
fn evaluate_judges_a_field_as_one_whole() {
    let dir = temp_dir("plot-evaluate-field");
    let a = Dataset {
        values: (0..40).map(|i| i as f32).collect(),
        shape: vec![2, 4, 5],
        dtype: DType::F32,
        names: Vec::new(),
    };
    let mut b = a.clone();
    b.values[7] += 3.75; // exact in f32; the range is 39
    let (pa, pb) = (dir.join("a.npy"), dir.join("b.npy"));
    data::write(&pa, &a).unwrap();
    data::write(&pb, &b).unwrap();
    let out = ok(baler(&[
        "evaluate",
        "--original",
        s(&pa),
        "--reconstructed",
        s(&pb),
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["columns"].as_array().unwrap().len(), 1);
    let field = &json["columns"][0];
    assert_eq!(field["name"], "field");
    close(&field["max_relative_to_range"], 3.75 / 39.0);
    assert_eq!(
        field["within_bounds"],
        serde_json::json!([39.0 / 40.0, 39.0 / 40.0, 39.0 / 40.0])
    );
}

#[test]
fn evaluate_and_plot_refuse_bad_inputs() {
    let dir = temp_dir("plot-errors");
    let (original, reconstructed) = known_errors(&dir);
    let narrow = dir.join("narrow.npy");
    data::write(
        &narrow,
        &Dataset {
            values: vec![0.0; 2000],
            shape: vec![1000, 2],
            dtype: DType::F32,
            names: Vec::new(),
        },
    )
    .unwrap();
    let missing = dir.join("missing.npz");
    let out_dir = dir.join("report");
    let plot = |original: &Path, reconstructed: &Path, extra: &[&str]| {
        let mut args = vec![
            "plot",
            "--original",
            s(original),
            "--reconstructed",
            s(reconstructed),
            "--output-dir",
            s(&out_dir),
        ];
        args.extend_from_slice(extra);
        baler(&args)
    };
    let cases = [
        (
            baler(&[
                "evaluate",
                "--original",
                s(&original),
                "--reconstructed",
                s(&narrow),
            ]),
            "shapes differ",
        ),
        (plot(&original, &narrow, &[]), "shapes differ"),
        (plot(&missing, &reconstructed, &[]), "missing.npz"),
        (
            plot(&original, &reconstructed, &["--model", s(&missing)]),
            "no such model file",
        ),
        (
            plot(&original, &reconstructed, &["--bounds", "0"]),
            "--bounds 0",
        ),
    ];
    for (run, message) in cases {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "succeeded; wanted '{message}'");
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    assert!(!out_dir.join("index.html").exists());
}

/// `data` with a deterministic perturbation of each value by up to `fraction` of the
/// array's range (a stand-in for a real reconstruction that keeps the test fast).
fn perturbed(data: &Dataset, fraction: f32) -> Dataset {
    let (lo, hi) = data
        .values
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let amplitude = fraction * (hi - lo);
    let mut state = 0x2545_f491_u32;
    let values = data
        .values
        .iter()
        .map(|&v| {
            // xorshift32: uniform in [-1, 1).
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            v + amplitude * (state as f32 / u32::MAX as f32 * 2.0 - 1.0)
        })
        .collect();
    Dataset {
        values,
        ..data.clone()
    }
}

/// Decodes the PNG at `path` and checks its size; returns the variance of its bytes and the
/// fraction of its pixels in colour (data: bars, lines, heatmaps; text and axes are grey).
fn png_stats(path: &Path, size: (u32, u32)) -> (f64, f64) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), size, "{}", path.display());
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    // In integers over every byte: quick even in debug builds.
    let bytes = &pixels[..info.buffer_size()];
    let (sum, squares) = bytes.iter().fold((0u64, 0u64), |(s, q), &b| {
        (s + u64::from(b), q + u64::from(b) * u64::from(b))
    });
    let n = bytes.len() as f64;
    let mean = sum as f64 / n;
    // Every 4th pixel is sample enough.
    let (mut sampled, mut coloured) = (0usize, 0usize);
    for p in bytes.chunks_exact(12) {
        let (r, g, b) = (p[0], p[1], p[2]);
        sampled += 1;
        if r.max(g).max(b) - r.min(g).min(b) > 40 {
            coloured += 1;
        }
    }
    (
        squares as f64 / n - mean * mean,
        coloured as f64 / sampled.max(1) as f64,
    )
}

/// Least variance of a figure's bytes (a blank page has 0; the figures here have 500 and
/// more).
const MIN_VARIANCE: f64 = 300.0;

/// Checks that the PNG at `path` has `size`, is not blank, and has at least `min_colour` of
/// its pixels in colour (measured here: 0.8% and more for the table figures, 44% for frames).
fn assert_figure(path: &Path, size: (u32, u32), min_colour: f64) {
    let (variance, colour) = png_stats(path, size);
    assert!(
        variance > MIN_VARIANCE,
        "{} looks blank: variance {variance}",
        path.display()
    );
    assert!(
        colour >= min_colour,
        "{} has too little data drawn: {colour} of its pixels in colour",
        path.display()
    );
}

#[test]
fn plot_draws_every_figure_of_the_collider_events() {
    let Some(hzz) = shared("hzz.npz") else {
        return;
    };
    let dir = temp_dir("plot-hzz");
    let original = data::read(&hzz).unwrap();
    let reconstructed = dir.join("hzz.out.npz");
    data::write(&reconstructed, &perturbed(&original, 0.01)).unwrap();
    // The loss history as `baler train` writes it next to MODEL.
    let model = dir.join("hzz.model");
    std::fs::write(&model, b"BALM").unwrap();
    let history: Vec<serde_json::Value> = (1..=30)
        .map(|e| {
            let train = 1.0 / e as f64;
            serde_json::json!({"epoch": e, "train": train, "validation": 1.2 * train, "lr": 1e-3})
        })
        .collect();
    std::fs::write(
        model.with_extension("loss.json"),
        serde_json::to_string(&history).unwrap(),
    )
    .unwrap();
    let report = dir.join("report");
    let out = ok(baler(&[
        "plot",
        "--original",
        s(&hzz),
        "--reconstructed",
        s(&reconstructed),
        "--model",
        s(&model),
        "--output-dir",
        s(&report),
    ]));
    assert!(out.contains("33 figures"), "{out}");
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert_eq!(original.names.len(), 31);
    for (c, name) in original.names.iter().enumerate() {
        let file = format!("column_{c:02}_{name}.png");
        assert_figure(&report.join(&file), COLUMN_FIGURE_SIZE, 0.003);
        assert!(index.contains(&format!("src=\"{file}\"")), "{file}");
        assert!(index.contains(&format!("<td><a href=\"#column-{c}\">{name}</a></td>")));
    }
    assert_figure(
        &report.join("residuals_overview.png"),
        overview_size(31),
        0.003,
    );
    assert_figure(&report.join("loss.png"), LOSS_FIGURE_SIZE, 0.003);
    assert!(index.contains("src=\"residuals_overview.png\""));
    assert!(index.contains("src=\"loss.png\""));
    assert!(index.contains("Wasserstein-1"));
}

#[test]
fn plot_draws_the_rate_distortion_figure_of_a_table() {
    let dir = temp_dir("plot-rate");
    let (original, reconstructed) = known_errors(&dir);
    // Only the sizes of the stream and the model count: stand-ins of 900 and 300 bytes.
    let (stream, model) = (dir.join("s.baler"), dir.join("m.blob"));
    std::fs::write(&stream, vec![0u8; 900]).unwrap();
    std::fs::write(&model, vec![0u8; 300]).unwrap();
    let report = dir.join("report");
    let out = ok(baler(&[
        "plot",
        "--original",
        s(&original),
        "--reconstructed",
        s(&reconstructed),
        "--model",
        s(&model),
        "--compressed",
        s(&stream),
        "--output-dir",
        s(&report),
    ]));
    assert_figure(&report.join("rate.png"), RATE_FIGURE_SIZE, 0.003);
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(index.contains("src=\"rate.png\""), "{out}");
    assert!(index.contains("Rate and distortion"));
}

#[test]
fn plot_draws_the_cfd_frames_and_their_animation() {
    let Some(cfd) = shared("CFD_animation.npz") else {
        return;
    };
    let dir = temp_dir("plot-cfd");
    let original = data::read(&cfd).unwrap();
    assert_eq!(original.shape, vec![60, 50, 50]);
    let reconstructed = dir.join("cfd.out.npy");
    data::write(&reconstructed, &perturbed(&original, 0.02)).unwrap();
    let report = dir.join("report");
    let out = ok(baler(&[
        "plot",
        "--original",
        s(&cfd),
        "--reconstructed",
        s(&reconstructed),
        "--output-dir",
        s(&report),
    ]));
    // No model: no loss curve, and a note that says so.
    assert!(out.contains("No loss curve: no --model given."), "{out}");
    assert!(!report.join("loss.png").exists());
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    for frame in [0, 30, 59] {
        let file = format!("frame_{frame:04}.png");
        assert_figure(&report.join(&file), FRAME_FIGURE_SIZE, 0.3);
        assert!(index.contains(&format!("src=\"{file}\"")), "{file}");
    }
    // The animation: one GIF frame per field frame, at the figure's size.
    let gif = std::fs::read(report.join("frames.gif")).unwrap();
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(std::io::Cursor::new(gif)).unwrap();
    assert_eq!(
        (u32::from(decoder.width()), u32::from(decoder.height())),
        FRAME_FIGURE_SIZE
    );
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 60);
    assert!(index.contains("src=\"frames.gif\""));
}
