//! Multilevel interpolation prediction of fields (after SZ3's): a block's values form one
//! volume (its frames, their rows stacked, or one line: [`InterpolationPlan::shape`]), coded
//! from a coarse lattice outward. At stride `s`
//! (from the largest power of two below the longest axis down to 1), each axis in turn, every
//! point an odd multiple of `s` along that axis is predicted by linear or cubic interpolation
//! between the points `s` and `3s` away on it, which are known by then. Prediction never
//! extrapolates a value's own quantization noise along a causal chain, as Lorenzo does, so at
//! coarse bounds most residuals are zero; and the points of one pass depend only on earlier
//! passes.
//!
//! The arithmetic is in integers, the same on every platform, on a fine grid: the field's
//! grid with its step divided by 2^[`InterpolationPlan::fine_bits`]. A prediction is a fine
//! grid index; the value is quantized in whole grid steps relative to it (as SZ3 quantizes
//! relative to its prediction), so it decodes within the bound wherever the prediction falls,
//! and the volume holds the decoded fine indices the next predictions read. (Rounding every
//! value to the grid first and predicting grid indices, as the row predictors do, adds the
//! prediction's own rounding to every residual: at coarse bounds that made the CFD frames'
//! stream a fifth larger, and a smooth frame's 3.8 times.) With 0 fine bits the values stay on the grid: data that lies on it is coded
//! exactly. Blocks are of kind 7 ([`crate::stream::BlockKind::Interpolated`]), tabled as kind
//! 4 but with the values in this order and these contexts ([`INTERPOLATION_CONTEXTS`]).

use super::{to_output, ColumnGrid, DType, MAX_GRID_INDEX};
use crate::entropy::residual::{Coded, ResidualCoder};
use crate::error::{Error, Result};

/// Levels the plan names one by one (stride 2^j for entry j); coarser levels take the last.
pub const INTERPOLATION_LEVELS: usize = 16;
/// Bytes of the interpolation predictor's section of the parameters block: the axis order,
/// the fine bits, the activity classes, the volume's shape, then per level its cubic passes,
/// then per level its finer steps.
pub const INTERPOLATION_SECTION_LEN: usize = HEAD + 2 * INTERPOLATION_LEVELS;
/// Bytes of the section before the per-level entries.
const HEAD: usize = 4;
/// The shapes a block's values may be interpolated in ([`InterpolationPlan::shape`]).
pub const VOLUME_SHAPES: u8 = 3;
/// Most fractional bits of a prediction (fine grid indices stay below 2^48).
pub const MAX_FINE_BITS: u32 = 8;
/// Classes of the interpolation stride: 1, 2, and 4 or more.
const LEVEL_CLASSES: usize = 3;
/// Most classes of local activity within a level class.
pub const ACTIVITY_CLASSES: usize = 8;
/// Contexts (tabled) of an interpolated block.
pub const INTERPOLATION_CONTEXTS: usize = LEVEL_CLASSES * ACTIVITY_CLASSES;

/// The orders in which a level interpolates the axes (0 frames, 1 rows, 2 columns): the
/// last interpolates half of the level's values, so it should be the smoothest axis.
pub const AXIS_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// The choices of an interpolation predictor, stored in the parameters block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpolationPlan {
    /// The axis order within a level: an index into [`AXIS_ORDERS`].
    pub order: u8,
    /// Predictions are kept to 2^-`fine_bits` of a grid step (0 ..= [`MAX_FINE_BITS`]), and
    /// each value is quantized in whole steps relative to its prediction, as SZ3 does; 0
    /// keeps every value on the grid itself (data that lies on it, coded exactly).
    pub fine_bits: u32,
    /// Classes of local activity per level class (1 ..= [`ACTIVITY_CLASSES`]): fewer
    /// frequency tables for small blocks, which cannot pay for many.
    pub activity_classes: usize,
    /// How a block's values form the volume: 0 its frames, rows and columns; 1 its frames'
    /// rows stacked into one frame; 2 one line, all values in order (a series cut into
    /// frames, whose frames follow on from each other).
    pub shape: u8,
    /// Per level, entry `j` for stride `2^j` (coarser strides take the last entry): bit `p`
    /// set when pass `p` of that level interpolates cubically rather than linearly.
    pub cubic: [u8; INTERPOLATION_LEVELS],
    /// Per level as `cubic`: the level's values are quantized in steps 2^-`finer` of the
    /// grid's (at most `fine_bits`), so that the coarse levels every later prediction reads
    /// are more exact (QoZ's level-wise error bounds).
    pub finer: [u8; INTERPOLATION_LEVELS],
}

