//! Exact columns (blob flag 1): discrete columns coded beside the latent codes come back
//! exactly, through every fixed-rate path, and a damaged exact-columns section is a typed error.

mod common;
use baler_codec::model::quantize::{ExactColumn, FloatActivation, FloatModel};
use baler_codec::model::spec::FLAG_EXACT_COLUMNS;
use baler_codec::stream::{decode_block, encode_block, read_block};
use baler_codec::{DType, Decoder, EdgeModel, Encoder, Error, HostModel, StreamHeader};
use common::{decode_stream, encode_stream, with_section};
use proptest::prelude::*;

const N: usize = 10;

/// A random model over `N` values whose columns 1, 4 and 9 are discrete: a charge (-1, +1), a
/// count (0..=12) and a flag (a single value), with frames that take only those values there.
fn model_with_exact(seed: u64, code_bits: u8, frames: usize) -> (Vec<u8>, Vec<f32>) {
    let acts = [FloatActivation::LeakyRelu(0.01)];
    let (mut float, mut data) = FloatModel::random(seed, &[N, 16, 3], code_bits, &acts, frames);
    float.exact = vec![
        ExactColumn {
            column: 1,
            values: vec![-1.0, 1.0],
        },
        ExactColumn {
            column: 4,
            values: (0..=12).map(|k| k as f32).collect(),
        },
        ExactColumn {
            column: 9,
            values: vec![0.5],
        },
    ];
    for (i, frame) in data.chunks_exact_mut(N).enumerate() {
        frame[1] = if (i as u64 ^ seed) & 1 == 0 {
            -1.0
        } else {
            1.0
        };
        frame[4] = ((i as u64).wrapping_mul(seed | 1) % 13) as f32;
        frame[9] = 0.5;
    }
    (float.quantize().unwrap(), data)
}

fn column(values: &[f32], c: usize) -> Vec<f32> {
    values.chunks_exact(N).map(|f| f[c]).collect()
}

proptest! {
    #[test]
    fn exact_columns_come_back_exactly(seed in any::<u64>(), bits in 1u8..=16, frames in 1usize..40, per_block in 1u32..9) {
        let (blob, data) = model_with_exact(seed, bits, frames);
        let model = HostModel::from_bytes(&blob).unwrap();
        // 1 + 4 + 1 bits of exact codes per frame, after the latent codes.
        prop_assert_eq!(model.frame_bits(), 3 * usize::from(bits) + 6);
        let stream = encode_stream(&model, &data, DType::F32, per_block);
        let decoded = decode_stream(&model, &stream).unwrap();
        for c in [1, 4, 9] {
            prop_assert_eq!(column(&decoded, c), column(&data, c));
        }
        // The block path writes the same bytes as the streaming encoder, and decodes the same.
        let mut block = vec![0u8; 1 << 16];
        let len = encode_block(&model, &data, &mut block).unwrap();
        let (parsed, used) = read_block(&model, &block[..len], 0).unwrap();
        prop_assert_eq!(used, len);
        let mut out = vec![0f32; data.len()];
        decode_block(&model, &parsed, &mut out).unwrap();
        prop_assert_eq!(out, decoded.clone());
        // The other columns are the network's, as without exact columns.
        let mut codes = [0i16; 3];
        let mut alone = vec![0f32; N];
        model.encode_frame(&data[..N], &mut codes).unwrap();
        model.decode_frame(&codes, &mut alone).unwrap();
        for c in [0, 2, 3, 5, 6, 7, 8] {
            prop_assert_eq!(alone[c].to_bits(), decoded[c].to_bits());
        }
    }
}

#[test]
fn values_missing_from_a_table_take_the_nearest_entry() {
    let (blob, mut data) = model_with_exact(7, 8, 4);
    let model = HostModel::from_bytes(&blob).unwrap();
    // Between entries, past both ends, and a tie (6.5 goes to the lower entry).
    let (charges, counts) = ([0.2, -7.0, 3.0, -0.0], [6.5, 99.0, -3.0, 11.6]);
    for (i, frame) in data.chunks_exact_mut(N).enumerate() {
        frame[1] = charges[i];
        frame[4] = counts[i];
    }
    let decoded = decode_stream(&model, &encode_stream(&model, &data, DType::F32, 2)).unwrap();
    assert_eq!(column(&decoded, 1), [1.0, -1.0, 1.0, -1.0]);
    assert_eq!(column(&decoded, 4), [6.0, 12.0, 0.0, 12.0]);
    // `apply_exact` gives what the stream gives.
    let mut out = vec![0f32; N];
    model.apply_exact(&data[..N], &mut out);
    assert_eq!((out[1], out[4], out[9]), (1.0, 6.0, 0.5));
}

