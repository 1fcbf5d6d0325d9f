//! The numbers behind the figures: histograms, quantiles, means.

/// Counts of values in equal bins over `[low, high]`, with the values outside counted apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub low: f64,
    /// Right edge of the last bin.
    pub high: f64,
    /// Count per bin.
    pub counts: Vec<u64>,
    /// Values below `low` or above `high`.
    pub outside: u64,
}

impl Histogram {
    /// Bins `values` into `bins` equal bins over `[low, high]` (widened when empty).
    pub fn new(values: &[f64], low: f64, high: f64, bins: usize) -> Histogram {
        let (low, high) = widen(low, high);
        let bins = bins.max(1);
        let mut counts = vec![0u64; bins];
        let mut outside = 0;
        let width = (high - low) / bins as f64;
        for &v in values {
            if v < low || v > high || v.is_nan() {
                outside += 1;
            } else {
                let bin = (((v - low) / width) as usize).min(bins - 1);
                counts[bin] += 1;
            }
        }
        Histogram {
            low,
            high,
            counts,
            outside,
        }
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f64 {
        (self.high - self.low) / self.counts.len() as f64
    }

    /// The largest count.
    pub fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }

    /// `(left, right, count)` of each bin.
    pub fn bars(&self) -> impl Iterator<Item = (f64, f64, u64)> + '_ {
        let width = self.bin_width();
        self.counts.iter().enumerate().map(move |(i, &count)| {
            (
                self.low + i as f64 * width,
                self.low + (i + 1) as f64 * width,
                count,
            )
        })
    }
}

/// `[low, high]` made a proper interval: an empty one grows around its value.
pub fn widen(low: f64, high: f64) -> (f64, f64) {
    if high > low {
        (low, high)
    } else {
        let half = if low == 0.0 { 0.5 } else { low.abs() * 0.05 };
        (low - half, low + half)
    }
}

/// The `q` quantile (0..=1) of sorted values, interpolated linearly; `NaN` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

/// Mean and root mean square of `values` (0 for none).
pub fn mean_and_rms(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let rms = (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    (mean, rms)
}

/// Smallest and largest of `values`; `None` when empty.
pub fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_edges_and_outsiders() {
        let h = Histogram::new(&[0.0, 0.5, 1.0, 2.0, -1.0], 0.0, 2.0, 2);
        assert_eq!(h.counts, vec![2, 2]);
        assert_eq!(h.outside, 1);
        let flat = Histogram::new(&[3.0, 3.0], 3.0, 3.0, 4);
        assert!(flat.low < 3.0 && flat.high > 3.0);
        assert_eq!(flat.counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert_eq!(quantile(&v, 0.125), 0.5);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
