//! Tabled residual coding: a block's residuals as tokens under static per-context frequency
//! tables (rANS), with the low bits of large residuals and escaped values as raw bits.
//!
//! The adaptive binary coder ([`crate::entropy::range`]) spends one serial coding step per binary
//! decision, about five per value at fine bounds. Here each value is one table lookup and one
//! rANS step, and its remaining bits are copied into a separate raw stream. The cost is a
//! second pass (the tables are counted before anything is coded) and the tables themselves:
//! a few hundred bytes per block for a field's 12 contexts, a few kilobytes for a table's
//! four per column, which large tables pay for and small ones may not (the encoder's caller
//! decides).
//!
//! Tokens: 0; then +-1; then, for `2 <= bit length n <= 15`, the length, the bit below the
//! leading one and the sign (four tokens per length), with the `n - 2` bits below those raw;
//! then "long" (a bit length of 16 or more, its raw bits spell the rest); then "escape" (64
//! raw bits of the value itself).

use crate::entropy::intcode::{code_symbol, IntModel, Symbol, MAX_MAGNITUDE_BITS};
use crate::entropy::range::{RangeDecoder, RangeEncoder};
use crate::entropy::residual::{Coded, ResidualCoder};
use crate::error::{Error, Result};

/// Bits of precision of a frequency table: a context's frequencies sum to 2^`TABLE_BITS`.
pub const TABLE_BITS: u32 = 12;
const TOTAL: u32 = 1 << TABLE_BITS;
/// Contexts of a tabled field block: its activity classes.
pub const TABLED_CONTEXTS: usize = 12;
/// Most contexts a tabled block may have: a table's contexts per column times its columns
/// must stay within this (so that a decoder's tables, about 2.7 KB a context, stay bounded).
pub const MAX_TABLED_CONTEXTS: usize = 1024;
/// Longest bit length a token spells out; longer residuals take [`TOKEN_LONG`].
const SHORT_LEN: u32 = 15;
const TOKEN_LONG: usize = 3 + 4 * (SHORT_LEN as usize - 1);
const TOKEN_ESCAPE: usize = TOKEN_LONG + 1;
/// Tokens per context.
pub const ALPHABET: usize = TOKEN_ESCAPE + 1;
/// rANS state lower bound: the state stays in `[RANS_LOW, 2^32)` between symbols.
const RANS_LOW: u32 = 1 << 23;
/// Interleaved rANS states: value `i` of a block uses state `i % STATES`.
const STATES: usize = 4;
/// Bytes of a section length.
const LEN_BYTES: usize = 4;

/// The first token of each bit length up to [`SHORT_LEN`] (0: zero; 1: +-1; then four each).
const FIRST_TOKEN: [u8; SHORT_LEN as usize + 1] = {
    let mut first = [0u8; SHORT_LEN as usize + 1];
    let mut n = 1;
    while n <= SHORT_LEN as usize {
        first[n] = if n == 1 { 1 } else { (3 + 4 * (n - 2)) as u8 };
        n += 1;
    }
    first
};

/// What the decoder needs of each token below [`TOKEN_LONG`]: the magnitude's bits above the
/// raw ones (the leading one and the bit below it), the number of raw bits, and the sign, as
/// `lead | raw << 16 | negative << 31`. A lookup instead of a `match`: which token comes
/// next is what the branch predictor cannot know.
const SHORT_TOKENS: [u32; TOKEN_LONG] = {
    let mut table = [0u32; TOKEN_LONG];
    table[1] = 1;
    table[2] = 1 | 1 << 31;
    // Laid out as `tokenize` numbers them: per bit length its first token, then the bit
    // below the leading one, then the sign.
    let mut n = 2;
    while n <= SHORT_LEN {
        let below = n - 2;
        let mut code = 0;
        while code < 4 {
            let (half, negative) = (code >> 1, code & 1);
            let lead = 1 << (n - 1) | half << below;
            table[FIRST_TOKEN[n as usize] as usize + code as usize] =
                lead | below << 16 | negative << 31;
            code += 1;
        }
        n += 1;
    }
    table
};

/// A value's token and the raw bits that complete it (bits, count). Branch-free for the
/// short lengths: which one comes next is what the coder cannot predict.
#[inline(always)]
fn tokenize(value: Coded) -> Result<(usize, u64, u32)> {
    let r = match value {
        Coded::Residual(r) => r,
        Coded::Raw(_) => return Ok((TOKEN_ESCAPE, 0, 0)),
    };
    let u = r.unsigned_abs();
    let negative = u64::from(r < 0);
    let n = 64 - u.leading_zeros();
    if let Some(&first) = FIRST_TOKEN.get(n as usize) {
        // Below the leading one: the next bit picks the token's half, the rest are raw.
        let below = n.saturating_sub(2);
        let half = (u >> below) & u64::from(n >= 2);
        let token = u64::from(first) + 2 * half + (negative & u64::from(n >= 1));
        return Ok((token as usize, u & ((1 << below) - 1), below));
    }
    if n > MAX_MAGNITUDE_BITS {
        return Err(Error::Invalid("integer symbol too large"));
    }
    // Length (6 bits), sign, then the bits below the leading one.
    let bits = u64::from(n) | negative << 6 | (u & ((1 << (n - 1)) - 1)) << 7;
    Ok((TOKEN_LONG, bits, 7 + n - 1))
}

