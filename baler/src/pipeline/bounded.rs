//! The error-bounded compress and decompress drivers: every value comes back within the
//! bound. Two passes over the input (column ranges, then coding) keep memory bounded; blocks
//! are coded in parallel. Files and in-memory arrays come through the same functions (see
//! [`crate::rows`]).

use crate::blocks::{checked_row_len, decode_batches, next_bounded_block, MAX_ROW_VALUES};
use crate::data::Header;
use crate::fit::{interpolation, learned, relations};
use crate::pipeline::columns::{resolve, ColumnKey};
use crate::rows::{Folded, RowInput, RowOutput, SeriesRows, Truncated};
use crate::tiles::{tiling_for, Tiling};
use crate::Error;
use baler_codec::bounded::interpolate::{ACTIVITY_CLASSES, AXIS_ORDERS};
use baler_codec::bounded::{
    grid_index, params_len, params_len_for, tabled_applies, write_params, BoundParams,
    BoundedDecoder, CoderChoice, ColumnGrid, InterpolationPlan, Layout, Predictor, RowModel,
    ScratchBuf, ScratchSizes, MAX_GRID_INDEX,
};
use baler_codec::stream::{
    checked_block, read_shape, write_block, write_shape, BlockKind, BLOCK_HEADER_LEN,
    BLOCK_TRAILER_LEN, FLAG_ERROR_BOUNDED, MAX_ARRAY_RANK, MAX_DATA_RANK, STREAM_HEADER_LEN,
};
use baler_codec::{DType, HostModel, StreamHeader};
use rayon::prelude::*;
use std::io::{Read, Seek, SeekFrom, Write};

/// Values per block: large enough for the adaptive contexts to learn, small enough to keep
/// memory bounded and the cores busy.
const VALUES_PER_BLOCK: usize = 1 << 20;
/// Blocks coded in parallel per batch.
const BATCH_BLOCKS: usize = 4;
/// Rows kept from the first pass to choose context columns and the predictor...
const SAMPLE_ROWS: usize = 4096;
/// ...but no more values than a block, in whole rows (at least three, which the learned field
/// predictor needs): wide rows (fields) must not make the sample, and memory, grow with the
/// frame size times 4096.
const SAMPLE_VALUES: usize = VALUES_PER_BLOCK;

/// The error bound a user asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Every value within this absolute error.
    Absolute(f64),
    /// Within this fraction of each column's range (tables) or of the whole array's (fields).
    Relative(f64),
    /// Every value `x` within this fraction of itself, `R |x|` (0 < R < 1): zeros stay exactly
    /// zero and no sign flips. Float data; integer columns are kept exactly unless a
    /// per-column bound names them.
    Pointwise(f64),
    /// Every value exactly (integers, and floats on a power-of-two grid, as integers on their
    /// grid, with -0.0 coming back as 0.0; other floats are stored raw).
    Lossless,
}

impl Bound {
    /// The pointwise bound of rounding to `bits` mantissa bits, as NanoAOD stores collider
    /// data: `2^-(bits + 1)` (1 to 30 bits).
    pub fn mantissa_bits(bits: u32) -> Result<Bound, Error> {
        if !(1..=30).contains(&bits) {
            return Err(Error::Options(format!(
                "mantissa bits must be 1 to 30, not {bits}"
            )));
        }
        Ok(Bound::Pointwise(0.5f64.powi(bits as i32 + 1)))
    }

    /// Refuses a bound that cannot be kept (not positive, or a pointwise one outside (0, 1)).
    pub fn check(&self) -> Result<(), Error> {
        match *self {
            Bound::Absolute(v) | Bound::Relative(v) if !(v.is_finite() && v > 0.0) => {
                Err(Error::Options(format!(
                    "the error bound must be a positive number, not {v}"
                )))
            }
            Bound::Pointwise(r) if baler_codec::bounded::pointwise::per_binade_for(r).is_none() => {
                Err(Error::Options(format!(
                    "a pointwise bound must lie between 5e-10 and 1 (exclusive), not {r}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The bound of each column: a default, and bounds for particular columns (tables).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds<'b> {
    /// The bound of every column not named in `columns` (and of fields and series).
    pub default: Bound,
    /// Bounds of particular columns (see [`crate::pipeline::columns`]).
    pub columns: &'b [(ColumnKey, Bound)],
}

impl Bounds<'_> {
    /// One bound for everything.
    pub fn uniform(bound: Bound) -> Bounds<'static> {
        Bounds {
            default: bound,
            columns: &[],
        }
    }
}

/// Whether error-bounded compression uses the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UseModel {
    /// When it makes the stream plus the model smaller (judged on a sample of rows); for
    /// fields this also weighs the learned predictor and multilevel interpolation.
    #[default]
    Auto,
    /// Always (to measure what it does).
    Always,
    /// Never: the model-free path.
    Never,
}

/// The predictor compress chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// None (fields: 3-D Lorenzo): the model-free path.
    ModelFree,
    /// The linear field predictor learned from the data; its weights take this many bytes of
    /// the stream.
    Learned(usize),
    /// The linear field predictor over each frame's own neighbours, learned from the data
    /// (frames that are layers rather than steps in time); its weights take this many bytes.
    LearnedInFrame(usize),
    /// Tables: this many columns predicted from earlier columns of their row.
    Relations(usize),
    /// Fields: multilevel interpolation over each block's frames.
    Interpolated,
    /// The autoencoder given with `--model`.
    Model,
}

/// What one compress run produced, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Raw size of the input (its element type times its values).
    pub raw_bytes: usize,
    /// Size of the stream.
    pub stream_bytes: usize,
    /// Size of the model blob (0 unless the autoencoder was used).
    pub model_bytes: usize,
    /// The predictor the stream uses.
    pub predictor: Chosen,
    /// Each candidate predictor with its estimated total bytes (stream plus model), from
    /// coding a sample; empty when there was no choice to make.
    pub estimates: Vec<(&'static str, f64)>,
    /// Largest |error| / bound over all values (at most 1).
    pub worst_fraction_of_bound: f64,
}

/// Column statistics from the first pass.
struct Stats {
    min: Vec<f64>,
    max: Vec<f64>,
    /// Smallest non-zero magnitude (a pointwise grid's base).
    min_abs: Vec<f64>,
    /// The binary exponent of the finest bit any non-zero value uses: every value is a
    /// multiple of 2^quantum (`i32::MAX` when the column has no non-zero value).
    quantum: Vec<i32>,
    /// Whether the column holds a -0.0: a pointwise bound keeps its sign, which the exact
    /// integer grid does not (it gives 0.0 back).
    negative_zero: Vec<bool>,
    rows: usize,
    sample: Vec<f64>,
}

/// One grid's running statistics, as [`Stats`] holds them per grid.
struct Running {
    min: f64,
    max: f64,
    min_abs: f64,
    quantum: i32,
    negative_zero: bool,
}

impl Running {
    /// Counts `x` without a branch: non-finite values and zeros are masked out (the first
    /// pass was 8% of compressing a field and 10% of a table with a branch per case).
    #[inline(always)]
    fn count(&mut self, x: f64) {
        let finite = x.is_finite();
        let counted = if finite { x } else { f64::NAN };
        // `f64::min` and `max` ignore a NaN operand.
        self.min = self.min.min(counted);
        self.max = self.max.max(counted);
        let nonzero = finite && x != 0.0;
        self.min_abs = self
            .min_abs
            .min(if nonzero { x.abs() } else { f64::INFINITY });
        self.quantum = self.quantum.min(if nonzero {
            trailing_exponent_unchecked(x)
        } else {
            i32::MAX
        });
        self.negative_zero |= x.to_bits() == (-0.0f64).to_bits();
    }
}

impl Stats {
    /// Statistics of `grids` grids before any value.
    fn empty(grids: usize) -> Stats {
        Stats {
            min: vec![f64::INFINITY; grids],
            max: vec![f64::NEG_INFINITY; grids],
            min_abs: vec![f64::INFINITY; grids],
            quantum: vec![i32::MAX; grids],
            negative_zero: vec![false; grids],
            rows: 0,
            sample: Vec::new(),
        }
    }

    fn running(&self, c: usize) -> Running {
        Running {
            min: self.min[c],
            max: self.max[c],
            min_abs: self.min_abs[c],
            quantum: self.quantum[c],
            negative_zero: self.negative_zero[c],
        }
    }

    fn set(&mut self, c: usize, r: Running) {
        (self.min[c], self.max[c]) = (r.min, r.max);
        (self.min_abs[c], self.quantum[c]) = (r.min_abs, r.quantum);
        self.negative_zero[c] = r.negative_zero;
    }

    /// Counts the rows of `chunk` (`n` values each, one grid per column).
    fn add_rows(&mut self, chunk: &[f64], n: usize) {
        let mut columns: Vec<Running> = (0..n).map(|c| self.running(c)).collect();
        for row in chunk.chunks(n) {
            for (&x, column) in row.iter().zip(&mut columns) {
                column.count(x);
            }
        }
        for (c, column) in columns.into_iter().enumerate() {
            self.set(c, column);
        }
    }

    /// Counts every value of `values` as grid `c`'s (the statistics stay in registers).
    fn add_all(&mut self, c: usize, values: &[f64]) {
        let mut running = self.running(c);
        for &x in values {
            running.count(x);
        }
        self.set(c, running);
    }

    /// Whether every finite value of grid `c` is a whole number: all below 1e15 and multiples
    /// of 2^0, which the range and the quantum say (a conversion per value was a third of the
    /// first pass). True for a grid without finite values.
    fn integer(&self, c: usize) -> bool {
        let (min, max) = (self.min[c], self.max[c]);
        // (Neither is ever NaN: `f64::min` and `max` ignore it.)
        min > max || (min.abs().max(max.abs()) < 1e15 && self.quantum[c] >= 0)
    }
}

/// The binary exponent of `x`'s lowest set bit (`x` is an odd multiple of 2^result), without
/// branches, for finite non-zero `x` (other values give a number to be masked out).
#[inline(always)]
fn trailing_exponent_unchecked(x: f64) -> i32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let normal = exponent != 0;
    let mantissa = (bits & ((1 << 52) - 1)) | u64::from(normal) << 52;
    let scale = if normal { exponent - 1075 } else { -1074 };
    scale + mantissa.trailing_zeros() as i32
}

/// Opens the input for one pass over its rows, in chunks of about the given number of values.
/// Compress reads its input twice (statistics, then coding), so it takes an opener.
pub type Opener<'o> = dyn Fn(usize) -> Result<Box<dyn RowInput + 'o>, Error> + 'o;

/// Opens a pass over the input as the drivers code it: a 1-D series regrouped into frames,
/// ranks above 4 folded to 3. `field`: a 2-D input is coded as one field of rows
/// (`[rows, 1, columns]`: each row a frame of height 1, predicted from the rows above), not as
/// a table of columns. Returns the input's own header too.
fn open_coded<'o>(
    open: &Opener<'o>,
    values_per_chunk: usize,
    field: bool,
) -> Result<(Header, Box<dyn RowInput + 'o>), Error> {
    let source = open(values_per_chunk)?;
    let original = source.header().clone();
    let coded: Box<dyn RowInput + 'o> = match original.shape.len() {
        1 => Box::new(SeriesRows::new(source)),
        2 if field => {
            let shape = vec![original.shape[0], 1, original.shape[1]];
            Box::new(Folded::with_shape(source, shape))
        }
        2..=MAX_DATA_RANK => source,
        _ => Box::new(Folded::new(source)),
    };
    Ok((original, coded))
}

