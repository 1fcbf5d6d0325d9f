//! Loading and validating a model blob into a fixed-capacity [`Model`].

pub(crate) mod arith;
mod infer;
pub mod le;
#[cfg(feature = "alloc")]
pub mod quantize;
mod reference;
pub mod spec;

use crate::error::{Capacity, Error, Result};
use crate::model::le::LeSlice;
use crate::model::spec::{
    bits_for, model_id, Activation, Corrections, ExactColumns, LayerSpec, ModelHead,
    FLAG_CORRECTIONS, FLAG_EXACT_COLUMNS, MAX_CORRECTION_BITS, MODEL_HEADER_LEN, MODEL_MAGIC,
    MODEL_VERSION,
};
use crate::stream::codes::{BitReader, BitWriter};

/// Largest rank of a frame shape.
pub const MAX_FRAME_RANK: usize = 4;

/// A validated, quantized autoencoder that borrows its blob.
///
/// `MAX_LAYERS` and `MAX_WIDTH` are the compile-time capacities: the total number of layers
/// (encoder and decoder) and the widest layer input or output. Scratch buffers of
/// `MAX_WIDTH` activations live on the stack during encode and decode. A blob that needs more
/// is refused by [`Model::from_bytes`] with [`Error::CapacityExceeded`]; once loaded, a model
/// never fails for lack of room.
#[derive(Debug, Clone)]
pub struct Model<'a, const MAX_LAYERS: usize, const MAX_WIDTH: usize> {
    id: u64,
    head: ModelHead<'a>,
    layers: heapless::Vec<LayerSpec<'a>, MAX_LAYERS>,
    exact: Option<ExactColumns<'a>>,
    corrections: Option<Corrections<'a>>,
    /// Bits of one frame in a fixed-rate stream, computed once at load time.
    frame_bits: usize,
}

/// A model type sized for host use: up to 16 layers of up to 8192 values (a detector frame
/// of 4,096 channels and more; its working rows live on the stack, 16 KB each).
pub type HostModel<'a> = Model<'a, 16, 8192>;

/// A model type sized for microcontrollers: up to 8 layers of up to 64 values.
pub type EdgeModel<'a> = Model<'a, 8, 64>;

