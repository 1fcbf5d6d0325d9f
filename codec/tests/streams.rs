//! Bit packing, stream round trips, and every way a blob or stream can be damaged.

mod common;
use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::model::spec::{model_id, MODEL_HEADER_LEN};
use baler_codec::stream::codes::{read_codes, write_codes, BitReader, BitWriter};
use baler_codec::stream::{
    decode_block, encode_block, read_block, BLOCK_HEADER_LEN, STREAM_HEADER_LEN,
};
use baler_codec::{Capacity, DType, EdgeModel, Encoder, Error, HostModel, StreamHeader};
use common::{decode_stream, encode_stream};
use proptest::prelude::*;

fn small_model(seed: u64, code_bits: u8) -> (Vec<u8>, Vec<f32>) {
    let acts = [FloatActivation::LeakyRelu(0.01)];
    let (float, data) = FloatModel::random(seed, &[10, 16, 3], code_bits, &acts, 40);
    (float.quantize().unwrap(), data)
}

proptest! {
    #[test]
    fn packing_round_trips_every_width(bits in 1u8..=16, raw in prop::collection::vec(any::<u16>(), 0..200)) {
        let half = 1i32 << (bits - 1);
        let codes: Vec<i16> = raw.iter().map(|&r| (i32::from(r) % (2 * half) - half) as i16).collect();
        let mut buf = vec![0xAAu8; (codes.len() * usize::from(bits)).div_ceil(8)];
        let mut writer = BitWriter::new(&mut buf);
        write_codes(&mut writer, &codes, bits).unwrap();
        // Exactly bits * count bits, rounded up to bytes: a 3-bit code costs 3 bits.
        prop_assert_eq!(writer.byte_len(), (codes.len() * usize::from(bits)).div_ceil(8));
        let mut back = vec![0i16; codes.len()];
        read_codes(&mut BitReader::new(&buf), &mut back, bits).unwrap();
        prop_assert_eq!(back, codes);
    }

    #[test]
    fn streams_round_trip(seed in any::<u64>(), bits in 1u8..=16, frames in 0usize..40, per_block in 1u32..9) {
        let (blob, data) = small_model(seed, bits);
        let model = HostModel::from_bytes(&blob).unwrap();
        let frames = &data[..frames * 10];
        let stream = encode_stream(&model, frames, DType::F64, per_block);
        let decoded = decode_stream(&model, &stream).unwrap();
        // Same values as frame-by-frame decoding of the frame-by-frame codes.
        let mut expected = Vec::new();
        let (mut codes, mut out) = (vec![0i16; 3], vec![0f32; 10]);
        for frame in frames.chunks_exact(10) {
            model.encode_frame(frame, &mut codes).unwrap();
            model.decode_frame(&codes, &mut out).unwrap();
            expected.extend_from_slice(&out);
        }
        prop_assert_eq!(decoded.len(), expected.len());
        prop_assert!(decoded.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
        let header = StreamHeader::read(&stream).unwrap();
        prop_assert_eq!(header.frame_count, (frames.len() / 10) as u64);
        prop_assert_eq!(header.shape(), &[(frames.len() / 10) as u64, 10][..]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = HostModel::from_bytes(&bytes);
        let _ = EdgeModel::from_bytes(&bytes);
        let (blob, _) = small_model(1, 5);
        let model = HostModel::from_bytes(&blob).unwrap();
        let _ = decode_stream(&model, &bytes);
        let _ = StreamHeader::read(&bytes);
        let _ = read_block(&model, &bytes, 0);
    }

    /// Mutations behind a repaired model id reach postcard and the validator.
    #[test]
    fn mutated_blobs_with_repaired_id_never_panic(
        seed in 0u64..4,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let (mut blob, data) = small_model(seed, 7);
        for (at, value) in edits {
            let i = MODEL_HEADER_LEN + at % (blob.len() - MODEL_HEADER_LEN);
            blob[i] = value;
        }
        if cut % 3 == 0 {
            blob.truncate(MODEL_HEADER_LEN + cut % (blob.len() - MODEL_HEADER_LEN));
        }
        let id = model_id(&blob[MODEL_HEADER_LEN..]);
        blob[8..16].copy_from_slice(&id.to_le_bytes());
        let loaded = HostModel::from_bytes(&blob);
        if let Ok(model) = loaded {
            // A blob that validates must run without panicking on any input.
            let mut codes = vec![0i16; model.latent_len()];
            let mut out = vec![0f32; model.output_len()];
            let n = model.input_len();
            for frame in data.chunks_exact(10).take(4) {
                if n == 10 {
                    let _ = model.encode_frame(frame, &mut codes);
                }
                let _ = model.decode_frame(&codes, &mut out);
            }
        };
    }

    /// Mutations behind repaired CRCs reach the block decoder.
    #[test]
    fn mutated_blocks_with_repaired_crc_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let (blob, data) = small_model(3, 6);
        let model = HostModel::from_bytes(&blob).unwrap();
        let mut stream = encode_stream(&model, &data[..200], DType::F64, 20);
        let block = &mut stream[STREAM_HEADER_LEN..];
        let crc_at = block.len() - 4;
        for (at, value) in edits {
            block[at % crc_at] = value;
        }
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&block[..crc_at]);
        block[crc_at..].copy_from_slice(&crc.to_le_bytes());
        let _ = decode_stream(&model, &stream);
    }
}

