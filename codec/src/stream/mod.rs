//! The compressed stream: a CRC-protected header, then blocks of encoded frames, each with its
//! own CRC32. See `FORMAT.md` for the byte layout.

pub mod codes;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::stream::codes::{read_codes, write_codes, BitReader, BitWriter};

/// Magic bytes at the start of every stream.
pub const STREAM_MAGIC: [u8; 4] = *b"BALS";
/// The stream format version this build writes and reads.
pub const STREAM_VERSION: u16 = 1;
/// Length of the stream header, CRC included.
pub const STREAM_HEADER_LEN: usize = 68;
/// Bytes before a block's payload: kind, frame count, payload length.
pub const BLOCK_HEADER_LEN: usize = 9;
/// Bytes after a block's payload: its CRC32.
pub const BLOCK_TRAILER_LEN: usize = 4;
/// Header flag: the stream is error-bounded (a [`BlockKind::BoundParams`] block, then
/// [`BlockKind::Residuals`] blocks).
pub const FLAG_ERROR_BOUNDED: u16 = 1;
/// Largest rank of the data shape a stream records.
pub const MAX_DATA_RANK: usize = 4;
/// Largest rank of an error-bounded stream's data: ranks above [`MAX_DATA_RANK`] carry their
/// whole shape in a [`BlockKind::Shape`] block (the header holds it folded to rank 3).
pub const MAX_ARRAY_RANK: usize = 8;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The element type of the original data, recorded so a decoder can write it back as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 16-bit signed integer (ADC counts).
    I16,
    /// 32-bit signed integer.
    I32,
}

impl DType {
    /// Bytes of one value of this type.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 => 8,
            DType::I16 => 2,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I16 => 3,
            DType::I32 => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Result<Self> {
        match code {
            1 => Ok(DType::F32),
            2 => Ok(DType::F64),
            3 => Ok(DType::I16),
            4 => Ok(DType::I32),
            _ => Err(Error::Invalid("stream dtype")),
        }
    }
}

/// What a block's payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// Fixed-rate latent codes, bit-packed, frame after frame.
    LatentCodes,
    /// The parameters of an error-bounded stream (see [`crate::bounded`]); frame count 0.
    BoundParams,
    /// Range-coded latent codes and quantized residuals of an error-bounded stream.
    Residuals,
    /// Quantized residuals of an error-bounded stream under per-block frequency tables
    /// (`codec/src/entropy/tabled.rs`).
    TabledResiduals,
    /// Field residuals as in [`BlockKind::TabledResiduals`], each value's context picked by
    /// the residual to its left and the rows before
    /// ([`crate::bounded::field::residual_activity`]): nothing in it needs a value of the row
    /// being decoded.
    TabledResidualContexts,
    /// Field residuals under per-block frequency tables as in [`BlockKind::TabledResiduals`],
    /// the values of the block's frames in multilevel interpolation order
    /// ([`crate::bounded::interpolate`]).
    Interpolated,
    /// The whole shape of data of rank 5 to [`MAX_ARRAY_RANK`], whose header holds it
    /// folded to rank 3; frame count 0, right after the header.
    Shape,
}

impl BlockKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            BlockKind::LatentCodes => 1,
            BlockKind::BoundParams => 2,
            BlockKind::Residuals => 3,
            BlockKind::TabledResiduals => 4,
            BlockKind::Shape => 5,
            BlockKind::TabledResidualContexts => 6,
            BlockKind::Interpolated => 7,
        }
    }

    fn from_code(code: u8) -> Result<Self> {
        match code {
            1 => Ok(BlockKind::LatentCodes),
            2 => Ok(BlockKind::BoundParams),
            3 => Ok(BlockKind::Residuals),
            4 => Ok(BlockKind::TabledResiduals),
            5 => Ok(BlockKind::Shape),
            6 => Ok(BlockKind::TabledResidualContexts),
            7 => Ok(BlockKind::Interpolated),
            other => Err(Error::UnknownBlockKind(other)),
        }
    }
}

