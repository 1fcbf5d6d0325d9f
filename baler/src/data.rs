//! Reading and writing data files: Baler-style `.npz` (keys `data` and optional `names`),
//! `.npy`, `.csv` with a header row, and HDF5 datasets named `file.h5:/group/dataset` (with
//! the `hdf5` feature). A model's values are held as f32 (its input type), an evaluation's as
//! f64 ([`read_f64`]); the file's element type is remembered so output is written back as it
//! came in.

use crate::Error;
use baler_codec::DType;
use npyz::{NpyFile, TypeChar, WriterBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Chain, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// A data array with its shape, element type and column names; values as f32 (what a model
/// takes) unless read with [`read_f64`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<T = f32> {
    /// Values, row-major.
    pub values: Vec<T>,
    /// Shape: `[rows, columns]` for tables, `[frames, h, w]` for fields.
    pub shape: Vec<usize>,
    /// Element type in the file.
    pub dtype: DType,
    /// Column names (empty when the file has none).
    pub names: Vec<String>,
}

impl<T: Copy + Into<f64>> Dataset<T> {
    /// Number of rows (first dimension).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Values per row (product of the other dimensions).
    pub fn row_len(&self) -> usize {
        // Saturating: a hostile header must not overflow; `RowSource::open` refuses it.
        self.shape
            .iter()
            .skip(1)
            .fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// The first NaN or infinity as `(row, column)`.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        let n = self.row_len().max(1);
        self.values
            .iter()
            .position(|&v| !v.into().is_finite())
            .map(|i| (i / n, i % n))
    }
}

/// File formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NumPy zip archive with `data` (and `names`).
    Npz,
    /// One NumPy array.
    Npy,
    /// Comma-separated values with a header row of names.
    Csv,
    /// A dataset in an HDF5 (or netCDF-4) file: `file.h5:/group/dataset`.
    Hdf5,
}

impl Format {
    /// The format of `path` by its extension.
    pub fn of(path: &Path) -> Result<Format, Error> {
        if split_target(path).is_some() {
            return Ok(Format::Hdf5);
        }
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "npz" => Ok(Format::Npz),
            Some(e) if e == "npy" => Ok(Format::Npy),
            Some(e) if e == "csv" => Ok(Format::Csv),
            Some(e) if ["h5", "hdf5", "he5", "nc"].contains(&e.as_str()) => Err(at(path)(format!(
                "name the dataset in the HDF5 file: {}:/group/dataset",
                path.display()
            ))),
            _ => Err(at(path)(
                "unknown data format (expected .npz, .npy, .csv or FILE.h5:/dataset)".to_string(),
            )),
        }
    }
}

/// Splits `data.h5:/group/dataset` into the file and the dataset's path (`.h5`, `.hdf5`,
/// `.he5` and `.nc` files; a dataset path without a leading `/` is taken from the root).
pub fn split_target(path: &Path) -> Option<(std::path::PathBuf, String)> {
    let text = path.to_str()?;
    [".h5:", ".hdf5:", ".he5:", ".nc:"]
        .iter()
        .filter_map(|ext| {
            let at = text.to_ascii_lowercase().find(ext)?;
            let (file, dataset) = text.split_at(at + ext.len() - 1);
            Some((file.into(), dataset[1..].to_string()))
        })
        .min_by_key(|(file, _): &(std::path::PathBuf, String)| file.as_os_str().len())
        .map(|(file, dataset)| {
            let dataset = if dataset.starts_with('/') {
                dataset
            } else {
                format!("/{dataset}")
            };
            (file, dataset)
        })
}

/// What a build without the `hdf5` feature says of an HDF5 path.
#[cfg(not(feature = "hdf5"))]
const NO_HDF5: &str = "this build of baler has no HDF5 support: build it with `--features hdf5` (it links libhdf5; Debian: libhdf5-dev)";

/// A data file's problem, with the file.
fn at(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Data {
        path: path.to_path_buf(),
        message,
    }
}

/// Shape, element type and names of a data file, known before its values are read.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Shape (for CSV, the row count is known only at the end and reads as 0 here).
    pub shape: Vec<usize>,
    /// Element type in the file.
    pub dtype: DType,
    /// Column names (empty when the file has none).
    pub names: Vec<String>,
}

impl Header {
    /// Values per row (product of all dimensions but the first).
    pub fn row_len(&self) -> usize {
        // Saturating: a hostile header must not overflow; `RowSource::open` refuses it.
        self.shape
            .iter()
            .skip(1)
            .fold(1usize, |a, &d| a.saturating_mul(d))
    }
}

// Values travel as f64 so that f64 data keeps every bit until a consumer narrows it.
type Chunk = Result<Vec<f64>, String>;

/// Chunks a consumer gave back ([`RowSource::recycle`]) waiting to be filled again: a fresh
/// buffer of a million values costs its page faults anew (7% of compressing 100 MB).
const SPARE_CHUNKS: usize = 2;

/// The reader thread's side of a [`RowSource`]: chunks go out, emptied buffers come back.
pub(crate) struct ChunkSender {
    tx: SyncSender<Chunk>,
    spare: Receiver<Vec<f64>>,
}

impl ChunkSender {
    /// Sends a chunk (or the error that ends the file); `Err` when the consumer stopped.
    pub(crate) fn send(&self, chunk: Chunk) -> Result<(), std::sync::mpsc::SendError<Chunk>> {
        self.tx.send(chunk)
    }

