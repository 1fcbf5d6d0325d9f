//! Training a float autoencoder with dfdx (written by a parallel task; this is the interface).

use baler_codec::model::quantize::{
    ExactColumn, FloatActivation, FloatLayer, FloatModel, SplitMix64,
};
use dfdx::losses::mse_loss;
use dfdx::optim::AdamConfig;
use dfdx::shapes::{Axes2, Axis, HasShape, Shape};
use dfdx::tensor::{Gradients, Tape, Tensor, Trace};
use dfdx::tensor_ops::{
    leakyrelu, relu, sigmoid, tanh, Backward, BroadcastTo, PermuteTo, TryMatMul,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// dfdx's CPU device (multi-threaded).
    Cpu,
    /// dfdx's CUDA device (feature `cuda`).
    Cuda,
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Hidden widths of the encoder, e.g. `[200, 100, 50]`; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Latent width.
    pub latent: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Initial Adam learning rate.
    pub lr: f64,
    /// Fraction of frames held out for validation (early stopping, reported errors).
    pub validation_fraction: f64,
    /// Seed for initialization, shuffling and the split.
    pub seed: u64,
    /// Latent code width in bits.
    pub code_bits: u8,
    /// Device.
    pub device: Device,
    /// Show a progress bar.
    pub progress: bool,
    /// Columns coded exactly beside the latent codes (see [`discrete_columns`]): the network
    /// sees them as inputs but is not trained to reconstruct them.
    pub exact: Vec<ExactColumn>,
}

/// Losses of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EpochLoss {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss (MSE on normalized values).
    pub train: f64,
    /// Validation loss (MSE on normalized values).
    pub validation: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained, calibrated float model (normalization fitted on the training split).
    pub model: FloatModel,
    /// Loss history.
    pub history: Vec<EpochLoss>,
    /// Indices of the validation frames.
    pub validation: Vec<usize>,
}

/// LeakyReLU slope of every hidden layer.
const LEAKY_SLOPE: f32 = 0.01;
/// Epochs without validation improvement before the learning rate is halved.
const LR_PATIENCE: usize = 5;
/// Epochs without validation improvement before training stops.
const STOP_PATIENCE: usize = 15;
/// Smallest learning rate the plateau schedule goes down to.
const MIN_LR: f64 = 1e-5;
/// Frames per forward pass when evaluating the validation loss.
const EVAL_CHUNK: usize = 4096;

/// Trains an autoencoder on `frames` (`frame_len` values each, row-major).
///
/// The frames are split into training and validation sets (seeded shuffle; when fewer than two
/// frames would be held out, the training frames double as validation frames and
/// `TrainOutcome::validation` lists them). Normalization is fitted on the training split, the
/// network is trained with Adam on the MSE of normalized values, the learning rate is halved
/// after 5 epochs without validation improvement, training stops after 15, and the weights
/// with the best validation loss are returned, calibrated on every frame (the ranges that set
/// the codec's scales; see [`FloatModel::calibrate`]).
pub fn train(
    frames: &[f32],
    frame_len: usize,
    frame_shape: Vec<u32>,
    names: Vec<String>,
    config: &TrainConfig,
) -> Result<TrainOutcome, String> {
    validate(frames, frame_len, config)?;
    match config.device {
        Device::Cpu => {
            let dev = dfdx::tensor::Cpu::seed_from_u64(config.seed);
            train_on(&dev, frames, frame_len, frame_shape, names, config)
        }
        Device::Cuda => train_cuda(frames, frame_len, frame_shape, names, config),
    }
}

#[cfg(feature = "cuda")]
fn train_cuda(
    frames: &[f32],
    frame_len: usize,
    frame_shape: Vec<u32>,
    names: Vec<String>,
    config: &TrainConfig,
) -> Result<TrainOutcome, String> {
    let dev = cuda_device(config.seed)?;
    train_on(&dev, frames, frame_len, frame_shape, names, config)
}

/// The error of `--device cuda` in a build without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
const NO_CUDA_BUILD: &str =
    "this baler was built without CUDA support; build one with scripts/build-cuda.sh";

