//! Fits the learned field predictor: weights over the decoded neighbours of a value
//! ([`field_taps`]) that predict its grid index. Grid indices do not depend on the predictor
//! (every value snaps to the same grid), so the fit sees exactly what the decoder will see.

use baler_codec::bounded::{
    field_taps, grid_index, ColumnGrid, LEARNED_FRACTION_BITS, LEARNED_TAPS,
};
use nalgebra::{DMatrix, DVector};

/// Positions the fit uses at most (spread evenly over the sample).
const FIT_POSITIONS: usize = 1 << 14;
/// Reweighting rounds that turn least squares into least absolute error, which is closer
/// to what the residual coder pays (bits grow with log |residual|, not its square).
const L1_ROUNDS: usize = 6;

/// Fits weights on `frames` (rows of `height x width` values, back to back) on `grid`.
/// `None` when there are fewer than three frames or the fit is degenerate.
pub fn fit(
    frames: &[f64],
    height: usize,
    width: usize,
    grid: &ColumnGrid,
) -> Option<[i32; LEARNED_TAPS]> {
    let n = height * width;
    let count = frames.len() / n.max(1);
    if n == 0 || count < 3 {
        return None;
    }
    // As the codec keeps them in its history: 0 where a value escapes the grid.
    let k: Vec<i64> = frames
        .iter()
        .map(|&v| grid_index(v, grid).unwrap_or(0))
        .collect();
    let positions = (count - 2) * n;
    let stride = positions.div_ceil(FIT_POSITIONS).max(1);
    let rows = positions.div_ceil(stride);
    let mut a = DMatrix::<f64>::zeros(rows, LEARNED_TAPS);
    let mut y = DVector::<f64>::zeros(rows);
    let mut taps = [0i64; LEARNED_TAPS];
    for (row, p) in (0..positions).step_by(stride).enumerate() {
        let (f, i) = (p / n + 2, p % n);
        let frame = |t: usize| &k[t * n..(t + 1) * n];
        field_taps(
            [frame(f - 2), frame(f - 1), frame(f)],
            i,
            width,
            height,
            &mut taps,
        );
        for (c, &t) in taps.iter().enumerate() {
            a[(row, c)] = t as f64;
        }
        y[row] = k[f * n + i] as f64;
    }
    let mut weights = solve(&a, &y, None)?;
    for _ in 0..L1_ROUNDS {
        let residual = &y - &a * &weights;
        let scale = residual.map(|e| 1.0 / e.abs().max(0.5));
        weights = solve(&a, &y, Some(&scale))?;
    }
    let one = f64::from(1u32 << LEARNED_FRACTION_BITS);
    let mut fixed = [0i32; LEARNED_TAPS];
    for (q, w) in fixed.iter_mut().zip(weights.iter()) {
        *q = (w * one)
            .round()
            .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
    }
    Some(fixed)
}

/// Weighted least squares with a little ridge (neighbours are strongly correlated).
fn solve(a: &DMatrix<f64>, y: &DVector<f64>, scale: Option<&DVector<f64>>) -> Option<DVector<f64>> {
    let (mut aw, mut yw) = (a.clone(), y.clone());
    if let Some(s) = scale {
        let root = s.map(f64::sqrt);
        for mut column in aw.column_iter_mut() {
            column.component_mul_assign(&root);
        }
        yw.component_mul_assign(&root);
    }
    // An explicit transpose lets the product run through the blocked matrix kernel.
    let awt = aw.transpose();
    let mut gram = &awt * &aw;
    let ridge = 1e-9 * gram.trace() / LEARNED_TAPS as f64 + 1e-12;
    for d in 0..LEARNED_TAPS {
        gram[(d, d)] += ridge;
    }
    let rhs = &awt * yw;
    let w = gram.cholesky()?.solve(&rhs);
    w.iter().all(|v| v.is_finite()).then_some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_rule_exactly() {
        // Each frame is the previous one shifted right by a column: the fit must find
        // "the previous frame's left neighbour" (weight 1 at that tap, ~0 elsewhere).
        let (h, w, t) = (12, 16, 8);
        let grid = ColumnGrid {
            offset: 0.0,
            step: 1.0,
            bound: 0.5,
            context: None,
            relation: None,
            per_binade: 0,
        };
        let mut frames = vec![0f64; t * h * w];
        for f in 0..t {
            for r in 0..h {
                for c in 0..w {
                    // Rough (pseudo-random) values, so that only the shift explains them.
                    let x = (c + 1000 - f) as u64;
                    frames[(f * h + r) * w + c] = ((x * 7919 + r as u64 * 104_729) % 1000) as f64;
                }
            }
        }
        let weights = fit(&frames, h, w, &grid).expect("fit");
        // previous frame, row offset 0, column offset -1: index 10 + 2 * 5 + 1.
        let tap = 10 + 2 * 5 + 1;
        let one = 1i64 << LEARNED_FRACTION_BITS;
        assert!(
            (i64::from(weights[tap]) - one).abs() < one / 10,
            "{weights:?}"
        );
    }
}
