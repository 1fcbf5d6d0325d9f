//! # baler-codec
//!
//! The one implementation of baler's encode and decode: a `no_std`, heap-free, integer-only
//! quantized autoencoder codec, with its model blob format and its compressed stream format.
//! The host command line, the benchmarks and the firmware all call this crate, which is why
//! every platform decodes a stream to the same bits.
//!
//! - [`Model::from_bytes`] loads and validates a model blob (serde + postcard) without copying
//!   it; capacities are const generics, checked at load time.
//! - [`Model::encode_frame`] / [`Model::decode_frame`] run the integer network on one frame:
//!   int8 weights with per-output-channel scales, int32 bias and accumulators, int16
//!   activations, requantization by multiplier and shift with round-half-away-from-zero.
//! - [`Encoder`] / [`Decoder`] write and read the stream format (CRC32 per block) into and
//!   from caller buffers with fixed memory.
//! - [`Model::reference_encode`] / [`Model::reference_decode`] are the f32 reference path
//!   (nalgebra) that bounds the integer path's quantization error.
//!
//! The byte layouts are specified in `FORMAT.md`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bounded;
#[cfg(feature = "internals")]
pub mod entropy;
#[cfg(not(feature = "internals"))]
pub(crate) mod entropy;
mod error;
pub mod model;
pub mod stream;

pub use error::{Capacity, Error, Result};
pub use model::spec::{Activation, LayerSpec, Lut, LutFunction, ModelHead, ModelSpec};
pub use model::{CorrectedColumn, EdgeModel, HostModel, Model, MAX_FRAME_RANK};
pub use stream::{DType, Decoder, Encoder, StreamHeader};
