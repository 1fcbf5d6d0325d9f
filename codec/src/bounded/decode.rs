//! The decoder's side of a row: value by value, each predicted from those decoded before it
//! (its context and prediction depend on them, so this is one serial chain). Fields without a
//! model, the bulk of the data by volume, have a path of their own, as in `encode.rs`: the
//! grid, the layout and the output type settled once per frame, neighbours read straight
//! from the rows above, and the learned predictor's taps in those rows summed for a whole
//! row before its values are decoded, so that the chain per value holds only the two taps to
//! its left. Both paths compute the same numbers as the encoder's (wrapping sums are the same
//! in any order).

use super::*;
use crate::bounded::field::{causal_stencil, mac, row_terms};

/// The decoder's side of [`code_row`]. Fields without a model on a linear grid take
/// [`decode_field`].
pub(super) fn decode_row<C: ResidualCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    setup: &RowSetup<'_>,
    state: &mut RowState<'_>,
    base: Option<&[f32]>,
    out: &mut [f64],
) -> Result<()> {
    let linear = setup.field_grid.is_some_and(|g| g.per_binade == 0);
    if let (Layout::Field { width, .. }, None, true) = (setup.layout, base, linear) {
        return match params.dtype {
            DType::F64 => decode_field(coder, setup, state, out, width as usize, |v| v),
            DType::F32 => decode_field(coder, setup, state, out, width as usize, |v| {
                f64::from(v as f32)
            }),
            dtype => decode_field(coder, setup, state, out, width as usize, |v| {
                to_output(v, dtype)
            }),
        };
    }
    // A table without a model whose grids were read once takes a loop of its own.
    if let (Layout::Table, None, true) = (setup.layout, base, setup.grids.len() == out.len()) {
        // The output type settled once per row, as for fields (a match per value cost 5
        // instructions and an indirect jump).
        let grids = setup.grids;
        return match params.dtype {
            DType::F64 => decode_table(coder, grids, state, out, |v| v),
            DType::F32 => decode_table(coder, grids, state, out, |v| f64::from(v as f32)),
            dtype => decode_table(coder, grids, state, out, |v| to_output(v, dtype)),
        };
    }
    let mut at = Cursor::new(setup.layout);
    for i in 0..out.len() {
        let mut slot = NO_GRID;
        let g = setup.grid(params, i, &mut slot)?;
        let base_k = base_index(base, &out[..i], i, g);
        let (prediction, class) = predict(setup, state, g, base_k, i, at.next());
        let coded = coder.residual(state.models, context(setup.layout, i, class), Coded::Raw(0))?;
        let (k, value) = decoded(coded, prediction, g, base_k, |v| to_output(v, params.dtype))?;
        out[i] = value;
        state.current[i] = history_value(setup.layout, k, base_k);
    }
    Ok(())
}

/// [`decode_row`] for a table row without a model, `grids` its columns' (one each), `to_out`
/// the output type's conversion: the same numbers as the general loop, with the layout, the
/// grids and the output type settled before the row instead of once per value (that took
/// about a fifth of a table's decoding instructions).
fn decode_table<C: ResidualCoder>(
    coder: &mut C,
    grids: &[ColumnGrid],
    state: &mut RowState<'_>,
    out: &mut [f64],
    to_out: impl Fn(f64) -> f64,
) -> Result<()> {
    let models = &mut *state.models;
    let current = &mut *state.current;
    for (i, g) in grids.iter().enumerate() {
        // (Within the grid already: no clamp needed.)
        let base_k = relation_index(g, out.get(..i).unwrap_or_default());
        let class = table_class(g, current);
        let coded = coder.residual(models, i * TABLE_CLASSES + class, Coded::Raw(0))?;
        let (k, value) = decoded(coded, base_k, g, base_k, &to_out)?;
        if let (Some(slot), Some(kept)) = (out.get_mut(i), current.get_mut(i)) {
            (*slot, *kept) = (value, k);
        }
    }
    Ok(())
}

/// The grid index and value of a decoded residual (or escaped raw value) on grid `g`; an
/// escaped value's history is its own grid index, or `base_k` off the grid.
#[inline(always)]
fn decoded(
    coded: Coded,
    prediction: i64,
    g: &ColumnGrid,
    base_k: i64,
    to_out: impl Fn(f64) -> f64,
) -> Result<(i64, f64)> {
    match coded {
        Coded::Residual(r) => {
            let k = prediction + r;
            if k.abs() > MAX_GRID_INDEX {
                return Err(Error::Invalid("residual outside the grid"));
            }
            Ok((k, to_out(g.value(k))))
        }
        Coded::Raw(bits) => {
            let value = f64::from_bits(bits);
            Ok((grid_index(value, g).unwrap_or(base_k), value))
        }
    }
}

