//! Field prediction: a value of a `height x width` frame predicted from decoded neighbours in
//! its own frame and the two frames before it, in integer grid indices.
//!
//! The learned predictor's semantics are [`field_taps`] weighed in wrapping `i64`
//! arithmetic. It is computed in two parts with the same result: the 50 taps in the two
//! earlier frames for a whole frame at once ([`TemporalSums`], a convolution over
//! edge-replicated `f64` copies, exact while every partial sum stays below 2^51 and done in
//! `i64` otherwise), and the 10 taps in the frame being decoded, value by value.

/// Neighbours a learned field predictor weighs: [`CAUSAL_TAPS`] in the frame being decoded,
/// then 5 x 5 around the value in the previous frame, then 5 x 5 in the frame before that.
pub const LEARNED_TAPS: usize = CAUSAL_TAPS.len() + 2 * TEMPORAL_WINDOW;
/// Fractional bits of the learned predictor's weights.
pub const LEARNED_FRACTION_BITS: u32 = 16;
/// The already-decoded neighbours (row, column offsets) of the frame being decoded.
pub const CAUSAL_TAPS: [(i8, i8); 10] = [
    (-1, 0),
    (0, -1),
    (-1, -1),
    (-1, 1),
    (-2, 0),
    (0, -2),
    (-1, -2),
    (-2, -1),
    (-2, 1),
    (-1, 2),
];
/// Taps per earlier frame: the 5 x 5 window around the value.
const TEMPORAL_WINDOW: usize = 25;
/// Rows (and columns) of edge padding around a mirrored frame: the window's reach.
const PAD: usize = 2;

/// The grid indices a learned predictor weighs for value `i` of a `height x width` frame,
/// in [`LEARNED_TAPS`] order, from the frame being decoded (`current`, decoded up to `i`)
/// and the two before it. Coordinates outside the frame are clamped to its edge; a causal
/// neighbour not decoded yet (left of the first column, above the first row) is taken from
/// the previous frame instead. The encoder fits its weights on exactly these values.
pub fn field_taps(
    frames: [&[i64]; 3],
    i: usize,
    width: usize,
    height: usize,
    taps: &mut [i64; LEARNED_TAPS],
) {
    let [older, previous, current] = frames;
    let mut causal = [0i64; CAUSAL_TAPS.len()];
    causal_taps(
        current,
        previous,
        (i / width, i % width),
        width,
        &mut causal,
    );
    taps[..CAUSAL_TAPS.len()].copy_from_slice(&causal);
    let (row, col) = ((i / width) as isize, (i % width) as isize);
    let clamp = |r: isize, c: isize| {
        let r = r.clamp(0, height as isize - 1) as usize;
        let c = c.clamp(0, width as isize - 1) as usize;
        r * width + c
    };
    let mut t = CAUSAL_TAPS.len();
    for frame in [previous, older] {
        for dr in -2..=2 {
            for dc in -2..=2 {
                taps[t] = frame.get(clamp(row + dr, col + dc)).copied().unwrap_or(0);
                t += 1;
            }
        }
    }
}

/// The [`CAUSAL_TAPS`] of the value at `(row, column)`, as [`field_taps`] defines them.
#[inline]
fn causal_taps(
    current: &[i64],
    previous: &[i64],
    (row, col): (usize, usize),
    width: usize,
    taps: &mut [i64; CAUSAL_TAPS.len()],
) {
    let (row, col) = (row as isize, col as isize);
    // Causal rows are never below the value's own, so only the top edge clamps.
    let clamp =
        |r: isize, c: isize| r.max(0) as usize * width + c.clamp(0, width as isize - 1) as usize;
    for (tap, &(dr, dc)) in taps.iter_mut().zip(CAUSAL_TAPS.iter()) {
        let (r, c) = (row + isize::from(dr), col + isize::from(dc));
        let decoded = r >= 0 && (dr < 0 || c >= 0);
        let frame = if decoded { current } else { previous };
        *tap = frame.get(clamp(r, c)).copied().unwrap_or(0);
    }
}