/// Bits appended least significant first to a caller buffer.
#[derive(Debug)]
struct BitWriter<'o> {
    out: &'o mut [u8],
    pos: usize,
    acc: u64,
    filled: u32,
}

impl BitWriter<'_> {
    /// Appends the low `count` (at most 32) bits of `bits`. Whole 32-bit words leave when
    /// they are complete, so each call adds only a shift and an add to the serial chain.
    #[inline(always)]
    fn put(&mut self, bits: u64, count: u32) -> Result<()> {
        self.acc |= (bits & ((1u64 << count) - 1)) << self.filled;
        self.filled += count;
        if self.filled >= 32 {
            let word = self
                .out
                .get_mut(self.pos..self.pos + 4)
                .ok_or(Error::BufferTooSmall {
                    needed: self.pos + 4,
                })?;
            word.copy_from_slice(&(self.acc as u32).to_le_bytes());
            self.pos += 4;
            self.acc >>= 32;
            self.filled -= 32;
        }
        Ok(())
    }

    /// Appends up to 64 bits, as two puts.
    fn put_long(&mut self, bits: u64, count: u32) -> Result<()> {
        let low = count.min(32);
        self.put(bits, low)?;
        self.put(bits >> low, count - low)
    }

    /// Writes the bits left, zero-padded to a whole byte; returns the bytes written.
    fn flush(&mut self) -> Result<usize> {
        let bytes = self.filled.div_ceil(8) as usize;
        let tail = self
            .out
            .get_mut(self.pos..self.pos + bytes)
            .ok_or(Error::BufferTooSmall {
                needed: self.pos + bytes,
            })?;
        tail.copy_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.pos += bytes;
        (self.acc, self.filled) = (0, 0);
        Ok(self.pos)
    }
}

/// Reads what a [`BitWriter`] wrote.
#[derive(Debug)]
struct BitReader<'s> {
    data: &'s [u8],
    pos: usize,
    acc: u64,
    filled: u32,
}

impl BitReader<'_> {
    /// The next `count` (at most 56) bits.
    #[inline(always)]
    fn take(&mut self, count: u32) -> Result<u64> {
        if self.filled < count {
            self.refill(count)?;
        }
        let bits = self.acc & ((1u64 << count) - 1);
        self.acc >>= count;
        self.filled -= count;
        Ok(bits)
    }

    /// Fills the accumulator with at least `count` bits: as many whole bytes as fit, from one
    /// 8-byte read where 8 bytes remain, byte by byte at the end. (The 8-byte read also puts
    /// bits of the next, uncounted byte above `filled`: they are that byte's own bits, which
    /// the next refill ORs in again at the same place.)
    #[inline(always)]
    fn refill(&mut self, count: u32) -> Result<()> {
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            self.acc |= u64::from_le_bytes(bytes) << self.filled;
            let whole = (63 - self.filled) / 8;
            self.pos += whole as usize;
            self.filled += 8 * whole;
            return Ok(());
        }
        while self.filled < count {
            let byte = *self.data.get(self.pos).ok_or(Error::Truncated)?;
            self.acc |= u64::from(byte) << self.filled;
            self.pos += 1;
            self.filled += 8;
        }
        Ok(())
    }

    /// Every byte read, and the padding bits zero.
    fn finished(&self) -> bool {
        self.pos == self.data.len() && self.acc == 0
    }
}

/// A context's normalized frequencies: `TOTAL` in all, at least 1 for every counted token.
fn normalize(counts: &[u32; ALPHABET], freqs: &mut [u16; ALPHABET]) {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    freqs.fill(0);
    if total == 0 {
        return;
    }
    let mut sum = 0u32;
    let mut largest = 0;
    for (t, (&c, f)) in counts.iter().zip(freqs.iter_mut()).enumerate() {
        if c > 0 {
            *f = (u64::from(c) * u64::from(TOTAL) / total).max(1) as u16;
            sum += u32::from(*f);
            if c > counts[largest] {
                largest = t;
            }
        }
    }
    // The largest token absorbs the rounding: it holds at least TOTAL / ALPHABET, far more
    // than the at most ALPHABET forced ones.
    freqs[largest] = (i64::from(freqs[largest]) + i64::from(TOTAL) - i64::from(sum)) as u16;
}

