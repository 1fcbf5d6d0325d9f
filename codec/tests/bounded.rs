//! Error-bounded coding: every decoded value within its bound, for any input, and damaged
//! payloads rejected without panics.

use baler_codec::bounded::interpolate::{ACTIVITY_CLASSES, MAX_FINE_BITS, VOLUME_SHAPES};
use baler_codec::bounded::{
    params_len, tabled_applies, write_params, BoundParams, BoundedDecoder, BoundedEncoder,
    CoderChoice, ColumnGrid, InterpolationPlan, Layout, Predictor, Scratch, ScratchBuf,
    ScratchSizes, CAUSAL_TAPS, LEARNED_FRACTION_BITS, LEARNED_TAPS,
};
use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::stream::{Block, BlockKind};
use baler_codec::{DType, Error, HostModel};
use proptest::prelude::*;

/// Writes the parameters for `layout` with one bound for every column.
fn params_bytes(
    layout: Layout,
    predictor: Predictor,
    dtype: DType,
    grids: &[ColumnGrid],
    n: usize,
) -> Vec<u8> {
    let mut bytes = vec![0u8; params_len(layout, &predictor, n, &[])];
    write_params(layout, predictor, dtype, n, grids, &[], &mut bytes).unwrap();
    bytes
}

/// Working memory for blocks of `values` (the whole test input is one block).
fn scratch_for(
    params: &BoundParams<'_>,
    model: Option<&HostModel<'_>>,
    values: usize,
) -> ScratchBuf {
    let rows = values / params.row_len;
    ScratchBuf::new(ScratchSizes::new(
        params,
        model.map_or(0, |m| m.latent_len()),
        rows,
    ))
}

/// Encodes `values` as one block with `coder`; returns its payload (what follows the block
/// header) and the encoder's view of the decoded values.
fn encode(
    params: &BoundParams<'_>,
    model: Option<&HostModel<'_>>,
    values: &[f64],
    coder: CoderChoice,
) -> (BlockKind, Vec<u8>, Vec<f64>) {
    let mut scratch = scratch_for(params, model, values.len());
    let mut encoded = vec![0f64; values.len()];
    let block = scratch
        .encode_block(params, model, coder, values, &mut encoded)
        .unwrap();
    let (block, _) = baler_codec::stream::checked_block(&block, 0).unwrap();
    (block.kind, block.payload.to_vec(), encoded)
}

/// Decodes one block's payload of `kind` holding `rows` rows.
fn decode(
    params: &BoundParams<'_>,
    model: Option<&HostModel<'_>>,
    kind: BlockKind,
    payload: &[u8],
    rows: usize,
) -> Result<Vec<f64>, Error> {
    let mut scratch = scratch_for(params, model, rows * params.row_len);
    let mut decoder = BoundedDecoder::new(params, model, scratch.scratch(), rows)?;
    let block = Block {
        index: 0,
        kind,
        frames: rows as u32,
        payload,
    };
    let mut out = vec![0f64; rows * params.row_len];
    decoder.decode_block(&block, &mut out)?;
    Ok(out)
}

/// Encodes and decodes `values` as one block with the adaptive coder; returns the payload
/// and the decoded values.
fn round_trip(
    params: &BoundParams<'_>,
    model: Option<&HostModel<'_>>,
    values: &[f64],
) -> (Vec<u8>, Vec<f64>) {
    coded_round_trip(params, model, values, CoderChoice::Adaptive)
}

fn coded_round_trip(
    params: &BoundParams<'_>,
    model: Option<&HostModel<'_>>,
    values: &[f64],
    coder: CoderChoice,
) -> (Vec<u8>, Vec<f64>) {
    let (kind, payload, encoded) = encode(params, model, values, coder);
    let decoded = decode(params, model, kind, &payload, values.len() / params.row_len).unwrap();
    // The encoder's own view of the decoded values is what the decoder gets, bit for bit.
    let same = encoded
        .iter()
        .zip(&decoded)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "encoder and decoder disagree");
    (payload, decoded)
}

