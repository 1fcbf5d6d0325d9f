//! Fuzz harnesses for baler-rs: one function per cargo-fuzz target, plus the seed corpus.
//!
//! The targets in `fuzz_targets/` call these functions; the root package's
//! `tests/fuzz_regressions.rs` includes this file as a module and replays
//! `tests/fuzz-regressions/<target>/` through the very same functions on stable Rust. Every
//! function returns the codec's or the library's own error for bad input: errors are fine, a
//! panic (overflow included), a hang or an out-of-memory is a bug.
//!
//! Most harnesses read the first input byte as a mode. Bit 0 "repairs" checksums (stream
//! header and block CRC32s, the model id) after the fuzzer's mutations, so mutated inputs get
//! past the integrity checks and reach the decoders behind them.

use baler_codec::bounded::{
    params_len, tabled_applies, write_params, BoundParams, CoderChoice, ColumnGrid, IntModel,
    InterpolationPlan, Layout, Predictor, RowModel, ScratchBuf, ScratchSizes, CAUSAL_TAPS,
    LEARNED_FRACTION_BITS, LEARNED_TAPS,
};
use baler_codec::entropy::intcode::{code_raw64, code_symbol, Symbol, MAX_MAGNITUDE_BITS};
use baler_codec::entropy::range::{BitCoder, RangeDecoder, RangeEncoder};
use baler_codec::model::quantize::{ColumnCorrection, ExactColumn, FloatActivation, FloatModel};
use baler_codec::model::spec::{model_id, MODEL_HEADER_LEN, MODEL_MAGIC, MODEL_VERSION};
use baler_codec::stream::{
    decode_block, read_block, write_block, BlockKind, BLOCK_HEADER_LEN, BLOCK_TRAILER_LEN,
    FLAG_ERROR_BOUNDED, STREAM_HEADER_LEN,
};
use baler_codec::{DType, Decoder, EdgeModel, Encoder, Error, HostModel, Model, StreamHeader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The golden model (48 -> 32 tanh -> 16 latent codes of 6 bits -> 32 -> 48), frame `[48]`.
pub const GOLDEN_BLOB: &[u8] = include_bytes!("../../tests/golden/edge_model.blob");
/// The golden stream: 16 frames of the golden model, 5 frames per block.
pub const GOLDEN_STREAM: &[u8] = include_bytes!("../../tests/golden/stream.baler");

/// Harness limit on the row length of an error-bounded stream decoded by [`bounded_decode`]:
/// its working memory is allocated from the declared row length (the CLI allows up to 2^27),
/// so without it the fuzzer would report declared-size allocations as out-of-memory.
pub const HARNESS_MAX_ROW: usize = 1 << 16;

/// CRC32 as the stream format uses it (header and blocks).
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn split_mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&mode, rest)) => (mode, rest),
        None => (0, &[]),
    }
}