/// Bits of a [`pack`]ed value that hold the token (tokens are below 64).
const TOKEN_BITS: u32 = 6;

/// A value's context and token, packed as the encoder keeps them: context above the low
/// [`TOKEN_BITS`] bits, token in them.
#[inline(always)]
fn pack(context: usize, token: usize) -> u16 {
    (context << TOKEN_BITS | token) as u16
}

/// The context and token of a [`pack`]ed value.
#[inline(always)]
fn unpack(packed: u16) -> (usize, usize) {
    (
        usize::from(packed >> TOKEN_BITS),
        usize::from(packed & ((1 << TOKEN_BITS) - 1)),
    )
}

/// Ways the encoder counts tokens in: value `i` in way `i % WAYS`, so that runs of one token
/// (zeros, mostly) do not wait on their own previous increment.
const WAYS: usize = 4;

/// log2 of the slots a decoder's bucket spans: [`ContextTable::buckets`] names the token of
/// each bucket's first slot, and the decoder scans on from there.
const BUCKET_SHIFT: u32 = 4;
/// Buckets per context.
const BUCKETS: usize = (TOTAL >> BUCKET_SHIFT) as usize;
const BUCKETS_MASK: usize = (1 << BUCKET_SHIFT) - 1;

/// One context's tables, as both sides hold them: the encoder's counts and coding constants,
/// both sides' frequencies, and the decoder's token of each bucket of slots. A block has
/// `crate::bounded::tabled_contexts_of` of them (about 2.7 KB each: a host keeps them on the heap).
///
/// The decoder's part is kept small on purpose: a table's block has four contexts per
/// column, and one token lookup per slot (4 KB a context, 0.5 MB for 31 columns) left the
/// decoder waiting on the cache for a third of its time. A bucket's first token and a short
/// scan over `ranges` touch about 500 bytes a context.
#[derive(Debug, Clone)]
pub struct ContextTable {
    counts: [[u32; ALPHABET]; WAYS],
    freqs: [u16; ALPHABET],
    /// Running sums of `freqs`.
    starts: [u16; ALPHABET],
    symbols: [EncodeSymbol; ALPHABET],
    /// The decoder's view of each token's slots: `start | freq << 16`.
    ranges: [u32; ALPHABET],
    /// The token of each bucket's first slot.
    buckets: [u8; BUCKETS],
}

impl ContextTable {
    /// An empty context.
    pub const EMPTY: ContextTable = ContextTable {
        counts: [[0; ALPHABET]; WAYS],
        freqs: [0; ALPHABET],
        starts: [0; ALPHABET],
        symbols: [EncodeSymbol::ZERO; ALPHABET],
        ranges: [0; ALPHABET],
        buckets: [0; BUCKETS],
    };

    fn set_starts(&mut self) {
        let mut at = 0u16;
        for (&f, s) in self.freqs.iter().zip(self.starts.iter_mut()) {
            *s = at;
            at = at.wrapping_add(f);
        }
    }

    /// Lays out the decoder's `ranges` and `buckets` from the frequencies and their starts
    /// (which sum to at most `TOTAL`: [`read_tables`] checks it first).
    fn set_buckets(&mut self) {
        self.buckets = [0; BUCKETS];
        for (t, ((&f, &s), range)) in self
            .freqs
            .iter()
            .zip(self.starts.iter())
            .zip(self.ranges.iter_mut())
            .enumerate()
        {
            *range = u32::from(s) | u32::from(f) << 16;
            // The buckets whose first slot falls in `s..s + f`.
            let first = (usize::from(s) + BUCKETS_MASK) >> BUCKET_SHIFT;
            let end = (usize::from(s) + usize::from(f) + BUCKETS_MASK) >> BUCKET_SHIFT;
            if let Some(buckets) = self.buckets.get_mut(first..end.min(BUCKETS)) {
                buckets.fill(t as u8);
            }
        }
    }

    /// The token whose slots hold `slot`, with its start and frequency; `None` when no token
    /// does (a context the block does not use).
    #[inline(always)]
    fn token_at(&self, slot: u32) -> Option<(usize, u32, u32)> {
        let mut t = usize::from(*self.buckets.get((slot >> BUCKET_SHIFT) as usize)?);
        // Most slots belong to their bucket's first token: that case stays out of the loop,
        // whose set-up took a dozen instructions per token.
        let (start, freq) = self.range(t)?;
        if slot < start + freq {
            return (slot >= start).then_some((t, start, freq));
        }
        t += 1;
        loop {
            let (start, freq) = self.range(t)?;
            // Tokens are laid out in order: the slot is this token's or a later one's.
            if slot < start + freq {
                return (slot >= start).then_some((t, start, freq));
            }
            t += 1;
        }
    }