/// [`round_trip`] through the tabled coder (fields without a model); the decoded values
/// must be bit for bit those of the adaptive coder: the coders differ, the prediction not.
fn round_trip_tabled(params: &BoundParams<'_>, values: &[f64]) -> (Vec<u8>, Vec<f64>) {
    round_trip_as(
        params,
        values,
        CoderChoice::TabledValueContexts,
        BlockKind::TabledResiduals,
    )
}

/// [`round_trip`] through the tabled coder as `coder` writes it, which must be block `kind`.
fn round_trip_as(
    params: &BoundParams<'_>,
    values: &[f64],
    coder: CoderChoice,
    kind: BlockKind,
) -> (Vec<u8>, Vec<f64>) {
    assert!(tabled_applies(params));
    assert_eq!(encode(params, None, values, coder).0, kind);
    coded_round_trip(params, None, values, coder)
}

fn assert_within(values: &[f64], decoded: &[f64], bound: impl Fn(usize) -> f64) {
    for (i, (&x, &y)) in values.iter().zip(decoded).enumerate() {
        if x.is_nan() {
            assert!(y.is_nan(), "NaN at {i} came back as {y}");
        } else if x.is_infinite() {
            assert_eq!(x, y, "infinity at {i}");
        } else {
            assert!(
                (x - y).abs() <= bound(i),
                "value {i}: {x} -> {y}, bound {}",
                bound(i)
            );
        }
    }
}

fn grid(bound: f64) -> ColumnGrid {
    ColumnGrid {
        offset: 0.0,
        step: 2.0 * bound,
        bound,
        context: None,
        relation: None,
        per_binade: 0,
    }
}

/// Values with every kind of trouble: huge, tiny, subnormal, constant, NaN, infinities.
fn hostile_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e3f64..1e3,
        1 => -1e300f64..1e300,
        1 => -1e-300f64..1e-300,
        1 => Just(f64::MIN_POSITIVE / 3.0),
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1.0e15 + 0.3),
    ]
}

/// `count` values cycled from `seed`, as the output type keeps them (f32 or f64), and that type.
fn test_values(seed: &[f64], count: usize, f32_output: bool) -> (Vec<f64>, DType) {
    let values = seed.iter().cycle().take(count);
    match f32_output {
        true => (values.map(|&v| f64::from(v as f32)).collect(), DType::F32),
        false => (values.copied().collect(), DType::F64),
    }
}

/// Learned weights: mostly plausible (a few taps near one), sometimes extreme.
fn weights() -> impl Strategy<Value = [i32; LEARNED_TAPS]> {
    let one = 1i32 << LEARNED_FRACTION_BITS;
    let weight = prop_oneof![
        4 => Just(0),
        4 => -2 * one..2 * one,
        1 => any::<i32>(),
    ];
    proptest::collection::vec(weight, LEARNED_TAPS).prop_map(|w| {
        let mut a = [0i32; LEARNED_TAPS];
        a.copy_from_slice(&w);
        a
    })
}

