//! Error-bounded coding: every value comes back within a stated absolute bound.
//!
//! Each value `x` of column `c` is snapped to a grid, `k = round((x - offset_c) / step_c)`,
//! with `step_c <= 2 bound_c`, and decodes to `offset_c + k step_c` (then to the output type).
//! The encoder checks every value against its bound after that exact arithmetic; a value
//! that would miss it (rounding, NaN, infinity, huge magnitudes) is escaped and stored raw,
//! so the bound is a guarantee. Only `k - prediction` is coded, through a [`ResidualCoder`]:
//! the adaptive range coder (`entropy/range.rs`), or for fields without a model the tabled rANS
//! coder (`entropy/tabled.rs`). The prediction is integer arithmetic on grid indices, identical
//! on every platform:
//! - a model's decoded output snapped to the grid, or 0 without a model;
//! - for fields, plus 3-D Lorenzo prediction (previous frame, row above, value to the left)
//!   of what the model missed;
//! - or, for fields, a learned linear predictor: [`LEARNED_TAPS`] fixed-point weights, fitted
//!   to the data by the encoder and stored in the parameters block, over decoded neighbours
//!   in the frame and the two frames before it ([`field_taps`]; computed in [`crate::bounded::field`]);
//! - or, for fields whose frames are layers rather than steps in time, the same rule over the
//!   frame's own [`CAUSAL_TAPS`] only, from a block's first frame on
//!   ([`Predictor::LearnedInFrame`]);
//! - or, for tables, column relations: a column predicted as a function of earlier decoded
//!   columns of its row ([`Relation`], e.g. a transverse momentum from px and py), snapped to
//!   the grid.
//!
//! The encoder (`bounded/encode.rs`) quantizes and predicts a whole row before coding it (grid indices
//! do not depend on the prediction); the decoder predicts value by value from what it has
//! decoded. Both call the same prediction functions.
//!
//! Contexts: a table column is coded in one of four contexts picked by the magnitude of an
//! earlier column of the same row (chosen by the encoder, e.g. an object count before the
//! object's momenta); a field value by the local activity of its decoded neighbours.

pub use crate::entropy::intcode::IntModel;
use crate::entropy::intcode::{code_symbol, Symbol};
use crate::entropy::range::{BitCoder, RangeDecoder};
pub use crate::entropy::residual::{Coded, ResidualCoder};
pub use crate::entropy::tabled::{ContextTable, MAX_TABLED_CONTEXTS};
use crate::entropy::tabled::{TabledDecoder, TABLED_CONTEXTS};
use crate::error::{Capacity, Error, Result};
use crate::stream::{BlockKind, DType};

pub use crate::bounded::field::{field_taps, CAUSAL_TAPS, LEARNED_FRACTION_BITS, LEARNED_TAPS};
use crate::bounded::field::{
    learned_prediction, lorenzo, lorenzo_terms, residual_activity, round_fixed, round_to_integer,
    TemporalSums,
};
pub use crate::bounded::relation::{Relation, RelationKind, MAX_RELATION_DISTANCE};

mod coder;
mod decode;
mod encode;
pub mod field;
pub mod interpolate;
pub mod pointwise;
pub mod relation;
#[cfg(feature = "alloc")]
pub use coder::ScratchBuf;
pub use coder::{BoundedDecoder, BoundedEncoder, CoderChoice, Scratch, ScratchSizes, TABLES_SHARE};
use decode::decode_row;
use encode::encode_row;
pub use interpolate::{InterpolationPlan, INTERPOLATION_CONTEXTS};

/// Whether blocks of a stream with these parameters may be tabled ([`BlockKind::TabledResiduals`]):
/// fields and tables without a model, a table only while its contexts (per column
/// [`TABLE_CLASSES`]) are at most [`MAX_TABLED_CONTEXTS`].
pub fn tabled_applies(params: &BoundParams<'_>) -> bool {
    tabled_contexts_of(params).is_some()
}

/// Whether blocks of a stream with these parameters may be of kind 6
/// ([`BlockKind::TabledResidualContexts`]): fields without a model on a linear grid.
pub fn residual_contexts_apply(params: &BoundParams<'_>) -> bool {
    let linear = params.grid(0).is_ok_and(|g| g.per_binade == 0);
    let rows = !matches!(params.predictor, Predictor::Interpolated(_));
    matches!(params.layout, Layout::Field { .. }) && tabled_applies(params) && linear && rows
}

/// The contexts of a tabled block of a stream with these parameters (each needs a
/// [`ContextTable`]), or `None` when its blocks cannot be tabled.
pub fn tabled_contexts_of(params: &BoundParams<'_>) -> Option<usize> {
    if params.predictor == Predictor::Model {
        return None;
    }
    match params.layout {
        Layout::Field { .. } if matches!(params.predictor, Predictor::Interpolated(_)) => {
            Some(INTERPOLATION_CONTEXTS)
        }
        Layout::Field { .. } => Some(FIELD_CLASSES),
        Layout::Table => params
            .row_len
            .checked_mul(TABLE_CLASSES)
            .filter(|&c| c <= MAX_TABLED_CONTEXTS),
    }
}

/// Format version of the parameters block.
pub const PARAMS_VERSION: u8 = 1;
/// Version of the parameters block with a per-column section of pointwise relative grids
/// (written only when a column has one, so other streams stay version 1 byte for byte).
pub const PARAMS_VERSION_POINTWISE: u8 = 2;
/// Bytes of the parameters block before the per-column entries.
pub const PARAMS_HEAD_LEN: usize = 20;
/// Bytes of one column's entry in the parameters block.
pub const COLUMN_ENTRY_LEN: usize = 32;
/// Contexts per table column.
pub const TABLE_CLASSES: usize = 4;
/// Contexts of a field.
pub const FIELD_CLASSES: usize = TABLED_CONTEXTS;
/// Largest grid index magnitude; values beyond are escaped.
pub const MAX_GRID_INDEX: i64 = 1 << 40;
/// Bytes of the learned predictor's section of the parameters block.
const LEARNED_SECTION_LEN: usize = 2 + 4 * LEARNED_TAPS;
/// Bytes of the in-frame learned predictor's section: a u16 count and its weights.
const IN_FRAME_SECTION_LEN: usize = 2 + 4 * CAUSAL_TAPS.len();
const NO_CONTEXT: u32 = u32::MAX;

/// How the values of a row relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Rows of independent columns (events x variables), one grid per column.
    Table,
    /// Rows are 2-D frames of `height x width` values sharing one grid.
    Field {
        /// Rows of a frame.
        height: u32,
        /// Values per frame row.
        width: u32,
    },
}