/// The learned prediction at `(row, column)` from the weighted taps, rounded: `temporal` is the sum of
/// the 50 temporal terms ([`TemporalSums`]). Wrapping arithmetic: a prediction is only a
/// guess (clamped later), and wrapping is the same on every platform and in any order.
#[inline]
pub fn learned_prediction(
    weights: &[i32; LEARNED_TAPS],
    current: &[i64],
    previous: &[i64],
    at: (usize, usize),
    width: usize,
    temporal: i64,
) -> i64 {
    let (row, col) = at;
    if row >= 2 && col >= 2 && col + 2 < width {
        // Away from the edges nothing clamps: the stencil's rows read straight from the frame
        // (the value's own and later columns weigh 0).
        let mut sum = temporal;
        for (up, five) in causal_stencil(weights).iter().enumerate() {
            let start = (row - 2 + up) * width + col - 2;
            for (&k, &w) in current
                .get(start..start + 5)
                .unwrap_or_default()
                .iter()
                .zip(five)
            {
                sum = mac(sum, k, w);
            }
        }
        return round_fixed(sum);
    }
    round_fixed(temporal.wrapping_add(clamped_causal_sum(weights, current, previous, at, width)))
}

/// `acc + k w` in wrapping `i64`: the learned predictor's arithmetic, the same on every
/// platform and in any order.
#[inline(always)]
pub(crate) fn mac(acc: i64, k: i64, w: i32) -> i64 {
    acc.wrapping_add(k.wrapping_mul(i64::from(w)))
}

/// The causal terms of the value at `at` through [`causal_taps`], which clamps to the frame.
fn clamped_causal_sum(
    weights: &[i32; LEARNED_TAPS],
    current: &[i64],
    previous: &[i64],
    at: (usize, usize),
    width: usize,
) -> i64 {
    let mut taps = [0i64; CAUSAL_TAPS.len()];
    causal_taps(current, previous, at, width, &mut taps);
    taps.iter()
        .zip(weights)
        .fold(0, |acc, (&k, &w)| mac(acc, k, w))
}

/// The causal weights as a stencil over columns -2..=2 of the rows two up, one up and the
/// value's own (its own and later columns weigh 0): [`CAUSAL_TAPS`] laid out, not restated.
#[inline]
pub(crate) fn causal_stencil(weights: &[i32; LEARNED_TAPS]) -> [[i32; 5]; 3] {
    let mut stencil = [[0; 5]; 3];
    for (&(dr, dc), &w) in CAUSAL_TAPS.iter().zip(weights) {
        stencil[(dr + 2) as usize][(dc + 2) as usize] = w;
    }
    stencil
}

/// A weighted sum of grid indices in units of 2^-[`LEARNED_FRACTION_BITS`], rounded (halves
/// up) to a grid index.
#[inline]
pub fn round_fixed(sum: i64) -> i64 {
    sum.wrapping_add(1 << (LEARNED_FRACTION_BITS - 1)) >> LEARNED_FRACTION_BITS
}

/// 3-D Lorenzo prediction at `(row, column)` from decoded neighbours (left, above, previous
/// frame), and the local activity that picks the context.
#[inline(always)]
pub fn lorenzo(
    current: &[i64],
    previous: &[i64],
    (row, col): (usize, usize),
    width: usize,
) -> (i64, u64) {
    let i = row * width + col;
    let cur = |at: usize| current.get(at).copied().unwrap_or(0);
    let prev = |at: usize| previous.get(at).copied().unwrap_or(0);
    let (w, n, nw) = (
        if col > 0 { cur(i - 1) } else { 0 },
        if row > 0 { cur(i - width) } else { 0 },
        if row > 0 && col > 0 {
            cur(i - width - 1)
        } else {
            0
        },
    );
    let (p, pw, pn, pnw) = (
        prev(i),
        if col > 0 { prev(i - 1) } else { 0 },
        if row > 0 { prev(i - width) } else { 0 },
        if row > 0 && col > 0 {
            prev(i - width - 1)
        } else {
            0
        },
    );
    lorenzo_terms(w, n, nw, p, pw, pn, pnw)
}

