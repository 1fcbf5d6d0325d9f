//! Adaptive binarization of signed integers for the range coder: a zero flag, a sign, the bit
//! length in unary, the two bits below the leading one adaptively, the rest at one half. Small
//! residuals, the common case when prediction is good, cost a fraction of a bit.

use crate::entropy::range::{BitCoder, Prob};
use crate::error::{Error, Result};

/// Largest bit length of a coded magnitude; [`ESCAPE_LEN`] marks an escape.
pub const MAX_MAGNITUDE_BITS: u32 = 44;
/// The bit length that announces an escape instead of a number.
pub const ESCAPE_LEN: u32 = MAX_MAGNITUDE_BITS + 1;
const LENS: usize = ESCAPE_LEN as usize;

/// What one integer symbol decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbol {
    /// A number.
    Value(i64),
    /// "Not a number here": the caller codes something else (e.g. a raw value).
    Escape,
}

/// The adaptive state of one coding context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntModel {
    zero: Prob,
    sign: Prob,
    len: [Prob; LENS],
    high: [[Prob; 3]; LENS],
}

impl Default for IntModel {
    fn default() -> Self {
        IntModel::INITIAL
    }
}

impl IntModel {
    /// A fresh context (a constant, so a device can keep its contexts in a `static`).
    pub const INITIAL: IntModel = IntModel {
        zero: Prob::INITIAL,
        sign: Prob::INITIAL,
        len: [Prob::INITIAL; LENS],
        high: [[Prob::INITIAL; 3]; LENS],
    };

    /// All zero bits: storage for contexts that a coder resets before it codes anything
    /// (`BoundedEncoder` and `BoundedDecoder` start every block from [`IntModel::INITIAL`]).
    /// A device declares its contexts with it so they live in zeroed RAM (.bss), not in
    /// flash as well; coding from it without the reset would still decode, only worse.
    pub const STORAGE: IntModel = IntModel {
        zero: Prob::ZERO,
        sign: Prob::ZERO,
        len: [Prob::ZERO; LENS],
        high: [[Prob::ZERO; 3]; LENS],
    };
}

/// Codes `symbol` (encoder) or reads one (decoder) in context `model`. Values need
/// `|v| < 2^MAX_MAGNITUDE_BITS`; larger ones are an error on the encode side.
#[inline(always)]
pub fn code_symbol<C: BitCoder>(
    coder: &mut C,
    model: &mut IntModel,
    symbol: Symbol,
) -> Result<Symbol> {
    // The zero flag is inlined into the caller's loop: zero is the common case. A value too
    // large is refused before anything is coded.
    if let Symbol::Value(v) = symbol {
        if v.unsigned_abs() >> MAX_MAGNITUDE_BITS != 0 {
            return Err(Error::Invalid("integer symbol too large"));
        }
    }
    let nonzero = !matches!(symbol, Symbol::Value(0));
    if coder.bit(&mut model.zero, u32::from(nonzero))? == 0 {
        return Ok(Symbol::Value(0));
    }
    code_nonzero(coder, model, symbol)
}

/// [`code_symbol`] after its zero flag said "not zero".
fn code_nonzero<C: BitCoder>(
    coder: &mut C,
    model: &mut IntModel,
    symbol: Symbol,
) -> Result<Symbol> {
    let (magnitude, negative, len) = match symbol {
        Symbol::Value(v) => {
            let m = v.unsigned_abs();
            (m, v < 0, 64 - m.leading_zeros())
        }
        Symbol::Escape => (0, false, ESCAPE_LEN),
    };
    let mut n = 1;
    while n < ESCAPE_LEN {
        let slot = &mut model.len[n as usize];
        if coder.bit(slot, u32::from(len > n))? == 0 {
            break;
        }
        n += 1;
    }
    if n == ESCAPE_LEN {
        return Ok(Symbol::Escape);
    }
    let negative = coder.bit(&mut model.sign, u32::from(negative))? == 1;
    // Bits below the leading one: the top two through a small adaptive tree, the rest direct.
    let mut value: u64 = 1;
    let below = n - 1;
    let tree = &mut model.high[n as usize];
    let mut node = 0usize;
    for i in 0..below.min(2) {
        let shift = below - 1 - i;
        let bit = coder.bit(&mut tree[node], ((magnitude >> shift) & 1) as u32)?;
        value = (value << 1) | u64::from(bit);
        node = 1 + bit as usize;
    }
    let mut rest = below.saturating_sub(2);
    while rest > 0 {
        let take = rest.min(16);
        rest -= take;
        let bits = coder.direct(((magnitude >> rest) & ((1 << take) - 1)) as u32, take)?;
        value = (value << take) | u64::from(bits);
    }
    let value = value as i64;
    Ok(Symbol::Value(if negative { -value } else { value }))
}

/// Codes a raw 64-bit word at probability one half (an escaped value's bits).
pub fn code_raw64<C: BitCoder>(coder: &mut C, word: u64) -> Result<u64> {
    let hi = coder.direct((word >> 32) as u32, 32)?;
    let lo = coder.direct(word as u32, 32)?;
    Ok((u64::from(hi) << 32) | u64::from(lo))
}