fn read_u16(bytes: &[u8], at: usize) -> Result<u16> {
    let b = bytes.get(at..at + 2).ok_or(Error::Truncated)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64> {
    let b = bytes.get(at..at + 8).ok_or(Error::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

fn check_len<T: crate::model::le::LeScalar>(
    slice: &LeSlice<'_, T>,
    expected: usize,
    what: &'static str,
) -> Result<()> {
    if slice.has_len(expected) {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            found: slice.bytes().len() / T::SIZE.max(1),
        })
    }
}

fn positive_finite(x: f32) -> bool {
    x.is_finite() && x > 0.0
}

impl<'a, const MAX_LAYERS: usize, const MAX_WIDTH: usize> Model<'a, MAX_LAYERS, MAX_WIDTH> {
    /// Reads the model id from a blob header without validating the rest.
    pub fn peek_id(bytes: &[u8]) -> Result<u64> {
        if bytes.get(0..4).ok_or(Error::Truncated)? != MODEL_MAGIC {
            return Err(Error::BadMagic);
        }
        read_u64(bytes, 8)
    }

    /// Loads and validates a model blob. Never panics; every problem is an [`Error`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        let magic = bytes.get(0..4).ok_or(Error::Truncated)?;
        if magic != MODEL_MAGIC {
            return Err(Error::BadMagic);
        }
        let version = read_u16(bytes, 4)?;
        if version != MODEL_VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let flags = read_u16(bytes, 6)?;
        if flags & !(FLAG_EXACT_COLUMNS | FLAG_CORRECTIONS) != 0 {
            return Err(Error::Invalid("model header flags"));
        }
        let id = read_u64(bytes, 8)?;
        let body = bytes.get(MODEL_HEADER_LEN..).ok_or(Error::Truncated)?;
        if model_id(body) != id {
            return Err(Error::ModelIdMismatch);
        }
        let (head, mut rest): (ModelHead<'a>, &'a [u8]) =
            postcard::take_from_bytes(body).map_err(postcard_error)?;
        let (count, after): (u32, &'a [u8]) =
            postcard::take_from_bytes(rest).map_err(postcard_error)?;
        rest = after;
        let count = count as usize;
        if count > MAX_LAYERS {
            return Err(Error::CapacityExceeded {
                what: Capacity::Layers,
                needed: count,
                capacity: MAX_LAYERS,
            });
        }
        let mut layers = heapless::Vec::new();
        for _ in 0..count {
            let (layer, after): (LayerSpec<'a>, &'a [u8]) =
                postcard::take_from_bytes(rest).map_err(postcard_error)?;
            rest = after;
            layers.push(layer).map_err(|_| Error::CapacityExceeded {
                what: Capacity::Layers,
                needed: count,
                capacity: MAX_LAYERS,
            })?;
        }
        let mut exact = None;
        if flags & FLAG_EXACT_COLUMNS != 0 {
            // Left out of small builds: it costs about 1.4 KB of flash.
            if !cfg!(feature = "exact") {
                return Err(Error::NotInThisBuild("exact columns (feature `exact`)"));
            }
            let (columns, after): (ExactColumns<'a>, &'a [u8]) =
                postcard::take_from_bytes(rest).map_err(postcard_error)?;
            rest = after;
            exact = Some(columns);
        }
        let mut corrections = None;
        if flags & FLAG_CORRECTIONS != 0 {
            // Left out of small builds, as the exact columns are.
            if !cfg!(feature = "corrections") {
                return Err(Error::NotInThisBuild(
                    "per-column corrections (feature `corrections`)",
                ));
            }
            let (section, after): (Corrections<'a>, &'a [u8]) =
                postcard::take_from_bytes(rest).map_err(postcard_error)?;
            rest = after;
            corrections = Some(section);
        }
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        let mut model = Model {
            id,
            head,
            layers,
            exact,
            corrections,
            frame_bits: 0,
        };
        model.validate()?;
        model.frame_bits = model.latent_len() * usize::from(model.head.code_bits)
            + model
                .exact_columns()
                .map(|(_, table)| usize::from(bits_for(table.len())))
                .sum::<usize>()
            + if cfg!(feature = "corrections") {
                model
                    .corrected_columns()
                    .map(|c| usize::from(c.bits))
                    .sum::<usize>()
            } else {
                0
            };
        Ok(model)
    }

    fn validate(&self) -> Result<()> {
        let head = &self.head;
        if !(1..=16).contains(&head.code_bits) {
            return Err(Error::InvalidCodeBits(head.code_bits));
        }
        let layers = &self.layers;
        if layers.len() < 2 {
            return Err(Error::Invalid(
                "a model needs at least one encoder and one decoder layer",
            ));
        }
        let enc = usize::from(head.encoder_layers);
        if enc == 0 || enc >= layers.len() {
            return Err(Error::Invalid("encoder layer count"));
        }
        for (i, layer) in layers.iter().enumerate() {
            self.validate_layer(i, layer)?;
            if let Some(prev) = i.checked_sub(1).and_then(|p| layers.get(p)) {
                if prev.outputs != layer.inputs
                    || prev.output_scale.to_bits() != layer.input_scale.to_bits()
                {
                    return Err(Error::ShapeMismatch { layer: i });
                }
            }
        }
        let n = self.input_len();
        if self.output_len() != n {
            return Err(Error::ShapeMismatch {
                layer: layers.len() - 1,
            });
        }
        // Frame shape: 1..=4 dims whose product is the input width.
        let rank = head.frame_shape.len();
        if rank > MAX_FRAME_RANK {
            return Err(Error::CapacityExceeded {
                what: Capacity::Rank,
                needed: rank,
                capacity: MAX_FRAME_RANK,
            });
        }
        let product = head
            .frame_shape
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(d as usize));
        if rank == 0 || !head.frame_shape.has_len(rank) || product != Some(n) {
            return Err(Error::Invalid("frame shape does not match the input width"));
        }
        // One name per line: as many names as newlines plus one (counting bytes is much smaller
        // code than `split().count()`, which matters in a 32 KiB firmware image).
        let names = head.names.bytes().filter(|&b| b == b'\n').count() + 1;
        if !head.names.is_empty() && names != n {
            return Err(Error::Invalid("names: need none or one per input value"));
        }
        if let (true, Some(exact)) = (cfg!(feature = "exact"), &self.exact) {
            validate_exact(exact, n)?;
        }
        if let (true, Some(corrections)) = (cfg!(feature = "corrections"), &self.corrections) {
            validate_corrections(corrections, n, self.exact.as_ref())?;
        }
        for (arr, what) in [
            (&head.input_offset, "input offset"),
            (&head.input_gain, "input gain"),
            (&head.output_gain, "output gain"),
            (&head.output_offset, "output offset"),
        ] {
            check_len(arr, n, what)?;
            if arr.iter().any(|x| !x.is_finite()) {
                return Err(Error::Invalid(what));
            }
        }
        Ok(())
    }

    fn validate_layer(&self, index: usize, layer: &LayerSpec<'_>) -> Result<()> {
        let (n_in, n_out) = (usize::from(layer.inputs), usize::from(layer.outputs));
        for width in [n_in, n_out] {
            if width == 0 {
                return Err(Error::Invalid("layer with zero width"));
            }
            if width > MAX_WIDTH {
                return Err(Error::CapacityExceeded {
                    what: Capacity::Width,
                    needed: width,
                    capacity: MAX_WIDTH,
                });
            }
        }
        check_len(&layer.weights, n_in * n_out, "weights")?;
        check_len(&layer.weight_scales, n_out, "weight scales")?;
        check_len(&layer.bias, n_out, "bias")?;
        check_len(&layer.multiplier, n_out, "requantization multipliers")?;
        check_len(&layer.shift, n_out, "requantization shifts")?;
        if !positive_finite(layer.input_scale) || !positive_finite(layer.output_scale) {
            return Err(Error::Invalid("activation scale"));
        }
        if layer.weight_scales.iter().any(|s| !positive_finite(s)) {
            return Err(Error::Invalid("weight scale"));
        }
        if layer.multiplier.iter().any(|m| m <= 0) {
            return Err(Error::Invalid("requantization multiplier"));
        }
        if layer.shift.iter().any(|s| !(1..=62).contains(&s)) {
            return Err(Error::Invalid("requantization shift"));
        }
        match layer.activation {
            Activation::Identity | Activation::Relu => {}
            Activation::LeakyRelu { slope_q15 } => {
                if slope_q15 < 0 {
                    return Err(Error::Invalid("leaky ReLU slope"));
                }
            }
            Activation::Lut(lut) => {
                if !(6..=15).contains(&lut.index_shift) {
                    return Err(Error::Invalid("lookup table index shift"));
                }
                check_len(
                    &lut.table,
                    (65536usize >> lut.index_shift) + 1,
                    "lookup table",
                )?;
                if lut.table.iter().any(|t| t == i16::MIN) {
                    return Err(Error::Invalid("lookup table entry"));
                }
                if !positive_finite(lut.input_scale) {
                    return Err(Error::Invalid("lookup table input scale"));
                }
            }
        }
        // The float scales (reference path) and the integer requantization must agree.
        let pre_scale = match layer.activation {
            Activation::Lut(lut) => lut.input_scale,
            _ => layer.output_scale,
        };
        let requant = layer.multiplier.iter().zip(layer.shift.iter());
        // f32 is ample for a 1e-4 tolerance and keeps soft-float f64 out of FPU-less builds.
        for ((m, s), ws) in requant.zip(layer.weight_scales.iter()) {
            let actual = libm::ldexpf(m as f32, -i32::from(s));
            let expected = layer.input_scale * ws / pre_scale;
            let close = libm::fabsf(actual - expected) <= 1e-4 * expected;
            if !close {
                return Err(Error::Invalid(
                    "requantization does not match the layer scales",
                ));
            }
        }
        // The integer path must not overflow for any input: |x| <= 32768 (a 16-bit latent
        // code), so sum|w| * 32768 + |b| must fit in an i32. Checked here, once.
        let limit = i64::from(i32::MAX);
        for (row, bias) in layer
            .weights
            .bytes()
            .chunks_exact(n_in)
            .zip(layer.bias.iter())
        {
            let sum: i64 = row
                .iter()
                .map(|&w| i64::from((w as i8).unsigned_abs()))
                .sum();
            if sum * 32768 + i64::from(bias).abs() > limit {
                return Err(Error::AccumulatorOverflow { layer: index });
            }
        }
        Ok(())
    }

    /// The model id: CRC-64/XZ of the blob body. Streams record it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of values in one frame (the encoder's input width).
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, |l| usize::from(l.inputs))
    }

    /// Number of values the decoder produces (equal to [`Model::input_len`]).
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| usize::from(l.outputs))
    }

    /// Number of latent codes per frame.
    pub fn latent_len(&self) -> usize {
        self.encoder().last().map_or(0, |l| usize::from(l.outputs))
    }

    /// Width of one latent code in bits.
    pub fn code_bits(&self) -> u8 {
        self.head.code_bits
    }

    /// Smallest and largest latent code: `-2^(bits-1)` and `2^(bits-1) - 1`.
    pub fn code_range(&self) -> (i32, i32) {
        let half = 1i32 << (self.head.code_bits.clamp(1, 16) - 1);
        (-half, half - 1)
    }

    /// Bits of one frame in a fixed-rate stream: its latent codes, then the codes of its
    /// exact columns.
    pub fn frame_bits(&self) -> usize {
        self.frame_bits
    }

    /// Bytes of packed codes for `frames` frames (codes are packed without padding between
    /// frames; the total is rounded up to whole bytes).
    pub fn packed_len(&self, frames: usize) -> Option<usize> {
        Some(frames.checked_mul(self.frame_bits())?.div_ceil(8))
    }

    /// The columns coded exactly, with their tables, in column order (none for most models).
    pub fn exact_columns(&self) -> impl Iterator<Item = (usize, LeSlice<'a, f32>)> + 'a {
        // Without the feature no model has exact columns, and the compiler sees it.
        let exact = if cfg!(feature = "exact") {
            self.exact
        } else {
            None
        };
        tables(exact.unwrap_or(ExactColumns {
            columns: LeSlice::new(&[]),
            counts_minus_one: LeSlice::new(&[]),
            values: LeSlice::new(&[]),
        }))
    }

    /// Appends the codes of the exact columns of one frame (`value(column)` gives the frame's
    /// value there): each value's index in its column's table, or the nearest entry's for a
    /// value the table lacks (the lower one on a tie).
    #[cfg_attr(feature = "exact", inline(never))]
    pub fn write_exact(
        &self,
        writer: &mut BitWriter<'_>,
        value: impl Fn(usize) -> f32,
    ) -> Result<()> {
        if !cfg!(feature = "exact") {
            return Ok(());
        }
        for (column, table) in self.exact_columns() {
            let index = nearest(&table, value(column));
            writer.write(index as u16, bits_for(table.len()))?;
        }
        Ok(())
    }

    /// Reads the codes of the exact columns of one frame and writes their values into `out`.
    #[cfg_attr(feature = "exact", inline(never))]
    pub fn read_exact(&self, reader: &mut BitReader<'_>, out: &mut [f32]) -> Result<()> {
        if !cfg!(feature = "exact") {
            return Ok(());
        }
        for (column, table) in self.exact_columns() {
            let index = reader.read(bits_for(table.len()))?;
            // Validated models keep columns within the frame; a short `out` is the caller's.
            match (table.get(usize::from(index)), out.get_mut(column)) {
                (Some(value), Some(slot)) => *slot = value,
                (None, _) => return Err(Error::Invalid("exact code past its table")),
                (_, None) => return Err(Error::Misuse("frame too short")),
            }
        }
        Ok(())
    }

    /// Sets the exact columns of a decoded frame `out` to what the stream would give for the
    /// original `frame`: each one's table entry nearest to its value (see
    /// [`Model::write_exact`]).
    pub fn apply_exact(&self, frame: &[f32], out: &mut [f32]) {
        for (column, table) in self.exact_columns() {
            if let (Some(&x), Some(slot)) = (frame.get(column), out.get_mut(column)) {
                *slot = table.at(nearest(&table, x), x);
            }
        }
    }

    /// Skips the codes of the exact columns of one frame.
    pub fn skip_exact(&self, reader: &mut BitReader<'_>) -> Result<()> {
        for (_, table) in self.exact_columns() {
            reader.read(bits_for(table.len()))?;
        }
        Ok(())
    }

    /// The columns with corrections (none for most models), in column order.
    pub fn corrected_columns(&self) -> impl Iterator<Item = CorrectedColumn> + 'a {
        // Without the feature no model has corrections, and the compiler sees it.
        let corrections = if cfg!(feature = "corrections") {
            self.corrections
        } else {
            None
        };
        let section = corrections.unwrap_or(Corrections {
            columns: LeSlice::new(&[]),
            bits: LeSlice::new(&[]),
            low: LeSlice::new(&[]),
            step: LeSlice::new(&[]),
        });
        section
            .columns
            .iter()
            .zip(section.bits.iter())
            .zip(section.low.iter().zip(section.step.iter()))
            .map(|((column, bits), (low, step))| CorrectedColumn {
                column: usize::from(column),
                bits,
                low,
                step,
            })
    }

    /// Appends the correction codes of one frame: `value(column)` gives the frame's value,
    /// and the network's output for the frame is decoded from its latent `codes` here (the
    /// decoder's own result, so both sides agree on the residual).
    #[cfg_attr(feature = "corrections", inline(never))]
    pub fn write_corrections(
        &self,
        writer: &mut BitWriter<'_>,
        codes: &[i16],
        value: impl Fn(usize) -> f32,
    ) -> Result<()> {
        if !cfg!(feature = "corrections") || self.corrections.is_none() {
            return Ok(());
        }
        let mut decoded = [0f32; MAX_WIDTH];
        let decoded = decoded
            .get_mut(..self.output_len())
            .ok_or(Error::Misuse("frame too long"))?;
        self.decode_frame(codes, decoded)?;
        for c in self.corrected_columns() {
            let network = decoded.get(c.column).copied().unwrap_or(0.0);
            writer.write(c.code(value(c.column) - network), c.bits)?;
        }
        Ok(())
    }

    /// Reads the correction codes of one frame and adds them to the network's output `out`.
    #[cfg_attr(feature = "corrections", inline(never))]
    pub fn read_corrections(&self, reader: &mut BitReader<'_>, out: &mut [f32]) -> Result<()> {
        if !cfg!(feature = "corrections") || self.corrections.is_none() {
            return Ok(());
        }
        for c in self.corrected_columns() {
            let code = reader.read(c.bits)?;
            let slot = out
                .get_mut(c.column)
                .ok_or(Error::Misuse("frame too short"))?;
            *slot += c.correction(code);
        }
        Ok(())
    }

    /// Corrects a decoded frame `out` as the stream would for the original `frame` (see
    /// [`Model::write_corrections`]); call it before [`Model::apply_exact`].
    pub fn apply_corrections(&self, frame: &[f32], out: &mut [f32]) {
        for c in self.corrected_columns() {
            if let (Some(&x), Some(slot)) = (frame.get(c.column), out.get_mut(c.column)) {
                *slot += c.correction(c.code(x - *slot));
            }
        }
    }

    /// Skips the correction codes of one frame.
    pub fn skip_corrections(&self, reader: &mut BitReader<'_>) -> Result<()> {
        if !cfg!(feature = "corrections") {
            return Ok(());
        }
        for c in self.corrected_columns() {
            reader.read(c.bits)?;
        }
        Ok(())
    }

    /// Logical shape of one frame.
    pub fn frame_shape(&self) -> impl Iterator<Item = u32> + 'a {
        self.head.frame_shape.iter()
    }

    /// Feature names, one per input value (none when the blob has no names).
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = self.head.names;
        names.split('\n').filter(move |_| !names.is_empty())
    }

    /// The blob's head (normalization and metadata).
    pub fn head(&self) -> &ModelHead<'a> {
        &self.head
    }

    /// All layers, encoder first.
    pub fn layers(&self) -> &[LayerSpec<'a>] {
        &self.layers
    }

    /// The encoder's layers.
    pub fn encoder(&self) -> &[LayerSpec<'a>] {
        self.layers
            .get(..usize::from(self.head.encoder_layers))
            .unwrap_or(&[])
    }

    /// The decoder's layers.
    pub fn decoder(&self) -> &[LayerSpec<'a>] {
        self.layers
            .get(usize::from(self.head.encoder_layers)..)
            .unwrap_or(&[])
    }

    /// Multiply-accumulates of the encoder per frame.
    pub fn encoder_macs(&self) -> usize {
        self.encoder()
            .iter()
            .map(|l| usize::from(l.inputs) * usize::from(l.outputs))
            .sum()
    }

    /// Multiply-accumulates of the decoder per frame.
    pub fn decoder_macs(&self) -> usize {
        self.decoder()
            .iter()
            .map(|l| usize::from(l.inputs) * usize::from(l.outputs))
            .sum()
    }
}