/// Reads the whole input once for per-grid statistics (one grid per table column, one for a
/// field) and a sample of rows. Returns the input's own header and that of the rows as coded.
fn first_pass(open: &Opener<'_>, field: bool) -> Result<(Header, Header, Stats), Error> {
    let (original, mut source) = open_coded(open, VALUES_PER_BLOCK, field)?;
    if original.shape.len() > MAX_ARRAY_RANK {
        return Err(Error::input(format!(
            "arrays of rank 1 to {MAX_ARRAY_RANK} are supported, not {}",
            original.shape.len()
        )));
    }
    let header = source.header().clone();
    let n = header.row_len();
    let columns = match layout_of(&header.shape) {
        Layout::Table => n,
        Layout::Field { .. } => 1,
    };
    let mut s = Stats::empty(columns);
    while let Some(chunk) = source.next_chunk_f64()? {
        // Chunks hold whole rows; a field has one grid, a table one per column (counted, not
        // divided: a division per value was most of this pass).
        if columns == 1 {
            s.add_all(0, &chunk);
        } else {
            s.add_rows(&chunk, n);
        }
        let sample_len = (SAMPLE_VALUES / n).clamp(3, SAMPLE_ROWS) * n;
        if s.sample.len() < sample_len {
            let take = (sample_len - s.sample.len()).min(chunk.len());
            s.sample.extend_from_slice(&chunk[..take]);
        }
        s.rows += chunk.len() / n;
        source.recycle(chunk);
    }
    // No rows is fine: the stream holds the shape and parameters and no residual block.
    Ok((original, header, s))
}

/// The power of two every value of column `c` is a multiple of, when the column lives on such
/// a grid coarse enough to code on (its largest value within [`MAX_GRID_INDEX`] steps): data
/// quantized at the source (ADC counts scaled by 2^-k, fields packed with binary scale
/// factors, values stored at reduced precision).
fn dyadic_quantum(stats: &Stats, c: usize) -> Option<f64> {
    let t = stats.quantum[c];
    if !(-1022..=1000).contains(&t) {
        return None;
    }
    let q = f64::from_bits(((t + 1023) as u64) << 52);
    let max_abs = stats.min[c].abs().max(stats.max[c].abs());
    (max_abs / q <= MAX_GRID_INDEX as f64).then_some(q)
}

/// The grid of each column (`bounds`: its bound, and whether a per-column specification named
/// it). Absolute and relative bounds: step 2 x bound, or 1 for integer columns when that is
/// finer than needed anyway (exact), or never finer than the power-of-two grid float data
/// already lies on ([`dyadic_quantum`]); anchored at 0 so zeros (absent objects) stay exact.
/// Pointwise: a pointwise grid, but integer columns the default reaches stay exact (unless
/// they hold a -0.0, whose sign the pointwise grid keeps and the integer grid does not).
fn grids(stats: &Stats, bounds: &[(Bound, bool)], dtype: DType) -> Result<Vec<ColumnGrid>, Error> {
    let integer_type = matches!(dtype, DType::I16 | DType::I32);
    (0..stats.min.len())
        .map(|c| {
            let (bound, named) = bounds[c];
            let integer = integer_type || stats.integer(c);
            let bound = match bound {
                // (A -0.0 keeps its sign only on the pointwise grid.)
                Bound::Pointwise(_) if integer && !named && !stats.negative_zero[c] => {
                    Bound::Lossless
                }
                Bound::Pointwise(_) if integer_type => {
                    return Err(Error::Options(format!(
                        "column {c}: a pointwise bound is for float data, not {dtype:?}"
                    )))
                }
                other => other,
            };
            match bound {
                Bound::Pointwise(r) => {
                    return ColumnGrid::pointwise(r, stats.min_abs[c]).ok_or_else(|| {
                        Error::Options(format!("a pointwise bound of {r} cannot be kept"))
                    })
                }
                // Integers exactly on a grid of step 1; other values all escaped (raw).
                Bound::Lossless if integer => return Ok(ColumnGrid::linear(0.0, 1.0, 0.0)),
                // Floats on a power-of-two grid: exactly, as integers on it.
                Bound::Lossless => {
                    let step = dyadic_quantum(stats, c).unwrap_or(f64::MIN_POSITIVE);
                    return Ok(ColumnGrid::linear(0.0, step, 0.0));
                }
                _ => {}
            }
            let (lo, hi) = (stats.min[c], stats.max[c]);
            let range = if hi >= lo { hi - lo } else { 0.0 };
            // r x range without overflow when the range itself exceeds f64 (-1e308..1e308),
            // and no bound or step beyond f64's largest value: the codec needs them finite.
            let eps = match bound {
                Bound::Relative(r) if range.is_finite() => r * range,
                Bound::Relative(r) => r * hi - r * lo,
                Bound::Absolute(e) => e,
                Bound::Pointwise(_) | Bound::Lossless => 0.0,
            }
            .min(f64::MAX);
            let mut step = (2.0 * eps).clamp(f64::MIN_POSITIVE, f64::MAX);
            let mut offset = 0.0;
            if range == 0.0 && lo.is_finite() {
                offset = lo; // a constant column is all zeros on its grid
            }
            if integer_type || stats.integer(c) {
                step = (2.0 * eps).floor().clamp(1.0, f64::MAX);
                offset = offset.round();
            } else if let Some(q) = dyadic_quantum(stats, c) {
                // Never finer than the data's own grid: a step below it only spends bits on
                // codes no value uses (the values come back exactly). Just above it, a whole
                // number of its steps: a step of, say, 1.3 of them maps neighbouring values
                // unevenly onto codes, which costs more than the finer step (measured: 1.2x
                // smaller streams on a climate field stored on a 2^-12 grid at 1e-6 x range).
                // From 4 steps up the bound's own step wins (it is coarser by up to 1/4).
                let steps = (2.0 * eps / q).floor();
                if steps < 4.0 {
                    step = steps.max(1.0) * q;
                }
            }
            Ok(ColumnGrid::linear(offset, step, eps))
        })
        .collect()
}

