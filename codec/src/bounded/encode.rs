//! The encoder's side of a row. Grid indices do not depend on the prediction, so a whole row
//! is quantized first, then predicted from that history exactly as the decoder will see it
//! (the decoder predicts value by value with the same functions), and only then coded: tight
//! loops instead of one that stalls on every branch the coder mispredicts. Fields without a
//! model, the bulk of the data by volume, have a path of their own without per-value grid
//! lookups or layout dispatch.

use super::*;

/// The encoder's side of [`code_row`]. Grid indices do not depend on the prediction, so
/// the whole row is quantized and predicted first, from that history exactly as the decoder
/// will see it, and only then coded: tight loops instead of one that stalls on every branch
/// the adaptive coder mispredicts. Fields without a model take [`code_field`].
pub(super) fn encode_row<C: ResidualCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    setup: &RowSetup<'_>,
    state: &mut RowState<'_>,
    input: &[f64],
    base: Option<&[f32]>,
    out: &mut [f64],
) -> Result<()> {
    // (A pointwise field grid takes the general path: `code_field` quantizes linearly.)
    let linear = setup.field_grid.is_some_and(|g| g.per_binade == 0);
    if let (Layout::Field { width, .. }, None, true) = (setup.layout, base, linear) {
        return code_field(coder, params, setup, state, input, out, width as usize);
    }
    predict_row(params, setup, state, input, base, out)?;
    for (i, &x) in input.iter().enumerate() {
        let packed = state.temporal[i];
        let (prediction, class) = (packed >> CLASS_BITS, (packed & 15) as usize);
        let wanted = match state.targets[i] {
            ESCAPED => Coded::Raw(x.to_bits()),
            k => Coded::Residual(k - prediction),
        };
        coder.residual(state.models, context(setup.layout, i, class), wanted)?;
    }
    Ok(())
}

/// Quantizes and predicts a row of any layout, value by value: each value's grid index, target
/// and decoded value, and its prediction packed with its context class into the temporal row.
fn predict_row(
    params: &BoundParams<'_>,
    setup: &RowSetup<'_>,
    state: &mut RowState<'_>,
    input: &[f64],
    base: Option<&[f32]>,
    out: &mut [f64],
) -> Result<()> {
    // Targets (grid indices to code, or ESCAPED), history and decoded values, and the
    // predictions packed with their context class: a prediction reads only earlier values of
    // this row and earlier rows, which are final by then. (The learned predictor, fields
    // without a model only, takes `code_field`.)
    // A table without a model whose grids were read once takes a loop of its own.
    if let (Layout::Table, None, true) = (setup.layout, base, setup.grids.len() == input.len()) {
        // (One instance for every output type: the firmware's flash pays for each.)
        let dtype = params.dtype;
        return predict_table(setup.grids, state, input, out, |v| to_output(v, dtype));
    }
    let mut at = Cursor::new(setup.layout);
    for (i, &x) in input.iter().enumerate() {
        let mut slot = NO_GRID;
        let g = setup.grid(params, i, &mut slot)?;
        let base_k = base_index(base, &out[..i], i, g);
        let k = grid_index(x, g);
        let (target, y) = k
            .and_then(|k| within_bound(x, k, g, params.dtype))
            .unwrap_or((ESCAPED, x));
        state.targets[i] = target;
        out[i] = y;
        state.current[i] = match setup.layout {
            Layout::Table => k.unwrap_or(base_k),
            Layout::Field { .. } => k.map_or(0, |k| k - base_k),
        };
        let (prediction, class) = predict(setup, state, g, base_k, i, at.next());
        state.temporal[i] = (prediction << CLASS_BITS) | class as i64;
    }
    Ok(())
}

