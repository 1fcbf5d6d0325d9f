//! Adaptive binary range coding (the LZMA construction, 12-bit probabilities), no heap.
//!
//! One trait, [`BitCoder`], is implemented by the encoder and the decoder, so the code that
//! decides which bit is coded under which probability is written once and shared by both
//! directions: they cannot drift apart.

use crate::error::{Error, Result};

const PROB_BITS: u32 = 12;
const TOP: u32 = 1 << 24;

/// An adaptive probability that the next bit is 0: two estimates, one fast and one slow,
/// averaged (fast ones learn small blocks, slow ones settle on long runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prob {
    fast: u16,
    slow: u16,
}

impl Default for Prob {
    fn default() -> Self {
        Prob::INITIAL
    }
}

impl Prob {
    /// Even odds: the state every context starts from (a constant, for static buffers).
    pub const INITIAL: Prob = Prob {
        fast: 1 << 15,
        slow: 1 << 15,
    };

    /// All zero bits: only storage for a context that a coder resets to [`Prob::INITIAL`]
    /// before use (see [`crate::bounded::IntModel::STORAGE`]).
    pub(crate) const ZERO: Prob = Prob { fast: 0, slow: 0 };
}

impl Prob {
    /// P(bit = 0) in 12 bits, kept inside 1..=4095 so both symbols stay codable.
    #[inline(always)]
    fn p0(self) -> u32 {
        ((u32::from(self.fast) + u32::from(self.slow)) >> 5).clamp(1, (1 << PROB_BITS) - 1)
    }

    #[inline(always)]
    fn update(&mut self, bit: u32) {
        // Both outcomes computed, one selected: the coded bits are what is unpredictable.
        let (fast_up, fast_down) = (
            self.fast + ((u16::MAX - self.fast) >> 4),
            self.fast - (self.fast >> 4),
        );
        let (slow_up, slow_down) = (
            self.slow + ((u16::MAX - self.slow) >> 7),
            self.slow - (self.slow >> 7),
        );
        let zero = bit == 0;
        self.fast = if zero { fast_up } else { fast_down };
        self.slow = if zero { slow_up } else { slow_down };
    }
}

/// One direction of range coding: the encoder codes the bits it is given and returns them,
/// the decoder ignores them and returns the bits it reads.
pub trait BitCoder {
    /// True for the encoder, false for the decoder: code that serves one direction only is
    /// then left out of the other's instances (the firmware encodes and never decodes).
    const ENCODER: bool;
    /// Codes one bit (0 or 1) under an adaptive probability, and adapts it.
    fn bit(&mut self, prob: &mut Prob, bit: u32) -> Result<u32>;
    /// Codes the low `count` (at most 32) bits of `value` at probability one half.
    fn direct(&mut self, value: u32, count: u32) -> Result<u32>;
}

/// Range encoder writing into a caller buffer.
#[derive(Debug)]
pub struct RangeEncoder<'o> {
    out: &'o mut [u8],
    pos: usize,
    low: u64,
    range: u32,
    cache: u8,
    pending: u64,
}

impl<'o> RangeEncoder<'o> {
    /// An encoder that writes into `out`.
    pub fn new(out: &'o mut [u8]) -> Self {
        RangeEncoder {
            out,
            pos: 0,
            low: 0,
            range: u32::MAX,
            cache: 0,
            pending: 1,
        }
    }

    fn put(&mut self, byte: u8) -> Result<()> {
        let slot = self.out.get_mut(self.pos).ok_or(Error::BufferTooSmall {
            needed: self.pos + 1,
        })?;
        *slot = byte;
        self.pos += 1;
        Ok(())
    }

    fn shift_low(&mut self) -> Result<()> {
        if self.low < 0xFF00_0000 || self.low > 0xFFFF_FFFF {
            let carry = (self.low >> 32) as u8;
            let mut byte = self.cache;
            while self.pending > 0 {
                self.put(byte.wrapping_add(carry))?;
                byte = 0xFF;
                self.pending -= 1;
            }
            self.cache = (self.low >> 24) as u8;
        }
        self.pending += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
        Ok(())
    }

    #[inline(always)]
    fn normalize(&mut self) -> Result<()> {
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low()?;
        }
        Ok(())
    }

    /// Flushes the coder; returns the number of bytes written.
    pub fn finish(mut self) -> Result<usize> {
        for _ in 0..5 {
            self.shift_low()?;
        }
        Ok(self.pos)
    }
}

impl BitCoder for RangeEncoder<'_> {
    const ENCODER: bool = true;

    #[inline(always)]
    fn bit(&mut self, prob: &mut Prob, bit: u32) -> Result<u32> {
        let bound = (self.range >> PROB_BITS) * prob.p0();
        let one = bit != 0;
        self.low += if one { u64::from(bound) } else { 0 };
        self.range = if one { self.range - bound } else { bound };
        prob.update(bit);
        self.normalize()?;
        Ok(bit)
    }

    fn direct(&mut self, value: u32, count: u32) -> Result<u32> {
        for i in (0..count.min(32)).rev() {
            self.range >>= 1;
            if (value >> i) & 1 == 1 {
                self.low += u64::from(self.range);
            }
            self.normalize()?;
        }
        Ok(value)
    }
}

/// Range decoder reading from a slice; running past its end is [`Error::Truncated`].
#[derive(Debug)]
pub struct RangeDecoder<'s> {
    data: &'s [u8],
    pos: usize,
    code: u32,
    range: u32,
}

impl<'s> RangeDecoder<'s> {
    /// A decoder over `data` (the bytes a [`RangeEncoder`] wrote).
    pub fn new(data: &'s [u8]) -> Result<Self> {
        let mut d = RangeDecoder {
            data,
            pos: 0,
            code: 0,
            range: u32::MAX,
        };
        if d.next()? != 0 {
            return Err(Error::Invalid("range coder start byte"));
        }
        for _ in 0..4 {
            d.code = (d.code << 8) | u32::from(d.next()?);
        }
        Ok(d)
    }

    fn next(&mut self) -> Result<u8> {
        let byte = *self.data.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    #[inline(always)]
    fn normalize(&mut self) -> Result<()> {
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next()?);
        }
        Ok(())
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl BitCoder for RangeDecoder<'_> {
    const ENCODER: bool = false;

    #[inline(always)]
    fn bit(&mut self, prob: &mut Prob, _bit: u32) -> Result<u32> {
        let bound = (self.range >> PROB_BITS) * prob.p0();
        let bit = if self.code < bound {
            self.range = bound;
            0
        } else {
            self.code -= bound;
            self.range -= bound;
            1
        };
        prob.update(bit);
        self.normalize()?;
        Ok(bit)
    }

    fn direct(&mut self, _value: u32, count: u32) -> Result<u32> {
        let mut value = 0u32;
        for _ in 0..count.min(32) {
            self.range >>= 1;
            let bit = if self.code >= self.range {
                self.code -= self.range;
                1
            } else {
                0
            };
            value = (value << 1) | bit;
            self.normalize()?;
        }
        Ok(value)
    }
}