    /// An empty buffer for `capacity` values: one given back when there is one.
    pub(crate) fn buffer(&self, capacity: usize) -> Vec<f64> {
        match self.spare.try_recv() {
            Ok(mut spare) => {
                spare.clear();
                spare.reserve(capacity);
                spare
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }
}

/// Reads a data file in chunks of whole rows on a background thread, so memory stays bounded
/// whatever the file's size.
pub struct RowSource {
    /// Shape, element type and names.
    pub header: Header,
    path: PathBuf,
    chunks: Receiver<Chunk>,
    spare: SyncSender<Vec<f64>>,
    rows_read: usize,
}

impl RowSource {
    /// Opens `path`; chunks hold whole rows, about `values_per_chunk` values (at least a row).
    pub fn open(path: &Path, values_per_chunk: usize) -> Result<RowSource, Error> {
        let format = Format::of(path)?;
        let file = match format {
            Format::Hdf5 => None,
            _ => Some(File::open(path).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?),
        };
        #[cfg(not(feature = "hdf5"))]
        if format == Format::Hdf5 {
            return Err(at(path)(NO_HDF5.into()));
        }
        let (header_tx, header_rx) = sync_channel::<Result<Header, String>>(1);
        let (tx, chunks) = sync_channel::<Chunk>(2);
        let (spare, spare_rx) = sync_channel::<Vec<f64>>(SPARE_CHUNKS);
        let tx = ChunkSender {
            tx,
            spare: spare_rx,
        };
        let rows = values_per_chunk.max(1);
        let target = path.to_path_buf();
        std::thread::spawn(move || {
            let result = match (format, file.map(BufReader::new)) {
                (Format::Npy, Some(reader)) => {
                    stream_npy(reader, Vec::new(), rows, &header_tx, &tx)
                }
                (Format::Npz, Some(reader)) => stream_npz(reader, rows, &header_tx, &tx),
                (Format::Csv, Some(reader)) => stream_csv(reader, rows, &header_tx, &tx),
                #[cfg(feature = "hdf5")]
                (Format::Hdf5, _) => match split_target(&target) {
                    Some((file, dataset)) => {
                        crate::hdf5_data::stream(&file, &dataset, rows, &header_tx, &tx)
                    }
                    None => Err("not an HDF5 dataset path".into()),
                },
                _ => Err(format!("cannot read {}", target.display())),
            };
            if let Err(e) = result {
                // Whichever side is waiting gets the error (the receiver names the file).
                let _ = header_tx.try_send(Err(e.clone()));
                let _ = tx.send(Err(e));
            }
        });
        let header = header_rx
            .recv()
            .map_err(|_| at(path)("reader stopped".into()))?
            .map_err(at(path))?;
        if header.shape.is_empty() || header.shape.len() > baler_codec::stream::MAX_ARRAY_RANK {
            return Err(at(path)(format!(
                "expected a 1-D series, a 2-D table or frames of rank 3 to 8, found shape {:?}",
                header.shape
            )));
        }
        let values = header
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&v| v.checked_mul(8).is_some());
        if values.is_none() {
            return Err(at(path)(format!("shape {:?} is too large", header.shape)));
        }
        if header.row_len() == 0 {
            return Err(at(path)(format!("no data (shape {:?})", header.shape)));
        }
        if !header.names.is_empty() && header.names.len() != header.row_len() {
            return Err(at(path)(format!(
                "{} names for {} columns",
                header.names.len(),
                header.row_len()
            )));
        }
        Ok(RowSource {
            header,
            path: path.to_path_buf(),
            chunks,
            spare,
            rows_read: 0,
        })
    }

    /// The next chunk of whole rows as f32, or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, Error> {
        Ok(self
            .next_chunk_f64()?
            .map(|v| v.into_iter().map(|x| x as f32).collect()))
    }

    /// The next chunk of whole rows with full precision, or `None` at the end.
    pub fn next_chunk_f64(&mut self) -> Result<Option<Vec<f64>>, Error> {
        match self.chunks.recv() {
            Ok(Ok(values)) => {
                self.rows_read += values.len() / self.header.row_len().max(1);
                Ok(Some(values))
            }
            Ok(Err(e)) => Err(at(&self.path)(e)),
            Err(_) => Ok(None),
        }
    }

    /// Rows delivered so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read
    }

    /// Gives a chunk the caller is done with back to the reader, which fills it again
    /// instead of a fresh allocation (dropped when enough are waiting).
    pub fn recycle(&self, chunk: Vec<f64>) {
        let _ = self.spare.try_send(chunk);
    }
}

/// Values a chunk's buffer reserves at most before they arrive (32 MB): a header may promise
/// rows of any length, and the buffer grows only as the file delivers them, so a damaged
/// header ends in a "truncated" error instead of an allocation of its promise.
const MAX_RESERVED_VALUES: usize = 1 << 22;

