//! HDF5 datasets as data files: `file.h5:/group/dataset` read in slabs of rows and written
//! row chunk by row chunk (feature `hdf5`, which links the system libhdf5).
//!
//! Element types are widened as for `.npy`: float32 and float64, int16 and int32 as they are;
//! int8 and uint8 to int16, uint16 to int32, int64, uint32 and uint64 to float64 (64-bit
//! values beyond 2^53 are refused). A dataset is written into a new file atomically, or added
//! to an existing file beside its other objects (never replacing one).

use crate::data::{ChunkSender, Header};
use baler_codec::DType;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Hyperslab, Selection, SliceOrIndex};
use std::path::Path;
use std::sync::mpsc::SyncSender;

/// How the values of a dataset are read.
enum Source {
    /// Converted to f64 by HDF5 (exact for these types).
    Exact,
    /// 64-bit integers, read as they are and checked against 2^53.
    Signed64,
    /// See [`Source::Signed64`].
    Unsigned64,
}

fn h5(e: hdf5::Error) -> String {
    format!("HDF5: {e}")
}

/// The rows `start..end` of `dataset` (of shape `shape`).
fn rows_selection(shape: &[usize], start: usize, end: usize) -> Selection {
    let mut slices = vec![SliceOrIndex::from(start..end)];
    slices.extend(shape[1..].iter().map(|_| SliceOrIndex::from(..)));
    Selection::from(Hyperslab::from(slices))
}

fn open_dataset(file: &Path, name: &str) -> Result<Dataset, String> {
    if let Err(e) = std::fs::metadata(file) {
        return Err(format!("{}: {e}", file.display()));
    }
    let h5file = hdf5::File::open(file).map_err(h5)?;
    h5file
        .dataset(name)
        .map_err(|e| match h5file.link_exists(name) {
            true => format!("{name} is not a dataset ({e})"),
            false => format!("the file has no dataset {name}"),
        })
}

/// Streams dataset `name` of `file` in chunks of about `values_per_chunk` values (whole rows).
pub(crate) fn stream(
    file: &Path,
    name: &str,
    values_per_chunk: usize,
    header_tx: &SyncSender<Result<Header, String>>,
    tx: &ChunkSender,
) -> Result<(), String> {
    let dataset = open_dataset(file, name)?;
    let shape = dataset.shape();
    if shape.is_empty() {
        return Err(format!("{name} is a scalar, not an array"));
    }
    let descriptor = dataset
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5)?;
    let (dtype, source) = match descriptor {
        TypeDescriptor::Float(FloatSize::U8) => (DType::F64, Source::Exact),
        TypeDescriptor::Float(FloatSize::U4) => (DType::F32, Source::Exact),
        TypeDescriptor::Integer(IntSize::U1 | IntSize::U2) => (DType::I16, Source::Exact),
        TypeDescriptor::Unsigned(IntSize::U1) => (DType::I16, Source::Exact),
        TypeDescriptor::Integer(IntSize::U4) | TypeDescriptor::Unsigned(IntSize::U2) => {
            (DType::I32, Source::Exact)
        }
        TypeDescriptor::Unsigned(IntSize::U4) => (DType::F64, Source::Exact),
        TypeDescriptor::Integer(IntSize::U8) => (DType::F64, Source::Signed64),
        TypeDescriptor::Unsigned(IntSize::U8) => (DType::F64, Source::Unsigned64),
        other => {
            return Err(format!(
                "{name} holds {other} values (baler reads floats of 32 or 64 bits and 8- to 64-bit integers)"
            ))
        }
    };
    let header = Header {
        shape: shape.clone(),
        dtype,
        names: column_names(&dataset, &shape),
    };
    let row_len = header.row_len().max(1);
    let _ = header_tx.send(Ok(header));
    let rows_per_chunk = (values_per_chunk / row_len).max(1);
    let mut start = 0;
    while start < shape[0] {
        let end = (start + rows_per_chunk).min(shape[0]);
        let selection = rows_selection(&shape, start, end);
        let beyond = |i: usize| {
            format!(
                "row {} column {}: beyond 2^53, which float64 cannot hold exactly",
                start + i / row_len,
                i % row_len
            )
        };
        let values: Vec<f64> = match source {
            Source::Exact => read::<f64>(&dataset, selection)?,
            Source::Signed64 => {
                let raw = read::<i64>(&dataset, selection)?;
                if let Some(i) = raw.iter().position(|v| v.unsigned_abs() > 1 << 53) {
                    return Err(beyond(i));
                }
                raw.into_iter().map(|v| v as f64).collect()
            }
            Source::Unsigned64 => {
                let raw = read::<u64>(&dataset, selection)?;
                if let Some(i) = raw.iter().position(|&v| v > 1 << 53) {
                    return Err(beyond(i));
                }
                raw.into_iter().map(|v| v as f64).collect()
            }
        };
        if tx.send(Ok(values)).is_err() {
            return Ok(()); // the consumer stopped
        }
        start = end;
    }
    Ok(())
}