#[test]
fn every_bit_flip_in_a_stream_is_detected() {
    let (blob, data) = small_model(11, 6);
    let model = HostModel::from_bytes(&blob).unwrap();
    let stream = encode_stream(&model, &data[..120], DType::F64, 5);
    let clean = decode_stream(&model, &stream).unwrap();
    assert_eq!(clean.len(), 120);
    let mut detected = 0;
    for bit in 0..stream.len() * 8 {
        let mut bad = stream.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = decode_stream(&model, &bad).expect_err("a flipped bit went unnoticed");
        let byte = bit / 8;
        if byte < 4 {
            assert_eq!(err, Error::BadMagic);
        } else if byte < 6 {
            assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err:?}");
        } else if byte < STREAM_HEADER_LEN {
            assert_eq!(err, Error::CrcMismatch { block: None });
        } else {
            // Payload and CRC bytes fail the CRC; a damaged block header may instead
            // disagree with itself (frame count vs payload length).
            let ok = matches!(err, Error::CrcMismatch { block: Some(_) })
                || matches!(err, Error::LengthMismatch { what, .. } if what.contains("block"));
            assert!(ok, "byte {byte}: {err:?}");
        }
        detected += 1;
    }
    assert_eq!(detected, stream.len() * 8);
    eprintln!(
        "stream: {detected} of {} bit flips detected",
        stream.len() * 8
    );
}

#[test]
fn every_truncation_of_a_stream_is_detected() {
    let (blob, data) = small_model(12, 9);
    let model = HostModel::from_bytes(&blob).unwrap();
    let stream = encode_stream(&model, &data[..150], DType::F64, 4);
    for len in 0..stream.len() {
        let err = decode_stream(&model, &stream[..len]).expect_err("truncation went unnoticed");
        assert_eq!(err, Error::Truncated, "cut at {len}");
    }
    eprintln!("stream: {0} of {0} truncations detected", stream.len());
}

#[test]
fn trailing_bytes_and_wrong_counts_are_refused() {
    let (blob, data) = small_model(13, 8);
    let model = HostModel::from_bytes(&blob).unwrap();
    let mut stream = encode_stream(&model, &data[..100], DType::F64, 3);
    stream.push(0);
    assert_eq!(decode_stream(&model, &stream), Err(Error::TrailingBytes));
    stream.pop();
    // Announce fewer frames than the blocks hold.
    let mut header = StreamHeader::read(&stream).unwrap();
    header.frame_count = 7;
    header.write(&mut stream).unwrap();
    assert!(matches!(
        decode_stream(&model, &stream),
        Err(Error::FrameCountMismatch { header: 7, .. })
    ));
}

#[test]
fn a_stream_from_another_model_is_refused() {
    let (blob_a, data) = small_model(21, 8);
    let (blob_b, _) = small_model(22, 8);
    let a = HostModel::from_bytes(&blob_a).unwrap();
    let b = HostModel::from_bytes(&blob_b).unwrap();
    let stream = encode_stream(&a, &data[..50], DType::F64, 8);
    assert_eq!(
        decode_stream(&b, &stream),
        Err(Error::WrongModel {
            expected: b.id(),
            found: a.id()
        })
    );
}

#[test]
fn blocks_of_another_kind_are_not_read_as_latent_codes() {
    // A residual (or parameters) block in a fixed-rate stream, CRC intact and with a frame
    // count its length does not back: refused, never decoded as codes.
    let (blob, data) = small_model(24, 8);
    let model = HostModel::from_bytes(&blob).unwrap();
    let stream = encode_stream(&model, &data[..50], DType::F64, 8);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let (_, len) = read_block(&model, &stream[STREAM_HEADER_LEN..], 0).unwrap();
    let end = STREAM_HEADER_LEN + len;
    for (kind, frames) in [(2u8, 0u32), (3, 1), (3, u32::MAX)] {
        let mut bad = stream.clone();
        bad[STREAM_HEADER_LEN] = kind;
        bad[STREAM_HEADER_LEN + 1..STREAM_HEADER_LEN + 5].copy_from_slice(&frames.to_le_bytes());
        let sum = crc.checksum(&bad[STREAM_HEADER_LEN..end - 4]);
        bad[end - 4..end].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            decode_stream(&model, &bad),
            Err(Error::Invalid("not a block of latent codes")),
            "kind {kind}, {frames} frames"
        );
        let (block, _) = read_block(&model, &bad[STREAM_HEADER_LEN..], 0).unwrap();
        assert_eq!(
            decode_block(&model, &block, &mut []),
            Err(Error::Invalid("not a block of latent codes"))
        );
    }
}

