//! The rate-distortion view of `baler evaluate --compressed`: what the error-bounded mode gives
//! for a table at the same total size as a fixed-rate stream (with its model), column by
//! column, so a user sees what the fixed rate costs in fidelity.

use baler::data::Dataset;
use baler::evaluate::metrics::{column_errors, ColumnError};
use baler::{Array, Bound, Options, Values};
use std::path::Path;

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
pub fn same_size_bounded(original: &Dataset<f64>, target: usize) -> Result<SameSize, String> {
    // The values as the file holds them: float32 data is compressed as float32.
    let values = match original.dtype {
        baler::DType::F32 => Values::F32(original.values.iter().map(|&v| v as f32).collect()),
        _ => Values::F64(original.values.clone()),
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
    let back = decoded.values().to_f64();
    Ok(SameSize {
        bound: best_bound,
        bytes: best.len(),
        errors: column_errors(&original.values, &back, original.row_len()),
    })
}

/// The error-bounded runs a rate-distortion view compares with: at the total size of `stream`
/// plus `model`, and (with a model) at the stream's size alone, which is what counts when one
/// model serves many files.
#[derive(Debug, Clone)]
pub struct SameSizeRuns {
    /// Bytes of the compressed stream.
    pub stream_bytes: usize,
    /// Bytes of the model (0 without one).
    pub model_bytes: usize,
    /// The target sizes and the runs that reach them: the total first, then the stream alone
    /// when there is a model.
    pub runs: Vec<(usize, SameSize)>,
}

/// [`same_size_bounded`] at the sizes of `stream` (plus `model`) and of the stream alone.
pub fn same_size_runs(
    original: &Dataset<f64>,
    stream: &Path,
    model: Option<&Path>,
) -> Result<SameSizeRuns, String> {
    let size = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let stream_bytes = size(stream)?;
    let model_bytes = model.map(size).transpose()?.unwrap_or(0);
    let mut targets = vec![stream_bytes + model_bytes];
    if model_bytes > 0 {
        targets.push(stream_bytes);
    }
    let runs = targets
        .into_iter()
        .map(|bytes| Ok((bytes, same_size_bounded(original, bytes)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SameSizeRuns {
        stream_bytes,
        model_bytes,
        runs,
    })
}