/// [`predict_row`] for a table row without a model, `grids` its columns' (one each), `to_out`
/// the output type's conversion: the same targets, history, decoded values and packed
/// predictions, with the layout, the grids and the output type settled before the row.
fn predict_table(
    grids: &[ColumnGrid],
    state: &mut RowState<'_>,
    input: &[f64],
    out: &mut [f64],
    to_out: impl Fn(f64) -> f64,
) -> Result<()> {
    let n = input.len();
    let (targets, current) = (&mut state.targets[..n], &mut state.current[..n]);
    let predictions = &mut state.temporal[..n];
    for (i, (&x, g)) in input.iter().zip(grids).enumerate() {
        let base_k = relation_index(g, out.get(..i).unwrap_or_default());
        let k = grid_index(x, g);
        let (target, y) = k
            .and_then(|k| {
                let y = to_out(g.value(k));
                g.keeps(x, y).then_some((k, y))
            })
            .unwrap_or((ESCAPED, x));
        let class = table_class(g, current);
        if let (Some(t), Some(o), Some(c), Some(p)) = (
            targets.get_mut(i),
            out.get_mut(i),
            current.get_mut(i),
            predictions.get_mut(i),
        ) {
            (*t, *o, *c) = (target, y, k.unwrap_or(base_k));
            *p = (base_k << CLASS_BITS) | class as i64;
        }
    }
    Ok(())
}

/// [`encode_row`] for a field frame without a model: the same targets, history, decoded
/// values, predictions and coded residuals, in whole-frame loops. Each value is coded as soon
/// as it is predicted (a field's coder, the tabled one, has no branches to stall on).
fn code_field<C: ResidualCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    setup: &RowSetup<'_>,
    state: &mut RowState<'_>,
    input: &[f64],
    out: &mut [f64],
    width: usize,
) -> Result<()> {
    let g = setup.field_grid.ok_or(Error::Invalid("field grid"))?;
    let n = input.len();
    let (targets, current) = (&mut state.targets[..n], &mut state.current[..n]);
    match params.dtype {
        DType::F64 => quantize(&g, input, targets, current, out, |v| v),
        DType::F32 => quantize(&g, input, targets, current, out, |v| f64::from(v as f32)),
        dtype => quantize(&g, input, targets, current, out, |v| to_output(v, dtype)),
    }
    let mut causal_in_sums = false;
    if let (Some(weights), Some(mirrors)) = (setup.learned(), &mut state.mirrors) {
        causal_in_sums = mirrors.add_causal(weights, state.current, state.previous, state.temporal);
    }
    let (current, previous) = (&*state.current, &*state.previous);
    let (sums, targets) = (&state.temporal[..n], &state.targets[..n]);
    let models = &mut *state.models;
    let rows = sums
        .chunks(width)
        .zip(targets.chunks(width))
        .zip(input.chunks(width));
    let residual_contexts = state.residual_contexts;
    for (row, ((sums, targets), input)) in rows.enumerate() {
        let at = FieldRow {
            weights: setup.learned(),
            current,
            previous,
            row,
            width,
            causal_in_sums,
            residual_contexts,
        };
        // The magnitude of the residual to the left (kind 6 contexts).
        let mut left = 0u64;
        let values = sums.iter().zip(targets).zip(input);
        let start = row * width;
        let Some(neighbours) = frame_rows(current, previous, start, width).filter(|_| row > 0)
        else {
            // The top row: neighbours clamp, value by value.
            for (col, value) in values.enumerate() {
                let terms = lorenzo(current, previous, (row, col), width);
                left = at.code(coder, models, col, value, terms, left)?;
            }
            continue;
        };
        // Below the top row and right of the first column every neighbour exists: pairs of
        // (left, here) from this row and the one above, in both frames.
        let [cur, cur_up, prev, prev_up] = neighbours;
        let pairs = cur
            .windows(2)
            .zip(cur_up.windows(2))
            .zip(prev.windows(2).zip(prev_up.windows(2)));
        let mut values = values.enumerate();
        if let Some((col, value)) = values.next() {
            let terms = lorenzo(current, previous, (row, col), width);
            left = at.code(coder, models, col, value, terms, left)?;
        }
        for ((col, value), ((c, u), (p, pu))) in values.zip(pairs) {
            let terms = lorenzo_terms(c[0], u[1], u[0], p[1], p[0], pu[1], pu[0]);
            left = at.code(coder, models, col, value, terms, left)?;
        }
    }
    Ok(())
}

