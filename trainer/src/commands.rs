//! The commands behind the CLI verbs. Errors are one-line messages.

use crate::data::{self, AtomicFile, Dataset};
use crate::tiles::{parse_tile, Tiling};
use crate::train::{self, Device, TrainConfig};
use baler_codec::stream::{block_len, decode_block, encode_block, read_block, STREAM_HEADER_LEN};
use baler_codec::{Decoder, HostModel, StreamHeader};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// `println!` that ignores a closed stdout (e.g. `baler info x | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Quantization-aware fine-tuning starts when the quantized validation error exceeds the float
/// one by this factor.
const QAT_TRIGGER: f64 = 1.25;

/// Frames per stream block: the unit of parallel work and of damage containment.
const FRAMES_PER_BLOCK: usize = 1024;

/// Arguments of `baler train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Data file (.npz, .npy or .csv).
    #[arg(long)]
    pub input: std::path::PathBuf,
    /// Output model blob.
    #[arg(long)]
    pub output: std::path::PathBuf,
    /// Latent width (default: from --compression-ratio).
    #[arg(long)]
    pub latent: Option<usize>,
    /// Columns per latent value: latent = ceil(columns / R).
    #[arg(long, default_value_t = 4.0)]
    pub compression_ratio: f64,
    /// Hidden widths of the encoder (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "200,100,50")]
    pub hidden: Vec<usize>,
    /// Maximum epochs.
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Initial learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Fraction of rows held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// Seed for initialization, shuffling and the split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Latent code width in bits (1..=16).
    #[arg(long, default_value_t = 8)]
    pub code_bits: u8,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Epochs of quantization-aware fine-tuning, run when the quantized model's validation
    /// error exceeds 1.25x the float model's (0: never).
    #[arg(long, default_value_t = 20)]
    pub qat_epochs: usize,
    /// For [frames, h, w] fields: train on tiles of HxW (e.g. 10x10) so one small model
    /// serves any frame size.
    #[arg(long)]
    pub tile: Option<String>,
}

/// The tiling a model implies for `data`: a rank-3 field whose model frame is a 2-D tile
/// smaller than the field's frame.
fn tiling_for(shape: &[usize], frame_shape: &[usize]) -> Option<Tiling> {
    match (shape, frame_shape) {
        ([_, h, w], [th, tw]) if (*th, *tw) != (*h, *w) => Some(Tiling {
            frame: (*h, *w),
            tile: (*th, *tw),
        }),
        _ => None,
    }
}

fn read_model(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load<'a>(path: &Path, blob: &'a [u8]) -> Result<HostModel<'a>, String> {
    HostModel::from_bytes(blob).map_err(|e| format!("{}: {e}", path.display()))
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{pos}}/{{len}} blocks {{elapsed}}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// `baler train`.
pub fn train(args: &TrainArgs) -> Result<(), String> {
    let device = match args.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda,
        other => return Err(format!("unknown device '{other}' (cpu or cuda)")),
    };
    if !(1..=16).contains(&args.code_bits) {
        return Err(format!("--code-bits {} is outside 1..=16", args.code_bits));
    }
    let data = data::read(&args.input)?;
    if let Some((row, column)) = data.first_non_finite() {
        return Err(format!(
            "{}: NaN or infinity at row {row}, column {}",
            args.input.display(),
            column_name(&data, column)
        ));
    }
    let (values, n, shape, names) = match (&args.tile, data.shape.as_slice()) {
        (Some(tile), [_, h, w]) => {
            let tile = parse_tile(tile)?;
            let tiling = Tiling {
                frame: (*h, *w),
                tile,
            };
            let shape = vec![tile.0 as u32, tile.1 as u32];
            (
                Cow::Owned(tiling.split(&data.values)),
                tiling.tile_len(),
                shape,
                Vec::new(),
            )
        }
        (Some(_), other) => {
            return Err(format!(
                "--tile needs [frames, h, w] data, not shape {other:?}"
            ));
        }
        (None, dims) => {
            let shape = dims[1..].iter().map(|&d| d as u32).collect();
            (
                Cow::Borrowed(&data.values[..]),
                data.row_len(),
                shape,
                data.names.clone(),
            )
        }
    };
    let latent = args
        .latent
        .unwrap_or_else(|| (n as f64 / args.compression_ratio).ceil().max(1.0) as usize);
    let config = TrainConfig {
        hidden: args.hidden.clone(),
        latent,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        validation_fraction: args.validation_fraction,
        seed: args.seed,
        code_bits: args.code_bits,
        device,
        progress: true,
    };
    let started = Instant::now();
    let mut outcome = train::train(&values, n, shape, names, &config)?;
    let float_mse = float_validation_mse(&values, n, &outcome);
    let mut quant_mse =
        train::quantized_validation_mse(&values, n, &outcome.model, &outcome.validation)?;
    say!("validation MSE (normalized): float {float_mse:.5}, quantized {quant_mse:.5}");
    if args.qat_epochs > 0 && quant_mse > QAT_TRIGGER * float_mse {
        say!(
            "quantized error exceeds {QAT_TRIGGER}x the float error: quantization-aware fine-tuning ({} epochs)",
            args.qat_epochs
        );
        outcome = train::fine_tune_quantized(&values, n, &outcome, &config, args.qat_epochs)?;
        quant_mse =
            train::quantized_validation_mse(&values, n, &outcome.model, &outcome.validation)?;
        say!("after fine-tuning: quantized {quant_mse:.5}");
    }
    let blob = outcome
        .model
        .quantize()
        .map_err(|e| format!("quantization: {e}"))?;
    let model = HostModel::from_bytes(&blob).map_err(|e| format!("quantization: {e}"))?;
    let mut file = AtomicFile::create(&args.output)?;
    file.writer()
        .write_all(&blob)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    file.commit()?;
    let history_path = args.output.with_extension("loss.json");
    let history = serde_json::to_string_pretty(&outcome.history).map_err(|e| e.to_string())?;
    let mut file = AtomicFile::create(&history_path)?;
    file.writer()
        .write_all(history.as_bytes())
        .map_err(|e| format!("{}: {e}", history_path.display()))?;
    file.commit()?;
    say!(
        "trained {n} -> {latent} ({} epochs, {:.1} s); validation MSE (normalized): float {float_mse:.5}, quantized {quant_mse:.5}",
        outcome.history.len(),
        started.elapsed().as_secs_f64(),
    );
    say!(
        "model {:016x}: {} bytes -> {}; loss history -> {}",
        model.id(),
        blob.len(),
        args.output.display(),
        history_path.display()
    );
    Ok(())
}