/// The Lorenzo prediction and activity from the seven neighbours: left, above, above-left in
/// the frame, and the same three and the value's own place in the previous frame.
#[inline(always)]
pub fn lorenzo_terms(w: i64, n: i64, nw: i64, p: i64, pw: i64, pn: i64, pnw: i64) -> (i64, u64) {
    let d = w
        .wrapping_add(n)
        .wrapping_sub(nw)
        .wrapping_add(p)
        .wrapping_sub(pw)
        .wrapping_sub(pn)
        .wrapping_add(pnw);
    let activity = (w.wrapping_sub(nw).unsigned_abs())
        .saturating_add(n.wrapping_sub(nw).unsigned_abs())
        .saturating_add(p.wrapping_sub(pw).unsigned_abs());
    (d, activity)
}

/// The activity that picks a field value's context in blocks of kind 6
/// ([`crate::stream::BlockKind::TabledResidualContexts`]), from what is known before the
/// value's own row is reconstructed: `left_residual`, the magnitude of the residual coded for
/// the value to its left (0 at the first column and for an escaped value), weighed 4, and
/// the gradients in the row above (`|N - NW| + |NE - N|`, 0 in the first row, the missing
/// neighbour at either end taken as `N`) and in the previous frame (`|P - PW|`, `PW = P`
/// at the first column).
#[inline(always)]
pub fn residual_activity(
    current: &[i64],
    previous: &[i64],
    (row, col): (usize, usize),
    width: usize,
    left_residual: u64,
) -> u64 {
    let i = row * width + col;
    let cur = |j: usize| current.get(j).copied().unwrap_or(0);
    let prev = |j: usize| previous.get(j).copied().unwrap_or(0);
    let above = (row > 0).then(|| {
        let up = i - width;
        let n = cur(up);
        let nw = if col > 0 { cur(up - 1) } else { n };
        let ne = if col + 1 < width { cur(up + 1) } else { n };
        (nw, n, ne)
    });
    let p = prev(i);
    let pw = if col > 0 { prev(i - 1) } else { p };
    left_residual
        .saturating_mul(4)
        .saturating_add(residual_terms(above, p, pw))
}

/// The part of [`residual_activity`] that its row's values do not change: the gradients in
/// the row above (`(nw, n, ne)`, `None` in the first row) and in the previous frame (`p`,
/// `pw`), the missing neighbours replaced as it says. (Saturating sums of unsigned terms are
/// the same in any grouping, so the decoder may add `left_residual` last.)
#[inline(always)]
pub(crate) fn residual_terms(above: Option<(i64, i64, i64)>, p: i64, pw: i64) -> u64 {
    let above = above.map_or(0, |(nw, n, ne)| {
        n.wrapping_sub(nw)
            .unsigned_abs()
            .saturating_add(ne.wrapping_sub(n).unsigned_abs())
    });
    above.saturating_add(p.wrapping_sub(pw).unsigned_abs())
}