/// Column names of a 2-D dataset: its `names` attribute (strings, one per column), which
/// baler writes and h5py writes for `d.attrs["names"] = [...]`; none otherwise.
fn column_names(dataset: &Dataset, shape: &[usize]) -> Vec<String> {
    let Ok(attr) = dataset.attr("names") else {
        return Vec::new();
    };
    let names: Vec<String> = if let Ok(v) = attr.read_raw::<VarLenUnicode>() {
        v.iter().map(|s| s.as_str().to_string()).collect()
    } else if let Ok(v) = attr.read_raw::<VarLenAscii>() {
        v.iter().map(|s| s.as_str().to_string()).collect()
    } else {
        return Vec::new();
    };
    if shape.len() == 2 && names.len() == shape[1] {
        names
    } else {
        Vec::new()
    }
}

fn read<T: hdf5::H5Type>(dataset: &Dataset, selection: Selection) -> Result<Vec<T>, String> {
    let slab = dataset
        .read_slice::<T, _, ndarray::IxDyn>(selection)
        .map_err(h5)?;
    // A freshly read array is in standard (row-major) layout, from its first element.
    Ok(slab.into_raw_vec_and_offset().0)
}

/// Writes dataset `name` of `file` from the row chunks `next` gives until it gives `None` (see
/// [`crate::data::RowSink`]); returns whether the data was complete.
pub(crate) fn write(
    file: &Path,
    name: &str,
    header: &Header,
    mut next: impl FnMut() -> Option<Vec<f64>>,
) -> Result<bool, String> {
    let existing = file.exists();
    // A new file is written under a temporary name and renamed when complete.
    let temp = file.with_file_name(format!(
        ".{}.{}.tmp",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let h5file = if existing {
        let f = hdf5::File::open_rw(file).map_err(h5)?;
        if f.link_exists(name) {
            return Err(format!(
                "the file already holds {name} (baler never replaces an object in an HDF5 file)"
            ));
        }
        f
    } else {
        hdf5::File::create(&temp).map_err(h5)?
    };
    let outcome = write_into(&h5file, name, header, &mut next);
    match (&outcome, existing) {
        (Ok(true), false) => {
            drop(h5file);
            std::fs::rename(&temp, file).map_err(|e| format!("cannot rename into place: {e}"))?;
        }
        (_, false) => {
            drop(h5file);
            let _ = std::fs::remove_file(&temp);
        }
        (Ok(true), true) => {}
        (_, true) => {
            // Take back the incomplete dataset; the file's other objects stay as they were.
            let _ = h5file.unlink(name);
        }
    }
    outcome
}

fn write_into(
    h5file: &hdf5::File,
    name: &str,
    header: &Header,
    next: &mut impl FnMut() -> Option<Vec<f64>>,
) -> Result<bool, String> {
    let shape = header.shape.clone();
    let builder = h5file.new_dataset_builder();
    macro_rules! create {
        ($t:ty) => {
            builder
                .empty::<$t>()
                .shape(shape.clone())
                .create(name)
                .map_err(h5)?
        };
    }
    let dataset = match header.dtype {
        DType::F32 => create!(f32),
        DType::I16 => create!(i16),
        DType::I32 => create!(i32),
        _ => create!(f64),
    };
    if !header.names.is_empty() {
        let names = header
            .names
            .iter()
            .map(|n| n.parse::<VarLenUnicode>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        dataset
            .new_attr::<VarLenUnicode>()
            .shape(names.len())
            .create("names")
            .and_then(|a| a.write_raw(&names))
            .map_err(h5)?;
    }
    let row_len = header.row_len().max(1);
    let mut row = 0;
    while let Some(values) = next() {
        let rows = values.len() / row_len;
        if row + rows > shape[0] || rows * row_len != values.len() {
            return Err(format!(
                "more values than the shape {shape:?} holds, or not whole rows"
            ));
        }
        let selection = rows_selection(&shape, row, row + rows);
        let mut slab_shape = shape.clone();
        slab_shape[0] = rows;
        macro_rules! put {
            ($t:ty, $convert:expr) => {{
                let typed: Vec<$t> = values.into_iter().map($convert).collect();
                let view = ndarray::ArrayViewD::from_shape(slab_shape, &typed)
                    .map_err(|e| e.to_string())?;
                dataset.write_slice(view, selection).map_err(h5)?
            }};
        }
        match header.dtype {
            DType::F32 => put!(f32, |x| x as f32),
            DType::I16 => put!(i16, |x: f64| x.round().clamp(-32768.0, 32767.0) as i16),
            DType::I32 => put!(i32, |x: f64| x.round() as i32),
            _ => put!(f64, |x| x),
        }
        row += rows;
    }
    Ok(row == shape[0])
}