/// [`decode_row`] for a field frame without a model on a linear grid, `to_out` the output
/// type's conversion. Kind 6 blocks ([`RowState::residual_contexts`]) take their contexts from
/// the residual to the left and the rows before instead of the decoded neighbours.
fn decode_field<C: ResidualCoder>(
    coder: &mut C,
    setup: &RowSetup<'_>,
    state: &mut RowState<'_>,
    out: &mut [f64],
    width: usize,
    to_out: impl Fn(f64) -> f64 + Copy,
) -> Result<()> {
    let g = setup.field_grid.ok_or(Error::Invalid("field grid"))?;
    let n = out.len();
    let weights = setup.learned();
    let models = &mut *state.models;
    let (current, previous) = (&mut state.current[..n], &*state.previous);
    let sums = &mut state.temporal[..n];
    let residual_contexts = state.residual_contexts;
    let scratch = &mut *state.targets;
    let stencil = weights.map(causal_stencil);
    let left_weights = stencil.map_or((0, 0), |s| (s[2][1], s[2][0]));
    let rows = out.chunks_mut(width).zip(sums.chunks_mut(width));
    for (row, (out, sums)) in rows.enumerate() {
        let start = row * width;
        // The learned predictor's interior columns (two from each edge, from the third row
        // on): the taps in the rows above are final, summed here for the whole row.
        let interior = match stencil {
            Some(s) if row >= 2 && width >= 5 => {
                add_rows_above(&s, current, start, width, sums);
                2..width - 2
            }
            _ => 0..0,
        };
        let plan = RowPlan {
            row,
            width,
            weights,
            interior,
            left_weights,
        };
        // Kind 6 takes the context from the residual to the left and the rows before; below
        // the first row, all but the residual to the left is known before the row.
        if residual_contexts && row > 0 {
            let coding = (&mut *coder, &mut *models, g);
            decode_context_row(
                coding,
                &plan,
                (current, previous),
                scratch,
                (out, sums),
                to_out,
            )?;
            continue;
        }
        let (mut left, mut left_residual) = ([0i64; 2], 0u64);
        for (col, (value, &sum)) in out.iter_mut().zip(sums.iter()).enumerate() {
            let (prediction, activity) = plan.predict(current, previous, col, left, sum);
            let activity = match residual_contexts {
                true => residual_activity(current, previous, (row, col), width, left_residual),
                false => activity,
            };
            let slot = current.get_mut(start + col);
            let (k, magnitude) = decode_field_value(
                (coder, models, &g),
                (prediction, activity),
                value,
                slot,
                to_out,
            )?;
            left_residual = magnitude;
            left = [k, left[0]];
        }
    }
    Ok(())
}

/// One value of a field row from its `prediction` and context `activity`: its decoded value
/// into `value` and its grid index into the history `slot`. Returns the grid index and the
/// residual's magnitude (0 when escaped), what the value to its right takes from it.
#[inline(always)]
fn decode_field_value<C: ResidualCoder>(
    (coder, models, g): (&mut C, &mut [IntModel], &ColumnGrid),
    (prediction, activity): (i64, u64),
    value: &mut f64,
    slot: Option<&mut i64>,
    to_out: impl Fn(f64) -> f64,
) -> Result<(i64, u64)> {
    let class = bit_len(activity).min(FIELD_CLASSES - 1);
    let coded = coder.residual(models, class, Coded::Raw(0))?;
    let magnitude = match coded {
        Coded::Residual(r) => r.unsigned_abs(),
        Coded::Raw(_) => 0,
    };
    let (k, y) = decoded(coded, prediction, g, 0, to_out)?;
    *value = y;
    if let Some(slot) = slot {
        *slot = k;
    }
    Ok((k, magnitude))
}