/// dfdx's CUDA device 0, seeded, or one sentence saying why there is none.
///
/// cudarc 0.9 unwraps `cuInit` and `cuDeviceGet` inside `CudaDevice::new`, so a machine
/// without a GPU (or without a driver) would panic there; asking the driver first turns that
/// into an error the command prints as one line.
#[cfg(feature = "cuda")]
fn cuda_device(seed: u64) -> Result<dfdx::tensor::Cuda, String> {
    use cudarc::driver::result;
    result::init().map_err(|e| format!("no CUDA device (cuInit: {:?})", e.0))?;
    match result::device::get_count() {
        Ok(count) if count > 0 => {}
        Ok(_) => return Err("no CUDA device (the driver sees none)".into()),
        Err(e) => return Err(format!("no CUDA device (cuDeviceGetCount: {:?})", e.0)),
    }
    dfdx::tensor::Cuda::try_seed_from_u64(seed)
        .map_err(|e| format!("cannot open the CUDA device: {e:?}"))
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(
    _frames: &[f32],
    _frame_len: usize,
    _frame_shape: Vec<u32>,
    _names: Vec<String>,
    _config: &TrainConfig,
) -> Result<TrainOutcome, String> {
    Err(NO_CUDA_BUILD.into())
}

fn validate(frames: &[f32], frame_len: usize, config: &TrainConfig) -> Result<(), String> {
    if frame_len == 0 {
        return Err("frames must have at least one value".into());
    }
    if frames.is_empty() || frames.len() % frame_len != 0 {
        return Err(format!(
            "{} values do not form whole frames of {frame_len}",
            frames.len()
        ));
    }
    if config.latent == 0 || config.hidden.contains(&0) {
        return Err("layer widths must be positive".into());
    }
    if config.batch_size == 0 {
        return Err("batch size must be positive".into());
    }
    if !(config.lr.is_finite() && config.lr > 0.0) {
        return Err("learning rate must be positive".into());
    }
    if !(0.0..1.0).contains(&config.validation_fraction) {
        return Err("validation fraction must be in [0, 1)".into());
    }
    if frames.iter().any(|v| !v.is_finite()) {
        return Err("frames contain NaN or infinite values".into());
    }
    Ok(())
}

/// Fisher-Yates shuffle driven by SplitMix64.
fn shuffle(rng: &mut SplitMix64, v: &mut [usize]) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Per-feature mean and population std of the given frames (std 1 where it is 0 or not finite).
fn fit_normalization(frames: &[f32], rows: &[usize], n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; n];
    let mut sq = vec![0f64; n];
    for &r in rows {
        for (k, &x) in frames[r * n..(r + 1) * n].iter().enumerate() {
            sum[k] += f64::from(x);
        }
    }
    let count = rows.len().max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    for &r in rows {
        for (k, &x) in frames[r * n..(r + 1) * n].iter().enumerate() {
            let d = f64::from(x) - mean[k];
            sq[k] += d * d;
        }
    }
    let scale = sq
        .iter()
        .map(|s| {
            let std = (s / count).sqrt() as f32;
            if std.is_finite() && std > 0.0 {
                std
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

/// One dense layer with runtime widths: weight `(outputs, inputs)`, bias `(outputs,)`.
struct DenseLayer<D: dfdx::tensor_ops::Device<f32>> {
    weight: Tensor<(usize, usize), f32, D>,
    bias: Tensor<(usize,), f32, D>,
    leaky: bool,
}

/// Runs the network on a batch `(rows, inputs)`.
fn forward<D, T>(
    layers: &[DenseLayer<D>],
    x: Tensor<(usize, usize), f32, D, T>,
) -> Tensor<(usize, usize), f32, D, T>
where
    D: dfdx::tensor_ops::Device<f32>,
    T: Tape<f32, D>,
{
    let mut a = x;
    for layer in layers {
        let w = layer
            .weight
            .retaped::<T>()
            .permute::<(usize, usize), Axes2<1, 0>>();
        let y = a.matmul(w);
        let shape = *y.shape();
        let y = y + layer
            .bias
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&shape);
        a = if layer.leaky {
            leakyrelu(y, LEAKY_SLOPE)
        } else {
            y
        };
    }
    a
}

/// Copies the rows `rows` of the normalized data into a `(rows, n)` tensor.
fn batch_tensor<D: dfdx::tensor_ops::Device<f32>>(
    dev: &D,
    z: &[f32],
    rows: &[usize],
    n: usize,
) -> Tensor<(usize, usize), f32, D> {
    let mut buf = Vec::with_capacity(rows.len() * n);
    for &r in rows {
        buf.extend_from_slice(&z[r * n..(r + 1) * n]);
    }
    dev.tensor_from_vec(buf, (rows.len(), n))
}

/// An error `d` of a periodic value, taken around the circle: within `[-period/2, period/2]`.
pub fn around_the_circle(d: f64, period: f64) -> f64 {
    d - period * (d / period).round()
}

/// A periodic column of a table: its index and period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodicColumn {
    /// The column.
    pub column: usize,
    /// Its period (2 pi).
    pub period: f32,
}

/// The periodic columns of a table: angles named `phi` (any case, anywhere in the name) whose
/// values all lie within `[-pi, pi]` and span at least 90% of it, so that -3.14 and 3.14 are
/// one direction. `baler evaluate` compares them around the circle.
pub fn periodic_columns(frames: &[f32], n: usize, names: &[String]) -> Vec<PeriodicColumn> {
    let pi = std::f32::consts::PI;
    (0..n)
        .filter(|&c| {
            names
                .get(c)
                .is_some_and(|name| name.to_lowercase().contains("phi"))
        })
        .filter_map(|column| {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for frame in frames.chunks_exact(n) {
                let x = frame[column];
                if x.is_nan() || x.abs() > pi {
                    return None;
                }
                lo = lo.min(x);
                hi = hi.max(x);
            }
            (hi - lo >= 0.9 * 2.0 * pi).then_some(PeriodicColumn {
                column,
                period: 2.0 * pi,
            })
        })
        .collect()
}

/// The most distinct values a column may take to be coded exactly (6 bits a frame).
pub const MAX_DISCRETE_VALUES: usize = 64;

/// The discrete columns of `frames` (`n` values each) worth coding exactly: those that take at
/// most [`MAX_DISCRETE_VALUES`] distinct finite values, and at most one per 8 frames (so a small
/// sample does not make every column look discrete). Charges, counts, flags and b-tag working
/// points are such columns; the network then need not reconstruct them.
pub fn discrete_columns(frames: &[f32], n: usize) -> Vec<ExactColumn> {
    let count = frames.len() / n.max(1);
    let limit = MAX_DISCRETE_VALUES.min(count / 8);
    (0..n)
        .filter_map(|column| {
            let mut values: Vec<f32> = Vec::new();
            for frame in frames.chunks_exact(n) {
                let x = frame[column];
                if !x.is_finite() {
                    return None;
                }
                // Sorted, no duplicates; -0.0 and 0.0 are one value (as in the table lookup).
                if let Err(at) = values.binary_search_by(|v| v.total_cmp(&(x + 0.0))) {
                    if values.len() == limit {
                        return None;
                    }
                    values.insert(at, x + 0.0);
                }
            }
            (!values.is_empty()).then_some(ExactColumn { column, values })
        })
        .collect()
}

/// The columns the network must reconstruct: 1 for each, 0 for the exact ones (which the
/// stream codes beside the latent codes); `None` when every column counts.
fn reconstruction_mask(n: usize, exact: &[ExactColumn]) -> Option<Vec<f32>> {
    if exact.is_empty() {
        return None;
    }
    let mut mask = vec![1f32; n];
    for e in exact {
        if let Some(m) = mask.get_mut(e.column) {
            *m = 0.0;
        }
    }
    Some(mask)
}

/// The training loss: the mean squared error over a batch, where the columns `mask` zeroes
/// (the exact ones) count as reconstructed perfectly, as the stream reconstructs them.
fn reconstruction_loss<D, T>(
    dev: &D,
    y: Tensor<(usize, usize), f32, D, T>,
    x: Tensor<(usize, usize), f32, D>,
    mask: Option<&[f32]>,
) -> Tensor<(), f32, D, T>
where
    D: dfdx::tensor_ops::Device<f32>,
    T: Tape<f32, D> + dfdx::tensor::Merge<dfdx::tensor::NoneTape>,
{
    match mask {
        None => mse_loss(y, x),
        Some(mask) => {
            let shape = *x.shape();
            let repeated: Vec<f32> = mask
                .iter()
                .copied()
                .cycle()
                .take(shape.0 * shape.1)
                .collect();
            let m = dev.tensor_from_vec(repeated, shape);
            mse_loss(y * m.clone(), x * m)
        }
    }
}

/// Mean squared error of the network on `rows`, without gradients.
fn evaluate<D: dfdx::tensor_ops::Device<f32>>(
    dev: &D,
    layers: &[DenseLayer<D>],
    z: &[f32],
    rows: &[usize],
    n: usize,
    mask: Option<&[f32]>,
) -> f64 {
    let mut sum = 0f64;
    for chunk in rows.chunks(EVAL_CHUNK) {
        let x = batch_tensor(dev, z, chunk, n);
        let y = forward(layers, x.clone());
        let loss = reconstruction_loss(dev, y, x, mask).as_vec()[0];
        sum += f64::from(loss) * chunk.len() as f64;
    }
    sum / rows.len().max(1) as f64
}

fn train_on<D: dfdx::tensor_ops::Device<f32>>(
    dev: &D,
    frames: &[f32],
    n: usize,
    frame_shape: Vec<u32>,
    names: Vec<String>,
    config: &TrainConfig,
) -> Result<TrainOutcome, String> {
    let count = frames.len() / n;
    let mut rng = SplitMix64(config.seed ^ 0x6261_6c65_722d_7273);

    // Split.
    let mut order: Vec<usize> = (0..count).collect();
    shuffle(&mut rng, &mut order);
    let held = ((count as f64 * config.validation_fraction).round() as usize).min(count - 1);
    let (mut train_rows, mut val_rows) = if held >= 2 {
        (order[held..].to_vec(), order[..held].to_vec())
    } else {
        (order.clone(), order)
    };
    train_rows.sort_unstable();
    val_rows.sort_unstable();

    // Normalization on the training split.
    let (offset, scale) = fit_normalization(frames, &train_rows, n);
    let z: Vec<f32> = frames
        .chunks_exact(n)
        .flat_map(|f| {
            f.iter()
                .zip(offset.iter().zip(&scale))
                .map(|(x, (o, s))| (x - o) / s)
        })
        .collect();

    // Architecture.
    let mut widths = vec![n];
    widths.extend(&config.hidden);
    widths.push(config.latent);
    widths.extend(config.hidden.iter().rev());
    widths.push(n);
    let encoder_layers = config.hidden.len() + 1;
    let depth = widths.len() - 1;
    let mut layers: Vec<DenseLayer<D>> = widths
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let (inputs, outputs) = (pair[0], pair[1]);
            // Same init as dfdx's Linear: U(-1/sqrt(in), 1/sqrt(in)), but from the seed.
            let bound = 1.0 / (inputs as f32).sqrt();
            let w: Vec<f32> = (0..inputs * outputs)
                .map(|_| rng.symmetric() * bound)
                .collect();
            let b: Vec<f32> = (0..outputs).map(|_| rng.symmetric() * bound).collect();
            DenseLayer {
                weight: dev.tensor_from_vec(w, (outputs, inputs)),
                bias: dev.tensor_from_vec(b, (outputs,)),
                leaky: i + 1 != encoder_layers && i + 1 != depth,
            }
        })
        .collect();

    let mut adam = AdamConfig {
        lr: config.lr,
        ..Default::default()
    };
    let mut moment1: Gradients<f32, D> = Gradients::leaky();
    let mut moment2: Gradients<f32, D> = Gradients::leaky();
    let mut step: i32 = 0;

    let bar = if config.progress {
        let bar = ProgressBar::new(config.epochs as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} [{elapsed_precise}]")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let snapshot = |layers: &[DenseLayer<D>]| -> Vec<(Vec<f32>, Vec<f32>)> {
        layers
            .iter()
            .map(|l| (l.weight.as_vec(), l.bias.as_vec()))
            .collect()
    };
    let mask = reconstruction_mask(n, &config.exact);
    let mask = mask.as_deref();
    let mut best_loss = evaluate(dev, &layers, &z, &val_rows, n, mask);
    let mut best = snapshot(&layers);
    let mut since_best = 0usize;
    let mut since_reduce = 0usize;
    let mut history = Vec::new();
    let mut epoch_rows = train_rows.clone();

    for epoch in 1..=config.epochs {
        shuffle(&mut rng, &mut epoch_rows);
        let mut train_sum = 0f64;
        for batch in epoch_rows.chunks(config.batch_size) {
            let x = batch_tensor(dev, &z, batch, n);
            let y = forward(&layers, x.clone().leaky_traced());
            let loss = reconstruction_loss(dev, y, x, mask);
            train_sum += f64::from(loss.as_vec()[0]) * batch.len() as f64;
            let mut grads = loss.backward();
            step = step.saturating_add(1);
            let mut state = (&mut grads, &mut moment1, &mut moment2);
            for layer in layers.iter_mut() {
                adam_layer(&adam, step, &mut layer.weight, &mut layer.bias, &mut state)?;
            }
        }
        let train_loss = train_sum / epoch_rows.len().max(1) as f64;
        let val_loss = evaluate(dev, &layers, &z, &val_rows, n, mask);
        history.push(EpochLoss {
            epoch,
            train: train_loss,
            validation: val_loss,
            lr: adam.lr,
        });
        bar.set_position(epoch as u64);
        bar.set_message(format!(
            "train {train_loss:.5} val {val_loss:.5} lr {:.1e}",
            adam.lr
        ));
        if !train_loss.is_finite() {
            break;
        }
        if val_loss < best_loss {
            best_loss = val_loss;
            best = snapshot(&layers);
            since_best = 0;
            since_reduce = 0;
        } else {
            since_best += 1;
            since_reduce += 1;
            if since_best >= STOP_PATIENCE {
                break;
            }
            if since_reduce >= LR_PATIENCE && adam.lr > MIN_LR {
                adam.lr = (adam.lr * 0.5).max(MIN_LR);
                since_reduce = 0;
            }
        }
    }
    bar.finish_and_clear();

    let float_layers = best
        .into_iter()
        .zip(widths.windows(2))
        .zip(&layers)
        .map(|(((weights, bias), pair), layer)| FloatLayer {
            inputs: pair[0],
            outputs: pair[1],
            weights,
            bias,
            activation: if layer.leaky {
                FloatActivation::LeakyRelu(LEAKY_SLOPE)
            } else {
                FloatActivation::Identity
            },
            pre_range: 0.0,
            out_range: 0.0,
        })
        .collect();
    let mut model = FloatModel {
        frame_shape,
        names,
        code_bits: config.code_bits,
        encoder_layers,
        offset,
        scale,
        input_range: 0.0,
        layers: float_layers,
        exact: config.exact.clone(),
        corrections: Vec::new(),
    };
    // Ranges from every frame, the held-out ones too: they only set the codec's scales, and
    // a validation event beyond the training maximum would otherwise saturate (on an event
    // table with heavy tails that made the quantized error 5x the float one).
    model.calibrate(frames);
    Ok(TrainOutcome {
        model,
        history,
        validation: val_rows,
    })
}

