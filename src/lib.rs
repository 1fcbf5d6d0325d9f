//! Root package of the baler-rs workspace: it holds the end-to-end tests (`tests/`), the
//! benchmarks (`benches/`) and the quick-start example that cover the whole chain. The
//! product lives in `codec/` (and, later, `trainer/` and `firmware-example/`).
//!
//! The small helpers here (reading `.npz`, fitting a linear autoencoder, error metrics) serve
//! the example and tests until the `baler` trainer takes over.
#![forbid(unsafe_code)]

pub use baler_codec as codec;

pub mod linear;
pub mod metrics;
pub mod npz;
