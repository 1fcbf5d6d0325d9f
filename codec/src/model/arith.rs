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
/// symmetric int16 activation range `-32767..=32767`: exactly
/// `clamp(round_shift(acc * multiplier, shift), -32767, 32767)`.
///
/// `multiplier` must be positive, as in every validated model (`1..=i32::MAX`): the product's
/// sign is then the accumulator's, so this works on the magnitude `m`, with one 32 x 32 -> 64
/// multiply and 32-bit operations only, a few instructions on a microcontroller:
/// `floor((m + 2^(s-1)) / 2^s) == (floor(m / 2^(s-1)) + 1) / 2`, and a quotient of 65,535 or
/// more saturates anyway.
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i32 {
    let magnitude = u64::from(acc.unsigned_abs()) * u64::from(multiplier as u32);
    let (low, high) = (magnitude as u32, (magnitude >> 32) as u32);
    // floor(m / 2^k), saturated to 65,535; `& 63` keeps every shift in range even for a
    // blob that validation would refuse.
    let k = u32::from(shift).saturating_sub(1) & 63;
    let halves = if k >= 32 {
        (high >> (k - 32)).min(65_535)
    } else if high >> k != 0 {
        65_535
    } else {
        // `high << (32 - k)` written so that k = 0 does not shift by 32.
        (low >> k | high << 1 << (31 - k)).min(65_535)
    };
    let clamped = ((halves + 1) >> 1).min(ACTIVATION_MAX as u32) as i32;
    if acc < 0 {
        -clamped
    } else {
        clamped
    }
}

