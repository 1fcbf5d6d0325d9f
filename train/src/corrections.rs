//! Per-column corrections of a quantized autoencoder (the blob's corrections section, see
//! `baler_codec::model::spec::Corrections`): a fixed budget of bits a frame spread over the
//! columns the network reconstructs worst.
//!
//! The network serves the mean: trained on the mean squared error, it leaves a few columns
//! far behind (their largest error near half their range), and more latents would spend
//! their bits on every column at once. A correction code of `b` bits narrows one column's
//! residual range `low..high` to steps of `(high - low) / 2^b`, so its largest error falls to
//! half a step; the bits go one at a time to the column whose largest error is then the
//! largest fraction of its range, which is what "no column left behind" asks of a fixed rate.

use baler_codec::model::quantize::{ColumnCorrection, FloatModel};
use baler_codec::model::spec::MAX_CORRECTION_BITS;
use baler_codec::HostModel;
use indicatif::ProgressBar;
use rayon::prelude::*;

/// Frames per parallel task when running the integer codec over the data.
const CHUNK: usize = 256;

/// What the network alone leaves in each column, measured through the integer codec.
#[derive(Debug, Clone, PartialEq)]
pub struct Residuals {
    /// Smallest `value - decoded` per column (f32, as the stream computes it).
    pub low: Vec<f32>,
    /// Largest `value - decoded` per column.
    pub high: Vec<f32>,
    /// Each column's range (largest minus smallest value) in the data.
    pub range: Vec<f64>,
    /// Columns coded exactly (never corrected).
    pub exact: Vec<bool>,
}

impl Residuals {
    /// The largest error of `column` with a `bits`-bit correction, as a fraction of its range
    /// (0 for a constant column). Half a step (see [`steps`]), in exact arithmetic; the
    /// codec's f32 steps add a rounding or two.
    pub fn relative_error(&self, column: usize, bits: u8) -> f64 {
        let (low, high) = (f64::from(self.low[column]), f64::from(self.high[column]));
        let range = self.range[column];
        if self.exact[column] || range <= 0.0 || high < low {
            return 0.0;
        }
        let error = if bits == 0 {
            low.abs().max(high.abs())
        } else {
            steps(low, high, bits).1 / 2.0
        };
        error / range
    }
}

/// The correction levels for residuals in `low..=high` with `bits`-bit codes: `(zero, step)`,
/// code `q` standing for `(q - zero) * step`. A residual of 0 keeps a level of its own (code
/// `zero`): most rows of most columns are reconstructed well, and levels straddling zero
/// would add half a step to each of them (on hzz that doubled the RMSE at 1 bit a column).
/// The step is the smallest for which the levels cover `low..=high` to within half a step.
fn steps(low: f64, high: f64, bits: u8) -> (u32, f64) {
    let (low, high) = (low.min(0.0), high.max(0.0));
    let levels = f64::from(1u32 << bits);
    let step = |zero: f64| (-low / (zero + 0.5)).max(high / (levels - zero - 0.5));
    // The two sides balance at `zero + 1/2 = levels * -low / (high - low)`.
    let balance = if high > low {
        levels * -low / (high - low) - 0.5
    } else {
        0.0
    };
    let below = balance.floor().clamp(0.0, levels - 1.0);
    let above = balance.ceil().clamp(0.0, levels - 1.0);
    let zero = if step(below) <= step(above) {
        below
    } else {
        above
    };
    (zero as u32, step(zero))
}