/// What the coded residuals are relative to.
// The codec has no heap: the learned weights (240 bytes) live inline.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
    /// No model: the prediction is 0 (plus Lorenzo for fields).
    None,
    /// The model's reconstruction from range-coded latent codes.
    Model,
    /// Fields only: a learned linear predictor, weights in units of
    /// 2^-[`LEARNED_FRACTION_BITS`] over the [`field_taps`] neighbours.
    Learned([i32; LEARNED_TAPS]),
    /// Fields only: a learned linear predictor over the frame's own [`CAUSAL_TAPS`] (the
    /// first taps of [`field_taps`]), from a block's first frame on: for frames that are
    /// layers, levels or channels rather than steps in time, where the frame before predicts
    /// poorly. Weights in units of 2^-[`LEARNED_FRACTION_BITS`].
    LearnedInFrame([i32; CAUSAL_TAPS.len()]),
    /// Tables only: columns with a [`ColumnGrid::relation`] are predicted from earlier
    /// columns of the same row; the others as without a model.
    Relations,
    /// Fields only, on a linear grid: multilevel interpolation over each block's frames
    /// ([`interpolate`]); blocks of kind 7.
    Interpolated(InterpolationPlan),
}

impl Predictor {
    fn code(&self) -> u8 {
        match self {
            Predictor::None => 0,
            Predictor::Model => 1,
            Predictor::Learned(_) => 2,
            Predictor::Relations => 3,
            Predictor::Interpolated(_) => 4,
            Predictor::LearnedInFrame(_) => 5,
        }
    }

    /// Bytes this predictor adds to the parameters block.
    fn section_len(&self) -> usize {
        match self {
            Predictor::Learned(_) => LEARNED_SECTION_LEN,
            Predictor::LearnedInFrame(_) => IN_FRAME_SECTION_LEN,
            Predictor::Interpolated(_) => interpolate::INTERPOLATION_SECTION_LEN,
            _ => 0,
        }
    }
}

/// The grid and bound of one column (or of the whole field).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnGrid {
    /// Grid origin: values equal to it come back exactly.
    pub offset: f64,
    /// Grid step, at most twice the bound (or larger when the data lies on a coarser grid).
    pub step: f64,
    /// The guaranteed bound on |original - decoded|.
    pub bound: f64,
    /// Index of an earlier column whose magnitude picks this column's context.
    pub context: Option<u32>,
    /// With [`Predictor::Relations`]: the function of earlier columns that predicts this one.
    pub relation: Option<Relation>,
    /// A pointwise relative grid ([`pointwise`]; tables, or fields without a predictor): this many steps per binade,
    /// `bound` is then the relative bound R (every `x` within `R |x|`), `offset` the base
    /// code and `step` 1. 0: the linear grid of `offset` and `step`.
    pub per_binade: u32,
}

impl ColumnGrid {
    /// A linear grid of `step` anchored at `offset` with absolute bound `bound`.
    pub const fn linear(offset: f64, step: f64, bound: f64) -> Self {
        ColumnGrid {
            offset,
            step,
            bound,
            context: None,
            relation: None,
            per_binade: 0,
        }
    }

    /// A pointwise relative grid for bound `r` over a column whose smallest non-zero
    /// magnitude is `smallest`; `None` unless 0 < r < 1 (and r >= about 5e-10).
    pub fn pointwise(r: f64, smallest: f64) -> Option<Self> {
        let m = pointwise::per_binade_for(r)?;
        Some(ColumnGrid {
            offset: pointwise::base_for(smallest, m),
            step: 1.0,
            bound: r,
            context: None,
            relation: None,
            per_binade: m,
        })
    }

    /// The value grid index `k` decodes to (before the output type's conversion).
    #[inline]
    pub fn value(&self, k: i64) -> f64 {
        if self.per_binade == 0 {
            self.offset + k as f64 * self.step
        } else {
            pointwise::value(k, self.per_binade, self.offset)
        }
    }

    /// The largest error this grid allows at `x`: the bound, or for a pointwise grid the
    /// bound times `|x|`.
    #[inline]
    pub fn allowed(&self, x: f64) -> f64 {
        if self.per_binade == 0 {
            self.bound
        } else {
            self.bound * x.abs()
        }
    }

    /// Whether decoded `y` keeps `x` within this grid's bound.
    #[inline]
    pub fn keeps(&self, x: f64, y: f64) -> bool {
        if self.per_binade == 0 {
            (x - y).abs() <= self.bound
        } else {
            pointwise::within(x, y, self.bound)
        }
    }
}

/// The parameters of an error-bounded stream, read in place from its parameters block.
#[derive(Debug, Clone, Copy)]
pub struct BoundParams<'a> {
    /// Table or field.
    pub layout: Layout,
    /// With or without a model.
    pub predictor: Predictor,
    /// Type the decoded values are written as (values are checked against the bound in it).
    pub dtype: DType,
    /// Values per row.
    pub row_len: usize,
    entries: &'a [u8],
    /// Version 2: a u32 of steps per binade for each grid (0: linear); empty in version 1.
    pointwise: &'a [u8],
    names: &'a [u8],
}