/// Rewrites the stream header CRC (and the model id, if given) and the CRC of every block
/// whose declared length fits in `bytes`.
pub fn repair_stream(bytes: &mut [u8], id: Option<u64>) {
    if bytes.len() < STREAM_HEADER_LEN {
        return;
    }
    if let Some(id) = id {
        bytes[8..16].copy_from_slice(&id.to_le_bytes());
    }
    let crc = CRC32.checksum(&bytes[..64]);
    bytes[64..68].copy_from_slice(&crc.to_le_bytes());
    let mut at = STREAM_HEADER_LEN;
    while at + BLOCK_HEADER_LEN <= bytes.len() {
        let len = &bytes[at + 5..at + 9];
        let payload = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let end = at + BLOCK_HEADER_LEN + payload + BLOCK_TRAILER_LEN;
        if end > bytes.len() {
            return;
        }
        let crc = CRC32.checksum(&bytes[at..end - BLOCK_TRAILER_LEN]);
        bytes[end - BLOCK_TRAILER_LEN..end].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// Rewrites a model blob's header (magic, version, flags, id) to match its body.
pub fn repair_blob(blob: &mut [u8]) {
    if blob.len() < MODEL_HEADER_LEN {
        return;
    }
    let id = model_id(&blob[MODEL_HEADER_LEN..]);
    blob[0..4].copy_from_slice(&MODEL_MAGIC);
    blob[4..6].copy_from_slice(&MODEL_VERSION.to_le_bytes());
    blob[6..8].copy_from_slice(&0u16.to_le_bytes());
    blob[8..16].copy_from_slice(&id.to_le_bytes());
}

/// The golden model, loaded once.
pub fn golden() -> &'static HostModel<'static> {
    static MODEL: OnceLock<HostModel<'static>> = OnceLock::new();
    MODEL.get_or_init(|| HostModel::from_bytes(GOLDEN_BLOB).expect("the golden model loads"))
}

/// The golden model in an edge build's capacities, loaded once.
pub fn golden_edge() -> &'static EdgeModel<'static> {
    static MODEL: OnceLock<EdgeModel<'static>> = OnceLock::new();
    MODEL.get_or_init(|| EdgeModel::from_bytes(GOLDEN_BLOB).expect("the golden model fits"))
}

/// A small model whose frame is a 4x4 tile (16 -> 8 -> 4 codes of 8 bits), so fields of other
/// frame sizes are tiled by the CLI. Checked in (`tests/golden/tile_model.blob`, made by
/// `FloatModel::random(5, &[16, 8, 4], 8, &[Sigmoid], 32)` with frame shape 4 x 4 and the
/// quantizer of November 2026): the kept regression streams name this model, so it must not
/// change when the quantizer does.
pub fn tile_blob() -> &'static [u8] {
    include_bytes!("../../tests/golden/tile_model.blob")
}

// ---------------------------------------------------------------------------------------------
// model_blob

/// Loads arbitrary bytes as a model blob (host and edge capacities); a blob that loads runs
/// one frame through encode and decode (integer and reference paths) and a short stream.
/// Returns the latent width of the loaded model.
pub fn model_blob(data: &[u8]) -> Result<usize, Error> {
    let (mode, rest) = split_mode(data);
    let mut blob = rest.to_vec();
    if mode & 1 != 0 {
        repair_blob(&mut blob);
    }
    let _ = HostModel::peek_id(&blob);
    if let Ok(edge) = EdgeModel::from_bytes(&blob) {
        exercise_model(&edge, mode)?;
    }
    let model = HostModel::from_bytes(&blob)?;
    exercise_model(&model, mode)?;
    Ok(model.latent_len())
}

/// A deterministic frame: ordinary values, or (by `mode`) extremes that saturate.
fn test_frame(n: usize, mode: u8) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = (i as f32 * 0.618).sin() * 10.0;
            match (mode >> 1) & 3 {
                0 => x,
                1 => x * 1e6,
                2 => f32::MAX * x.signum(),
                _ => -x,
            }
        })
        .collect()
}

fn exercise_model<const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    mode: u8,
) -> Result<(), Error> {
    let n = model.input_len();
    let latent = model.latent_len();
    let frame = test_frame(n, mode);
    let mut codes = vec![0i16; latent];
    let mut out = vec![0f32; model.output_len()];
    model.encode_frame(&frame, &mut codes)?;
    let (lo, hi) = model.code_range();
    assert!(
        codes.iter().all(|&c| (lo..=hi).contains(&i32::from(c))),
        "encoder produced codes outside the code range"
    );
    model.decode_frame(&codes, &mut out)?;
    // The extreme codes decode too (saturation, never overflow).
    for extreme in [lo, hi] {
        let codes = vec![extreme as i16; latent];
        model.decode_frame(&codes, &mut out)?;
    }
    let counts: Vec<i16> = (0..n).map(|i| (i as i16).wrapping_mul(977)).collect();
    model.encode_frame_i16(&counts, &mut codes)?;
    let mut real_latent = vec![0f32; latent];
    model.reference_encode(&frame, &mut real_latent)?;
    model.reference_decode(&real_latent, &mut out)?;
    // A three-frame stream round trip through the streaming encoder and decoder.
    let header = StreamHeader::new(model, DType::F32, &[3, n as u64])?;
    let mut stream = vec![0u8; 4096 + model.packed_len(3).unwrap_or(0)];
    let mut encoder = Encoder::new(model, header, 2, &mut stream)?;
    for _ in 0..3 {
        encoder.push_frame(&frame)?;
    }
    let len = encoder.finish()?;
    let mut decoder = Decoder::new(model, &stream[..len])?;
    let mut frames = 0;
    while decoder.next_frame(&mut out)? {
        frames += 1;
    }
    assert_eq!(frames, 3, "a stream round trip lost frames");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// stream_decode

/// Decodes arbitrary bytes as a fixed-rate stream of the golden model, with the streaming
/// [`Decoder`] (host and edge capacities) and block by block as the CLI does; the two must
/// agree. Returns the number of decoded values.
pub fn stream_decode(data: &[u8]) -> Result<usize, Error> {
    let (mode, rest) = split_mode(data);
    let model = golden();
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        repair_stream(&mut bytes, (mode & 2 != 0).then(|| model.id()));
    }
    let edge_result = decode_fixed(golden_edge(), &bytes);
    let blocks = decode_blocks(model, &bytes);
    let streamed = decode_fixed(model, &bytes);
    assert_eq!(
        streamed.as_ref().map(|v| v.len()),
        edge_result.as_ref().map(|v| v.len()),
        "host and edge builds disagree"
    );
    if let Ok(values) = &streamed {
        // A stream the streaming decoder accepts decodes to the same bits block by block.
        let by_block = blocks.expect("blocks of a valid stream decode");
        assert_eq!(values.len(), by_block.len(), "block decoding lost values");
        let same = values
            .iter()
            .zip(&by_block)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "block decoding differs from streaming decoding");
    }
    streamed.map(|v| v.len())
}