/// Frames per parallel chunk when measuring the codec's error.
const CODEC_CHUNK: usize = 256;

/// Mean squared error, in normalized units `((x_hat - x) / scale)^2`, of the frames
/// `validation` (indices into `frames`, `frame_len` values each) after a round trip through
/// the real integer codec: `model` (calibrated) is quantized into a blob, loaded with
/// [`baler_codec::HostModel`], and every frame is encoded and decoded.
pub fn quantized_validation_mse(
    frames: &[f32],
    frame_len: usize,
    model: &FloatModel,
    validation: &[usize],
) -> Result<f64, String> {
    use rayon::prelude::*;
    if frame_len == 0 || frames.len() % frame_len != 0 {
        return Err(format!(
            "{} values do not form whole frames of {frame_len}",
            frames.len()
        ));
    }
    if model.scale.len() != frame_len {
        return Err(format!(
            "the model expects frames of {} values, not {frame_len}",
            model.scale.len()
        ));
    }
    if validation.is_empty() {
        return Err("no validation frames".into());
    }
    let count = frames.len() / frame_len;
    if let Some(&bad) = validation.iter().find(|&&r| r >= count) {
        return Err(format!(
            "validation frame {bad} out of range ({count} frames)"
        ));
    }
    let blob = model
        .quantize()
        .map_err(|e| format!("cannot quantize the model: {e}"))?;
    let host = baler_codec::HostModel::from_bytes(&blob)
        .map_err(|e| format!("cannot load the quantized model: {e}"))?;
    let latent = host.latent_len();
    let sum = validation
        .par_chunks(CODEC_CHUNK)
        .map(|chunk| -> Result<f64, String> {
            let mut codes = vec![0i16; latent];
            let mut out = vec![0f32; frame_len];
            let mut sum = 0f64;
            for &r in chunk {
                let frame = &frames[r * frame_len..(r + 1) * frame_len];
                host.encode_frame(frame, &mut codes)
                    .map_err(|e| format!("encoding frame {r} failed: {e}"))?;
                host.decode_frame(&codes, &mut out)
                    .map_err(|e| format!("decoding frame {r} failed: {e}"))?;
                host.apply_corrections(frame, &mut out);
                host.apply_exact(frame, &mut out);
                for ((&y, &x), &s) in out.iter().zip(frame).zip(&model.scale) {
                    let d = (f64::from(y) - f64::from(x)) / f64::from(s);
                    sum += d * d;
                }
            }
            Ok(sum)
        })
        .try_reduce(|| 0.0, |a, b| Ok(a + b))?;
    Ok(sum / (validation.len() * frame_len) as f64)
}

