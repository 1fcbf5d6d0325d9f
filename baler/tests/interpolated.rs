//! Fields and series that take the multilevel interpolation predictor through the library,
//! as users call it: chosen by `--use-model auto` on smooth data, across several blocks, in
//! every volume shape the rows allow (a series, frames, a rank-5 array folded to frames),
//! f64 and f32, and every value back within the bound; and fields with hostile values, which
//! the interpolation fit sees on every field compress chooses a predictor for.

use baler::pipeline::bounded::Chosen;
use baler::{compress, compress_reporting, decompress, Array, Bound, Options, Values};
use proptest::prelude::*;

/// A smooth function of a value's index along each axis of `shape` (its last three).
fn smooth(shape: &[usize]) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let (w, h) = (
        shape[shape.len() - 1],
        shape.get(shape.len().wrapping_sub(2)).copied(),
    );
    let h = h.filter(|_| shape.len() > 1).unwrap_or(1);
    (0..n)
        .map(|i| {
            let (c, r, t) = ((i % w) as f64, ((i / w) % h) as f64, (i / (w * h)) as f64);
            (0.013 * c + 0.02 * t).sin() * (0.011 * r).cos() + 0.3 * (0.004 * (r + c)).sin()
        })
        .collect()
}

/// Compresses `array` within R x its range, requires the interpolation predictor, and checks
/// the decoded shape and every decoded value against `original`.
fn round_trip(array: &Array, original: &[f64], r: f64, what: &str) {
    let (stream, report) = compress_reporting(array, &Options::bounded(Bound::Relative(r)))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let chosen = report.bounded.map(|b| b.predictor);
    assert_eq!(chosen, Some(Chosen::Interpolated), "{what}");
    let back = decompress(&stream, None).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(back.shape(), array.shape(), "{what}");
    let (lo, hi) = original
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let bound = r * (hi - lo);
    let decoded = back.values().to_f64();
    for (i, (&x, &y)) in original.iter().zip(&decoded).enumerate() {
        assert!(
            (x - y).abs() <= bound,
            "{what}: value {i}: {x} -> {y}, bound {bound}"
        );
    }
    let raw = match array.values() {
        Values::F32(_) => 4.0,
        _ => 8.0,
    } * original.len() as f64;
    eprintln!(
        "{what}: {} values, ratio {:.1}",
        original.len(),
        raw / stream.len() as f64
    );
}

#[test]
fn a_long_series_is_interpolated_across_blocks() {
    // 1,200,000 values: frames of 4096, 256 frames a block, so two blocks.
    let values = smooth(&[1_200_000]);
    let array = Array::new(&[values.len()], Values::F64(values.clone())).unwrap();
    round_trip(&array, &values, 1e-3, "series");
}

#[test]
fn frames_are_interpolated_across_blocks_and_ranks() {
    // 30 frames of 200 x 200: 26 frames a block, so two blocks of different lengths.
    let shape = [30, 200, 200];
    let values = smooth(&shape);
    let array = Array::new(&shape, Values::F64(values.clone())).unwrap();
    round_trip(&array, &values, 1e-2, "frames");
    // f32 frames decode as f32 within the bound.
    let narrow: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    let widened: Vec<f64> = narrow.iter().map(|&v| f64::from(v)).collect();
    let array = Array::new(&shape, Values::F32(narrow)).unwrap();
    round_trip(&array, &widened, 1e-2, "f32 frames");
    // Rank 5, folded to frames of 4 x 50 x 50 (the shape block restores it).
    let shape = [3, 2, 4, 50, 50];
    let values = smooth(&shape);
    let array = Array::new(&shape, Values::F64(values.clone())).unwrap();
    round_trip(&array, &values, 1e-2, "rank 5");
}

/// A smooth value, or now and then one of every kind of trouble.
fn field_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        12 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(1e300)),
        1 => Just(Some(-1e-300)),
        1 => Just(Some(0.0)),
        1 => (-1e6f64..1e6).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_fields_round_trip_whatever_predictor_is_chosen(
        frames in 1usize..6,
        height in 1usize..12,
        width in 1usize..12,
        troubles in proptest::collection::vec(field_value(), 64),
        exponent in -4i32..0,
        absolute in any::<bool>(),
    ) {
        let shape = [frames, height, width];
        let mut values = smooth(&shape);
        for (v, t) in values.iter_mut().zip(troubles.iter().cycle()) {
            if let Some(t) = t {
                *v = *t;
            }
        }
        let r = 10f64.powi(exponent);
        let finite = values.iter().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let (bound, eps) = match absolute {
            true => (Bound::Absolute(r), r),
            false => (Bound::Relative(r), r * (hi - lo).max(0.0)),
        };
        let array = Array::new(&shape, Values::F64(values.clone())).unwrap();
        // (About a quarter of these fields take interpolation, the rest Lorenzo.)
        let stream = compress(&array, &Options::bounded(bound)).unwrap();
        let back = decompress(&stream, None).unwrap().values().to_f64();
        for (i, (&x, &y)) in values.iter().zip(&back).enumerate() {
            let ok = if x.is_nan() {
                y.is_nan()
            } else if x.is_infinite() {
                x == y
            } else {
                (x - y).abs() <= eps
            };
            prop_assert!(ok, "value {}: {} -> {} (bound {})", i, x, y, eps);
        }
    }
}