impl InterpolationPlan {
    /// Linear interpolation everywhere, frames first.
    pub const LINEAR: InterpolationPlan = InterpolationPlan {
        order: 0,
        fine_bits: 0,
        activity_classes: ACTIVITY_CLASSES,
        shape: 0,
        cubic: [0; INTERPOLATION_LEVELS],
        finer: [0; INTERPOLATION_LEVELS],
    };

    /// Whether pass `pass` (0..3) at stride `2^level` is cubic.
    pub fn is_cubic(&self, level: usize, pass: usize) -> bool {
        let entry = self.cubic[level.min(INTERPOLATION_LEVELS - 1)];
        entry >> pass & 1 == 1
    }

    /// The volume of a block of `frames` frames of `height x width` ([`Self::shape`]).
    pub fn dims(&self, frames: usize, height: usize, width: usize) -> Dims {
        match self.shape {
            0 => [frames, height, width],
            1 => [1, frames * height, width],
            _ => [1, 1, frames * height * width],
        }
    }

    /// The quantization step's shift at stride `2^level` (`None`: the first value, 0).
    #[inline(always)]
    pub fn finer_at(&self, level: Option<usize>) -> u32 {
        level.map_or(0, |l| {
            u32::from(self.finer[l.min(INTERPOLATION_LEVELS - 1)])
        })
    }

    /// Writes the section ([`INTERPOLATION_SECTION_LEN`] bytes).
    pub(crate) fn write(&self, out: &mut [u8]) {
        out[0] = self.order;
        out[1] = self.fine_bits as u8;
        out[2] = self.activity_classes as u8;
        out[3] = self.shape;
        out[HEAD..HEAD + INTERPOLATION_LEVELS].copy_from_slice(&self.cubic);
        out[HEAD + INTERPOLATION_LEVELS..INTERPOLATION_SECTION_LEN].copy_from_slice(&self.finer);
    }

    /// Reads and validates a section.
    pub(crate) fn read(section: &[u8]) -> Result<Self> {
        let section = section
            .get(..INTERPOLATION_SECTION_LEN)
            .ok_or(Error::Truncated)?;
        let (mut cubic, mut finer) = ([0u8; INTERPOLATION_LEVELS], [0u8; INTERPOLATION_LEVELS]);
        cubic.copy_from_slice(&section[HEAD..HEAD + INTERPOLATION_LEVELS]);
        finer.copy_from_slice(&section[HEAD + INTERPOLATION_LEVELS..]);
        let plan = InterpolationPlan {
            order: section[0],
            fine_bits: u32::from(section[1]),
            activity_classes: usize::from(section[2]),
            shape: section[3],
            cubic,
            finer,
        };
        plan.check()?;
        Ok(plan)
    }

    /// Whether every field is within what the format allows (the arithmetic relies on it:
    /// the finer steps never exceed the fine bits).
    pub fn check(&self) -> Result<()> {
        if usize::from(self.order) >= AXIS_ORDERS.len() {
            return Err(Error::Invalid("interpolation axis order"));
        }
        let too_fine = self.finer.iter().any(|&f| u32::from(f) > self.fine_bits);
        let classes_ok = (1..=ACTIVITY_CLASSES).contains(&self.activity_classes);
        let bad = self.cubic.iter().any(|&c| c > 7) || self.shape >= VOLUME_SHAPES;
        if bad || self.fine_bits > MAX_FINE_BITS || too_fine || !classes_ok {
            return Err(Error::Invalid("interpolation plan"));
        }
        Ok(())
    }
}