fn decode_fixed<const L: usize, const W: usize>(
    model: &Model<'_, L, W>,
    bytes: &[u8],
) -> Result<Vec<f32>, Error> {
    let mut decoder = Decoder::new(model, bytes)?;
    let mut frame = vec![0f32; model.output_len()];
    let mut codes = vec![0i16; model.latent_len()];
    let mut all = Vec::new();
    let mut codes_only = false;
    loop {
        // Alternate between the two reading entry points.
        let more = if codes_only {
            let more = decoder.next_codes(&mut codes)?;
            if more {
                model.decode_frame(&codes, &mut frame)?;
            }
            more
        } else {
            decoder.next_frame(&mut frame)?
        };
        if !more {
            break;
        }
        all.extend_from_slice(&frame);
        codes_only = !codes_only;
    }
    Ok(all)
}

/// Block by block after the header, as `baler decompress` does (no frame-count checks).
fn decode_blocks(model: &HostModel<'_>, bytes: &[u8]) -> Result<Vec<f32>, Error> {
    StreamHeader::read(bytes)?;
    let mut at = STREAM_HEADER_LEN;
    let mut all = Vec::new();
    let mut index = 0u32;
    while at < bytes.len() {
        let (block, len) = read_block(model, &bytes[at..], index)?;
        // As the CLI: only latent-code blocks are decoded (another kind's frame count is
        // unchecked, so nothing is allocated for it).
        if block.kind != BlockKind::LatentCodes {
            return Err(Error::UnknownBlockKind(bytes[at]));
        }
        let mut out = vec![0f32; block.frames as usize * model.output_len()];
        decode_block(model, &block, &mut out)?;
        all.extend_from_slice(&out);
        at += len;
        index = index.saturating_add(1);
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------------------
// bounded_decode

/// Decodes arbitrary bytes as an error-bounded stream (parameters block, then residual
/// blocks; table or field layout; with or without the golden model as predictor), the way
/// `baler decompress` does. Returns the number of decoded values.
pub fn bounded_decode(data: &[u8]) -> Result<usize, baler::Error> {
    let (mode, rest) = split_mode(data);
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        repair_stream(&mut bytes, None);
    }
    decode_bounded(&bytes, Some(GOLDEN_BLOB)).map(|v| v.len())
}

/// Decodes a whole error-bounded stream held in memory, through the library's in-memory
/// API (`baler::decompress`), after the harness's own limit on the row length.
pub fn decode_bounded(bytes: &[u8], model: Option<&[u8]>) -> Result<Vec<f64>, baler::Error> {
    let header = StreamHeader::read(bytes).map_err(baler::Error::codec)?;
    if header.flags & FLAG_ERROR_BOUNDED == 0 {
        return Err(baler::Error::codec(Error::Invalid(
            "not an error-bounded stream",
        )));
    }
    let n = header.frame_len as usize;
    if n == 0 || n > HARNESS_MAX_ROW {
        return Err(baler::Error::codec(Error::Invalid(
            "harness: row length out of range",
        )));
    }
    Ok(baler::decompress(bytes, model)?.values().to_f64())
}

/// Encodes `values` (rows of `row_len`) as an error-bounded stream, `rows_per_block` rows per
/// block, every value within `bound` (seeds for the bounded targets), predicted by `model`,
/// else by a `fitted` predictor (fields: learned weights or interpolation), else model-free.
#[allow(clippy::too_many_arguments)]
pub fn encode_bounded(
    layout: Layout,
    dtype: DType,
    model: Option<&HostModel<'_>>,
    fitted: Option<Predictor>,
    row_len: usize,
    values: &[f64],
    bound: f64,
    rows_per_block: usize,
    names: &[&str],
) -> Vec<u8> {
    let grid = |context| ColumnGrid {
        offset: 0.0,
        step: if matches!(dtype, DType::I16 | DType::I32) {
            (2.0 * bound).floor().max(1.0)
        } else {
            2.0 * bound
        },
        bound,
        context,
        relation: None,
        per_binade: 0,
    };
    let grids: Vec<ColumnGrid> = match layout {
        Layout::Table => (0..row_len)
            .map(|i| grid(i.checked_sub(1).map(|c| c as u32)))
            .collect(),
        Layout::Field { .. } => vec![grid(None)],
    };
    let predictor = match (model, fitted) {
        (Some(_), _) => Predictor::Model,
        (None, Some(fitted)) => fitted,
        (None, None) => Predictor::None,
    };
    let mut params = vec![0u8; params_len(layout, &predictor, row_len, names)];
    write_params(
        layout,
        predictor,
        dtype,
        row_len,
        &grids,
        names,
        &mut params,
    )
    .unwrap();
    let parsed = BoundParams::read(&params).unwrap();
    let rows = values.len() / row_len;
    let latent = model.map_or(0, |m| m.row_codes());
    let mut scratch = ScratchBuf::new(ScratchSizes::new(&parsed, latent, rows_per_block));
    let mut stream = vec![0u8; STREAM_HEADER_LEN];
    stream.extend(sealed(BlockKind::BoundParams, 0, &params));
    for (index, part) in values.chunks(rows_per_block * row_len).enumerate() {
        let mut out = vec![0f64; part.len()];
        // Without a model: blocks tabled as compress writes them (fields in kind 6), adaptive
        // and, for fields, in kind 4, as older streams hold them, in turn.
        let coder = match index % 3 {
            _ if !tabled_applies(&parsed) => CoderChoice::Adaptive,
            0 => CoderChoice::Tabled,
            1 => CoderChoice::Adaptive,
            _ => CoderChoice::TabledValueContexts,
        };
        let block = scratch
            .encode_block(&parsed, model, coder, part, &mut out)
            .unwrap();
        stream.extend(block);
    }
    let shape: Vec<u64> = match layout {
        Layout::Table => vec![rows as u64, row_len as u64],
        Layout::Field { height, width } => vec![rows as u64, height.into(), width.into()],
    };
    let mut dims = [0u64; 4];
    dims[..shape.len()].copy_from_slice(&shape);
    let header = StreamHeader {
        model_id: model.map_or(0, |m| m.id()),
        flags: FLAG_ERROR_BOUNDED,
        frame_count: rows as u64,
        frame_len: row_len as u32,
        dtype,
        rank: shape.len() as u8,
        shape: dims,
    };
    header.write(&mut stream).unwrap();
    stream
}

fn sealed(kind: BlockKind, frames: u32, payload: &[u8]) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK_HEADER_LEN + payload.len() + BLOCK_TRAILER_LEN];
    write_block(kind, frames, payload, &mut block).unwrap();
    block
}