/// Fine-tunes a trained model for the integer codec (quantization-aware training).
///
/// Starting from `outcome.model`, the weights are trained for `epochs` epochs with Adam at a
/// tenth of `config.lr` (batch size, seed and device from `config`) on the frames not listed in
/// `outcome.validation` (all frames when every frame is a validation frame), with fake
/// quantization in the forward pass and straight-through gradients: every weight row is
/// rounded to symmetric int8 (`scale = max|row| / 127`) and the latent output to `code_bits`-bit
/// codes at the scale the codec would use (`out_range / (2^(code_bits-1) - 1)`, with
/// `out_range` from the latest calibration). After each epoch the model is calibrated on every
/// frame, quantized, and its error measured through the real codec with
/// [`quantized_validation_mse`]; the best candidate, the unchanged input model included, is
/// returned. `history` gains one entry per epoch (train: fake-quantized training loss,
/// validation: codec error).
pub fn fine_tune_quantized(
    frames: &[f32],
    frame_len: usize,
    outcome: &TrainOutcome,
    config: &TrainConfig,
    epochs: usize,
) -> Result<TrainOutcome, String> {
    validate(frames, frame_len, config)?;
    let model = &outcome.model;
    if model.offset.len() != frame_len || model.scale.len() != frame_len {
        return Err(format!(
            "the model expects frames of {} values, not {frame_len}",
            model.offset.len()
        ));
    }
    if model.encoder_layers == 0 || model.encoder_layers >= model.layers.len() {
        return Err("the model needs encoder and decoder layers".into());
    }
    if !(1..=16).contains(&model.code_bits) {
        return Err("code bits must be in 1..=16".into());
    }
    match config.device {
        Device::Cpu => {
            let dev = dfdx::tensor::Cpu::seed_from_u64(config.seed);
            fine_tune_on(&dev, frames, frame_len, outcome, config, epochs)
        }
        Device::Cuda => fine_tune_cuda(frames, frame_len, outcome, config, epochs),
    }
}