/// Sends the values of `iter` in chunks of `chunk_len`.
fn send_chunks(
    iter: impl Iterator<Item = Result<f64, String>>,
    chunk_len: usize,
    tx: &ChunkSender,
) -> Result<(), String> {
    let mut chunk = tx.buffer(chunk_len.min(MAX_RESERVED_VALUES));
    for v in iter {
        chunk.push(v?);
        if chunk.len() == chunk_len {
            let full = std::mem::replace(&mut chunk, tx.buffer(chunk_len.min(MAX_RESERVED_VALUES)));
            if tx.send(Ok(full)).is_err() {
                return Ok(()); // the consumer stopped
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

/// Bytes read or written at a time by [`send_f64_le`] and [`write_floats`]: a buffer that
/// stays in cache (a chunk's worth of bytes, up to 32 MB, was touched once and cost its page
/// faults).
const IO_PIECE_BYTES: usize = 1 << 20;

/// `values` little-endian float64 values from `reader`, sent in chunks of `chunk_len`.
fn send_f64_le(
    mut reader: impl Read,
    values: usize,
    chunk_len: usize,
    tx: &ChunkSender,
) -> Result<(), String> {
    let chunk_len = chunk_len.max(1);
    let mut bytes = vec![0u8; (8 * chunk_len.min(values)).min(IO_PIECE_BYTES)];
    let mut left = values;
    while left > 0 {
        let n = left.min(chunk_len);
        let mut chunk = tx.buffer(n.min(MAX_RESERVED_VALUES));
        while chunk.len() < n {
            let piece = (n - chunk.len()).min(bytes.len() / 8);
            let part = &mut bytes[..8 * piece];
            reader.read_exact(part).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    format!("the data is truncated (the header promises {values} values)")
                }
                _ => e.to_string(),
            })?;
            chunk.extend(
                part.chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            );
        }
        if tx.send(Ok(chunk)).is_err() {
            return Ok(()); // the consumer stopped
        }
        left -= n;
    }
    Ok(())
}

/// Longest `.npy` header we read (numpy itself refuses headers over 10000 bytes by default).
const MAX_NPY_HEADER: usize = 1 << 16;
/// Deepest bracket nesting a `.npy` header may have: plain arrays need 2 (a dict holding the
/// shape tuple), structured ones a few more. The Python-literal parser's time grows
/// exponentially with the nesting.
const MAX_NPY_NESTING: usize = 8;

/// A `.npy` stream whose header was read ahead, put back in front of the rest.
type Rejoined<R> = Chain<Cursor<Vec<u8>>, R>;

/// Opens a `.npy` stream after checking its header ourselves, for what would otherwise make
/// npyz panic or hang instead of returning an error: a shape whose element count overflows
/// 64 bits (npyz multiplies the dimensions unchecked), an absurdly long header, or deeply
/// nested brackets. The header is then handed to npyz unchanged.
fn checked_npy<R: Read>(mut reader: R) -> Result<NpyFile<Rejoined<R>>, String> {
    let short = |_| "not a .npy array: the header is truncated".to_string();
    let mut head = vec![0u8; 8];
    reader.read_exact(&mut head).map_err(short)?;
    if head[..6] != *b"\x93NUMPY" {
        return Err("not a .npy array: no NUMPY magic".to_string());
    }
    let size_len = match head[6] {
        1 => 2,
        2 | 3 => 4,
        v => return Err(format!("not a .npy array: unknown format version {v}")),
    };
    let mut size = [0u8; 4];
    reader.read_exact(&mut size[..size_len]).map_err(short)?;
    let len = u32::from_le_bytes(size) as usize;
    if len > MAX_NPY_HEADER {
        return Err(format!(
            "not a .npy array: a header of {len} bytes (at most {MAX_NPY_HEADER})"
        ));
    }
    head.extend_from_slice(&size[..size_len]);
    let start = head.len();
    head.resize(start + len, 0);
    reader.read_exact(&mut head[start..]).map_err(short)?;
    check_npy_header(&head[start..])?;
    NpyFile::new(Cursor::new(head).chain(reader)).map_err(|e| format!("not a .npy array: {e}"))
}

/// The checks of [`checked_npy`] on the header text (a Python dict literal).
fn check_npy_header(text: &[u8]) -> Result<(), String> {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0usize, None, false);
    for &b in text {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if b == b'\\' => escaped = true,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    if deepest > MAX_NPY_NESTING {
        return Err(format!(
            "not a .npy array: header nested {deepest} deep (at most {MAX_NPY_NESTING})"
        ));
    }
    let text = std::str::from_utf8(text).map_err(|_| "not a .npy array: header is not UTF-8")?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    // Parse errors are left to npyz, which reports them; only a shape it would accept is
    // checked here (every 'shape' entry: with duplicate keys, npyz keeps the last).
    let Ok(py_literal::Value::Dict(entries)) = text.parse::<py_literal::Value>() else {
        return Ok(());
    };
    for (key, value) in &entries {
        if key.as_string().map(String::as_str) != Some("shape") {
            continue;
        }
        let dims = match value {
            py_literal::Value::Tuple(d) | py_literal::Value::List(d) => d,
            _ => continue,
        };
        let mut count = Some(1u64);
        for dim in dims {
            if let py_literal::Value::Integer(d) = dim {
                count = count.and_then(|c| c.checked_mul(u64::try_from(d).ok()?));
            }
        }
        if count.is_none() {
            return Err(format!(
                "not a .npy array: shape {value} has more than 2^64 elements"
            ));
        }
    }
    Ok(())
}

fn stream_npy<R: Read>(
    reader: R,
    names: Vec<String>,
    rows: usize,
    header_tx: &SyncSender<Result<Header, String>>,
    tx: &ChunkSender,
) -> Result<(), String> {
    let npy = checked_npy(reader)?;
    if npy.order() == npyz::Order::Fortran {
        // The values are stored column by column; reading them row by row would scramble them.
        return Err(
            "the array is in Fortran (column-major) order; save it with np.ascontiguousarray"
                .into(),
        );
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype();
    let unsupported = || {
        format!(
            "unsupported element type {} (baler reads float16/32/64 and 8- to 64-bit integers)",
            dtype.descr()
        )
    };
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(unsupported());
    };
    let source = (ts.type_char(), ts.size_field());
    // Types without a stream type of their own are widened to one that holds every value
    // exactly: float16 to float32, 8-bit integers to int16, uint16 to int32, and 64-bit
    // integers and uint32 to float64 (64-bit values beyond 2^53 are refused when read).
    let kind = match source {
        (TypeChar::Float, 8) | (TypeChar::Int, 8) | (TypeChar::Uint, 4 | 8) => DType::F64,
        (TypeChar::Float, 4 | 2) => DType::F32,
        (TypeChar::Int, 1 | 2) | (TypeChar::Uint, 1) => DType::I16,
        (TypeChar::Int, 4) | (TypeChar::Uint, 2) => DType::I32,
        _ => return Err(unsupported()),
    };
    let header = Header {
        shape,
        dtype: kind,
        names,
    };
    let row_len = header.row_len().max(1);
    let chunk_len = (rows / row_len).max(1) * row_len;
    let _ = header_tx.send(Ok(header));
    let e = |e: std::io::Error| e.to_string();
    // 64-bit integers: exact in float64 up to 2^53 only.
    let exact = |i: usize, magnitude: u64, v: f64, text: String| {
        if magnitude <= 1 << 53 {
            Ok(v)
        } else {
            Err(format!(
                "row {} column {}: {text} is beyond 2^53, which float64 cannot hold exactly",
                i / row_len,
                i % row_len
            ))
        }
    };
    macro_rules! widen {
        ($t:ty) => {{
            let it = npy.data::<$t>().map_err(|e| e.to_string())?;
            send_chunks(it.map(|v| v.map(f64::from).map_err(e)), chunk_len, tx)
        }};
    }
    if source == (TypeChar::Float, 8) && ts.endianness() == npyz::Endianness::Little {
        // The common case, read in whole chunks rather than value by value through npyz.
        let values = usize::try_from(npy.len()).map_err(|_| "too many values".to_string())?;
        return send_f64_le(npy.into_inner(), values, chunk_len, tx);
    }
    match source {
        (TypeChar::Float, 8) => widen!(f64),
        (TypeChar::Float, 4) => widen!(f32),
        (TypeChar::Float, _) => widen!(half::f16),
        (TypeChar::Int, 1) => widen!(i8),
        (TypeChar::Int, 2) => widen!(i16),
        (TypeChar::Int, 4) => widen!(i32),
        (TypeChar::Uint, 1) => widen!(u8),
        (TypeChar::Uint, 2) => widen!(u16),
        (TypeChar::Uint, 4) => widen!(u32),
        (TypeChar::Int, _) => {
            let it = npy.data::<i64>().map_err(|e| e.to_string())?;
            let values = it.enumerate().map(|(i, v)| {
                v.map_err(e)
                    .and_then(|v| exact(i, v.unsigned_abs(), v as f64, v.to_string()))
            });
            send_chunks(values, chunk_len, tx)
        }
        _ => {
            let it = npy.data::<u64>().map_err(|e| e.to_string())?;
            let values = it.enumerate().map(|(i, v)| {
                v.map_err(e)
                    .and_then(|v| exact(i, v, v as f64, v.to_string()))
            });
            send_chunks(values, chunk_len, tx)
        }
    }
}

fn stream_npz<R: Read + std::io::Seek>(
    reader: R,
    rows: usize,
    header_tx: &SyncSender<Result<Header, String>>,
    tx: &ChunkSender,
) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("not an .npz archive: {e}"))?;
    let mut names = Vec::new();
    if let Ok(entry) = zip.by_name("names.npy") {
        let npy = checked_npy(entry).map_err(|e| format!("'names': {e}"))?;
        if npy.shape().iter().product::<u64>() > 0 {
            names = npy
                .into_vec::<String>()
                .map_err(|e| format!("'names' must be strings: {e}"))?;
        }
    }
    let entry = zip
        .by_name("data.npy")
        .map_err(|_| "no array named 'data' (Baler's layout: keys 'data' and 'names')")?;
    // npyz reads value by value; the buffer turns that into large reads of the archive entry,
    // whose checksum then runs over whole blocks instead of 8 bytes at a time.
    stream_npy(
        BufReader::with_capacity(1 << 16, entry),
        names,
        rows,
        header_tx,
        tx,
    )
}