/// The terms of each value of a frame row below the first that its own row does not change,
/// found for the whole row before it is coded: its [`residual_terms`] into `activity` (as
/// `i64` bits) and, where `lorenzo` is given, its Lorenzo prediction less the value to its
/// left (wrapping sums, so adding that value later gives [`lorenzo`]'s). `up` is the row
/// above, `prev` and `prev_up` the same two rows in the previous frame, all as long as the
/// row.
pub(crate) fn row_terms(
    [up, prev, prev_up]: [&[i64]; 3],
    activity: &mut [i64],
    lorenzo: Option<&mut [i64]>,
) {
    let at = |row: &[i64], j: usize, missing: i64| row.get(j).copied().unwrap_or(missing);
    let columns = activity.iter_mut().zip(up.iter().zip(prev)).enumerate();
    for (col, (activity, (&n, &p))) in columns {
        // Missing neighbours as `residual_activity` takes them: N at either end, P at the left.
        let (nw, pw) = match col.checked_sub(1) {
            Some(j) => (at(up, j, n), at(prev, j, p)),
            None => (n, p),
        };
        let ne = at(up, col + 1, n);
        *activity = residual_terms(Some((nw, n, ne)), p, pw) as i64;
    }
    if let Some(lorenzo) = lorenzo {
        let columns = lorenzo
            .iter_mut()
            .zip(up.iter().zip(prev.iter().zip(prev_up)));
        for (col, (d, (&n, (&p, &pn)))) in columns.enumerate() {
            // `lorenzo` takes the neighbours left of the first column as 0.
            let (nw, pw, pnw) = match col.checked_sub(1) {
                Some(j) => (at(up, j, 0), at(prev, j, 0), at(prev_up, j, 0)),
                None => (0, 0, 0),
            };
            *d = lorenzo_terms(0, n, nw, p, pw, pn, pnw).0;
        }
    }
}

/// `f64` working memory for the learned predictor: the two earlier frames with two rows
/// and columns of edge replicas around them (so clamping is a plain read), the frame being
/// encoded, and a frame of sums at the padded row stride.
pub fn mirror_len(height: usize, width: usize) -> usize {
    let padded = width + 2 * PAD;
    2 * (height + 2 * PAD) * padded + height * width + height * padded
}

/// The temporal part of the learned prediction for a whole frame, from `f64` mirrors of the
/// two earlier frames kept by the caller.
#[derive(Debug)]
pub struct TemporalSums<'m> {
    height: usize,
    width: usize,
    older: &'m mut [f64],
    previous: &'m mut [f64],
    current: &'m mut [f64],
    /// Scratch sums of a frame: the temporal ones at the padded row stride, the encoder's
    /// causal ones at the frame's own.
    sums: &'m mut [f64],
    /// Largest |grid index| in each mirror: decides whether `f64` sums are exact.
    older_max: u64,
    previous_max: u64,
}

impl<'m> TemporalSums<'m> {
    /// Splits `mirrors` ([`mirror_len`] long) for frames of `height x width`; `None` when it
    /// is too short.
    pub fn new(height: usize, width: usize, mirrors: &'m mut [f64]) -> Option<Self> {
        let frame = (height + 2 * PAD) * (width + 2 * PAD);
        let mirrors = mirrors.get_mut(..mirror_len(height, width))?;
        let (older, rest) = mirrors.split_at_mut(frame);
        let (previous, rest) = rest.split_at_mut(frame);
        let (current, sums) = rest.split_at_mut(height * width);
        Some(TemporalSums {
            height,
            width,
            older,
            previous,
            current,
            sums,
            older_max: 0,
            previous_max: 0,
        })
    }

    /// Takes a fully decoded frame: it becomes the previous one, which becomes the older.
    pub fn push_frame(&mut self, frame: &[i64]) {
        core::mem::swap(&mut self.older, &mut self.previous);
        self.older_max = self.previous_max;
        let (w, padded) = (self.width, self.width + 2 * PAD);
        let mut largest = 0u64;
        for r in 0..self.height + 2 * PAD {
            let source = r.saturating_sub(PAD).min(self.height - 1) * w;
            let (Some(src), Some(dst)) = (
                frame.get(source..source + w),
                self.previous.get_mut(r * padded..(r + 1) * padded),
            ) else {
                return;
            };
            largest = largest.max(to_f64(src, &mut dst[PAD..PAD + w]));
            let (first, last) = (dst[PAD], dst[PAD + w - 1]);
            dst[..PAD].fill(first);
            dst[PAD + w..].fill(last);
        }
        self.previous_max = largest;
    }