    /// Token `t`'s first slot and its number of slots.
    #[inline(always)]
    fn range(&self, t: usize) -> Option<(u32, u32)> {
        let range = *self.ranges.get(t)?;
        Some((range & 0xffff, range >> 16))
    }

    fn used(&self) -> bool {
        self.freqs.iter().any(|&f| f > 0)
    }
}

/// The bytes of the frequency tables in a tabled block's payload (what [`TabledEncoder::finish`]
/// wrote first), or `None` for a payload too short to say.
#[cfg(feature = "alloc")]
pub fn tables_len(payload: &[u8]) -> Option<usize> {
    section(payload).ok().map(|(tables, _)| tables.len())
}

/// The count of a packed value's token in its context.
#[inline(always)]
fn slot_of(tables: &mut [ContextTable], way: usize, packed: u16) -> Result<&mut u32> {
    let (context, token) = unpack(packed);
    tables
        .get_mut(context)
        .and_then(|t| t.counts[way].get_mut(token))
        .ok_or(Error::Invalid("tabled token"))
}

/// Counts tokens per context into `tables` and normalizes them into frequencies.
fn count(tokens: &[u16], tables: &mut [ContextTable]) -> Result<()> {
    for t in tables.iter_mut() {
        t.counts = [[0; ALPHABET]; WAYS];
    }
    let mut chunks = tokens.chunks_exact(WAYS);
    for chunk in &mut chunks {
        for (way, &packed) in chunk.iter().enumerate() {
            *slot_of(tables, way, packed)? += 1;
        }
    }
    for &packed in chunks.remainder() {
        *slot_of(tables, 0, packed)? += 1;
    }
    for t in tables.iter_mut() {
        let [mut total, rest @ ..] = t.counts;
        for other in rest {
            for (a, b) in total.iter_mut().zip(other) {
                *a += b;
            }
        }
        normalize(&total, &mut t.freqs);
        t.set_starts();
    }
    Ok(())
}

/// Writes the frequencies of `tables`, range coded: per context a used flag, then its
/// frequencies.
fn write_frequencies(tables: &mut [ContextTable], out: &mut [u8]) -> Result<usize> {
    let mut coder = RangeEncoder::new(out);
    code_frequencies(&mut coder, tables)?;
    coder.finish()
}

/// Reads frequencies written by [`write_frequencies`] (as many contexts as `tables` has),
/// checks that each used context's frequencies sum to `TOTAL`, and lays out each used
/// context's slots.
fn read_tables(tables: &mut [ContextTable], bytes: &[u8]) -> Result<()> {
    let mut coder = RangeDecoder::new(bytes)?;
    code_frequencies(&mut coder, tables)?;
    if coder.position() != bytes.len() {
        return Err(Error::TrailingBytes);
    }
    for table in tables.iter_mut() {
        table.set_starts();
        table.set_buckets();
    }
    Ok(())
}

fn code_frequencies<C: crate::entropy::range::BitCoder>(
    coder: &mut C,
    tables: &mut [ContextTable],
) -> Result<()> {
    let (mut used_model, mut freq_model) = (IntModel::default(), IntModel::default());
    for table in tables.iter_mut() {
        let used = Symbol::Value(i64::from(table.used()));
        let freqs = &mut table.freqs;
        match code_symbol(coder, &mut used_model, used)? {
            Symbol::Value(0) => freqs.fill(0),
            Symbol::Value(1) => {
                let mut sum = 0u32;
                for f in freqs.iter_mut() {
                    *f = match code_symbol(coder, &mut freq_model, Symbol::Value(i64::from(*f)))? {
                        Symbol::Value(v) if (0..=i64::from(TOTAL)).contains(&v) => v as u16,
                        _ => return Err(Error::Invalid("tabled frequency")),
                    };
                    sum += u32::from(*f);
                }
                if sum != TOTAL {
                    return Err(Error::Invalid("tabled frequencies do not sum to the total"));
                }
            }
            _ => return Err(Error::Invalid("tabled context flag")),
        }
    }
    Ok(())
}

/// One token's rANS encoding constants (division by its frequency as a multiplication).
#[derive(Debug, Clone, Copy, Default)]
struct EncodeSymbol {
    limit: u32,
    reciprocal: u32,
    bias: u32,
    complement: u16,
    shift: u16,
}

impl EncodeSymbol {
    const ZERO: EncodeSymbol = EncodeSymbol {
        limit: 0,
        reciprocal: 0,
        bias: 0,
        complement: 0,
        shift: 0,
    };