fn stream_csv<R: Read>(
    reader: R,
    rows: usize,
    header_tx: &SyncSender<Result<Header, String>>,
    tx: &ChunkSender,
) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let names: Vec<String> = csv
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let n = names.len();
    if n == 0 {
        return Err("empty file: no header row of column names".into());
    }
    let _ = header_tx.send(Ok(Header {
        shape: vec![0, n],
        dtype: DType::F64,
        names,
    }));
    let values = csv.into_records().enumerate().flat_map(|(r, record)| {
        let fields: Vec<Result<f64, String>> = match record {
            Err(e) => vec![Err(e.to_string())],
            Ok(rec) if rec.len() != n => vec![Err(format!(
                "row {} has {} fields, the header {n}",
                r + 1,
                rec.len()
            ))],
            Ok(rec) => rec
                .iter()
                .enumerate()
                .map(|(c, f)| {
                    f.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("row {} column {c}: '{f}' is not a number", r + 1))
                })
                .collect(),
        };
        fields
    });
    send_chunks(values, (rows / n.max(1)).max(1) * n.max(1), tx)
}

/// Reads a whole data file, its values as f32.
pub fn read(path: &Path) -> Result<Dataset, Error> {
    read_checked(path, false)
}

/// Reads a whole data file with full precision: float64 data keeps every bit, so an
/// evaluation judges the values that were compressed, not their float32 roundings.
pub fn read_f64(path: &Path) -> Result<Dataset<f64>, Error> {
    read_values(path, false, |x| x)
}

