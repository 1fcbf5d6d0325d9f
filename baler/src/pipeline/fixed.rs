//! The fixed-rate compress and decompress drivers: every frame becomes the model's latent
//! codes (a fixed number of bits per frame). Chunks of rows are encoded block by block in
//! parallel and written as they come, so memory stays bounded for any input size.

use super::bounded::Opener;
use crate::blocks::MAX_ROW_VALUES;
use crate::blocks::{
    checked_row_len, decode_batches, payload_len, read_block_head, read_block_rest,
};
use crate::data::{check_f32, Header};
use crate::rows::RowOutput;
use crate::tiles::tiling_for;
use crate::Error;
use baler_codec::stream::{
    block_len, decode_block, encode_block, read_block, BLOCK_HEADER_LEN, STREAM_HEADER_LEN,
};
use baler_codec::{Decoder, HostModel, StreamHeader};
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Blocks read, encoded or decoded per batch: bounds memory at about
/// `BATCH_BLOCKS x FRAMES_PER_BLOCK` frames.
const BATCH_BLOCKS: usize = 16;

/// Frames per stream block: the unit of parallel work and of damage containment.
pub const FRAMES_PER_BLOCK: usize = 1024;

/// What a fixed-rate compress wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedOutcome {
    /// Raw size of the input (its element type times its values).
    pub raw_bytes: usize,
    /// Size of the stream.
    pub stream_bytes: usize,
    /// Rows of the input.
    pub rows: usize,
}

/// Compresses the input with `model` into `out`. `input` names the input in messages;
/// `progress` is told the rows coded so far and the total.
pub fn compress<W: Write + Seek>(
    model: &HostModel<'_>,
    open: &Opener<'_>,
    input: &Path,
    out: &mut W,
    progress: &dyn Fn(u64, u64),
) -> Result<FixedOutcome, Error> {
    let n = model.input_len();
    let mut source = open(FRAMES_PER_BLOCK * BATCH_BLOCKS * n)?;
    let meta = source.header().clone();
    let frame_shape: Vec<usize> = model.frame_shape().map(|d| d as usize).collect();
    let tiling = tiling_for(&meta.shape, &frame_shape);
    let frame_len = tiling.map_or(meta.row_len(), |t| t.tile_len());
    if frame_len != n {
        return Err(Error::input(format!(
            "frames of {frame_len} values, but the model expects {n}"
        )));
    }
    let row_len = meta.row_len();
    let total_rows = meta.shape.first().copied().unwrap_or(0) as u64;
    progress(0, total_rows);
    let start = out.stream_position().map_err(Error::output)?;
    // The header is rewritten at the end, when the row count is known (CSV).
    out.write_all(&[0u8; STREAM_HEADER_LEN])
        .map_err(Error::output)?;
    let (mut rows, mut frames, mut total) = (0usize, 0u64, STREAM_HEADER_LEN);
    while let Some(chunk) = source.next_chunk_f64()? {
        check_f32(input, &chunk, rows, &meta)?;
        let chunk: Vec<f32> = chunk.into_iter().map(|v| v as f32).collect();
        let values = match tiling {
            Some(t) => Cow::Owned(t.split(&chunk)),
            None => Cow::Borrowed(&chunk[..]),
        };
        let blocks: Result<Vec<Vec<u8>>, baler_codec::Error> = values
            .par_chunks(FRAMES_PER_BLOCK * n)
            .map(|part| {
                let mut out = vec![0u8; block_len(model, part.len() / n).unwrap_or(0)];
                let len = encode_block(model, part, &mut out)?;
                out.truncate(len);
                Ok(out)
            })
            .collect();
        for block in blocks.map_err(Error::codec)? {
            out.write_all(&block).map_err(Error::output)?;
            total += block.len();
        }
        frames += (values.len() / n) as u64;
        rows += chunk.len() / row_len;
        progress(rows as u64, total_rows);
    }
    if rows == 0 {
        return Err(Error::input("no data rows"));
    }
    let mut shape: Vec<u64> = meta.shape.iter().map(|&d| d as u64).collect();
    shape[0] = rows as u64;
    let mut header = StreamHeader::new(model, meta.dtype, &shape).map_err(Error::codec)?;
    header.frame_count = frames;
    let mut head = [0u8; STREAM_HEADER_LEN];
    header.write(&mut head).map_err(Error::codec)?;
    let end = out.stream_position().map_err(Error::output)?;
    out.seek(SeekFrom::Start(start)).map_err(Error::output)?;
    out.write_all(&head).map_err(Error::output)?;
    out.seek(SeekFrom::Start(end)).map_err(Error::output)?;
    Ok(FixedOutcome {
        raw_bytes: rows * row_len * meta.dtype.size(),
        stream_bytes: total,
        rows,
    })
}