fn f64_at(b: &[u8], at: usize) -> Result<f64> {
    let s = b.get(at..at + 8).ok_or(Error::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(f64::from_le_bytes(a))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).ok_or(Error::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A learned predictor's `T` weights, stored after the grids: a u16 count (which must be
/// `T`), then i32s.
fn read_weights<const T: usize>(payload: &[u8], at: usize) -> Result<[i32; T]> {
    let section = payload.get(at..at + 2 + 4 * T).ok_or(Error::Truncated)?;
    if usize::from(u16::from_le_bytes([section[0], section[1]])) != T {
        return Err(Error::Invalid("learned predictor taps"));
    }
    let mut weights = [0i32; T];
    for (w, b) in weights.iter_mut().zip(section[2..].chunks_exact(4)) {
        *w = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(weights)
}

/// Writes a learned predictor's section (the inverse of [`read_weights`]); returns its length.
fn write_weights(weights: &[i32], out: &mut [u8]) -> usize {
    out[..2].copy_from_slice(&(weights.len() as u16).to_le_bytes());
    for (i, w) in weights.iter().enumerate() {
        out[2 + 4 * i..6 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    2 + 4 * weights.len()
}

fn grid_entries(layout: Layout, row_len: usize) -> usize {
    match layout {
        Layout::Table => row_len,
        Layout::Field { .. } => 1,
    }
}

/// Bytes of the parameters block payload for this layout, predictor, row length and column
/// names, with linear grids only (version 1; see [`params_len_for`]).
pub fn params_len(layout: Layout, predictor: &Predictor, row_len: usize, names: &[&str]) -> usize {
    PARAMS_HEAD_LEN
        + COLUMN_ENTRY_LEN * grid_entries(layout, row_len)
        + predictor.section_len()
        + 4
        + names.iter().map(|n| 2 + n.len()).sum::<usize>()
}

/// Bytes of the parameters block payload for these grids (version 2, with the pointwise
/// section, when any grid is pointwise).
pub fn params_len_for(
    layout: Layout,
    predictor: &Predictor,
    grids: &[ColumnGrid],
    names: &[&str],
) -> usize {
    params_len(layout, predictor, grids.len(), names) + pointwise_section_len(grids)
}

fn pointwise_section_len(grids: &[ColumnGrid]) -> usize {
    if grids.iter().any(|g| g.per_binade != 0) {
        4 * grids.len()
    } else {
        0
    }
}

/// Walks the names section: a u32 count, then each name as a u16 length and UTF-8 bytes.
fn walk_names(bytes: &[u8], mut each: impl FnMut(&str)) -> Result<usize> {
    let count = u32_at(bytes, 0)? as usize;
    let mut at = 4;
    for _ in 0..count {
        let len = bytes.get(at..at + 2).ok_or(Error::Truncated)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let text = bytes.get(at + 2..at + 2 + len).ok_or(Error::Truncated)?;
        each(core::str::from_utf8(text).map_err(|_| Error::Invalid("column name is not UTF-8"))?);
        at += 2 + len;
    }
    if at != bytes.len() {
        return Err(Error::TrailingBytes);
    }
    Ok(count)
}

/// Writes the parameters block payload into `out`; returns its length. `grids` has one entry
/// per column for tables, one for fields.
pub fn write_params(
    layout: Layout,
    predictor: Predictor,
    dtype: DType,
    row_len: usize,
    grids: &[ColumnGrid],
    names: &[&str],
    out: &mut [u8],
) -> Result<usize> {
    let needed = params_len(layout, &predictor, row_len, names) + pointwise_section_len(grids);
    if names.iter().any(|n| n.len() > usize::from(u16::MAX)) {
        return Err(Error::Misuse("column name longer than 65535 bytes"));
    }
    if grids.len() != grid_entries(layout, row_len) {
        return Err(Error::LengthMismatch {
            what: "column grids",
            expected: grid_entries(layout, row_len),
            found: grids.len(),
        });
    }
    let out = out
        .get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed })?;
    let (height, width) = match layout {
        Layout::Table => (0, 0),
        Layout::Field { height, width } => (height, width),
    };
    let pointwise = pointwise_section_len(grids) > 0;
    out[0] = if pointwise {
        PARAMS_VERSION_POINTWISE
    } else {
        PARAMS_VERSION
    };
    out[1] = match layout {
        Layout::Table => 1,
        Layout::Field { .. } => 2,
    };
    out[2] = predictor.code();
    out[3] = dtype.code();
    let row = u32::try_from(row_len).map_err(|_| Error::Misuse("row length"))?;
    out[4..8].copy_from_slice(&row.to_le_bytes());
    out[8..12].copy_from_slice(&height.to_le_bytes());
    out[12..16].copy_from_slice(&width.to_le_bytes());
    out[16..20].copy_from_slice(&(grids.len() as u32).to_le_bytes());
    for (i, g) in grids.iter().enumerate() {
        let e = &mut out[PARAMS_HEAD_LEN + i * COLUMN_ENTRY_LEN..][..COLUMN_ENTRY_LEN];
        e[0..8].copy_from_slice(&g.offset.to_le_bytes());
        e[8..16].copy_from_slice(&g.step.to_le_bytes());
        e[16..24].copy_from_slice(&g.bound.to_le_bytes());
        e[24..28].copy_from_slice(&g.context.unwrap_or(NO_CONTEXT).to_le_bytes());
        e[28..32].copy_from_slice(&Relation::to_bytes(g.relation.as_ref(), i)?);
    }
    let mut at = PARAMS_HEAD_LEN + grids.len() * COLUMN_ENTRY_LEN;
    if pointwise {
        for g in grids {
            out[at..at + 4].copy_from_slice(&g.per_binade.to_le_bytes());
            at += 4;
        }
    }
    match &predictor {
        Predictor::Learned(weights) => at += write_weights(weights, &mut out[at..]),
        Predictor::LearnedInFrame(weights) => at += write_weights(weights, &mut out[at..]),
        _ => {}
    }
    if let Predictor::Interpolated(plan) = &predictor {
        plan.write(&mut out[at..]);
        at += interpolate::INTERPOLATION_SECTION_LEN;
    }
    out[at..at + 4].copy_from_slice(&(names.len() as u32).to_le_bytes());
    at += 4;
    for name in names {
        out[at..at + 2].copy_from_slice(&(name.len() as u16).to_le_bytes());
        out[at + 2..at + 2 + name.len()].copy_from_slice(name.as_bytes());
        at += 2 + name.len();
    }
    // Reading back validates what was written, so a bad grid never reaches a stream.
    BoundParams::read(out)?;
    Ok(needed)
}

impl<'a> BoundParams<'a> {
    /// Reads and validates a parameters block payload.
    pub fn read(payload: &'a [u8]) -> Result<Self> {
        let head = payload.get(..PARAMS_HEAD_LEN).ok_or(Error::Truncated)?;
        if head[0] != PARAMS_VERSION && head[0] != PARAMS_VERSION_POINTWISE {
            return Err(Error::UnsupportedVersion {
                found: u16::from(head[0]),
            });
        }
        let row_len = u32_at(head, 4)? as usize;
        let (height, width) = (u32_at(head, 8)?, u32_at(head, 12)?);
        let layout = match head[1] {
            1 if height == 0 && width == 0 => Layout::Table,
            2 if (height as usize).checked_mul(width as usize) == Some(row_len) => {
                Layout::Field { height, width }
            }
            _ => return Err(Error::Invalid("bounded layout")),
        };
        let predictor_code = head[2];
        let dtype = DType::from_code(head[3])?;
        if row_len == 0 {
            return Err(Error::Invalid("bounded row length"));
        }
        let entries = u32_at(head, 16)? as usize;
        if entries != grid_entries(layout, row_len) {
            return Err(Error::Invalid("number of column grids"));
        }
        let entries_end = entries
            .checked_mul(COLUMN_ENTRY_LEN)
            .and_then(|n| n.checked_add(PARAMS_HEAD_LEN))
            .ok_or(Error::Invalid("number of column grids"))?;
        let grids_end = match head[0] {
            PARAMS_VERSION_POINTWISE => entries
                .checked_mul(4)
                .and_then(|n| n.checked_add(entries_end))
                .ok_or(Error::Invalid("number of column grids"))?,
            _ => entries_end,
        };
        let pointwise = payload
            .get(entries_end..grids_end)
            .ok_or(Error::Truncated)?;
        let (predictor, names_at) = match (predictor_code, layout) {
            (0, _) => (Predictor::None, grids_end),
            (1, _) => (Predictor::Model, grids_end),
            (2 | 5, Layout::Field { .. }) if !cfg!(feature = "learned") => {
                return Err(Error::NotInThisBuild(
                    "the learned field predictor (feature learned)",
                ))
            }
            (5, Layout::Field { .. }) => (
                Predictor::LearnedInFrame(read_weights(payload, grids_end)?),
                grids_end + IN_FRAME_SECTION_LEN,
            ),
            (2, Layout::Field { .. }) => (
                Predictor::Learned(read_weights(payload, grids_end)?),
                grids_end + LEARNED_SECTION_LEN,
            ),
            (3, Layout::Table) if !cfg!(feature = "relations") => {
                return Err(Error::NotInThisBuild(
                    "the column relations (feature relations)",
                ))
            }
            (3, Layout::Table) => (Predictor::Relations, grids_end),
            (4, Layout::Field { .. }) if !cfg!(feature = "tabled") => {
                return Err(Error::NotInThisBuild(
                    "interpolated fields (feature tabled)",
                ))
            }
            (4, Layout::Field { .. }) => (
                Predictor::Interpolated(InterpolationPlan::read(
                    payload.get(grids_end..).ok_or(Error::Truncated)?,
                )?),
                grids_end + interpolate::INTERPOLATION_SECTION_LEN,
            ),
            _ => return Err(Error::Invalid("bounded predictor")),
        };
        let names = payload.get(names_at..).ok_or(Error::Truncated)?;
        let count = walk_names(names, |_| ())?;
        if count != 0 && count != row_len {
            return Err(Error::Invalid("number of column names"));
        }
        let params = BoundParams {
            layout,
            predictor,
            dtype,
            row_len,
            entries: payload
                .get(PARAMS_HEAD_LEN..entries_end)
                .ok_or(Error::Truncated)?,
            pointwise,
            names,
        };
        for i in 0..entries {
            let g = params.grid(i)?;
            let integer_type = matches!(dtype, DType::I16 | DType::I32);
            let finite = g.offset.is_finite() && g.bound.is_finite() && g.bound >= 0.0;
            if !(finite && g.step.is_normal() && g.step > 0.0)
                || (integer_type
                    && (libm::round(g.step) != g.step || libm::round(g.offset) != g.offset))
            {
                return Err(Error::Invalid("column grid"));
            }
            if g.per_binade != 0 {
                // Fields: without a model or the learned predictor (both work on linear
                // grid indices).
                let fits = (layout == Layout::Table || predictor == Predictor::None)
                    && matches!(dtype, DType::F32 | DType::F64)
                    && g.per_binade <= pointwise::MAX_PER_BINADE
                    && g.step == 1.0
                    && g.bound > 0.0
                    && g.bound < 1.0
                    && g.offset >= 0.0
                    && g.offset < (1u64 << 43) as f64
                    && libm::round(g.offset) == g.offset;
                if !fits {
                    return Err(Error::Invalid("pointwise grid"));
                }
            }
            if g.context.is_some_and(|c| c as usize >= i) {
                return Err(Error::Invalid("context column must come earlier"));
            }
            if g.relation.is_some() && predictor != Predictor::Relations {
                return Err(Error::Invalid(
                    "a column relation without the relations predictor",
                ));
            }
        }
        Ok(params)
    }

    /// The grid of column `i` (of the field for `i = 0`).
    pub fn grid(&self, i: usize) -> Result<ColumnGrid> {
        let at = i * COLUMN_ENTRY_LEN;
        let context = u32_at(self.entries, at + 24)?;
        let relation = u32_at(self.entries, at + 28)?.to_le_bytes();
        Ok(ColumnGrid {
            offset: f64_at(self.entries, at)?,
            step: f64_at(self.entries, at + 8)?,
            bound: f64_at(self.entries, at + 16)?,
            context: (context != NO_CONTEXT).then_some(context),
            relation: Relation::from_bytes(relation, i)?,
            per_binade: match self.pointwise.is_empty() {
                true => 0,
                false => u32_at(self.pointwise, 4 * i)?,
            },
        })
    }

    /// Calls `each` with every column name (none when the data had no names).
    pub fn for_each_name(&self, each: impl FnMut(&str)) {
        let _ = walk_names(self.names, each);
    }

    /// Residual contexts (before any latent contexts).
    pub fn residual_contexts(&self) -> usize {
        match self.layout {
            Layout::Table => self.row_len * TABLE_CLASSES,
            Layout::Field { .. } => FIELD_CLASSES,
        }
    }

    /// `f64` values a block's coding state needs for the learned predictor's mirrors (0 without it).
    pub fn mirror_len(&self) -> usize {
        match (self.layout, self.predictor) {
            (
                Layout::Field { height, width },
                Predictor::Learned(_) | Predictor::LearnedInFrame(_),
            ) => crate::bounded::field::mirror_len(height as usize, width as usize),
            _ => 0,
        }
    }

    /// Contexts a block's coding state needs, with `latent_len` latent codes per row (0 without a
    /// model).
    pub fn contexts(&self, latent_len: usize) -> usize {
        self.residual_contexts() + latent_len
    }
}

/// The value a decoder writes for `v`: `v` as the output type would store it.
#[inline]
pub fn to_output(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F64 => v,
        DType::F32 => f64::from(v as f32),
        DType::I16 => libm::round(v).clamp(f64::from(i16::MIN), f64::from(i16::MAX)),
        DType::I32 => libm::round(v).clamp(f64::from(i32::MIN), f64::from(i32::MAX)),
    }
}

/// The grid index nearest `v`, if it is finite and within [`MAX_GRID_INDEX`]. Where it is not,
/// the coding history holds the prediction base instead (0 without a model).
/// Inlined for linear grids (a call per value was 13% of compressing a table); a pointwise
/// grid's longer path is a call of its own.
#[inline(always)]
pub fn grid_index(v: f64, g: &ColumnGrid) -> Option<i64> {
    if g.per_binade != 0 {
        return pointwise_grid_index(v, g);
    }
    let t = (v - g.offset) / g.step;
    (t.abs() <= MAX_GRID_INDEX as f64).then(|| round_half_away(t))
}

/// [`grid_index`] on a pointwise grid.
#[inline(never)]
fn pointwise_grid_index(v: f64, g: &ColumnGrid) -> Option<i64> {
    pointwise::index(v, g.per_binade, g.offset).filter(|k| k.abs() <= MAX_GRID_INDEX)
}

/// `round(t)` (halves away from zero) for |t| <= 2^40, without libm's general routine (a
/// third of the encoder's time): truncation is one instruction, and `t - trunc(t)` is exact.
#[inline]
fn round_half_away(t: f64) -> i64 {
    let whole = t as i64;
    let fraction = t - whole as f64;
    // Branch-free: the fraction's sign is random, so branches would be mispredicted.
    whole + i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5)
}

/// Grid index `k` of `x` and its decoded value (as `dtype` stores it), if that is within
/// the bound.
#[inline]
fn within_bound(x: f64, k: i64, g: &ColumnGrid, dtype: DType) -> Option<(i64, f64)> {
    let y = to_output(g.value(k), dtype);
    g.keeps(x, y).then_some((k, y))
}

#[inline]
fn bit_len(v: u64) -> usize {
    (64 - v.leading_zeros()) as usize
}

/// Rows of `i64` a block's coding state keeps (see [`ScratchSizes::history`]): the row being coded, the two before it, the learned
/// predictor's temporal sums for the row being coded, and the encoder's targets.
pub const HISTORY_ROWS: usize = 5;
/// Marks a value the encoder found off the grid (it is escaped).
const ESCAPED: i64 = i64::MIN;

/// The caller's working memory for coding rows: adaptive contexts, [`HISTORY_ROWS`] rows of
/// grid indices, and for the learned predictor its `f64` mirrors. Sizes are checked against
/// the parameters, so no size is fixed here.
#[derive(Debug)]
pub(crate) struct RowState<'b> {
    models: &'b mut [IntModel],
    older: &'b mut [i64],
    previous: &'b mut [i64],
    current: &'b mut [i64],
    temporal: &'b mut [i64],
    targets: &'b mut [i64],
    mirrors: Option<TemporalSums<'b>>,
    /// Whether the mirrors keep the frames before (the learned predictor's temporal taps;
    /// the in-frame one uses the mirrors only for its causal sums).
    mirror_frames: bool,
    /// A table's column grids, read once; empty when the caller gave no room for them.
    grids: &'b [ColumnGrid],
    /// Field blocks of kind 6: contexts from the residual to the left and the rows before
    /// ([`field::residual_activity`]) instead of from the decoded neighbours.
    residual_contexts: bool,
    /// Rows coded since the block started (saturating): the learned predictor needs two.
    rows_seen: u32,
}