/// A field predictor to test: Lorenzo, the learned one (60 taps), or the in-frame one (its
/// first 10 weights of the same kind).
fn field_predictor() -> impl Strategy<Value = Predictor> {
    prop_oneof![
        3 => Just(Predictor::None),
        4 => weights().prop_map(Predictor::Learned),
        3 => weights().prop_map(|w| {
            let mut a = [0i32; CAUSAL_TAPS.len()];
            a.copy_from_slice(&w[..CAUSAL_TAPS.len()]);
            Predictor::LearnedInFrame(a)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_table_value_is_within_its_bound(
        columns in 1usize..6,
        rows in 1usize..40,
        seed_values in proptest::collection::vec(hostile_value(), 240),
        exponent in -12i32..3,
        f32_output in any::<bool>(),
    ) {
        let bound = 10f64.powi(exponent);
        let (values, dtype) = test_values(&seed_values, rows * columns, f32_output);
        let mut grids: Vec<ColumnGrid> = (0..columns).map(|_| grid(bound)).collect();
        if columns > 1 {
            grids[1].context = Some(0);
        }
        let bytes = params_bytes(Layout::Table, Predictor::None, dtype, &grids, columns);
        let params = BoundParams::read(&bytes).unwrap();
        let (_, decoded) = round_trip(&params, None, &values);
        assert_within(&values, &decoded, |_| bound);
        // Tables are tabled too (a table per column and class): the same values.
        let (_, tabled) = round_trip_tabled(&params, &values);
        let same = decoded.iter().zip(&tabled).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same, "the two coders decode a table differently");
    }

    #[test]
    fn every_field_value_is_within_the_bound(
        frames in 1usize..7,
        height in 1u32..7,
        width in 1u32..7,
        seed_values in proptest::collection::vec(hostile_value(), 150),
        predictor in field_predictor(),
        exponent in -6i32..2,
        f32_output in any::<bool>(),
    ) {
        // Lorenzo, or learned weights of any size (over 60 taps or the frame's 10); both
        // entropy coders.
        let bound = 10f64.powi(exponent);
        let n = (height * width) as usize;
        let (values, dtype) = test_values(&seed_values, frames * n, f32_output);
        let layout = Layout::Field { height, width };
        let bytes = params_bytes(layout, predictor, dtype, &[grid(bound)], n);
        let params = BoundParams::read(&bytes).unwrap();
        prop_assert_eq!(params.predictor, predictor);
        let (_, decoded) = round_trip(&params, None, &values);
        assert_within(&values, &decoded, |_| bound);
        let (_, tabled) = round_trip_tabled(&params, &values);
        let same = decoded.iter().zip(&tabled).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same, "the two coders decode differently");
        // Kind 6: contexts from residuals, the same values.
        let kind = BlockKind::TabledResidualContexts;
        let (_, split) = round_trip_as(&params, &values, CoderChoice::Tabled, kind);
        let same = decoded.iter().zip(&split).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same, "kind 6 decodes differently");
    }
}

#[test]
fn a_learned_predictor_follows_a_moving_pattern() {
    // Rough values that move one column right per frame: Lorenzo sees noise, while
    // "the previous frame, one column to the left" predicts almost every value exactly.
    let (h, w, frames) = (16u32, 24u32, 12usize);
    let n = (h * w) as usize;
    let rough = |x: i64, r: i64| (((x * 7919 + r * 104_729) % 1000) as f64) * 0.01;
    let values: Vec<f64> = (0..frames * n)
        .map(|i| {
            let (t, r, c) = (
                (i / n) as i64,
                ((i % n) / w as usize) as i64,
                (i % w as usize) as i64,
            );
            rough(c - t + 1000, r)
        })
        .collect();
    let layout = Layout::Field {
        height: h,
        width: w,
    };
    let mut shift = [0i32; LEARNED_TAPS];
    shift[10 + 2 * 5 + 1] = 1 << LEARNED_FRACTION_BITS; // previous frame, (0, -1)
    let code = |predictor| {
        let bytes = params_bytes(layout, predictor, DType::F64, &[grid(1e-3)], n);
        let (payload, decoded) = round_trip(&BoundParams::read(&bytes).unwrap(), None, &values);
        assert_within(&values, &decoded, |_| 1e-3);
        payload.len()
    };
    let (lorenzo, learned) = (code(Predictor::None), code(Predictor::Learned(shift)));
    assert!(
        learned * 3 < lorenzo,
        "learned {learned} bytes, Lorenzo {lorenzo} bytes"
    );
}

