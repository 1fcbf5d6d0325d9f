//! Chooses column relations for tables (`Predictor::Relations`): for each column, the function
//! of nearby earlier columns (a norm, an azimuth, a pseudorapidity) or the value of any earlier
//! column (a copy) that predicts it best on a sample, kept only where it clearly beats coding
//! the column alone. Compress then judges the
//! whole predictor against the model-free path with the real coder.

use baler_codec::bounded::{grid_index, ColumnGrid, Relation, RelationKind, MAX_RELATION_DISTANCE};

/// Sample rows the finalists are scored on.
const SEARCH_ROWS: usize = 512;
/// Rows every candidate is screened on first (the functions are slow: about 1,000
/// candidates per column).
const SCREEN_ROWS: usize = 64;
/// Candidates per column that go on from the screening to the full score.
const FINALISTS: usize = 8;
/// Earlier columns a relation may read: the nearest ones (a particle's attributes are
/// usually stored side by side).
const WINDOW: usize = 12;
/// A relation must bring the column's estimated bits below this fraction.
const MIN_GAIN: f64 = 0.8;

/// Sets `grids[c].relation` where a relation predicts column `c` well on `sample` (rows of
/// `grids.len()` values); returns how many columns got one.
pub fn choose(sample: &[f64], grids: &mut [ColumnGrid]) -> usize {
    let n = grids.len();
    if n < 3 {
        return 0;
    }
    let rows = (sample.len() / n).min(SEARCH_ROWS);
    // The values as the decoder will have them: snapped to their grids.
    let decoded: Vec<f64> = sample[..rows * n]
        .iter()
        .enumerate()
        .map(|(p, &x)| {
            let g = &grids[p % n];
            grid_index(x, g).map_or(x, |k| g.value(k))
        })
        .collect();
    let mut chosen = 0;
    for c in 2..n {
        let g = grids[c];
        let targets: Vec<Option<i64>> = (0..rows)
            .map(|r| grid_index(sample[r * n + c], &g))
            .collect();
        // Estimated bits over the first `rows` rows: about log2(1 + |residual|) per value.
        let cost = |predict: &dyn Fn(&[f64]) -> f64, rows: usize| -> f64 {
            targets
                .iter()
                .take(rows)
                .enumerate()
                .filter_map(|(r, k)| {
                    let row = &decoded[r * n..r * n + c];
                    let p = grid_index(predict(row), &g).unwrap_or(0);
                    k.map(|k| (1.0 + k.abs_diff(p) as f64).log2())
                })
                .sum()
        };
        let alone = cost(&|_| 0.0, rows);
        let mut screened: Vec<(f64, Relation)> = candidates(c.saturating_sub(WINDOW), c)
            .into_iter()
            .map(|relation| (cost(&|row| relation.eval(row), SCREEN_ROWS), relation))
            .collect();
        screened.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut best: Option<(f64, Relation)> = None;
        for &(_, relation) in screened.iter().take(FINALISTS) {
            // A hundredth of a bit per argument and row: of two that predict alike, the
            // simpler relation wins.
            let bits = cost(&|row| relation.eval(row), rows)
                + 0.01 * (relation.kind.arity() * rows) as f64;
            if bits < MIN_GAIN * alone && best.is_none_or(|(b, _)| bits < b) {
                best = Some((bits, relation));
            }
        }
        if let Some((_, relation)) = best {
            grids[c].relation = Some(relation);
            chosen += 1;
        }
    }
    chosen
}

/// Every relation of column `c` over columns `first..c`, and a copy of each column up to
/// [`MAX_RELATION_DISTANCE`] back (a copy costs one evaluation, so it looks farther).
fn candidates(first: usize, c: usize) -> Vec<Relation> {
    let r = |kind, a: usize, b: usize, z: usize| Relation {
        kind,
        columns: [a as u32, b as u32, z as u32],
    };
    let mut all: Vec<Relation> = (c.saturating_sub(MAX_RELATION_DISTANCE)..c)
        .map(|a| r(RelationKind::Copy, a, 0, 0))
        .collect();
    for a in first..c {
        for b in first..c {
            if a == b {
                continue;
            }
            // atan2(b, a) in both orders; the norms once per set of columns.
            all.push(r(RelationKind::Azimuth, a, b, 0));
            if a < b {
                all.push(r(RelationKind::Norm2, a, b, 0));
            }
            for z in first..c {
                if z == a || z == b || a > b {
                    continue;
                }
                all.push(r(RelationKind::Pseudorapidity, a, b, z));
                if b < z {
                    all.push(r(RelationKind::Norm3, a, b, z));
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_transverse_momentum_and_the_angle() {
        // Columns: px, py, noise, pt = |(px, py)|, phi = atan2(py, px).
        let rows = 400;
        let mut sample = Vec::new();
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for _ in 0..rows {
            let (px, py) = (100.0 * next(), 100.0 * next());
            sample.extend([px, py, next(), px.hypot(py), py.atan2(px)]);
        }
        let grid = |step: f64| ColumnGrid {
            offset: 0.0,
            step,
            bound: step / 2.0,
            context: None,
            relation: None,
            per_binade: 0,
        };
        let mut grids = vec![grid(0.1), grid(0.1), grid(0.01), grid(0.1), grid(0.001)];
        assert_eq!(choose(&sample, &mut grids), 2);
        assert_eq!(grids[2].relation, None);
        let pt = grids[3].relation.unwrap();
        assert_eq!((pt.kind, pt.columns), (RelationKind::Norm2, [0, 1, 0]));
        let phi = grids[4].relation.unwrap();
        assert_eq!((phi.kind, phi.columns), (RelationKind::Azimuth, [0, 1, 0]));
    }
}