/// The axes of a block: frames, rows, columns.
pub type Dims = [usize; 3];

/// Where a point is visited: the level (its stride is 2^level) and the pass within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The stride's exponent.
    pub level: usize,
    /// The pass (0..3) within the level, in the plan's axis order.
    pub pass: usize,
}

/// A point as [`traverse`] visits it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    /// Its index in the volume.
    pub index: usize,
    /// Its prediction, within the grid's range.
    pub prediction: i64,
    /// Its coding context, below [`INTERPOLATION_CONTEXTS`].
    pub context: usize,
    /// Where it is visited (`None` for the first point, predicted as 0).
    pub pass: Option<Pass>,
    /// The plan's finer steps at its level ([`InterpolationPlan::finer_at`]).
    pub finer: u32,
}

/// Calls `visit` for every point of a `dims` volume in interpolation order and stores what
/// it returns in the volume: the point's final grid index. Each prediction reads only points
/// visited before it. `volume` must hold the whole block.
pub(crate) fn traverse<F>(
    volume: &mut [i64],
    dims: Dims,
    plan: &InterpolationPlan,
    mut visit: F,
) -> Result<()>
where
    F: FnMut(Point) -> Result<i64>,
{
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let n = n.ok_or(Error::Invalid("block size"))?;
    let volume = volume
        .get_mut(..n)
        .ok_or(Error::BufferTooSmall { needed: n })?;
    if n == 0 {
        return Ok(());
    }
    let first = visit(Point {
        index: 0,
        prediction: 0,
        context: INTERPOLATION_CONTEXTS - 1,
        pass: None,
        finer: 0,
    })?;
    volume[0] = first;
    let strides = [dims[1] * dims[2], dims[2], 1];
    let order = AXIS_ORDERS[usize::from(plan.order) % AXIS_ORDERS.len()];
    let longest = dims.iter().copied().max().unwrap_or(1);
    // The coarsest stride is the largest power of two below the longest axis.
    let levels = usize::BITS - (longest.max(2) - 1).leading_zeros();
    for level in (0..levels as usize).rev() {
        let s = 1usize << level;
        let level_class = level.min(LEVEL_CLASSES - 1);
        for (pass, &axis) in order.iter().enumerate() {
            if dims[axis] <= s {
                continue;
            }
            let line = Line {
                at: Pass { level, pass },
                stride: strides[axis],
                s,
                len: dims[axis],
                cubic: plan.is_cubic(level, pass),
                class_base: level_class * ACTIVITY_CLASSES,
                finer: plan.finer_at(Some(level)),
                fine_bits: plan.fine_bits,
                activity_cap: plan.activity_classes.clamp(1, ACTIVITY_CLASSES) - 1,
                limit: max_fine(plan),
            };
            // The other two axes: those interpolated earlier in this level are known at every
            // multiple of s, the later ones only at multiples of 2s.
            let [u, v] = others(axis);
            let step_of = |other: usize| {
                let earlier = order.iter().position(|&a| a == other) < Some(pass);
                if earlier {
                    s
                } else {
                    2 * s
                }
            };
            let (step_u, step_v) = (step_of(u), step_of(v));
            for pu in (0..dims[u]).step_by(step_u) {
                for pv in (0..dims[v]).step_by(step_v) {
                    let base = pu * strides[u] + pv * strides[v];
                    line.run(volume, base, &mut visit)?;
                }
            }
        }
    }
    Ok(())
}

/// The two axes other than `axis`, in order.
fn others(axis: usize) -> [usize; 2] {
    match axis {
        0 => [1, 2],
        1 => [0, 2],
        _ => [0, 1],
    }
}

