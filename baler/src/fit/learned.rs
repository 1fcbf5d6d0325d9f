//! Fits the learned field predictor: weights over the decoded neighbours of a value
//! ([`field_taps`]) that predict its grid index. Grid indices do not depend on the predictor
//! (every value snaps to the same grid), so the fit sees exactly what the decoder will see.

use baler_codec::bounded::{
    field_taps, grid_index, ColumnGrid, CAUSAL_TAPS, LEARNED_FRACTION_BITS, LEARNED_TAPS,
};
use nalgebra::{DMatrixView, DVector};

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
    fit_first_taps(frames, height, width, grid, 2)
}

/// Fits the in-frame predictor's weights ([`CAUSAL_TAPS`] only) on every frame of `frames`,
/// as the codec runs it from a block's first frame on. `None` when the fit is degenerate.
pub fn fit_in_frame(
    frames: &[f64],
    height: usize,
    width: usize,
    grid: &ColumnGrid,
) -> Option<[i32; CAUSAL_TAPS.len()]> {
    fit_first_taps(frames, height, width, grid, 0)
}

/// Fits weights for the first `T` taps of [`field_taps`] on the frames from `first` on.
fn fit_first_taps<const T: usize>(
    frames: &[f64],
    height: usize,
    width: usize,
    grid: &ColumnGrid,
    first: usize,
) -> Option<[i32; T]> {
    let n = height * width;
    let count = frames.len() / n.max(1);
    if n == 0 || count < first + 1 {
        return None;
    }
    // As the codec keeps them in its history: 0 where a value escapes the grid.
    let k: Vec<i64> = frames
        .iter()
        .map(|&v| grid_index(v, grid).unwrap_or(0))
        .collect();
    let positions = (count - first) * n;
    let stride = positions.div_ceil(FIT_POSITIONS).max(1);
    let rows = positions.div_ceil(stride);
    // Row-major: a position's taps side by side, read in order by every round below.
    let mut a = vec![0f64; rows * T];
    let mut y = vec![0f64; rows];
    let mut taps = [0i64; LEARNED_TAPS];
    for ((p, row), target) in (0..positions)
        .step_by(stride)
        .zip(a.chunks_exact_mut(T))
        .zip(&mut y)
    {
        let (f, i) = (p / n + first, p % n);
        // (Frame 0 has none before it: a tap the rule reads from there is 0, as in a
        // block's first frame.)
        let frame = |t: Option<usize>| t.map_or(&[][..], |t| &k[t * n..(t + 1) * n]);
        field_taps(
            [
                frame(f.checked_sub(2)),
                frame(f.checked_sub(1)),
                &k[f * n..(f + 1) * n],
            ],
            i,
            width,
            height,
            &mut taps,
        );
        for (x, &t) in row.iter_mut().zip(&taps) {
            *x = t as f64;
        }
        *target = k[f * n + i] as f64;
    }
    let mut weighted = Vec::new();
    let mut weights: [f64; T] = solve(&a, &y, None, &mut weighted)?;
    let mut scale = vec![0f64; rows];
    for _ in 0..L1_ROUNDS {
        for ((s, row), &target) in scale.iter_mut().zip(a.chunks_exact(T)).zip(&y) {
            let e = target - dot(row, &weights);
            *s = 1.0 / e.abs().max(0.5);
        }
        weights = solve(&a, &y, Some(&scale), &mut weighted)?;
    }
    let one = f64::from(1u32 << LEARNED_FRACTION_BITS);
    let mut fixed = [0i32; T];
    for (q, w) in fixed.iter_mut().zip(weights.iter()) {
        *q = (w * one)
            .round()
            .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
    }
    Some(fixed)
}

/// A row of taps times the weights: its prediction.
fn dot<const T: usize>(a: &[f64], b: &[f64; T]) -> f64 {
    a.iter().zip(b).map(|(x, w)| x * w).sum()
}

/// Weighted least squares with a little ridge (neighbours are strongly correlated), through
/// the normal equations AᵀWA w = AᵀWy. `a` is A row-major, `T` a row; with a
/// `scale`, `weighted` (a buffer kept across rounds) receives WA, which read column-major is
/// (WA)ᵀ. Both factors are views of these buffers, and their product runs in matrixmultiply's
/// kernels. On a small input (an HDF5 or Zarr chunk) the copies and transposes of A this avoids, and their
/// page faults, had made the fit most of the compress time.
fn solve<const T: usize>(
    a: &[f64],
    y: &[f64],
    scale: Option<&[f64]>,
    weighted: &mut Vec<f64>,
) -> Option<[f64; T]> {
    let rows = y.len();
    let wa: &[f64] = match scale {
        None => a,
        Some(scale) => {
            weighted.clear();
            for (row, &s) in a.chunks_exact(T).zip(scale) {
                weighted.extend(row.iter().map(|x| x * s));
            }
            weighted
        }
    };
    // (W A)ᵀ, T x rows, and A, rows x T (row-major: a row's taps one apart), without copies.
    let weighted = DMatrixView::from_slice(wa, T, rows);
    let a = DMatrixView::from_slice_with_strides(a, rows, T, T, 1);
    let mut gram = weighted * a;
    let ridge = 1e-9 * gram.trace() / T as f64 + 1e-12;
    for d in 0..T {
        gram[(d, d)] += ridge;
    }
    let rhs = weighted * DVector::from_column_slice(y);
    let w = gram.cholesky()?.solve(&rhs);
    let out: [f64; T] = w.as_slice().try_into().ok()?;
    out.iter().all(|v| v.is_finite()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers, exactly: grid indices are the values.
    fn unit_grid() -> ColumnGrid {
        ColumnGrid {
            offset: 0.0,
            step: 1.0,
            bound: 0.5,
            context: None,
            relation: None,
            per_binade: 0,
        }
    }

    #[test]
    fn recovers_a_linear_rule_exactly() {
        // Each frame is the previous one shifted right by a column: the fit must find
        // "the previous frame's left neighbour" (weight 1 at that tap, ~0 elsewhere).
        let (h, w, t) = (12, 16, 8);
        let grid = unit_grid();
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

    #[test]
    fn the_in_frame_fit_finds_the_planar_rule_from_the_first_frame() {
        // Each frame is x(r) + y(c) with rough sequences of its own (layers unrelated to each
        // other): only "up + left - up-left" predicts it, from the first frame on.
        let (h, w, t) = (12, 16, 3);
        let grid = unit_grid();
        let rough = |i: u64| ((i * 7919 + 104_729) % 1000) as f64;
        let mut frames = vec![0f64; t * h * w];
        for f in 0..t {
            for r in 0..h {
                for c in 0..w {
                    let seed = 1000 * f as u64;
                    frames[(f * h + r) * w + c] =
                        rough(seed + r as u64) + rough(seed + 500 + c as u64);
                }
            }
        }
        let weights = fit_in_frame(&frames, h, w, &grid).expect("fit");
        let one = 1i64 << LEARNED_FRACTION_BITS;
        // CAUSAL_TAPS: up (-1, 0), left (0, -1), up-left (-1, -1), then the farther ones.
        for (tap, want) in [(0, one), (1, one), (2, -one)] {
            assert!(
                (i64::from(weights[tap]) - want).abs() < one / 10,
                "{weights:?}"
            );
        }
        // One frame (an image) is enough for it; the 60-tap fit needs three.
        assert!(fit_in_frame(&frames[..h * w], h, w, &grid).is_some());
        assert!(fit(&frames[..h * w], h, w, &grid).is_none());
    }
}