    fn new(start: u16, freq: u16) -> Self {
        let (start, freq) = (u32::from(start), u32::from(freq));
        if freq == 0 {
            return EncodeSymbol::default();
        }
        let limit = ((RANS_LOW >> TABLE_BITS) << 8) * freq;
        let complement = (TOTAL - freq) as u16;
        if freq < 2 {
            // x / 1 == x: the reciprocal of all ones with shift 0 gives x - 1, and the bias
            // adds the 1 back (as in ryg's rans_byte).
            EncodeSymbol {
                limit,
                reciprocal: u32::MAX,
                bias: start + TOTAL - 1,
                complement,
                shift: 0,
            }
        } else {
            let mut shift = 0;
            while freq > (1 << shift) {
                shift += 1;
            }
            let reciprocal = (1u64 << (shift + 31)).div_ceil(u64::from(freq));
            EncodeSymbol {
                limit,
                reciprocal: reciprocal as u32,
                bias: start,
                complement,
                shift: (shift - 1) as u16,
            }
        }
    }
}

/// The encoder: collects a block's tokens, counting them per context and writing their raw
/// bits, then codes them in [`TabledEncoder::finish`].
#[derive(Debug)]
pub struct TabledEncoder<'b> {
    /// Per value: its context and token ([`pack`]).
    tokens: &'b mut [u16],
    len: usize,
    raw: BitWriter<'b>,
}

impl<'b> TabledEncoder<'b> {
    /// An encoder for up to `tokens.len()` values, writing raw bits into `raw`.
    pub fn new(tokens: &'b mut [u16], raw: &'b mut [u8]) -> Self {
        TabledEncoder {
            tokens,
            len: 0,
            raw: BitWriter {
                out: raw,
                pos: 0,
                acc: 0,
                filled: 0,
            },
        }
    }

    /// Writes the block payload into `out`: the tables' length and tables, the raw bits'
    /// length and raw bits, then the rANS bytes. Returns its length.
    /// `tables` are its working memory, one per context of the block
    /// (`crate::bounded::tabled_contexts_of`).
    pub fn finish(mut self, tables: &mut [ContextTable], out: &mut [u8]) -> Result<usize> {
        let tokens = self.tokens.get(..self.len).unwrap_or_default();
        count(tokens, tables)?;
        let too_small = |needed| Error::BufferTooSmall { needed };
        let body = out.get_mut(LEN_BYTES..).ok_or(too_small(LEN_BYTES))?;
        let tables_len = write_frequencies(tables, body)?;
        let raw_len = self.raw.flush()?;
        let raw_at = 2 * LEN_BYTES + tables_len;
        let rans_at = raw_at + raw_len;
        let (head, rest) = out.split_at_mut(rans_at.min(out.len()));
        if rans_at > head.len() {
            return Err(too_small(rans_at));
        }
        head[..LEN_BYTES].copy_from_slice(&(tables_len as u32).to_le_bytes());
        head[LEN_BYTES + tables_len..raw_at].copy_from_slice(&(raw_len as u32).to_le_bytes());
        head[raw_at..].copy_from_slice(&self.raw.out[..raw_len]);

        for table in tables.iter_mut() {
            let ContextTable {
                freqs,
                starts,
                symbols,
                ..
            } = table;
            for ((s, &f), &start) in symbols.iter_mut().zip(freqs.iter()).zip(starts.iter()) {
                *s = EncodeSymbol::new(start, f);
            }
        }
        // rANS codes backwards, STATES states taking turns (value i uses state i % STATES, so
        // their serial steps overlap); the bytes fill `rest` from its end.
        let mut end = rest.len();
        let full = too_small(out_len(rans_at, rest.len()));
        let symbol = |packed: u16| {
            let (context, token) = unpack(packed);
            tables
                .get(context)
                .and_then(|t| t.symbols.get(token))
                .ok_or(Error::Invalid("tabled token"))
        };
        let (whole, tail) = tokens.split_at(tokens.len() - tokens.len() % STATES);
        let mut states = [RANS_LOW; STATES];
        for (state, &packed) in states.iter_mut().zip(tail).rev() {
            rans_put(state, symbol(packed)?, rest, &mut end).ok_or(full)?;
        }
        // Locals, not an array indexed by turn: the states stay in registers.
        let [mut s0, mut s1, mut s2, mut s3] = states;
        for four in whole.chunks_exact(STATES).rev() {
            rans_put(&mut s3, symbol(four[3])?, rest, &mut end).ok_or(full)?;
            rans_put(&mut s2, symbol(four[2])?, rest, &mut end).ok_or(full)?;
            rans_put(&mut s1, symbol(four[1])?, rest, &mut end).ok_or(full)?;
            rans_put(&mut s0, symbol(four[0])?, rest, &mut end).ok_or(full)?;
        }
        // The last state first, so the decoder reads state 0 first.
        for state in [s3, s2, s1, s0] {
            for byte in state.to_le_bytes().iter().rev() {
                end = end.checked_sub(1).ok_or(full)?;
                rest[end] = *byte;
            }
        }
        let rans_len = rest.len() - end;
        rest.copy_within(end.., 0);
        Ok(rans_at + rans_len)
    }
}