    /// Writes the sum of the 50 temporal terms of every value of the next frame into `sums`
    /// (wrapping `i64`, as [`field_taps`] weighed with `weights` would give). `frames` are the
    /// older and previous frames as `i64`, for sums that `f64` could not hold exactly.
    pub fn compute(
        &mut self,
        weights: &[i32; LEARNED_TAPS],
        frames: [&[i64]; 2],
        sums: &mut [i64],
    ) {
        let temporal = &weights[CAUSAL_TAPS.len()..];
        let weight_sum: u128 = temporal.iter().map(|w| u128::from(w.unsigned_abs())).sum();
        let largest = u128::from(self.previous_max.max(self.older_max));
        if largest * weight_sum >= EXACT_LIMIT {
            return exact_sums(weights, frames, self.width, self.height, sums);
        }
        // Every partial sum is an integer below 2^51 in magnitude, so f64 adds it exactly,
        // in whatever order: the same numbers as the i64 reference, vectorised. The frame is
        // one run at the padded row stride (the four extra columns of a row are computed and
        // ignored), two window rows a pass: long loops, the sums loaded once per ten taps.
        let padded = self.width + 2 * PAD;
        let run = self.height.saturating_sub(1) * padded + self.width;
        let Some(acc) = self.sums.get_mut(..run) else {
            return;
        };
        let mut rows = [(&[][..], [0i32; 5]); 10];
        let mut count = 0;
        for (group, five) in temporal.chunks_exact(5).enumerate() {
            if five.iter().any(|&w| w != 0) {
                let frame = if group < 5 {
                    &*self.previous
                } else {
                    &*self.older
                };
                let source = frame.get((group % 5) * padded..).unwrap_or_default();
                rows[count] = (source, [five[0], five[1], five[2], five[3], five[4]]);
                count += 1;
            }
        }
        acc.fill(0.0);
        for pair in rows[..count].chunks(2) {
            match pair {
                [(a, wa), (b, wb)] => add_window_rows(acc, [a, b], [wa, wb]),
                [(a, wa)] => add_window_rows(acc, [a, a], [wa, &[0; 5]]),
                _ => {}
            }
        }
        for (out, acc) in sums.chunks_exact_mut(self.width).zip(acc.chunks(padded)) {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = exact_to_i64(a);
            }
        }
    }

    /// Encoder only (the whole frame is known before it is coded): adds the causal terms to
    /// the `sums` of every value of the frame, as [`learned_prediction`] would add them value
    /// by value (`previous` is the frame before `current`). Returns
    /// whether it did: it changes nothing when `f64` could not add them exactly, or when the
    /// frame is narrower than 5 or shorter than 3.
    pub fn add_causal(
        &mut self,
        weights: &[i32; LEARNED_TAPS],
        current: &[i64],
        previous: &[i64],
        sums: &mut [i64],
    ) -> bool {
        let (width, height) = (self.width, self.height);
        let Some(mirror) = self.current.get_mut(..width * height) else {
            return false;
        };
        if width < 5 || height < 3 || current.len() < width * height {
            return false;
        }
        let largest = to_f64(current, mirror);
        let causal = &weights[..CAUSAL_TAPS.len()];
        let weight_sum: u128 = causal.iter().map(|w| u128::from(w.unsigned_abs())).sum();
        if u128::from(largest) * weight_sum >= EXACT_LIMIT {
            return false;
        }
        let stencil = causal_stencil(weights);
        // From the third row's third value on, as one run at the frame's own stride: sum `j`
        // belongs to value `2 width + 2 + j` and reads the stencil's rows from `j`, `j + width`
        // and `j + 2 width`. Sums near a row's ends wrap into the neighbouring row and are
        // computed but not used (those columns clamp).
        let run = (height.saturating_sub(2) * width).saturating_sub(4);
        let Some(acc) = self.sums.get_mut(..run) else {
            return false;
        };
        let source = |up: usize| mirror.get(up * width..).unwrap_or_default();
        causal_run(acc, [source(0), source(1), source(2)], &stencil);
        for (r, acc) in (2..height).zip(acc.chunks(width)) {
            let Some(out) = sums.get_mut(r * width + 2..(r + 1) * width - 2) else {
                return false;
            };
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = o.wrapping_add(exact_to_i64(a));
            }
        }
        add_causal_borders(weights, [current, previous], (width, height), sums);
        true
    }
}

