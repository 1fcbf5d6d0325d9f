//! Per-column corrections (blob flag 2): the corrected columns come back within half a step
//! of their values through every fixed-rate path, the others exactly as the network gives
//! them, and a damaged corrections section is a typed error.

mod common;
use baler_codec::model::quantize::{ColumnCorrection, ExactColumn, FloatActivation, FloatModel};
use baler_codec::model::spec::{FLAG_CORRECTIONS, FLAG_EXACT_COLUMNS};
use baler_codec::stream::{decode_block, encode_block, read_block};
use baler_codec::{DType, Decoder, EdgeModel, Encoder, Error, HostModel, StreamHeader};
use common::{decode_stream, encode_stream, with_section};
use proptest::prelude::*;

const N: usize = 10;
/// The corrected columns and their bits; column 1 is an exact column.
const CORRECTED: [(usize, u8); 3] = [(0, 3), (3, 1), (7, 9)];

/// A random model over `N` values (exact column 1, a charge) and its frames, without
/// corrections.
fn plain_model(seed: u64, code_bits: u8, frames: usize) -> (FloatModel, Vec<f32>) {
    let acts = [FloatActivation::LeakyRelu(0.01)];
    let (mut float, mut data) = FloatModel::random(seed, &[N, 16, 3], code_bits, &acts, frames);
    float.exact = vec![ExactColumn {
        column: 1,
        values: vec![-1.0, 1.0],
    }];
    for (i, frame) in data.chunks_exact_mut(N).enumerate() {
        frame[1] = if (i as u64 ^ seed) & 1 == 0 {
            -1.0
        } else {
            1.0
        };
    }
    (float, data)
}

/// Each corrected column's residual range `value - decoded` over `data`.
fn residual_ranges(blob: &[u8], data: &[f32]) -> Vec<(f32, f32)> {
    let model = HostModel::from_bytes(blob).unwrap();
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); N];
    let (mut codes, mut out) = ([0i16; 3], [0f32; N]);
    for frame in data.chunks_exact(N) {
        model.encode_frame(frame, &mut codes).unwrap();
        model.decode_frame(&codes, &mut out).unwrap();
        for (r, (&x, &y)) in ranges.iter_mut().zip(frame.iter().zip(&out)) {
            *r = (r.0.min(x - y), r.1.max(x - y));
        }
    }
    ranges
}

/// The model of [`plain_model`] with [`CORRECTED`] covering its residuals (steps a little
/// wider than `range / 2^bits`, so the largest residual stays inside).
fn model_with_corrections(seed: u64, code_bits: u8, frames: usize) -> (Vec<u8>, Vec<f32>) {
    let (mut float, data) = plain_model(seed, code_bits, frames);
    let ranges = residual_ranges(&float.quantize().unwrap(), &data);
    float.corrections = CORRECTED
        .iter()
        .map(|&(column, bits)| {
            let (low, high) = ranges[column];
            let step = ((high - low) / (1u32 << bits) as f32 * 1.001).max(1e-6);
            ColumnCorrection {
                column,
                bits,
                low,
                step,
            }
        })
        .collect();
    (float.quantize().unwrap(), data)
}