// ---------------------------------------------------------------------------------------------
// entropy_decode

/// Symbols decoded (or round-tripped) per input, at most.
const ENTROPY_SYMBOLS: usize = 1024;

/// The range decoder and integer binarization directly. Mode bit 0 clear: decode up to 1024
/// symbols (values, escapes with raw words, direct bits) from arbitrary bytes. Set: encode
/// the integers the input spells, decode them back and require the same values and the exact
/// byte count. Returns the number of symbols coded.
pub fn entropy_decode(data: &[u8]) -> Result<usize, Error> {
    let (mode, rest) = split_mode(data);
    if mode & 1 == 0 {
        entropy_decode_only(mode, rest)
    } else {
        entropy_round_trip(mode, rest)
    }
}

/// The context of symbol `i` in decode-only mode (fixed by position, so seeds can mirror it).
fn entropy_context(mode: u8, i: usize) -> usize {
    (i + usize::from(mode >> 1)) % 8
}

fn entropy_decode_only(mode: u8, bytes: &[u8]) -> Result<usize, Error> {
    let mut decoder = RangeDecoder::new(bytes)?;
    let mut contexts = [IntModel::default(); 8];
    let direct_bits = u32::from(mode >> 3);
    for i in 0..ENTROPY_SYMBOLS {
        if decoder.position() == bytes.len() {
            // Every byte consumed: a clean end (the coder's last symbols need no more bytes).
            return Ok(i);
        }
        match code_symbol(
            &mut decoder,
            &mut contexts[entropy_context(mode, i)],
            Symbol::Escape,
        )? {
            Symbol::Value(v) => assert!(
                v.unsigned_abs() < 1u64 << MAX_MAGNITUDE_BITS,
                "decoded a value beyond the coded magnitude"
            ),
            Symbol::Escape => {
                code_raw64(&mut decoder, 0)?;
            }
        }
        if i % 16 == 15 && direct_bits > 0 {
            decoder.direct(0, direct_bits)?;
        }
        assert!(decoder.position() <= bytes.len());
    }
    Ok(ENTROPY_SYMBOLS)
}