/// The causal terms of the values the encoder's run leaves out: the two first and two last
/// columns, and the first two rows. Their taps clamp to the frame, and a tap above the frame
/// or left of it in the value's own row reads the previous frame ([`field_taps`]). Below the
/// second row each edge column's taps are planned once and read row by row; in the first two
/// rows each row's taps are planned once for the columns away from the edges, and the four
/// corners of each take [`clamped_causal_sum`]. Wrapping `i64`, exact.
fn add_causal_borders(
    weights: &[i32; LEARNED_TAPS],
    [current, previous]: [&[i64]; 2],
    (width, height): (usize, usize),
    sums: &mut [i64],
) {
    let frame = |from_previous: bool| if from_previous { previous } else { current };
    let mut add = |at: usize, sum: i64| {
        if let Some(s) = sums.get_mut(at) {
            *s = s.wrapping_add(sum);
        }
    };
    let edges = [0, 1, width - 2, width - 1];
    for c in edges {
        // Per tap: row offset, clamped column, whether it reads the previous frame, weight.
        let mut plan = [(0isize, 0usize, false, 0i32); CAUSAL_TAPS.len()];
        for (p, (&(dr, dc), &w)) in plan.iter_mut().zip(CAUSAL_TAPS.iter().zip(weights)) {
            let col = c as isize + isize::from(dc);
            let clamped = col.clamp(0, width as isize - 1) as usize;
            *p = (isize::from(dr), clamped, dr == 0 && col < 0, w);
        }
        for r in 2..height {
            let mut sum = 0i64;
            for &(dr, col, from_previous, w) in &plan {
                let at = (r as isize + dr) as usize * width + col;
                sum = mac(sum, frame(from_previous).get(at).copied().unwrap_or(0), w);
            }
            add(r * width + c, sum);
        }
    }
    for r in 0..2 {
        // Per tap: the row it reads (row 0 of the previous frame above the frame), whether
        // from the previous frame, column offset, weight.
        let mut plan = [(0usize, false, 0isize, 0i32); CAUSAL_TAPS.len()];
        for (p, (&(dr, dc), &w)) in plan.iter_mut().zip(CAUSAL_TAPS.iter().zip(weights)) {
            let row = r as isize + isize::from(dr);
            *p = (row.max(0) as usize, row < 0, isize::from(dc), w);
        }
        for c in 2..width - 2 {
            let mut sum = 0i64;
            for &(row, from_previous, dc, w) in &plan {
                let at = row * width + (c as isize + dc) as usize;
                sum = mac(sum, frame(from_previous).get(at).copied().unwrap_or(0), w);
            }
            add(r * width + c, sum);
        }
        for c in edges {
            add(
                r * width + c,
                clamped_causal_sum(weights, current, previous, (r, c), width),
            );
        }
    }
}

/// Sums stay below this in magnitude for the `f64` paths (else the `i64` fallback): exact in
/// `f64` (below 2^53), and convertible by [`exact_to_i64`].
const EXACT_LIMIT: u128 = 1 << 51;

/// 1.5 x 2^52: added to an `f64` below 2^51 in magnitude, it leaves that number rounded to
/// an integer (ties to even) in the low mantissa bits.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;

/// `t` (below 2^51 in magnitude) rounded to the nearest integer, ties to even, as `f64` and
/// as `i64`. Unlike `as`, which saturates value by value, this vectorises.
#[inline(always)]
pub(crate) fn round_to_integer(t: f64) -> (f64, i64) {
    let shifted = t + ROUNDING_SHIFT;
    let whole = shifted.to_bits() as i64 - ROUNDING_SHIFT.to_bits() as i64;
    (shifted - ROUNDING_SHIFT, whole)
}

