//! Chooses the interpolation predictor's plan ([`InterpolationPlan`]): for each level and pass,
//! linear or cubic interpolation, the axis order and the volume's shape. Each level's choice is judged on its own,
//! by the empirical entropy of the residuals it leaves on a sample, all linear against all
//! cubic (a level's choice changes the decoded values later levels read by a fraction of the
//! bound only).

use baler_codec::bounded::interpolate::{
    residuals, Pass, AXIS_ORDERS, INTERPOLATION_CONTEXTS, INTERPOLATION_LEVELS, VOLUME_SHAPES,
};
use baler_codec::bounded::{ColumnGrid, InterpolationPlan};

/// Residual magnitudes counted one by one; larger ones by bit length (plus their raw bits).
const SMALL: i64 = 32;
/// Histogram bins: the small residuals, then one per bit length up to 64.
const BINS: usize = 2 * SMALL as usize + 1 + 64;

/// The residual histograms of a plan: of every (level, pass), and of every coding context.
struct Histograms {
    passes: Vec<[[u32; BINS]; 3]>,
    contexts: Vec<[u32; BINS]>,
}

impl Histograms {
    /// Estimated bits of the whole sample, coded in its contexts.
    fn total(&self) -> f64 {
        self.contexts.iter().map(bits).sum()
    }
}

/// The histogram bin of residual `r` (bins past the small ones stand for their bit length).
fn bin(r: i64) -> usize {
    if r.unsigned_abs() <= SMALL as u64 {
        (r + SMALL) as usize
    } else {
        2 * SMALL as usize + (64 - r.unsigned_abs().leading_zeros()) as usize
    }
}

/// Estimated bits of one histogram: its entropy plus the raw bits of large residuals.
fn bits(h: &[u32; BINS]) -> f64 {
    let total: u64 = h.iter().map(|&c| u64::from(c)).sum();
    let mut sum = 0.0;
    for (b, &c) in h.iter().enumerate().filter(|(_, &c)| c > 0) {
        let c = f64::from(c);
        sum -= c * (c / total as f64).log2();
        if b > 2 * SMALL as usize {
            sum += c * (b - 2 * SMALL as usize) as f64;
        }
    }
    sum
}

fn histograms(
    frames: &[f64],
    grid: &ColumnGrid,
    dims: [usize; 3],
    plan: &InterpolationPlan,
    volume: &mut [i64],
) -> Option<Histograms> {
    let mut h = Histograms {
        passes: vec![[[0; BINS]; 3]; INTERPOLATION_LEVELS],
        contexts: vec![[0; BINS]; INTERPOLATION_CONTEXTS],
    };
    residuals(frames, grid, plan, dims, volume, |at, context, r| {
        let Pass { level, pass } = at;
        let level = level.min(INTERPOLATION_LEVELS - 1);
        let b = bin(r);
        h.passes[level][pass][b] += 1;
        h.contexts[context.min(INTERPOLATION_CONTEXTS - 1)][b] += 1;
    })
    .ok()?;
    Some(h)
}

/// Values at the grid's origin (zeros) from which a field keeps its values on the grid: one
/// in this many.
const ORIGIN_SHARE: usize = 64;

/// The fine bits for `frames` on `grid`: predictions to 1/16 of a step where the bound allows
/// values anywhere between grid points; none, so that values stay on the grid, where the step
/// is the data's own (coarser than twice the bound: the values come back exactly) or where
/// many values lie at the grid's origin (a sparse field's zeros, which then stay exactly zero
/// and never turn negative; relative quantization would leave them anywhere within the bound).
pub fn fine_bits(frames: &[f64], grid: &ColumnGrid) -> u32 {
    let at_origin = frames.iter().filter(|&&x| x == grid.offset).count();
    if grid.step <= 2.0 * grid.bound && at_origin * ORIGIN_SHARE < frames.len() {
        4
    } else {
        0
    }
}

/// Values the fit reads at most: whole frames up to this many from the middle of the sample,
/// or the middle rows of a larger frame (each candidate plan is one pass over them; on a large
/// input more would show in the compress time, and the choices settle well before).
const FIT_VALUES: usize = 1 << 16;

