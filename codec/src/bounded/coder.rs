//! The entry points of error-bounded coding: [`BoundedEncoder`] and [`BoundedDecoder`] code
//! one block at a time in caller memory ([`Scratch`], sized by [`ScratchSizes`]), the way the
//! fixed-rate [`crate::Encoder`] / [`crate::Decoder`] do frames. Every caller (the host
//! library, the fuzz harness, the benches, the firmware) goes through these, so the block
//! coding is set up in one place.

use super::{
    code_block, code_residual_block, decode_residuals, BlockBuffers, BoundParams, ColumnGrid,
    Layout, Predictor, RowModel, RowState, HISTORY_ROWS,
};
use crate::entropy::intcode::IntModel;
use crate::entropy::range::RangeEncoder;
use crate::entropy::tabled::{ContextTable, TabledEncoder};
use crate::error::{Error, Result};
use crate::stream::{seal_block, Block, BlockKind, BLOCK_HEADER_LEN, BLOCK_TRAILER_LEN};

/// Which residual coder the encoder writes blocks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoderChoice {
    /// The tabled rANS coder where the stream may have it (fields and tables without a
    /// model; a field on a linear grid in kind 6, its contexts from residuals), the adaptive
    /// range coder elsewhere; a small table block whose frequency tables would cost too much
    /// is coded adaptively (`ScratchBuf::encode_block`).
    #[default]
    Best,
    /// Always the adaptive range coder (block kind 3): least memory, as older streams hold.
    Adaptive,
    /// The tabled coder wherever the stream may have it, however small the block (tests and
    /// measurements).
    Tabled,
    /// As [`CoderChoice::Tabled`], but fields in kind 4, their contexts from the decoded
    /// neighbours, as `baler compress` wrote them before December 2026 (tests of old forms).
    TabledValueContexts,
}

/// Element counts of the working memory that coding blocks of a stream needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScratchSizes {
    /// Adaptive coding contexts ([`IntModel`]s).
    pub contexts: usize,
    /// `i64` rows of coding history.
    pub history: usize,
    /// `f64` mirrors of the learned field predictor (0 without it).
    pub mirrors: usize,
    /// Latent codes of one row (0 without a model).
    pub codes: usize,
    /// `f32` model reconstruction of one row (0 without a model).
    pub base: usize,
    /// Encoder only, tabled blocks: one `u16` token per value of a block.
    pub tokens: usize,
    /// Encoder only, tabled blocks: the bytes the raw low bits may take (a start: the encoder
    /// asks for more with [`Error::BufferTooSmall`] on unusual data).
    pub raw: usize,
    /// Tabled blocks: the [`ContextTable`]s they need (0: no tabled blocks).
    pub tables: usize,
    /// Tables: the columns' grids, read from the parameters once per block instead of once
    /// per value (optional: with fewer, each value reads its grid from the parameters).
    pub grids: usize,
    /// Interpolated fields: the `i64` grid indices of a whole block (0 otherwise).
    pub volume: usize,
}

impl ScratchSizes {
    /// The sizes for `params`, a model with `model_codes` latent codes per row (0 without one)
    /// and blocks of at most `block_rows` rows (a decoder of interpolated fields needs the
    /// largest block's rows too).
    pub fn new(params: &BoundParams<'_>, model_codes: usize, block_rows: usize) -> Self {
        let n = params.row_len;
        let with_model = params.predictor == Predictor::Model;
        let latent = if with_model { model_codes } else { 0 };
        let tables = super::tabled_contexts_of(params).unwrap_or(0);
        let tabled = tables > 0;
        let values = block_rows.saturating_mul(n);
        ScratchSizes {
            contexts: params.contexts(latent),
            history: HISTORY_ROWS.saturating_mul(n),
            mirrors: params.mirror_len(),
            codes: latent,
            base: if with_model { n } else { 0 },
            tokens: if tabled { values } else { 0 },
            raw: if tabled { values / 2 + 64 } else { 0 },
            tables,
            grids: if params.layout == Layout::Table { n } else { 0 },
            volume: match params.predictor {
                Predictor::Interpolated(_) => values,
                _ => 0,
            },
        }
    }
}