/// An integer-valued `f64` below 2^51 in magnitude as `i64` ([`round_to_integer`]).
#[inline(always)]
fn exact_to_i64(a: f64) -> i64 {
    round_to_integer(a).1
}

/// Copies grid indices into `f64` (exact below 2^53 in magnitude); returns the largest
/// magnitude. Both loops vectorise: the largest is kept in four lanes, not one serial chain,
/// and indices below 2^51 convert by [`ROUNDING_SHIFT`] backwards.
#[inline]
fn to_f64(src: &[i64], dst: &mut [f64]) -> u64 {
    let mut lanes = [0u64; 4];
    let mut chunks = src.chunks_exact(4);
    for four in &mut chunks {
        for (lane, &k) in lanes.iter_mut().zip(four) {
            *lane = (*lane).max(k.unsigned_abs());
        }
    }
    for &k in chunks.remainder() {
        lanes[0] = lanes[0].max(k.unsigned_abs());
    }
    let largest = lanes.into_iter().max().unwrap_or(0);
    if largest < 1 << 51 {
        let shift = ROUNDING_SHIFT.to_bits() as i64;
        for (d, &k) in dst.iter_mut().zip(src) {
            *d = f64::from_bits(shift.wrapping_add(k) as u64) - ROUNDING_SHIFT;
        }
    } else {
        for (d, &k) in dst.iter_mut().zip(src) {
            *d = k as f64;
        }
    }
    largest
}

/// `acc[c] += sum of w[j] * a[c + j] + v[j] * b[c + j]` for every `c`: two 5-wide window
/// rows in one pass (ten weights fit in registers; the sums are loaded and stored once).
/// Exact only while the caller's bound holds.
#[inline]
fn add_window_rows(acc: &mut [f64], [a, b]: [&[f64]; 2], [wa, wb]: [&[i32; 5]; 2]) {
    let [a0, a1, a2, a3, a4] = wa.map(f64::from);
    let [b0, b1, b2, b3, b4] = wb.map(f64::from);
    let (a, b) = (a.get(..acc.len() + 4), b.get(..acc.len() + 4));
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    for (c, s) in acc.iter_mut().enumerate() {
        // Bounds are proven by the slices above; a tree, not a chain, for latency.
        let (x, y) = (&a[c..c + 5], &b[c..c + 5]);
        *s += ((a0 * x[0] + a1 * x[1]) + (a2 * x[2] + a3 * x[3]))
            + ((a4 * x[4] + b0 * y[0]) + (b1 * y[1] + b2 * y[2]))
            + (b3 * y[3] + b4 * y[4]);
    }
}

/// `acc[j]` = the causal stencil's ten terms for sum `j`, its three rows read from `rows` at
/// `j` (each at least four longer than `acc`): the top row's columns 1..=3, the middle row's
/// five, the value's own row's first two (the stencil's other weights are zero).
#[inline]
fn causal_run(acc: &mut [f64], [a, b, c]: [&[f64]; 3], stencil: &[[i32; 5]; 3]) {
    let [_, a1, a2, a3, _] = stencil[0].map(f64::from);
    let [b0, b1, b2, b3, b4] = stencil[1].map(f64::from);
    let [c0, c1, ..] = stencil[2].map(f64::from);
    let n = acc.len() + 4;
    let (Some(a), Some(b), Some(c)) = (a.get(..n), b.get(..n), c.get(..n)) else {
        return;
    };
    for (j, s) in acc.iter_mut().enumerate() {
        let (x, y, z) = (&a[j..j + 5], &b[j..j + 5], &c[j..j + 5]);
        *s = ((a1 * x[1] + a2 * x[2]) + (a3 * x[3] + b0 * y[0]))
            + ((b1 * y[1] + b2 * y[2]) + (b3 * y[3] + b4 * y[4]))
            + (c0 * z[0] + c1 * z[1]);
    }
}