/// The stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    /// Id of the model that encoded the stream (0: no model, an error-bounded model-free stream).
    pub model_id: u64,
    /// Flags: [`FLAG_ERROR_BOUNDED`] or 0.
    pub flags: u16,
    /// Total number of frames in the blocks.
    pub frame_count: u64,
    /// Values per frame (the model's input width).
    pub frame_len: u32,
    /// Element type of the original data.
    pub dtype: DType,
    /// Number of used entries in `shape`, 1..=4.
    pub rank: u8,
    /// Shape of the original data (unused entries are 0).
    pub shape: [u64; MAX_DATA_RANK],
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).ok_or(Error::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    let lo = u64::from(u32_at(b, at)?);
    let hi = u64::from(u32_at(b, at + 4)?);
    Ok(lo | (hi << 32))
}

impl StreamHeader {
    /// A header for data of the given shape, encoded by `model`; `frame_count` is filled in
    /// by [`Encoder::finish`].
    pub fn new<const L: usize, const W: usize>(
        model: &Model<'_, L, W>,
        dtype: DType,
        shape: &[u64],
    ) -> Result<Self> {
        if shape.is_empty() || shape.len() > MAX_DATA_RANK {
            return Err(Error::Misuse("data rank must be 1..=4"));
        }
        let mut dims = [0u64; MAX_DATA_RANK];
        dims[..shape.len()].copy_from_slice(shape);
        Ok(StreamHeader {
            model_id: model.id(),
            flags: 0,
            frame_count: 0,
            frame_len: u32::try_from(model.input_len()).map_err(|_| Error::Misuse("frame"))?,
            dtype,
            rank: shape.len() as u8,
            shape: dims,
        })
    }

    /// The used part of the shape.
    pub fn shape(&self) -> &[u64] {
        self.shape.get(..usize::from(self.rank)).unwrap_or(&[])
    }

    /// Writes the header (with its CRC) into the first [`STREAM_HEADER_LEN`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let h = out
            .get_mut(..STREAM_HEADER_LEN)
            .ok_or(Error::BufferTooSmall {
                needed: STREAM_HEADER_LEN,
            })?;
        h[0..4].copy_from_slice(&STREAM_MAGIC);
        h[4..6].copy_from_slice(&STREAM_VERSION.to_le_bytes());
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..16].copy_from_slice(&self.model_id.to_le_bytes());
        h[16..24].copy_from_slice(&self.frame_count.to_le_bytes());
        h[24..28].copy_from_slice(&self.frame_len.to_le_bytes());
        h[28] = self.dtype.code();
        h[29] = self.rank;
        h[30..32].copy_from_slice(&[0, 0]);
        for (i, d) in self.shape.iter().enumerate() {
            h[32 + 8 * i..40 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        let crc = CRC32.checksum(&h[..64]);
        h[64..68].copy_from_slice(&crc.to_le_bytes());
        Ok(STREAM_HEADER_LEN)
    }

    /// Reads and checks a header from the start of `bytes`.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        if bytes.get(0..4).ok_or(Error::Truncated)? != STREAM_MAGIC {
            return Err(Error::BadMagic);
        }
        let v = bytes.get(4..6).ok_or(Error::Truncated)?;
        let version = u16::from_le_bytes([v[0], v[1]]);
        if version != STREAM_VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let h = bytes.get(..STREAM_HEADER_LEN).ok_or(Error::Truncated)?;
        if CRC32.checksum(&h[..64]) != u32_at(h, 64)? {
            return Err(Error::CrcMismatch { block: None });
        }
        let flags = u16::from_le_bytes([h[6], h[7]]);
        if flags & !FLAG_ERROR_BOUNDED != 0 || h[30..32] != [0, 0] {
            return Err(Error::Invalid("stream header reserved bytes"));
        }
        let rank = h[29];
        if !(1..=MAX_DATA_RANK as u8).contains(&rank) {
            return Err(Error::Invalid("data rank must be 1..=4"));
        }
        let mut shape = [0u64; MAX_DATA_RANK];
        for (i, d) in shape.iter_mut().enumerate() {
            *d = u64_at(h, 32 + 8 * i)?;
            if i >= usize::from(rank) && *d != 0 {
                return Err(Error::Invalid("unused shape entries must be 0"));
            }
        }
        Ok(StreamHeader {
            model_id: u64_at(h, 8)?,
            flags,
            frame_count: u64_at(h, 16)?,
            frame_len: u32_at(h, 24)?,
            dtype: DType::from_code(h[28])?,
            rank,
            shape,
        })
    }
}

/// One block of a stream, CRC already checked.
#[derive(Debug, Clone, Copy)]
pub struct Block<'s> {
    /// Index of the block in the stream.
    pub index: u32,
    /// What the payload holds.
    pub kind: BlockKind,
    /// Frames in the block.
    pub frames: u32,
    /// The payload.
    pub payload: &'s [u8],
}