/// Caller-provided working memory for a [`BoundedEncoder`] or [`BoundedDecoder`]. Each slice
/// must hold at least what [`ScratchSizes`] says; the encoder ignores `tables`, the decoder
/// `tokens` and `raw`.
#[derive(Debug)]
pub struct Scratch<'b> {
    /// [`ScratchSizes::contexts`] adaptive contexts.
    pub contexts: &'b mut [IntModel],
    /// [`ScratchSizes::history`] values.
    pub history: &'b mut [i64],
    /// [`ScratchSizes::mirrors`] values.
    pub mirrors: &'b mut [f64],
    /// [`ScratchSizes::codes`] latent codes.
    pub codes: &'b mut [i16],
    /// [`ScratchSizes::base`] values.
    pub base: &'b mut [f32],
    /// [`ScratchSizes::tokens`] tokens (encoder).
    pub tokens: &'b mut [u16],
    /// At least [`ScratchSizes::raw`] bytes (encoder).
    pub raw: &'b mut [u8],
    /// [`ScratchSizes::tables`] context tables for tabled blocks (about 2.7 KB each), or none
    /// (blocks are then coded with the adaptive coder, and tabled ones cannot be decoded).
    pub tables: &'b mut [ContextTable],
    /// [`ScratchSizes::grids`] column grids, or none (a device short of memory).
    pub grids: &'b mut [ColumnGrid],
    /// [`ScratchSizes::volume`] grid indices, or none (interpolated fields cannot be coded).
    pub volume: &'b mut [i64],
}

/// A tabled table block whose frequency tables are more than 1/`TABLES_SHARE` of its payload
/// is also coded adaptively (`ScratchBuf::encode_block`, with the `alloc` feature).
pub const TABLES_SHARE: usize = 32;

/// Scratch memory on the heap, sized for a stream's parameters (host side).
#[cfg(feature = "alloc")]
#[derive(Debug, Default)]
pub struct ScratchBuf {
    contexts: alloc::vec::Vec<IntModel>,
    history: alloc::vec::Vec<i64>,
    mirrors: alloc::vec::Vec<f64>,
    codes: alloc::vec::Vec<i16>,
    base: alloc::vec::Vec<f32>,
    tokens: alloc::vec::Vec<u16>,
    raw: alloc::vec::Vec<u8>,
    tables: alloc::vec::Vec<ContextTable>,
    grids: alloc::vec::Vec<ColumnGrid>,
    volume: alloc::vec::Vec<i64>,
}

#[cfg(feature = "alloc")]
impl ScratchBuf {
    /// Working memory of the given sizes.
    pub fn new(sizes: ScratchSizes) -> Self {
        let mut scratch = ScratchBuf::default();
        scratch.fit(sizes);
        scratch
    }

    /// Resizes it for another block of `sizes`, keeping its allocations (a fresh buffer for
    /// every block cost its zeroing or page faults anew). What the last block left in it
    /// stays: each coder resets what it reads at the start of a block, as a device's static
    /// buffers require. The raw-bits buffer keeps any growth ([`Self::grow_raw`]).
    pub fn fit(&mut self, sizes: ScratchSizes) {
        self.contexts.resize(sizes.contexts, IntModel::default());
        self.history.resize(sizes.history, 0);
        self.mirrors.resize(sizes.mirrors, 0.0);
        self.codes.resize(sizes.codes, 0);
        self.base.resize(sizes.base, 0.0);
        self.tokens.resize(sizes.tokens, 0);
        self.raw.resize(sizes.raw.max(self.raw.len()), 0);
        self.tables.resize(sizes.tables, ContextTable::EMPTY);
        self.grids
            .resize(sizes.grids, ColumnGrid::linear(0.0, 1.0, 0.0));
        self.volume.resize(sizes.volume, 0);
    }

