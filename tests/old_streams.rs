//! Streams written before the library restructure (`tests/streams/`, by the `baler` command of
//! commit fad2029) decode to the same bits today, and compressing the same shared data gives
//! the same bytes. See `tests/streams/README.md` for what each stream is.

use baler::{Bound, Options, UseModel, Values};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/streams")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// SHA-256 of the decoded values as little-endian bytes of their own element type.
fn digest(values: &Values) -> String {
    let mut hash = Sha256::new();
    match values {
        Values::F64(v) => v.iter().for_each(|x| hash.update(x.to_le_bytes())),
        Values::F32(v) => v.iter().for_each(|x| hash.update(x.to_le_bytes())),
        Values::I16(v) => v.iter().for_each(|x| hash.update(x.to_le_bytes())),
        Values::I32(v) => v.iter().for_each(|x| hash.update(x.to_le_bytes())),
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `(stream name, SHA-256 of its decoded values)` from `decoded.sha256`.
fn expected() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir().join("decoded.sha256")).unwrap();
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, hash)| (name.to_string(), hash.trim().to_string()))
        .collect()
}

/// `(name, shape, SHA-256 of the decoded values)` of each stream a listing names (`forms/`,
/// `interpolated/`: a line per stream, `name d0,d1,... hash`).
fn listed(file: &str) -> Vec<(String, Vec<usize>, String)> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, shape, hash] = fields[..] else {
                panic!("bad line {line:?}")
            };
            let shape = shape.split(',').map(|d| d.parse().unwrap()).collect();
            (name.to_string(), shape, hash.to_string())
        })
        .collect()
}

/// The model the stream needs, if any (the fixed-rate one and the one coded with the model).
fn model_for(name: &str) -> Option<Vec<u8>> {
    matches!(name, "hzz_fixed" | "hzz_model_1e-2").then(|| read("small.model"))
}

