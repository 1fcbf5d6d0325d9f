//! Post-training quantization of a float autoencoder into a model blob (feature `alloc`).
//!
//! The trainer (`baler-train`) calibrates activation ranges on training data and hands them here; this
//! module owns the arithmetic that must match the integer path exactly (scales, requantization
//! multipliers and shifts, bias rounding, lookup tables).

use crate::error::{Error, Result};
use crate::model::le::LeSlice;
use crate::model::spec::{
    self, blob_len, build_lut_table, write_blob, Activation, Corrections, ExactColumns, LayerSpec,
    Lut, LutFunction, ModelHead, ModelSpec, ACTIVATION_MAX,
};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// A float activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FloatActivation {
    /// `y = x`.
    Identity,
    /// `y = max(x, 0)`.
    Relu,
    /// `y = x` for `x >= 0`, else `slope * x`; slope in `0..1`.
    LeakyRelu(f32),
    /// `tanh(x)`, quantized as a lookup table.
    Tanh,
    /// `1 / (1 + exp(-x))`, quantized as a lookup table.
    Sigmoid,
}

impl FloatActivation {
    /// Applies the function.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            FloatActivation::Identity => x,
            FloatActivation::Relu => x.max(0.0),
            FloatActivation::LeakyRelu(s) => {
                if x >= 0.0 {
                    x
                } else {
                    x * s
                }
            }
            FloatActivation::Tanh => LutFunction::Tanh.eval(x),
            FloatActivation::Sigmoid => LutFunction::Sigmoid.eval(x),
        }
    }
}

/// One float dense layer, `y = act(W x + b)`, with its calibrated ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Weights, row-major `[outputs][inputs]`.
    pub weights: Vec<f32>,
    /// Bias per output.
    pub bias: Vec<f32>,
    /// The activation.
    pub activation: FloatActivation,
    /// Largest |pre-activation| seen in calibration (used by lookup-table activations).
    pub pre_range: f32,
    /// Largest |output| seen in calibration.
    pub out_range: f32,
}

/// A float autoencoder with per-feature normalization `z = (x - offset) / scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    /// Logical shape of one frame; its product is the input width.
    pub frame_shape: Vec<u32>,
    /// Feature names (empty, or one per input).
    pub names: Vec<String>,
    /// Latent code width in bits, 1..=16.
    pub code_bits: u8,
    /// How many layers form the encoder.
    pub encoder_layers: usize,
    /// Normalization offset per feature.
    pub offset: Vec<f32>,
    /// Normalization scale per feature (non-zero).
    pub scale: Vec<f32>,
    /// Largest |normalized input| seen in calibration.
    pub input_range: f32,
    /// Encoder layers then decoder layers.
    pub layers: Vec<FloatLayer>,
    /// Columns coded exactly beside the latent codes (see [`crate::model::spec::ExactColumns`]).
    pub exact: Vec<ExactColumn>,
    /// Per-column corrections of the network's output (see
    /// [`crate::model::spec::Corrections`]), in column order.
    pub corrections: Vec<ColumnCorrection>,
}

/// One column's correction: `bits` a frame for residuals in `low .. low + 2^bits * step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnCorrection {
    /// The column (output value index), not an exact column.
    pub column: usize,
    /// Bits of its code a frame, `1..=16`.
    pub bits: u8,
    /// Smallest correction.
    pub low: f32,
    /// Width of one step.
    pub step: f32,
}

/// A discrete column coded exactly: its index and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactColumn {
    /// The column (input value index).
    pub column: usize,
    /// Its values, strictly increasing and finite (1..=65536 of them).
    pub values: Vec<f32>,
}

impl FloatModel {
    /// Runs the float network on one normalized frame, recording the largest |pre-activation|
    /// and |output| per layer into `ranges` (`(pre, out)` per layer).
    pub fn forward_normalized(&self, z: &[f32], ranges: &mut [(f32, f32)]) -> Vec<f32> {
        let mut a = z.to_vec();
        for (layer, range) in self.layers.iter().zip(ranges.iter_mut()) {
            let mut next = vec![0f32; layer.outputs];
            for (o, slot) in next.iter_mut().enumerate() {
                let row = &layer.weights[o * layer.inputs..(o + 1) * layer.inputs];
                let pre: f32 = row.iter().zip(&a).map(|(w, x)| w * x).sum::<f32>() + layer.bias[o];
                let y = layer.activation.apply(pre);
                range.0 = range.0.max(pre.abs());
                range.1 = range.1.max(y.abs());
                *slot = y;
            }
            a = next;
        }
        a
    }

