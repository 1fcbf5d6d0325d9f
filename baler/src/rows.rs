//! Where the compress and decompress drivers get rows from and put rows to: a data file read
//! in chunks ([`crate::data::RowSource`]), an array in memory ([`ArrayRows`]), and the
//! regrouping of a 1-D series into frames ([`SeriesRows`]). The drivers see only these traits,
//! so files and arrays go through the same code.

use crate::data::{Header, RowSink, RowSource};

/// Rows delivered in chunks of whole rows, with full precision.
pub trait RowInput {
    /// Shape, element type and names of the data.
    fn header(&self) -> &Header;
    /// The next chunk of whole rows, or `None` at the end.
    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error>;
    /// Takes back a chunk the caller is done with, to be filled again (by default dropped).
    fn recycle(&mut self, chunk: Vec<f64>) {
        drop(chunk);
    }
}

impl RowInput for RowSource {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error> {
        RowSource::next_chunk_f64(self)
    }

    fn recycle(&mut self, chunk: Vec<f64>) {
        RowSource::recycle(self, chunk)
    }
}

/// Where decoded rows go.
pub trait RowOutput {
    /// Appends rows given with full precision.
    fn push_f64(&mut self, values: Vec<f64>) -> Result<(), crate::Error>;
    /// Appends rows decoded as `f32` (a fixed-rate model's output).
    fn push_f32(&mut self, values: Vec<f32>) -> Result<(), crate::Error> {
        self.push_f64(values.into_iter().map(f64::from).collect())
    }
    /// A buffer of values pushed before that is free to be filled again (by default none).
    fn spare_buffer(&mut self) -> Option<Vec<f64>> {
        None
    }
}

impl RowOutput for RowSink {
    fn push_f64(&mut self, values: Vec<f64>) -> Result<(), crate::Error> {
        RowSink::push_f64(self, values)
    }

    // CSV output prints values that came as f32 as f32 do.
    fn push_f32(&mut self, values: Vec<f32>) -> Result<(), crate::Error> {
        RowSink::push(self, values)
    }

    fn spare_buffer(&mut self) -> Option<Vec<f64>> {
        RowSink::spare_buffer(self)
    }
}

impl RowOutput for Vec<f64> {
    fn push_f64(&mut self, values: Vec<f64>) -> Result<(), crate::Error> {
        self.extend_from_slice(&values);
        Ok(())
    }
}

/// An array in memory as rows (values widened to `f64`), in chunks of about
/// `values_per_chunk` values.
pub struct ArrayRows<'a> {
    header: Header,
    values: &'a [f64],
    at: usize,
    chunk: usize,
}

impl<'a> ArrayRows<'a> {
    /// Rows of `values` (row-major, `header.shape`).
    pub fn new(header: Header, values: &'a [f64], values_per_chunk: usize) -> Self {
        let n = header.row_len().max(1);
        let chunk = (values_per_chunk / n).max(1) * n;
        ArrayRows {
            header,
            values,
            at: 0,
            chunk,
        }
    }
}

impl RowInput for ArrayRows<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error> {
        if self.at >= self.values.len() {
            return Ok(None);
        }
        let end = (self.at + self.chunk).min(self.values.len());
        let chunk = self.values[self.at..end].to_vec();
        self.at = end;
        Ok(Some(chunk))
    }
}

/// Values per frame of a 1-D series of `len` values: long series in frames of 4096, short
/// ones in at least 16 frames (the learned predictor fits on whole frames).
pub fn series_frame_len(len: usize) -> usize {
    len.div_ceil(16).clamp(1, 4096)
}

/// Frames of a 1-D series: its values `frame_len` at a time, the last frame padded by
/// repeating the last value (which costs almost nothing to code). The frames are rows of a
/// `[frames, 1, frame_len]` field, which is what the drivers code; the stream keeps the
/// series' own shape.
pub struct SeriesRows<R: RowInput> {
    inner: R,
    header: Header,
    frame_len: usize,
    pending: Vec<f64>,
    done: bool,
}