/// Validation MSE of the float model, in normalized units.
fn float_validation_mse(values: &[f32], n: usize, outcome: &train::TrainOutcome) -> f64 {
    let model = &outcome.model;
    let mut ranges = vec![(0f32, 0f32); model.layers.len()];
    let (mut sq, mut count) = (0f64, 0usize);
    for &row in &outcome.validation {
        let z: Vec<f32> = values[row * n..(row + 1) * n]
            .iter()
            .zip(model.offset.iter().zip(&model.scale))
            .map(|(x, (o, s))| (x - o) / s)
            .collect();
        let recon = model.forward_normalized(&z, &mut ranges);
        sq += recon
            .iter()
            .zip(&z)
            .map(|(a, b)| f64::from((a - b).powi(2)))
            .sum::<f64>();
        count += n;
    }
    sq / count.max(1) as f64
}

fn column_name(data: &Dataset, column: usize) -> String {
    match data.names.get(column) {
        Some(name) => format!("{column} ('{name}')"),
        None => column.to_string(),
    }
}

/// `baler compress`.
pub fn compress(model_path: &Path, input: &Path, output: &Path) -> Result<(), String> {
    let blob = read_model(model_path)?;
    let model = load(model_path, &blob)?;
    let data = data::read(input)?;
    let n = model.input_len();
    let frame_shape: Vec<usize> = model.frame_shape().map(|d| d as usize).collect();
    let tiling = tiling_for(&data.shape, &frame_shape);
    let values = match tiling {
        Some(t) => Cow::Owned(t.split(&data.values)),
        None => Cow::Borrowed(&data.values[..]),
    };
    let frame_len = tiling.map_or(data.row_len(), |t| t.tile_len());
    if frame_len != n {
        return Err(format!(
            "{}: frames of {frame_len} values, but the model {} expects {n}",
            input.display(),
            model_path.display()
        ));
    }
    if let Some((row, column)) = data.first_non_finite() {
        return Err(format!(
            "{}: NaN or infinity at row {row}, column {}",
            input.display(),
            column_name(&data, column)
        ));
    }
    let shape: Vec<u64> = data.shape.iter().map(|&d| d as u64).collect();
    let mut header = StreamHeader::new(&model, data.dtype, &shape)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    header.frame_count = (values.len() / n) as u64;
    let started = Instant::now();
    let chunks: Vec<&[f32]> = values.chunks(FRAMES_PER_BLOCK * n).collect();
    let bar = progress(chunks.len() as u64, "compress");
    let blocks: Result<Vec<Vec<u8>>, String> = chunks
        .par_iter()
        .map(|chunk| {
            let mut out = vec![0u8; block_len(&model, chunk.len() / n).unwrap_or(0)];
            let len = encode_block(&model, chunk, &mut out).map_err(|e| e.to_string())?;
            out.truncate(len);
            bar.inc(1);
            Ok(out)
        })
        .collect();
    let blocks = blocks?;
    bar.finish_and_clear();
    let mut head = [0u8; STREAM_HEADER_LEN];
    header.write(&mut head).map_err(|e| e.to_string())?;
    let mut file = AtomicFile::create(output)?;
    let err = |e: std::io::Error| format!("{}: {e}", output.display());
    file.writer().write_all(&head).map_err(err)?;
    let mut total = head.len();
    for block in &blocks {
        file.writer().write_all(block).map_err(err)?;
        total += block.len();
    }
    file.commit()?;
    let raw = data.values.len() * dtype_size(data.dtype);
    let seconds = started.elapsed().as_secs_f64();
    say!(
        "{} -> {}: {raw} -> {total} bytes, ratio {:.2} ({:.2} with the {}-byte model), {:.1} MB/s",
        input.display(),
        output.display(),
        raw as f64 / total as f64,
        raw as f64 / (total + blob.len()) as f64,
        blob.len(),
        raw as f64 / seconds.max(1e-9) / 1e6
    );
    Ok(())
}