    /// Sets `input_range` and every layer's ranges from calibration frames (raw values,
    /// `frames.len()` a multiple of the input width).
    pub fn calibrate(&mut self, frames: &[f32]) {
        let n = self.offset.len().max(1);
        let mut ranges = vec![(0f32, 0f32); self.layers.len()];
        let mut input_range = 0f32;
        for frame in frames.chunks_exact(n) {
            let z: Vec<f32> = frame
                .iter()
                .zip(self.offset.iter().zip(&self.scale))
                .map(|(x, (o, s))| (x - o) / s)
                .collect();
            input_range = z.iter().fold(input_range, |m, v| m.max(v.abs()));
            self.forward_normalized(&z, &mut ranges);
        }
        self.input_range = input_range;
        for (layer, (pre, out)) in self.layers.iter_mut().zip(ranges) {
            layer.pre_range = pre;
            layer.out_range = out;
        }
    }

    /// Quantizes the model into a validated model blob.
    pub fn quantize(&self) -> Result<Vec<u8>> {
        quantize(self)
    }
}

/// Splits a positive real ratio into a multiplier in `2^30..2^31` and a right shift.
pub fn requantization(ratio: f64) -> Result<(i32, u8)> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(Error::Misuse("requantization ratio"));
    }
    let (mantissa, exponent) = libm::frexp(ratio);
    let mut m = libm::round(mantissa * (1u64 << 31) as f64) as i64;
    let mut shift = 31 - exponent;
    if m == 1i64 << 31 {
        m = 1 << 30;
        shift -= 1;
    }
    if shift > 62 {
        // Tiny ratio: keep the largest representable precision at shift 62.
        m = libm::round(ratio * libm::ldexp(1.0, 62)) as i64;
        shift = 62;
    }
    if !(1..=62).contains(&shift) || m <= 0 {
        return Err(Error::Misuse("requantization ratio out of range"));
    }
    Ok((m as i32, shift as u8))
}

fn le_bytes<T: crate::model::le::LeScalar>(values: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        v.write(&mut |b| out.push(b));
    }
    out
}

fn positive_range(r: f32) -> f32 {
    if r.is_finite() && r > 0.0 {
        r
    } else {
        1.0
    }
}

/// Byte arrays of one quantized layer (the blob borrows them).
struct LayerBytes {
    weights: Vec<u8>,
    weight_scales: Vec<u8>,
    bias: Vec<u8>,
    multiplier: Vec<u8>,
    shift: Vec<u8>,
    table: Vec<u8>,
    input_scale: f32,
    output_scale: f32,
    activation: FloatActivation,
    lut_input_scale: f32,
    slope_q15: i16,
}

fn quantize_layer(layer: &FloatLayer, input_scale: f32, output_scale: f32) -> Result<LayerBytes> {
    let lut = matches!(
        layer.activation,
        FloatActivation::Tanh | FloatActivation::Sigmoid
    );
    let pre_scale = if lut {
        positive_range(layer.pre_range) / ACTIVATION_MAX as f32
    } else {
        output_scale
    };
    if layer.weights.len() != layer.inputs * layer.outputs || layer.bias.len() != layer.outputs {
        return Err(Error::Misuse("float layer shape"));
    }
    let (mut weights, mut scales, mut bias, mut mult, mut shifts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, &b) in layer
        .weights
        .chunks_exact(layer.inputs.max(1))
        .zip(&layer.bias)
    {
        let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        let mut ws = if max > 0.0 {
            max / 127.0
        } else {
            pre_scale / input_scale
        };
        // The loader's proof that the 32-bit accumulator cannot overflow,
        // sum|q| x 32768 + |bias| <= i32::MAX, must hold. A wide row (thousands of inputs)
        // cannot meet it with weights up to 127, so its scale is coarsened until it does:
        // the row's largest weight then gets fewer than 127 levels.
        let (mut quantized, mut bq) = (Vec::new(), 0i32);
        for _ in 0..400 {
            quantized = row
                .iter()
                .map(|w| libm::roundf(w / ws).clamp(-127.0, 127.0) as i8)
                .collect();
            let acc_scale = f64::from(input_scale) * f64::from(ws);
            bq = libm::round(f64::from(b) / acc_scale).clamp(-1e9, 1e9) as i32;
            let sum: i64 = quantized.iter().map(|&q| i64::from(q.unsigned_abs())).sum();
            if sum * 32768 + i64::from(bq).abs() <= i64::from(i32::MAX) {
                break;
            }
            // Straight to the scale the sum asks for, then in small steps for the rounding.
            let over = (sum * 32768 + i64::from(bq).abs()) as f32 / i32::MAX as f32;
            ws *= over.max(1.01);
        }
        weights.extend(quantized);
        let acc_scale = f64::from(input_scale) * f64::from(ws);
        let (m, s) = requantization(acc_scale / f64::from(pre_scale))?;
        scales.push(ws);
        bias.push(bq);
        mult.push(m);
        shifts.push(s);
    }
    let mut table = Vec::new();
    if lut {
        let function = match layer.activation {
            FloatActivation::Tanh => LutFunction::Tanh,
            _ => LutFunction::Sigmoid,
        };
        table = vec![0u8; ((65536 >> 8) + 1) * 2];
        build_lut_table(function, 8, pre_scale, output_scale, &mut table)?;
    }
    let slope_q15 = match layer.activation {
        FloatActivation::LeakyRelu(s) => libm::roundf(s * 32768.0).clamp(0.0, 32767.0) as i16,
        _ => 0,
    };
    Ok(LayerBytes {
        weights: le_bytes(weights),
        weight_scales: le_bytes(scales),
        bias: le_bytes(bias),
        multiplier: le_bytes(mult),
        shift: shifts,
        table,
        input_scale,
        output_scale,
        activation: layer.activation,
        lut_input_scale: pre_scale,
        slope_q15,
    })
}