/// Reads the next raw block (header, payload, CRC) from `reader`; `None` at a clean end. The
/// block header is checked against the model before its payload is read, so a damaged length
/// cannot make us allocate or read garbage.
fn next_raw_block<R: Read>(
    reader: &mut R,
    model: &HostModel<'_>,
    index: u32,
) -> Result<Option<Vec<u8>>, baler_codec::Error> {
    let mut head = [0u8; BLOCK_HEADER_LEN];
    let filled = read_block_head(reader, &mut head)?;
    if filled == 0 {
        return Ok(None);
    }
    // With only the header, a consistent block reads as truncated; anything else is damage.
    match read_block(model, &head[..filled], index) {
        Err(baler_codec::Error::Truncated) if filled == head.len() => {}
        Err(e) => return Err(e),
        Ok(_) => return Err(baler_codec::Error::Truncated),
    }
    if head[0] != 1 {
        return Err(baler_codec::Error::UnknownBlockKind(head[0]));
    }
    read_block_rest(reader, &head, payload_len(&head)).map(Some)
}

/// The shape, element type and names of what a fixed-rate stream decodes to.
pub fn output_header(model: &HostModel<'_>, header: &StreamHeader) -> Header {
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let names = if shape.len() == 2 {
        model.names().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    Header {
        shape,
        dtype: header.dtype,
        names,
    }
}

/// Reads and checks the header of a fixed-rate stream (`head`, its first
/// [`STREAM_HEADER_LEN`] bytes) for `model`, before anything is allocated for it: the shape
/// must agree with the model's frames and the frame count, and `stream_len` (the stream's
/// whole length) must hold those frames, which bounds every size below by the stream's size.
pub fn check_header(
    model: &HostModel<'_>,
    head: &[u8],
    stream_len: u64,
) -> Result<StreamHeader, Error> {
    let header = *Decoder::new(model, head).map_err(Error::codec)?.header();
    let n = model.output_len();
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let frame_shape: Vec<usize> = model.frame_shape().map(|d| d as usize).collect();
    let tiling = tiling_for(&shape, &frame_shape);
    // The header's shape is untrusted: its value count, and the tiles of a tiled frame, must
    // not overflow.
    let too_large = || Error::input(format!("header shape {shape:?} is too large"));
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(too_large)?;
    let frames_per_row = match tiling {
        None => 1,
        Some(t) => {
            let (gy, gx) = t.grid();
            let tiles = gy.checked_mul(gx).ok_or_else(too_large)?;
            tiles.checked_mul(t.tile_len()).ok_or_else(too_large)?;
            tiles
        }
    };
    let row_len = checked_row_len(&shape).ok_or_else(too_large)?;
    let frames_match = shape
        .first()
        .and_then(|&rows| rows.checked_mul(frames_per_row))
        .is_some_and(|frames| frames as u64 == header.frame_count);
    if shape.len() < 2 || (tiling.is_none() && row_len != n) || !frames_match {
        return Err(Error::input(format!(
            "header shape {shape:?} does not match {} frames of the model's {n} values",
            header.frame_count
        )));
    }
    if row_len > MAX_ROW_VALUES {
        return Err(Error::codec(baler_codec::Error::Invalid(
            "rows of more than 2^27 values",
        )));
    }
    let packed = usize::try_from(header.frame_count)
        .ok()
        .and_then(|frames| model.packed_len(frames));
    if packed.is_none_or(|bytes| bytes as u64 > stream_len.saturating_sub(STREAM_HEADER_LEN as u64))
    {
        return Err(Error::codec(baler_codec::Error::Truncated));
    }
    Ok(header)
}

/// Decodes the blocks of a fixed-rate stream (its header checked by [`check_header`]) into
/// `sink`; returns the values written. `progress` is told the frames decoded so far and the
/// total.
pub fn decompress<R: Read>(
    model: &HostModel<'_>,
    header: &StreamHeader,
    reader: &mut R,
    sink: &mut dyn RowOutput,
    progress: &dyn Fn(u64, u64),
) -> Result<usize, Error> {
    let n = model.output_len();
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let frame_shape: Vec<usize> = model.frame_shape().map(|d| d as usize).collect();
    let tiling = tiling_for(&shape, &frame_shape);
    let expected_values: usize = shape.iter().product();
    let per_frame = tiling.map_or(n, |t| {
        let (gy, gx) = t.grid();
        gy * gx * t.tile_len()
    });
    let mut written = 0usize;
    let mut pending: Vec<f32> = Vec::new();
    decode_batches(
        BATCH_BLOCKS,
        0,
        header.frame_count,
        |index| next_raw_block(reader, model, index),
        |bytes, index| {
            let (block, _) = read_block(model, bytes, index)?;
            let mut out = vec![0f32; block.frames as usize * n];
            decode_block(model, &block, &mut out)?;
            Ok((u64::from(block.frames), out))
        },
        |values| {
            pending.extend_from_slice(&values);
            let whole = pending.len() / per_frame * per_frame;
            let rows: Vec<f32> = match tiling {
                Some(t) => t.join(&pending[..whole]),
                None => pending[..whole].to_vec(),
            };
            pending.drain(..whole);
            written += rows.len();
            sink.push_f32(rows)
        },
        progress,
    )?;
    if written != expected_values || !pending.is_empty() {
        return Err(Error::input(format!(
            "header shape {shape:?} does not match {written} decoded values"
        )));
    }
    Ok(written)
}