/// Reads the block starting at `bytes[0]`; returns it and the number of bytes it spans.
pub fn read_block<'s, const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    bytes: &'s [u8],
    index: u32,
) -> Result<(Block<'s>, usize)> {
    let kind = *bytes.first().ok_or(Error::Truncated)?;
    let frames = u32_at(bytes, 1)?;
    let payload_len = u32_at(bytes, 5)? as usize;
    // For a known kind the payload length follows from the frame count; checking that
    // first tells a damaged block header from a stream that was cut short.
    let known = BlockKind::from_code(kind).ok();
    if known == Some(BlockKind::LatentCodes) {
        let expected = model
            .packed_len(frames as usize)
            .ok_or(Error::Invalid("block frame count"))?;
        if expected != payload_len || frames == 0 {
            return Err(Error::LengthMismatch {
                what: "block payload (damaged block header)",
                expected,
                found: payload_len,
            });
        }
    }
    checked_block(bytes, index)
}

/// Writes the payload of a [`BlockKind::Shape`] block for `shape` (rank 5 to
/// [`MAX_ARRAY_RANK`]) into `out`: the rank u8, then each dimension u64; returns its length.
pub fn write_shape(shape: &[u64], out: &mut [u8]) -> Result<usize> {
    if !(MAX_DATA_RANK + 1..=MAX_ARRAY_RANK).contains(&shape.len()) {
        return Err(Error::Misuse("a shape block holds ranks 5 to 8"));
    }
    let len = 1 + 8 * shape.len();
    let out = out
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { needed: len })?;
    out[0] = shape.len() as u8;
    for (d, bytes) in shape.iter().zip(out[1..].chunks_exact_mut(8)) {
        bytes.copy_from_slice(&d.to_le_bytes());
    }
    Ok(len)
}

/// Reads the payload of a [`BlockKind::Shape`] block: the shape, which must fold to the
/// header's (its first and last dimensions, and the product of those between).
pub fn read_shape(payload: &[u8], header: &StreamHeader) -> Result<([u64; MAX_ARRAY_RANK], usize)> {
    let rank = usize::from(*payload.first().ok_or(Error::Truncated)?);
    if !(MAX_DATA_RANK + 1..=MAX_ARRAY_RANK).contains(&rank) {
        return Err(Error::Invalid("shape block rank"));
    }
    if payload.len() != 1 + 8 * rank {
        return Err(Error::Invalid("shape block length"));
    }
    let mut shape = [0u64; MAX_ARRAY_RANK];
    for (d, bytes) in shape.iter_mut().zip(payload[1..].chunks_exact(8)) {
        *d = u64_at(bytes, 0)?;
    }
    let middle = shape[1..rank - 1]
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d));
    let folded = [shape[0], middle.unwrap_or(0), shape[rank - 1]];
    if middle.is_none() || header.shape() != folded {
        return Err(Error::Invalid(
            "shape block disagrees with the stream header",
        ));
    }
    Ok((shape, rank))
}

/// What a block header announces: its kind byte, frame count and payload length. Unchecked (the
/// CRC comes at the block's end): a reader uses it to know how much to read.
pub fn block_header_fields(head: &[u8]) -> Result<(u8, u32, usize)> {
    let kind = *head.first().ok_or(Error::Truncated)?;
    Ok((kind, u32_at(head, 1)?, u32_at(head, 5)? as usize))
}

/// Reads the block starting at `bytes[0]` without a model (error-bounded streams, whose
/// blocks vary in length): checks its length and CRC; returns it and the bytes it spans.
pub fn checked_block(bytes: &[u8], index: u32) -> Result<(Block<'_>, usize)> {
    let kind = *bytes.first().ok_or(Error::Truncated)?;
    let frames = u32_at(bytes, 1)?;
    let payload_len = u32_at(bytes, 5)? as usize;
    let end = BLOCK_HEADER_LEN
        .checked_add(payload_len)
        .and_then(|n| n.checked_add(BLOCK_TRAILER_LEN))
        .ok_or(Error::Truncated)?;
    let known = BlockKind::from_code(kind).ok();
    let whole = bytes.get(..end).ok_or(Error::Truncated)?;
    let crc_at = end - BLOCK_TRAILER_LEN;
    if CRC32.checksum(&whole[..crc_at]) != u32_at(whole, crc_at)? {
        return Err(Error::CrcMismatch { block: Some(index) });
    }
    let kind = known.ok_or(Error::UnknownBlockKind(kind))?;
    let payload = &whole[BLOCK_HEADER_LEN..crc_at];
    Ok((
        Block {
            index,
            kind,
            frames,
            payload,
        },
        end,
    ))
}