#[cfg(feature = "cuda")]
fn fine_tune_cuda(
    frames: &[f32],
    frame_len: usize,
    outcome: &TrainOutcome,
    config: &TrainConfig,
    epochs: usize,
) -> Result<TrainOutcome, String> {
    let dev = cuda_device(config.seed)?;
    fine_tune_on(&dev, frames, frame_len, outcome, config, epochs)
}

#[cfg(not(feature = "cuda"))]
fn fine_tune_cuda(
    _frames: &[f32],
    _frame_len: usize,
    _outcome: &TrainOutcome,
    _config: &TrainConfig,
    _epochs: usize,
) -> Result<TrainOutcome, String> {
    Err(NO_CUDA_BUILD.into())
}

/// A dense layer of any float activation, for quantization-aware fine-tuning.
struct QatLayer<D: dfdx::tensor_ops::Device<f32>> {
    weight: Tensor<(usize, usize), f32, D>,
    bias: Tensor<(usize,), f32, D>,
    activation: FloatActivation,
}

/// Applies a float activation to a tensor.
fn activate<D, T>(
    y: Tensor<(usize, usize), f32, D, T>,
    activation: FloatActivation,
) -> Tensor<(usize, usize), f32, D, T>
where
    D: dfdx::tensor_ops::Device<f32>,
    T: Tape<f32, D>,
{
    match activation {
        FloatActivation::Identity => y,
        FloatActivation::Relu => relu(y),
        FloatActivation::LeakyRelu(s) => leakyrelu(y, s),
        FloatActivation::Tanh => tanh(y),
        FloatActivation::Sigmoid => sigmoid(y),
    }
}

/// Runs `layers` with the weights `w + delta` (`delta` untraced: straight-through estimator).
fn forward_fake_quant<D, T>(
    layers: &[QatLayer<D>],
    deltas: &[Tensor<(usize, usize), f32, D>],
    x: Tensor<(usize, usize), f32, D, T>,
) -> Tensor<(usize, usize), f32, D, T>
where
    D: dfdx::tensor_ops::Device<f32>,
    T: Tape<f32, D>,
{
    let mut a = x;
    for (layer, delta) in layers.iter().zip(deltas) {
        let w =
            (layer.weight.retaped::<T>() + delta.clone()).permute::<(usize, usize), Axes2<1, 0>>();
        let y = a.matmul(w);
        let shape = *y.shape();
        let y = y + layer
            .bias
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&shape);
        a = activate(y, layer.activation);
    }
    a
}

/// `q(w) - w` for per-output-channel symmetric int8 rounding of a row-major `(rows, inputs)`
/// weight matrix, as the codec quantizes weights.
fn weight_quant_delta(weights: &[f32], inputs: usize) -> Vec<f32> {
    let mut delta = Vec::with_capacity(weights.len());
    for row in weights.chunks(inputs.max(1)) {
        let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        if max > 0.0 && max.is_finite() {
            let s = max / 127.0;
            delta.extend(
                row.iter()
                    .map(|&w| (w / s).round().clamp(-127.0, 127.0) * s - w),
            );
        } else {
            delta.extend(row.iter().map(|_| 0.0));
        }
    }
    delta
}

/// Scale of one latent code step for a latent range and code width, as the codec computes it.
fn latent_step(range: f32, code_bits: u8) -> f32 {
    let levels = ((1i32 << (code_bits.clamp(1, 16) - 1)) - 1).max(1) as f32;
    let range = if range.is_finite() && range > 0.0 {
        range
    } else {
        1.0
    };
    range.max(1e-12) / levels
}