impl<'b> RowState<'b> {
    /// Working memory for `params` with `latent_len` codes per row: `models` needs
    /// [`BoundParams::contexts`] entries, `history` [`HISTORY_ROWS`] rows, `mirrors`
    /// [`BoundParams::mirror_len`] values (none unless the predictor is learned); `grids`
    /// holds a table's column grids when it has room for all of them. Starts a block.
    pub fn new(
        params: &BoundParams<'_>,
        latent_len: usize,
        models: &'b mut [IntModel],
        history: &'b mut [i64],
        mirrors: &'b mut [f64],
        grids: &'b mut [ColumnGrid],
    ) -> Result<Self> {
        let contexts = params.contexts(latent_len);
        if models.len() < contexts {
            return Err(Error::CapacityExceeded {
                what: Capacity::Contexts,
                needed: contexts,
                capacity: models.len(),
            });
        }
        let n = params.row_len;
        let needed = HISTORY_ROWS * n;
        let history = history
            .get_mut(..needed)
            .ok_or(Error::BufferTooSmall { needed })?;
        let (older, rest) = history.split_at_mut(n);
        let (previous, rest) = rest.split_at_mut(n);
        let (current, rest) = rest.split_at_mut(n);
        let (temporal, targets) = rest.split_at_mut(n);
        let mirrors = match (params.layout, params.predictor) {
            (
                Layout::Field { height, width },
                Predictor::Learned(_) | Predictor::LearnedInFrame(_),
            ) if cfg!(feature = "learned") => Some(
                TemporalSums::new(height as usize, width as usize, mirrors).ok_or(
                    Error::BufferTooSmall {
                        needed: params.mirror_len(),
                    },
                )?,
            ),
            _ => None,
        };
        let grids = match grids.get_mut(..n) {
            Some(grids) if params.layout == Layout::Table => {
                for (i, g) in grids.iter_mut().enumerate() {
                    *g = params.grid(i)?;
                }
                &*grids
            }
            _ => &[],
        };
        let mut state = RowState {
            models: &mut models[..contexts],
            older,
            previous,
            current,
            temporal,
            targets,
            mirrors,
            mirror_frames: matches!(params.predictor, Predictor::Learned(_)),
            grids,
            residual_contexts: false,
            rows_seen: 0,
        };
        state.start_block();
        Ok(state)
    }

