//! Golden vectors: a fixed model blob and frames with their expected latent codes, stream
//! bytes and decoded output bits. The firmware and the CLI assert the same files, so every
//! platform provably decodes to the same bits.
//!
//! Regenerate (only when the formats change on purpose, with a version bump):
//! `BALER_BLESS_GOLDEN=1 cargo test --test golden`.

use baler_codec::model::quantize::{FloatActivation, FloatModel};
use baler_codec::{DType, Decoder, EdgeModel, Encoder, HostModel, StreamHeader};
use std::path::PathBuf;

const FRAMES: usize = 16;
const FRAMES_PER_BLOCK: u32 = 5;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(golden(name)).unwrap_or_else(|e| panic!("tests/golden/{name}: {e}"))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn bless() {
    let acts = [
        FloatActivation::Tanh,
        FloatActivation::LeakyRelu(0.01),
        FloatActivation::LeakyRelu(0.01),
    ];
    let (float, data) = FloatModel::random(2026, &[48, 32, 16], 6, &acts, 256);
    let blob = float.quantize().unwrap();
    let mut frames: Vec<f32> = data[..FRAMES * 48].to_vec();
    // The last frame is far out of the calibrated range: it exercises saturation.
    for v in &mut frames[(FRAMES - 1) * 48..] {
        *v *= 50.0;
    }
    std::fs::write(golden("edge_model.blob"), &blob).unwrap();
    let bytes: Vec<u8> = frames.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(golden("frames.f32"), bytes).unwrap();
    let (codes, stream, decoded) = run(&blob, &frames);
    std::fs::write(golden("codes.i16"), codes).unwrap();
    std::fs::write(golden("stream.baler"), stream).unwrap();
    std::fs::write(golden("decoded.f32"), decoded).unwrap();
    let model = EdgeModel::from_bytes(&blob).unwrap();
    std::fs::write(golden("model_id.txt"), format!("{:016x}\n", model.id())).unwrap();
}

/// Runs the codec on the golden inputs: latent codes (LE i16), stream bytes, decoded f32 bytes.
fn run(blob: &[u8], frames: &[f32]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let model = EdgeModel::from_bytes(blob).unwrap();
    let (n, z) = (model.input_len(), model.latent_len());
    let mut codes = Vec::new();
    let mut frame_codes = vec![0i16; z];
    for frame in frames.chunks_exact(n) {
        model.encode_frame(frame, &mut frame_codes).unwrap();
        codes.extend(frame_codes.iter().flat_map(|c| c.to_le_bytes()));
    }
    let header = StreamHeader::new(&model, DType::F32, &[FRAMES as u64, n as u64]).unwrap();
    let mut stream = vec![0u8; 4096];
    let mut encoder = Encoder::new(&model, header, FRAMES_PER_BLOCK, &mut stream).unwrap();
    for frame in frames.chunks_exact(n) {
        encoder.push_frame(frame).unwrap();
    }
    let len = encoder.finish().unwrap();
    stream.truncate(len);
    let mut decoder = Decoder::new(&model, &stream).unwrap();
    let mut decoded = Vec::new();
    let mut out = vec![0f32; n];
    while decoder.next_frame(&mut out).unwrap() {
        decoded.extend(out.iter().flat_map(|v| v.to_le_bytes()));
    }
    (codes, stream, decoded)
}

#[test]
fn golden_vectors_match_bit_for_bit() {
    if std::env::var_os("BALER_BLESS_GOLDEN").is_some() {
        bless();
    }
    let blob = read("edge_model.blob");
    let frames = f32s(&read("frames.f32"));
    assert_eq!(frames.len(), FRAMES * 48);
    let model = EdgeModel::from_bytes(&blob).unwrap();
    let id = String::from_utf8(read("model_id.txt")).unwrap();
    assert_eq!(format!("{:016x}", model.id()), id.trim());
    assert_eq!(model.code_bits(), 6);
    assert_eq!((model.input_len(), model.latent_len()), (48, 16));

    let (codes, stream, decoded) = run(&blob, &frames);
    assert_eq!(codes, read("codes.i16"), "latent codes differ");
    assert_eq!(stream, read("stream.baler"), "stream bytes differ");
    assert_eq!(decoded, read("decoded.f32"), "decoded bits differ");

    // Capacity does not change the bits: the host-sized model gives the same stream.
    let host = HostModel::from_bytes(&blob).unwrap();
    let mut decoder = Decoder::new(&host, &stream).unwrap();
    let mut out = vec![0f32; 48];
    let mut host_decoded = Vec::new();
    while decoder.next_frame(&mut out).unwrap() {
        host_decoded.extend(out.iter().flat_map(|v| v.to_le_bytes()));
    }
    assert_eq!(host_decoded, decoded);
}

#[test]
fn golden_decoded_values_are_finite_and_saturate_in_range() {
    let blob = read("edge_model.blob");
    let frames = f32s(&read("frames.f32"));
    let decoded = f32s(&read("decoded.f32"));
    let model = EdgeModel::from_bytes(&blob).unwrap();
    // The golden model is random, not trained: it does not reconstruct the data, but its
    // decoded values are finite and the saturated frame stays within the output range.
    assert!(decoded.iter().all(|v| v.is_finite()));
    assert_eq!(decoded.len(), frames.len());
    let gains = model.head().output_gain;
    let offsets = model.head().output_offset;
    for (i, v) in decoded.iter().enumerate() {
        let (g, o) = (gains.get(i % 48).unwrap(), offsets.get(i % 48).unwrap());
        assert!(
            (v - o).abs() <= 32767.0 * g.abs() * 1.0001,
            "value {i} out of range"
        );
    }
}