/// Reads a whole data file for a model, which works in float32: NaN, infinity and values
/// beyond float32's range are refused with their row and column.
pub fn read_for_model(path: &Path) -> Result<Dataset, Error> {
    read_checked(path, true)
}

fn read_checked(path: &Path, for_model: bool) -> Result<Dataset, Error> {
    read_values(path, for_model, |x| x as f32)
}

fn read_values<T>(
    path: &Path,
    for_model: bool,
    narrow: impl Fn(f64) -> T,
) -> Result<Dataset<T>, Error> {
    let mut source = RowSource::open(path, 1 << 20)?;
    // A model's frame is a row (or a tile of one): a series has no rows to learn.
    if for_model && !(2..=4).contains(&source.header.shape.len()) {
        return Err(at(path)(format!(
            "a model learns from a 2-D table or 3-D frames, not shape {:?}; compress it with --error-bound",
            source.header.shape
        )));
    }
    let mut values = Vec::new();
    while let Some(chunk) = source.next_chunk_f64()? {
        if for_model {
            let first_row = values.len() / source.header.row_len().max(1);
            check_f32(path, &chunk, first_row, &source.header)?;
        }
        values.extend(chunk.iter().copied().map(&narrow));
        source.recycle(chunk);
    }
    let mut shape = source.header.shape.clone();
    shape[0] = source.rows_read();
    if shape[0] == 0 {
        return Err(at(path)(format!("no data (shape {shape:?})")));
    }
    Ok(Dataset {
        values,
        shape,
        dtype: source.header.dtype,
        names: source.header.names,
    })
}

/// Column `column` for messages: its index, and its name when there is one.
pub fn column_label(names: &[String], column: usize) -> String {
    match names.get(column) {
        Some(name) => format!("{column} ({name:?})"),
        None => column.to_string(),
    }
}

/// Refuses the first value of `chunk` (rows from `first_row` on) that a model cannot take:
/// NaN, infinity, or a finite value beyond float32's range (which would become infinity).
pub fn check_f32(
    path: &Path,
    chunk: &[f64],
    first_row: usize,
    header: &Header,
) -> Result<(), Error> {
    let Some(i) = chunk.iter().position(|&v| !(v as f32).is_finite()) else {
        return Ok(());
    };
    let v = chunk[i];
    let what = if v.is_finite() {
        format!("{v:e}, beyond float32's range (3.4e38),")
    } else {
        format!("{v}")
    };
    let n = header.row_len().max(1);
    Err(at(path)(format!(
        "{what} at row {}, column {}: models take finite float32 values; \
         --error-bound streams keep such values",
        first_row + i / n,
        column_label(&header.names, i % n)
    )))
}

/// What a [`RowSink`]'s writer thread receives, and where it gives the emptied buffers back.
struct Incoming {
    rx: Receiver<Message>,
    spare: SyncSender<Vec<f64>>,
}

/// Buffers a writer gives back, waiting for [`RowSink::spare_buffer`]: a decoder that fills a
/// fresh 8 MB block buffer pays its page faults anew (9% of decompressing a field).
const SPARE_BLOCKS: usize = 8;

enum Message {
    /// Values, and whether they came as f32 (CSV then prints them as f32 do).
    Values(Vec<f64>, bool),
    End,
}