    /// Forgets all history: blocks are coded independently.
    pub fn start_block(&mut self) {
        self.models.fill(IntModel::default());
        self.older.fill(0);
        self.previous.fill(0);
        self.current.fill(0);
        self.rows_seen = 0;
    }

    /// Ends a field row: it becomes the previous frame (no copy: the rows rotate).
    fn next_frame(&mut self) {
        core::mem::swap(&mut self.older, &mut self.previous);
        core::mem::swap(&mut self.previous, &mut self.current);
        if let (Some(mirrors), true) = (&mut self.mirrors, self.mirror_frames) {
            mirrors.push_frame(self.previous);
        }
        self.rows_seen = self.rows_seen.saturating_add(1);
    }
}

/// Codes one row's latent codes (the model's input to its decoder), each in its own context.
/// The encoder passes them in; the decoder gets them back in `codes`, checked against
/// `range` (the model's code range).
pub(crate) fn code_latent<C: BitCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    state: &mut RowState<'_>,
    codes: &mut [i16],
    range: (i32, i32),
) -> Result<()> {
    let first = params.residual_contexts();
    let models = state
        .models
        .get_mut(first..first + codes.len())
        .ok_or(Error::Invalid("latent contexts"))?;
    for (index, (code, model)) in codes.iter_mut().zip(models).enumerate() {
        let value = match code_symbol(coder, model, Symbol::Value(i64::from(*code)))? {
            Symbol::Value(v) if (i64::from(range.0)..=i64::from(range.1)).contains(&v) => v,
            _ => return Err(Error::CodeOutOfRange { index }),
        };
        *code = value as i16;
    }
    Ok(())
}

/// What the prediction of a row needs besides the coding history.
#[derive(Clone, Copy)]
struct RowSetup<'p> {
    layout: Layout,
    /// The field's one grid (tables read theirs per column).
    field_grid: Option<ColumnGrid>,
    /// Learned weights, when the learned predictor is in use for this row.
    weights: Option<&'p [i32; LEARNED_TAPS]>,
    /// A table's column grids read once ([`RowState`]), or empty.
    grids: &'p [ColumnGrid],
}

