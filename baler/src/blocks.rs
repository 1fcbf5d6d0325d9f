//! Reading a stream's blocks from a file, a bounded batch at a time (shared by the
//! fixed-rate and the error-bounded decompress).

use baler_codec::stream::{BLOCK_HEADER_LEN, BLOCK_TRAILER_LEN};
use baler_codec::Error;
use std::io::Read;

/// Largest row (values) a stream may declare: a row's working memory is allocated up front,
/// so a crafted header must not ask for absurd rows.
pub(crate) const MAX_ROW_VALUES: usize = 1 << 27;

/// Values per row of a stream header's `shape` (every dimension but the first), or `None`
/// when the shape is empty or the product overflows (the header is untrusted).
pub(crate) fn checked_row_len(shape: &[usize]) -> Option<usize> {
    shape
        .get(1..)?
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Reads up to `count` blocks with `next` (given each block's index within the batch);
/// fewer at the end of the stream.
pub(crate) fn read_batch<E>(
    count: usize,
    mut next: impl FnMut(u32) -> Result<Option<Vec<u8>>, E>,
) -> Result<Vec<Vec<u8>>, E> {
    let mut batch = Vec::with_capacity(count);
    while batch.len() < count {
        match next(batch.len() as u32)? {
            Some(block) => batch.push(block),
            None => break,
        }
    }
    Ok(batch)
}

/// Reads up to a block header into `head`; returns how many bytes came (0 at a clean end).
pub(crate) fn read_block_head<R: Read>(
    reader: &mut R,
    head: &mut [u8; BLOCK_HEADER_LEN],
) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Error::Truncated),
        }
    }
    Ok(filled)
}

/// Reads the payload (`payload` bytes, as its header says) and CRC of the block whose header is
/// `head`; returns the whole block. The buffer grows with the bytes that actually arrive, so a
/// damaged length in a short file cannot make us allocate gigabytes.
pub(crate) fn read_block_rest<R: Read>(
    reader: &mut R,
    head: &[u8; BLOCK_HEADER_LEN],
    payload: usize,
) -> Result<Vec<u8>, Error> {
    let len = BLOCK_HEADER_LEN + payload + BLOCK_TRAILER_LEN;
    let mut block = Vec::with_capacity(len.min(1 << 20));
    block.extend_from_slice(head);
    let rest = (len - BLOCK_HEADER_LEN) as u64;
    let read = reader
        .take(rest)
        .read_to_end(&mut block)
        .map_err(|_| Error::Truncated)?;
    if read as u64 != rest {
        return Err(Error::Truncated);
    }
    Ok(block)
}

/// Reads the next block of an error-bounded stream; its payload may be at most `max_payload`
/// bytes (a damaged length must not make us allocate or read garbage).
pub(crate) fn next_bounded_block<R: Read>(
    reader: &mut R,
    max_payload: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let mut head = [0u8; BLOCK_HEADER_LEN];
    match read_block_head(reader, &mut head)? {
        0 => return Ok(None),
        BLOCK_HEADER_LEN => {}
        _ => return Err(Error::Truncated),
    }
    let payload = payload_len(&head);
    if payload > max_payload {
        return Err(Error::LengthMismatch {
            what: "block payload (damaged block header)",
            expected: max_payload,
            found: payload,
        });
    }
    read_block_rest(reader, &head, payload).map(Some)
}

/// The payload length a block header announces.
pub(crate) fn payload_len(head: &[u8; BLOCK_HEADER_LEN]) -> usize {
    baler_codec::stream::block_header_fields(head).map_or(0, |(_, _, len)| len)
}

/// The decode loop of both stream kinds: reads blocks in batches of `batch` with `next`
/// (given the stream's block index), decodes each batch in parallel with `decode` (the block's
/// bytes and index; it returns the block's frames and values), and hands the values in order to
/// `take`. The frames must add up to `frame_count`: more is a mismatch, fewer a truncation.
/// `progress` is told the frames decoded so far and the total.
pub(crate) fn decode_batches<T: Send>(
    batch: usize,
    first_index: u32,
    frame_count: u64,
    mut next: impl FnMut(u32) -> Result<Option<Vec<u8>>, Error>,
    decode: impl Fn(&[u8], u32) -> Result<(u64, T), Error> + Sync,
    mut take: impl FnMut(T) -> Result<(), crate::Error>,
    progress: &dyn Fn(u64, u64),
) -> Result<(), crate::Error> {
    use rayon::prelude::*;
    let (mut frames, mut index) = (0u64, first_index);
    loop {
        let blocks = read_batch(batch, |i| next(index + i)).map_err(crate::Error::codec)?;
        if blocks.is_empty() {
            break;
        }
        let decoded: Result<Vec<(u64, T)>, Error> = blocks
            .par_iter()
            .enumerate()
            .map(|(i, bytes)| decode(bytes, index + i as u32))
            .collect();
        index += blocks.len() as u32;
        for (count, values) in decoded.map_err(crate::Error::codec)? {
            frames += count;
            if frames > frame_count {
                return Err(crate::Error::codec(Error::FrameCountMismatch {
                    header: frame_count,
                    blocks: frames,
                }));
            }
            take(values)?;
        }
        progress(frames, frame_count);
    }
    if frames < frame_count {
        return Err(crate::Error::codec(Error::Truncated));
    }
    Ok(())
}