/// Total bytes of one block of `frames` frames.
pub fn block_len<const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    frames: usize,
) -> Option<usize> {
    model
        .packed_len(frames)?
        .checked_add(BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN)
}

/// Fills in the header and CRC of `block` (header, payload, room for the CRC); returns its
/// length.
pub fn seal_block(block: &mut [u8], kind: BlockKind, frames: u32) -> Result<usize> {
    if block.len() < BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN {
        return Err(Error::BufferTooSmall {
            needed: BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN,
        });
    }
    let payload_len = block
        .len()
        .saturating_sub(BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN);
    let len = u32::try_from(payload_len).map_err(|_| Error::Misuse("block too large"))?;
    block[0] = kind.code();
    block[1..5].copy_from_slice(&frames.to_le_bytes());
    block[5..9].copy_from_slice(&len.to_le_bytes());
    let crc_at = block.len() - BLOCK_TRAILER_LEN;
    let crc = CRC32.checksum(&block[..crc_at]);
    block[crc_at..].copy_from_slice(&crc.to_le_bytes());
    Ok(block.len())
}

/// Writes a whole block (header, a copy of `payload`, CRC) at the start of `out`; returns its
/// length.
pub fn write_block(kind: BlockKind, frames: u32, payload: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = BLOCK_HEADER_LEN + payload.len() + BLOCK_TRAILER_LEN;
    let block = out
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { needed: len })?;
    block[BLOCK_HEADER_LEN..len - BLOCK_TRAILER_LEN].copy_from_slice(payload);
    seal_block(block, kind, frames)
}

/// Encodes `frames` (a whole number of frames, back to back) as one block into `out`;
/// returns the bytes written. Independent blocks can be encoded in parallel and concatenated
/// after a header.
pub fn encode_block<const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    frames: &[f32],
    out: &mut [u8],
) -> Result<usize> {
    let n = model.input_len().max(1);
    let count = frames.len() / n;
    if frames.len() % n != 0 || count == 0 {
        return Err(Error::FrameLength {
            expected: n,
            found: frames.len() % n,
        });
    }
    let needed = block_len(model, count).ok_or(Error::Misuse("block too large"))?;
    let block = out
        .get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed })?;
    let payload_end = needed - BLOCK_TRAILER_LEN;
    let mut writer = BitWriter::new(&mut block[BLOCK_HEADER_LEN..payload_end]);
    let mut codes = [0i16; W];
    let codes = &mut codes[..model.latent_len()];
    for frame in frames.chunks_exact(n) {
        model.encode_frame(frame, codes)?;
        write_codes(&mut writer, codes, model.code_bits())?;
        let value = |column: usize| frame.get(column).copied().unwrap_or(0.0);
        model.write_exact(&mut writer, value)?;
        model.write_corrections(&mut writer, codes, value)?;
    }
    let frames = u32::try_from(count).map_err(|_| Error::Misuse("block too large"))?;
    seal_block(block, BlockKind::LatentCodes, frames)
}

/// Decodes every frame of `block` into `out` (`frames * frame_len` values).
pub fn decode_block<const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    block: &Block<'_>,
    out: &mut [f32],
) -> Result<()> {
    if block.kind != BlockKind::LatentCodes {
        return Err(Error::Invalid("not a block of latent codes"));
    }
    let n = model.output_len();
    let expected = (block.frames as usize).saturating_mul(n);
    if out.len() != expected {
        return Err(Error::FrameLength {
            expected,
            found: out.len(),
        });
    }
    let mut reader = BitReader::new(block.payload);
    let mut codes = [0i16; W];
    let codes = &mut codes[..model.latent_len()];
    for frame in out.chunks_exact_mut(n) {
        read_codes(&mut reader, codes, model.code_bits())?;
        model.decode_frame(codes, frame)?;
        model.read_exact(&mut reader, frame)?;
        model.read_corrections(&mut reader, frame)?;
    }
    Ok(())
}