fn fine_tune_on<D: dfdx::tensor_ops::Device<f32>>(
    dev: &D,
    frames: &[f32],
    n: usize,
    outcome: &TrainOutcome,
    config: &TrainConfig,
    epochs: usize,
) -> Result<TrainOutcome, String> {
    let base = &outcome.model;
    let count = frames.len() / n;
    let val_rows = outcome.validation.clone();
    if val_rows.iter().any(|&r| r >= count) {
        return Err("validation indices do not match the frames".into());
    }
    let mut held = vec![false; count];
    for &r in &val_rows {
        held[r] = true;
    }
    let mut train_rows: Vec<usize> = (0..count).filter(|&r| !held[r]).collect();
    if train_rows.is_empty() {
        train_rows = (0..count).collect();
    }
    let z: Vec<f32> = frames
        .chunks_exact(n)
        .flat_map(|f| {
            f.iter()
                .zip(base.offset.iter().zip(&base.scale))
                .map(|(x, (o, s))| (x - o) / s)
        })
        .collect();

    let mut layers: Vec<QatLayer<D>> = base
        .layers
        .iter()
        .map(|l| QatLayer {
            weight: dev.tensor_from_vec(l.weights.clone(), (l.outputs, l.inputs)),
            bias: dev.tensor_from_vec(l.bias.clone(), (l.outputs,)),
            activation: l.activation,
        })
        .collect();
    let encoder_layers = base.encoder_layers;
    let code_bits = base.code_bits;
    let mask = reconstruction_mask(n, &base.exact);
    let mask = mask.as_deref();
    let code_lo = -((1i32 << (code_bits - 1)) as f32);
    let code_hi = ((1i32 << (code_bits - 1)) - 1) as f32;

    let adam = AdamConfig {
        lr: config.lr * 0.1,
        ..Default::default()
    };
    let mut moment1: Gradients<f32, D> = Gradients::leaky();
    let mut moment2: Gradients<f32, D> = Gradients::leaky();
    let mut step: i32 = 0;
    let mut rng = SplitMix64(config.seed ^ 0x7161_742d_6261_6c65);

    let bar = if config.progress {
        let bar = ProgressBar::new(epochs as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} fine-tune {pos}/{len} {msg} [{elapsed_precise}]")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut best_model = base.clone();
    let mut best_loss = quantized_validation_mse(frames, n, base, &val_rows)?;
    let mut latent_range = base.layers[encoder_layers - 1].out_range;
    let mut history = outcome.history.clone();
    let first_epoch = history.last().map_or(0, |h| h.epoch);
    let mut epoch_rows = train_rows.clone();

    for epoch in 1..=epochs {
        shuffle(&mut rng, &mut epoch_rows);
        let s_lat = latent_step(latent_range, code_bits);
        let mut train_sum = 0f64;
        for batch in epoch_rows.chunks(config.batch_size) {
            let deltas: Vec<Tensor<(usize, usize), f32, D>> = layers
                .iter()
                .map(|l| {
                    let shape = *l.weight.shape();
                    dev.tensor_from_vec(weight_quant_delta(&l.weight.as_vec(), shape.1), shape)
                })
                .collect();
            let x = batch_tensor(dev, &z, batch, n);
            let h = forward_fake_quant(
                &layers[..encoder_layers],
                &deltas[..encoder_layers],
                x.clone().leaky_traced(),
            );
            let latent_delta: Vec<f32> = h
                .as_vec()
                .into_iter()
                .map(|v| (v / s_lat).round().clamp(code_lo, code_hi) * s_lat - v)
                .collect();
            let shape = *h.shape();
            let h = h + dev.tensor_from_vec(latent_delta, shape);
            let y = forward_fake_quant(&layers[encoder_layers..], &deltas[encoder_layers..], h);
            let loss = reconstruction_loss(dev, y, x, mask);
            train_sum += f64::from(loss.as_vec()[0]) * batch.len() as f64;
            let mut grads = loss.backward();
            step = step.saturating_add(1);
            let mut state = (&mut grads, &mut moment1, &mut moment2);
            for layer in layers.iter_mut() {
                adam_layer(&adam, step, &mut layer.weight, &mut layer.bias, &mut state)?;
            }
        }
        let train_loss = train_sum / epoch_rows.len().max(1) as f64;

        let mut candidate = base.clone();
        for (float, layer) in candidate.layers.iter_mut().zip(&layers) {
            float.weights = layer.weight.as_vec();
            float.bias = layer.bias.as_vec();
        }
        candidate.calibrate(frames);
        latent_range = candidate.layers[encoder_layers - 1].out_range;
        let val_loss = if train_loss.is_finite() {
            quantized_validation_mse(frames, n, &candidate, &val_rows).unwrap_or(f64::INFINITY)
        } else {
            f64::INFINITY
        };
        history.push(EpochLoss {
            epoch: first_epoch + epoch,
            train: train_loss,
            validation: val_loss,
            lr: adam.lr,
        });
        bar.set_position(epoch as u64);
        bar.set_message(format!("train {train_loss:.5} quantized val {val_loss:.5}"));
        if !train_loss.is_finite() {
            break;
        }
        if val_loss < best_loss {
            best_loss = val_loss;
            best_model = candidate;
        }
    }
    bar.finish_and_clear();
    Ok(TrainOutcome {
        model: best_model,
        history,
        validation: val_rows,
    })
}

/// One Adam update of `param` with its gradient from `grads`.
/// Gradients, first and second moments of one Adam step.
type AdamState<'a, D> = (
    &'a mut Gradients<f32, D>,
    &'a mut Gradients<f32, D>,
    &'a mut Gradients<f32, D>,
);

/// One Adam update of a layer's weight and bias.
fn adam_layer<S1: Shape, S2: Shape, D: dfdx::tensor_ops::Device<f32>>(
    cfg: &AdamConfig,
    step: i32,
    weight: &mut Tensor<S1, f32, D>,
    bias: &mut Tensor<S2, f32, D>,
    state: &mut AdamState<'_, D>,
) -> Result<(), String> {
    adam_step(cfg, step, weight, state.0, state.1, state.2)?;
    adam_step(cfg, step, bias, state.0, state.1, state.2)
}

