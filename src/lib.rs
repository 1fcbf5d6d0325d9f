//! Root package of the baler-rs workspace: it holds the end-to-end tests (`tests/`) and the
//! benchmarks (`benches/`) that cover the whole chain. The product lives in `codec/` (and,
//! later, `trainer/` and `firmware-example/`).
#![forbid(unsafe_code)]

pub use baler_codec as codec;