proptest! {
    #[test]
    fn corrected_columns_come_back_within_half_a_step(seed in any::<u64>(), bits in 1u8..=16, frames in 1usize..40, per_block in 1u32..9) {
        let (blob, data) = model_with_corrections(seed, bits, frames);
        let model = HostModel::from_bytes(&blob).unwrap();
        // Latent codes, the charge's 1 bit, then 3 + 1 + 9 correction bits.
        prop_assert_eq!(model.frame_bits(), 3 * usize::from(bits) + 1 + 13);
        let stream = encode_stream(&model, &data, DType::F32, per_block);
        let decoded = decode_stream(&model, &stream).unwrap();
        let corrected: Vec<_> = model.corrected_columns().collect();
        prop_assert_eq!(corrected.len(), 3);
        let (mut codes, mut alone) = ([0i16; 3], [0f32; N]);
        for (frame, back) in data.chunks_exact(N).zip(decoded.chunks_exact(N)) {
            model.encode_frame(frame, &mut codes).unwrap();
            model.decode_frame(&codes, &mut alone).unwrap();
            for c in &corrected {
                // Half a step, and the few f32 roundings of the steps on the way.
                let slack = 1e-5 * (frame[c.column].abs() + c.low.abs() + c.step) + 1e-30;
                prop_assert!((back[c.column] - frame[c.column]).abs() <= c.step / 2.0 + slack,
                    "column {}: {} -> {}, step {}", c.column, frame[c.column], back[c.column], c.step);
            }
            prop_assert_eq!(back[1], frame[1]);
            // The columns without corrections are the network's, bit for bit.
            for c in [2, 4, 5, 6, 8, 9] {
                prop_assert_eq!(alone[c].to_bits(), back[c].to_bits());
            }
            // `apply_corrections` (what the trainer measures) is what the stream gives.
            model.apply_corrections(frame, &mut alone);
            model.apply_exact(frame, &mut alone);
            prop_assert_eq!(alone.map(f32::to_bits), <[f32; N]>::try_from(back).unwrap().map(f32::to_bits));
        }
        // The block path writes the same frames as the streaming encoder.
        let mut block = vec![0u8; 1 << 16];
        let len = encode_block(&model, &data, &mut block).unwrap();
        let (parsed, used) = read_block(&model, &block[..len], 0).unwrap();
        prop_assert_eq!(used, len);
        let mut out = vec![0f32; data.len()];
        decode_block(&model, &parsed, &mut out).unwrap();
        prop_assert_eq!(out, decoded);
        // The codes-only reader skips the exact and correction codes and stays in step.
        let mut decoder = Decoder::new(&model, &stream).unwrap();
        let (mut count, mut codes) = (0, [0i16; 3]);
        while decoder.next_codes(&mut codes).unwrap() {
            count += 1;
        }
        prop_assert_eq!(count, frames);
    }
}

#[test]
fn corrections_cut_the_error_and_residuals_outside_take_the_nearest_end() {
    let (float, data) = plain_model(21, 8, 200);
    let plain = float.quantize().unwrap();
    let (blob, _) = model_with_corrections(21, 8, 200);
    let (plain, model) = (
        HostModel::from_bytes(&plain).unwrap(),
        HostModel::from_bytes(&blob).unwrap(),
    );
    let worst = |model: &HostModel<'_>, data: &[f32], column: usize| {
        let decoded = decode_stream(model, &encode_stream(model, data, DType::F32, 64)).unwrap();
        data.iter()
            .zip(&decoded)
            .skip(column)
            .step_by(N)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    // Column 7 has 9 bits: its largest error falls by more than 2^8.
    let (before, after) = (worst(&plain, &data, 7), worst(&model, &data, 7));
    assert!(after * 256.0 < before, "{before} -> {after}");
    // Far past the residual range the code saturates at the nearest end, never wraps.
    let c = model.corrected_columns().find(|c| c.column == 7).unwrap();
    assert_eq!(c.code(f32::MAX), (1 << 9) - 1);
    assert_eq!(c.code(-f32::MAX), 0);
    assert_eq!(c.code(f32::NAN), 0);
    let mut far = data[..N].to_vec();
    far[7] = 1e6;
    let decoded = decode_stream(&model, &encode_stream(&model, &far, DType::F32, 1)).unwrap();
    let mut codes = [0i16; 3];
    let mut alone = [0f32; N];
    model.encode_frame(&far, &mut codes).unwrap();
    model.decode_frame(&codes, &mut alone).unwrap();
    assert_eq!(decoded[7], alone[7] + c.correction((1 << 9) - 1));
}