/// What [`entropy_decode_only`] reads, encoded: `values` as symbols (escapes for the large
/// ones), with the same contexts and direct bits (a seed).
fn entropy_encode(mode: u8, values: &[i64]) -> Vec<u8> {
    let mut buffer = vec![0u8; values.len() * 24 + 16];
    let mut encoder = RangeEncoder::new(&mut buffer);
    let mut contexts = [IntModel::default(); 8];
    let direct_bits = u32::from(mode >> 3);
    for (i, &v) in values.iter().enumerate() {
        let model = &mut contexts[entropy_context(mode, i)];
        if v.unsigned_abs() < 1u64 << MAX_MAGNITUDE_BITS {
            code_symbol(&mut encoder, model, Symbol::Value(v)).unwrap();
        } else {
            code_symbol(&mut encoder, model, Symbol::Escape).unwrap();
            code_raw64(&mut encoder, v as u64).unwrap();
        }
        if i % 16 == 15 && direct_bits > 0 {
            encoder.direct(i as u32, direct_bits).unwrap();
        }
    }
    let len = encoder.finish().unwrap();
    buffer.truncate(len);
    buffer
}

fn entropy_round_trip(mode: u8, bytes: &[u8]) -> Result<usize, Error> {
    // Each 8-byte word is a value; ones too large for a symbol go as escape + raw word. Mode
    // bits 1-2 shrink the values so small magnitudes (the common case) get exercised.
    let shift = [0, 20, 40, 58][usize::from((mode >> 1) & 3)];
    let values: Vec<i64> = bytes
        .chunks(8)
        .take(ENTROPY_SYMBOLS)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            i64::from_le_bytes(w) >> shift
        })
        .collect();
    let context_of = |v: i64| (v.unsigned_abs() % 5) as usize;
    let mut buffer = vec![0u8; values.len() * 20 + 16];
    let mut encoder = RangeEncoder::new(&mut buffer);
    let mut contexts = [IntModel::default(); 5];
    let mut previous = 0i64;
    for &v in &values {
        let model = &mut contexts[context_of(previous)];
        if v.unsigned_abs() < 1u64 << MAX_MAGNITUDE_BITS {
            assert_eq!(
                code_symbol(&mut encoder, model, Symbol::Value(v))?,
                Symbol::Value(v)
            );
        } else {
            // A too-large value is refused without touching the coder's output...
            let refused = code_symbol(&mut encoder, &mut IntModel::default(), Symbol::Value(v));
            assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
            // ...and goes as an escape and a raw word instead.
            assert_eq!(
                code_symbol(&mut encoder, model, Symbol::Escape)?,
                Symbol::Escape
            );
            assert_eq!(code_raw64(&mut encoder, v as u64)?, v as u64);
        }
        previous = v;
    }
    let len = encoder.finish()?;
    let encoded = &buffer[..len];
    let mut decoder = RangeDecoder::new(encoded)?;
    let mut contexts = [IntModel::default(); 5];
    let mut previous = 0i64;
    for &v in &values {
        let model = &mut contexts[context_of(previous)];
        let got = match code_symbol(&mut decoder, model, Symbol::Escape)? {
            Symbol::Value(x) => x,
            Symbol::Escape => code_raw64(&mut decoder, 0)? as i64,
        };
        assert_eq!(got, v, "range coder round trip changed a value");
        previous = v;
    }
    // The decoders rely on this to find trailing bytes after a block's payload.
    assert_eq!(
        decoder.position(),
        len,
        "decoder did not consume exactly the encoded bytes"
    );
    Ok(values.len())
}

// ---------------------------------------------------------------------------------------------
// readers and decompress_cli (the library's file drivers)