fn class(k: i64, cap: usize) -> usize {
    ((64 - k.unsigned_abs().leading_zeros()) as usize).min(cap)
}

fn entropy(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total as f64;
            -(n as f64) * p.log2()
        })
        .sum()
}

/// For each column, the earlier column whose magnitude class tells most about this column's
/// magnitude (conditional entropy on a sample), if any helps.
fn choose_contexts(sample: &[f64], grids: &mut [ColumnGrid]) {
    let n = grids.len();
    let rows = sample.len() / n;
    let k = |r: usize, c: usize| {
        let g = &grids[c];
        grid_index(sample[r * n + c], g).unwrap_or(0)
    };
    let classes: Vec<Vec<usize>> = (0..n)
        .map(|c| (0..rows).map(|r| class(k(r, c), 15)).collect())
        .collect();
    for c in 1..n {
        let mut alone = [0usize; 16];
        classes[c].iter().for_each(|&v| alone[v] += 1);
        let mut best = (entropy(&alone) * 0.97, None);
        for j in 0..c {
            let mut joint = [[0usize; 16]; 4];
            for r in 0..rows {
                joint[classes[j][r].min(3)][classes[c][r]] += 1;
            }
            let h: f64 = joint.iter().map(|row| entropy(row)).sum();
            if h < best.0 {
                best = (h, Some(j as u32));
            }
        }
        grids[c].context = best.1;
    }
}

/// A model seen row by row: the row itself (tables) or its tiles (fields).
struct ModelRows<'m> {
    model: &'m HostModel<'m>,
    tiling: Option<Tiling>,
}

impl ModelRows<'_> {
    fn tiles(&self) -> usize {
        self.tiling.map_or(1, |t| {
            let (gy, gx) = t.grid();
            gy * gx
        })
    }
}

impl RowModel for ModelRows<'_> {
    fn row_codes(&self) -> usize {
        self.tiles() * self.model.latent_len()
    }

    fn code_limits(&self) -> (i32, i32) {
        self.model.code_range()
    }

    fn encode_row(&self, row: &[f64], codes: &mut [i16]) -> Result<(), baler_codec::Error> {
        let frame: Vec<f32> = row
            .iter()
            .map(|&v| Some(v as f32).filter(|f| f.is_finite()).unwrap_or(0.0))
            .collect();
        let tiles = match self.tiling {
            Some(t) => t.split(&frame),
            None => frame,
        };
        let z = self.model.latent_len();
        for (tile, out) in tiles
            .chunks_exact(self.model.input_len())
            .zip(codes.chunks_exact_mut(z))
        {
            self.model.encode_frame(tile, out)?;
        }
        Ok(())
    }

    fn decode_row(&self, codes: &[i16], out: &mut [f32]) -> Result<(), baler_codec::Error> {
        let z = self.model.latent_len();
        let mut tiles = vec![0f32; self.tiles() * self.model.output_len()];
        for (c, tile) in codes
            .chunks_exact(z)
            .zip(tiles.chunks_exact_mut(self.model.output_len()))
        {
            self.model.decode_frame(c, tile)?;
        }
        match self.tiling {
            Some(t) => out.copy_from_slice(&t.join(&tiles)),
            None => out.copy_from_slice(&tiles),
        }
        Ok(())
    }
}

/// A sealed block and the rows it decodes to.
type CodedBlock = (Vec<u8>, Vec<f64>);

/// The encoder's check, repeated on a block's `decoded` rows (of `n` values, one grid per
/// column or one for all): every value within its bound, or exact. Returns the largest
/// |error| / bound. Columns are counted, not divided, and the division runs only when the
/// largest fraction may grow: this pass runs over every value.
fn checked_worst(
    input: &[f64],
    decoded: &[f64],
    grid: &[ColumnGrid],
    n: usize,
) -> Result<f64, Error> {
    // Linear grids (a field's one, a table's one per column): one branch-free pass, the
    // largest error per grid over its bound; the value by value loop below only when a value
    // is out of bounds, to name it.
    let linear = grid.iter().all(|g| g.per_binade == 0 && g.bound > 0.0);
    if linear && (grid.len() == 1 || grid.len() == n) {
        let mut largest = vec![0f64; grid.len()];
        let mut bad = false;
        let mut check = |x: f64, y: f64, g: &ColumnGrid, largest: &mut f64| {
            let e = (x - y).abs();
            let exact = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
            bad |= !(exact || e <= g.bound);
            *largest = largest.max(if x.is_finite() { e } else { 0.0 });
        };
        if let ([g], [one]) = (grid, largest.as_mut_slice()) {
            for (&x, &y) in input.iter().zip(decoded) {
                check(x, y, g, one);
            }
        } else {
            for (row, back) in input.chunks(n).zip(decoded.chunks(n)) {
                for (((&x, &y), g), largest) in row.iter().zip(back).zip(grid).zip(&mut largest) {
                    check(x, y, g, largest);
                }
            }
        }
        if !bad {
            let ratios = largest.iter().zip(grid).map(|(e, g)| e / g.bound);
            return Ok(ratios.fold(0.0, f64::max));
        }
    }
    let mut worst = 0f64;
    for (row, back) in input.chunks(n).zip(decoded.chunks(n)) {
        for (j, (&x, &y)) in row.iter().zip(back).enumerate() {
            let g = &grid[if grid.len() == 1 { 0 } else { j }];
            let e = (x - y).abs();
            let allowed = g.allowed(x);
            if x.is_finite() && allowed > 0.0 && e > worst * allowed {
                worst = worst.max(e / allowed);
            }
            let exact = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
            if !(exact || g.keeps(x, y)) {
                return Err(Error::BoundViolated {
                    value: x,
                    decoded: y,
                    bound: allowed,
                });
            }
        }
    }
    Ok(worst)
}

