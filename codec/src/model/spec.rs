//! The model blob's wire structures (serde + postcard), shared by the writer (`baler-train`,
//! through the quantizer) and the loader. Every array is a borrowed little-endian byte string
//! ([`LeSlice`]), so a loaded model points into the blob instead of copying it. See
//! `FORMAT.md` for the byte layout.

use crate::error::{Error, Result};
use crate::model::le::LeSlice;
use serde::{Deserialize, Serialize};

/// Magic bytes at the start of every model blob.
pub const MODEL_MAGIC: [u8; 4] = *b"BALM";
/// The model blob format version this build writes and reads.
pub const MODEL_VERSION: u16 = 1;
/// Blob header flag: an [`ExactColumns`] section follows the layers.
pub const FLAG_EXACT_COLUMNS: u16 = 1;
/// Blob header flag: a [`Corrections`] section follows the layers (and the exact columns).
pub const FLAG_CORRECTIONS: u16 = 2;
/// The most bits a column's correction code may have.
pub const MAX_CORRECTION_BITS: u8 = 16;
/// The most values an exact column's table may hold (its codes are at most 16 bits).
pub const MAX_EXACT_VALUES: usize = 1 << 16;
/// Length of the fixed blob header: magic, version, flags, model id.
pub const MODEL_HEADER_LEN: usize = 16;
/// The largest magnitude of any hidden activation code (activations are symmetric int16).
pub const ACTIVATION_MAX: i32 = 32767;

