//! Root package of the baler-rs workspace: it holds the end-to-end tests (`tests/`), the
//! benchmarks (`benches/`) and the quick-start example that cover the whole chain. The
//! product lives in `codec/`, `baler/` (the library), `train/`, `cli/` and `firmware-example/`.
//!
//! The closed-form linear autoencoder here is the baseline the quick-start example and the
//! real-data codec tests use; data files and metrics come from the `baler` library.
#![forbid(unsafe_code)]

pub use baler_codec as codec;

pub mod linear;

pub use baler::{data, evaluate::metrics};
