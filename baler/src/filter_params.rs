//! The HDF5 filter's parameters (`hdf5-filter/`) as HDF5 stores them: a list of 32-bit
//! `cd_values` in each dataset's filter pipeline. What the user gives comes first; the
//! filter's `set_local` appends what the chunks need (element type, byte order, chunk shape),
//! so a reader needs nothing but the file. Here, in the library, so that the plugin and the
//! Python package (`baler_rs.hdf5_filter`) write one layout.
//!
//! Layout, version 1 (`cd_values[i]`, each a `u32`):
//!
//! | index | meaning |
//! |---|---|
//! | 0 | layout version, 1 |
//! | 1 | bound kind: 0 absolute, 1 a fraction of each chunk's range (per column for 2-D table chunks), 2 pointwise relative (every x within R \|x\|), 3 lossless (the value is ignored) |
//! | 2, 3 | the bound, an `f64`: low and high 32 bits of its IEEE-754 bits |
//! | 4 | flags: bit 0 codes 2-D chunks as images (fields) rather than tables |
//! | 5 | element type: 1 `f32`, 2 `f64`, 3 `i16`, 4 `i32` (set by `set_local`) |
//! | 6 | byte order of the stored values: 0 little-endian, 1 big-endian (set by `set_local`) |
//! | 7 | chunk rank r, 1 to 8 (set by `set_local`) |
//! | 8 .. 8+r | chunk dimensions, slowest first (set by `set_local`) |

use crate::{Bound, DType};

/// The layout version this plugin writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
/// How many values the user gives (indices 0 to 4).
pub const USER_VALUES: usize = 5;
/// The largest chunk rank the library codes.
pub const MAX_CHUNK_RANK: usize = 8;

/// Flag bit: 2-D chunks are images.
const FLAG_FIELD: u32 = 1;

/// What the user chose: the bound and how 2-D chunks are coded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserParams {
    /// The error bound.
    pub bound: Bound,
    /// Code 2-D chunks as images (rows predicted from the rows above).
    pub field: bool,
}

/// How the stored values of one chunk are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLayout {
    /// Element type.
    pub dtype: DType,
    /// Whether the stored bytes are big-endian.
    pub big_endian: bool,
    /// Chunk dimensions, slowest first.
    pub dims: Vec<usize>,
}

impl ChunkLayout {
    /// Bytes of one chunk.
    pub fn bytes(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(self.dtype.size(), |a, &d| a.checked_mul(d))
    }
}

/// Everything a chunk's coding needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterParams {
    /// The user's choices.
    pub user: UserParams,
    /// The chunk layout (`None` until `set_local` has run).
    pub layout: Option<ChunkLayout>,
}

/// A `cd_values` list this plugin cannot use, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError(pub String);

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, ParamsError> {
    Err(ParamsError(message.into()))
}

/// The user's part of `cd_values` for `bound` (what `baler_rs.hdf5_filter` gives h5py).
pub fn pack_user(user: &UserParams) -> [u32; USER_VALUES] {
    let (kind, value) = match user.bound {
        Bound::Absolute(v) => (0, v),
        Bound::Relative(v) => (1, v),
        Bound::Pointwise(v) => (2, v),
        Bound::Lossless => (3, 1.0),
    };
    let bits = value.to_bits();
    [
        LAYOUT_VERSION,
        kind,
        bits as u32,
        (bits >> 32) as u32,
        if user.field { FLAG_FIELD } else { 0 },
    ]
}

/// The full `cd_values`: the user's part, then the chunk layout.
pub fn pack(user: &UserParams, layout: &ChunkLayout) -> Vec<u32> {
    let mut values = pack_user(user).to_vec();
    values.push(dtype_code(layout.dtype));
    values.push(u32::from(layout.big_endian));
    values.push(layout.dims.len() as u32);
    values.extend(layout.dims.iter().map(|&d| d as u32));
    values
}