/// A fresh path in this process's scratch directory, with extension `ext`.
fn scratch(ext: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("baler-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("f{n}.{ext}"))
}

/// Removes the file when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn with(ext: &str, bytes: &[u8]) -> Scratch {
        let path = scratch(ext);
        std::fs::write(&path, bytes).expect("scratch file");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const READER_EXTENSIONS: [&str; 3] = ["npy", "npz", "csv"];

/// The library's data readers over arbitrary file contents: the first byte picks the
/// extension (npy, npz, csv) and the chunk size; the rest is the file, read with
/// `RowSource::open` + `next_chunk_f64` and with `data::read`, as the CLI does. Returns the
/// number of values read.
pub fn readers(data: &[u8]) -> Result<usize, String> {
    let (mode, rest) = split_mode(data);
    let ext = READER_EXTENSIONS[usize::from(mode) % READER_EXTENSIONS.len()];
    let file = Scratch::with(ext, rest);
    let chunk = 1 + usize::from(mode >> 2) * 3;
    let streamed = read_rows(&file.0, chunk);
    let whole = baler::data::read(&file.0);
    if let (Ok(values), Ok(set)) = (&streamed, &whole) {
        assert_eq!(
            *values,
            set.values.len(),
            "chunked and whole reads disagree"
        );
    }
    streamed
}

fn read_rows(path: &Path, chunk: usize) -> Result<usize, String> {
    let mut source = baler::data::RowSource::open(path, chunk)?;
    let row_len = source.header.row_len();
    let mut values = 0;
    while let Some(chunk) = source.next_chunk_f64()? {
        assert_eq!(chunk.len() % row_len, 0, "a chunk of partial rows");
        values += chunk.len();
    }
    Ok(values)
}

/// `baler decompress` on arbitrary stream bytes: mode bit 0 repairs CRCs, bit 1 picks the
/// tiled model instead of the golden one (bit 2 writes its id into the header), bit 3 writes
/// CSV instead of npy. Returns Ok for a stream the CLI decompressed.
pub fn decompress_cli(data: &[u8]) -> Result<(), String> {
    static MODELS: OnceLock<(Scratch, Scratch)> = OnceLock::new();
    let (golden_path, tile_path) = &MODELS.get_or_init(|| {
        (
            Scratch::with("blob", GOLDEN_BLOB),
            Scratch::with("blob", tile_blob()),
        )
    });
    let (mode, rest) = split_mode(data);
    let (model_path, blob) = if mode & 2 != 0 {
        (&tile_path.0, tile_blob())
    } else {
        (&golden_path.0, GOLDEN_BLOB)
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        let id = HostModel::peek_id(blob).ok().filter(|_| mode & 4 != 0);
        repair_stream(&mut bytes, id);
    }
    let input = Scratch::with("baler", &bytes);
    let output = Scratch(scratch(if mode & 8 != 0 { "csv" } else { "npy" }));
    let blob = std::fs::read(model_path).map_err(|e| e.to_string())?;
    baler::decompress_file(&input.0, &output.0, Some(&blob), &|_, _| {})
        .map(drop)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// seeds

/// The targets, by name.
pub const TARGETS: [&str; 6] = [
    "model_blob",
    "stream_decode",
    "bounded_decode",
    "entropy_decode",
    "readers",
    "decompress_cli",
];

/// Runs `target`'s harness on `data`: `Ok` if the input was decoded, `Err` with the error
/// text if it was refused.
pub fn run(target: &str, data: &[u8]) -> Result<(), String> {
    let text = |e: Error| e.to_string();
    match target {
        "model_blob" => model_blob(data).map(drop).map_err(text),
        "stream_decode" => stream_decode(data).map(drop).map_err(text),
        "bounded_decode" => bounded_decode(data).map(drop).map_err(|e| e.to_string()),
        "entropy_decode" => entropy_decode(data).map(drop).map_err(text),
        "readers" => readers(data).map(drop),
        "decompress_cli" => decompress_cli(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(bytes);
    v
}

fn smooth(rows: usize, n: usize, scale: f64) -> Vec<f64> {
    (0..rows * n)
        .map(|i| ((i / n) as f64 * 0.3 + (i % n) as f64 * 0.7).sin() * scale)
        .collect()
}

/// Valid inputs for `target` (each decodes with `Ok`): the seed corpus.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let model = golden();
    match target {
        "model_blob" => {
            let mut seeds = vec![with_mode(0, GOLDEN_BLOB), with_mode(3, GOLDEN_BLOB)];
            seeds.push(with_mode(1, tile_blob()));
            for (seed, act) in [
                (1, FloatActivation::Relu),
                (2, FloatActivation::Tanh),
                (3, FloatActivation::LeakyRelu(0.1)),
            ] {
                let (float, _) = FloatModel::random(seed, &[6, 5, 2], 4, &[act], 16);
                seeds.push(with_mode(5, &float.quantize().unwrap()));
            }
            // Both sections: an exact column and per-column corrections.
            let acts = [FloatActivation::Relu];
            let (mut float, _) = FloatModel::random(4, &[6, 5, 2], 6, &acts, 16);
            float.exact = vec![ExactColumn {
                column: 1,
                values: vec![-1.0, 1.0],
            }];
            float.corrections = [(0, 3, -0.5), (4, 16, -2.0), (5, 1, 0.0)]
                .map(|(column, bits, low)| ColumnCorrection {
                    column,
                    bits,
                    low,
                    step: 0.25,
                })
                .to_vec();
            // Mode 0: no repair (which would clear the flags that announce the sections).
            seeds.push(with_mode(0, &float.quantize().unwrap()));
            seeds
        }
        "stream_decode" => {
            let mut seeds = vec![with_mode(0, GOLDEN_STREAM), with_mode(3, GOLDEN_STREAM)];
            let frames: Vec<f32> = smooth(7, 48, 3.0).iter().map(|&v| v as f32).collect();
            for per_block in [1, 3] {
                let header = StreamHeader::new(model, DType::F64, &[7, 48]).unwrap();
                let mut out = vec![0u8; 4096];
                let mut encoder = Encoder::new(model, header, per_block, &mut out).unwrap();
                for frame in frames.chunks_exact(48) {
                    encoder.push_frame(frame).unwrap();
                }
                let len = encoder.finish().unwrap();
                seeds.push(with_mode(1, &out[..len]));
            }
            seeds
        }
        "bounded_decode" => bounded_seeds(model)
            .into_iter()
            .chain(library_seeds())
            .map(|s| with_mode(1, &s))
            .collect(),
        "entropy_decode" => {
            let values: Vec<u8> = [0i64, 1, -1, 5, 1 << 43, -(1 << 50), i64::MIN, 3]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            let mut seeds = vec![with_mode(1, &values), with_mode(3, &values)];
            // Real coded buffers to decode, as the decode-only mode reads them.
            let small: Vec<i64> = (0..300).map(|i| i % 7 - 3).collect();
            let mixed: Vec<i64> = (0..100).map(|i| (i - 50) * (1 << (i % 50))).collect();
            seeds.push(with_mode(0, &entropy_encode(0, &small)));
            seeds.push(with_mode(0x52, &entropy_encode(0x52, &mixed)));
            seeds
        }
        "readers" => reader_seeds(),
        "decompress_cli" => cli_seeds(model),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// Learned-predictor weights for seeds: mostly "the previous frame", with small weights on
/// every other tap so each one is exercised.
fn shift_weights() -> [i32; LEARNED_TAPS] {
    let mut weights = [0i32; LEARNED_TAPS];
    for (i, w) in weights.iter_mut().enumerate() {
        *w = (i as i32 % 7 - 3) * 97;
    }
    weights[10 + 12] = 1 << LEARNED_FRACTION_BITS;
    weights
}

/// In-frame learned weights (parameters predictor 5) for seeds and the corruption test:
/// 2-D Lorenzo, "up + left - up-left", over the frame's own taps.
pub fn planar_in_frame_weights() -> [i32; CAUSAL_TAPS.len()] {
    let one = 1 << LEARNED_FRACTION_BITS;
    let mut weights = [0i32; CAUSAL_TAPS.len()];
    weights[..3].copy_from_slice(&[one, one, -one]);
    weights
}

/// Streams only the library writes: a 1-D series (padded frames), a rank-5 array (a shape
/// block) and a 2-D array coded as a field of rows.
fn library_seeds() -> Vec<Vec<u8>> {
    use baler::{Array, Bound, Options, Values};
    let bounded = Options::bounded(Bound::Absolute(0.01));
    let as_field = Options {
        field: true,
        ..bounded
    };
    let arrays = [
        (
            Array::new(
                &[70],
                Values::F32(smooth(1, 70, 3.0).iter().map(|&v| v as f32).collect()),
            ),
            bounded,
        ),
        (
            Array::new(&[2, 2, 3, 2, 2], Values::F64(smooth(2, 24, 1.0))),
            bounded,
        ),
        (
            Array::new(&[6, 5], Values::F64(smooth(6, 5, 2.0))),
            as_field,
        ),
        // Pointwise relative grids (parameters version 2): a table and a series.
        (
            Array::new(&[6, 5], Values::F64(smooth(6, 5, 2.0))),
            Options::bounded(Bound::Pointwise(1e-3)),
        ),
        (
            Array::new(&[40], Values::F64(smooth(1, 40, 5.0))),
            Options::bounded(Bound::Pointwise(0.01)),
        ),
    ];
    arrays
        .into_iter()
        .map(|(array, options)| baler::compress(&array.unwrap(), &options).unwrap())
        .collect()
}

fn bounded_seeds(model: &HostModel<'_>) -> Vec<Vec<u8>> {
    let table = smooth(6, 3, 40.0);
    let wide = smooth(5, 48, 2.0);
    let field = smooth(3, 20, 1.0);
    let counts: Vec<f64> = smooth(6, 4, 900.0).iter().map(|v| v.round()).collect();
    vec![
        encode_bounded(
            Layout::Table,
            DType::F64,
            None,
            None,
            3,
            &table,
            0.01,
            4,
            &[],
        ),
        encode_bounded(
            Layout::Table,
            DType::F32,
            None,
            None,
            3,
            &table,
            0.5,
            2,
            &["a", "b", "c"],
        ),
        encode_bounded(
            Layout::Table,
            DType::I16,
            None,
            None,
            4,
            &counts,
            2.0,
            6,
            &[],
        ),
        encode_bounded(
            Layout::Table,
            DType::F64,
            Some(model),
            None,
            48,
            &wide,
            0.05,
            3,
            &[],
        ),
        encode_bounded(
            Layout::Field {
                height: 4,
                width: 5,
            },
            DType::F64,
            None,
            None,
            20,
            &field,
            0.001,
            2,
            &[],
        ),
        encode_bounded(
            Layout::Field {
                height: 4,
                width: 5,
            },
            DType::F64,
            None,
            Some(Predictor::Learned(shift_weights())),
            20,
            &field,
            0.001,
            4,
            &[],
        ),
        // The in-frame learned predictor (parameters predictor 5), from the first frame on.
        encode_bounded(
            Layout::Field {
                height: 4,
                width: 5,
            },
            DType::F64,
            None,
            Some(Predictor::LearnedInFrame(planar_in_frame_weights())),
            20,
            &field,
            0.001,
            4,
            &[],
        ),
        // Interpolated blocks (kind 7), relative to their predictions, frames across 2 blocks.
        encode_bounded(
            Layout::Field {
                height: 4,
                width: 5,
            },
            DType::F32,
            None,
            Some(Predictor::Interpolated(InterpolationPlan {
                order: 5,
                fine_bits: 4,
                cubic: [7; 16],
                finer: [1; 16],
                ..InterpolationPlan::LINEAR
            })),
            20,
            &field,
            0.01,
            2,
            &[],
        ),
        encode_bounded(
            Layout::Field {
                height: 6,
                width: 8,
            },
            DType::F32,
            Some(model),
            None,
            48,
            &wide,
            0.1,
            5,
            &[],
        ),
    ]
}

fn reader_seeds() -> Vec<Vec<u8>> {
    use baler::data::{write, Dataset};
    let mut seeds = Vec::new();
    let sets = [
        (
            vec![3, 2],
            DType::F64,
            vec!["x".to_string(), "y".to_string()],
        ),
        (vec![2, 3], DType::F32, vec![]),
        (vec![2, 2, 2], DType::I16, vec![]),
        (vec![4, 1], DType::I32, vec![]),
    ];
    for (shape, dtype, names) in sets {
        let count: usize = shape.iter().product();
        let set = Dataset {
            values: (0..count).map(|i| i as f32 - 2.5).collect(),
            shape,
            dtype,
            names,
        };
        for (index, ext) in READER_EXTENSIONS.iter().enumerate() {
            if *ext == "csv" && set.shape.len() != 2 {
                continue;
            }
            let path = scratch(ext);
            write(&path, &set).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            // Mode: the extension, and a small chunk size so rows are split across chunks.
            seeds.push(with_mode(index as u8 + 6, &bytes));
        }
    }
    seeds
}

fn cli_seeds(model: &HostModel<'_>) -> Vec<Vec<u8>> {
    let mut seeds = vec![with_mode(0, GOLDEN_STREAM)];
    // The same data compressed by the CLI itself: fixed-rate with the tiled model, and
    // error-bounded with and without it.
    let field = baler::data::Dataset {
        values: smooth(2, 30, 5.0).iter().map(|&v| v as f32).collect(),
        shape: vec![2, 5, 6],
        dtype: DType::F32,
        names: vec![],
    };
    let input = scratch("npy");
    baler::data::write(&input, &field).unwrap();
    let bound = Some(baler::Bound::Absolute(0.01));
    for (mode, bound) in [(2u8, None), (2, bound), (0, bound)] {
        let stream = scratch("baler");
        let options = baler::Options {
            bound,
            use_model: baler::UseModel::Always,
            model: (mode & 2 != 0).then_some(tile_blob()),
            field: false,
            columns: &[],
        };
        baler::compress_file(&input, &stream, &options, &|_, _| {}).unwrap();
        seeds.push(with_mode(mode, &std::fs::read(&stream).unwrap()));
        let _ = std::fs::remove_file(&stream);
    }
    let table = bounded_seeds(model).swap_remove(1);
    seeds.push(with_mode(8, &table));
    let _ = std::fs::remove_file(&input);
    seeds
}
