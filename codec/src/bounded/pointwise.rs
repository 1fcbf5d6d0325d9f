//! Pointwise relative grids: every value `x` comes back within `R |x|`.
//!
//! A value's magnitude is cut into binades `[2^e, 2^(e+1))`, each divided into `M` equal
//! steps of `2^e / M`; `M = ceil(1 / (2R))` makes half a step at most `R 2^e <= R |x|`. With
//! `M = 2^N` this is rounding the mantissa to `N` bits, as NanoAOD stores collider data. The
//! step's code is `c = (e + 1075) M + j` (`j` the step within the binade; `e` from -1074 for
//! the smallest subnormal to 1023), monotone in `|x|`, so a grid index is a scaled log of the
//! magnitude and predictions from related columns (an energy from its momentum) give small
//! residuals.
//!
//! A column's grid index is `sign(x) (c - base + 1)`, 0 for zero: `base` (the grid's offset)
//! is the code of the column's smallest magnitude, which keeps indices small. Decoding is
//! integer arithmetic and one correctly rounded division and scaling (`1 + j / M`, then
//! `scalbn`), so every platform gets the same bits; the encoder checks each decoded value
//! against `R |x|` and escapes what misses (a rounding at a subnormal or near the largest
//! float, NaN, infinity, -0.0, magnitudes below `base`).

/// The exponent bias of codes: the smallest subnormal's binade is `e = -1074`.
const EXPONENT_BIAS: i64 = 1075;

/// Largest steps per binade (a bound of about 5e-10).
pub const MAX_PER_BINADE: u32 = 1 << 30;

/// Steps per binade that guarantee the relative bound `r` (0 < r < 1): `ceil(1 / (2r))`.
pub fn per_binade_for(r: f64) -> Option<u32> {
    if !(r.is_finite() && r > 0.0 && r < 1.0) {
        return None;
    }
    let m = libm::ceil(0.5 / r);
    (m >= 1.0 && m <= f64::from(MAX_PER_BINADE)).then_some(m as u32)
}

/// The code of a finite, non-zero magnitude `a`.
#[inline]
fn code(a: f64, per_binade: u32) -> i64 {
    let e = libm::ilogb(a);
    // Exact: a / 2^e lies in [1, 2), a normal number.
    let mantissa = libm::scalbn(a, -e);
    let m = f64::from(per_binade);
    let j = libm::round((mantissa - 1.0) * m) as i64;
    (i64::from(e) + EXPONENT_BIAS) * i64::from(per_binade) + j
}

/// The grid index of `v` on the grid with `per_binade` steps and base code `base`; `None`
/// for NaN and infinities.
#[inline]
pub fn index(v: f64, per_binade: u32, base: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(0);
    }
    // Codes are below 2100 x 2^30 < 2^42: exact in f64 and in i64.
    let k = (code(v.abs(), per_binade) - base as i64 + 1).max(1);
    Some(if v < 0.0 { -k } else { k })
}

/// The value grid index `k` decodes to (any `k`: a damaged stream's indices decode to some
/// value, never a panic).
#[inline]
pub fn value(k: i64, per_binade: u32, base: f64) -> f64 {
    if k == 0 || per_binade == 0 {
        return 0.0;
    }
    let m = i64::from(per_binade);
    let c = (k.unsigned_abs() as i64 - 1).saturating_add(base as i64);
    let (binade, j) = (c.div_euclid(m), c.rem_euclid(m));
    let e = (binade - EXPONENT_BIAS).clamp(-2000, 2000) as i32;
    let magnitude = libm::scalbn(1.0 + j as f64 / m as f64, e);
    if k < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Whether `y` keeps `x` within `r |x|`; a zero must come back as the same zero.
#[inline]
pub fn within(x: f64, y: f64, r: f64) -> bool {
    if x == 0.0 {
        return x.to_bits() == y.to_bits();
    }
    (x - y).abs() <= r * x.abs()
}

/// The base code of a column whose smallest non-zero magnitude is `smallest`.
pub fn base_for(smallest: f64, per_binade: u32) -> f64 {
    if smallest.is_finite() && smallest > 0.0 {
        code(smallest, per_binade) as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mantissa_bits_round_as_nanoaod_does() {
        // 10 bits: 1024 steps per binade; 1 + 3/1024 is on the grid, 1 + 3.4/1024 rounds to it.
        let m = per_binade_for(1.0 / 2048.0).unwrap();
        assert_eq!(m, 1024);
        let base = base_for(1.0, m);
        for x in [
            1.0 + 3.0 / 1024.0,
            1.0 + 3.4 / 1024.0,
            -(1.0 + 3.4 / 1024.0),
        ] {
            let k = index(x, m, base).unwrap();
            let y = value(k, m, base);
            assert_eq!(y.abs(), 1.0 + 3.0 / 1024.0);
            assert_eq!(y.signum(), x.signum());
        }
    }

    #[test]
    fn every_magnitude_comes_back_within_the_bound_or_is_flagged() {
        for r in [1e-1, 1e-3, 2f64.powi(-11), 1e-7] {
            let m = per_binade_for(r).unwrap();
            let base = base_for(f64::from_bits(1), m); // the smallest subnormal
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            let mut missed = 0;
            for _ in 0..20_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let x = f64::from_bits(state);
                let Some(k) = index(x, m, base) else {
                    assert!(!x.is_finite());
                    continue;
                };
                let y = value(k, m, base);
                if !within(x, y, r) {
                    // Only subnormals and the top binade may miss (the encoder escapes them).
                    assert!(
                        x.abs() < f64::MIN_POSITIVE || x.abs() > 1e307,
                        "{x:e} -> {y:e}"
                    );
                    missed += 1;
                }
            }
            assert!(missed < 100, "{missed} misses at r = {r}");
        }
    }
}