impl RowSetup<'_> {
    /// The learned weights, if this row uses them; never in a build without the feature
    /// (a constant `None` there, so the learned predictor's code is left out).
    #[inline(always)]
    fn learned(&self) -> Option<&[i32; LEARNED_TAPS]> {
        self.weights.filter(|_| cfg!(feature = "learned"))
    }

    /// Value `i`'s grid: the field's, or its column's read into `slot` (a reference, not a
    /// copy per value: copying the grid cost a store-forwarding stall per value).
    #[inline(always)]
    fn grid<'g>(
        &'g self,
        params: &BoundParams<'_>,
        i: usize,
        slot: &'g mut ColumnGrid,
    ) -> Result<&'g ColumnGrid> {
        match (&self.field_grid, self.grids.get(i)) {
            (Some(g), _) | (None, Some(g)) => Ok(g),
            (None, None) => {
                *slot = params.grid(i)?;
                Ok(slot)
            }
        }
    }
}

/// A placeholder the grid of a table column is read into.
const NO_GRID: ColumnGrid = ColumnGrid::linear(0.0, 1.0, 0.0);

/// Value `i`'s grid index in what predicts it before any residual: its column's relation
/// to the `decoded` values before it in the row, or the model's reconstruction `base`
/// (0 without either).
#[inline]
fn base_index(base: Option<&[f32]>, decoded: &[f64], i: usize, g: &ColumnGrid) -> i64 {
    match (&g.relation, base) {
        (Some(_), _) | (None, None) => relation_index(g, decoded),
        (None, Some(b)) => b
            .get(i)
            .and_then(|&b| grid_index(f64::from(b), g))
            .unwrap_or(0),
    }
}

/// A table column's grid index as its relation to the `decoded` values before it in the row
/// predicts it (within the grid), or 0 without a relation.
#[inline(always)]
fn relation_index(g: &ColumnGrid, decoded: &[f64]) -> i64 {
    match &g.relation {
        // (Without the feature, parameters with relations are refused when read.)
        Some(r) if cfg!(feature = "relations") => grid_index(r.eval(decoded), g).unwrap_or(0),
        _ => 0,
    }
}

/// A table column's context class: the bit length (at most `TABLE_CLASSES - 1`) of the grid
/// index its context column has in this row (`current`), 0 without one.
#[inline(always)]
fn table_class(g: &ColumnGrid, current: &[i64]) -> usize {
    g.context.map_or(0, |j| {
        let k = current.get(j as usize).copied().unwrap_or(0);
        bit_len(k.unsigned_abs()).min(TABLE_CLASSES - 1)
    })
}

/// The prediction of value `i` (at `at`, row and column, in a field) and its context class,
/// from the decoded history only.
#[inline(always)]
fn predict(
    setup: &RowSetup<'_>,
    state: &RowState<'_>,
    g: &ColumnGrid,
    base_k: i64,
    i: usize,
    at: (usize, usize),
) -> (i64, usize) {
    let (prediction, class) = match setup.layout {
        Layout::Table => (base_k, table_class(g, state.current)),
        Layout::Field { width, .. } => {
            let width = width as usize;
            let (mut d, activity) = lorenzo(state.current, state.previous, at, width);
            if let Some(weights) = setup.learned() {
                let temporal = state.temporal.get(i).copied().unwrap_or(0);
                d = learned_prediction(weights, state.current, state.previous, at, width, temporal);
            }
            let class = bit_len(activity).min(FIELD_CLASSES - 1);
            (base_k.saturating_add(d), class)
        }
    };
    (prediction.clamp(-MAX_GRID_INDEX, MAX_GRID_INDEX), class)
}

/// Row and column of the values of a field row in turn, counted rather than divided (a
/// division per value cost a tenth of the coding time).
struct Cursor {
    width: usize,
    row: usize,
    col: usize,
}

impl Cursor {
    fn new(layout: Layout) -> Self {
        let width = match layout {
            Layout::Field { width, .. } => width as usize,
            Layout::Table => usize::MAX,
        };
        Cursor {
            width,
            row: 0,
            col: 0,
        }
    }

    /// The position of the next value.
    #[inline(always)]
    fn next(&mut self) -> (usize, usize) {
        let at = (self.row, self.col);
        self.col += 1;
        if self.col == self.width {
            (self.row, self.col) = (self.row + 1, 0);
        }
        at
    }
}

/// The context of value `i` in class `class`.
#[inline]
fn context(layout: Layout, i: usize, class: usize) -> usize {
    match layout {
        Layout::Table => i * TABLE_CLASSES + class,
        Layout::Field { .. } => class,
    }
}

/// What the history keeps of a value with grid index `k`: the index itself in a table, the
/// model's miss in a field.
#[inline]
fn history_value(layout: Layout, k: i64, base_k: i64) -> i64 {
    match layout {
        Layout::Table => k,
        Layout::Field { .. } => k - base_k,
    }
}

/// Bits of a packed prediction that hold the context class (classes are below 16).
const CLASS_BITS: u32 = 4;

/// Codes one row. The encoder passes `input`; both sides pass the same `base` (the model's
/// reconstruction of the row, or `None`) and get the decoded row in `out`, exactly as the
/// other side computes it.
pub(crate) fn code_row<C: ResidualCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    state: &mut RowState<'_>,
    input: Option<&[f64]>,
    base: Option<&[f32]>,
    out: &mut [f64],
) -> Result<()> {
    let n = params.row_len;
    let lengths_ok = out.len() == n
        && input.is_none_or(|x| x.len() == n)
        && base.is_none_or(|b| b.len() == n)
        && state.current.len() == n;
    if !lengths_ok {
        return Err(Error::FrameLength {
            expected: n,
            found: out.len(),
        });
    }
    // The in-frame predictor as the learned one with no weight on the frames before: their
    // sums are 0, and it needs no earlier frame in the block to start.
    let mut in_frame = [0i32; LEARNED_TAPS];
    let weights = match (&params.predictor, &mut state.mirrors, state.rows_seen) {
        (Predictor::Learned(w), Some(mirrors), 2..) if cfg!(feature = "learned") => {
            mirrors.compute(w, [state.older, state.previous], state.temporal);
            Some(w)
        }
        (Predictor::LearnedInFrame(w), Some(_), _) if cfg!(feature = "learned") => {
            in_frame[..CAUSAL_TAPS.len()].copy_from_slice(w);
            state.temporal.fill(0);
            Some(&in_frame)
        }
        _ => None,
    };
    let setup = RowSetup {
        layout: params.layout,
        field_grid: match params.layout {
            Layout::Field { .. } => Some(params.grid(0)?),
            Layout::Table => None,
        },
        weights,
        grids: state.grids,
    };
    // Each coder runs one direction, known at compile time: an encoder's instance leaves the
    // decoder's loop out (8 KB of the firmware's flash) and a decoder's the encoder's.
    match input {
        Some(x) if C::ENCODER => encode_row(coder, params, &setup, state, x, base, out)?,
        None if !C::ENCODER => decode_row(coder, params, &setup, state, base, out)?,
        _ => {
            return Err(Error::Misuse(
                "rows are encoded by encoders, decoded by decoders",
            ))
        }
    }
    if let Layout::Field { .. } = params.layout {
        state.next_frame();
    }
    Ok(())
}

