//! `baler train` -> `compress` -> `decompress` on the shipped collider events.

use baler_codec::DType;
use baler_trainer::data::{self, Dataset};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baler(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baler"))
        .args(args)
        .output()
        .expect("run baler")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn train_compress_decompress_hzz() {
    let hzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/hzz.npz");
    let dir: PathBuf = std::env::temp_dir().join(format!("baler-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (model, stream, out) = (
        dir.join("hzz.blob"),
        dir.join("hzz.baler"),
        dir.join("out.npz"),
    );
    // Small and quick: seconds even in a debug build.
    ok(baler(&[
        "train",
        "--input",
        s(&hzz),
        "--output",
        s(&model),
        "--hidden",
        "32",
        "--latent",
        "16",
        "--code-bits",
        "12",
        "--epochs",
        "25",
        "--lr",
        "3e-3",
        "--seed",
        "7",
    ]));
    assert!(model.with_extension("loss.json").exists());
    ok(baler(&[
        "compress",
        "--model",
        s(&model),
        "--input",
        s(&hzz),
        "--output",
        s(&stream),
    ]));
    ok(baler(&[
        "decompress",
        "--model",
        s(&model),
        "--input",
        s(&stream),
        "--output",
        s(&out),
    ]));

    let original = data::read(&hzz).unwrap();
    let back = data::read(&out).unwrap();
    assert_eq!(back.shape, original.shape);
    assert_eq!(back.names, original.names);
    assert_eq!(back.dtype, DType::F64);
    // 16 codes of 12 bits per event: ratio near 10 without the model.
    let ratio = 600_408.0 / std::fs::metadata(&stream).unwrap().len() as f64;
    assert!(ratio > 9.0, "ratio {ratio}");
    // The error bound this quick model (25 epochs, one hidden layer of 32) reaches: RMSE of
    // every column under 80% of its standard deviation (predicting the mean gives 100%),
    // 50% on average (measured: 36% mean, 59% worst).
    let n = original.row_len();
    let mut total = 0.0;
    for c in 0..n {
        let col = |d: &Dataset| {
            d.values
                .iter()
                .skip(c)
                .step_by(n)
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>()
        };
        let (a, b) = (col(&original), col(&back));
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        let std = (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        let rmse =
            (a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        let relative = if std > 0.0 { rmse / std } else { rmse };
        eprintln!(
            "{:>16}: RMSE {rmse:.4} = {:.2}% of std",
            original.names[c],
            100.0 * relative
        );
        assert!(
            relative < 0.8,
            "column {c} ({}): {relative}",
            original.names[c]
        );
        total += relative;
    }
    assert!(
        total / (n as f64) < 0.5,
        "mean relative RMSE {}",
        total / n as f64
    );

    // A model trained on other data refuses this stream.
    let other_csv = dir.join("other.csv");
    let other = Dataset {
        values: original.values.iter().map(|v| v * 2.0 + 1.0).collect(),
        shape: original.shape.clone(),
        dtype: DType::F64,
        names: original.names.clone(),
    };
    data::write(&other_csv, &other).unwrap();
    let other_model = dir.join("other.blob");
    ok(baler(&[
        "train",
        "--input",
        s(&other_csv),
        "--output",
        s(&other_model),
        "--hidden",
        "8",
        "--latent",
        "4",
        "--epochs",
        "2",
    ]));
    let refused = baler(&[
        "decompress",
        "--model",
        s(&other_model),
        "--input",
        s(&stream),
        "--output",
        s(&dir.join("x.npz")),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not by this model"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_compress_decompress_cfd_frames_in_tiles() {
    let cfd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/CFD_animation.npz");
    if !cfd.exists() {
        eprintln!(
            "SKIPPED: {} is absent (the CFD frames stay outside the repository)",
            cfd.display()
        );
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("baler-e2e-cfd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (model, stream, out) = (
        dir.join("cfd.blob"),
        dir.join("cfd.baler"),
        dir.join("out.npz"),
    );
    ok(baler(&[
        "train",
        "--input",
        s(&cfd),
        "--output",
        s(&model),
        "--tile",
        "10x10",
        "--hidden",
        "32",
        "--latent",
        "8",
        "--code-bits",
        "8",
        "--epochs",
        "40",
        "--lr",
        "3e-3",
        "--seed",
        "3",
    ]));
    ok(baler(&[
        "compress",
        "--model",
        s(&model),
        "--input",
        s(&cfd),
        "--output",
        s(&stream),
    ]));
    ok(baler(&[
        "decompress",
        "--model",
        s(&model),
        "--input",
        s(&stream),
        "--output",
        s(&out),
    ]));
    let original = data::read(&cfd).unwrap();
    let back = data::read(&out).unwrap();
    assert_eq!(back.shape, vec![60, 50, 50]);
    assert_eq!(back.dtype, DType::F64);
    assert!(back.names.is_empty());
    // 8 codes of 8 bits per 10x10 tile: ratio near 100 without the model.
    let ratio = 1_200_000.0 / std::fs::metadata(&stream).unwrap().len() as f64;
    assert!(ratio > 90.0, "ratio {ratio}");
    let lo = original.values.iter().copied().fold(f32::MAX, f32::min);
    let hi = original.values.iter().copied().fold(f32::MIN, f32::max);
    let range = f64::from(hi - lo);
    let (mut max_abs, mut sq) = (0f64, 0f64);
    for (a, b) in original.values.iter().zip(&back.values) {
        let e = f64::from(a - b).abs();
        max_abs = max_abs.max(e);
        sq += e * e;
    }
    let rmse = (sq / original.values.len() as f64).sqrt();
    eprintln!(
        "CFD: ratio {ratio:.1}, RMSE {:.3}% of range, max {:.2}% of range",
        100.0 * rmse / range,
        100.0 * max_abs / range
    );
    assert!(rmse < 0.03 * range, "RMSE {rmse} vs range {range}");
    assert!(
        max_abs < 0.25 * range,
        "max error {max_abs} vs range {range}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
