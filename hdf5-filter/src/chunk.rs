//! One chunk through the library, both ways, in safe code: the stored bytes (in the dataset's
//! byte order) to a baler stream, and a stream back to exactly one chunk's bytes.

use crate::params::{ChunkLayout, UserParams};
use baler::{Array, DType, Options, Values};

/// Compresses one chunk's stored bytes.
pub fn encode(raw: &[u8], user: &UserParams, layout: &ChunkLayout) -> Result<Vec<u8>, String> {
    if layout.bytes() != Some(raw.len()) {
        return Err(format!(
            "baler filter: a chunk of {} bytes, expected {:?} x {:?} ({} bytes)",
            raw.len(),
            layout.dims,
            layout.dtype,
            layout.bytes().unwrap_or(0)
        ));
    }
    let values = read_values(raw, layout);
    let array = Array::new(&layout.dims, values).map_err(|e| format!("baler filter: {e}"))?;
    let mut options = Options::bounded(user.bound);
    options.field = user.field;
    baler::compress(&array, &options).map_err(|e| format!("baler filter: {e}"))
}

/// Decompresses one chunk's stream into its stored bytes; a stream that does not decode, or
/// that holds anything but one chunk of this layout, is an error.
pub fn decode(stream: &[u8], layout: &ChunkLayout) -> Result<Vec<u8>, String> {
    let array = baler::decompress(stream, None).map_err(|e| format!("baler filter: {e}"))?;
    if array.dtype() != layout.dtype || array.shape() != layout.dims.as_slice() {
        return Err(format!(
            "baler filter: the chunk decodes to {:?} x {:?}, the dataset's chunks are {:?} x {:?}",
            array.shape(),
            array.dtype(),
            layout.dims,
            layout.dtype
        ));
    }
    Ok(write_values(array.values(), layout.big_endian))
}

/// Fixed-size values from bytes in either order.
macro_rules! read_as {
    ($raw:expr, $t:ty, $big:expr) => {
        $raw.chunks_exact(std::mem::size_of::<$t>())
            .map(|b| {
                let bytes = b.try_into().expect("chunks_exact gives whole values");
                if $big {
                    <$t>::from_be_bytes(bytes)
                } else {
                    <$t>::from_le_bytes(bytes)
                }
            })
            .collect()
    };
}

fn read_values(raw: &[u8], layout: &ChunkLayout) -> Values {
    let big = layout.big_endian;
    match layout.dtype {
        DType::F32 => Values::F32(read_as!(raw, f32, big)),
        DType::F64 => Values::F64(read_as!(raw, f64, big)),
        DType::I16 => Values::I16(read_as!(raw, i16, big)),
        // The layout parser admits these four types only.
        _ => Values::I32(read_as!(raw, i32, big)),
    }
}

/// Values to bytes in either order.
macro_rules! write_as {
    ($values:expr, $big:expr) => {
        $values
            .iter()
            .flat_map(|v| {
                if $big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            })
            .collect()
    };
}

fn write_values(values: &Values, big: bool) -> Vec<u8> {
    match values {
        Values::F32(v) => write_as!(v, big),
        Values::F64(v) => write_as!(v, big),
        Values::I16(v) => write_as!(v, big),
        Values::I32(v) => write_as!(v, big),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baler::Bound;

    fn layout(dtype: DType, big_endian: bool, dims: &[usize]) -> ChunkLayout {
        ChunkLayout {
            dtype,
            big_endian,
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn a_chunk_comes_back_within_the_bound_in_its_byte_order() {
        let values: Vec<f64> = (0..600).map(|i| (i as f64 * 0.05).sin() * 40.0).collect();
        let user = UserParams {
            bound: Bound::Absolute(1e-2),
            field: true,
        };
        for big in [false, true] {
            let layout = layout(DType::F64, big, &[20, 30]);
            let raw: Vec<u8> = write_values(&Values::F64(values.clone()), big);
            let stream = encode(&raw, &user, &layout).unwrap();
            assert!(stream.len() * 4 < raw.len(), "{} bytes", stream.len());
            let back = decode(&stream, &layout).unwrap();
            let Values::F64(decoded) = read_values(&back, &layout) else {
                panic!("f64 layout read as another type")
            };
            let worst = values
                .iter()
                .zip(&decoded)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-2, "max error {worst}");
        }
    }

    #[test]
    fn a_chunk_of_another_layout_or_damaged_is_an_error() {
        let user = UserParams {
            bound: Bound::Relative(1e-3),
            field: false,
        };
        let small = layout(DType::F32, false, &[10, 4]);
        let raw = write_values(&Values::F32((0..40).map(|i| i as f32).collect()), false);
        assert!(encode(&raw[..raw.len() - 4], &user, &small).is_err());
        let stream = encode(&raw, &user, &small).unwrap();
        assert!(decode(&stream, &layout(DType::F32, false, &[4, 10])).is_err());
        assert!(decode(&stream, &layout(DType::F64, false, &[10, 4])).is_err());
        let mut damaged = stream.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 0x5a;
        assert!(decode(&damaged, &small).is_err());
        assert!(decode(&stream[..stream.len() / 2], &small).is_err());
        assert_eq!(decode(&stream, &small).unwrap().len(), raw.len());
    }
}