/// A model as error-bounded coding sees it: latent codes per row, and the row it decodes
/// them to. Implemented by [`crate::Model`] for tables (a row is a frame); a host can wrap a
/// model to cover a row with tiles.
pub trait RowModel {
    /// Latent codes per row.
    fn row_codes(&self) -> usize;
    /// Smallest and largest valid code.
    fn code_limits(&self) -> (i32, i32);
    /// Encodes a row into its latent codes (encoder side only).
    fn encode_row(&self, row: &[f64], codes: &mut [i16]) -> Result<()>;
    /// The row the codes decode to (both sides; must be bit-exact everywhere).
    fn decode_row(&self, codes: &[i16], out: &mut [f32]) -> Result<()>;
}

impl<const L: usize, const W: usize> RowModel for crate::Model<'_, L, W> {
    fn row_codes(&self) -> usize {
        self.latent_len()
    }

    fn code_limits(&self) -> (i32, i32) {
        self.code_range()
    }

    fn encode_row(&self, row: &[f64], codes: &mut [i16]) -> Result<()> {
        let mut frame = [0f32; W];
        let frame = frame.get_mut(..row.len()).ok_or(Error::FrameLength {
            expected: self.input_len(),
            found: row.len(),
        })?;
        // The model only predicts; values it cannot take (NaN, infinities, beyond f32) are
        // escaped by the residual coder anyway, so it sees 0 there.
        for (f, &v) in frame.iter_mut().zip(row) {
            let v = v as f32;
            *f = if v.is_finite() { v } else { 0.0 };
        }
        self.encode_frame(frame, codes)
    }

    fn decode_row(&self, codes: &[i16], out: &mut [f32]) -> Result<()> {
        self.decode_frame(codes, out)
    }
}

/// Caller memory for coding a block: everything but the adaptive contexts of [`RowState`]
/// and the latent codes and model reconstruction of one row.
#[derive(Debug)]
pub(crate) struct BlockBuffers<'b> {
    /// Coding state.
    pub state: RowState<'b>,
    /// One row's latent codes ([`RowModel::row_codes`] long; empty without a model).
    pub codes: &'b mut [i16],
    /// One row's model reconstruction (a row long; may be empty without a model).
    pub base: &'b mut [f32],
    /// Interpolated fields: the grid indices of a whole block (empty otherwise).
    pub volume: &'b mut [i64],
}

/// Whole rows of `n` in `out`, and as many input values as output values.
fn check_block_lengths(n: usize, input: Option<&[f64]>, out: &[f64]) -> Result<()> {
    if out.len() % n != 0 || input.is_some_and(|x| x.len() != out.len()) {
        return Err(Error::FrameLength {
            expected: n,
            found: out.len() % n,
        });
    }
    Ok(())
}

/// Codes `rows` rows of a block in either direction: the encoder passes `input` (rows back to
/// back); both get the decoded rows in `out`. The model is required iff the parameters say so.
pub(crate) fn code_block<C: BitCoder, M: RowModel>(
    coder: &mut C,
    params: &BoundParams<'_>,
    model: Option<&M>,
    buffers: &mut BlockBuffers<'_>,
    input: Option<&[f64]>,
    out: &mut [f64],
) -> Result<()> {
    let model = match (&params.predictor, model) {
        (Predictor::Model, Some(m)) => m,
        (Predictor::Model, None) => return Err(Error::ModelRequired),
        (
            Predictor::None
            | Predictor::Learned(_)
            | Predictor::LearnedInFrame(_)
            | Predictor::Relations
            | Predictor::Interpolated(_),
            _,
        ) => {
            return code_residual_block(coder, params, &mut buffers.state, input, out);
        }
    };
    let n = params.row_len;
    check_block_lengths(n, input, out)?;
    buffers.state.start_block();
    for (r, row_out) in out.chunks_exact_mut(n).enumerate() {
        let row_in = input.map(|x| &x[r * n..(r + 1) * n]);
        let codes = buffers
            .codes
            .get_mut(..model.row_codes())
            .ok_or(Error::BufferTooSmall {
                needed: model.row_codes(),
            })?;
        if let Some(row) = row_in {
            model.encode_row(row, codes)?;
        }
        code_latent(
            coder,
            params,
            &mut buffers.state,
            codes,
            model.code_limits(),
        )?;
        let base = buffers
            .base
            .get_mut(..n)
            .ok_or(Error::BufferTooSmall { needed: n })?;
        model.decode_row(codes, base)?;
        code_row(
            coder,
            params,
            &mut buffers.state,
            row_in,
            Some(base),
            row_out,
        )?;
    }
    Ok(())
}

/// Decodes the payload of one residual block of `kind` into `out` (its rows back to back)
/// with the coder the kind names, and checks that the payload ends where that coder does.
/// `tables` is working memory for tabled blocks, which only streams without a model may hold
/// ([`tabled_contexts_of`]).
pub(crate) fn decode_residuals<M: RowModel>(
    kind: BlockKind,
    payload: &[u8],
    params: &BoundParams<'_>,
    model: Option<&M>,
    buffers: &mut BlockBuffers<'_>,
    tables: &mut [ContextTable],
    out: &mut [f64],
) -> Result<()> {
    if let Predictor::Interpolated(plan) = params.predictor {
        if !cfg!(feature = "tabled") {
            return Err(Error::NotInThisBuild(
                "interpolated fields (feature tabled)",
            ));
        }
        return match kind {
            BlockKind::Interpolated => {
                decode_interpolated(payload, params, &plan, buffers.volume, tables, out)
            }
            _ => Err(Error::Invalid(
                "an interpolated stream holds only kind 7 blocks",
            )),
        };
    }
    match kind {
        BlockKind::Residuals => {
            buffers.state.residual_contexts = false;
            let mut decoder = RangeDecoder::new(payload)?;
            code_block(&mut decoder, params, model, buffers, None, out)?;
            if decoder.position() != payload.len() {
                return Err(Error::TrailingBytes);
            }
            Ok(())
        }
        BlockKind::TabledResiduals | BlockKind::TabledResidualContexts
            if !cfg!(feature = "tabled") =>
        {
            Err(Error::NotInThisBuild("the tabled coder (feature tabled)"))
        }
        BlockKind::TabledResidualContexts if !residual_contexts_apply(params) => Err(
            Error::Invalid("residual contexts in a stream that cannot have them"),
        ),
        BlockKind::TabledResiduals | BlockKind::TabledResidualContexts
            if tabled_applies(params) =>
        {
            buffers.state.residual_contexts = kind == BlockKind::TabledResidualContexts;
            let mut decoder = TabledDecoder::new(payload, tables_for(params, tables)?)?;
            code_residual_block(&mut decoder, params, &mut buffers.state, None, out)?;
            decoder.finish()
        }
        BlockKind::TabledResiduals => Err(Error::Invalid(
            "tabled residuals in a stream that cannot have them",
        )),
        BlockKind::Interpolated => Err(Error::Invalid(
            "an interpolated block in a stream without the interpolation predictor",
        )),
        _ => Err(Error::Invalid("expected a residual block")),
    }
}