/// One column's correction (see [`Corrections`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorrectedColumn {
    /// The output value index.
    pub column: usize,
    /// Bits of its code, `1..=16`.
    pub bits: u8,
    /// Smallest correction.
    pub low: f32,
    /// Width of one correction step.
    pub step: f32,
}

impl CorrectedColumn {
    /// The code of a residual `value - decoded`: the step it falls in, clamped to the codes.
    pub fn code(&self, residual: f32) -> u16 {
        let steps = (residual - self.low) / self.step;
        // Validated models have 1..=16 bits; the `min` keeps a hand-made one from overflowing.
        let top = (1u32 << self.bits.min(MAX_CORRECTION_BITS)) - 1;
        // `as` truncates, which is floor for the non-negative quotients it sees (NaN: 0).
        let code = if steps > 0.0 { steps as u32 } else { 0 };
        code.min(top) as u16
    }

    /// The correction a code stands for: the middle of its step.
    pub fn correction(&self, code: u16) -> f32 {
        self.low + (f32::from(code) + 0.5) * self.step
    }
}

/// Checks a corrections section against a model of `n` values and its exact columns.
fn validate_corrections(
    corrections: &Corrections<'_>,
    n: usize,
    exact: Option<&ExactColumns<'_>>,
) -> Result<()> {
    let columns = corrections.columns.len();
    if columns == 0 || !corrections.columns.has_len(columns) {
        return Err(Error::Invalid("corrections: none"));
    }
    check_len(&corrections.bits, columns, "correction bits")?;
    check_len(&corrections.low, columns, "correction lows")?;
    check_len(&corrections.step, columns, "correction steps")?;
    let mut previous: Option<u16> = None;
    for column in corrections.columns.iter() {
        if usize::from(column) >= n || previous.is_some_and(|p| p >= column) {
            return Err(Error::Invalid("corrections: column order"));
        }
        if exact.is_some_and(|e| e.columns.iter().any(|c| c == column)) {
            return Err(Error::Invalid("corrections: an exact column"));
        }
        previous = Some(column);
    }
    let section = corrections.bits.iter().zip(corrections.low.iter());
    for ((bits, low), step) in section.zip(corrections.step.iter()) {
        if !(1..=MAX_CORRECTION_BITS).contains(&bits) {
            return Err(Error::Invalid("correction bits"));
        }
        // Every correction lies in `low .. low + 2^bits * step`: all of it finite.
        let top = low + libm::ldexpf(step, i32::from(bits));
        if !low.is_finite() || !positive_finite(step) || !top.is_finite() {
            return Err(Error::Invalid("correction range"));
        }
    }
    Ok(())
}

