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
        over_range(self.max_abs, self.range)
    }

    /// NRMSE: the RMSE as a fraction of the column's range (0 for constant columns
    /// reconstructed exactly).
    pub fn nrmse(&self) -> f64 {
        over_range(self.rmse, self.range)
    }
}

/// `error / range`; for a constant column 0 when the error is 0, else infinite.
fn over_range(error: f64, range: f64) -> f64 {
    if range > 0.0 {
        error / range
    } else if error == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Per-column errors of `reconstructed` against `original` (row-major, `columns` wide).
pub fn column_errors<T: Copy + Into<f64>>(
    original: &[T],
    reconstructed: &[T],
    columns: usize,
) -> Vec<ColumnError> {
    let rows = original.len() / columns.max(1);
    (0..columns)
        .map(|c| {
            let (mut max_abs, mut sq, mut lo, mut hi) = (0f64, 0f64, f64::MAX, f64::MIN);
            let (mut rel, mut nonzero) = (0f64, 0usize);
            for r in 0..rows {
                let (a, b): (f64, f64) = (
                    original[r * columns + c].into(),
                    reconstructed[r * columns + c].into(),
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

/// Exact Wasserstein-1 (earth mover's) distance between the empirical distributions of two
/// samples: the integral over x of |F_a(x) - F_b(x)|, with F the empirical CDFs. For samples of
/// equal size it equals the mean |a_(i) - b_(i)| over the sorted values. `NaN` when either
/// sample is empty or holds a NaN.
pub fn wasserstein_1(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut area = 0.0;
    let mut previous = a[0].min(b[0]);
    // Walk the merged sorted values; between two consecutive values both CDFs are constant.
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        area += (i as f64 / na - j as f64 / nb).abs() * (x - previous);
        while a.get(i) == Some(&x) {
            i += 1;
        }
        while b.get(j) == Some(&x) {
            j += 1;
        }
        previous = x;
    }
    area
}

/// Everything `baler evaluate` reports about one column (or one whole field).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    /// Max-abs error, RMSE, range and mean relative error.
    pub errors: ColumnError,
    /// Largest |error| / |original| (the pointwise relative error) over the values whose
    /// original is not zero; infinite when a zero came back as anything else.
    pub max_relative: f64,
    /// Mean signed error (reconstructed - original): the bias.
    pub mean_error: f64,
    /// Exact Wasserstein-1 distance between the original and reconstructed distributions.
    pub wasserstein_1: f64,
    /// For each bound `b` given, the fraction of values with |error| <= b x the column's range.
    pub within_bounds: Vec<f64>,
}

/// Per-column summaries of `reconstructed` against `original` (row-major, `columns` wide);
/// `bounds` are error bounds as fractions of each column's range.
pub fn column_summaries<T: Copy + Into<f64>>(
    original: &[T],
    reconstructed: &[T],
    columns: usize,
    bounds: &[f64],
) -> Vec<ColumnSummary> {
    let columns = columns.max(1);
    let rows = original.len().min(reconstructed.len()) / columns;
    column_errors(original, reconstructed, columns)
        .into_iter()
        .enumerate()
        .map(|(c, errors)| {
            let column = |values: &[T]| -> Vec<f64> {
                (0..rows).map(|r| values[r * columns + c].into()).collect()
            };
            let (a, b) = (column(original), column(reconstructed));
            let (mut max_relative, mut sum_error) = (0f64, 0f64);
            let mut within = vec![0usize; bounds.len()];
            for (x, y) in a.iter().zip(&b) {
                let error = y - x;
                sum_error += error;
                if *x != 0.0 {
                    max_relative = max_relative.max(error.abs() / x.abs());
                } else if error != 0.0 {
                    // A zero that came back as something else: no relative bound holds.
                    max_relative = f64::INFINITY;
                }
                for (count, bound) in within.iter_mut().zip(bounds) {
                    if error.abs() <= bound * errors.range {
                        *count += 1;
                    }
                }
            }
            let n = rows.max(1) as f64;
            ColumnSummary {
                errors,
                max_relative,
                mean_error: sum_error / n,
                wasserstein_1: if rows > 0 { wasserstein_1(&a, &b) } else { 0.0 },
                within_bounds: within.iter().map(|&k| k as f64 / n).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_of_a_shift_is_the_shift_and_of_a_permutation_zero() {
        let a = [0.0, 1.0, 2.0, 3.0];
        let shifted: Vec<f64> = a.iter().map(|v| v + 0.5).collect();
        assert_eq!(wasserstein_1(&a, &shifted), 0.5);
        assert_eq!(wasserstein_1(&a, &[3.0, 2.0, 1.0, 0.0]), 0.0);
        // Unequal sizes: {0} against {0, 1} moves half the mass by 1.
        assert_eq!(wasserstein_1(&[0.0], &[0.0, 1.0]), 0.5);
        assert!(wasserstein_1(&[], &a).is_nan());
    }

    #[test]
    fn wasserstein_matches_sorted_differences_for_equal_sizes() {
        // A deterministic scramble with ties.
        let a: Vec<f64> = (0..500).map(|i| ((i * 37) % 101) as f64 * 0.25).collect();
        let b: Vec<f64> = (0..500)
            .map(|i| ((i * 53) % 89) as f64 * 0.3 - 2.0)
            .collect();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let expected = sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).sum::<f64>() / 500.0;
        assert!((wasserstein_1(&a, &b) - expected).abs() < 1e-12);
    }

    #[test]
    fn summaries_count_values_within_bounds_of_the_range() {
        // One column, range 100; errors 0, 0.5, 5, 50 (fractions 0, 0.005, 0.05, 0.5).
        let original = [0.0f32, 100.0, 50.0, 20.0];
        let reconstructed = [0.0f32, 100.5, 55.0, 70.0];
        let s = &column_summaries(&original, &reconstructed, 1, &[1e-2, 1e-1, 1.0])[0];
        assert_eq!(s.within_bounds, vec![0.5, 0.75, 1.0]);
        assert_eq!(s.errors.max_abs, 50.0);
        assert_eq!(s.max_relative, 2.5);
        assert_eq!(s.mean_error, 55.5 / 4.0);
    }
}
