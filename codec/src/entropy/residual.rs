//! What every residual coder implements: one value in, one value out, in either direction.

use crate::entropy::intcode::{code_raw64, code_symbol, IntModel, Symbol};
use crate::entropy::range::BitCoder;
use crate::error::{Error, Result};

/// One value as coded: its residual from the prediction, or its raw bits (escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coded {
    /// Grid index minus prediction.
    Residual(i64),
    /// The value's own `f64` bits: it is off the grid or would miss the bound there.
    Raw(u64),
}

/// The entropy coding of residuals, in either direction: the encoder codes `value` and
/// returns it, the decoder ignores it and returns what it reads. Implemented by every
/// adaptive `BitCoder` (over `models`, one per context) and by the tabled coder
/// (`entropy/tabled.rs`, which ignores `models`).
pub trait ResidualCoder {
    /// True for encoders, false for decoders (see [`BitCoder::ENCODER`]).
    const ENCODER: bool;
    /// Codes one value in context `context`.
    fn residual(&mut self, models: &mut [IntModel], context: usize, value: Coded) -> Result<Coded>;
}

impl<C: BitCoder> ResidualCoder for C {
    const ENCODER: bool = C::ENCODER;

    #[inline(always)]
    fn residual(&mut self, models: &mut [IntModel], context: usize, value: Coded) -> Result<Coded> {
        let model = models.get_mut(context).ok_or(Error::Invalid("context"))?;
        let (wanted, raw) = match value {
            Coded::Residual(r) => (Symbol::Value(r), 0),
            Coded::Raw(bits) => (Symbol::Escape, bits),
        };
        Ok(match code_symbol(self, model, wanted)? {
            Symbol::Value(r) => Coded::Residual(r),
            Symbol::Escape => Coded::Raw(code_raw64(self, raw)?),
        })
    }
}
