//! Training a float autoencoder with dfdx (written by a parallel task; this is the interface).

use baler_codec::quantize::FloatModel;

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

/// Trains an autoencoder on `frames` (`frame_len` values each, row-major).
pub fn train(
    _frames: &[f32],
    _frame_len: usize,
    _frame_shape: Vec<u32>,
    _names: Vec<String>,
    _config: &TrainConfig,
) -> Result<TrainOutcome, String> {
    Err("training is not implemented yet".into())
}
