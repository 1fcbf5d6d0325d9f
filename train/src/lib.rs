//! # baler-train
//!
//! Training for baler-rs, the only crate with dfdx in it: dense autoencoders fitted with Adam
//! ([`autoencoder`]), quantization-aware fine-tuning, per-column corrections ([`corrections`]), and the search over latent code widths
//! for error-bounded compression ([`tune`]). What it produces is a model blob for the codec;
//! compressing with it needs only the `baler` library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod autoencoder;
pub mod corrections;
pub mod tune;

pub use autoencoder::{Device, EpochLoss, TrainConfig, TrainOutcome};