/// The temporal sums by [`field_taps`] itself, for frames whose sums `f64` cannot hold.
fn exact_sums(
    weights: &[i32; LEARNED_TAPS],
    [older, previous]: [&[i64]; 2],
    width: usize,
    height: usize,
    sums: &mut [i64],
) {
    let mut taps = [0i64; LEARNED_TAPS];
    for (i, sum) in sums.iter_mut().enumerate().take(width * height) {
        field_taps([older, previous, &[]], i, width, height, &mut taps);
        *sum = taps[CAUSAL_TAPS.len()..]
            .iter()
            .zip(&weights[CAUSAL_TAPS.len()..])
            .fold(0, |acc, (&k, &w)| mac(acc, k, w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// The learned predictor's sum by its definition: [`field_taps`] weighed in wrapping i64.
    fn reference_sum(frames: [&[i64]; 3], i: usize, w: usize, h: usize, weights: &[i32]) -> i64 {
        let mut taps = [0i64; LEARNED_TAPS];
        field_taps(frames, i, w, h, &mut taps);
        taps.iter().zip(weights).fold(0i64, |acc, (&k, &wt)| {
            acc.wrapping_add(k.wrapping_mul(i64::from(wt)))
        })
    }

    /// Grid indices mostly small (f64 sums exact), sometimes up to the grid's limit (the i64
    /// fallback), and weights small or full-range.
    fn case() -> impl Strategy<Value = (usize, usize, Vec<i64>, Vec<i32>)> {
        (1usize..9, 1usize..9, any::<bool>(), any::<bool>()).prop_flat_map(|(h, w, huge, wide)| {
            let k = if huge { 1i64 << 40 } else { 1 << 12 };
            let wt = if wide { i32::MAX } else { 1 << 17 };
            (
                Just(h),
                Just(w),
                proptest::collection::vec(-k..=k, 3 * h * w),
                proptest::collection::vec(-wt..=wt, LEARNED_TAPS),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Temporal sums by the f64 convolution (or its fallback) plus the causal part value by
        /// value give exactly the reference prediction everywhere, edges included.
        #[test]
        fn split_prediction_equals_the_definition((h, w, k, weights) in case()) {
            let n = h * w;
            let (older, previous, current) = (&k[..n], &k[n..2 * n], &k[2 * n..]);
            let weights: [i32; LEARNED_TAPS] = weights.try_into().unwrap();
            let mut mirrors = std::vec![0f64; mirror_len(h, w)];
            let mut temporal = TemporalSums::new(h, w, &mut mirrors).unwrap();
            temporal.push_frame(older);
            temporal.push_frame(previous);
            let mut sums = std::vec![0i64; n];
            temporal.compute(&weights, [older, previous], &mut sums);
            // The encoder's way: causal terms added for the whole frame at once.
            let mut with_causal = sums.clone();
            let added = temporal.add_causal(&weights, current, previous, &mut with_causal);
            for (i, &sum) in sums.iter().enumerate() {
                let expected = round_fixed(reference_sum([older, previous, current], i, w, h, &weights));
                let at = (i / w, i % w);
                let got = learned_prediction(&weights, current, previous, at, w, sum);
                prop_assert_eq!(got, expected, "value {} of {}x{}", i, h, w);
                if added {
                    prop_assert_eq!(round_fixed(with_causal[i]), expected, "encoder, value {}", i);
                } else {
                    prop_assert_eq!(with_causal[i], sum, "value {} changed", i);
                }
            }
        }
    }

    #[test]
    fn mirrors_too_short_are_refused() {
        let mut mirrors = std::vec![0f64; mirror_len(4, 4) - 1];
        assert!(TemporalSums::new(4, 4, &mut mirrors).is_none());
    }
}