#[test]
fn damaged_learned_parameters_are_typed_errors() {
    let layout = Layout::Field {
        height: 2,
        width: 3,
    };
    let mut weights = [0i32; LEARNED_TAPS];
    weights[0] = 1 << LEARNED_FRACTION_BITS;
    let good = params_bytes(
        layout,
        Predictor::Learned(weights),
        DType::F64,
        &[grid(0.5)],
        6,
    );
    assert_eq!(
        BoundParams::read(&good).unwrap().predictor,
        Predictor::Learned(weights)
    );
    for cut in 0..good.len() {
        assert!(BoundParams::read(&good[..cut]).is_err(), "cut at {cut}");
    }
    // The tap count follows the one grid entry.
    let mut taps = good.clone();
    taps[20 + 32] ^= 1;
    assert_eq!(
        BoundParams::read(&taps).unwrap_err(),
        Error::Invalid("learned predictor taps")
    );
    // Tables have no learned predictor.
    let mut table = params_bytes(Layout::Table, Predictor::None, DType::F64, &[grid(0.5)], 1);
    for code in [2, 5] {
        table[2] = code;
        assert_eq!(
            BoundParams::read(&table).unwrap_err(),
            Error::Invalid("bounded predictor")
        );
    }
    // The in-frame predictor: 10 weights; every cut, and a wrong count, refused.
    let mut in_frame = [0i32; CAUSAL_TAPS.len()];
    in_frame[1] = 1 << LEARNED_FRACTION_BITS;
    let good = params_bytes(
        layout,
        Predictor::LearnedInFrame(in_frame),
        DType::F64,
        &[grid(0.5)],
        6,
    );
    assert_eq!(
        BoundParams::read(&good).unwrap().predictor,
        Predictor::LearnedInFrame(in_frame)
    );
    for cut in 0..good.len() {
        assert!(BoundParams::read(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut taps = good.clone();
    taps[20 + 32] = 60;
    assert_eq!(
        BoundParams::read(&taps).unwrap_err(),
        Error::Invalid("learned predictor taps")
    );
}

#[test]
fn the_in_frame_predictor_codes_layers_smaller_than_lorenzo() {
    // Frames that are layers, not steps in time: each holds a plume somewhere else (zeros
    // around it, as in a volcanic-ash field's height layers). 3-D Lorenzo carries the frame
    // before's plume into this frame's zeros; "left + up - up-left" within the frame (the
    // in-frame predictor with 2-D Lorenzo's weights) predicts the zeros as zeros.
    let (h, w, frames) = (20u32, 24u32, 6usize);
    let n = (h * w) as usize;
    let values: Vec<f64> = (0..frames * n)
        .map(|i| {
            let f = (i / n) as f64;
            let (r, c) = (((i % n) / w as usize) as f64, (i % w as usize) as f64);
            let (r0, c0) = (4.0 + (f * 7.3) % 12.0, 4.0 + (f * 11.1) % 16.0);
            let d2 = (r - r0).powi(2) + (c - c0).powi(2);
            if d2 < 16.0 {
                (16.0 - d2) * (1.0 + 0.2 * f)
            } else {
                0.0
            }
        })
        .collect();
    let layout = Layout::Field {
        height: h,
        width: w,
    };
    let one = 1 << LEARNED_FRACTION_BITS;
    let mut planar = [0i32; CAUSAL_TAPS.len()];
    // CAUSAL_TAPS: (-1, 0), (0, -1), (-1, -1), ...
    planar[..3].copy_from_slice(&[one, one, -one]);
    let code = |predictor| {
        let bytes = params_bytes(layout, predictor, DType::F64, &[grid(1e-3)], n);
        let params = BoundParams::read(&bytes).unwrap();
        let (payload, decoded) = round_trip(&params, None, &values);
        assert_within(&values, &decoded, |_| 1e-3);
        payload.len()
    };
    let (lorenzo, in_frame) = (
        code(Predictor::None),
        code(Predictor::LearnedInFrame(planar)),
    );
    assert!(
        in_frame * 4 < lorenzo * 3,
        "in-frame {in_frame} bytes against Lorenzo's {lorenzo}"
    );
}

fn model() -> (Vec<u8>, Vec<f32>) {
    let acts = [FloatActivation::LeakyRelu(0.01)];
    let (float, data) = FloatModel::random(7, &[6, 8, 3], 8, &acts, 64);
    (float.quantize().unwrap(), data)
}

#[test]
fn a_model_predicts_and_the_bound_still_holds() {
    let (blob, data) = model();
    let model = HostModel::from_bytes(&blob).unwrap();
    let values: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
    for bound in [1e-1, 1e-3, 1e-6] {
        let grids: Vec<ColumnGrid> = (0..6).map(|_| grid(bound)).collect();
        let bytes = params_bytes(Layout::Table, Predictor::Model, DType::F64, &grids, 6);
        let params = BoundParams::read(&bytes).unwrap();
        let (_, decoded) = round_trip(&params, Some(&model), &values);
        assert_within(&values, &decoded, |_| bound);
    }
}

#[test]
fn smooth_fields_cost_few_bits() {
    // A smooth moving wave: Lorenzo prediction leaves residuals near zero.
    let (h, w, frames) = (20u32, 20u32, 10usize);
    let values: Vec<f64> = (0..frames * (h * w) as usize)
        .map(|i| {
            let (t, r, c) = (i / 400, (i / 20) % 20, i % 20);
            (0.3 * r as f64 + 0.2 * c as f64 + 0.1 * t as f64).sin()
        })
        .collect();
    let layout = Layout::Field {
        height: h,
        width: w,
    };
    let bytes = params_bytes(layout, Predictor::None, DType::F64, &[grid(1e-3)], 400);
    let params = BoundParams::read(&bytes).unwrap();
    let (payload, decoded) = round_trip(&params, None, &values);
    assert_within(&values, &decoded, |_| 1e-3);
    // The same values as one table column, with no neighbours to predict from.
    let flat = params_bytes(Layout::Table, Predictor::None, DType::F64, &[grid(1e-3)], 1);
    let (unpredicted, _) = round_trip(&BoundParams::read(&flat).unwrap(), None, &values);
    assert!(
        payload.len() * 2 < unpredicted.len(),
        "Lorenzo {} bytes, no prediction {} bytes",
        payload.len(),
        unpredicted.len()
    );
}

#[test]
fn damaged_parameters_are_typed_errors() {
    let grids = [
        grid(0.5),
        ColumnGrid {
            context: Some(0),
            relation: None,
            ..grid(0.5)
        },
    ];
    let good = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, 2);
    assert!(BoundParams::read(&good).is_ok());
    for cut in 0..good.len() {
        assert!(BoundParams::read(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad_step = good.clone();
    bad_step[20 + 8..20 + 16].copy_from_slice(&0f64.to_le_bytes());
    assert_eq!(
        BoundParams::read(&bad_step).unwrap_err(),
        Error::Invalid("column grid")
    );
    let mut forward_context = good.clone();
    forward_context[20 + 24..20 + 28].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        BoundParams::read(&forward_context).unwrap_err(),
        Error::Invalid("context column must come earlier")
    );
}

#[test]
fn garbage_payloads_never_panic() {
    let grids: Vec<ColumnGrid> = (0..3).map(|_| grid(0.01)).collect();
    let bytes = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, 3);
    let params = BoundParams::read(&bytes).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for len in 0..300usize {
        let junk: Vec<u8> = (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i == 0 {
                    0
                } else {
                    state as u8
                }
            })
            .collect();
        let _ = decode(&params, None, BlockKind::Residuals, &junk, 10);
    }
}

#[test]
fn damaged_tabled_payloads_are_typed_errors() {
    let layout = Layout::Field {
        height: 4,
        width: 5,
    };
    let bytes = params_bytes(layout, Predictor::None, DType::F64, &[grid(0.01)], 20);
    let params = BoundParams::read(&bytes).unwrap();
    let values: Vec<f64> = (0..200).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let (payload, _) = round_trip_tabled(&params, &values);
    let rows = values.len() / 20;
    assert_damage_is_refused(&payload, |bytes| {
        decode(&params, None, BlockKind::TabledResiduals, bytes, rows).map(|_| ())
    });
}

/// `decode` takes `payload`; every truncation of it and a trailing byte are errors, and so is
/// most of every single-bit flip (those that change what decodes: the coder's end state and
/// lengths are checked); none panics.
fn assert_damage_is_refused(payload: &[u8], decode: impl Fn(&[u8]) -> Result<(), Error>) {
    assert_eq!(decode(payload), Ok(()));
    for len in 0..payload.len() {
        assert!(decode(&payload[..len]).is_err(), "truncated to {len}");
    }
    let mut extended = payload.to_vec();
    extended.push(0);
    assert!(decode(&extended).is_err(), "a trailing byte");
    let mut detected = 0;
    for bit in 0..payload.len() * 8 {
        let mut damaged = payload.to_vec();
        damaged[bit / 8] ^= 1 << (bit % 8);
        detected += usize::from(decode(&damaged).is_err());
    }
    assert!(
        detected * 2 > payload.len() * 8,
        "{detected} of {} flips detected",
        payload.len() * 8
    );
}

#[test]
fn damaged_residual_context_payloads_are_typed_errors() {
    let layout = Layout::Field {
        height: 4,
        width: 5,
    };
    let mut weights = [0i32; LEARNED_TAPS];
    weights[0] = 1 << LEARNED_FRACTION_BITS;
    for predictor in [Predictor::None, Predictor::Learned(weights)] {
        let bytes = params_bytes(layout, predictor, DType::F32, &[grid(0.01)], 20);
        let params = BoundParams::read(&bytes).unwrap();
        let values: Vec<f64> = (0..400)
            .map(|i| f64::from(((i as f64 * 0.37).sin() * 3.0) as f32))
            .collect();
        let kind = BlockKind::TabledResidualContexts;
        let (payload, _) = round_trip_as(&params, &values, CoderChoice::Tabled, kind);
        let rows = values.len() / 20;
        assert_damage_is_refused(&payload, |bytes| {
            decode(&params, None, kind, bytes, rows).map(|_| ())
        });
    }
    // Kind 6 where the parameters cannot have it: a table.
    let grids: Vec<ColumnGrid> = (0..3).map(|_| grid(0.01)).collect();
    let bytes = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, 3);
    let params = BoundParams::read(&bytes).unwrap();
    let err = decode(
        &params,
        None,
        BlockKind::TabledResidualContexts,
        &[0; 64],
        2,
    );
    assert_eq!(
        err.unwrap_err(),
        Error::Invalid("residual contexts in a stream that cannot have them")
    );
}

#[test]
fn damaged_tabled_table_payloads_are_typed_errors() {
    let grids: Vec<ColumnGrid> = (0..4)
        .map(|i| ColumnGrid {
            context: (i == 2).then_some(0),
            ..grid(0.01)
        })
        .collect();
    let bytes = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, 4);
    let params = BoundParams::read(&bytes).unwrap();
    let values: Vec<f64> = (0..240).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let (payload, _) = round_trip_tabled(&params, &values);
    let rows = values.len() / 4;
    assert_damage_is_refused(&payload, |bytes| {
        decode(&params, None, BlockKind::TabledResiduals, bytes, rows).map(|_| ())
    });
}