/// One pass's points along one line of the volume.
struct Line {
    at: Pass,
    /// Index distance between neighbours along the axis.
    stride: usize,
    /// The level's stride along the axis.
    s: usize,
    /// Points on the axis.
    len: usize,
    cubic: bool,
    class_base: usize,
    /// The level's finer steps.
    finer: u32,
    /// The plan's fine bits: activity is measured in whole grid steps.
    fine_bits: u32,
    /// The last activity class: higher activity is counted in it.
    activity_cap: usize,
    /// Largest magnitude of a prediction.
    limit: i64,
}

/// Interior points of a line predicted together before they are coded one by one.
const CHUNK: usize = 32;

impl Line {
    /// Visits the points `s, 3s, 5s, ...` of the line starting at `base`. The prediction of
    /// a point reads only the line's even multiples of `s`, which earlier passes decoded, so
    /// the interior points (those with two known points on either side) are predicted a
    /// chunk at a time from the known points gathered once, in a loop without branches; only
    /// the context's residual to the left runs from point to point.
    #[inline(always)]
    fn run<F>(&self, volume: &mut [i64], base: usize, visit: &mut F) -> Result<()>
    where
        F: FnMut(Point) -> Result<i64>,
    {
        let (s, len) = (self.s, self.len);
        if len <= s {
            return Ok(());
        }
        // Point j is at t = (2j + 1) s; it is interior when j >= 1 and t + 3s < len.
        let points = (len - s).div_ceil(2 * s);
        let interior_end = if len > 4 * s {
            (len - 4 * s).div_ceil(2 * s)
        } else {
            0
        };
        let mut left_residual = 0u64;
        let mut predictions = [(0i64, 0u64); CHUNK];
        let mut j = 0;
        while j < points {
            if j == 0 || j >= interior_end {
                let t = (2 * j + 1) * s;
                let i = base + t * self.stride;
                let (prediction, spread) = self.predict_edge(volume, i, t);
                left_residual = self.code(volume, i, prediction, spread, left_residual, visit)?;
                j += 1;
                continue;
            }
            let n = (interior_end - j).min(CHUNK);
            self.predict_interior(volume, base, j, &mut predictions[..n]);
            let (mut i, step) = (base + (2 * j + 1) * s * self.stride, 2 * s * self.stride);
            for &(prediction, spread) in &predictions[..n] {
                left_residual = self.code(volume, i, prediction, spread, left_residual, visit)?;
                i += step;
            }
            j += n;
        }
        Ok(())
    }

    /// The predictions and spreads of the interior points `j ..` (as many as `out` holds),
    /// from the line's known points `j - 1 ..= j + out.len() + 1` (at even multiples of `s`).
    #[inline(always)]
    fn predict_interior(&self, volume: &[i64], base: usize, j: usize, out: &mut [(i64, u64)]) {
        let step = 2 * self.s * self.stride;
        let mut known = [0i64; CHUNK + 3];
        let first = base + (j - 1) * step;
        for (e, k) in known.iter_mut().take(out.len() + 3).enumerate() {
            *k = volume.get(first + e * step).copied().unwrap_or(0);
        }
        let limit = self.limit;
        let windows = known.windows(4).zip(out.iter_mut());
        if self.cubic {
            for (w, o) in windows {
                let p = cubic(w[0], w[1], w[2], w[3]);
                *o = (
                    p.clamp(-limit, limit),
                    w[2].wrapping_sub(w[1]).unsigned_abs(),
                );
            }
        } else {
            for (w, o) in windows {
                let p = half(w[1].wrapping_add(w[2]), 1);
                *o = (
                    p.clamp(-limit, limit),
                    w[2].wrapping_sub(w[1]).unsigned_abs(),
                );
            }
        }
    }

