//! One compress driver and one decompress driver over both stream kinds, for files and for
//! arrays in memory alike: [`compress_to`] writes a stream into any seekable writer from any
//! row input ([`crate::rows`]); [`decompress_from`] reads one from any reader into any row
//! output. The file functions ([`compress_file`], [`decompress_file`]) and the in-memory API
//! ([`crate::compress`], [`crate::decompress`]) are thin wrappers over these two.

pub mod bounded;
pub mod columns;
pub mod fixed;

use crate::data::{AtomicFile, Header, RowSink};
use crate::rows::RowOutput;
use crate::tiles::tiling_for;
use crate::Error;
use baler_codec::stream::{FLAG_ERROR_BOUNDED, STREAM_HEADER_LEN};
use baler_codec::{HostModel, StreamHeader};
pub use bounded::{Bound, Bounds, Chosen, Opener, UseModel};
pub use columns::{ColumnBounds, ColumnKey};
use std::io::{BufReader, Read, Seek, Write};
use std::path::Path;

/// How to compress: an error bound (and whether a model may predict), or a model alone for
/// the fixed-rate mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Options<'m> {
    /// Every value within this bound (error-bounded mode). `None`: fixed-rate with `model`.
    pub bound: Option<Bound>,
    /// With a bound: whether the model (or a predictor learned from the data) is used.
    pub use_model: UseModel,
    /// A model blob written by `baler train`: required for fixed-rate, optional with a bound.
    pub model: Option<&'m [u8]>,
    /// With a bound, for 2-D data: code it as one field of rows (an image, a detector plane,
    /// a spectrogram), each row predicted from the rows above, with one grid for the whole
    /// array (a relative bound is then R x the whole array's range), instead of a table whose
    /// columns are independent variables. Ignored for other ranks.
    pub field: bool,
    /// With a bound, for tables: bounds of particular columns (by name or index), `bound`
    /// being the default of the others ([`ColumnBounds`] reads them from JSON or TOML).
    pub columns: &'m [(ColumnKey, Bound)],
}

impl<'m> Options<'m> {
    /// Error-bounded: every value within `bound`, predictors chosen automatically.
    pub fn bounded(bound: Bound) -> Self {
        Options {
            bound: Some(bound),
            ..Options::default()
        }
    }

    /// Fixed-rate with the model blob `model`.
    pub fn fixed_rate(model: &'m [u8]) -> Self {
        Options {
            model: Some(model),
            ..Options::default()
        }
    }
}

/// What compress wrote, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// Raw size of the input (its element type times its values).
    pub raw_bytes: usize,
    /// Size of the stream.
    pub stream_bytes: usize,
    /// Size of the model blob the stream needs to decode (0 if none).
    pub model_bytes: usize,
    /// Error-bounded streams: what was chosen and how close to the bound it came.
    pub bounded: Option<bounded::Outcome>,
}

fn load(blob: &[u8]) -> Result<HostModel<'_>, Error> {
    HostModel::from_bytes(blob).map_err(|e| Error::Codec {
        path: None,
        source: e,
    })
}