fn adam_step<S: Shape, D: dfdx::tensor_ops::Device<f32>>(
    cfg: &AdamConfig,
    step: i32,
    param: &mut Tensor<S, f32, D>,
    grads: &mut Gradients<f32, D>,
    moment1: &mut Gradients<f32, D>,
    moment2: &mut Gradients<f32, D>,
) -> Result<(), String> {
    let err = |e: D::Err| format!("training step failed: {e:?}");
    let g = grads.get_or_alloc_mut(param).map_err(err)?;
    let m = moment1.get_or_alloc_mut(param).map_err(err)?;
    let v = moment2.get_or_alloc_mut(param).map_err(err)?;
    cfg.try_update(step, param, m, v, g).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 512 frames of 8 features mixed from two random factors, plus an offset and a little
    /// noise.
    fn two_factor_frames(seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64(seed);
        let mixing: Vec<[f32; 2]> = (0..8)
            .map(|_| [rng.symmetric() * 3.0, rng.symmetric() * 3.0])
            .collect();
        let mut frames = Vec::new();
        for _ in 0..512 {
            let (a, b) = (rng.symmetric(), rng.symmetric());
            for (k, m) in mixing.iter().enumerate() {
                frames.push(m[0] * a + m[1] * b + k as f32 + rng.symmetric() * 1e-3);
            }
        }
        frames
    }

    /// A small network for [`two_factor_frames`], its codes `code_bits` wide.
    fn two_factor_config(code_bits: u8) -> TrainConfig {
        TrainConfig {
            hidden: vec![16],
            latent: 2,
            epochs: 40,
            batch_size: 32,
            lr: 1e-2,
            validation_fraction: 0.2,
            seed: 5,
            code_bits,
            device: Device::Cpu,
            progress: false,
            exact: Vec::new(),
        }
    }

    /// The codec's scales come from every frame: an event beyond everything in the training
    /// split (here the held-out frame scaled 3x) comes back through the integer codec as the
    /// float network reconstructs it, instead of saturating at the training maximum.
    #[test]
    fn held_out_extremes_do_not_saturate_the_codec() {
        let config = two_factor_config(12);
        let mut frames = two_factor_frames(13);
        let held = train(&frames, 8, vec![8], Vec::new(), &config)
            .unwrap()
            .validation[0];
        // The split depends on the seed and the frame count only, so it is the same again.
        for (k, v) in frames[held * 8..(held + 1) * 8].iter_mut().enumerate() {
            *v = k as f32 + (*v - k as f32) * 3.0;
        }
        let outcome = train(&frames, 8, vec![8], Vec::new(), &config).unwrap();
        assert!(outcome.validation.contains(&held));
        let model = &outcome.model;
        let blob = model.quantize().unwrap();
        let host = baler_codec::HostModel::from_bytes(&blob).unwrap();
        let frame = &frames[held * 8..(held + 1) * 8];
        let (mut codes, mut out) = ([0i16; 2], [0f32; 8]);
        host.encode_frame(frame, &mut codes).unwrap();
        host.decode_frame(&codes, &mut out).unwrap();
        let z: Vec<f32> = frame
            .iter()
            .zip(model.offset.iter().zip(&model.scale))
            .map(|(x, (o, s))| (x - o) / s)
            .collect();
        let float = model.forward_normalized(&z, &mut vec![(0.0, 0.0); model.layers.len()]);
        let size = z.iter().fold(0f32, |m, v| m.max(v.abs()));
        for ((y, f), (o, s)) in out
            .iter()
            .zip(&float)
            .zip(model.offset.iter().zip(&model.scale))
        {
            let y = (y - o) / s;
            assert!(
                (y - f).abs() <= 0.02 * size,
                "integer {y} against float {f} (frame size {size})"
            );
        }
    }

    #[test]
    fn train_recovers_two_latent_factors() {
        let frames = two_factor_frames(7);
        let config = TrainConfig {
            hidden: vec![16],
            latent: 2,
            epochs: 60,
            batch_size: 32,
            lr: 1e-2,
            validation_fraction: 0.2,
            seed: 1,
            code_bits: 8,
            device: Device::Cpu,
            progress: false,
            exact: Vec::new(),
        };
        let outcome = train(&frames, 8, vec![8], Vec::new(), &config).unwrap();
        let last = outcome.history.last().unwrap();
        assert!(last.validation < 0.05, "validation MSE {}", last.validation);
        assert_eq!(outcome.validation.len(), 102);
        assert_eq!(outcome.model.encoder_layers, 2);
        assert_eq!(outcome.model.layers.len(), 4);
        outcome.model.quantize().unwrap();

        // Same seed, same model.
        let again = train(&frames, 8, vec![8], Vec::new(), &config).unwrap();
        assert_eq!(again.model, outcome.model);
    }

    #[test]
    fn discrete_columns_are_the_few_valued_finite_ones() {
        // 800 frames of: a charge, a count up to 63 (64 values), a count up to 64 (65 values),
        // a continuous value, a flag with one NaN, and a constant.
        let n = 6;
        let mut frames = Vec::new();
        for i in 0..800 {
            let flag = if i == 5 { f32::NAN } else { (i % 2) as f32 };
            frames.extend([
                if i % 3 == 0 { -1.0 } else { 1.0 },
                (i % 64) as f32,
                (i % 65) as f32,
                i as f32 * 0.37,
                flag,
                2.5,
            ]);
        }
        let found = discrete_columns(&frames, n);
        let columns: Vec<usize> = found.iter().map(|e| e.column).collect();
        assert_eq!(columns, [0, 1, 5]);
        assert_eq!(found[0].values, [-1.0, 1.0]);
        assert_eq!(
            found[1].values,
            (0..64).map(|k| k as f32).collect::<Vec<_>>()
        );
        assert_eq!(found[2].values, [2.5]);
        // A few frames make no column discrete beyond one value per 8 frames: here 2.
        let few = discrete_columns(&frames[..16 * n], n);
        let columns: Vec<usize> = few.iter().map(|e| e.column).collect();
        assert_eq!(columns, [0, 5]);
    }

    #[test]
    fn exact_columns_leave_the_loss_and_come_back_exactly() {
        // Column 1 is a charge the network is not asked to reconstruct.
        let frames: Vec<f32> = (0..200)
            .flat_map(|i| {
                let x = i as f32 / 20.0;
                [x.sin(), if i % 2 == 0 { -1.0 } else { 1.0 }, x.cos()]
            })
            .collect();
        let exact = discrete_columns(&frames, 3);
        assert_eq!(exact.iter().map(|e| e.column).collect::<Vec<_>>(), [1]);
        let config = TrainConfig {
            hidden: vec![8],
            latent: 1,
            epochs: 5,
            batch_size: 16,
            lr: 1e-2,
            validation_fraction: 0.2,
            seed: 1,
            code_bits: 8,
            device: Device::Cpu,
            progress: false,
            exact,
        };
        let outcome = train(&frames, 3, vec![3], Vec::new(), &config).unwrap();
        assert_eq!(outcome.model.exact, config.exact);
        let blob = outcome.model.quantize().unwrap();
        let model = baler_codec::HostModel::from_bytes(&blob).unwrap();
        let (mut codes, mut out) = ([0i16; 1], [0f32; 3]);
        for frame in frames.chunks_exact(3) {
            model.encode_frame(frame, &mut codes).unwrap();
            model.decode_frame(&codes, &mut out).unwrap();
            model.apply_exact(frame, &mut out);
            assert_eq!(out[1], frame[1]);
        }
    }

    #[test]
    fn train_handles_tiny_data_constant_features_and_no_hidden_layers() {
        let frames: Vec<f32> = (0..5).flat_map(|i| [i as f32, 3.0, -(i as f32)]).collect();
        let config = TrainConfig {
            hidden: Vec::new(),
            latent: 1,
            epochs: 3,
            batch_size: 2,
            lr: 1e-2,
            validation_fraction: 0.2,
            seed: 3,
            code_bits: 4,
            device: Device::Cpu,
            progress: false,
            exact: Vec::new(),
        };
        let outcome = train(&frames, 3, vec![3], Vec::new(), &config).unwrap();
        assert_eq!(outcome.validation, vec![0, 1, 2, 3, 4]);
        assert_eq!(outcome.model.scale[1], 1.0);
        assert_eq!(outcome.model.layers.len(), 2);
        assert!(outcome.history.iter().all(|h| h.validation.is_finite()));
        outcome.model.quantize().unwrap();
        assert!(train(&frames[..4], 3, vec![3], Vec::new(), &config).is_err());
        #[cfg(not(feature = "cuda"))]
        {
            let cuda = TrainConfig {
                device: Device::Cuda,
                ..config
            };
            assert!(train(&frames, 3, vec![3], Vec::new(), &cuda).is_err());
        }
    }

    #[test]
    fn fine_tune_quantized_does_not_worsen_the_codec_error() {
        let frames = two_factor_frames(11);
        let config = two_factor_config(3);
        let start = std::time::Instant::now();
        let outcome = train(&frames, 8, vec![8], Vec::new(), &config).unwrap();
        let trained = start.elapsed();
        let float_mse = outcome
            .history
            .iter()
            .map(|h| h.validation)
            .fold(f64::INFINITY, f64::min);
        let before =
            quantized_validation_mse(&frames, 8, &outcome.model, &outcome.validation).unwrap();
        let start = std::time::Instant::now();
        let tuned = fine_tune_quantized(&frames, 8, &outcome, &config, 20).unwrap();
        let tuned_time = start.elapsed();
        let after = quantized_validation_mse(&frames, 8, &tuned.model, &tuned.validation).unwrap();
        eprintln!(
            "float val MSE {float_mse:.5}; quantized val MSE before {before:.5}, after {after:.5}; \
             train {trained:?}, fine-tune {tuned_time:?}"
        );
        assert!(after <= before, "quantized MSE {after} > {before}");
        assert_eq!(tuned.validation, outcome.validation);
        assert_eq!(tuned.history.len(), outcome.history.len() + 20);
        let last = outcome.history.last().unwrap().epoch;
        assert_eq!(tuned.history[outcome.history.len()].epoch, last + 1);
        let best = tuned.history[outcome.history.len()..]
            .iter()
            .map(|h| h.validation)
            .fold(before, f64::min);
        assert!(
            (after - best).abs() <= 1e-12 * best.max(1.0),
            "{after} vs {best}"
        );
        tuned.model.quantize().unwrap();

        // Deterministic for a seed.
        let again = fine_tune_quantized(&frames, 8, &outcome, &config, 20).unwrap();
        assert_eq!(again.model, tuned.model);

        // Bad inputs are errors.
        assert!(quantized_validation_mse(&frames, 8, &outcome.model, &[]).is_err());
        assert!(quantized_validation_mse(&frames, 8, &outcome.model, &[512]).is_err());
        assert!(fine_tune_quantized(&frames, 4, &outcome, &config, 1).is_err());
    }
}