    /// The prediction and spread of the point at `t` (index `i`) near either end of the line,
    /// where a cubic pass falls back to quadratic interpolation or extrapolation.
    #[inline(always)]
    fn predict_edge(&self, volume: &[i64], i: usize, t: usize) -> (i64, u64) {
        let (s, len) = (self.s, self.len);
        let js = s * self.stride;
        let at = |i: usize| volume.get(i).copied().unwrap_or(0);
        let b = at(i - js);
        let (prediction, spread) = if t + s < len {
            let c = at(i + js);
            let outer_left = (t >= 3 * s).then(|| at(i - 3 * js));
            let outer_right = (t + 3 * s < len).then(|| at(i + 3 * js));
            let p = match (self.cubic, outer_left, outer_right) {
                (true, Some(a), Some(d)) => cubic(a, b, c, d),
                (true, None, Some(d)) => quadratic(b, c, d),
                (true, Some(a), None) => quadratic(c, b, a),
                _ => half(b.wrapping_add(c), 1),
            };
            (p, c.wrapping_sub(b).unsigned_abs())
        } else if t >= 3 * s {
            // The line's end: extrapolated from the two points before it.
            let a = at(i - 3 * js);
            (
                half(b.wrapping_mul(3).wrapping_sub(a), 1),
                b.wrapping_sub(a).unsigned_abs(),
            )
        } else {
            (b, 0)
        };
        (prediction.clamp(-self.limit, self.limit), spread)
    }

    /// Visits the point at index `i` with its prediction and context (from its `spread` and
    /// the residual to its left) and keeps its grid index; returns its residual's magnitude.
    #[inline(always)]
    fn code<F>(
        &self,
        volume: &mut [i64],
        i: usize,
        prediction: i64,
        spread: u64,
        left_residual: u64,
        visit: &mut F,
    ) -> Result<u64>
    where
        F: FnMut(Point) -> Result<i64>,
    {
        let activity = (spread >> self.fine_bits)
            .saturating_mul(2)
            .saturating_add(left_residual >> self.fine_bits);
        let class = (u64::BITS - activity.leading_zeros()) as usize;
        let context = self.class_base + class.min(self.activity_cap);
        let k = visit(Point {
            index: i,
            prediction,
            context,
            pass: Some(self.at),
            finer: self.finer,
        })?;
        if let Some(slot) = volume.get_mut(i) {
            *slot = k;
        }
        Ok(k.wrapping_sub(prediction).unsigned_abs())
    }
}

/// `v / 2^shift`, rounded half up.
#[inline(always)]
fn half(v: i64, shift: u32) -> i64 {
    v.wrapping_add(1 << (shift - 1)) >> shift
}

/// Cubic interpolation at the middle of `b` and `c`, with `a` before `b` and `d` after `c`.
#[inline(always)]
fn cubic(a: i64, b: i64, c: i64, d: i64) -> i64 {
    let inner = b.wrapping_add(c).wrapping_mul(9);
    half(inner.wrapping_sub(a).wrapping_sub(d), 4)
}

/// Quadratic interpolation at the middle of `b` and `c` through `b`, `c` and `d` (after `c`).
#[inline(always)]
fn quadratic(b: i64, c: i64, d: i64) -> i64 {
    let sum = b
        .wrapping_mul(3)
        .wrapping_add(c.wrapping_mul(6))
        .wrapping_sub(d);
    half(sum, 3)
}

/// The fine grid of a plan: `g` with its step divided by 2^`fine_bits`.
fn fine_grid(g: &ColumnGrid, plan: &InterpolationPlan) -> ColumnGrid {
    let mut fine = *g;
    fine.step = g.step / f64::from(1u32 << plan.fine_bits);
    fine
}

/// Largest magnitude of a fine grid index.
fn max_fine(plan: &InterpolationPlan) -> i64 {
    MAX_GRID_INDEX << plan.fine_bits
}