/// Compresses the rows `open` delivers into `out` (which may already hold bytes: the stream
/// starts where it stands). `input` names the input in messages; `progress` is told the rows
/// coded so far and the total.
pub fn compress_to<W: Write + Seek>(
    open: &Opener<'_>,
    input: &Path,
    out: &mut W,
    options: &Options<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<Compressed, Error> {
    let model = options.model.map(load).transpose()?;
    let Some(bound) = options.bound else {
        let model = model.ok_or_else(|| {
            Error::Options("--model is required (or give --error-bound)".to_string())
        })?;
        let outcome = fixed::compress(&model, open, input, out, progress)?;
        return Ok(Compressed {
            raw_bytes: outcome.raw_bytes,
            stream_bytes: outcome.stream_bytes,
            model_bytes: options.model.map_or(0, <[u8]>::len),
            bounded: None,
        });
    };
    bound.check()?;
    for (_, column) in options.columns {
        column.check()?;
    }
    let shape = open(1)?.header().shape.clone();
    let tiling = model.as_ref().and_then(|m| {
        let frame: Vec<usize> = m.frame_shape().map(|d| d as usize).collect();
        tiling_for(&shape, &frame)
    });
    if let Some(m) = &model {
        let len = tiling.map_or(shape[1..].iter().product(), |t| t.tile_len());
        if len != m.input_len() {
            return Err(Error::input(format!(
                "frames of {len} values, but the model expects {}",
                m.input_len()
            )));
        }
    }
    let blob_len = options.model.map_or(0, <[u8]>::len);
    let outcome = bounded::compress(
        model.as_ref().map(|m| (m, blob_len)),
        tiling,
        open,
        out,
        Bounds {
            default: bound,
            columns: options.columns,
        },
        options.use_model,
        options.field && shape.len() == 2,
        progress,
    )?;
    Ok(Compressed {
        raw_bytes: outcome.raw_bytes,
        stream_bytes: outcome.stream_bytes,
        model_bytes: outcome.model_bytes,
        bounded: Some(outcome),
    })
}

/// Compresses the data file `input` into the stream file `output`, written atomically (a
/// failed run leaves no file under the final name).
pub fn compress_file(
    input: &Path,
    output: &Path,
    options: &Options<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<Compressed, Error> {
    // Opened first, so an unwritable output fails before the input is read.
    let mut file = AtomicFile::create(output)?;
    let open = crate::rows::file_opener(input);
    let outcome =
        compress_to(&open, input, file.writer(), options, progress).map_err(|e| e.at(input))?;
    file.commit()?;
    Ok(outcome)
}

/// What decompress found and wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Decompressed {
    /// The stream's header.
    pub stream: StreamHeader,
    /// Shape, element type and names of the decoded data.
    pub output: Header,
    /// Values written.
    pub values: usize,
}

/// Decodes the stream `reader` delivers (`stream_len` bytes long in all, which bounds what a
/// damaged header may make us allocate) into the sink `make_sink` creates for the decoded
/// data's header. `model` is the model blob: required for fixed-rate streams and for
/// error-bounded ones coded with a model, ignored otherwise. `progress` is told the frames
/// decoded so far and the total.
pub fn decompress_from<R: Read, S: RowOutput>(
    reader: &mut R,
    stream_len: u64,
    model: Option<&[u8]>,
    make_sink: impl FnOnce(&Header) -> Result<S, Error>,
    progress: &dyn Fn(u64, u64),
) -> Result<(S, Decompressed), Error> {
    let mut head = Vec::with_capacity(STREAM_HEADER_LEN);
    reader
        .take(STREAM_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::input(e.to_string()))?;
    if head.is_empty() {
        return Err(Error::input("empty file, not a baler stream"));
    }
    match StreamHeader::read(&head) {
        Ok(header) if header.flags & FLAG_ERROR_BOUNDED != 0 => {
            let start = bounded::read_params(&header, reader).map_err(Error::codec)?;
            let names = bounded::stream_names(&start).map_err(Error::codec)?;
            let model = match model {
                Some(blob) if header.model_id != 0 => Some(load(blob)?),
                _ => None,
            };
            let output = Header {
                shape: start.shape.clone(),
                dtype: header.dtype,
                names,
            };
            let mut sink = make_sink(&output)?;
            let values =
                bounded::decompress(&header, &start, model.as_ref(), reader, &mut sink, progress)?;
            return Ok((
                sink,
                Decompressed {
                    stream: header,
                    output,
                    values,
                },
            ));
        }
        Ok(_) => {}
        // With a model, the decoder below tells a stream of another model from damage.
        Err(e) if model.is_none() => return Err(Error::codec(e)),
        Err(_) => {}
    }
    let blob = model.ok_or_else(|| Error::Options("--model is required for this stream".into()))?;
    let model = load(blob)?;
    let header = fixed::check_header(&model, &head, stream_len)?;
    let output = fixed::output_header(&model, &header);
    let mut sink = make_sink(&output)?;
    let values = fixed::decompress(&model, &header, reader, &mut sink, progress)?;
    Ok((
        sink,
        Decompressed {
            stream: header,
            output,
            values,
        },
    ))
}

/// Decompresses the stream file `input` into the data file `output` (written atomically).
pub fn decompress_file(
    input: &Path,
    output: &Path,
    model: Option<&[u8]>,
    progress: &dyn Fn(u64, u64),
) -> Result<Decompressed, Error> {
    let file = std::fs::File::open(input).map_err(|e| Error::Io {
        path: input.to_path_buf(),
        source: e,
    })?;
    let len = file.metadata().map_or(0, |m| m.len());
    let mut reader = BufReader::new(file);
    let make_sink = |header: &Header| RowSink::create(output, header);
    let (sink, decoded) =
        decompress_from(&mut reader, len, model, make_sink, progress).map_err(|e| e.at(input))?;
    sink.finish()?;
    Ok(decoded)
}