/// Writes a data file from chunks of rows on a background thread, atomically: the file appears
/// under its name only after [`RowSink::finish`] succeeds.
pub struct RowSink {
    tx: Option<SyncSender<Message>>,
    spare: Option<Receiver<Vec<f64>>>,
    done: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl RowSink {
    /// Starts writing `path` for data described by `header` (its full shape must be known).
    pub fn create(path: &Path, header: &Header) -> Result<RowSink, Error> {
        let format = Format::of(path)?;
        if format == Format::Hdf5 {
            return RowSink::create_hdf5(path, header);
        }
        let mut file = AtomicFile::create(path)?;
        let (tx, rx) = sync_channel::<Message>(2);
        let (spare_tx, spare) = sync_channel::<Vec<f64>>(SPARE_BLOCKS);
        let rx = Incoming {
            rx,
            spare: spare_tx,
        };
        let header = header.clone();
        let path = path.to_path_buf();
        let done = std::thread::spawn(move || {
            let e = |e: std::io::Error| Error::Io {
                path: path.clone(),
                source: e,
            };
            let complete = match format {
                Format::Npy => write_npy(file.writer(), &header, &rx).map_err(e)?,
                // HDF5 outputs take `create_hdf5` above, never this file.
                Format::Hdf5 => return Err(at(&path)("not an HDF5 writer".into())),
                Format::Csv => write_csv(file.writer(), &header, &rx).map_err(e)?,
                Format::Npz => {
                    let z = |e: zip::result::ZipError| at(&path)(e.to_string());
                    let mut zip = zip::ZipWriter::new(file.writer());
                    let options = zip::write::SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Stored)
                        .large_file(true);
                    zip.start_file("data.npy", options).map_err(z)?;
                    // npyz writes value by value; the buffer hands the archive large blocks,
                    // so its checksum and bookkeeping run once per block, not per value.
                    let mut data = BufWriter::with_capacity(1 << 16, &mut zip);
                    let complete = write_npy(&mut data, &header, &rx).map_err(e)?;
                    data.flush().map_err(e)?;
                    drop(data);
                    zip.start_file("names.npy", options).map_err(z)?;
                    write_names(&mut zip, &header.names).map_err(e)?;
                    zip.finish().map_err(z)?;
                    complete
                }
            };
            if !complete {
                return Err(at(&path)("writing was abandoned".to_string()));
            }
            file.commit()
        });
        Ok(RowSink {
            tx: Some(tx),
            spare: Some(spare),
            done: Some(done),
        })
    }

    /// A sink writing the HDF5 dataset `path` (`file.h5:/group/dataset`).
    #[cfg(feature = "hdf5")]
    fn create_hdf5(path: &Path, header: &Header) -> Result<RowSink, Error> {
        let (file, dataset) =
            split_target(path).ok_or_else(|| at(path)("not an HDF5 dataset path".into()))?;
        let (tx, rx) = sync_channel::<Message>(2);
        let header = header.clone();
        let path = path.to_path_buf();
        let done = std::thread::spawn(move || {
            let mut ended = false;
            let next = || match rx.recv() {
                Ok(Message::Values(values, _)) => Some(values),
                Ok(Message::End) => {
                    ended = true;
                    None
                }
                Err(_) => None,
            };
            let complete =
                crate::hdf5_data::write(&file, &dataset, &header, next).map_err(at(&path))?;
            if !(complete && ended) {
                return Err(at(&path)("writing was abandoned".to_string()));
            }
            Ok(())
        });
        Ok(RowSink {
            tx: Some(tx),
            spare: None,
            done: Some(done),
        })
    }

    #[cfg(not(feature = "hdf5"))]
    fn create_hdf5(path: &Path, _header: &Header) -> Result<RowSink, Error> {
        Err(at(path)(NO_HDF5.into()))
    }

    /// Appends rows.
    pub fn push(&mut self, values: Vec<f32>) -> Result<(), Error> {
        self.send(values.into_iter().map(f64::from).collect(), true)
    }

    /// Appends rows given with full precision.
    pub fn push_f64(&mut self, values: Vec<f64>) -> Result<(), Error> {
        self.send(values, false)
    }

    fn send(&mut self, values: Vec<f64>, from_f32: bool) -> Result<(), Error> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(Message::Values(values, from_f32)));
        match sent {
            Some(Ok(())) => Ok(()),
            // The writer stopped on an error (a full disk, say): report that error.
            _ => {
                drop(self.tx.take());
                match self.done.take().map(|h| h.join()) {
                    Some(Ok(Err(e))) => Err(e),
                    _ => Err(Error::Output("the output writer stopped".to_string())),
                }
            }
        }
    }

    /// A buffer of values the writer is done with, to be filled again (`None` when none is
    /// waiting).
    pub fn spare_buffer(&mut self) -> Option<Vec<f64>> {
        self.spare.as_ref().and_then(|spare| spare.try_recv().ok())
    }

    /// Completes the file and renames it into place.
    pub fn finish(mut self) -> Result<(), Error> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Message::End);
        }
        match self.done.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            _ => Err(Error::Output("the output writer failed".to_string())),
        }
    }
}

impl Drop for RowSink {
    /// An unfinished sink abandons its file: the writer sees the channel close, and joining it
    /// here makes sure its temporary file is gone before the process exits.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(done) = self.done.take() {
            let _ = done.join();
        }
    }
}