/// Runs the quantized `blob` (without corrections) over every frame of `frames` (`n` values
/// each) and measures what it leaves per column; `bar` counts the frames done.
pub fn measure_residuals(
    frames: &[f32],
    n: usize,
    blob: &[u8],
    bar: &ProgressBar,
) -> Result<Residuals, String> {
    let model =
        HostModel::from_bytes(blob).map_err(|e| format!("cannot load the quantized model: {e}"))?;
    if n == 0 || frames.len() % n != 0 || model.input_len() != n {
        return Err(format!(
            "{} values do not form frames of the model's {} values",
            frames.len(),
            model.input_len()
        ));
    }
    let mut exact = vec![false; n];
    for (column, _) in model.exact_columns() {
        exact[column] = true;
    }
    let latent = model.latent_len();
    let empty = || {
        (
            vec![f32::INFINITY; n],
            vec![f32::NEG_INFINITY; n],
            vec![f32::INFINITY; n],
            vec![f32::NEG_INFINITY; n],
        )
    };
    type Spans = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);
    let merge = |mut a: Spans, b: Spans| {
        for j in 0..a.0.len() {
            a.0[j] = a.0[j].min(b.0[j]);
            a.1[j] = a.1[j].max(b.1[j]);
            a.2[j] = a.2[j].min(b.2[j]);
            a.3[j] = a.3[j].max(b.3[j]);
        }
        a
    };
    let (low, high, min, max) = frames
        .par_chunks(CHUNK * n)
        .map(|chunk| -> Result<Spans, String> {
            let mut spans = empty();
            let mut codes = vec![0i16; latent];
            let mut out = vec![0f32; n];
            for (r, frame) in chunk.chunks_exact(n).enumerate() {
                model
                    .encode_frame(frame, &mut codes)
                    .and_then(|()| model.decode_frame(&codes, &mut out))
                    .map_err(|e| format!("frame {r} of a chunk: {e}"))?;
                for (j, (&x, &y)) in frame.iter().zip(&out).enumerate() {
                    let residual = x - y;
                    spans.0[j] = spans.0[j].min(residual);
                    spans.1[j] = spans.1[j].max(residual);
                    spans.2[j] = spans.2[j].min(x);
                    spans.3[j] = spans.3[j].max(x);
                }
            }
            bar.inc((chunk.len() / n) as u64);
            Ok(spans)
        })
        .try_reduce(empty, |a, b| Ok(merge(a, b)))?;
    let range = min
        .iter()
        .zip(&max)
        .map(|(&lo, &hi)| (f64::from(hi) - f64::from(lo)).max(0.0))
        .collect();
    Ok(Residuals {
        low,
        high,
        range,
        exact,
    })
}

/// Spreads `budget` bits a frame over the columns of `residuals`, one bit at a time to the
/// column whose largest error is the largest fraction of its range (the lower column on a
/// tie), at most [`MAX_CORRECTION_BITS`] each. Returns the bits per column; fewer than
/// `budget` in all when every column is already exact.
pub fn allocate_bits(residuals: &Residuals, budget: usize) -> Vec<u8> {
    let n = residuals.low.len();
    let mut bits = vec![0u8; n];
    for _ in 0..budget {
        let worst = (0..n)
            .filter(|&j| bits[j] < MAX_CORRECTION_BITS)
            .map(|j| (j, residuals.relative_error(j, bits[j])))
            .filter(|&(_, e)| e > 0.0)
            .fold(None, |best: Option<(usize, f64)>, c| match best {
                Some(b) if b.1 >= c.1 => Some(b),
                _ => Some(c),
            });
        match worst {
            Some((j, _)) => bits[j] += 1,
            None => break,
        }
    }
    bits
}

/// The corrections for `bits` per column (levels as [`steps`] lays them out). A column whose
/// levels do not fit in finite f32 values is left uncorrected.
pub fn corrections_for(residuals: &Residuals, bits: &[u8]) -> Vec<ColumnCorrection> {
    bits.iter()
        .enumerate()
        .filter(|&(_, &b)| b > 0)
        .filter_map(|(column, &bits)| {
            let (low, high) = (residuals.low[column], residuals.high[column]);
            let (zero, step) = steps(f64::from(low), f64::from(high), bits);
            // A residual that never varies still needs a positive step: one ulp-sized one.
            let floor = f64::from(low.abs().max(high.abs())) * f64::from(f32::EPSILON);
            let step = step.max(floor).max(f64::from(f32::MIN_POSITIVE)) as f32;
            // The codec's own f32 product, so that code `zero` corrects by exactly 0.
            let low = -((zero as f32 + 0.5) * step);
            let top = low + step * f32::from(1u16 << (bits - 1)) * 2.0;
            (low.is_finite() && step.is_finite() && top.is_finite()).then_some(ColumnCorrection {
                column,
                bits,
                low,
                step,
            })
        })
        .collect()
}

/// What [`fit_corrections`] did, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionFit {
    /// The corrections, in column order.
    pub corrections: Vec<ColumnCorrection>,
    /// The largest error of each column without corrections, as a fraction of its range.
    pub before: Vec<f64>,
    /// The same with them (from the residual ranges: half a step).
    pub after: Vec<f64>,
}