#[test]
fn tables_too_wide_for_tables_of_their_own_are_coded_adaptively() {
    // 4 contexts per column: 256 columns reach the limit, 257 are beyond it.
    for (columns, tabled) in [(256, true), (257, false)] {
        let grids: Vec<ColumnGrid> = (0..columns).map(|_| grid(0.01)).collect();
        let bytes = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, columns);
        let params = BoundParams::read(&bytes).unwrap();
        assert_eq!(tabled_applies(&params), tabled, "{columns} columns");
        let values: Vec<f64> = (0..2 * columns).map(|i| (i as f64).sqrt()).collect();
        let (kind, _, _) = encode(&params, None, &values, CoderChoice::Tabled);
        let expected = if tabled {
            BlockKind::TabledResiduals
        } else {
            BlockKind::Residuals
        };
        assert_eq!(kind, expected, "{columns} columns");
        // A tabled block where the parameters cannot have one is refused.
        if !tabled {
            let err = decode(&params, None, BlockKind::TabledResiduals, &[0; 64], 2).unwrap_err();
            assert_eq!(
                err,
                Error::Invalid("tabled residuals in a stream that cannot have them")
            );
        }
    }
}

#[test]
fn too_few_contexts_is_a_capacity_error() {
    let grids: Vec<ColumnGrid> = (0..3).map(|_| grid(0.01)).collect();
    let bytes = params_bytes(Layout::Table, Predictor::None, DType::F64, &grids, 3);
    let params = BoundParams::read(&bytes).unwrap();
    let mut scratch = ScratchBuf::new(ScratchSizes::new(&params, 0, 1));
    let full = scratch.scratch();
    let scratch = Scratch {
        contexts: &mut full.contexts[..2],
        ..full
    };
    let err = BoundedEncoder::<HostModel<'_>>::new(&params, None, scratch, CoderChoice::Best)
        .unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { needed: 12, .. }));
}