    /// Borrows it as the coders take it.
    pub fn scratch(&mut self) -> Scratch<'_> {
        Scratch {
            contexts: &mut self.contexts,
            history: &mut self.history,
            mirrors: &mut self.mirrors,
            codes: &mut self.codes,
            base: &mut self.base,
            tokens: &mut self.tokens,
            raw: &mut self.raw,
            tables: &mut self.tables,
            grids: &mut self.grids,
            volume: &mut self.volume,
        }
    }

    /// Makes the raw-bits buffer four times larger (after [`Error::BufferTooSmall`]).
    pub fn grow_raw(&mut self) {
        let len = self.raw.len().saturating_mul(4).max(64);
        self.raw.resize(len, 0);
    }

    /// Encodes the rows of `input` as one sealed block with a [`BoundedEncoder`] in this
    /// memory, growing the block and raw-bits buffers on [`Error::BufferTooSmall`] (the
    /// typical size is a few bits per value; escapes and noise need more). `decoded` receives
    /// the rows as a decoder will see them.
    ///
    /// With [`CoderChoice::Best`], a table block whose frequency tables take more than
    /// 1/[`TABLES_SHARE`] of the tabled payload is coded with the adaptive coder as well, and
    /// the smaller block is kept: a small table cannot pay for a table per column context.
    pub fn encode_block<M: RowModel>(
        &mut self,
        params: &BoundParams<'_>,
        model: Option<&M>,
        coder: CoderChoice,
        input: &[f64],
        decoded: &mut [f64],
    ) -> Result<alloc::vec::Vec<u8>> {
        let block = self.encode_with(params, model, coder, input, decoded)?;
        if coder != CoderChoice::Best || params.layout != Layout::Table {
            return Ok(block);
        }
        // The block was sealed just now: its kind and payload are where the header says.
        let end = block.len().saturating_sub(BLOCK_TRAILER_LEN);
        let payload = block.get(BLOCK_HEADER_LEN..end).unwrap_or_default();
        let tabled = block.first() == Some(&BlockKind::TabledResiduals.code());
        let tables = crate::entropy::tabled::tables_len(payload).filter(|_| tabled);
        let tables = tables.unwrap_or(0);
        if tables.saturating_mul(TABLES_SHARE) > payload.len() {
            let adaptive =
                self.encode_with(params, model, CoderChoice::Adaptive, input, decoded)?;
            if adaptive.len() < block.len() {
                return Ok(adaptive);
            }
        }
        Ok(block)
    }

    fn encode_with<M: RowModel>(
        &mut self,
        params: &BoundParams<'_>,
        model: Option<&M>,
        coder: CoderChoice,
        input: &[f64],
        decoded: &mut [f64],
    ) -> Result<alloc::vec::Vec<u8>> {
        let rows = input.len() / params.row_len.max(1);
        let codes = self.codes.len();
        let mut capacity = input
            .len()
            .saturating_mul(2)
            .saturating_add(rows.saturating_mul(codes).saturating_mul(2))
            .saturating_add(4096);
        loop {
            let mut block = alloc::vec![0u8; capacity];
            let mut encoder = BoundedEncoder::new(params, model, self.scratch(), coder)?;
            match encoder.encode_block(input, decoded, &mut block) {
                Ok(len) => {
                    block.truncate(len);
                    return Ok(block);
                }
                Err(Error::BufferTooSmall { .. }) => {
                    capacity = capacity.saturating_mul(4);
                    self.grow_raw();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The model an error-bounded stream is coded with, if any: checked against the parameters.
fn model_for<'m, M: RowModel>(
    params: &BoundParams<'_>,
    model: Option<&'m M>,
) -> Result<Option<&'m M>> {
    match (params.predictor, model) {
        (Predictor::Model, Some(m)) => Ok(Some(m)),
        (Predictor::Model, None) => Err(Error::ModelRequired),
        _ => Ok(None),
    }
}

/// [`Scratch`] taken apart: the row coder's state and buffers, and the entropy coders' memory.
struct Parts<'b> {
    buffers: BlockBuffers<'b>,
    tokens: &'b mut [u16],
    raw: &'b mut [u8],
    tables: &'b mut [ContextTable],
}

fn split<'b>(params: &BoundParams<'_>, latent: usize, scratch: Scratch<'b>) -> Result<Parts<'b>> {
    let Scratch {
        contexts,
        history,
        mirrors,
        codes,
        base,
        tokens,
        raw,
        tables,
        grids,
        volume,
    } = scratch;
    let state = RowState::new(params, latent, contexts, history, mirrors, grids)?;
    Ok(Parts {
        buffers: BlockBuffers {
            state,
            codes,
            base,
            volume,
        },
        tokens,
        raw,
        tables,
    })
}

/// Encodes the blocks of an error-bounded stream, one independent block at a time, in caller
/// memory. Each block comes out sealed (header, payload, CRC), ready to follow the stream
/// header and the parameters block.
#[derive(Debug)]
pub struct BoundedEncoder<'p, 'm, 'b, M: RowModel> {
    params: &'p BoundParams<'p>,
    model: Option<&'m M>,
    buffers: BlockBuffers<'b>,
    tokens: &'b mut [u16],
    raw: &'b mut [u8],
    tables: &'b mut [ContextTable],
    coder: CoderChoice,
}

