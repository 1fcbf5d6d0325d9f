//! The rate-distortion view of `baler evaluate --compressed`: what the error-bounded mode gives
//! for a table at the same total size as a fixed-rate stream (with its model), column by
//! column, so a user sees what the fixed rate costs in fidelity.

use baler::data::Dataset;
use baler::evaluate::metrics::{column_errors, ColumnError};
use baler::{Array, Bound, Options, Values};

/// Error-bounded compression of a table at a given size.
#[derive(Debug, Clone)]
pub struct SameSize {
    /// The relative bound (a fraction of each column's range) that reaches the size.
    pub bound: f64,
    /// The error-bounded stream's bytes (at most the target, unless even the coarsest bound
    /// is larger).
    pub bytes: usize,
    /// Its errors per column.
    pub errors: Vec<ColumnError>,
}

/// Bisection steps over the bound (in log scale, from 1e-6 to 0.5 of the range): each halves
/// the interval, so 20 steps find the bound within 1.2% of the best.
const STEPS: usize = 20;

/// The finest relative bound whose error-bounded stream of `original` (a table) fits in
/// `target` bytes, with its errors.
pub fn same_size_bounded(original: &Dataset, target: usize) -> Result<SameSize, String> {
    let values = match original.dtype {
        baler::DType::F32 => Values::F32(original.values.clone()),
        _ => Values::F64(original.values.iter().map(|&v| f64::from(v)).collect()),
    };
    let array = Array::new(&original.shape, values)
        .map_err(|e| e.to_string())?
        .with_names(original.names.clone())
        .map_err(|e| e.to_string())?;
    let size = |bound: f64| -> Result<Vec<u8>, String> {
        baler::compress(&array, &Options::bounded(Bound::Relative(bound)))
            .map_err(|e| e.to_string())
    };
    let (mut fine, mut coarse) = (1e-6f64.ln(), 0.5f64.ln());
    let mut best = size(coarse.exp())?;
    let mut best_bound = coarse.exp();
    if best.len() <= target {
        for _ in 0..STEPS {
            let middle = 0.5 * (fine + coarse);
            let stream = size(middle.exp())?;
            if stream.len() <= target {
                coarse = middle;
                best = stream;
                best_bound = middle.exp();
            } else {
                fine = middle;
            }
        }
    }
    let decoded = baler::decompress(&best, None).map_err(|e| e.to_string())?;
    let back: Vec<f32> = decoded
        .values()
        .to_f64()
        .iter()
        .map(|&v| v as f32)
        .collect();
    Ok(SameSize {
        bound: best_bound,
        bytes: best.len(),
        errors: column_errors(&original.values, &back, original.row_len()),
    })
}