impl<R: RowInput> SeriesRows<R> {
    /// Regroups the 1-D `inner` into frames of [`series_frame_len`] values.
    pub fn new(inner: R) -> Self {
        let len = inner.header().shape.first().copied().unwrap_or(0);
        let frame_len = series_frame_len(len);
        let header = Header {
            shape: vec![len.div_ceil(frame_len), 1, frame_len],
            dtype: inner.header().dtype,
            names: Vec::new(),
        };
        SeriesRows {
            inner,
            header,
            frame_len,
            pending: Vec::new(),
            done: false,
        }
    }
}

impl<R: RowInput> RowInput for SeriesRows<R> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error> {
        while !self.done {
            match self.inner.next_chunk_f64()? {
                Some(values) => {
                    self.pending.extend_from_slice(&values);
                    self.inner.recycle(values);
                    let whole = self.pending.len() / self.frame_len * self.frame_len;
                    if whole > 0 {
                        let rest = self.pending.split_off(whole);
                        return Ok(Some(std::mem::replace(&mut self.pending, rest)));
                    }
                }
                None => self.done = true,
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let last = self.pending.last().copied().unwrap_or(0.0);
        self.pending.resize(self.frame_len, last);
        Ok(Some(std::mem::take(&mut self.pending)))
    }

    fn recycle(&mut self, chunk: Vec<f64>) {
        self.inner.recycle(chunk)
    }
}

/// Keeps the first `keep` values pushed through it (a series' padding is dropped).
pub struct Truncated<'o, O: RowOutput + ?Sized> {
    inner: &'o mut O,
    keep: usize,
}

impl<'o, O: RowOutput + ?Sized> Truncated<'o, O> {
    /// Passes on at most `keep` values to `inner`.
    pub fn new(inner: &'o mut O, keep: usize) -> Self {
        Truncated { inner, keep }
    }
}

impl<O: RowOutput + ?Sized> RowOutput for Truncated<'_, O> {
    fn push_f64(&mut self, mut values: Vec<f64>) -> Result<(), crate::Error> {
        values.truncate(self.keep);
        self.keep -= values.len();
        if values.is_empty() {
            return Ok(());
        }
        self.inner.push_f64(values)
    }

    fn spare_buffer(&mut self) -> Option<Vec<f64>> {
        self.inner.spare_buffer()
    }
}

impl<R: RowInput + ?Sized> RowInput for Box<R> {
    fn header(&self) -> &Header {
        (**self).header()
    }

    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error> {
        (**self).next_chunk_f64()
    }

    fn recycle(&mut self, chunk: Vec<f64>) {
        (**self).recycle(chunk)
    }
}

/// Opens the data file `path` for a pass over its rows (what the drivers' openers do for
/// files).
pub fn file_opener<'p>(
    path: &'p std::path::Path,
) -> impl Fn(usize) -> Result<Box<dyn RowInput + 'p>, crate::Error> + 'p {
    move |chunk| {
        let source = RowSource::open(path, chunk)?;
        Ok(Box::new(source) as Box<dyn RowInput>)
    }
}

/// Data of rank 5 or more seen as rank 3, `[rows, product of the middle dimensions, last]`:
/// the same rows and values (a field's rows are its frames whatever their rank). The stream
/// records the whole shape in a shape block.
pub struct Folded<R: RowInput> {
    inner: R,
    header: Header,
}

impl<R: RowInput> Folded<R> {
    /// Folds `inner`'s shape.
    pub fn new(inner: R) -> Self {
        let shape = &inner.header().shape;
        let middle = shape[1..shape.len().saturating_sub(1)]
            .iter()
            .fold(1usize, |a, &d| a.saturating_mul(d));
        let header = Header {
            shape: vec![shape[0], middle, shape.last().copied().unwrap_or(1)],
            dtype: inner.header().dtype,
            names: inner.header().names.clone(),
        };
        Folded { inner, header }
    }

    /// `inner`'s rows seen with another shape of the same row count and row length (a 2-D
    /// table's rows as frames of height 1, say).
    pub fn with_shape(inner: R, shape: Vec<usize>) -> Self {
        let header = Header {
            shape,
            dtype: inner.header().dtype,
            names: inner.header().names.clone(),
        };
        Folded { inner, header }
    }
}

impl<R: RowInput> RowInput for Folded<R> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, crate::Error> {
        self.inner.next_chunk_f64()
    }

    fn recycle(&mut self, chunk: Vec<f64>) {
        self.inner.recycle(chunk)
    }
}