#[test]
fn unknown_versions_and_block_kinds_are_refused() {
    let (blob, data) = small_model(23, 8);
    let model = HostModel::from_bytes(&blob).unwrap();
    let mut stream = encode_stream(&model, &data[..50], DType::F64, 8);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    // Block kind 9 with a valid CRC.
    let mut kinded = stream.clone();
    kinded[STREAM_HEADER_LEN] = 9;
    let (_, len) = read_block(&model, &stream[STREAM_HEADER_LEN..], 0).unwrap();
    let end = STREAM_HEADER_LEN + len;
    let sum = crc.checksum(&kinded[STREAM_HEADER_LEN..end - 4]);
    kinded[end - 4..end].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(
        decode_stream(&model, &kinded),
        Err(Error::UnknownBlockKind(9))
    );
    // Version 2 of the stream.
    stream[4] = 2;
    assert_eq!(
        decode_stream(&model, &stream),
        Err(Error::UnsupportedVersion { found: 2 })
    );
    let mut blob2 = blob.clone();
    blob2[4] = 7;
    assert_eq!(
        HostModel::from_bytes(&blob2).unwrap_err(),
        Error::UnsupportedVersion { found: 7 }
    );
}

#[test]
fn block_api_matches_the_streaming_encoder() {
    let (blob, data) = small_model(24, 5);
    let model = HostModel::from_bytes(&blob).unwrap();
    let frames = &data[..120];
    let stream = encode_stream(&model, frames, DType::F64, 12);
    let mut block = vec![0u8; 4096];
    let len = encode_block(&model, frames, &mut block).unwrap();
    assert_eq!(&stream[STREAM_HEADER_LEN..], &block[..len]);
    let (parsed, used) = read_block(&model, &block[..len], 0).unwrap();
    assert_eq!(used, len);
    assert_eq!(parsed.payload.len(), len - BLOCK_HEADER_LEN - 4);
    let mut out = vec![0f32; 120];
    decode_block(&model, &parsed, &mut out).unwrap();
    assert_eq!(out, decode_stream(&model, &stream).unwrap());
}

#[test]
fn every_bit_flip_and_truncation_of_a_blob_is_detected() {
    let (blob, _) = small_model(31, 4);
    HostModel::from_bytes(&blob).unwrap();
    for bit in 0..blob.len() * 8 {
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = HostModel::from_bytes(&bad).expect_err("a flipped bit went unnoticed");
        let expected_kind = match bit / 8 {
            0..=3 => matches!(err, Error::BadMagic),
            4..=5 => matches!(err, Error::UnsupportedVersion { .. }),
            // Bits 0 and 1 of the flags announce an exact-columns or corrections section this
            // blob lacks.
            6 if bit % 8 < 2 => matches!(err, Error::Truncated),
            6..=7 => matches!(err, Error::Invalid(_)),
            _ => matches!(err, Error::ModelIdMismatch),
        };
        assert!(expected_kind, "bit {bit}: {err:?}");
    }
    for len in 0..blob.len() {
        let err = HostModel::from_bytes(&blob[..len]).expect_err("truncation went unnoticed");
        assert!(
            matches!(err, Error::Truncated | Error::ModelIdMismatch),
            "cut at {len}: {err:?}"
        );
    }
    eprintln!(
        "model blob: {} of {} bit flips and {2} of {2} truncations detected",
        blob.len() * 8,
        blob.len() * 8,
        blob.len()
    );
}

#[test]
fn capacities_are_checked_at_load_time() {
    let acts = [FloatActivation::Relu];
    let (wide, _) = FloatModel::random(41, &[10, 100, 4], 8, &acts, 20);
    let blob = wide.quantize().unwrap();
    assert!(HostModel::from_bytes(&blob).is_ok());
    assert_eq!(
        EdgeModel::from_bytes(&blob).unwrap_err(),
        Error::CapacityExceeded {
            what: Capacity::Width,
            needed: 100,
            capacity: 64
        }
    );
    let (deep, _) = FloatModel::random(42, &[8, 8, 8, 8, 8, 4], 8, &acts, 20);
    let blob = deep.quantize().unwrap();
    assert_eq!(
        EdgeModel::from_bytes(&blob).unwrap_err(),
        Error::CapacityExceeded {
            what: Capacity::Layers,
            needed: 10,
            capacity: 8
        }
    );
}

#[test]
fn frame_api_errors_are_typed() {
    let (blob, _) = small_model(51, 4);
    let model = HostModel::from_bytes(&blob).unwrap();
    let mut codes = [0i16; 3];
    assert_eq!(
        model.encode_frame(&[0.0; 9], &mut codes),
        Err(Error::FrameLength {
            expected: 10,
            found: 9
        })
    );
    let mut frame = [1.0f32; 10];
    frame[4] = f32::NAN;
    assert_eq!(
        model.encode_frame(&frame, &mut codes),
        Err(Error::NonFiniteInput { index: 4 })
    );
    let mut out = [0f32; 10];
    assert_eq!(
        model.decode_frame(&[0, 8, 0], &mut out),
        Err(Error::CodeOutOfRange { index: 1 })
    );
    let header = StreamHeader::new(&model, DType::F32, &[5, 10]).unwrap();
    let mut tiny = [0u8; 10];
    assert!(matches!(
        Encoder::new(&model, header, 4, &mut tiny),
        Err(Error::BufferTooSmall { .. })
    ));
}
