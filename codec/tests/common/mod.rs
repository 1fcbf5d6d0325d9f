//! Stream helpers shared by the codec's integration tests.

use baler_codec::model::spec::{model_id, MODEL_HEADER_LEN};
use baler_codec::{DType, Decoder, Encoder, Error, HostModel, StreamHeader};

/// Encodes `frames` (whole frames of the model's width) with the streaming encoder,
/// `per_block` frames per block, under a header that says `dtype`.
pub fn encode_stream(
    model: &HostModel<'_>,
    frames: &[f32],
    dtype: DType,
    per_block: u32,
) -> Vec<u8> {
    let n = model.input_len();
    let shape = [(frames.len() / n) as u64, n as u64];
    let header = StreamHeader::new(model, dtype, &shape).unwrap();
    let mut out = vec![0u8; 1 << 16];
    let mut encoder = Encoder::new(model, header, per_block, &mut out).unwrap();
    for frame in frames.chunks_exact(n) {
        encoder.push_frame(frame).unwrap();
    }
    let len = encoder.finish().unwrap();
    out.truncate(len);
    out
}

/// Decodes a whole stream, returning the frames or the first error.
pub fn decode_stream(model: &HostModel<'_>, bytes: &[u8]) -> Result<Vec<f32>, Error> {
    let mut decoder = Decoder::new(model, bytes)?;
    let mut frame = vec![0f32; model.input_len()];
    let mut all = Vec::new();
    while decoder.next_frame(&mut frame)? {
        all.extend_from_slice(&frame);
    }
    Ok(all)
}

/// Replaces a blob's trailing section (everything after `keep` bytes) by `section`, with the
/// header's flags and model id made consistent, so only the section is wrong.
#[allow(dead_code)] // not every test file damages sections
pub fn with_section(blob: &[u8], keep: usize, section: &[u8], flags: u16) -> Vec<u8> {
    let mut out = blob[..keep].to_vec();
    out.extend_from_slice(section);
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    let id = model_id(&out[MODEL_HEADER_LEN..]);
    out[8..16].copy_from_slice(&id.to_le_bytes());
    out
}