/// Receives values until `End` (true) or a dropped sender (false), passing them to `each`,
/// then giving their buffer back.
fn drain(
    rx: &Incoming,
    mut each: impl FnMut(&[f64], bool) -> std::io::Result<()>,
) -> std::io::Result<bool> {
    loop {
        match rx.rx.recv() {
            Ok(Message::Values(v, from_f32)) => {
                each(&v, from_f32)?;
                let _ = rx.spare.try_send(v);
            }
            Ok(Message::End) => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

fn write_typed<T: npyz::AutoSerialize, W: Write>(
    out: W,
    shape: &[u64],
    rx: &Incoming,
    convert: impl Fn(f64) -> T,
) -> std::io::Result<bool> {
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(out)
        .begin_nd()?;
    let complete = drain(rx, |values, _| {
        w.extend(values.iter().copied().map(&convert))
    })?;
    if complete {
        w.finish()?;
    }
    Ok(complete)
}

/// Writes float64 (or, `narrow`, float32) values after a header written by npyz, in whole
/// chunks: npyz's own writer takes them value by value, a tenth of a decoder's time.
fn write_floats<W: Write>(
    mut out: W,
    shape: &[u64],
    rx: &Incoming,
    narrow: bool,
) -> std::io::Result<bool> {
    let descr = if narrow { "<f4" } else { "<f8" };
    let dtype = npyz::DType::Plain(descr.parse().map_err(std::io::Error::other)?);
    npyz::WriteOptions::new_header_only()
        .dtype(dtype)
        .shape(shape)
        .writer(&mut out)
        .write_header_only()?;
    let expected = shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
    let (mut written, mut bytes) = (0u64, Vec::new());
    let complete = drain(rx, |values, _| {
        written += values.len() as u64;
        if written > expected {
            return Err(std::io::Error::other("more values than the shape holds"));
        }
        // In pieces, so that the bytes stay in cache between converting and writing.
        for piece in values.chunks(IO_PIECE_BYTES / 8) {
            bytes.clear();
            if narrow {
                bytes.extend(piece.iter().flat_map(|&v| (v as f32).to_le_bytes()));
            } else {
                bytes.extend(piece.iter().flat_map(|v| v.to_le_bytes()));
            }
            out.write_all(&bytes)?;
        }
        Ok(())
    })?;
    if complete && written != expected {
        return Err(std::io::Error::other(format!(
            "{written} values for a shape of {expected}"
        )));
    }
    Ok(complete)
}

fn write_npy<W: Write>(out: W, header: &Header, rx: &Incoming) -> std::io::Result<bool> {
    let shape: Vec<u64> = header.shape.iter().map(|&d| d as u64).collect();
    match header.dtype {
        DType::F32 => write_floats(out, &shape, rx, true),
        DType::I16 => write_typed(out, &shape, rx, |x| {
            x.round().clamp(-32768.0, 32767.0) as i16
        }),
        DType::I32 => write_typed(out, &shape, rx, |x| x.round() as i32),
        _ => write_floats(out, &shape, rx, false),
    }
}

fn write_names<W: Write>(out: W, names: &[String]) -> std::io::Result<()> {
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let type_str: npyz::TypeStr = format!("<U{width}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut w = npyz::WriteOptions::<str>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(&[names.len() as u64])
        .writer(out)
        .begin_nd()?;
    for name in names {
        w.push(name.as_str())?;
    }
    w.finish()
}

fn write_csv<W: Write>(out: W, header: &Header, rx: &Incoming) -> std::io::Result<bool> {
    let mut csv = csv::Writer::from_writer(out);
    let n = header.row_len().max(1);
    // Generated names are written one by one, not collected: memory stays small for any row.
    if header.names.is_empty() {
        csv.write_record((0..n).map(|i| format!("column_{i}")))?;
    } else {
        csv.write_record(&header.names)?;
    }
    let complete = drain(rx, |values, from_f32| {
        for row in values.chunks_exact(n) {
            if from_f32 {
                csv.write_record(row.iter().map(|&v| (v as f32).to_string()))?;
            } else {
                csv.write_record(row.iter().map(|v| v.to_string()))?;
            }
        }
        Ok(())
    })?;
    csv.flush()?;
    Ok(complete)
}

/// Writes a whole data file in the format of its extension, atomically.
pub fn write(path: &Path, data: &Dataset) -> Result<(), Error> {
    let header = Header {
        shape: data.shape.clone(),
        dtype: data.dtype,
        names: data.names.clone(),
    };
    let mut sink = RowSink::create(path, &header)?;
    sink.push(data.values.clone())?;
    sink.finish()
}

/// A file written next to its final path and renamed into place only when complete, so a
/// failed or interrupted run never leaves a truncated file under the final name.
///
/// The temporary file is `.NAME.PID.tmp` in the target's directory. It is removed when the
/// writing fails (and when the process is stopped by a signal it does not catch, the next
/// write of the same target removes it: temporaries of processes that no longer run go).
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    file: Option<BufWriter<File>>,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `target`.
    pub fn create(target: &Path) -> Result<AtomicFile, Error> {
        let name = target
            .file_name()
            .ok_or_else(|| at(target)("not a file path".to_string()))?;
        remove_stale_temps(target, name);
        let temp = target.with_file_name(temp_name(name, std::process::id()));
        let file = File::create(&temp).map_err(|e| Error::Io {
            path: target.to_path_buf(),
            source: e,
        })?;
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
            file: Some(BufWriter::new(file)),
            committed: false,
        })
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Flushes, syncs and renames the file into place; on failure the temporary file goes.
    pub fn commit(mut self) -> Result<(), Error> {
        let err = |e: std::io::Error| Error::Io {
            path: self.target.clone(),
            source: e,
        };
        let file = self.file.take().expect("file is open until commit");
        let file = file.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(err)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn temp_name(name: &std::ffi::OsStr, pid: u32) -> std::ffi::OsString {
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{pid}.tmp"));
    temp
}

/// Removes the temporaries that killed runs left for `target`: `.NAME.PID.tmp` whose process
/// no longer runs (Linux, where `/proc` tells; elsewhere nothing is removed).
fn remove_stale_temps(target: &Path, name: &std::ffi::OsStr) {
    let proc = Path::new("/proc");
    if !cfg!(target_os = "linux") || !proc.join("self").exists() {
        return;
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (Some(name), Ok(entries)) = (name.to_str(), std::fs::read_dir(dir)) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdf5_paths_split_into_file_and_dataset() {
        let split = |p: &str| split_target(Path::new(p));
        assert_eq!(split("a/b.h5:/g/x"), Some(("a/b.h5".into(), "/g/x".into())));
        assert_eq!(split("run.HDF5:x"), Some(("run.HDF5".into(), "/x".into())));
        assert_eq!(split("t.nc:/temp"), Some(("t.nc".into(), "/temp".into())));
        // The first HDF5 extension ends the file name, whatever follows.
        assert_eq!(
            split("d.h5:/odd.h5:x"),
            Some(("d.h5".into(), "/odd.h5:x".into()))
        );
        assert_eq!(split("data.npz"), None);
        assert_eq!(split("data.h5"), None);
        assert_eq!(Format::of(Path::new("a.h5:/x")).unwrap(), Format::Hdf5);
        let message = Format::of(Path::new("a.h5")).unwrap_err().to_string();
        assert!(message.contains("a.h5:/group/dataset"), "{message}");
    }

    /// A version 1.0 `.npy` file with `header` (padded as numpy pads it) and `data`.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut text = header.to_string();
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(' ');
        }
        text.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn open(bytes: Vec<u8>) -> Result<(), String> {
        let npy = checked_npy(Cursor::new(bytes))?;
        assert!(!npy.shape().is_empty());
        Ok(())
    }

    #[test]
    fn float64_chunks_read_in_pieces_and_recycled_keep_every_value() {
        // 300,001 rows of one value: each chunk spans several read pieces, and the chunks the
        // consumer gives back are filled again; a file cut short is an error, not short data.
        let rows = 300_001usize;
        let values: Vec<f64> = (0..rows).map(|i| i as f64 * 0.1 - 7.0).collect();
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, 1), }}");
        let dir = std::env::temp_dir().join(format!("baler-pieces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (whole, cut) = (dir.join("whole.npy"), dir.join("cut.npy"));
        std::fs::write(&whole, npy(&header, &data)).unwrap();
        std::fs::write(&cut, npy(&header, &data[..data.len() - 8])).unwrap();
        let mut source = RowSource::open(&whole, 140_000).unwrap();
        let mut read = Vec::new();
        while let Some(chunk) = source.next_chunk_f64().unwrap() {
            assert!(chunk.len() <= 140_000);
            read.extend_from_slice(&chunk);
            source.recycle(chunk);
        }
        assert_eq!(read, values);
        let mut source = RowSource::open(&cut, 140_000).unwrap();
        let error = loop {
            match source.next_chunk_f64() {
                Ok(Some(chunk)) => source.recycle(chunk),
                Ok(None) => panic!("a truncated file read to its end"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(error.contains("truncated"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_sink_gives_written_buffers_back_and_writes_every_value() {
        let dir = std::env::temp_dir().join(format!("baler-spare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.npy");
        let header = Header {
            shape: vec![3000, 2],
            dtype: DType::F64,
            names: Vec::new(),
        };
        let mut sink = RowSink::create(&path, &header).unwrap();
        let first: Vec<f64> = (0..2000).map(|i| i as f64 / 3.0).collect();
        sink.push_f64(first.clone()).unwrap();
        // The writer gives the buffer back once it is written (waited for, at most 10 s).
        let mut back = None;
        for _ in 0..1000 {
            back = sink.spare_buffer();
            if back.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut reused = back.expect("the writer gave no buffer back");
        assert!(reused.capacity() >= 2000);
        // Filled again, it is written as new values.
        reused.clear();
        reused.extend((0..4000).map(|i| -(i as f64)));
        sink.push_f64(reused).unwrap();
        sink.finish().unwrap();
        let read = read_f64(&path).unwrap();
        let mut want = first;
        want.extend((0..4000).map(|i| -(i as f64)));
        assert_eq!(read.values, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plain_npy_headers_pass_the_checks() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        open(npy(header, &[0; 48])).unwrap();
    }

    #[test]
    fn a_shape_beyond_64_bits_is_refused_before_npyz_multiplies_it() {
        // npyz computes the element count and strides unchecked (a panic in debug builds).
        for shape in [
            "(4294967296, 4294967296, 16)",
            "[4294967296, 4294967296, 2]",
        ] {
            let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
            let err = open(npy(&header, &[])).unwrap_err();
            assert!(err.contains("more than 2^64 elements"), "{err}");
        }
        // With the key twice, npyz keeps the last: every one is checked.
        let header = "{'shape': (2, 3), 'descr': '<f8', 'fortran_order': False, \
                      'shape': (4294967296, 4294967296, 16), }";
        assert!(open(npy(header, &[])).is_err());
    }

    #[test]
    fn deeply_nested_or_huge_headers_are_refused_quickly() {
        // npyz's parser takes time exponential in the nesting (20 levels: over a minute).
        let nested = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': {}{}}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        let started = std::time::Instant::now();
        let err = open(npy(&nested, &[0; 16])).unwrap_err();
        assert!(err.contains("nested"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Brackets inside strings do not count.
        let quoted = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': '((((((((((' }";
        open(npy(quoted, &[0; 16])).unwrap();
        let mut long = b"\x93NUMPY\x02\x00".to_vec();
        long.extend_from_slice(&(1u32 << 30).to_le_bytes());
        let err = open(long).unwrap_err();
        assert!(err.contains("header of"), "{err}");
    }
}