fn layer_spec<'b>(bytes: &'b LayerBytes, layer: &FloatLayer) -> LayerSpec<'b> {
    let activation = match bytes.activation {
        FloatActivation::Identity => Activation::Identity,
        FloatActivation::Relu => Activation::Relu,
        FloatActivation::LeakyRelu(_) => Activation::LeakyRelu {
            slope_q15: bytes.slope_q15,
        },
        FloatActivation::Tanh | FloatActivation::Sigmoid => Activation::Lut(Lut {
            function: if bytes.activation == FloatActivation::Tanh {
                LutFunction::Tanh
            } else {
                LutFunction::Sigmoid
            },
            index_shift: 8,
            input_scale: bytes.lut_input_scale,
            table: LeSlice::new(&bytes.table),
        }),
    };
    LayerSpec {
        inputs: layer.inputs as u16,
        outputs: layer.outputs as u16,
        weights: LeSlice::new(&bytes.weights),
        weight_scales: LeSlice::new(&bytes.weight_scales),
        bias: LeSlice::new(&bytes.bias),
        multiplier: LeSlice::new(&bytes.multiplier),
        shift: LeSlice::new(&bytes.shift),
        input_scale: bytes.input_scale,
        output_scale: bytes.output_scale,
        activation,
    }
}

/// How far beyond its calibrated range a 16-bit activation (the inputs, every layer but the
/// latent one) can go before it saturates. Calibration sees only the frames it is given; an
/// event beyond them (heavy tails are the rule in event tables) would otherwise be clipped at
/// every layer, and on the Delphes ttbar table that made the quantized validation error 5x
/// the float one (0.109 against 0.021; 0.028 with this headroom). It costs one of the 15
/// bits of resolution, which changed the hzz model's error by less than 1e-5. The latent
/// codes get none: there every bit is paid for in the stream.
pub const ACTIVATION_HEADROOM: f32 = 2.0;