/// The index of the entry of the (strictly increasing) `table` nearest to `x`; the lower one
/// on a tie. A linear scan: tables hold a few dozen values (the trainer keeps at most 64),
/// and it is the smallest code for the firmware.
fn nearest(table: &LeSlice<'_, f32>, x: f32) -> usize {
    let mut best = (0usize, f32::INFINITY);
    for (i, v) in table.iter().enumerate() {
        let d = libm::fabsf(x - v);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// The columns of an exact-columns section with their tables, carved out of `values` by the
/// counts (a table past the end of a section validation refuses comes out empty).
fn tables<'a>(exact: ExactColumns<'a>) -> impl Iterator<Item = (usize, LeSlice<'a, f32>)> + 'a {
    let values = exact.values.bytes();
    let mut start = 0usize;
    exact
        .columns
        .iter()
        .zip(exact.counts_minus_one.iter())
        .map(move |(column, count)| {
            let end = start + (usize::from(count) + 1) * 4;
            let table = LeSlice::new(values.get(start..end).unwrap_or(&[]));
            start = end;
            (usize::from(column), table)
        })
}

/// Checks an exact-columns section against a model of `n` values.
fn validate_exact(exact: &ExactColumns<'_>, n: usize) -> Result<()> {
    let columns = exact.columns.len();
    if columns == 0 || !exact.columns.has_len(columns) {
        return Err(Error::Invalid("exact columns: none"));
    }
    check_len(&exact.counts_minus_one, columns, "exact column counts")?;
    let total: usize = exact
        .counts_minus_one
        .iter()
        .map(|c| usize::from(c) + 1)
        .sum();
    check_len(&exact.values, total, "exact column values")?;
    let mut previous: Option<u16> = None;
    for column in exact.columns.iter() {
        if usize::from(column) >= n || previous.is_some_and(|p| p >= column) {
            return Err(Error::Invalid("exact columns: column order"));
        }
        previous = Some(column);
    }
    for (_, table) in tables(*exact) {
        let mut last = f32::NEG_INFINITY;
        for v in table.iter() {
            if !v.is_finite() || v.partial_cmp(&last) != Some(core::cmp::Ordering::Greater) {
                return Err(Error::Invalid("exact columns: table order"));
            }
            last = v;
        }
    }
    Ok(())
}

fn postcard_error(e: postcard::Error) -> Error {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
        _ => Error::Malformed,
    }
}