/// Writes a stream frame by frame into a caller's buffer, with fixed memory.
#[derive(Debug)]
pub struct Encoder<'m, 'a, 'o, const L: usize, const W: usize> {
    model: &'m Model<'a, L, W>,
    out: &'o mut [u8],
    header: StreamHeader,
    /// End of the sealed bytes (header and complete blocks).
    sealed: usize,
    /// Frames in the open block (0: no open block).
    open_frames: u32,
    /// Bits written into the open block's payload.
    open_bits: usize,
    frames_per_block: u32,
}

impl<'m, 'a, 'o, const L: usize, const W: usize> Encoder<'m, 'a, 'o, L, W> {
    /// Starts a stream in `out` for data described by `header` (its `frame_count` is set by
    /// [`Encoder::finish`]); blocks hold up to `frames_per_block` frames.
    pub fn new(
        model: &'m Model<'a, L, W>,
        header: StreamHeader,
        frames_per_block: u32,
        out: &'o mut [u8],
    ) -> Result<Self> {
        if header.model_id != model.id() || header.frame_len as usize != model.input_len() {
            return Err(Error::WrongModel {
                expected: model.id(),
                found: header.model_id,
            });
        }
        if frames_per_block == 0 {
            return Err(Error::Misuse("frames per block must be at least 1"));
        }
        let sealed = header.write(out)?;
        Ok(Encoder {
            model,
            out,
            header,
            sealed,
            open_frames: 0,
            open_bits: 0,
            frames_per_block,
        })
    }

    /// Encodes one frame of real values.
    pub fn push_frame(&mut self, frame: &[f32]) -> Result<()> {
        let mut codes = [0i16; W];
        let codes = &mut codes[..self.model.latent_len()];
        self.model.encode_frame(frame, codes)?;
        self.push_codes(codes, |column| frame.get(column).copied().unwrap_or(0.0))
    }

    /// Encodes one frame of integer ADC counts.
    pub fn push_frame_i16(&mut self, frame: &[i16]) -> Result<()> {
        let mut codes = [0i16; W];
        let codes = &mut codes[..self.model.latent_len()];
        self.model.encode_frame_i16(frame, codes)?;
        self.push_codes(codes, |column| {
            frame.get(column).map_or(0.0, |&x| f32::from(x))
        })
    }

    /// Appends one frame: its latent `codes`, then its exact columns and corrections
    /// (`value(column)`).
    fn push_codes(&mut self, codes: &[i16], value: impl Fn(usize) -> f32) -> Result<()> {
        let bits = self.model.code_bits();
        let payload_start = self.sealed + BLOCK_HEADER_LEN;
        let frame_bits = self.model.frame_bits();
        let needed = payload_start + (self.open_bits + frame_bits).div_ceil(8) + BLOCK_TRAILER_LEN;
        let payload = self
            .out
            .get_mut(payload_start..needed - BLOCK_TRAILER_LEN)
            .ok_or(Error::BufferTooSmall { needed })?;
        let mut writer = BitWriter::resume(payload, self.open_bits);
        write_codes(&mut writer, codes, bits)?;
        self.model.write_exact(&mut writer, &value)?;
        self.model.write_corrections(&mut writer, codes, value)?;
        self.open_bits = writer.bit_len();
        self.open_frames += 1;
        self.header.frame_count += 1;
        if self.open_frames == self.frames_per_block {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<()> {
        if self.open_frames == 0 {
            return Ok(());
        }
        let end = self.sealed + BLOCK_HEADER_LEN + self.open_bits.div_ceil(8) + BLOCK_TRAILER_LEN;
        let block = self
            .out
            .get_mut(self.sealed..end)
            .ok_or(Error::BufferTooSmall { needed: end })?;
        self.sealed += seal_block(block, BlockKind::LatentCodes, self.open_frames)?;
        self.open_frames = 0;
        self.open_bits = 0;
        Ok(())
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.header.frame_count
    }

    /// Seals the last block, writes the final frame count into the header, and returns the
    /// stream's length in the buffer.
    pub fn finish(mut self) -> Result<usize> {
        self.seal()?;
        self.header.write(self.out)?;
        Ok(self.sealed)
    }
}

/// Reads a stream back frame by frame, with fixed memory; checks model id, CRCs and counts.
#[derive(Debug)]
pub struct Decoder<'m, 'a, 's, const L: usize, const W: usize> {
    model: &'m Model<'a, L, W>,
    header: StreamHeader,
    data: &'s [u8],
    /// Start of the next unread block.
    next: usize,
    block_index: u32,
    reader: BitReader<'s>,
    frames_left_in_block: u32,
    frames_seen: u64,
}

impl<'m, 'a, 's, const L: usize, const W: usize> Decoder<'m, 'a, 's, L, W> {
    /// Opens a stream: checks its header and that `model` is the one that wrote it.
    pub fn new(model: &'m Model<'a, L, W>, data: &'s [u8]) -> Result<Self> {
        let header = StreamHeader::read(data)?;
        if header.flags & FLAG_ERROR_BOUNDED != 0 {
            return Err(Error::Invalid(
                "an error-bounded stream: decode it with the bounded decoder",
            ));
        }
        if header.model_id != model.id() {
            return Err(Error::WrongModel {
                expected: model.id(),
                found: header.model_id,
            });
        }
        if header.frame_len as usize != model.input_len() {
            return Err(Error::Invalid(
                "stream frame length differs from the model's",
            ));
        }
        Ok(Decoder {
            model,
            header,
            data,
            next: STREAM_HEADER_LEN,
            block_index: 0,
            reader: BitReader::new(&[]),
            frames_left_in_block: 0,
            frames_seen: 0,
        })
    }