/// Smooth functions available as lookup-table activations.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LutFunction {
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + exp(-x))`.
    Sigmoid,
}

impl LutFunction {
    /// The function in f32, for the reference path.
    pub fn eval(self, x: f32) -> f32 {
        match self {
            LutFunction::Tanh => libm::tanhf(x),
            LutFunction::Sigmoid => 1.0 / (1.0 + libm::expf(-x)),
        }
    }

    /// The function in f64, for building tables.
    pub fn eval_f64(self, x: f64) -> f64 {
        match self {
            LutFunction::Tanh => libm::tanh(x),
            LutFunction::Sigmoid => 1.0 / (1.0 + libm::exp(-x)),
        }
    }
}

/// A lookup-table activation with linear interpolation between entries.
///
/// The layer's requantization targets `input_scale` (pre-activation code units); the table
/// maps a pre-activation code `x` in `-32767..=32767` to an output code in the layer's
/// `output_scale`. With `u = x + 32768`, `i = u >> index_shift`, `f = u & (2^index_shift - 1)`:
/// `y = t[i] + round((t[i+1] - t[i]) * f / 2^index_shift)`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Lut<'a> {
    /// The function the table samples (used by the f32 reference path).
    pub function: LutFunction,
    /// log2 of the input codes per table segment, 6..=15; the table has `2^(16-shift)+1` entries.
    pub index_shift: u8,
    /// Real value of one pre-activation code.
    pub input_scale: f32,
    /// The table, int16 output codes, each within `-32767..=32767`.
    #[serde(borrow)]
    pub table: LeSlice<'a, i16>,
}

/// The nonlinearity after a layer's requantization.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum Activation<'a> {
    /// `y = x`.
    Identity,
    /// `y = max(x, 0)`.
    Relu,
    /// `y = x` for `x >= 0`, else `round(x * slope_q15 / 32768)`; `slope_q15` in `0..=32767`.
    LeakyRelu {
        /// The negative slope in Q15.
        slope_q15: i16,
    },
    /// A lookup table for a smooth function.
    Lut(#[serde(borrow)] Lut<'a>),
}

/// One dense layer: `y = act(requantize(W x + b))`, int8 weights, int32 bias, int16 activations.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec<'a> {
    /// Input width.
    pub inputs: u16,
    /// Output width.
    pub outputs: u16,
    /// int8 weights, row-major `[outputs][inputs]`.
    #[serde(borrow)]
    pub weights: LeSlice<'a, i8>,
    /// Real value of one weight step, per output channel (symmetric quantization).
    pub weight_scales: LeSlice<'a, f32>,
    /// int32 bias per output channel, in units of `input_scale * weight_scale`.
    pub bias: LeSlice<'a, i32>,
    /// Requantization multiplier per output channel, `1..=i32::MAX`.
    pub multiplier: LeSlice<'a, i32>,
    /// Requantization right shift per output channel, `1..=62`.
    pub shift: LeSlice<'a, u8>,
    /// Real value of one input activation code.
    pub input_scale: f32,
    /// Real value of one output activation code.
    pub output_scale: f32,
    /// The activation.
    pub activation: Activation<'a>,
}

/// Everything in the blob body before the layers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ModelHead<'a> {
    /// Logical shape of one frame (e.g. `[31]` for a table row, `[10, 10]` for a tile);
    /// its product is the model's input width. 1 to 4 dimensions.
    #[serde(borrow)]
    pub frame_shape: LeSlice<'a, u32>,
    /// Feature names joined by `'\n'`; empty, or one name per input value.
    pub names: &'a str,
    /// Width of a latent code in bits, 1..=16.
    pub code_bits: u8,
    /// How many of the layers form the encoder; the rest form the decoder.
    pub encoder_layers: u8,
    /// Per-feature offset subtracted before encoding.
    pub input_offset: LeSlice<'a, f32>,
    /// Per-feature gain from `value - offset` to input activation codes.
    pub input_gain: LeSlice<'a, f32>,
    /// Per-feature gain from output activation codes to `value - offset`.
    pub output_gain: LeSlice<'a, f32>,
    /// Per-feature offset added after decoding.
    pub output_offset: LeSlice<'a, f32>,
}

/// Columns coded exactly beside the latent codes (blob flag [`FLAG_EXACT_COLUMNS`]): discrete
/// columns such as charges, counts and flags, whose few values the trainer found in the data.
/// Each frame of a fixed-rate stream stores, after its latent codes, each such column's index
/// into its table in `bits_for(count)` bits, and the decoder writes the table's value there
/// instead of the network's output. The network still sees these columns as inputs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ExactColumns<'a> {
    /// The columns (input value indices), strictly increasing.
    #[serde(borrow)]
    pub columns: LeSlice<'a, u16>,
    /// How many values each column's table holds, 1..=65536 (stored minus one).
    pub counts_minus_one: LeSlice<'a, u16>,
    /// Every column's table, one after another, each strictly increasing and finite.
    pub values: LeSlice<'a, f32>,
}

/// Per-column corrections of the network's output (blob flag [`FLAG_CORRECTIONS`]): a few
/// bits a frame for the columns the network reconstructs worst, so that no column is left
/// far behind while the rate stays fixed. The trainer measures each column's residual
/// `value - decoded` (f32) over its data and spreads a budget of bits over the columns, the
/// next bit always to the column whose largest error is the largest fraction of its range.
///
/// Each frame of a fixed-rate stream stores, after its latent codes and exact columns, one
/// code `q` of `bits` bits per listed column, in column order: the encoder's
/// `min(floor((value - decoded - low) / step), 2^bits - 1)` (0 for a negative quotient), and
/// the decoder adds `low + (q + 0.5) * step` to the network's output, each a single f32 step.
/// Within `low .. low + 2^bits * step` the error is at most `step / 2`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Corrections<'a> {
    /// The corrected columns (output value indices), strictly increasing, none of them an
    /// exact column.
    #[serde(borrow)]
    pub columns: LeSlice<'a, u16>,
    /// Bits of each column's code, `1..=MAX_CORRECTION_BITS`.
    pub bits: LeSlice<'a, u8>,
    /// Smallest correction of each column (finite).
    pub low: LeSlice<'a, f32>,
    /// Width of each column's correction step (positive; `low + 2^bits * step` finite).
    pub step: LeSlice<'a, f32>,
}

/// Bits of one exact column's code in a frame: enough for `count` table indices, at least 1.
pub fn bits_for(count: usize) -> u8 {
    let mut bits = 1u8;
    while bits < 16 && (1usize << bits) < count {
        bits += 1;
    }
    bits
}

/// A whole model as written by the trainer: the head, then the layers (a postcard sequence),
/// then the exact columns when there are any.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct ModelSpec<'a> {
    /// Everything before the layers.
    pub head: ModelHead<'a>,
    /// Encoder layers followed by decoder layers.
    pub layers: &'a [LayerSpec<'a>],
    /// Columns coded exactly (written after the layers, flagged in the header).
    #[serde(skip)]
    pub exact: Option<ExactColumns<'a>>,
    /// Per-column corrections (written last, flagged in the header).
    #[serde(skip)]
    pub corrections: Option<Corrections<'a>>,
}

/// Serialized length of an optional section.
fn section_len<T: Serialize>(section: &Option<T>) -> Result<usize> {
    match section {
        Some(section) => {
            postcard::serialize_with_flavor(section, postcard::ser_flavors::Size::default())
                .map_err(|_| Error::Malformed)
        }
        None => Ok(0),
    }
}

/// Table-free: the id is computed once per load, and a table would cost 2 KiB of flash.
const CRC64: crc::Crc<u64, crc::NoTable> = crc::Crc::<u64, crc::NoTable>::new(&crc::CRC_64_XZ);

/// The model id: CRC-64/XZ of the blob body (everything after the 16-byte header).
pub fn model_id(body: &[u8]) -> u64 {
    CRC64.checksum(body)
}

/// Serialized length of `spec` as a blob, header included.
pub fn blob_len(spec: &ModelSpec<'_>) -> Result<usize> {
    let size = postcard::serialize_with_flavor(spec, postcard::ser_flavors::Size::default())
        .map_err(|_| Error::Malformed)?;
    Ok(MODEL_HEADER_LEN + size + section_len(&spec.exact)? + section_len(&spec.corrections)?)
}

/// Writes `spec` as a model blob into `out` and returns its length. The blob is not
/// validated here: load it with [`crate::Model::from_bytes`] to check it.
pub fn write_blob(spec: &ModelSpec<'_>, out: &mut [u8]) -> Result<usize> {
    let needed = blob_len(spec)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    let (header, body) = out.split_at_mut(MODEL_HEADER_LEN);
    let mut body_len = postcard::to_slice(spec, body)
        .map_err(|_| Error::BufferTooSmall { needed })?
        .len();
    let mut flags = 0u16;
    if let Some(exact) = &spec.exact {
        body_len += append_section(exact, body, body_len, needed)?;
        flags |= FLAG_EXACT_COLUMNS;
    }
    if let Some(corrections) = &spec.corrections {
        body_len += append_section(corrections, body, body_len, needed)?;
        flags |= FLAG_CORRECTIONS;
    }
    let id = model_id(&body[..body_len]);
    header[0..4].copy_from_slice(&MODEL_MAGIC);
    header[4..6].copy_from_slice(&MODEL_VERSION.to_le_bytes());
    header[6..8].copy_from_slice(&flags.to_le_bytes());
    header[8..16].copy_from_slice(&id.to_le_bytes());
    Ok(MODEL_HEADER_LEN + body_len)
}

/// Writes `section` into `body` from `at`; returns its length (`needed`: the whole blob's,
/// for the error).
fn append_section<T: Serialize>(
    section: &T,
    body: &mut [u8],
    at: usize,
    needed: usize,
) -> Result<usize> {
    let rest = body.get_mut(at..).ok_or(Error::BufferTooSmall { needed })?;
    Ok(postcard::to_slice(section, rest)
        .map_err(|_| Error::BufferTooSmall { needed })?
        .len())
}

/// Fills `table` (little-endian int16, `2^(16-index_shift)+1` entries) for a lookup-table
/// activation: entry `i` is `f((i * 2^index_shift - 32768) * input_scale) / output_scale`,
/// rounded and clamped to ±32767. Returns the number of bytes written.
pub fn build_lut_table(
    function: LutFunction,
    index_shift: u8,
    input_scale: f32,
    output_scale: f32,
    table: &mut [u8],
) -> Result<usize> {
    if !(6..=15).contains(&index_shift) {
        return Err(Error::Invalid("lookup table index shift"));
    }
    let entries = (65536usize >> index_shift) + 1;
    let needed = entries * 2;
    let out = table
        .get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed })?;
    for (i, chunk) in out.chunks_exact_mut(2).enumerate() {
        let code = ((i << index_shift) as f64 - 32768.0).max(-32767.0);
        let y = function.eval_f64(code * f64::from(input_scale)) / f64::from(output_scale);
        let q = libm::round(y).clamp(-32767.0, 32767.0) as i16;
        chunk.copy_from_slice(&q.to_le_bytes());
    }
    Ok(needed)
}
