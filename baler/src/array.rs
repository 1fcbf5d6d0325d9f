//! The in-memory API: [`compress`] an [`Array`] into stream bytes, [`decompress`] them back.

use crate::data::Header;
use crate::pipeline::{compress_to, decompress_from, Compressed, Options};
use crate::rows::{ArrayRows, RowInput};
use crate::Error;
use baler_codec::stream::MAX_ARRAY_RANK;
use baler_codec::DType;
use std::io::Cursor;
use std::path::Path;

/// The values of an [`Array`], in one of the element types a stream records.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 16-bit integers (ADC counts, say).
    I16(Vec<i16>),
    /// 32-bit integers.
    I32(Vec<i32>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Values::F32(_) => DType::F32,
            Values::F64(_) => DType::F64,
            Values::I16(_) => DType::I16,
            Values::I32(_) => DType::I32,
        }
    }

    /// The values widened to `f64` (exact for every element type).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::F64(v) => v.clone(),
            Values::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        }
    }

    /// `f64` values narrowed to `dtype` (a decoder's output is representable in it).
    fn from_f64(values: Vec<f64>, dtype: DType) -> Result<Values, Error> {
        Ok(match dtype {
            DType::F64 => Values::F64(values),
            DType::F32 => Values::F32(values.into_iter().map(|x| x as f32).collect()),
            DType::I16 => Values::I16(values.into_iter().map(|x| x as i16).collect()),
            DType::I32 => Values::I32(values.into_iter().map(|x| x as i32).collect()),
            other => {
                return Err(Error::input(format!(
                    "element type {other:?} is not supported"
                )))
            }
        })
    }
}

/// An n-dimensional array, row-major: what compress takes and decompress gives back.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    shape: Vec<usize>,
    values: Values,
    names: Vec<String>,
}

impl Array {
    /// An array of `shape` (rank 1 to 8) holding `values` row-major. Every dimension but the
    /// first is at least 1; the first may be 0 (no rows: an empty stream, which error-bounded
    /// compression writes and decompression gives back). Fixed-rate streams hold ranks 1 to 4.
    pub fn new(shape: &[usize], values: Values) -> Result<Array, Error> {
        if shape.is_empty() || shape.len() > MAX_ARRAY_RANK {
            return Err(Error::input(format!(
                "arrays of rank 1 to {MAX_ARRAY_RANK} are supported, not {}",
                shape.len()
            )));
        }
        if shape[1..].contains(&0) {
            return Err(Error::input(format!(
                "only the first dimension may be 0, not in shape {shape:?} (rows of no values cannot be coded)"
            )));
        }
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count != Some(values.len()) {
            return Err(Error::input(format!(
                "shape {shape:?} does not hold {} values",
                values.len()
            )));
        }
        Ok(Array {
            shape: shape.to_vec(),
            values,
            names: Vec::new(),
        })
    }

    /// The same array with column names (a table's, one per column; they travel in
    /// error-bounded streams).
    pub fn with_names(mut self, names: Vec<String>) -> Result<Array, Error> {
        let columns: usize = self.shape[1..].iter().product();
        if self.shape.len() != 2 || names.len() != columns {
            return Err(Error::input(format!(
                "{} names for an array of shape {:?} (one per column of a table)",
                names.len(),
                self.shape
            )));
        }
        self.names = names;
        Ok(self)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The values, taken.
    pub fn into_values(self) -> Values {
        self.values
    }

    /// Column names (empty when there are none).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.values.dtype()
    }
}

/// Compresses `array` as `options` say: within an error bound (see [`Options::bounded`]) or
/// at a fixed rate with a model ([`Options::fixed_rate`]). Returns the stream, the same bytes
/// `baler compress` writes for the same data in a file.
///
/// ```
/// use baler::{compress, decompress, Array, Bound, Options, Values};
/// // A noisy sine: 10,000 samples, every one to come back within 1e-3.
/// let samples: Vec<f64> = (0..10_000)
///     .map(|i| (i as f64 * 0.01).sin() + 1e-4 * ((i * 7919 % 101) as f64 - 50.0) / 50.0)
///     .collect();
/// let array = Array::new(&[samples.len()], Values::F64(samples.clone()))?;
/// let stream = compress(&array, &Options::bounded(Bound::Absolute(1e-3)))?;
/// assert!(stream.len() * 10 < samples.len() * 8); // better than 10x
/// let back = decompress(&stream, None)?;
/// assert_eq!(back.shape(), &[10_000]);
/// let Values::F64(decoded) = back.values() else { unreachable!() };
/// assert!(samples.iter().zip(decoded).all(|(x, y)| (x - y).abs() <= 1e-3));
/// # Ok::<(), baler::Error>(())
/// ```
pub fn compress(array: &Array, options: &Options<'_>) -> Result<Vec<u8>, Error> {
    compress_reporting(array, options).map(|(bytes, _)| bytes)
}

/// [`compress`], with what it chose and measured.
pub fn compress_reporting(
    array: &Array,
    options: &Options<'_>,
) -> Result<(Vec<u8>, Compressed), Error> {
    let header = Header {
        shape: array.shape.clone(),
        dtype: array.dtype(),
        names: array.names.clone(),
    };
    // f64 values are read in place; other types are widened once.
    let values: std::borrow::Cow<'_, [f64]> = match &array.values {
        Values::F64(v) => std::borrow::Cow::Borrowed(v),
        other => std::borrow::Cow::Owned(other.to_f64()),
    };
    // The drivers ask for chunks of the size they read from files, so a file and the same
    // array in memory give the same stream.
    let open = |chunk: usize| -> Result<Box<dyn RowInput + '_>, Error> {
        Ok(Box::new(ArrayRows::new(header.clone(), &values, chunk)))
    };
    let mut out = Cursor::new(Vec::new());
    let outcome = compress_to(&open, Path::new("array"), &mut out, options, &|_, _| {})?;
    Ok((out.into_inner(), outcome))
}

/// Decompresses a stream into an array: shape, element type and column names as compressed.
/// `model` is the model blob the stream was coded with, if it was (fixed-rate streams, and
/// error-bounded ones that chose the model). Damaged or foreign bytes are an error, never a
/// panic.
pub fn decompress(stream: &[u8], model: Option<&[u8]>) -> Result<Array, Error> {
    let mut reader = Cursor::new(stream);
    let (values, decoded) = decompress_from(
        &mut reader,
        stream.len() as u64,
        model,
        |_| Ok(Vec::<f64>::new()),
        &|_, _| {},
    )?;
    if reader.position() != stream.len() as u64 {
        return Err(Error::codec(baler_codec::Error::TrailingBytes));
    }
    let output = decoded.output;
    Ok(Array {
        values: Values::from_f64(values, output.dtype)?,
        shape: output.shape,
        names: output.names,
    })
}
