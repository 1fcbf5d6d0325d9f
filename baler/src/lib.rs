//! # baler
//!
//! baler-rs as a library: compress arrays and data files with the baler codec
//! ([`baler_codec`]), the same code the `baler` command, the firmware and the bindings run, so
//! every platform decodes a stream to the same bits. No training dependencies: models are
//! trained by `baler-train` (dfdx) and arrive here as blobs.
//!
//! Two promises, chosen per call:
//! - **error-bounded** ([`Options::bounded`]): every value comes back within an absolute
//!   bound, or within a fraction of its column's range (tables) or of the whole array's range
//!   (series and fields); predictors are learned from the data and chosen on a sample;
//! - **fixed-rate** ([`Options::fixed_rate`]): a trained autoencoder's latent codes, a fixed
//!   number of bits per frame.
//!
//! Arrays of rank 1 to 8 in `f32`, `f64`, `i16` or `i32`: a 1-D array is coded as a series
//! (predicted along it), a 2-D one as a table of rows and columns, higher ranks as frames of a
//! field.
//!
//! ```
//! use baler::{compress, decompress, Array, Bound, Options, Values};
//! // 100 events x 3 columns; each value within 1e-3 of each column's range.
//! let rows: Vec<f32> = (0..300).map(|i| ((i * 37) % 101) as f32 * 0.5).collect();
//! let table = Array::new(&[100, 3], Values::F32(rows.clone()))?
//!     .with_names(vec!["px".into(), "py".into(), "pz".into()])?;
//! let stream = compress(&table, &Options::bounded(Bound::Relative(1e-3)))?;
//! let back = decompress(&stream, None)?;
//! assert_eq!((back.shape(), back.names()), (table.shape(), table.names()));
//! let Values::F32(decoded) = back.values() else { unreachable!() };
//! assert!(rows.iter().zip(decoded).all(|(x, y)| (x - y).abs() <= 1e-3 * 50.0));
//! # Ok::<(), baler::Error>(())
//! ```
//!
//! Files (`.npz`, `.npy`, `.csv`) of any size go through [`compress_file`] and
//! [`decompress_file`] in bounded memory; [`pipeline::compress_to`] and
//! [`pipeline::decompress_from`] are the streaming form over any reader, writer and row
//! source ([`rows`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod array;
mod blocks;
pub mod data;
mod error;
pub mod evaluate;
pub mod filter_params;
pub mod fit;
#[cfg(feature = "hdf5")]
mod hdf5_data;
pub mod pipeline;
pub mod rows;
pub mod tiles;

pub use array::{compress, compress_reporting, decompress, Array, Values};
pub use baler_codec::DType;
pub use error::{Error, Result};
pub use pipeline::{
    compress_file, decompress_file, Bound, Bounds, Chosen, ColumnBounds, ColumnKey, Compressed,
    Decompressed, Options, UseModel,
};