/// The part of `frames` the fit reads, and its axes.
fn fit_sample(frames: &[f64], height: usize, width: usize) -> (&[f64], [usize; 3]) {
    let n = height * width;
    let count = frames.len() / n;
    if n <= FIT_VALUES {
        let taken = count.min(FIT_VALUES / n).max(1);
        let first = (count - taken) / 2;
        (
            &frames[first * n..(first + taken) * n],
            [taken, height, width],
        )
    } else {
        let rows = (FIT_VALUES / width).clamp(2, height);
        let first = (height - rows) / 2;
        (
            &frames[first * width..(first + rows) * width],
            [1, rows, width],
        )
    }
}

/// The plan that codes `frames` (rows of `height x width` values, back to back, on `grid`)
/// smallest by that estimate; `None` without a whole frame. Its activity classes are left at
/// the most: they depend on the block size (see the compress driver).
pub fn fit(
    frames: &[f64],
    height: usize,
    width: usize,
    grid: &ColumnGrid,
) -> Option<InterpolationPlan> {
    let n = height * width;
    if n == 0 || frames.len() < n {
        return None;
    }
    let (frames, [count, height, width]) = fit_sample(frames, height, width);
    let mut volume = vec![0i64; frames.len()];
    let fine_bits = fine_bits(frames, grid);
    let plan_for = |shape, order, cubic| {
        with_finer(
            InterpolationPlan {
                shape,
                order,
                fine_bits,
                cubic: [cubic; INTERPOLATION_LEVELS],
                ..InterpolationPlan::LINEAR
            },
            1,
        )
    };
    // The volume's shape and the axis order (at the finer steps most fields take, which the
    // last step tunes)...
    // Each distinct volume once, and each axis order once among its axes of 2 or more values.
    let mut candidates: Vec<(u8, u8, [usize; 3], Vec<usize>)> = Vec::new();
    for shape in 0..VOLUME_SHAPES {
        for order in 0..AXIS_ORDERS.len() as u8 {
            let dims = plan_for(shape, order, 0).dims(count, height, width);
            let axes: Vec<usize> = AXIS_ORDERS[usize::from(order)]
                .into_iter()
                .filter(|&a| dims[a] > 1)
                .collect();
            if !candidates.iter().any(|c| c.2 == dims && c.3 == axes) {
                candidates.push((shape, order, dims, axes));
            }
        }
    }
    // Each judged with cubic interpolation everywhere, by its cost in contexts as the coder
    // will see the residuals (one pass over the sample each: the fit's cost shows on small
    // chunks, as an HDF5 filter writes them)...
    let mut best: Option<(f64, InterpolationPlan, Histograms)> = None;
    for (shape, order, dims, _) in candidates {
        let cubic = histograms(frames, grid, dims, &plan_for(shape, order, 7), &mut volume)?;
        let t = cubic.total();
        if best.as_ref().is_none_or(|b| t < b.0) {
            best = Some((t, plan_for(shape, order, 0), cubic));
        }
    }
    let (_, mut plan, cubic) = best?;
    // ...then, for the best, linear or cubic pass by pass...
    let dims = plan.dims(count, height, width);
    let linear = histograms(frames, grid, dims, &plan, &mut volume)?;
    for level in 0..INTERPOLATION_LEVELS {
        for pass in 0..3 {
            if bits(&cubic.passes[level][pass]) < bits(&linear.passes[level][pass]) {
                plan.cubic[level] |= 1 << pass;
            }
        }
    }
    // ...then the level-wise steps, each scheme judged on the whole sample.
    let mut best: Option<(f64, InterpolationPlan)> = None;
    for scheme in 0..FINER_SCHEMES {
        let candidate = with_finer(plan, scheme);
        let t = histograms(frames, grid, dims, &candidate, &mut volume)?.total();
        if best.as_ref().is_none_or(|b| t < b.0) {
            best = Some((t, candidate));
        }
    }
    best.map(|b| b.1)
}

/// Level-wise step schemes [`with_finer`] knows.
const FINER_SCHEMES: usize = 3;

/// `plan` with level-wise steps by scheme: 0 the grid's step everywhere; 1 half of it at
/// stride 2 and a quarter from stride 4 on (about QoZ's default, 1.75^level capped at 4);
/// 2 half of it from stride 2 on. Never finer than the plan's fine bits allow.
fn with_finer(mut plan: InterpolationPlan, scheme: usize) -> InterpolationPlan {
    for (level, finer) in plan.finer.iter_mut().enumerate() {
        let shift = match scheme {
            0 => 0,
            1 => level.min(2),
            _ => level.min(1),
        };
        *finer = (shift as u32).min(plan.fine_bits) as u8;
    }
    plan
}