#[test]
fn every_old_stream_decodes_to_the_same_bits() {
    let cases = expected();
    assert_eq!(cases.len(), 6, "decoded.sha256 lists the six streams");
    for (name, hash) in cases {
        let stream = read(&format!("{name}.baler"));
        let model = model_for(&name);
        let array =
            baler::decompress(&stream, model.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape = if name.starts_with("hzz") {
            vec![2421, 31]
        } else {
            vec![60, 50, 50]
        };
        assert_eq!(array.shape(), &shape[..], "{name}");
        assert_eq!(digest(array.values()), hash, "{name} decodes differently");
        if name.starts_with("hzz") && name != "hzz_fixed" {
            // Error-bounded streams carry the column names.
            assert_eq!(array.names().len(), 31, "{name}");
            assert_eq!(array.names()[0], "MET_px", "{name}");
        }
    }
}

/// The forms FORMAT.md added with the library (series, shape block, 2-D field, empty, i16) and
/// with pointwise grids (parameters version 2: a table with per-column bounds, an f32 field)
/// decode to the same shape and bits as when they were written.
#[test]
fn stream_forms_added_with_the_library_decode_to_the_same_bits() {
    let mut count = 0;
    for (name, shape, hash) in listed("forms/decoded.sha256") {
        let array = baler::decompress(&read(&format!("forms/{name}.baler")), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(array.shape(), &shape[..], "{name}");
        assert_eq!(digest(array.values()), hash, "{name} decodes differently");
        count += 1;
    }
    assert_eq!(count, 7, "forms/decoded.sha256 lists the seven forms");
}

/// The blocks of an error-bounded stream, in order: each one's kind and payload.
fn blocks(stream: &[u8]) -> Vec<(baler_codec::stream::BlockKind, Vec<u8>)> {
    let mut rest = &stream[baler_codec::stream::STREAM_HEADER_LEN..];
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (block, len) = baler_codec::stream::checked_block(rest, blocks.len() as u32).unwrap();
        blocks.push((block.kind, block.payload.to_vec()));
        rest = &rest[len..];
    }
    blocks
}

/// The kinds of the blocks of an error-bounded stream, in order.
fn block_kinds(stream: &[u8]) -> Vec<baler_codec::stream::BlockKind> {
    blocks(stream).into_iter().map(|(kind, _)| kind).collect()
}

#[test]
fn streams_of_december_2026_decode_to_the_same_bits() {
    // Written since tables may be tabled and fields are in kind 6 (`tabled/`, see the
    // README there); those also written before decode to exactly the older streams' values.
    use baler_codec::stream::BlockKind;
    let text = std::fs::read_to_string(dir().join("tabled/decoded.sha256")).unwrap();
    let cases: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(
        cases.len(),
        5,
        "tabled/decoded.sha256 lists the five streams"
    );
    let older = expected();
    for (name, hash) in cases {
        let stream = read(&format!("tabled/{name}.baler"));
        let (kind, shape) = if name.starts_with("cfd") {
            (BlockKind::TabledResidualContexts, vec![60, 50, 50])
        } else {
            (BlockKind::TabledResiduals, vec![2421, 31])
        };
        assert!(
            block_kinds(&stream).contains(&kind),
            "{name} has a {kind:?} block"
        );
        let array = baler::decompress(&stream, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(array.shape(), &shape[..], "{name}");
        assert_eq!(digest(array.values()), hash, "{name} decodes differently");
        if let Some((_, old)) = older.iter().find(|(n, _)| n == name) {
            assert_eq!(old, hash, "{name}: other values than the older stream's");
        }
    }
}

/// Interpolated fields (predictor 4, block kind 7; `interpolated/`): the generated smooth
/// field (relative to its predictions, fine bits and finer coarse levels), generated frames
/// unrelated to each other (their rows stacked into one frame), a generated series (one line
/// of all values) and the shared ash field (sparse, so on its grid with its zeros
/// exact). Compressing the ash field gave `ash_1e-3` byte for byte until the in-frame learned
/// predictor (below) coded it smaller.
#[test]
fn interpolated_streams_decode_to_the_same_bits() {
    use baler_codec::stream::BlockKind;
    let mut count = 0;
    for (name, shape, hash) in listed("interpolated/decoded.sha256") {
        let stream = read(&format!("interpolated/{name}.baler"));
        let kinds = block_kinds(&stream);
        assert!(
            kinds.contains(&BlockKind::Interpolated),
            "{name}: {kinds:?}"
        );
        let array = baler::decompress(&stream, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(array.shape(), &shape[..], "{name}");
        assert_eq!(digest(array.values()), hash, "{name} decodes differently");
        count += 1;
    }
    assert_eq!(
        count, 4,
        "interpolated/decoded.sha256 lists the four streams"
    );
}

/// Fields learned within the frame (parameters predictor 5; `in_frame/`): the shared ash
/// field, whose three frames are layers, at 1e-2 and 1e-3. They decode to the same bits, and
/// compressing the shared data again gives them byte for byte.
#[test]
fn in_frame_streams_decode_to_the_same_bits() {
    use baler_codec::stream::BlockKind;
    let listing = listed("in_frame/decoded.sha256");
    assert_eq!(
        listing.len(),
        2,
        "in_frame/decoded.sha256 lists the two streams"
    );
    for (name, shape, hash) in &listing {
        let stream = read(&format!("in_frame/{name}.baler"));
        let blocks = blocks(&stream);
        let predictor = blocks
            .iter()
            .find(|(kind, _)| *kind == BlockKind::BoundParams)
            .map(|(_, payload)| payload[2]);
        assert_eq!(predictor, Some(5), "{name}: not the in-frame predictor");
        assert!(
            blocks
                .iter()
                .any(|(kind, _)| *kind == BlockKind::TabledResidualContexts),
            "{name}: no block of kind 6"
        );
        let array = baler::decompress(&stream, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(array.shape(), &shape[..], "{name}");
        assert_eq!(digest(array.values()), *hash, "{name} decodes differently");
    }
    let ash = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dev_name_ash.npz");
    if !ash.exists() {
        eprintln!(
            "SKIPPED the compress half of in_frame_streams_decode_to_the_same_bits: no {}",
            ash.display()
        );
        return;
    }
    let ash = in_memory(&ash);
    for (name, r) in [("ash_1e-2", 1e-2), ("ash_1e-3", 1e-3)] {
        let written = baler::compress(&ash, &Options::bounded(Bound::Relative(r))).unwrap();
        let kept = read(&format!("in_frame/{name}.baler"));
        assert!(
            written == kept,
            "the ash field compresses to another stream than {name}"
        );
    }
}

/// A kept fixed-rate stream of the shipped collider events (`DIR/NAME.baler` with its model
/// `DIR/NAME.model`): it decodes to the SHA-256 in `DIR/decoded.sha256`, its six discrete
/// columns are the events' own, and compressing the shipped file with the kept model again
/// gives the same bytes. Returns the model, the events and the decoded values.
fn check_kept_events(dir: &str, name: &str) -> (Vec<u8>, Vec<f64>, Vec<f64>) {
    let model = read(&format!("{dir}/{name}.model"));
    let stream = read(&format!("{dir}/{name}.baler"));
    let array = baler::decompress(&stream, Some(&model)).unwrap();
    let [(listed_name, shape, hash)] = &listed(&format!("{dir}/decoded.sha256"))[..] else {
        panic!("{dir}/decoded.sha256 lists one stream")
    };
    assert_eq!(listed_name, name);
    assert_eq!(array.shape(), &shape[..]);
    assert_eq!(digest(array.values()), *hash, "{name} decodes differently");
    let hzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/hzz.npz");
    let original = in_memory(&hzz);
    let (Values::F64(a), Values::F64(b)) = (original.values(), array.values()) else {
        panic!("hzz is float64")
    };
    for column in [
        "EventWeight",
        "NJet",
        "NMuon",
        "NElectron",
        "NPhoton",
        "NPrimaryVertices",
    ] {
        let c = original.names().iter().position(|n| n == column).unwrap();
        let values = |v: &[f64]| v.iter().skip(c).step_by(31).copied().collect::<Vec<_>>();
        assert_eq!(values(a), values(b), "{name}: {column} is not exact");
    }
    let written = baler::compress(&original, &Options::fixed_rate(&model)).unwrap();
    assert!(
        written == stream,
        "hzz compresses to another stream than {name}"
    );
    (model, a.clone(), b.clone())
}

/// Exact columns (blob flag 1; `exact/`): a fixed-rate stream whose model codes the weight
/// and the five counts exactly beside the latent codes.
#[test]
fn exact_column_streams_decode_to_the_same_bits() {
    check_kept_events("exact", "hzz_exact");
}

/// Per-column corrections (blob flag 2; `corrections/`): the same training with 64 bits a
/// row of corrections. Besides the checks above, every corrected column is within half a
/// step (and the f32 roundings) of the events' values, which were its training data.
#[test]
fn corrected_streams_decode_to_the_same_bits() {
    let (model, original, decoded) = check_kept_events("corrections", "hzz_corrected");
    let model = baler_codec::HostModel::from_bytes(&model).unwrap();
    let corrected: Vec<_> = model.corrected_columns().collect();
    assert_eq!(corrected.iter().map(|c| u32::from(c.bits)).sum::<u32>(), 64);
    for (x, y) in original.chunks_exact(31).zip(decoded.chunks_exact(31)) {
        for c in &corrected {
            // The codec works in f32: the event's value as f32, then half a step.
            let x = f64::from(x[c.column] as f32);
            let slack = 1e-5 * (x.abs() + f64::from(c.low.abs() + c.step));
            let error = (y[c.column] - x).abs();
            assert!(
                error <= f64::from(c.step) / 2.0 + slack,
                "column {}: {error}",
                c.column
            );
        }
    }
}

#[test]
fn old_streams_need_their_model() {
    for name in ["hzz_fixed", "hzz_model_1e-2"] {
        let err = baler::decompress(&read(&format!("{name}.baler")), None).unwrap_err();
        assert!(
            matches!(
                err,
                baler::Error::Options(_) | baler::Error::ModelRequired { .. }
            ),
            "{name}: {err:?}"
        );
    }
}

/// The stream written since columns may copy an earlier one (relation kind 5, `copy/`):
/// it decodes to the same bits, uses the new kind, and every value is within 1e-3 of its
/// column's range of the shipped events.
#[test]
fn copy_relation_streams_decode_to_the_same_bits() {
    let text = std::fs::read_to_string(dir().join("copy/decoded.sha256")).unwrap();
    let (name, hash) = text.trim().split_once(' ').unwrap();
    assert_eq!(name, "hzz_1e-3");
    let stream = read("copy/hzz_1e-3.baler");
    let (_, params) = blocks(&stream)
        .into_iter()
        .find(|(kind, _)| *kind == baler_codec::stream::BlockKind::BoundParams)
        .unwrap();
    let params = baler_codec::bounded::BoundParams::read(&params).unwrap();
    let copies = (0..31)
        .filter_map(|c| params.grid(c).unwrap().relation)
        .filter(|r| r.kind == baler_codec::bounded::RelationKind::Copy)
        .count();
    assert!(copies > 0, "no column copies an earlier one");
    let array = baler::decompress(&stream, None).unwrap();
    assert_eq!(digest(array.values()), hash, "hzz_1e-3 decodes differently");
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/hzz.npz");
    let original = in_memory(&events);
    let (Values::F64(x), Values::F64(y)) = (original.values(), array.values()) else {
        panic!("hzz is float64")
    };
    let columns = original.shape()[1];
    for c in 0..columns {
        let column = |v: &[f64]| {
            v.iter()
                .skip(c)
                .step_by(columns)
                .copied()
                .collect::<Vec<_>>()
        };
        let (x, y) = (column(x), column(y));
        let (lo, hi) = x
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let bound = 1e-3 * (hi - lo);
        for (r, (a, b)) in x.iter().zip(&y).enumerate() {
            assert!((b - a).abs() <= bound, "row {r} column {c}: {b} for {a}");
        }
    }
}

/// Compressing the shared data as the old streams were compressed gives the same bytes.
#[test]
fn compressing_the_shared_data_gives_the_same_bytes() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !data.join("hzz.npz").exists() || !data.join("CFD_animation.npz").exists() {
        eprintln!(
            "SKIPPED compressing_the_shared_data_gives_the_same_bytes: {} has no hzz.npz / CFD_animation.npz",
            data.display()
        );
        return;
    }
    let model = read("small.model");
    let cases: [(&str, &str, Options<'_>); 6] = [
        (
            "hzz_1e-3",
            "hzz.npz",
            Options::bounded(Bound::Relative(1e-3)),
        ),
        (
            "hzz_abs",
            "hzz.npz",
            Options {
                use_model: UseModel::Never,
                ..Options::bounded(Bound::Absolute(0.5))
            },
        ),
        (
            "cfd_1e-3",
            "CFD_animation.npz",
            Options::bounded(Bound::Relative(1e-3)),
        ),
        (
            "cfd_never",
            "CFD_animation.npz",
            Options {
                use_model: UseModel::Never,
                ..Options::bounded(Bound::Relative(1e-3))
            },
        ),
        ("hzz_fixed", "hzz.npz", Options::fixed_rate(&model)),
        (
            "hzz_model_1e-2",
            "hzz.npz",
            Options {
                use_model: UseModel::Always,
                model: Some(&model),
                ..Options::bounded(Bound::Relative(1e-2))
            },
        ),
    ];
    let out = std::env::temp_dir().join(format!("baler-old-streams-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for (name, input, options) in cases {
        let path = out.join(format!("{name}.baler"));
        baler::compress_file(&data.join(input), &path, &options, &|_, _| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = std::fs::read(&path).unwrap();
        // Since December 2026 the model-free table is tabled and the fields are in kind 6
        // (smaller, the same values: `tabled/`); the others are still written byte for byte
        // as before the restructure.
        // Since the copy relation (kind 5) the events at 1e-3 predict two more columns from
        // earlier ones (`copy/`).
        let expected = match name {
            "hzz_abs" | "cfd_1e-3" | "cfd_never" => read(&format!("tabled/{name}.baler")),
            "hzz_1e-3" => read(&format!("copy/{name}.baler")),
            _ => read(&format!("{name}.baler")),
        };
        assert!(
            written == expected,
            "{name}: the stream differs from the one written before"
        );
        // The in-memory API writes the very same bytes as the file driver.
        let original = baler::data::read(&data.join(input)).unwrap();
        let array = in_memory(&data.join(input));
        assert_eq!(array.shape(), &original.shape[..]);
        let bytes = baler::compress(&array, &options).unwrap();
        assert!(
            bytes == written,
            "{name}: in-memory and file streams differ"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// A data file as an in-memory array with full precision (the readers' f64 view).
fn in_memory(path: &Path) -> baler::Array {
    let mut source = baler::data::RowSource::open(path, 1 << 20).unwrap();
    let mut values = Vec::new();
    while let Some(chunk) = source.next_chunk_f64().unwrap() {
        values.extend(chunk);
    }
    let header = source.header.clone();
    let array = baler::Array::new(&header.shape, Values::F64(values)).unwrap();
    if header.names.is_empty() {
        array
    } else {
        array.with_names(header.names).unwrap()
    }
}