impl<'p, 'm, 'b, M: RowModel> BoundedEncoder<'p, 'm, 'b, M> {
    /// An encoder for `params`; `model` is required iff the parameters name
    /// [`Predictor::Model`] (it is ignored otherwise).
    pub fn new(
        params: &'p BoundParams<'p>,
        model: Option<&'m M>,
        scratch: Scratch<'b>,
        coder: CoderChoice,
    ) -> Result<Self> {
        let model = model_for(params, model)?;
        let latent = model.map_or(0, |m| m.row_codes());
        let parts = split(params, latent, scratch)?;
        Ok(BoundedEncoder {
            params,
            model,
            buffers: parts.buffers,
            tokens: parts.tokens,
            raw: parts.raw,
            tables: parts.tables,
            coder,
        })
    }

    /// Encodes the whole rows of `input` (back to back) as one sealed block into `out`;
    /// returns its length. `decoded` receives the rows exactly as a decoder will see them
    /// (same length as `input`). [`Error::BufferTooSmall`] leaves nothing half done: retry
    /// with a larger `out` (or, for tabled blocks, a larger raw-bits buffer).
    pub fn encode_block(
        &mut self,
        input: &[f64],
        decoded: &mut [f64],
        out: &mut [u8],
    ) -> Result<usize> {
        let n = self.params.row_len;
        if input.len() % n != 0 || decoded.len() != input.len() || input.is_empty() {
            return Err(Error::FrameLength {
                expected: n,
                found: input.len() % n,
            });
        }
        let rows = u32::try_from(input.len() / n).map_err(|_| Error::Misuse("block rows"))?;
        let body_end = out
            .len()
            .checked_sub(BLOCK_TRAILER_LEN)
            .filter(|&end| end >= BLOCK_HEADER_LEN)
            .ok_or(Error::BufferTooSmall {
                needed: BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN,
            })?;
        let body = &mut out[BLOCK_HEADER_LEN..body_end];
        if let Predictor::Interpolated(plan) = self.params.predictor {
            // Interpolation needs the tabled coder: a build without it (the firmware) leaves
            // its 12 KB encoder out.
            if !cfg!(feature = "tabled") {
                return Err(Error::NotInThisBuild(
                    "interpolated fields (feature tabled)",
                ));
            }
            let len = encode_interpolated(
                self.params,
                &plan,
                (self.tokens, self.raw, &mut *self.tables),
                self.buffers.volume,
                (input, decoded),
                body,
            )?;
            let end = BLOCK_HEADER_LEN + len + BLOCK_TRAILER_LEN;
            return seal_block(&mut out[..end], BlockKind::Interpolated, rows);
        }
        // Tabled where the parameters allow it and the caller gave the tables room.
        let tables = super::tabled_contexts_of(self.params)
            .and_then(|contexts| self.tables.get_mut(..contexts))
            .filter(|_| cfg!(feature = "tabled") && self.coder != CoderChoice::Adaptive);
        let (kind, len) = if let Some(tables) = tables {
            let state = &mut self.buffers.state;
            state.residual_contexts = self.coder != CoderChoice::TabledValueContexts
                && super::residual_contexts_apply(self.params);
            let kind = match state.residual_contexts {
                true => BlockKind::TabledResidualContexts,
                false => BlockKind::TabledResiduals,
            };
            let len = encode_tabled(
                self.params,
                state,
                (self.tokens, self.raw, tables),
                input,
                decoded,
                body,
            )?;
            (kind, len)
        } else {
            self.buffers.state.residual_contexts = false;
            let mut encoder = RangeEncoder::new(body);
            code_block(
                &mut encoder,
                self.params,
                self.model,
                &mut self.buffers,
                Some(input),
                decoded,
            )?;
            (BlockKind::Residuals, encoder.finish()?)
        };
        let end = BLOCK_HEADER_LEN + len + BLOCK_TRAILER_LEN;
        seal_block(&mut out[..end], kind, rows)
    }
}