#[test]
fn an_edge_model_codes_i16_counts_with_exact_columns() {
    let (blob, data) = model_with_exact(3, 6, 12);
    let model = EdgeModel::from_bytes(&blob).unwrap();
    let counts: Vec<i16> = data.iter().map(|&x| x.round() as i16).collect();
    let header = StreamHeader::new(&model, DType::I16, &[12, N as u64]).unwrap();
    let mut out = [0u8; 512];
    let mut encoder = Encoder::new(&model, header, 5, &mut out).unwrap();
    for frame in counts.chunks_exact(N) {
        encoder.push_frame_i16(frame).unwrap();
    }
    let len = encoder.finish().unwrap();
    let host = HostModel::from_bytes(&blob).unwrap();
    let decoded = decode_stream(&host, &out[..len]).unwrap();
    // Column 1 is -1 or +1 and column 4 a count: as i16 they are the same values.
    assert_eq!(column(&decoded, 1), column(&data, 1));
    assert_eq!(column(&decoded, 4), column(&data, 4));
    // The codes-only reader skips the exact codes and stays in step.
    let mut decoder = Decoder::new(&host, &out[..len]).unwrap();
    let (mut codes, mut frames) = ([0i16; 3], 0);
    while decoder.next_codes(&mut codes).unwrap() {
        frames += 1;
    }
    assert_eq!(frames, 12);
}

#[test]
fn damaged_exact_sections_are_typed_errors() {
    let (blob, _) = model_with_exact(11, 8, 4);
    // The section is the blob's tail: columns [1, 4, 9], counts minus one [1, 12, 0], and the
    // 16 values (2 + 13 + 1), each as a postcard byte string.
    let tail = 1 + 6 + 1 + 6 + 1 + 64;
    let keep = blob.len() - tail;
    let section = |columns: &[u16], counts: &[u16], values: &[f32]| {
        let mut s = vec![(columns.len() * 2) as u8];
        s.extend(columns.iter().flat_map(|c| c.to_le_bytes()));
        s.push((counts.len() * 2) as u8);
        s.extend(counts.iter().flat_map(|c| c.to_le_bytes()));
        s.push((values.len() * 4) as u8);
        s.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        s
    };
    let good = section(&[1, 4, 9], &[1, 12, 0], &{
        let mut v = vec![-1.0, 1.0];
        v.extend((0..=12).map(|k| k as f32));
        v.push(0.5);
        v
    });
    assert_eq!(
        with_section(&blob, keep, &good, FLAG_EXACT_COLUMNS),
        blob,
        "the test rebuilds the section as the writer does"
    );
    let cases: [(&str, Vec<u8>, u16); 8] = [
        ("unknown flag", good.clone(), FLAG_EXACT_COLUMNS | 4),
        ("flag without a section", Vec::new(), FLAG_EXACT_COLUMNS),
        ("section without its flag", good.clone(), 0),
        (
            "column past the frame",
            section(&[1, 4, 10], &[1, 12, 0], &[0.0; 16]),
            FLAG_EXACT_COLUMNS,
        ),
        (
            "columns out of order",
            section(&[4, 1, 9], &[1, 12, 0], &[0.0; 16]),
            FLAG_EXACT_COLUMNS,
        ),
        (
            "counts do not match the values",
            section(&[1, 4, 9], &[1, 12, 1], &[0.0; 16]),
            FLAG_EXACT_COLUMNS,
        ),
        (
            "a table not increasing",
            section(&[1], &[1], &[1.0, 1.0]),
            FLAG_EXACT_COLUMNS,
        ),
        (
            "a NaN in a table",
            section(&[1], &[1], &[0.0, f32::NAN]),
            FLAG_EXACT_COLUMNS,
        ),
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
                    | Error::LengthMismatch { .. })
            ),
            "{what}: {result:?}"
        );
    }
    // No section at all: a model without exact columns, as every blob before them.
    let plain = with_section(&blob, keep, &[], 0);
    let model = HostModel::from_bytes(&plain).unwrap();
    assert_eq!(model.exact_columns().count(), 0);
    assert_eq!(model.frame_bits(), 3 * 8);
}

#[test]
fn a_code_past_its_table_is_refused() {
    let (blob, data) = model_with_exact(5, 8, 1);
    let model = HostModel::from_bytes(&blob).unwrap();
    let mut stream = encode_stream(&model, &data, DType::F32, 1);
    // The count's 4-bit code sits after 24 latent bits and the charge's 1 bit: set it to 15,
    // past the 13-entry table, and fix the block's CRC so only the code is wrong.
    let payload = baler_codec::stream::STREAM_HEADER_LEN + baler_codec::stream::BLOCK_HEADER_LEN;
    stream[payload + 3] |= 0b1_1110;
    let crc_at = stream.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC)
        .checksum(&stream[baler_codec::stream::STREAM_HEADER_LEN..crc_at]);
    stream[crc_at..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        decode_stream(&model, &stream),
        Err(Error::Invalid(_))
    ));
}
