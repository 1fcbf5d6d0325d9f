//! HDF5 datasets as the command's inputs and outputs (`file.h5:/group/dataset`), with the
//! `hdf5` feature (without it, one test checks the command says how to get it). The Python
//! tests check the same with files h5py writes.
#![cfg_attr(not(feature = "hdf5"), allow(dead_code, unused_imports))]

mod common;

use baler::data::{read, write, Dataset};
use baler::DType;
use common::{baler, ok, s, temp_dir};
use std::sync::Mutex;

/// HDF5 opens files without close-on-exec, so a `baler` started by one test would inherit
/// (and keep locked) a file another test has open: the tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn table() -> Dataset {
    let rows = 500;
    let values: Vec<f32> = (0..rows * 4)
        .map(|i| {
            let (r, c) = ((i / 4) as f32, i % 4);
            (r * 0.03 + c as f32).sin() * 10.0 * (c + 1) as f32
        })
        .collect();
    Dataset {
        values,
        shape: vec![rows, 4],
        dtype: DType::F32,
        names: ["px", "py", "pz", "E"].map(String::from).to_vec(),
    }
}

#[test]
#[cfg(feature = "hdf5")]
fn a_dataset_goes_through_compress_and_decompress_within_the_bound() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("hdf5-roundtrip");
    let input = format!("{}/in.h5:/events/table", s(&dir));
    let original = table();
    write(input.as_ref(), &original).unwrap();
    let stream = dir.join("t.baler");
    let output = format!("{}/out.h5:/back", s(&dir));
    ok(baler(&[
        "compress",
        "--input",
        &input,
        "--output",
        s(&stream),
        "--error-bound",
        "0.01",
    ]));
    ok(baler(&[
        "decompress",
        "--input",
        s(&stream),
        "--output",
        &output,
    ]));
    let back = read(output.as_ref()).unwrap();
    assert_eq!(back.shape, original.shape);
    assert_eq!(back.dtype, DType::F32);
    assert_eq!(
        back.names, original.names,
        "names travel in the `names` attribute"
    );
    let worst = original
        .values
        .iter()
        .zip(&back.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 0.01, "max error {worst}");
    // A second dataset joins the file; the first stays; an existing name is refused.
    let second = format!("{}/out.h5:/again", s(&dir));
    ok(baler(&[
        "decompress",
        "--input",
        s(&stream),
        "--output",
        &second,
    ]));
    assert_eq!(read(output.as_ref()).unwrap(), back);
    let refused = baler(&["decompress", "--input", s(&stream), "--output", &output]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("already holds /back"), "{message}");
    assert_eq!(read(output.as_ref()).unwrap(), back);
}

#[test]
#[cfg(feature = "hdf5")]
fn missing_files_datasets_and_groups_are_one_line_errors() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("hdf5-errors");
    let file = format!("{}/in.h5", s(&dir));
    write(format!("{file}:/g/x").as_ref(), &table()).unwrap();
    let garbage = dir.join("garbage.h5");
    std::fs::write(&garbage, b"not an HDF5 file at all").unwrap();
    for (input, expected) in [
        (
            format!("{file}:/g/nope"),
            "has no dataset /g/nope".to_string(),
        ),
        (format!("{file}:/g"), "/g is not a dataset".to_string()),
        (
            format!("{}/none.h5:/x", s(&dir)),
            "No such file".to_string(),
        ),
        (format!("{}:/x", s(&garbage)), "HDF5".to_string()),
        (file.clone(), format!("{file}:/group/dataset")),
    ] {
        let out = baler(&[
            "compress",
            "--input",
            &input,
            "--output",
            s(&dir.join("x.baler")),
            "--error-bound",
            "1",
        ]);
        assert!(!out.status.success(), "{input} was accepted");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(&expected), "{input}: {message}");
        assert_eq!(message.trim().lines().count(), 1, "{input}: {message}");
        assert!(!dir.join("x.baler").exists());
    }
}

#[test]
#[cfg(not(feature = "hdf5"))]
fn without_the_feature_an_hdf5_path_says_how_to_build_it() {
    eprintln!("SKIPPED: the HDF5 round trips (build with --features hdf5 to run them)");
    let dir = temp_dir("hdf5-absent");
    let out = baler(&[
        "compress",
        "--input",
        &format!("{}/in.h5:/x", s(&dir)),
        "--output",
        s(&dir.join("x.baler")),
        "--error-bound",
        "1",
    ]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("--features hdf5"), "{message}");
}