#[test]
fn an_edge_model_codes_i16_counts_with_corrections() {
    let (blob, data) = model_with_corrections(3, 6, 12);
    let counts: Vec<i16> = data.iter().map(|&x| x.round() as i16).collect();
    let model = EdgeModel::from_bytes(&blob).unwrap();
    let header = StreamHeader::new(&model, DType::I16, &[12, N as u64]).unwrap();
    let mut out = [0u8; 512];
    let mut encoder = Encoder::new(&model, header, 5, &mut out).unwrap();
    for frame in counts.chunks_exact(N) {
        encoder.push_frame_i16(frame).unwrap();
    }
    let len = encoder.finish().unwrap();
    // The host's encoder writes the same blocks for the same values as f32 (the headers
    // differ in their dtype only).
    let host = HostModel::from_bytes(&blob).unwrap();
    let as_f32: Vec<f32> = counts.iter().map(|&c| f32::from(c)).collect();
    let from_host = encode_stream(&host, &as_f32, DType::F32, 5);
    let blocks = baler_codec::stream::STREAM_HEADER_LEN;
    assert_eq!(
        from_host[blocks..],
        out[blocks..len],
        "edge and host encoders agree"
    );
}

/// One corrected column as the section stores it: column, bits, low, step.
type Row = (u16, u8, f32, f32);

#[test]
fn damaged_correction_sections_are_typed_errors() {
    let (blob, _) = model_with_corrections(11, 8, 40);
    let model = HostModel::from_bytes(&blob).unwrap();
    let good: Vec<Row> = model
        .corrected_columns()
        .map(|c| (c.column as u16, c.bits, c.low, c.step))
        .collect();
    let section = |rows: &[Row]| {
        let mut s = vec![(rows.len() * 2) as u8];
        s.extend(rows.iter().flat_map(|r| r.0.to_le_bytes()));
        s.push(rows.len() as u8);
        s.extend(rows.iter().map(|r| r.1));
        s.push((rows.len() * 4) as u8);
        s.extend(rows.iter().flat_map(|r| r.2.to_le_bytes()));
        s.push((rows.len() * 4) as u8);
        s.extend(rows.iter().flat_map(|r| r.3.to_le_bytes()));
        s
    };
    let both = FLAG_EXACT_COLUMNS | FLAG_CORRECTIONS;
    let keep = blob.len() - section(&good).len();
    assert_eq!(
        with_section(&blob, keep, &section(&good), both),
        blob,
        "the test rebuilds the section as the writer does"
    );
    let with = |edit: &dyn Fn(&mut Vec<Row>)| {
        let mut rows = good.clone();
        edit(&mut rows);
        section(&rows)
    };
    let mut wrong_lengths = section(&good);
    wrong_lengths[7] = 2; // two bit counts for three columns
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown flag", section(&good), both | 4),
        ("flag without a section", Vec::new(), both),
        (
            "section without its flag",
            section(&good),
            FLAG_EXACT_COLUMNS,
        ),
        ("no columns", section(&[]), both),
        ("column past the frame", with(&|r| r[2].0 = N as u16), both),
        ("columns out of order", with(&|r| r.swap(0, 1)), both),
        ("an exact column", with(&|r| r[1].0 = 1), both),
        ("zero bits", with(&|r| r[0].1 = 0), both),
        ("17 bits", with(&|r| r[0].1 = 17), both),
        ("a zero step", with(&|r| r[0].3 = 0.0), both),
        ("a negative step", with(&|r| r[0].3 = -1.0), both),
        ("a NaN step", with(&|r| r[0].3 = f32::NAN), both),
        (
            "an infinite low",
            with(&|r| r[0].2 = f32::NEG_INFINITY),
            both,
        ),
        (
            "levels past f32",
            with(&|r| {
                r[2].1 = 16;
                r[2].3 = f32::MAX / 1000.0;
            }),
            both,
        ),
        ("lengths that differ", wrong_lengths, both),
    ];
    for (what, bytes, flags) in cases {
        let damaged = with_section(&blob, keep, &bytes, flags);
        let result = HostModel::from_bytes(&damaged);
        assert!(
            matches!(
                result,
                Err(Error::Invalid(_)
                    | Error::Truncated
                    | Error::TrailingBytes
                    | Error::Malformed
                    | Error::LengthMismatch { .. })
            ),
            "{what}: {result:?}"
        );
    }
    // Without the section: the model as before, its frames 16 bits shorter.
    let plain = with_section(&blob, keep, &[], FLAG_EXACT_COLUMNS);
    let plain = HostModel::from_bytes(&plain).unwrap();
    assert_eq!(plain.corrected_columns().count(), 0);
    assert_eq!(plain.frame_bits() + 3 + 1 + 9, model.frame_bits());
}