/// Buffers given back for the next block to fill again.
struct Spares<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Spares(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T: Default> Spares<T> {
    /// One given back before, or a new, empty one.
    fn take(&self) -> T {
        let spare = self.0.lock().ok().and_then(|mut spares| spares.pop());
        spare.unwrap_or_default()
    }

    /// Gives `spare` back.
    fn give(&self, spare: T) {
        if let Ok(mut spares) = self.0.lock() {
            spares.push(spare);
        }
    }
}

/// Working memory passed on from block to block: a worker takes one, fits it to its block and
/// gives it back. A fresh one per block (about 8 MB of grid indices for an interpolated
/// field, the decoded values as much again) cost its zeroing or its page faults anew, 4-5%
/// of decompressing a field.
#[derive(Default)]
struct ScratchPool {
    scratch: Spares<ScratchBuf>,
    /// Blocks of values: the encoder's decoded rows, the decoder's output.
    values: Spares<Vec<f64>>,
}

impl ScratchPool {
    /// Memory of `sizes`, a spare one refitted where there is one.
    fn take(&self, sizes: ScratchSizes) -> ScratchBuf {
        let mut scratch = self.scratch.take();
        scratch.fit(sizes);
        scratch
    }

    /// Gives `scratch` back for the next block.
    fn give(&self, scratch: ScratchBuf) {
        self.scratch.give(scratch);
    }
}

/// Encodes one block of rows as a sealed block in memory from `pool`; returns it and the
/// decoded rows (in `decoded`, which the encoder fills whole).
fn encode_rows(
    params: &BoundParams<'_>,
    model: Option<&ModelRows<'_>>,
    coder: CoderChoice,
    input: &[f64],
    (pool, mut decoded): (&ScratchPool, Vec<f64>),
) -> Result<CodedBlock, baler_codec::Error> {
    let rows = input.len() / params.row_len;
    let codes = model.map_or(0, |m| m.row_codes());
    let mut scratch = pool.take(ScratchSizes::new(params, codes, rows));
    decoded.resize(input.len(), 0.0);
    let model = model.filter(|_| params.predictor == Predictor::Model);
    let block = scratch.encode_block(params, model, coder, input, &mut decoded);
    pool.give(scratch);
    Ok((block?, decoded))
}

/// Decodes one sealed block (the stream's block `index`) of at most `max_rows` rows.
fn decode_rows(
    params: &BoundParams<'_>,
    model: Option<&ModelRows<'_>>,
    bytes: &[u8],
    index: u32,
    max_rows: usize,
    (pool, buffer): (&ScratchPool, Vec<f64>),
) -> Result<Vec<f64>, baler_codec::Error> {
    let (block, _) = checked_block(bytes, index)?;
    let codes = model.map_or(0, |m| m.row_codes());
    // A block of more rows than compress writes is refused by the decoder; memory goes by the
    // rows this block has (an interpolated field holds them all), none to the encoder's tokens.
    let rows = (block.frames as usize).min(max_rows);
    let mut sizes = ScratchSizes::new(params, codes, rows);
    (sizes.tokens, sizes.raw) = (0, 0);
    let mut scratch = pool.take(sizes);
    let model = model.filter(|_| params.predictor == Predictor::Model);
    // The decoder writes every value of the block (or fails): what a spare buffer held
    // before need not be cleared.
    let mut out = buffer;
    out.resize(rows * params.row_len, 0.0);
    let decoded = BoundedDecoder::new(params, model, scratch.scratch(), max_rows)
        .and_then(|mut decoder| decoder.decode_block(&block, &mut out));
    pool.give(scratch);
    decoded.map(|_| out)
}

fn sealed(kind: BlockKind, frames: u32, payload: &[u8]) -> Result<Vec<u8>, baler_codec::Error> {
    let mut block = vec![0u8; BLOCK_HEADER_LEN + payload.len() + BLOCK_TRAILER_LEN];
    write_block(kind, frames, payload, &mut block)?;
    Ok(block)
}

/// What `baler info` shows of an error-bounded stream's parameters: layout, predictor, and
/// the bound of each grid (one per table column, one for a field).
pub fn params_report(stream: &[u8]) -> Result<serde_json::Value, baler_codec::Error> {
    let header = StreamHeader::read(stream)?;
    let mut rest = stream
        .get(STREAM_HEADER_LEN..)
        .ok_or(baler_codec::Error::Truncated)?;
    let start = read_params(&header, &mut rest)?;
    let (block, _) = checked_block(&start.params_block, start.blocks - 1)?;
    let params = BoundParams::read(block.payload)?;
    let (layout, grids) = match params.layout {
        Layout::Table => ("table".to_string(), params.row_len),
        Layout::Field { height, width } => (format!("field of {height} x {width}"), 1),
    };
    let grid_list = (0..grids)
        .map(|i| params.grid(i))
        .collect::<Result<Vec<ColumnGrid>, baler_codec::Error>>()?;
    let bounds: Vec<f64> = grid_list.iter().map(|g| g.bound).collect();
    let mut names = Vec::new();
    params.for_each_name(|n| names.push(n.to_string()));
    // Each grid's promise in words, by column name where the stream has names.
    let promises: Vec<serde_json::Value> = grid_list
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let promise = describe_grid(g);
            match names.get(i) {
                Some(name) if grids > 1 => serde_json::json!({"column": name, "bound": promise}),
                _ => serde_json::json!({"column": i, "bound": promise}),
            }
        })
        .collect();
    let kind = match start.shape.len() {
        1 => "series",
        2 if matches!(params.layout, Layout::Field { .. }) => "field of rows",
        2 => "table",
        _ => "frames",
    };
    let mut report = serde_json::json!({
        "data": kind,
        "shape": start.shape,
        "layout": layout,
        "predictor": describe(&params.predictor),
        "bounds": bounds,
        "column_bounds": promises,
    });
    if let (Predictor::Interpolated(plan), Layout::Field { height, width }) =
        (params.predictor, params.layout)
    {
        let frames = header.frame_count as usize;
        let longest = frames.max(height as usize).max(width as usize);
        report["interpolation"] = interpolation_report(&plan, longest);
    }
    Ok(report)
}

/// An interpolation plan as `baler info` shows it: the volume, the axis order (frames, rows,
/// columns), the fine bits, the activity classes, and per level from stride 1 up (to the
/// coarsest an axis of `longest` values has) the cubic passes and the finer steps.
fn interpolation_report(plan: &InterpolationPlan, longest: usize) -> serde_json::Value {
    let axes = ["frames", "rows", "columns"];
    let order = AXIS_ORDERS[usize::from(plan.order) % AXIS_ORDERS.len()];
    let levels = (usize::BITS - (longest.max(2) - 1).leading_zeros()) as usize;
    let levels: Vec<serde_json::Value> = (0..levels)
        .map(|level| {
            let cubic: Vec<&str> = (0..3)
                .filter(|&pass| plan.is_cubic(level, pass))
                .map(|pass| axes[order[pass]])
                .collect();
            serde_json::json!({
                "stride": 1u64 << level,
                "cubic": cubic,
                "step": format!("1/{}", 1u32 << plan.finer_at(Some(level))),
            })
        })
        .collect();
    let volume = match plan.shape {
        0 => "frames x rows x columns",
        1 => "the frames' rows stacked",
        _ => "one line of all values",
    };
    serde_json::json!({
        "volume": volume,
        "axis_order": order.map(|a| axes[a]),
        "fine_bits": plan.fine_bits,
        "activity_classes": plan.activity_classes,
        "levels": levels,
    })
}

/// A grid's promise in words: `|error| <= EPS`, `|error| <= R |x|` (with the mantissa bits
/// when R is a power of two), or `exact`.
pub fn describe_grid(g: &ColumnGrid) -> String {
    if g.per_binade != 0 {
        let bits = (g.per_binade.is_power_of_two() && g.bound == 0.5 / f64::from(g.per_binade))
            .then(|| g.per_binade.trailing_zeros());
        match bits {
            Some(n) => format!("|error| <= {:e} |x| ({n} mantissa bits)", g.bound),
            None => format!("|error| <= {:e} |x|", g.bound),
        }
    } else if g.bound == 0.0 {
        "exact".to_string()
    } else {
        format!("|error| <= {:e}", g.bound)
    }
}