/// What predicting a value of one field row needs besides its own column.
struct FieldRow<'f> {
    weights: Option<&'f [i32; LEARNED_TAPS]>,
    current: &'f [i64],
    previous: &'f [i64],
    row: usize,
    width: usize,
    /// The learned sums already hold the causal terms (else they are added value by value).
    causal_in_sums: bool,
    /// Kind 6: the context from [`residual_activity`], not from the Lorenzo activity.
    residual_contexts: bool,
}

impl FieldRow<'_> {
    /// Predicts the value at `col` (its temporal sum, target and input `value`; its Lorenzo
    /// prediction and activity `terms`; the magnitude of the residual coded left of it) and
    /// codes it. Returns the magnitude of its residual (0 when escaped).
    #[inline(always)]
    fn code<C: ResidualCoder>(
        &self,
        coder: &mut C,
        models: &mut [IntModel],
        col: usize,
        ((&sum, &target), &x): ((&i64, &i64), &f64),
        (lorenzo_d, activity): (i64, u64),
        left: u64,
    ) -> Result<u64> {
        let d = match self.weights {
            Some(_) if self.causal_in_sums => round_fixed(sum),
            Some(w) => learned_prediction(
                w,
                self.current,
                self.previous,
                (self.row, col),
                self.width,
                sum,
            ),
            None => lorenzo_d,
        };
        let activity = match self.residual_contexts {
            true => residual_activity(
                self.current,
                self.previous,
                (self.row, col),
                self.width,
                left,
            ),
            false => activity,
        };
        let class = bit_len(activity).min(FIELD_CLASSES - 1);
        let prediction = d.clamp(-MAX_GRID_INDEX, MAX_GRID_INDEX);
        let (wanted, magnitude) = match target {
            ESCAPED => (Coded::Raw(x.to_bits()), 0),
            k => (
                Coded::Residual(k - prediction),
                (k - prediction).unsigned_abs(),
            ),
        };
        coder.residual(models, class, wanted)?;
        Ok(magnitude)
    }
}

/// The frame rows at `start` and the row above it, in the current and previous frames.
fn frame_rows<'f>(
    current: &'f [i64],
    previous: &'f [i64],
    start: usize,
    width: usize,
) -> Option<[&'f [i64]; 4]> {
    let up = start.checked_sub(width)?;
    Some([
        current.get(start..start + width)?,
        current.get(up..start)?,
        previous.get(start..start + width)?,
        previous.get(up..start)?,
    ])
}

/// Grid index, target and decoded value of every value of a field frame, with the output
/// type's conversion `to_out` chosen once per frame.
///
/// Any index whose decoded value is within the bound may be coded, so this one is found the
/// fast way: a multiplication by the inverse step and [`round_to_integer`] (exact for
/// |t| < 2^51). All of it runs on vector registers. Only an escaped value's history must be [`grid_index`] exactly (the
/// decoder recomputes it from the raw value), so those few are redone.
#[inline(always)]
fn quantize(
    g: &ColumnGrid,
    input: &[f64],
    targets: &mut [i64],
    current: &mut [i64],
    out: &mut [f64],
    to_out: impl Fn(f64) -> f64,
) {
    let limit = MAX_GRID_INDEX as f64;
    let inverse = 1.0 / g.step;
    let mut escaped = false;
    let values = input
        .iter()
        .zip(&mut *targets)
        .zip(&mut *current)
        .zip(&mut *out);
    for (((&x, target), k_out), y_out) in values {
        let t = (x - g.offset) * inverse;
        let on_grid = t.abs() <= limit;
        let (rounded, k) = round_to_integer(if on_grid { t } else { 0.0 });
        let y = to_out(g.offset + rounded * g.step);
        // `&`, not `&&`: no branch, so the loop vectorises.
        let within = on_grid & ((x - y).abs() <= g.bound);
        escaped |= !within;
        *target = if within { k } else { ESCAPED };
        *y_out = if within { y } else { x };
        *k_out = k;
    }
    if escaped {
        for ((&x, &target), k_out) in input.iter().zip(&*targets).zip(current) {
            if target == ESCAPED {
                *k_out = grid_index(x, g).unwrap_or(0);
            }
        }
    }
}