    /// The stream header.
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// Reads the next frame's latent codes (skipping the codes of its exact columns and
    /// corrections, if the model has any); `Ok(false)` at the clean end of the stream.
    pub fn next_codes(&mut self, codes: &mut [i16]) -> Result<bool> {
        if !self.next_latent_codes(codes)? {
            return Ok(false);
        }
        self.model.skip_exact(&mut self.reader)?;
        self.model.skip_corrections(&mut self.reader)?;
        Ok(true)
    }

    /// Reads the next frame's latent codes only.
    fn next_latent_codes(&mut self, codes: &mut [i16]) -> Result<bool> {
        if codes.len() != self.model.latent_len() {
            return Err(Error::FrameLength {
                expected: self.model.latent_len(),
                found: codes.len(),
            });
        }
        if self.frames_left_in_block == 0 && !self.open_next_block()? {
            return Ok(false);
        }
        read_codes(&mut self.reader, codes, self.model.code_bits())?;
        self.frames_left_in_block -= 1;
        Ok(true)
    }

    /// Decodes the next frame into `out`; `Ok(false)` at the clean end of the stream.
    pub fn next_frame(&mut self, out: &mut [f32]) -> Result<bool> {
        let mut codes = [0i16; W];
        let latent = self.model.latent_len();
        if !self.next_latent_codes(&mut codes[..latent])? {
            return Ok(false);
        }
        self.model.decode_frame(&codes[..latent], out)?;
        self.model.read_exact(&mut self.reader, out)?;
        self.model.read_corrections(&mut self.reader, out)?;
        Ok(true)
    }

    fn open_next_block(&mut self) -> Result<bool> {
        let rest = self.data.get(self.next..).unwrap_or(&[]);
        if rest.is_empty() {
            return match self.frames_seen.cmp(&self.header.frame_count) {
                core::cmp::Ordering::Equal => Ok(false),
                core::cmp::Ordering::Less => Err(Error::Truncated),
                core::cmp::Ordering::Greater => Err(Error::FrameCountMismatch {
                    header: self.header.frame_count,
                    blocks: self.frames_seen,
                }),
            };
        }
        if self.frames_seen == self.header.frame_count {
            return Err(Error::TrailingBytes);
        }
        let (block, len) = read_block(self.model, rest, self.block_index)?;
        // Only latent codes belong in a fixed-rate stream: another kind's payload must not be
        // read as codes (its frame count is not even checked against its length).
        if block.kind != BlockKind::LatentCodes {
            return Err(Error::Invalid("not a block of latent codes"));
        }
        let seen = self.frames_seen.saturating_add(u64::from(block.frames));
        if seen > self.header.frame_count {
            return Err(Error::FrameCountMismatch {
                header: self.header.frame_count,
                blocks: seen,
            });
        }
        self.frames_seen = seen;
        self.next += len;
        self.block_index = self.block_index.saturating_add(1);
        self.reader = BitReader::new(block.payload);
        self.frames_left_in_block = block.frames;
        Ok(true)
    }
}
