//! Every single-bit flip and every truncation of an error-bounded stream is detected and
//! reported as a typed error (never a panic, never wrong values): a table with names, a
//! learned-predictor field, an interpolated field (block kind 7), and a table predicted by a
//! model. The same for fixed-rate streams
//! and model blobs is in `codec/tests/streams.rs`. Decoding goes through the fuzz harness's
//! `decode_bounded` (`fuzz/src/lib.rs`), which is the library's in-memory `baler::decompress`.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use baler_codec::bounded::{
    InterpolationPlan, Layout, Predictor, LEARNED_FRACTION_BITS, LEARNED_TAPS,
};
use baler_codec::{DType, Error};

/// Smooth values with some texture: `rows` rows of `n`.
fn values(rows: usize, n: usize, scale: f64) -> Vec<f64> {
    (0..rows * n)
        .map(|i| {
            let (r, c) = ((i / n) as f64, (i % n) as f64);
            scale * ((0.3 * r + 0.7 * c).sin() + 0.1 * (1.9 * r * c).cos())
        })
        .collect()
}

/// Flips every bit and cuts at every length; returns how many damaged streams were refused.
fn damage_everywhere(stream: &[u8], model: Option<&[u8]>) -> (usize, usize) {
    let clean = harness::decode_bounded(stream, model).expect("the clean stream decodes");
    assert!(!clean.is_empty());
    let mut refused = 0;
    let mut cases = 0;
    for bit in 0..stream.len() * 8 {
        let mut bad = stream.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        cases += 1;
        match harness::decode_bounded(&bad, model) {
            Err(_) => refused += 1,
            Ok(values) => panic!(
                "a flip of bit {bit} went unnoticed ({} values decoded)",
                values.len()
            ),
        }
    }
    for len in 0..stream.len() {
        cases += 1;
        match harness::decode_bounded(&stream[..len], model).map_err(|e| e.codec_error()) {
            Err(Some(Error::Truncated | Error::BadMagic | Error::FrameCountMismatch { .. })) => {
                refused += 1
            }
            Err(other) => panic!("a cut at {len} gave {other:?}, not a truncation"),
            Ok(_) => panic!("a cut at {len} went unnoticed"),
        }
    }
    (refused, cases)
}

#[test]
fn every_bit_flip_and_cut_of_an_error_bounded_stream_is_refused() {
    let table = values(40, 5, 30.0);
    let names = ["px", "py", "pz", "E, GeV", "iso\u{3bc}"];
    let mut weights = [0i32; LEARNED_TAPS];
    weights[10 + 12] = 1 << LEARNED_FRACTION_BITS; // the previous frame
    weights[0] = 1 << (LEARNED_FRACTION_BITS - 2);
    let field = values(8, 6 * 7, 1.0);
    let model = harness::golden();
    let wide = values(6, model.input_len(), 2.0);
    let cases = [
        (
            "table with names",
            harness::encode_bounded(
                Layout::Table,
                DType::F64,
                None,
                None,
                5,
                &table,
                0.01,
                16,
                &names,
            ),
            None,
        ),
        (
            "learned field",
            harness::encode_bounded(
                Layout::Field {
                    height: 6,
                    width: 7,
                },
                DType::F32,
                None,
                Some(Predictor::Learned(weights)),
                42,
                &field,
                0.001,
                3,
                &[],
            ),
            None,
        ),
        (
            "field learned within the frame",
            harness::encode_bounded(
                Layout::Field {
                    height: 6,
                    width: 7,
                },
                DType::F32,
                None,
                Some(Predictor::LearnedInFrame(harness::planar_in_frame_weights())),
                42,
                &field,
                0.001,
                3,
                &[],
            ),
            None,
        ),
        (
            "interpolated field",
            harness::encode_bounded(
                Layout::Field {
                    height: 6,
                    width: 7,
                },
                DType::F64,
                None,
                Some(Predictor::Interpolated(InterpolationPlan {
                    order: 2,
                    fine_bits: 4,
                    cubic: [3; 16],
                    finer: [1; 16],
                    ..InterpolationPlan::LINEAR
                })),
                42,
                &field,
                0.01,
                3,
                &[],
            ),
            None,
        ),
        (
            "table with a model",
            harness::encode_bounded(
                Layout::Table,
                DType::F64,
                Some(model),
                None,
                model.input_len(),
                &wide,
                0.05,
                2,
                &[],
            ),
            Some(harness::GOLDEN_BLOB),
        ),
    ];
    for (what, stream, model) in cases {
        let (refused, total) = damage_everywhere(&stream, model);
        eprintln!(
            "{what}: {} bytes, {refused} of {total} damaged streams refused ({} bit flips, {} cuts)",
            stream.len(),
            stream.len() * 8,
            stream.len()
        );
        assert_eq!(refused, total, "{what}");
    }
}

/// The same for streams with pointwise relative grids (parameters version 2): a table with
/// per-column bounds and a field.
#[test]
fn every_bit_flip_and_cut_of_a_pointwise_stream_is_refused() {
    use baler::{Array, Bound, ColumnKey, Options, Values};
    let table = Array::new(&[40, 5], Values::F64(values(40, 5, 30.0))).unwrap();
    let columns = [(ColumnKey::Index(4), Bound::Absolute(0.01))];
    let options = Options {
        bound: Some(Bound::mantissa_bits(10).unwrap()),
        columns: &columns,
        ..Options::default()
    };
    let field = Array::new(
        &[8, 6, 7],
        Values::F32(values(8, 42, 1.0).iter().map(|&v| v as f32).collect()),
    )
    .unwrap();
    for (what, stream) in [
        (
            "pointwise table",
            baler::compress(&table, &options).unwrap(),
        ),
        (
            "pointwise field",
            baler::compress(&field, &Options::bounded(Bound::Pointwise(1e-3))).unwrap(),
        ),
    ] {
        let (refused, cases) = damage_everywhere(&stream, None);
        assert_eq!(refused, cases, "{what}");
    }
}