/// What a value whose residual was coded raw holds in the volume: its fine grid index, or
/// the prediction where it has none (the decoder derives the same from the raw bits).
#[inline(always)]
fn escaped_index(x: f64, fine: &ColumnGrid, prediction: i64) -> i64 {
    super::grid_index(x, fine).unwrap_or(prediction)
}

/// Quantizes `x` relative to `prediction` (a fine grid index): the whole steps `q` of `g`
/// between them and the fine index `prediction + q 2^fine_bits` it decodes to, with its value,
/// if that is within the bound and the grid's range. The decoder computes the same value
/// from `q`.
#[inline(always)]
fn quantize(
    x: f64,
    p: &Point,
    (g, fine, inverse_step): (&ColumnGrid, &ColumnGrid, f64),
    plan: &InterpolationPlan,
    to_out: &impl Fn(f64) -> f64,
) -> Option<(i64, i64, f64)> {
    let finer = p.finer;
    let base = fine.value(p.prediction);
    // Scaling by a power of two is exact.
    let t = (x - base) * inverse_step * f64::from(1u32 << finer);
    // (NaN fails this too.)
    let within_range = t.abs() <= (2 * MAX_GRID_INDEX) as f64;
    if !within_range {
        return None;
    }
    let (_, q) = super::field::round_to_integer(t);
    let k = p.prediction + (q << (plan.fine_bits - finer));
    let y = to_out(fine.value(k));
    ((x - y).abs() <= g.bound && k.abs() <= max_fine(plan)).then_some((q, k, y))
}

/// What the encoder codes for `x` at point `p`: the residual or the raw value, the fine index
/// the volume then holds, and the value the decoder will return.
#[inline(always)]
fn code_value(
    x: f64,
    p: &Point,
    grids: (&ColumnGrid, &ColumnGrid, f64),
    plan: &InterpolationPlan,
    to_out: &impl Fn(f64) -> f64,
) -> (Coded, i64, f64) {
    match quantize(x, p, grids, plan, to_out) {
        Some((q, k, y)) => (Coded::Residual(q), k, y),
        None => (
            Coded::Raw(x.to_bits()),
            escaped_index(x, grids.1, p.prediction),
            x,
        ),
    }
}

/// Encodes one block of `dims` (frames of the field, back to back in `input`) through
/// `coder`; `decoded` receives what the decoder will return. `volume` holds the block.
pub(crate) fn encode<C: ResidualCoder>(
    coder: &mut C,
    g: &ColumnGrid,
    dtype: DType,
    plan: &InterpolationPlan,
    dims: Dims,
    (input, decoded): (&[f64], &mut [f64]),
    volume: &mut [i64],
) -> Result<()> {
    if decoded.len() != input.len() {
        return Err(Error::Misuse("decoded block length"));
    }
    // The output type's conversion settled once per block, not per value.
    let io = (input, decoded, volume);
    match dtype {
        DType::F64 => encode_as(coder, g, plan, dims, io, |v| v),
        DType::F32 => encode_as(coder, g, plan, dims, io, |v| f64::from(v as f32)),
        dtype => encode_as(coder, g, plan, dims, io, |v| to_output(v, dtype)),
    }
}

/// [`encode`] with the output type's conversion `to_out`.
#[inline(always)]
fn encode_as<C: ResidualCoder>(
    coder: &mut C,
    g: &ColumnGrid,
    plan: &InterpolationPlan,
    dims: Dims,
    (input, decoded, volume): (&[f64], &mut [f64], &mut [i64]),
    to_out: impl Fn(f64) -> f64,
) -> Result<()> {
    quantized(g, plan, dims, (input, volume), to_out, |p, coded, y| {
        coder.residual(&mut [], p.context, coded)?;
        set(decoded, p.index, y);
        Ok(())
    })
}