/// Interpolation plans of every shape the format allows.
fn plans() -> impl Strategy<Value = InterpolationPlan> {
    (
        (0u8..6, 0u8..VOLUME_SHAPES),
        0u32..=MAX_FINE_BITS,
        1usize..=ACTIVITY_CLASSES,
        proptest::array::uniform16(0u8..8),
        proptest::array::uniform16(0u8..=MAX_FINE_BITS as u8),
    )
        .prop_map(
            |((order, shape), fine_bits, activity_classes, cubic, finer)| InterpolationPlan {
                order,
                shape,
                fine_bits,
                activity_classes,
                cubic,
                finer: finer.map(|f| f.min(fine_bits as u8)),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_interpolated_value_is_within_the_bound(
        frames in 1usize..7,
        height in 1u32..10,
        width in 1u32..10,
        seed_values in proptest::collection::vec(hostile_value(), 150),
        plan in plans(),
        exponent in -6i32..2,
        f32_output in any::<bool>(),
    ) {
        let bound = 10f64.powi(exponent);
        let n = (height * width) as usize;
        let (values, dtype) = test_values(&seed_values, frames * n, f32_output);
        let layout = Layout::Field { height, width };
        let predictor = Predictor::Interpolated(plan);
        let bytes = params_bytes(layout, predictor, dtype, &[grid(bound)], n);
        let params = BoundParams::read(&bytes).unwrap();
        prop_assert_eq!(params.predictor, predictor);
        // Kind 7 whatever the coder choice, the encoder's view bit for bit the decoder's.
        for coder in [CoderChoice::Best, CoderChoice::Adaptive] {
            prop_assert_eq!(encode(&params, None, &values, coder).0, BlockKind::Interpolated);
            let (_, decoded) = coded_round_trip(&params, None, &values, coder);
            assert_within(&values, &decoded, |_| bound);
        }
    }
}

/// The parameters of an `h x w` field interpolated by `plan`, one grid of `bound`.
fn interpolated_params(
    h: usize,
    w: usize,
    plan: InterpolationPlan,
    dtype: DType,
    bound: f64,
) -> Vec<u8> {
    let layout = Layout::Field {
        height: h as u32,
        width: w as u32,
    };
    params_bytes(
        layout,
        Predictor::Interpolated(plan),
        dtype,
        &[grid(bound)],
        h * w,
    )
}

/// A smooth wave over `frames` frames of `h x w`.
fn smooth_wave(frames: usize, h: usize, w: usize) -> Vec<f64> {
    (0..frames * h * w)
        .map(|i| {
            let (t, r, c) = (i / (h * w), (i / w) % h, i % w);
            (0.11 * r as f64 + 0.07 * c as f64 + 0.05 * t as f64).sin()
                + 0.3 * (0.05 * (r * c) as f64).cos()
        })
        .collect()
}

#[test]
fn interpolation_beats_lorenzo_on_smooth_fields_at_coarse_bounds() {
    // One smooth 96 x 96 frame (a range of about 3), bound 2e-2.
    let (h, w) = (96, 96);
    let values: Vec<f64> = (0..h * w)
        .map(|i| {
            let (r, c) = ((i / w) as f64, (i % w) as f64);
            (0.05 * r).sin() * (0.04 * c).cos() + 0.5 * (0.03 * (r + c)).sin()
        })
        .collect();
    let layout = Layout::Field {
        height: h as u32,
        width: w as u32,
    };
    let bound = 2e-2;
    let cubic = InterpolationPlan {
        cubic: [7; 16],
        ..InterpolationPlan::LINEAR
    };
    let relative = InterpolationPlan {
        fine_bits: 4,
        ..cubic
    };
    let size = |predictor| {
        let bytes = params_bytes(layout, predictor, DType::F64, &[grid(bound)], h * w);
        let params = BoundParams::read(&bytes).unwrap();
        let (payload, decoded) = coded_round_trip(&params, None, &values, CoderChoice::Best);
        assert_within(&values, &decoded, |_| bound);
        payload.len()
    };
    let lorenzo = size(Predictor::None);
    let on_grid = size(Predictor::Interpolated(cubic));
    let fine = size(Predictor::Interpolated(relative));
    // Quantizing relative to the prediction (fine bits) rather than rounding to the grid
    // first is what makes the difference at a coarse bound.
    assert!(
        fine * 2 < on_grid && fine * 3 < lorenzo,
        "Lorenzo {lorenzo} bytes, interpolation on the grid {on_grid}, relative {fine}"
    );
}

#[test]
fn sparse_fields_on_the_grid_keep_their_zeros() {
    // Without fine bits every value stays on the grid anchored at 0.
    let (h, w) = (30, 30);
    let values: Vec<f64> = smooth_wave(2, h, w)
        .into_iter()
        .map(|v| if v < 0.2 { 0.0 } else { v })
        .collect();
    let plan = InterpolationPlan::LINEAR;
    let bytes = interpolated_params(h, w, plan, DType::F64, 0.05);
    let params = BoundParams::read(&bytes).unwrap();
    let (_, decoded) = coded_round_trip(&params, None, &values, CoderChoice::Best);
    assert_within(&values, &decoded, |_| 0.05);
    for (x, y) in values.iter().zip(&decoded) {
        assert!(*x != 0.0 || *y == 0.0, "a zero came back as {y}");
        assert!(*y >= 0.0, "{x} came back negative: {y}");
    }
}

#[test]
fn damaged_interpolated_payloads_are_typed_errors() {
    let (h, w) = (6, 7);
    let plan = InterpolationPlan {
        fine_bits: 4,
        cubic: [5; 16],
        ..InterpolationPlan::LINEAR
    };
    let bytes = interpolated_params(h, w, plan, DType::F32, 0.01);
    let params = BoundParams::read(&bytes).unwrap();
    let values: Vec<f64> = smooth_wave(5, h, w)
        .iter()
        .map(|&v| f64::from((v * 3.0) as f32))
        .collect();
    let (payload, _) = coded_round_trip(&params, None, &values, CoderChoice::Best);
    let rows = values.len() / (h * w);
    let kind = BlockKind::Interpolated;
    assert_damage_is_refused(&payload, |bytes| {
        decode(&params, None, kind, bytes, rows).map(|_| ())
    });
    // A row block in an interpolated stream, and an interpolated block in a row stream.
    assert_eq!(
        decode(
            &params,
            None,
            BlockKind::TabledResidualContexts,
            &payload,
            rows
        )
        .unwrap_err(),
        Error::Invalid("an interpolated stream holds only kind 7 blocks")
    );
    let layout = Layout::Field {
        height: h as u32,
        width: w as u32,
    };
    let lorenzo = params_bytes(layout, Predictor::None, DType::F32, &[grid(0.01)], h * w);
    let lorenzo = BoundParams::read(&lorenzo).unwrap();
    assert_eq!(
        decode(&lorenzo, None, kind, &payload, rows).unwrap_err(),
        Error::Invalid("an interpolated block in a stream without the interpolation predictor")
    );
    // A decoder given no room for the block's values says so.
    let mut scratch = scratch_for(&params, None, values.len());
    let full = scratch.scratch();
    let scratch = Scratch {
        volume: &mut full.volume[..10],
        ..full
    };
    let mut decoder = BoundedDecoder::<HostModel<'_>>::new(&params, None, scratch, rows).unwrap();
    let block = Block {
        index: 0,
        kind,
        frames: rows as u32,
        payload: &payload,
    };
    let mut out = vec![0f64; values.len()];
    let err = decoder.decode_block(&block, &mut out).unwrap_err();
    assert!(
        matches!(err, Error::CapacityExceeded { needed: 210, .. }),
        "{err:?}"
    );
}

#[test]
fn damaged_interpolation_plans_are_typed_errors() {
    let plan = InterpolationPlan {
        fine_bits: 4,
        finer: [1; 16],
        ..InterpolationPlan::LINEAR
    };
    let good = interpolated_params(3, 3, plan, DType::F64, 0.1);
    assert_eq!(
        BoundParams::read(&good).unwrap().predictor,
        Predictor::Interpolated(plan)
    );
    // The section follows the one grid entry: axis order, fine bits, activity classes, the
    // volume's shape, then the cubic passes and the finer steps of each level.
    let section = 20 + 32;
    for (at, byte) in [(0, 6), (1, 9), (2, 0), (2, 9), (3, 3), (4, 8), (4 + 16, 5)] {
        let mut bad = good.clone();
        bad[section + at] = byte;
        let expected = match at {
            0 => "interpolation axis order",
            _ => "interpolation plan",
        };
        assert_eq!(
            BoundParams::read(&bad).unwrap_err(),
            Error::Invalid(expected),
            "byte {at} = {byte}"
        );
    }
}