/// Reads `cd_values` (the user's part alone, or the full list).
pub fn parse(values: &[u32]) -> Result<FilterParams, ParamsError> {
    if values.len() < USER_VALUES {
        return error(format!(
            "baler filter: {} parameters, expected at least {USER_VALUES} (use baler_rs.hdf5_filter(error_bound=...) to make them)",
            values.len()
        ));
    }
    if values[0] != LAYOUT_VERSION {
        return error(format!(
            "baler filter: parameter layout version {} is not known (this plugin knows version {LAYOUT_VERSION}; a newer plugin may have written it)",
            values[0]
        ));
    }
    let value = f64::from_bits(u64::from(values[2]) | u64::from(values[3]) << 32);
    if !(value.is_finite() && value > 0.0) {
        return error(format!(
            "baler filter: the error bound must be a positive number, not {value}"
        ));
    }
    let bound = match values[1] {
        0 => Bound::Absolute(value),
        1 => Bound::Relative(value),
        2 if value < 1.0 => Bound::Pointwise(value),
        2 => {
            return error(format!(
                "baler filter: a pointwise bound must be below 1, not {value}"
            ))
        }
        3 => Bound::Lossless,
        kind => return error(format!("baler filter: bound kind {kind} is not known")),
    };
    if values[4] & !FLAG_FIELD != 0 {
        return error(format!("baler filter: unknown flags {:#x}", values[4]));
    }
    let user = UserParams {
        bound,
        field: values[4] & FLAG_FIELD != 0,
    };
    if values.len() == USER_VALUES {
        return Ok(FilterParams { user, layout: None });
    }
    let layout = parse_layout(&values[USER_VALUES..])?;
    Ok(FilterParams {
        user,
        layout: Some(layout),
    })
}

fn parse_layout(values: &[u32]) -> Result<ChunkLayout, ParamsError> {
    let [dtype, order, rank, dims @ ..] = values else {
        return error("baler filter: the chunk layout parameters are cut short");
    };
    let dtype = match dtype {
        1 => DType::F32,
        2 => DType::F64,
        3 => DType::I16,
        4 => DType::I32,
        other => {
            return error(format!(
                "baler filter: element type code {other} is not known"
            ))
        }
    };
    let big_endian = match order {
        0 => false,
        1 => true,
        other => {
            return error(format!(
                "baler filter: byte order code {other} is not known"
            ))
        }
    };
    let rank = *rank as usize;
    if rank == 0 || rank > MAX_CHUNK_RANK || dims.len() != rank {
        return error(format!(
            "baler filter: chunk rank {rank} with {} dimensions (ranks 1 to {MAX_CHUNK_RANK})",
            dims.len()
        ));
    }
    if dims.contains(&0) {
        return error("baler filter: a chunk dimension is 0");
    }
    let layout = ChunkLayout {
        dtype,
        big_endian,
        dims: dims.iter().map(|&d| d as usize).collect(),
    };
    if layout.bytes().is_none() {
        return error("baler filter: the chunk is too large to address");
    }
    Ok(layout)
}

fn dtype_code(dtype: DType) -> u32 {
    match dtype {
        DType::F32 => 1,
        DType::F64 => 2,
        DType::I16 => 3,
        DType::I32 => 4,
        // `set_local` only builds layouts of the four types above.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_list_reads_back_what_was_packed() {
        let user = UserParams {
            bound: Bound::Absolute(1.5e-3),
            field: true,
        };
        let layout = ChunkLayout {
            dtype: DType::F32,
            big_endian: true,
            dims: vec![7, 11, 13],
        };
        let values = pack(&user, &layout);
        assert_eq!(values.len(), USER_VALUES + 3 + 3);
        let back = parse(&values).unwrap();
        assert_eq!(back.user, user);
        assert_eq!(back.layout, Some(layout));
        assert_eq!(parse(&values[..USER_VALUES]).unwrap().layout, None);
    }

    #[test]
    fn bad_lists_are_refused_with_a_reason() {
        let user = pack_user(&UserParams {
            bound: Bound::Relative(1e-3),
            field: false,
        });
        let good = [user.to_vec(), vec![2, 0, 2, 10, 10]].concat();
        assert!(parse(&good).is_ok());
        let mut cases: Vec<Vec<u32>> = vec![vec![], user[..4].to_vec()];
        for (index, value) in [
            (0, 2),
            (1, 9),
            (3, 0x7ff8_0000),
            (4, 2),
            (5, 9),
            (6, 2),
            (7, 3),
            (8, 0),
        ] {
            let mut bad = good.clone();
            bad[index] = value;
            cases.push(bad);
        }
        cases.push(good[..good.len() - 1].to_vec());
        cases.push([user.to_vec(), vec![2, 0, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1]].concat());
        for case in cases {
            let message = parse(&case).unwrap_err().0;
            assert!(message.starts_with("baler filter: "), "{case:?}: {message}");
        }
    }
}