/// Measures `model` (quantized without corrections) on every frame and spreads `budget`
/// correction bits a frame over its columns; the caller stores the result in
/// `model.corrections` and quantizes again. `bar` counts the frames measured.
pub fn fit_corrections(
    frames: &[f32],
    n: usize,
    model: &FloatModel,
    budget: usize,
    bar: &ProgressBar,
) -> Result<CorrectionFit, String> {
    let mut plain = model.clone();
    plain.corrections.clear();
    let blob = plain
        .quantize()
        .map_err(|e| format!("cannot quantize the model: {e}"))?;
    let residuals = measure_residuals(frames, n, &blob, bar)?;
    let bits = allocate_bits(&residuals, budget);
    let corrections = corrections_for(&residuals, &bits);
    let mut kept = vec![0u8; n];
    for c in &corrections {
        kept[c.column] = c.bits;
    }
    Ok(CorrectionFit {
        before: (0..n).map(|j| residuals.relative_error(j, 0)).collect(),
        after: (0..n)
            .map(|j| residuals.relative_error(j, kept[j]))
            .collect(),
        corrections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residuals(low: &[f32], high: &[f32], range: &[f64]) -> Residuals {
        Residuals {
            low: low.to_vec(),
            high: high.to_vec(),
            range: range.to_vec(),
            exact: vec![false; low.len()],
        }
    }

    #[test]
    fn bits_go_to_the_worst_column_first() {
        // Column 0 errs by 40% of its range, column 1 by 10%, column 2 not at all.
        let r = residuals(&[-4.0, -1.0, 0.0], &[4.0, 1.0, 0.0], &[10.0, 10.0, 5.0]);
        assert_eq!(allocate_bits(&r, 1), [1, 0, 0]);
        // 1 bit: levels 0 and 8 (or -8 and 0), 40% again; 2 bits: -8/3, 0, 8/3, 16/3
        // (13.3%); 3 bits: steps of 8/7 (5.7%), then column 1 (10%).
        assert_eq!(allocate_bits(&r, 2), [2, 0, 0]);
        assert_eq!(allocate_bits(&r, 3), [3, 0, 0]);
        assert_eq!(allocate_bits(&r, 4), [3, 1, 0]);
        // A column without error never gets a bit; the budget may stay unspent.
        let exact = residuals(&[0.0], &[0.0], &[1.0]);
        assert_eq!(allocate_bits(&exact, 5), [0]);
        // At most 16 bits a column.
        let one = residuals(&[-1.0], &[1.0], &[1.0]);
        assert_eq!(allocate_bits(&one, 40), [16]);
    }

    #[test]
    fn levels_cover_the_residuals_and_keep_zero() {
        for (low, high) in [(-3.0f32, 5.0f32), (-1.0, 1.0), (0.5, 2.0), (-7.0, -0.25)] {
            for bits in 1..=6u8 {
                let r = residuals(&[low], &[high], &[20.0]);
                let c = corrections_for(&r, &[bits])[0];
                let codec = baler_codec::CorrectedColumn {
                    column: 0,
                    bits,
                    low: c.low,
                    step: c.step,
                };
                // Some code corrects by exactly zero.
                assert!((0..1u16 << bits).any(|q| codec.correction(q) == 0.0));
                // Every residual in the range comes back within half a step (and a rounding).
                for k in 0..=100 {
                    let e = low + (high - low) * k as f32 / 100.0;
                    let back = codec.correction(codec.code(e));
                    assert!(
                        (back - e).abs() <= c.step * 0.5 * (1.0 + 1e-5),
                        "{low}..{high}, {bits} bits: {e} -> {back}"
                    );
                }
                let promised = r.relative_error(0, bits) * 20.0;
                assert!((f64::from(c.step) / 2.0 - promised).abs() <= 1e-6 * promised);
            }
        }
        // A column whose residual never varies gets one bit and a tiny step.
        let flat = residuals(&[2.0], &[2.0], &[1.0]);
        assert_eq!(allocate_bits(&flat, 1), [1]);
        // Residuals past f32 are not corrected.
        let huge = residuals(&[-f32::MAX], &[f32::MAX], &[1.0]);
        assert!(corrections_for(&huge, &[1]).is_empty());
    }
}
