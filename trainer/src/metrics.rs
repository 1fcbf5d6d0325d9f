//! Per-column error metrics between an original and a reconstructed table.

/// Errors of one column.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ColumnError {
    /// Largest absolute error.
    pub max_abs: f64,
    /// Root mean square error.
    pub rmse: f64,
    /// Value range (max - min) of the original column.
    pub range: f64,
    /// Mean of |error| / |original| over the values whose original is not zero.
    pub mean_relative: f64,
}

impl ColumnError {
    /// Largest absolute error as a fraction of the column's range (0 for constant columns
    /// reconstructed exactly).
    pub fn max_relative_to_range(&self) -> f64 {
        if self.range > 0.0 {
            self.max_abs / self.range
        } else if self.max_abs == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }
}

/// Per-column errors of `reconstructed` against `original` (row-major, `columns` wide).
pub fn column_errors(original: &[f32], reconstructed: &[f32], columns: usize) -> Vec<ColumnError> {
    let rows = original.len() / columns.max(1);
    (0..columns)
        .map(|c| {
            let (mut max_abs, mut sq, mut lo, mut hi) = (0f64, 0f64, f64::MAX, f64::MIN);
            let (mut rel, mut nonzero) = (0f64, 0usize);
            for r in 0..rows {
                let (a, b) = (
                    f64::from(original[r * columns + c]),
                    f64::from(reconstructed[r * columns + c]),
                );
                max_abs = max_abs.max((a - b).abs());
                sq += (a - b) * (a - b);
                if a != 0.0 {
                    rel += (a - b).abs() / a.abs();
                    nonzero += 1;
                }
                lo = lo.min(a);
                hi = hi.max(a);
            }
            ColumnError {
                max_abs,
                rmse: (sq / rows.max(1) as f64).sqrt(),
                range: if rows > 0 { hi - lo } else { 0.0 },
                mean_relative: if nonzero > 0 {
                    rel / nonzero as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}