fn dtype_size(dtype: baler_codec::DType) -> usize {
    match dtype {
        baler_codec::DType::F32 | baler_codec::DType::I32 => 4,
        baler_codec::DType::I16 => 2,
        _ => 8,
    }
}

/// `baler decompress`.
pub fn decompress(model_path: &Path, input: &Path, output: &Path) -> Result<(), String> {
    let blob = read_model(model_path)?;
    let model = load(model_path, &blob)?;
    let stream = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let started = Instant::now();
    let at = |e: baler_codec::Error| format!("{}: {e}", input.display());
    let decoder = Decoder::new(&model, &stream).map_err(at)?;
    let header = *decoder.header();
    let n = model.output_len();
    // Walk the blocks (CRC-checked), then decode them in parallel.
    let mut blocks = Vec::new();
    let (mut at_byte, mut frames) = (STREAM_HEADER_LEN, 0u64);
    while at_byte < stream.len() {
        let (block, len) =
            read_block(&model, &stream[at_byte..], blocks.len() as u32).map_err(at)?;
        frames += u64::from(block.frames);
        blocks.push(block);
        at_byte += len;
    }
    if frames != header.frame_count {
        return Err(at(baler_codec::Error::FrameCountMismatch {
            header: header.frame_count,
            blocks: frames,
        }));
    }
    let total = usize::try_from(frames).map_err(|_| "stream too large".to_string())? * n;
    let mut values = vec![0f32; total];
    let bar = progress(blocks.len() as u64, "decompress");
    let mut slices = Vec::with_capacity(blocks.len());
    let mut rest = values.as_mut_slice();
    for block in &blocks {
        let (head, tail) = rest.split_at_mut(block.frames as usize * n);
        slices.push((block, head));
        rest = tail;
    }
    slices.into_par_iter().try_for_each(|(block, out)| {
        decode_block(&model, block, out).map_err(at)?;
        bar.inc(1);
        Ok::<(), String>(())
    })?;
    bar.finish_and_clear();
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let frame_shape: Vec<usize> = model.frame_shape().map(|d| d as usize).collect();
    if let Some(tiling) = tiling_for(&shape, &frame_shape) {
        values = tiling.join(&values);
    }
    if shape.iter().product::<usize>() != values.len() {
        return Err(format!(
            "{}: header shape {shape:?} does not match {} decoded values",
            input.display(),
            values.len()
        ));
    }
    let names: Vec<String> = if shape.len() == 2 {
        model.names().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let dataset = Dataset {
        values,
        shape,
        dtype: header.dtype,
        names,
    };
    let raw = dataset.values.len() * dtype_size(dataset.dtype);
    data::write(output, &dataset)?;
    say!(
        "{} -> {}: {frames} frames of {n}, {raw} bytes, {:.1} MB/s",
        input.display(),
        output.display(),
        raw as f64 / started.elapsed().as_secs_f64().max(1e-9) / 1e6
    );
    Ok(())
}

/// `baler info`.
pub fn info(file: &Path, model_path: Option<&Path>, json: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let at = |e: baler_codec::Error| format!("{}: {e}", file.display());
    let report = match bytes.get(..4) {
        Some(b"BALM") => {
            let model = HostModel::from_bytes(&bytes).map_err(at)?;
            let half_bytes = |layers: &[baler_codec::LayerSpec<'_>]| -> usize {
                layers
                    .iter()
                    .map(|l| {
                        l.weights.bytes().len()
                            + l.bias.bytes().len()
                            + l.multiplier.bytes().len()
                            + l.shift.bytes().len()
                            + l.weight_scales.bytes().len()
                    })
                    .sum()
            };
            let widths: Vec<usize> = std::iter::once(model.input_len())
                .chain(model.layers().iter().map(|l| usize::from(l.outputs)))
                .collect();
            serde_json::json!({
                "kind": "model",
                "model_id": format!("{:016x}", model.id()),
                "bytes": bytes.len(),
                "widths": widths,
                "latent": model.latent_len(),
                "code_bits": model.code_bits(),
                "encoder_bytes": half_bytes(model.encoder()),
                "decoder_bytes": half_bytes(model.decoder()),
                "encoder_macs": model.encoder_macs(),
                "decoder_macs": model.decoder_macs(),
                "names": model.names().collect::<Vec<_>>(),
            })
        }
        Some(b"BALS") => {
            let header = StreamHeader::read(&bytes).map_err(at)?;
            let dtype = header.dtype;
            let original = header.shape().iter().product::<u64>() as usize * dtype_size(dtype);
            let mut report = serde_json::json!({
                "kind": "stream",
                "model_id": format!("{:016x}", header.model_id),
                "shape": header.shape(),
                "dtype": format!("{dtype:?}").to_lowercase(),
                "frames": header.frame_count,
                "frame_len": header.frame_len,
                "original_bytes": original,
                "compressed_bytes": bytes.len(),
                "ratio": original as f64 / bytes.len() as f64,
            });
            if let Some(path) = model_path {
                let blob = read_model(path)?;
                let model = load(path, &blob)?;
                if model.id() != header.model_id {
                    return Err(format!(
                        "{}: written by model {:016x}, not by {} ({:016x})",
                        file.display(),
                        header.model_id,
                        path.display(),
                        model.id()
                    ));
                }
                report["model_bytes"] = blob.len().into();
                report["ratio_with_model"] =
                    (original as f64 / (bytes.len() + blob.len()) as f64).into();
            }
            report
        }
        _ => return Err(format!("{}: not a baler model or stream", file.display())),
    };
    if json {
        say!("{report:#}");
    } else if let Some(map) = report.as_object() {
        for (key, value) in map {
            say!("{key:>16}: {value}");
        }
    }
    Ok(())
}

/// `baler evaluate`.
pub fn evaluate(original: &Path, reconstructed: &Path, json: bool) -> Result<(), String> {
    let a = data::read(original)?;
    let b = data::read(reconstructed)?;
    if a.shape != b.shape {
        return Err(format!(
            "shapes differ: {} is {:?}, {} is {:?}",
            original.display(),
            a.shape,
            reconstructed.display(),
            b.shape
        ));
    }
    // Tables are judged per column; fields of rank 3 or more as one whole.
    let (columns, names): (usize, Vec<String>) = if a.shape.len() == 2 {
        let n = a.row_len();
        let names = (0..n)
            .map(|c| {
                a.names
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("column_{c}"))
            })
            .collect();
        (n, names)
    } else {
        (1, vec!["field".to_string()])
    };
    let errors = crate::metrics::column_errors(&a.values, &b.values, columns);
    let worst = errors.iter().zip(&names).max_by(|x, y| {
        x.0.max_relative_to_range()
            .total_cmp(&y.0.max_relative_to_range())
    });
    if json {
        let columns: Vec<serde_json::Value> = errors
            .iter()
            .zip(&names)
            .map(|(e, name)| {
                serde_json::json!({
                    "name": name, "max_abs": e.max_abs, "rmse": e.rmse, "range": e.range,
                    "max_relative_to_range": e.max_relative_to_range(),
                    "mean_relative": e.mean_relative,
                })
            })
            .collect();
        say!("{:#}", serde_json::json!({ "columns": columns }));
        return Ok(());
    }
    if let Some((e, name)) = worst {
        say!(
            "{} values in {} column(s); worst max error {:.4} ({:.3}% of the range of {name})",
            a.values.len(),
            errors.len(),
            e.max_abs,
            100.0 * e.max_relative_to_range()
        );
    }
    say!(
        "{:>16} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "column",
        "max |err|",
        "RMSE",
        "range",
        "max/range",
        "mean rel"
    );
    for (e, name) in errors.iter().zip(&names) {
        say!(
            "{name:>16} {:>12.5} {:>12.5} {:>12.5} {:>9.3}% {:>9.3}%",
            e.max_abs,
            e.rmse,
            e.range,
            100.0 * e.max_relative_to_range(),
            100.0 * e.mean_relative
        );
    }
    Ok(())
}