/// One block through the tabled coder into `body`, its tables in caller memory; returns the
/// payload's length. Kept out of line, so that a device that codes with the adaptive coder
/// only does not carry it.
#[inline(never)]
fn encode_tabled(
    params: &BoundParams<'_>,
    state: &mut RowState<'_>,
    (tokens, raw, tables): (&mut [u16], &mut [u8], &mut [ContextTable]),
    input: &[f64],
    decoded: &mut [f64],
    body: &mut [u8],
) -> Result<usize> {
    let mut encoder = TabledEncoder::new(tokens, raw);
    code_residual_block(&mut encoder, params, state, Some(input), decoded)?;
    encoder.finish(tables, body)
}

/// One block of an interpolated field (kind 7) into `body`, whatever the coder choice (it is
/// always tabled); returns the payload's length.
#[inline(never)]
fn encode_interpolated(
    params: &BoundParams<'_>,
    plan: &super::InterpolationPlan,
    (tokens, raw, tables): (&mut [u16], &mut [u8], &mut [ContextTable]),
    volume: &mut [i64],
    (input, decoded): (&[f64], &mut [f64]),
    body: &mut [u8],
) -> Result<usize> {
    // (A build without the tabled coder never gets here: its parameters refuse predictor 4.)
    let (dims, g, volume, tables) =
        super::interpolated_parts(params, plan, input.len(), volume, tables)?;
    let mut encoder = TabledEncoder::new(tokens, raw);
    super::interpolate::encode(
        &mut encoder,
        &g,
        params.dtype,
        plan,
        dims,
        (input, decoded),
        volume,
    )?;
    encoder.finish(tables, body)
}

/// Decodes the blocks of an error-bounded stream, one independent block at a time, in caller
/// memory.
#[derive(Debug)]
pub struct BoundedDecoder<'p, 'm, 'b, M: RowModel> {
    params: &'p BoundParams<'p>,
    model: Option<&'m M>,
    buffers: BlockBuffers<'b>,
    tables: &'b mut [ContextTable],
    max_rows: usize,
}

impl<'p, 'm, 'b, M: RowModel> BoundedDecoder<'p, 'm, 'b, M> {
    /// A decoder for `params` and blocks of at most `max_rows` rows; `model` is required iff
    /// the parameters name [`Predictor::Model`].
    pub fn new(
        params: &'p BoundParams<'p>,
        model: Option<&'m M>,
        scratch: Scratch<'b>,
        max_rows: usize,
    ) -> Result<Self> {
        let model = model_for(params, model)?;
        let latent = model.map_or(0, |m| m.row_codes());
        let parts = split(params, latent, scratch)?;
        Ok(BoundedDecoder {
            params,
            model,
            buffers: parts.buffers,
            tables: parts.tables,
            max_rows,
        })
    }

    /// Decodes one residual block (CRC already checked by [`crate::stream::checked_block`])
    /// into `out`, which must hold exactly its rows. A damaged block is an error, never a
    /// panic or garbage.
    pub fn decode_block(&mut self, block: &Block<'_>, out: &mut [f64]) -> Result<()> {
        let rows = block.frames as usize;
        if rows == 0 {
            return Err(Error::Invalid("expected a residual block"));
        }
        if rows > self.max_rows {
            return Err(Error::Invalid("block holds too many rows"));
        }
        if out.len() != rows.saturating_mul(self.params.row_len) {
            return Err(Error::LengthMismatch {
                what: "decoded block",
                expected: rows.saturating_mul(self.params.row_len),
                found: out.len(),
            });
        }
        decode_residuals(
            block.kind,
            block.payload,
            self.params,
            self.model,
            &mut self.buffers,
            self.tables,
            out,
        )
    }
}