/// Codes one token into `state`, its bytes leaving into `out` below `end`; `None` when `out`
/// is full.
#[inline(always)]
fn rans_put(state: &mut u32, s: &EncodeSymbol, out: &mut [u8], end: &mut usize) -> Option<()> {
    // At most two bytes leave (the state is below 2^31, a limit at least 2^19). The first
    // step is branch-free (store the byte, keep it only if it must leave); a second byte
    // leaves only for tokens rarer than 1/16, a well-predicted branch off the serial chain.
    let leave = *state >= s.limit;
    let slot = end.checked_sub(1)?;
    *out.get_mut(slot)? = *state as u8;
    *end -= usize::from(leave);
    *state >>= 8 * u32::from(leave);
    if *state >= s.limit {
        *end = end.checked_sub(1)?;
        *out.get_mut(*end)? = *state as u8;
        *state >>= 8;
    }
    let q = ((u64::from(*state) * u64::from(s.reciprocal)) >> 32) as u32 >> s.shift;
    *state = state
        .wrapping_add(s.bias)
        .wrapping_add(q.wrapping_mul(u32::from(s.complement)));
    Some(())
}

fn out_len(front: usize, rest: usize) -> usize {
    // Only reached when the buffer is full: ask for twice as much.
    2 * (front + rest) + 16
}

impl ResidualCoder for TabledEncoder<'_> {
    const ENCODER: bool = true;

    #[inline(always)]
    fn residual(
        &mut self,
        _models: &mut [IntModel],
        context: usize,
        value: Coded,
    ) -> Result<Coded> {
        let (token, bits, count) = tokenize(value)?;
        if context >= MAX_TABLED_CONTEXTS {
            return Err(Error::Invalid("tabled context"));
        }
        let slot = self.tokens.get_mut(self.len).ok_or(Error::BufferTooSmall {
            needed: self.len + 1,
        })?;
        *slot = pack(context, token);
        self.len += 1;
        match value {
            Coded::Raw(word) => {
                self.raw.put(word >> 32, 32)?;
                self.raw.put(word & 0xFFFF_FFFF, 32)?;
            }
            // Long residuals carry up to 50 raw bits.
            _ if count > 32 => self.raw.put_long(bits, count)?,
            // Also when there are no bits: a branch here would be mispredicted.
            _ => self.raw.put(bits, count)?,
        }
        Ok(value)
    }
}

/// The decoder of a block [`TabledEncoder::finish`] wrote.
#[derive(Debug)]
pub struct TabledDecoder<'s, 't> {
    tables: &'t [ContextTable],
    raw: BitReader<'s>,
    rans: &'s [u8],
    pos: usize,
    /// The interleaved states; `turn` is whose the next value is.
    states: [u32; STATES],
    turn: usize,
}

impl<'s, 't> TabledDecoder<'s, 't> {
    /// Reads the tables of `payload` into `tables` (one per context of the block,
    /// `crate::bounded::tabled_contexts_of`) and starts decoding.
    pub fn new(payload: &'s [u8], tables: &'t mut [ContextTable]) -> Result<Self> {
        let (tables_bytes, rest) = section(payload)?;
        let (raw, rans) = section(rest)?;
        read_tables(tables, tables_bytes)?;
        let mut states = [0u32; STATES];
        for (state, bytes) in states.iter_mut().zip(rans.chunks(4)) {
            let bytes: [u8; 4] = bytes.try_into().map_err(|_| Error::Truncated)?;
            *state = u32::from_le_bytes(bytes);
        }
        if states.iter().any(|&s| s < RANS_LOW) {
            return Err(Error::Invalid("tabled coder state"));
        }
        Ok(TabledDecoder {
            tables,
            raw: BitReader {
                data: raw,
                pos: 0,
                acc: 0,
                filled: 0,
            },
            rans,
            pos: 4 * STATES,
            states,
            turn: 0,
        })
    }

    /// Checks that the block ended exactly where its coder did.
    pub fn finish(&self) -> Result<()> {
        let ended = self.states == [RANS_LOW; STATES] && self.pos == self.rans.len();
        if !ended || !self.raw.finished() {
            return Err(Error::TrailingBytes);
        }
        Ok(())
    }