/// The tables a tabled block of a stream with these parameters needs, from `tables`.
fn tables_for<'t>(
    params: &BoundParams<'_>,
    tables: &'t mut [ContextTable],
) -> Result<&'t mut [ContextTable]> {
    let contexts = tabled_contexts_of(params).unwrap_or(0);
    let capacity = tables.len();
    tables.get_mut(..contexts).ok_or(Error::CapacityExceeded {
        what: Capacity::Contexts,
        needed: contexts,
        capacity,
    })
}

/// The volume of a field block of `values` values under `plan` ([`InterpolationPlan::dims`]).
fn block_dims(
    params: &BoundParams<'_>,
    plan: &InterpolationPlan,
    values: usize,
) -> Result<interpolate::Dims> {
    match params.layout {
        Layout::Field { height, width } => {
            let frames = values / params.row_len.max(1);
            Ok(plan.dims(frames, height as usize, width as usize))
        }
        Layout::Table => Err(Error::Invalid("interpolation is for fields")),
    }
}

/// Decodes a block of kind 7 ([`interpolate`]) into `out`, `volume` holding its grid indices.
fn decode_interpolated(
    payload: &[u8],
    params: &BoundParams<'_>,
    plan: &InterpolationPlan,
    volume: &mut [i64],
    tables: &mut [ContextTable],
    out: &mut [f64],
) -> Result<()> {
    check_block_lengths(params.row_len, None, out)?;
    let (dims, g, volume, tables) = interpolated_parts(params, plan, out.len(), volume, tables)?;
    let mut decoder = TabledDecoder::new(payload, tables)?;
    interpolate::decode(&mut decoder, &g, params.dtype, plan, dims, out, volume)?;
    decoder.finish()
}

/// What coding an interpolated block of `values` values needs, either way: its volume's axes,
/// the field's grid, room for its grid indices, and its frequency tables.
fn interpolated_parts<'v, 't>(
    params: &BoundParams<'_>,
    plan: &InterpolationPlan,
    values: usize,
    volume: &'v mut [i64],
    tables: &'t mut [ContextTable],
) -> Result<(
    interpolate::Dims,
    ColumnGrid,
    &'v mut [i64],
    &'t mut [ContextTable],
)> {
    let dims = block_dims(params, plan, values)?;
    let capacity = volume.len();
    let volume = volume.get_mut(..values).ok_or(Error::CapacityExceeded {
        what: Capacity::BlockValues,
        needed: values,
        capacity,
    })?;
    Ok((dims, params.grid(0)?, volume, tables_for(params, tables)?))
}

/// Codes the rows of a block without a model ([`Predictor::Model`] is refused) through any
/// [`ResidualCoder`]: the adaptive range coder, or the tabled coder (`entropy/tabled.rs`).
/// The encoder passes `input` (rows back to back); both get the decoded rows in `out`.
pub(crate) fn code_residual_block<C: ResidualCoder>(
    coder: &mut C,
    params: &BoundParams<'_>,
    state: &mut RowState<'_>,
    input: Option<&[f64]>,
    out: &mut [f64],
) -> Result<()> {
    let n = params.row_len;
    check_block_lengths(n, input, out)?;
    match params.predictor {
        Predictor::Model => return Err(Error::ModelRequired),
        Predictor::Interpolated(_) => {
            return Err(Error::Invalid(
                "an interpolated stream holds only kind 7 blocks",
            ))
        }
        _ => {}
    }
    state.start_block();
    for (r, row_out) in out.chunks_exact_mut(n).enumerate() {
        let row_in = input.map(|x| &x[r * n..(r + 1) * n]);
        code_row(coder, params, state, row_in, None, row_out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_rounding_matches_libm_everywhere_it_is_used() {
        let limit = MAX_GRID_INDEX as f64;
        let mut values = specials(limit);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Uniform bit patterns cover every exponent; keep those within the grid range.
            let t = f64::from_bits(state);
            if t.is_finite() && t.abs() <= limit {
                values.push(t);
            }
            let scaled = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 * limit - limit;
            values.push(scaled);
        }
        for t in values {
            assert_eq!(round_half_away(t), libm::round(t) as i64, "{t:e}");
        }
    }

    #[test]
    #[cfg(feature = "relations")]
    fn relations_need_their_predictor_and_a_table() {
        let g = |relation| ColumnGrid {
            offset: 0.0,
            step: 1.0,
            bound: 0.5,
            context: None,
            relation,
            per_binade: 0,
        };
        let norm = Relation {
            kind: RelationKind::Norm2,
            columns: [0, 1, 0],
        };
        let grids = [g(None), g(None), g(Some(norm))];
        let mut out = [0u8; 256];
        let write = |layout, predictor, grids: &[ColumnGrid], out: &mut [u8]| {
            write_params(layout, predictor, DType::F64, 3, grids, &[], out)
        };
        let len = write(Layout::Table, Predictor::Relations, &grids, &mut out).unwrap();
        let params = BoundParams::read(&out[..len]).unwrap();
        assert_eq!(params.grid(2).unwrap().relation, Some(norm));
        // Under another predictor the relation bytes are refused, not ignored.
        assert!(write(Layout::Table, Predictor::None, &grids, &mut out).is_err());
        let mut tampered = out;
        tampered[2] = 0;
        assert!(BoundParams::read(&tampered[..len]).is_err());
        // A field has no columns to relate.
        let field = Layout::Field {
            height: 1,
            width: 3,
        };
        assert!(write(field, Predictor::Relations, &[g(None)], &mut out).is_err());
    }

    fn specials(limit: f64) -> std::vec::Vec<f64> {
        let mut v = std::vec![
            0.0,
            -0.0,
            limit,
            -limit,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE
        ];
        for k in -1000i64..1000 {
            let k = k as f64;
            for d in [0.5, -0.5, 0.49999999999999994, 0.5000000000000001] {
                v.push(k + d);
            }
        }
        v.push(limit - 0.5);
        v.push(-(limit - 0.5));
        v
    }
}