/// Quantizes `model` (calibrated) into a model blob and validates it by loading it back.
pub fn quantize(model: &FloatModel) -> Result<Vec<u8>> {
    let n = model.offset.len();
    if model.scale.len() != n || model.layers.is_empty() || !(1..=16).contains(&model.code_bits) {
        return Err(Error::Misuse("float model"));
    }
    if model
        .layers
        .iter()
        .any(|l| l.inputs > u16::MAX as usize || l.outputs > u16::MAX as usize)
    {
        return Err(Error::Misuse("layer wider than 65535"));
    }
    let latent_index = model.encoder_layers.wrapping_sub(1);
    let code_max = ((1i32 << (model.code_bits - 1)) - 1).max(1) as f32;
    let mut input_scale =
        ACTIVATION_HEADROOM * positive_range(model.input_range) / ACTIVATION_MAX as f32;
    let first_scale = input_scale;
    let mut quantized = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let (levels, headroom) = if i == latent_index {
            (code_max, 1.0)
        } else {
            (ACTIVATION_MAX as f32, ACTIVATION_HEADROOM)
        };
        let output_scale = headroom * positive_range(layer.out_range) / levels;
        quantized.push(quantize_layer(layer, input_scale, output_scale)?);
        input_scale = output_scale;
    }
    let last_scale = input_scale;
    let specs: Vec<LayerSpec<'_>> = quantized
        .iter()
        .zip(&model.layers)
        .map(|(b, l)| layer_spec(b, l))
        .collect();
    let input_gain = le_bytes(model.scale.iter().map(|s| 1.0 / (s * first_scale)));
    let output_gain = le_bytes(model.scale.iter().map(|s| last_scale * s));
    let offset = le_bytes(model.offset.iter().copied());
    let shape = le_bytes(model.frame_shape.iter().copied());
    let names = model.names.join("\n");
    let exact_columns = le_bytes(model.exact.iter().map(|e| e.column as u16));
    let exact_counts = le_bytes(
        model
            .exact
            .iter()
            .map(|e| e.values.len().wrapping_sub(1) as u16),
    );
    let exact_values = le_bytes(model.exact.iter().flat_map(|e| e.values.iter().copied()));
    if model.exact.iter().any(|e| {
        e.column > usize::from(u16::MAX) || !(1..=spec::MAX_EXACT_VALUES).contains(&e.values.len())
    }) {
        return Err(Error::Misuse("an exact column needs 1 to 65536 values"));
    }
    if model
        .corrections
        .iter()
        .any(|c| c.column > usize::from(u16::MAX))
    {
        return Err(Error::Misuse("a corrected column past 65535"));
    }
    let correction_columns = le_bytes(model.corrections.iter().map(|c| c.column as u16));
    let correction_bits: Vec<u8> = model.corrections.iter().map(|c| c.bits).collect();
    let correction_low = le_bytes(model.corrections.iter().map(|c| c.low));
    let correction_step = le_bytes(model.corrections.iter().map(|c| c.step));
    let spec = ModelSpec {
        head: ModelHead {
            frame_shape: LeSlice::new(&shape),
            names: &names,
            code_bits: model.code_bits,
            encoder_layers: u8::try_from(model.encoder_layers)
                .map_err(|_| Error::Misuse("encoder layer count"))?,
            input_offset: LeSlice::new(&offset),
            input_gain: LeSlice::new(&input_gain),
            output_gain: LeSlice::new(&output_gain),
            output_offset: LeSlice::new(&offset),
        },
        layers: &specs,
        exact: (!model.exact.is_empty()).then(|| ExactColumns {
            columns: LeSlice::new(&exact_columns),
            counts_minus_one: LeSlice::new(&exact_counts),
            values: LeSlice::new(&exact_values),
        }),
        corrections: (!model.corrections.is_empty()).then(|| Corrections {
            columns: LeSlice::new(&correction_columns),
            bits: LeSlice::new(&correction_bits),
            low: LeSlice::new(&correction_low),
            step: LeSlice::new(&correction_step),
        }),
    };
    let mut blob = vec![0u8; blob_len(&spec)?];
    let len = write_blob(&spec, &mut blob)?;
    blob.truncate(len);
    // Validate with generous capacities: the caller loads with its own.
    crate::Model::<'_, 255, 65535>::from_bytes(&blob)?;
    Ok(blob)
}

/// SplitMix64: a tiny deterministic generator for building test and benchmark models.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

impl FloatModel {
    /// A random, calibrated autoencoder with the given widths (`widths[0]` inputs, the
    /// encoder ending at `widths[encoder_layers]`, mirrored back by the decoder), for tests
    /// and benchmarks. `activations` cycles over the hidden layers; latent and output layers
    /// are linear. Returns the model and the calibration frames it was fitted on.
    pub fn random(
        seed: u64,
        widths: &[usize],
        code_bits: u8,
        activations: &[FloatActivation],
        frames: usize,
    ) -> (FloatModel, Vec<f32>) {
        let mut rng = SplitMix64(seed);
        let n = widths.first().copied().unwrap_or(1);
        let enc: Vec<usize> = widths.to_vec();
        let mut dims = enc.clone();
        dims.extend(enc.iter().rev().skip(1));
        let encoder_layers = enc.len() - 1;
        let mut layers = Vec::new();
        for (i, pair) in dims.windows(2).enumerate() {
            let (inputs, outputs) = (pair[0], pair[1]);
            let gain = 1.5 / libm::sqrtf(inputs as f32);
            let weights = (0..inputs * outputs)
                .map(|_| rng.symmetric() * gain)
                .collect();
            let bias = (0..outputs).map(|_| rng.symmetric() * 0.1).collect();
            let linear = i + 1 == encoder_layers || i + 2 == dims.len();
            let activation = if linear || activations.is_empty() {
                FloatActivation::Identity
            } else {
                activations[i % activations.len()]
            };
            layers.push(FloatLayer {
                inputs,
                outputs,
                weights,
                bias,
                activation,
                pre_range: 0.0,
                out_range: 0.0,
            });
        }
        let offset: Vec<f32> = (0..n).map(|_| rng.symmetric() * 100.0).collect();
        let scale: Vec<f32> = (0..n)
            .map(|_| 0.5 + 10.0 * (rng.symmetric() + 1.0))
            .collect();
        let data: Vec<f32> = (0..frames * n)
            .map(|i| offset[i % n] + scale[i % n] * rng.symmetric() * 2.0)
            .collect();
        let mut model = FloatModel {
            frame_shape: alloc::vec![n as u32],
            names: (0..n).map(|i| alloc::format!("feature_{i}")).collect(),
            code_bits,
            encoder_layers,
            offset,
            scale,
            input_range: 0.0,
            layers,
            exact: Vec::new(),
            corrections: Vec::new(),
        };
        model.calibrate(&data);
        (model, data)
    }
}