/// Calls `each(pass, context, q)` for every point of a block of `dims` (frames back to back
/// in `input`) but the first, with its coding context and the residual `q` the encoder would
/// code under `plan` (0 for an escaped value; the values as f64 output): what a fitter weighs
/// to choose the plan. `volume` holds the block; a plan the format does not allow is an error.
pub fn residuals(
    input: &[f64],
    g: &ColumnGrid,
    plan: &InterpolationPlan,
    dims: Dims,
    volume: &mut [i64],
    mut each: impl FnMut(Pass, usize, i64),
) -> Result<()> {
    // A plan from the caller, not from the parameters block: checked as one read would be.
    plan.check()?;
    quantized(
        g,
        plan,
        dims,
        (input, volume),
        |v| v,
        |p, coded, _| {
            if let Some(at) = p.pass {
                let q = match coded {
                    Coded::Residual(q) => q,
                    Coded::Raw(_) => 0,
                };
                each(at, p.context, q);
            }
            Ok(())
        },
    )
}

/// The encoder's side of a block: every value of `input` quantized at its point in
/// interpolation order ([`code_value`]), handed to `sink` with what to code and its decoded
/// value, and its fine index kept in `volume` for the predictions after it.
#[inline(always)]
fn quantized(
    g: &ColumnGrid,
    plan: &InterpolationPlan,
    dims: Dims,
    (input, volume): (&[f64], &mut [i64]),
    to_out: impl Fn(f64) -> f64,
    mut sink: impl FnMut(&Point, Coded, f64) -> Result<()>,
) -> Result<()> {
    let fine = fine_grid(g, plan);
    let grids = (g, &fine, 1.0 / g.step);
    traverse(
        volume,
        dims,
        plan,
        #[inline(always)]
        |p| {
            let x = input.get(p.index).copied().unwrap_or(0.0);
            let (coded, k, y) = code_value(x, &p, grids, plan, &to_out);
            sink(&p, coded, y)?;
            Ok(k)
        },
    )
}

/// Decodes one block of `dims` into `out` (frames back to back); `volume` holds the block.
pub(crate) fn decode<C: ResidualCoder>(
    coder: &mut C,
    g: &ColumnGrid,
    dtype: DType,
    plan: &InterpolationPlan,
    dims: Dims,
    out: &mut [f64],
    volume: &mut [i64],
) -> Result<()> {
    // The output type's conversion settled once per block, not per value.
    match dtype {
        DType::F64 => decode_as(coder, g, plan, dims, (out, volume), |v| v),
        DType::F32 => decode_as(coder, g, plan, dims, (out, volume), |v| f64::from(v as f32)),
        dtype => decode_as(coder, g, plan, dims, (out, volume), |v| to_output(v, dtype)),
    }
}

/// [`decode`] with the output type's conversion `to_out`.
#[inline(always)]
fn decode_as<C: ResidualCoder>(
    coder: &mut C,
    g: &ColumnGrid,
    plan: &InterpolationPlan,
    dims: Dims,
    (out, volume): (&mut [f64], &mut [i64]),
    to_out: impl Fn(f64) -> f64,
) -> Result<()> {
    let fine = fine_grid(g, plan);
    let limit = max_fine(plan);
    let fine_bits = plan.fine_bits;
    traverse(
        volume,
        dims,
        plan,
        #[inline(always)]
        |p| {
            let (k, y) = match coder.residual(&mut [], p.context, Coded::Raw(0))? {
                Coded::Residual(q) => {
                    // |q| < 2^50 (the tabled coder's limit): neither shift nor sum overflows.
                    let k = p.prediction + (q << (fine_bits - p.finer));
                    if k.abs() > limit {
                        return Err(Error::Invalid("residual outside the grid"));
                    }
                    (k, to_out(fine.value(k)))
                }
                Coded::Raw(bits) => {
                    let x = f64::from_bits(bits);
                    (escaped_index(x, &fine, p.prediction), x)
                }
            };
            set(out, p.index, y);
            Ok(k)
        },
    )
}

#[inline(always)]
fn set(out: &mut [f64], i: usize, v: f64) {
    if let Some(slot) = out.get_mut(i) {
        *slot = v;
    }
}