/// Rounds half away from zero and saturates to the activation range `-32767..=32767`:
/// exactly `clamp(libm::roundf(x) as i32, -32767, 32767)` for every f32 (NaN gives 0).
///
/// It works on the bits, in integers only, so a core without an FPU (Cortex-M0) pays no
/// soft-float calls: a value `mantissa * 2^(exponent - 150)` with `|x|` in `[0.5, 32768)`
/// rounds to `(floor(mantissa / 2^(149 - exponent)) + 1) / 2`.
#[inline(always)]
pub fn round_to_code(x: f32) -> i16 {
    let bits = x.to_bits();
    let exponent = (bits >> 23) & 0xff;
    let mantissa = bits & 0x7f_ffff;
    let magnitude = if exponent < 126 || exponent == 0xff && mantissa != 0 {
        0 // |x| < 0.5, or NaN
    } else if exponent >= 127 + 15 {
        ACTIVATION_MAX as u32 // |x| >= 32768, or infinite
    } else {
        let halves = (mantissa | 0x80_0000) >> (149 - exponent);
        ((halves + 1) >> 1).min(ACTIVATION_MAX as u32)
    };
    if bits >> 31 != 0 {
        -(magnitude as i32) as i16
    } else {
        magnitude as i16
    }
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
                // round_shift(x * slope, 15) in 32 bits: |x * slope| < 2^30 for an i16 slope.
                let magnitude = x.unsigned_abs() * u32::from(slope_q15.unsigned_abs());
                -(((magnitude + (1 << 14)) >> 15) as i32)
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

/// Multiplies-accumulates two int8 weights (raw bytes) with the two int16 activations packed
/// in `pair` (element `2k` in the low half, `2k + 1` in the high half). On a Cortex-M4 that is
/// two sign-extending byte loads (by the caller), one `SMLABB` and one `SMLATB`.
#[inline(always)]
fn mac_pair(acc: i32, w0: u8, w1: u8, pair: u32) -> i32 {
    let low = i32::from(pair as u16 as i16);
    let high = (pair as i32) >> 16;
    acc.wrapping_add(i32::from(w0 as i8) * low)
        .wrapping_add(i32::from(w1 as i8) * high)
}

/// The last weight of a row of odd length times the low half of the input's last word.
#[inline(always)]
fn mac_tail(acc: i32, row: &[u8], input: &[u32]) -> i32 {
    match (row.chunks_exact(2).remainder(), input.get(row.len() / 2)) {
        ([w], Some(&pair)) => acc.wrapping_add(i32::from(*w as i8) * i32::from(pair as u16 as i16)),
        _ => acc,
    }
}

/// Dot product of an int8 weight row (as raw bytes) with int16 activations packed two per
/// word, in an i32 accumulator. Load-time validation guarantees it cannot overflow; wrapping
/// adds keep the loop free of overflow checks.
#[inline(always)]
pub fn dot(row: &[u8], input: &[u32]) -> i32 {
    let acc = row
        .chunks_exact(2)
        .zip(input)
        .fold(0, |acc, (w, &pair)| mac_pair(acc, w[0], w[1], pair));
    mac_tail(acc, row, input)
}

/// [`dot`] of four weight rows of the same length with the same activations: each input pair
/// is loaded once for the four rows, so a Cortex-M4 spends 21 instructions on 8
/// multiply-accumulates (8 byte loads, 8 multiply-adds, the pair's load, the loop's count and
/// branch, one register spilled and reloaded). Not inlined: its register allocation, and so its speed, then does not
/// depend on the caller.
#[inline(never)]
#[allow(clippy::map_identity)] // the identity `map` is there on purpose, see below
pub fn dot4(rows: [&[u8]; 4], input: &[u32]) -> [i32; 4] {
    // `black_box` hides that each row starts where the one before ends, so each walks its own
    // post-incremented pointer instead of base-plus-offset addressing with extra adds. The
    // identity `map` gives this zip a type of its own, so its one `Zip::new` is inlined and
    // LLVM keeps the chunk length 2 (a shared, outlined one leaves a runtime stride). Both
    // measured at opt-level "s" on thumbv7em: 26 and 36 instructions per 8 without them.
    let [r0, r1, r2, r3] = rows;
    let (r1, r2, r3) = core::hint::black_box((r1, r2, r3));
    let quads = r0
        .chunks_exact(2)
        .map(|w| w)
        .zip(r1.chunks_exact(2))
        .zip(r2.chunks_exact(2))
        .zip(r3.chunks_exact(2))
        .zip(input);
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    for ((((w0, w1), w2), w3), &pair) in quads {
        a0 = mac_pair(a0, w0[0], w0[1], pair);
        a1 = mac_pair(a1, w1[0], w1[1], pair);
        a2 = mac_pair(a2, w2[0], w2[1], pair);
        a3 = mac_pair(a3, w3[0], w3[1], pair);
    }
    [
        mac_tail(a0, r0, input),
        mac_tail(a1, r1, input),
        mac_tail(a2, r2, input),
        mac_tail(a3, r3, input),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

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

    /// The formula `requantize` must equal: the 64-bit product, rounded and clamped.
    fn requantize_by_definition(acc: i32, multiplier: i32, shift: u8) -> i32 {
        let scaled = round_shift(i64::from(acc) * i64::from(multiplier), u32::from(shift));
        scaled.clamp(-i64::from(ACTIVATION_MAX), i64::from(ACTIVATION_MAX)) as i32
    }

    proptest::proptest! {
        #[test]
        fn requantize_is_the_rounded_clamped_product(
            acc in proptest::prelude::any::<i32>(),
            multiplier in 1..=i32::MAX,
            shift in 1u8..=62,
        ) {
            proptest::prop_assert_eq!(
                requantize(acc, multiplier, shift),
                requantize_by_definition(acc, multiplier, shift)
            );
        }
    }

    #[test]
    fn requantize_is_exact_at_rounding_ties_and_extremes() {
        for shift in 1u8..=62 {
            for multiplier in [1, 2, 3, 1 << 30, (1 << 30) + 1, i32::MAX - 1, i32::MAX] {
                for acc in [
                    0,
                    1,
                    -1,
                    2,
                    -2,
                    3,
                    -3,
                    i32::MAX,
                    i32::MIN,
                    i32::MIN + 1,
                    1 << 20,
                ] {
                    assert_eq!(
                        requantize(acc, multiplier, shift),
                        requantize_by_definition(acc, multiplier, shift),
                        "acc {acc} multiplier {multiplier} shift {shift}"
                    );
                }
                // Products just below, at and above each half step.
                let half = 1i64 << (shift - 1);
                for k in [1i64, 2, 3, 32767, 32768] {
                    let Some(target) = (2 * k - 1).checked_mul(half) else {
                        continue;
                    };
                    for delta in [-1i64, 0, 1] {
                        let acc = (target + delta) / i64::from(multiplier);
                        if let Ok(acc) = i32::try_from(acc) {
                            for acc in [acc, -acc] {
                                assert_eq!(
                                    requantize(acc, multiplier, shift),
                                    requantize_by_definition(acc, multiplier, shift)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dot_kernels_match_the_plain_sum() {
        for n in 1..=9usize {
            let rows: [Vec<u8>; 4] = core::array::from_fn(|r| {
                (0..n).map(|j| ((r * 37 + j * 91) as u8) ^ 0x80).collect()
            });
            let values: Vec<i16> = (0..n)
                .map(|j| (j as i16).wrapping_mul(7919).max(-32767))
                .collect();
            let mut packed = vec![0u32; n.div_ceil(2)];
            for (j, &v) in values.iter().enumerate() {
                packed[j / 2] |= u32::from(v as u16) << (16 * (j % 2));
            }
            let plain = |row: &[u8]| -> i32 {
                row.iter()
                    .zip(&values)
                    .map(|(&w, &x)| i32::from(w as i8) * i32::from(x))
                    .sum()
            };
            for row in &rows {
                assert_eq!(dot(row, &packed), plain(row), "width {n}");
            }
            let four = dot4([&rows[0], &rows[1], &rows[2], &rows[3]], &packed);
            assert_eq!(four, [0, 1, 2, 3].map(|r| plain(&rows[r])), "width {n}");
        }
    }

    fn round_to_code_by_definition(x: f32) -> i16 {
        (libm::roundf(x) as i32).clamp(-ACTIVATION_MAX, ACTIVATION_MAX) as i16
    }

    proptest::proptest! {
        #[test]
        fn round_to_code_is_libm_round_then_clamp(bits in proptest::prelude::any::<u32>()) {
            let x = f32::from_bits(bits);
            proptest::prop_assert_eq!(round_to_code(x), round_to_code_by_definition(x));
        }
    }

    #[test]
    fn round_to_code_is_exact_at_ties_and_edges() {
        let mut cases = vec![
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            2147483648.0,
            -2147483648.0,
            8388608.5,
            4194304.5,
            32767.5,
            -32767.5,
            32766.5,
            32768.0,
            -32768.0,
            0.49999997,
            -0.49999997,
        ];
        for k in -40000..40000 {
            let base = k as f32;
            for x in [base + 0.5, base - 0.5, base + 0.49999, base + 0.50001] {
                cases.push(x);
                cases.push(f32::from_bits(x.to_bits() + 1));
                cases.push(f32::from_bits(x.to_bits().wrapping_sub(1)));
            }
        }
        for x in cases {
            assert_eq!(
                round_to_code(x),
                round_to_code_by_definition(x),
                "x = {x:e}"
            );
        }
    }

    #[test]
    fn leaky_relu_is_the_rounded_product() {
        for slope_q15 in [0i16, 1, 2, 3, 16384, 16385, 32766, 32767] {
            let act = Activation::LeakyRelu { slope_q15 };
            for x in -32767..=32767 {
                let expected = if x >= 0 {
                    x
                } else {
                    round_shift(i64::from(x) * i64::from(slope_q15), 15) as i32
                };
                assert_eq!(activate(x, &act), expected, "x {x} slope {slope_q15}");
            }
        }
    }

    #[test]
    fn leaky_relu_rounds_the_negative_side() {
        let act = Activation::LeakyRelu { slope_q15: 16384 };
        assert_eq!(activate(-3, &act), -2);
        assert_eq!(activate(7, &act), 7);
        assert_eq!(activate(-32767, &act), -16384);
    }
}
