//! Bit packing of latent codes: LSB-first, no padding between codes.

use crate::error::{Error, Result};

/// Writes values of 1..=16 bits into a byte slice, least significant bit first.
#[derive(Debug)]
pub struct BitWriter<'a> {
    out: &'a mut [u8],
    bit: usize,
}

impl<'a> BitWriter<'a> {
    /// Starts writing at the beginning of `out`; bytes are zeroed as they are reached.
    pub fn new(out: &'a mut [u8]) -> Self {
        BitWriter { out, bit: 0 }
    }

    /// Resumes writing at bit `bit` of `out` (bits before it are kept).
    pub fn resume(out: &'a mut [u8], bit: usize) -> Self {
        BitWriter { out, bit }
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bit
    }

    /// Appends the low `bits` bits (1..=16) of `value`.
    pub fn write(&mut self, value: u16, bits: u8) -> Result<()> {
        if !(1..=16).contains(&bits) {
            return Err(Error::InvalidCodeBits(bits));
        }
        let bits = usize::from(bits);
        let end = self.bit + bits;
        let needed = end.div_ceil(8);
        if needed > self.out.len() {
            return Err(Error::BufferTooSmall { needed });
        }
        let mut v = u32::from(value) & ((1u32 << bits) - 1);
        let mut at = self.bit;
        while at < end {
            let (byte, offset) = (at / 8, at % 8);
            if offset == 0 {
                self.out[byte] = 0;
            }
            let take = (8 - offset).min(end - at);
            self.out[byte] |= ((v & ((1 << take) - 1)) << offset) as u8;
            v >>= take;
            at += take;
        }
        self.bit = end;
        Ok(())
    }

    /// Bytes written so far (a partial last byte counts).
    pub fn byte_len(&self) -> usize {
        self.bit.div_ceil(8)
    }
}

/// Reads values written by [`BitWriter`].
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, bit: 0 }
    }

    /// Reads the next `bits` bits (1..=16).
    pub fn read(&mut self, bits: u8) -> Result<u16> {
        if !(1..=16).contains(&bits) {
            return Err(Error::InvalidCodeBits(bits));
        }
        let bits = usize::from(bits);
        let end = self.bit + bits;
        if end > self.data.len() * 8 {
            return Err(Error::Truncated);
        }
        let mut v = 0u32;
        let mut at = self.bit;
        let mut filled = 0;
        while at < end {
            let (byte, offset) = (at / 8, at % 8);
            let take = (8 - offset).min(end - at);
            let chunk = (u32::from(self.data[byte]) >> offset) & ((1 << take) - 1);
            v |= chunk << filled;
            filled += take;
            at += take;
        }
        self.bit = end;
        Ok(v as u16)
    }
}

/// Packs signed codes of `bits` bits (each within `-2^(bits-1)..2^(bits-1)`) as unsigned
/// offsets `code + 2^(bits-1)`.
pub fn write_codes(writer: &mut BitWriter<'_>, codes: &[i16], bits: u8) -> Result<()> {
    let bias = 1i32 << (bits.clamp(1, 16) - 1);
    for &c in codes {
        writer.write((i32::from(c) + bias) as u16, bits)?;
    }
    Ok(())
}

/// Unpacks codes written by [`write_codes`].
pub fn read_codes(reader: &mut BitReader<'_>, codes: &mut [i16], bits: u8) -> Result<()> {
    let bias = 1i32 << (bits.clamp(1, 16) - 1);
    for c in codes.iter_mut() {
        *c = (i32::from(reader.read(bits)?) - bias) as i16;
    }
    Ok(())
}