    #[inline(always)]
    fn token(&mut self, context: usize) -> Result<usize> {
        let mask = TOTAL - 1;
        let turn = self.turn;
        self.turn = (turn + 1) % STATES;
        let state = self.states.get(turn).copied().unwrap_or(0);
        let slot = state & mask;
        let table = self
            .tables
            .get(context)
            .ok_or(Error::Invalid("tabled context"))?;
        let (token, start, freq) = table
            .token_at(slot)
            .ok_or(Error::Invalid("tabled context not in the block"))?;
        let mut state = freq * (state >> TABLE_BITS) + (slot - start);
        if state < RANS_LOW {
            // At most two bytes: the state is at least 2^11 here (freq >= 1, and it was at
            // least 2^23), so one byte takes it from 2^15 and two from 2^11 past RANS_LOW.
            // Both read at once, and the count taken without a branch.
            let n = 1 + usize::from(state < RANS_LOW >> 8);
            let bytes = self
                .rans
                .get(self.pos..self.pos + n)
                .ok_or(Error::Truncated)?;
            let next = bytes.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
            state = state << (8 * n) | next;
            self.pos += n;
        }
        if let Some(s) = self.states.get_mut(turn) {
            *s = state;
        }
        Ok(token)
    }
}

/// A section: a u32 length, then that many bytes; returns it and what follows.
fn section(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let len = bytes.get(..LEN_BYTES).ok_or(Error::Truncated)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let rest = &bytes[LEN_BYTES..];
    if len > rest.len() {
        return Err(Error::Truncated);
    }
    Ok(rest.split_at(len))
}

impl ResidualCoder for TabledDecoder<'_, '_> {
    const ENCODER: bool = false;