/// How reports name a predictor.
pub fn describe(predictor: &Predictor) -> &'static str {
    match predictor {
        Predictor::None => "model-free",
        Predictor::Learned(_) => "learned predictor",
        Predictor::LearnedInFrame(_) => "learned within the frame",
        Predictor::Relations => "column relations",
        Predictor::Interpolated(_) => "interpolation",
        Predictor::Model => "autoencoder + its blob",
    }
}

/// The layout of rows of data of this shape (as coded: a 1-D series is `[frames, 1, width]`).
fn layout_of(shape: &[usize]) -> Layout {
    match shape {
        [_, _] => Layout::Table,
        [_, rest @ ..] => {
            let w = *rest.last().unwrap_or(&1);
            let h: usize = rest[..rest.len() - 1].iter().product();
            Layout::Field {
                height: h as u32,
                width: w as u32,
            }
        }
        [] => Layout::Table,
    }
}

/// What compress decides before it codes anything: the input's headers (its own and as coded)
/// and statistics, its grids, and the predictor (with its parameters block) that codes a
/// sample of rows smallest.
struct Choice {
    original: Header,
    header: Header,
    stats: Stats,
    grid: Vec<ColumnGrid>,
    predictor: Predictor,
    params_bytes: Vec<u8>,
    estimates: Vec<(&'static str, f64)>,
    /// The entropy coder: for tables, whichever codes the sample smaller.
    coder: CoderChoice,
}

fn choose(
    models: &[(&HostModel<'_>, usize)],
    tiling: Option<Tiling>,
    open: &Opener<'_>,
    bounds: Bounds<'_>,
    use_model: UseModel,
    field: bool,
) -> Result<Choice, Error> {
    let at = Error::codec;
    let (original, header, stats) = first_pass(open, field)?;
    let layout = layout_of(&header.shape);
    let n = header.row_len();
    let per_grid = match layout {
        Layout::Table => resolve(bounds.default, bounds.columns, &header.names, n)?,
        Layout::Field { .. } if bounds.columns.is_empty() => vec![(bounds.default, false)],
        Layout::Field { .. } => {
            return Err(Error::Options(
                "per-column bounds are for tables (2-D data); a field has one bound".into(),
            ))
        }
    };
    let mut grid = grids(&stats, &per_grid, header.dtype)?;
    if layout == Layout::Table {
        choose_contexts(&stats.sample, &mut grid);
    }
    // Tables: the same grids with relations between columns, where any pay on the sample.
    let mut related = grid.clone();
    let relations = match (layout, use_model) {
        (Layout::Table, UseModel::Auto | UseModel::Always) => {
            relations::choose(&stats.sample, &mut related)
        }
        _ => 0,
    };
    let names: Vec<&str> = header.names.iter().map(String::as_str).collect();
    let params_for = |predictor: Predictor| -> Result<Vec<u8>, Error> {
        let grids = if predictor == Predictor::Relations {
            &related
        } else {
            &grid
        };
        let mut bytes = vec![0u8; params_len_for(layout, &predictor, grids, &names)];
        write_params(
            layout,
            predictor,
            header.dtype,
            n,
            grids,
            &names,
            &mut bytes,
        )
        .map_err(at)?;
        Ok(bytes)
    };
    let model_rows: Vec<ModelRows> = models
        .iter()
        .map(|&(model, _)| ModelRows { model, tiling })
        .collect();
    let sample_rows = stats.sample.len() / n;
    let sample = &stats.sample[..sample_rows * n];
    // A pointwise field grid codes its values with Lorenzo prediction only (the learned
    // predictor and the model work on linear grid indices).
    let pointwise_field = layout != Layout::Table && grid.iter().any(|g| g.per_binade != 0);
    let use_model = if pointwise_field {
        UseModel::Never
    } else {
        use_model
    };
    let learned = match (layout, use_model) {
        (_, UseModel::Never) => None,
        (Layout::Field { height, width }, _) => {
            learned::fit(sample, height as usize, width as usize, &grid[0])
        }
        (Layout::Table, _) => None,
    };
    // Frames that do not follow on from each other (layers, levels, channels): a predictor
    // that reads only the frame itself.
    // (`Always` takes it where the 60-tap one cannot be fitted: fewer than three frames.)
    let in_frame = match (layout, use_model, learned) {
        (Layout::Field { height, width }, UseModel::Auto, _)
        | (Layout::Field { height, width }, UseModel::Always, None) => {
            learned::fit_in_frame(sample, height as usize, width as usize, &grid[0])
        }
        _ => None,
    };
    let interpolated = match (layout, use_model) {
        (Layout::Field { height, width }, UseModel::Auto) => {
            interpolation::fit(sample, height as usize, width as usize, &grid[0])
        }
        _ => None,
    };
    // The candidates, each with its model (an index into `models`) and the bytes it adds
    // outside the stream (the model blob).
    let mut candidates: Vec<(Predictor, Option<usize>, usize)> = Vec::new();
    let with_models = models
        .iter()
        .enumerate()
        .map(|(i, &(_, blob_len))| (Predictor::Model, Some(i), blob_len));
    match (use_model, models.is_empty(), learned, in_frame) {
        (UseModel::Never, ..) => candidates.push((Predictor::None, None, 0)),
        (UseModel::Always, false, ..) => candidates.extend(with_models),
        (UseModel::Always, true, Some(w), _) => candidates.push((Predictor::Learned(w), None, 0)),
        (UseModel::Always, true, None, Some(w)) => {
            candidates.push((Predictor::LearnedInFrame(w), None, 0))
        }
        (UseModel::Always, true, None, None) if relations > 0 => {
            candidates.push((Predictor::Relations, None, 0))
        }
        (UseModel::Always, true, None, None) => candidates.push((Predictor::None, None, 0)),
        (UseModel::Auto, _, learned, _) => {
            candidates.push((Predictor::None, None, 0));
            if let Some(w) = learned {
                candidates.push((Predictor::Learned(w), None, 0));
            }
            if let Some(w) = in_frame {
                candidates.push((Predictor::LearnedInFrame(w), None, 0));
            }
            if let Some(plan) = interpolated {
                let plan = fewest_tables(plan, &params_for, sample)?;
                candidates.push((Predictor::Interpolated(plan), None, 0));
            }
            if relations > 0 {
                candidates.push((Predictor::Relations, None, 0));
            }
            candidates.extend(with_models);
        }
    }
    // Whichever codes the sample smallest, scaled to the whole input, extra bytes counted.
    // Fields are judged on the first rows of the sample, up to JUDGED_VALUES values (at least
    // three rows, which the learned predictor needs): each candidate codes them, and on a
    // large input the whole sample would show in the compress time.
    let judged_rows = match layout {
        Layout::Field { .. } => (JUDGED_VALUES / n)
            .clamp(3, sample_rows.max(3))
            .min(sample_rows),
        Layout::Table => sample_rows,
    };
    let judged = &sample[..judged_rows * n];
    let scale = stats.rows as f64 / judged_rows.max(1) as f64;
    let mut best: Option<(f64, Predictor, Vec<u8>, Option<usize>)> = None;
    let mut estimates = Vec::new();
    for (predictor, model, extra) in candidates.iter().copied() {
        let bytes = params_for(predictor)?;
        let mut block_len = None;
        let size = if candidates.len() == 1 {
            0.0
        } else {
            let params = BoundParams::read(&bytes).map_err(at)?;
            let model = model.map(|i| &model_rows[i]);
            let buffers = (&ScratchPool::default(), Vec::new());
            let (coded, _) =
                encode_rows(&params, model, CoderChoice::Best, judged, buffers).map_err(at)?;
            let payload = coded.len() - BLOCK_HEADER_LEN - BLOCK_TRAILER_LEN;
            block_len = Some(coded.len());
            payload as f64 * scale + (bytes.len() + extra) as f64
        };
        if candidates.len() > 1 {
            estimates.push((describe(&predictor), size));
        }
        if best.as_ref().is_none_or(|b| size < b.0) {
            best = Some((size, predictor, bytes, block_len));
        }
    }
    let (_, predictor, params_bytes, block_len) =
        best.ok_or(Error::input("no predictor to choose from"))?;
    let coder = table_coder(&params_bytes, sample, block_len)?;
    Ok(Choice {
        original,
        header,
        stats,
        grid: if predictor == Predictor::Relations {
            related
        } else {
            grid
        },
        predictor,
        params_bytes,
        estimates,
        coder,
    })
}

/// Values of a field's sample each candidate predictor codes to be judged.
const JUDGED_VALUES: usize = 1 << 18;

/// Samples from which an interpolated field keeps every activity class without trying fewer:
/// its blocks are large enough to pay for their tables.
const MANY_VALUES: usize = 1 << 18;

/// The interpolation plan with the number of activity classes (1, 2, 4 or 8 per level class)
/// that codes a small sample smallest: each class is a frequency table per block, which a
/// small block cannot pay for.
fn fewest_tables(
    plan: InterpolationPlan,
    params_for: &dyn Fn(Predictor) -> Result<Vec<u8>, Error>,
    sample: &[f64],
) -> Result<InterpolationPlan, Error> {
    if sample.len() >= MANY_VALUES {
        return Ok(plan);
    }
    let pool = ScratchPool::default();
    let mut best: Option<(usize, InterpolationPlan)> = None;
    for classes in [1, 2, 4, ACTIVITY_CLASSES] {
        let candidate = InterpolationPlan {
            activity_classes: classes,
            ..plan
        };
        let bytes = params_for(Predictor::Interpolated(candidate))?;
        let params = BoundParams::read(&bytes).map_err(Error::codec)?;
        let (block, _) = encode_rows(
            &params,
            None,
            CoderChoice::Best,
            sample,
            (&pool, Vec::new()),
        )
        .map_err(Error::codec)?;
        if best.as_ref().is_none_or(|b| block.len() < b.0) {
            best = Some((block.len(), candidate));
        }
    }
    Ok(best.map_or(plan, |b| b.1))
}

/// The entropy coder for a stream with these parameters: for a table that may be tabled,
/// whichever of the tabled and the adaptive coder codes the sample smaller (static tables
/// per column context pay on most large tables, not on all: on the Timepix hits they cost
/// 3-8% more than adaptive coding); otherwise the best the parameters allow.
/// `best_len` is the sample's block with [`CoderChoice::Best`], when already coded.
fn table_coder(
    params_bytes: &[u8],
    sample: &[f64],
    best_len: Option<usize>,
) -> Result<CoderChoice, Error> {
    let params = BoundParams::read(params_bytes).map_err(Error::codec)?;
    if params.layout != Layout::Table || !tabled_applies(&params) || sample.is_empty() {
        return Ok(CoderChoice::Best);
    }
    let pool = ScratchPool::default();
    let size = |coder| {
        encode_rows(&params, None, coder, sample, (&pool, Vec::new()))
            .map(|(block, _)| block.len())
            .map_err(Error::codec)
    };
    let best_len = match best_len {
        Some(len) => len,
        None => size(CoderChoice::Best)?,
    };
    Ok(if size(CoderChoice::Adaptive)? < best_len {
        CoderChoice::Adaptive
    } else {
        CoderChoice::Best
    })
}

/// Estimated total bytes (stream plus model blob) of compressing the input within `bound`
/// with each candidate predictor, from one read of the input and coding the same sample of
/// rows compress judges by: first the paths without a model (model-free; for fields the
/// learned predictor; for tables column relations, where any pay), then each of `models` in
/// order.
pub fn estimate(
    models: &[(&HostModel<'_>, usize)],
    tiling: Option<Tiling>,
    open: &Opener<'_>,
    bound: Bound,
) -> Result<Vec<(&'static str, f64)>, Error> {
    Ok(choose(
        models,
        tiling,
        open,
        Bounds::uniform(bound),
        UseModel::Auto,
        false,
    )?
    .estimates)
}

/// Compresses the input within `bound` into `out` (stream header, parameters block, residual
/// blocks), with `model` (and its blob's length) as predictor if given and if it pays (judged
/// on a sample of rows, counting the model's bytes). `field`: a 2-D input is coded as one
/// field of rows rather than a table (see [`crate::Options::field`]). `progress` is told the
/// rows coded so far and the total.
#[allow(clippy::too_many_arguments)]
pub fn compress<W: Write + Seek>(
    model: Option<(&HostModel<'_>, usize)>,
    tiling: Option<Tiling>,
    open: &Opener<'_>,
    out: &mut W,
    bounds: Bounds<'_>,
    use_model: UseModel,
    field: bool,
    progress: &dyn Fn(u64, u64),
) -> Result<Outcome, Error> {
    let at = Error::codec;
    let Choice {
        original,
        header,
        stats,
        grid,
        predictor,
        params_bytes,
        estimates,
        coder,
    } = choose(
        Vec::from_iter(model).as_slice(),
        tiling,
        open,
        bounds,
        use_model,
        field,
    )?;
    let layout = layout_of(&header.shape);
    let n = header.row_len();
    let names: Vec<&str> = header.names.iter().map(String::as_str).collect();
    let rows_per_block = (VALUES_PER_BLOCK / n).max(1);
    let model_rows = model.map(|(m, _)| ModelRows { model: m, tiling });
    let free_params_len = params_len_for(layout, &Predictor::None, &grid, &names);
    let with_model = predictor == Predictor::Model;
    let params = BoundParams::read(&params_bytes).map_err(at)?;
    let model_rows = model_rows.filter(|_| with_model);

    let start = out.stream_position().map_err(Error::output)?;
    out.write_all(&[0u8; STREAM_HEADER_LEN])
        .map_err(Error::output)?;
    let mut total = STREAM_HEADER_LEN;
    if original.shape.len() > MAX_DATA_RANK {
        let dims: Vec<u64> = original.shape.iter().map(|&d| d as u64).collect();
        let mut payload = [0u8; 1 + 8 * MAX_ARRAY_RANK];
        let len = write_shape(&dims, &mut payload).map_err(at)?;
        let block = sealed(BlockKind::Shape, 0, &payload[..len]).map_err(at)?;
        out.write_all(&block).map_err(Error::output)?;
        total += block.len();
    }
    let params_block = sealed(BlockKind::BoundParams, 0, &params_bytes).map_err(at)?;
    out.write_all(&params_block).map_err(Error::output)?;
    total += params_block.len();
    let (_, mut source) = open_coded(open, rows_per_block * n * BATCH_BLOCKS, field)?;
    let (mut rows, mut worst) = (0usize, 0f64);
    let pool = ScratchPool::default();
    progress(0, stats.rows as u64);
    while let Some(chunk) = source.next_chunk_f64()? {
        // Each block is coded and checked against the bound by its own worker.
        let coded: Result<Vec<(Vec<u8>, f64)>, Error> = chunk
            .par_chunks(rows_per_block * n)
            .map(|part| {
                let buffers = (&pool, pool.values.take());
                let (block, decoded) =
                    encode_rows(&params, model_rows.as_ref(), coder, part, buffers).map_err(at)?;
                let worst = checked_worst(part, &decoded, &grid, n);
                pool.values.give(decoded);
                Ok((block, worst?))
            })
            .collect();
        for (block, block_worst) in coded? {
            worst = worst.max(block_worst);
            out.write_all(&block).map_err(Error::output)?;
            total += block.len();
        }
        rows += chunk.len() / n;
        source.recycle(chunk);
        progress(rows as u64, stats.rows as u64);
    }
    // A series keeps its own shape (its frames are padded), a 2-D field its two dimensions;
    // other data the shape as coded (ranks above 4 folded), with its row count.
    let shape: Vec<u64> = match original.shape.len() {
        1 => vec![original.shape[0] as u64],
        2 => vec![rows as u64, original.shape[1] as u64],
        _ => {
            let mut shape: Vec<u64> = header.shape.iter().map(|&d| d as u64).collect();
            shape[0] = rows as u64;
            shape
        }
    };
    let mut dims = [0u64; 4];
    dims.get_mut(..shape.len())
        .ok_or(Error::input(
            "arrays of more than 4 dimensions are not supported yet",
        ))?
        .copy_from_slice(&shape);
    let head = StreamHeader {
        model_id: model.filter(|_| with_model).map_or(0, |(m, _)| m.id()),
        flags: FLAG_ERROR_BOUNDED,
        frame_count: rows as u64,
        frame_len: n as u32,
        dtype: header.dtype,
        rank: shape.len() as u8,
        shape: dims,
    };
    let mut bytes = [0u8; STREAM_HEADER_LEN];
    head.write(&mut bytes).map_err(at)?;
    let end = out.stream_position().map_err(Error::output)?;
    out.seek(SeekFrom::Start(start)).map_err(Error::output)?;
    out.write_all(&bytes).map_err(Error::output)?;
    out.seek(SeekFrom::Start(end)).map_err(Error::output)?;
    let values = match original.shape.len() {
        1 => original.shape[0],
        _ => rows * n,
    };
    Ok(Outcome {
        raw_bytes: values * header.dtype.size(),
        stream_bytes: total,
        model_bytes: if with_model {
            model.map_or(0, |m| m.1)
        } else {
            0
        },
        predictor: match predictor {
            Predictor::None => Chosen::ModelFree,
            Predictor::Model => Chosen::Model,
            Predictor::Learned(_) => Chosen::Learned(params_bytes.len() - free_params_len),
            Predictor::LearnedInFrame(_) => {
                Chosen::LearnedInFrame(params_bytes.len() - free_params_len)
            }
            Predictor::Relations => {
                Chosen::Relations(grid.iter().filter(|g| g.relation.is_some()).count())
            }
            Predictor::Interpolated(_) => Chosen::Interpolated,
        },
        worst_fraction_of_bound: worst,
        estimates,
    })
}

/// The shape of the rows an error-bounded stream codes, from its header: its own shape, or
/// for a 1-D series `[frames, 1, frame_len]`. Checks everything a crafted header could get
/// wrong before anything is allocated for it.
pub fn coded_shape(header: &StreamHeader) -> Result<Vec<usize>, baler_codec::Error> {
    use baler_codec::Error::Invalid;
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let n = header.frame_len as usize;
    // A row's working memory is allocated up front: refuse absurd rows from a crafted header.
    if n > MAX_ROW_VALUES {
        return Err(Invalid("rows of more than 2^27 values"));
    }
    if n == 0 {
        return Err(Invalid("stream shape and frame length disagree"));
    }
    let total = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if let [len] = shape[..] {
        let frames = len.div_ceil(n) as u64;
        if frames != header.frame_count {
            return Err(Invalid("stream shape and frame count disagree"));
        }
        return Ok(vec![frames as usize, 1, n]);
    }
    if shape.len() < 2 || checked_row_len(&shape) != Some(n) {
        return Err(Invalid("stream shape and frame length disagree"));
    }
    // The writer of the output multiplies out the whole shape: it must fit, and its rows must
    // be the frames the stream announces (found by fuzzing: a crafted first dimension
    // overflowed that product).
    if total.is_none() || shape[0] as u64 != header.frame_count {
        return Err(Invalid("stream shape and frame count disagree"));
    }
    Ok(shape)
}

/// What precedes the residual blocks of an error-bounded stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    /// The parameters block (sealed; the parameters borrow it).
    pub params_block: Vec<u8>,
    /// The data's own shape: the header's, or for ranks above 4 the shape block's.
    pub shape: Vec<usize>,
    /// The shape of the rows as coded: a series as `[frames, 1, frame length]`, a 2-D field as
    /// `[rows, 1, columns]`, ranks above 4 folded to 3, the others their own.
    pub coded: Vec<usize>,
    /// Blocks read so far (the first residual block's index).
    pub blocks: u32,
}

/// Reads what precedes the residual blocks of an error-bounded stream (its header already
/// read): a shape block for data of rank 5 to 8, then the parameters block, checked against
/// the header.
pub fn read_params<R: Read>(
    header: &StreamHeader,
    reader: &mut R,
) -> Result<StreamStart, baler_codec::Error> {
    use baler_codec::Error::{Invalid, Truncated};
    let shape = coded_shape(header)?;
    let n = header.frame_len as usize;
    let layout = layout_of(&shape);
    // Room for the grids and names of up to 64 KiB each.
    let largest = Predictor::Learned([0; baler_codec::bounded::LEARNED_TAPS]);
    // (Plus a pointwise section of one u32 per grid.)
    let max_payload = params_len(layout, &largest, n, &[]) + n * (2 + 65535) + 4 * n;
    let mut first = next_bounded_block(reader, max_payload)?.ok_or(Truncated)?;
    let mut own_shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let mut blocks = 1;
    let (block, _) = checked_block(&first, 0)?;
    if block.kind == BlockKind::Shape {
        let (dims, rank) = read_shape(block.payload, header)?;
        own_shape = dims[..rank].iter().map(|&d| d as usize).collect();
        first = next_bounded_block(reader, max_payload)?.ok_or(Truncated)?;
        blocks = 2;
    }
    let params_block = first;
    let (block, _) = checked_block(&params_block, blocks - 1)?;
    if block.kind != BlockKind::BoundParams {
        return Err(Invalid(
            "an error-bounded stream starts with its parameters",
        ));
    }
    let params = BoundParams::read(block.payload)?;
    // A 2-D stream is a table, or one field of rows (frames of height 1, as wide as a row).
    let field_rows = Layout::Field {
        height: 1,
        width: n as u32,
    };
    let coded = match (shape.len(), params.layout) {
        (2, l) if l == field_rows => vec![shape[0], 1, n],
        (_, l) if l == layout => shape,
        _ => return Err(Invalid("parameters disagree with the stream header")),
    };
    if params.row_len != n || params.dtype != header.dtype {
        return Err(Invalid("parameters disagree with the stream header"));
    }
    Ok(StreamStart {
        params_block,
        shape: own_shape,
        coded,
        blocks,
    })
}

/// The column names an error-bounded stream's parameters block carries.
pub fn stream_names(start: &StreamStart) -> Result<Vec<String>, baler_codec::Error> {
    let (block, _) = checked_block(&start.params_block, start.blocks - 1)?;
    let params = BoundParams::read(block.payload)?;
    let mut names = Vec::new();
    params.for_each_name(|name| names.push(name.to_string()));
    Ok(names)
}

/// Decompresses the blocks of an error-bounded stream whose header and parameters block
/// (from [`read_params`]) are read, into `sink`; returns the values written. `progress` is
/// told the rows decoded so far and the total.
pub fn decompress<R: Read>(
    header: &StreamHeader,
    start: &StreamStart,
    model: Option<&HostModel<'_>>,
    reader: &mut R,
    sink: &mut dyn RowOutput,
    progress: &dyn Fn(u64, u64),
) -> Result<usize, Error> {
    let at = Error::codec;
    let shape = &start.coded;
    let n = header.frame_len as usize;
    let (block, _) = checked_block(&start.params_block, start.blocks - 1).map_err(at)?;
    let params = BoundParams::read(block.payload).map_err(at)?;
    let tiling = model.and_then(|m| {
        let frame: Vec<usize> = m.frame_shape().map(|d| d as usize).collect();
        tiling_for(shape, &frame)
    });
    let model_rows = match (params.predictor, model) {
        (Predictor::Model, Some(m)) => {
            if m.id() != header.model_id {
                return Err(at(baler_codec::Error::WrongModel {
                    expected: m.id(),
                    found: header.model_id,
                }));
            }
            // A crafted header can name the model with rows it does not fit: as compress
            // requires, a row is one frame of the model unless the model tiles it.
            if tiling.is_none() && m.input_len() != n {
                return Err(Error::input(format!(
                    "rows of {n} values, but the model expects {}",
                    m.input_len()
                )));
            }
            Some(ModelRows { model: m, tiling })
        }
        (Predictor::Model, None) => {
            return Err(Error::ModelRequired {
                path: None,
                model_id: header.model_id,
            })
        }
        (
            Predictor::None
            | Predictor::Learned(_)
            | Predictor::LearnedInFrame(_)
            | Predictor::Relations
            | Predictor::Interpolated(_),
            _,
        ) => None,
    };
    // A series' last frame is padded: the sink gets the series' own values only.
    let values: usize = header.shape().iter().map(|&d| d as usize).product();
    let mut sink = Truncated::new(sink, values);
    let rows_per_block = (VALUES_PER_BLOCK / n).max(1);
    let codes = model_rows.as_ref().map_or(0, |m| m.row_codes());
    let max_payload = rows_per_block * (n + codes) * 100 + 4096;
    // Block buffers the sink has written come back to be filled again (fresh ones cost
    // their page faults anew).
    let pool = ScratchPool::default();
    decode_batches(
        BATCH_BLOCKS,
        start.blocks,
        header.frame_count,
        |_| next_bounded_block(reader, max_payload),
        |bytes, index| {
            let (model, max_rows) = (model_rows.as_ref(), rows_per_block);
            let buffers = (&pool, pool.values.take());
            let values = decode_rows(&params, model, bytes, index, max_rows, buffers)?;
            Ok(((values.len() / n) as u64, values))
        },
        |values| {
            sink.push_f64(values)?;
            while let Some(buffer) = sink.spare_buffer() {
                pool.values.give(buffer);
            }
            Ok(())
        },
        progress,
    )?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary exponent of `x`'s lowest set bit: `x` is an odd multiple of 2^result (`x` finite
    /// and non-zero).
    fn trailing_exponent(x: f64) -> i32 {
        let bits = x.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i32;
        let mantissa = bits & ((1 << 52) - 1);
        let (mantissa, scale) = if exponent == 0 {
            (mantissa, -1074) // subnormal
        } else {
            (mantissa | 1 << 52, exponent - 1075)
        };
        scale + mantissa.trailing_zeros() as i32
    }

    /// The first pass's statistics counted the plain way, value by value with a branch per
    /// case: the reference the branch-free passes must match.
    struct Reference {
        min: Vec<f64>,
        max: Vec<f64>,
        min_abs: Vec<f64>,
        integer: Vec<bool>,
        quantum: Vec<i32>,
        negative_zero: Vec<bool>,
    }

    /// min, max and min_abs as bits, whether whole, quantum, whether a -0.0: per grid.
    type View = (Vec<u64>, Vec<u64>, Vec<u64>, Vec<bool>, Vec<i32>, Vec<bool>);

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    impl Reference {
        fn new(grids: usize) -> Reference {
            Reference {
                min: vec![f64::INFINITY; grids],
                max: vec![f64::NEG_INFINITY; grids],
                min_abs: vec![f64::INFINITY; grids],
                integer: vec![true; grids],
                quantum: vec![i32::MAX; grids],
                negative_zero: vec![false; grids],
            }
        }

        fn add(&mut self, c: usize, x: f64) {
            if x == 0.0 && x.is_sign_negative() {
                self.negative_zero[c] = true;
            }
            if !x.is_finite() {
                return;
            }
            self.min[c] = self.min[c].min(x);
            self.max[c] = self.max[c].max(x);
            if x != 0.0 {
                self.min_abs[c] = self.min_abs[c].min(x.abs());
                self.quantum[c] = self.quantum[c].min(trailing_exponent(x));
            }
            // Below 1e15 the conversion truncates exactly: the value is whole iff it survives it.
            self.integer[c] &= x.abs() < 1e15 && (x as i64) as f64 == x;
        }

        fn view(&self) -> View {
            let (min, max, min_abs) = (bits(&self.min), bits(&self.max), bits(&self.min_abs));
            (
                min,
                max,
                min_abs,
                self.integer.clone(),
                self.quantum.clone(),
                self.negative_zero.clone(),
            )
        }
    }

    fn view(s: &Stats) -> View {
        let integer = (0..s.min.len()).map(|c| s.integer(c)).collect();
        let (min, max, min_abs) = (bits(&s.min), bits(&s.max), bits(&s.min_abs));
        let negative_zero = s.negative_zero.clone();
        (min, max, min_abs, integer, s.quantum.clone(), negative_zero)
    }

    #[test]
    fn a_fields_first_pass_counts_as_value_by_value() {
        // Whole numbers, halves, subnormals, signed zeros, NaN, infinities, values beyond
        // 1e15, and values beyond 2^53, in every mix and split into chunks.
        let specials = [
            0.0,
            -0.0,
            3.0,
            -12.0,
            0.5,
            1e15,
            9.9e14,
            -2e16,
            f64::MIN_POSITIVE / 8.0,
            -5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0 / 3.0,
            f64::MAX,
            4096.0,
        ];
        let mut state = 11u64;
        for case in 0..2000 {
            let len = case % 23;
            let values: Vec<f64> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    specials[(state >> 60) as usize]
                })
                .collect();
            let mut one_by_one = Reference::new(1);
            for &x in &values {
                one_by_one.add(0, x);
            }
            let mut all = Stats::empty(1);
            let (a, b) = values.split_at(len / 3);
            all.add_all(0, a);
            all.add_all(0, b);
            assert_eq!(view(&all), one_by_one.view(), "{values:?}");
        }
    }

    #[test]
    fn a_tables_first_pass_counts_as_value_by_value() {
        let specials = [
            0.0,
            -0.0,
            7.0,
            -0.25,
            1e15,
            -2e16,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
            1e300,
        ];
        let columns = 5;
        let mut state = 5u64;
        for case in 0..500 {
            let rows = case % 9;
            let values: Vec<f64> = (0..rows * columns)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    specials[(state >> 59) as usize % specials.len()]
                })
                .collect();
            let mut one_by_one = Reference::new(columns);
            for row in values.chunks(columns) {
                for (j, &x) in row.iter().enumerate() {
                    one_by_one.add(j, x);
                }
            }
            let mut rows_at_once = Stats::empty(columns);
            let (a, b) = values.split_at(rows / 2 * columns);
            rows_at_once.add_rows(a, columns);
            rows_at_once.add_rows(b, columns);
            assert_eq!(view(&rows_at_once), one_by_one.view(), "{values:?}");
        }
    }

    #[test]
    fn the_bound_check_measures_and_names_what_it_finds() {
        let grid = |per_binade| ColumnGrid {
            offset: 0.0,
            step: 0.25,
            bound: 0.125,
            context: None,
            relation: None,
            per_binade,
        };
        let input = [1.0, f64::NAN, f64::INFINITY, -3.0, 2.0];
        let decoded = [1.0625, f64::NAN, f64::INFINITY, -3.125, 2.0];
        for grids in [vec![grid(0)], vec![grid(0); 5]] {
            let worst = checked_worst(&input, &decoded, &grids, grids.len()).unwrap();
            // The largest error, -3.125 for -3.0, is the whole bound.
            assert_eq!(worst, 1.0);
            let mut off = decoded;
            off[3] = -3.25;
            match checked_worst(&input, &off, &grids, grids.len()) {
                Err(Error::BoundViolated { value, decoded, .. }) => {
                    assert_eq!((value, decoded), (-3.0, -3.25));
                }
                other => panic!("{other:?}"),
            }
            let mut lost = decoded;
            lost[2] = f64::MAX;
            assert!(checked_worst(&input, &lost, &grids, grids.len()).is_err());
        }
    }
}
