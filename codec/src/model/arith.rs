//! Integer arithmetic of the quantized layers. One rounding rule everywhere:
//! **round half away from zero**.

use crate::model::spec::{Activation, Lut, ACTIVATION_MAX};

/// `round(value / 2^shift)`, half away from zero. `shift` is in `1..=62` and
/// `|value| < 2^62` for every validated model, so nothing overflows.
#[inline(always)]
pub fn round_shift(value: i64, shift: u32) -> i64 {
    let half = 1u64 << (shift - 1);
    let magnitude = ((value.unsigned_abs() + half) >> shift) as i64;
    if value < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Scales an int32 accumulator by `multiplier / 2^shift`, rounds, and saturates to the
/// symmetric int16 activation range `-32767..=32767`.
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i32 {
    let scaled = round_shift(i64::from(acc) * i64::from(multiplier), u32::from(shift));
    scaled.clamp(-i64::from(ACTIVATION_MAX), i64::from(ACTIVATION_MAX)) as i32
}

/// Applies an activation to a requantized value in `-32767..=32767`; the result stays in range.
#[inline(always)]
pub fn activate(x: i32, activation: &Activation<'_>) -> i32 {
    match activation {
        Activation::Identity => x,
        Activation::Relu => x.max(0),
        Activation::LeakyRelu { slope_q15 } => {
            if x >= 0 {
                x
            } else {
                round_shift(i64::from(x) * i64::from(*slope_q15), 15) as i32
            }
        }
        Activation::Lut(lut) => lookup(x, lut),
    }
}

/// Linear interpolation in a validated table (see [`Lut`]).
#[inline]
pub fn lookup(x: i32, lut: &Lut<'_>) -> i32 {
    let u = (x.clamp(-ACTIVATION_MAX, ACTIVATION_MAX) + 32768) as u32;
    let shift = u32::from(lut.index_shift);
    let index = (u >> shift) as usize;
    let frac = i64::from(u & ((1u32 << shift) - 1));
    let lo = i64::from(lut.table.at(index, 0));
    let hi = i64::from(lut.table.at(index + 1, 0));
    (lo + round_shift((hi - lo) * frac, shift)) as i32
}

/// Dot product of an int8 weight row (as raw bytes) with int16 activations, in an i32
/// accumulator. Load-time validation guarantees it cannot overflow; wrapping adds keep the
/// loop free of overflow checks so it vectorizes.
#[inline(always)]
pub fn dot(row: &[u8], input: &[i16]) -> i32 {
    row.iter()
        .zip(input)
        .map(|(&w, &a)| i32::from(w as i8) * i32::from(a))
        .fold(0i32, i32::wrapping_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_shift(3, 1), 2); // 1.5 -> 2
        assert_eq!(round_shift(-3, 1), -2); // -1.5 -> -2
        assert_eq!(round_shift(5, 2), 1); // 1.25 -> 1
        assert_eq!(round_shift(-6, 2), -2); // -1.5 -> -2
        assert_eq!(round_shift(-5, 2), -1);
        assert_eq!(round_shift(0, 62), 0);
        assert_eq!(round_shift((1i64 << 62) - 1, 62), 1);
    }

    #[test]
    fn requantize_saturates() {
        assert_eq!(requantize(i32::MAX, i32::MAX, 1), 32767);
        assert_eq!(requantize(i32::MIN, i32::MAX, 1), -32767);
        assert_eq!(requantize(1000, 1 << 30, 31), 500);
    }

    #[test]
    fn leaky_relu_rounds_the_negative_side() {
        let act = Activation::LeakyRelu { slope_q15: 16384 };
        assert_eq!(activate(-3, &act), -2);
        assert_eq!(activate(7, &act), 7);
        assert_eq!(activate(-32767, &act), -16384);
    }
}