    #[inline(always)]
    fn residual(
        &mut self,
        _models: &mut [IntModel],
        context: usize,
        _value: Coded,
    ) -> Result<Coded> {
        let token = self.token(context)?;
        // Zero, the most common token by far at coarse bounds, stays a branch of its own.
        if token == 0 {
            return Ok(Coded::Residual(0));
        }
        if let Some(&short) = SHORT_TOKENS.get(token) {
            let below = short >> 16 & 0x7fff;
            let u = i64::from(short & 0xffff) | self.raw.take(below)? as i64;
            // The sign without a branch: -u is (u ^ -1) + 1.
            let negative = -i64::from(short >> 31);
            return Ok(Coded::Residual((u ^ negative) - negative));
        }
        Ok(match token {
            TOKEN_LONG => {
                let head = self.raw.take(7)?;
                let n = (head & 63) as u32;
                if !(SHORT_LEN + 1..=MAX_MAGNITUDE_BITS).contains(&n) {
                    return Err(Error::Invalid("tabled long residual"));
                }
                let u = (1i64 << (n - 1)) | self.raw.take(n - 1)? as i64;
                Coded::Residual(if head >> 6 == 1 { -u } else { u })
            }
            _ => {
                let high = self.raw.take(32)?;
                Coded::Raw(high << 32 | self.raw.take(32)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[(usize, Coded)]) -> std::vec::Vec<u8> {
        let mut tokens = std::vec![0u16; values.len()];
        let mut raw = std::vec![0u8; values.len() * 9 + 8];
        let mut encoder = TabledEncoder::new(&mut tokens, &mut raw);
        for &(context, v) in values {
            encoder.residual(&mut [], context, v).unwrap();
        }
        let mut out = std::vec![0u8; values.len() * 10 + 1024];
        let mut tables = std::vec![ContextTable::EMPTY; TABLED_CONTEXTS];
        let len = encoder.finish(&mut tables, &mut out).unwrap();
        out.truncate(len);
        let mut tables = std::vec![ContextTable::EMPTY; TABLED_CONTEXTS];
        let mut decoder = TabledDecoder::new(&out, &mut tables).unwrap();
        for &(context, v) in values {
            assert_eq!(
                decoder
                    .residual(&mut [], context, Coded::Residual(0))
                    .unwrap(),
                v
            );
        }
        decoder.finish().unwrap();
        out
    }

    #[test]
    fn every_kind_of_token_round_trips() {
        let mut values = std::vec::Vec::new();
        for n in 0..=MAX_MAGNITUDE_BITS {
            for v in [
                (1i64 << n) - 1,
                1i64 << n.saturating_sub(1),
                -(1i64 << n) + 1,
            ] {
                if v.unsigned_abs() >> MAX_MAGNITUDE_BITS == 0 {
                    values.push(((n % 12) as usize, Coded::Residual(v)));
                }
            }
        }
        values.push((3, Coded::Raw(f64::NAN.to_bits())));
        values.push((0, Coded::Raw(u64::MAX)));
        round_trip(&values);
    }

    #[test]
    fn the_short_token_table_spells_what_the_encoder_tokenized() {
        // Every residual a short token can stand for: the table's lead, raw count and sign
        // must rebuild it from the raw bits the encoder wrote.
        for v in -(1i64 << SHORT_LEN) + 1..1i64 << SHORT_LEN {
            let (token, raw, count) = tokenize(Coded::Residual(v)).unwrap();
            let short = SHORT_TOKENS[token];
            assert_eq!(short >> 16 & 0x7fff, count, "raw bits of {v}");
            let u = i64::from(short & 0xffff) | raw as i64;
            let back = if short >> 31 == 1 { -u } else { u };
            assert_eq!(back, v, "token {token}");
        }
    }

    #[test]
    fn the_bit_reader_returns_what_was_written_and_ends_where_it_did() {
        // Fields of every width from 0 to 56 bits: the 8-byte refill, the byte-by-byte
        // refill of the last bytes, and the end check must agree with the writer.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for case in 0..300 {
            let mut fields = std::vec::Vec::new();
            for _ in 0..case % 40 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let count = (state % 57) as u32;
                fields.push((state >> 7 & ((1u64 << count) - 1), count));
            }
            let mut out = std::vec![0u8; 8 * fields.len() + 8];
            let mut writer = BitWriter {
                out: &mut out,
                pos: 0,
                acc: 0,
                filled: 0,
            };
            for &(bits, count) in &fields {
                writer.put_long(bits, count).unwrap();
            }
            let len = writer.flush().unwrap();
            let data = &out[..len];
            let mut reader = BitReader {
                data,
                pos: 0,
                acc: 0,
                filled: 0,
            };
            for &(bits, count) in &fields {
                assert_eq!(reader.take(count).unwrap(), bits, "case {case}");
            }
            assert!(reader.finished(), "case {case}");
            // One bit more than was written is refused once the padding is spent.
            let padding = (8 * len as u32).saturating_sub(fields.iter().map(|f| f.1).sum());
            assert!(reader.take(padding).is_ok() && reader.take(1).is_err());
        }
    }

    #[test]
    fn a_context_table_stays_small() {
        // The decoder's working set: see [`ContextTable`].
        let size = core::mem::size_of::<ContextTable>();
        assert!(size <= 2700, "{size} bytes");
    }

    #[test]
    fn buckets_find_the_token_of_every_slot() {
        // Frequencies of every shape: single tokens, runs of zero frequencies, tokens of one
        // slot, and tokens straddling buckets; each slot's token must be the one whose range
        // holds it, as a table of all 4096 slots would say.
        let mut state = 7u32;
        for case in 0..200 {
            let mut table = ContextTable::EMPTY;
            let mut left = TOTAL;
            for t in 0..ALPHABET {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let f = match (t, case % 4) {
                    _ if t == ALPHABET - 1 => left,
                    (_, 0) if t == case % ALPHABET => left,
                    (_, 0) => 0,
                    (_, 1) => (state >> 20).min(left) & !1,
                    (_, 2) => (state >> 28).min(left),
                    _ => (state >> 31).min(left),
                };
                table.freqs[t] = f as u16;
                left -= f;
            }
            table.set_starts();
            table.set_buckets();
            let mut slot = 0u32;
            for (t, &f) in table.freqs.iter().enumerate() {
                for _ in 0..f {
                    let start = u32::from(table.starts[t]);
                    assert_eq!(
                        table.token_at(slot),
                        Some((t, start, u32::from(f))),
                        "case {case}"
                    );
                    slot += 1;
                }
            }
            assert_eq!(slot, TOTAL);
        }
        // A context the block does not use has no token at any slot.
        let mut unused = ContextTable::EMPTY;
        unused.set_starts();
        unused.set_buckets();
        assert_eq!(unused.token_at(0), None);
        assert_eq!(unused.token_at(TOTAL - 1), None);
    }

    #[test]
    fn skewed_data_costs_near_its_entropy() {
        // 90% zeros, the rest +-1: about 0.57 bits a value.
        let mut state = 1u32;
        let values: std::vec::Vec<_> = (0..100_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let r = match state >> 24 {
                    0..=229 => 0,
                    230..=242 => 1,
                    _ => -1,
                };
                (0, Coded::Residual(r))
            })
            .collect();
        let bytes = round_trip(&values).len();
        assert!(bytes < 100_000 * 60 / 800, "{bytes} bytes");
    }

    #[test]
    fn too_large_residuals_are_refused() {
        let mut tokens = [0u16; 1];
        let mut raw = [0u8; 16];
        let mut encoder = TabledEncoder::new(&mut tokens, &mut raw);
        let huge = Coded::Residual(1 << MAX_MAGNITUDE_BITS);
        assert_eq!(
            encoder.residual(&mut [], 0, huge),
            Err(Error::Invalid("integer symbol too large"))
        );
    }
}