/// A row of a kind 6 frame below its first ([`decode_field`]): the terms of each value's
/// context and Lorenzo prediction that come from the row above and the previous frame are
/// found for the whole row first ([`row_terms`], a pass without a chain), so that the loop
/// per value holds only the token, what depends on the value to its left, and the value.
/// (The loop is bound by its instruction count, not by the chain through the left
/// neighbour: reading a row's residuals in a loop of their own measured no faster.)
fn decode_context_row<C: ResidualCoder>(
    (coder, models, g): (&mut C, &mut [IntModel], ColumnGrid),
    plan: &RowPlan<'_>,
    (current, previous): (&mut [i64], &[i64]),
    scratch: &mut [i64],
    (out, sums): (&mut [f64], &[i64]),
    to_out: impl Fn(f64) -> f64 + Copy,
) -> Result<()> {
    let (row, width) = (plan.row, plan.width);
    let start = row * width;
    let (activity, lorenzo) = scratch
        .get_mut(..2 * width)
        .ok_or(Error::Invalid("field row"))?
        .split_at_mut(width);
    let (Some(up), Some(prev), Some(prev_up)) = (
        current.get(start - width..start),
        previous.get(start..start + width),
        previous.get(start - width..start),
    ) else {
        return Err(Error::Invalid("field row"));
    };
    let mut lorenzo = plan.weights.is_none().then_some(lorenzo);
    row_terms([up, prev, prev_up], activity, lorenzo.as_deref_mut());
    let lorenzo: &[i64] = lorenzo.map_or(&[], |l| l);
    let (mut left, mut left_residual) = ([0i64; 2], 0u64);
    let values = out.iter_mut().zip(sums).zip(&*activity);
    for (col, ((value, &sum), &terms)) in values.enumerate() {
        let d = match plan.weights {
            Some(_) if plan.interior.contains(&col) => round_fixed(mac(
                mac(sum, left[0], plan.left_weights.0),
                left[1],
                plan.left_weights.1,
            )),
            Some(w) => learned_prediction(w, current, previous, (row, col), width, sum),
            None => left[0].wrapping_add(lorenzo.get(col).copied().unwrap_or(0)),
        };
        let prediction = d.clamp(-MAX_GRID_INDEX, MAX_GRID_INDEX);
        let activity = left_residual.saturating_mul(4).saturating_add(terms as u64);
        let slot = current.get_mut(start + col);
        let (k, magnitude) = decode_field_value(
            (coder, models, &g),
            (prediction, activity),
            value,
            slot,
            to_out,
        )?;
        left_residual = magnitude;
        left = [k, left[0]];
    }
    Ok(())
}

/// What predicting the values of one frame row needs besides the decoded history.
struct RowPlan<'w> {
    row: usize,
    width: usize,
    weights: Option<&'w [i32; LEARNED_TAPS]>,
    /// The learned predictor's interior columns, whose taps in the rows above are already in
    /// their sums.
    interior: core::ops::Range<usize>,
    /// Weights of the two taps left of a value in its own row.
    left_weights: (i32, i32),
}

impl RowPlan<'_> {
    /// The prediction of the value at `col` (clamped to the grid) and its Lorenzo activity;
    /// `left` holds the grid indices of the two values before it in the row, `sum` its
    /// learned temporal sum.
    #[inline(always)]
    fn predict(
        &self,
        current: &[i64],
        previous: &[i64],
        col: usize,
        left: [i64; 2],
        sum: i64,
    ) -> (i64, u64) {
        let (row, width) = (self.row, self.width);
        let i = row * width + col;
        let (lorenzo_d, activity) = if row > 0 && col > 0 {
            let up = i - width;
            let at = |frame: &[i64], j: usize| frame.get(j).copied().unwrap_or(0);
            lorenzo_terms(
                left[0],
                at(current, up),
                at(current, up - 1),
                at(previous, i),
                at(previous, i - 1),
                at(previous, up),
                at(previous, up - 1),
            )
        } else {
            lorenzo(current, previous, (row, col), width)
        };
        let d = match self.weights {
            Some(_) if self.interior.contains(&col) => round_fixed(mac(
                mac(sum, left[0], self.left_weights.0),
                left[1],
                self.left_weights.1,
            )),
            Some(w) => learned_prediction(w, current, previous, (row, col), width, sum),
            None => lorenzo_d,
        };
        (d.clamp(-MAX_GRID_INDEX, MAX_GRID_INDEX), activity)
    }
}

/// Adds to `sums` (one frame row, at `start` of `current`) the learned predictor's causal
/// terms in the two rows above, for the columns two or more from either edge (the others
/// clamp and take [`learned_prediction`]). Wrapping `i64`, as [`learned_prediction`] adds them.
fn add_rows_above(
    stencil: &[[i32; 5]; 3],
    current: &[i64],
    start: usize,
    width: usize,
    sums: &mut [i64],
) {
    let (Some(two_up), Some(one_up)) = (
        current.get(start - 2 * width..start - width),
        current.get(start - width..start),
    ) else {
        return;
    };
    let interior = sums.get_mut(2..width - 2).unwrap_or_default();
    for (c, sum) in interior.iter_mut().enumerate() {
        // Column c + 2 of the row reads columns c..c + 5 of the rows above.
        let (a, b) = (&two_up[c..c + 5], &one_up[c..c + 5]);
        let mut s = *sum;
        for ((&ka, &kb), (&wa, &wb)) in a.iter().zip(b).zip(stencil[0].iter().zip(&stencil[1])) {
            s = mac(mac(s, ka, wa), kb, wb);
        }
        *sum = s;
    }
}
